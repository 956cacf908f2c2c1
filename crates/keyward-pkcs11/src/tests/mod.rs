//! C-ABI tests: the exported `C_*` functions called in-process over a mock engine.
//! Each test thread has its own module state (see `backend`), so tests run in parallel.

mod mock;

use std::ffi::c_void;
use std::mem::size_of;
use std::ptr::null_mut;
use std::sync::Arc;

use cryptoki_sys::*;
use keyward_core::api::Api;

use crate::backend::test_support;
use crate::*;
use mock::{Mock, SESSION};

/// Initialise this thread's module over a fresh mock; returns the mock for inspection.
fn init() -> Arc<Mock> {
    // SAFETY: NULL pReserved; a leftover state from an earlier test on this thread is dropped.
    let _ = unsafe { C_Finalize(null_mut()) };
    let mock = Arc::new(Mock::default());
    let m = mock.clone();
    test_support::set_factory(move || Ok(m.clone() as Arc<dyn Api>));
    // SAFETY: NULL init args.
    assert_eq!(unsafe { C_Initialize(null_mut()) }, CKR_OK);
    mock
}

fn finalize() {
    // SAFETY: NULL pReserved.
    assert_eq!(unsafe { C_Finalize(null_mut()) }, CKR_OK);
}

fn args(flags: CK_FLAGS, with_mutexes: usize) -> CK_C_INITIALIZE_ARGS {
    unsafe extern "C" fn create(_m: *mut CK_VOID_PTR) -> CK_RV {
        CKR_OK
    }
    unsafe extern "C" fn other(_m: CK_VOID_PTR) -> CK_RV {
        CKR_OK
    }
    CK_C_INITIALIZE_ARGS {
        CreateMutex: (with_mutexes > 0)
            .then_some(create as unsafe extern "C" fn(*mut CK_VOID_PTR) -> CK_RV),
        DestroyMutex: (with_mutexes > 1)
            .then_some(other as unsafe extern "C" fn(CK_VOID_PTR) -> CK_RV),
        LockMutex: (with_mutexes > 2)
            .then_some(other as unsafe extern "C" fn(CK_VOID_PTR) -> CK_RV),
        UnlockMutex: (with_mutexes > 3)
            .then_some(other as unsafe extern "C" fn(CK_VOID_PTR) -> CK_RV),
        flags,
        pReserved: null_mut(),
    }
}

#[test]
fn everything_is_not_initialized_before_c_initialize() {
    // SAFETY: NULL pReserved; make sure this thread starts uninitialised.
    let _ = unsafe { C_Finalize(null_mut()) };
    let mut info = CK_INFO::default();
    let mut count: CK_ULONG = 0;
    let mut h: CK_SESSION_HANDLE = 0;
    // SAFETY: all pointers are live locals.
    unsafe {
        assert_eq!(C_GetInfo(&mut info), CKR_CRYPTOKI_NOT_INITIALIZED);
        assert_eq!(
            C_GetSlotList(CK_TRUE, null_mut(), &mut count),
            CKR_CRYPTOKI_NOT_INITIALIZED
        );
        assert_eq!(
            C_OpenSession(1, CKF_SERIAL_SESSION, null_mut(), None, &mut h),
            CKR_CRYPTOKI_NOT_INITIALIZED
        );
        assert_eq!(
            C_Sign(SESSION, null_mut(), 0, null_mut(), &mut count),
            CKR_CRYPTOKI_NOT_INITIALIZED
        );
        assert_eq!(C_GetFunctionStatus(SESSION), CKR_CRYPTOKI_NOT_INITIALIZED);
        assert_eq!(C_Finalize(null_mut()), CKR_CRYPTOKI_NOT_INITIALIZED);
    }
    // The function list and interfaces are available before C_Initialize.
    let mut list: CK_FUNCTION_LIST_PTR = null_mut();
    // SAFETY: live local.
    assert_eq!(unsafe { C_GetFunctionList(&mut list) }, CKR_OK);
    assert!(!list.is_null());
}

