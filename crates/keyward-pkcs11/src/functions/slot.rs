//! Slot and token management functions (PKCS#11 3.0 §5.5).

use cryptoki_sys::*;
use keyward_core::Code;

use crate::ffi::out::{OutBuf, padded};
use crate::ffi::{entry, ptr};

fn version((major, minor): (u8, u8)) -> CK_VERSION {
    CK_VERSION { major, minor }
}

/// C_GetSlotList.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetSlotList(
    tokenPresent: CK_BBOOL,
    pSlotList: CK_SLOT_ID_PTR,
    pulCount: CK_ULONG_PTR,
) -> CK_RV {
    entry("C_GetSlotList", |api| {
        // SAFETY: the caller's contract for (pSlotList, pulCount).
        let out = unsafe { OutBuf::new(pSlotList, pulCount) }?;
        let slots = api.slot_list(tokenPresent != CK_FALSE)?;
        out.put(&slots)
    })
}

/// C_GetSlotInfo.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetSlotInfo(slotID: CK_SLOT_ID, pInfo: CK_SLOT_INFO_PTR) -> CK_RV {
    entry("C_GetSlotInfo", |api| {
        ptr::require(pInfo)?;
        let s = api.slot_info(slotID)?;
        let info = CK_SLOT_INFO {
            slotDescription: padded(&s.description),
            manufacturerID: padded(&s.manufacturer),
            flags: s.flags,
            hardwareVersion: version(s.hardware_version),
            firmwareVersion: version(s.firmware_version),
        };
        // SAFETY: non-NULL (checked) and writable for a CK_SLOT_INFO.
        unsafe { ptr::write(pInfo, info) }
    })
}

/// C_GetTokenInfo.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetTokenInfo(slotID: CK_SLOT_ID, pInfo: CK_TOKEN_INFO_PTR) -> CK_RV {
    entry("C_GetTokenInfo", |api| {
        ptr::require(pInfo)?;
        let t = api.token_info(slotID)?;
        let info = CK_TOKEN_INFO {
            label: padded(&t.label),
            manufacturerID: padded(&t.manufacturer),
            model: padded(&t.model),
            serialNumber: padded(&t.serial),
            flags: t.flags,
            ulMaxSessionCount: t.max_session_count,
            ulSessionCount: t.session_count,
            ulMaxRwSessionCount: t.max_rw_session_count,
            ulRwSessionCount: t.rw_session_count,
            ulMaxPinLen: t.max_pin_len,
            ulMinPinLen: t.min_pin_len,
            ulTotalPublicMemory: t.total_public_memory,
            ulFreePublicMemory: t.free_public_memory,
            ulTotalPrivateMemory: t.total_private_memory,
            ulFreePrivateMemory: t.free_private_memory,
            hardwareVersion: version(t.hardware_version),
            firmwareVersion: version(t.firmware_version),
            utcTime: padded(&t.utc_time),
        };
        // SAFETY: non-NULL (checked) and writable for a CK_TOKEN_INFO.
        unsafe { ptr::write(pInfo, info) }
    })
}

/// C_GetMechanismList.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetMechanismList(
    slotID: CK_SLOT_ID,
    pMechanismList: CK_MECHANISM_TYPE_PTR,
    pulCount: CK_ULONG_PTR,
) -> CK_RV {
    entry("C_GetMechanismList", |api| {
        // SAFETY: the caller's contract for (pMechanismList, pulCount).
        let out = unsafe { OutBuf::new(pMechanismList, pulCount) }?;
        let list = api.mechanism_list(slotID)?;
        out.put(&list)
    })
}

/// C_GetMechanismInfo.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetMechanismInfo(
    slotID: CK_SLOT_ID,
    type_: CK_MECHANISM_TYPE,
    pInfo: CK_MECHANISM_INFO_PTR,
) -> CK_RV {
    entry("C_GetMechanismInfo", |api| {
        ptr::require(pInfo)?;
        let m = api.mechanism_info(slotID, type_)?;
        let info = CK_MECHANISM_INFO {
            ulMinKeySize: m.min_key_size,
            ulMaxKeySize: m.max_key_size,
            flags: m.flags,
        };
        // SAFETY: non-NULL (checked) and writable for a CK_MECHANISM_INFO.
        unsafe { ptr::write(pInfo, info) }
    })
}

/// C_InitToken.
///
/// # Safety
/// See the module contract of [`crate::functions`]; `pLabel` points to 32 bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_InitToken(
    slotID: CK_SLOT_ID,
    pPin: CK_UTF8CHAR_PTR,
    ulPinLen: CK_ULONG,
    pLabel: CK_UTF8CHAR_PTR,
) -> CK_RV {
    entry("C_InitToken", |api| {
        // SAFETY: NULL (refused inside) or 32 readable bytes.
        let label = unsafe { ptr::read(pLabel.cast_const().cast::<[u8; 32]>()) }?;
        // SAFETY: the caller's contract for (pPin, ulPinLen).
        let pin = unsafe { ptr::in_slice(pPin.cast_const(), ulPinLen) }?;
        api.init_token(slotID, pin, &label)
    })
}

/// C_InitPIN.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_InitPIN(
    hSession: CK_SESSION_HANDLE,
    pPin: CK_UTF8CHAR_PTR,
    ulPinLen: CK_ULONG,
) -> CK_RV {
    entry("C_InitPIN", |api| {
        // SAFETY: the caller's contract for (pPin, ulPinLen).
        let pin = unsafe { ptr::in_slice(pPin.cast_const(), ulPinLen) }?;
        api.init_pin(hSession, pin)
    })
}

/// C_SetPIN.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SetPIN(
    hSession: CK_SESSION_HANDLE,
    pOldPin: CK_UTF8CHAR_PTR,
    ulOldLen: CK_ULONG,
    pNewPin: CK_UTF8CHAR_PTR,
    ulNewLen: CK_ULONG,
) -> CK_RV {
    entry("C_SetPIN", |api| {
        // SAFETY: the caller's contract for (pOldPin, ulOldLen).
        let old = unsafe { ptr::in_slice(pOldPin.cast_const(), ulOldLen) }?;
        // SAFETY: the caller's contract for (pNewPin, ulNewLen).
        let new = unsafe { ptr::in_slice(pNewPin.cast_const(), ulNewLen) }?;
        api.set_pin(hSession, old, new)
    })
}

/// C_WaitForSlotEvent: a software token has no removable slots, so with CKF_DONT_BLOCK there
/// is never an event (CKR_NO_EVENT), and blocking would wait forever
/// (CKR_FUNCTION_NOT_SUPPORTED).
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_WaitForSlotEvent(
    flags: CK_FLAGS,
    pSlot: CK_SLOT_ID_PTR,
    pReserved: CK_VOID_PTR,
) -> CK_RV {
    entry("C_WaitForSlotEvent", |_api| {
        ptr::require(pSlot)?;
        if !pReserved.is_null() {
            return Err(Code::ArgumentsBad.err("pReserved is not NULL"));
        }
        if flags & CKF_DONT_BLOCK != 0 {
            Err(Code::NoEvent.err("no slot events on a software token"))
        } else {
            Err(Code::FunctionNotSupported.err("blocking slot-event waits are not supported"))
        }
    })
}
