//! Tests of machine binding: bound tokens open only with their machine secret, a missing or
//! wrong secret fails before anything is counted or written, unbound tokens stay as they
//! are, and the secret sources refuse unsafe files.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use cryptoki_sys::*;
use rusqlite::Connection;

use super::*;
use crate::types::AttrValue;

const SO: &[u8] = b"so-PIN-CANARY-7f3a";
const USER: &[u8] = b"user-PIN-CANARY-91c2";
const SERIAL: &str = "0011AABBCCDDEEFF";
const KEY_BYTES: [u8; 32] = [0xA7; 32];

fn weak() -> KdfParams {
    KdfParams::Argon2id {
        m_kib: 64,
        t: 1,
        p: 1,
    }
}

fn secret(fill: u8) -> MachineSecret {
    MachineSecret::from_bytes(&[fill; 48]).unwrap()
}

fn code<T: fmt::Debug>(r: Result<T>) -> Code {
    r.unwrap_err().code()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The database file and its WAL, as bytes.
fn file_bytes(path: &Path) -> Vec<u8> {
    let mut b = std::fs::read(path).unwrap();
    if let Ok(w) = std::fs::read(sqlite::sibling(path, "-wal")) {
        b.extend_from_slice(&w);
    }
    b
}

fn key(uid: &str, private: bool) -> Attrs {
    let mut a = Attrs::new();
    a.set(CKA_CLASS, AttrValue::Ulong(CKO_SECRET_KEY));
    a.set(CKA_KEY_TYPE, AttrValue::Ulong(CKK_AES));
    a.set(CKA_TOKEN, AttrValue::Bool(true));
    a.set(CKA_PRIVATE, AttrValue::Bool(private));
    a.set(CKA_SENSITIVE, AttrValue::Bool(true));
    a.set(CKA_UNIQUE_ID, AttrValue::bytes(uid.as_bytes().to_vec()));
    a.set(CKA_VALUE, AttrValue::bytes(KEY_BYTES.to_vec()));
    a
}

fn cert(uid: &str) -> Attrs {
    let mut a = Attrs::new();
    a.set(CKA_CLASS, AttrValue::Ulong(CKO_CERTIFICATE));
    a.set(CKA_TOKEN, AttrValue::Bool(true));
    a.set(CKA_PRIVATE, AttrValue::Bool(false));
    a.set(CKA_UNIQUE_ID, AttrValue::bytes(uid.as_bytes().to_vec()));
    a.set(CKA_VALUE, AttrValue::bytes(b"certificate bytes".to_vec()));
    a
}

/// A token (bound when `machine` is given) with a user PIN, a private key, a public key
/// object with sealed material and a certificate; closed again.
fn populated(dir: &Path, name: &str, machine: Option<&MachineSecret>) -> PathBuf {
    let path = dir.join(name);
    let s = TokenStore::create_bound(&path, 1, "bound", SERIAL, SO, &weak(), 5, machine).unwrap();
    let mk = s.login(Who::So, SO, &weak()).unwrap();
    s.set_user_pin(&mk, USER, &weak()).unwrap();
    s.insert_object(Some(&mk), "priv", &key("priv", true))
        .unwrap();
    s.insert_object(Some(&mk), "pub", &key("pub", false))
        .unwrap();
    s.insert_object(None, "cert", &cert("cert")).unwrap();
    path
}

/// Copy a token file elsewhere, as someone who took the storage directory would.
fn copy_to(path: &Path, dir: &Path) -> PathBuf {
    let to = dir.join(path.file_name().unwrap());
    std::fs::copy(path, &to).unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
    to
}

/// PK as the store sees it, read through the store's own key handling.
fn public_token_key(s: &TokenStore) -> [u8; 32] {
    let g = s.lock().unwrap();
    *read_meta(&g.conn, s.machine.as_ref()).unwrap().pk
}

fn uids(s: &TokenStore, mk: Option<&MasterKey>) -> Vec<String> {
    s.load_objects(mk)
        .unwrap()
        .into_iter()
        .map(|o| o.uid)
        .collect()
}

#[test]
fn bound_token_opens_and_logs_in_with_its_secret() {
    let dir = tempfile::tempdir().unwrap();
    let a = secret(1);
    let path = populated(dir.path(), "t.db", Some(&a));
    let s = TokenStore::open_bound(&path, Some(&a)).unwrap();
    assert!(s.is_machine_bound().unwrap());
    assert_eq!(s.record().unwrap().serial, SERIAL);
    // Public objects load before login; the certificate's tag verifies under the unsealed PK.
    assert_eq!(uids(&s, None), ["cert", "pub"]);
    let mk = s.login(Who::User, USER, &weak()).unwrap();
    let all = s.load_objects(Some(&mk)).unwrap();
    assert_eq!(all.len(), 3);
    let private = all.iter().find(|o| o.uid == "priv").unwrap();
    assert_eq!(private.attrs.get_bytes(CKA_VALUE), Some(&KEY_BYTES[..]));
    // Changing the PIN keeps the binding: the new wrap is machine-bound too.
    s.change_pin(Who::User, &mk, b"new-user-pin", &weak())
        .unwrap();
    drop(s);
    let s = TokenStore::open_bound(&path, Some(&a)).unwrap();
    s.login(Who::User, b"new-user-pin", &weak()).unwrap();
    s.login(Who::So, SO, &weak()).unwrap();
    assert_eq!(s.record().unwrap().so_failures, 0);
}

#[test]
fn copied_token_without_the_secret_cannot_be_opened_and_is_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let a = secret(1);
    let path = populated(dir.path(), "t.db", Some(&a));
    let copy = copy_to(&path, elsewhere.path());
    let before = std::fs::read(&copy).unwrap();
    for _ in 0..3 {
        let e = TokenStore::open(&copy).unwrap_err();
        assert_eq!(e.code(), Code::TokenNotRecognized, "{e}");
        assert!(e.detail().contains("machine secret"), "{e}");
    }
    assert_eq!(std::fs::read(&copy).unwrap(), before, "a failed open wrote");
    // The same bytes with the secret: the binding is to the secret, not to the path, and no
    // failed attempt was counted by the refused opens.
    let s = TokenStore::open_bound(&copy, Some(&a)).unwrap();
    let r = s.record().unwrap();
    assert_eq!((r.so_failures, r.user_failures), (0, 0));
    s.login(Who::User, USER, &weak()).unwrap();
}

