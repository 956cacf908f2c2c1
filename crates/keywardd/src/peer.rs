//! Who is on the other end of a connection: SO_PEERCRED (uid, gid, pid as of connect(2)) and
//! the supplementary groups of that process, read from `/proc/<pid>/status` right after accept.
//!
//! Why `/proc` and not getgrouplist(3): the groups the kernel gave the process are the ones
//! the socket file's own permission check used, a process that shed groups keeps them shed,
//! and no NSS module (which may open sockets the seccomp filter forbids) runs per connection.
//! The race: the pid is the connecting process's, and it may have exited and its pid been
//! reused before we read `/proc`. The file is used only when its effective uid and gid match
//! the credentials the kernel recorded at connect(2); otherwise the peer gets no supplementary
//! groups at all. Groups only ever grant access, so every failure here narrows it. A pid
//! reused by another process with the same uid and gid but other groups is the remaining
//! window; it needs the original client to have exited, handing its socket to someone else.

use std::io;
use std::os::unix::net::UnixStream;

use keyward_core::engine::Peer;
use nix::sys::socket::{getsockopt, sockopt};

/// Most supplementary groups a Linux process can have (NGROUPS_MAX).
const MAX_GROUPS: usize = 65536;

/// The kernel-verified identity of the client on `stream`.
pub fn identify(stream: &UnixStream) -> io::Result<Peer> {
    // nix, not rustix: rustix's UCred holds a non-zero pid, and the kernel reports 0 for a
    // peer whose pid namespace we cannot see.
    let cred = getsockopt(stream, sockopt::PeerCredentials).map_err(io::Error::from)?;
    let uid = cred.uid();
    let gid = cred.gid();
    // Pid 0: a peer in a pid namespace we cannot see; it has no /proc entry of ours.
    let pid = u32::try_from(cred.pid()).unwrap_or(0);
    let groups = if pid == 0 {
        Vec::new()
    } else {
        match std::fs::read_to_string(format!("/proc/{pid}/status")) {
            Ok(text) => match groups_from_status(&text, uid, gid) {
                Some(g) => g,
                None => {
                    tracing::warn!(
                        uid,
                        gid,
                        pid,
                        "client process changed or exited before its groups were read; \
                         using its primary group only"
                    );
                    Vec::new()
                }
            },
            Err(e) => {
                tracing::warn!(uid, gid, pid, error = %e,
                    "cannot read the client's groups; using its primary group only");
                Vec::new()
            }
        }
    };
    Ok(Peer {
        uid,
        gid,
        groups,
        pid,
    })
}

/// The `Groups:` of a `/proc/<pid>/status` text, if its effective uid and gid (the second
/// field of `Uid:` and `Gid:`) are `uid` and `gid`; `None` if they differ or a line is
/// missing or malformed.
pub fn groups_from_status(text: &str, uid: u32, gid: u32) -> Option<Vec<u32>> {
    let mut euid = None;
    let mut egid = None;
    let mut groups = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key {
            "Uid" => euid = Some(second_field(value)?),
            "Gid" => egid = Some(second_field(value)?),
            "Groups" => {
                let mut list = Vec::new();
                for g in value.split_whitespace() {
                    if list.len() == MAX_GROUPS {
                        return None;
                    }
                    list.push(g.parse::<u32>().ok()?);
                }
                groups = Some(list);
            }
            _ => {}
        }
    }
    (euid? == uid && egid? == gid).then_some(groups?)
}

fn second_field(value: &str) -> Option<u32> {
    value.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tpkcs11-tool\nUmask:\t0022\nState:\tS (sleeping)\n\
        Tgid:\t4242\nPid:\t4242\nUid:\t1000\t1001\t1001\t1001\nGid:\t100\t101\t101\t101\n\
        FDSize:\t64\nGroups:\t4 24 995 \nNStgid:\t4242\n";

    #[test]
    fn groups_when_the_effective_ids_match() {
        assert_eq!(
            groups_from_status(STATUS, 1001, 101),
            Some(vec![4, 24, 995])
        );
    }

    #[test]
    fn nothing_when_the_process_is_someone_else() {
        // The real ids (1000, 100) are not what SO_PEERCRED reports.
        assert_eq!(groups_from_status(STATUS, 1000, 100), None);
        assert_eq!(groups_from_status(STATUS, 1001, 100), None);
        assert_eq!(groups_from_status(STATUS, 0, 0), None);
    }

    #[test]
    fn empty_and_malformed() {
        let none = "Uid:\t5\t5\t5\t5\nGid:\t6\t6\t6\t6\nGroups:\t\n";
        assert_eq!(groups_from_status(none, 5, 6), Some(vec![]));
        for bad in [
            "Uid:\t5\t5\t5\t5\nGid:\t6\t6\t6\t6\n",
            "Uid:\t5\nGid:\t6\t6\t6\t6\nGroups:\t1\n",
            "Uid:\t5\t5\t5\t5\nGid:\t6\t6\t6\t6\nGroups:\t1 x\n",
            "Uid:\t5\t5\t5\t5\nGid:\t6\t6\t6\t6\nGroups:\t-1\n",
            "Gid:\t6\t6\t6\t6\nGroups:\t1\n",
            "",
        ] {
            assert_eq!(groups_from_status(bad, 5, 6), None, "{bad:?}");
        }
    }

    #[test]
    fn identifies_this_process_over_a_socket_pair() {
        let (a, _b) = UnixStream::pair().unwrap();
        let p = identify(&a).unwrap();
        assert_eq!(p.uid, rustix::process::geteuid().as_raw());
        assert_eq!(p.gid, rustix::process::getegid().as_raw());
        assert_eq!(p.pid, std::process::id());
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        assert_eq!(Some(p.groups), groups_from_status(&status, p.uid, p.gid));
    }
}
