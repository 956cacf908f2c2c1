//! One PKCS#11 application: its sessions, object handles and login state, and the `Api`
//! implementation that the C ABI layer and the daemon call.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};

use arc_swap::ArcSwap;
use cryptoki_sys::*;
use zeroize::Zeroizing;

use crate::api::{Api, ObjectHandle, SessionHandle};
use crate::engine::Shared;
use crate::engine::peer::Peer;
use crate::engine::session::Session;
use crate::engine::token::Token;
use crate::error::{Code, Result};
use crate::mechanism::registry;
use crate::object::Object;
use crate::object::rules::Actor;
use crate::store::{MasterKey, Who};
use crate::types::*;

/// Most sessions one application may hold open (ABI-04: bounded resources).
const MAX_SESSIONS: usize = 4096;

/// Who is logged in to one token, and the master key that login unlocked.
#[derive(Clone)]
pub(crate) struct Login {
    pub who: Who,
    pub mk: Arc<MasterKey>,
}

/// Hasher for maps keyed by handles. Handles are small integers this engine hands out itself
/// (callers only look them up), so a multiplicative hash is enough, and it is far cheaper than
/// SipHash on a path every call takes.
#[derive(Default, Clone, Copy)]
pub(crate) struct HandleHasher(u64);

impl std::hash::Hasher for HandleHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A map keyed by session or object handle.
pub(crate) type HandleMap<V> = HashMap<CK_ULONG, V, std::hash::BuildHasherDefault<HandleHasher>>;

/// What a handle refers to.
#[derive(Clone)]
pub(crate) enum ObjRef {
    Token {
        slot: CK_SLOT_ID,
        uid: String,
    },
    Session {
        slot: CK_SLOT_ID,
        owner: SessionHandle,
        object: Arc<Object>,
    },
}

#[derive(Default)]
pub(crate) struct Handles {
    next: ObjectHandle,
    pub map: HandleMap<ObjRef>,
    pub token: HashMap<(CK_SLOT_ID, String), ObjectHandle>,
    /// Handles of session objects, so a find need not walk every token handle.
    pub session: std::collections::BTreeSet<ObjectHandle>,
}

impl Handles {
    pub fn alloc(&mut self, r: ObjRef) -> ObjectHandle {
        self.next += 1;
        let h = self.next;
        match &r {
            ObjRef::Token { slot, uid } => {
                self.token.insert((*slot, uid.clone()), h);
            }
            ObjRef::Session { .. } => {
                self.session.insert(h);
            }
        }
        self.map.insert(h, r);
        h
    }

    /// The handle of a token object, allocated on first sight so it stays stable.
    pub fn of_token(&mut self, slot: CK_SLOT_ID, uid: &str) -> ObjectHandle {
        match self.token.get(&(slot, uid.to_string())) {
            Some(h) => *h,
            None => self.alloc(ObjRef::Token {
                slot,
                uid: uid.to_string(),
            }),
        }
    }

    pub fn remove(&mut self, h: ObjectHandle) {
        if let Some(ObjRef::Token { slot, uid }) = self.map.remove(&h) {
            self.token.remove(&(slot, uid));
        }
        self.session.remove(&h);
    }
}

/// One PKCS#11 application.
pub struct Application {
    pub(crate) shared: Arc<Shared>,
    /// Sessions spread over shards by handle, so threads working in different sessions take
    /// different locks (one shared lock costs a cache-line transfer per call and thread).
    sessions: [SessionShard; SESSION_SHARDS],
    /// Serialises opening sessions (the handle counter and the MAX_SESSIONS check).
    next_session: Mutex<SessionHandle>,
    pub(crate) handles: RwLock<Handles>,
    /// Read on nearly every call, written at login and logout: readers through `arc_swap`
    /// write nothing shared; writers copy the small map under `logins_write`.
    logins: ArcSwap<HashMap<CK_SLOT_ID, Login>>,
    logins_write: Mutex<()>,
    /// The daemon client this application serves; `None` in embedded mode.
    peer: Option<Peer>,
}

/// Shards of an application's session table.
const SESSION_SHARDS: usize = 16;

/// One shard, alone on its cache lines.
#[repr(align(128))]
#[derive(Default)]
struct SessionShard(RwLock<HandleMap<Arc<Mutex<Session>>>>);

/// A random starting point for an application's handles: a multiple of 64 below 2^30, so
/// handles stay positive in a 32-bit CK_ULONG with room for a billion more.
fn handle_base() -> CK_ULONG {
    let mut r = [0u8; 4];
    if keyward_ossl::rand::fill(&mut r).is_err() {
        return 0;
    }
    CK_ULONG::from(u32::from_le_bytes(r) % (1 << 24)) * 64
}

pub(crate) fn poisoned() -> crate::Error {
    Code::GeneralError.err("internal lock poisoned")
}

impl Application {
    pub(crate) fn new(shared: Arc<Shared>, peer: Option<Peer>) -> Application {
        // A daemon client that reconnects gets a new application; handles that start at a
        // random point make its stale handles fail (CKR_*_HANDLE_INVALID) instead of naming
        // the new application's sessions and objects.
        let base = if peer.is_some() { handle_base() } else { 0 };
        Application {
            peer,
            shared,
            sessions: Default::default(),
            next_session: Mutex::new(base),
            handles: RwLock::new(Handles {
                next: base,
                ..Handles::default()
            }),
            logins: ArcSwap::from_pointee(HashMap::new()),
            logins_write: Mutex::new(()),
        }
    }

