//! Daemon clients: a peer's kernel-verified identity, and what the `[[access]]` rules let it
//! do with each token (see docs/daemon.md). An application without a peer (embedded mode)
//! is not restricted here at all.

use std::collections::BTreeSet;
use std::ffi::CString;

use cryptoki_sys::*;
use nix::unistd::{Gid, Uid, User, geteuid, getgrouplist};

use crate::config::Config;
use crate::engine::app::Application;
use crate::engine::token::Token;
use crate::error::{Code, Error, Result};
use crate::store::Who;

/// The identity of a daemon client as the kernel reports it (SO_PEERCRED: uid, gid and pid
/// as of its connect(2)), with the supplementary groups of that uid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Effective user id.
    pub uid: u32,
    /// Effective (primary) group id.
    pub gid: u32,
    /// Supplementary group ids.
    pub groups: Vec<u32>,
    /// Process id, for logs only: pids are reused, so nothing is authorised on it.
    pub pid: u32,
}

impl Peer {
    /// A peer whose supplementary groups are those the system group database gives the
    /// user `uid` (getgrouplist(3)); a uid without a user entry has only `gid`. SO_PEERCRED
    /// carries no supplementary groups, so the daemon builds its peers with this.
    pub fn with_system_groups(uid: u32, gid: u32, pid: u32) -> Peer {
        let groups = match User::from_uid(Uid::from_raw(uid)) {
            Ok(Some(user)) => match CString::new(user.name.as_bytes()) {
                Ok(name) => match getgrouplist(&name, Gid::from_raw(gid)) {
                    Ok(list) => list.into_iter().map(Gid::as_raw).collect(),
                    Err(e) => {
                        tracing::warn!(uid, error = %e, "cannot read the supplementary groups of a peer; using its primary group only");
                        Vec::new()
                    }
                },
                Err(_) => Vec::new(),
            },
            Ok(None) => Vec::new(),
            Err(e) => {
                tracing::warn!(uid, error = %e, "cannot look up a peer's user entry; using its primary group only");
                Vec::new()
            }
        };
        Peer {
            uid,
            gid,
            groups,
            pid,
        }
    }

    fn in_any(&self, groups: &BTreeSet<u32>) -> bool {
        groups.contains(&self.gid) || self.groups.iter().any(|g| groups.contains(g))
    }

    /// Root, or the uid the daemon runs as: it can read the token files anyway, so it is
    /// given what the `[[access]]` rules do not cover (tokens without a rule, and C_InitToken
    /// of the free slot).
    pub(crate) fn is_admin(&self) -> bool {
        self.uid == 0 || self.uid == geteuid().as_raw()
    }
}

/// What one peer may do with one token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Rights {
    /// See the token, open sessions, log in as the user with the PIN, C_SetPIN as the user.
    pub user: bool,
    /// See the token, open sessions, log in as SO, C_InitToken on it.
    pub so: bool,
    /// Log in as the user by identity instead of a PIN (implies `user`).
    pub pinless: bool,
}

impl Rights {
    /// Embedded mode: the process owns the token files; PINs are still required.
    const EMBEDDED: Rights = Rights {
        user: true,
        so: true,
        pinless: false,
    };

    pub fn visible(self) -> bool {
        self.user || self.so
    }

    /// Whether these rights cover acting as `who` (with its PIN).
    pub fn may(self, who: Who) -> bool {
        match who {
            Who::So => self.so,
            Who::User => self.user,
        }
    }
}

/// The rights of `peer` to the token labelled `label` under `config`'s `[[access]]` rules.
/// A label without a rule is open to administrators only (both roles, never PIN-less).
pub(crate) fn rights(config: &Config, peer: &Peer, label: &str) -> Rights {
    let Some(rule) = config.access.iter().find(|r| r.token == label) else {
        let admin = peer.is_admin();
        return Rights {
            user: admin,
            so: admin,
            pinless: false,
        };
    };
    let user = rule.users.contains(&peer.uid) || peer.in_any(&rule.groups);
    let so = rule.so_users.contains(&peer.uid) || peer.in_any(&rule.so_groups);
    let pinless =
        user && (rule.pinless_users.contains(&peer.uid) || peer.in_any(&rule.pinless_groups));
    Rights { user, so, pinless }
}

/// Whether the `[[access]]` table of `label` names anyone in `login_without_pin`: then the
/// token should carry the identity wrap (if it is machine-bound), else it should not.
pub(crate) fn names_pinless(config: &Config, label: &str) -> bool {
    config
        .access
        .iter()
        .find(|r| r.token == label)
        .is_some_and(|r| !r.pinless_users.is_empty() || !r.pinless_groups.is_empty())
}

