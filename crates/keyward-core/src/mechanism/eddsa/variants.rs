//! The RFC 8032 EdDSA instances other than pure Ed25519/Ed448: Ed25519ctx, Ed25519ph, Ed448
//! with a context and Ed448ph, which CKM_EDDSA selects with a CK_EDDSA_PARAMS.
//!
//! Pure EdDSA runs on OpenSSL (`keyward_ossl::edwards`). The system OpenSSL is 3.0, whose
//! EdDSA has no "instance" or "context-string" parameters (they arrived in 3.2), so the
//! instances here are computed in Rust:
//! - Ed25519ctx and Ed25519ph over curve25519-dalek's group arithmetic, hashing with SHA-512
//!   from the private OpenSSL context. ed25519-dalek offers Ed25519ph but not Ed25519ctx; the
//!   two differ only in the dom2 flag octet, so one implementation serves both.
//! - Ed448 with a context and Ed448ph through ed448-goldilocks, whose SHAKE256 (the `shake`
//!   crate it re-exports) also computes the Ed448ph pre-hash, as keyward-ossl has no SHAKE.
//!
//! Verification is strict: S must be canonical (below the group order), R and A must be
//! canonical encodings of points that are not of small order, and the equation is the
//! cofactorless `[S]B = R + [k]A`.

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::{Scalar, clamp_integer};
use ed448_goldilocks::shake::Shake256;
use ed448_goldilocks::shake::digest::{ExtendableOutputReset, Update, XofReader};
use ed448_goldilocks::{PreHash, SecretKey as Ed448Secret, Signature as Ed448Signature};
use ed448_goldilocks::{SigningKey as Ed448SigningKey, VerifyingKey as Ed448VerifyingKey};
use keyward_ossl::digest::{Digest, DigestAlg, digest};
use keyward_ossl::edwards::EdCurve;
use zeroize::Zeroizing;

use crate::error::{Code, Result};

/// Length of PH(M) for both pre-hash instances (SHA-512, and SHAKE256 with 64 bytes out).
pub(super) const PREHASH_LEN: usize = 64;

// RFC 8032 §5.1: dom2(x, y) = "SigEd25519 no Ed25519 collisions" || octet(x) || octet(len(y))
// || y, prefixed to both SHA-512 inputs of Ed25519ctx and Ed25519ph.
const DOM2_PREFIX: &[u8] = b"SigEd25519 no Ed25519 collisions";

const ED25519_LEN: usize = 32;
const ED448_LEN: usize = 57;

/// A non-pure EdDSA instance: the context (at most 255 bytes) and whether the input is the
/// pre-hash PH(M) rather than the message itself.
#[derive(Clone, Copy, Debug)]
pub(super) struct Flavor<'a> {
    pub(super) prehash: bool,
    pub(super) context: &'a [u8],
}

impl Flavor<'_> {
    fn context_len(&self) -> Result<u8> {
        u8::try_from(self.context.len())
            .map_err(|_| Code::MechanismParamInvalid.err("the EdDSA context is at most 255 bytes"))
    }
}

/// PH(M) computed as the message arrives, so pre-hash operations keep no message.
pub(super) enum Prehash {
    Sha512(Digest),
    Shake256(Box<Shake256>),
}

impl Prehash {
    /// The pre-hash of Ed25519ph (SHA-512) or Ed448ph (SHAKE256).
    pub(super) fn new(curve: EdCurve) -> Result<Prehash> {
        match curve {
            EdCurve::Ed25519 => Ok(Prehash::Sha512(Digest::new(DigestAlg::Sha512)?)),
            EdCurve::Ed448 => Ok(Prehash::Shake256(Box::default())),
            _ => Err(Code::KeyTypeInconsistent.err("not an Edwards curve")),
        }
    }

    pub(super) fn update(&mut self, data: &[u8]) -> Result<()> {
        match self {
            Prehash::Sha512(d) => d.update(data)?,
            Prehash::Shake256(x) => x.update(data),
        }
        Ok(())
    }

