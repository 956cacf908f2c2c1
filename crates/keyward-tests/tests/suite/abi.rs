//! Entry points (C_GetFunctionList, C_GetInterfaceList, C_GetInterface), exported symbols,
//! and the argument rules of the C boundary: NULL pointers, short buffers, bad handles
//! (PKCS#11 3.0 §5.2, §5.4; SECURITY ABI-01/02, SESS-06).

use std::ptr::null_mut;

use cryptoki::mechanism::Mechanism;
use cryptoki::object::Attribute;
use cryptoki_sys::*;

use crate::common::{self, is_keyward, pkcs11, raw, raw30, user_session};
use crate::{assert_ckr, call, call30};

/// Collect `(name, present)` for the named fields of a function list.
macro_rules! fields {
    ($list:expr, $($f:ident),* $(,)?) => {
        vec![$((stringify!($f), $list.$f.is_some())),*]
    };
}

fn names_2_40(l: &CK_FUNCTION_LIST) -> Vec<(&'static str, bool)> {
    fields!(
        l,
        C_Initialize,
        C_Finalize,
        C_GetInfo,
        C_GetFunctionList,
        C_GetSlotList,
        C_GetSlotInfo,
        C_GetTokenInfo,
        C_GetMechanismList,
        C_GetMechanismInfo,
        C_InitToken,
        C_InitPIN,
        C_SetPIN,
        C_OpenSession,
        C_CloseSession,
        C_CloseAllSessions,
        C_GetSessionInfo,
        C_GetOperationState,
        C_SetOperationState,
        C_Login,
        C_Logout,
        C_CreateObject,
        C_CopyObject,
        C_DestroyObject,
        C_GetObjectSize,
        C_GetAttributeValue,
        C_SetAttributeValue,
        C_FindObjectsInit,
        C_FindObjects,
        C_FindObjectsFinal,
        C_EncryptInit,
        C_Encrypt,
        C_EncryptUpdate,
        C_EncryptFinal,
        C_DecryptInit,
        C_Decrypt,
        C_DecryptUpdate,
        C_DecryptFinal,
        C_DigestInit,
        C_Digest,
        C_DigestUpdate,
        C_DigestKey,
        C_DigestFinal,
        C_SignInit,
        C_Sign,
        C_SignUpdate,
        C_SignFinal,
        C_SignRecoverInit,
        C_SignRecover,
        C_VerifyInit,
        C_Verify,
        C_VerifyUpdate,
        C_VerifyFinal,
        C_VerifyRecoverInit,
        C_VerifyRecover,
        C_DigestEncryptUpdate,
        C_DecryptDigestUpdate,
        C_SignEncryptUpdate,
        C_DecryptVerifyUpdate,
        C_GenerateKey,
        C_GenerateKeyPair,
        C_WrapKey,
        C_UnwrapKey,
        C_DeriveKey,
        C_SeedRandom,
        C_GenerateRandom,
        C_GetFunctionStatus,
        C_CancelFunction,
        C_WaitForSlotEvent,
    )
}

fn names_3_0_extra(l: &CK_FUNCTION_LIST_3_0) -> Vec<(&'static str, bool)> {
    fields!(
        l,
        C_GetInterfaceList,
        C_GetInterface,
        C_LoginUser,
        C_SessionCancel,
        C_MessageEncryptInit,
        C_EncryptMessage,
        C_EncryptMessageBegin,
        C_EncryptMessageNext,
        C_MessageEncryptFinal,
        C_MessageDecryptInit,
        C_DecryptMessage,
        C_DecryptMessageBegin,
        C_DecryptMessageNext,
        C_MessageDecryptFinal,
        C_MessageSignInit,
        C_SignMessage,
        C_SignMessageBegin,
        C_SignMessageNext,
        C_MessageSignFinal,
        C_MessageVerifyInit,
        C_VerifyMessage,
        C_VerifyMessageBegin,
        C_VerifyMessageNext,
        C_MessageVerifyFinal,
    )
}