/// Whether `peer` may connect at all: it is an administrator or some `[[access]]` rule
/// names it (as user, group member or SO).
pub(crate) fn admits(config: &Config, peer: &Peer) -> bool {
    peer.is_admin()
        || config
            .access
            .iter()
            .any(|r| rights(config, peer, &r.token).visible())
}

impl Application {
    /// This application's rights to `token`.
    pub(crate) fn rights_to(&self, token: &Token) -> Result<Rights> {
        match self.peer() {
            None => Ok(Rights::EMBEDDED),
            Some(peer) => {
                let label = token.store.record()?.label;
                Ok(rights(&self.shared.config, peer, &label))
            }
        }
    }

    /// Whether this application may create a token in the free slot: in daemon mode only
    /// an administrator may.
    pub(crate) fn may_create_tokens(&self) -> bool {
        self.peer().is_none_or(Peer::is_admin)
    }

    /// The error for a slot this peer may not see: exactly what a missing slot gives.
    pub(crate) fn hidden_slot(&self, slot: CK_SLOT_ID, label: &str) -> Error {
        if let Some(p) = self.peer() {
            tracing::warn!(
                uid = p.uid,
                pid = p.pid,
                slot,
                token = label,
                "access refused: the peer may not use this token"
            );
        }
        Code::SlotIdInvalid.err(format!("no slot {slot}"))
    }

    /// `Ok` when this application may see `token`, else the missing-slot error.
    pub(crate) fn check_visible(&self, slot: CK_SLOT_ID, token: &Token) -> Result<()> {
        if self.peer().is_none() {
            return Ok(());
        }
        let label = token.store.record()?.label;
        match self.peer() {
            Some(p) if !rights(&self.shared.config, p, &label).visible() => {
                Err(self.hidden_slot(slot, &label))
            }
            _ => Ok(()),
        }
    }

    /// Log and build the error for an action a peer's rights do not cover.
    pub(crate) fn refused(&self, code: Code, token: &Token, action: &str) -> Error {
        let label = token.store.record().map(|r| r.label).unwrap_or_default();
        if let Some(p) = self.peer() {
            tracing::warn!(
                uid = p.uid,
                pid = p.pid,
                token = %label,
                action,
                "access refused by the [[access]] rules"
            );
        }
        code.err(format!(
            "{action} is not allowed for this client on token {label:?}"
        ))
    }

    /// C_Login(CKU_USER) with an empty PIN from a peer with the PIN-less right: open the
    /// master key from the token's identity wrap (docs/daemon.md). `Ok(None)` when the token
    /// is not machine-bound: it can never be opened without a PIN, and the empty PIN then
    /// takes the PIN path (a wrong PIN, counted). A bound token without the wrap refuses the
    /// login without counting it (an empty PIN is never a token's PIN, so it tells nothing),
    /// so such a client retrying cannot lock the user PIN for everyone else. A locked user
    /// PIN stays locked for this login too (CKR_PIN_LOCKED, until the SO's C_InitPIN).
    pub(crate) fn identity_login(&self, token: &Token) -> Result<Option<crate::store::MasterKey>> {
        let r = token.store.record()?;
        let (uid, pid) = self.peer().map(|p| (p.uid, p.pid)).unwrap_or_default();
        if !r.machine_bound {
            tracing::warn!(uid, pid, token = %r.label,
                "login without a PIN: the token is not machine-bound, so only its user PIN opens it; the empty PIN counts as a wrong PIN");
            return Ok(None);
        }
        match token.store.identity_login() {
            Ok(Some(mk)) => {
                tracing::info!(uid, pid, token = %r.label, "logged in as the user without a PIN");
                Ok(Some(mk))
            }
            Ok(None) => {
                tracing::warn!(uid, pid, token = %r.label,
                    "login without a PIN refused: the token has no identity wrap yet (a user PIN login through the daemon writes it)");
                Err(Code::PinIncorrect.err(format!(
                    "token {:?} cannot be opened without its user PIN yet (no identity \
                     wrap: log in once with the user PIN through the daemon)",
                    r.label
                )))
            }
            Err(e) => {
                tracing::warn!(uid, pid, token = %r.label, error = %e, "login without a PIN refused");
                Err(e)
            }
        }
    }

