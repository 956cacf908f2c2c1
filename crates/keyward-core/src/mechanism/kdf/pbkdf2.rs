//! PBKDF2 (RFC 8018 §5.2; PKCS#11 3.0 Current Mechanisms §2.40): CKM_PKCS5_PBKD2, a key
//! *generation* mechanism that derives a secret key from a password.
//!
//! Limits against denial of service (one call must not hold a core for minutes): at most
//! [`MAX_ITERATIONS`] iterations, and at most [`MAX_WORK`] HMAC computations in all
//! (iterations × output blocks). Only CKZ_SALT_SPECIFIED salts and the HMAC PRFs are offered.

use cryptoki_sys::*;
use keyward_ossl::digest::DigestAlg;
use zeroize::Zeroizing;

use super::{hmac_key, mac, ulong};
use crate::error::{Code, Result};
use crate::mechanism::{Bytes, Mech, Registry, derived_key_len};
use crate::types::{AttrValue, Attrs, MechParams, Mechanism, MechanismInfo};

/// Most iterations one call may ask for.
pub(crate) const MAX_ITERATIONS: CK_ULONG = 10_000_000;

/// Most HMAC computations one call may cost (iterations × output blocks).
pub(crate) const MAX_WORK: CK_ULONG = 20_000_000;

/// Longest key made, in bytes.
const MAX_KEY_LEN: usize = 4096;

/// Longest password accepted, in bytes.
const MAX_PASSWORD_LEN: usize = 65535;

/// The HMAC digest of a CKP_PKCS5_PBKD2_HMAC_* PRF.
fn prf_digest(prf: CK_ULONG) -> Option<DigestAlg> {
    Some(match prf {
        CKP_PKCS5_PBKD2_HMAC_SHA1 => DigestAlg::Sha1,
        CKP_PKCS5_PBKD2_HMAC_SHA224 => DigestAlg::Sha224,
        CKP_PKCS5_PBKD2_HMAC_SHA256 => DigestAlg::Sha256,
        CKP_PKCS5_PBKD2_HMAC_SHA384 => DigestAlg::Sha384,
        CKP_PKCS5_PBKD2_HMAC_SHA512 => DigestAlg::Sha512,
        CKP_PKCS5_PBKD2_HMAC_SHA512_224 => DigestAlg::Sha512_224,
        CKP_PKCS5_PBKD2_HMAC_SHA512_256 => DigestAlg::Sha512_256,
        _ => return None,
    })
}

/// PBKDF2 with HMAC-`alg`: `len` bytes from `password`, `salt` and `iterations` (≥ 1).
pub(crate) fn pbkdf2(
    alg: DigestAlg,
    password: &[u8],
    salt: &[u8],
    iterations: CK_ULONG,
    len: usize,
) -> Result<Bytes> {
    let key = hmac_key(alg, password)?;
    let h = alg.output_len();
    let mut out = Zeroizing::new(Vec::with_capacity(len + h));
    let mut block: u32 = 1;
    while out.len() < len {
        // U_1 = PRF(P, S || INT(i)); U_j = PRF(P, U_{j-1}); T_i = U_1 xor ... xor U_c.
        let mut u = mac(&key, &[salt, &block.to_be_bytes()])?;
        let mut t = u.clone();
        for _ in 1..iterations {
            u = mac(&key, &[&u])?;
            t.iter_mut().zip(u.iter()).for_each(|(a, b)| *a ^= b);
        }
        out.extend_from_slice(&t);
        block = block
            .checked_add(1)
            .ok_or_else(|| Code::AttributeValueInvalid.err("PBKDF2 output too long"))?;
    }
    out.truncate(len);
    Ok(out)
}

struct Pbkdf2;

impl Mech for Pbkdf2 {
    fn info(&self) -> MechanismInfo {
        MechanismInfo {
            min_key_size: 1,
            max_key_size: ulong(MAX_KEY_LEN),
            flags: CKF_GENERATE,
        }
    }

    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        &[CKK_GENERIC_SECRET, CKK_AES, CKK_HKDF]
    }

    fn generate_key(&self, mech: &Mechanism, template: &Attrs) -> Result<Attrs> {
        let MechParams::Pbkdf2 {
            salt_source,
            salt,
            iterations,
            prf,
            password,
        } = &mech.params
        else {
            return Err(
                Code::MechanismParamInvalid.err("CKM_PKCS5_PBKD2 needs CK_PKCS5_PBKD2_PARAMS2")
            );
        };
        if *salt_source != CKZ_SALT_SPECIFIED {
            return Err(Code::MechanismParamInvalid.err(format!(
                "salt source {salt_source:#x} (only CKZ_SALT_SPECIFIED)"
            )));
        }
        let alg = prf_digest(*prf).ok_or_else(|| {
            Code::MechanismParamInvalid.err(format!("PBKDF2 PRF {prf:#x} is not supported"))
        })?;
        if *iterations == 0 || *iterations > MAX_ITERATIONS {
            return Err(Code::MechanismParamInvalid.err(format!(
                "PBKDF2 iterations are 1 to {MAX_ITERATIONS}, not {iterations}"
            )));
        }
        if password.len() > MAX_PASSWORD_LEN {
            return Err(Code::MechanismParamInvalid
                .err(format!("a password is at most {MAX_PASSWORD_LEN} bytes")));
        }
        let key_type = template
            .get_ulong(CKA_KEY_TYPE)
            .unwrap_or(CKK_GENERIC_SECRET);
        if !self.key_types().contains(&key_type) {
            return Err(Code::TemplateInconsistent.err(format!(
                "CKM_PKCS5_PBKD2 cannot make keys of type {key_type:#x}"
            )));
        }
        let h = alg.output_len();
        let len = derived_key_len(template, Some(h))?;
        if len > MAX_KEY_LEN {
            return Err(Code::AttributeValueInvalid.err(format!(
                "CKM_PKCS5_PBKD2 makes keys of at most {MAX_KEY_LEN} bytes"
            )));
        }
        let blocks = ulong(len.div_ceil(h));
        if iterations.saturating_mul(blocks) > MAX_WORK {
            return Err(Code::MechanismParamInvalid.err(format!(
                "{iterations} iterations for {blocks} blocks exceed {MAX_WORK} HMAC computations"
            )));
        }
        let value = pbkdf2(alg, password, salt, *iterations, len)?;
        let mut out = Attrs::new();
        out.set(CKA_KEY_TYPE, AttrValue::Ulong(key_type));
        out.set(CKA_VALUE, AttrValue::Bytes(value));
        out.set(CKA_VALUE_LEN, AttrValue::Ulong(ulong(len)));
        Ok(out)
    }
}

pub(super) fn register(reg: &mut Registry) {
    reg.add(CKM_PKCS5_PBKD2, Box::new(Pbkdf2));
}
