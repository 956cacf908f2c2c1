//! The token store as applications see it: many threads signing at once, and a second
//! process on the same storage directory that sees this one's objects, changes them, shares
//! the PIN counter but never the login (SECURITY AUTH-01, SESS-04, STORE).

use std::sync::Arc;
use std::thread;

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use cryptoki_sys::*;
use openssl::hash::MessageDigest;

use super::keys::{self, P256_OID};
use crate::common::{
    self, RETRY_LIMIT, USER_PIN, env_var, find, is_keyward, pin, pkcs11, role, user_session,
};
use crate::{assert_rv, call};

#[test]
fn concurrent_threads_sign() {
    let p = pkcs11();
    let slot = common::fresh_token();
    let s = user_session(slot);
    let (public, private) = keys::gen_ec(&s, P256_OID, true);
    let pk = Arc::new(keys::ec_public_from_token(&s, public));
    let workers: Vec<_> = (0..6)
        .map(|t| {
            let pk = pk.clone();
            thread::spawn(move || {
                // Each thread has its own session; the login is the application's.
                let s = p.open_ro_session(slot).unwrap();
                for i in 0..20 {
                    let msg = format!("thread {t} message {i}");
                    let sig = s
                        .sign(&Mechanism::EcdsaSha256, private, msg.as_bytes())
                        .unwrap();
                    assert!(keys::openssl_verify(
                        &pk,
                        MessageDigest::sha256(),
                        msg.as_bytes(),
                        &keys::ecdsa_raw_to_der(&sig)
                    ));
                    s.generate_random_vec(16).unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a signing thread panicked");
    }
}

#[test]
fn concurrent_threads_create_and_find() {
    let p = pkcs11();
    let slot = common::fresh_token();
    let _login = user_session(slot);
    let workers: Vec<_> = (0..4u8)
        .map(|t| {
            thread::spawn(move || {
                let s = p.open_rw_session(slot).unwrap();
                for i in 0..10u8 {
                    s.create_object(&[
                        Attribute::Class(ObjectClass::DATA),
                        Attribute::Token(true),
                        Attribute::Application(vec![t, i]),
                    ])
                    .unwrap();
                    assert_eq!(find(&s, &[Attribute::Application(vec![t, i])]).len(), 1);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a thread panicked");
    }
    let s = p.open_ro_session(slot).unwrap();
    assert_eq!(find(&s, &[Attribute::Class(ObjectClass::DATA)]).len(), 40);
}

const SEES: &str = "suite::store::a_second_process_sees_creations_and_deletions";

#[test]
fn a_second_process_sees_creations_and_deletions() {
    if role().as_deref() == Some("peer") {
        let p = pkcs11();
        let slot = common::slot_by_label(p, &env_var("KW_LABEL")).expect("the parent's token");
        let s = user_session(slot);
        let a = find(&s, &[Attribute::Label(b"from-parent".to_vec())]);
        assert_eq!(a.len(), 1, "the parent's object");
        let private = find(&s, &[Attribute::Label(b"parent-private".to_vec())]);
        assert_eq!(private.len(), 1, "the parent's private object after login");
        let b = find(&s, &[Attribute::Label(b"doomed".to_vec())]);
        s.destroy_object(b[0]).unwrap();
        s.create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Label(b"from-child".to_vec()),
            Attribute::Value(b"child's".to_vec()),
        ])
        .unwrap();
        return;
    }
    let p = pkcs11();
    let (slot, label) = common::fresh_token_without_user_pin();
    common::set_user_pin(p, slot, USER_PIN);
    let s = user_session(slot);
    for (l, private) in [
        ("from-parent", false),
        ("doomed", false),
        ("parent-private", true),
    ] {
        s.create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Private(private),
            Attribute::Label(l.as_bytes().to_vec()),
        ])
        .unwrap();
    }
    // A session object stays in this process.
    s.create_object(&[
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(false),
        Attribute::Label(b"session-only".to_vec()),
    ])
    .unwrap();
    common::child_ok(SEES, "peer", &[("KW_LABEL", label)]);
    // Seen without restarting.
    let c = find(&s, &[Attribute::Label(b"from-child".to_vec())]);
    assert_eq!(c.len(), 1, "the child's creation");
    assert_eq!(
        common::attr_bytes(&s, c[0], cryptoki::object::AttributeType::Value),
        b"child's"
    );
    assert!(
        find(&s, &[Attribute::Label(b"doomed".to_vec())]).is_empty(),
        "the child's deletion"
    );
    assert_eq!(
        find(&s, &[Attribute::Label(b"session-only".to_vec())]).len(),
        1
    );
}

const EMPTY_PIN: &str = "suite::store::login_is_not_shared_with_another_process";

/// OpenSC CVE-2023-40660: another process must not ride on this process's login.
#[test]
fn login_is_not_shared_with_another_process() {
    if role().as_deref() == Some("peer") {
        let p = pkcs11();
        let slot = common::slot_by_label(p, &env_var("KW_LABEL")).expect("the parent's token");
        let s = p.open_rw_session(slot).unwrap();
        assert_eq!(
            s.get_session_info().unwrap().session_state(),
            cryptoki::session::SessionState::RwPublic
        );
        let mut empty: [u8; 0] = [];
        let rv = call!(C_Login, s.handle(), CKU_USER, empty.as_mut_ptr(), 0);
        assert_ne!(rv, CKR_OK, "an empty PIN");
        let rv = call!(C_Login, s.handle(), CKU_USER, std::ptr::null_mut(), 0);
        assert_ne!(rv, CKR_OK, "a NULL PIN");
        assert!(find(&s, &[Attribute::Label(b"secret".to_vec())]).is_empty());
        assert_rv!(
            s.create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Private(true),
                Attribute::Token(true),
            ]),
            UserNotLoggedIn
        );
        return;
    }
    let p = pkcs11();
    let (slot, label) = common::fresh_token_without_user_pin();
    common::set_user_pin(p, slot, USER_PIN);
    let s = user_session(slot);
    s.create_object(&[
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Label(b"secret".to_vec()),
    ])
    .unwrap();
    common::child_ok(EMPTY_PIN, "peer", &[("KW_LABEL", label)]);
    assert_eq!(find(&s, &[Attribute::Label(b"secret".to_vec())]).len(), 1);
}

const SHARED_COUNTER: &str = "suite::store::failed_logins_count_across_processes";

#[test]
fn failed_logins_count_across_processes() {
    if !is_keyward() {
        return;
    }
    let half = RETRY_LIMIT / 2;
    if role().as_deref() == Some("peer") {
        let p = pkcs11();
        let slot = common::slot_by_label(p, &env_var("KW_LABEL")).expect("the parent's token");
        let s = p.open_ro_session(slot).unwrap();
        for i in 0..RETRY_LIMIT - half {
            let r = s.login(UserType::User, Some(&pin("peer-guess")));
            if i + 1 < RETRY_LIMIT - half {
                assert_rv!(r, PinIncorrect);
            } else {
                assert_rv!(r, PinLocked);
            }
        }
        return;
    }
    let p = pkcs11();
    let (slot, label) = common::fresh_token_without_user_pin();
    common::set_user_pin(p, slot, USER_PIN);
    let s = p.open_ro_session(slot).unwrap();
    for _ in 0..half {
        assert_rv!(
            s.login(UserType::User, Some(&pin("parent-guess"))),
            PinIncorrect
        );
    }
    common::child_ok(SHARED_COUNTER, "peer", &[("KW_LABEL", label)]);
    assert!(p.get_token_info(slot).unwrap().user_pin_locked());
    assert_rv!(s.login(UserType::User, Some(&pin(USER_PIN))), PinLocked);
}
