//! The `[[access]]` tables: which Linux users and groups may use a token through the daemon,
//! act as its SO, or log in as its user by their kernel-verified identity instead of a PIN.
//! Names are resolved to ids once, at load time, through the system user and group databases.

use std::collections::BTreeSet;
use std::fmt;

use nix::unistd::{Group, User};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::error::{Code, Result};

/// Longest token label (CK_TOKEN_INFO.label is 32 bytes); a longer one could never match.
const MAX_LABEL: usize = 32;

/// The access rule of one token label, with every name resolved to its numeric id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessRule {
    /// The token label (as set by C_InitToken, without padding) the rule applies to.
    pub token: String,
    /// Users who may use the token: see it, open sessions, log in as the user with the PIN.
    pub users: BTreeSet<u32>,
    /// Groups (primary or supplementary) whose members may use the token.
    pub groups: BTreeSet<u32>,
    /// Users who may act as the token's SO (see it, open sessions, log in as SO,
    /// re-initialise it).
    pub so_users: BTreeSet<u32>,
    /// Groups whose members may act as the token's SO.
    pub so_groups: BTreeSet<u32>,
    /// Users who may log in as the token's user without a PIN (they must also be allowed to
    /// use the token).
    pub pinless_users: BTreeSet<u32>,
    /// Groups whose members may log in as the token's user without a PIN.
    pub pinless_groups: BTreeSet<u32>,
}

/// One `[[access]]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AccessFile {
    token: String,
    #[serde(default)]
    users: Vec<Id>,
    #[serde(default)]
    groups: Vec<Id>,
    #[serde(default)]
    so_users: Vec<Id>,
    #[serde(default)]
    so_groups: Vec<Id>,
    /// User names or uids, and `%group` names or `%gid`s.
    #[serde(default)]
    login_without_pin: Vec<Id>,
}

/// A user or group as written: a numeric id or a name.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Id {
    Num(u32),
    Name(String),
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Id, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a user or group name, or a numeric id from 0 to 4294967294")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Id, E> {
                u32::try_from(v)
                    .ok()
                    .filter(|n| *n != u32::MAX)
                    .map(Id::Num)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Id, E> {
                u32::try_from(v)
                    .ok()
                    .filter(|n| *n != u32::MAX)
                    .map(Id::Num)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Id, E> {
                if v.is_empty() {
                    return Err(E::invalid_value(de::Unexpected::Str(v), &self));
                }
                Ok(Id::Name(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

fn user_id(id: &Id, token: &str, key: &str) -> Result<u32> {
    match id {
        Id::Num(n) => Ok(*n),
        Id::Name(name) => match User::from_name(name) {
            Ok(Some(u)) => Ok(u.uid.as_raw()),
            Ok(None) => Err(Code::GeneralError.err(format!(
                "[[access]] token {token:?}: {key}: unknown user {name:?}"
            ))),
            Err(e) => Err(Code::GeneralError.err(format!(
                "[[access]] token {token:?}: {key}: cannot look up user {name:?}: {e}"
            ))),
        },
    }
}

fn group_id(id: &Id, token: &str, key: &str) -> Result<u32> {
    match id {
        Id::Num(n) => Ok(*n),
        Id::Name(name) => match Group::from_name(name) {
            Ok(Some(g)) => Ok(g.gid.as_raw()),
            Ok(None) => Err(Code::GeneralError.err(format!(
                "[[access]] token {token:?}: {key}: unknown group {name:?}"
            ))),
            Err(e) => Err(Code::GeneralError.err(format!(
                "[[access]] token {token:?}: {key}: cannot look up group {name:?}: {e}"
            ))),
        },
    }
}

fn users(ids: &[Id], token: &str, key: &str) -> Result<BTreeSet<u32>> {
    ids.iter().map(|i| user_id(i, token, key)).collect()
}

fn groups(ids: &[Id], token: &str, key: &str) -> Result<BTreeSet<u32>> {
    ids.iter().map(|i| group_id(i, token, key)).collect()
}

/// A `login_without_pin` entry naming a group: `%name` or `%gid`; `None` for a user entry.
fn group_entry(id: &Id) -> Option<Result<Id>> {
    let Id::Name(n) = id else { return None };
    let g = n.strip_prefix('%')?;
    let bad = || {
        Code::GeneralError.err(format!(
            "login_without_pin: {n:?} is neither a group name nor a gid"
        ))
    };
    Some(if g.is_empty() {
        Err(bad())
    } else if g.bytes().all(|b| b.is_ascii_digit()) {
        g.parse::<u32>()
            .ok()
            .filter(|gid| *gid != u32::MAX)
            .map(Id::Num)
            .ok_or_else(bad)
    } else {
        Ok(Id::Name(g.to_string()))
    })
}

/// Resolve the `[[access]]` tables. Errors name the table and the entry at fault.
pub(super) fn resolve(tables: Vec<AccessFile>) -> Result<Vec<AccessRule>> {
    let mut seen = BTreeSet::new();
    let mut rules = Vec::with_capacity(tables.len());
    for t in tables {
        let token = t.token;
        if token.is_empty() || token.len() > MAX_LABEL || token != token.trim_end_matches(' ') {
            return Err(Code::GeneralError.err(format!(
                "[[access]] token {token:?}: a token label is 1 to {MAX_LABEL} bytes without \
                 trailing spaces"
            )));
        }
        if !seen.insert(token.clone()) {
            return Err(Code::GeneralError.err(format!(
                "[[access]] token {token:?} appears twice; merge the two tables"
            )));
        }
        let mut pinless_users = BTreeSet::new();
        let mut pinless_groups = BTreeSet::new();
        for id in &t.login_without_pin {
            match group_entry(id) {
                Some(g) => {
                    let g = g.map_err(|e| e.context(format!("[[access]] token {token:?}")))?;
                    pinless_groups.insert(group_id(&g, &token, "login_without_pin")?);
                }
                None => {
                    pinless_users.insert(user_id(id, &token, "login_without_pin")?);
                }
            }
        }
        rules.push(AccessRule {
            users: users(&t.users, &token, "users")?,
            groups: groups(&t.groups, &token, "groups")?,
            so_users: users(&t.so_users, &token, "so_users")?,
            so_groups: groups(&t.so_groups, &token, "so_groups")?,
            pinless_users,
            pinless_groups,
            token,
        });
    }
    Ok(rules)
}
