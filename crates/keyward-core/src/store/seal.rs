//! Sealing under the token's keys: AES-256-GCM with a fresh random 96-bit nonce and a
//! 128-bit tag per value, and the associated data that binds each sealed value to its place.

use keyward_ossl::aead::{TAG_LEN, aes256_gcm_open, aes256_gcm_seal};
use zeroize::Zeroizing;

use crate::error::{Code, Result};

/// Nonce length (96 bits).
pub(crate) const NONCE_LEN: usize = 12;
/// Bytes a sealed value adds to its plaintext: nonce and tag.
pub(crate) const OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// What a sealed value or tag is for. Each purpose starts the associated data with its own
/// label, so a value sealed for one purpose never opens as another, even under the same key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A private object's whole record, under the master key.
    Object,
    /// One key-material attribute of a public object, under the master key.
    Attribute,
    /// A public object's clear record, tagged under the public token key.
    Public,
    /// The master key wrapped under a PIN-derived key.
    PinWrap,
    /// The token metadata row, tagged under the public token key.
    Meta,
    /// Proof that a master key belongs to this token, tagged under the master key.
    MkCheck,
    /// The public token key of a machine-bound token, sealed under its machine key.
    MachinePk,
    /// The master key wrapped under the identity key (login without a PIN), derived from
    /// the machine key.
    IdentityWrap,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Object => b"keyward-store/1/object",
            Purpose::Attribute => b"keyward-store/1/attribute",
            Purpose::Public => b"keyward-store/1/public",
            Purpose::PinWrap => b"keyward-store/1/pin-wrap",
            Purpose::Meta => b"keyward-store/1/meta",
            Purpose::MkCheck => b"keyward-store/1/mk-check",
            Purpose::MachinePk => b"keyward-store/1/machine-pk",
            Purpose::IdentityWrap => b"keyward-store/1/identity-wrap",
        }
    }
}

/// Associated data: `label ‖ token id ‖ parts`, every variable-length item prefixed with its
/// u32 LE length so that no two different tuples encode alike.
pub(crate) struct Aad(Vec<u8>);

impl Aad {
    pub(crate) fn new(purpose: Purpose, token_id: &[u8]) -> Aad {
        Aad(Vec::new()).bytes(purpose.label()).bytes(token_id)
    }

    pub(crate) fn bytes(mut self, b: &[u8]) -> Aad {
        // Parts are bounded far below 4 GiB by the record limits; saturate rather than wrap.
        let n = u32::try_from(b.len()).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&n.to_le_bytes());
        self.0.extend_from_slice(b);
        self
    }

    pub(crate) fn u64(mut self, v: u64) -> Aad {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

/// Seal `plaintext`; returns `nonce ‖ ciphertext ‖ tag`.
pub(crate) fn seal(key: &[u8; 32], aad: &Aad, plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut nonce = [0u8; NONCE_LEN];
    keyward_ossl::rand::fill(&mut nonce)?;
    let sealed = aes256_gcm_seal(key, &nonce, aad.as_slice(), plaintext)?;
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Open `nonce ‖ ciphertext ‖ tag`; any change to key, place or bytes is an error
/// (CKR_DEVICE_ERROR: the store was modified or the value was moved).
pub(crate) fn open(key: &[u8; 32], aad: &Aad, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if blob.len() < OVERHEAD {
        return Err(Code::DeviceError.err("sealed value too short"));
    }
    let (nonce, sealed) = blob.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce
        .try_into()
        .map_err(|_| Code::DeviceError.err("sealed value too short"))?;
    aes256_gcm_open(key, &nonce, aad.as_slice(), sealed)
        .map_err(|_| Code::DeviceError.err("authentication failed"))
}

/// A tag over `aad` alone (GMAC): `nonce ‖ tag`.
pub(crate) fn mac(key: &[u8; 32], aad: &Aad) -> Result<Vec<u8>> {
    seal(key, aad, &[])
}

/// Check a tag made by [`mac`] (constant-time inside the GCM tag check).
pub(crate) fn verify(key: &[u8; 32], aad: &Aad, tag: &[u8]) -> bool {
    tag.len() == OVERHEAD && open(key, aad, tag).is_ok_and(|p| p.is_empty())
}

/// A fresh random 256-bit key from the private DRBG.
pub(crate) fn random_key() -> Result<Zeroizing<[u8; 32]>> {
    let mut k = Zeroizing::new([0u8; 32]);
    keyward_ossl::rand::fill_private(&mut k[..])?;
    Ok(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_are_bound_to_their_place() {
        let key = [3u8; 32];
        let aad = || Aad::new(Purpose::Object, b"token-a").bytes(b"uid-1").u64(7);
        let blob = seal(&key, &aad(), b"secret").unwrap();
        assert_eq!(blob.len(), 6 + OVERHEAD);
        assert_eq!(&open(&key, &aad(), &blob).unwrap()[..], b"secret");
        // Another token, uid, generation or purpose: refused.
        for other in [
            Aad::new(Purpose::Object, b"token-b").bytes(b"uid-1").u64(7),
            Aad::new(Purpose::Object, b"token-a").bytes(b"uid-2").u64(7),
            Aad::new(Purpose::Object, b"token-a").bytes(b"uid-1").u64(8),
            Aad::new(Purpose::Attribute, b"token-a")
                .bytes(b"uid-1")
                .u64(7),
        ] {
            assert!(open(&key, &other, &blob).is_err());
        }
        // Length prefixes keep ("ab","c") and ("a","bc") apart.
        let a = Aad::new(Purpose::Meta, b"t").bytes(b"ab").bytes(b"c");
        let b = Aad::new(Purpose::Meta, b"t").bytes(b"a").bytes(b"bc");
        assert_ne!(a.as_slice(), b.as_slice());
        // Nonces are fresh per seal.
        assert_ne!(seal(&key, &aad(), b"secret").unwrap(), blob);
        assert!(open(&key, &aad(), &blob[..OVERHEAD - 1]).is_err());
    }

    #[test]
    fn mac_verifies_only_its_own_data() {
        let key = [9u8; 32];
        let t = mac(&key, &Aad::new(Purpose::Meta, b"x").bytes(b"label")).unwrap();
        assert_eq!(t.len(), OVERHEAD);
        assert!(verify(
            &key,
            &Aad::new(Purpose::Meta, b"x").bytes(b"label"),
            &t
        ));
        assert!(!verify(
            &key,
            &Aad::new(Purpose::Meta, b"x").bytes(b"labe1"),
            &t
        ));
        assert!(!verify(
            &[8u8; 32],
            &Aad::new(Purpose::Meta, b"x").bytes(b"label"),
            &t
        ));
        // A sealed non-empty value is not a valid tag.
        let s = seal(&key, &Aad::new(Purpose::Meta, b"x").bytes(b"label"), b"v").unwrap();
        assert!(!verify(
            &key,
            &Aad::new(Purpose::Meta, b"x").bytes(b"label"),
            &s
        ));
    }
}
