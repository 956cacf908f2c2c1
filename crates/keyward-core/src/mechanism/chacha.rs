//! ChaCha20 keys and ChaCha20-Poly1305 (PKCS#11 3.0 §2.x): CKM_CHACHA20_KEY_GEN and
//! CKM_CHACHA20_POLY1305 encryption and decryption, single- and multi-part.
//!
//! The AEAD takes RFC 8439's 96-bit nonce only. PKCS#11 also names a 64-bit nonce, whose
//! AEAD construction (draft-agl's, with different Poly1305 length encoding) RFC 8439 does
//! not define and OpenSSL does not provide; such a nonce is CKR_MECHANISM_PARAM_INVALID.

use cryptoki_sys::*;
use keyward_ossl::chacha::{self, ChaChaPoly};
use zeroize::Zeroizing;

use crate::error::{Code, Result};
use crate::mechanism::{Bytes, CipherOp, Mech, Registry, random};
use crate::object::Object;
use crate::types::{MechParams, Mechanism, MechanismInfo};

/// Multi-part decryption releases no plaintext before the tag is checked, so it holds the
/// whole plaintext; this bounds that memory.
const MAX_DECRYPT_BUFFER: usize = 64 << 20;

/// The 32 key bytes of a ChaCha20 secret-key object (CKR_KEY_SIZE_RANGE for another length).
fn chacha_value(key: &Object) -> Result<&[u8]> {
    let v = key
        .attrs()
        .get_bytes(CKA_VALUE)
        .ok_or_else(|| Code::KeyTypeInconsistent.err("ChaCha20 key without CKA_VALUE"))?;
    if v.len() == chacha::KEY_LEN {
        Ok(v)
    } else {
        Err(Code::KeySizeRange.err(format!("a ChaCha20 key is 32 bytes, not {}", v.len())))
    }
}

/// Nonce and AAD from CK_SALSA20_CHACHA20_POLY1305_PARAMS (decoded into the GCM shape with
/// a fixed 128-bit tag).
fn aead_params(mech: &Mechanism) -> Result<(&[u8], &[u8])> {
    let MechParams::Gcm {
        iv, aad, tag_bits, ..
    } = &mech.params
    else {
        return Err(Code::MechanismParamInvalid
            .err("CKM_CHACHA20_POLY1305 needs CK_SALSA20_CHACHA20_POLY1305_PARAMS"));
    };
    if iv.len() != chacha::NONCE_LEN {
        return Err(Code::MechanismParamInvalid.err(format!(
            "a ChaCha20-Poly1305 nonce is 12 bytes, not {}",
            iv.len()
        )));
    }
    if *tag_bits != 128 {
        return Err(Code::MechanismParamInvalid.err("the Poly1305 tag is 128 bits"));
    }
    Ok((iv, aad))
}

struct ChaChaPolyMech;

impl Mech for ChaChaPolyMech {
    fn info(&self) -> MechanismInfo {
        MechanismInfo {
            min_key_size: 32,
            max_key_size: 32,
            // Authenticated: fit to wrap keys and to run as messages (engine/message.rs).
            flags: CKF_ENCRYPT
                | CKF_DECRYPT
                | CKF_WRAP
                | CKF_UNWRAP
                | CKF_MESSAGE_ENCRYPT
                | CKF_MESSAGE_DECRYPT,
        }
    }

    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        &[CKK_CHACHA20]
    }

    fn encrypt_init(&self, mech: &Mechanism, key: &Object) -> Result<Box<dyn CipherOp>> {
        let (nonce, aad) = aead_params(mech)?;
        let cp = ChaChaPoly::encrypt(chacha_value(key)?, nonce, aad)?;
        Ok(Box::new(AeadEncrypt { cp, total: 0 }))
    }

    fn decrypt_init(&self, mech: &Mechanism, key: &Object) -> Result<Box<dyn CipherOp>> {
        let (nonce, aad) = aead_params(mech)?;
        let cp = ChaChaPoly::decrypt(chacha_value(key)?, nonce, aad)?;
        Ok(Box::new(AeadDecrypt {
            cp,
            tail: Zeroizing::new(Vec::with_capacity(chacha::TAG_LEN)),
            plain: Zeroizing::new(Vec::new()),
        }))
    }
}

