//! One module per subcommand: each turns its parsed arguments into PKCS#11 calls.

pub mod cert;
pub mod completions;
pub mod csr;
pub mod decrypt;
pub mod delete;
pub mod derive;
pub mod digest;
pub mod encrypt;
pub mod export;
pub mod import;
pub mod key;
pub mod list;
pub mod mechanisms;
pub mod pin;
pub mod provision;
pub mod sign;
pub mod slots;
pub mod token;
pub mod verify;
