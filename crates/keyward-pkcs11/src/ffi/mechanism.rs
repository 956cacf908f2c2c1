//! CK_MECHANISM decoding (PKCS#11 3.0 §5.1 and the mechanism chapters of PKCS#11 3.0 Current
//! Mechanisms): each CKM_'s parameter structure is size-checked, then read unaligned into
//! an owned `MechParams`.

use std::marker::PhantomData;
use std::mem::size_of;

use cryptoki_sys::*;
use keyward_core::types::{MechParams, Mechanism};
use keyward_core::{Code, Result};

use super::ptr;

mod kdf;

/// Longest byte string accepted inside mechanism parameters (IV, AAD, label, shared data).
pub(crate) const MAX_PARAM_LEN: usize = 16 << 20;

/// Decode a caller's CK_MECHANISM. NULL is CKR_ARGUMENTS_BAD; a parameter that does not
/// have the mechanism's structure size, or that a parameterless mechanism does not take, is
/// CKR_MECHANISM_PARAM_INVALID; a parameter for a mechanism with no decoder is
/// CKR_MECHANISM_INVALID.
///
/// # Safety
/// If `p` is not NULL it must point to a readable CK_MECHANISM whose pParameter is readable for
/// ulParameterLen bytes, and whose nested pointers are readable for their stated lengths.
pub(crate) unsafe fn read(p: *const CK_MECHANISM) -> Result<Mechanism> {
    // SAFETY: forwarded caller contract; NULL is refused inside.
    let m = unsafe { ptr::read(p) }?;
    // SAFETY: forwarded caller contract for pParameter and what it points to.
    let params = unsafe { params(m.mechanism, m.pParameter.cast_const(), m.ulParameterLen) }?;
    Ok(Mechanism {
        mech: m.mechanism,
        params,
    })
}

fn param_invalid(mech: CK_MECHANISM_TYPE, why: &str) -> keyward_core::Error {
    Code::MechanismParamInvalid.err(format!("mechanism {mech:#x}: {why}"))
}

/// Read the parameter as exactly one `T`.
///
/// # Safety
/// If `p` is not NULL it must be readable for `n` bytes.
unsafe fn read_struct<T: Copy>(
    mech: CK_MECHANISM_TYPE,
    p: *const std::ffi::c_void,
    n: usize,
) -> Result<T> {
    if p.is_null() || n != size_of::<T>() {
        return Err(param_invalid(
            mech,
            "parameter size does not match its structure",
        ));
    }
    // SAFETY: non-NULL with exactly size_of::<T>() readable bytes; possibly misaligned.
    Ok(unsafe { p.cast::<T>().read_unaligned() })
}

/// Copy a (pointer, length) pair nested in a parameter structure.
///
/// # Safety
/// If `p` is not NULL it must be readable for `len` bytes.
unsafe fn bytes(mech: CK_MECHANISM_TYPE, p: *const u8, len: CK_ULONG) -> Result<Vec<u8>> {
    let n =
        usize::try_from(len).map_err(|_| param_invalid(mech, "length does not fit in memory"))?;
    if n > MAX_PARAM_LEN {
        return Err(param_invalid(mech, "parameter data too long"));
    }
    // SAFETY: forwarded contract; NULL with a non-zero length is refused inside.
    unsafe { ptr::copy_in(p, n, Code::MechanismParamInvalid) }
}

