//! Client connections: identify the peer, check the `[[access]]` rules admit it, bound the
//! number served, and serve each on a thread of its own with its own PKCS#11 application,
//! which is dropped (sessions closed, logged out) when the client goes.

use std::collections::HashMap;
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use keyward_core::api::Api;
use keyward_core::engine::{Engine, Peer};

use crate::peer;

/// The clients being served: bounded in number, and reachable for shutdown.
pub struct Clients {
    max: usize,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    next_id: u64,
    /// A second handle on each client's socket, to end its reads at shutdown.
    live: HashMap<u64, UnixStream>,
    closing: bool,
}

/// A client's place in [`Clients`], given back when dropped.
pub struct Slot {
    clients: Arc<Clients>,
    id: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut s = self.clients.lock();
        s.live.remove(&self.id);
        drop(s);
        self.clients.changed.notify_all();
    }
}

impl Clients {
    /// At most `max` clients at once.
    pub fn new(max: usize) -> Arc<Clients> {
        Arc::new(Clients {
            max,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        })
    }

    // The state stays consistent across a panic (plain inserts and removes), so a poisoned
    // lock is still usable.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place for the client on `stream`, or `None` if `max` are being served or the daemon
    /// is stopping.
    pub fn admit(self: &Arc<Self>, stream: &UnixStream) -> std::io::Result<Option<Slot>> {
        let mut s = self.lock();
        if s.closing || s.live.len() >= self.max {
            return Ok(None);
        }
        let handle = stream.try_clone()?;
        let id = s.next_id;
        s.next_id += 1;
        s.live.insert(id, handle);
        Ok(Some(Slot {
            clients: self.clone(),
            id,
        }))
    }

    /// Clients being served.
    pub fn count(&self) -> usize {
        self.lock().live.len()
    }

    /// Stop reading from every client: each connection then ends once its running calls have
    /// answered. No client is admitted afterwards.
    pub fn close_all(&self) {
        let mut s = self.lock();
        s.closing = true;
        for stream in s.live.values() {
            // A client that has gone already fails this harmlessly.
            let _ = stream.shutdown(Shutdown::Read);
        }
    }

    /// Wait until no client is left, at most `timeout`; whether none is left.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut s = self.lock();
        while !s.live.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            s = self
                .changed
                .wait_timeout(s, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

/// Take a newly accepted client: identify it (right away, so its `/proc` entry is most likely
/// still its own), refuse it if no `[[access]]` rule admits it or the daemon is full, else
/// serve it on a new thread.
pub fn accept(stream: UnixStream, engine: &Engine, clients: &Arc<Clients>, workers: usize) {
    let peer = match peer::identify(&stream) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "refusing a client whose credentials cannot be read");
            return;
        }
    };
    if !engine.admits(&peer) {
        tracing::warn!(
            uid = peer.uid,
            gid = peer.gid,
            pid = peer.pid,
            "refusing a client: no [[access]] rule admits it"
        );
        return;
    }
    let slot = match clients.admit(&stream) {
        Ok(Some(slot)) => slot,
        Ok(None) => {
            tracing::warn!(
                uid = peer.uid,
                pid = peer.pid,
                max_clients = clients.max,
                "refusing a client: max_clients are connected"
            );
            return;
        }
        Err(e) => {
            tracing::warn!(uid = peer.uid, pid = peer.pid, error = %e, "refusing a client");
            return;
        }
    };
    let engine = engine.clone();
    let name = format!("client-{}", slot.id);
    let spawned = std::thread::Builder::new()
        .name(name)
        .spawn(move || serve(stream, peer, &engine, workers, slot));
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "refusing a client: cannot start its thread");
    }
}

/// Serve one client until it disconnects or sends a bad frame; its application (sessions,
/// login state, running operations) goes with it.
fn serve(stream: UnixStream, peer: Peer, engine: &Engine, workers: usize, _slot: Slot) {
    let (uid, gid, pid) = (peer.uid, peer.gid, peer.pid);
    tracing::info!(uid, gid, pid, groups = ?peer.groups, "client connected");
    let api: Arc<dyn Api> = Arc::new(engine.application_for(Some(peer)));
    // serve_connection catches panics in the calls it runs; this catches one in the
    // connection itself, so that it ends this client only.
    let result = catch_unwind(AssertUnwindSafe(move || {
        keyward_proto::serve_connection(stream, api, workers)
    }));
    match result {
        Ok(Ok(())) => tracing::info!(uid, pid, "client disconnected"),
        Ok(Err(e)) => tracing::info!(uid, pid, error = %e, "client connection ended"),
        Err(_) => tracing::error!(uid, pid, "client connection failed internally; dropped"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_released_on_drop() {
        let clients = Clients::new(2);
        let pairs: Vec<_> = (0..3).map(|_| UnixStream::pair().unwrap()).collect();
        let a = clients.admit(&pairs[0].0).unwrap().unwrap();
        let _b = clients.admit(&pairs[1].0).unwrap().unwrap();
        assert!(clients.admit(&pairs[2].0).unwrap().is_none());
        assert_eq!(clients.count(), 2);
        drop(a);
        assert_eq!(clients.count(), 1);
        assert!(clients.admit(&pairs[2].0).unwrap().is_some());
    }

    #[test]
    fn close_all_ends_reads_and_refuses_newcomers() {
        use std::io::Read;
        let clients = Clients::new(4);
        let (server, _client) = UnixStream::pair().unwrap();
        let slot = clients.admit(&server).unwrap().unwrap();
        let reader = std::thread::spawn(move || {
            let mut s = server;
            let mut buf = [0u8; 8];
            let n = s.read(&mut buf).unwrap();
            drop(slot);
            n
        });
        std::thread::sleep(Duration::from_millis(50));
        clients.close_all();
        assert!(clients.wait_idle(Duration::from_secs(5)));
        assert_eq!(
            reader.join().unwrap(),
            0,
            "the blocked read saw end of file"
        );
        let (s2, _c2) = UnixStream::pair().unwrap();
        assert!(clients.admit(&s2).unwrap().is_none());
    }

    #[test]
    fn wait_idle_times_out() {
        let clients = Clients::new(1);
        let (s, _c) = UnixStream::pair().unwrap();
        let _slot = clients.admit(&s).unwrap().unwrap();
        let t = Instant::now();
        assert!(!clients.wait_idle(Duration::from_millis(100)));
        assert!(t.elapsed() >= Duration::from_millis(100));
    }
}
