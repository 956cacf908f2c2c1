//! ChaCha20-Poly1305 (RFC 8439 §2.8): 256-bit keys, 96-bit nonces, 128-bit tags, streaming.

use std::sync::OnceLock;

use openssl::cipher::{Cipher, CipherRef};
use openssl::cipher_ctx::CipherCtx;
use zeroize::Zeroizing;

use crate::{Error, Result, ctx};

/// Key length in bytes.
pub const KEY_LEN: usize = 32;
/// Nonce length in bytes (RFC 8439's 96-bit nonce).
pub const NONCE_LEN: usize = 12;
/// Tag length in bytes.
pub const TAG_LEN: usize = 16;
/// Longest message under one nonce: the 32-bit block counter starts at 1 for the payload,
/// leaving 2^32 - 1 blocks of 64 bytes (RFC 8439 §2.8).
pub const MAX_DATA: u64 = ((1u64 << 32) - 1) * 64;

// The `openssl` crate converts lengths to `c_int` with a panic on overflow; feeding at most
// this much per call keeps any input length safe.
const CHUNK: usize = 1 << 30;

static CIPHER: OnceLock<Cipher> = OnceLock::new();

fn cipher() -> Result<&'static CipherRef> {
    if let Some(c) = CIPHER.get() {
        return Ok(c);
    }
    let fetched = Cipher::fetch(Some(ctx::libctx()?), "ChaCha20-Poly1305", None)?;
    let _ = CIPHER.set(fetched);
    CIPHER
        .get()
        .map(|c| &**c)
        .ok_or_else(|| Error("cipher cache is empty after initialisation".into()))
}

/// A ChaCha20-Poly1305 encryption or decryption in progress. Decryption output is
/// unauthenticated until [`ChaChaPoly::finish_decrypt`] returns `Ok(true)`; callers must hold
/// it back until then.
pub struct ChaChaPoly {
    ctx: CipherCtx,
}

impl ChaChaPoly {
    /// Start encrypting under `key` (32 bytes) with `nonce` (12 bytes) and `aad`.
    pub fn encrypt(key: &[u8], nonce: &[u8], aad: &[u8]) -> Result<ChaChaPoly> {
        ChaChaPoly::init(true, key, nonce, aad)
    }

    /// Start decrypting; the tag is given to [`ChaChaPoly::finish_decrypt`].
    pub fn decrypt(key: &[u8], nonce: &[u8], aad: &[u8]) -> Result<ChaChaPoly> {
        ChaChaPoly::init(false, key, nonce, aad)
    }

    fn init(encrypt: bool, key: &[u8], nonce: &[u8], aad: &[u8]) -> Result<ChaChaPoly> {
        if key.len() != KEY_LEN {
            return Err(Error(format!(
                "a ChaCha20 key is 32 bytes, not {}",
                key.len()
            )));
        }
        if nonce.len() != NONCE_LEN {
            return Err(Error(format!(
                "a ChaCha20-Poly1305 nonce is 12 bytes, not {}",
                nonce.len()
            )));
        }
        let c = cipher()?;
        let mut ctx = CipherCtx::new()?;
        if encrypt {
            ctx.encrypt_init(Some(c), Some(key), Some(nonce))?;
        } else {
            ctx.decrypt_init(Some(c), Some(key), Some(nonce))?;
        }
        // AAD may come in several calls, all before the payload (Poly1305 pads it once).
        for part in aad.chunks(CHUNK) {
            ctx.cipher_update(part, None)?;
        }
        Ok(ChaChaPoly { ctx })
    }