    /// The daemon client this application serves (`None`: embedded mode).
    pub fn peer(&self) -> Option<&Peer> {
        self.peer.as_ref()
    }

    fn shard(&self, h: SessionHandle) -> &RwLock<HandleMap<Arc<Mutex<Session>>>> {
        // Handles are consecutive: neighbouring sessions land in different shards.
        &self.sessions[(h as usize) % SESSION_SHARDS].0
    }

    /// Every session handle of this application.
    fn session_handles(&self) -> Result<Vec<SessionHandle>> {
        let mut v = Vec::new();
        for shard in &self.sessions {
            v.extend(shard.0.read().map_err(|_| poisoned())?.keys().copied());
        }
        Ok(v)
    }

    /// Change this application's logins: copy, edit, publish.
    fn edit_logins<R>(&self, f: impl FnOnce(&mut HashMap<CK_SLOT_ID, Login>) -> R) -> Result<R> {
        let _w = self.logins_write.lock().map_err(|_| poisoned())?;
        let mut next = HashMap::clone(&self.logins.load());
        let r = f(&mut next);
        self.logins.store(Arc::new(next));
        Ok(r)
    }

    /// The login to `slot`, if any.
    pub(crate) fn login_of(&self, slot: CK_SLOT_ID) -> Option<Login> {
        self.logins.load().get(&slot).cloned()
    }

    pub(crate) fn session(&self, h: SessionHandle) -> Result<Arc<Mutex<Session>>> {
        self.shard(h)
            .read()
            .map_err(|_| poisoned())?
            .get(&h)
            .cloned()
            .ok_or_else(|| Code::SessionHandleInvalid.err(format!("no session {h}")))
    }

    /// Who is logged in to `slot` in this application.
    pub(crate) fn who(&self, slot: CK_SLOT_ID) -> Result<Option<Who>> {
        Ok(self.logins.load().get(&slot).map(|l| l.who))
    }

    pub(crate) fn actor(&self, slot: CK_SLOT_ID) -> Result<Actor> {
        let who = self.who(slot)?;
        Ok(Actor {
            so: who == Some(Who::So),
            user: who == Some(Who::User),
        })
    }

    /// The master key of this application's login to `slot`, if any.
    pub(crate) fn mk(&self, slot: CK_SLOT_ID) -> Result<Option<Arc<MasterKey>>> {
        Ok(self.logins.load().get(&slot).map(|l| l.mk.clone()))
    }

    /// The token in `slot`; a token (or the free slot) this application's peer may not
    /// see is reported exactly as a missing slot.
    fn token(&self, slot: CK_SLOT_ID) -> Result<Arc<Token>> {
        let mut found = self.shared.token(slot);
        if found.is_none() {
            self.shared.rescan()?;
            found = self.shared.token(slot);
        }
        if let Some(t) = found {
            self.check_visible(slot, &t)?;
            return Ok(t);
        }
        if slot == self.shared.free_slot()? {
            if !self.may_create_tokens() {
                return Err(self.hidden_slot(slot, "<free slot>"));
            }
            Err(Code::TokenNotRecognized
                .err("the token in this slot is not initialised; use C_InitToken"))
        } else {
            Err(Code::SlotIdInvalid.err(format!("no slot {slot}")))
        }
    }

