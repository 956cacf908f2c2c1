//! PIN → key-encryption key: Argon2id (default) or PBKDF2-HMAC-SHA256 (FIPS-only
//! configurations), with the parameters and salt recorded beside each wrapped master key.

use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

use crate::error::{Code, Result};

/// The PIN key-derivation function and its cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KdfParams {
    /// Argon2id v1.3 (RFC 9106): memory in KiB, passes, lanes.
    Argon2id {
        /// Memory cost in KiB.
        m_kib: u32,
        /// Number of passes.
        t: u32,
        /// Degree of parallelism (lanes).
        p: u32,
    },
    /// PBKDF2-HMAC-SHA256 (SP 800-132).
    Pbkdf2Sha256 {
        /// Iteration count.
        iterations: u32,
    },
}

/// OWASP's Argon2id minimum: m = 19 MiB, t = 2, p = 1.
pub const ARGON2_FLOOR: KdfParams = KdfParams::Argon2id {
    m_kib: 19 * 1024,
    t: 2,
    p: 1,
};
/// OWASP's PBKDF2-HMAC-SHA256 minimum: 600,000 iterations.
pub const PBKDF2_FLOOR: KdfParams = KdfParams::Pbkdf2Sha256 {
    iterations: 600_000,
};

// Hard bounds, so that a tampered parameter block cannot make a login allocate without
// limit or run for hours.
const ARGON2_MAX_M_KIB: u32 = 4 * 1024 * 1024;
const ARGON2_MAX_T: u32 = 64;
const ARGON2_MAX_P: u32 = 64;
const PBKDF2_MAX_ITERATIONS: u32 = 100_000_000;

/// Salt length for new wraps (RFC 9106 recommends 16 bytes at least).
pub(crate) const SALT_LEN: usize = 32;
const MIN_SALT_LEN: usize = 16;
const MAX_SALT_LEN: usize = 64;

const ALG_ARGON2ID: u8 = 1;
const ALG_PBKDF2_SHA256: u8 = 2;

impl Default for KdfParams {
    fn default() -> KdfParams {
        ARGON2_FLOOR
    }
}

impl KdfParams {
    /// Refuse parameters the algorithms cannot run or that exceed the hard bounds.
    pub fn validate(&self) -> Result<()> {
        let ok = match *self {
            KdfParams::Argon2id { m_kib, t, p } => {
                (1..=ARGON2_MAX_P).contains(&p)
                    && (1..=ARGON2_MAX_T).contains(&t)
                    && m_kib >= 8 * p
                    && m_kib <= ARGON2_MAX_M_KIB
            }
            KdfParams::Pbkdf2Sha256 { iterations } => {
                (1..=PBKDF2_MAX_ITERATIONS).contains(&iterations)
            }
        };
        if ok {
            Ok(())
        } else {
            Err(Code::GeneralError.err(format!("PIN KDF parameters out of range: {self:?}")))
        }
    }

    /// Whether these are below OWASP's minimum for their algorithm.
    pub fn below_floor(&self) -> bool {
        match *self {
            KdfParams::Argon2id { m_kib, t, .. } => m_kib < 19 * 1024 || t < 2,
            KdfParams::Pbkdf2Sha256 { iterations } => iterations < 600_000,
        }
    }

    /// Whether a wrap made with `self` should be redone with `configured`: another algorithm
    /// was configured (e.g. FIPS-only), or the configured cost is higher in any dimension
    /// that makes a guess dearer. Never true for a weaker configuration, so stored parameters
    /// are never lowered.
    pub fn needs_upgrade_to(&self, configured: &KdfParams) -> bool {
        match (*self, *configured) {
            (
                KdfParams::Argon2id { m_kib, t, .. },
                KdfParams::Argon2id {
                    m_kib: cm, t: ct, ..
                },
            ) => cm > m_kib && ct >= t || ct > t && cm >= m_kib,
            (
                KdfParams::Pbkdf2Sha256 { iterations },
                KdfParams::Pbkdf2Sha256 { iterations: ci },
            ) => ci > iterations,
            _ => true,
        }
    }
}

/// The parameters and salt of one wrap, as stored (and authenticated as associated data).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredKdf {
    pub(crate) params: KdfParams,
    pub(crate) salt: Vec<u8>,
}

impl StoredKdf {
    /// Fresh salt for `params`; warns when the parameters are below the recommended floor
    /// (allowed only because the configuration asked for them explicitly).
    pub(crate) fn new(params: &KdfParams) -> Result<StoredKdf> {
        params.validate()?;
        if params.below_floor() {
            tracing::warn!(
                ?params,
                "PIN KDF parameters are below the recommended minimum (Argon2id m=19 MiB, t=2; \
                 PBKDF2 600,000 iterations); a stolen token file is cheaper to attack"
            );
        }
        let mut salt = vec![0u8; SALT_LEN];
        keyward_ossl::rand::fill(&mut salt)?;
        Ok(StoredKdf {
            params: *params,
            salt,
        })
    }