/// Mechanisms that take no parameter.
fn parameterless(mech: CK_MECHANISM_TYPE) -> bool {
    matches!(
        mech,
        CKM_RSA_PKCS_KEY_PAIR_GEN
            | CKM_RSA_PKCS
            | CKM_RSA_X_509
            | CKM_SHA1_RSA_PKCS
            | CKM_SHA224_RSA_PKCS
            | CKM_SHA256_RSA_PKCS
            | CKM_SHA384_RSA_PKCS
            | CKM_SHA512_RSA_PKCS
            | CKM_SHA3_224_RSA_PKCS
            | CKM_SHA3_256_RSA_PKCS
            | CKM_SHA3_384_RSA_PKCS
            | CKM_SHA3_512_RSA_PKCS
            | CKM_EC_KEY_PAIR_GEN
            | CKM_EC_EDWARDS_KEY_PAIR_GEN
            | CKM_EC_MONTGOMERY_KEY_PAIR_GEN
            | CKM_ECDSA
            | CKM_ECDSA_SHA1
            | CKM_ECDSA_SHA224
            | CKM_ECDSA_SHA256
            | CKM_ECDSA_SHA384
            | CKM_ECDSA_SHA512
            | CKM_ECDSA_SHA3_224
            | CKM_ECDSA_SHA3_256
            | CKM_ECDSA_SHA3_384
            | CKM_ECDSA_SHA3_512
            | CKM_SHA_1
            | CKM_SHA224
            | CKM_SHA256
            | CKM_SHA384
            | CKM_SHA512
            | CKM_SHA512_224
            | CKM_SHA512_256
            | CKM_SHA3_224
            | CKM_SHA3_256
            | CKM_SHA3_384
            | CKM_SHA3_512
            | CKM_SHA_1_HMAC
            | CKM_SHA224_HMAC
            | CKM_SHA256_HMAC
            | CKM_SHA384_HMAC
            | CKM_SHA512_HMAC
            | CKM_SHA512_224_HMAC
            | CKM_SHA512_256_HMAC
            | CKM_SHA3_224_HMAC
            | CKM_SHA3_256_HMAC
            | CKM_SHA3_384_HMAC
            | CKM_SHA3_512_HMAC
            | CKM_GENERIC_SECRET_KEY_GEN
            | CKM_AES_KEY_GEN
            | CKM_AES_ECB
            | CKM_AES_MAC
            | CKM_AES_CMAC
            | CKM_CHACHA20_KEY_GEN
            | CKM_HKDF_KEY_GEN
    )
}