    fn check_slot(&self, slot: CK_SLOT_ID) -> Result<Option<Arc<Token>>> {
        match self.token(slot) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.code() == Code::TokenNotRecognized => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn check_pin_len(&self, pin: &[u8]) -> Result<()> {
        let c = &self.shared.config;
        if pin.len() < c.min_pin_len || pin.len() > c.max_pin_len {
            return Err(Code::PinLenRange.err(format!(
                "PIN must be {} to {} bytes long",
                c.min_pin_len, c.max_pin_len
            )));
        }
        Ok(())
    }

    fn sessions_of(&self, slot: CK_SLOT_ID) -> Result<Vec<(SessionHandle, Arc<Mutex<Session>>)>> {
        let mut v = Vec::new();
        for shard in &self.sessions {
            let all = shard.0.read().map_err(|_| poisoned())?;
            for (h, s) in all.iter() {
                if s.lock().map_err(|_| poisoned())?.slot == slot {
                    v.push((*h, s.clone()));
                }
            }
        }
        Ok(v)
    }

    /// End this application's login to `slot`: private handles become invalid for good,
    /// private session objects are destroyed, and active operations end.
    fn end_login(&self, slot: CK_SLOT_ID) -> Result<()> {
        let login = self.edit_logins(|l| l.remove(&slot))?;
        let Some(login) = login else { return Ok(()) };
        {
            let mut handles = self.handles.write().map_err(|_| poisoned())?;
            let token = self.shared.token(slot);
            let stale: Vec<ObjectHandle> = handles
                .map
                .iter()
                .filter(|(_, r)| match r {
                    ObjRef::Session {
                        slot: s, object, ..
                    } => *s == slot && object.flag(CKA_PRIVATE, false),
                    ObjRef::Token { slot: s, uid } => {
                        *s == slot
                            && token
                                .as_ref()
                                .and_then(|t| t.get(uid))
                                .is_none_or(|e| e.private)
                    }
                })
                .map(|(h, _)| *h)
                .collect();
            for h in stale {
                handles.remove(h);
            }
        }
        for (_, s) in self.sessions_of(slot)? {
            s.lock().map_err(|_| poisoned())?.cancel(!0);
        }
        if login.who == Who::User
            && let Some(t) = self.shared.token(slot)
        {
            t.user_logout()?;
        }
        Ok(())
    }

    fn drop_session(&self, h: SessionHandle, s: &Session) -> Result<()> {
        s.token.sessions.fetch_sub(1, Ordering::SeqCst);
        if s.rw {
            s.token.rw_sessions.fetch_sub(1, Ordering::SeqCst);
        }
        let mut handles = self.handles.write().map_err(|_| poisoned())?;
        let owned: Vec<ObjectHandle> = handles
            .map
            .iter()
            .filter(|(_, r)| matches!(r, ObjRef::Session { owner, .. } if *owner == h))
            .map(|(oh, _)| *oh)
            .collect();
        for oh in owned {
            handles.remove(oh);
        }
        Ok(())
    }

    fn token_info_of(&self, slot: CK_SLOT_ID, token: Option<&Token>) -> Result<TokenInfo> {
        let c = &self.shared.config;
        let to_ulong = |n: usize| CK_ULONG::try_from(n).unwrap_or(CK_ULONG::MAX);
        let mut info = TokenInfo {
            label: String::new(),
            manufacturer: "Keyward".into(),
            model: "Keyward token".into(),
            serial: String::new(),
            flags: CKF_RNG | CKF_LOGIN_REQUIRED,
            max_session_count: CK_EFFECTIVELY_INFINITE,
            session_count: 0,
            max_rw_session_count: CK_EFFECTIVELY_INFINITE,
            rw_session_count: 0,
            max_pin_len: to_ulong(c.max_pin_len),
            min_pin_len: to_ulong(c.min_pin_len),
            total_public_memory: CK_UNAVAILABLE_INFORMATION,
            free_public_memory: CK_UNAVAILABLE_INFORMATION,
            total_private_memory: CK_UNAVAILABLE_INFORMATION,
            free_private_memory: CK_UNAVAILABLE_INFORMATION,
            hardware_version: (0, 0),
            firmware_version: version(),
            utc_time: String::new(),
        };
        let _ = slot;
        let Some(t) = token else { return Ok(info) };
        let r = t.store.record()?;
        info.label = r.label;
        info.serial = r.serial;
        info.session_count = to_ulong(t.sessions.load(Ordering::SeqCst));
        info.rw_session_count = to_ulong(t.rw_sessions.load(Ordering::SeqCst));
        info.flags |= CKF_TOKEN_INITIALIZED | CKF_DUAL_CRYPTO_OPERATIONS;
        if r.user_pin_initialized {
            info.flags |= CKF_USER_PIN_INITIALIZED;
        }
        // A client that may log in without a PIN is told so the way PKCS#11 applications
        // understand (pkcs11-tool, p11-kit then call C_Login with no PIN).
        if r.identity_wrap
            && let Some(p) = self.peer()
            && crate::engine::peer::rights(c, p, &info.label).pinless
        {
            info.flags |= CKF_PROTECTED_AUTHENTICATION_PATH;
        }
        info.flags |= counter_flags(
            r.user_failures,
            r.retry_limit,
            [
                CKF_USER_PIN_COUNT_LOW,
                CKF_USER_PIN_FINAL_TRY,
                CKF_USER_PIN_LOCKED,
            ],
        );
        info.flags |= counter_flags(
            r.so_failures,
            r.retry_limit,
            [
                CKF_SO_PIN_COUNT_LOW,
                CKF_SO_PIN_FINAL_TRY,
                CKF_SO_PIN_LOCKED,
            ],
        );
        Ok(info)
    }

    pub(crate) fn token_of(
        &self,
        session: SessionHandle,
    ) -> Result<(Arc<Mutex<Session>>, Arc<Token>, CK_SLOT_ID)> {
        let s = self.session(session)?;
        let (token, slot) = {
            let g = s.lock().map_err(|_| poisoned())?;
            (g.token.clone(), g.slot)
        };
        Ok((s, token, slot))
    }
}

fn counter_flags(failures: u32, limit: u32, [low, final_try, locked]: [CK_FLAGS; 3]) -> CK_FLAGS {
    if failures >= limit {
        locked
    } else if failures + 1 == limit {
        final_try | low
    } else if failures > 0 {
        low
    } else {
        0
    }
}

fn version() -> (u8, u8) {
    let major = env!("CARGO_PKG_VERSION_MAJOR").parse().unwrap_or(0);
    let minor = env!("CARGO_PKG_VERSION_MINOR").parse().unwrap_or(0);
    (major, minor)
}

fn session_state(rw: bool, who: Option<Who>) -> CK_STATE {
    match (rw, who) {
        (false, None) => CKS_RO_PUBLIC_SESSION,
        (false, Some(_)) => CKS_RO_USER_FUNCTIONS,
        (true, None) => CKS_RW_PUBLIC_SESSION,
        (true, Some(Who::User)) => CKS_RW_USER_FUNCTIONS,
        (true, Some(Who::So)) => CKS_RW_SO_FUNCTIONS,
    }
}

fn label_text(label: &[u8; 32]) -> Result<String> {
    let s = std::str::from_utf8(label)
        .map_err(|_| Code::ArgumentsBad.err("token label is not UTF-8"))?;
    Ok(s.trim_end_matches([' ', '\0']).to_string())
}

impl Application {
    fn login_impl(&self, session: SessionHandle, user: CK_USER_TYPE, pin: &[u8]) -> Result<()> {
        let (s, token, slot) = self.token_of(session)?;
        let cfg_kdf = self.shared.config.kdf;
        if user == CKU_CONTEXT_SPECIFIC {
            if self.who(slot)? != Some(Who::User) {
                return Err(
                    Code::UserNotLoggedIn.err("context-specific login needs a user login first")
                );
            }
            {
                let g = s.lock().map_err(|_| poisoned())?;
                let needs = [
                    g.encrypt.as_ref().map(|a| a.auth),
                    g.decrypt.as_ref().map(|a| a.auth),
                    g.sign.as_ref().map(|a| a.auth),
                    g.verify.as_ref().map(|a| a.auth),
                ]
                .into_iter()
                .flatten()
                .any(|a| a == crate::engine::session::ContextAuth::Needed);
                if !needs {
                    return Err(Code::OperationNotInitialized
                        .err("no operation waits for a context-specific login"));
                }
            }
            if pin.is_empty() && self.rights_to(&token)?.pinless {
                // The key asks for the user PIN at every use; an identity is no PIN. Not
                // counted, so a client that logged in without a PIN cannot lock the PIN.
                return Err(Code::PinIncorrect.err(
                    "a key that needs a context-specific login needs the user PIN, also after \
                     a login without a PIN",
                ));
            }
            match token.store.login(Who::User, pin, &cfg_kdf) {
                Ok(_) => {
                    s.lock().map_err(|_| poisoned())?.authorise_context();
                    Ok(())
                }
                Err(e) => {
                    if e.code() == Code::PinLocked {
                        self.end_login(slot)?;
                    }
                    Err(e)
                }
            }
        } else {
            let who = match user {
                CKU_SO => Who::So,
                CKU_USER => Who::User,
                _ => {
                    return Err(Code::UserTypeInvalid.err(format!(
                        "user type {user} is not CKU_SO, CKU_USER or CKU_CONTEXT_SPECIFIC"
                    )));
                }
            };
            let rights = self.rights_to(&token)?;
            if !rights.may(who) {
                let action = if who == Who::So {
                    "C_Login as SO"
                } else {
                    "C_Login as user"
                };
                return Err(self.refused(Code::UserTypeInvalid, &token, action));
            }
            match self.who(slot)? {
                Some(w) if w == who => {
                    return Err(Code::UserAlreadyLoggedIn.err("already logged in"));
                }
                Some(_) => {
                    return Err(Code::UserAnotherAlreadyLoggedIn.err("the other user is logged in"));
                }
                None => {}
            }
            if who == Who::So {
                for (_, other) in self.sessions_of(slot)? {
                    if !other.lock().map_err(|_| poisoned())?.rw {
                        return Err(Code::SessionReadOnlyExists
                            .err("the SO cannot log in while a read-only session is open"));
                    }
                }
            }
            // Login without a PIN (docs/daemon.md): only a peer with the PIN-less right, only
            // an empty PIN, only a machine-bound token; anything else is a PIN login.
            let by_identity = if who == Who::User && pin.is_empty() && rights.pinless {
                self.identity_login(&token)?
            } else {
                None
            };
            let mk = match by_identity {
                Some(mk) => Arc::new(mk),
                None => {
                    let mk = Arc::new(token.store.login(who, pin, &cfg_kdf)?);
                    if who == Who::User {
                        self.sync_identity_wrap(&token, &mk);
                    }
                    mk
                }
            };
            if who == Who::User {
                token.user_login(mk.clone())?;
            }
            self.edit_logins(|l| l.insert(slot, Login { who, mk }))?;
            Ok(())
        }
    }
}

impl Api for Application {
    fn slot_list(&self, _token_present: bool) -> Result<Vec<CK_SLOT_ID>> {
        self.shared.rescan()?;
        // Every slot holds a token (the free one an uninitialised token), so the flag
        // changes nothing.
        let mut v = Vec::new();
        for (slot, token) in self.shared.tokens()? {
            // A token whose metadata cannot be read now is left out for daemon clients
            // rather than failing the whole list.
            match self.rights_to(&token) {
                Ok(r) if r.visible() => v.push(slot),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(slot, error = %e, "cannot read a token's label; not listing it")
                }
            }
        }
        if self.may_create_tokens() {
            v.push(self.shared.free_slot()?);
        }
        Ok(v)
    }

