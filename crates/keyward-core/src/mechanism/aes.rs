//! AES keys and mechanisms (PKCS#11 3.0 §6.14): CKM_AES_KEY_GEN; CKM_AES_ECB, CKM_AES_CBC,
//! CKM_AES_CBC_PAD, CKM_AES_CTR and CKM_AES_GCM encryption and decryption, single- and
//! multi-part; CKM_AES_CMAC and CKM_AES_CMAC_GENERAL signing and verification.
//! CKM_AES_CCM and CKM_AES_CTS live in the `ccm` and `cts` submodules.

use cryptoki_sys::*;
use keyward_ossl::cipher::{AesCipher, AesMode, BLOCK};
use keyward_ossl::gcm::{self, AesGcm};
use keyward_ossl::mac::MacKey;
use zeroize::Zeroizing;

use crate::error::{Code, Result};
use crate::mechanism::digest::no_params;
use crate::mechanism::hmac::{MacOp, cached_or_fresh, mac_len};
use crate::mechanism::{Bytes, CipherOp, Mech, Registry, SignOp, VerifyOp, random};
use crate::object::Object;
use crate::types::{Attrs, MechParams, Mechanism, MechanismInfo};

mod ccm;
mod cts;
mod keywrap;

const KEY_LENS: [usize; 3] = [16, 24, 32];
/// Tag lengths SP 800-38D §5.2.1.2 allows, in bits.
const TAG_BITS: [CK_ULONG; 7] = [32, 64, 96, 104, 112, 120, 128];
/// GCM encrypts at most 2^39 - 256 bits in one invocation.
const MAX_GCM_DATA: u64 = (1 << 36) - 32;
/// Multi-part decryption releases no plaintext before the tag is checked, so it holds the
/// whole plaintext; this bounds that memory.
const MAX_DECRYPT_BUFFER: usize = 64 << 20;

/// The AES key bytes of a secret-key object (CKR_KEY_SIZE_RANGE for a bad length).
fn aes_value(key: &Object) -> Result<&[u8]> {
    aes_bytes(key.attrs())
}

fn aes_bytes(attrs: &Attrs) -> Result<&[u8]> {
    let v = attrs
        .get_bytes(CKA_VALUE)
        .ok_or_else(|| Code::KeyTypeInconsistent.err("AES key without CKA_VALUE"))?;
    if KEY_LENS.contains(&v.len()) {
        Ok(v)
    } else {
        Err(Code::KeySizeRange.err(format!("an AES key is 16, 24 or 32 bytes, not {}", v.len())))
    }
}

/// IV, AAD and tag length from CK_GCM_PARAMS (ulIvBits is informational in 3.0: the IV's
/// length is ulIvLen).
fn gcm_params(mech: &Mechanism) -> Result<(&[u8], &[u8], usize)> {
    let MechParams::Gcm {
        iv, aad, tag_bits, ..
    } = &mech.params
    else {
        return Err(Code::MechanismParamInvalid.err("CKM_AES_GCM needs CK_GCM_PARAMS"));
    };
    if iv.is_empty() || iv.len() > gcm::MAX_IV_LEN {
        return Err(Code::MechanismParamInvalid
            .err(format!("GCM IV of {} bytes (1 to 2^32 - 1)", iv.len())));
    }
    if !TAG_BITS.contains(tag_bits) {
        return Err(Code::MechanismParamInvalid.err(format!("GCM tag of {tag_bits} bits")));
    }
    Ok((iv, aad, *tag_bits as usize / 8))
}

struct AesGcmMech;

impl Mech for AesGcmMech {
    fn info(&self) -> MechanismInfo {
        MechanismInfo {
            min_key_size: 16,
            max_key_size: 32,
            // Authenticated, so fit to wrap keys (SECURITY KEY-06).
            flags: CKF_ENCRYPT
                | CKF_DECRYPT
                | CKF_WRAP
                | CKF_UNWRAP
                | CKF_MESSAGE_ENCRYPT
                | CKF_MESSAGE_DECRYPT,
        }
    }

    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        &[CKK_AES]
    }

    fn encrypt_init(&self, mech: &Mechanism, key: &Object) -> Result<Box<dyn CipherOp>> {
        let (iv, aad, tag_len) = gcm_params(mech)?;
        let gcm = AesGcm::encrypt(aes_value(key)?, iv, aad, tag_len)?;
        Ok(Box::new(GcmEncrypt { gcm, total: 0 }))
    }

    fn decrypt_init(&self, mech: &Mechanism, key: &Object) -> Result<Box<dyn CipherOp>> {
        let (iv, aad, tag_len) = gcm_params(mech)?;
        let gcm = AesGcm::decrypt(aes_value(key)?, iv, aad, tag_len)?;
        Ok(Box::new(GcmDecrypt {
            gcm,
            tail: Zeroizing::new(Vec::with_capacity(tag_len)),
            plain: Zeroizing::new(Vec::new()),
        }))
    }
}

