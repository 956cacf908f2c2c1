//! Message-based encryption, decryption, signing and verification (PKCS#11 3.0 §5.15-5.18).

use cryptoki_sys::*;
use keyward_core::types::{MechParams, Output};
use keyward_core::{Code, Result};

use crate::ffi::mechanism::{self, MessageParams};
use crate::ffi::out::OutBuf;
use crate::ffi::{entry, ptr};

/// Per-message parameters of the signing functions: none of the supported signature
/// mechanisms takes any, so a non-empty one is CKR_MECHANISM_PARAM_INVALID.
fn sign_params(_p: CK_VOID_PTR, len: CK_ULONG) -> Result<MechParams> {
    if len == 0 {
        return Ok(MechParams::None);
    }
    Err(Code::MechanismParamInvalid.err("per-message signing parameters are not supported"))
}

macro_rules! message_init {
    ($name:ident, $method:ident) => {
        /// The message-based init function of the same name.
        ///
        /// # Safety
        /// See the module contract of [`crate::functions`].
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(
            hSession: CK_SESSION_HANDLE,
            pMechanism: CK_MECHANISM_PTR,
            hKey: CK_OBJECT_HANDLE,
        ) -> CK_RV {
            entry(stringify!($name), |api| {
                // SAFETY: the caller's contract for pMechanism and its parameter.
                let mech = unsafe { mechanism::read(pMechanism.cast_const()) }?;
                api.$method(hSession, &mech, hKey)
            })
        }
    };
}

message_init!(C_MessageEncryptInit, message_encrypt_init);
message_init!(C_MessageDecryptInit, message_decrypt_init);
message_init!(C_MessageSignInit, message_sign_init);
message_init!(C_MessageVerifyInit, message_verify_init);

macro_rules! message_final {
    ($name:ident, $method:ident) => {
        /// The message-based final function of the same name.
        ///
        /// # Safety
        /// None.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(hSession: CK_SESSION_HANDLE) -> CK_RV {
            entry(stringify!($name), |api| api.$method(hSession))
        }
    };
}

message_final!(C_MessageEncryptFinal, message_encrypt_final);
message_final!(C_MessageDecryptFinal, message_decrypt_final);
message_final!(C_MessageSignFinal, message_sign_final);
message_final!(C_MessageVerifyFinal, message_verify_final);

/// C_EncryptMessage. A generated IV and the tag are written back only once ciphertext is
/// produced.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_EncryptMessage(
    hSession: CK_SESSION_HANDLE,
    pParameter: CK_VOID_PTR,
    ulParameterLen: CK_ULONG,
    pAssociatedData: CK_BYTE_PTR,
    ulAssociatedDataLen: CK_ULONG,
    pPlaintext: CK_BYTE_PTR,
    ulPlaintextLen: CK_ULONG,
    pCiphertext: CK_BYTE_PTR,
    pulCiphertextLen: CK_ULONG_PTR,
) -> CK_RV {
    entry("C_EncryptMessage", |api| {
        // SAFETY: the caller's contract for (pCiphertext, pulCiphertextLen).
        let out = unsafe { OutBuf::new(pCiphertext, pulCiphertextLen) }?;
        // SAFETY: the caller's contract for the per-message parameter.
        let (raw, mut params) = unsafe { MessageParams::read(pParameter, ulParameterLen, true) }?;
        // SAFETY: the caller's contract for (pAssociatedData, ulAssociatedDataLen).
        let aad = unsafe { ptr::in_slice(pAssociatedData.cast_const(), ulAssociatedDataLen) }?;
        // SAFETY: the caller's contract for (pPlaintext, ulPlaintextLen).
        let data = unsafe { ptr::in_slice(pPlaintext.cast_const(), ulPlaintextLen) }?;
        let res = api.encrypt_message(hSession, &mut params, aad, data, out.cap())?;
        if matches!(res, Output::Data(_)) {
            raw.write_back(&params, true)?;
        }
        out.finish(res)
    })
}

/// C_EncryptMessageBegin; a generated IV is written back.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_EncryptMessageBegin(
    hSession: CK_SESSION_HANDLE,
    pParameter: CK_VOID_PTR,
    ulParameterLen: CK_ULONG,
    pAssociatedData: CK_BYTE_PTR,
    ulAssociatedDataLen: CK_ULONG,
) -> CK_RV {
    entry("C_EncryptMessageBegin", |api| {
        // SAFETY: the caller's contract for the per-message parameter.
        let (raw, mut params) = unsafe { MessageParams::read(pParameter, ulParameterLen, true) }?;
        // SAFETY: the caller's contract for (pAssociatedData, ulAssociatedDataLen).
        let aad = unsafe { ptr::in_slice(pAssociatedData.cast_const(), ulAssociatedDataLen) }?;
        api.encrypt_message_begin(hSession, &mut params, aad)?;
        raw.write_back(&params, false)
    })
}