/// The 3.0 list's 2.40 part, read field by field (the layouts share their prefix).
fn prefix_of_3_0(l: &CK_FUNCTION_LIST_3_0) -> Vec<(&'static str, bool)> {
    let as_240 = CK_FUNCTION_LIST {
        version: l.version,
        C_Initialize: l.C_Initialize,
        C_Finalize: l.C_Finalize,
        C_GetInfo: l.C_GetInfo,
        C_GetFunctionList: l.C_GetFunctionList,
        C_GetSlotList: l.C_GetSlotList,
        C_GetSlotInfo: l.C_GetSlotInfo,
        C_GetTokenInfo: l.C_GetTokenInfo,
        C_GetMechanismList: l.C_GetMechanismList,
        C_GetMechanismInfo: l.C_GetMechanismInfo,
        C_InitToken: l.C_InitToken,
        C_InitPIN: l.C_InitPIN,
        C_SetPIN: l.C_SetPIN,
        C_OpenSession: l.C_OpenSession,
        C_CloseSession: l.C_CloseSession,
        C_CloseAllSessions: l.C_CloseAllSessions,
        C_GetSessionInfo: l.C_GetSessionInfo,
        C_GetOperationState: l.C_GetOperationState,
        C_SetOperationState: l.C_SetOperationState,
        C_Login: l.C_Login,
        C_Logout: l.C_Logout,
        C_CreateObject: l.C_CreateObject,
        C_CopyObject: l.C_CopyObject,
        C_DestroyObject: l.C_DestroyObject,
        C_GetObjectSize: l.C_GetObjectSize,
        C_GetAttributeValue: l.C_GetAttributeValue,
        C_SetAttributeValue: l.C_SetAttributeValue,
        C_FindObjectsInit: l.C_FindObjectsInit,
        C_FindObjects: l.C_FindObjects,
        C_FindObjectsFinal: l.C_FindObjectsFinal,
        C_EncryptInit: l.C_EncryptInit,
        C_Encrypt: l.C_Encrypt,
        C_EncryptUpdate: l.C_EncryptUpdate,
        C_EncryptFinal: l.C_EncryptFinal,
        C_DecryptInit: l.C_DecryptInit,
        C_Decrypt: l.C_Decrypt,
        C_DecryptUpdate: l.C_DecryptUpdate,
        C_DecryptFinal: l.C_DecryptFinal,
        C_DigestInit: l.C_DigestInit,
        C_Digest: l.C_Digest,
        C_DigestUpdate: l.C_DigestUpdate,
        C_DigestKey: l.C_DigestKey,
        C_DigestFinal: l.C_DigestFinal,
        C_SignInit: l.C_SignInit,
        C_Sign: l.C_Sign,
        C_SignUpdate: l.C_SignUpdate,
        C_SignFinal: l.C_SignFinal,
        C_SignRecoverInit: l.C_SignRecoverInit,
        C_SignRecover: l.C_SignRecover,
        C_VerifyInit: l.C_VerifyInit,
        C_Verify: l.C_Verify,
        C_VerifyUpdate: l.C_VerifyUpdate,
        C_VerifyFinal: l.C_VerifyFinal,
        C_VerifyRecoverInit: l.C_VerifyRecoverInit,
        C_VerifyRecover: l.C_VerifyRecover,
        C_DigestEncryptUpdate: l.C_DigestEncryptUpdate,
        C_DecryptDigestUpdate: l.C_DecryptDigestUpdate,
        C_SignEncryptUpdate: l.C_SignEncryptUpdate,
        C_DecryptVerifyUpdate: l.C_DecryptVerifyUpdate,
        C_GenerateKey: l.C_GenerateKey,
        C_GenerateKeyPair: l.C_GenerateKeyPair,
        C_WrapKey: l.C_WrapKey,
        C_UnwrapKey: l.C_UnwrapKey,
        C_DeriveKey: l.C_DeriveKey,
        C_SeedRandom: l.C_SeedRandom,
        C_GenerateRandom: l.C_GenerateRandom,
        C_GetFunctionStatus: l.C_GetFunctionStatus,
        C_CancelFunction: l.C_CancelFunction,
        C_WaitForSlotEvent: l.C_WaitForSlotEvent,
    };
    names_2_40(&as_240)
}

fn assert_all_present(what: &str, v: &[(&str, bool)]) {
    let missing: Vec<&str> = v.iter().filter(|(_, p)| !p).map(|(n, _)| *n).collect();
    assert!(missing.is_empty(), "{what}: NULL entries {missing:?}");
}

