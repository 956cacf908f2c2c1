//! The encrypted per-token store: one SQLite database per token holding its metadata, the
//! PIN-wrapped master key, the persistent failed-login counters and every token object, each
//! record authenticated whole and its secrets sealed (format: docs/storage-format.md).
//!
//! Every call that changes the token is one SQLite transaction; calls that write take the
//! write lock up front (`BEGIN IMMEDIATE`), so concurrent processes serialise instead of
//! failing. Several `TokenStore`s (in one process or many) may share a file.

mod format;
mod kdf;
mod machine;
#[cfg(test)]
mod machine_tests;
mod seal;
mod sqlite;
#[cfg(test)]
mod tests;

use std::fmt;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
#[cfg(test)]
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use cryptoki_sys::*;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use zeroize::Zeroizing;

use crate::error::{Code, Error, Result};
use crate::types::Attrs;
use format::Field;
use kdf::StoredKdf;
use machine::MachineKey;
use seal::{Aad, Purpose};

pub use kdf::{ARGON2_FLOOR, KdfParams, PBKDF2_FLOOR};
pub use machine::{
    CREDENTIALS_ENV, MAX_SECRET_LEN, MIN_SECRET_LEN, MachineSecret, MachineSecretSource,
};

/// Length of the random token id that binds every record to its token.
const TOKEN_ID_LEN: usize = 16;
/// Longest object uid accepted.
const MAX_UID_LEN: usize = 256;
/// Appended to the metadata and PIN-wrap associated data of a machine-bound token, so that
/// the binding itself is authenticated.
const BOUND_MARK: &[u8] = b"machine-bound/1";
/// `pin.who` of the identity wrap: the master key under a key derived from the machine key,
/// for login without a PIN (docs/daemon.md). Only in version-2 stores of bound tokens.
const IDENTITY_WHO: i64 = 2;
/// Length of `token.public_key` when it holds the public token key sealed under the machine
/// key (a bound token); 32 means the key in clear (an unbound token).
const SEALED_PK_LEN: usize = 32 + seal::OVERHEAD;

/// Which PIN: the Security Officer's or the normal user's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Who {
    /// The Security Officer (CKU_SO).
    So,
    /// The normal user (CKU_USER).
    User,
}

impl Who {
    fn code(self) -> i64 {
        match self {
            Who::So => 0,
            Who::User => 1,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Who::So => "SO",
            Who::User => "user",
        }
    }
}

/// The token master key, which seals every private object and every key-material attribute.
/// Zeroized on drop, never printed, never cloned.
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl MasterKey {
    fn key(&self) -> &[u8; 32] {
        &self.0
    }

    fn from_bytes(b: &[u8]) -> Result<MasterKey> {
        let mut k = Zeroizing::new([0u8; 32]);
        if b.len() != k.len() {
            return Err(Code::DeviceError.err("unwrapped master key has the wrong length"));
        }
        k.copy_from_slice(b);
        Ok(MasterKey(k))
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// The token's metadata and counters, read fresh from the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    /// The slot the token was created in.
    pub slot_id: u64,
    /// The token label (set by C_InitToken).
    pub label: String,
    /// The token serial number.
    pub serial: String,
    /// Whether a user PIN is set (C_InitPIN has run since the last C_InitToken).
    pub user_pin_initialized: bool,
    /// Consecutive failed SO logins.
    pub so_failures: u32,
    /// Consecutive failed user logins.
    pub user_failures: u32,
    /// Failed logins after which a PIN is locked.
    pub retry_limit: u32,
    /// Whether the token is bound to a machine secret.
    pub machine_bound: bool,
    /// Whether the token (machine-bound) carries the identity wrap for login without a PIN.
    pub identity_wrap: bool,
}

/// One stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    /// The object's unique id (CKA_UNIQUE_ID).
    pub uid: String,
    /// Changes on every write of this object; never reused within a token.
    pub generation: u64,
    /// Its attributes (without its key material when `complete` is false).
    pub attrs: Attrs,
    /// False when key-material attributes are sealed and no master key was given.
    pub complete: bool,
}

/// A stored object that failed authentication or decoding and is therefore not returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// The uid of the row (as stored; itself unauthenticated).
    pub uid: String,
    /// Why it was refused.
    pub reason: String,
}

struct Inner {
    conn: Connection,
    // `PRAGMA data_version` when `changed()` last looked.
    seen_version: i64,
}

/// One token's store. `Send + Sync`: calls are serialised on one connection per store.
pub struct TokenStore {
    path: PathBuf,
    inner: Mutex<Inner>,
    /// The WAL-index (`-shm`) file, read to notice other connections' commits without a
    /// query; opened on first use.
    shm: OnceLock<Option<File>>,
    /// Signature of the WAL-index header when `seen_version` was last read.
    shm_signature: AtomicU64,
    /// This token's machine key, when a machine secret was given at open.
    machine: Option<MachineKey>,
    // Test hook: stop a login right after its attempt was counted (as a crash would).
    #[cfg(test)]
    stop_after_count: AtomicBool,
}

impl fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The `token` row.
struct Meta {
    token_id: Vec<u8>,
    slot_id: u64,
    label: String,
    serial: String,
    retry_limit: u32,
    pk: Zeroizing<[u8; 32]>,
    mk_check: Vec<u8>,
    next_generation: u64,
    /// Whether PK and every PIN key also depend on the machine key.
    bound: bool,
}

impl Meta {
    fn aad(&self) -> Aad {
        let aad = Aad::new(Purpose::Meta, &self.token_id)
            .u64(self.slot_id)
            .bytes(self.serial.as_bytes())
            .bytes(self.label.as_bytes())
            .u64(u64::from(self.retry_limit))
            .bytes(&self.mk_check);
        if self.bound {
            aad.bytes(BOUND_MARK)
        } else {
            aad
        }
    }

    fn pk_aad(&self) -> Aad {
        Aad::new(Purpose::MachinePk, &self.token_id).bytes(self.serial.as_bytes())
    }

    /// The key that wraps MK for a PIN: the PIN-derived `kek` itself, or for a bound token
    /// its combination with the machine key.
    fn pin_key(
        &self,
        machine: Option<&MachineKey>,
        kek: Zeroizing<[u8; 32]>,
    ) -> Result<Zeroizing<[u8; 32]>> {
        if !self.bound {
            return Ok(kek);
        }
        machine.ok_or_else(not_here).and_then(|m| m.bind_kek(&kek))
    }

    fn check_mk(&self, mk: &MasterKey) -> Result<()> {
        if seal::verify(
            mk.key(),
            &Aad::new(Purpose::MkCheck, &self.token_id),
            &self.mk_check,
        ) {
            Ok(())
        } else {
            Err(Code::DeviceError
                .err("the master key does not belong to this token (was it re-initialised?)"))
        }
    }

