//! Tests of the token store: persistence, the login counter, tamper detection, re-init
//! purging and multi-connection visibility.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cryptoki_sys::*;
use rusqlite::Connection;

use super::*;
use crate::types::{AttrValue, Attribute};

const SO: &[u8] = b"so-PIN-CANARY-7f3a";
const USER: &[u8] = b"user-PIN-CANARY-91c2";
const KEY_BYTES: [u8; 32] = [0xA7; 32];

fn weak() -> KdfParams {
    KdfParams::Argon2id {
        m_kib: 64,
        t: 1,
        p: 1,
    }
}

fn new_token(dir: &Path, name: &str, limit: u32) -> (PathBuf, TokenStore) {
    let path = dir.join(name);
    let s = TokenStore::create(&path, 1, "test token", "0011AABB", SO, &weak(), limit).unwrap();
    (path, s)
}

/// A token with a user PIN; returns the master key too.
fn ready_token(dir: &Path, name: &str, limit: u32) -> (PathBuf, TokenStore, MasterKey) {
    let (path, s) = new_token(dir, name, limit);
    let mk = s.login(Who::So, SO, &weak()).unwrap();
    s.set_user_pin(&mk, USER, &weak()).unwrap();
    (path, s, mk)
}

fn secret_key(uid: &str, value: &[u8], private: bool) -> Attrs {
    let mut a = Attrs::new();
    a.set(CKA_CLASS, AttrValue::Ulong(CKO_SECRET_KEY));
    a.set(CKA_KEY_TYPE, AttrValue::Ulong(CKK_AES));
    a.set(CKA_TOKEN, AttrValue::Bool(true));
    a.set(CKA_PRIVATE, AttrValue::Bool(private));
    a.set(CKA_SENSITIVE, AttrValue::Bool(true));
    a.set(CKA_EXTRACTABLE, AttrValue::Bool(false));
    a.set(CKA_ENCRYPT, AttrValue::Bool(true));
    a.set(CKA_DECRYPT, AttrValue::Bool(false));
    a.set(
        CKA_ALLOWED_MECHANISMS,
        AttrValue::Mechanisms(vec![CKM_AES_GCM]),
    );
    a.set(
        CKA_WRAP_TEMPLATE,
        AttrValue::Template(vec![Attribute::bool(CKA_EXTRACTABLE, false)]),
    );
    a.set(CKA_LABEL, AttrValue::bytes(b"aes key".to_vec()));
    a.set(CKA_UNIQUE_ID, AttrValue::bytes(uid.as_bytes().to_vec()));
    a.set(CKA_VALUE, AttrValue::bytes(value.to_vec()));
    a
}

fn cert(uid: &str) -> Attrs {
    let mut a = Attrs::new();
    a.set(CKA_CLASS, AttrValue::Ulong(CKO_CERTIFICATE));
    a.set(CKA_TOKEN, AttrValue::Bool(true));
    a.set(CKA_PRIVATE, AttrValue::Bool(false));
    a.set(CKA_UNIQUE_ID, AttrValue::bytes(uid.as_bytes().to_vec()));
    a.set(CKA_VALUE, AttrValue::bytes(b"not really DER".to_vec()));
    a
}

fn raw(path: &Path) -> Connection {
    Connection::open(path).unwrap()
}

fn failures(path: &Path, who: Who) -> i64 {
    raw(path)
        .query_row(
            "SELECT failures FROM pin WHERE who = ?1",
            [who.code()],
            |r| r.get(0),
        )
        .unwrap()
}

fn wrap_blob(path: &Path, who: Who) -> Vec<u8> {
    raw(path)
        .query_row(
            "SELECT wrapped FROM pin WHERE who = ?1",
            [who.code()],
            |r| r.get(0),
        )
        .unwrap()
}

fn object_record(path: &Path, uid: &str) -> Vec<u8> {
    raw(path)
        .query_row("SELECT record FROM object WHERE uid = ?1", [uid], |r| {
            r.get(0)
        })
        .unwrap()
}

/// The raw bytes of the database file and its WAL.
fn file_bytes(path: &Path) -> Vec<u8> {
    let mut b = std::fs::read(path).unwrap();
    if let Ok(w) = std::fs::read(sqlite::sibling(path, "-wal")) {
        b.extend_from_slice(&w);
    }
    b
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn code<T: fmt::Debug>(r: Result<T>) -> Code {
    r.unwrap_err().code()
}

fn rejected_uids(s: &TokenStore, mk: Option<&MasterKey>) -> Vec<String> {
    let (_, rejected) = s.load_objects_checked(mk).unwrap();
    rejected.into_iter().map(|r| r.uid).collect()
}

#[test]
fn store_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<TokenStore>();
    check::<MasterKey>();
}