#[test]
fn function_list_2_40_is_complete() {
    pkcs11();
    let l = raw();
    assert_eq!(
        (l.version.major, l.version.minor),
        (2, 40),
        "C_GetFunctionList gives 2.40"
    );
    assert_all_present("2.40 list", &names_2_40(l));
}

#[test]
fn interface_list_offers_3_0_and_2_40() {
    pkcs11();
    if !common::has_symbol("C_GetInterfaceList") {
        assert!(!is_keyward(), "Keyward must export C_GetInterfaceList");
        return;
    }
    let mut count: CK_ULONG = 0;
    assert_ckr!(call30!(C_GetInterfaceList, null_mut(), &mut count), CKR_OK);
    assert!(
        count >= 2,
        "at least the 3.0 and 2.40 interfaces, got {count}"
    );

    // A short array gets CKR_BUFFER_TOO_SMALL and the needed count.
    let mut short: CK_ULONG = 1;
    let mut one = [CK_INTERFACE {
        pInterfaceName: null_mut(),
        pFunctionList: null_mut(),
        flags: 0,
    }];
    assert_ckr!(
        call30!(C_GetInterfaceList, one.as_mut_ptr(), &mut short),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(short, count);

    let mut all = vec![
        CK_INTERFACE {
            pInterfaceName: null_mut(),
            pFunctionList: null_mut(),
            flags: 0,
        };
        usize::try_from(count).unwrap()
    ];
    assert_ckr!(
        call30!(C_GetInterfaceList, all.as_mut_ptr(), &mut count),
        CKR_OK
    );
    let mut versions = Vec::new();
    for i in &all {
        assert!(!i.pInterfaceName.is_null() && !i.pFunctionList.is_null());
        // SAFETY: the module returned NUL-terminated static names.
        let name = unsafe { std::ffi::CStr::from_ptr(i.pInterfaceName.cast()) };
        assert_eq!(name.to_bytes(), b"PKCS 11");
        // SAFETY: every function list starts with its CK_VERSION.
        let v = unsafe { *(i.pFunctionList as *const CK_VERSION) };
        versions.push((v.major, v.minor));
        if v.major == 3 {
            // SAFETY: a 3.x version means a CK_FUNCTION_LIST_3_0.
            let l = unsafe { &*(i.pFunctionList as *const CK_FUNCTION_LIST_3_0) };
            assert_all_present("3.0 list (2.40 part)", &prefix_of_3_0(l));
            assert_all_present("3.0 list (3.0 part)", &names_3_0_extra(l));
        } else {
            // SAFETY: a 2.x version means a CK_FUNCTION_LIST.
            let l = unsafe { &*(i.pFunctionList as *const CK_FUNCTION_LIST) };
            assert_all_present("2.40 interface", &names_2_40(l));
        }
    }
    assert!(versions.contains(&(3, 0)), "{versions:?}");
    assert!(versions.contains(&(2, 40)), "{versions:?}");
    assert_ckr!(
        call30!(C_GetInterfaceList, null_mut(), null_mut()),
        CKR_ARGUMENTS_BAD
    );
}

#[test]
fn get_interface_defaults_to_3_0_and_selects_by_name_and_version() {
    pkcs11();
    if raw30().is_none() {
        assert!(!is_keyward(), "Keyward must offer the 3.0 interface");
        return;
    }
    let mut iface: *mut CK_INTERFACE = null_mut();
    assert_ckr!(
        call30!(C_GetInterface, null_mut(), null_mut(), &mut iface, 0),
        CKR_OK
    );
    assert!(!iface.is_null());
    // SAFETY: a valid interface pointing to a function list.
    let v = unsafe { *((*iface).pFunctionList as *const CK_VERSION) };
    assert_eq!((v.major, v.minor), (3, 0), "the default interface is 3.0");

    let mut name = *b"PKCS 11\0";
    let mut v240 = CK_VERSION {
        major: 2,
        minor: 40,
    };
    assert_ckr!(
        call30!(C_GetInterface, name.as_mut_ptr(), &mut v240, &mut iface, 0),
        CKR_OK
    );
    // SAFETY: as above.
    let v = unsafe { *((*iface).pFunctionList as *const CK_VERSION) };
    assert_eq!((v.major, v.minor), (2, 40));

    let mut other = *b"Vendor X\0";
    let rv = call30!(
        C_GetInterface,
        other.as_mut_ptr(),
        null_mut(),
        &mut iface,
        0
    );
    assert_ne!(rv, CKR_OK, "an unknown interface name is refused");
    assert_ckr!(
        call30!(C_GetInterface, null_mut(), null_mut(), null_mut(), 0),
        CKR_ARGUMENTS_BAD
    );
}

#[test]
fn get_interface_returns_writable_memory() {
    // OpenSC's pkcs11-spy replaces pFunctionList in the interface it is given; an interface in
    // read-only memory makes every program run under the spy crash.
    pkcs11();
    if raw30().is_none() {
        return;
    }
    let mut iface: *mut CK_INTERFACE = null_mut();
    assert_ckr!(
        call30!(C_GetInterface, null_mut(), null_mut(), &mut iface, 0),
        CKR_OK
    );
    assert!(!iface.is_null());
    // SAFETY: a valid interface; the same value is written back, so nothing changes unless the
    // memory is read-only (then the write faults).
    unsafe {
        let list = std::ptr::read_volatile(&raw const (*iface).pFunctionList);
        std::ptr::write_volatile(&raw mut (*iface).pFunctionList, list);
    }
    let mut again: *mut CK_INTERFACE = null_mut();
    assert_ckr!(
        call30!(C_GetInterface, null_mut(), null_mut(), &mut again, 0),
        CKR_OK
    );
    // SAFETY: a valid interface pointing to a function list.
    let v = unsafe { *((*again).pFunctionList as *const CK_VERSION) };
    assert_eq!((v.major, v.minor), (3, 0));
}

#[test]
fn every_function_is_exported_by_name() {
    pkcs11();
    if !is_keyward() {
        return;
    }
    let l = raw30().expect("3.0 list");
    let mut missing = Vec::new();
    for (name, _) in prefix_of_3_0(l).iter().chain(names_3_0_extra(l).iter()) {
        if !common::has_symbol(name) {
            missing.push(*name);
        }
    }
    assert!(missing.is_empty(), "not exported: {missing:?}");
}

#[test]
fn get_info_reports_version_and_rejects_null() {
    let info = pkcs11().get_library_info().expect("C_GetInfo");
    if is_keyward() {
        let v = info.cryptoki_version();
        assert_eq!((v.major(), v.minor()), (3, 0));
        assert_eq!(info.manufacturer_id(), "Keyward");
    }
    assert_ckr!(call!(C_GetInfo, null_mut()), CKR_ARGUMENTS_BAD);
    assert_ckr!(call!(C_GetFunctionList, null_mut()), CKR_ARGUMENTS_BAD);
}

#[test]
fn slot_list_length_query_and_short_buffer() {
    let p = pkcs11();
    common::fresh_token();
    let mut n: CK_ULONG = 0;
    assert_ckr!(call!(C_GetSlotList, CK_FALSE, null_mut(), &mut n), CKR_OK);
    assert!(n >= 2, "a token slot and the free slot");
    let mut short = vec![CK_SLOT_ID::MAX; 1];
    let mut len: CK_ULONG = 1;
    assert_ckr!(
        call!(C_GetSlotList, CK_FALSE, short.as_mut_ptr(), &mut len),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(len, n, "the needed count is written back");
    let mut all = vec![CK_SLOT_ID::MIN; usize::try_from(n).unwrap()];
    assert_ckr!(
        call!(C_GetSlotList, CK_FALSE, all.as_mut_ptr(), &mut n),
        CKR_OK
    );
    let via_cryptoki: Vec<CK_SLOT_ID> = p
        .get_all_slots()
        .unwrap()
        .into_iter()
        .map(common::slot_id)
        .collect();
    assert_eq!(all, via_cryptoki);
    assert_ckr!(
        call!(C_GetSlotList, CK_FALSE, null_mut(), null_mut()),
        CKR_ARGUMENTS_BAD
    );
}

#[test]
fn null_info_pointers_are_arguments_bad() {
    let slot = common::fresh_token();
    let id = common::slot_id(slot);
    assert_ckr!(call!(C_GetSlotInfo, id, null_mut()), CKR_ARGUMENTS_BAD);
    assert_ckr!(call!(C_GetTokenInfo, id, null_mut()), CKR_ARGUMENTS_BAD);
    assert_ckr!(
        call!(C_GetMechanismInfo, id, CKM_SHA256, null_mut()),
        CKR_ARGUMENTS_BAD
    );
    assert_ckr!(
        call!(
            C_OpenSession,
            id,
            CKF_SERIAL_SESSION,
            null_mut(),
            None,
            null_mut()
        ),
        CKR_ARGUMENTS_BAD
    );
    let s = pkcs11().open_ro_session(slot).unwrap();
    assert_ckr!(
        call!(C_GetSessionInfo, s.handle(), null_mut()),
        CKR_ARGUMENTS_BAD
    );
    // A NULL PIN with a non-zero length.
    assert_ckr!(
        call!(C_Login, s.handle(), CKU_USER, null_mut(), 4),
        CKR_ARGUMENTS_BAD
    );
    assert_ckr!(
        call!(C_GenerateRandom, s.handle(), null_mut(), 16),
        CKR_ARGUMENTS_BAD
    );
    // A NULL template with a non-zero count.
    let mut h: CK_OBJECT_HANDLE = 0;
    assert_ckr!(
        call!(C_CreateObject, s.handle(), null_mut(), 2, &mut h),
        CKR_ARGUMENTS_BAD
    );
    assert_ckr!(
        call!(C_FindObjectsInit, s.handle(), null_mut(), 1),
        CKR_ARGUMENTS_BAD
    );
    // NULL mechanism.
    assert_ckr!(
        call!(C_DigestInit, s.handle(), null_mut()),
        CKR_ARGUMENTS_BAD
    );
}

#[test]
fn mechanism_list_length_query_and_short_buffer() {
    let slot = common::fresh_token();
    let id = common::slot_id(slot);
    let mut n: CK_ULONG = 0;
    assert_ckr!(call!(C_GetMechanismList, id, null_mut(), &mut n), CKR_OK);
    assert!(n > 5);
    let mut one = [CK_MECHANISM_TYPE::MIN; 1];
    let mut len: CK_ULONG = 1;
    assert_ckr!(
        call!(C_GetMechanismList, id, one.as_mut_ptr(), &mut len),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(len, n);
    assert_ckr!(
        call!(C_GetMechanismList, id, null_mut(), null_mut()),
        CKR_ARGUMENTS_BAD
    );
}

#[test]
fn bad_handles_are_reported() {
    let slot = common::fresh_token();
    let p = pkcs11();
    let mut info = CK_SESSION_INFO::default();
    assert_ckr!(
        call!(C_GetSessionInfo, 0, &mut info),
        CKR_SESSION_HANDLE_INVALID
    );
    assert_ckr!(
        call!(C_CloseSession, 0x7fff_0000),
        CKR_SESSION_HANDLE_INVALID
    );
    let mut ti = CK_TOKEN_INFO::default();
    assert_ckr!(
        call!(C_GetTokenInfo, 0x7fff_0000, &mut ti),
        CKR_SLOT_ID_INVALID
    );
    let s = p.open_ro_session(slot).unwrap();
    let mut size: CK_ULONG = 0;
    assert_ckr!(
        call!(C_GetObjectSize, s.handle(), 0x7fff_0000, &mut size),
        CKR_OBJECT_HANDLE_INVALID
    );
    assert_ckr!(
        call!(C_DestroyObject, s.handle(), 0),
        CKR_OBJECT_HANDLE_INVALID
    );
}

/// Output buffers (SPEC "Conventions for functions returning output in a variable-length
/// buffer"): NULL gets the length and CKR_OK, a short buffer gets CKR_BUFFER_TOO_SMALL and the
/// length without ending the operation, and nothing is written past the given length.
#[test]
fn output_buffers_follow_the_length_convention() {
    let slot = common::fresh_token();
    let s = user_session(slot);
    let (_pub, key) = s
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::EcParams(crate::suite::keys::P256_OID.to_vec())],
            &[Attribute::Sign(true)],
        )
        .expect("C_GenerateKeyPair");
    s.sign_init(&Mechanism::EcdsaSha256, key).unwrap();
    let data = b"length convention";
    let mut len: CK_ULONG = 0;
    assert_ckr!(
        call!(
            C_Sign,
            s.handle(),
            data.as_ptr().cast_mut(),
            data.len() as CK_ULONG,
            null_mut(),
            &mut len
        ),
        CKR_OK
    );
    assert_eq!(len, 64, "ECDSA P-256 signature length");
    // A short buffer with guard bytes after it.
    let mut buf = vec![0xA5u8; 80];
    let mut short: CK_ULONG = 10;
    assert_ckr!(
        call!(
            C_Sign,
            s.handle(),
            data.as_ptr().cast_mut(),
            data.len() as CK_ULONG,
            buf.as_mut_ptr(),
            &mut short
        ),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(short, 64, "the needed length is written back");
    assert!(
        buf[10..].iter().all(|b| *b == 0xA5),
        "nothing written past the given length"
    );
    // The operation is still active: a big enough buffer completes it.
    let mut full: CK_ULONG = 80;
    assert_ckr!(
        call!(
            C_Sign,
            s.handle(),
            data.as_ptr().cast_mut(),
            data.len() as CK_ULONG,
            buf.as_mut_ptr(),
            &mut full
        ),
        CKR_OK
    );
    assert_eq!(full, 64);
    assert!(buf[64..].iter().all(|b| *b == 0xA5));
    // And then it is finished.
    assert_ckr!(
        call!(
            C_Sign,
            s.handle(),
            data.as_ptr().cast_mut(),
            data.len() as CK_ULONG,
            buf.as_mut_ptr(),
            &mut full
        ),
        CKR_OPERATION_NOT_INITIALIZED
    );

    // The same for a digest.
    let mut mech = CK_MECHANISM {
        mechanism: CKM_SHA256,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    assert_ckr!(call!(C_DigestInit, s.handle(), &mut mech), CKR_OK);
    let mut dlen: CK_ULONG = 31;
    let mut d = [0u8; 32];
    assert_ckr!(
        call!(
            C_Digest,
            s.handle(),
            data.as_ptr().cast_mut(),
            data.len() as CK_ULONG,
            d.as_mut_ptr(),
            &mut dlen
        ),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(dlen, 32);
    assert_ckr!(
        call!(
            C_Digest,
            s.handle(),
            data.as_ptr().cast_mut(),
            data.len() as CK_ULONG,
            d.as_mut_ptr(),
            &mut dlen
        ),
        CKR_OK
    );
}

#[test]
fn bad_mechanism_parameters_and_types() {
    let slot = common::fresh_token();
    let s = user_session(slot);
    let key = s
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::ValueLen(32.into()),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
            ],
        )
        .unwrap();
    // CKM_AES_GCM with a parameter of the wrong size.
    let mut junk = [0u8; 3];
    let mut mech = CK_MECHANISM {
        mechanism: CKM_AES_GCM,
        pParameter: junk.as_mut_ptr().cast(),
        ulParameterLen: 3,
    };
    assert_ckr!(
        call!(C_EncryptInit, s.handle(), &mut mech, key.handle()),
        CKR_MECHANISM_PARAM_INVALID
    );
    // An unknown mechanism.
    let mut unknown = CK_MECHANISM {
        mechanism: CKM_VENDOR_DEFINED | 0x1234,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    assert_ckr!(
        call!(C_EncryptInit, s.handle(), &mut unknown, key.handle()),
        CKR_MECHANISM_INVALID
    );
    // A CK_BBOOL attribute with a wrong length.
    let class: CK_OBJECT_CLASS = CKO_DATA;
    let bad_bool: [u8; 2] = [1, 0];
    let mut t = [
        CK_ATTRIBUTE {
            type_: CKA_CLASS,
            pValue: (&raw const class).cast_mut().cast(),
            ulValueLen: size_of::<CK_OBJECT_CLASS>() as CK_ULONG,
        },
        CK_ATTRIBUTE {
            type_: CKA_TOKEN,
            pValue: bad_bool.as_ptr().cast_mut().cast(),
            ulValueLen: 2,
        },
    ];
    let mut h: CK_OBJECT_HANDLE = 0;
    assert_ckr!(
        call!(C_CreateObject, s.handle(), t.as_mut_ptr(), 2, &mut h),
        CKR_ATTRIBUTE_VALUE_INVALID
    );
    // A NULL value with a non-zero length inside a template.
    t[1].pValue = null_mut();
    t[1].ulValueLen = 1;
    let rv = call!(C_CreateObject, s.handle(), t.as_mut_ptr(), 2, &mut h);
    assert!(
        rv == CKR_ATTRIBUTE_VALUE_INVALID || rv == CKR_ARGUMENTS_BAD,
        "NULL pValue with length 1: {rv:#x}"
    );
}