#[test]
fn initialize_args_matrix() {
    // SAFETY: NULL pReserved; start uninitialised.
    let _ = unsafe { C_Finalize(null_mut()) };
    let mock = Arc::new(Mock::default());
    let m = mock.clone();
    test_support::set_factory(move || Ok(m.clone() as Arc<dyn Api>));
    let cases = [
        (args(0, 0), CKR_OK),
        (args(CKF_OS_LOCKING_OK, 0), CKR_OK),
        (args(CKF_OS_LOCKING_OK, 4), CKR_OK),
        (args(CKF_LIBRARY_CANT_CREATE_OS_THREADS, 0), CKR_OK),
        (args(0, 4), CKR_CANT_LOCK),
        (args(CKF_OS_LOCKING_OK, 2), CKR_ARGUMENTS_BAD),
        (args(0, 1), CKR_ARGUMENTS_BAD),
        (
            CK_C_INITIALIZE_ARGS {
                pReserved: std::ptr::dangling_mut::<c_void>(),
                ..args(0, 0)
            },
            CKR_ARGUMENTS_BAD,
        ),
    ];
    for (i, (mut a, want)) in cases.into_iter().enumerate() {
        // SAFETY: `a` is a live CK_C_INITIALIZE_ARGS.
        let rv = unsafe { C_Initialize((&raw mut a).cast()) };
        assert_eq!(rv, want, "case {i}");
        if rv == CKR_OK {
            // SAFETY: NULL init args.
            let rv = unsafe { C_Initialize(null_mut()) };
            assert_eq!(rv, CKR_CRYPTOKI_ALREADY_INITIALIZED);
            finalize();
        }
    }
    // C_Finalize with pReserved set.
    init();
    // SAFETY: a non-NULL pReserved is refused without dereferencing it.
    let rv = unsafe { C_Finalize(std::ptr::dangling_mut::<c_void>()) };
    assert_eq!(rv, CKR_ARGUMENTS_BAD);
    finalize();
}

#[test]
fn failed_backend_start_is_general_error_and_stays_uninitialised() {
    // SAFETY: NULL pReserved.
    let _ = unsafe { C_Finalize(null_mut()) };
    test_support::set_factory(|| {
        Err(keyward_core::Code::GeneralError.err("configuration: missing file"))
    });
    // SAFETY: NULL init args.
    assert_eq!(unsafe { C_Initialize(null_mut()) }, CKR_GENERAL_ERROR);
    let mut info = CK_INFO::default();
    // SAFETY: live local.
    let rv = unsafe { C_GetInfo(&mut info) };
    assert_eq!(rv, CKR_CRYPTOKI_NOT_INITIALIZED);
}

#[test]
fn forked_child_sees_not_initialized_and_can_reinitialise() {
    let _parent = init();
    test_support::pretend_forked();
    let mut info = CK_INFO::default();
    // SAFETY: live local.
    unsafe {
        assert_eq!(C_GetInfo(&mut info), CKR_CRYPTOKI_NOT_INITIALIZED);
        // The child must not finalise the parent's state.
        assert_eq!(C_Finalize(null_mut()), CKR_CRYPTOKI_NOT_INITIALIZED);
        assert_eq!(C_Initialize(null_mut()), CKR_OK);
        assert_eq!(C_GetInfo(&mut info), CKR_OK);
    }
    finalize();
}