    fn wrap_aad(&self, who: Who, kdf_blob: &[u8]) -> Aad {
        let aad = Aad::new(Purpose::PinWrap, &self.token_id)
            .u64(who.code().unsigned_abs())
            .bytes(kdf_blob);
        if self.bound {
            aad.bytes(BOUND_MARK)
        } else {
            aad
        }
    }

    /// The identity wrap exists only for bound tokens, so the mark is always there.
    fn identity_aad(&self) -> Aad {
        Aad::new(Purpose::IdentityWrap, &self.token_id).bytes(BOUND_MARK)
    }

    /// The identity key of this token identity; an unbound token has none.
    fn identity_key(&self, machine: Option<&MachineKey>) -> Result<Zeroizing<[u8; 32]>> {
        if !self.bound {
            return Err(Code::GeneralError
                .err("only a machine-bound token can be opened without a PIN (identity wrap)"));
        }
        machine.ok_or_else(not_here)?.identity_key(&self.token_id)
    }

    fn object_aad(&self, uid: &str, generation: u64) -> Aad {
        Aad::new(Purpose::Object, &self.token_id)
            .bytes(uid.as_bytes())
            .u64(generation)
    }

    fn public_aad(&self, uid: &str, generation: u64, record: &[u8]) -> Aad {
        Aad::new(Purpose::Public, &self.token_id)
            .bytes(uid.as_bytes())
            .u64(generation)
            .bytes(record)
    }

    fn attribute_aad(
        &self,
        uid: &str,
        ty: CK_ATTRIBUTE_TYPE,
        generation: u64,
        skeleton: &[u8],
    ) -> Aad {
        Aad::new(Purpose::Attribute, &self.token_id)
            .bytes(uid.as_bytes())
            .u64(format::wide(ty))
            .u64(generation)
            .bytes(skeleton)
    }
}

fn to_i64(v: u64, what: &str) -> Result<i64> {
    i64::try_from(v).map_err(|_| Code::DeviceError.err(format!("{what} out of range")))
}

fn to_u64(v: i64, what: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| Code::DeviceError.err(format!("stored {what} out of range")))
}

fn to_u32(v: i64, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| Code::DeviceError.err(format!("stored {what} out of range")))
}

/// A bound token without a machine secret, or with another one: it cannot be opened here.
fn not_here() -> Error {
    Code::TokenNotRecognized.err(
        "this token is bound to a machine secret and none is configured (machine_secret); \
         it can only be opened where its secret is",
    )
}

fn wrong_secret() -> Error {
    Code::TokenNotRecognized.err(
        "this token is bound to a machine secret that is not the configured one (or its \
         metadata was modified); it cannot be opened here",
    )
}

/// The serial, read without authentication: it selects the machine key, which then
/// authenticates it (a changed serial gives another key, and nothing opens).
fn read_serial(conn: &Connection) -> Result<String> {
    conn.query_row("SELECT serial FROM token WHERE id = 1", [], |r| r.get(0))
        .optional()?
        .ok_or_else(|| Code::DeviceError.err("token store has no token row"))
}

fn read_meta(conn: &Connection, machine: Option<&MachineKey>) -> Result<Meta> {
    let row = conn
        .query_row(
            "SELECT token_id, slot_id, label, serial, retry_limit, public_key, mk_check, \
             meta_tag, next_generation FROM token WHERE id = 1",
            [],
            |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    Zeroizing::new(r.get::<_, Vec<u8>>(5)?),
                    r.get::<_, Vec<u8>>(6)?,
                    r.get::<_, Vec<u8>>(7)?,
                    r.get::<_, i64>(8)?,
                ))
            },
        )
        .optional()?
        .ok_or_else(|| Code::DeviceError.err("token store has no token row"))?;
    let (token_id, slot_id, label, serial, retry_limit, pk_bytes, mk_check, tag, next) = row;
    let bound = match pk_bytes.len() {
        32 => false,
        SEALED_PK_LEN => true,
        _ => return Err(Code::DeviceError.err("token metadata is malformed")),
    };
    if token_id.len() != TOKEN_ID_LEN {
        return Err(Code::DeviceError.err("token metadata is malformed"));
    }
    if machine.is_some_and(|m| m.serial() != serial) {
        return Err(Code::DeviceError.err("the token's serial changed since it was opened"));
    }
    let mut meta = Meta {
        token_id,
        slot_id: to_u64(slot_id, "slot id")?,
        label,
        serial,
        retry_limit: to_u32(retry_limit, "retry limit")?,
        pk: Zeroizing::new([0u8; 32]),
        mk_check,
        next_generation: to_u64(next, "generation")?,
        bound,
    };
    if bound {
        // The binding is checked here, before any PIN is counted or evaluated: a missing or
        // wrong machine secret makes every call fail the same way, and nothing is written.
        let machine = machine.ok_or_else(not_here)?;
        let pk = seal::open(machine.key(), &meta.pk_aad(), &pk_bytes).map_err(|_| {
            tracing::error!("machine-bound token: the configured machine secret does not open it");
            wrong_secret()
        })?;
        if pk.len() != meta.pk.len() {
            return Err(wrong_secret());
        }
        meta.pk.copy_from_slice(&pk);
    } else {
        meta.pk.copy_from_slice(&pk_bytes);
    }
    if !seal::verify(&meta.pk, &meta.aad(), &tag) || meta.retry_limit == 0 {
        tracing::error!("token metadata failed authentication: the store was modified");
        return Err(Code::DeviceError.err("token metadata failed authentication"));
    }
    Ok(meta)
}

fn write_meta(
    conn: &Connection,
    meta: &Meta,
    machine: Option<&MachineKey>,
    insert: bool,
) -> Result<()> {
    let tag = seal::mac(&meta.pk, &meta.aad())?;
    let pk_column: Zeroizing<Vec<u8>> = if meta.bound {
        let machine = machine.ok_or_else(not_here)?;
        Zeroizing::new(seal::seal(machine.key(), &meta.pk_aad(), &meta.pk[..])?)
    } else {
        Zeroizing::new(meta.pk.to_vec())
    };
    let sql = if insert {
        "INSERT INTO token (id, token_id, slot_id, label, serial, retry_limit, public_key, \
         mk_check, meta_tag, next_generation) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    } else {
        "UPDATE token SET token_id = ?1, slot_id = ?2, label = ?3, serial = ?4, \
         retry_limit = ?5, public_key = ?6, mk_check = ?7, meta_tag = ?8, \
         next_generation = ?9 WHERE id = 1"
    };
    conn.execute(
        sql,
        params![
            meta.token_id,
            to_i64(meta.slot_id, "slot id")?,
            meta.label,
            meta.serial,
            i64::from(meta.retry_limit),
            &pk_column[..],
            meta.mk_check,
            tag,
            to_i64(meta.next_generation, "generation")?,
        ],
    )?;
    Ok(())
}

