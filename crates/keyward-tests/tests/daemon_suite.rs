//! The C ABI suite against the daemon backend: the same test list as `embedded.rs`, with the
//! module in daemon mode talking to a `keywardd` that this process starts on its own storage
//! directory (see `common::env`). Results must be identical to the embedded backend's.

mod common;

#[path = "suite/mod.rs"]
mod suite;
