//! Generic secrets and HMAC (PKCS#11 3.0 §6.20–6.26, §6.7): CKM_GENERIC_SECRET_KEY_GEN and
//! CKM_SHA*_HMAC / CKM_SHA3_*_HMAC with their *_GENERAL forms, signing and verification,
//! single- and multi-part; plus the MAC operation AES-CMAC shares.

use std::any::Any;
use std::sync::{Arc, OnceLock};

use cryptoki_sys::*;
use keyward_ossl::digest::DigestAlg;
use keyward_ossl::mac::{Mac, MacKey};

use crate::error::{Code, Result};
use crate::mechanism::digest::no_params;
use crate::mechanism::{Bytes, Mech, Registry, SignOp, VerifyOp, random};
use crate::object::Object;
use crate::types::{Attrs, MechParams, Mechanism, MechanismInfo};

/// Largest generic secret generated or HMAC key accepted, in bytes (longer HMAC keys are
/// hashed down anyway; the bound keeps a template from asking for megabytes).
const MAX_KEY_LEN: usize = 4096;

/// What CKM_GENERIC_SECRET_KEY_GEN makes: a generic secret, or the key type naming one HMAC
/// hash when the template asks for it.
const HMAC_KEY_TYPES: [CK_KEY_TYPE; 12] = [
    CKK_GENERIC_SECRET,
    CKK_SHA_1_HMAC,
    CKK_SHA224_HMAC,
    CKK_SHA256_HMAC,
    CKK_SHA384_HMAC,
    CKK_SHA512_HMAC,
    CKK_SHA512_224_HMAC,
    CKK_SHA512_256_HMAC,
    CKK_SHA3_224_HMAC,
    CKK_SHA3_256_HMAC,
    CKK_SHA3_384_HMAC,
    CKK_SHA3_512_HMAC,
];

/// The HMAC mechanisms: plain, general, digest, and the key types accepted (a generic
/// secret, or the key type naming the same hash).
const HMACS: [(
    CK_MECHANISM_TYPE,
    CK_MECHANISM_TYPE,
    DigestAlg,
    &[CK_KEY_TYPE],
); 11] = [
    (
        CKM_SHA_1_HMAC,
        CKM_SHA_1_HMAC_GENERAL,
        DigestAlg::Sha1,
        &[CKK_GENERIC_SECRET, CKK_SHA_1_HMAC],
    ),
    (
        CKM_SHA224_HMAC,
        CKM_SHA224_HMAC_GENERAL,
        DigestAlg::Sha224,
        &[CKK_GENERIC_SECRET, CKK_SHA224_HMAC],
    ),
    (
        CKM_SHA256_HMAC,
        CKM_SHA256_HMAC_GENERAL,
        DigestAlg::Sha256,
        &[CKK_GENERIC_SECRET, CKK_SHA256_HMAC],
    ),
    (
        CKM_SHA384_HMAC,
        CKM_SHA384_HMAC_GENERAL,
        DigestAlg::Sha384,
        &[CKK_GENERIC_SECRET, CKK_SHA384_HMAC],
    ),
    (
        CKM_SHA512_HMAC,
        CKM_SHA512_HMAC_GENERAL,
        DigestAlg::Sha512,
        &[CKK_GENERIC_SECRET, CKK_SHA512_HMAC],
    ),
    (
        CKM_SHA512_224_HMAC,
        CKM_SHA512_224_HMAC_GENERAL,
        DigestAlg::Sha512_224,
        &[CKK_GENERIC_SECRET, CKK_SHA512_224_HMAC],
    ),
    (
        CKM_SHA512_256_HMAC,
        CKM_SHA512_256_HMAC_GENERAL,
        DigestAlg::Sha512_256,
        &[CKK_GENERIC_SECRET, CKK_SHA512_256_HMAC],
    ),
    (
        CKM_SHA3_224_HMAC,
        CKM_SHA3_224_HMAC_GENERAL,
        DigestAlg::Sha3_224,
        &[CKK_GENERIC_SECRET, CKK_SHA3_224_HMAC],
    ),
    (
        CKM_SHA3_256_HMAC,
        CKM_SHA3_256_HMAC_GENERAL,
        DigestAlg::Sha3_256,
        &[CKK_GENERIC_SECRET, CKK_SHA3_256_HMAC],
    ),
    (
        CKM_SHA3_384_HMAC,
        CKM_SHA3_384_HMAC_GENERAL,
        DigestAlg::Sha3_384,
        &[CKK_GENERIC_SECRET, CKK_SHA3_384_HMAC],
    ),
    (
        CKM_SHA3_512_HMAC,
        CKM_SHA3_512_HMAC_GENERAL,
        DigestAlg::Sha3_512,
        &[CKK_GENERIC_SECRET, CKK_SHA3_512_HMAC],
    ),
];

/// The MAC length a mechanism asks for: `full` without parameters, or for a *_GENERAL
/// mechanism the CK_MAC_GENERAL_PARAMS length, 1 to `full`.
pub(crate) fn mac_len(mech: &Mechanism, general: bool, full: usize) -> Result<usize> {
    if !general {
        no_params(mech)?;
        return Ok(full);
    }
    match &mech.params {
        MechParams::Ulong(l) => usize::try_from(*l)
            .ok()
            .filter(|l| (1..=full).contains(l))
            .ok_or_else(|| {
                Code::MechanismParamInvalid.err(format!("MAC length {l} (1 to {full})"))
            }),
        _ => Err(Code::MechanismParamInvalid.err(format!(
            "mechanism {:#x} needs CK_MAC_GENERAL_PARAMS",
            mech.mech
        ))),
    }
}

