//! AES keys and AES-GCM (PKCS#11 3.0 §6.14, §6.14.4): CKM_AES_KEY_GEN and CKM_AES_GCM
//! encryption and decryption, single- and multi-part, with the caller supplying the IV.

use cryptoki_sys::*;
use keyward_ossl::gcm::{self, AesGcm};
use zeroize::Zeroizing;

use crate::error::{Code, Result};
use crate::mechanism::digest::no_params;
use crate::mechanism::{Bytes, CipherOp, Mech, Registry, random};
use crate::object::Object;
use crate::types::{AttrValue, Attrs, MechParams, Mechanism, MechanismInfo};

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
    let v = key
        .attrs()
        .get_bytes(CKA_VALUE)
        .ok_or_else(|| Code::KeyTypeInconsistent.err("AES key without CKA_VALUE"))?;
    if KEY_LENS.contains(&v.len()) {
        Ok(v)
    } else {
        Err(Code::KeySizeRange.err(format!("an AES key is 16, 24 or 32 bytes, not {}", v.len())))
    }
}

struct AesKeyGen;

impl Mech for AesKeyGen {
    fn info(&self) -> MechanismInfo {
        MechanismInfo {
            min_key_size: 16,
            max_key_size: 32,
            flags: CKF_GENERATE,
        }
    }

    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        &[CKK_AES]
    }

    fn generate_key(&self, mech: &Mechanism, template: &Attrs) -> Result<Attrs> {
        no_params(mech)?;
        let len = template
            .get_ulong(CKA_VALUE_LEN)
            .ok_or_else(|| Code::TemplateIncomplete.err("CKM_AES_KEY_GEN needs CKA_VALUE_LEN"))?;
        let len = usize::try_from(len)
            .ok()
            .filter(|l| KEY_LENS.contains(l))
            .ok_or_else(|| {
                Code::AttributeValueInvalid.err("CKA_VALUE_LEN of an AES key is 16, 24 or 32")
            })?;
        let value = random::secret(len)?;
        let mut out = Attrs::new();
        out.set(CKA_KEY_TYPE, AttrValue::Ulong(CKK_AES));
        out.set(CKA_VALUE, AttrValue::Bytes(value));
        out.set(CKA_VALUE_LEN, AttrValue::Ulong(len as CK_ULONG));
        Ok(out)
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
        return Err(
            Code::MechanismParamInvalid.err(format!("GCM IV of {} bytes (1 to 256)", iv.len()))
        );
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
            flags: CKF_ENCRYPT | CKF_DECRYPT,
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

pub(crate) fn register(reg: &mut Registry) {
    reg.add(CKM_AES_KEY_GEN, Box::new(AesKeyGen));
    reg.add(CKM_AES_GCM, Box::new(AesGcmMech));
}

#[cfg(test)]
mod tests;
