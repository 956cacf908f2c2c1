//! RSA keys and PKCS#1 v1.5 signatures (PKCS#11 3.0 §6.1): CKM_RSA_PKCS_KEY_PAIR_GEN,
//! CKM_RSA_PKCS (sign and verify only) and CKM_SHA224/256/384/512_RSA_PKCS.
//!
//! CKM_RSA_PKCS decryption is deliberately absent: PKCS#1 v1.5 decryption is a padding
//! oracle unless it uses implicit rejection.

use std::sync::Arc;

use cryptoki_sys::*;
use keyward_ossl::digest::{Digest, DigestAlg, digest_info};
use keyward_ossl::pkey::{KeyKind, PKey, RsaComponents, RsaCrt};
use zeroize::Zeroizing;

use crate::error::{Code, Result};
use crate::mechanism::digest::no_params;
use crate::mechanism::{Bytes, Mech, Registry, SignOp, VerifyOp};
use crate::object::Object;
use crate::types::{AttrValue, Attrs, Mechanism, MechanismInfo};

/// Modulus sizes a new key may have.
const GEN_MIN_BITS: usize = 2048;
const GEN_MAX_BITS: usize = 4096;
/// Modulus sizes an existing key may have to be used.
const USE_MIN_BITS: usize = 2048;
const USE_MAX_BITS: usize = 16384;
/// PKCS#1 v1.5 padding takes at least 11 bytes of the block.
const PKCS1_OVERHEAD: usize = 11;
/// OpenSSL refuses larger public exponents for large moduli; 64 bits covers every real use.
const MAX_EXPONENT_LEN: usize = 8;

fn strip(b: &[u8]) -> &[u8] {
    let skip = b.iter().take_while(|&&x| x == 0).count();
    &b[skip..]
}

fn required<'a>(attrs: &'a Attrs, ty: CK_ATTRIBUTE_TYPE, what: &str) -> Result<&'a [u8]> {
    attrs
        .get_bytes(ty)
        .filter(|v| !strip(v).is_empty())
        .ok_or_else(|| Code::TemplateIncomplete.err(format!("RSA key without {what}")))
}

fn build_rsa(attrs: &Attrs) -> Result<PKey> {
    let n = required(attrs, CKA_MODULUS, "CKA_MODULUS")?;
    let e = required(attrs, CKA_PUBLIC_EXPONENT, "CKA_PUBLIC_EXPONENT")?;
    let bits = strip(n).len() * 8;
    if !(USE_MIN_BITS - 7..=USE_MAX_BITS).contains(&bits) {
        return Err(Code::KeySizeRange.err(format!("RSA modulus of about {bits} bits")));
    }
    let key = match attrs.get_ulong(CKA_CLASS) {
        Some(CKO_PRIVATE_KEY) => {
            let d = required(attrs, CKA_PRIVATE_EXPONENT, "CKA_PRIVATE_EXPONENT")?;
            let crt_attrs = [
                CKA_PRIME_1,
                CKA_PRIME_2,
                CKA_EXPONENT_1,
                CKA_EXPONENT_2,
                CKA_COEFFICIENT,
            ];
            let crt_vals: Vec<Option<&[u8]>> =
                crt_attrs.iter().map(|t| attrs.get_bytes(*t)).collect();
            let crt = match crt_vals.as_slice() {
                [Some(p), Some(q), Some(dp), Some(dq), Some(qinv)] => {
                    Some(RsaCrt { p, q, dp, dq, qinv })
                }
                // Without every CRT value the key still works through d, only slower.
                _ => None,
            };
            PKey::rsa_private_from_components(&RsaComponents { n, e, d, crt })
        }
        Some(CKO_PUBLIC_KEY) => PKey::rsa_public_from_components(n, e),
        _ => return Err(Code::KeyTypeInconsistent.err("not an RSA public or private key")),
    };
    key.map_err(|err| Code::AttributeValueInvalid.err(format!("RSA key: {err}")))
}

/// The parsed key of an RSA key object, built once per object and shared (every family that
/// uses RSA keys must go through this so that the object's cache holds one type).
pub fn rsa_key(key: &Object) -> Result<Arc<PKey>> {
    if key.key_type() != Some(CKK_RSA) {
        return Err(Code::KeyTypeInconsistent.err("not an RSA key"));
    }
    let k = key.cached(build_rsa)?;
    if k.kind() != KeyKind::Rsa || !(USE_MIN_BITS..=USE_MAX_BITS).contains(&k.bits()) {
        return Err(
            Code::KeySizeRange.err(format!("RSA keys of {} bits are not supported", k.bits()))
        );
    }
    Ok(k)
}