    fn slot_info(&self, slot: CK_SLOT_ID) -> Result<SlotInfo> {
        self.check_slot(slot)?;
        Ok(SlotInfo {
            description: format!("Keyward slot {slot}"),
            manufacturer: "Keyward".into(),
            flags: CKF_TOKEN_PRESENT,
            hardware_version: (0, 0),
            firmware_version: version(),
        })
    }

    fn token_info(&self, slot: CK_SLOT_ID) -> Result<TokenInfo> {
        let t = self.check_slot(slot)?;
        self.token_info_of(slot, t.as_deref())
    }

    fn mechanism_list(&self, slot: CK_SLOT_ID) -> Result<Vec<CK_MECHANISM_TYPE>> {
        self.check_slot(slot)?;
        Ok(registry().types())
    }

    fn mechanism_info(&self, slot: CK_SLOT_ID, mech: CK_MECHANISM_TYPE) -> Result<MechanismInfo> {
        self.check_slot(slot)?;
        Ok(registry().get(mech)?.info())
    }

    fn init_token(&self, slot: CK_SLOT_ID, so_pin: &[u8], label: &[u8; 32]) -> Result<()> {
        let label = label_text(label)?;
        match self.check_slot(slot)? {
            None => {
                self.check_pin_len(so_pin)?;
                self.shared.create_token(slot, so_pin, &label)
            }
            Some(token) => {
                if !self.rights_to(&token)?.so {
                    return Err(self.refused(Code::TokenWriteProtected, &token, "C_InitToken"));
                }
                if token.session_count() > 0 {
                    return Err(Code::SessionExists
                        .err("close every session with the token before C_InitToken"));
                }
                token
                    .store
                    .reinitialize(so_pin, &label, &self.shared.config.kdf)?;
                token.clear()?;
                let mut handles = self.handles.write().map_err(|_| poisoned())?;
                let stale: Vec<ObjectHandle> = handles
                    .map
                    .iter()
                    .filter(|(_, r)| matches!(r, ObjRef::Token { slot: s, .. } if *s == slot))
                    .map(|(h, _)| *h)
                    .collect();
                for h in stale {
                    handles.remove(h);
                }
                Ok(())
            }
        }
    }

