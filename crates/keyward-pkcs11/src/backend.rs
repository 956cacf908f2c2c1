//! The module's global state: the backend (`Arc<dyn Api>`) and the process that initialised it
//! (PKCS#11 3.0 §5.4 C_Initialize/C_Finalize, SECURITY SESS-07).
//!
//! Calls read the holder through `arc_swap`, which writes no shared cache line: two threads
//! calling at once do not contend here (a lock or an `Arc` clone per call would make every
//! call of one thread invalidate a line the other reads). A forked child sees CKR_CRYPTOKI_NOT_INITIALIZED until it calls C_Initialize, and never
//! drops the parent's state: its file descriptors and locks belong to the parent.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock};

use arc_swap::ArcSwapOption;

use keyward_core::api::Api;
use keyward_core::{Code, Result};

struct State {
    api: Arc<dyn Api>,
    /// The identity of the process that initialised the module (see `this_pid`).
    pid: u64,
}

type Holder = ArcSwapOption<State>;

#[cfg(not(test))]
static STATE: Holder = ArcSwapOption::const_empty();

// Unit tests run many "processes" as threads of one test binary: each thread gets its own
// holder, so tests never share module state and need no global synchronisation. The code
// paths are the same; only the storage location differs.
#[cfg(test)]
thread_local! {
    static STATE: Holder = const { ArcSwapOption::const_empty() };
}

/// Serialises C_Initialize and C_Finalize with each other (not with other calls).
static LIFECYCLE: Mutex<()> = Mutex::new(());

fn with_holder<R>(f: impl FnOnce(&Holder) -> R) -> R {
    #[cfg(not(test))]
    {
        f(&STATE)
    }
    #[cfg(test)]
    {
        STATE.with(f)
    }
}

/// Bumped in the child after every fork() by a pthread_atfork handler.
static FORK_GENERATION: AtomicU32 = AtomicU32::new(0);
static ATFORK: Once = Once::new();
/// Whether the handler is registered; without it the process id is the identity.
static ATFORK_OK: OnceLock<bool> = OnceLock::new();

extern "C" fn after_fork_in_child() {
    // An atomic increment is async-signal-safe, as a fork handler must be.
    FORK_GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// Who "this process" is, for telling a forked child from its parent. Every exported call
/// asks, so it must be cheap: getpid() is a system call (glibc no longer caches it) and cost
/// 2% of an ECDSA signature; a fork-generation counter is one atomic load. glibc removes the
/// handler when the module is unloaded. Children made without fork handlers (raw clone(),
/// _Fork()) are not detected.
fn this_pid() -> u64 {
    ATFORK.call_once(|| {
        // SAFETY: the handler only increments an atomic, which is valid in a forked child.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
        let _ = ATFORK_OK.set(rc == 0);
    });
    if ATFORK_OK.get().copied().unwrap_or(false) {
        u64::from(FORK_GENERATION.load(Ordering::Acquire))
    } else {
        (1 << 32) | u64::from(std::process::id())
    }
}

/// The backend of this process, or CKR_CRYPTOKI_NOT_INITIALIZED.
pub(crate) fn with<R>(f: impl FnOnce(&dyn Api) -> Result<R>) -> Result<R> {
    with_holder(|h| {
        // The guard keeps the state alive for the call, as an `Arc` clone would, without
        // touching its shared reference count.
        let guard = h.load();
        match guard.as_ref() {
            Some(s) if s.pid == this_pid() => f(s.api.as_ref()),
            _ => Err(Code::CryptokiNotInitialized
                .err("C_Initialize has not been called in this process")),
        }
    })
}

/// Install a backend built by `make`, unless this process already has one
/// (CKR_CRYPTOKI_ALREADY_INITIALIZED). State inherited across fork() is leaked, not dropped.
pub(crate) fn initialize(make: impl FnOnce() -> Result<Arc<dyn Api>>) -> Result<()> {
    let _serial = LIFECYCLE.lock().unwrap_or_else(|e| e.into_inner());
    let pid = this_pid();
    let initialised_here = with_holder(|h| h.load().as_ref().is_some_and(|s| s.pid == pid));
    if initialised_here {
        return Err(Code::CryptokiAlreadyInitialized.err("C_Initialize was already called"));
    }
    // Built without holding the state lock: opening tokens may take a while.
    let api = make()?;
    let inherited = with_holder(|h| h.swap(Some(Arc::new(State { api, pid }))));
    if let Some(parent) = inherited {
        tracing::debug!(
            parent_pid = parent.pid,
            "re-initialised after fork; leaving the parent's state untouched"
        );
        std::mem::forget(parent);
    }
    Ok(())
}

/// Release this process's backend (C_Finalize). The engine is dropped after the lock is
/// released; calls already running keep their own `Arc` until they return.
pub(crate) fn finalize() -> Result<()> {
    let _serial = LIFECYCLE.lock().unwrap_or_else(|e| e.into_inner());
    let pid = this_pid();
    // LIFECYCLE serialises every writer of the holder, so the check and the swap agree.
    let taken = with_holder(|h| {
        if h.load().as_ref().is_some_and(|s| s.pid == pid) {
            h.swap(None)
        } else {
            None
        }
    });
    match taken {
        Some(state) => {
            drop(state);
            Ok(())
        }
        None => {
            Err(Code::CryptokiNotInitialized.err("C_Finalize without C_Initialize in this process"))
        }
    }
}

/// Install the `tracing` subscriber once per process: stderr, at `level` (default warn).
/// A host that already installed its own subscriber keeps it.
fn install_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level);
    let bad_level = filter.is_err();
    let filter = filter.unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _already_set = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_target(false)
        // Colour codes only for a person at a terminal, never into a host's log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    if bad_level {
        tracing::warn!(level, "unknown log level in configuration; using warn");
    }
}