#[test]
fn wrong_secret_fails_at_open_and_counts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = secret(1);
    let b = secret(2);
    let path = populated(dir.path(), "t.db", Some(&a));
    let before = std::fs::read(&path).unwrap();
    for _ in 0..3 {
        let e = TokenStore::open_bound(&path, Some(&b)).unwrap_err();
        assert_eq!(e.code(), Code::TokenNotRecognized, "{e}");
    }
    assert_eq!(std::fs::read(&path).unwrap(), before, "a failed open wrote");
    // An open store never falls back to the wrong key either: a second store on the same
    // file with the right secret still works, and the counters are untouched.
    let s = TokenStore::open_bound(&path, Some(&a)).unwrap();
    let r = s.record().unwrap();
    assert_eq!((r.so_failures, r.user_failures), (0, 0));
    s.login(Who::So, SO, &weak()).unwrap();
}

#[test]
fn unbound_token_is_unaffected_by_a_secret_until_reinitialised() {
    let dir = tempfile::tempdir().unwrap();
    let a = secret(1);
    let path = populated(dir.path(), "t.db", None);
    let before = std::fs::read(&path).unwrap();
    {
        let s = TokenStore::open_bound(&path, Some(&a)).unwrap();
        assert!(!s.is_machine_bound().unwrap());
        assert_eq!(uids(&s, None), ["cert", "pub"]);
        let mk = s.login(Who::User, USER, &weak()).unwrap();
        assert_eq!(uids(&s, Some(&mk)), ["cert", "priv", "pub"]);
        // A PIN change with the secret configured keeps the token unbound.
        s.change_pin(Who::User, &mk, b"other-user-pin", &weak())
            .unwrap();
    }
    let plain = TokenStore::open(&path).unwrap();
    assert!(!plain.is_machine_bound().unwrap());
    plain.login(Who::User, b"other-user-pin", &weak()).unwrap();
    assert_ne!(std::fs::read(&path).unwrap(), before);

    // C_InitToken with the secret configured binds it.
    let s = TokenStore::open_bound(&path, Some(&a)).unwrap();
    s.reinitialize(SO, "now bound", &weak()).unwrap();
    assert!(s.is_machine_bound().unwrap());
    assert_eq!(s.record().unwrap().serial, SERIAL);
    // The store opened without a secret notices at its next call, before counting anything.
    assert_eq!(code(plain.record()), Code::TokenNotRecognized);
    assert_eq!(
        code(plain.login(Who::So, SO, &weak())),
        Code::TokenNotRecognized
    );
    drop(plain);
    assert_eq!(code(TokenStore::open(&path)), Code::TokenNotRecognized);
    let s = TokenStore::open_bound(&path, Some(&a)).unwrap();
    assert_eq!(s.record().unwrap().so_failures, 0);
    assert_eq!(s.record().unwrap().label, "now bound");
    s.login(Who::So, SO, &weak()).unwrap();
}

