//! AES-GCM (NIST SP 800-38D) with caller-chosen IV, AAD and tag lengths, streaming.

use std::sync::OnceLock;

use openssl::cipher::{Cipher, CipherRef};
use openssl::cipher_ctx::CipherCtx;
use zeroize::Zeroizing;

use crate::{Error, Result, ctx};

/// Largest IV accepted (bytes): PKCS#11 3.0 allows any ulIvLen from 1 to 2^32 - 1 (the
/// 256-byte bound was 2.40's); longer IVs are reduced through GHASH anyway.
pub const MAX_IV_LEN: usize = u32::MAX as usize;
/// Smallest tag accepted (bytes); SP 800-38D allows 4 only for special applications.
pub const MIN_TAG_LEN: usize = 4;
/// Largest (and usual) tag length in bytes.
pub const MAX_TAG_LEN: usize = 16;

// The `openssl` crate converts lengths to `c_int` with a panic on overflow; feeding at most
// this much per call keeps any input length safe.
const CHUNK: usize = 1 << 30;

// Longest IV OpenSSL's GCM takes directly (GCM_IV_MAX_SIZE); longer ones are reduced.
const OPENSSL_MAX_IV: usize = 128;

// AES-128/192/256-GCM, then AES-128/192/256-ECB (for the GHASH key of long IVs).
static CIPHERS: [OnceLock<Cipher>; 6] = [const { OnceLock::new() }; 6];

fn cipher_slot(key_len: usize, gcm: bool) -> Result<(usize, &'static str)> {
    Ok(match (key_len, gcm) {
        (16, true) => (0, "AES-128-GCM"),
        (24, true) => (1, "AES-192-GCM"),
        (32, true) => (2, "AES-256-GCM"),
        (16, false) => (3, "AES-128-ECB"),
        (24, false) => (4, "AES-192-ECB"),
        (32, false) => (5, "AES-256-ECB"),
        (n, _) => return Err(Error(format!("an AES key is 16, 24 or 32 bytes, not {n}"))),
    })
}

/// The AES cipher (GCM or ECB) for a key of `key_len` bytes, fetched once per kind.
fn cipher(key_len: usize, gcm: bool) -> Result<&'static CipherRef> {
    let (i, name) = cipher_slot(key_len, gcm)?;
    let cell = &CIPHERS[i];
    if let Some(c) = cell.get() {
        return Ok(c);
    }
    let fetched = Cipher::fetch(Some(ctx::libctx()?), name, None)?;
    let _ = cell.set(fetched);
    cell.get()
        .map(|c| &**c)
        .ok_or_else(|| Error("cipher cache is empty after initialisation".into()))
}

/// Multiplication in GF(2^128) with GCM's bit order (SP 800-38D §6.3), the block read
/// big-endian into a u128. Branch-free, because one operand is the secret hash key.
fn gf_mul(x: u128, y: u128) -> u128 {
    const R: u128 = 0xe1 << 120;
    let mut z = 0u128;
    let mut v = y;
    for i in 0..128 {
        let bit = (x >> (127 - i)) & 1;
        z ^= v & bit.wrapping_neg();
        let lsb = v & 1;
        v = (v >> 1) ^ (R & lsb.wrapping_neg());
    }
    z
}

const GF_ONE: u128 = 1 << 127;

/// a^(2^128 - 2) = a⁻¹ for a ≠ 0.
fn gf_inv(a: u128) -> u128 {
    let mut r = GF_ONE;
    for i in (0..128).rev() {
        r = gf_mul(r, r);
        if i != 0 {
            r = gf_mul(r, a);
        }
    }
    r
}

/// A 16-byte IV that gives the same pre-counter block J0 as `iv` under `key`, for IVs longer
/// than OpenSSL accepts. GCM uses the IV only through J0 = GHASH_H(IV ‖ pad ‖ len(IV)), and
/// for a one-block IV B, J0 = B·H² ⊕ L·H with L the length block of 128 bits, so
/// B = (J0 ⊕ L·H)·H⁻² reproduces the long IV's J0 exactly.
fn reduce_iv(key: &[u8], iv: &[u8]) -> Result<[u8; 16]> {
    let mut ecb = CipherCtx::new()?;
    ecb.encrypt_init(Some(cipher(key.len(), false)?), Some(key), None)?;
    ecb.set_padding(false);
    let mut hbuf = Zeroizing::new([0u8; 32]);
    let n = ecb.cipher_update(&[0u8; 16], Some(&mut hbuf[..]))?;
    if n != 16 {
        return Err(Error("AES-ECB returned a partial block".into()));
    }
    let mut hb = Zeroizing::new([0u8; 16]);
    hb.copy_from_slice(&hbuf[..16]);
    let h = Zeroizing::new(u128::from_be_bytes(*hb));
    if *h == 0 {
        return Err(Error("degenerate GHASH key".into()));
    }
    let mut x = Zeroizing::new(0u128);
    for chunk in iv.chunks(16) {
        let mut block = [0u8; 16];
        block[..chunk.len()].copy_from_slice(chunk);
        *x = gf_mul(*x ^ u128::from_be_bytes(block), *h);
    }
    let bits = u128::try_from(iv.len()).map_err(|_| Error("IV too long".into()))? * 8;
    *x = gf_mul(*x ^ bits, *h);
    let h2_inv = Zeroizing::new(gf_inv(gf_mul(*h, *h)));
    let b = gf_mul(*x ^ gf_mul(128, *h), *h2_inv);
    Ok(b.to_be_bytes())
}