/// Encryption: ciphertext is released as it is produced, the tag at the end.
struct GcmEncrypt {
    gcm: AesGcm,
    total: u64,
}

impl CipherOp for GcmEncrypt {
    fn output_len(&self, input_len: usize, last: bool) -> usize {
        if last {
            input_len.saturating_add(self.gcm.tag_len())
        } else {
            input_len
        }
    }

    fn update(&mut self, input: &[u8]) -> Result<Bytes> {
        self.total = self.total.saturating_add(input.len() as u64);
        if self.total > MAX_GCM_DATA {
            return Err(Code::DataLenRange.err("more data than one GCM invocation may encrypt"));
        }
        let mut out = Zeroizing::new(Vec::with_capacity(input.len()));
        self.gcm.update(input, &mut out)?;
        Ok(out)
    }

    fn finish(&mut self) -> Result<Bytes> {
        Ok(Zeroizing::new(self.gcm.finish_encrypt()?))
    }
}

/// Decryption: the last `tag_len` bytes seen so far may be the tag, so they are held back;
/// the plaintext is kept until the tag has been checked and released only by `finish`.
struct GcmDecrypt {
    gcm: AesGcm,
    tail: Zeroizing<Vec<u8>>,
    plain: Zeroizing<Vec<u8>>,
}

impl CipherOp for GcmDecrypt {
    fn output_len(&self, input_len: usize, last: bool) -> usize {
        if last {
            (self.plain.len() + self.tail.len())
                .saturating_add(input_len)
                .saturating_sub(self.gcm.tag_len())
        } else {
            0
        }
    }

    fn update(&mut self, input: &[u8]) -> Result<Bytes> {
        let tag_len = self.gcm.tag_len();
        if self.plain.len().saturating_add(input.len()) > MAX_DECRYPT_BUFFER {
            return Err(
                Code::EncryptedDataLenRange.err("multi-part GCM decryption is limited to 64 MiB")
            );
        }
        // Of tail ‖ input, everything but the last tag_len bytes is ciphertext.
        let total = self.tail.len() + input.len();
        let release = total.saturating_sub(tag_len);
        let from_tail = release.min(self.tail.len());
        if from_tail > 0 {
            let head: Zeroizing<Vec<u8>> = Zeroizing::new(self.tail.drain(..from_tail).collect());
            self.gcm.update(&head, &mut self.plain)?;
        }
        let from_input = release - from_tail;
        self.gcm.update(&input[..from_input], &mut self.plain)?;
        self.tail.extend_from_slice(&input[from_input..]);
        Ok(Zeroizing::new(Vec::new()))
    }

    fn finish(&mut self) -> Result<Bytes> {
        if self.tail.len() < self.gcm.tag_len() {
            return Err(Code::EncryptedDataLenRange.err("GCM ciphertext shorter than its tag"));
        }
        if self.gcm.finish_decrypt(&self.tail)? {
            Ok(std::mem::take(&mut self.plain))
        } else {
            self.plain.clear();
            Err(Code::EncryptedDataInvalid.err("GCM tag does not authenticate the data"))
        }
    }
}

/// The 16-byte IV (or CTR counter block) of a block mode.
fn iv_param(mech: &Mechanism) -> Result<&[u8]> {
    match &mech.params {
        MechParams::Bytes(iv) if iv.len() == BLOCK => Ok(iv),
        _ => Err(Code::MechanismParamInvalid
            .err(format!("mechanism {:#x} needs a 16-byte IV", mech.mech))),
    }
}

/// ECB, CBC, CBC-PAD and CTR.
struct AesBlockMech(AesMode);

impl AesBlockMech {
    fn init(&self, encrypt: bool, mech: &Mechanism, key: &Object) -> Result<Box<dyn CipherOp>> {
        let iv = if self.0.needs_iv() {
            Some(iv_param(mech)?)
        } else {
            no_params(mech)?;
            None
        };
        let cipher = AesCipher::new(self.0, encrypt, aes_value(key)?, iv)?;
        Ok(Box::new(BlockOp {
            cipher,
            encrypt,
            total: 0,
            emitted: 0,
        }))
    }
}