#[test]
fn bound_token_reinitialised_stays_bound() {
    let dir = tempfile::tempdir().unwrap();
    let a = secret(1);
    let path = populated(dir.path(), "t.db", Some(&a));
    let s = TokenStore::open_bound(&path, Some(&a)).unwrap();
    s.reinitialize(SO, "again", &weak()).unwrap();
    assert!(s.is_machine_bound().unwrap());
    assert!(s.load_objects(None).unwrap().is_empty());
    drop(s);
    assert_eq!(code(TokenStore::open(&path)), Code::TokenNotRecognized);
    TokenStore::open_bound(&path, Some(&a))
        .unwrap()
        .login(Who::So, SO, &weak())
        .unwrap();
}

#[test]
fn public_token_key_is_not_in_the_file_when_bound() {
    let dir = tempfile::tempdir().unwrap();
    let a = secret(0x5c);
    // Unbound: PK is in the file in clear (the scan finds what it looks for) ...
    let path = populated(dir.path(), "unbound.db", None);
    let s = TokenStore::open(&path).unwrap();
    let pk = public_token_key(&s);
    drop(s);
    assert!(contains(&file_bytes(&path), &pk));
    // ... bound: neither PK, nor the machine secret, nor the token's machine key is.
    let path = populated(dir.path(), "bound.db", Some(&a));
    let s = TokenStore::open_bound(&path, Some(&a)).unwrap();
    let pk = public_token_key(&s);
    let machine_key = *s.machine.as_ref().unwrap().key();
    let mk = s.login(Who::User, USER, &weak()).unwrap();
    let mk = *mk.key();
    for bytes in [file_bytes(&path), {
        drop(s);
        file_bytes(&path)
    }] {
        assert!(!contains(&bytes, &pk), "PK found in the file");
        assert!(
            !contains(&bytes, &machine_key),
            "machine key found in the file"
        );
        assert!(
            !contains(&bytes, &[0x5c; 32]),
            "machine secret found in the file"
        );
        assert!(!contains(&bytes, &mk), "MK found in the file");
    }
}

#[test]
fn stripping_the_binding_opens_nothing() {
    // Someone who can write the file replaces the sealed PK with a key of their own and
    // re-tags the metadata: the token then opens as unbound, but the PIN wraps still need
    // the machine key and the old public records no longer authenticate.
    let dir = tempfile::tempdir().unwrap();
    let a = secret(1);
    let path = populated(dir.path(), "t.db", Some(&a));
    {
        let s = TokenStore::open_bound(&path, Some(&a)).unwrap();
        let g = s.lock().unwrap();
        let mut meta = read_meta(&g.conn, s.machine.as_ref()).unwrap();
        meta.pk = Zeroizing::new([0x42; 32]);
        meta.bound = false;
        write_meta(&g.conn, &meta, None, false).unwrap();
    }
    let s = TokenStore::open(&path).unwrap();
    assert!(!s.is_machine_bound().unwrap());
    assert_eq!(code(s.login(Who::So, SO, &weak())), Code::PinIncorrect);
    assert_eq!(code(s.login(Who::User, USER, &weak())), Code::PinIncorrect);
    let (objects, rejected) = s.load_objects_checked(None).unwrap();
    assert!(objects.is_empty());
    assert_eq!(rejected.len(), 2, "both public records refused");
}

