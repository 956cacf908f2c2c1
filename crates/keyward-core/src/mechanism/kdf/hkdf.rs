//! HKDF (RFC 5869; PKCS#11 3.0 Current Mechanisms §2.43): CKM_HKDF_DERIVE, CKM_HKDF_DATA and
//! CKM_HKDF_KEY_GEN.
//!
//! Decisions the spec leaves open:
//! - The spec asks the input key to be as long as the hash; RFC 5869 and its test vectors take
//!   input keying material of any length, so any non-empty CKK_GENERIC_SECRET or CKK_HKDF key
//!   is accepted. A data object cannot be the input: C_DeriveKey's base key needs CKA_DERIVE.
//! - Without CKA_VALUE_LEN (and without a key type of fixed length) the output is one hash
//!   long, for extract-and-expand and expand-only as for extract-only.
//! - CKF_HKDF_SALT_DATA with an empty salt is the RFC's "not provided": HashLen zero bytes.
//! - A salt key is a CKK_HKDF or CKK_GENERIC_SECRET key (see the family's rules for keys named
//!   in parameters).

use cryptoki_sys::*;
use keyward_ossl::digest::DigestAlg;
use zeroize::Zeroizing;

use super::{derived, digest_of, hmac_key, mac, named_key, ulong, value_of};
use crate::error::{Code, Result};
use crate::mechanism::digest::no_params;
use crate::mechanism::{Bytes, KeyLookup, Mech, Registry, derived_key_len, random};
use crate::object::Object;
use crate::types::{AttrValue, Attrs, HkdfSalt, MechParams, Mechanism, MechanismInfo};

/// The base key types (spec: CKK_HKDF or CKK_GENERIC_SECRET).
const KEY_TYPES: &[CK_KEY_TYPE] = &[CKK_GENERIC_SECRET, CKK_HKDF];

/// Largest CKK_HKDF key CKM_HKDF_KEY_GEN makes: the longest hash output; a longer key adds
/// nothing to any PRF offered.
const MAX_GEN_LEN: usize = 64;

/// Longest input key accepted, in bytes.
const MAX_KEY_LEN: usize = 4096;

/// HKDF-Extract(salt, ikm) = HMAC-Hash(salt, ikm).
pub(crate) fn extract(alg: DigestAlg, salt: &[u8], ikm: &[u8]) -> Result<Bytes> {
    let zeros = vec![0u8; alg.output_len()];
    let salt = if salt.is_empty() { &zeros[..] } else { salt };
    mac(&hmac_key(alg, salt)?, &[ikm])
}

/// HKDF-Expand(prk, info, len): T(1) | T(2) | ... truncated to `len`, at most 255 blocks.
pub(crate) fn expand(alg: DigestAlg, prk: &[u8], info: &[u8], len: usize) -> Result<Bytes> {
    let h = alg.output_len();
    if len == 0 || len > 255 * h {
        return Err(Code::AttributeValueInvalid.err(format!(
            "HKDF with this hash makes 1 to {} bytes, not {len}",
            255 * h
        )));
    }
    let key = hmac_key(alg, prk)?;
    let mut out = Zeroizing::new(Vec::with_capacity(len + h));
    let mut t: Bytes = Zeroizing::new(Vec::new());
    let mut i = 1u8;
    while out.len() < len {
        t = mac(&key, &[&t, info, &[i]])?;
        out.extend_from_slice(&t);
        i = i.wrapping_add(1);
    }
    out.truncate(len);
    Ok(out)
}

/// CKM_HKDF_DERIVE and CKM_HKDF_DATA.
struct HkdfDerive;

impl Mech for HkdfDerive {
    fn info(&self) -> MechanismInfo {
        MechanismInfo {
            min_key_size: 1,
            max_key_size: ulong(MAX_KEY_LEN),
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
        let MechParams::Hkdf {
            extract: do_extract,
            expand: do_expand,
            prf,
            salt,
            info,
        } = &mech.params
        else {
            return Err(Code::MechanismParamInvalid.err("HKDF needs CK_HKDF_PARAMS"));
        };
        let alg = digest_of(*prf).ok_or_else(|| {
            Code::MechanismParamInvalid.err(format!("prfHashMechanism {prf:#x} is not supported"))
        })?;
        if !do_extract && !do_expand {
            return Err(Code::MechanismParamInvalid.err("neither bExtract nor bExpand is set"));
        }
        let ikm = value_of(base)?;
        if ikm.len() > MAX_KEY_LEN {
            return Err(
                Code::KeySizeRange.err(format!("an HKDF key is at most {MAX_KEY_LEN} bytes"))
            );
        }
        let h = alg.output_len();
        let len = derived_key_len(template, Some(h))?;
        if !do_expand && len != h {
            return Err(Code::TemplateInconsistent
                .err(format!("HKDF-Extract makes exactly {h} bytes, not {len}")));
        }
        let value = if *do_extract {
            let prk = match salt {
                HkdfSalt::Null => extract(alg, &[], ikm)?,
                HkdfSalt::Data(s) => extract(alg, s, ikm)?,
                HkdfSalt::Key(handle) => {
                    let k = named_key(keys, *handle, mech, KEY_TYPES)?;
                    extract(alg, value_of(&k)?, ikm)?
                }
            };
            if *do_expand {
                expand(alg, &prk, info, len)?
            } else {
                prk
            }
        } else {
            expand(alg, ikm, info, len)?
        };
        Ok(derived(value))
    }
}

/// CKM_HKDF_KEY_GEN: CKA_VALUE_LEN random bytes as a CKK_HKDF key.
struct HkdfKeyGen;

impl Mech for HkdfKeyGen {
    fn info(&self) -> MechanismInfo {
        MechanismInfo {
            min_key_size: 1,
            max_key_size: ulong(MAX_GEN_LEN),
            flags: CKF_GENERATE,
        }
    }

    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        &[CKK_HKDF]
    }

    fn generate_key(&self, mech: &Mechanism, template: &Attrs) -> Result<Attrs> {
        no_params(mech)?;
        if template
            .get_ulong(CKA_KEY_TYPE)
            .is_some_and(|t| t != CKK_HKDF)
        {
            return Err(Code::TemplateInconsistent.err("CKM_HKDF_KEY_GEN makes CKK_HKDF keys"));
        }
        let len = template
            .get_ulong(CKA_VALUE_LEN)
            .ok_or_else(|| Code::TemplateIncomplete.err("CKM_HKDF_KEY_GEN needs CKA_VALUE_LEN"))?;
        let len = usize::try_from(len)
            .ok()
            .filter(|l| (1..=MAX_GEN_LEN).contains(l))
            .ok_or_else(|| {
                Code::AttributeValueInvalid.err(format!(
                    "CKA_VALUE_LEN of an HKDF key is 1 to {MAX_GEN_LEN}"
                ))
            })?;
        let mut out = Attrs::new();
        out.set(CKA_KEY_TYPE, AttrValue::Ulong(CKK_HKDF));
        out.set(CKA_VALUE, AttrValue::Bytes(random::secret(len)?));
        out.set(CKA_VALUE_LEN, AttrValue::Ulong(ulong(len)));
        Ok(out)
    }
}

pub(super) fn register(reg: &mut Registry) {
    reg.add(CKM_HKDF_DERIVE, Box::new(HkdfDerive));
    reg.add(CKM_HKDF_DATA, Box::new(HkdfDerive));
    reg.add(CKM_HKDF_KEY_GEN, Box::new(HkdfKeyGen));
}
