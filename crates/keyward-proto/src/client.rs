//! The module's end: a multiplexed connection to the daemon and [`Remote`], the `Api` over it.

use std::collections::HashMap;
use std::io::Write;
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use keyward_core::{Code, Result};
use zeroize::Zeroizing;

use crate::calls::{Answer, Call, into_error};
use crate::frame::{FrameError, read_frame};
use crate::wire::{FrameEncodeError, Hello, HelloReply, Request, Response, decode, encode_frame};
use crate::{MAGIC, MAX_FRAME, PROTOCOL_VERSION};

/// How long the daemon may take to answer the hello.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to the daemon, shared by all threads of the application.
///
/// Each call is written whole under a write lock with a fresh id. Whichever waiting thread
/// finds no reader becomes the reader: it reads responses, hands others' answers to their
/// slots and returns on its own, passing the role on. A single-threaded caller thus reads its
/// own answer without a thread switch, and a slow call never holds up a fast one.
pub struct Connection {
    stream: UnixStream,
    write_lock: Mutex<()>,
    state: Mutex<State>,
    answered: Condvar,
    next_id: AtomicU64,
}

struct State {
    /// Outstanding requests; `Some` once their answer has arrived.
    pending: HashMap<u64, Option<Answer>>,
    /// Whether a thread is reading responses.
    reading: bool,
    /// Why the connection is unusable, once it is.
    dead: Option<String>,
}

impl Connection {
    /// Connect to the daemon's socket and shake hands. An unreachable daemon or a refused or
    /// mismatched handshake is CKR_DEVICE_ERROR (logged).
    pub fn connect(path: &Path) -> Result<Connection> {
        let stream = UnixStream::connect(path).map_err(|e| {
            Code::DeviceError.err(format!(
                "cannot reach the keyward daemon at {}: {e}",
                path.display()
            ))
        })?;
        Connection::from_stream(stream)
            .map_err(|e| e.context(format!("keyward daemon at {}", path.display())))
    }

    /// Shake hands over an already connected stream.
    pub fn from_stream(stream: UnixStream) -> Result<Connection> {
        handshake(&stream).inspect_err(|e| tracing::error!("daemon handshake failed: {e}"))?;
        Ok(Connection {
            stream,
            write_lock: Mutex::new(()),
            state: Mutex::new(State {
                pending: HashMap::new(),
                reading: false,
                dead: None,
            }),
            answered: Condvar::new(),
            next_id: AtomicU64::new(1),
        })
    }

    /// Send `call` and wait for its answer; many threads may call at once. A `Failed` answer
    /// comes back as `Err` with the daemon's code; a lost connection fails this and every
    /// later call with CKR_DEVICE_REMOVED.
    pub fn call(&self, call: Call) -> Result<Answer> {
        let function = call.name();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = match encode_frame(&Request { id, call }) {
            Ok(f) => f,
            Err(FrameEncodeError::TooLarge(n)) => {
                return Err(Code::ArgumentsBad.err(format!(
                    "{function}: request of {n} bytes exceeds the daemon protocol's \
                     {MAX_FRAME}-byte limit"
                )));
            }
            Err(e) => return Err(Code::GeneralError.err(format!("{function}: {e}"))),
        };
        {
            let mut st = self.lock_state();
            if let Some(why) = &st.dead {
                return Err(removed(why));
            }
            st.pending.insert(id, None);
        }
        let written = {
            let _w = self
                .write_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            (&self.stream).write_all(&frame)
        };
        drop(frame);
        if let Err(e) = written {
            self.fail(format!("cannot send to the daemon: {e}"));
            self.lock_state().pending.remove(&id);
            return Err(Code::DeviceRemoved.err(format!("{function}: daemon connection lost")));
        }
        match self.wait(id)? {
            Answer::Failed { rv, detail } => Err(into_error(rv, detail)),
            answer => Ok(answer),
        }
    }

