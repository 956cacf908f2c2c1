//! Who the daemon runs as: resolving `[daemon] user` and `socket_group`, and the switch from
//! root to that user after the socket is bound (setgroups([]), setgid, setuid, checked).

use std::io;

use keyward_core::config::{DaemonConfig, NameOrId};
use nix::unistd::{Gid, Group, Uid, User, getresgid, getresuid, setgid, setgroups, setuid};

/// The user to switch to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Its name, for logs (or the uid written as text when it has no user entry).
    pub name: String,
    /// Its uid.
    pub uid: u32,
    /// Its primary gid.
    pub gid: u32,
}

fn err(msg: String) -> io::Error {
    io::Error::other(msg)
}

/// The gid of `[daemon] socket_group`.
pub fn socket_gid(d: &DaemonConfig) -> io::Result<Option<u32>> {
    match &d.socket_group {
        None => Ok(None),
        Some(NameOrId::Id(g)) => Ok(Some(*g)),
        Some(NameOrId::Name(n)) => match Group::from_name(n) {
            Ok(Some(g)) => Ok(Some(g.gid.as_raw())),
            Ok(None) => Err(err(format!("[daemon] socket_group: unknown group {n:?}"))),
            Err(e) => Err(err(format!(
                "[daemon] socket_group: cannot look up {n:?}: {e}"
            ))),
        },
    }
}

/// Decide whom to run as. As root with `user` set, the user must exist (else refuse to start:
/// running on as root is not what was asked for). Not root, `user` can only be confirmed; a
/// mismatch is logged and the daemon runs on as it is. `Ok(None)`: no switch.
pub fn target(d: &DaemonConfig) -> io::Result<Option<Target>> {
    let root = Uid::effective().is_root();
    let Some(want) = &d.user else {
        if root {
            tracing::warn!("running as root: set [daemon] user to run as a dedicated user");
        }
        return Ok(None);
    };
    let found = match want {
        NameOrId::Name(n) => User::from_name(n),
        NameOrId::Id(u) => User::from_uid(Uid::from_raw(*u)),
    };
    let target = match found {
        Ok(Some(u)) => Target {
            name: u.name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
        },
        Ok(None) if root => {
            return Err(err(format!(
                "[daemon] user {want} does not exist; refusing to run as root"
            )));
        }
        Err(e) if root => {
            return Err(err(format!(
                "[daemon] user {want}: cannot look it up ({e}); refusing to run as root"
            )));
        }
        Ok(None) | Err(_) => {
            tracing::warn!(user = %want, uid = Uid::effective().as_raw(),
                "[daemon] user is unknown; not root, so running on as this user");
            return Ok(None);
        }
    };
    if root {
        if target.uid == 0 {
            tracing::warn!("[daemon] user is root: not switching");
            return Ok(None);
        }
        return Ok(Some(target));
    }
    if target.uid != Uid::effective().as_raw() {
        tracing::warn!(user = %target.name, uid = Uid::effective().as_raw(),
            "[daemon] user names another user, but only root can switch; running on as this user");
    }
    Ok(None)
}

/// Switch to `t` for good: no supplementary groups, then its gid, then its uid (glibc applies
/// each to every thread). Verified afterwards: all three uids and gids are the target's.
pub fn switch_to(t: &Target) -> io::Result<()> {
    let uid = Uid::from_raw(t.uid);
    let gid = Gid::from_raw(t.gid);
    setgroups(&[]).map_err(|e| err(format!("setgroups([]): {e}")))?;
    setgid(gid).map_err(|e| err(format!("setgid({}): {e}", t.gid)))?;
    setuid(uid).map_err(|e| err(format!("setuid({}): {e}", t.uid)))?;
    let r = getresuid().map_err(io::Error::from)?;
    let g = getresgid().map_err(io::Error::from)?;
    if [r.real, r.effective, r.saved] != [uid; 3] || [g.real, g.effective, g.saved] != [gid; 3] {
        return Err(err(format!("privileges not fully dropped to {}", t.name)));
    }
    if setuid(Uid::from_raw(0)).is_ok() {
        return Err(err("setuid(0) still succeeds after the switch".into()));
    }
    tracing::debug!(user = %t.name, uid = t.uid, gid = t.gid, "dropped privileges");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(user: Option<NameOrId>, group: Option<NameOrId>) -> DaemonConfig {
        DaemonConfig {
            user,
            socket_group: group,
            ..DaemonConfig::default()
        }
    }

    #[test]
    fn groups_by_name_and_id() {
        assert_eq!(socket_gid(&conf(None, None)).unwrap(), None);
        assert_eq!(
            socket_gid(&conf(None, Some(NameOrId::Id(4321)))).unwrap(),
            Some(4321)
        );
        assert_eq!(
            socket_gid(&conf(None, Some(NameOrId::Name("root".into())))).unwrap(),
            Some(0)
        );
        assert!(socket_gid(&conf(None, Some(NameOrId::Name("no-such-group-kw".into())))).is_err());
    }

    #[test]
    fn unknown_user_as_root_is_refused() {
        let c = conf(Some(NameOrId::Name("no-such-user-kw".into())), None);
        let r = target(&c);
        if Uid::effective().is_root() {
            assert!(
                r.unwrap_err()
                    .to_string()
                    .contains("refusing to run as root")
            );
        } else {
            assert_eq!(r.unwrap(), None);
        }
    }

    #[test]
    fn a_known_user_is_the_target_only_for_root() {
        let c = conf(Some(NameOrId::Name("nobody".into())), None);
        let Ok(Some(u)) = User::from_name("nobody") else {
            return;
        };
        let t = target(&c).unwrap();
        if Uid::effective().is_root() {
            assert_eq!(t.map(|t| t.uid), Some(u.uid.as_raw()));
        } else {
            assert_eq!(t, None);
        }
        assert_eq!(target(&conf(None, None)).unwrap(), None);
    }
}