/// An AES-GCM encryption or decryption in progress. Decryption output is unauthenticated
/// until [`AesGcm::finish_decrypt`] returns `Ok(true)`; callers must hold it back until then.
pub struct AesGcm {
    ctx: CipherCtx,
    tag_len: usize,
}

impl AesGcm {
    /// Start encrypting under `key` (16, 24 or 32 bytes) with `iv` (1..=MAX_IV_LEN bytes), `aad`
    /// authenticated, and a tag of `tag_len` bytes (4..=16).
    pub fn encrypt(key: &[u8], iv: &[u8], aad: &[u8], tag_len: usize) -> Result<AesGcm> {
        AesGcm::init(true, key, iv, aad, tag_len)
    }

    /// Start decrypting; the tag is given to [`AesGcm::finish_decrypt`].
    pub fn decrypt(key: &[u8], iv: &[u8], aad: &[u8], tag_len: usize) -> Result<AesGcm> {
        AesGcm::init(false, key, iv, aad, tag_len)
    }

    fn init(encrypt: bool, key: &[u8], iv: &[u8], aad: &[u8], tag_len: usize) -> Result<AesGcm> {
        if iv.is_empty() || iv.len() > MAX_IV_LEN {
            return Err(Error(format!("GCM IV of {} bytes", iv.len())));
        }
        if !(MIN_TAG_LEN..=MAX_TAG_LEN).contains(&tag_len) {
            return Err(Error(format!("GCM tag of {tag_len} bytes")));
        }
        let c = cipher(key.len(), true)?;
        let reduced;
        let iv = if iv.len() > OPENSSL_MAX_IV {
            reduced = reduce_iv(key, iv)?;
            &reduced[..]
        } else {
            iv
        };
        let mut ctx = CipherCtx::new()?;
        // The IV length must be set between choosing the cipher and giving key and IV.
        if encrypt {
            ctx.encrypt_init(Some(c), None, None)?;
            ctx.set_iv_length(iv.len())?;
            ctx.encrypt_init(None, Some(key), Some(iv))?;
        } else {
            ctx.decrypt_init(Some(c), None, None)?;
            ctx.set_iv_length(iv.len())?;
            ctx.decrypt_init(None, Some(key), Some(iv))?;
        }
        for part in aad.chunks(CHUNK) {
            ctx.cipher_update(part, None)?;
        }
        Ok(AesGcm { ctx, tag_len })
    }