    /// PH(M) of everything added; the hash starts over afterwards.
    pub(super) fn finish(&mut self) -> Result<[u8; PREHASH_LEN]> {
        let mut out = [0u8; PREHASH_LEN];
        match self {
            Prehash::Sha512(d) => {
                let h = d.finish()?;
                if h.len() != PREHASH_LEN {
                    return Err(Code::GeneralError.err("SHA-512 output of an unexpected length"));
                }
                out.copy_from_slice(&h);
            }
            Prehash::Shake256(x) => x.finalize_xof_reset().read(&mut out),
        }
        Ok(out)
    }
}

/// The signature of `input` (the message, or PH(M) for a pre-hash flavor) under the private
/// key `seed` (CKA_VALUE: the RFC 8032 secret key).
pub(super) fn sign(
    curve: EdCurve,
    seed: &[u8],
    flavor: Flavor<'_>,
    input: &[u8],
) -> Result<Vec<u8>> {
    check_input(flavor, input)?;
    match curve {
        EdCurve::Ed25519 => ed25519_sign(seed, flavor, input),
        EdCurve::Ed448 => ed448_sign(seed, flavor, input),
        _ => Err(Code::KeyTypeInconsistent.err("not an Edwards curve")),
    }
}

/// Whether `sig` is a valid signature of `input` (as for [`sign`]) under the raw public key
/// `public`. A signature of the wrong length is simply invalid.
pub(super) fn verify(
    curve: EdCurve,
    public: &[u8],
    flavor: Flavor<'_>,
    input: &[u8],
    sig: &[u8],
) -> Result<bool> {
    check_input(flavor, input)?;
    match curve {
        EdCurve::Ed25519 => ed25519_verify(public, flavor, input, sig),
        EdCurve::Ed448 => ed448_verify(public, flavor, input, sig),
        _ => Err(Code::KeyTypeInconsistent.err("not an Edwards curve")),
    }
}

fn check_input(flavor: Flavor<'_>, input: &[u8]) -> Result<()> {
    flavor.context_len()?;
    if flavor.prehash && input.len() != PREHASH_LEN {
        return Err(Code::GeneralError.err("a pre-hash is 64 bytes"));
    }
    Ok(())
}

/// SHA-512(dom2(phflag, context) || parts...) reduced modulo the group order.
fn dom2_hash(flavor: Flavor<'_>, parts: &[&[u8]]) -> Result<Scalar> {
    let mut d = Digest::new(DigestAlg::Sha512)?;
    d.update(DOM2_PREFIX)?;
    d.update(&[u8::from(flavor.prehash), flavor.context_len()?])?;
    d.update(flavor.context)?;
    for p in parts {
        d.update(p)?;
    }
    let h = d.finish()?;
    let mut wide = Zeroizing::new([0u8; 64]);
    if h.len() != wide.len() {
        return Err(Code::GeneralError.err("SHA-512 output of an unexpected length"));
    }
    wide.copy_from_slice(&h);
    Ok(Scalar::from_bytes_mod_order_wide(&wide))
}

fn ed25519_sign(seed: &[u8], flavor: Flavor<'_>, input: &[u8]) -> Result<Vec<u8>> {
    if seed.len() != ED25519_LEN {
        return Err(Code::KeyTypeInconsistent.err("an Ed25519 private key is 32 bytes"));
    }
    // RFC 8032 §5.1.5/§5.1.6: the low half of SHA-512(seed), clamped, is the secret scalar;
    // the high half is the nonce prefix.
    let h = digest(DigestAlg::Sha512, seed)?;
    if h.len() != 2 * ED25519_LEN {
        return Err(Code::GeneralError.err("SHA-512 output of an unexpected length"));
    }
    let (low, prefix) = h.split_at(ED25519_LEN);
    let mut bits = Zeroizing::new([0u8; ED25519_LEN]);
    bits.copy_from_slice(low);
    let s = Zeroizing::new(Scalar::from_bytes_mod_order(clamp_integer(*bits)));
    let public = EdwardsPoint::mul_base(&s).compress();

    let r = Zeroizing::new(dom2_hash(flavor, &[prefix, input])?);
    let big_r = EdwardsPoint::mul_base(&r).compress();
    let k = dom2_hash(flavor, &[big_r.as_bytes(), public.as_bytes(), input])?;
    let big_s = *r + k * *s;

    let mut sig = Vec::with_capacity(2 * ED25519_LEN);
    sig.extend_from_slice(big_r.as_bytes());
    sig.extend_from_slice(big_s.as_bytes());
    Ok(sig)
}

