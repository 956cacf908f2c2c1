//! Random number generation (PKCS#11 3.0 §5.15): C_GenerateRandom and C_SeedRandom over the
//! private library context's DRBGs.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use crate::error::{Code, Result};
use crate::mechanism::digest::no_params;
use crate::mechanism::{Bytes, Mech};
use crate::types::{AttrValue, Attrs, Mechanism, MechanismInfo};

/// The most one C_GenerateRandom call returns; larger requests are refused before anything is
/// allocated (a daemon client could otherwise make the token allocate without limit).
pub const MAX_RANDOM_LEN: usize = 16 << 20;

/// `len` random bytes for the caller (C_GenerateRandom), from the public DRBG.
pub fn generate(len: usize) -> Result<Bytes> {
    if len > MAX_RANDOM_LEN {
        return Err(Code::HostMemory.err(format!("at most {MAX_RANDOM_LEN} random bytes per call")));
    }
    let mut out = Zeroizing::new(vec![0u8; len]);
    keyward_ossl::rand::fill(&mut out)?;
    Ok(out)
}

/// `len` random bytes for key material that stays in the token, from the private DRBG.
pub fn secret(len: usize) -> Result<Bytes> {
    let mut out = Zeroizing::new(vec![0u8; len]);
    keyward_ossl::rand::fill_private(&mut out)?;
    Ok(out)
}

/// Mix caller bytes into the DRBG (C_SeedRandom); the DRBG also reseeds from the operating
/// system, so a poor seed cannot weaken it.
pub fn seed(bytes: &[u8]) -> Result<()> {
    Ok(keyward_ossl::rand::seed(bytes)?)
}

/// A secret-key generation mechanism (CKM_AES_KEY_GEN, CKM_GENERIC_SECRET_KEY_GEN,
/// CKM_CHACHA20_KEY_GEN, ...): a random CKA_VALUE of the length the template asks for.
pub struct SecretKeyGen {
    /// The mechanism's name, for messages.
    pub name: &'static str,
    /// The key type made, then the others a template may ask for instead (e.g.
    /// CKK_SHA256_HMAC for a generic secret).
    pub key_types: &'static [CK_KEY_TYPE],
    /// The lengths in bytes a key may have: these, or every length from `min` to `max` when
    /// empty.
    pub lens: &'static [usize],
    /// Smallest and largest length.
    pub min: usize,
    /// Largest length.
    pub max: usize,
    /// The length when the template has no CKA_VALUE_LEN; `None` makes it required.
    pub default_len: Option<usize>,
    /// Whether CK_MECHANISM_INFO gives the sizes in bits (CKM_GENERIC_SECRET_KEY_GEN) rather
    /// than bytes (AES, ChaCha20), as each mechanism's section of the spec says.
    pub info_in_bits: bool,
}

impl SecretKeyGen {
    fn allowed(&self, len: usize) -> bool {
        if self.lens.is_empty() {
            (self.min..=self.max).contains(&len)
        } else {
            self.lens.contains(&len)
        }
    }
}

impl Mech for SecretKeyGen {
    fn info(&self) -> MechanismInfo {
        let unit = if self.info_in_bits { 8 } else { 1 };
        let ulong = |n: usize| CK_ULONG::try_from(n.saturating_mul(unit)).unwrap_or(CK_ULONG::MAX);
        MechanismInfo {
            min_key_size: ulong(self.min),
            max_key_size: ulong(self.max),
            flags: CKF_GENERATE,
        }
    }

    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        self.key_types
    }

    fn generate_key(&self, mech: &Mechanism, template: &Attrs) -> Result<Attrs> {
        no_params(mech)?;
        let len = match (template.get_ulong(CKA_VALUE_LEN), self.default_len) {
            (Some(l), _) => usize::try_from(l).unwrap_or(usize::MAX),
            (None, Some(d)) => d,
            (None, None) => {
                return Err(
                    Code::TemplateIncomplete.err(format!("{} needs CKA_VALUE_LEN", self.name))
                );
            }
        };
        if !self.allowed(len) {
            return Err(Code::AttributeValueInvalid.err(format!(
                "{}: CKA_VALUE_LEN {len} is not a length this key type has ({} to {} bytes)",
                self.name, self.min, self.max
            )));
        }
        let key_type = match template.get_ulong(CKA_KEY_TYPE) {
            Some(t) if self.key_types.contains(&t) => t,
            _ => self
                .key_types
                .first()
                .copied()
                .unwrap_or(CKK_GENERIC_SECRET),
        };
        let mut out = Attrs::new();
        out.set(CKA_KEY_TYPE, AttrValue::Ulong(key_type));
        out.set(CKA_VALUE, AttrValue::Bytes(secret(len)?));
        out.set(
            CKA_VALUE_LEN,
            AttrValue::Ulong(CK_ULONG::try_from(len).unwrap_or(CK_ULONG::MAX)),
        );
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_limits() {
        assert_eq!(generate(0).unwrap().len(), 0);
        let a = generate(32).unwrap();
        let b = generate(32).unwrap();
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert_eq!(secret(24).unwrap().len(), 24);
        assert_eq!(
            generate(MAX_RANDOM_LEN + 1).unwrap_err().code(),
            Code::HostMemory
        );
        seed(b"seed").unwrap();
    }
}
