//! RSAES-PKCS1-v1_5 decryption with implicit rejection (draft-irtf-cfrg-rsa-guidance, formerly
//! draft-kario-rsa-guidance; the algorithm of OpenSSL 3.2+ and NSS, byte for byte): a
//! ciphertext whose padding is wrong decrypts, without any error, to a synthetic message derived
//! from the private exponent and the ciphertext, so neither the result code nor the timing nor
//! the output tells a Bleichenbacher / Marvin attacker that the padding check failed.
//!
//! The system OpenSSL (3.0) only has the explicit-rejection padding check, so the padding is
//! removed here over OpenSSL's raw (blinded, constant-time) private-key operation.
//!
//! Constant time: from the decrypted block on, every byte is read whatever its value and every
//! decision is a mask (`ct_*` below, with `black_box` so the optimiser cannot turn a mask back
//! into a branch). The one value that leaves the masks is the start of the output in the block,
//! that is the output length, which the caller sees anyway and which the synthetic message
//! randomises, as the draft accepts.

use std::fmt;
use std::hint::black_box;

use zeroize::Zeroizing;

use crate::digest::{self, DigestAlg};
use crate::mac::MacKey;
use crate::pkey::{KeyKind, PKey};
use crate::{Error, Result};

/// 00 ‖ 02 ‖ at least eight bytes of PS ‖ 00.
const PKCS1_OVERHEAD: usize = 11;
/// The separator must come after 00 ‖ 02 and eight bytes of PS.
const MIN_SEPARATOR_INDEX: u32 = 2 + 8;
/// How many 16-bit candidates the synthetic length is drawn from: the last one below the
/// bound wins, so no division (variable-time) and no bias; all 128 fail with probability
/// below 2^-128, and the length is then 0.
const LEN_CANDIDATES: usize = 128;

/// All ones when `x` is zero, else zero.
#[inline]
fn ct_is_zero(x: u32) -> u32 {
    let x = black_box(x);
    ((!x & x.wrapping_sub(1)) >> 31).wrapping_neg()
}

/// All ones when `a == b`, else zero.
#[inline]
fn ct_eq(a: u32, b: u32) -> u32 {
    ct_is_zero(a ^ b)
}

/// All ones when `a < b`, else zero; both must be below 2^31 (so `a - b` wraps to the top
/// half exactly when `a < b`).
#[inline]
fn ct_lt(a: u32, b: u32) -> u32 {
    let d = black_box(a).wrapping_sub(black_box(b));
    (d >> 31).wrapping_neg()
}

/// `a` where `mask` is all ones, `b` where it is zero.
#[inline]
fn ct_select(mask: u32, a: u32, b: u32) -> u32 {
    let mask = black_box(mask);
    (a & mask) | (b & !mask)
}

/// The same for bytes.
#[inline]
fn ct_select_u8(mask: u32, a: u8, b: u8) -> u8 {
    // Only the low byte of the mask matters; truncation is the point.
    let m = black_box(mask) as u8;
    (a & m) | (b & !m)
}

/// The draft's PRF: HMAC-SHA256(KDK, I ‖ label ‖ bitlen) for I = 0, 1, … (both 16-bit
/// big-endian), concatenated and cut to `len` bytes. `prf_key` is HMAC-SHA256 keyed with KDK.
fn prf(prf_key: &MacKey, label: &[u8], len: usize) -> Result<Zeroizing<Vec<u8>>> {
    let bits = len
        .checked_mul(8)
        .and_then(|b| u16::try_from(b).ok())
        .ok_or_else(|| Error(format!("implicit rejection PRF output of {len} bytes")))?;
    let mut out = Zeroizing::new(Vec::with_capacity(len.next_multiple_of(prf_key.size())));
    // At most 2^16 bits of output means at most 256 blocks: the counter cannot overflow.
    let mut counter: u16 = 0;
    while out.len() < len {
        let mut m = prf_key.start()?;
        m.update(&counter.to_be_bytes())?;
        m.update(label)?;
        m.update(&bits.to_be_bytes())?;
        out.extend_from_slice(&m.finish()?);
        counter = counter.wrapping_add(1);
    }
    out.truncate(len);
    Ok(out)
}

/// The per-key part of implicit rejection: HMAC-SHA256 keyed with SHA-256 of the private
/// exponent (written as k bytes), and the modulus. Build it once per key and share it.
pub struct ImplicitRejection {
    /// HMAC-SHA256 keyed with SHA-256(d as k bytes, big-endian): KDK = this over the
    /// ciphertext.
    kdk_key: MacKey,
    /// The modulus as k bytes, big-endian, to refuse ciphertexts not below it.
    modulus: Vec<u8>,
}

impl fmt::Debug for ImplicitRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImplicitRejection({} bytes)", self.modulus.len())
    }
}