#[test]
fn create_sets_modes_pragmas_and_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens").join("t.db");
    let s = TokenStore::create(&path, 7, "my label", "SERIAL1", SO, &weak(), 10).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    {
        let g = s.lock().unwrap();
        let q = |sql: &str| -> String {
            g.conn
                .query_row(sql, [], |r| r.get::<_, rusqlite::types::Value>(0))
                .map(|v| format!("{v:?}"))
                .unwrap()
        };
        assert_eq!(q("PRAGMA journal_mode"), "Text(\"wal\")");
        assert_eq!(q("PRAGMA synchronous"), "Integer(2)"); // FULL
        assert_eq!(q("PRAGMA secure_delete"), "Integer(1)");
        assert_eq!(q("PRAGMA foreign_keys"), "Integer(1)");
        assert_eq!(q("PRAGMA busy_timeout"), "Integer(10000)");
    }
    assert_eq!(
        s.record().unwrap(),
        TokenRecord {
            slot_id: 7,
            label: "my label".into(),
            serial: "SERIAL1".into(),
            user_pin_initialized: false,
            so_failures: 0,
            user_failures: 0,
            retry_limit: 10,
            machine_bound: false,
            identity_wrap: false,
        }
    );
    // Nothing left under the temporary name, and no second token over the first.
    assert!(!sqlite::sibling(&path, ".creating").exists());
    assert_eq!(
        code(TokenStore::create(&path, 7, "x", "S", SO, &weak(), 10)),
        Code::GeneralError
    );
    assert!(TokenStore::open(&path).is_ok());
}

#[test]
fn refuses_store_others_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let (path, s) = new_token(dir.path(), "t.db", 10);
    drop(s);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(code(TokenStore::open(&path)), Code::DeviceError);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(TokenStore::open(&path).is_ok());
    assert_eq!(
        code(TokenStore::open(&dir.path().join("absent.db"))),
        Code::TokenNotPresent
    );
}

#[test]
fn objects_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (path, s, mk) = ready_token(dir.path(), "t.db", 10);
    let mk_user = s.login(Who::User, USER, &weak()).unwrap();
    assert_eq!(mk.key(), mk_user.key());
    let private = secret_key("priv", &KEY_BYTES, true);
    let public = secret_key("pub", &KEY_BYTES, false);
    let c = cert("cert");
    let g1 = s.insert_object(Some(&mk), "priv", &private).unwrap();
    let g2 = s.insert_object(Some(&mk), "pub", &public).unwrap();
    let g3 = s.insert_object(None, "cert", &c).unwrap();
    assert!(g1 < g2 && g2 < g3);
    drop(s);

    let s = TokenStore::open(&path).unwrap();
    // Before login: public objects only, key material absent.
    let before = s.load_objects(None).unwrap();
    assert_eq!(before.len(), 2);
    let find = |v: &[StoredObject], uid: &str| v.iter().find(|o| o.uid == uid).cloned().unwrap();
    let c_loaded = find(&before, "cert");
    assert_eq!(
        (
            c_loaded.attrs.clone(),
            c_loaded.complete,
            c_loaded.generation
        ),
        (c.clone(), true, g3)
    );
    let pub_loaded = find(&before, "pub");
    assert!(!pub_loaded.complete);
    assert!(!pub_loaded.attrs.has(CKA_VALUE));
    let mut expected = public.clone();
    expected.0.remove(&CKA_VALUE);
    assert_eq!(pub_loaded.attrs, expected);

    // After login: everything, complete and identical.
    let mk = s.login(Who::User, USER, &weak()).unwrap();
    let after = s.load_objects(Some(&mk)).unwrap();
    assert_eq!(after.len(), 3);
    for (uid, attrs, generation) in [
        ("priv", &private, g1),
        ("pub", &public, g2),
        ("cert", &c, g3),
    ] {
        let o = find(&after, uid);
        assert_eq!(
            (&o.attrs, o.complete, o.generation),
            (attrs, true, generation)
        );
    }
    assert_eq!(
        s.load_object(Some(&mk), "priv").unwrap().unwrap().attrs,
        private
    );
    assert_eq!(s.load_object(None, "priv").unwrap(), None);
    assert_eq!(s.versions().unwrap().len(), 3);
}