/// C_EncryptMessageNext; with CKF_END_OF_MESSAGE the tag is written back.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_EncryptMessageNext(
    hSession: CK_SESSION_HANDLE,
    pParameter: CK_VOID_PTR,
    ulParameterLen: CK_ULONG,
    pPlaintextPart: CK_BYTE_PTR,
    ulPlaintextPartLen: CK_ULONG,
    pCiphertextPart: CK_BYTE_PTR,
    pulCiphertextPartLen: CK_ULONG_PTR,
    flags: CK_FLAGS,
) -> CK_RV {
    entry("C_EncryptMessageNext", |api| {
        let last = flags & CKF_END_OF_MESSAGE != 0;
        // SAFETY: the caller's contract for (pCiphertextPart, pulCiphertextPartLen).
        let out = unsafe { OutBuf::new(pCiphertextPart, pulCiphertextPartLen) }?;
        // SAFETY: the caller's contract for the per-message parameter.
        let (raw, mut params) = unsafe { MessageParams::read(pParameter, ulParameterLen, true) }?;
        // SAFETY: the caller's contract for (pPlaintextPart, ulPlaintextPartLen).
        let data = unsafe { ptr::in_slice(pPlaintextPart.cast_const(), ulPlaintextPartLen) }?;
        let res = api.encrypt_message_next(hSession, &mut params, data, last, out.cap())?;
        if last && matches!(res, Output::Data(_)) {
            raw.write_back(&params, true)?;
        }
        out.finish(res)
    })
}

/// C_DecryptMessage.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DecryptMessage(
    hSession: CK_SESSION_HANDLE,
    pParameter: CK_VOID_PTR,
    ulParameterLen: CK_ULONG,
    pAssociatedData: CK_BYTE_PTR,
    ulAssociatedDataLen: CK_ULONG,
    pCiphertext: CK_BYTE_PTR,
    ulCiphertextLen: CK_ULONG,
    pPlaintext: CK_BYTE_PTR,
    pulPlaintextLen: CK_ULONG_PTR,
) -> CK_RV {
    entry("C_DecryptMessage", |api| {
        // SAFETY: the caller's contract for (pPlaintext, pulPlaintextLen).
        let out = unsafe { OutBuf::new(pPlaintext, pulPlaintextLen) }?;
        // SAFETY: the caller's contract for the per-message parameter.
        let (_raw, mut params) = unsafe { MessageParams::read(pParameter, ulParameterLen, false) }?;
        // SAFETY: the caller's contract for (pAssociatedData, ulAssociatedDataLen).
        let aad = unsafe { ptr::in_slice(pAssociatedData.cast_const(), ulAssociatedDataLen) }?;
        // SAFETY: the caller's contract for (pCiphertext, ulCiphertextLen).
        let data = unsafe { ptr::in_slice(pCiphertext.cast_const(), ulCiphertextLen) }?;
        let res = api.decrypt_message(hSession, &mut params, aad, data, out.cap())?;
        out.finish(res)
    })
}

/// C_DecryptMessageBegin.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DecryptMessageBegin(
    hSession: CK_SESSION_HANDLE,
    pParameter: CK_VOID_PTR,
    ulParameterLen: CK_ULONG,
    pAssociatedData: CK_BYTE_PTR,
    ulAssociatedDataLen: CK_ULONG,
) -> CK_RV {
    entry("C_DecryptMessageBegin", |api| {
        // SAFETY: the caller's contract for the per-message parameter.
        let (_raw, mut params) = unsafe { MessageParams::read(pParameter, ulParameterLen, false) }?;
        // SAFETY: the caller's contract for (pAssociatedData, ulAssociatedDataLen).
        let aad = unsafe { ptr::in_slice(pAssociatedData.cast_const(), ulAssociatedDataLen) }?;
        api.decrypt_message_begin(hSession, &mut params, aad)
    })
}

/// C_DecryptMessageNext.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DecryptMessageNext(
    hSession: CK_SESSION_HANDLE,
    pParameter: CK_VOID_PTR,
    ulParameterLen: CK_ULONG,
    pCiphertextPart: CK_BYTE_PTR,
    ulCiphertextPartLen: CK_ULONG,
    pPlaintextPart: CK_BYTE_PTR,
    pulPlaintextPartLen: CK_ULONG_PTR,
    flags: CK_FLAGS,
) -> CK_RV {
    entry("C_DecryptMessageNext", |api| {
        let last = flags & CKF_END_OF_MESSAGE != 0;
        // SAFETY: the caller's contract for (pPlaintextPart, pulPlaintextPartLen).
        let out = unsafe { OutBuf::new(pPlaintextPart, pulPlaintextPartLen) }?;
        // SAFETY: the caller's contract for the per-message parameter.
        let (_raw, mut params) = unsafe { MessageParams::read(pParameter, ulParameterLen, false) }?;
        // SAFETY: the caller's contract for (pCiphertextPart, ulCiphertextPartLen).
        let data = unsafe { ptr::in_slice(pCiphertextPart.cast_const(), ulCiphertextPartLen) }?;
        let res = api.decrypt_message_next(hSession, &mut params, data, last, out.cap())?;
        out.finish(res)
    })
}