/// The real backend: the configuration, then either the embedded engine with one
/// application for this process, or a connection to `keywardd` (daemon mode: `mode =
/// "daemon"` or `KEYWARD_SOCKET`), which is one application in the daemon. Either way the
/// C ABI layer sees the same `Api`.
pub(crate) fn real() -> Result<Arc<dyn Api>> {
    #[cfg(test)]
    if let Some(make) = test_support::factory() {
        return make();
    }
    let config = match keyward_core::config::Config::load() {
        Ok(c) => c,
        Err(e) => {
            install_logging("warn");
            tracing::error!("cannot load the configuration: {}", e.detail());
            return Err(Code::GeneralError.err(format!("configuration: {}", e.detail())));
        }
    };
    install_logging(&config.log_level);
    if let Some(socket) = config.daemon_socket() {
        let remote = keyward_proto::Remote::connect(&socket).inspect_err(|e| {
            tracing::error!(
                rv = e.code().name(),
                socket = %socket.display(),
                "cannot reach the keystore daemon: {}",
                e.detail()
            );
        })?;
        return Ok(Arc::new(remote));
    }
    let engine = keyward_core::engine::Engine::new(config).inspect_err(|e| {
        tracing::error!(
            rv = e.code().name(),
            "cannot start the token engine: {}",
            e.detail()
        );
    })?;
    Ok(Arc::new(engine.application()))
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Per-thread hooks for unit tests: a mock backend factory and a simulated fork.

    use std::cell::RefCell;

    use super::*;

    type Factory = Arc<dyn Fn() -> Result<Arc<dyn Api>>>;

    thread_local! {
        static FACTORY: RefCell<Option<Factory>> = const { RefCell::new(None) };
    }

    /// Make C_Initialize on this thread build its backend with `f`.
    pub(crate) fn set_factory(f: impl Fn() -> Result<Arc<dyn Api>> + 'static) {
        FACTORY.with(|c| *c.borrow_mut() = Some(Arc::new(f)));
    }

    pub(super) fn factory() -> Option<Factory> {
        FACTORY.with(|c| c.borrow().clone())
    }

    /// Pretend this thread's state was created by another process (as after fork()).
    pub(crate) fn pretend_forked() {
        with_holder(|h| {
            if let Some(s) = h.load_full() {
                h.store(Some(Arc::new(State {
                    api: s.api.clone(),
                    pid: s.pid.wrapping_add(1),
                })));
            }
        });
    }
}