/// A new token identity: fresh id, master key and public token key.
struct Identity {
    token_id: Vec<u8>,
    mk: MasterKey,
    pk: Zeroizing<[u8; 32]>,
    mk_check: Vec<u8>,
}

fn new_identity() -> Result<Identity> {
    let mut token_id = vec![0u8; TOKEN_ID_LEN];
    keyward_ossl::rand::fill(&mut token_id)?;
    let mk = MasterKey(seal::random_key()?);
    let pk = seal::random_key()?;
    let mk_check = seal::mac(mk.key(), &Aad::new(Purpose::MkCheck, &token_id))?;
    Ok(Identity {
        token_id,
        mk,
        pk,
        mk_check,
    })
}

/// Whether attribute `ty` of an object of class `class` is key material, sealed under the
/// master key even in a public object. Objects without a class are treated as keys.
fn is_key_material(class: Option<CK_ULONG>, ty: CK_ATTRIBUTE_TYPE) -> bool {
    matches!(
        class,
        None | Some(CKO_SECRET_KEY) | Some(CKO_PRIVATE_KEY) | Some(CKO_OTP_KEY)
    ) && matches!(
        ty,
        CKA_VALUE
            | CKA_PRIVATE_EXPONENT
            | CKA_PRIME_1
            | CKA_PRIME_2
            | CKA_EXPONENT_1
            | CKA_EXPONENT_2
            | CKA_COEFFICIENT
            | CKA_SEED
    )
}

/// Whether an object with these attributes is stored whole under the master key.
fn is_private(attrs: &Attrs) -> bool {
    attrs.get_bool(CKA_PRIVATE) == Some(true)
}

fn check_uid(attrs: &Attrs, uid: &str) -> Result<()> {
    match attrs.get_bytes(CKA_UNIQUE_ID) {
        Some(u) if u != uid.as_bytes() => {
            Err(Code::DeviceError.err("record's CKA_UNIQUE_ID does not match its row"))
        }
        _ => Ok(()),
    }
}

/// An object row as stored.
struct Row {
    private: bool,
    record: Vec<u8>,
    tag: Option<Vec<u8>>,
}

/// Build the stored form of an object.
fn seal_object(
    meta: &Meta,
    mk: Option<&MasterKey>,
    uid: &str,
    generation: u64,
    attrs: &Attrs,
) -> Result<Row> {
    let need_login =
        || Code::UserNotLoggedIn.err("storing this object's secrets needs the user's master key");
    if is_private(attrs) {
        let mk = mk.ok_or_else(need_login)?;
        let plain = format::encode_attrs(attrs)?;
        let record = seal::seal(mk.key(), &meta.object_aad(uid, generation), &plain)?;
        return Ok(Row {
            private: true,
            record,
            tag: None,
        });
    }
    let class = attrs.get_ulong(CKA_CLASS);
    let mut fields: Vec<(CK_ATTRIBUTE_TYPE, Field)> = attrs
        .iter()
        .map(|(t, v)| {
            if is_key_material(class, t) {
                (t, Field::Sealed(Vec::new()))
            } else {
                (t, Field::Clear(v.clone()))
            }
        })
        .collect();
    if fields.iter().any(|(_, f)| matches!(f, Field::Sealed(_))) {
        let mk = mk.ok_or_else(need_login)?;
        let skeleton = format::encode_fields(fields.iter().map(|(t, f)| (*t, f)), true)?;
        for (t, f) in fields.iter_mut() {
            if let (Field::Sealed(blob), Some(v)) = (f, attrs.get(*t)) {
                let plain = format::encode_value(v)?;
                *blob = seal::seal(
                    mk.key(),
                    &meta.attribute_aad(uid, *t, generation, &skeleton),
                    &plain,
                )?;
            }
        }
    }
    let record = format::encode_fields(fields.iter().map(|(t, f)| (*t, f)), false)?.to_vec();
    let tag = seal::mac(&meta.pk, &meta.public_aad(uid, generation, &record))?;
    Ok(Row {
        private: false,
        record,
        tag: Some(tag),
    })
}

/// Authenticate and decode a stored row. `Ok(None)`: a private object and no master key.
fn open_object(
    meta: &Meta,
    mk: Option<&MasterKey>,
    uid: &str,
    generation: u64,
    row: &Row,
) -> Result<Option<StoredObject>> {
    if row.private {
        let Some(mk) = mk else { return Ok(None) };
        let plain = seal::open(mk.key(), &meta.object_aad(uid, generation), &row.record)
            .map_err(|e| e.context("private record"))?;
        let attrs = format::decode_attrs(&plain)?;
        if !is_private(&attrs) {
            return Err(Code::DeviceError.err("private record without CKA_PRIVATE=TRUE"));
        }
        check_uid(&attrs, uid)?;
        return Ok(Some(StoredObject {
            uid: uid.to_string(),
            generation,
            attrs,
            complete: true,
        }));
    }
    let tag = row
        .tag
        .as_deref()
        .ok_or_else(|| Code::DeviceError.err("public record without its tag"))?;
    if !seal::verify(
        &meta.pk,
        &meta.public_aad(uid, generation, &row.record),
        tag,
    ) {
        return Err(Code::DeviceError.err("public record failed authentication"));
    }
    let fields = format::decode_fields(&row.record)?;
    let class = fields.iter().find_map(|(t, f)| match f {
        Field::Clear(crate::types::AttrValue::Ulong(c)) if *t == CKA_CLASS => Some(*c),
        _ => None,
    });
    let skeleton = if fields.iter().any(|(_, f)| matches!(f, Field::Sealed(_))) {
        Some(format::encode_fields(
            fields.iter().map(|(t, f)| (*t, f)),
            true,
        )?)
    } else {
        None
    };
    let mut attrs = Attrs::new();
    let mut complete = true;
    for (t, f) in &fields {
        match f {
            Field::Clear(_) if is_key_material(class, *t) => {
                return Err(Code::DeviceError.err("key material stored in clear"));
            }
            Field::Clear(v) => attrs.set(*t, v.clone()),
            Field::Sealed(_) if !is_key_material(class, *t) => {
                return Err(
                    Code::DeviceError.err("sealed value of an attribute that is never sealed")
                );
            }
            Field::Sealed(blob) => match (mk, skeleton.as_deref()) {
                (Some(mk), Some(skel)) => {
                    let plain = seal::open(
                        mk.key(),
                        &meta.attribute_aad(uid, *t, generation, skel),
                        blob,
                    )
                    .map_err(|e| e.context(format!("sealed attribute {t:#x}")))?;
                    attrs.set(*t, format::decode_value(&plain)?);
                }
                _ => complete = false,
            },
        }
    }
    if is_private(&attrs) {
        return Err(Code::DeviceError.err("public record claims CKA_PRIVATE=TRUE"));
    }
    check_uid(&attrs, uid)?;
    Ok(Some(StoredObject {
        uid: uid.to_string(),
        generation,
        attrs,
        complete,
    }))
}

