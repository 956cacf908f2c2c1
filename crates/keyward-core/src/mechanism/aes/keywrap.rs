//! AES key wrap (PKCS#11 3.0 §2.14): CKM_AES_KEY_WRAP (RFC 3394 / SP 800-38F KW),
//! CKM_AES_KEY_WRAP_KWP (RFC 5649 / SP 800-38F KWP) and CKM_AES_KEY_WRAP_PAD, for
//! encryption, decryption, wrapping and unwrapping.
//!
//! # CKM_AES_KEY_WRAP_PAD
//! PKCS#11 3.0 defines it as PKCS#7 padding to a multiple of 8 bytes followed by RFC 3394
//! (the TC's 2017 rework of §2.14, which also introduced CKM_AES_KEY_WRAP_KWP for RFC 5649;
//! 3.1 renames the padded form CKM_AES_KEY_WRAP_PKCS7 and deprecates _PAD). That is what this
//! token implements. SoftHSMv2 instead runs RFC 5649 under CKM_AES_KEY_WRAP_PAD (its issue
//! #726) and OpenSSL calls its RFC 5649 cipher "AES-xxx-WRAP-PAD"; Kryoptic offers no _PAD at
//! all. So a blob SoftHSMv2 made with _PAD does not unwrap here with _PAD, and the other way
//! round: such blobs are RFC 5649, which this token reads as CKM_AES_KEY_WRAP_KWP.
//!
//! # Other choices
//! - The spec has these mechanisms single-part. C_EncryptUpdate / C_DecryptUpdate are still
//!   accepted: they only collect the input (up to [`MAX_BUFFER`]), and the wrap runs at the
//!   final call, so a multi-part operation gives the single-part result.
//! - The optional IV parameter is 8 bytes for KW and _PAD, 4 for KWP; any other parameter is
//!   CKR_MECHANISM_PARAM_INVALID.
//! - Input KW cannot take (not a multiple of 8, or under 16 bytes) is CKR_DATA_LEN_RANGE, which
//!   C_WrapKey reports as CKR_KEY_SIZE_RANGE; _PAD needs at least 8 bytes (RFC 3394 wraps two
//!   semiblocks or more). A ciphertext of a length no wrap has is
//!   CKR_ENCRYPTED_DATA_LEN_RANGE; one that fails the integrity check, or whose PKCS#7 padding
//!   is malformed, CKR_ENCRYPTED_DATA_INVALID (C_UnwrapKey: CKR_WRAPPED_KEY_LEN_RANGE and
//!   CKR_WRAPPED_KEY_INVALID). The padding is only looked at after the integrity check has
//!   passed, so it is no oracle.

use cryptoki_sys::*;
use keyward_ossl::keywrap::{self, WrapAlg};
use zeroize::Zeroizing;

use super::aes_value;
use crate::error::{Code, Result};
use crate::mechanism::{Bytes, CipherOp, Mech, Registry};
use crate::object::Object;
use crate::types::{MechParams, Mechanism, MechanismInfo};

/// What a multi-part key-wrap operation may collect before its final call.
pub const MAX_BUFFER: usize = 64 << 20;

/// The semiblock of RFC 3394, and the block PKCS#7 pads to for _PAD.
const SEMIBLOCK: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// CKM_AES_KEY_WRAP.
    Kw,
    /// CKM_AES_KEY_WRAP_KWP.
    Kwp,
    /// CKM_AES_KEY_WRAP_PAD: PKCS#7 to a multiple of 8, then RFC 3394.
    Pad,
}

impl Kind {
    fn alg(self) -> WrapAlg {
        match self {
            Kind::Kw | Kind::Pad => WrapAlg::Kw,
            Kind::Kwp => WrapAlg::Kwp,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Kw => "CKM_AES_KEY_WRAP",
            Kind::Kwp => "CKM_AES_KEY_WRAP_KWP",
            Kind::Pad => "CKM_AES_KEY_WRAP_PAD",
        }
    }
}

struct AesKeyWrapMech(Kind);

impl AesKeyWrapMech {
    fn iv(&self, mech: &Mechanism) -> Result<Option<Vec<u8>>> {
        let want = self.0.alg().iv_len();
        match &mech.params {
            MechParams::None => Ok(None),
            MechParams::Bytes(iv) if iv.len() == want => Ok(Some(iv.clone())),
            _ => Err(Code::MechanismParamInvalid.err(format!(
                "{} takes no parameter or a {want}-byte IV",
                self.0.name()
            ))),
        }
    }

    fn init(&self, encrypt: bool, mech: &Mechanism, key: &Object) -> Result<Box<dyn CipherOp>> {
        let iv = self.iv(mech)?;
        let key = Zeroizing::new(aes_value(key)?.to_vec());
        Ok(Box::new(KeyWrapOp {
            kind: self.0,
            encrypt,
            key,
            iv,
            input: Zeroizing::new(Vec::new()),
        }))
    }
}

impl Mech for AesKeyWrapMech {
    fn info(&self) -> MechanismInfo {
        MechanismInfo {
            min_key_size: 16,
            max_key_size: 32,
            // Authenticated, so fit to wrap keys (SECURITY KEY-06).
            flags: CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP,
        }
    }

    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        &[CKK_AES]
    }

    fn encrypt_init(&self, mech: &Mechanism, key: &Object) -> Result<Box<dyn CipherOp>> {
        self.init(true, mech, key)
    }

    fn decrypt_init(&self, mech: &Mechanism, key: &Object) -> Result<Box<dyn CipherOp>> {
        self.init(false, mech, key)
    }
}

