//! Framing: a big-endian u32 payload length, then the payload.

use std::fmt;
use std::io::{self, ErrorKind, Read, Write};

use zeroize::Zeroizing;

/// Why a frame could not be read.
#[derive(Debug)]
pub enum FrameError {
    /// The peer closed the stream at a frame boundary.
    Closed,
    /// The announced payload length exceeds the limit; nothing more was read.
    TooLarge(u32),
    /// The stream failed.
    Io(io::Error),
    /// The stream ended inside a frame.
    Truncated,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Closed => f.write_str("connection closed"),
            FrameError::TooLarge(n) => write!(f, "frame of {n} bytes exceeds the limit"),
            FrameError::Io(e) => write!(f, "read failed: {e}"),
            FrameError::Truncated => f.write_str("connection closed inside a frame"),
        }
    }
}

impl std::error::Error for FrameError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FrameError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Write one frame and flush. Wrap an unbuffered stream in a `BufWriter` so that the header
/// and the payload leave in one write.
pub fn write_frame(w: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len())
        .map_err(|_| io::Error::new(ErrorKind::InvalidInput, "frame payload over 4 GiB"))?;
    w.write_all(&len.to_be_bytes())?;
    w.write_all(payload)?;
    w.flush()
}

/// Read one frame whose payload is at most `max` bytes.
pub fn read_frame(r: &mut impl Read, max: usize) -> Result<Vec<u8>, FrameError> {
    let mut head = [0u8; 4];
    match fill(r, &mut head)? {
        0 => return Err(FrameError::Closed),
        4 => {}
        _ => return Err(FrameError::Truncated),
    }
    let announced = u32::from_be_bytes(head);
    let len = match usize::try_from(announced) {
        Ok(len) if len <= max => len,
        _ => return Err(FrameError::TooLarge(announced)),
    };
    // Allocated once at its final size (a zeroed allocation costs memory only as data
    // arrives) and wiped if the frame turns out truncated: payloads carry PINs and keys.
    let mut buf = Zeroizing::new(vec![0u8; len]);
    if fill(r, &mut buf)? < len {
        return Err(FrameError::Truncated);
    }
    Ok(std::mem::take(&mut *buf))
}

/// Read until `buf` is full or the stream ends; the number of bytes read.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, FrameError> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    Ok(n)
}