/// # Safety
/// If `p` is not NULL it must be readable for `len` bytes, with nested pointers readable for
/// their stated lengths.
pub(crate) unsafe fn params(
    mech: CK_MECHANISM_TYPE,
    p: *const std::ffi::c_void,
    len: CK_ULONG,
) -> Result<MechParams> {
    let n =
        usize::try_from(len).map_err(|_| param_invalid(mech, "length does not fit in memory"))?;
    if p.is_null() && n != 0 {
        return Err(param_invalid(mech, "NULL parameter with a non-zero length"));
    }
    if parameterless(mech) {
        if n != 0 {
            return Err(param_invalid(mech, "this mechanism takes no parameter"));
        }
        return Ok(MechParams::None);
    }
    // The AEAD mechanisms take their parameters per message in the message-based functions
    // (C_MessageEncryptInit has none); a one-shot init without them fails in the engine.
    if n == 0 && matches!(mech, CKM_AES_GCM | CKM_AES_CCM | CKM_CHACHA20_POLY1305) {
        return Ok(MechParams::None);
    }
    // Sizes are checked by `read_struct` before any field is used.
    match mech {
        CKM_AES_GCM => {
            // SAFETY: readable as stated, by the contract of `params`.
            let g: CK_GCM_PARAMS = unsafe { read_struct(mech, p, n) }?;
            Ok(MechParams::Gcm {
                // SAFETY: readable as stated, by the contract of `params`.
                iv: unsafe { bytes(mech, g.pIv, g.ulIvLen) }?,
                iv_bits: g.ulIvBits,
                // SAFETY: readable as stated, by the contract of `params`.
                aad: unsafe { bytes(mech, g.pAAD, g.ulAADLen) }?,
                tag_bits: g.ulTagBits,
            })
        }
        CKM_AES_CCM => {
            // SAFETY: readable as stated, by the contract of `params`.
            let c: CK_CCM_PARAMS = unsafe { read_struct(mech, p, n) }?;
            Ok(MechParams::Ccm {
                data_len: c.ulDataLen,
                // SAFETY: readable as stated, by the contract of `params`.
                nonce: unsafe { bytes(mech, c.pNonce, c.ulNonceLen) }?,
                // SAFETY: readable as stated, by the contract of `params`.
                aad: unsafe { bytes(mech, c.pAAD, c.ulAADLen) }?,
                mac_len: c.ulMACLen,
            })
        }
        // The ChaCha20-Poly1305 AEAD has the GCM shape with a fixed 128-bit tag.
        CKM_CHACHA20_POLY1305 => {
            // SAFETY: readable as stated, by the contract of `params`.
            let c: CK_SALSA20_CHACHA20_POLY1305_PARAMS = unsafe { read_struct(mech, p, n) }?;
            // SAFETY: readable as stated, by the contract of `params`.
            let iv = unsafe { bytes(mech, c.pNonce, c.ulNonceLen) }?;
            Ok(MechParams::Gcm {
                iv_bits: c.ulNonceLen.saturating_mul(8),
                iv,
                // SAFETY: readable as stated, by the contract of `params`.
                aad: unsafe { bytes(mech, c.pAAD, c.ulAADLen) }?,
                tag_bits: 128,
            })
        }
        CKM_RSA_PKCS_PSS
        | CKM_SHA1_RSA_PKCS_PSS
        | CKM_SHA224_RSA_PKCS_PSS
        | CKM_SHA256_RSA_PKCS_PSS
        | CKM_SHA384_RSA_PKCS_PSS
        | CKM_SHA512_RSA_PKCS_PSS
        | CKM_SHA3_224_RSA_PKCS_PSS
        | CKM_SHA3_256_RSA_PKCS_PSS
        | CKM_SHA3_384_RSA_PKCS_PSS
        | CKM_SHA3_512_RSA_PKCS_PSS => {
            // SAFETY: readable as stated, by the contract of `params`.
            let s: CK_RSA_PKCS_PSS_PARAMS = unsafe { read_struct(mech, p, n) }?;
            Ok(MechParams::Pss {
                hash: s.hashAlg,
                mgf: s.mgf,
                salt_len: s.sLen,
            })
        }
        CKM_RSA_PKCS_OAEP => {
            // SAFETY: readable as stated, by the contract of `params`.
            let o: CK_RSA_PKCS_OAEP_PARAMS = unsafe { read_struct(mech, p, n) }?;
            // Source 0 is what some callers pass when there is no label.
            if o.source != CKZ_DATA_SPECIFIED && o.source != 0 {
                return Err(param_invalid(mech, "unknown OAEP label source"));
            }
            Ok(MechParams::Oaep {
                hash: o.hashAlg,
                mgf: o.mgf,
                // SAFETY: readable as stated, by the contract of `params`.
                label: unsafe {
                    bytes(mech, o.pSourceData.cast_const().cast(), o.ulSourceDataLen)
                }?,
            })
        }
        CKM_ECDH1_DERIVE | CKM_ECDH1_COFACTOR_DERIVE => {
            // SAFETY: readable as stated, by the contract of `params`.
            let e: CK_ECDH1_DERIVE_PARAMS = unsafe { read_struct(mech, p, n) }?;
            Ok(MechParams::Ecdh {
                kdf: e.kdf,
                // SAFETY: readable as stated, by the contract of `params`.
                shared_data: unsafe { bytes(mech, e.pSharedData, e.ulSharedDataLen) }?,
                // SAFETY: readable as stated, by the contract of `params`.
                public_data: unsafe { bytes(mech, e.pPublicData, e.ulPublicDataLen) }?,
            })
        }
        CKM_EDDSA => {
            if n == 0 {
                return Ok(MechParams::None);
            }
            // SAFETY: readable as stated, by the contract of `params`.
            let e: CK_EDDSA_PARAMS = unsafe { read_struct(mech, p, n) }?;
            Ok(MechParams::EdDsa {
                prehash: e.phFlag != CK_FALSE,
                // SAFETY: readable as stated, by the contract of `params`.
                context: unsafe { bytes(mech, e.pContextData, e.ulContextDataLen) }?,
            })
        }
        // IV mechanisms: the parameter is the IV itself.
        CKM_AES_CBC | CKM_AES_CBC_PAD | CKM_AES_OFB | CKM_AES_CFB8 | CKM_AES_CFB64
        | CKM_AES_CFB128 | CKM_AES_CTS | CKM_DES3_CBC | CKM_DES3_CBC_PAD => {
            // SAFETY: readable as stated, by the contract of `params`.
            Ok(MechParams::Bytes(unsafe { bytes(mech, p.cast(), len) }?))
        }
        // AES key wrap takes an optional IV.
        CKM_AES_KEY_WRAP | CKM_AES_KEY_WRAP_PAD | CKM_AES_KEY_WRAP_KWP => {
            if n == 0 {
                return Ok(MechParams::None);
            }
            // SAFETY: readable as stated, by the contract of `params`.
            Ok(MechParams::Bytes(unsafe { bytes(mech, p.cast(), len) }?))
        }
        // The counter block travels as bytes; the engine counts over the whole block, which
        // only differs from a shorter ulCounterBits after 2^ulCounterBits blocks.
        CKM_AES_CTR => {
            // SAFETY: readable as stated, by the contract of `params`.
            let c: CK_AES_CTR_PARAMS = unsafe { read_struct(mech, p, n) }?;
            if c.ulCounterBits == 0 || c.ulCounterBits > 128 {
                return Err(param_invalid(mech, "ulCounterBits must be 1..=128"));
            }
            Ok(MechParams::Bytes(c.cb.to_vec()))
        }
        CKM_CONCATENATE_BASE_AND_DATA
        | CKM_CONCATENATE_DATA_AND_BASE
        | CKM_XOR_BASE_AND_DATA
        | CKM_AES_ECB_ENCRYPT_DATA => {
            // SAFETY: readable as stated, by the contract of `params`.
            let s: CK_KEY_DERIVATION_STRING_DATA = unsafe { read_struct(mech, p, n) }?;
            // SAFETY: readable as stated, by the contract of `params`.
            Ok(MechParams::Bytes(unsafe { bytes(mech, s.pData, s.ulLen) }?))
        }
        // CK_MAC_GENERAL_PARAMS, CK_OBJECT_HANDLE and CK_EXTRACT_PARAMS are one CK_ULONG.
        CKM_SHA_1_HMAC_GENERAL
        | CKM_SHA224_HMAC_GENERAL
        | CKM_SHA256_HMAC_GENERAL
        | CKM_SHA384_HMAC_GENERAL
        | CKM_SHA512_HMAC_GENERAL
        | CKM_SHA512_224_HMAC_GENERAL
        | CKM_SHA512_256_HMAC_GENERAL
        | CKM_SHA3_224_HMAC_GENERAL
        | CKM_SHA3_256_HMAC_GENERAL
        | CKM_SHA3_384_HMAC_GENERAL
        | CKM_SHA3_512_HMAC_GENERAL
        | CKM_AES_MAC_GENERAL
        | CKM_AES_CMAC_GENERAL
        | CKM_CONCATENATE_BASE_AND_KEY
        | CKM_EXTRACT_KEY_FROM_KEY => {
            // SAFETY: readable as stated, by the contract of `params`.
            let u: CK_ULONG = unsafe { read_struct(mech, p, n) }?;
            Ok(MechParams::Ulong(u))
        }
        CKM_HKDF_DERIVE | CKM_HKDF_DATA => {
            // SAFETY: readable as stated, by the contract of `params`.
            unsafe { kdf::hkdf(mech, p, n) }
        }
        CKM_PKCS5_PBKD2 => {
            // SAFETY: readable as stated, by the contract of `params`.
            unsafe { kdf::pbkdf2(mech, p, n) }
        }
        CKM_SP800_108_COUNTER_KDF => {
            // SAFETY: readable as stated, by the contract of `params`.
            unsafe { kdf::sp800_108(mech, p, n) }
        }
        CKM_AES_CBC_ENCRYPT_DATA => {
            // SAFETY: readable as stated, by the contract of `params`.
            unsafe { kdf::cbc_encrypt_data(mech, p, n) }
        }
        _ if n == 0 => Ok(MechParams::None),
        _ => Err(Code::MechanismInvalid.err(format!(
            "mechanism {mech:#x}: parameters of this mechanism are not supported"
        ))),
    }
}