#[test]
fn wrong_pin_is_counted_before_it_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (path, s, _mk) = ready_token(dir.path(), "t.db", 10);
    assert_eq!(
        code(s.login(Who::User, b"wrong", &weak())),
        Code::PinIncorrect
    );
    assert_eq!(failures(&path, Who::User), 1);
    assert_eq!(s.record().unwrap().user_failures, 1);

    // A login stopped right after counting (a crash before the PIN was checked) leaves
    // the attempt counted, even with the right PIN.
    s.stop_after_count.store(true, Ordering::SeqCst);
    assert!(s.login(Who::User, USER, &weak()).is_err());
    assert_eq!(failures(&path, Who::User), 2);
    s.stop_after_count.store(false, Ordering::SeqCst);

    // Success resets the count.
    s.login(Who::User, USER, &weak()).unwrap();
    assert_eq!(failures(&path, Who::User), 0);
    // The SO counter is separate.
    assert_eq!(code(s.login(Who::So, USER, &weak())), Code::PinIncorrect);
    assert_eq!(
        (failures(&path, Who::So), failures(&path, Who::User)),
        (1, 0)
    );
}

#[test]
fn login_fails_closed_when_the_counter_cannot_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let (path, s, _mk) = ready_token(dir.path(), "t.db", 3);
    s.set_query_only(true);
    for _ in 0..10 {
        // Neither the right nor a wrong PIN is evaluated: no master key, no PIN_INCORRECT.
        assert_eq!(code(s.login(Who::User, USER, &weak())), Code::DeviceError);
        assert_eq!(
            code(s.login(Who::User, b"guess", &weak())),
            Code::DeviceError
        );
    }
    s.set_query_only(false);
    assert_eq!(failures(&path, Who::User), 0);
    s.login(Who::User, USER, &weak()).unwrap();
}

#[test]
fn lockout_survives_restart_and_init_pin_unlocks() {
    let dir = tempfile::tempdir().unwrap();
    let (path, s, _mk) = ready_token(dir.path(), "t.db", 3);
    assert_eq!(
        code(s.login(Who::User, b"bad1", &weak())),
        Code::PinIncorrect
    );
    assert_eq!(
        code(s.login(Who::User, b"bad2", &weak())),
        Code::PinIncorrect
    );
    // The attempt that uses the last try reports the lock.
    assert_eq!(code(s.login(Who::User, b"bad3", &weak())), Code::PinLocked);
    drop(s);

    let s = TokenStore::open(&path).unwrap();
    assert_eq!(code(s.login(Who::User, USER, &weak())), Code::PinLocked);
    assert_eq!(s.record().unwrap().user_failures, 3);
    // Locked attempts are not counted any further.
    assert_eq!(failures(&path, Who::User), 3);

    let mk = s.login(Who::So, SO, &weak()).unwrap();
    s.set_user_pin(&mk, b"new-user-pin", &weak()).unwrap();
    assert_eq!(s.record().unwrap().user_failures, 0);
    assert_eq!(code(s.login(Who::User, USER, &weak())), Code::PinIncorrect);
    s.login(Who::User, b"new-user-pin", &weak()).unwrap();

    // A locked SO PIN also blocks re-initialisation.
    for _ in 0..3 {
        let _ = s.login(Who::So, b"bad", &weak());
    }
    assert_eq!(code(s.reinitialize(SO, "x", &weak())), Code::PinLocked);
    assert_eq!(code(s.login(Who::So, SO, &weak())), Code::PinLocked);
}

#[test]
fn empty_pin_never_authenticates() {
    let dir = tempfile::tempdir().unwrap();
    let (path, s, mk) = ready_token(dir.path(), "t.db", 10);
    assert_eq!(code(s.login(Who::User, b"", &weak())), Code::PinIncorrect);
    assert_eq!(failures(&path, Who::User), 1);
    assert_eq!(code(s.set_user_pin(&mk, b"", &weak())), Code::PinLenRange);
    assert_eq!(
        code(s.change_pin(Who::So, &mk, b"", &weak())),
        Code::PinLenRange
    );
    let p = dir.path().join("e.db");
    assert_eq!(
        code(TokenStore::create(&p, 1, "l", "s", b"", &weak(), 10)),
        Code::PinLenRange
    );
}