    fn init_pin(&self, session: SessionHandle, pin: &[u8]) -> Result<()> {
        let (_s, token, slot) = self.token_of(session)?;
        let mk = match self.login_of(slot) {
            Some(Login { who: Who::So, mk }) => mk,
            _ => return Err(Code::UserNotLoggedIn.err("C_InitPIN needs a R/W SO session")),
        };
        self.check_pin_len(pin)?;
        token
            .store
            .set_user_pin(&mk, pin, &self.shared.config.kdf)?;
        self.sync_identity_wrap(&token, &mk);
        Ok(())
    }

    fn set_pin(&self, session: SessionHandle, old_pin: &[u8], new_pin: &[u8]) -> Result<()> {
        let (s, token, slot) = self.token_of(session)?;
        if !s.lock().map_err(|_| poisoned())?.rw {
            return Err(Code::SessionReadOnly.err("C_SetPIN needs a R/W session"));
        }
        let who = self.who(slot)?.unwrap_or(Who::User);
        let rights = self.rights_to(&token)?;
        if !rights.may(who) {
            return Err(self.refused(Code::TokenWriteProtected, &token, "C_SetPIN"));
        }
        self.check_pin_len(new_pin)?;
        let kdf = &self.shared.config.kdf;
        let mk = token.store.login(who, old_pin, kdf)?;
        token.store.change_pin(who, &mk, new_pin, kdf)?;
        self.sync_identity_wrap(&token, &mk);
        Ok(())
    }

    fn open_session(&self, slot: CK_SLOT_ID, flags: CK_FLAGS) -> Result<SessionHandle> {
        if flags & CKF_SERIAL_SESSION == 0 {
            return Err(Code::SessionParallelNotSupported.err("CKF_SERIAL_SESSION must be set"));
        }
        let token = self.token(slot)?;
        let rw = flags & CKF_RW_SESSION != 0;
        if !rw && self.who(slot)? == Some(Who::So) {
            return Err(
                Code::SessionReadWriteSoExists.err("the SO is logged in: only R/W sessions")
            );
        }
        // Held until the session is in its shard, so the count below cannot be overtaken.
        let mut n = self.next_session.lock().map_err(|_| poisoned())?;
        let mut open = 0;
        for shard in &self.sessions {
            open += shard.0.read().map_err(|_| poisoned())?.len();
        }
        if open >= MAX_SESSIONS {
            return Err(Code::SessionCount.err(format!("at most {MAX_SESSIONS} sessions")));
        }
        *n += 1;
        let h = *n;
        token.sessions.fetch_add(1, Ordering::SeqCst);
        if rw {
            token.rw_sessions.fetch_add(1, Ordering::SeqCst);
        }
        self.shard(h)
            .write()
            .map_err(|_| poisoned())?
            .insert(h, Arc::new(Mutex::new(Session::new(slot, token, rw))));
        Ok(h)
    }

