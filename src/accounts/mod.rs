//! Accounts: validated identifiers, Argon2id password hashing off the executor, and the user
//! operations shared by the CLI and (later) the HTTP API.

pub mod current;
pub mod names;
pub mod network;
pub mod password;
pub mod sessions;
pub mod users;

pub use names::{Email, Password, Role, Username};
pub use password::PasswordHasher;