#[test]
fn user_pin_must_be_initialised() {
    let dir = tempfile::tempdir().unwrap();
    let (_path, s) = new_token(dir.path(), "t.db", 10);
    assert_eq!(
        code(s.login(Who::User, USER, &weak())),
        Code::UserPinNotInitialized
    );
    let mk = s.login(Who::So, SO, &weak()).unwrap();
    assert_eq!(
        code(s.change_pin(Who::User, &mk, USER, &weak())),
        Code::UserPinNotInitialized
    );
    assert!(!s.record().unwrap().user_pin_initialized);
    s.set_user_pin(&mk, USER, &weak()).unwrap();
    assert!(s.record().unwrap().user_pin_initialized);
}

#[test]
fn change_pin_replaces_the_old_wrap() {
    let dir = tempfile::tempdir().unwrap();
    let (path, s, mk) = ready_token(dir.path(), "t.db", 10);
    let old = wrap_blob(&path, Who::User);
    s.change_pin(Who::User, &mk, b"second-pin", &weak())
        .unwrap();
    assert_eq!(code(s.login(Who::User, USER, &weak())), Code::PinIncorrect);
    assert_eq!(
        s.login(Who::User, b"second-pin", &weak()).unwrap().key(),
        mk.key()
    );
    assert!(!contains(&file_bytes(&path), &old));
    s.change_pin(Who::So, &mk, b"new-so-pin", &weak()).unwrap();
    s.login(Who::So, b"new-so-pin", &weak()).unwrap();
}

/// Replace the first occurrence of `from` in `record` with `to`.
fn patch(record: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let i = record
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern in record");
    let mut r = record.to_vec();
    r[i..i + from.len()].copy_from_slice(to);
    r
}

/// The encoded field `CKA_SENSITIVE = value` as it appears in a clear record.
fn sensitive_field(value: u8) -> Vec<u8> {
    let mut f = format::wide(CKA_SENSITIVE).to_le_bytes().to_vec();
    f.extend_from_slice(&[1, value]);
    f
}

#[test]
fn flipped_policy_attribute_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (path, s, mk) = ready_token(dir.path(), "t.db", 10);
    let generation = s
        .insert_object(Some(&mk), "k", &secret_key("k", &KEY_BYTES, false))
        .unwrap();
    let record = object_record(&path, "k");
    let tampered = patch(&record, &sensitive_field(1), &sensitive_field(0));

    // Plain edit: the public token key's tag no longer matches, with or without login.
    raw(&path)
        .execute("UPDATE object SET record = ?1 WHERE uid = 'k'", [&tampered])
        .unwrap();
    assert_eq!(rejected_uids(&s, None), ["k"]);
    assert_eq!(rejected_uids(&s, Some(&mk)), ["k"]);
    assert!(s.load_objects(Some(&mk)).unwrap().is_empty());
    assert_eq!(code(s.load_object(Some(&mk), "k")), Code::DeviceError);

    // An attacker who also re-tags the record with the public token key (which lives in the
    // file until it is sealed by a machine secret) still cannot make the key usable: its
    // sealed value is bound to the whole record and refuses to open.
    let meta = read_meta(&raw(&path), None).unwrap();
    let tag = seal::mac(&meta.pk, &meta.public_aad("k", generation, &tampered)).unwrap();
    raw(&path)
        .execute("UPDATE object SET tag = ?1 WHERE uid = 'k'", [&tag])
        .unwrap();
    assert_eq!(rejected_uids(&s, Some(&mk)), ["k"]);
}

#[test]
fn tampered_private_record_and_flags_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (path, s, mk) = ready_token(dir.path(), "t.db", 10);
    s.insert_object(Some(&mk), "p", &secret_key("p", &KEY_BYTES, true))
        .unwrap();
    s.insert_object(None, "c", &cert("c")).unwrap();
    let mut rec = object_record(&path, "p");
    let mid = rec.len() / 2;
    rec[mid] ^= 0x01;
    let db = raw(&path);
    db.execute("UPDATE object SET record = ?1 WHERE uid = 'p'", [&rec])
        .unwrap();
    assert_eq!(rejected_uids(&s, Some(&mk)), ["p"]);
    rec[mid] ^= 0x01;
    db.execute("UPDATE object SET record = ?1 WHERE uid = 'p'", [&rec])
        .unwrap();
    assert!(rejected_uids(&s, Some(&mk)).is_empty());

    // Flipping the private/public flag of a row, or its generation, breaks it.
    db.execute("UPDATE object SET private = 0 WHERE uid = 'p'", [])
        .unwrap();
    db.execute("UPDATE object SET private = 1 WHERE uid = 'c'", [])
        .unwrap();
    let mut r = rejected_uids(&s, Some(&mk));
    r.sort();
    assert_eq!(r, ["c", "p"]);
    db.execute("UPDATE object SET private = 1 - private", [])
        .unwrap();
    db.execute(
        "UPDATE object SET generation = generation + 100 WHERE uid = 'p'",
        [],
    )
    .unwrap();
    assert_eq!(rejected_uids(&s, Some(&mk)), ["p"]);
    // Without the master key the private row is simply not visible, never misread.
    assert_eq!(s.load_objects(None).unwrap().len(), 1);
}