/// Which per-message structure the caller passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MsgKind {
    None,
    Gcm,
    Ccm,
    ChaCha,
}

/// The caller's per-message parameter of C_EncryptMessage* / C_DecryptMessage* /
/// C_SignMessage* / C_VerifyMessage*, kept so generated IVs and tags can be written back.
/// The AEAD structures are told apart by size, which differs on every target (6, 7 and 3
/// pointer-sized fields).
pub(crate) struct MessageParams<'a> {
    raw: *mut std::ffi::c_void,
    kind: MsgKind,
    _caller: PhantomData<&'a mut ()>,
}

impl<'a> MessageParams<'a> {
    /// Decode; `encrypting` says whether the tag is output (never read) or input.
    ///
    /// # Safety
    /// If `p` is not NULL it must be readable and writable for `len` bytes, and the IV, AAD and
    /// tag pointers inside readable (and IV/tag writable) for their stated lengths, for `'a`.
    pub(crate) unsafe fn read(
        p: *mut std::ffi::c_void,
        len: CK_ULONG,
        encrypting: bool,
    ) -> Result<(MessageParams<'a>, MechParams)> {
        const M: CK_MECHANISM_TYPE = CK_UNAVAILABLE_INFORMATION;
        let n =
            usize::try_from(len).map_err(|_| param_invalid(M, "length does not fit in memory"))?;
        let src = p.cast_const();
        let (kind, params) = if n == 0 {
            (MsgKind::None, MechParams::None)
        } else if n == size_of::<CK_GCM_MESSAGE_PARAMS>() {
            // SAFETY: `n` readable bytes at `p`, size checked inside.
            let g: CK_GCM_MESSAGE_PARAMS = unsafe { read_struct(M, src, n) }?;
            if !g.ulTagBits.is_multiple_of(8) {
                return Err(param_invalid(M, "ulTagBits is not a whole number of bytes"));
            }
            let tag_len = g.ulTagBits / 8;
            // SAFETY: the IV buffer is readable for ulIvLen bytes by contract.
            let iv = unsafe { bytes(M, g.pIv, g.ulIvLen) }?;
            // SAFETY: when decrypting the tag buffer is readable for its length by contract.
            let tag = unsafe { tag_in(g.pTag, tag_len, encrypting) }?;
            (
                MsgKind::Gcm,
                MechParams::AeadMessage {
                    iv,
                    iv_fixed_bits: g.ulIvFixedBits,
                    generator: g.ivGenerator,
                    tag,
                    data_len: 0,
                },
            )
        } else if n == size_of::<CK_CCM_MESSAGE_PARAMS>() {
            // SAFETY: `n` readable bytes at `p`, size checked inside.
            let c: CK_CCM_MESSAGE_PARAMS = unsafe { read_struct(M, src, n) }?;
            // SAFETY: the nonce buffer is readable for ulNonceLen bytes by contract.
            let iv = unsafe { bytes(M, c.pNonce, c.ulNonceLen) }?;
            // SAFETY: when decrypting the MAC buffer is readable for ulMACLen bytes by contract.
            let tag = unsafe { tag_in(c.pMAC, c.ulMACLen, encrypting) }?;
            (
                MsgKind::Ccm,
                MechParams::AeadMessage {
                    iv,
                    iv_fixed_bits: c.ulNonceFixedBits,
                    generator: c.nonceGenerator,
                    tag,
                    data_len: c.ulDataLen,
                },
            )
        } else if n == size_of::<CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS>() {
            // SAFETY: `n` readable bytes at `p`, size checked inside.
            let c: CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS = unsafe { read_struct(M, src, n) }?;
            // SAFETY: the nonce buffer is readable for ulNonceLen bytes by contract.
            let iv = unsafe { bytes(M, c.pNonce, c.ulNonceLen) }?;
            // SAFETY: when decrypting the 16-byte tag buffer is readable by contract.
            let tag = unsafe { tag_in(c.pTag, 16, encrypting) }?;
            (
                MsgKind::ChaCha,
                MechParams::AeadMessage {
                    iv,
                    iv_fixed_bits: 0,
                    generator: CKG_NO_GENERATE,
                    tag,
                    data_len: 0,
                },
            )
        } else {
            return Err(param_invalid(M, "unknown per-message parameter structure"));
        };
        Ok((
            MessageParams {
                raw: p,
                kind,
                _caller: PhantomData,
            },
            params,
        ))
    }

