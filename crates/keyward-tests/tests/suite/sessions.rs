//! Sessions and login (PKCS#11 3.0 §5.6, UG session states): R/O and R/W sessions, the five
//! session states, login shared by all sessions of the application, each login error code,
//! C_LoginUser, the retry limit and its SO unlock, and empty PINs
//! (SECURITY SESS-02/03, AUTH-01/02/03).

use std::ptr::null_mut;

use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::{SessionState, UserType};
use cryptoki_sys::*;

use crate::common::{
    self, RETRY_LIMIT, SO_PIN, USER_PIN, find, is_keyward, pin, pkcs11, user_session,
};
use crate::{assert_ckr, assert_rv, call, call30};

fn state(s: &cryptoki::session::Session) -> SessionState {
    s.get_session_info()
        .expect("C_GetSessionInfo")
        .session_state()
}

#[test]
fn session_states_follow_session_kind_and_login() {
    let p = pkcs11();
    let slot = common::fresh_token();
    let ro = p.open_ro_session(slot).unwrap();
    let rw = p.open_rw_session(slot).unwrap();
    assert_eq!(state(&ro), SessionState::RoPublic);
    assert_eq!(state(&rw), SessionState::RwPublic);
    assert!(!ro.get_session_info().unwrap().read_write());
    assert!(rw.get_session_info().unwrap().read_write());
    assert_eq!(ro.get_session_info().unwrap().slot_id().id(), slot.id());

    rw.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    assert_eq!(
        state(&ro),
        SessionState::RoUser,
        "login applies to every session"
    );
    assert_eq!(state(&rw), SessionState::RwUser);
    // A session opened later starts logged in.
    let later = p.open_ro_session(slot).unwrap();
    assert_eq!(state(&later), SessionState::RoUser);
    // Logout through any session ends it for all.
    later.logout().unwrap();
    assert_eq!(state(&rw), SessionState::RwPublic);
    assert_eq!(state(&ro), SessionState::RoPublic);
    drop((ro, later));

    rw.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
    assert_eq!(state(&rw), SessionState::RwSecurityOfficer);
    // No R/O session while the SO is logged in.
    assert_rv!(p.open_ro_session(slot), SessionReadWriteSoExists);
    let rw2 = p.open_rw_session(slot).unwrap();
    assert_eq!(state(&rw2), SessionState::RwSecurityOfficer);
}

#[test]
fn serial_session_flag_is_required() {
    let slot = common::fresh_token();
    let mut h: CK_SESSION_HANDLE = 0;
    assert_ckr!(
        call!(
            C_OpenSession,
            common::slot_id(slot),
            CKF_RW_SESSION,
            null_mut(),
            None,
            &mut h
        ),
        CKR_SESSION_PARALLEL_NOT_SUPPORTED
    );
    assert_ckr!(
        call!(
            C_OpenSession,
            common::slot_id(slot),
            CKF_SERIAL_SESSION,
            null_mut(),
            None,
            &mut h
        ),
        CKR_OK
    );
    assert_ne!(h, CK_INVALID_HANDLE, "handle 0 is never valid");
    let mut info = CK_SESSION_INFO::default();
    assert_ckr!(call!(C_GetSessionInfo, h, &mut info), CKR_OK);
    assert_eq!(info.flags & CKF_SERIAL_SESSION, CKF_SERIAL_SESSION);
    assert_eq!(info.flags & CKF_RW_SESSION, 0);
    assert_ckr!(call!(C_CloseSession, h), CKR_OK);
    assert_ckr!(
        call!(C_GetSessionInfo, h, &mut info),
        CKR_SESSION_HANDLE_INVALID
    );
    assert_ckr!(call!(C_CloseSession, h), CKR_SESSION_HANDLE_INVALID);
}

#[test]
fn close_all_sessions_closes_them_and_logs_out() {
    let p = pkcs11();
    let slot = common::fresh_token();
    let other = common::fresh_token();
    let a = p.open_rw_session_no_drop(slot).unwrap();
    let b = p.open_ro_session_no_drop(slot).unwrap();
    let keep = p.open_ro_session(other).unwrap();
    a.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    call!(C_CloseAllSessions, common::slot_id(slot));
    let mut info = CK_SESSION_INFO::default();
    assert_ckr!(
        call!(C_GetSessionInfo, a.handle(), &mut info),
        CKR_SESSION_HANDLE_INVALID
    );
    assert_ckr!(
        call!(C_GetSessionInfo, b.handle(), &mut info),
        CKR_SESSION_HANDLE_INVALID
    );
    assert_eq!(
        state(&keep),
        SessionState::RoPublic,
        "other slots' sessions stay"
    );
    let c = p.open_ro_session(slot).unwrap();
    assert_eq!(
        state(&c),
        SessionState::RoPublic,
        "the login ended with the sessions"
    );
    if is_keyward() {
        assert_eq!(p.get_token_info(slot).unwrap().session_count(), Some(1));
    }
}