#[test]
fn tampered_sealed_token_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = secret(1);
    let path = populated(dir.path(), "t.db", Some(&a));
    let conn = Connection::open(&path).unwrap();
    let mut pk: Vec<u8> = conn
        .query_row("SELECT public_key FROM token", [], |r| r.get(0))
        .unwrap();
    assert_eq!(pk.len(), SEALED_PK_LEN);
    pk[20] ^= 1;
    conn.execute("UPDATE token SET public_key = ?1", [&pk])
        .unwrap();
    drop(conn);
    assert_eq!(
        code(TokenStore::open_bound(&path, Some(&a))),
        Code::TokenNotRecognized
    );
    // A malformed length is a damaged store, not a binding question.
    let conn = Connection::open(&path).unwrap();
    conn.execute("UPDATE token SET public_key = x'00'", [])
        .unwrap();
    drop(conn);
    assert_eq!(
        code(TokenStore::open_bound(&path, Some(&a))),
        Code::DeviceError
    );
}

fn write_mode(path: &Path, bytes: &[u8], mode: u32) {
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn key_file_must_be_private_and_long_enough() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("machine.key");
    let src = MachineSecretSource::File(path.clone());
    // Absent.
    let e = MachineSecret::load(&src).unwrap_err();
    assert_eq!(e.code(), Code::GeneralError);
    assert!(e.detail().contains("machine.key"), "{e}");
    // Readable by group or others: refused, whatever the content.
    for mode in [0o644, 0o640, 0o604, 0o660, 0o602] {
        write_mode(&path, &[7u8; 32], mode);
        let e = MachineSecret::load(&src).unwrap_err();
        assert_eq!(e.code(), Code::GeneralError);
        assert!(e.detail().contains("chmod 600"), "{mode:o}: {e}");
        assert!(
            !e.detail().contains("[7"),
            "the secret is never in a message"
        );
    }
    // Private but too short.
    write_mode(&path, &[7u8; 31], 0o600);
    let e = MachineSecret::load(&src).unwrap_err();
    assert!(e.detail().contains("at least 32"), "{e}");
    // Private and long enough: the key is its bytes (same as from_bytes).
    for mode in [0o600, 0o400] {
        write_mode(&path, &[7u8; 32], mode);
        let loaded = MachineSecret::load(&src).unwrap();
        let direct = MachineSecret::from_bytes(&[7u8; 32]).unwrap();
        assert_eq!(
            loaded.token_key(SERIAL).unwrap().key(),
            direct.token_key(SERIAL).unwrap().key()
        );
    }
    // Oversized.
    write_mode(&path, &vec![7u8; MAX_SECRET_LEN + 1], 0o600);
    assert!(MachineSecret::load(&src).is_err());
    // A directory.
    let e = MachineSecret::load(&MachineSecretSource::File(dir.path().to_path_buf())).unwrap_err();
    assert!(e.detail().contains("regular file"), "{e}");
}