#[test]
fn get_info_strings_are_blank_padded() {
    init();
    let mut info = CK_INFO::default();
    // SAFETY: live local.
    assert_eq!(unsafe { C_GetInfo(&mut info) }, CKR_OK);
    assert_eq!(
        (info.cryptokiVersion.major, info.cryptokiVersion.minor),
        (3, 0)
    );
    assert_eq!(&info.manufacturerID[..8], b"Keyward ");
    assert!(info.manufacturerID[7..].iter().all(|b| *b == b' '));
    assert_eq!(&info.libraryDescription[..22], b"Keyward PKCS#11 module");
    assert!(info.libraryDescription[22..].iter().all(|b| *b == b' '));
    // SAFETY: NULL is refused.
    assert_eq!(unsafe { C_GetInfo(null_mut()) }, CKR_ARGUMENTS_BAD);

    let mut ti = CK_TOKEN_INFO::default();
    // SAFETY: live local.
    assert_eq!(unsafe { C_GetTokenInfo(1, &mut ti) }, CKR_OK);
    assert_eq!(&ti.label[..11], b"mock token ");
    // A serial longer than 16 bytes is cut, an empty time is all blanks.
    assert_eq!(&ti.serialNumber, b"0123456789abcdef");
    assert_eq!(&ti.utcTime, &[b' '; 16]);
    // SAFETY: live local.
    assert_eq!(unsafe { C_GetTokenInfo(9, &mut ti) }, CKR_SLOT_ID_INVALID);
    finalize();
}

