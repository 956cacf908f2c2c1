//! Slots and tokens (PKCS#11 3.0 §5.5): the free slot, C_InitToken on a new and on an
//! existing token, a truthful CK_TOKEN_INFO, PIN length limits and the PIN counter flags
//! (SECURITY SESS-02, AUTH-01/02/03).

use std::collections::BTreeSet;

use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::slot::Slot;

use crate::assert_rv;
use crate::common::{
    self, RETRY_LIMIT, SO_PIN, USER_PIN, find, is_keyward, pin, pkcs11, slot_by_label, user_session,
};

#[test]
fn exactly_one_free_slot_and_no_duplicate_ids() {
    let p = pkcs11();
    common::fresh_token();
    let slots = p.get_all_slots().unwrap();
    let ids: Vec<u64> = slots.iter().map(Slot::id).collect();
    let unique: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "duplicate slot ids in C_GetSlotList: {ids:?}"
    );
    let free: Vec<u64> = slots
        .iter()
        .filter(|s| !p.get_token_info(**s).unwrap().token_initialized())
        .map(Slot::id)
        .collect();
    assert_eq!(free.len(), 1, "one free slot, got {free:?} among {ids:?}");
    let info = p.get_slot_info(common::free_slot(p)).unwrap();
    assert!(
        info.token_present(),
        "the free slot holds an uninitialised token"
    );
    // With tokenPresent = TRUE every slot is listed too: each holds a token.
    let present = p.get_slots_with_token().unwrap();
    assert_eq!(present.len(), slots.len());
}

#[test]
fn init_token_creates_a_token_in_a_new_slot() {
    let p = pkcs11();
    let before = common::free_slot(p);
    let (slot, label) = common::fresh_token_without_user_pin();
    if is_keyward() {
        assert_eq!(slot.id(), before.id(), "the token takes the free slot's id");
    }
    let after = common::free_slot(p);
    assert_ne!(after.id(), slot.id(), "a new free slot appears");
    let info = p.get_token_info(slot).unwrap();
    assert_eq!(info.label(), label);
    assert!(info.token_initialized());
    assert!(!info.user_pin_initialized(), "no user PIN before C_InitPIN");
}

#[test]
fn token_info_is_truthful() {
    let p = pkcs11();
    let (slot, label) = common::fresh_token_without_user_pin();
    let info = p.get_token_info(slot).unwrap();
    assert_eq!(info.label(), label);
    assert!(info.token_initialized());
    assert!(info.login_required());
    assert!(info.rng());
    assert!(!info.write_protected());
    assert!(!info.user_pin_initialized());
    assert!(!info.serial_number().trim().is_empty(), "a serial number");
    if is_keyward() {
        assert_eq!(info.manufacturer_id(), "Keyward");
        assert_eq!(info.model(), "Keyward token");
        assert!(
            info.serial_number().len() == 16
                && info.serial_number().chars().all(|c| c.is_ascii_hexdigit()),
            "serial {:?}",
            info.serial_number()
        );
    }
    assert!(info.min_pin_length() >= 1);
    assert!(info.max_pin_length() >= info.min_pin_length());
    // Every token has its own serial.
    let (other, _) = common::fresh_token_without_user_pin();
    assert_ne!(
        p.get_token_info(other).unwrap().serial_number(),
        info.serial_number()
    );

    common::set_user_pin(p, slot, USER_PIN);
    assert!(p.get_token_info(slot).unwrap().user_pin_initialized());

    // Session counts follow the sessions this application opens.
    let ro = p.open_ro_session(slot).unwrap();
    let rw = p.open_rw_session(slot).unwrap();
    // CK_UNAVAILABLE_INFORMATION is allowed by the spec; Keyward reports the counts.
    let counts = |p: &cryptoki::context::Pkcs11| {
        let info = p.get_token_info(slot).unwrap();
        (info.session_count(), info.rw_session_count())
    };
    let c = counts(p);
    if is_keyward() || c.0.is_some() {
        assert_eq!(c, (Some(2), Some(1)));
    }
    drop(rw);
    drop(ro);
    let c = counts(p);
    if is_keyward() || c.0.is_some() {
        assert_eq!(c, (Some(0), Some(0)));
    }
}

#[test]
fn user_pin_counter_flags_follow_failures() {
    let p = pkcs11();
    let slot = common::fresh_token();
    let s = p.open_ro_session(slot).unwrap();
    let flags = |p: &cryptoki::context::Pkcs11| {
        let i = p.get_token_info(slot).unwrap();
        (
            i.user_pin_count_low(),
            i.user_pin_final_try(),
            i.user_pin_locked(),
        )
    };
    assert_eq!(flags(p), (false, false, false));
    assert_rv!(
        s.login(UserType::User, Some(&pin("wrong-pin-1"))),
        PinIncorrect
    );
    if !is_keyward() {
        return; // SoftHSMv2 keeps no retry counter.
    }
    assert_eq!(flags(p), (true, false, false), "one failure: COUNT_LOW");
    // A right PIN resets the counter.
    s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    s.logout().unwrap();
    assert_eq!(flags(p), (false, false, false), "success clears the flags");

    for _ in 0..RETRY_LIMIT - 1 {
        assert_rv!(
            s.login(UserType::User, Some(&pin("wrong-pin-1"))),
            PinIncorrect
        );
    }
    let (_, final_try, locked) = flags(p);
    assert!(final_try && !locked, "one try left: FINAL_TRY");
    assert_rv!(
        s.login(UserType::User, Some(&pin("wrong-pin-1"))),
        PinLocked
    );
    let (_, final_try, locked) = flags(p);
    assert!(locked && !final_try, "LOCKED after the limit");
    assert_rv!(s.login(UserType::User, Some(&pin(USER_PIN))), PinLocked);
    // The SO's state is independent of the user's.
    let i = p.get_token_info(slot).unwrap();
    assert!(!i.so_pin_count_low() && !i.so_pin_locked());
}