    fn close_session(&self, session: SessionHandle) -> Result<()> {
        let s = self
            .shard(session)
            .write()
            .map_err(|_| poisoned())?
            .remove(&session)
            .ok_or_else(|| Code::SessionHandleInvalid.err(format!("no session {session}")))?;
        let slot = {
            let g = s.lock().map_err(|_| poisoned())?;
            self.drop_session(session, &g)?;
            g.slot
        };
        if self.sessions_of(slot)?.is_empty() {
            self.end_login(slot)?;
        }
        Ok(())
    }

    fn close_all_sessions(&self, slot: CK_SLOT_ID) -> Result<()> {
        self.token(slot)?;
        for (h, _) in self.sessions_of(slot)? {
            self.close_session(h)?;
        }
        self.end_login(slot)
    }

    fn session_info(&self, session: SessionHandle) -> Result<SessionInfo> {
        let s = self.session(session)?;
        let (slot, rw) = {
            let g = s.lock().map_err(|_| poisoned())?;
            (g.slot, g.rw)
        };
        let who = self.who(slot)?;
        let mut flags = CKF_SERIAL_SESSION;
        if rw {
            flags |= CKF_RW_SESSION;
        }
        Ok(SessionInfo {
            slot,
            state: session_state(rw, who),
            flags,
            device_error: 0,
        })
    }

    fn session_cancel(&self, session: SessionHandle, flags: CK_FLAGS) -> Result<()> {
        self.session(session)?
            .lock()
            .map_err(|_| poisoned())?
            .cancel(flags);
        Ok(())
    }

    fn get_operation_state(&self, session: SessionHandle) -> Result<Vec<u8>> {
        let s = self.session(session)?;
        if s.lock().map_err(|_| poisoned())?.any_operation() {
            Err(Code::StateUnsaveable
                .err("operation state cannot be saved: keys never leave the token"))
        } else {
            Err(Code::OperationNotInitialized.err("no active operation"))
        }
    }

    fn set_operation_state(
        &self,
        session: SessionHandle,
        _state: &[u8],
        _e: ObjectHandle,
        _a: ObjectHandle,
    ) -> Result<()> {
        self.session(session)?;
        Err(Code::SavedStateInvalid.err("this token never produces saved operation states"))
    }

    fn login(&self, session: SessionHandle, user: CK_USER_TYPE, pin: &[u8]) -> Result<()> {
        self.login_impl(session, user, pin)
    }

    fn login_user(
        &self,
        session: SessionHandle,
        user: CK_USER_TYPE,
        pin: &[u8],
        username: &[u8],
    ) -> Result<()> {
        // The token has one user of each type: a username is accepted only when empty.
        if !username.is_empty() {
            return Err(
                Code::ArgumentsBad.err("this token has no named users; pass an empty username")
            );
        }
        self.login_impl(session, user, pin)
    }

    fn logout(&self, session: SessionHandle) -> Result<()> {
        let (_s, _t, slot) = self.token_of(session)?;
        if self.who(slot)?.is_none() {
            return Err(Code::UserNotLoggedIn.err("nobody is logged in"));
        }
        self.end_login(slot)
    }

    fn create_object(
        &self,
        session: SessionHandle,
        template: Vec<Attribute>,
    ) -> Result<ObjectHandle> {
        self.create_object_impl(session, template)
    }
    fn copy_object(
        &self,
        session: SessionHandle,
        object: ObjectHandle,
        template: Vec<Attribute>,
    ) -> Result<ObjectHandle> {
        self.copy_object_impl(session, object, template)
    }
    fn destroy_object(&self, session: SessionHandle, object: ObjectHandle) -> Result<()> {
        self.destroy_object_impl(session, object)
    }
    fn object_size(&self, session: SessionHandle, object: ObjectHandle) -> Result<CK_ULONG> {
        self.object_size_impl(session, object)
    }
    fn get_attribute_value(
        &self,
        session: SessionHandle,
        object: ObjectHandle,
        types: &[CK_ATTRIBUTE_TYPE],
    ) -> Result<Vec<AttrResult>> {
        self.get_attribute_value_impl(session, object, types)
    }
    fn set_attribute_value(
        &self,
        session: SessionHandle,
        object: ObjectHandle,
        template: Vec<Attribute>,
    ) -> Result<()> {
        self.set_attribute_value_impl(session, object, template)
    }
    fn find_objects_init(&self, session: SessionHandle, template: Vec<Attribute>) -> Result<()> {
        self.find_objects_init_impl(session, template)
    }
    fn find_objects(&self, session: SessionHandle, max: usize) -> Result<Vec<ObjectHandle>> {
        let s = self.session(session)?;
        let mut g = s.lock().map_err(|_| poisoned())?;
        let f = g
            .find
            .as_mut()
            .ok_or_else(|| Code::OperationNotInitialized.err("no C_FindObjectsInit"))?;
        let end = f.results.len().min(f.pos.saturating_add(max));
        let out = f.results[f.pos..end].to_vec();
        f.pos = end;
        Ok(out)
    }
    fn find_objects_final(&self, session: SessionHandle) -> Result<()> {
        let s = self.session(session)?;
        let mut g = s.lock().map_err(|_| poisoned())?;
        g.find
            .take()
            .ok_or_else(|| Code::OperationNotInitialized.err("no C_FindObjectsInit"))?;
        Ok(())
    }