    /// `alg:u8 · params (u32 LE each) · salt_len:u8 · salt`.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(14 + self.salt.len());
        match self.params {
            KdfParams::Argon2id { m_kib, t, p } => {
                out.push(ALG_ARGON2ID);
                out.extend_from_slice(&m_kib.to_le_bytes());
                out.extend_from_slice(&t.to_le_bytes());
                out.extend_from_slice(&p.to_le_bytes());
            }
            KdfParams::Pbkdf2Sha256 { iterations } => {
                out.push(ALG_PBKDF2_SHA256);
                out.extend_from_slice(&iterations.to_le_bytes());
            }
        }
        // The salt length is bounded by construction (SALT_LEN) and by decode.
        out.push(u8::try_from(self.salt.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(&self.salt);
        out
    }

    pub(crate) fn decode(b: &[u8]) -> Result<StoredKdf> {
        let bad = || Code::DeviceError.err("stored PIN KDF parameters are malformed");
        let u32_at = |i: usize| -> Result<u32> {
            let s: [u8; 4] = b
                .get(i..i + 4)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(bad)?;
            Ok(u32::from_le_bytes(s))
        };
        let (params, rest) = match b.first() {
            Some(&ALG_ARGON2ID) => (
                KdfParams::Argon2id {
                    m_kib: u32_at(1)?,
                    t: u32_at(5)?,
                    p: u32_at(9)?,
                },
                13,
            ),
            Some(&ALG_PBKDF2_SHA256) => (
                KdfParams::Pbkdf2Sha256 {
                    iterations: u32_at(1)?,
                },
                5,
            ),
            _ => return Err(bad()),
        };
        let salt_len = usize::from(*b.get(rest).ok_or_else(bad)?);
        let salt = b.get(rest + 1..).ok_or_else(bad)?;
        if salt.len() != salt_len || !(MIN_SALT_LEN..=MAX_SALT_LEN).contains(&salt_len) {
            return Err(bad());
        }
        params
            .validate()
            .map_err(|_| Code::DeviceError.err("stored PIN KDF parameters out of range"))?;
        Ok(StoredKdf {
            params,
            salt: salt.to_vec(),
        })
    }

    /// Derive the 256-bit key-encryption key from `pin`.
    pub(crate) fn derive(&self, pin: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
        let mut kek = Zeroizing::new([0u8; 32]);
        match self.params {
            KdfParams::Argon2id { m_kib, t, p } => {
                let params = Params::new(m_kib, t, p, Some(32))
                    .map_err(|e| Code::GeneralError.err(format!("Argon2id parameters: {e}")))?;
                Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                    .hash_password_into(pin, &self.salt, &mut kek[..])
                    .map_err(|e| Code::FunctionFailed.err(format!("Argon2id: {e}")))?;
            }
            KdfParams::Pbkdf2Sha256 { iterations } => {
                keyward_ossl::kdf::pbkdf2_hmac_sha256(pin, &self.salt, iterations, &mut kek[..])?;
            }
        }
        Ok(kek)
    }

    /// Whether this wrap should be redone with `configured` parameters.
    pub(crate) fn needs_rewrap(&self, configured: &KdfParams) -> bool {
        self.salt.len() < SALT_LEN || self.params.needs_upgrade_to(configured)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_matches_reference_implementation() {
        // Expected bytes from the reference C implementation (libargon2
        // argon2id_hash_raw(t=2, m=64, p=1, "password", "somesalt0123456", 32)).
        let k = StoredKdf {
            params: KdfParams::Argon2id {
                m_kib: 64,
                t: 2,
                p: 1,
            },
            salt: b"somesalt0123456".to_vec(),
        };
        let out = k.derive(b"password").unwrap();
        assert_eq!(
            hex::encode(&out[..]),
            "b6136e312fb50658fd26f4889b50588398106578bd7fc29b2f9c21d46bd6f9f3"
        );
    }

    #[test]
    fn pbkdf2_matches_independent_implementation() {
        // Python hashlib.pbkdf2_hmac('sha256', b'pin-1234', b'0123456789abcdef', 1000, 32).
        let k = StoredKdf {
            params: KdfParams::Pbkdf2Sha256 { iterations: 1000 },
            salt: b"0123456789abcdef".to_vec(),
        };
        assert_eq!(
            hex::encode(&k.derive(b"pin-1234").unwrap()[..]),
            "9cf5b92b30f0a0c0370eb6bff985462caecd7b674a4e4f1ff6edd6c8546b6abf"
        );
    }

    #[test]
    fn encode_decode_round_trip_and_strictness() {
        for params in [
            KdfParams::Argon2id {
                m_kib: 64,
                t: 1,
                p: 1,
            },
            KdfParams::Pbkdf2Sha256 { iterations: 1000 },
        ] {
            let k = StoredKdf::new(&params).unwrap();
            let enc = k.encode();
            assert_eq!(StoredKdf::decode(&enc).unwrap(), k);
            for n in 0..enc.len() {
                assert!(StoredKdf::decode(&enc[..n]).is_err());
            }
            let mut long = enc.clone();
            long.push(0);
            assert!(StoredKdf::decode(&long).is_err());
        }
        // Out-of-range parameters in a stored block are refused before any derivation.
        let mut huge = StoredKdf::new(&KdfParams::Argon2id {
            m_kib: 64,
            t: 1,
            p: 1,
        })
        .unwrap()
        .encode();
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(StoredKdf::decode(&huge).is_err());
    }

    #[test]
    fn upgrade_rules_never_lower() {
        let weak = KdfParams::Argon2id {
            m_kib: 64,
            t: 1,
            p: 1,
        };
        assert!(weak.needs_upgrade_to(&ARGON2_FLOOR));
        assert!(!ARGON2_FLOOR.needs_upgrade_to(&weak));
        assert!(!ARGON2_FLOOR.needs_upgrade_to(&ARGON2_FLOOR));
        assert!(ARGON2_FLOOR.needs_upgrade_to(&PBKDF2_FLOOR));
        assert!(
            !KdfParams::Pbkdf2Sha256 {
                iterations: 700_000
            }
            .needs_upgrade_to(&PBKDF2_FLOOR)
        );
        assert!(weak.below_floor() && !ARGON2_FLOOR.below_floor());
        assert!(
            KdfParams::Argon2id {
                m_kib: 4,
                t: 1,
                p: 1
            }
            .validate()
            .is_err()
        );
    }
}