#[test]
fn closing_the_last_session_logs_out() {
    let p = pkcs11();
    let slot = common::fresh_token();
    {
        let s = user_session(slot);
        assert_eq!(state(&s), SessionState::RwUser);
    }
    let s = p.open_ro_session(slot).unwrap();
    assert_eq!(state(&s), SessionState::RoPublic);
}

#[test]
fn login_error_codes() {
    let p = pkcs11();
    let slot = common::fresh_token();
    let rw = p.open_rw_session(slot).unwrap();

    assert_rv!(rw.logout(), UserNotLoggedIn);
    assert_rv!(
        rw.login(UserType::User, Some(&pin("incorrect"))),
        PinIncorrect
    );
    assert_eq!(state(&rw), SessionState::RwPublic);

    rw.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    assert_rv!(
        rw.login(UserType::User, Some(&pin(USER_PIN))),
        UserAlreadyLoggedIn
    );
    assert_rv!(
        rw.login(UserType::So, Some(&pin(SO_PIN))),
        UserAnotherAlreadyLoggedIn
    );
    // C_InitPIN needs the SO.
    assert_rv!(rw.init_pin(&pin("another-pin")), UserNotLoggedIn);
    rw.logout().unwrap();

    rw.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
    assert_rv!(
        rw.login(UserType::So, Some(&pin(SO_PIN))),
        UserAlreadyLoggedIn
    );
    assert_rv!(
        rw.login(UserType::User, Some(&pin(USER_PIN))),
        UserAnotherAlreadyLoggedIn
    );
    rw.logout().unwrap();

    // The SO cannot log in while a read-only session exists.
    let ro = p.open_ro_session(slot).unwrap();
    assert_rv!(
        rw.login(UserType::So, Some(&pin(SO_PIN))),
        SessionReadOnlyExists
    );
    drop(ro);
    rw.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
    rw.logout().unwrap();

    // An unknown user type.
    let mut p8 = *b"whatever";
    assert_ckr!(
        call!(C_Login, rw.handle(), 7, p8.as_mut_ptr(), 8),
        CKR_USER_TYPE_INVALID
    );
}

#[test]
fn user_login_before_init_pin_is_refused() {
    let p = pkcs11();
    let (slot, _) = common::fresh_token_without_user_pin();
    let s = p.open_ro_session(slot).unwrap();
    assert_rv!(
        s.login(UserType::User, Some(&pin(USER_PIN))),
        UserPinNotInitialized
    );
}

#[test]
fn read_only_sessions_cannot_write() {
    let p = pkcs11();
    let slot = common::fresh_token();
    let ro = p.open_ro_session(slot).unwrap();
    ro.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    assert_rv!(
        ro.set_pin(&pin(USER_PIN), &pin("new-user-pin")),
        SessionReadOnly
    );
    assert_rv!(
        ro.create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Label(b"ro".to_vec()),
        ]),
        SessionReadOnly
    );
}

#[test]
fn set_pin_changes_the_user_pin() {
    let p = pkcs11();
    let slot = common::fresh_token();
    let s = p.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    assert_rv!(
        s.set_pin(&pin("not-the-pin"), &pin("new-user-pin")),
        PinIncorrect
    );
    s.set_pin(&pin(USER_PIN), &pin("new-user-pin")).unwrap();
    s.logout().unwrap();
    assert_rv!(s.login(UserType::User, Some(&pin(USER_PIN))), PinIncorrect);
    s.login(UserType::User, Some(&pin("new-user-pin"))).unwrap();
}

#[test]
fn set_pin_changes_the_so_pin() {
    let p = pkcs11();
    let slot = common::fresh_token();
    let s = p.open_rw_session(slot).unwrap();
    s.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
    s.set_pin(&pin(SO_PIN), &pin("new-so-pin")).unwrap();
    s.logout().unwrap();
    assert_rv!(s.login(UserType::So, Some(&pin(SO_PIN))), PinIncorrect);
    s.login(UserType::So, Some(&pin("new-so-pin"))).unwrap();
    // The user PIN still works: it wraps the same token.
    s.logout().unwrap();
    s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
}

#[test]
fn context_specific_login_without_an_operation() {
    let slot = common::fresh_token();
    let s = user_session(slot);
    assert_rv!(
        s.login(UserType::ContextSpecific, Some(&pin(USER_PIN))),
        OperationNotInitialized
    );
    assert_eq!(state(&s), SessionState::RwUser, "the login is unaffected");
}

#[test]
fn login_user_with_an_empty_username() {
    if !is_keyward() {
        return; // a 3.0 function
    }
    let p = pkcs11();
    let slot = common::fresh_token();
    let s = p.open_rw_session(slot).unwrap();
    let mut pn = USER_PIN.as_bytes().to_vec();
    let mut name: [u8; 0] = [];
    assert_ckr!(
        call30!(
            C_LoginUser,
            s.handle(),
            CKU_USER,
            pn.as_mut_ptr(),
            pn.len() as CK_ULONG,
            name.as_mut_ptr(),
            0
        ),
        CKR_OK
    );
    assert_eq!(state(&s), SessionState::RwUser);
    s.logout().unwrap();
    let mut wrong = b"wrong-pin".to_vec();
    assert_ckr!(
        call30!(
            C_LoginUser,
            s.handle(),
            CKU_USER,
            wrong.as_mut_ptr(),
            wrong.len() as CK_ULONG,
            name.as_mut_ptr(),
            0
        ),
        CKR_PIN_INCORRECT
    );
    assert_eq!(state(&s), SessionState::RwPublic);
}

