//! Elliptic-curve keys and ECDSA (PKCS#11 3.0 §6.3): CKM_EC_KEY_PAIR_GEN, CKM_ECDSA,
//! CKM_ECDSA_SHA1/224/256/384/512 and CKM_ECDSA_SHA3_* on P-256, P-384, P-521 and secp256k1.

use std::sync::Arc;

use cryptoki_sys::*;
use keyward_ossl::digest::{Digest, DigestAlg};
use keyward_ossl::pkey::{Curve, PKey};
use zeroize::Zeroizing;

use crate::error::{Code, Result};
use crate::mechanism::digest::no_params;
use crate::mechanism::{Bytes, Mech, Registry, SignOp, VerifyOp};
use crate::object::Object;
use crate::types::{AttrValue, Attrs, Mechanism, MechanismInfo};

const EC_FLAGS: CK_FLAGS = CKF_EC_F_P | CKF_EC_OID | CKF_EC_CURVENAME | CKF_EC_UNCOMPRESS;
const MIN_BITS: CK_ULONG = 256;
const MAX_BITS: CK_ULONG = 521;

// CKM_ECDSA signs a caller-computed hash; longer input is truncated by ECDSA anyway, so a
// bound this far above SHA-512 only stops unbounded buffering.
const MAX_RAW_INPUT: usize = 1024;

/// The curve named by CKA_EC_PARAMS: a DER OBJECT IDENTIFIER or, as PKCS#11 3.0 also allows,
/// a PrintableString curve name ("prime256v1", "secp384r1", "P-521", ...) of a supported
/// curve (CKR_CURVE_NOT_SUPPORTED otherwise); explicit parameters or malformed DER are
/// CKR_DOMAIN_PARAMS_INVALID.
pub fn curve_from_params(der: &[u8]) -> Result<Curve> {
    let (tag, body) = match der {
        [tag @ (0x06 | 0x13), len, body @ ..]
            if *len < 0x80 && usize::from(*len) == body.len() && !body.is_empty() =>
        {
            (*tag, body)
        }
        _ => {
            return Err(Code::DomainParamsInvalid
                .err("CKA_EC_PARAMS is neither a named-curve OID nor a curve name"));
        }
    };
    let curve = if tag == 0x06 {
        Curve::from_oid_der(der)
    } else {
        Curve::from_name(body)
    };
    curve.ok_or_else(|| Code::CurveNotSupported.err("the curve of CKA_EC_PARAMS is not supported"))
}

