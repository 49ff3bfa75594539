DROP INDEX api_scopes_api;
DROP TABLE api_scopes;
DROP TABLE apis;
