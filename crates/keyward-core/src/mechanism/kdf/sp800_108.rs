//! The NIST SP 800-108 counter-mode KDF (PKCS#11 3.0 Current Mechanisms §2.42):
//! CKM_SP800_108_COUNTER_KDF with HMAC (SHA-1, SHA-2, SHA-3) or AES-CMAC as the PRF.
//!
//! Each PRF input is the caller's CK_PRF_DATA_PARAM list in order: the iteration counter
//! (exactly once), byte arrays, at most one DKM length (in bits, as SP 800-108 writes L) and
//! the values of named keys. Limits: no additional derived keys (the ABI layer refuses
//! ulAdditionalDerivedKeys > 0: C_DeriveKey returns one handle); the feedback and
//! double-pipeline modes are not offered.

use cryptoki_sys::*;
use keyward_ossl::digest::DigestAlg;
use keyward_ossl::mac::MacKey;
use zeroize::Zeroizing;

use super::{VALUE_KEY_TYPES, derived, hmac_key, named_key, ulong, value_of};
use crate::error::{Code, Result};
use crate::mechanism::{KeyLookup, Mech, Registry, derived_key_len};
use crate::object::Object;
use crate::types::{Attrs, MechParams, Mechanism, MechanismInfo, PrfData};

/// Most CK_PRF_DATA_PARAM entries accepted (the ABI layer applies the same bound).
pub(crate) const MAX_DATA_PARAMS: usize = 32;

/// Longest base key and longest derived key, in bytes.
const MAX_KEY_LEN: usize = 4096;

/// The HMAC PRFs: mechanism, digest and the per-hash key type besides CKK_GENERIC_SECRET.
const HMAC_PRFS: [(CK_MECHANISM_TYPE, DigestAlg, CK_KEY_TYPE); 9] = [
    (CKM_SHA_1_HMAC, DigestAlg::Sha1, CKK_SHA_1_HMAC),
    (CKM_SHA224_HMAC, DigestAlg::Sha224, CKK_SHA224_HMAC),
    (CKM_SHA256_HMAC, DigestAlg::Sha256, CKK_SHA256_HMAC),
    (CKM_SHA384_HMAC, DigestAlg::Sha384, CKK_SHA384_HMAC),
    (CKM_SHA512_HMAC, DigestAlg::Sha512, CKK_SHA512_HMAC),
    (CKM_SHA3_224_HMAC, DigestAlg::Sha3_224, CKK_SHA3_224_HMAC),
    (CKM_SHA3_256_HMAC, DigestAlg::Sha3_256, CKK_SHA3_256_HMAC),
    (CKM_SHA3_384_HMAC, DigestAlg::Sha3_384, CKK_SHA3_384_HMAC),
    (CKM_SHA3_512_HMAC, DigestAlg::Sha3_512, CKK_SHA3_512_HMAC),
];

const KEY_TYPES: &[CK_KEY_TYPE] = &[
    CKK_GENERIC_SECRET,
    CKK_AES,
    CKK_SHA_1_HMAC,
    CKK_SHA224_HMAC,
    CKK_SHA256_HMAC,
    CKK_SHA384_HMAC,
    CKK_SHA512_HMAC,
    CKK_SHA3_224_HMAC,
    CKK_SHA3_256_HMAC,
    CKK_SHA3_384_HMAC,
    CKK_SHA3_512_HMAC,
];

/// `v` in `bits` (a multiple of 8, at most 64) big- or little-endian.
fn encode(v: u64, bits: CK_ULONG, little_endian: bool) -> Vec<u8> {
    let n = usize::try_from(bits / 8).unwrap_or(8).min(8);
    let mut out = v.to_be_bytes()[8 - n..].to_vec();
    if little_endian {
        out.reverse();
    }
    out
}

/// Whether `v` fits in `bits` bits.
fn fits(v: u64, bits: CK_ULONG) -> bool {
    bits >= 64 || v >> bits == 0
}

/// The PRF keyed with the base key, checked against the PRF's key types.
fn prf_key(prf: CK_MECHANISM_TYPE, base: &Object) -> Result<MacKey> {
    let value = value_of(base)?;
    if value.len() > MAX_KEY_LEN {
        return Err(Code::KeySizeRange.err(format!("a base key is at most {MAX_KEY_LEN} bytes")));
    }
    let key_type = base.key_type();
    if prf == CKM_AES_CMAC {
        if key_type != Some(CKK_AES) {
            return Err(Code::KeyTypeInconsistent.err("an AES-CMAC PRF needs an AES key"));
        }
        if ![16, 24, 32].contains(&value.len()) {
            return Err(Code::KeySizeRange.err("an AES key is 16, 24 or 32 bytes"));
        }
        return Ok(MacKey::aes_cmac(value)?);
    }
    let (_, alg, hmac_type) = HMAC_PRFS
        .iter()
        .find(|(m, ..)| *m == prf)
        .ok_or_else(|| Code::MechanismParamInvalid.err(format!("PRF {prf:#x} is not supported")))?;
    if key_type != Some(CKK_GENERIC_SECRET) && key_type != Some(*hmac_type) {
        return Err(Code::KeyTypeInconsistent.err(format!(
            "PRF {prf:#x} needs a generic secret or its HMAC key type"
        )));
    }
    hmac_key(*alg, value)
}