impl Mech for AesBlockMech {
    fn info(&self) -> MechanismInfo {
        MechanismInfo {
            min_key_size: 16,
            max_key_size: 32,
            flags: CKF_ENCRYPT | CKF_DECRYPT,
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

/// A block-mode operation. OpenSSL holds at most one block between calls (the partial block,
/// or for CBC-PAD decryption the last whole block, which may carry the padding), so
/// `total - emitted` is what it holds.
struct BlockOp {
    cipher: AesCipher,
    encrypt: bool,
    total: u64,
    emitted: u64,
}

impl BlockOp {
    fn held(&self) -> usize {
        usize::try_from(self.total - self.emitted).unwrap_or(usize::MAX)
    }
}

impl CipherOp for BlockOp {
    fn output_len(&self, input_len: usize, last: bool) -> usize {
        let mode = self.cipher.mode();
        let pending = self.held().saturating_add(input_len);
        if !mode.is_block() {
            return input_len;
        }
        let whole = pending / BLOCK * BLOCK;
        match (last, mode, self.encrypt) {
            (false, _, _) => whole,
            (true, AesMode::CbcPad, true) => whole.saturating_add(BLOCK),
            (true, _, _) => pending,
        }
    }

    fn update(&mut self, input: &[u8]) -> Result<Bytes> {
        let mut out = Zeroizing::new(Vec::with_capacity(input.len() + BLOCK));
        self.cipher.update(input, &mut out)?;
        self.total = self.total.saturating_add(input.len() as u64);
        self.emitted = self.emitted.saturating_add(out.len() as u64);
        Ok(out)
    }

    fn finish(&mut self) -> Result<Bytes> {
        let mode = self.cipher.mode();
        let partial = !self.total.is_multiple_of(BLOCK as u64);
        match (mode, self.encrypt) {
            (AesMode::Ecb | AesMode::Cbc, true) if partial => {
                return Err(Code::DataLenRange.err("AES ECB/CBC data is whole 16-byte blocks"));
            }
            (AesMode::Ecb | AesMode::Cbc, false) if partial => {
                return Err(Code::EncryptedDataLenRange
                    .err("AES ECB/CBC ciphertext is whole 16-byte blocks"));
            }
            (AesMode::CbcPad, false) if partial || self.total == 0 => {
                return Err(Code::EncryptedDataLenRange
                    .err("AES CBC-PAD ciphertext is one or more whole 16-byte blocks"));
            }
            _ => {}
        }
        let mut out = Zeroizing::new(Vec::with_capacity(BLOCK));
        match self.cipher.finish(&mut out) {
            Ok(()) => Ok(out),
            // With the length checked, bad padding is the only way this final can fail.
            Err(_) if mode == AesMode::CbcPad && !self.encrypt => {
                Err(Code::EncryptedDataInvalid.err("AES CBC-PAD padding is malformed"))
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// CKM_AES_CMAC (16-byte MAC) and CKM_AES_CMAC_GENERAL (1 to 16 bytes).
struct AesCmacMech {
    general: bool,
}

/// A per-key CMAC template, cached in the key object.
struct CmacKey(MacKey);

impl AesCmacMech {
    fn start(&self, mech: &Mechanism, key: &Object) -> Result<MacOp> {
        let len = mac_len(mech, self.general, BLOCK)?;
        let k = cached_or_fresh(key, |a| Ok(CmacKey(MacKey::aes_cmac(aes_bytes(a)?)?)))?;
        MacOp::new(&k.0, len)
    }
}

impl Mech for AesCmacMech {
    fn info(&self) -> MechanismInfo {
        MechanismInfo {
            min_key_size: 16,
            max_key_size: 32,
            flags: CKF_SIGN | CKF_VERIFY,
        }
    }

    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        &[CKK_AES]
    }

    fn sign_init(&self, mech: &Mechanism, key: &Object) -> Result<Box<dyn SignOp>> {
        Ok(Box::new(self.start(mech, key)?))
    }

    fn verify_init(&self, mech: &Mechanism, key: &Object) -> Result<Box<dyn VerifyOp>> {
        Ok(Box::new(self.start(mech, key)?))
    }
}

pub(crate) fn register(reg: &mut Registry) {
    reg.add(
        CKM_AES_KEY_GEN,
        Box::new(random::SecretKeyGen {
            name: "CKM_AES_KEY_GEN",
            key_types: &[CKK_AES],
            lens: &KEY_LENS,
            min: 16,
            max: 32,
            default_len: None,
            info_in_bits: false,
        }),
    );
    reg.add(CKM_AES_GCM, Box::new(AesGcmMech));
    reg.add(CKM_AES_ECB, Box::new(AesBlockMech(AesMode::Ecb)));
    reg.add(CKM_AES_CBC, Box::new(AesBlockMech(AesMode::Cbc)));
    reg.add(CKM_AES_CBC_PAD, Box::new(AesBlockMech(AesMode::CbcPad)));
    reg.add(CKM_AES_CTR, Box::new(AesBlockMech(AesMode::Ctr)));
    reg.add(CKM_AES_CMAC, Box::new(AesCmacMech { general: false }));
    reg.add(
        CKM_AES_CMAC_GENERAL,
        Box::new(AesCmacMech { general: true }),
    );
    reg.add(CKM_AES_CCM, Box::new(ccm::AesCcmMech));
    reg.add(CKM_AES_CTS, Box::new(cts::AesCtsMech));
    keywrap::register(reg);
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod block_tests;