/// CKA_EC_POINT for a public point: the DER OCTET STRING wrapping it.
pub fn encode_ec_point(point: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(point.len() + 3);
    out.push(0x04);
    match point.len() {
        n @ 0..=0x7f => out.push(n as u8),
        n @ 0x80..=0xff => out.extend_from_slice(&[0x81, n as u8]),
        n => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(point);
    out
}

fn is_point_len(curve: Curve, p: &[u8]) -> bool {
    match p.first() {
        Some(0x04) => p.len() == curve.point_len(),
        Some(0x02 | 0x03) => p.len() == 1 + curve.field_len(),
        _ => false,
    }
}

/// The point inside CKA_EC_POINT: the spec's DER OCTET STRING, or (as many callers send) the
/// raw SEC 1 point. The DER reading wins only when it holds a point of a valid length, which
/// a raw point can never be mistaken for.
pub fn decode_ec_point(curve: Curve, value: &[u8]) -> Result<&[u8]> {
    let inner = match value {
        [0x04, n, rest @ ..] if *n < 0x80 && usize::from(*n) == rest.len() => Some(rest),
        [0x04, 0x81, n, rest @ ..] if *n >= 0x80 && usize::from(*n) == rest.len() => Some(rest),
        _ => None,
    };
    match inner {
        Some(p) if is_point_len(curve, p) => Ok(p),
        _ if is_point_len(curve, value) => Ok(value),
        _ => Err(Code::AttributeValueInvalid.err("CKA_EC_POINT is not a point of the key's curve")),
    }
}

fn build_ec(attrs: &Attrs) -> Result<PKey> {
    let params = attrs
        .get_bytes(CKA_EC_PARAMS)
        .ok_or_else(|| Code::TemplateIncomplete.err("EC key without CKA_EC_PARAMS"))?;
    let curve = curve_from_params(params)?;
    match attrs.get_ulong(CKA_CLASS) {
        Some(CKO_PRIVATE_KEY) => {
            let d = attrs
                .get_bytes(CKA_VALUE)
                .ok_or_else(|| Code::TemplateIncomplete.err("EC private key without CKA_VALUE"))?;
            if d.len() > curve.field_len() {
                return Err(
                    Code::AttributeValueInvalid.err("CKA_VALUE is longer than the curve's order")
                );
            }
            PKey::ec_from_components(curve, Some(d), None)
                .map_err(|e| Code::AttributeValueInvalid.err(format!("EC private value: {e}")))
        }
        Some(CKO_PUBLIC_KEY) => {
            let v = attrs.get_bytes(CKA_EC_POINT).ok_or_else(|| {
                Code::TemplateIncomplete.err("EC public key without CKA_EC_POINT")
            })?;
            let point = decode_ec_point(curve, v)?;
            PKey::ec_from_components(curve, None, Some(point))
                .map_err(|e| Code::AttributeValueInvalid.err(format!("EC public point: {e}")))
        }
        _ => Err(Code::KeyTypeInconsistent.err("not an EC public or private key")),
    }
}

/// The parsed key of an EC key object, built once per object and shared (every family that
/// uses EC keys must go through this so that the object's cache holds one type).
pub fn ec_key(key: &Object) -> Result<Arc<PKey>> {
    if key.key_type() != Some(CKK_EC) {
        return Err(Code::KeyTypeInconsistent.err("not an EC key"));
    }
    key.cached(build_ec)
}

/// Check an EC key's attributes the way an operation will read them (for object creation).
pub fn validate_ec_key(attrs: &Attrs) -> Result<()> {
    build_ec(attrs).map(|_| ())
}

/// The SubjectPublicKeyInfo of an EC key object's attributes (the public point computed from
/// the private value for a private key).
pub fn public_info(attrs: &Attrs) -> Result<Vec<u8>> {
    Ok(build_ec(attrs)?.spki_der()?)
}

fn info(flags: CK_FLAGS) -> MechanismInfo {
    MechanismInfo {
        min_key_size: MIN_BITS,
        max_key_size: MAX_BITS,
        flags: flags | EC_FLAGS,
    }
}

struct EcKeyPairGen;

impl Mech for EcKeyPairGen {
    fn info(&self) -> MechanismInfo {
        info(CKF_GENERATE_KEY_PAIR)
    }

    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        &[CKK_EC]
    }

    fn generate_key_pair(
        &self,
        mech: &Mechanism,
        public: &Attrs,
        private: &Attrs,
    ) -> Result<(Attrs, Attrs)> {
        no_params(mech)?;
        let params = public.get_bytes(CKA_EC_PARAMS).ok_or_else(|| {
            Code::TemplateIncomplete.err("CKA_EC_PARAMS missing from the public-key template")
        })?;
        if private
            .get_bytes(CKA_EC_PARAMS)
            .is_some_and(|p| p != params)
        {
            return Err(Code::TemplateInconsistent.err("the two templates name different curves"));
        }
        let curve = curve_from_params(params)?;
        let key = PKey::generate_ec(curve)?;
        pairwise_test(&key)?;
        let point = key.ec_public_point()?;
        let spki = key.spki_der()?;
        let value = key.ec_private_value()?;

        let mut pubattrs = Attrs::new();
        pubattrs.set(CKA_KEY_TYPE, AttrValue::Ulong(CKK_EC));
        pubattrs.set(CKA_EC_PARAMS, AttrValue::bytes(params));
        pubattrs.set(CKA_EC_POINT, AttrValue::bytes(encode_ec_point(&point)));
        pubattrs.set(CKA_PUBLIC_KEY_INFO, AttrValue::bytes(spki.clone()));
        let mut privattrs = Attrs::new();
        privattrs.set(CKA_KEY_TYPE, AttrValue::Ulong(CKK_EC));
        privattrs.set(CKA_EC_PARAMS, AttrValue::bytes(params));
        privattrs.set(CKA_VALUE, AttrValue::Bytes(value));
        privattrs.set(CKA_PUBLIC_KEY_INFO, AttrValue::bytes(spki));
        Ok((pubattrs, privattrs))
    }
}

/// Pair-wise consistency test of a new key pair (FIPS 140-3 conditional self-test).
fn pairwise_test(key: &PKey) -> Result<()> {
    let digest = [0xa5u8; 32];
    let sig = key.ecdsa_sign_digest(&digest)?;
    if key.ecdsa_verify_digest(&digest, &sig)? {
        Ok(())
    } else {
        Err(Code::FipsSelfTestFailed.err("EC key pair failed its pair-wise consistency test"))
    }
}

/// CKM_ECDSA (`hash` None) or CKM_ECDSA_SHA*.
struct Ecdsa {
    hash: Option<DigestAlg>,
}

