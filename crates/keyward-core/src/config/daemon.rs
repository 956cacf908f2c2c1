//! The `[daemon]` table: how `keywardd` publishes its socket, whom it runs as, and its limits.
//! Names stay names here: only the daemon resolves them, so a client loading the same file
//! never fails on a user that exists only where the daemon runs.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::error::{Code, Result};

/// Default permissions of the daemon's socket: owner and group may connect.
pub const DEFAULT_SOCKET_MODE: u32 = 0o660;
/// Default bound on simultaneous client connections.
pub const DEFAULT_MAX_CLIENTS: usize = 256;
/// Default number of calls one connection may have running at once.
pub const DEFAULT_WORKERS: usize = 4;

/// A user or group as written in the `[daemon]` table: a numeric id or a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameOrId {
    /// A numeric uid or gid.
    Id(u32),
    /// A name to look up in the user or group database.
    Name(String),
}

impl fmt::Display for NameOrId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameOrId::Id(n) => write!(f, "{n}"),
            NameOrId::Name(s) => write!(f, "{s:?}"),
        }
    }
}

/// The daemon's settings, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonConfig {
    /// Permission bits of the socket file (0 to 0o777).
    pub socket_mode: u32,
    /// Group given ownership of the socket file, if any.
    pub socket_group: Option<NameOrId>,
    /// User to switch to after binding the socket (when started as root).
    pub user: Option<NameOrId>,
    /// Clients served at once; further connections are refused and logged.
    pub max_clients: usize,
    /// Calls of one connection that may run at the same time.
    pub workers: usize,
    /// Confine the daemon with a seccomp system-call allow-list after start-up.
    pub seccomp: bool,
}

impl Default for DaemonConfig {
    fn default() -> DaemonConfig {
        DaemonConfig {
            socket_mode: DEFAULT_SOCKET_MODE,
            socket_group: None,
            user: None,
            max_clients: DEFAULT_MAX_CLIENTS,
            workers: DEFAULT_WORKERS,
            seccomp: true,
        }
    }
}

/// The `[daemon]` table as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct DaemonFile {
    socket_mode: Option<Mode>,
    socket_group: Option<Principal>,
    user: Option<Principal>,
    max_clients: Option<usize>,
    workers: Option<usize>,
    seccomp: Option<bool>,
}

/// A mode as an octal string (`"0660"`) or a TOML integer (`0o660`).
struct Mode(u32);

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Mode, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Mode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("permission bits as an octal string such as \"0660\", at most 0777")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Mode, E> {
                u32::try_from(v)
                    .ok()
                    .filter(|m| *m <= 0o777)
                    .map(Mode)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Mode, E> {
                let digits = v.strip_prefix("0o").unwrap_or(v);
                if digits.is_empty() || digits.len() > 4 {
                    return Err(E::invalid_value(de::Unexpected::Str(v), &self));
                }
                u32::from_str_radix(digits, 8)
                    .ok()
                    .filter(|m| *m <= 0o777)
                    .map(Mode)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

/// A user or group: a name, or a numeric id as an integer or a string of digits.
struct Principal(NameOrId);

impl<'de> Deserialize<'de> for Principal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Principal, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Principal;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a user or group name, or a numeric id from 0 to 4294967294")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Principal, E> {
                u32::try_from(v)
                    .ok()
                    .filter(|n| *n != u32::MAX)
                    .map(|n| Principal(NameOrId::Id(n)))
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Principal, E> {
                if v.is_empty() || v.contains(['\0', ':', '\n']) {
                    return Err(E::invalid_value(de::Unexpected::Str(v), &self));
                }
                if v.bytes().all(|b| b.is_ascii_digit()) {
                    return v
                        .parse::<u32>()
                        .ok()
                        .filter(|n| *n != u32::MAX)
                        .map(|n| Principal(NameOrId::Id(n)))
                        .ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self));
                }
                Ok(Principal(NameOrId::Name(v.to_string())))
            }
        }
        d.deserialize_any(V)
    }
}

/// Validate the table, filling in defaults.
pub(super) fn resolve(f: DaemonFile) -> Result<DaemonConfig> {
    let d = DaemonConfig::default();
    let max_clients = f.max_clients.unwrap_or(d.max_clients);
    if max_clients == 0 {
        return Err(Code::GeneralError.err("[daemon] max_clients must be at least 1"));
    }
    let workers = f.workers.unwrap_or(d.workers);
    if !(1..=64).contains(&workers) {
        return Err(Code::GeneralError.err("[daemon] workers must be from 1 to 64"));
    }
    Ok(DaemonConfig {
        socket_mode: f.socket_mode.map_or(d.socket_mode, |m| m.0),
        socket_group: f.socket_group.map(|p| p.0),
        user: f.user.map(|p| p.0),
        max_clients,
        workers,
        seccomp: f.seccomp.unwrap_or(d.seccomp),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DaemonConfig> {
        #[derive(Deserialize)]
        struct Top {
            daemon: DaemonFile,
        }
        let t: Top = toml::from_str(text).map_err(|e| Code::GeneralError.err(e.to_string()))?;
        resolve(t.daemon)
    }

    #[test]
    fn defaults() {
        let c = parse("[daemon]").unwrap();
        assert_eq!(c, DaemonConfig::default());
        assert_eq!(c.socket_mode, 0o660);
        assert_eq!(c.max_clients, 256);
        assert!(c.seccomp);
    }

    #[test]
    fn modes_as_strings_and_integers() {
        assert_eq!(
            parse("[daemon]\nsocket_mode = \"0640\"")
                .unwrap()
                .socket_mode,
            0o640
        );
        assert_eq!(
            parse("[daemon]\nsocket_mode = \"600\"")
                .unwrap()
                .socket_mode,
            0o600
        );
        assert_eq!(
            parse("[daemon]\nsocket_mode = 0o666").unwrap().socket_mode,
            0o666
        );
        for bad in [
            "\"0999\"",
            "\"4777\"",
            "\"\"",
            "\"rw\"",
            "0o1777",
            "-1",
            "\"07777\"",
        ] {
            assert!(
                parse(&format!("[daemon]\nsocket_mode = {bad}")).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn users_and_groups_by_name_or_id() {
        let c = parse("[daemon]\nuser = \"keyward\"\nsocket_group = 995").unwrap();
        assert_eq!(c.user, Some(NameOrId::Name("keyward".into())));
        assert_eq!(c.socket_group, Some(NameOrId::Id(995)));
        let c = parse("[daemon]\nuser = \"65534\"").unwrap();
        assert_eq!(c.user, Some(NameOrId::Id(65534)));
        for bad in ["\"\"", "\"a:b\"", "4294967295", "-3", "\"4294967295\""] {
            assert!(parse(&format!("[daemon]\nuser = {bad}")).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_and_unknown_keys() {
        assert!(parse("[daemon]\nmax_clients = 0").is_err());
        assert!(parse("[daemon]\nworkers = 0").is_err());
        assert!(parse("[daemon]\nworkers = 65").is_err());
        assert!(parse("[daemon]\nmax_client = 3").is_err());
        let c = parse("[daemon]\nmax_clients = 3\nworkers = 2\nseccomp = false").unwrap();
        assert_eq!((c.max_clients, c.workers, c.seccomp), (3, 2, false));
    }
}
