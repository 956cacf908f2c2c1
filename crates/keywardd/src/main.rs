//! keywardd, the Keyward keystore daemon: one token engine serving PKCS#11 clients over a Unix
//! socket, each connection its own application, every client identified by the kernel
//! (SO_PEERCRED) and held to the `[[access]]` rules.
//!
//! It hardens itself at start (no core dumps, no ptrace, memory locked, an optional switch
//! away from root, a seccomp allow-list) and contains no `unsafe` code: every system call goes
//! through nix, rustix, seccompiler, signal-hook or listenfd. It must never serve a client it
//! could not identify, nor let one client's failure stop the others.

#![forbid(unsafe_code)]

mod cli;
mod conn;
mod harden;
mod listener;
mod notify;
mod peer;
mod privs;
mod seccomp;

use std::io::{self, IsTerminal};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use keyward_core::config::{Config, SOCKET_ENV};
use keyward_core::engine::Engine;
use rustix::event::{PollFd, PollFlags, poll};

use crate::conn::Clients;
use crate::listener::{Listener, Owner};

/// How long a stop waits for running calls to answer.
const STOP_GRACE: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    // First, before any thread exists: the activation variables are removed as they are read.
    let activated = Listener::from_systemd();
    let args = cli::Args::parse();
    let config = match &args.config {
        Some(path) => Config::from_file(path),
        None => Config::load(),
    };
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("keywardd: {e}");
            return ExitCode::FAILURE;
        }
    };
    let level = args.log_level.as_deref().unwrap_or(&config.log_level);
    init_logging(level);
    let activated = match activated {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "cannot use the socket systemd passed");
            return ExitCode::FAILURE;
        }
    };
    match run(&args, config, activated) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::new(level);
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .with_target(false);
    // journald stamps each line itself.
    if journal {
        builder.without_time().init();
    } else {
        builder.init();
    }
}

fn run(args: &cli::Args, config: Config, activated: Option<Listener>) -> io::Result<()> {
    harden::no_dumps();

    // Signals are caught from the start; the accept loop wakes on this socket pair.
    let (wake, waker) = UnixStream::pair()?;
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::low_level::pipe::register(sig, waker.try_clone()?)?;
    }
    drop(waker);

    let d = config.daemon.clone();
    let target = privs::target(&d)?;
    let listener = match activated {
        Some(l) => {
            tracing::info!("serving the socket passed by systemd");
            l
        }
        None => {
            let path = socket_path(args, &config);
            let owner = Owner {
                uid: target.as_ref().map(|t| t.uid),
                gid: privs::socket_gid(&d)?,
            };
            Listener::bind(&path, d.socket_mode, owner).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot listen on {}: {e}", path.display()),
                )
            })?
        }
    };
    listener.socket.set_nonblocking(true)?;

    if let Some(t) = &target {
        harden::lift_memlock_limit();
        privs::switch_to(t)?;
        // A change of uid resets the dumpable flag to the fs.suid_dumpable default.
        harden::no_dumps();
    }
    harden::lock_memory();

    let engine = Engine::new(config)
        .map_err(|e| io::Error::other(format!("cannot open the token storage: {e}")))?;
    let notifier = notify::Notifier::from_env();

    if d.seccomp {
        seccomp::confine().map_err(|e| io::Error::other(format!("seccomp: {e}")))?;
    } else {
        tracing::warn!("seccomp is off ([daemon] seccomp = false)");
    }

    let clients = Clients::new(d.max_clients);
    tracing::info!(
        max_clients = d.max_clients,
        workers = d.workers,
        "keywardd ready"
    );
    if let Some(n) = &notifier {
        n.send("READY=1");
    }
    accept_loop(&listener, &wake, &engine, &clients, d.workers)?;

    // Stop: no new client, let running calls answer, then go.
    if let Some(n) = &notifier {
        n.send("STOPPING=1");
    }
    drop(listener);
    let busy = clients.count();
    tracing::info!(clients = busy, "stopping");
    clients.close_all();
    if !clients.wait_idle(STOP_GRACE) {
        tracing::warn!(
            clients = clients.count(),
            "clients still busy after {} s; exiting anyway",
            STOP_GRACE.as_secs()
        );
    }
    tracing::info!("stopped");
    Ok(())
}

/// `--socket`, else `KEYWARD_SOCKET`, else the configuration's `socket`.
fn socket_path(args: &cli::Args, config: &Config) -> PathBuf {
    if let Some(p) = &args.socket {
        return p.clone();
    }
    match std::env::var_os(SOCKET_ENV).filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => config.socket.clone(),
    }
}

/// Accept clients until a stop signal arrives. Blocks in poll(2) on the listening socket and
/// the signal socket; never spins.
fn accept_loop(
    listener: &Listener,
    wake: &UnixStream,
    engine: &Engine,
    clients: &std::sync::Arc<Clients>,
    workers: usize,
) -> io::Result<()> {
    loop {
        let mut fds = [
            PollFd::new(&listener.socket, PollFlags::IN),
            PollFd::from_borrowed_fd(wake.as_fd(), PollFlags::IN),
        ];
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
        if !fds[1].revents().is_empty() {
            tracing::info!("stop signal received");
            return Ok(());
        }
        if fds[0].revents().is_empty() {
            continue;
        }
        match listener.socket.accept() {
            Ok((stream, _)) => {
                if let Err(e) = stream.set_nonblocking(false) {
                    tracing::warn!(error = %e, "dropping a client");
                    continue;
                }
                conn::accept(stream, engine, clients, workers);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::Interrupted
                        | io::ErrorKind::ConnectionAborted
                ) => {}
            Err(e) => {
                // Out of descriptors or memory: the client stays queued, so pause rather
                // than spin on it.
                tracing::warn!(error = %e, "accept failed");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}