/// C_SignMessage.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignMessage(
    hSession: CK_SESSION_HANDLE,
    pParameter: CK_VOID_PTR,
    ulParameterLen: CK_ULONG,
    pData: CK_BYTE_PTR,
    ulDataLen: CK_ULONG,
    pSignature: CK_BYTE_PTR,
    pulSignatureLen: CK_ULONG_PTR,
) -> CK_RV {
    entry("C_SignMessage", |api| {
        // SAFETY: the caller's contract for (pSignature, pulSignatureLen).
        let out = unsafe { OutBuf::new(pSignature, pulSignatureLen) }?;
        let mut params = sign_params(pParameter, ulParameterLen)?;
        // SAFETY: the caller's contract for (pData, ulDataLen).
        let data = unsafe { ptr::in_slice(pData.cast_const(), ulDataLen) }?;
        let res = api.sign_message(hSession, &mut params, data, out.cap())?;
        out.finish(res)
    })
}

/// C_SignMessageBegin.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignMessageBegin(
    hSession: CK_SESSION_HANDLE,
    pParameter: CK_VOID_PTR,
    ulParameterLen: CK_ULONG,
) -> CK_RV {
    entry("C_SignMessageBegin", |api| {
        let mut params = sign_params(pParameter, ulParameterLen)?;
        api.sign_message_begin(hSession, &mut params)
    })
}

/// C_SignMessageNext: `pulSignatureLen` NULL means "not the last part".
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignMessageNext(
    hSession: CK_SESSION_HANDLE,
    pParameter: CK_VOID_PTR,
    ulParameterLen: CK_ULONG,
    pDataPart: CK_BYTE_PTR,
    ulDataPartLen: CK_ULONG,
    pSignature: CK_BYTE_PTR,
    pulSignatureLen: CK_ULONG_PTR,
) -> CK_RV {
    entry("C_SignMessageNext", |api| {
        let mut params = sign_params(pParameter, ulParameterLen)?;
        // SAFETY: the caller's contract for (pDataPart, ulDataPartLen).
        let data = unsafe { ptr::in_slice(pDataPart.cast_const(), ulDataPartLen) }?;
        if pulSignatureLen.is_null() {
            api.sign_message_next(hSession, &mut params, data, false, Some(0))?;
            return Ok(());
        }
        // SAFETY: the caller's contract for (pSignature, pulSignatureLen).
        let out = unsafe { OutBuf::new(pSignature, pulSignatureLen) }?;
        let res = api.sign_message_next(hSession, &mut params, data, true, out.cap())?;
        out.finish(res)
    })
}

/// C_VerifyMessage.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_VerifyMessage(
    hSession: CK_SESSION_HANDLE,
    pParameter: CK_VOID_PTR,
    ulParameterLen: CK_ULONG,
    pData: CK_BYTE_PTR,
    ulDataLen: CK_ULONG,
    pSignature: CK_BYTE_PTR,
    ulSignatureLen: CK_ULONG,
) -> CK_RV {
    entry("C_VerifyMessage", |api| {
        let mut params = sign_params(pParameter, ulParameterLen)?;
        // SAFETY: the caller's contract for (pData, ulDataLen).
        let data = unsafe { ptr::in_slice(pData.cast_const(), ulDataLen) }?;
        // SAFETY: the caller's contract for (pSignature, ulSignatureLen).
        let sig = unsafe { ptr::in_slice(pSignature.cast_const(), ulSignatureLen) }?;
        api.verify_message(hSession, &mut params, data, sig)
    })
}

/// C_VerifyMessageBegin.
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_VerifyMessageBegin(
    hSession: CK_SESSION_HANDLE,
    pParameter: CK_VOID_PTR,
    ulParameterLen: CK_ULONG,
) -> CK_RV {
    entry("C_VerifyMessageBegin", |api| {
        let mut params = sign_params(pParameter, ulParameterLen)?;
        api.verify_message_begin(hSession, &mut params)
    })
}

/// C_VerifyMessageNext: `pSignature` NULL means "not the last part".
///
/// # Safety
/// See the module contract of [`crate::functions`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_VerifyMessageNext(
    hSession: CK_SESSION_HANDLE,
    pParameter: CK_VOID_PTR,
    ulParameterLen: CK_ULONG,
    pDataPart: CK_BYTE_PTR,
    ulDataPartLen: CK_ULONG,
    pSignature: CK_BYTE_PTR,
    ulSignatureLen: CK_ULONG,
) -> CK_RV {
    entry("C_VerifyMessageNext", |api| {
        let mut params = sign_params(pParameter, ulParameterLen)?;
        // SAFETY: the caller's contract for (pDataPart, ulDataPartLen).
        let data = unsafe { ptr::in_slice(pDataPart.cast_const(), ulDataPartLen) }?;
        let sig = if pSignature.is_null() {
            None
        } else {
            // SAFETY: the caller's contract for (pSignature, ulSignatureLen).
            Some(unsafe { ptr::in_slice(pSignature.cast_const(), ulSignatureLen) }?)
        };
        api.verify_message_next(hSession, &mut params, data, sig)
    })
}