fn ed25519_verify(public: &[u8], flavor: Flavor<'_>, input: &[u8], sig: &[u8]) -> Result<bool> {
    let (Ok(a_bytes), Some((r_bytes, s_bytes))) = (
        <[u8; ED25519_LEN]>::try_from(public),
        sig.split_first_chunk::<ED25519_LEN>(),
    ) else {
        return Ok(false);
    };
    let Ok(s_bytes) = <[u8; ED25519_LEN]>::try_from(s_bytes) else {
        return Ok(false);
    };
    let a_enc = CompressedEdwardsY(a_bytes);
    let Some(a) = a_enc.decompress() else {
        return Ok(false);
    };
    // decompress() accepts y >= p; only the canonical encoding of a point is allowed.
    if a.compress() != a_enc || a.is_small_order() {
        return Ok(false);
    }
    let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
        return Ok(false);
    };
    let r_enc = CompressedEdwardsY(*r_bytes);
    match r_enc.decompress() {
        Some(r) if !r.is_small_order() => {}
        _ => return Ok(false),
    }
    let k = dom2_hash(flavor, &[r_bytes, &a_bytes, input])?;
    // [S]B - [k]A must re-encode to exactly R's bytes, which also rejects non-canonical R.
    let check = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &-a, &s);
    Ok(check.compress() == r_enc)
}

/// PH(M) already computed, handed to ed448-goldilocks' pre-hash interface.
struct Computed<'a>(&'a [u8]);

impl PreHash for Computed<'_> {
    fn fill_bytes(&mut self, out: &mut [u8]) {
        for (o, i) in out.iter_mut().zip(self.0) {
            *o = *i;
        }
    }
}

fn ed448_sign(seed: &[u8], flavor: Flavor<'_>, input: &[u8]) -> Result<Vec<u8>> {
    let mut secret = Zeroizing::new(Ed448Secret::default());
    if seed.len() != secret.len() {
        return Err(Code::KeyTypeInconsistent.err("an Ed448 private key is 57 bytes"));
    }
    secret.copy_from_slice(seed);
    // The expanded key is zeroized when dropped.
    let key = Ed448SigningKey::from(&*secret);
    let sig = if flavor.prehash {
        key.sign_prehashed(Some(flavor.context), Computed(input))
    } else {
        key.sign_ctx(flavor.context, input)
    }
    .map_err(|e| Code::GeneralError.err(format!("Ed448 signing: {e}")))?;
    Ok(sig.to_bytes().to_vec())
}

/// Whether `enc` is the canonical encoding of an Ed448 point (decoding ignores the seven
/// unused bits of the last octet and accepts y >= p).
fn ed448_canonical(enc: &[u8; ED448_LEN]) -> bool {
    ed448_goldilocks::CompressedEdwardsY(*enc)
        .decompress()
        .into_option()
        .is_some_and(|p| p.compress().0 == *enc)
}

fn ed448_verify(public: &[u8], flavor: Flavor<'_>, input: &[u8], sig: &[u8]) -> Result<bool> {
    let (Ok(a_bytes), Some((r_bytes, _))) = (
        <[u8; ED448_LEN]>::try_from(public),
        sig.split_first_chunk::<ED448_LEN>(),
    ) else {
        return Ok(false);
    };
    // The crate rejects non-canonical S, the identity and points with a torsion component,
    // but compares points rather than encodings.
    if !ed448_canonical(&a_bytes) || !ed448_canonical(r_bytes) {
        return Ok(false);
    }
    let (Ok(key), Ok(sig)) = (
        Ed448VerifyingKey::from_bytes(&a_bytes),
        Ed448Signature::from_slice(sig),
    ) else {
        return Ok(false);
    };
    let result = if flavor.prehash {
        key.verify_prehashed(&sig, Some(flavor.context), Computed(input))
    } else {
        key.verify_ctx(&sig, flavor.context, input)
    };
    Ok(result.is_ok())
}
