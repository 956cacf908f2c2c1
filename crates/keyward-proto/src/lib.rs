//! The keyward daemon protocol: length-prefixed postcard frames over a Unix socket, a
//! versioned handshake, one message per [`keyward_core::api::Api`] method, and both ends of a
//! connection ([`serve_connection`] in the daemon, [`Remote`] in the module).
//!
//! A connection is one PKCS#11 application in the daemon. Requests carry an id and may
//! overlap: the daemon runs them on a few threads per connection and answers in any order.

#![forbid(unsafe_code)]

mod calls;
mod client;
mod frame;
mod server;
mod wire;

#[cfg(test)]
mod tests;

pub use calls::{Answer, Call, dispatch};
pub use client::{Connection, Remote};
pub use frame::{FrameError, read_frame, write_frame};
pub use server::serve_connection;
pub use wire::{Bytes, Hello, HelloReply, MAGIC, Request, Response, decode, encode};

/// The protocol version both ends must agree on in the handshake.
pub const PROTOCOL_VERSION: u16 = 1;

/// Largest frame payload either end sends or accepts (32 MiB).
pub const MAX_FRAME: usize = 32 << 20;
