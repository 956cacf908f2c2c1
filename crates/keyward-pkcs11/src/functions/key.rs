//! Key management functions (PKCS#11 3.0 §5.13).

use cryptoki_sys::*;

use crate::ffi::out::OutBuf;
use crate::ffi::{entry, mechanism, ptr, template};

/// C_GenerateKey.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GenerateKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
    phKey: CK_OBJECT_HANDLE_PTR,
) -> CK_RV {
    entry("C_GenerateKey", |api| {
        ptr::require(phKey)?;
        // SAFETY: the caller's contract for pMechanism and its parameter.
        let mech = unsafe { mechanism::read(pMechanism.cast_const()) }?;
        // SAFETY: the caller's contract for (pTemplate, ulCount).
        let tmpl = unsafe { template::read(pTemplate.cast_const(), ulCount) }?;
        let h = api.generate_key(hSession, &mech, tmpl)?;
        // SAFETY: non-NULL (checked) and writable for a handle.
        unsafe { ptr::write(phKey, h) }
    })
}

/// C_GenerateKeyPair.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GenerateKeyPair(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    pPublicKeyTemplate: CK_ATTRIBUTE_PTR,
    ulPublicKeyAttributeCount: CK_ULONG,
    pPrivateKeyTemplate: CK_ATTRIBUTE_PTR,
    ulPrivateKeyAttributeCount: CK_ULONG,
    phPublicKey: CK_OBJECT_HANDLE_PTR,
    phPrivateKey: CK_OBJECT_HANDLE_PTR,
) -> CK_RV {
    entry("C_GenerateKeyPair", |api| {
        ptr::require(phPublicKey)?;
        ptr::require(phPrivateKey)?;
        // SAFETY: the caller's contract for pMechanism and its parameter.
        let mech = unsafe { mechanism::read(pMechanism.cast_const()) }?;
        // SAFETY: the caller's contract for the public template.
        let public =
            unsafe { template::read(pPublicKeyTemplate.cast_const(), ulPublicKeyAttributeCount) }?;
        // SAFETY: the caller's contract for the private template.
        let private = unsafe {
            template::read(pPrivateKeyTemplate.cast_const(), ulPrivateKeyAttributeCount)
        }?;
        let (hpub, hpriv) = api.generate_key_pair(hSession, &mech, public, private)?;
        // SAFETY: non-NULL (checked) and writable for a handle.
        unsafe { ptr::write(phPublicKey, hpub) }?;
        // SAFETY: non-NULL (checked) and writable for a handle.
        unsafe { ptr::write(phPrivateKey, hpriv) }
    })
}

/// C_WrapKey.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_WrapKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hWrappingKey: CK_OBJECT_HANDLE,
    hKey: CK_OBJECT_HANDLE,
    pWrappedKey: CK_BYTE_PTR,
    pulWrappedKeyLen: CK_ULONG_PTR,
) -> CK_RV {
    entry("C_WrapKey", |api| {
        // SAFETY: the caller's contract for (pWrappedKey, pulWrappedKeyLen).
        let out = unsafe { OutBuf::new(pWrappedKey, pulWrappedKeyLen) }?;
        // SAFETY: the caller's contract for pMechanism and its parameter.
        let mech = unsafe { mechanism::read(pMechanism.cast_const()) }?;
        let res = api.wrap_key(hSession, &mech, hWrappingKey, hKey, out.cap())?;
        out.finish(res)
    })
}

/// C_UnwrapKey.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_UnwrapKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hUnwrappingKey: CK_OBJECT_HANDLE,
    pWrappedKey: CK_BYTE_PTR,
    ulWrappedKeyLen: CK_ULONG,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulAttributeCount: CK_ULONG,
    phKey: CK_OBJECT_HANDLE_PTR,
) -> CK_RV {
    entry("C_UnwrapKey", |api| {
        ptr::require(phKey)?;
        // SAFETY: the caller's contract for pMechanism and its parameter.
        let mech = unsafe { mechanism::read(pMechanism.cast_const()) }?;
        // SAFETY: the caller's contract for (pWrappedKey, ulWrappedKeyLen).
        let wrapped = unsafe { ptr::in_slice(pWrappedKey.cast_const(), ulWrappedKeyLen) }?;
        // SAFETY: the caller's contract for (pTemplate, ulAttributeCount).
        let tmpl = unsafe { template::read(pTemplate.cast_const(), ulAttributeCount) }?;
        let h = api.unwrap_key(hSession, &mech, hUnwrappingKey, wrapped, tmpl)?;
        // SAFETY: non-NULL (checked) and writable for a handle.
        unsafe { ptr::write(phKey, h) }
    })
}

/// C_DeriveKey.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DeriveKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hBaseKey: CK_OBJECT_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulAttributeCount: CK_ULONG,
    phKey: CK_OBJECT_HANDLE_PTR,
) -> CK_RV {
    entry("C_DeriveKey", |api| {
        ptr::require(phKey)?;
        // SAFETY: the caller's contract for pMechanism and its parameter.
        let mech = unsafe { mechanism::read(pMechanism.cast_const()) }?;
        // SAFETY: the caller's contract for (pTemplate, ulAttributeCount).
        let tmpl = unsafe { template::read(pTemplate.cast_const(), ulAttributeCount) }?;
        let h = api.derive_key(hSession, &mech, hBaseKey, tmpl)?;
        // SAFETY: non-NULL (checked) and writable for a handle.
        unsafe { ptr::write(phKey, h) }
    })
}