/// One piece of the PRF input: the counter, or bytes that are the same in every iteration.
enum Part {
    Counter { little_endian: bool, bits: CK_ULONG },
    Fixed(Zeroizing<Vec<u8>>),
}

struct CounterKdf;

impl Mech for CounterKdf {
    fn info(&self) -> MechanismInfo {
        // The spec gives this mechanism's sizes in bits.
        MechanismInfo {
            min_key_size: 8,
            max_key_size: ulong(MAX_KEY_LEN * 8),
            flags: CKF_DERIVE,
        }
    }

    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        KEY_TYPES
    }

    fn derive_key(
        &self,
        mech: &Mechanism,
        base: &Object,
        template: &Attrs,
        keys: &dyn KeyLookup,
    ) -> Result<Attrs> {
        let MechParams::Sp800108 { prf, data } = &mech.params else {
            return Err(Code::MechanismParamInvalid
                .err("CKM_SP800_108_COUNTER_KDF needs CK_SP800_108_KDF_PARAMS"));
        };
        let bad = |why: &str| Code::MechanismParamInvalid.err(why.to_owned());
        if data.len() > MAX_DATA_PARAMS {
            return Err(bad("too many data parameters"));
        }
        let counters = data
            .iter()
            .filter(|d| matches!(d, PrfData::Counter { .. }))
            .count();
        if counters != 1 {
            return Err(bad("the iteration variable must appear exactly once"));
        }
        let dkms = data
            .iter()
            .filter(|d| matches!(d, PrfData::DkmLength { .. }))
            .count();
        if dkms > 1 {
            return Err(bad("the DKM length may appear at most once"));
        }
        let key = prf_key(*prf, base)?;
        let h = key.size();
        let len = derived_key_len(template, None)?;
        if len > MAX_KEY_LEN {
            return Err(Code::AttributeValueInvalid.err(format!(
                "this KDF makes keys of at most {MAX_KEY_LEN} bytes"
            )));
        }
        let n = len.div_ceil(h);
        let n64 = u64::try_from(n).map_err(|_| bad("length out of range"))?;
        let h64 = u64::try_from(h).map_err(|_| bad("length out of range"))?;
        let mut parts = Vec::with_capacity(data.len());
        for d in data {
            parts.push(match d {
                PrfData::Counter {
                    little_endian,
                    bits,
                } => {
                    if ![8, 16, 24, 32].contains(bits) {
                        return Err(bad("the counter is 8, 16, 24 or 32 bits wide"));
                    }
                    if !fits(n64, *bits) {
                        return Err(Code::AttributeValueInvalid
                            .err("the key is too long for the counter's width"));
                    }
                    Part::Counter {
                        little_endian: *little_endian,
                        bits: *bits,
                    }
                }
                PrfData::DkmLength {
                    method,
                    little_endian,
                    bits,
                } => {
                    if *bits == 0 || *bits > 64 || bits % 8 != 0 {
                        return Err(bad("the DKM length is 8 to 64 bits wide, in whole bytes"));
                    }
                    let bytes = match *method {
                        // Without additional keys, the one key is all there is.
                        CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS => {
                            u64::try_from(len).map_err(|_| bad("length out of range"))?
                        }
                        CK_SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS => n64.saturating_mul(h64),
                        _ => return Err(bad("unknown DKM length method")),
                    };
                    let dkm_bits = bytes.saturating_mul(8);
                    if !fits(dkm_bits, *bits) {
                        return Err(bad("the DKM length does not fit in its width"));
                    }
                    Part::Fixed(Zeroizing::new(encode(dkm_bits, *bits, *little_endian)))
                }
                PrfData::Bytes(b) => {
                    if b.is_empty() {
                        return Err(bad("a byte array is empty"));
                    }
                    Part::Fixed(Zeroizing::new(b.clone()))
                }
                PrfData::Key(handle) => {
                    let k = named_key(keys, *handle, mech, VALUE_KEY_TYPES)?;
                    Part::Fixed(Zeroizing::new(value_of(&k)?.to_vec()))
                }
            });
        }
        let mut out = Zeroizing::new(Vec::with_capacity(n * h));
        for i in 1..=n64 {
            let mut m = key.start()?;
            for p in &parts {
                match p {
                    Part::Counter {
                        little_endian,
                        bits,
                    } => m.update(&encode(i, *bits, *little_endian))?,
                    Part::Fixed(b) => m.update(b)?,
                }
            }
            out.extend_from_slice(&m.finish()?);
        }
        out.truncate(len);
        Ok(derived(out))
    }
}

pub(super) fn register(reg: &mut Registry) {
    reg.add(CKM_SP800_108_COUNTER_KDF, Box::new(CounterKdf));
}