#[test]
fn key_file_of_another_user_is_refused() {
    // Needs root to give the file away; as another user the test has nothing to check.
    if nix::unistd::geteuid().as_raw() != 0 {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("machine.key");
    write_mode(&path, &[7u8; 32], 0o600);
    std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
    let e = MachineSecret::load(&MachineSecretSource::File(path)).unwrap_err();
    assert!(e.detail().contains("owned by uid 65534"), "{e}");
}

#[test]
fn systemd_credential_is_read_from_the_credentials_directory() {
    let creds = tempfile::tempdir().unwrap();
    // systemd manages the directory and may grant access by ACL, so the mode is not judged.
    write_mode(&creds.path().join("keyward-machine"), &[3u8; 40], 0o440);
    let src = MachineSecretSource::parse("systemd:keyward-machine", None).unwrap();
    let loaded = MachineSecret::load_from(&src, Some(creds.path().as_os_str())).unwrap();
    assert_eq!(
        loaded.token_key(SERIAL).unwrap().key(),
        MachineSecret::from_bytes(&[3u8; 40])
            .unwrap()
            .token_key(SERIAL)
            .unwrap()
            .key()
    );
    // Not running under systemd, or another credential name: a clear error.
    let e = MachineSecret::load_from(&src, None).unwrap_err();
    assert!(e.detail().contains(CREDENTIALS_ENV), "{e}");
    let other = MachineSecretSource::parse("systemd:other", None).unwrap();
    let e = MachineSecret::load_from(&other, Some(creds.path().as_os_str())).unwrap_err();
    assert_eq!(e.code(), Code::GeneralError);
    assert!(e.detail().contains("\"other\""), "{e}");
}

// The identity wrap (login without a PIN, docs/daemon.md).

fn user_version(path: &Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

/// (who, failures, kdf, wrapped) of every PIN row, in order.
fn pin_rows(path: &Path) -> Vec<(i64, i64, Vec<u8>, Vec<u8>)> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT who, failures, kdf, wrapped FROM pin ORDER BY who")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

fn identity_row(path: &Path) -> Option<Vec<u8>> {
    pin_rows(path).into_iter().find(|r| r.0 == 2).map(|r| r.3)
}

#[test]
fn identity_wrap_is_written_used_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let a = secret(1);
    let path = populated(dir.path(), "t.db", Some(&a));
    let s = TokenStore::open_bound(&path, Some(&a)).unwrap();
    let r = s.record().unwrap();
    assert!(r.machine_bound && !r.identity_wrap);
    assert!(s.identity_login().unwrap().is_none());
    assert_eq!(
        user_version(&path),
        1,
        "a store without an identity wrap stays at version 1"
    );

    let mk = s.login(Who::User, USER, &weak()).unwrap();
    let mk_bytes = *mk.key();
    assert!(s.set_identity_wrap(&mk).unwrap());
    assert!(
        !s.set_identity_wrap(&mk).unwrap(),
        "a wrap that opens is kept"
    );
    assert!(s.record().unwrap().identity_wrap);
    assert_eq!(user_version(&path), 2);
    let row = identity_row(&path).unwrap();
    assert_eq!(row.len(), 32 + seal::OVERHEAD);
    assert!(!contains(&file_bytes(&path), &mk_bytes), "MK in the file");

    // Another store on the file (another process) opens the master key without a PIN and
    // reads the private object; nothing is counted or written.
    drop(s);
    let before = std::fs::read(&path).unwrap();
    let s = TokenStore::open_bound(&path, Some(&a)).unwrap();
    let id_mk = s.identity_login().unwrap().unwrap();
    assert_eq!(*id_mk.key(), mk_bytes);
    assert_eq!(uids(&s, Some(&id_mk)), ["cert", "priv", "pub"]);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "identity login wrote"
    );
    // The PINs work as before, and PIN changes leave the wrap valid (MK is unchanged).
    s.login(Who::So, SO, &weak()).unwrap();
    s.change_pin(Who::User, &id_mk, b"changed-user-pin", &weak())
        .unwrap();
    assert_eq!(*s.identity_login().unwrap().unwrap().key(), mk_bytes);

    assert!(s.remove_identity_wrap().unwrap());
    assert!(!s.remove_identity_wrap().unwrap());
    assert!(s.identity_login().unwrap().is_none());
    assert!(!s.record().unwrap().identity_wrap);
    assert!(identity_row(&path).is_none());
    assert!(
        !contains(&file_bytes(&path), &row),
        "the old wrap lingers in the files"
    );
    s.login(Who::User, b"changed-user-pin", &weak()).unwrap();
}

