//! Encryption and decryption functions (PKCS#11 3.0 §5.8, §5.9) and the dual-function
//! updates (§5.13), which are composed from the single ones.

use cryptoki_sys::*;
use keyward_core::Result;
use keyward_core::api::Api;
use keyward_core::types::Output;

use crate::ffi::out::OutBuf;
use crate::ffi::{entry, mechanism, ptr};

/// C_EncryptInit.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_EncryptInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    entry("C_EncryptInit", |api| {
        // SAFETY: the caller's contract for pMechanism and its parameter.
        let mech = unsafe { mechanism::read(pMechanism.cast_const()) }?;
        api.encrypt_init(hSession, &mech, hKey)
    })
}

/// C_Encrypt.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Encrypt(
    hSession: CK_SESSION_HANDLE,
    pData: CK_BYTE_PTR,
    ulDataLen: CK_ULONG,
    pEncryptedData: CK_BYTE_PTR,
    pulEncryptedDataLen: CK_ULONG_PTR,
) -> CK_RV {
    entry("C_Encrypt", |api| {
        // SAFETY: the caller's contract for (pEncryptedData, pulEncryptedDataLen).
        let out = unsafe { OutBuf::new(pEncryptedData, pulEncryptedDataLen) }?;
        // SAFETY: the caller's contract for (pData, ulDataLen).
        let data = unsafe { ptr::in_slice(pData.cast_const(), ulDataLen) }?;
        let res = api.encrypt(hSession, data, out.cap())?;
        out.finish(res)
    })
}

/// C_EncryptUpdate.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_EncryptUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: CK_BYTE_PTR,
    ulPartLen: CK_ULONG,
    pEncryptedPart: CK_BYTE_PTR,
    pulEncryptedPartLen: CK_ULONG_PTR,
) -> CK_RV {
    entry("C_EncryptUpdate", |api| {
        // SAFETY: the caller's contract for (pEncryptedPart, pulEncryptedPartLen).
        let out = unsafe { OutBuf::new(pEncryptedPart, pulEncryptedPartLen) }?;
        // SAFETY: the caller's contract for (pPart, ulPartLen).
        let data = unsafe { ptr::in_slice(pPart.cast_const(), ulPartLen) }?;
        let res = api.encrypt_update(hSession, data, out.cap())?;
        out.finish(res)
    })
}

/// C_EncryptFinal.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_EncryptFinal(
    hSession: CK_SESSION_HANDLE,
    pLastEncryptedPart: CK_BYTE_PTR,
    pulLastEncryptedPartLen: CK_ULONG_PTR,
) -> CK_RV {
    entry("C_EncryptFinal", |api| {
        // SAFETY: the caller's contract for (pLastEncryptedPart, pulLastEncryptedPartLen).
        let out = unsafe { OutBuf::new(pLastEncryptedPart, pulLastEncryptedPartLen) }?;
        let res = api.encrypt_final(hSession, out.cap())?;
        out.finish(res)
    })
}

/// C_DecryptInit.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DecryptInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    entry("C_DecryptInit", |api| {
        // SAFETY: the caller's contract for pMechanism and its parameter.
        let mech = unsafe { mechanism::read(pMechanism.cast_const()) }?;
        api.decrypt_init(hSession, &mech, hKey)
    })
}

/// C_Decrypt.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Decrypt(
    hSession: CK_SESSION_HANDLE,
    pEncryptedData: CK_BYTE_PTR,
    ulEncryptedDataLen: CK_ULONG,
    pData: CK_BYTE_PTR,
    pulDataLen: CK_ULONG_PTR,
) -> CK_RV {
    entry("C_Decrypt", |api| {
        // SAFETY: the caller's contract for (pData, pulDataLen).
        let out = unsafe { OutBuf::new(pData, pulDataLen) }?;
        // SAFETY: the caller's contract for (pEncryptedData, ulEncryptedDataLen).
        let data = unsafe { ptr::in_slice(pEncryptedData.cast_const(), ulEncryptedDataLen) }?;
        let res = api.decrypt(hSession, data, out.cap())?;
        out.finish(res)
    })
}

/// C_DecryptUpdate.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DecryptUpdate(
    hSession: CK_SESSION_HANDLE,
    pEncryptedPart: CK_BYTE_PTR,
    ulEncryptedPartLen: CK_ULONG,
    pPart: CK_BYTE_PTR,
    pulPartLen: CK_ULONG_PTR,
) -> CK_RV {
    entry("C_DecryptUpdate", |api| {
        // SAFETY: the caller's contract for (pPart, pulPartLen).
        let out = unsafe { OutBuf::new(pPart, pulPartLen) }?;
        // SAFETY: the caller's contract for (pEncryptedPart, ulEncryptedPartLen).
        let data = unsafe { ptr::in_slice(pEncryptedPart.cast_const(), ulEncryptedPartLen) }?;
        let res = api.decrypt_update(hSession, data, out.cap())?;
        out.finish(res)
    })
}