    /// Process `input`, appending exactly `input.len()` bytes of output to `out`.
    pub fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        for part in input.chunks(CHUNK) {
            let base = out.len();
            out.resize(base + part.len(), 0);
            let n = self.ctx.cipher_update(part, Some(&mut out[base..]))?;
            out.truncate(base + n);
        }
        Ok(())
    }

    /// Finish an encryption; returns the tag.
    pub fn finish_encrypt(&mut self) -> Result<[u8; TAG_LEN]> {
        // A stream cipher: the final call outputs no data.
        let mut rest = [0u8; 16];
        self.ctx.cipher_final(&mut rest)?;
        let mut tag = [0u8; TAG_LEN];
        self.ctx.tag(&mut tag)?;
        Ok(tag)
    }

    /// Finish a decryption: `Ok(false)` when `tag` does not authenticate the data (the
    /// plaintext produced must then be discarded), `Err` for OpenSSL failures.
    pub fn finish_decrypt(&mut self, tag: &[u8]) -> Result<bool> {
        if tag.len() != TAG_LEN {
            return Ok(false);
        }
        self.ctx.set_tag(tag)?;
        let mut rest = [0u8; 16];
        match self.ctx.cipher_final(&mut rest) {
            Ok(_) => Ok(true),
            // With the tag set, a mismatch is the only way this final fails.
            Err(_) => Ok(false),
        }
    }
}

/// One-shot encryption: ciphertext ‖ tag.
pub fn seal(key: &[u8], nonce: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut c = ChaChaPoly::encrypt(key, nonce, aad)?;
    let mut out = Vec::with_capacity(plaintext.len() + TAG_LEN);
    c.update(plaintext, &mut out)?;
    out.extend_from_slice(&c.finish_encrypt()?);
    Ok(out)
}

/// One-shot decryption of ciphertext ‖ tag; `Ok(None)` when authentication fails.
pub fn open(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Option<Zeroizing<Vec<u8>>>> {
    if sealed.len() < TAG_LEN {
        return Ok(None);
    }
    let (ct, tag) = sealed.split_at(sealed.len() - TAG_LEN);
    let mut c = ChaChaPoly::decrypt(key, nonce, aad)?;
    let mut out = Zeroizing::new(Vec::with_capacity(ct.len()));
    c.update(ct, &mut out)?;
    Ok(if c.finish_decrypt(tag)? {
        Some(out)
    } else {
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    // RFC 8439 §2.8.2.
    const KEY: &str = "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f";
    const NONCE: &str = "070000004041424344454647";
    const AAD: &str = "50515253c0c1c2c3c4c5c6c7";
    const PT: &[u8] = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
    const CT: &str = "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116";
    const TAG: &str = "1ae10b594f09e26a7e902ecbd0600691";

    #[test]
    fn rfc8439_aead_vector() {
        let out = seal(&h(KEY), &h(NONCE), &h(AAD), PT).unwrap();
        assert_eq!(hex::encode(&out), format!("{CT}{TAG}"));
        assert_eq!(
            &*open(&h(KEY), &h(NONCE), &h(AAD), &out).unwrap().unwrap(),
            PT
        );
        // Streaming in odd pieces gives the same bytes.
        let mut c = ChaChaPoly::encrypt(&h(KEY), &h(NONCE), &h(AAD)).unwrap();
        let mut streamed = Vec::new();
        for part in PT.chunks(13) {
            c.update(part, &mut streamed).unwrap();
        }
        streamed.extend_from_slice(&c.finish_encrypt().unwrap());
        assert_eq!(streamed, out);
    }

    #[test]
    fn tamper_and_bad_lengths() {
        let sealed = seal(&h(KEY), &h(NONCE), &h(AAD), PT).unwrap();
        let mut bad = sealed.clone();
        bad[5] ^= 0x40;
        assert!(open(&h(KEY), &h(NONCE), &h(AAD), &bad).unwrap().is_none());
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(open(&h(KEY), &h(NONCE), &h(AAD), &bad).unwrap().is_none());
        assert!(open(&h(KEY), &h(NONCE), b"", &sealed).unwrap().is_none());
        assert!(
            open(&h(KEY), &h(NONCE), &h(AAD), &sealed[..15])
                .unwrap()
                .is_none()
        );
        assert!(ChaChaPoly::encrypt(&[0u8; 31], &[0u8; 12], b"").is_err());
        assert!(ChaChaPoly::encrypt(&[0u8; 32], &[0u8; 8], b"").is_err());
        let empty = seal(&[1u8; 32], &[2u8; 12], b"", b"").unwrap();
        assert_eq!(empty.len(), TAG_LEN);
        assert_eq!(
            open(&[1u8; 32], &[2u8; 12], b"", &empty)
                .unwrap()
                .unwrap()
                .len(),
            0
        );
    }
}