#[test]
fn version_one_stores_open_unchanged_and_migrate_in_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let a = secret(1);
    let path = populated(dir.path(), "t.db", Some(&a));
    let s = TokenStore::open_bound(&path, Some(&a)).unwrap();
    assert_eq!(
        code(s.login(Who::User, b"wrong", &weak())),
        Code::PinIncorrect
    );
    drop(s);
    let rows = pin_rows(&path);
    assert_eq!(rows.len(), 2);
    let s = TokenStore::open_bound(&path, Some(&a)).unwrap();
    let mk = s.login(Who::So, SO, &weak()).unwrap();
    // A migration that cannot be written leaves version 1 whole.
    s.set_query_only(true);
    assert!(s.set_identity_wrap(&mk).is_err());
    s.set_query_only(false);
    assert_eq!(user_version(&path), 1);
    assert_eq!(pin_rows(&path), rows);
    // The migration keeps every PIN row as it was (wraps and counters), then adds the wrap.
    assert!(s.set_identity_wrap(&mk).unwrap());
    assert_eq!(user_version(&path), 2);
    let after = pin_rows(&path);
    assert_eq!(after[..2], rows[..]);
    assert_eq!((after[2].0, after[2].1, after[2].2.len()), (2, 0, 0));
    assert_eq!(s.record().unwrap().user_failures, 1);
    let sql: String = Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'pin'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(sql.contains("IN (0, 1, 2)"), "{sql}");
    drop(s);
    // Version 2 opens (and passes the schema check); a later version does not.
    let s = TokenStore::open_bound(&path, Some(&a)).unwrap();
    s.login(Who::User, USER, &weak()).unwrap();
    drop(s);
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 3)
        .unwrap();
    assert_eq!(
        code(TokenStore::open_bound(&path, Some(&a))),
        Code::TokenNotRecognized
    );
}

#[test]
fn unbound_tokens_never_get_an_identity_wrap() {
    let dir = tempfile::tempdir().unwrap();
    let a = secret(1);
    let path = populated(dir.path(), "t.db", None);
    // Even with a secret configured: the token itself is not bound.
    let s = TokenStore::open_bound(&path, Some(&a)).unwrap();
    let mk = s.login(Who::User, USER, &weak()).unwrap();
    assert_eq!(code(s.set_identity_wrap(&mk)), Code::GeneralError);
    assert_eq!(code(s.identity_login()), Code::GeneralError);
    assert!(identity_row(&path).is_none());
    assert_eq!(user_version(&path), 1);
    let r = s.record().unwrap();
    assert!(!r.machine_bound && !r.identity_wrap);
}

#[test]
fn tampered_or_moved_identity_wraps_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = secret(1);
    let path = populated(dir.path(), "t.db", Some(&a));
    let other = populated(dir.path(), "o.db", Some(&a));
    let s = TokenStore::open_bound(&path, Some(&a)).unwrap();
    let mk = s.login(Who::User, USER, &weak()).unwrap();
    s.set_identity_wrap(&mk).unwrap();
    let good = identity_row(&path).unwrap();
    let set = |p: &Path, sql: &str, v: &[u8]| {
        Connection::open(p).unwrap().execute(sql, [v]).unwrap();
    };
    let mut bad = good.clone();
    bad[20] ^= 1;
    set(&path, "UPDATE pin SET wrapped = ?1 WHERE who = 2", &bad);
    assert_eq!(code(s.identity_login()), Code::DeviceError);
    set(&path, "UPDATE pin SET wrapped = ?1 WHERE who = 2", &good);
    set(&path, "UPDATE pin SET kdf = ?1 WHERE who = 2", b"\x01");
    assert_eq!(code(s.identity_login()), Code::DeviceError);
    set(&path, "UPDATE pin SET kdf = ?1 WHERE who = 2", b"");
    assert!(s.identity_login().unwrap().is_some());
    // Nothing was counted by the refusals.
    assert_eq!(s.record().unwrap().user_failures, 0);
    // Setting the wrap again repairs a damaged one.
    set(&path, "UPDATE pin SET wrapped = ?1 WHERE who = 2", &bad);
    assert!(s.set_identity_wrap(&mk).unwrap());
    assert!(s.identity_login().unwrap().is_some());

    // A wrap copied into another token (same machine secret, same serial) opens nothing
    // there: its key and associated data depend on the token id.
    let o = TokenStore::open_bound(&other, Some(&a)).unwrap();
    let omk = o.login(Who::User, USER, &weak()).unwrap();
    o.set_identity_wrap(&omk).unwrap();
    set(&other, "UPDATE pin SET wrapped = ?1 WHERE who = 2", &good);
    assert_eq!(code(o.identity_login()), Code::DeviceError);

    // A user row removed behind the store's back: no login without a PIN either.
    Connection::open(&path)
        .unwrap()
        .execute("DELETE FROM pin WHERE who = 1", [])
        .unwrap();
    assert_eq!(code(s.identity_login()), Code::UserPinNotInitialized);
}

