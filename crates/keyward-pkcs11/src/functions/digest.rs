//! Message digesting functions (PKCS#11 3.0 §5.10).

use cryptoki_sys::*;

use crate::ffi::out::OutBuf;
use crate::ffi::{entry, mechanism, ptr};

/// C_DigestInit.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DigestInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
) -> CK_RV {
    entry("C_DigestInit", |api| {
        // SAFETY: the caller's contract for pMechanism and its parameter.
        let mech = unsafe { mechanism::read(pMechanism.cast_const()) }?;
        api.digest_init(hSession, &mech)
    })
}

/// C_Digest.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Digest(
    hSession: CK_SESSION_HANDLE,
    pData: CK_BYTE_PTR,
    ulDataLen: CK_ULONG,
    pDigest: CK_BYTE_PTR,
    pulDigestLen: CK_ULONG_PTR,
) -> CK_RV {
    entry("C_Digest", |api| {
        // SAFETY: the caller's contract for (pDigest, pulDigestLen).
        let out = unsafe { OutBuf::new(pDigest, pulDigestLen) }?;
        // SAFETY: the caller's contract for (pData, ulDataLen).
        let data = unsafe { ptr::in_slice(pData.cast_const(), ulDataLen) }?;
        let res = api.digest(hSession, data, out.cap())?;
        out.finish(res)
    })
}

/// C_DigestUpdate.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DigestUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: CK_BYTE_PTR,
    ulPartLen: CK_ULONG,
) -> CK_RV {
    entry("C_DigestUpdate", |api| {
        // SAFETY: the caller's contract for (pPart, ulPartLen).
        let data = unsafe { ptr::in_slice(pPart.cast_const(), ulPartLen) }?;
        api.digest_update(hSession, data)
    })
}

/// C_DigestKey.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DigestKey(hSession: CK_SESSION_HANDLE, hKey: CK_OBJECT_HANDLE) -> CK_RV {
    entry("C_DigestKey", |api| api.digest_key(hSession, hKey))
}

/// C_DigestFinal.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DigestFinal(
    hSession: CK_SESSION_HANDLE,
    pDigest: CK_BYTE_PTR,
    pulDigestLen: CK_ULONG_PTR,
) -> CK_RV {
    entry("C_DigestFinal", |api| {
        // SAFETY: the caller's contract for (pDigest, pulDigestLen).
        let out = unsafe { OutBuf::new(pDigest, pulDigestLen) }?;
        let res = api.digest_final(hSession, out.cap())?;
        out.finish(res)
    })
}
