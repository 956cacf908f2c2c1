//! The daemon's end: handshake, then requests read in order and run on a small per-connection
//! pool of threads, answers written as they complete.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
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
/// Requests queued per worker before the connection's reader stops reading (backpressure, so
/// a client that pipelines cannot grow the daemon's memory).
const QUEUE_PER_WORKER: usize = 4;

/// Serve one client: handshake, then read requests and run them on up to `workers` threads
/// of this connection (started as calls overlap), writing each answer tagged with its
/// request's id. Returns when the client closes the connection or breaks the protocol (an
/// oversize, truncated or undecodable frame, a bad hello: logged with the reason, connection
/// closed), after the calls already running have finished, so that dropping `api` afterwards
/// ends the application. `Err` only for a failure to set up the socket.
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
    let mut pool = Pool::new(
        api,
        stream.try_clone()?,
        stream.try_clone()?,
        workers.max(1),
    );
    loop {
        let frame = match read_frame(&mut &stream, MAX_FRAME) {
            Ok(f) => Zeroizing::new(f),
            Err(FrameError::Closed) => {
                tracing::debug!("daemon client closed the connection");
                break;
            }
            // A client that exits with answers unread resets the connection: not a fault.
            Err(FrameError::Io(e)) if e.kind() == io::ErrorKind::ConnectionReset => {
                tracing::debug!("daemon client went away: {e}");
                pool.shared.break_connection();
                break;
            }
            Err(e) => {
                if !pool.shared.broken.load(Ordering::Acquire) {
                    tracing::warn!("closing daemon connection: {e}");
                }
                pool.shared.break_connection();
                break;
            }
        };
        match decode::<Request>(&frame) {
            Ok(req) => pool.submit(req),
            Err(e) => {
                tracing::warn!("closing daemon connection: undecodable request: {e}");
                pool.shared.break_connection();
                break;
            }
        }
    }
    // At a clean end of input the calls already sent still run and are answered (a client
    // may half-close after its last request); after a fault they are skipped.
    let _ = stream.shutdown(Shutdown::Read);
    pool.finish();
    let _ = stream.shutdown(Shutdown::Both);
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

/// The worker threads of one connection.
struct Pool {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    max: usize,
}

struct Shared {
    api: Arc<dyn Api>,
    out: Mutex<UnixStream>,
    /// The same socket, to shut it down without waiting for a writer.
    control: UnixStream,
    queue: Mutex<Queue>,
    work: Condvar,
    space: Condvar,
    /// Set once an answer could not be written: remaining calls are skipped.
    broken: AtomicBool,
}

struct Queue {
    jobs: VecDeque<Request>,
    idle: usize,
    closed: bool,
}

impl Pool {
    fn new(api: Arc<dyn Api>, out: UnixStream, control: UnixStream, max: usize) -> Pool {
        Pool {
            shared: Arc::new(Shared {
                api,
                out: Mutex::new(out),
                control,
                queue: Mutex::new(Queue {
                    jobs: VecDeque::new(),
                    idle: 0,
                    closed: false,
                }),
                work: Condvar::new(),
                space: Condvar::new(),
                broken: AtomicBool::new(false),
            }),
            threads: Vec::new(),
            max,
        }
    }

    /// Queue a request, starting a worker when every running one is busy.
    fn submit(&mut self, req: Request) {
        let mut q = self.shared.lock_queue();
        while q.jobs.len() >= self.max * QUEUE_PER_WORKER
            && !self.shared.broken.load(Ordering::Acquire)
        {
            q = self
                .shared
                .space
                .wait(q)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if self.shared.broken.load(Ordering::Acquire) {
            return;
        }
        q.jobs.push_back(req);
        let needs_thread = q.jobs.len() > q.idle && self.threads.len() < self.max;
        drop(q);
        self.shared.work.notify_one();
        if needs_thread {
            let shared = Arc::clone(&self.shared);
            match std::thread::Builder::new()
                .name("keyward-call".into())
                .spawn(move || shared.work_loop())
            {
                Ok(t) => self.threads.push(t),
                Err(e) if self.threads.is_empty() => {
                    // No worker at all: answer on this thread rather than never.
                    tracing::warn!("cannot start a call thread ({e}); running the call inline");
                    let job = self.shared.lock_queue().jobs.pop_front();
                    if let Some(req) = job {
                        self.shared.run(req);
                    }
                }
                Err(e) => tracing::warn!("cannot start another call thread: {e}"),
            }
        }
    }

    /// Let the queued and running calls finish, then stop the workers.
    fn finish(self) {
        self.shared.lock_queue().closed = true;
        self.shared.work.notify_all();
        for t in self.threads {
            let _ = t.join();
        }
    }
}

impl Shared {
    fn lock_queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn work_loop(&self) {
        loop {
            let req = {
                let mut q = self.lock_queue();
                loop {
                    if let Some(req) = q.jobs.pop_front() {
                        break req;
                    }
                    if q.closed {
                        return;
                    }
                    q.idle += 1;
                    q = self.work.wait(q).unwrap_or_else(PoisonError::into_inner);
                    q.idle -= 1;
                }
            };
            self.space.notify_one();
            self.run(req);
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

    /// The client is unreachable: skip the remaining calls and stop the reader.
    fn break_connection(&self) {
        self.broken.store(true, Ordering::Release);
        let _ = self.control.shutdown(Shutdown::Both);
        // The reader may be waiting for room in the queue.
        let _q = self.lock_queue();
        self.space.notify_all();
    }
}