enum Input {
    Raw(Zeroizing<Vec<u8>>),
    Hashed(Digest),
}

impl Input {
    fn new(hash: Option<DigestAlg>) -> Result<Input> {
        Ok(match hash {
            None => Input::Raw(Zeroizing::new(Vec::new())),
            Some(alg) => Input::Hashed(Digest::new(alg)?),
        })
    }

    fn update(&mut self, data: &[u8]) -> Result<()> {
        match self {
            Input::Raw(buf) => {
                if buf.len() + data.len() > MAX_RAW_INPUT {
                    return Err(
                        Code::DataLenRange.err("CKM_ECDSA input is a hash, at most 1024 bytes")
                    );
                }
                buf.extend_from_slice(data);
                Ok(())
            }
            Input::Hashed(d) => Ok(d.update(data)?),
        }
    }

    /// What ECDSA signs: the caller's hash, or the digest of everything given.
    fn take(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        match self {
            Input::Raw(buf) => Ok(std::mem::take(buf)),
            Input::Hashed(d) => Ok(d.finish()?),
        }
    }
}

impl Mech for Ecdsa {
    fn info(&self) -> MechanismInfo {
        info(CKF_SIGN | CKF_VERIFY)
    }

    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        &[CKK_EC]
    }

    fn sign_init(&self, mech: &Mechanism, key: &Object) -> Result<Box<dyn SignOp>> {
        no_params(mech)?;
        let key = ec_key(key)?;
        if !key.has_private() {
            return Err(Code::KeyTypeInconsistent.err("signing needs an EC private key"));
        }
        Ok(Box::new(EcdsaSign {
            key,
            input: Input::new(self.hash)?,
        }))
    }

    fn verify_init(&self, mech: &Mechanism, key: &Object) -> Result<Box<dyn VerifyOp>> {
        no_params(mech)?;
        Ok(Box::new(EcdsaVerify {
            key: ec_key(key)?,
            input: Input::new(self.hash)?,
        }))
    }
}

struct EcdsaSign {
    key: Arc<PKey>,
    input: Input,
}

impl SignOp for EcdsaSign {
    fn sig_len(&self) -> usize {
        self.key.signature_len()
    }

    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.input.update(data)
    }

    fn finish(&mut self) -> Result<Bytes> {
        let tbs = self.input.take()?;
        Ok(Zeroizing::new(self.key.ecdsa_sign_digest(&tbs)?))
    }
}

struct EcdsaVerify {
    key: Arc<PKey>,
    input: Input,
}

impl VerifyOp for EcdsaVerify {
    fn sig_len(&self) -> usize {
        self.key.signature_len()
    }

    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.input.update(data)
    }

    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        if signature.len() != self.sig_len() {
            return Err(Code::SignatureLenRange.err(format!(
                "an ECDSA signature with this key is {} bytes, not {}",
                self.sig_len(),
                signature.len()
            )));
        }
        let tbs = self.input.take()?;
        if self.key.ecdsa_verify_digest(&tbs, signature)? {
            Ok(())
        } else {
            Err(Code::SignatureInvalid.err("ECDSA signature does not verify"))
        }
    }
}

pub(crate) fn register(reg: &mut Registry) {
    reg.add(CKM_EC_KEY_PAIR_GEN, Box::new(EcKeyPairGen));
    let ecdsa = |hash| Box::new(Ecdsa { hash });
    reg.add(CKM_ECDSA, ecdsa(None));
    // SHA-1 for interoperability with old verifiers and tools (pkcs11-tool --test-ec signs
    // with it); CKA_ALLOWED_MECHANISMS keeps it away from keys that must not use it.
    for (m, alg) in [
        (CKM_ECDSA_SHA1, DigestAlg::Sha1),
        (CKM_ECDSA_SHA224, DigestAlg::Sha224),
        (CKM_ECDSA_SHA256, DigestAlg::Sha256),
        (CKM_ECDSA_SHA384, DigestAlg::Sha384),
        (CKM_ECDSA_SHA512, DigestAlg::Sha512),
        (CKM_ECDSA_SHA3_224, DigestAlg::Sha3_224),
        (CKM_ECDSA_SHA3_256, DigestAlg::Sha3_256),
        (CKM_ECDSA_SHA3_384, DigestAlg::Sha3_384),
        (CKM_ECDSA_SHA3_512, DigestAlg::Sha3_512),
    ] {
        reg.add(m, ecdsa(Some(alg)));
    }
}

#[cfg(test)]
mod tests;