    /// After a PIN proved the right to `mk` (C_InitPIN, C_SetPIN, a user PIN login) in
    /// daemon mode: give a machine-bound token the identity wrap while its `[[access]]`
    /// table names anyone in `login_without_pin`, and remove the wrap once it names no one.
    /// In embedded mode the tables are ignored and the wrap is left as it is (it wraps the
    /// same master key, which PIN changes keep). A failure is logged: the PIN operation
    /// itself has succeeded.
    pub(crate) fn sync_identity_wrap(&self, token: &Token, mk: &crate::store::MasterKey) {
        if self.peer().is_none() {
            return;
        }
        let done = token.store.record().and_then(|r| {
            if names_pinless(&self.shared.config, &r.label) {
                if r.machine_bound {
                    token.store.set_identity_wrap(mk)?;
                }
                Ok(())
            } else if r.identity_wrap {
                token.store.remove_identity_wrap().map(drop)
            } else {
                Ok(())
            }
        });
        if let Err(e) = done {
            tracing::error!(error = %e,
                "cannot update the identity wrap (login without a PIN) after a PIN operation");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(access: &str) -> Config {
        Config::from_str(&format!("storage_dir = \"/nonexistent\"\n{access}"), None).unwrap()
    }

    fn peer(uid: u32, gid: u32, groups: &[u32]) -> Peer {
        Peer {
            uid,
            gid,
            groups: groups.to_vec(),
            pid: 1,
        }
    }

    const RULE: &str = "[[access]]\ntoken = \"app\"\nusers = [5001]\ngroups = [6001]\n\
                        so_users = [5002]\nso_groups = [6002]\n\
                        login_without_pin = [5003, \"%6003\"]\n";

    #[test]
    fn users_groups_and_so_are_separate_rights() {
        let c = config(RULE);
        let r = |p: &Peer| rights(&c, p, "app");
        assert_eq!(
            r(&peer(5001, 100, &[])),
            Rights {
                user: true,
                so: false,
                pinless: false
            }
        );
        // Supplementary and primary groups both count.
        assert!(r(&peer(4000, 100, &[6001])).user);
        assert!(r(&peer(4000, 6001, &[])).user);
        let so = r(&peer(5002, 100, &[]));
        assert!(so.so && !so.user);
        assert!(r(&peer(4000, 100, &[6002])).so);
        assert!(!r(&peer(4000, 100, &[7000])).visible());
    }

    #[test]
    fn pinless_needs_the_user_right_too() {
        let c = config(RULE);
        // Listed for PIN-less login but not allowed to use the token: nothing.
        assert_eq!(rights(&c, &peer(5003, 100, &[]), "app"), Rights::default());
        assert!(rights(&c, &peer(5003, 100, &[6001]), "app").pinless);
        assert!(rights(&c, &peer(4000, 100, &[6001, 6003]), "app").pinless);
        assert!(!rights(&c, &peer(5001, 100, &[]), "app").pinless);
    }

    #[test]
    fn a_label_without_a_rule_is_for_administrators_only() {
        let c = config(RULE);
        let root = rights(&c, &peer(0, 0, &[]), "other");
        assert!(root.user && root.so && !root.pinless);
        let own = geteuid().as_raw();
        assert!(rights(&c, &peer(own, 0, &[]), "other").so);
        let nobody = if own == 65534 { 65533 } else { 65534 };
        assert!(!rights(&c, &peer(nobody, nobody, &[]), "other").visible());
        // An explicit rule is exhaustive: root is not implied.
        if own != 0 {
            assert!(!rights(&c, &peer(0, 0, &[]), "app").visible());
        }
    }

    #[test]
    fn admits_only_named_peers_and_administrators() {
        let c = config(RULE);
        assert!(admits(&c, &peer(5002, 1, &[])));
        assert!(admits(&c, &peer(4000, 1, &[6001])));
        assert!(admits(&c, &peer(0, 0, &[])));
        let nobody = if geteuid().as_raw() == 65534 {
            65533
        } else {
            65534
        };
        assert!(!admits(&c, &peer(nobody, nobody, &[])));
    }

    #[test]
    fn names_are_resolved_and_unknown_names_refused() {
        let c = config(
            "[[access]]\ntoken = \"t\"\nusers = [\"root\", 7]\ngroups = [\"root\"]\n\
             login_without_pin = [\"root\", \"%root\", \"%12\"]\n",
        );
        let r = &c.access[0];
        assert_eq!(r.users, [0, 7].into());
        assert_eq!(r.groups, [0].into());
        assert_eq!(r.pinless_users, [0].into());
        assert_eq!(r.pinless_groups, [0, 12].into());
        for (text, needle) in [
            ("users = [\"no-such-user-kw\"]", "no-such-user-kw"),
            ("so_groups = [\"no-such-group-kw\"]", "no-such-group-kw"),
            (
                "login_without_pin = [\"%no-such-group-kw\"]",
                "no-such-group-kw",
            ),
            ("login_without_pin = [\"%\"]", "\"%\""),
            ("users = [-1]", "-1"),
            ("users = [4294967295]", "4294967295"),
            ("users = [\"\"]", "name"),
            ("sers = [1]", "sers"),
        ] {
            let e = Config::from_str(&format!("[[access]]\ntoken = \"t\"\n{text}\n"), None)
                .unwrap_err();
            assert_eq!(e.code(), Code::GeneralError);
            assert!(e.detail().contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn labels_are_checked() {
        for bad in ["\"\"", "\"t \"", &format!("{:?}", "x".repeat(33))] {
            assert!(Config::from_str(&format!("[[access]]\ntoken = {bad}\n"), None).is_err());
        }
        let e = Config::from_str(
            "[[access]]\ntoken = \"t\"\n[[access]]\ntoken = \"t\"\n",
            None,
        )
        .unwrap_err();
        assert!(e.detail().contains("twice"), "{e}");
        assert!(Config::from_str("[[access]]\nusers = [1]\n", None).is_err());
    }

    mod engine {
        use cryptoki_sys::*;

        use super::peer;
        use crate::api::Api;
        use crate::config::Config;
        use crate::engine::{Engine, Peer};
        use crate::error::Code;

        const SO: &[u8] = b"so-pin-1234";
        const USER: &[u8] = b"user-pin-1234";
        const RW: CK_FLAGS = CKF_SERIAL_SESSION | CKF_RW_SESSION;

        fn label(s: &str) -> [u8; 32] {
            let mut l = [b' '; 32];
            l[..s.len()].copy_from_slice(s.as_bytes());
            l
        }

        /// Two tokens: "app" with a rule, "other" without; returns their slots.
        fn fixture() -> (tempfile::TempDir, Engine, CK_SLOT_ID, CK_SLOT_ID) {
            let dir = tempfile::tempdir().unwrap();
            let text = format!(
                "storage_dir = {:?}\npin_retry_limit = 3\n[kdf]\nmemory_kib = 256\n\
                 iterations = 1\n{}",
                dir.path().to_str().unwrap(),
                super::RULE
            );
            let engine = Engine::new(Config::from_str(&text, None).unwrap()).unwrap();
            let app = engine.application();
            let mut slots = Vec::new();
            for name in ["app", "other"] {
                let free = *app.slot_list(true).unwrap().last().unwrap();
                app.init_token(free, SO, &label(name)).unwrap();
                let s = app.open_session(free, RW).unwrap();
                app.login(s, CKU_SO, SO).unwrap();
                app.init_pin(s, USER).unwrap();
                app.close_session(s).unwrap();
                slots.push(free);
            }
            (dir, engine, slots[0], slots[1])
        }

        fn code<T: std::fmt::Debug>(r: crate::Result<T>) -> Code {
            r.unwrap_err().code()
        }

        /// A uid that is neither root nor the one running the tests.
        fn outsider() -> u32 {
            if nix::unistd::geteuid().as_raw() == 4242 {
                4243
            } else {
                4242
            }
        }

        fn failures(engine: &Engine, slot: CK_SLOT_ID) -> (u32, u32) {
            let t = engine.shared.token(slot).unwrap();
            let r = t.store.record().unwrap();
            (r.so_failures, r.user_failures)
        }

        #[test]
        fn a_listed_user_sees_and_uses_only_its_token_and_cannot_act_as_so() {
            let (_d, engine, app_slot, _other) = fixture();
            let app = engine.application_for(Some(peer(5001, 100, &[])));
            assert_eq!(app.peer().map(|p| p.uid), Some(5001));
            // Neither the token without a rule nor the free slot is listed.
            assert_eq!(app.slot_list(false).unwrap(), vec![app_slot]);
            assert_eq!(app.token_info(app_slot).unwrap().label, "app");
            let s = app.open_session(app_slot, RW).unwrap();
            assert_eq!(code(app.login(s, CKU_SO, SO)), Code::UserTypeInvalid);
            // Refused before the PIN is looked at: nothing was counted.
            assert_eq!(failures(&engine, app_slot), (0, 0));
            app.login(s, CKU_USER, USER).unwrap();
            app.logout(s).unwrap();
            // Re-initialising is an SO act.
            app.close_session(s).unwrap();
            assert_eq!(
                code(app.init_token(app_slot, SO, &label("app"))),
                Code::TokenWriteProtected
            );
            assert_eq!(failures(&engine, app_slot), (0, 0));
        }

        #[test]
        fn membership_of_a_supplementary_or_primary_group_grants_use() {
            let (_d, engine, app_slot, _other) = fixture();
            for p in [peer(4000, 100, &[99, 6001]), peer(4000, 6001, &[])] {
                let app = engine.application_for(Some(p));
                assert_eq!(app.slot_list(true).unwrap(), vec![app_slot]);
                let s = app.open_session(app_slot, CKF_SERIAL_SESSION).unwrap();
                app.login(s, CKU_USER, USER).unwrap();
            }
            let app = engine.application_for(Some(peer(4000, 100, &[6009])));
            assert!(app.slot_list(true).unwrap().is_empty());
        }

        #[test]
        fn an_so_only_peer_logs_in_as_so_but_not_as_user() {
            let (_d, engine, app_slot, _other) = fixture();
            let app = engine.application_for(Some(peer(5002, 100, &[])));
            assert_eq!(app.slot_list(true).unwrap(), vec![app_slot]);
            let s = app.open_session(app_slot, RW).unwrap();
            assert_eq!(code(app.login(s, CKU_USER, USER)), Code::UserTypeInvalid);
            assert_eq!(failures(&engine, app_slot), (0, 0));
            app.login(s, CKU_SO, SO).unwrap();
            app.init_pin(s, b"new-user-pin").unwrap();
            app.close_session(s).unwrap();
            app.init_token(app_slot, SO, &label("app")).unwrap();
            // Through a group, too.
            let app = engine.application_for(Some(peer(4000, 100, &[6002])));
            let s = app.open_session(app_slot, RW).unwrap();
            app.login(s, CKU_SO, SO).unwrap();
        }

        #[test]
        fn a_refused_peer_finds_no_slot_at_all() {
            let (_d, engine, app_slot, other) = fixture();
            let uid = outsider();
            let app = engine.application_for(Some(peer(uid, uid, &[])));
            assert!(app.slot_list(true).unwrap().is_empty());
            assert!(app.slot_list(false).unwrap().is_empty());
            let free = other + 1;
            for slot in [app_slot, other, free, free + 1] {
                assert_eq!(code(app.slot_info(slot)), Code::SlotIdInvalid);
                assert_eq!(code(app.token_info(slot)), Code::SlotIdInvalid);
                assert_eq!(code(app.mechanism_list(slot)), Code::SlotIdInvalid);
                assert_eq!(
                    code(app.mechanism_info(slot, CKM_SHA256)),
                    Code::SlotIdInvalid
                );
                assert_eq!(code(app.open_session(slot, RW)), Code::SlotIdInvalid);
                assert_eq!(code(app.close_all_sessions(slot)), Code::SlotIdInvalid);
                assert_eq!(
                    code(app.init_token(slot, SO, &label("mine"))),
                    Code::SlotIdInvalid
                );
            }
            // The refusal reads exactly like a slot that does not exist.
            let hidden = app.open_session(app_slot, RW).unwrap_err();
            let missing = app.open_session(free + 1, RW).unwrap_err();
            assert_eq!(
                hidden.detail().replace(&app_slot.to_string(), "N"),
                missing.detail().replace(&(free + 1).to_string(), "N")
            );
            assert_eq!(failures(&engine, app_slot), (0, 0));
            assert!(!engine.admits(&peer(uid, uid, &[])));
            assert!(engine.admits(&peer(5001, 1, &[])));
        }

        #[test]
        fn administrators_keep_tokens_without_a_rule_and_the_free_slot() {
            let (_d, engine, app_slot, other) = fixture();
            let root = engine.application_for(Some(peer(0, 0, &[])));
            let listed = root.slot_list(true).unwrap();
            assert!(listed.contains(&other) && listed.contains(&(other + 1)));
            // The rule for "app" does not name root.
            assert!(!listed.contains(&app_slot));
            let s = root.open_session(other, RW).unwrap();
            root.login(s, CKU_SO, SO).unwrap();
            root.close_session(s).unwrap();
            root.init_token(other + 1, SO, &label("made-by-root"))
                .unwrap();
            // A listed user may not create tokens.
            let user = engine.application_for(Some(peer(5001, 100, &[])));
            assert_eq!(
                code(user.init_token(other + 2, SO, &label("x"))),
                Code::SlotIdInvalid
            );
        }

        #[test]
        fn an_unbound_token_never_logs_in_without_a_pin() {
            let (_d, engine, app_slot, _other) = fixture();
            // Allowed to use the token and named by login_without_pin, but the token is not
            // machine-bound: the empty PIN is a wrong PIN, counted as for everyone.
            let pinless = engine.application_for(Some(peer(5003, 100, &[6001])));
            let s = pinless.open_session(app_slot, CKF_SERIAL_SESSION).unwrap();
            assert_eq!(code(pinless.login(s, CKU_USER, b"")), Code::PinIncorrect);
            assert_eq!(failures(&engine, app_slot), (0, 1));
            assert!(pinless.who(app_slot).unwrap().is_none());
            // The PIN works, resets the count, and writes no identity wrap.
            pinless.login(s, CKU_USER, USER).unwrap();
            assert_eq!(failures(&engine, app_slot), (0, 0));
            let r = engine
                .shared
                .token(app_slot)
                .unwrap()
                .store
                .record()
                .unwrap();
            assert!(!r.machine_bound && !r.identity_wrap);
            let flags = pinless.token_info(app_slot).unwrap().flags;
            assert_eq!(flags & CKF_PROTECTED_AUTHENTICATION_PATH, 0);
            // Any other peer's empty PIN is a wrong PIN, counted as before.
            let plain = engine.application_for(Some(peer(5001, 100, &[])));
            let s = plain.open_session(app_slot, CKF_SERIAL_SESSION).unwrap();
            assert_eq!(code(plain.login(s, CKU_USER, b"")), Code::PinIncorrect);
            assert_eq!(failures(&engine, app_slot), (0, 1));
            // And embedded mode.
            let embedded = engine.application();
            let s = embedded.open_session(app_slot, CKF_SERIAL_SESSION).unwrap();
            assert_eq!(code(embedded.login(s, CKU_USER, b"")), Code::PinIncorrect);
            assert_eq!(failures(&engine, app_slot), (0, 2));
        }

        /// Like [`fixture`], with a machine secret configured (so both tokens are bound)
        /// and `rule` as the access table of "app".
        fn bound_fixture(rule: &str) -> (tempfile::TempDir, Engine, CK_SLOT_ID, CK_SLOT_ID) {
            use std::os::unix::fs::PermissionsExt;
            let dir = tempfile::tempdir().unwrap();
            let key = dir.path().join("machine.key");
            std::fs::write(&key, [0x6bu8; 32]).unwrap();
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
            let engine = Engine::new(bound_config(&dir, rule)).unwrap();
            let app = engine.application();
            let mut slots = Vec::new();
            for name in ["app", "other"] {
                let free = *app.slot_list(true).unwrap().last().unwrap();
                app.init_token(free, SO, &label(name)).unwrap();
                let s = app.open_session(free, RW).unwrap();
                app.login(s, CKU_SO, SO).unwrap();
                app.init_pin(s, USER).unwrap();
                app.close_session(s).unwrap();
                slots.push(free);
            }
            (dir, engine, slots[0], slots[1])
        }

        fn bound_config(dir: &tempfile::TempDir, rule: &str) -> Config {
            let text = format!(
                "storage_dir = {:?}\nmachine_secret = \"file:{}\"\npin_retry_limit = 3\n\
                 [kdf]\nmemory_kib = 256\niterations = 1\n{rule}",
                dir.path().join("tokens").to_str().unwrap(),
                dir.path().join("machine.key").to_str().unwrap(),
            );
            Config::from_str(&text, None).unwrap()
        }

        fn has_wrap(engine: &Engine, slot: CK_SLOT_ID) -> bool {
            let r = engine.shared.token(slot).unwrap().store.record().unwrap();
            assert!(r.machine_bound);
            r.identity_wrap
        }

        fn protected(app: &crate::engine::Application, slot: CK_SLOT_ID) -> bool {
            app.token_info(slot).unwrap().flags & CKF_PROTECTED_AUTHENTICATION_PATH != 0
        }

        fn private_data() -> Vec<crate::types::Attribute> {
            use crate::types::Attribute;
            vec![
                Attribute::ulong(CKA_CLASS, CKO_DATA),
                Attribute::bool(CKA_TOKEN, true),
                Attribute::bool(CKA_PRIVATE, true),
                Attribute::bytes(CKA_LABEL, b"secret-data".to_vec()),
                Attribute::bytes(CKA_VALUE, b"only for the user".to_vec()),
            ]
        }

        #[test]
        fn a_listed_peer_logs_in_without_a_pin_on_a_bound_token() {
            let (_d, engine, app_slot, other) = bound_fixture(super::RULE);
            // C_InitPIN in embedded mode leaves the identity wrap alone: none yet.
            assert!(!has_wrap(&engine, app_slot));
            let pinless = engine.application_for(Some(peer(5003, 100, &[6001])));
            assert!(!protected(&pinless, app_slot));
            let s = pinless.open_session(app_slot, RW).unwrap();
            // No wrap yet: refused, not counted.
            assert_eq!(code(pinless.login(s, CKU_USER, b"")), Code::PinIncorrect);
            assert_eq!(failures(&engine, app_slot), (0, 0));
            // A user PIN login through the daemon writes it.
            pinless.login(s, CKU_USER, USER).unwrap();
            assert!(has_wrap(&engine, app_slot));
            pinless.create_object(s, private_data()).unwrap();
            pinless.logout(s).unwrap();
            assert!(protected(&pinless, app_slot));

            // Another connection of the same identity: in without a PIN, as the user.
            let again = engine.application_for(Some(peer(5003, 100, &[6001])));
            let s = again.open_session(app_slot, CKF_SERIAL_SESSION).unwrap();
            again.login(s, CKU_USER, b"").unwrap();
            assert_eq!(again.session_info(s).unwrap().state, CKS_RO_USER_FUNCTIONS);
            assert_eq!(
                code(again.login(s, CKU_USER, b"")),
                Code::UserAlreadyLoggedIn
            );
            again
                .find_objects_init(
                    s,
                    vec![crate::types::Attribute::bytes(
                        CKA_LABEL,
                        b"secret-data".to_vec(),
                    )],
                )
                .unwrap();
            assert_eq!(again.find_objects(s, 10).unwrap().len(), 1);
            again.find_objects_final(s).unwrap();
            assert_eq!(failures(&engine, app_slot), (0, 0));
            again.logout(s).unwrap();
            assert_eq!(again.session_info(s).unwrap().state, CKS_RO_PUBLIC_SESSION);

            // Not for the SO role, and no other peer's empty PIN: counted as before.
            let plain = engine.application_for(Some(peer(5001, 100, &[])));
            assert!(!protected(&plain, app_slot));
            let s = plain.open_session(app_slot, CKF_SERIAL_SESSION).unwrap();
            assert_eq!(code(plain.login(s, CKU_USER, b"")), Code::PinIncorrect);
            assert_eq!(failures(&engine, app_slot), (0, 1));
            let embedded = engine.application();
            assert!(!protected(&embedded, app_slot));
            let s = embedded.open_session(app_slot, CKF_SERIAL_SESSION).unwrap();
            assert_eq!(code(embedded.login(s, CKU_USER, b"")), Code::PinIncorrect);
            assert_eq!(failures(&engine, app_slot), (0, 2));
            // A token whose table names no one never gets the wrap, whoever logs in.
            let root = engine.application_for(Some(peer(0, 0, &[])));
            let s = root.open_session(other, RW).unwrap();
            root.login(s, CKU_USER, USER).unwrap();
            root.set_pin(s, USER, b"other-user-pin").unwrap();
            assert!(!has_wrap(&engine, other));
            root.logout(s).unwrap();
            assert_eq!(code(root.login(s, CKU_USER, b"")), Code::PinIncorrect);
            assert_eq!(failures(&engine, other), (0, 1));
        }

        #[test]
        fn a_context_specific_login_still_needs_the_pin() {
            use crate::types::{Attribute, Mechanism};
            let (_d, engine, app_slot, _other) = bound_fixture(super::RULE);
            let pinless = engine.application_for(Some(peer(5003, 100, &[6001])));
            let s = pinless.open_session(app_slot, RW).unwrap();
            pinless.login(s, CKU_USER, USER).unwrap();
            pinless.logout(s).unwrap();
            pinless.login(s, CKU_USER, b"").unwrap();
            let p256 = vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
            let (_public, private) = pinless
                .generate_key_pair(
                    s,
                    &Mechanism::new(CKM_EC_KEY_PAIR_GEN),
                    vec![Attribute::bytes(CKA_EC_PARAMS, p256)],
                    vec![
                        Attribute::bool(CKA_SIGN, true),
                        Attribute::bool(CKA_ALWAYS_AUTHENTICATE, true),
                    ],
                )
                .unwrap();
            pinless
                .sign_init(s, &Mechanism::new(CKM_ECDSA), private)
                .unwrap();
            // Refused without counting: a client that logged in without a PIN cannot lock
            // the PIN by answering a context-specific prompt with nothing.
            assert_eq!(
                code(pinless.login(s, CKU_CONTEXT_SPECIFIC, b"")),
                Code::PinIncorrect
            );
            assert_eq!(failures(&engine, app_slot), (0, 0));
            pinless.login(s, CKU_CONTEXT_SPECIFIC, USER).unwrap();
            let sig = pinless.sign(s, &[7u8; 32], Some(128)).unwrap();
            assert!(matches!(sig, crate::types::Output::Data(d) if d.len() == 64));
        }

        #[test]
        fn a_locked_user_pin_blocks_login_without_a_pin_until_the_so_unlocks() {
            let (_d, engine, app_slot, _other) = bound_fixture(super::RULE);
            let pinless = engine.application_for(Some(peer(5003, 100, &[6001])));
            let s = pinless.open_session(app_slot, CKF_SERIAL_SESSION).unwrap();
            pinless.login(s, CKU_USER, USER).unwrap();
            pinless.logout(s).unwrap();
            let plain = engine.application_for(Some(peer(5001, 100, &[])));
            let ps = plain.open_session(app_slot, CKF_SERIAL_SESSION).unwrap();
            for _ in 0..2 {
                assert_eq!(
                    code(plain.login(ps, CKU_USER, b"bad-pin")),
                    Code::PinIncorrect
                );
            }
            // Not locked yet: the identity login works and does not reset the count.
            pinless.login(s, CKU_USER, b"").unwrap();
            pinless.logout(s).unwrap();
            assert_eq!(failures(&engine, app_slot), (0, 2));
            assert_eq!(code(plain.login(ps, CKU_USER, b"bad-pin")), Code::PinLocked);
            assert_eq!(code(pinless.login(s, CKU_USER, b"")), Code::PinLocked);
            assert_eq!(failures(&engine, app_slot), (0, 3));
            // The SO (through the daemon) unlocks with C_InitPIN; the wrap is kept.
            let so = engine.application_for(Some(peer(5002, 100, &[])));
            let ss = so.open_session(app_slot, RW).unwrap();
            so.login(ss, CKU_SO, SO).unwrap();
            so.init_pin(ss, b"new-user-pin").unwrap();
            assert!(has_wrap(&engine, app_slot));
            pinless.login(s, CKU_USER, b"").unwrap();
        }

        #[test]
        fn the_identity_wrap_follows_the_configuration() {
            let (dir, engine, app_slot, _other) = bound_fixture(super::RULE);
            let so = engine.application_for(Some(peer(5002, 100, &[])));
            let ss = so.open_session(app_slot, RW).unwrap();
            so.login(ss, CKU_SO, SO).unwrap();
            // The SO's C_InitPIN through the daemon writes it.
            so.init_pin(ss, USER).unwrap();
            assert!(has_wrap(&engine, app_slot));
            so.close_session(ss).unwrap();

            // The daemon restarted with login_without_pin taken out of the table.
            drop(so);
            let plain_rule = "[[access]]\ntoken = \"app\"\nusers = [5001, 5003]\n\
                              so_users = [5002]\n";
            let engine = Engine::new(bound_config(&dir, plain_rule)).unwrap();
            assert!(has_wrap(&engine, app_slot));
            // The right is gone at once, whatever the wrap: an empty PIN is a wrong PIN.
            let former = engine.application_for(Some(peer(5003, 100, &[6001])));
            assert!(!protected(&former, app_slot));
            let s = former.open_session(app_slot, RW).unwrap();
            assert_eq!(code(former.login(s, CKU_USER, b"")), Code::PinIncorrect);
            assert_eq!(failures(&engine, app_slot), (0, 1));
            // The next user PIN operation removes the wrap.
            former.login(s, CKU_USER, USER).unwrap();
            assert!(!has_wrap(&engine, app_slot));
            former.close_session(s).unwrap();

            // Named again: C_SetPIN by the user writes it, C_InitToken removes it.
            let engine = Engine::new(bound_config(&dir, super::RULE)).unwrap();
            let user = engine.application_for(Some(peer(5001, 100, &[6001])));
            let s = user.open_session(app_slot, RW).unwrap();
            user.set_pin(s, USER, b"changed-pin").unwrap();
            assert!(has_wrap(&engine, app_slot));
            user.close_session(s).unwrap();
            let admin = engine.application();
            admin.init_token(app_slot, SO, &label("app")).unwrap();
            assert!(!has_wrap(&engine, app_slot));
            let pinless = engine.application_for(Some(peer(5003, 100, &[6001])));
            let s = pinless.open_session(app_slot, CKF_SERIAL_SESSION).unwrap();
            assert_eq!(
                code(pinless.login(s, CKU_USER, b"")),
                Code::UserPinNotInitialized
            );
        }

        #[test]
        fn embedded_applications_are_not_restricted() {
            let (_d, engine, app_slot, other) = fixture();
            let app = engine.application_for(None);
            assert!(app.peer().is_none());
            assert_eq!(
                app.slot_list(true).unwrap(),
                vec![app_slot, other, other + 1]
            );
            for slot in [app_slot, other] {
                let s = app.open_session(slot, RW).unwrap();
                app.login(s, CKU_SO, SO).unwrap();
                app.close_session(s).unwrap();
            }
        }

        #[test]
        fn the_peer_is_kept_by_its_application() {
            let (_d, engine, _a, _o) = fixture();
            let p = Peer {
                uid: 5001,
                gid: 100,
                groups: vec![1, 2],
                pid: 77,
            };
            assert_eq!(engine.application_for(Some(p.clone())).peer(), Some(&p));
        }
    }

    #[test]
    fn system_groups_include_the_primary_group() {
        // Root exists everywhere; getgrouplist always lists the group it is given.
        let p = Peer::with_system_groups(0, 0, 42);
        assert!(p.groups.contains(&0), "{p:?}");
        assert_eq!((p.uid, p.gid, p.pid), (0, 0, 42));
        let none = Peer::with_system_groups(3_999_999_999, 3_999_999_999, 1);
        assert!(none.groups.is_empty());
    }
}