/// Encryption: ciphertext is released as it is produced, the tag at the end.
struct AeadEncrypt {
    cp: ChaChaPoly,
    total: u64,
}

impl CipherOp for AeadEncrypt {
    fn output_len(&self, input_len: usize, last: bool) -> usize {
        if last {
            input_len.saturating_add(chacha::TAG_LEN)
        } else {
            input_len
        }
    }

    fn update(&mut self, input: &[u8]) -> Result<Bytes> {
        self.total = self.total.saturating_add(input.len() as u64);
        if self.total > chacha::MAX_DATA {
            return Err(
                Code::DataLenRange.err("more data than ChaCha20-Poly1305 encrypts under one nonce")
            );
        }
        let mut out = Zeroizing::new(Vec::with_capacity(input.len()));
        self.cp.update(input, &mut out)?;
        Ok(out)
    }

    fn finish(&mut self) -> Result<Bytes> {
        Ok(Zeroizing::new(self.cp.finish_encrypt()?.to_vec()))
    }
}

/// Decryption: the last 16 bytes seen so far may be the tag, so they are held back; the
/// plaintext is kept until the tag has been checked and released only by `finish`.
struct AeadDecrypt {
    cp: ChaChaPoly,
    tail: Zeroizing<Vec<u8>>,
    plain: Zeroizing<Vec<u8>>,
}

impl CipherOp for AeadDecrypt {
    fn output_len(&self, input_len: usize, last: bool) -> usize {
        if last {
            (self.plain.len() + self.tail.len())
                .saturating_add(input_len)
                .saturating_sub(chacha::TAG_LEN)
        } else {
            0
        }
    }

    fn update(&mut self, input: &[u8]) -> Result<Bytes> {
        if self.plain.len().saturating_add(input.len()) > MAX_DECRYPT_BUFFER {
            return Err(Code::EncryptedDataLenRange
                .err("multi-part ChaCha20-Poly1305 decryption is limited to 64 MiB"));
        }
        // Of tail ‖ input, everything but the last 16 bytes is ciphertext.
        let total = self.tail.len() + input.len();
        let release = total.saturating_sub(chacha::TAG_LEN);
        let from_tail = release.min(self.tail.len());
        if from_tail > 0 {
            let head: Zeroizing<Vec<u8>> = Zeroizing::new(self.tail.drain(..from_tail).collect());
            self.cp.update(&head, &mut self.plain)?;
        }
        let from_input = release - from_tail;
        self.cp.update(&input[..from_input], &mut self.plain)?;
        self.tail.extend_from_slice(&input[from_input..]);
        Ok(Zeroizing::new(Vec::new()))
    }

    fn finish(&mut self) -> Result<Bytes> {
        if self.tail.len() < chacha::TAG_LEN {
            return Err(Code::EncryptedDataLenRange
                .err("ChaCha20-Poly1305 ciphertext shorter than its tag"));
        }
        if self.cp.finish_decrypt(&self.tail)? {
            Ok(std::mem::take(&mut self.plain))
        } else {
            self.plain.clear();
            Err(Code::EncryptedDataInvalid.err("Poly1305 tag does not authenticate the data"))
        }
    }
}

pub(crate) fn register(reg: &mut Registry) {
    reg.add(
        CKM_CHACHA20_KEY_GEN,
        Box::new(random::SecretKeyGen {
            name: "CKM_CHACHA20_KEY_GEN",
            key_types: &[CKK_CHACHA20],
            lens: &[chacha::KEY_LEN],
            min: chacha::KEY_LEN,
            max: chacha::KEY_LEN,
            default_len: Some(chacha::KEY_LEN),
            info_in_bits: false,
        }),
    );
    reg.add(CKM_CHACHA20_POLY1305, Box::new(ChaChaPolyMech));
}

#[cfg(test)]
mod tests;