#[test]
fn so_pin_counter_flags_follow_failures_and_lock_init_token() {
    let p = pkcs11();
    let (slot, label) = common::fresh_token_without_user_pin();
    let s = p.open_rw_session(slot).unwrap();
    assert_rv!(
        s.login(UserType::So, Some(&pin("wrong-so-pin"))),
        PinIncorrect
    );
    if !is_keyward() {
        return;
    }
    let i = p.get_token_info(slot).unwrap();
    assert!(i.so_pin_count_low() && !i.so_pin_final_try() && !i.so_pin_locked());
    assert!(!i.user_pin_count_low());
    for _ in 0..RETRY_LIMIT - 2 {
        assert_rv!(
            s.login(UserType::So, Some(&pin("wrong-so-pin"))),
            PinIncorrect
        );
    }
    let i = p.get_token_info(slot).unwrap();
    assert!(i.so_pin_final_try() && !i.so_pin_locked());
    assert_rv!(s.login(UserType::So, Some(&pin("wrong-so-pin"))), PinLocked);
    let i = p.get_token_info(slot).unwrap();
    assert!(i.so_pin_locked());
    assert_rv!(s.login(UserType::So, Some(&pin(SO_PIN))), PinLocked);
    drop(s);
    // A locked SO cannot re-initialise the token.
    assert_rv!(p.init_token(slot, &pin(SO_PIN), &label), PinLocked);
}

#[test]
fn pin_length_limits_are_enforced() {
    let p = pkcs11();
    let (slot, _) = common::fresh_token_without_user_pin();
    let info = p.get_token_info(slot).unwrap();
    let min = info.min_pin_length();
    let max = info.max_pin_length();
    let s = p.open_rw_session(slot).unwrap();
    s.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
    if min > 1 {
        assert_rv!(s.init_pin(&pin(&"1".repeat(min - 1))), PinLenRange);
    }
    assert_rv!(s.init_pin(&pin(&"1".repeat(max + 1))), PinLenRange);
    assert!(!p.get_token_info(slot).unwrap().user_pin_initialized());
    s.init_pin(&pin(&"7".repeat(min.max(4)))).unwrap();
    // C_SetPIN checks the new PIN's length too.
    assert_rv!(
        s.set_pin(&pin(SO_PIN), &pin(&"2".repeat(max + 1))),
        PinLenRange
    );
    s.logout().unwrap();
    drop(s);
    // And C_InitToken the SO PIN's.
    if is_keyward() {
        let free = common::free_slot(p);
        let label = common::unique_label("short");
        assert_rv!(
            p.init_token(free, &pin(&"1".repeat(max + 1)), &label),
            PinLenRange
        );
        assert!(slot_by_label(p, &label).is_none());
    }
}

#[test]
fn reinit_with_the_right_so_pin_wipes_objects() {
    let p = pkcs11();
    let slot = common::fresh_token();
    {
        let s = user_session(slot);
        s.create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Label(b"doomed".to_vec()),
            Attribute::Value(b"v".to_vec()),
        ])
        .unwrap();
        s.create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Label(b"doomed-public".to_vec()),
        ])
        .unwrap();
    }
    let new_label = common::unique_label("re");
    p.init_token(slot, &pin(SO_PIN), &new_label)
        .expect("re-initialise");
    let found = slot_by_label(p, &new_label).expect("the token keeps a slot");
    if is_keyward() {
        assert_eq!(found.id(), slot.id(), "re-initialisation keeps the slot id");
    }
    let info = p.get_token_info(found).unwrap();
    assert!(
        !info.user_pin_initialized(),
        "C_InitToken removes the user PIN"
    );
    let s = p.open_rw_session(found).unwrap();
    s.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
    assert!(
        find(&s, &[]).is_empty(),
        "no object survives re-initialisation"
    );
    s.init_pin(&pin(USER_PIN)).unwrap();
    s.logout().unwrap();
    s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    assert!(find(&s, &[]).is_empty());
}

#[test]
fn reinit_with_a_wrong_so_pin_changes_nothing() {
    let p = pkcs11();
    let slot = common::fresh_token();
    let label = p.get_token_info(slot).unwrap().label().to_string();
    {
        let s = user_session(slot);
        s.create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Label(b"kept".to_vec()),
        ])
        .unwrap();
    }
    assert_rv!(
        p.init_token(slot, &pin("not-the-so-pin"), "renamed"),
        PinIncorrect
    );
    let info = p.get_token_info(slot).unwrap();
    assert_eq!(info.label(), label);
    assert!(info.user_pin_initialized());
    let s = user_session(slot);
    assert_eq!(find(&s, &[Attribute::Label(b"kept".to_vec())]).len(), 1);
}

#[test]
fn init_token_with_an_open_session_is_refused() {
    let p = pkcs11();
    let slot = common::fresh_token();
    let label = p.get_token_info(slot).unwrap().label().to_string();
    let _s = p.open_ro_session(slot).unwrap();
    assert_rv!(p.init_token(slot, &pin(SO_PIN), &label), SessionExists);
}
