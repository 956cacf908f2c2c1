//! Engine tests through the Rust `Api`: session states, login rules, object access, find.

use cryptoki_sys::*;

use crate::api::Api;
use crate::config::Config;
use crate::engine::Engine;
use crate::error::Code;
use crate::types::{AttrResult, AttrValue, Attribute, Mechanism};

const SO: &[u8] = b"so-pin-1234";
const USER: &[u8] = b"user-pin-1234";

struct Fixture {
    _dir: tempfile::TempDir,
    engine: Engine,
}

fn config(dir: &std::path::Path) -> Config {
    let text = format!(
        "storage_dir = {:?}\npin_retry_limit = 3\n[kdf]\nmemory_kib = 256\niterations = 1\n",
        dir.to_str().unwrap()
    );
    Config::from_str(&text, None).unwrap()
}

fn label(s: &str) -> [u8; 32] {
    let mut l = [b' '; 32];
    l[..s.len()].copy_from_slice(s.as_bytes());
    l
}

/// A fresh storage directory with one token whose user PIN is set; returns its slot.
fn fixture() -> (Fixture, CK_SLOT_ID) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(config(dir.path())).unwrap();
    let app = engine.application();
    let free = *app.slot_list(true).unwrap().last().unwrap();
    app.init_token(free, SO, &label("test")).unwrap();
    let s = app
        .open_session(free, CKF_SERIAL_SESSION | CKF_RW_SESSION)
        .unwrap();
    app.login(s, CKU_SO, SO).unwrap();
    app.init_pin(s, USER).unwrap();
    app.close_session(s).unwrap();
    (Fixture { _dir: dir, engine }, free)
}

fn code<T: std::fmt::Debug>(r: crate::Result<T>) -> Code {
    r.unwrap_err().code()
}

#[test]
fn free_slot_becomes_a_token_and_a_new_free_slot_appears() {
    let (f, slot) = fixture();
    let app = f.engine.application();
    let slots = app.slot_list(true).unwrap();
    assert_eq!(slots, vec![slot, slot + 1]);
    let info = app.token_info(slot).unwrap();
    assert_eq!(info.label, "test");
    assert_ne!(info.flags & CKF_TOKEN_INITIALIZED, 0);
    assert_ne!(info.flags & CKF_USER_PIN_INITIALIZED, 0);
    assert_eq!(
        app.token_info(slot + 1).unwrap().flags & CKF_TOKEN_INITIALIZED,
        0
    );
    assert_eq!(
        code(app.open_session(slot + 1, CKF_SERIAL_SESSION)),
        Code::TokenNotRecognized
    );
    assert_eq!(
        code(app.open_session(slot + 7, CKF_SERIAL_SESSION)),
        Code::SlotIdInvalid
    );
}

#[test]
fn session_states_follow_login() {
    let (f, slot) = fixture();
    let app = f.engine.application();
    let ro = app.open_session(slot, CKF_SERIAL_SESSION).unwrap();
    let rw = app
        .open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)
        .unwrap();
    assert_eq!(app.session_info(ro).unwrap().state, CKS_RO_PUBLIC_SESSION);
    assert_eq!(app.session_info(rw).unwrap().state, CKS_RW_PUBLIC_SESSION);
    assert_eq!(code(app.login(rw, CKU_SO, SO)), Code::SessionReadOnlyExists);
    app.login(ro, CKU_USER, USER).unwrap();
    assert_eq!(app.session_info(ro).unwrap().state, CKS_RO_USER_FUNCTIONS);
    assert_eq!(app.session_info(rw).unwrap().state, CKS_RW_USER_FUNCTIONS);
    assert_eq!(
        code(app.login(rw, CKU_USER, USER)),
        Code::UserAlreadyLoggedIn
    );
    assert_eq!(
        code(app.login(rw, CKU_SO, SO)),
        Code::UserAnotherAlreadyLoggedIn
    );
    app.logout(rw).unwrap();
    assert_eq!(code(app.logout(rw)), Code::UserNotLoggedIn);
    assert_eq!(
        code(app.open_session(slot, 0)),
        Code::SessionParallelNotSupported
    );
    app.close_session(ro).unwrap();
    app.login(rw, CKU_SO, SO).unwrap();
    assert_eq!(app.session_info(rw).unwrap().state, CKS_RW_SO_FUNCTIONS);
    assert_eq!(
        code(app.open_session(slot, CKF_SERIAL_SESSION)),
        Code::SessionReadWriteSoExists
    );
}

