//! The exported `C_*` functions, grouped as the spec's chapters group them. Each converts its
//! raw arguments through `ffi` helpers inside `ffi::entry` and calls the `Api`.
//!
//! Common safety contract of every function here: the caller follows PKCS#11 3.0 for that
//! function: each non-NULL pointer is valid for the reads and writes the spec describes, with
//! the lengths the caller states, for the duration of the call.

// Arguments keep the spec's names (pTemplate, ulCount, ...) so each signature reads as the
// spec's prototype.
#![allow(non_snake_case)]

pub mod crypt;
pub mod digest;
pub mod general;
pub mod key;
pub mod message;
pub mod object;
pub mod random;
pub mod session;
pub mod sign;
pub mod slot;

pub use crypt::*;
pub use digest::*;
pub use general::*;
pub use key::*;
pub use message::*;
pub use object::*;
pub use random::*;
pub use session::*;
pub use sign::*;
pub use slot::*;
