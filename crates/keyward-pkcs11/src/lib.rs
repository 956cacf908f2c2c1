//! libkeyward_pkcs11.so: the PKCS#11 3.0 C ABI over the Keyward engine.
//!
//! Every `C_*` function of the 3.0 list is exported under its spec name and collected into the
//! 2.40 and 3.0 function lists. Only `ffi/` and `lists.rs` dereference caller memory; every
//! exported body runs under `ffi::entry`, so no panic ever crosses the C boundary. This crate
//! must never log a PIN, an attribute value or a data buffer.

mod backend;
mod ffi;
mod functions;
mod lists;

pub use functions::*;

#[cfg(test)]
mod tests;