/// A key-wrap operation: the input is collected and processed whole at `finish`.
struct KeyWrapOp {
    kind: Kind,
    encrypt: bool,
    key: Zeroizing<Vec<u8>>,
    iv: Option<Vec<u8>>,
    input: Zeroizing<Vec<u8>>,
}

/// `data` with PKCS#7 padding to a multiple of 8 bytes (1 to 8 bytes added).
fn pkcs7_pad(data: &[u8]) -> Zeroizing<Vec<u8>> {
    let n = SEMIBLOCK - data.len() % SEMIBLOCK;
    let mut out = Zeroizing::new(Vec::with_capacity(data.len() + n));
    out.extend_from_slice(data);
    // `n` is 1..=8, so the cast is exact.
    out.resize(data.len() + n, n as u8);
    out
}

/// The length of `data` without its PKCS#7 padding, if the padding is well formed.
fn pkcs7_unpadded_len(data: &[u8]) -> Option<usize> {
    let n = usize::from(*data.last()?);
    if n == 0 || n > SEMIBLOCK || n > data.len() {
        return None;
    }
    let pad = &data[data.len() - n..];
    pad.iter()
        .all(|b| usize::from(*b) == n)
        .then_some(data.len() - n)
}

impl KeyWrapOp {
    fn wrap(&self) -> Result<Bytes> {
        let data = &self.input;
        let padded;
        let plain: &[u8] = match self.kind {
            Kind::Pad => {
                padded = pkcs7_pad(data);
                &padded
            }
            Kind::Kw | Kind::Kwp => data,
        };
        if !self.kind.alg().wrap_input_ok(plain.len()) {
            let need = match self.kind {
                Kind::Kw => "a multiple of 8 bytes, at least 16",
                Kind::Kwp => "1 byte or more",
                Kind::Pad => "at least 8 bytes",
            };
            return Err(Code::DataLenRange.err(format!(
                "{} wraps {need}, not {} bytes",
                self.kind.name(),
                data.len()
            )));
        }
        let out = keywrap::wrap(self.kind.alg(), &self.key, self.iv.as_deref(), plain)?;
        Ok(Zeroizing::new(out))
    }

    fn unwrap(&self) -> Result<Bytes> {
        let alg = self.kind.alg();
        if !alg.unwrap_input_ok(self.input.len()) {
            return Err(Code::EncryptedDataLenRange.err(format!(
                "{} bytes cannot be a {} ciphertext",
                self.input.len(),
                self.kind.name()
            )));
        }
        let Some(mut plain) = keywrap::unwrap(alg, &self.key, self.iv.as_deref(), &self.input)?
        else {
            return Err(Code::EncryptedDataInvalid.err(format!(
                "the {} ciphertext fails its integrity check",
                self.kind.name()
            )));
        };
        if self.kind == Kind::Pad {
            let len = pkcs7_unpadded_len(&plain).ok_or_else(|| {
                Code::EncryptedDataInvalid.err("CKM_AES_KEY_WRAP_PAD padding is malformed")
            })?;
            plain.truncate(len);
        }
        Ok(plain)
    }
}

impl CipherOp for KeyWrapOp {
    fn output_len(&self, input_len: usize, last: bool) -> usize {
        if !last {
            return 0;
        }
        let total = self.input.len().saturating_add(input_len);
        if !self.encrypt {
            // Padding, if any, only makes the result shorter.
            return total.saturating_sub(SEMIBLOCK);
        }
        match self.kind {
            Kind::Kw => total.saturating_add(SEMIBLOCK),
            Kind::Kwp => WrapAlg::Kwp.wrapped_len(total),
            Kind::Pad => (total / SEMIBLOCK)
                .saturating_add(2)
                .saturating_mul(SEMIBLOCK),
        }
    }

    fn update(&mut self, input: &[u8]) -> Result<Bytes> {
        if self.input.len().saturating_add(input.len()) > MAX_BUFFER {
            let code = if self.encrypt {
                Code::DataLenRange
            } else {
                Code::EncryptedDataLenRange
            };
            return Err(code.err("AES key wrap input is limited to 64 MiB"));
        }
        self.input.extend_from_slice(input);
        Ok(Zeroizing::new(Vec::new()))
    }

    fn finish(&mut self) -> Result<Bytes> {
        let out = if self.encrypt {
            self.wrap()
        } else {
            self.unwrap()
        };
        self.input.clear();
        out
    }
}

/// Register CKM_AES_KEY_WRAP, CKM_AES_KEY_WRAP_KWP and CKM_AES_KEY_WRAP_PAD.
pub(super) fn register(reg: &mut Registry) {
    reg.add(CKM_AES_KEY_WRAP, Box::new(AesKeyWrapMech(Kind::Kw)));
    reg.add(CKM_AES_KEY_WRAP_KWP, Box::new(AesKeyWrapMech(Kind::Kwp)));
    reg.add(CKM_AES_KEY_WRAP_PAD, Box::new(AesKeyWrapMech(Kind::Pad)));
}

#[cfg(test)]
mod tests;