/// Whether a stored row needs the master key to be rewritten (private, or holding sealed
/// key material). Undecodable rows count as needing it.
fn row_needs_mk(row: &Row) -> bool {
    row.private
        || format::decode_fields(&row.record)
            .map(|f| f.iter().any(|(_, f)| matches!(f, Field::Sealed(_))))
            .unwrap_or(true)
}

fn check_uid_arg(uid: &str) -> Result<()> {
    if uid.is_empty() || uid.len() > MAX_UID_LEN {
        return Err(Code::GeneralError.err("object uid empty or too long"));
    }
    Ok(())
}

/// The error for a failed attempt that left `failures` of `limit`.
fn attempt_failed(who: Who, failures: u32, limit: u32) -> Error {
    if failures >= limit {
        tracing::warn!(who = who.name(), "PIN locked after too many failed logins");
        Code::PinLocked.err(format!("the {} PIN is now locked", who.name()))
    } else {
        Code::PinIncorrect.err(format!(
            "wrong {} PIN ({} of {} attempts used)",
            who.name(),
            failures,
            limit
        ))
    }
}

/// A `pin` row as read: failures, KDF block, wrapped master key.
type PinRow = (i64, Vec<u8>, Vec<u8>);

/// What a successful login learned.
struct LoginOutcome {
    mk: MasterKey,
    token_id: Vec<u8>,
    // The wrap now stored for this PIN (after any re-wrap).
    wrapped: Vec<u8>,
}

impl TokenStore {
    /// Create a new token store at `path` (which must not exist), with a fresh master key
    /// wrapped under `so_pin`. The file appears only once complete: it is built under a
    /// temporary name and linked into place. Not machine-bound (see
    /// [`TokenStore::create_bound`]).
    pub fn create(
        path: &Path,
        slot_id: u64,
        label: &str,
        serial: &str,
        so_pin: &[u8],
        kdf: &KdfParams,
        retry_limit: u32,
    ) -> Result<TokenStore> {
        TokenStore::create_bound(path, slot_id, label, serial, so_pin, kdf, retry_limit, None)
    }

