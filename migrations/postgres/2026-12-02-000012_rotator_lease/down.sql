DROP TABLE rotator_lease;
