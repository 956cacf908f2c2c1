//! Input and output of command data: a file, or stdin/stdout for `-` or no file.

use std::io::{Read, Write};
use std::path::Path;

use crate::error::{Error, Exit, Result};

/// The whole input: the file, or stdin when `path` is `None` or `-`.
pub fn read_input(path: Option<&Path>) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    match path {
        Some(p) if p != Path::new("-") => {
            buf = std::fs::read(p).map_err(|e| Error::io("reading", p, e))?;
        }
        _ => {
            std::io::stdin()
                .lock()
                .read_to_end(&mut buf)
                .map_err(|e| Error::new(Exit::Io, format!("reading stdin: {e}")))?;
        }
    }
    Ok(buf)
}

/// Write `data` to the file (created or replaced), or stdout when `path` is `None` or `-`.
pub fn write_output(path: Option<&Path>, data: &[u8]) -> Result<()> {
    match path {
        Some(p) if p != Path::new("-") => {
            std::fs::write(p, data).map_err(|e| Error::io("writing", p, e))
        }
        _ => {
            let mut out = std::io::stdout().lock();
            match out.write_all(data).and_then(|()| out.flush()) {
                // A reader that stopped early (`| head`) is not a failure.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                Err(e) => Err(Error::new(Exit::Io, format!("writing stdout: {e}"))),
                Ok(()) => Ok(()),
            }
        }
    }
}

/// Print text for people on stdout.
pub fn print(text: &str) -> Result<()> {
    write_output(None, text.as_bytes())
}