#[test]
fn lockout_counts_and_unlocks() {
    let (f, slot) = fixture();
    let app = f.engine.application();
    let s = app
        .open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)
        .unwrap();
    assert_eq!(
        code(app.login(s, CKU_USER, b"wrong-pin")),
        Code::PinIncorrect
    );
    assert_ne!(
        app.token_info(slot).unwrap().flags & CKF_USER_PIN_COUNT_LOW,
        0
    );
    assert_eq!(code(app.login(s, CKU_USER, b"")), Code::PinIncorrect);
    assert_ne!(
        app.token_info(slot).unwrap().flags & CKF_USER_PIN_FINAL_TRY,
        0
    );
    // The attempt that uses the last try reports the lock.
    assert_eq!(code(app.login(s, CKU_USER, b"wrong-pin")), Code::PinLocked);
    assert_ne!(app.token_info(slot).unwrap().flags & CKF_USER_PIN_LOCKED, 0);
    assert_eq!(code(app.login(s, CKU_USER, USER)), Code::PinLocked);
    // A restart (a new engine over the same directory) keeps the lock.
    let again = Engine::new(f.engine.config().clone())
        .unwrap()
        .application();
    let s2 = again
        .open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)
        .unwrap();
    assert_eq!(code(again.login(s2, CKU_USER, USER)), Code::PinLocked);
    again.login(s2, CKU_SO, SO).unwrap();
    again.init_pin(s2, USER).unwrap();
    again.logout(s2).unwrap();
    again.login(s2, CKU_USER, USER).unwrap();
}

#[test]
fn private_objects_need_login_and_logout_invalidates_handles() {
    let (f, slot) = fixture();
    let app = f.engine.application();
    let s = app
        .open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)
        .unwrap();
    let data = |private: bool| {
        vec![
            Attribute::ulong(CKA_CLASS, CKO_DATA),
            Attribute::bool(CKA_TOKEN, true),
            Attribute::bool(CKA_PRIVATE, private),
            Attribute::bytes(CKA_LABEL, b"d".to_vec()),
            Attribute::bytes(CKA_VALUE, b"hello".to_vec()),
        ]
    };
    assert_eq!(
        code(app.create_object(s, data(true))),
        Code::UserNotLoggedIn
    );
    let public = app.create_object(s, data(false)).unwrap();
    app.login(s, CKU_USER, USER).unwrap();
    let private = app.create_object(s, data(true)).unwrap();
    app.find_objects_init(s, vec![Attribute::bytes(CKA_LABEL, b"d".to_vec())])
        .unwrap();
    let mut found = app.find_objects(s, 10).unwrap();
    found.sort();
    assert_eq!(found, vec![public, private]);
    app.find_objects_final(s).unwrap();
    app.logout(s).unwrap();
    assert_eq!(
        code(app.get_attribute_value(s, private, &[CKA_VALUE])),
        Code::ObjectHandleInvalid
    );
    app.login(s, CKU_USER, USER).unwrap();
    // The old handle stays invalid even after a new login (UG "session events").
    assert_eq!(
        code(app.get_attribute_value(s, private, &[CKA_VALUE])),
        Code::ObjectHandleInvalid
    );
    let v = app
        .get_attribute_value(s, public, &[CKA_VALUE, CKA_UNIQUE_ID, 0x8000_1234])
        .unwrap();
    assert_eq!(v[0], AttrResult::Value(AttrValue::bytes(b"hello".to_vec())));
    assert!(matches!(v[1], AttrResult::Value(AttrValue::Bytes(_))));
    assert_eq!(v[2], AttrResult::Invalid);
}

#[test]
fn objects_persist_across_engines_and_are_seen_by_another_engine() {
    let (f, slot) = fixture();
    let a = f.engine.application();
    let other = Engine::new(f.engine.config().clone())
        .unwrap()
        .application();
    let s = a
        .open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)
        .unwrap();
    let t = other.open_session(slot, CKF_SERIAL_SESSION).unwrap();
    let h = a
        .create_object(
            s,
            vec![
                Attribute::ulong(CKA_CLASS, CKO_DATA),
                Attribute::bool(CKA_TOKEN, true),
                Attribute::bytes(CKA_LABEL, b"shared".to_vec()),
            ],
        )
        .unwrap();
    other
        .find_objects_init(t, vec![Attribute::bytes(CKA_LABEL, b"shared".to_vec())])
        .unwrap();
    assert_eq!(other.find_objects(t, 5).unwrap().len(), 1);
    other.find_objects_final(t).unwrap();
    a.destroy_object(s, h).unwrap();
    other
        .find_objects_init(t, vec![Attribute::bytes(CKA_LABEL, b"shared".to_vec())])
        .unwrap();
    assert!(other.find_objects(t, 5).unwrap().is_empty());
}

#[test]
fn read_only_session_cannot_write_token_objects() {
    let (f, slot) = fixture();
    let app = f.engine.application();
    let s = app.open_session(slot, CKF_SERIAL_SESSION).unwrap();
    let t = vec![
        Attribute::ulong(CKA_CLASS, CKO_DATA),
        Attribute::bool(CKA_TOKEN, true),
    ];
    assert_eq!(code(app.create_object(s, t)), Code::SessionReadOnly);
    let session_obj = app
        .create_object(s, vec![Attribute::ulong(CKA_CLASS, CKO_DATA)])
        .unwrap();
    app.close_session(s).unwrap();
    let s = app.open_session(slot, CKF_SERIAL_SESSION).unwrap();
    assert_eq!(
        code(app.object_size(s, session_obj)),
        Code::ObjectHandleInvalid
    );
}