impl ImplicitRejection {
    /// The implicit-rejection state of the RSA private key `key`, whose private exponent is
    /// `d` (big-endian, any width up to k bytes; it must be the key's own).
    pub fn new(key: &PKey, d: &[u8]) -> Result<ImplicitRejection> {
        if key.kind() != KeyKind::Rsa || !key.has_private() {
            return Err(Error("implicit rejection needs an RSA private key".into()));
        }
        let k = key.signature_len();
        // The PRF counts its output in 16 bits: k * 8 must fit (k up to 8191 bytes).
        if k < PKCS1_OVERHEAD || k.saturating_mul(8) > usize::from(u16::MAX) {
            return Err(Error(format!(
                "no PKCS#1 v1.5 decryption with {k}-byte keys"
            )));
        }
        let (n, _) = key.rsa_public_parts()?;
        let modulus = left_pad(&n, k).ok_or_else(|| Error("modulus wider than k".into()))?;
        let skip = d.iter().take_while(|&&b| b == 0).count();
        let d_padded = left_pad(&d[skip..], k)
            .map(Zeroizing::new)
            .ok_or_else(|| Error("private exponent wider than the modulus".into()))?;
        let d_hash = digest::digest(DigestAlg::Sha256, &d_padded)?;
        Ok(ImplicitRejection {
            kdk_key: MacKey::hmac(DigestAlg::Sha256, &d_hash)?,
            modulus,
        })
    }

    /// k, the modulus length in bytes (and the only ciphertext length accepted).
    pub fn k(&self) -> usize {
        self.modulus.len()
    }

    /// Decrypt `ciphertext` with `key` (the key this state was built for): the message if the
    /// padding is right, else the synthetic message, both `Ok`. `Ok(None)` only for faults
    /// anyone can see without the key: a ciphertext that is not k bytes or not below the
    /// modulus.
    pub fn decrypt(&self, key: &PKey, ciphertext: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>> {
        if key.signature_len() != self.k() || !key.has_private() {
            return Err(Error("implicit rejection state of another key".into()));
        }
        // Equal-length big-endian strings compare as the numbers they encode; the ciphertext
        // is public, so an ordinary comparison is fine.
        if ciphertext.len() != self.k() || ciphertext >= self.modulus.as_slice() {
            return Ok(None);
        }
        let em = key.rsa_raw_decrypt(ciphertext)?;
        self.unpad(ciphertext, &em).map(Some)
    }

    /// KDK = HMAC-SHA256(SHA-256(d), ciphertext as k bytes).
    fn kdk(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let mut m = self.kdk_key.start()?;
        m.update(ciphertext)?;
        m.finish()
    }

    /// Remove the PKCS#1 v1.5 type 2 padding from the decrypted block `em` of `ciphertext`
    /// (both k bytes) with implicit rejection, in constant time up to the output length.
    pub(crate) fn unpad(&self, ciphertext: &[u8], em: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let k = self.k();
        if ciphertext.len() != k || em.len() != k {
            return Err(Error(format!(
                "a PKCS#1 v1.5 block with this key is {k} bytes"
            )));
        }
        // k < 2^13 (checked in `new`): every index and length below fits the u32 masks.
        let k32 = u32::try_from(k).map_err(|_| Error("modulus too long".into()))?;

        // The synthetic message and its length come first and unconditionally, so that the
        // work done never depends on the padding.
        let kdk = self.kdk(ciphertext)?;
        let prf_key = MacKey::hmac(DigestAlg::Sha256, &kdk)?;
        let synthetic = prf(&prf_key, b"message", k)?;
        let candidates = prf(&prf_key, b"length", 2 * LEN_CANDIDATES)?;
        // The longest message: k less 00 ‖ 02, eight bytes of PS and the separator.
        let max_len = k32 - 10;
        let mut len_mask = max_len;
        len_mask |= len_mask >> 1;
        len_mask |= len_mask >> 2;
        len_mask |= len_mask >> 4;
        len_mask |= len_mask >> 8;
        let mut synthetic_len = 0u32;
        for pair in candidates.chunks_exact(2) {
            let c = ((u32::from(pair[0]) << 8) | u32::from(pair[1])) & len_mask;
            synthetic_len = ct_select(ct_lt(c, max_len), c, synthetic_len);
        }

        // 00 ‖ 02 ‖ PS ‖ 00 ‖ M, with the first zero after 02 at index 10 or later. Every byte
        // is looked at; the index of the first zero is kept with masks.
        let mut good = ct_is_zero(u32::from(em[0])) & ct_eq(u32::from(em[1]), 2);
        let mut found = 0u32;
        let mut zero_index = 0u32;
        for (i, &b) in (2u32..).zip(&em[2..]) {
            let is_zero = ct_is_zero(u32::from(b));
            zero_index = ct_select(!found & is_zero, i, zero_index);
            found |= is_zero;
        }
        // No separator leaves `zero_index` at 0, which fails here too.
        good &= !ct_lt(zero_index, MIN_SEPARATOR_INDEX);
        let msg_index = ct_select(good, zero_index + 1, k32 - synthetic_len);

        // From here the start index is used as an index: it is k minus the output length,
        // which the caller learns anyway. Both sources are read at every position so the
        // memory access pattern does not tell which one was taken.
        let start = usize::try_from(msg_index).map_err(|_| Error("index overflow".into()))?;
        let (Some(real), Some(fake)) = (em.get(start..), synthetic.get(start..)) else {
            return Err(Error("message index past the block".into()));
        };
        let mut out = Zeroizing::new(Vec::with_capacity(real.len()));
        for (&r, &s) in real.iter().zip(fake) {
            out.push(ct_select_u8(good, r, s));
        }
        Ok(out)
    }
}

/// `v` left-padded with zeros to `len` bytes; `None` if longer.
fn left_pad(v: &[u8], len: usize) -> Option<Vec<u8>> {
    let pad = len.checked_sub(v.len())?;
    // One allocation, so no copy of a secret is left behind by a reallocation.
    let mut out = Vec::with_capacity(len);
    out.resize(pad, 0);
    out.extend_from_slice(v);
    Some(out)
}

#[cfg(test)]
mod tests;