/// Check an RSA key's attributes the way an operation will read them (for object creation).
pub fn validate_rsa_key(attrs: &Attrs) -> Result<()> {
    build_rsa(attrs).map(|_| ())
}

/// The public exponent for a new key: CKA_PUBLIC_EXPONENT of the template, else 65537.
fn public_exponent(template: &Attrs) -> Result<Vec<u8>> {
    let Some(v) = template.get(CKA_PUBLIC_EXPONENT) else {
        return Ok(vec![1, 0, 1]);
    };
    let AttrValue::Bytes(b) = v else {
        return Err(Code::AttributeValueInvalid.err("CKA_PUBLIC_EXPONENT is a big integer"));
    };
    let e = strip(b);
    let odd = e.last().is_some_and(|l| l & 1 == 1);
    if !odd || e == [1] || e.len() > MAX_EXPONENT_LEN {
        return Err(Code::AttributeValueInvalid
            .err("CKA_PUBLIC_EXPONENT must be odd, at least 3 and at most 64 bits"));
    }
    Ok(e.to_vec())
}

struct RsaKeyPairGen;

impl Mech for RsaKeyPairGen {
    fn info(&self) -> MechanismInfo {
        MechanismInfo {
            min_key_size: GEN_MIN_BITS as CK_ULONG,
            max_key_size: GEN_MAX_BITS as CK_ULONG,
            flags: CKF_GENERATE_KEY_PAIR,
        }
    }

    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        &[CKK_RSA]
    }

    fn generate_key_pair(
        &self,
        mech: &Mechanism,
        public: &Attrs,
        _private: &Attrs,
    ) -> Result<(Attrs, Attrs)> {
        no_params(mech)?;
        let bits = public.get_ulong(CKA_MODULUS_BITS).ok_or_else(|| {
            Code::TemplateIncomplete.err("CKA_MODULUS_BITS missing from the public-key template")
        })?;
        let bits = usize::try_from(bits)
            .ok()
            .filter(|b| (GEN_MIN_BITS..=GEN_MAX_BITS).contains(b))
            .ok_or_else(|| {
                Code::KeySizeRange.err(format!(
                    "RSA keys are {GEN_MIN_BITS} to {GEN_MAX_BITS} bits"
                ))
            })?;
        let e = public_exponent(public)?;
        let key = PKey::generate_rsa(bits, &e)?;
        pairwise_test(&key)?;
        let parts = key.rsa_private_parts()?;
        let spki = key.spki_der()?;

        let mut pubattrs = Attrs::new();
        pubattrs.set(CKA_KEY_TYPE, AttrValue::Ulong(CKK_RSA));
        pubattrs.set(CKA_MODULUS, AttrValue::bytes(parts.n.clone()));
        pubattrs.set(CKA_MODULUS_BITS, AttrValue::Ulong(key.bits() as CK_ULONG));
        pubattrs.set(CKA_PUBLIC_EXPONENT, AttrValue::bytes(parts.e.clone()));
        pubattrs.set(CKA_PUBLIC_KEY_INFO, AttrValue::bytes(spki.clone()));
        let mut privattrs = Attrs::new();
        privattrs.set(CKA_KEY_TYPE, AttrValue::Ulong(CKK_RSA));
        privattrs.set(CKA_MODULUS, AttrValue::bytes(parts.n.clone()));
        privattrs.set(CKA_PUBLIC_EXPONENT, AttrValue::bytes(parts.e.clone()));
        privattrs.set(CKA_PUBLIC_KEY_INFO, AttrValue::bytes(spki));
        for (ty, v) in [
            (CKA_PRIVATE_EXPONENT, &parts.d),
            (CKA_PRIME_1, &parts.p),
            (CKA_PRIME_2, &parts.q),
            (CKA_EXPONENT_1, &parts.dp),
            (CKA_EXPONENT_2, &parts.dq),
            (CKA_COEFFICIENT, &parts.qinv),
        ] {
            privattrs.set(ty, AttrValue::Bytes(v.clone()));
        }
        Ok((pubattrs, privattrs))
    }
}

/// Pair-wise consistency test of a new key pair (FIPS 140-3 conditional self-test).
fn pairwise_test(key: &PKey) -> Result<()> {
    let tbs = digest_info(DigestAlg::Sha256, &[0x5a; 32])?;
    let sig = key.rsa_pkcs1_sign_raw(&tbs)?;
    if key.rsa_pkcs1_verify_raw(&tbs, &sig)? {
        Ok(())
    } else {
        Err(Code::FipsSelfTestFailed.err("RSA key pair failed its pair-wise consistency test"))
    }
}

/// CKM_RSA_PKCS (`hash` None: the caller supplies the DigestInfo) or CKM_SHA*_RSA_PKCS.
struct RsaPkcs {
    hash: Option<DigestAlg>,
}

