//! Wycheproof test vectors through the C ABI of the built module: one test per family, each
//! importing the vectors' keys as session objects and requiring every valid vector to pass and
//! every invalid one to be refused with a documented code (see docs/testing.md).

mod common;

#[path = "wycheproof/mod.rs"]
mod families;
