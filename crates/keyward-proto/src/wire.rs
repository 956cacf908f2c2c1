//! Wire messages and their encoding: the handshake, requests and responses, in postcard.

use std::fmt;
use std::ops::Deref;

use keyward_core::types::wire_bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::MAX_FRAME;
use crate::calls::{Answer, Call};

/// The first four bytes of a client's hello.
pub const MAGIC: [u8; 4] = *b"KWRD";

/// The client's first frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// [`MAGIC`].
    pub magic: [u8; 4],
    /// The client's [`crate::PROTOCOL_VERSION`].
    pub version: u16,
}

/// The daemon's answer to [`Hello`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    /// Accepted; requests may follow.
    Welcome {
        /// The daemon's protocol version (equal to the client's).
        version: u16,
    },
    /// Not accepted; the daemon closes the connection.
    Refused {
        /// Why, for the client's log.
        reason: String,
    },
}

/// A call, tagged so that its answer can be matched.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Chosen by the client, unique among its outstanding requests.
    pub id: u64,
    /// The call.
    pub call: Call,
}

/// The answer to the request with the same id.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The request's id.
    pub id: u64,
    /// The outcome.
    pub answer: Answer,
}

/// A byte-string argument on the wire (data, PINs, signatures): zeroized on drop and never
/// printed, since it may be a secret.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Bytes(pub Zeroizing<Vec<u8>>);

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl From<&[u8]> for Bytes {
    fn from(b: &[u8]) -> Bytes {
        Bytes(Zeroizing::new(b.to_vec()))
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(b: Vec<u8>) -> Bytes {
        Bytes(Zeroizing::new(b))
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        wire_bytes::serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        wire_bytes::deserialize(d).map(Bytes)
    }
}

/// Encode a message (without the frame header) into a zeroizing buffer.
pub fn encode<T: Serialize>(msg: &T) -> Result<Zeroizing<Vec<u8>>, postcard::Error> {
    let size = postcard::experimental::serialized_size(msg)?;
    let mut buf = Zeroizing::new(Vec::with_capacity(size));
    postcard::to_extend(msg, Sink(&mut buf))?;
    Ok(buf)
}

/// Decode a message strictly: unknown enum tags, short input and trailing bytes are errors.
pub fn decode<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> Result<T, postcard::Error> {
    let (msg, rest) = postcard::take_from_bytes(payload)?;
    if !rest.is_empty() {
        return Err(postcard::Error::DeserializeBadEncoding);
    }
    Ok(msg)
}

/// Why a message could not be framed.
#[derive(Debug)]
pub(crate) enum FrameEncodeError {
    /// The payload would exceed [`MAX_FRAME`]; its size.
    TooLarge(usize),
    /// Serialization failed.
    Encode(postcard::Error),
}

impl fmt::Display for FrameEncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameEncodeError::TooLarge(n) => {
                write!(
                    f,
                    "message of {n} bytes exceeds the {MAX_FRAME}-byte frame limit"
                )
            }
            FrameEncodeError::Encode(e) => write!(f, "cannot encode message: {e}"),
        }
    }
}

/// Header and payload in one buffer sized exactly once (so no secret-holding copy is left
/// behind by a reallocation), ready for a single write.
pub(crate) fn encode_frame<T: Serialize>(msg: &T) -> Result<Zeroizing<Vec<u8>>, FrameEncodeError> {
    let size = postcard::experimental::serialized_size(msg).map_err(FrameEncodeError::Encode)?;
    let len = match u32::try_from(size) {
        Ok(len) if size <= MAX_FRAME => len,
        _ => return Err(FrameEncodeError::TooLarge(size)),
    };
    let mut buf = Zeroizing::new(Vec::with_capacity(4 + size));
    buf.extend_from_slice(&len.to_be_bytes());
    postcard::to_extend(msg, Sink(&mut buf)).map_err(FrameEncodeError::Encode)?;
    Ok(buf)
}

/// Lets postcard append to a borrowed vector.
struct Sink<'a>(&'a mut Vec<u8>);

impl Extend<u8> for Sink<'_> {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}