    /// The tag length in bytes.
    pub fn tag_len(&self) -> usize {
        self.tag_len
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
    pub fn finish_encrypt(&mut self) -> Result<Vec<u8>> {
        // GCM buffers nothing, so the final call outputs no data.
        let mut rest = [0u8; 16];
        self.ctx.cipher_final(&mut rest)?;
        let mut tag = vec![0u8; self.tag_len];
        self.ctx.tag(&mut tag)?;
        Ok(tag)
    }

    /// Finish a decryption: `Ok(false)` when `tag` does not authenticate the data (the
    /// plaintext produced must then be discarded), `Err` for OpenSSL failures.
    pub fn finish_decrypt(&mut self, tag: &[u8]) -> Result<bool> {
        if tag.len() != self.tag_len {
            return Ok(false);
        }
        self.ctx.set_tag(tag)?;
        let mut rest = [0u8; 16];
        match self.ctx.cipher_final(&mut rest) {
            Ok(_) => Ok(true),
            // A tag mismatch is the only failure of a GCM final with a tag set.
            Err(_) => Ok(false),
        }
    }
}

/// One-shot encryption: ciphertext ‖ tag.
pub fn seal(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    tag_len: usize,
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let mut g = AesGcm::encrypt(key, iv, aad, tag_len)?;
    let mut out = Vec::with_capacity(plaintext.len() + tag_len);
    g.update(plaintext, &mut out)?;
    out.extend_from_slice(&g.finish_encrypt()?);
    Ok(out)
}

/// One-shot decryption of ciphertext ‖ tag; `Ok(None)` when authentication fails.
pub fn open(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    tag_len: usize,
    sealed: &[u8],
) -> Result<Option<Zeroizing<Vec<u8>>>> {
    if sealed.len() < tag_len {
        return Ok(None);
    }
    let (ct, tag) = sealed.split_at(sealed.len() - tag_len);
    let mut g = AesGcm::decrypt(key, iv, aad, tag_len)?;
    let mut out = Zeroizing::new(Vec::with_capacity(ct.len()));
    g.update(ct, &mut out)?;
    Ok(if g.finish_decrypt(tag)? {
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

    // "The Galois/Counter Mode of Operation (GCM)", McGrew & Viega, test case 4 (AES-128,
    // 96-bit IV, AAD) and test case 6 (60-byte IV).
    const K4: &str = "feffe9928665731c6d6a8f9467308308";
    const P4: &str = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
    const A4: &str = "feedfacedeadbeeffeedfacedeadbeefabaddad2";

    #[test]
    fn nist_test_case_4() {
        let out = seal(&h(K4), &h("cafebabefacedbaddecaf888"), &h(A4), 16, &h(P4)).unwrap();
        assert_eq!(
            hex::encode(&out),
            "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091\
             5bc94fbc3221a5db94fae95ae7121a47"
        );
        let back = open(&h(K4), &h("cafebabefacedbaddecaf888"), &h(A4), 16, &out)
            .unwrap()
            .unwrap();
        assert_eq!(&*back, &h(P4)[..]);
    }

    #[test]
    fn nist_test_case_6_long_iv() {
        let iv = h(
            "9313225df88406e555909c5aff5269aa6a7a9538534f7da1e4c303d2a318a728c3c0c95156809539fcf0e2429a6b525416aedbf5a0de6a57a637b39b",
        );
        let out = seal(&h(K4), &iv, &h(A4), 16, &h(P4)).unwrap();
        assert_eq!(
            hex::encode(&out),
            "8ce24998625615b603a033aca13fb894be9112a5c3a211a8ba262a3cca7e2ca701e4a9a4fba43c90ccdcb281d48c7c6fd62875d2aca417034c34aee5\
             619cc5aefffe0bfa462af43c1699d050"
        );
    }

    #[test]
    fn streaming_truncated_tag_and_tamper() {
        let key = [9u8; 32];
        let iv = [1u8];
        let pt = b"multi-part plaintext crossing block edges!";
        let mut g = AesGcm::encrypt(&key, &iv, b"hdr", 12).unwrap();
        let mut ct = Vec::new();
        for part in pt.chunks(5) {
            g.update(part, &mut ct).unwrap();
        }
        let tag = g.finish_encrypt().unwrap();
        assert_eq!(tag.len(), 12);
        let mut sealed = ct.clone();
        sealed.extend_from_slice(&tag);
        assert_eq!(sealed, seal(&key, &iv, b"hdr", 12, pt).unwrap());
        assert_eq!(&*open(&key, &iv, b"hdr", 12, &sealed).unwrap().unwrap(), pt);
        assert!(open(&key, &iv, b"hdx", 12, &sealed).unwrap().is_none());
        let mut bad = sealed.clone();
        bad[3] ^= 0x80;
        assert!(open(&key, &iv, b"hdr", 12, &bad).unwrap().is_none());
        assert!(
            open(&key, &iv, b"hdr", 12, &sealed[..11])
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn gf_arithmetic() {
        let a = 0x66e94bd4ef8a2c3b884cfa59ca342b2eu128;
        assert_eq!(gf_mul(a, GF_ONE), a);
        assert_eq!(gf_mul(a, gf_inv(a)), GF_ONE);
        assert_eq!(gf_mul(a, 0x1234 << 100), gf_mul(0x1234 << 100, a));
    }

    #[test]
    fn long_iv_reduction_matches_openssl_where_it_can_compare() {
        // OpenSSL takes IVs up to 128 bytes itself: the reduced IV must give the same output.
        for (key, len) in [
            (&[3u8; 16][..], 17),
            (&[4u8; 24][..], 64),
            (&[5u8; 32][..], 128),
        ] {
            let iv: Vec<u8> = (0..len).map(|i| i as u8 ^ 0xa5).collect();
            let direct = seal(key, &iv, b"aad", 16, b"some plaintext").unwrap();
            let reduced = reduce_iv(key, &iv).unwrap();
            assert_eq!(
                seal(key, &reduced, b"aad", 16, b"some plaintext").unwrap(),
                direct
            );
        }
        let iv = [0x42u8; 256];
        let sealed = seal(&[6u8; 32], &iv, b"", 16, b"long iv").unwrap();
        assert_eq!(
            &*open(&[6u8; 32], &iv, b"", 16, &sealed).unwrap().unwrap(),
            b"long iv"
        );
        let mut other = iv;
        other[200] ^= 1;
        assert!(
            open(&[6u8; 32], &other, b"", 16, &sealed)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn bad_lengths_are_errors() {
        assert!(AesGcm::encrypt(&[0u8; 15], &[0u8; 12], b"", 16).is_err());
        assert!(AesGcm::encrypt(&[0u8; 16], &[], b"", 16).is_err());
        assert!(AesGcm::encrypt(&[0u8; 16], &[0u8; 257], b"", 16).is_ok());
        assert!(AesGcm::encrypt(&[0u8; 16], &[0u8; 12], b"", 3).is_err());
        assert!(AesGcm::encrypt(&[0u8; 16], &[0u8; 12], b"", 17).is_err());
        assert!(AesGcm::encrypt(&[0u8; 24], &[0u8; 256], b"", 4).is_ok());
    }
}
