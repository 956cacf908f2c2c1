//! The C ABI suite against the embedded backend: the module runs the token engine in this
//! process over a storage directory of its own.
//!
//! A later daemon backend gets its own binary with the same `suite` list (STYLE §9), so each
//! backend runs in its own processes and never shares module state.

mod common;

#[path = "suite/mod.rs"]
mod suite;