    fn encrypt_init(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        key: ObjectHandle,
    ) -> Result<()> {
        self.cipher_init(session, mech, key, true)
    }
    fn encrypt(&self, session: SessionHandle, data: &[u8], cap: OutCap) -> Result<Output> {
        self.cipher_step(
            session,
            true,
            crate::engine::crypto::Step::OneShot(data),
            cap,
        )
    }
    fn encrypt_update(&self, session: SessionHandle, data: &[u8], cap: OutCap) -> Result<Output> {
        self.cipher_step(
            session,
            true,
            crate::engine::crypto::Step::Update(data),
            cap,
        )
    }
    fn encrypt_final(&self, session: SessionHandle, cap: OutCap) -> Result<Output> {
        self.cipher_step(session, true, crate::engine::crypto::Step::Final, cap)
    }
    fn decrypt_init(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        key: ObjectHandle,
    ) -> Result<()> {
        self.cipher_init(session, mech, key, false)
    }
    fn decrypt(&self, session: SessionHandle, data: &[u8], cap: OutCap) -> Result<Output> {
        self.cipher_step(
            session,
            false,
            crate::engine::crypto::Step::OneShot(data),
            cap,
        )
    }
    fn decrypt_update(&self, session: SessionHandle, data: &[u8], cap: OutCap) -> Result<Output> {
        self.cipher_step(
            session,
            false,
            crate::engine::crypto::Step::Update(data),
            cap,
        )
    }
    fn decrypt_final(&self, session: SessionHandle, cap: OutCap) -> Result<Output> {
        self.cipher_step(session, false, crate::engine::crypto::Step::Final, cap)
    }

    fn digest_init(&self, session: SessionHandle, mech: &Mechanism) -> Result<()> {
        self.digest_init_impl(session, mech)
    }
    fn digest(&self, session: SessionHandle, data: &[u8], cap: OutCap) -> Result<Output> {
        self.digest_impl(session, Some(data), cap)
    }
    fn digest_update(&self, session: SessionHandle, data: &[u8]) -> Result<()> {
        self.digest_update_impl(session, data)
    }
    fn digest_key(&self, session: SessionHandle, key: ObjectHandle) -> Result<()> {
        self.digest_key_impl(session, key)
    }
    fn digest_final(&self, session: SessionHandle, cap: OutCap) -> Result<Output> {
        self.digest_impl(session, None, cap)
    }

    fn sign_init(&self, session: SessionHandle, mech: &Mechanism, key: ObjectHandle) -> Result<()> {
        self.sign_init_impl(session, mech, key)
    }
    fn sign(&self, session: SessionHandle, data: &[u8], cap: OutCap) -> Result<Output> {
        self.sign_impl(session, Some(data), cap)
    }
    fn sign_update(&self, session: SessionHandle, data: &[u8]) -> Result<()> {
        self.sign_update_impl(session, data)
    }
    fn sign_final(&self, session: SessionHandle, cap: OutCap) -> Result<Output> {
        self.sign_impl(session, None, cap)
    }
    fn sign_recover_init(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        key: ObjectHandle,
    ) -> Result<()> {
        self.no_mechanism_for(session, mech, Some(key), "signing with message recovery")
    }
    fn sign_recover(&self, session: SessionHandle, _data: &[u8], _cap: OutCap) -> Result<Output> {
        self.session(session)?;
        Err(Code::OperationNotInitialized.err("no C_SignRecoverInit"))
    }
    fn verify_init(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        key: ObjectHandle,
    ) -> Result<()> {
        self.verify_init_impl(session, mech, key)
    }
    fn verify(&self, session: SessionHandle, data: &[u8], signature: &[u8]) -> Result<()> {
        self.verify_impl(session, Some(data), signature)
    }
    fn verify_update(&self, session: SessionHandle, data: &[u8]) -> Result<()> {
        self.verify_update_impl(session, data)
    }
    fn verify_final(&self, session: SessionHandle, signature: &[u8]) -> Result<()> {
        self.verify_impl(session, None, signature)
    }
    fn verify_recover_init(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        key: ObjectHandle,
    ) -> Result<()> {
        self.no_mechanism_for(
            session,
            mech,
            Some(key),
            "verification with message recovery",
        )
    }
    fn verify_recover(
        &self,
        session: SessionHandle,
        _signature: &[u8],
        _cap: OutCap,
    ) -> Result<Output> {
        self.session(session)?;
        Err(Code::OperationNotInitialized.err("no C_VerifyRecoverInit"))
    }

    fn generate_key(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        template: Vec<Attribute>,
    ) -> Result<ObjectHandle> {
        self.generate_key_impl(session, mech, template)
    }
    fn generate_key_pair(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        public_template: Vec<Attribute>,
        private_template: Vec<Attribute>,
    ) -> Result<(ObjectHandle, ObjectHandle)> {
        self.generate_key_pair_impl(session, mech, public_template, private_template)
    }
    fn wrap_key(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        wrapping_key: ObjectHandle,
        key: ObjectHandle,
        cap: OutCap,
    ) -> Result<Output> {
        self.wrap_key_impl(session, mech, wrapping_key, key, cap)
    }
    fn unwrap_key(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        unwrapping_key: ObjectHandle,
        wrapped: &[u8],
        template: Vec<Attribute>,
    ) -> Result<ObjectHandle> {
        self.unwrap_key_impl(session, mech, unwrapping_key, wrapped, template)
    }
    fn derive_key(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        base_key: ObjectHandle,
        template: Vec<Attribute>,
    ) -> Result<ObjectHandle> {
        self.derive_key_impl(session, mech, base_key, template)
    }

