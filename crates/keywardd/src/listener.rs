//! The listening socket: one passed by systemd socket activation (LISTEN_PID/LISTEN_FDS), or
//! the configured path bound here with the configured mode and group, in a 0750 directory.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// A listening socket, and the file it was bound to when this process bound it.
pub struct Listener {
    /// The socket, in blocking mode.
    pub socket: UnixListener,
    bound: Option<Bound>,
}

/// The socket file this process created: removed at exit if it is still ours.
struct Bound {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

/// Ownership to give the socket file and a directory created for it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Owner {
    /// The user the daemon will run as, when it is about to switch to it.
    pub uid: Option<u32>,
    /// The group that may connect (`[daemon] socket_group`).
    pub gid: Option<u32>,
}

impl Listener {
    /// The socket passed by systemd, if this process was socket-activated. Must run before any
    /// thread starts: the activation variables are removed from the environment.
    pub fn from_systemd() -> io::Result<Option<Listener>> {
        let mut fds = listenfd::ListenFd::from_env();
        if fds.len() == 0 {
            return Ok(None);
        }
        if fds.len() > 1 {
            tracing::warn!(
                count = fds.len(),
                "systemd passed several sockets; serving the first only"
            );
        }
        let socket = fds.take_unix_listener(0)?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "the socket systemd passed is not a listening Unix stream socket",
            )
        })?;
        socket.set_nonblocking(false)?;
        Ok(Some(Listener {
            socket,
            bound: None,
        }))
    }

    /// Bind `path` with permissions `mode` and ownership `owner`. A socket file already there is
    /// replaced only if nothing answers on it; any other file there is an error.
    pub fn bind(path: &Path, mode: u32, owner: Owner) -> io::Result<Listener> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            prepare_dir(dir, owner)?;
        }
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => match UnixStream::connect(path) {
                Ok(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::AddrInUse,
                        format!("another daemon is listening on {}", path.display()),
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    tracing::info!(path = %path.display(), "removing a stale socket");
                    std::fs::remove_file(path)?;
                }
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("cannot tell whether {} is in use: {e}", path.display()),
                    ));
                }
            },
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        // The process umask (0077, set at start) keeps the new socket owner-only until the
        // mode below is applied, so nobody connects through a wider window.
        let socket = UnixListener::bind(path)?;
        if owner.uid.is_some() || owner.gid.is_some() {
            std::os::unix::fs::chown(path, owner.uid, owner.gid)?;
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        let meta = std::fs::symlink_metadata(path)?;
        tracing::debug!(path = %path.display(), mode = format!("{mode:04o}"),
            uid = meta.uid(), gid = meta.gid(), "socket bound");
        Ok(Listener {
            socket,
            bound: Some(Bound {
                path: path.to_path_buf(),
                dev: meta.dev(),
                ino: meta.ino(),
            }),
        })
    }
}

impl Drop for Listener {
    /// Remove the socket file this process bound, unless another daemon has replaced it.
    fn drop(&mut self) {
        let Some(b) = &self.bound else { return };
        match std::fs::symlink_metadata(&b.path) {
            Ok(m) if m.dev() == b.dev && m.ino() == b.ino => {
                if let Err(e) = std::fs::remove_file(&b.path) {
                    tracing::warn!(path = %b.path.display(), error = %e, "cannot remove the socket");
                }
            }
            _ => {}
        }
    }
}

/// Create the socket's directory 0750 (owned by the daemon's user and the socket group) if it
/// is missing; an existing directory is left as its owner set it.
fn prepare_dir(dir: &Path, owner: Owner) -> io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(dir)?;
    if owner.uid.is_some() || owner.gid.is_some() {
        std::os::unix::fs::chown(dir, owner.uid, owner.gid)?;
    }
    // The umask narrowed the mode at creation; the group needs its search bit.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750))?;
    tracing::debug!(dir = %dir.display(), "created the socket directory (0750)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_with_mode_and_replaces_only_stale_sockets() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("run/keyward/k.sock");
        let l = Listener::bind(&path, 0o640, Owner::default()).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.mode() & 0o7777, 0o640);
        let dir = std::fs::metadata(path.parent().unwrap()).unwrap();
        assert_eq!(dir.mode() & 0o7777, 0o750);

        // A live socket is not taken over.
        let e = Listener::bind(&path, 0o660, Owner::default())
            .err()
            .unwrap();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);

        // A socket left behind by a dead daemon is replaced.
        let stale = UnixListener::bind(tmp.path().join("stale.sock")).unwrap();
        drop(stale);
        let l2 = Listener::bind(&tmp.path().join("stale.sock"), 0o600, Owner::default()).unwrap();
        drop(l2);
        assert!(!tmp.path().join("stale.sock").exists(), "removed at drop");

        drop(l);
        assert!(!path.exists());
    }

    #[test]
    fn refuses_to_replace_a_regular_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("k.sock");
        std::fs::write(&path, b"data").unwrap();
        let e = Listener::bind(&path, 0o660, Owner::default())
            .err()
            .unwrap();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"data");
    }

    #[test]
    fn a_replaced_socket_file_is_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("k.sock");
        let l = Listener::bind(&path, 0o660, Owner::default()).unwrap();
        std::fs::remove_file(&path).unwrap();
        let other = UnixListener::bind(&path).unwrap();
        drop(l);
        assert!(path.exists(), "another daemon's socket survives");
        drop(other);
    }
}