#[test]
fn swapped_records_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (path, s, mk) = ready_token(dir.path(), "t.db", 10);
    for (uid, private) in [("a", true), ("b", true), ("c", false), ("d", false)] {
        let value = [uid.as_bytes()[0]; 32];
        s.insert_object(Some(&mk), uid, &secret_key(uid, &value, private))
            .unwrap();
    }
    let db = raw(&path);
    // Swap the private records of a and b (keeping each row's generation), and the whole
    // record + tag of the public c and d.
    db.execute_batch(
        "CREATE TEMP TABLE ab AS SELECT uid, record FROM object WHERE uid IN ('a', 'b');
         UPDATE object SET record = (SELECT record FROM ab WHERE ab.uid <> object.uid)
         WHERE uid IN ('a', 'b');
         CREATE TEMP TABLE cd AS SELECT uid, record, tag FROM object WHERE uid IN ('c', 'd');
         UPDATE object SET record = (SELECT record FROM cd WHERE cd.uid <> object.uid),
                           tag = (SELECT tag FROM cd WHERE cd.uid <> object.uid)
         WHERE uid IN ('c', 'd');",
    )
    .unwrap();
    assert_ne!(object_record(&path, "a"), object_record(&path, "b"));
    let mut r = rejected_uids(&s, Some(&mk));
    r.sort();
    assert_eq!(r, ["a", "b", "c", "d"]);
}

#[test]
fn record_copied_to_another_token_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (p1, s1, mk1) = ready_token(dir.path(), "one.db", 10);
    let (p2, s2, mk2) = ready_token(dir.path(), "two.db", 10);
    s1.insert_object(Some(&mk1), "k", &secret_key("k", &[1; 32], true))
        .unwrap();
    s1.insert_object(Some(&mk1), "c", &cert("c")).unwrap();
    s2.insert_object(Some(&mk2), "k", &secret_key("k", &[2; 32], true))
        .unwrap();
    s2.insert_object(Some(&mk2), "c", &cert("c")).unwrap();
    let src = raw(&p1);
    let dst = raw(&p2);
    for uid in ["k", "c"] {
        let (generation, private, record, tag): (i64, i64, Vec<u8>, Option<Vec<u8>>) = src
            .query_row(
                "SELECT generation, private, record, tag FROM object WHERE uid = ?1",
                [uid],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        dst.execute(
            "UPDATE object SET generation = ?1, private = ?2, record = ?3, tag = ?4 WHERE uid = ?5",
            rusqlite::params![generation, private, record, tag, uid],
        )
        .unwrap();
    }
    let mut r = rejected_uids(&s2, Some(&mk2));
    r.sort();
    assert_eq!(r, ["c", "k"]);
    // A master key of another token is refused outright.
    assert_eq!(code(s2.load_objects(Some(&mk1))), Code::DeviceError);
    assert_eq!(
        code(s2.insert_object(Some(&mk1), "x", &secret_key("x", &[3; 32], true))),
        Code::DeviceError
    );
}

#[test]
fn tampered_metadata_and_schema_fail_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (path, s) = new_token(dir.path(), "t.db", 10);
    drop(s);
    raw(&path)
        .execute("UPDATE token SET retry_limit = 1000000", [])
        .unwrap();
    assert_eq!(code(TokenStore::open(&path)), Code::DeviceError);
    raw(&path)
        .execute("UPDATE token SET retry_limit = 10", [])
        .unwrap();
    TokenStore::open(&path).unwrap();

    // A trigger that would reset the failure counter makes the store unusable.
    raw(&path)
        .execute_batch(
            "CREATE TRIGGER reset AFTER UPDATE ON pin BEGIN UPDATE pin SET failures = 0; END;",
        )
        .unwrap();
    assert_eq!(code(TokenStore::open(&path)), Code::DeviceError);

    // Something that is not a Keyward store.
    let other = dir.path().join("other.db");
    raw(&other).execute_batch("CREATE TABLE x (y)").unwrap();
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(code(TokenStore::open(&other)), Code::TokenNotRecognized);
}

