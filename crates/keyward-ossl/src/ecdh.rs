//! Key agreement: ECDH on the named prime curves (SEC 1 §3.3.1), X25519 and X448 (RFC 7748),
//! and the ANSI X9.63 key derivation function (SEC 1 §3.6.1) over the shared secret.
//!
//! The agreements return `Ok(None)` when the peer's public value is refused (not a point of
//! the curve, the wrong length, a small-order X25519/X448 point) so that callers can tell a
//! bad parameter from an OpenSSL failure.

use openssl_sys as sys;
use zeroize::Zeroizing;

use crate::digest::{Digest, DigestAlg};
use crate::edwards::{EdCurve, EdKey};
use crate::ffi::{PkeyCtx, check, clear_errors};
use crate::pkey::{KeyKind, PKey};
use crate::{Error, Result};

/// The ECDH shared secret (the x-coordinate of d·Q, `field_len` bytes big-endian) of `key`'s
/// private scalar and the peer's SEC 1 point `peer` (uncompressed or compressed). `Ok(None)`
/// when `peer` is not a point of the key's curve other than the identity.
pub fn ec_agree(key: &PKey, peer: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let KeyKind::Ec(curve) = key.kind() else {
        return Err(Error("ECDH needs an EC key".into()));
    };
    if !key.has_private() {
        return Err(Error("ECDH needs the private key".into()));
    }
    // Only the two SEC 1 encodings of a finite point: the single byte 0x00 (the identity)
    // and hybrid forms are refused here, before OpenSSL sees them.
    let well_formed = match peer.first() {
        Some(0x04) => peer.len() == curve.point_len(),
        Some(0x02 | 0x03) => peer.len() == 1 + curve.field_len(),
        _ => false,
    };
    if !well_formed {
        return Ok(None);
    }
    // Importing the point checks that it lies on the curve (EC_POINT_oct2point); a
    // compressed point whose x has no square root fails there too.
    let Ok(peer) = PKey::ec_from_components(curve, None, Some(peer)) else {
        clear_errors();
        return Ok(None);
    };
    let secret = derive(key.as_ptr(), peer.as_ptr(), curve.field_len())?;
    Ok(secret)
}

/// The X25519 or X448 shared secret of `key`'s private scalar and the peer's raw
/// u-coordinate `peer` (32 or 56 bytes). `Ok(None)` for a peer of the wrong length or one
/// that makes the secret all zeros (a small-order point, RFC 7748 §6).
pub fn x_agree(key: &EdKey, peer: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let curve = key.curve();
    if !matches!(curve, EdCurve::X25519 | EdCurve::X448) {
        return Err(Error("X25519/X448 agreement needs a Montgomery key".into()));
    }
    if !key.has_private() {
        return Err(Error("key agreement needs the private key".into()));
    }
    if peer.len() != curve.key_len() {
        return Ok(None);
    }
    let Ok(peer) = EdKey::from_public(curve, peer) else {
        clear_errors();
        return Ok(None);
    };
    let secret = derive(key.as_ptr(), peer.as_ptr(), curve.key_len())?;
    // OpenSSL already refuses an all-zero result; checked again without branching on the
    // bytes, since accepting it would hand out a key the peer did not need a secret for.
    Ok(secret.filter(|s| s.iter().fold(0u8, |acc, b| acc | b) != 0))
}

/// EVP_PKEY_derive of `own` with `peer` (which OpenSSL validates as a public key first);
/// `Ok(None)` when OpenSSL refuses the peer or the derivation, whose only causes past a
/// successful import are a bad peer value.
fn derive(
    own: *mut sys::EVP_PKEY,
    peer: *mut sys::EVP_PKEY,
    len: usize,
) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let ctx = PkeyCtx::from_pkey(own)?;
    // SAFETY: live context bound to a live private key.
    let rc = unsafe { sys::EVP_PKEY_derive_init(ctx.as_ptr()) };
    check(rc, "EVP_PKEY_derive_init")?;
    // SAFETY: live context and peer key; the context takes its own reference to the peer.
    let rc = unsafe { sys::EVP_PKEY_derive_set_peer(ctx.as_ptr(), peer) };
    if rc != 1 {
        clear_errors();
        return Ok(None);
    }
    let mut out = Zeroizing::new(vec![0u8; len]);
    let mut n = out.len();
    // SAFETY: live context with key and peer set; `out` is writable for `n` bytes.
    let rc = unsafe { sys::EVP_PKEY_derive(ctx.as_ptr(), out.as_mut_ptr(), &mut n) };
    if rc != 1 {
        clear_errors();
        return Ok(None);
    }
    if n != len {
        return Err(Error(format!(
            "shared secret of {n} bytes where {len} were expected"
        )));
    }
    Ok(Some(out))
}

/// The ANSI X9.63 KDF (SEC 1 §3.6.1): the first `len` bytes of
/// Hash(Z ‖ 1) ‖ Hash(Z ‖ 2) ‖ …, each counter a 32-bit big-endian integer followed by
/// `shared_info`.
pub fn x963_kdf(
    alg: DigestAlg,
    z: &[u8],
    shared_info: &[u8],
    len: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    let hlen = alg.output_len();
    let blocks = len.div_ceil(hlen);
    // The counter must not wrap: X9.63 limits the output to hashlen × (2³² − 1).
    let last = u32::try_from(blocks)
        .map_err(|_| Error("X9.63 KDF output longer than its counter allows".into()))?;
    let mut out = Zeroizing::new(Vec::with_capacity(blocks * hlen));
    let mut d = Digest::new(alg)?;
    for counter in 1..=last {
        d.update(z)?;
        d.update(&counter.to_be_bytes())?;
        d.update(shared_info)?;
        out.extend_from_slice(&d.finish()?);
    }
    out.truncate(len);
    Ok(out)
}

#[cfg(test)]
mod tests;