#[test]
fn copied_token_with_an_identity_wrap_is_useless_without_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let a = secret(1);
    let path = populated(dir.path(), "t.db", Some(&a));
    {
        let s = TokenStore::open_bound(&path, Some(&a)).unwrap();
        let mk = s.login(Who::User, USER, &weak()).unwrap();
        s.set_identity_wrap(&mk).unwrap();
    }
    let copy = copy_to(&path, elsewhere.path());
    assert_eq!(code(TokenStore::open(&copy)), Code::TokenNotRecognized);
    assert_eq!(
        code(TokenStore::open_bound(&copy, Some(&secret(2)))),
        Code::TokenNotRecognized
    );
    // Even a reader who bypasses the store and knows the token's row cannot open the wrap
    // with any key the file gives: neither the public token key nor one derived from another
    // secret.
    let wrong = secret(2).token_key(SERIAL).unwrap();
    let conn = Connection::open(&copy).unwrap();
    let token_id: Vec<u8> = conn
        .query_row("SELECT token_id FROM token", [], |r| r.get(0))
        .unwrap();
    let row = identity_row(&copy).unwrap();
    let aad = Aad::new(Purpose::IdentityWrap, &token_id).bytes(BOUND_MARK);
    assert!(seal::open(&wrong.identity_key(&token_id).unwrap(), &aad, &row).is_err());
    let right = a.token_key(SERIAL).unwrap();
    assert!(seal::open(&right.identity_key(&token_id).unwrap(), &aad, &row).is_ok());
}

#[test]
fn a_locked_user_pin_blocks_login_without_a_pin_until_the_so_unlocks() {
    let dir = tempfile::tempdir().unwrap();
    let a = secret(1);
    let path = populated(dir.path(), "t.db", Some(&a));
    let s = TokenStore::open_bound(&path, Some(&a)).unwrap();
    let mk = s.login(Who::User, USER, &weak()).unwrap();
    s.set_identity_wrap(&mk).unwrap();
    for _ in 0..4 {
        assert_eq!(
            code(s.login(Who::User, b"wrong", &weak())),
            Code::PinIncorrect
        );
    }
    // One try left: the identity login works and does not reset the counter.
    assert!(s.identity_login().unwrap().is_some());
    assert_eq!(s.record().unwrap().user_failures, 4);
    assert_eq!(code(s.login(Who::User, b"wrong", &weak())), Code::PinLocked);
    assert_eq!(code(s.identity_login()), Code::PinLocked);
    assert_eq!(s.record().unwrap().user_failures, 5);
    // The SO's C_InitPIN unlocks the user, and the wrap (same MK) works again.
    let so_mk = s.login(Who::So, SO, &weak()).unwrap();
    s.set_user_pin(&so_mk, b"fresh-user-pin", &weak()).unwrap();
    assert!(s.identity_login().unwrap().is_some());
}

#[test]
fn reinitialising_removes_the_identity_wrap_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let a = secret(1);
    let path = populated(dir.path(), "t.db", Some(&a));
    let s = TokenStore::open_bound(&path, Some(&a)).unwrap();
    let mk = s.login(Who::User, USER, &weak()).unwrap();
    s.set_identity_wrap(&mk).unwrap();
    let old = identity_row(&path).unwrap();
    s.reinitialize(SO, "again", &weak()).unwrap();
    assert!(identity_row(&path).is_none());
    assert!(!s.record().unwrap().identity_wrap);
    assert!(!contains(&file_bytes(&path), &old));
    // Restoring the old wrap (from a backup) opens nothing: the token id changed.
    let so_mk = s.login(Who::So, SO, &weak()).unwrap();
    s.set_user_pin(&so_mk, USER, &weak()).unwrap();
    Connection::open(&path)
        .unwrap()
        .execute(
            "INSERT INTO pin (who, failures, kdf, wrapped) VALUES (2, 0, x'', ?1)",
            [&old],
        )
        .unwrap();
    assert_eq!(code(s.identity_login()), Code::DeviceError);
}