enum Input {
    /// Caller-formatted data, at most k - 11 bytes.
    Raw {
        buf: Zeroizing<Vec<u8>>,
        max: usize,
    },
    Hashed(Digest),
}

impl Input {
    fn new(hash: Option<DigestAlg>, key: &PKey) -> Result<Input> {
        Ok(match hash {
            None => Input::Raw {
                buf: Zeroizing::new(Vec::new()),
                max: key.signature_len() - PKCS1_OVERHEAD,
            },
            Some(alg) => Input::Hashed(Digest::new(alg)?),
        })
    }

    fn update(&mut self, data: &[u8]) -> Result<()> {
        match self {
            Input::Raw { buf, max } => {
                if buf.len() + data.len() > *max {
                    return Err(Code::DataLenRange.err(format!(
                        "CKM_RSA_PKCS input is at most {max} bytes (k - 11)"
                    )));
                }
                buf.extend_from_slice(data);
                Ok(())
            }
            Input::Hashed(d) => Ok(d.update(data)?),
        }
    }

    /// The data PKCS#1 v1.5 pads: the caller's bytes, or the DigestInfo of the digest.
    fn take(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        match self {
            Input::Raw { buf, .. } => Ok(std::mem::take(buf)),
            Input::Hashed(d) => {
                let digest = d.finish()?;
                Ok(Zeroizing::new(digest_info(d.alg(), &digest)?))
            }
        }
    }
}

impl Mech for RsaPkcs {
    fn info(&self) -> MechanismInfo {
        MechanismInfo {
            min_key_size: USE_MIN_BITS as CK_ULONG,
            max_key_size: USE_MAX_BITS as CK_ULONG,
            flags: CKF_SIGN | CKF_VERIFY,
        }
    }

    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        &[CKK_RSA]
    }

    fn sign_init(&self, mech: &Mechanism, key: &Object) -> Result<Box<dyn SignOp>> {
        no_params(mech)?;
        let key = rsa_key(key)?;
        if !key.has_private() {
            return Err(Code::KeyTypeInconsistent.err("signing needs an RSA private key"));
        }
        let input = Input::new(self.hash, &key)?;
        Ok(Box::new(RsaSign { key, input }))
    }

    fn verify_init(&self, mech: &Mechanism, key: &Object) -> Result<Box<dyn VerifyOp>> {
        no_params(mech)?;
        let key = rsa_key(key)?;
        let input = Input::new(self.hash, &key)?;
        Ok(Box::new(RsaVerify { key, input }))
    }
}

struct RsaSign {
    key: Arc<PKey>,
    input: Input,
}

impl SignOp for RsaSign {
    fn sig_len(&self) -> usize {
        self.key.signature_len()
    }

    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.input.update(data)
    }

    fn finish(&mut self) -> Result<Bytes> {
        let tbs = self.input.take()?;
        Ok(Zeroizing::new(self.key.rsa_pkcs1_sign_raw(&tbs)?))
    }
}

struct RsaVerify {
    key: Arc<PKey>,
    input: Input,
}

impl VerifyOp for RsaVerify {
    fn sig_len(&self) -> usize {
        self.key.signature_len()
    }

    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.input.update(data)
    }

    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        if signature.len() != self.sig_len() {
            return Err(Code::SignatureLenRange.err(format!(
                "an RSA signature with this key is {} bytes, not {}",
                self.sig_len(),
                signature.len()
            )));
        }
        let tbs = self.input.take()?;
        if self.key.rsa_pkcs1_verify_raw(&tbs, signature)? {
            Ok(())
        } else {
            Err(Code::SignatureInvalid.err("RSA PKCS#1 v1.5 signature does not verify"))
        }
    }
}

pub(crate) fn register(reg: &mut Registry) {
    reg.add(CKM_RSA_PKCS_KEY_PAIR_GEN, Box::new(RsaKeyPairGen));
    reg.add(CKM_RSA_PKCS, Box::new(RsaPkcs { hash: None }));
    reg.add(
        CKM_SHA224_RSA_PKCS,
        Box::new(RsaPkcs {
            hash: Some(DigestAlg::Sha224),
        }),
    );
    reg.add(
        CKM_SHA256_RSA_PKCS,
        Box::new(RsaPkcs {
            hash: Some(DigestAlg::Sha256),
        }),
    );
    reg.add(
        CKM_SHA384_RSA_PKCS,
        Box::new(RsaPkcs {
            hash: Some(DigestAlg::Sha384),
        }),
    );
    reg.add(
        CKM_SHA512_RSA_PKCS,
        Box::new(RsaPkcs {
            hash: Some(DigestAlg::Sha512),
        }),
    );
}

#[cfg(test)]
mod tests;