    fn wait(&self, id: u64) -> Result<Answer> {
        let mut st = self.lock_state();
        loop {
            if let Some(answer) = st.pending.get_mut(&id).and_then(Option::take) {
                st.pending.remove(&id);
                return Ok(answer);
            }
            if let Some(why) = &st.dead {
                let err = removed(why);
                st.pending.remove(&id);
                return Err(err);
            }
            if st.reading {
                st = self
                    .answered
                    .wait(st)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            st.reading = true;
            drop(st);
            let got = self.read_response();
            st = self.lock_state();
            st.reading = false;
            match got {
                Ok(resp) if resp.id == id => {
                    st.pending.remove(&id);
                    // Another waiter takes over reading.
                    self.answered.notify_all();
                    return Ok(resp.answer);
                }
                Ok(resp) => match st.pending.get_mut(&resp.id) {
                    Some(slot @ None) => *slot = Some(resp.answer),
                    _ => {
                        drop(st);
                        self.fail(format!("the daemon answered unknown request {}", resp.id));
                        st = self.lock_state();
                    }
                },
                Err(why) => {
                    drop(st);
                    self.fail(why);
                    st = self.lock_state();
                }
            }
            self.answered.notify_all();
        }
    }

    fn read_response(&self) -> std::result::Result<Response, String> {
        let frame = match read_frame(&mut &self.stream, MAX_FRAME) {
            Ok(f) => Zeroizing::new(f),
            Err(FrameError::Closed) => return Err("the daemon closed the connection".into()),
            Err(e) => return Err(format!("reading from the daemon: {e}")),
        };
        decode::<Response>(&frame).map_err(|e| format!("undecodable response from the daemon: {e}"))
    }

    /// Mark the connection dead (once, logged) and wake everyone waiting on it.
    fn fail(&self, why: String) {
        let mut st = self.lock_state();
        if st.dead.is_none() {
            tracing::warn!("keyward daemon connection lost: {why}");
            st.dead = Some(why);
            // Unblocks a reader still waiting for bytes.
            let _ = self.stream.shutdown(Shutdown::Both);
        }
        self.answered.notify_all();
    }

    /// Whether the connection was lost (every call on it fails).
    pub fn is_dead(&self) -> bool {
        self.lock_state().dead.is_some()
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

fn removed(why: &str) -> keyward_core::Error {
    Code::DeviceRemoved.err(format!("daemon connection lost: {why}"))
}

fn handshake(stream: &UnixStream) -> Result<()> {
    let io = |what: &str, e: &dyn std::fmt::Display| {
        Code::DeviceError.err(format!("daemon handshake: {what}: {e}"))
    };
    let hello = encode_frame(&Hello {
        magic: MAGIC,
        version: PROTOCOL_VERSION,
    })
    .map_err(|e| io("encoding", &e))?;
    (&*stream)
        .write_all(&hello)
        .map_err(|e| io("sending hello", &e))?;
    stream
        .set_read_timeout(Some(HANDSHAKE_TIMEOUT))
        .map_err(|e| io("socket", &e))?;
    let reply = read_frame(&mut &*stream, 4096).map_err(|e| io("reading reply", &e))?;
    stream
        .set_read_timeout(None)
        .map_err(|e| io("socket", &e))?;
    match decode::<HelloReply>(&reply).map_err(|e| io("undecodable reply", &e))? {
        HelloReply::Welcome { version } if version == PROTOCOL_VERSION => Ok(()),
        HelloReply::Welcome { version } => Err(Code::DeviceError.err(format!(
            "the daemon speaks protocol version {version}, this module {PROTOCOL_VERSION}"
        ))),
        HelloReply::Refused { reason } => {
            Err(Code::DeviceError.err(format!("the daemon refused the connection: {reason}")))
        }
    }
}

/// The PKCS#11 API of one application served by the daemon (implements
/// [`keyward_core::api::Api`] by calls over one [`Connection`]).
///
/// When the daemon goes away (restarted, upgraded), the call that finds out fails with
/// CKR_DEVICE_REMOVED, and the next call connects again: a new application in the daemon,
/// so the old sessions, handles and logins are gone (CKR_SESSION_HANDLE_INVALID) and the
/// client works again once it opens new sessions, as after a token was re-inserted.
pub struct Remote {
    conn: RwLock<Arc<Connection>>,
    /// Where to connect again; `None` for a connection made by the caller.
    path: Option<PathBuf>,
}

impl Remote {
    /// Connect to the daemon's socket (see [`Connection::connect`]).
    pub fn connect(path: &Path) -> Result<Remote> {
        let conn = Connection::connect(path)?;
        Ok(Remote {
            conn: RwLock::new(Arc::new(conn)),
            path: Some(path.to_path_buf()),
        })
    }

    /// Use an established connection (not re-established when lost).
    pub fn new(conn: Connection) -> Remote {
        Remote {
            conn: RwLock::new(Arc::new(conn)),
            path: None,
        }
    }

    /// The connection in use.
    pub fn connection(&self) -> Arc<Connection> {
        self.conn
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The connection to call on: the current one, or a new one if it was lost.
    pub(crate) fn current(&self) -> Result<Arc<Connection>> {
        let conn = self.connection();
        let Some(path) = &self.path else {
            return Ok(conn);
        };
        if !conn.is_dead() {
            return Ok(conn);
        }
        let mut slot = self.conn.write().unwrap_or_else(PoisonError::into_inner);
        if slot.is_dead() {
            let fresh = Connection::connect(path).map_err(|e| {
                Code::DeviceRemoved.err(format!("the keyward daemon is gone: {}", e.detail()))
            })?;
            tracing::warn!(
                socket = %path.display(),
                "connected to the keyward daemon again; the old sessions and logins are gone"
            );
            *slot = Arc::new(fresh);
        }
        Ok(slot.clone())
    }
}