/// C_DecryptFinal.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DecryptFinal(
    hSession: CK_SESSION_HANDLE,
    pLastPart: CK_BYTE_PTR,
    pulLastPartLen: CK_ULONG_PTR,
) -> CK_RV {
    entry("C_DecryptFinal", |api| {
        // SAFETY: the caller's contract for (pLastPart, pulLastPartLen).
        let out = unsafe { OutBuf::new(pLastPart, pulLastPartLen) }?;
        let res = api.decrypt_final(hSession, out.cap())?;
        out.finish(res)
    })
}

/// Which single-part update a dual function pairs with the cipher step.
#[derive(Clone, Copy)]
enum Pair {
    Digest,
    Sign,
    Verify,
}

impl Pair {
    fn update(self, api: &dyn Api, h: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
        match self {
            Pair::Digest => api.digest_update(h, data),
            Pair::Sign => api.sign_update(h, data),
            Pair::Verify => api.verify_update(h, data),
        }
    }
}

/// Encrypt a part, then feed the plaintext to the paired operation only once ciphertext was
/// actually produced: a length query or a short buffer must not advance the digest/signature,
/// since the caller repeats the call.
fn encrypt_then(
    api: &dyn Api,
    h: CK_SESSION_HANDLE,
    pair: Pair,
    part: &[u8],
    out: OutBuf<'_, u8>,
) -> Result<()> {
    let res = api.encrypt_update(h, part, out.cap())?;
    if matches!(res, Output::Data(_)) {
        pair.update(api, h, part)?;
    }
    out.finish(res)
}

/// Decrypt a part, then feed the recovered plaintext to the paired operation (only when
/// plaintext was produced).
fn decrypt_then(
    api: &dyn Api,
    h: CK_SESSION_HANDLE,
    pair: Pair,
    part: &[u8],
    out: OutBuf<'_, u8>,
) -> Result<()> {
    let res = api.decrypt_update(h, part, out.cap())?;
    if let Output::Data(plain) = &res {
        pair.update(api, h, plain)?;
    }
    out.finish(res)
}

/// C_DigestEncryptUpdate.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DigestEncryptUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: CK_BYTE_PTR,
    ulPartLen: CK_ULONG,
    pEncryptedPart: CK_BYTE_PTR,
    pulEncryptedPartLen: CK_ULONG_PTR,
) -> CK_RV {
    entry("C_DigestEncryptUpdate", |api| {
        // SAFETY: the caller's contract for (pEncryptedPart, pulEncryptedPartLen).
        let out = unsafe { OutBuf::new(pEncryptedPart, pulEncryptedPartLen) }?;
        // SAFETY: the caller's contract for (pPart, ulPartLen).
        let part = unsafe { ptr::in_slice(pPart.cast_const(), ulPartLen) }?;
        encrypt_then(api, hSession, Pair::Digest, part, out)
    })
}

/// C_DecryptDigestUpdate.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DecryptDigestUpdate(
    hSession: CK_SESSION_HANDLE,
    pEncryptedPart: CK_BYTE_PTR,
    ulEncryptedPartLen: CK_ULONG,
    pPart: CK_BYTE_PTR,
    pulPartLen: CK_ULONG_PTR,
) -> CK_RV {
    entry("C_DecryptDigestUpdate", |api| {
        // SAFETY: the caller's contract for (pPart, pulPartLen).
        let out = unsafe { OutBuf::new(pPart, pulPartLen) }?;
        // SAFETY: the caller's contract for (pEncryptedPart, ulEncryptedPartLen).
        let part = unsafe { ptr::in_slice(pEncryptedPart.cast_const(), ulEncryptedPartLen) }?;
        decrypt_then(api, hSession, Pair::Digest, part, out)
    })
}

/// C_SignEncryptUpdate.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignEncryptUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: CK_BYTE_PTR,
    ulPartLen: CK_ULONG,
    pEncryptedPart: CK_BYTE_PTR,
    pulEncryptedPartLen: CK_ULONG_PTR,
) -> CK_RV {
    entry("C_SignEncryptUpdate", |api| {
        // SAFETY: the caller's contract for (pEncryptedPart, pulEncryptedPartLen).
        let out = unsafe { OutBuf::new(pEncryptedPart, pulEncryptedPartLen) }?;
        // SAFETY: the caller's contract for (pPart, ulPartLen).
        let part = unsafe { ptr::in_slice(pPart.cast_const(), ulPartLen) }?;
        encrypt_then(api, hSession, Pair::Sign, part, out)
    })
}

/// C_DecryptVerifyUpdate.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DecryptVerifyUpdate(
    hSession: CK_SESSION_HANDLE,
    pEncryptedPart: CK_BYTE_PTR,
    ulEncryptedPartLen: CK_ULONG,
    pPart: CK_BYTE_PTR,
    pulPartLen: CK_ULONG_PTR,
) -> CK_RV {
    entry("C_DecryptVerifyUpdate", |api| {
        // SAFETY: the caller's contract for (pPart, pulPartLen).
        let out = unsafe { OutBuf::new(pPart, pulPartLen) }?;
        // SAFETY: the caller's contract for (pEncryptedPart, ulEncryptedPartLen).
        let part = unsafe { ptr::in_slice(pEncryptedPart.cast_const(), ulEncryptedPartLen) }?;
        decrypt_then(api, hSession, Pair::Verify, part, out)
    })
}