    /// Copy a generated IV and (when encrypting) the tag back into the caller's buffers.
    /// Lengths must be unchanged: the caller's buffers have exactly the stated sizes.
    pub(crate) fn write_back(&self, params: &MechParams, encrypting: bool) -> Result<()> {
        let MechParams::AeadMessage { iv, tag, .. } = params else {
            return Ok(());
        };
        let (piv, iv_len, ptag, tag_len) = match self.kind {
            MsgKind::None => return Ok(()),
            MsgKind::Gcm => {
                // SAFETY: `raw` holds a CK_GCM_MESSAGE_PARAMS (size checked in `read`).
                let g = unsafe { self.raw.cast::<CK_GCM_MESSAGE_PARAMS>().read_unaligned() };
                (g.pIv, g.ulIvLen, g.pTag, g.ulTagBits / 8)
            }
            MsgKind::Ccm => {
                // SAFETY: `raw` holds a CK_CCM_MESSAGE_PARAMS (size checked in `read`).
                let c = unsafe { self.raw.cast::<CK_CCM_MESSAGE_PARAMS>().read_unaligned() };
                (c.pNonce, c.ulNonceLen, c.pMAC, c.ulMACLen)
            }
            MsgKind::ChaCha => {
                // SAFETY: `raw` holds the ChaCha20 message structure (size checked in `read`).
                let c = unsafe {
                    self.raw
                        .cast::<CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS>()
                        .read_unaligned()
                };
                (c.pNonce, c.ulNonceLen, c.pTag, 16)
            }
        };
        if ptr::to_ulong(iv.len())? != iv_len
            || (encrypting && ptr::to_ulong(tag.len())? != tag_len)
        {
            return Err(Code::GeneralError.err("engine changed the length of a message parameter"));
        }
        if !iv.is_empty() {
            ptr::require(piv)?;
            // SAFETY: the IV buffer is writable for its stated length, which equals iv.len().
            unsafe { ptr::copy_out(piv, iv) };
        }
        if encrypting && !tag.is_empty() {
            ptr::require(ptag)?;
            // SAFETY: the tag buffer is writable for its stated length, which equals tag.len().
            unsafe { ptr::copy_out(ptag, tag) };
        }
        Ok(())
    }
}

/// The tag of a message: read when decrypting, zeroes of its length when encrypting (an
/// output buffer is never read).
///
/// # Safety
/// When decrypting, `p` (if not NULL) must be readable for `len` bytes.
unsafe fn tag_in(p: *const u8, len: CK_ULONG, encrypting: bool) -> Result<Vec<u8>> {
    const M: CK_MECHANISM_TYPE = CK_UNAVAILABLE_INFORMATION;
    if encrypting {
        let n = usize::try_from(len).map_err(|_| param_invalid(M, "tag length does not fit"))?;
        if n > 64 {
            return Err(param_invalid(M, "tag too long"));
        }
        return Ok(vec![0; n]);
    }
    // SAFETY: forwarded contract.
    unsafe { bytes(M, p, len) }
}

#[cfg(test)]
mod tests;