#[test]
fn corrupt_file_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (path, s, mk) = ready_token(dir.path(), "t.db", 10);
    for i in 0..20 {
        let uid = format!("obj{i}");
        s.insert_object(Some(&mk), &uid, &secret_key(&uid, &[i; 32], true))
            .unwrap();
    }
    drop(s);
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 3 * 4096);
    for b in &mut bytes[4096 + 8..4096 + 200] {
        *b = 0xEE;
    }
    std::fs::write(&path, &bytes).unwrap();
    assert!(TokenStore::open(&path).is_err());
}

#[test]
fn reinitialize_wipes_objects_and_purges_old_wraps() {
    let dir = tempfile::tempdir().unwrap();
    let (path, s, old_mk) = ready_token(dir.path(), "t.db", 10);
    s.insert_object(Some(&old_mk), "p", &secret_key("p", &KEY_BYTES, true))
        .unwrap();
    s.insert_object(Some(&old_mk), "k", &secret_key("k", &KEY_BYTES, false))
        .unwrap();
    s.insert_object(None, "c", &cert("c")).unwrap();
    let old_so = wrap_blob(&path, Who::So);
    let old_user = wrap_blob(&path, Who::User);
    let old_record = object_record(&path, "p");
    let before = file_bytes(&path);
    assert!(contains(&before, &old_so) && contains(&before, &old_user));

    // A wrong SO PIN changes nothing.
    assert_eq!(
        code(s.reinitialize(b"not the so pin", "new", &weak())),
        Code::PinIncorrect
    );
    assert_eq!(s.load_objects(Some(&old_mk)).unwrap().len(), 3);

    s.reinitialize(SO, "new label", &weak()).unwrap();
    let rec = s.record().unwrap();
    assert_eq!(
        (
            rec.label.as_str(),
            rec.user_pin_initialized,
            rec.so_failures,
            rec.serial.as_str()
        ),
        ("new label", false, 0, "0011AABB")
    );
    assert!(s.load_objects(None).unwrap().is_empty());
    assert_eq!(code(s.load_objects(Some(&old_mk))), Code::DeviceError);
    let new_mk = s.login(Who::So, SO, &weak()).unwrap();
    assert_ne!(new_mk.key(), old_mk.key());
    assert!(s.load_objects(Some(&new_mk)).unwrap().is_empty());

    // The old wraps and records are gone from the database file and its WAL.
    let after = file_bytes(&path);
    for old in [&old_so, &old_user, &old_record] {
        assert!(!contains(&after, old));
    }
    assert_eq!(
        code(s.login(Who::User, USER, &weak())),
        Code::UserPinNotInitialized
    );
}

#[test]
fn deleted_objects_leave_no_trace_in_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let (path, s, mk) = ready_token(dir.path(), "t.db", 10);
    s.insert_object(Some(&mk), "p", &secret_key("p", &KEY_BYTES, true))
        .unwrap();
    s.insert_object(Some(&mk), "k", &secret_key("k", &KEY_BYTES, false))
        .unwrap();
    let rec_p = object_record(&path, "p");
    let rec_k = object_record(&path, "k");
    let bytes = file_bytes(&path);
    // Key bytes and PINs never reach the files in clear.
    for secret in [&KEY_BYTES[..], SO, USER] {
        assert!(!contains(&bytes, secret));
    }
    s.delete_object("p").unwrap();
    s.delete_object("k").unwrap();
    let after = file_bytes(&path);
    assert!(!contains(&after, &rec_p) && !contains(&after, &rec_k));
    assert_eq!(code(s.delete_object("p")), Code::ObjectHandleInvalid);
}

