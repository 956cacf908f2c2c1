//! Session management functions (PKCS#11 3.0 §5.6).

use cryptoki_sys::*;
use keyward_core::Code;

use crate::ffi::out::OutBuf;
use crate::ffi::{entry, ptr};

/// C_OpenSession. Notification callbacks are accepted and never called; a session without
/// CKF_SERIAL_SESSION is CKR_SESSION_PARALLEL_NOT_SUPPORTED.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_OpenSession(
    slotID: CK_SLOT_ID,
    flags: CK_FLAGS,
    _pApplication: CK_VOID_PTR,
    _Notify: CK_NOTIFY,
    phSession: CK_SESSION_HANDLE_PTR,
) -> CK_RV {
    entry("C_OpenSession", |api| {
        ptr::require(phSession)?;
        if flags & CKF_SERIAL_SESSION == 0 {
            return Err(Code::SessionParallelNotSupported.err("CKF_SERIAL_SESSION must be set"));
        }
        let h = api.open_session(slotID, flags)?;
        // SAFETY: non-NULL (checked) and writable for a handle.
        unsafe { ptr::write(phSession, h) }
    })
}

/// C_CloseSession.
///
/// # Safety
/// None.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_CloseSession(hSession: CK_SESSION_HANDLE) -> CK_RV {
    entry("C_CloseSession", |api| api.close_session(hSession))
}

/// C_CloseAllSessions.
///
/// # Safety
/// None.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_CloseAllSessions(slotID: CK_SLOT_ID) -> CK_RV {
    entry("C_CloseAllSessions", |api| api.close_all_sessions(slotID))
}

/// C_GetSessionInfo.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetSessionInfo(
    hSession: CK_SESSION_HANDLE,
    pInfo: CK_SESSION_INFO_PTR,
) -> CK_RV {
    entry("C_GetSessionInfo", |api| {
        ptr::require(pInfo)?;
        let s = api.session_info(hSession)?;
        let info = CK_SESSION_INFO {
            slotID: s.slot,
            state: s.state,
            flags: s.flags,
            ulDeviceError: s.device_error,
        };
        // SAFETY: non-NULL (checked) and writable for a CK_SESSION_INFO.
        unsafe { ptr::write(pInfo, info) }
    })
}

/// C_SessionCancel.
///
/// # Safety
/// None.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SessionCancel(hSession: CK_SESSION_HANDLE, flags: CK_FLAGS) -> CK_RV {
    entry("C_SessionCancel", |api| api.session_cancel(hSession, flags))
}

/// C_GetOperationState.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetOperationState(
    hSession: CK_SESSION_HANDLE,
    pOperationState: CK_BYTE_PTR,
    pulOperationStateLen: CK_ULONG_PTR,
) -> CK_RV {
    entry("C_GetOperationState", |api| {
        // SAFETY: the caller's contract for (pOperationState, pulOperationStateLen).
        let out = unsafe { OutBuf::new(pOperationState, pulOperationStateLen) }?;
        let state = api.get_operation_state(hSession)?;
        out.put(&state)
    })
}

/// C_SetOperationState.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SetOperationState(
    hSession: CK_SESSION_HANDLE,
    pOperationState: CK_BYTE_PTR,
    ulOperationStateLen: CK_ULONG,
    hEncryptionKey: CK_OBJECT_HANDLE,
    hAuthenticationKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    entry("C_SetOperationState", |api| {
        // SAFETY: the caller's contract for (pOperationState, ulOperationStateLen).
        let state = unsafe { ptr::in_slice(pOperationState.cast_const(), ulOperationStateLen) }?;
        api.set_operation_state(hSession, state, hEncryptionKey, hAuthenticationKey)
    })
}

/// C_Login.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Login(
    hSession: CK_SESSION_HANDLE,
    userType: CK_USER_TYPE,
    pPin: CK_UTF8CHAR_PTR,
    ulPinLen: CK_ULONG,
) -> CK_RV {
    entry("C_Login", |api| {
        // SAFETY: the caller's contract for (pPin, ulPinLen).
        let pin = unsafe { ptr::in_slice(pPin.cast_const(), ulPinLen) }?;
        api.login(hSession, userType, pin)
    })
}

/// C_LoginUser.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_LoginUser(
    hSession: CK_SESSION_HANDLE,
    userType: CK_USER_TYPE,
    pPin: CK_UTF8CHAR_PTR,
    ulPinLen: CK_ULONG,
    pUsername: CK_UTF8CHAR_PTR,
    ulUsernameLen: CK_ULONG,
) -> CK_RV {
    entry("C_LoginUser", |api| {
        // SAFETY: the caller's contract for (pPin, ulPinLen).
        let pin = unsafe { ptr::in_slice(pPin.cast_const(), ulPinLen) }?;
        // SAFETY: the caller's contract for (pUsername, ulUsernameLen).
        let user = unsafe { ptr::in_slice(pUsername.cast_const(), ulUsernameLen) }?;
        api.login_user(hSession, userType, pin, user)
    })
}

/// C_Logout.
///
/// # Safety
/// None.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Logout(hSession: CK_SESSION_HANDLE) -> CK_RV {
    entry("C_Logout", |api| api.logout(hSession))
}