    /// Like [`TokenStore::create`]; with `machine`, the token is bound to that machine
    /// secret: its public token key is stored sealed under the token's machine key and every
    /// PIN key is combined with it, so the file opens only where the secret is.
    // The arguments are the token's independent properties; a struct would only rename them.
    #[allow(clippy::too_many_arguments)]
    pub fn create_bound(
        path: &Path,
        slot_id: u64,
        label: &str,
        serial: &str,
        so_pin: &[u8],
        kdf: &KdfParams,
        retry_limit: u32,
        machine: Option<&MachineSecret>,
    ) -> Result<TokenStore> {
        if so_pin.is_empty() {
            return Err(Code::PinLenRange.err("the SO PIN must not be empty"));
        }
        if retry_limit == 0 {
            return Err(Code::ArgumentsBad.err("the PIN retry limit must be at least 1"));
        }
        if std::fs::symlink_metadata(path).is_ok() {
            return Err(Code::GeneralError.err(format!("{} already exists", path.display())));
        }
        let so_kdf = StoredKdf::new(kdf)?;
        let kek = so_kdf.derive(so_pin)?;
        let machine_key = machine.map(|m| m.token_key(serial)).transpose()?;
        sqlite::ensure_dir(path)?;
        let tmp = sqlite::sibling(path, ".creating");
        sqlite::remove_with_companions(&tmp);
        sqlite::create_file(&tmp)?;
        let built = (|| -> Result<()> {
            let mut conn = sqlite::connect(&tmp)?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            sqlite::create_schema(&tx)?;
            let Identity {
                token_id,
                mk,
                pk,
                mk_check,
            } = new_identity()?;
            let meta = Meta {
                token_id,
                slot_id,
                label: label.to_string(),
                serial: serial.to_string(),
                retry_limit,
                pk,
                mk_check,
                next_generation: 1,
                bound: machine_key.is_some(),
            };
            write_meta(&tx, &meta, machine_key.as_ref(), true)?;
            let blob = so_kdf.encode();
            let kek = meta.pin_key(machine_key.as_ref(), kek.clone())?;
            let wrapped = seal::seal(&kek, &meta.wrap_aad(Who::So, &blob), mk.key())?;
            tx.execute(
                "INSERT INTO pin (who, failures, kdf, wrapped) VALUES (?1, 0, ?2, ?3)",
                params![Who::So.code(), blob, wrapped],
            )?;
            tx.commit()?;
            // Closing the only connection checkpoints the WAL into the file and removes it;
            // check, since the file is published alone.
            conn.close().map_err(|(_, e)| Error::from(e))?;
            let wal = sqlite::sibling(&tmp, "-wal");
            if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
                return Err(Code::DeviceError.err("new token store kept a non-empty WAL"));
            }
            Ok(())
        })();
        if let Err(e) = built.and_then(|()| sqlite::publish(&tmp, path)) {
            sqlite::remove_with_companions(&tmp);
            return Err(e);
        }
        tracing::info!(path = %path.display(), slot_id, bound = machine.is_some(),
            "token store created");
        TokenStore::open_bound(path, machine)
    }

    /// Open an existing token store without a machine secret (a machine-bound token then
    /// fails: CKR_TOKEN_NOT_RECOGNIZED). See [`TokenStore::open_bound`].
    pub fn open(path: &Path) -> Result<TokenStore> {
        TokenStore::open_bound(path, None)
    }

    /// Open an existing token store. Fails closed (CKR_DEVICE_ERROR or
    /// CKR_TOKEN_NOT_RECOGNIZED) when the file is accessible to others, is not a Keyward
    /// store, fails SQLite's integrity check, or its metadata fails authentication. A
    /// machine-bound token opens only with its machine secret (else CKR_TOKEN_NOT_RECOGNIZED,
    /// before anything is written). An unbound token opens with or without one and stays
    /// unbound until C_InitToken re-initialises it with a secret given here.
    pub fn open_bound(path: &Path, machine: Option<&MachineSecret>) -> Result<TokenStore> {
        sqlite::check_file(path)?;
        let conn = sqlite::connect(path)?;
        sqlite::check_database(&conn, path)?;
        let machine = match machine {
            Some(m) => Some(m.token_key(&read_serial(&conn)?)?),
            None => None,
        };
        let meta = read_meta(&conn, machine.as_ref())
            .map_err(|e| e.context(format!("token store {}", path.display())))?;
        if machine.is_some() && !meta.bound {
            tracing::warn!(path = %path.display(),
                "token is not bound to the configured machine secret (created without one); \
                 C_InitToken re-initialises it bound");
        }
        let seen_version = sqlite::data_version(&conn)?;
        Ok(TokenStore {
            path: path.to_path_buf(),
            inner: Mutex::new(Inner { conn, seen_version }),
            shm: OnceLock::new(),
            shm_signature: AtomicU64::new(0),
            machine,
            #[cfg(test)]
            stop_after_count: AtomicBool::new(false),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the token is bound to a machine secret (read from the database now).
    pub fn is_machine_bound(&self) -> Result<bool> {
        let g = self.lock()?;
        Ok(read_meta(&g.conn, self.machine.as_ref())?.bound)
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>> {
        self.inner
            .lock()
            .map_err(|_| Code::GeneralError.err("token store lock poisoned"))
    }

    /// The token's metadata and failure counters, read from the database now (so counters
    /// written by other processes are seen).
    pub fn record(&self) -> Result<TokenRecord> {
        let mut g = self.lock()?;
        let tx = g.conn.transaction()?;
        let meta = read_meta(&tx, self.machine.as_ref())?;
        let mut so_failures = None;
        let mut user_failures = None;
        let mut identity_wrap = false;
        {
            let mut stmt = tx.prepare("SELECT who, failures FROM pin")?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let failures = to_u32(r.get(1)?, "failure count")?;
                match r.get::<_, i64>(0)? {
                    0 => so_failures = Some(failures),
                    1 => user_failures = Some(failures),
                    IDENTITY_WHO => identity_wrap = true,
                    _ => return Err(Code::DeviceError.err("token store has an unknown PIN row")),
                }
            }
        }
        tx.finish()?;
        let so_failures =
            so_failures.ok_or_else(|| Code::DeviceError.err("token store has no SO PIN"))?;
        Ok(TokenRecord {
            slot_id: meta.slot_id,
            label: meta.label,
            serial: meta.serial,
            user_pin_initialized: user_failures.is_some(),
            so_failures,
            user_failures: user_failures.unwrap_or(0),
            retry_limit: meta.retry_limit,
            machine_bound: meta.bound,
            identity_wrap: identity_wrap && meta.bound,
        })
    }

    /// Check `pin` and return the master key. The attempt is counted durably *before* the
    /// PIN is evaluated and the count is reset only after success; at the limit the PIN is
    /// not evaluated at all (CKR_PIN_LOCKED). If the count cannot be written the login
    /// fails (CKR_DEVICE_ERROR). Stored KDF parameters weaker than `kdf` are upgraded.
    pub fn login(&self, who: Who, pin: &[u8], kdf: &KdfParams) -> Result<MasterKey> {
        self.login_inner(who, pin, kdf).map(|o| o.mk)
    }

    fn login_inner(&self, who: Who, pin: &[u8], kdf: &KdfParams) -> Result<LoginOutcome> {
        kdf.validate()?;
        // 1. Count the attempt (or refuse it when locked), durably, before anything else.
        let (meta, failures, kdf_blob, wrapped) = {
            let mut g = self.lock()?;
            let tx = g
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let meta = read_meta(&tx, self.machine.as_ref())?;
            let row: Option<(i64, Vec<u8>, Vec<u8>)> = tx
                .query_row(
                    "SELECT failures, kdf, wrapped FROM pin WHERE who = ?1",
                    [who.code()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((failures, kdf_blob, wrapped)) = row else {
                return Err(match who {
                    Who::User => Code::UserPinNotInitialized.err("no user PIN is set"),
                    Who::So => Code::DeviceError.err("token store has no SO PIN"),
                });
            };
            let failures = to_u32(failures, "failure count")?;
            if failures >= meta.retry_limit {
                return Err(Code::PinLocked.err(format!("the {} PIN is locked", who.name())));
            }
            tx.execute(
                "UPDATE pin SET failures = failures + 1 WHERE who = ?1",
                [who.code()],
            )?;
            tx.commit().map_err(|e| {
                tracing::error!(error = %e, "cannot record a login attempt; refusing the login");
                Code::DeviceError.err(format!("cannot record the login attempt: {e}"))
            })?;
            (meta, failures + 1, kdf_blob, wrapped)
        };
        #[cfg(test)]
        if self.stop_after_count.load(Ordering::SeqCst) {
            return Err(Code::GeneralError.err("stopped after counting the attempt (test)"));
        }
        // 2. Evaluate the PIN: the AEAD tag check of the wrapped master key.
        if pin.is_empty() {
            return Err(attempt_failed(who, failures, meta.retry_limit));
        }
        let stored = StoredKdf::decode(&kdf_blob)?;
        let kek = meta.pin_key(self.machine.as_ref(), stored.derive(pin)?)?;
        let mk = match seal::open(&kek, &meta.wrap_aad(who, &kdf_blob), &wrapped) {
            Ok(plain) => MasterKey::from_bytes(&plain)?,
            Err(_) => return Err(attempt_failed(who, failures, meta.retry_limit)),
        };
        meta.check_mk(&mk)?;
        // 3. Success: reset the count, upgrading the wrap if the configuration asks for more.
        let rewrap = if stored.needs_rewrap(kdf) {
            let fresh = StoredKdf::new(kdf)?;
            let kek = meta.pin_key(self.machine.as_ref(), fresh.derive(pin)?)?;
            let blob = fresh.encode();
            let w = seal::seal(&kek, &meta.wrap_aad(who, &blob), mk.key())?;
            Some((blob, w))
        } else {
            None
        };
        let mut g = self.lock()?;
        let tx = g
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = read_meta(&tx, self.machine.as_ref())?;
        if now.token_id != meta.token_id {
            return Err(Code::FunctionFailed.err("the token was re-initialised during login"));
        }
        let current: Option<Vec<u8>> = tx
            .query_row(
                "SELECT wrapped FROM pin WHERE who = ?1",
                [who.code()],
                |r| r.get(0),
            )
            .optional()?;
        let Some(current) = current else {
            return Err(Code::FunctionFailed.err("the PIN was removed during login"));
        };
        let mut upgraded = false;
        let final_wrap = match rewrap {
            // Only replace the wrap we opened; a PIN changed meanwhile stays as it is.
            Some((blob, w)) if current == wrapped => {
                tx.execute(
                    "UPDATE pin SET failures = 0, kdf = ?1, wrapped = ?2 WHERE who = ?3",
                    params![blob, w, who.code()],
                )?;
                upgraded = true;
                w
            }
            _ => {
                tx.execute("UPDATE pin SET failures = 0 WHERE who = ?1", [who.code()])?;
                current
            }
        };
        tx.commit()?;
        if upgraded {
            sqlite::checkpoint_truncate(&g.conn);
            tracing::info!(who = who.name(), params = ?kdf, "PIN key re-wrapped with the configured KDF parameters");
        }
        Ok(LoginOutcome {
            mk,
            token_id: meta.token_id,
            wrapped: final_wrap,
        })
    }

    /// C_InitToken on an existing token: verify the SO PIN (counted), then in one
    /// transaction delete every object and the user PIN, make a new master key, token id
    /// and public token key, wrap the new master key under the SO PIN and set the label;
    /// then truncate the WAL so the old wraps do not survive in it.
    pub fn reinitialize(&self, so_pin: &[u8], label: &str, kdf: &KdfParams) -> Result<()> {
        let old = self.login_inner(Who::So, so_pin, kdf)?;
        let so_kdf = StoredKdf::new(kdf)?;
        let kek = so_kdf.derive(so_pin)?;
        let Identity {
            token_id,
            mk,
            pk,
            mk_check,
        } = new_identity()?;
        let mut g = self.lock()?;
        let tx = g
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let prev = read_meta(&tx, self.machine.as_ref())?;
        let current: Option<Vec<u8>> = tx
            .query_row(
                "SELECT wrapped FROM pin WHERE who = ?1",
                [Who::So.code()],
                |r| r.get(0),
            )
            .optional()?;
        if prev.token_id != old.token_id || current.as_deref() != Some(&old.wrapped[..]) {
            return Err(Code::FunctionFailed
                .err("the token or its SO PIN changed during C_InitToken; try again"));
        }
        tx.execute("DELETE FROM object", [])?;
        tx.execute("DELETE FROM pin", [])?;
        // A new identity is bound whenever a machine secret is configured: this is how an
        // unbound token becomes bound. A bound token cannot get here without its secret.
        let meta = Meta {
            token_id,
            slot_id: prev.slot_id,
            label: label.to_string(),
            serial: prev.serial,
            retry_limit: prev.retry_limit,
            pk,
            mk_check,
            next_generation: prev.next_generation,
            bound: self.machine.is_some(),
        };
        write_meta(&tx, &meta, self.machine.as_ref(), false)?;
        let blob = so_kdf.encode();
        let kek = meta.pin_key(self.machine.as_ref(), kek)?;
        let wrapped = seal::seal(&kek, &meta.wrap_aad(Who::So, &blob), mk.key())?;
        tx.execute(
            "INSERT INTO pin (who, failures, kdf, wrapped) VALUES (?1, 0, ?2, ?3)",
            params![Who::So.code(), blob, wrapped],
        )?;
        tx.commit()?;
        sqlite::checkpoint_truncate(&g.conn);
        tracing::info!(path = %self.path.display(), bound = meta.bound, "token re-initialised");
        Ok(())
    }

    /// C_InitPIN: wrap `mk` (which must be this token's) under a new user PIN; clears the
    /// user's failure count and lock.
    pub fn set_user_pin(&self, mk: &MasterKey, pin: &[u8], kdf: &KdfParams) -> Result<()> {
        self.store_wrap(Who::User, mk, pin, kdf, false)
    }

    /// C_SetPIN: re-wrap `mk` under `new_pin` for `who` (whose PIN must exist).
    pub fn change_pin(
        &self,
        who: Who,
        mk: &MasterKey,
        new_pin: &[u8],
        kdf: &KdfParams,
    ) -> Result<()> {
        self.store_wrap(who, mk, new_pin, kdf, true)
    }

    fn store_wrap(
        &self,
        who: Who,
        mk: &MasterKey,
        pin: &[u8],
        kdf: &KdfParams,
        must_exist: bool,
    ) -> Result<()> {
        if pin.is_empty() {
            return Err(Code::PinLenRange.err("a PIN must not be empty"));
        }
        let stored = StoredKdf::new(kdf)?;
        let kek = stored.derive(pin)?;
        let blob = stored.encode();
        let mut g = self.lock()?;
        let tx = g
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let meta = read_meta(&tx, self.machine.as_ref())?;
        meta.check_mk(mk)?;
        let kek = meta.pin_key(self.machine.as_ref(), kek)?;
        let wrapped = seal::seal(&kek, &meta.wrap_aad(who, &blob), mk.key())?;
        let exists = tx
            .query_row("SELECT 1 FROM pin WHERE who = ?1", [who.code()], |_| Ok(()))
            .optional()?
            .is_some();
        if must_exist && !exists {
            return Err(match who {
                Who::User => Code::UserPinNotInitialized.err("no user PIN is set"),
                Who::So => Code::DeviceError.err("token store has no SO PIN"),
            });
        }
        tx.execute(
            "INSERT OR REPLACE INTO pin (who, failures, kdf, wrapped) VALUES (?1, 0, ?2, ?3)",
            params![who.code(), blob, wrapped],
        )?;
        tx.commit()?;
        sqlite::checkpoint_truncate(&g.conn);
        Ok(())
    }

    /// Give a machine-bound token the identity wrap: `mk` (which must be this token's) sealed
    /// under the identity key derived from the machine key, so that
    /// [`TokenStore::identity_login`] opens it without a PIN. A wrap that already opens to
    /// `mk` is kept (`Ok(false)`); otherwise it is written (`Ok(true)`), moving a version-1
    /// store to version 2 in the same transaction. An unbound token never gets one
    /// (CKR_GENERAL_ERROR).
    pub fn set_identity_wrap(&self, mk: &MasterKey) -> Result<bool> {
        let mut g = self.lock()?;
        let tx = g
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let meta = read_meta(&tx, self.machine.as_ref())?;
        let key = meta.identity_key(self.machine.as_ref())?;
        meta.check_mk(mk)?;
        let aad = meta.identity_aad();
        let current: Option<Vec<u8>> = tx
            .query_row(
                "SELECT wrapped FROM pin WHERE who = ?1",
                [IDENTITY_WHO],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(current) = current {
            match seal::open(&key, &aad, &current) {
                Ok(plain) if plain[..] == mk.key()[..] => return Ok(false),
                _ => tracing::warn!(path = %self.path.display(),
                    "the identity wrap did not open; replacing it"),
            }
        }
        let wrapped = seal::seal(&key, &aad, mk.key())?;
        sqlite::upgrade_for_identity(&tx)?;
        tx.execute(
            "INSERT OR REPLACE INTO pin (who, failures, kdf, wrapped) VALUES (?1, 0, x'', ?2)",
            params![IDENTITY_WHO, wrapped],
        )?;
        tx.commit()?;
        sqlite::checkpoint_truncate(&g.conn);
        tracing::info!(path = %self.path.display(), "identity wrap written (login without a PIN)");
        Ok(true)
    }

    /// Remove the identity wrap; `Ok(false)` when there is none (then nothing is written).
    /// The WAL is truncated so the old wrap does not linger in it.
    pub fn remove_identity_wrap(&self) -> Result<bool> {
        let mut g = self.lock()?;
        let present = g
            .conn
            .query_row("SELECT 1 FROM pin WHERE who = ?1", [IDENTITY_WHO], |_| {
                Ok(())
            })
            .optional()?
            .is_some();
        if !present {
            return Ok(false);
        }
        let tx = g
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute("DELETE FROM pin WHERE who = ?1", [IDENTITY_WHO])?;
        tx.commit()?;
        sqlite::checkpoint_truncate(&g.conn);
        if n > 0 {
            tracing::info!(path = %self.path.display(), "identity wrap removed");
        }
        Ok(n > 0)
    }

    /// Login as the user without a PIN: open the master key from the identity wrap.
    /// `Ok(None)` when the token has no identity wrap. Nothing is counted or written: the
    /// caller has already established the peer's right. The user PIN must be set
    /// (CKR_USER_PIN_NOT_INITIALIZED) and not locked (CKR_PIN_LOCKED: a locked user stays
    /// locked for everyone until the SO's C_InitPIN). A wrap that does not open is
    /// CKR_DEVICE_ERROR (the store was modified); an unbound token is CKR_GENERAL_ERROR.
    pub fn identity_login(&self) -> Result<Option<MasterKey>> {
        let (meta, user, wrap) = {
            let mut g = self.lock()?;
            let tx = g.conn.transaction()?;
            let meta = read_meta(&tx, self.machine.as_ref())?;
            let row = |who: i64| -> Result<Option<PinRow>> {
                Ok(tx
                    .query_row(
                        "SELECT failures, kdf, wrapped FROM pin WHERE who = ?1",
                        [who],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()?)
            };
            let user = row(Who::User.code())?;
            let wrap = row(IDENTITY_WHO)?;
            tx.finish()?;
            (meta, user, wrap)
        };
        let key = meta.identity_key(self.machine.as_ref())?;
        let Some((failures, _, _)) = user else {
            return Err(Code::UserPinNotInitialized.err("no user PIN is set"));
        };
        if to_u32(failures, "failure count")? >= meta.retry_limit {
            return Err(Code::PinLocked.err(
                "the user PIN is locked; login without a PIN waits for the SO's C_InitPIN too",
            ));
        }
        let Some((_, kdf, wrapped)) = wrap else {
            return Ok(None);
        };
        let tampered = || {
            tracing::error!(path = %self.path.display(),
                "the identity wrap failed authentication: the store was modified");
            Code::DeviceError.err("the identity wrap failed authentication")
        };
        if !kdf.is_empty() {
            return Err(tampered());
        }
        let plain = seal::open(&key, &meta.identity_aad(), &wrapped).map_err(|_| tampered())?;
        let mk = MasterKey::from_bytes(&plain)?;
        meta.check_mk(&mk)?;
        Ok(Some(mk))
    }

    /// Store a new object under `uid`; returns its generation. CKR_USER_NOT_LOGGED_IN if it
    /// is private or holds key material and `mk` is `None`.
    pub fn insert_object(&self, mk: Option<&MasterKey>, uid: &str, attrs: &Attrs) -> Result<u64> {
        self.write_object(mk, uid, attrs, true)
    }

    /// Replace the attributes of stored object `uid`; returns its new generation.
    /// CKR_OBJECT_HANDLE_INVALID if it is no longer stored (another process deleted it);
    /// CKR_USER_NOT_LOGGED_IN if its old or new form needs the master key and `mk` is `None`.
    pub fn update_object(&self, mk: Option<&MasterKey>, uid: &str, attrs: &Attrs) -> Result<u64> {
        self.write_object(mk, uid, attrs, false)
    }

    fn write_object(
        &self,
        mk: Option<&MasterKey>,
        uid: &str,
        attrs: &Attrs,
        insert: bool,
    ) -> Result<u64> {
        check_uid_arg(uid)?;
        let mut g = self.lock()?;
        let tx = g
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let meta = read_meta(&tx, self.machine.as_ref())?;
        if let Some(mk) = mk {
            meta.check_mk(mk)?;
        }
        let existing: Option<Row> = tx
            .query_row(
                "SELECT private, record, tag FROM object WHERE uid = ?1",
                [uid],
                |r| {
                    Ok(Row {
                        private: r.get::<_, i64>(0)? != 0,
                        record: r.get(1)?,
                        tag: r.get(2)?,
                    })
                },
            )
            .optional()?;
        match (&existing, insert) {
            (Some(_), true) => {
                return Err(Code::GeneralError.err("an object with this uid is already stored"));
            }
            (None, false) => {
                return Err(Code::ObjectHandleInvalid.err("the object is no longer stored"));
            }
            (Some(row), false) if mk.is_none() && row_needs_mk(row) => {
                return Err(Code::UserNotLoggedIn
                    .err("changing this object re-seals its secrets and needs the user's login"));
            }
            _ => {}
        }
        let generation = meta.next_generation;
        let row = seal_object(&meta, mk, uid, generation, attrs)?;
        let g_i64 = to_i64(generation, "generation")?;
        tx.execute(
            "UPDATE token SET next_generation = ?1 WHERE id = 1",
            [to_i64(generation + 1, "generation")?],
        )?;
        if insert {
            tx.execute(
                "INSERT INTO object (uid, generation, private, record, tag) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![uid, g_i64, i64::from(row.private), row.record, row.tag],
            )?;
        } else {
            tx.execute(
                "UPDATE object SET generation = ?2, private = ?3, record = ?4, tag = ?5 \
                 WHERE uid = ?1",
                params![uid, g_i64, i64::from(row.private), row.record, row.tag],
            )?;
        }
        tx.commit()?;
        Ok(generation)
    }

    /// Delete stored object `uid` (CKR_OBJECT_HANDLE_INVALID if it is not stored), then
    /// truncate the WAL.
    pub fn delete_object(&self, uid: &str) -> Result<()> {
        let mut g = self.lock()?;
        let tx = g
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute("DELETE FROM object WHERE uid = ?1", [uid])?;
        if n == 0 {
            return Err(Code::ObjectHandleInvalid.err("the object is no longer stored"));
        }
        tx.commit()?;
        sqlite::checkpoint_truncate(&g.conn);
        Ok(())
    }

    /// Every usable stored object: without `mk` the public ones (key material absent and
    /// `complete` false where any was sealed); with `mk` all of them, complete. Records that
    /// fail authentication or decoding are never returned: each is logged as an error and
    /// left out (see [`TokenStore::load_objects_checked`] for the list).
    pub fn load_objects(&self, mk: Option<&MasterKey>) -> Result<Vec<StoredObject>> {
        let (objects, rejected) = self.load_objects_checked(mk)?;
        for r in &rejected {
            tracing::error!(uid = %r.uid, reason = %r.reason,
                "stored object failed authentication; refusing to use it");
        }
        Ok(objects)
    }

    /// Like [`TokenStore::load_objects`], also returning the refused records.
    pub fn load_objects_checked(
        &self,
        mk: Option<&MasterKey>,
    ) -> Result<(Vec<StoredObject>, Vec<Rejected>)> {
        let mut g = self.lock()?;
        let tx = g.conn.transaction()?;
        let meta = read_meta(&tx, self.machine.as_ref())?;
        if let Some(mk) = mk {
            meta.check_mk(mk)?;
        }
        let mut objects = Vec::new();
        let mut rejected = Vec::new();
        {
            let mut stmt = tx
                .prepare("SELECT uid, generation, private, record, tag FROM object ORDER BY uid")?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let uid = r
                    .get::<_, String>(0)
                    .unwrap_or_else(|_| "<unreadable uid>".into());
                let parsed = (|| -> Result<(u64, Row)> {
                    let generation = to_u64(r.get(1)?, "generation")?;
                    let row = Row {
                        private: r.get::<_, i64>(2)? != 0,
                        record: r.get(3)?,
                        tag: r.get(4)?,
                    };
                    Ok((generation, row))
                })();
                match parsed
                    .and_then(|(generation, row)| open_object(&meta, mk, &uid, generation, &row))
                {
                    Ok(Some(o)) => objects.push(o),
                    Ok(None) => {}
                    Err(e) => rejected.push(Rejected {
                        uid,
                        reason: e.detail().to_string(),
                    }),
                }
            }
        }
        tx.finish()?;
        Ok((objects, rejected))
    }

    /// One stored object: `Ok(None)` if absent (or private and no `mk`); CKR_DEVICE_ERROR if
    /// its record fails authentication.
    pub fn load_object(&self, mk: Option<&MasterKey>, uid: &str) -> Result<Option<StoredObject>> {
        let mut g = self.lock()?;
        let tx = g.conn.transaction()?;
        let meta = read_meta(&tx, self.machine.as_ref())?;
        if let Some(mk) = mk {
            meta.check_mk(mk)?;
        }
        let row: Option<(i64, Row)> = tx
            .query_row(
                "SELECT generation, private, record, tag FROM object WHERE uid = ?1",
                [uid],
                |r| {
                    Ok((
                        r.get(0)?,
                        Row {
                            private: r.get::<_, i64>(1)? != 0,
                            record: r.get(2)?,
                            tag: r.get(3)?,
                        },
                    ))
                },
            )
            .optional()?;
        tx.finish()?;
        let Some((generation, row)) = row else {
            return Ok(None);
        };
        open_object(&meta, mk, uid, to_u64(generation, "generation")?, &row).map_err(|e| {
            tracing::error!(uid, reason = %e, "stored object failed authentication");
            e
        })
    }

    /// (uid, generation) of every stored object, without opening any record: a cheap way to
    /// see which objects another process added, changed or removed.
    pub fn versions(&self) -> Result<Vec<(String, u64)>> {
        let g = self.lock()?;
        let mut stmt = g
            .conn
            .prepare("SELECT uid, generation FROM object ORDER BY uid")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        let mut out = Vec::new();
        for r in rows {
            let (uid, generation) = r?;
            out.push((uid, to_u64(generation, "generation")?));
        }
        Ok(out)
    }

    /// Whether another connection (process or `TokenStore`) committed since the last call
    /// (or since open). About a microsecond: cheap enough before every search.
    pub fn changed(&self) -> Result<bool> {
        // Fast path, taken before every find: SQLite bumps the WAL-index header (its change
        // counter, frame count and salts) on every commit, so an unchanged header means no
        // connection committed since the last check. One pread, no lock, no query.
        let signature = self.shm_header_signature();
        if let Some(sig) = signature
            && sig == self.shm_signature.load(Ordering::Acquire)
        {
            return Ok(false);
        }
        let mut g = self.lock()?;
        if let Some(sig) = signature {
            // The header was read before the query, so a commit racing with it changes the
            // header again and is caught by the next call.
            self.shm_signature.store(sig, Ordering::Release);
        }
        let v = sqlite::data_version(&g.conn)?;
        let changed = v != g.seen_version;
        g.seen_version = v;
        Ok(changed)
    }

    /// A 64-bit signature (FNV-1a) of the first 48 bytes of the WAL-index, or `None` when it
    /// cannot be read (then every check runs the query).
    fn shm_header_signature(&self) -> Option<u64> {
        let shm = self
            .shm
            .get_or_init(|| {
                let mut p = self.path.clone().into_os_string();
                p.push("-shm");
                File::open(p).ok()
            })
            .as_ref()?;
        let mut header = [0u8; 48];
        shm.read_exact_at(&mut header, 0).ok()?;
        let sig = header.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
        // 0 is the "never read" value of `shm_signature`.
        Some(sig.max(1))
    }

    /// Make every write on this store's connection fail, as on a read-only or full disk.
    #[cfg(test)]
    fn set_query_only(&self, on: bool) {
        let g = self.lock().unwrap();
        g.conn.pragma_update(None, "query_only", on).unwrap();
    }
}

/// Entry points for fuzzing the record decoder.
#[doc(hidden)]
pub mod fuzzing {
    /// Decode `data` as a stored record; when it decodes, re-encoding must give the same
    /// bytes (the encoding is canonical). Returns false only if that property fails.
    pub fn record_round_trip(data: &[u8]) -> bool {
        match super::format::decode_fields(data) {
            Ok(fields) => super::format::encode_fields(fields.iter().map(|(t, f)| (*t, f)), false)
                .is_ok_and(|enc| enc[..] == *data),
            Err(_) => true,
        }
    }
}