#[test]
fn tampered_kdf_parameters_fail_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let (path, s) = new_token(dir.path(), "t.db", 10);
    let db = raw(&path);
    let blob: Vec<u8> = db
        .query_row("SELECT kdf FROM pin WHERE who = 0", [], |r| r.get(0))
        .unwrap();
    let stored = StoredKdf::decode(&blob).unwrap();
    assert_eq!(stored.params, weak());

    // Lowered memory cost: a valid block, but the wrap's associated data no longer matches.
    let mut lowered = blob.clone();
    lowered[1..5].copy_from_slice(&32u32.to_le_bytes());
    db.execute("UPDATE pin SET kdf = ?1 WHERE who = 0", [&lowered])
        .unwrap();
    assert_eq!(code(s.login(Who::So, SO, &weak())), Code::PinIncorrect);
    assert_eq!(failures(&path, Who::So), 1);

    // Another salt: same.
    let mut salted = blob.clone();
    let last = salted.len() - 1;
    salted[last] ^= 1;
    db.execute("UPDATE pin SET kdf = ?1 WHERE who = 0", [&salted])
        .unwrap();
    assert_eq!(code(s.login(Who::So, SO, &weak())), Code::PinIncorrect);

    // Absurd parameters are refused without running the KDF (and the attempt still counts).
    let mut huge = blob.clone();
    huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
    db.execute("UPDATE pin SET kdf = ?1 WHERE who = 0", [&huge])
        .unwrap();
    assert_eq!(code(s.login(Who::So, SO, &weak())), Code::DeviceError);
    assert_eq!(failures(&path, Who::So), 3);

    db.execute("UPDATE pin SET kdf = ?1 WHERE who = 0", [&blob])
        .unwrap();
    s.login(Who::So, SO, &weak()).unwrap();
    assert_eq!(failures(&path, Who::So), 0);
}

#[test]
fn weaker_stored_parameters_are_upgraded_never_lowered() {
    let dir = tempfile::tempdir().unwrap();
    let (path, s) = new_token(dir.path(), "t.db", 10);
    let stored = |p: &Path| {
        let blob: Vec<u8> = raw(p)
            .query_row("SELECT kdf FROM pin WHERE who = 0", [], |r| r.get(0))
            .unwrap();
        StoredKdf::decode(&blob).unwrap().params
    };
    let stronger = KdfParams::Argon2id {
        m_kib: 128,
        t: 2,
        p: 1,
    };
    let old_wrap = wrap_blob(&path, Who::So);
    let mk = s.login(Who::So, SO, &stronger).unwrap();
    assert_eq!(stored(&path), stronger);
    assert!(!contains(&file_bytes(&path), &old_wrap));
    // A weaker configuration later does not lower them.
    assert_eq!(s.login(Who::So, SO, &weak()).unwrap().key(), mk.key());
    assert_eq!(stored(&path), stronger);
    // Switching to FIPS-approved PBKDF2 re-wraps with it.
    let fips = KdfParams::Pbkdf2Sha256 { iterations: 1000 };
    s.login(Who::So, SO, &fips).unwrap();
    assert_eq!(stored(&path), fips);
    assert_eq!(s.login(Who::So, SO, &fips).unwrap().key(), mk.key());
}

#[test]
fn pbkdf2_tokens_work() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.db");
    let fips = KdfParams::Pbkdf2Sha256 { iterations: 1000 };
    let s = TokenStore::create(&path, 2, "fips", "S", SO, &fips, 10).unwrap();
    let mk = s.login(Who::So, SO, &fips).unwrap();
    s.set_user_pin(&mk, USER, &fips).unwrap();
    assert_eq!(s.login(Who::User, USER, &fips).unwrap().key(), mk.key());
    assert_eq!(code(s.login(Who::User, SO, &fips)), Code::PinIncorrect);
    // Out-of-range configured parameters are refused.
    let bad = KdfParams::Pbkdf2Sha256 { iterations: 0 };
    assert_eq!(code(s.login(Who::User, USER, &bad)), Code::GeneralError);
}

#[test]
fn update_and_delete_rules() {
    let dir = tempfile::tempdir().unwrap();
    let (_path, s, mk) = ready_token(dir.path(), "t.db", 10);
    let g1 = s
        .insert_object(Some(&mk), "k", &secret_key("k", &KEY_BYTES, false))
        .unwrap();
    let gc = s.insert_object(None, "c", &cert("c")).unwrap();
    assert_eq!(
        code(s.insert_object(Some(&mk), "k", &cert("k"))),
        Code::GeneralError
    );
    assert_eq!(
        code(s.insert_object(None, "p", &secret_key("p", &KEY_BYTES, true))),
        Code::UserNotLoggedIn
    );
    assert_eq!(
        code(s.insert_object(None, "q", &secret_key("q", &KEY_BYTES, false))),
        Code::UserNotLoggedIn
    );

    let mut relabelled = secret_key("k", &KEY_BYTES, false);
    relabelled.set(CKA_LABEL, AttrValue::bytes(b"renamed".to_vec()));
    // Re-sealing key material needs the master key, even for a public object.
    assert_eq!(
        code(s.update_object(None, "k", &relabelled)),
        Code::UserNotLoggedIn
    );
    let g2 = s.update_object(Some(&mk), "k", &relabelled).unwrap();
    assert!(g2 > g1 && g2 > gc);
    let o = s.load_object(Some(&mk), "k").unwrap().unwrap();
    assert_eq!((o.attrs, o.generation), (relabelled, g2));

    let mut c2 = cert("c");
    c2.set(CKA_LABEL, AttrValue::bytes(b"cert".to_vec()));
    let g3 = s.update_object(None, "c", &c2).unwrap();
    assert!(g3 > g2);
    assert_eq!(
        code(s.update_object(None, "gone", &c2)),
        Code::ObjectHandleInvalid
    );

    s.delete_object("c").unwrap();
    assert_eq!(s.load_object(None, "c").unwrap(), None);
    assert_eq!(s.versions().unwrap(), vec![("k".to_string(), g2)]);
}

