//! Keyward's token engine: slots, tokens, sessions, login, objects, mechanisms and the
//! encrypted SQLite store, exposed as Rust-typed PKCS#11 operations through [`api::Api`].
//!
//! This crate never sees a C pointer or a socket, and returns errors that map one-to-one to
//! CKR_ codes ([`error::Code`]).

#![forbid(unsafe_code)]

pub mod api;
pub mod error;
pub mod types;

pub use error::{Code, Error, Result};
pub mod config;
pub mod engine;
pub mod mechanism;
pub mod object;
pub mod store;
