//! The daemon's end: handshake, then requests read by a small per-connection set of threads
//! taking turns, each running the call it read, answers written as they complete.

use std::io::{self, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use keyward_core::Code;
use keyward_core::api::Api;
use zeroize::Zeroizing;

use crate::calls::{Answer, dispatch, failed};
use crate::frame::{FrameError, read_frame};
use crate::wire::{FrameEncodeError, Hello, HelloReply, Request, Response, decode, encode_frame};
use crate::{MAGIC, MAX_FRAME, PROTOCOL_VERSION};

/// How long a new client may take to say hello.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest hello accepted.
const MAX_HELLO: usize = 1024;
/// How long an answer may wait for the client to read it. The module reads whenever a call
/// is outstanding, so only a client that stopped reading hits this; it is disconnected.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Serve one client: handshake, then read requests and run them on up to `workers` threads
/// of this connection (started as calls overlap), writing each answer tagged with its
/// request's id. Returns when the client closes the connection or breaks the protocol (an
/// oversize, truncated or undecodable frame, a bad hello: logged with the reason, connection
/// closed), after the calls already running have finished, so that dropping `api` afterwards
/// ends the application. `Err` only for a failure to set up the socket.
///
/// The threads take turns reading (leader/follower): the thread that reads a request runs it
/// itself while another thread waits for the next one, so a call is never handed from one
/// thread to another (the socket round trip stays tens of microseconds) and a slow call does
/// not hold up the calls behind it. With every thread busy nobody reads, which bounds what a
/// pipelining client can make the daemon hold.
///
/// The hello must arrive within 10 s; after it the socket has no read timeout, and a client
/// that leaves an answer unread for 30 s is disconnected.
pub fn serve_connection(stream: UnixStream, api: Arc<dyn Api>, workers: usize) -> io::Result<()> {
    stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
    match handshake(&stream) {
        Ok(()) => {}
        Err(why) => {
            tracing::warn!("closing daemon connection: {why}");
            let _ = stream.shutdown(Shutdown::Both);
            return Ok(());
        }
    }
    stream.set_read_timeout(None)?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let shared = Arc::new(Shared {
        api,
        out: Mutex::new(stream.try_clone()?),
        control: stream.try_clone()?,
        input: Mutex::new(Input {
            stream,
            ended: false,
        }),
        waiting: AtomicUsize::new(0),
        threads: Mutex::new(Threads {
            started: 1,
            handles: Vec::new(),
        }),
        max: workers.max(1),
        broken: AtomicBool::new(false),
    });
    shared.work_loop();
    // Every other thread ends once the input has ended; wait for their calls.
    loop {
        let handle = shared
            .threads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .handles
            .pop();
        match handle {
            Some(h) => {
                let _ = h.join();
            }
            None => break,
        }
    }
    let _ = shared.control.shutdown(Shutdown::Both);
    Ok(())
}

fn handshake(stream: &UnixStream) -> Result<(), String> {
    let frame = read_frame(&mut &*stream, MAX_HELLO).map_err(|e| format!("no hello: {e}"))?;
    let hello: Hello = decode(&frame).map_err(|e| format!("undecodable hello: {e}"))?;
    if hello.magic != MAGIC {
        return Err("not a keyward client (bad magic)".into());
    }
    let reply = if hello.version == PROTOCOL_VERSION {
        HelloReply::Welcome {
            version: PROTOCOL_VERSION,
        }
    } else {
        HelloReply::Refused {
            reason: format!(
                "protocol version {} is not supported; this daemon speaks {PROTOCOL_VERSION}",
                hello.version
            ),
        }
    };
    let bytes = encode_frame(&reply).map_err(|e| e.to_string())?;
    (&*stream)
        .write_all(&bytes)
        .map_err(|e| format!("cannot answer hello: {e}"))?;
    match reply {
        HelloReply::Welcome { .. } => Ok(()),
        HelloReply::Refused { reason } => Err(reason),
    }
}

/// The threads of one connection and what they share.
struct Shared {
    api: Arc<dyn Api>,
    out: Mutex<UnixStream>,
    /// The same socket, to shut it down without waiting for a reader or writer.
    control: UnixStream,
    /// The reading end; whoever holds the lock reads the next request.
    input: Mutex<Input>,
    /// Threads waiting for their turn to read.
    waiting: AtomicUsize,
    threads: Mutex<Threads>,
    max: usize,
    /// Set once an answer could not be written: remaining calls are skipped.
    broken: AtomicBool,
}

struct Input {
    stream: UnixStream,
    /// The client closed, or broke the protocol: nothing more is read.
    ended: bool,
}

struct Threads {
    started: usize,
    handles: Vec<JoinHandle<()>>,
}

impl Shared {
    /// Take turns reading a request, then run it; until the input ends.
    fn work_loop(self: &Arc<Self>) {
        loop {
            self.waiting.fetch_add(1, Ordering::AcqRel);
            let mut input = self.input.lock().unwrap_or_else(PoisonError::into_inner);
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            if input.ended {
                return;
            }
            let Some(req) = self.read_request(&mut input) else {
                input.ended = true;
                // At a clean end of input the calls already read still run and are
                // answered (a client may half-close after its last request).
                let _ = input.stream.shutdown(Shutdown::Read);
                return;
            };
            drop(input);
            // Someone must read while this thread runs the call.
            if self.waiting.load(Ordering::Acquire) == 0 {
                self.start_thread();
            }
            self.run(req);
        }
    }

    fn read_request(&self, input: &mut Input) -> Option<Request> {
        let frame = match read_frame(&mut &input.stream, MAX_FRAME) {
            Ok(f) => Zeroizing::new(f),
            Err(FrameError::Closed) => {
                tracing::debug!("daemon client closed the connection");
                return None;
            }
            // A client that exits with answers unread resets the connection: not a fault.
            Err(FrameError::Io(e)) if e.kind() == io::ErrorKind::ConnectionReset => {
                tracing::debug!("daemon client went away: {e}");
                self.break_connection();
                return None;
            }
            Err(e) => {
                if !self.broken.load(Ordering::Acquire) {
                    tracing::warn!("closing daemon connection: {e}");
                }
                self.break_connection();
                return None;
            }
        };
        match decode::<Request>(&frame) {
            Ok(req) => Some(req),
            Err(e) => {
                tracing::warn!("closing daemon connection: undecodable request: {e}");
                self.break_connection();
                None
            }
        }
    }

    /// Start one more thread of this connection, if the limit allows.
    fn start_thread(self: &Arc<Self>) {
        let mut t = self.threads.lock().unwrap_or_else(PoisonError::into_inner);
        if t.started >= self.max {
            return;
        }
        let shared = Arc::clone(self);
        match std::thread::Builder::new()
            .name("keyward-call".into())
            .spawn(move || shared.work_loop())
        {
            Ok(h) => {
                t.started += 1;
                t.handles.push(h);
            }
            // The calls still run, one at a time, on the threads there are.
            Err(e) => tracing::warn!("cannot start another call thread: {e}"),
        }
    }

    /// Run one call and write its answer.
    fn run(&self, req: Request) {
        if self.broken.load(Ordering::Acquire) {
            return;
        }
        let function = req.call.name();
        // A panic in the engine is a bug; the client still gets an answer.
        let answer = catch_unwind(AssertUnwindSafe(|| dispatch(&*self.api, req.call)))
            .unwrap_or_else(|_| {
                tracing::error!("{function} panicked in the daemon");
                failed(&Code::GeneralError.err(format!("{function} failed in the daemon")))
            });
        let frame = match encode_frame(&Response { id: req.id, answer }) {
            Ok(f) => f,
            Err(e) => {
                let code = match e {
                    FrameEncodeError::TooLarge(_) => Code::DeviceMemory,
                    FrameEncodeError::Encode(_) => Code::GeneralError,
                };
                tracing::warn!("{function}: cannot send the answer: {e}");
                let answer: Answer = failed(&code.err(format!("{function}: {e}")));
                match encode_frame(&Response { id: req.id, answer }) {
                    Ok(f) => f,
                    Err(_) => return self.break_connection(),
                }
            }
        };
        let out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = (&*out).write_all(&frame) {
            drop(out);
            tracing::debug!("{function}: cannot write the answer: {e}");
            self.break_connection();
        }
    }

    /// The client is unreachable: skip the remaining calls and stop reading.
    fn break_connection(&self) {
        self.broken.store(true, Ordering::Release);
        let _ = self.control.shutdown(Shutdown::Both);
    }
}