#[test]
fn the_lock_free_change_check_never_misses_a_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (path, a, mk) = ready_token(dir.path(), "t.db", 10);
    let b = TokenStore::open(&path).unwrap();
    assert!(
        b.shm_header_signature().is_some(),
        "the WAL-index is readable"
    );
    b.changed().unwrap();
    // Back-to-back commits, each checked at once, with checkpoints in between so the WAL
    // restarts and its size repeats: every one is seen, and nothing is reported twice.
    for i in 0..40 {
        let uid = format!("k{i}");
        a.insert_object(Some(&mk), &uid, &secret_key(&uid, &KEY_BYTES, true))
            .unwrap();
        assert!(b.changed().unwrap(), "commit {i} was missed");
        assert!(!b.changed().unwrap());
        if i % 7 == 0 {
            raw(&path)
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .unwrap();
        }
    }
    assert_eq!(b.load_objects(Some(&mk)).unwrap().len(), 40);
}

#[test]
fn two_connections_see_each_others_commits() {
    let dir = tempfile::tempdir().unwrap();
    let (path, a, mk) = ready_token(dir.path(), "t.db", 10);
    let b = TokenStore::open(&path).unwrap();
    assert!(!a.changed().unwrap());
    assert!(!b.changed().unwrap());

    a.insert_object(Some(&mk), "k", &secret_key("k", &KEY_BYTES, true))
        .unwrap();
    assert!(!a.changed().unwrap(), "own commits are not reported");
    assert!(b.changed().unwrap());
    assert!(!b.changed().unwrap());
    let seen = b.load_objects(Some(&mk)).unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].attrs, secret_key("k", &KEY_BYTES, true));

    b.delete_object("k").unwrap();
    assert!(a.changed().unwrap());
    assert!(a.load_objects(Some(&mk)).unwrap().is_empty());

    // Failure counters are shared.
    let _ = a.login(Who::User, b"wrong", &weak());
    assert_eq!(b.record().unwrap().user_failures, 1);
}

#[test]
fn concurrent_wrong_logins_never_exceed_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (path, s, _mk) = ready_token(dir.path(), "t.db", 5);
    let stores = [Arc::new(s), Arc::new(TokenStore::open(&path).unwrap())];
    let mut handles = Vec::new();
    for t in 0..8 {
        let st = stores[t % 2].clone();
        handles.push(std::thread::spawn(move || {
            (0..4)
                .map(|_| st.login(Who::User, b"guess", &weak()).unwrap_err().code())
                .collect::<Vec<_>>()
        }));
    }
    let codes: Vec<Code> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let incorrect = codes.iter().filter(|c| **c == Code::PinIncorrect).count();
    let locked = codes.iter().filter(|c| **c == Code::PinLocked).count();
    // Exactly `limit` attempts were evaluated: four reported as incorrect, the fifth as
    // the one that locked the PIN; every later one was refused unevaluated.
    assert_eq!((incorrect, locked, codes.len()), (4, 28, 32));
    assert_eq!(failures(&path, Who::User), 5);
    assert_eq!(
        code(stores[1].login(Who::User, USER, &weak())),
        Code::PinLocked
    );
}

#[test]
fn fuzzing_entry_accepts_records_and_garbage() {
    let enc = format::encode_attrs(&secret_key("k", &KEY_BYTES, true)).unwrap();
    assert!(fuzzing::record_round_trip(&enc));
    assert!(fuzzing::record_round_trip(b"\x01garbage"));
    assert!(fuzzing::record_round_trip(&[]));
}