    fn seed_random(&self, session: SessionHandle, seed: &[u8]) -> Result<()> {
        self.session(session)?;
        crate::mechanism::random::seed(seed)
    }
    fn generate_random(&self, session: SessionHandle, len: usize) -> Result<Zeroizing<Vec<u8>>> {
        self.session(session)?;
        crate::mechanism::random::generate(len)
    }

    fn message_encrypt_init(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        key: ObjectHandle,
    ) -> Result<()> {
        self.message_init_impl(session, mech, key, true)
    }
    fn encrypt_message(
        &self,
        session: SessionHandle,
        p: &mut MechParams,
        aad: &[u8],
        pt: &[u8],
        cap: OutCap,
    ) -> Result<Output> {
        self.message_one_shot(session, true, p, aad, pt, cap)
    }
    fn encrypt_message_begin(
        &self,
        session: SessionHandle,
        p: &mut MechParams,
        aad: &[u8],
    ) -> Result<()> {
        self.message_begin(session, true, p, aad)
    }
    fn encrypt_message_next(
        &self,
        session: SessionHandle,
        p: &mut MechParams,
        part: &[u8],
        last: bool,
        cap: OutCap,
    ) -> Result<Output> {
        self.message_next(session, true, p, part, last, cap)
    }
    fn message_encrypt_final(&self, session: SessionHandle) -> Result<()> {
        self.message_final_impl(session, true)
    }
    fn message_decrypt_init(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        key: ObjectHandle,
    ) -> Result<()> {
        self.message_init_impl(session, mech, key, false)
    }
    fn decrypt_message(
        &self,
        session: SessionHandle,
        p: &mut MechParams,
        aad: &[u8],
        ct: &[u8],
        cap: OutCap,
    ) -> Result<Output> {
        self.message_one_shot(session, false, p, aad, ct, cap)
    }
    fn decrypt_message_begin(
        &self,
        session: SessionHandle,
        p: &mut MechParams,
        aad: &[u8],
    ) -> Result<()> {
        self.message_begin(session, false, p, aad)
    }
    fn decrypt_message_next(
        &self,
        session: SessionHandle,
        p: &mut MechParams,
        part: &[u8],
        last: bool,
        cap: OutCap,
    ) -> Result<Output> {
        self.message_next(session, false, p, part, last, cap)
    }
    fn message_decrypt_final(&self, session: SessionHandle) -> Result<()> {
        self.message_final_impl(session, false)
    }
    fn message_sign_init(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        key: ObjectHandle,
    ) -> Result<()> {
        self.no_mechanism_for(session, mech, Some(key), "message-based signing")
    }
    fn sign_message(
        &self,
        session: SessionHandle,
        _p: &mut MechParams,
        _data: &[u8],
        _cap: OutCap,
    ) -> Result<Output> {
        self.no_message_op(session)
    }
    fn sign_message_begin(&self, session: SessionHandle, _p: &mut MechParams) -> Result<()> {
        self.no_message_op(session)
    }
    fn sign_message_next(
        &self,
        session: SessionHandle,
        _p: &mut MechParams,
        _data: &[u8],
        _last: bool,
        _cap: OutCap,
    ) -> Result<Output> {
        self.no_message_op(session)
    }
    fn message_sign_final(&self, session: SessionHandle) -> Result<()> {
        self.no_message_op(session)
    }
    fn message_verify_init(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        key: ObjectHandle,
    ) -> Result<()> {
        self.no_mechanism_for(session, mech, Some(key), "message-based verification")
    }
    fn verify_message(
        &self,
        session: SessionHandle,
        _p: &mut MechParams,
        _data: &[u8],
        _sig: &[u8],
    ) -> Result<()> {
        self.no_message_op(session)
    }
    fn verify_message_begin(&self, session: SessionHandle, _p: &mut MechParams) -> Result<()> {
        self.no_message_op(session)
    }
    fn verify_message_next(
        &self,
        session: SessionHandle,
        _p: &mut MechParams,
        _data: &[u8],
        _sig: Option<&[u8]>,
    ) -> Result<()> {
        self.no_message_op(session)
    }
    fn message_verify_final(&self, session: SessionHandle) -> Result<()> {
        self.no_message_op(session)
    }
}

impl Drop for Application {
    /// An application that goes away (C_Finalize, a daemon client disconnecting) closes its
    /// sessions and logs out, so shared token state is released.
    fn drop(&mut self) {
        let slots: Vec<CK_SLOT_ID> = self.logins.load().keys().copied().collect();
        let sessions: Vec<SessionHandle> = self.session_handles().unwrap_or_default();
        for h in sessions {
            let _ = self.close_session(h);
        }
        for slot in slots {
            let _ = self.end_login(slot);
        }
    }
}
