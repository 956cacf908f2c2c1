//! Signing, MACing and verification functions (PKCS#11 3.0 §5.11, §5.12).

use cryptoki_sys::*;

use crate::ffi::out::OutBuf;
use crate::ffi::{entry, mechanism, ptr};

/// C_SignInit.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    entry("C_SignInit", |api| {
        // SAFETY: the caller's contract for pMechanism and its parameter.
        let mech = unsafe { mechanism::read(pMechanism.cast_const()) }?;
        api.sign_init(hSession, &mech, hKey)
    })
}

/// C_Sign.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Sign(
    hSession: CK_SESSION_HANDLE,
    pData: CK_BYTE_PTR,
    ulDataLen: CK_ULONG,
    pSignature: CK_BYTE_PTR,
    pulSignatureLen: CK_ULONG_PTR,
) -> CK_RV {
    entry("C_Sign", |api| {
        // SAFETY: the caller's contract for (pSignature, pulSignatureLen).
        let out = unsafe { OutBuf::new(pSignature, pulSignatureLen) }?;
        // SAFETY: the caller's contract for (pData, ulDataLen).
        let data = unsafe { ptr::in_slice(pData.cast_const(), ulDataLen) }?;
        let res = api.sign(hSession, data, out.cap())?;
        out.finish(res)
    })
}

/// C_SignUpdate.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: CK_BYTE_PTR,
    ulPartLen: CK_ULONG,
) -> CK_RV {
    entry("C_SignUpdate", |api| {
        // SAFETY: the caller's contract for (pPart, ulPartLen).
        let data = unsafe { ptr::in_slice(pPart.cast_const(), ulPartLen) }?;
        api.sign_update(hSession, data)
    })
}

/// C_SignFinal.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignFinal(
    hSession: CK_SESSION_HANDLE,
    pSignature: CK_BYTE_PTR,
    pulSignatureLen: CK_ULONG_PTR,
) -> CK_RV {
    entry("C_SignFinal", |api| {
        // SAFETY: the caller's contract for (pSignature, pulSignatureLen).
        let out = unsafe { OutBuf::new(pSignature, pulSignatureLen) }?;
        let res = api.sign_final(hSession, out.cap())?;
        out.finish(res)
    })
}

/// C_SignRecoverInit.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignRecoverInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    entry("C_SignRecoverInit", |api| {
        // SAFETY: the caller's contract for pMechanism and its parameter.
        let mech = unsafe { mechanism::read(pMechanism.cast_const()) }?;
        api.sign_recover_init(hSession, &mech, hKey)
    })
}

/// C_SignRecover.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignRecover(
    hSession: CK_SESSION_HANDLE,
    pData: CK_BYTE_PTR,
    ulDataLen: CK_ULONG,
    pSignature: CK_BYTE_PTR,
    pulSignatureLen: CK_ULONG_PTR,
) -> CK_RV {
    entry("C_SignRecover", |api| {
        // SAFETY: the caller's contract for (pSignature, pulSignatureLen).
        let out = unsafe { OutBuf::new(pSignature, pulSignatureLen) }?;
        // SAFETY: the caller's contract for (pData, ulDataLen).
        let data = unsafe { ptr::in_slice(pData.cast_const(), ulDataLen) }?;
        let res = api.sign_recover(hSession, data, out.cap())?;
        out.finish(res)
    })
}

/// C_VerifyInit.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_VerifyInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    entry("C_VerifyInit", |api| {
        // SAFETY: the caller's contract for pMechanism and its parameter.
        let mech = unsafe { mechanism::read(pMechanism.cast_const()) }?;
        api.verify_init(hSession, &mech, hKey)
    })
}

/// C_Verify.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Verify(
    hSession: CK_SESSION_HANDLE,
    pData: CK_BYTE_PTR,
    ulDataLen: CK_ULONG,
    pSignature: CK_BYTE_PTR,
    ulSignatureLen: CK_ULONG,
) -> CK_RV {
    entry("C_Verify", |api| {
        // SAFETY: the caller's contract for (pData, ulDataLen).
        let data = unsafe { ptr::in_slice(pData.cast_const(), ulDataLen) }?;
        // SAFETY: the caller's contract for (pSignature, ulSignatureLen).
        let sig = unsafe { ptr::in_slice(pSignature.cast_const(), ulSignatureLen) }?;
        api.verify(hSession, data, sig)
    })
}

/// C_VerifyUpdate.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_VerifyUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: CK_BYTE_PTR,
    ulPartLen: CK_ULONG,
) -> CK_RV {
    entry("C_VerifyUpdate", |api| {
        // SAFETY: the caller's contract for (pPart, ulPartLen).
        let data = unsafe { ptr::in_slice(pPart.cast_const(), ulPartLen) }?;
        api.verify_update(hSession, data)
    })
}

/// C_VerifyFinal.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_VerifyFinal(
    hSession: CK_SESSION_HANDLE,
    pSignature: CK_BYTE_PTR,
    ulSignatureLen: CK_ULONG,
) -> CK_RV {
    entry("C_VerifyFinal", |api| {
        // SAFETY: the caller's contract for (pSignature, ulSignatureLen).
        let data = unsafe { ptr::in_slice(pSignature.cast_const(), ulSignatureLen) }?;
        api.verify_final(hSession, data)
    })
}

/// C_VerifyRecoverInit.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_VerifyRecoverInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    entry("C_VerifyRecoverInit", |api| {
        // SAFETY: the caller's contract for pMechanism and its parameter.
        let mech = unsafe { mechanism::read(pMechanism.cast_const()) }?;
        api.verify_recover_init(hSession, &mech, hKey)
    })
}

/// C_VerifyRecover.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_VerifyRecover(
    hSession: CK_SESSION_HANDLE,
    pSignature: CK_BYTE_PTR,
    ulSignatureLen: CK_ULONG,
    pData: CK_BYTE_PTR,
    pulDataLen: CK_ULONG_PTR,
) -> CK_RV {
    entry("C_VerifyRecover", |api| {
        // SAFETY: the caller's contract for (pData, pulDataLen).
        let out = unsafe { OutBuf::new(pData, pulDataLen) }?;
        // SAFETY: the caller's contract for (pSignature, ulSignatureLen).
        let data = unsafe { ptr::in_slice(pSignature.cast_const(), ulSignatureLen) }?;
        let res = api.verify_recover(hSession, data, out.cap())?;
        out.finish(res)
    })
}