/// The key's cached form of type `T`, built on first use; built afresh (not cached) when the
/// object's cache already holds another type, so a key shared across families still works.
pub(crate) fn cached_or_fresh<T, F>(key: &Object, build: F) -> Result<Arc<T>>
where
    T: Any + Send + Sync,
    F: Fn(&Attrs) -> Result<T>,
{
    match key.cached(&build) {
        Ok(v) => Ok(v),
        Err(e) if e.code() == Code::GeneralError => Ok(Arc::new(build(key.attrs())?)),
        Err(e) => Err(e),
    }
}

/// A MAC signature or verification in progress, producing `len` bytes of the MAC.
pub(crate) struct MacOp {
    mac: Mac,
    len: usize,
}

impl MacOp {
    pub(crate) fn new(key: &MacKey, len: usize) -> Result<MacOp> {
        Ok(MacOp {
            mac: key.start()?,
            len,
        })
    }
}

impl SignOp for MacOp {
    fn sig_len(&self) -> usize {
        self.len
    }

    fn update(&mut self, data: &[u8]) -> Result<()> {
        Ok(self.mac.update(data)?)
    }

    fn finish(&mut self) -> Result<Bytes> {
        let mut full = self.mac.finish()?;
        full.truncate(self.len);
        Ok(full)
    }
}

impl VerifyOp for MacOp {
    fn sig_len(&self) -> usize {
        self.len
    }

    fn update(&mut self, data: &[u8]) -> Result<()> {
        Ok(self.mac.update(data)?)
    }

    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        if signature.len() != self.len {
            return Err(Code::SignatureLenRange.err(format!(
                "the MAC is {} bytes, not {}",
                self.len,
                signature.len()
            )));
        }
        if self.mac.verify(signature)? {
            Ok(())
        } else {
            Err(Code::SignatureInvalid.err("the MAC does not match"))
        }
    }
}

/// A generic secret's HMAC templates, one per hash, each built on first use.
struct HmacKeys {
    value: zeroize::Zeroizing<Vec<u8>>,
    per_alg: [OnceLock<MacKey>; DigestAlg::ALL.len()],
}

impl HmacKeys {
    fn new(attrs: &Attrs) -> Result<HmacKeys> {
        let v = attrs
            .get_bytes(CKA_VALUE)
            .ok_or_else(|| Code::KeyTypeInconsistent.err("secret key without CKA_VALUE"))?;
        if v.is_empty() || v.len() > MAX_KEY_LEN {
            return Err(Code::KeySizeRange.err(format!(
                "an HMAC key is 1 to {MAX_KEY_LEN} bytes, not {}",
                v.len()
            )));
        }
        Ok(HmacKeys {
            value: zeroize::Zeroizing::new(v.to_vec()),
            per_alg: [const { OnceLock::new() }; DigestAlg::ALL.len()],
        })
    }

    fn get(&self, alg: DigestAlg) -> Result<&MacKey> {
        let i = DigestAlg::ALL
            .iter()
            .position(|a| *a == alg)
            .ok_or_else(|| Code::GeneralError.err("unknown digest"))?;
        let cell = &self.per_alg[i];
        if let Some(k) = cell.get() {
            return Ok(k);
        }
        // A racing thread may store its own template first; both are equivalent.
        let _ = cell.set(MacKey::hmac(alg, &self.value)?);
        cell.get()
            .ok_or_else(|| Code::GeneralError.err("HMAC key cache is empty after initialisation"))
    }
}

struct HmacMech {
    alg: DigestAlg,
    general: bool,
    key_types: &'static [CK_KEY_TYPE],
}

impl HmacMech {
    fn start(&self, mech: &Mechanism, key: &Object) -> Result<MacOp> {
        let len = mac_len(mech, self.general, self.alg.output_len())?;
        let keys = cached_or_fresh(key, HmacKeys::new)?;
        MacOp::new(keys.get(self.alg)?, len)
    }
}

impl Mech for HmacMech {
    fn info(&self) -> MechanismInfo {
        MechanismInfo {
            min_key_size: 1,
            max_key_size: MAX_KEY_LEN as CK_ULONG,
            flags: CKF_SIGN | CKF_VERIFY,
        }
    }

    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        self.key_types
    }

    fn sign_init(&self, mech: &Mechanism, key: &Object) -> Result<Box<dyn SignOp>> {
        Ok(Box::new(self.start(mech, key)?))
    }

    fn verify_init(&self, mech: &Mechanism, key: &Object) -> Result<Box<dyn VerifyOp>> {
        Ok(Box::new(self.start(mech, key)?))
    }
}

pub(crate) fn register(reg: &mut Registry) {
    reg.add(
        CKM_GENERIC_SECRET_KEY_GEN,
        Box::new(random::SecretKeyGen {
            name: "CKM_GENERIC_SECRET_KEY_GEN",
            key_types: &HMAC_KEY_TYPES,
            lens: &[],
            min: 1,
            max: MAX_KEY_LEN,
            default_len: None,
            info_in_bits: true,
        }),
    );
    for (plain, general, alg, key_types) in HMACS {
        reg.add(
            plain,
            Box::new(HmacMech {
                alg,
                general: false,
                key_types,
            }),
        );
        reg.add(
            general,
            Box::new(HmacMech {
                alg,
                general: true,
                key_types,
            }),
        );
    }
}

#[cfg(test)]
mod tests;