#[test]
fn ec_key_signs_and_operation_states_follow_the_spec() {
    let (f, slot) = fixture();
    let app = f.engine.application();
    let s = app
        .open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)
        .unwrap();
    app.login(s, CKU_USER, USER).unwrap();
    let p256 = vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let (public, private) = app
        .generate_key_pair(
            s,
            &Mechanism::new(CKM_EC_KEY_PAIR_GEN),
            vec![
                Attribute::bytes(CKA_EC_PARAMS, p256),
                Attribute::bool(CKA_VERIFY, true),
            ],
            vec![
                Attribute::bool(CKA_SIGN, true),
                Attribute::bool(CKA_TOKEN, true),
            ],
        )
        .unwrap();
    let ecdsa = Mechanism::new(CKM_ECDSA_SHA256);
    assert_eq!(
        code(app.sign(s, b"msg", Some(64))),
        Code::OperationNotInitialized
    );
    app.sign_init(s, &ecdsa, private).unwrap();
    assert_eq!(
        code(app.sign_init(s, &ecdsa, private)),
        Code::OperationActive
    );
    assert_eq!(
        app.sign(s, b"msg", None).unwrap(),
        crate::types::Output::Len(64)
    );
    assert_eq!(
        app.sign(s, b"msg", Some(10)).unwrap(),
        crate::types::Output::TooSmall(64)
    );
    let sig = match app.sign(s, b"msg", Some(64)).unwrap() {
        crate::types::Output::Data(d) => d,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        code(app.sign(s, b"msg", Some(64))),
        Code::OperationNotInitialized
    );
    app.verify_init(s, &ecdsa, public).unwrap();
    app.verify(s, b"msg", &sig).unwrap();
    app.verify_init(s, &ecdsa, public).unwrap();
    assert_eq!(code(app.verify(s, b"other", &sig)), Code::SignatureInvalid);
    // Key-usage and key-type checks, in priority order.
    assert_eq!(
        code(app.sign_init(s, &ecdsa, public)),
        Code::KeyFunctionNotPermitted
    );
    assert_eq!(
        code(app.sign_init(s, &Mechanism::new(CKM_SHA256_RSA_PKCS), private)),
        Code::KeyTypeInconsistent
    );
    assert_eq!(
        code(app.sign_init(s, &Mechanism::new(0x7fff_0000), private)),
        Code::MechanismInvalid
    );
}

#[test]
fn find_uses_each_index_and_still_matches_the_whole_template() {
    let (f, slot) = fixture();
    let app = f.engine.application();
    let s = app
        .open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)
        .unwrap();
    app.login(s, CKU_USER, USER).unwrap();
    for i in 0..50u8 {
        app.create_object(
            s,
            vec![
                Attribute::ulong(CKA_CLASS, CKO_DATA),
                Attribute::bool(CKA_TOKEN, true),
                Attribute::bytes(CKA_LABEL, vec![b'd', i]),
            ],
        )
        .unwrap();
    }
    let aes = |label: &[u8], id: &[u8]| {
        app.create_object(
            s,
            vec![
                Attribute::ulong(CKA_CLASS, CKO_SECRET_KEY),
                Attribute::ulong(CKA_KEY_TYPE, CKK_AES),
                Attribute::bool(CKA_TOKEN, true),
                Attribute::bytes(CKA_LABEL, label.to_vec()),
                Attribute::bytes(CKA_ID, id.to_vec()),
                Attribute::bytes(CKA_VALUE, vec![7u8; 16]),
            ],
        )
        .unwrap()
    };
    let k1 = aes(b"k1", b"\x01");
    let k2 = aes(b"k2", b"\x02");
    let find = |t: Vec<Attribute>| {
        app.find_objects_init(s, t).unwrap();
        let mut v = app.find_objects(s, 1000).unwrap();
        app.find_objects_final(s).unwrap();
        v.sort();
        v
    };
    assert_eq!(
        find(vec![Attribute::ulong(CKA_KEY_TYPE, CKK_AES)]),
        vec![k1, k2]
    );
    assert_eq!(
        find(vec![Attribute::ulong(CKA_CLASS, CKO_SECRET_KEY)]),
        vec![k1, k2]
    );
    assert_eq!(find(vec![Attribute::ulong(CKA_CLASS, CKO_DATA)]).len(), 50);
    assert_eq!(
        find(vec![Attribute::bytes(CKA_ID, b"\x02".to_vec())]),
        vec![k2]
    );
    assert_eq!(
        find(vec![
            Attribute::bytes(CKA_LABEL, b"k1".to_vec()),
            Attribute::ulong(CKA_KEY_TYPE, CKK_AES)
        ]),
        vec![k1]
    );
    // The index narrows; the rest of the template still has to match.
    assert!(
        find(vec![
            Attribute::bytes(CKA_LABEL, b"k1".to_vec()),
            Attribute::bytes(CKA_ID, b"\x02".to_vec())
        ])
        .is_empty()
    );
    app.destroy_object(s, k1).unwrap();
    assert_eq!(
        find(vec![Attribute::ulong(CKA_KEY_TYPE, CKK_AES)]),
        vec![k2]
    );
}