#[test]
fn interfaces() {
    let mut count: CK_ULONG = 0;
    // SAFETY: all pointers are live locals or NULL where allowed.
    unsafe {
        assert_eq!(C_GetInterfaceList(null_mut(), &mut count), CKR_OK);
        assert_eq!(count, 2);
        assert_eq!(
            C_GetInterfaceList(null_mut(), null_mut()),
            CKR_ARGUMENTS_BAD
        );
        let mut one = [CK_INTERFACE {
            pInterfaceName: null_mut(),
            pFunctionList: null_mut(),
            flags: 0,
        }; 1];
        count = 1;
        assert_eq!(
            C_GetInterfaceList(one.as_mut_ptr(), &mut count),
            CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(count, 2);
        assert!(one[0].pFunctionList.is_null());
        let mut two = [one[0]; 2];
        assert_eq!(C_GetInterfaceList(two.as_mut_ptr(), &mut count), CKR_OK);
        let v0 = *two[0].pFunctionList.cast::<CK_VERSION>();
        let v1 = *two[1].pFunctionList.cast::<CK_VERSION>();
        assert_eq!((v0.major, v0.minor, v1.major, v1.minor), (3, 0, 2, 40));
        assert_eq!(
            std::ffi::CStr::from_ptr(two[0].pInterfaceName.cast()),
            c"PKCS 11"
        );

        // Default: 3.0.
        let mut p: *mut CK_INTERFACE = null_mut();
        assert_eq!(C_GetInterface(null_mut(), null_mut(), &mut p, 0), CKR_OK);
        let l = &*(*p).pFunctionList.cast::<CK_FUNCTION_LIST_3_0>();
        assert_eq!((l.version.major, l.version.minor), (3, 0));
        assert!(l.C_MessageVerifyFinal.is_some() && l.C_LoginUser.is_some());
        // By name and version 2.40.
        let mut v = CK_VERSION {
            major: 2,
            minor: 40,
        };
        let mut name = *b"PKCS 11\0";
        assert_eq!(C_GetInterface(name.as_mut_ptr(), &mut v, &mut p, 0), CKR_OK);
        let l = &*(*p).pFunctionList.cast::<CK_FUNCTION_LIST>();
        assert_eq!((l.version.major, l.version.minor), (2, 40));
        // Unknown name, unknown version, unsupported flag, NULL output.
        let mut other = *b"Vendor\0";
        assert_eq!(
            C_GetInterface(other.as_mut_ptr(), null_mut(), &mut p, 0),
            CKR_ARGUMENTS_BAD
        );
        let mut v31 = CK_VERSION { major: 3, minor: 1 };
        assert_eq!(
            C_GetInterface(null_mut(), &mut v31, &mut p, 0),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_GetInterface(null_mut(), null_mut(), &mut p, CKF_INTERFACE_FORK_SAFE),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_GetInterface(null_mut(), null_mut(), null_mut(), 0),
            CKR_ARGUMENTS_BAD
        );
    }
}

#[test]
fn function_lists_point_at_the_exported_functions() {
    let mut list: CK_FUNCTION_LIST_PTR = null_mut();
    // SAFETY: live local; the list is a static.
    let l = unsafe {
        assert_eq!(C_GetFunctionList(&mut list), CKR_OK);
        &*list
    };
    assert_eq!((l.version.major, l.version.minor), (2, 40));
    assert_eq!(l.C_Sign.map(|f| f as *const ()), Some(C_Sign as *const ()));
    assert_eq!(
        l.C_WaitForSlotEvent.map(|f| f as *const ()),
        Some(C_WaitForSlotEvent as *const ())
    );
}

#[test]
fn panic_in_the_engine_is_general_error_and_the_module_survives() {
    init();
    let mut data = *b"hello";
    let mut len: CK_ULONG = 0;
    // SAFETY: live locals; the mock panics inside `sign`.
    let rv = unsafe { C_Sign(SESSION, data.as_mut_ptr(), 5, null_mut(), &mut len) };
    assert_eq!(rv, CKR_GENERAL_ERROR);
    let mut info = CK_SESSION_INFO::default();
    // SAFETY: live local.
    assert_eq!(unsafe { C_GetSessionInfo(SESSION, &mut info) }, CKR_OK);
    assert_eq!(info.slotID, 1);
    finalize();
}

#[test]
fn arguments_bad_matrix() {
    let mock = init();
    let mut len: CK_ULONG = 0;
    let mut h: CK_ULONG = 0;
    let mut m = CK_MECHANISM {
        mechanism: CKM_AES_CBC,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    // SAFETY: every non-NULL pointer is a live local; NULLs are refused before access.
    unsafe {
        assert_eq!(
            C_GetSlotList(CK_TRUE, null_mut(), null_mut()),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(C_GetSlotInfo(1, null_mut()), CKR_ARGUMENTS_BAD);
        assert_eq!(C_GetTokenInfo(1, null_mut()), CKR_ARGUMENTS_BAD);
        assert_eq!(
            C_GetMechanismInfo(1, CKM_AES_CBC, null_mut()),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_OpenSession(1, CKF_SERIAL_SESSION, null_mut(), None, null_mut()),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(C_GetSessionInfo(SESSION, null_mut()), CKR_ARGUMENTS_BAD);
        assert_eq!(C_Login(SESSION, CKU_USER, null_mut(), 4), CKR_ARGUMENTS_BAD);
        assert_eq!(C_InitToken(1, null_mut(), 0, null_mut()), CKR_ARGUMENTS_BAD);
        assert_eq!(
            C_CreateObject(SESSION, null_mut(), 0, null_mut()),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_CreateObject(SESSION, null_mut(), 3, &mut h),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_GetAttributeValue(SESSION, 42, null_mut(), 1),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(C_GetObjectSize(SESSION, 42, null_mut()), CKR_ARGUMENTS_BAD);
        assert_eq!(
            C_FindObjects(SESSION, null_mut(), 4, &mut len),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_FindObjects(SESSION, &mut h, 1, null_mut()),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(C_EncryptInit(SESSION, null_mut(), 1), CKR_ARGUMENTS_BAD);
        assert_eq!(
            C_Encrypt(SESSION, null_mut(), 3, null_mut(), &mut len),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_Encrypt(SESSION, null_mut(), 0, null_mut(), null_mut()),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_DigestFinal(SESSION, null_mut(), null_mut()),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_GenerateKey(SESSION, &mut m, null_mut(), 0, null_mut()),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_GenerateKeyPair(
                SESSION,
                &mut m,
                null_mut(),
                0,
                null_mut(),
                0,
                &mut h,
                null_mut()
            ),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_WrapKey(SESSION, &mut m, 1, 2, null_mut(), null_mut()),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(C_GenerateRandom(SESSION, null_mut(), 8), CKR_ARGUMENTS_BAD);
        assert_eq!(
            C_WaitForSlotEvent(CKF_DONT_BLOCK, null_mut(), null_mut()),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_EncryptMessage(
                SESSION,
                null_mut(),
                0,
                null_mut(),
                0,
                null_mut(),
                0,
                null_mut(),
                null_mut()
            ),
            CKR_ARGUMENTS_BAD
        );
    }
    // None of these reached the engine.
    assert!(mock.calls.lock().unwrap().is_empty());
    finalize();
}

#[test]
fn bad_handles_come_from_the_engine() {
    init();
    let mut info = CK_SESSION_INFO::default();
    let mut t = [CK_ATTRIBUTE {
        type_: CKA_LABEL,
        pValue: null_mut(),
        ulValueLen: 0,
    }];
    // SAFETY: live locals.
    unsafe {
        assert_eq!(C_GetSessionInfo(99, &mut info), CKR_SESSION_HANDLE_INVALID);
        assert_eq!(C_CloseSession(99), CKR_SESSION_HANDLE_INVALID);
        assert_eq!(
            C_GetAttributeValue(SESSION, 5, t.as_mut_ptr(), 1),
            CKR_OBJECT_HANDLE_INVALID
        );
        assert_eq!(C_GetAttributeValue(SESSION, 42, t.as_mut_ptr(), 1), CKR_OK);
    }
    assert_eq!(t[0].ulValueLen, 3);
    finalize();
}

#[test]
fn sessions_and_legacy_functions() {
    init();
    let mut h: CK_SESSION_HANDLE = 0;
    let mut slot: CK_SLOT_ID = 0;
    // SAFETY: live locals.
    unsafe {
        assert_eq!(
            C_OpenSession(1, CKF_RW_SESSION, null_mut(), None, &mut h),
            CKR_SESSION_PARALLEL_NOT_SUPPORTED
        );
        assert_eq!(h, 0);
        assert_eq!(
            C_OpenSession(
                1,
                CKF_SERIAL_SESSION | CKF_RW_SESSION,
                null_mut(),
                None,
                &mut h
            ),
            CKR_OK
        );
        assert_eq!(h, SESSION);
        assert_eq!(C_GetFunctionStatus(h), CKR_FUNCTION_NOT_PARALLEL);
        assert_eq!(C_CancelFunction(h), CKR_FUNCTION_NOT_PARALLEL);
        assert_eq!(
            C_WaitForSlotEvent(CKF_DONT_BLOCK, &mut slot, null_mut()),
            CKR_NO_EVENT
        );
        assert_eq!(
            C_WaitForSlotEvent(0, &mut slot, null_mut()),
            CKR_FUNCTION_NOT_SUPPORTED
        );
    }
    finalize();
}

#[test]
fn output_buffer_convention_through_c_encrypt() {
    init();
    let mut data = *b"plaintext";
    let mut len: CK_ULONG = 0;
    let mut buf = [0xA5u8; 16];
    // SAFETY: live locals; capacities stated truthfully.
    unsafe {
        assert_eq!(
            C_Encrypt(SESSION, data.as_mut_ptr(), 9, null_mut(), &mut len),
            CKR_OK
        );
        assert_eq!(len, 10);
        len = 4;
        assert_eq!(
            C_Encrypt(SESSION, data.as_mut_ptr(), 9, buf.as_mut_ptr(), &mut len),
            CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(len, 10);
        assert_eq!(buf, [0xA5; 16]);
        len = 12;
        assert_eq!(
            C_Encrypt(SESSION, data.as_mut_ptr(), 9, buf.as_mut_ptr(), &mut len),
            CKR_OK
        );
        assert_eq!(len, 10);
    }
    assert_eq!(&buf[..10], &[0x11; 10]);
    assert_eq!(&buf[10..], &[0xA5; 6]);
    finalize();
}

#[test]
fn digest_encrypt_update_digests_only_when_output_is_produced() {
    let mock = init();
    let mut part = *b"abcdef";
    let mut len: CK_ULONG = 0;
    let mut buf = [0u8; 8];
    // SAFETY: live locals.
    unsafe {
        assert_eq!(
            C_DigestEncryptUpdate(SESSION, part.as_mut_ptr(), 6, null_mut(), &mut len),
            CKR_OK
        );
        assert_eq!(len, 6);
        len = 2;
        assert_eq!(
            C_DigestEncryptUpdate(SESSION, part.as_mut_ptr(), 6, buf.as_mut_ptr(), &mut len),
            CKR_BUFFER_TOO_SMALL
        );
        assert!(
            mock.calls.lock().unwrap().is_empty(),
            "no digest before output"
        );
        len = 8;
        assert_eq!(
            C_DigestEncryptUpdate(SESSION, part.as_mut_ptr(), 6, buf.as_mut_ptr(), &mut len),
            CKR_OK
        );
    }
    assert_eq!(
        *mock.calls.lock().unwrap(),
        vec!["digest_update 6".to_string()]
    );
    finalize();
}

#[test]
fn templates_mechanisms_and_random_reach_the_engine_decoded() {
    let mock = init();
    let mut class: CK_ULONG = CKO_DATA;
    let mut label = *b"lbl";
    let mut t = [
        CK_ATTRIBUTE {
            type_: CKA_CLASS,
            pValue: (&raw mut class).cast(),
            ulValueLen: size_of::<CK_ULONG>() as CK_ULONG,
        },
        CK_ATTRIBUTE {
            type_: CKA_LABEL,
            pValue: label.as_mut_ptr().cast(),
            ulValueLen: 3,
        },
    ];
    let mut h: CK_OBJECT_HANDLE = 0;
    let mut iv = [0u8; 16];
    let mut m = CK_MECHANISM {
        mechanism: CKM_AES_CBC_PAD,
        pParameter: iv.as_mut_ptr().cast(),
        ulParameterLen: 16,
    };
    let mut rnd = [0u8; 5];
    let mut found: [CK_OBJECT_HANDLE; 4] = [0; 4];
    let mut n: CK_ULONG = 0;
    // SAFETY: live locals.
    unsafe {
        assert_eq!(C_CreateObject(SESSION, t.as_mut_ptr(), 2, &mut h), CKR_OK);
        assert_eq!(h, 42);
        // A 2-byte CK_ULONG is refused before the engine sees it.
        t[0].ulValueLen = 2;
        assert_eq!(
            C_CreateObject(SESSION, t.as_mut_ptr(), 2, &mut h),
            CKR_ATTRIBUTE_VALUE_INVALID
        );
        assert_eq!(C_EncryptInit(SESSION, &mut m, 5), CKR_OK);
        m.mechanism = CKM_SHA256;
        assert_eq!(
            C_EncryptInit(SESSION, &mut m, 5),
            CKR_MECHANISM_PARAM_INVALID
        );
        assert_eq!(C_GenerateRandom(SESSION, rnd.as_mut_ptr(), 5), CKR_OK);
        assert_eq!(C_GenerateRandom(SESSION, null_mut(), 0), CKR_OK);
        assert_eq!(
            C_FindObjects(SESSION, found.as_mut_ptr(), 2, &mut n),
            CKR_OK
        );
        assert_eq!(C_Login(SESSION, CKU_USER, null_mut(), 0), CKR_OK);
    }
    assert_eq!(rnd, [0x5A; 5]);
    assert_eq!((n, found), (2, [1, 2, 0, 0]));
    let calls = mock.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 3);
    assert!(
        calls[0].starts_with("create ") && calls[0].contains("Bytes(<3 bytes>)"),
        "{}",
        calls[0]
    );
    assert_eq!(
        calls[1],
        format!("encrypt_init {CKM_AES_CBC_PAD:#x} Bytes(<16 bytes>) 5")
    );
    assert_eq!(calls[2], format!("login {CKU_USER} 0"));
    drop(calls);
    finalize();
}