#[test]
fn lockout_after_the_limit_and_so_unlock() {
    if !is_keyward() {
        return; // SoftHSMv2 has no retry counter
    }
    let p = pkcs11();
    let slot = common::fresh_token();
    let s = p.open_rw_session(slot).unwrap();
    for i in 0..RETRY_LIMIT {
        let r = s.login(UserType::User, Some(&pin("bad-guess")));
        if i + 1 < RETRY_LIMIT {
            assert_rv!(r, PinIncorrect);
        } else {
            assert_rv!(r, PinLocked);
        }
    }
    // Locked: not even the right PIN is evaluated.
    assert_rv!(s.login(UserType::User, Some(&pin(USER_PIN))), PinLocked);
    assert_eq!(state(&s), SessionState::RwPublic);
    // The SO's C_InitPIN unlocks the user with a new PIN.
    s.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
    s.init_pin(&pin("fresh-user-pin")).unwrap();
    s.logout().unwrap();
    let i = p.get_token_info(slot).unwrap();
    assert!(!i.user_pin_locked() && !i.user_pin_count_low());
    s.login(UserType::User, Some(&pin("fresh-user-pin")))
        .unwrap();
}

#[test]
fn empty_pin_never_authenticates() {
    let p = pkcs11();
    let slot = common::fresh_token();
    let s = p.open_rw_session(slot).unwrap();
    s.create_object(&[
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(false),
        Attribute::Private(false),
        Attribute::Label(b"public".to_vec()),
    ])
    .unwrap();
    for user in [CKU_USER, CKU_SO] {
        let mut empty: [u8; 0] = [];
        let rv = call!(C_Login, s.handle(), user, empty.as_mut_ptr(), 0);
        assert_ne!(rv, CKR_OK, "empty PIN for user type {user}");
        let rv = call!(C_Login, s.handle(), user, null_mut(), 0);
        assert_ne!(rv, CKR_OK, "NULL PIN for user type {user}");
        assert_eq!(state(&s), SessionState::RwPublic);
    }
    // Nor while another session of the application is logged in and then logs out.
    let other = user_session(slot);
    other.logout().unwrap();
    let rv = call!(C_Login, s.handle(), CKU_USER, null_mut(), 0);
    assert_ne!(rv, CKR_OK);
    assert_eq!(state(&s), SessionState::RwPublic);
    assert_eq!(find(&s, &[]).len(), 1, "only the public object is visible");
}

/// A key with CKA_ALWAYS_AUTHENTICATE needs a context-specific login for each operation
/// (SECURITY SESS-05).
#[test]
fn always_authenticate_keys_need_a_context_login_per_operation() {
    let slot = common::fresh_token();
    let s = user_session(slot);
    let (_, key) = s
        .generate_key_pair(
            &cryptoki::mechanism::Mechanism::EccKeyPairGen,
            &[Attribute::EcParams(super::keys::P256_OID.to_vec())],
            &[
                Attribute::Sign(true),
                Attribute::Private(true),
                Attribute::AlwaysAuthenticate(true),
            ],
        )
        .unwrap();
    assert!(common::attr_bool(
        &s,
        key,
        cryptoki::object::AttributeType::AlwaysAuthenticate
    ));
    let data = b"needs a fresh PIN";
    let sign = |out: &mut [u8]| {
        let mut len = out.len() as CK_ULONG;
        call!(
            C_Sign,
            s.handle(),
            data.as_ptr().cast_mut(),
            data.len() as CK_ULONG,
            out.as_mut_ptr(),
            &mut len
        )
    };
    // With the context-specific login the operation works.
    s.sign_init(&cryptoki::mechanism::Mechanism::EcdsaSha256, key)
        .unwrap();
    assert_rv!(
        s.login(UserType::ContextSpecific, Some(&pin("wrong-pin"))),
        PinIncorrect
    );
    s.login(UserType::ContextSpecific, Some(&pin(USER_PIN)))
        .unwrap();
    let mut sig = [0u8; 64];
    assert_ckr!(sign(&mut sig), CKR_OK);
    // The next operation needs it again.
    s.sign_init(&cryptoki::mechanism::Mechanism::EcdsaSha256, key)
        .unwrap();
    let mut out = [0xA5u8; 64];
    assert_ckr!(sign(&mut out), CKR_USER_NOT_LOGGED_IN);
    assert!(
        out.iter().all(|b| *b == 0xA5),
        "no signature without the context login"
    );
    assert_eq!(state(&s), SessionState::RwUser, "the user stays logged in");
}
