//! Edwards and Montgomery keys and EdDSA (PKCS#11 3.0 §6.3.5, §6.3.6, §6.3.15):
//! CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EC_MONTGOMERY_KEY_PAIR_GEN and CKM_EDDSA.
//!
//! CKM_EDDSA serves all five RFC 8032 instances. Pure Ed25519 and Ed448 (no parameter, or
//! phFlag false with an empty context) run on OpenSSL; Ed25519ctx, Ed25519ph, Ed448 with a
//! context and Ed448ph run in [`variants`], because the system OpenSSL (3.0) implements only
//! pure EdDSA.
//!
//! An Ed25519 key with phFlag false and an empty context signs pure Ed25519, as with no
//! parameter: RFC 8032 §5.1 says Ed25519ctx SHOULD NOT be used with an empty context (OpenSSL
//! 3.2 refuses it), and SoftHSMv2 and other tokens read that parameter as pure Ed25519, so a
//! caller that always passes a zeroed CK_EDDSA_PARAMS keeps working.

use std::sync::Arc;

use cryptoki_sys::*;
use keyward_ossl::edwards::{EdCurve, EdKey, EdVariant};
use zeroize::Zeroizing;

use crate::error::{Code, Result};
use crate::mechanism::digest::no_params;
use crate::mechanism::ec::encode_ec_point;
use crate::mechanism::{Bytes, Mech, Registry, SignOp, VerifyOp};
use crate::object::Object;
use crate::types::{AttrValue, Attrs, MechParams, Mechanism, MechanismInfo};

const MIN_BITS: CK_ULONG = 255;
const MAX_BITS: CK_ULONG = 448;
const CURVE_FLAGS: CK_FLAGS = CKF_EC_OID | CKF_EC_CURVENAME;

mod variants;

use variants::{Flavor, Prehash};

// Pure EdDSA (and Ed25519ctx / Ed448 with a context) hashes the message twice, so multi-part
// signing must keep all of it; this bound keeps a caller from growing the buffer without limit.
// The pre-hash instances keep only a running hash and need no bound.
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

// RFC 8032 limits the context (dom2/dom4) to 255 octets.
const MAX_CONTEXT: usize = 255;

/// The curve named by CKA_EC_PARAMS of an Edwards or Montgomery key: an RFC 8410 OBJECT
/// IDENTIFIER or a PrintableString curve name (PKCS#11 3.0 allows both). Malformed DER is
/// CKR_DOMAIN_PARAMS_INVALID; a well-formed but unknown curve, or one of the other family,
/// CKR_CURVE_NOT_SUPPORTED.
pub fn curve_from_params(der: &[u8], edwards: bool) -> Result<EdCurve> {
    let (tag, body) = match der {
        [tag @ (0x06 | 0x13), len, body @ ..] if *len < 0x80 && usize::from(*len) == body.len() => {
            (*tag, body)
        }
        _ => {
            return Err(Code::DomainParamsInvalid.err(format!(
                "CKA_EC_PARAMS is neither a DER OID nor a PrintableString curve name {der:02x?}"
            )));
        }
    };
    let curve = if tag == 0x06 {
        EdCurve::from_oid_der(der)
    } else {
        EdCurve::from_name(body)
    };
    match curve {
        Some(c) if c.is_edwards() == edwards => Ok(c),
        _ => Err(Code::CurveNotSupported.err(if edwards {
            "CKA_EC_PARAMS does not name Ed25519 or Ed448"
        } else {
            "CKA_EC_PARAMS does not name X25519 or X448"
        })),
    }
}

/// The raw public key inside CKA_EC_POINT: the spec's DER OCTET STRING, or the raw key that
/// many callers send (the two differ in length, so they cannot be confused).
pub fn decode_point(curve: EdCurve, value: &[u8]) -> Result<&[u8]> {
    let n = curve.key_len();
    match value {
        [0x04, len, rest @ ..] if usize::from(*len) == n && rest.len() == n => Ok(rest),
        raw if raw.len() == n => Ok(raw),
        _ => Err(Code::AttributeValueInvalid.err(format!(
            "CKA_EC_POINT is not a {n}-byte {:?} public key",
            curve
        ))),
    }
}

fn build(attrs: &Attrs, edwards: bool) -> Result<EdKey> {
    let params = attrs
        .get_bytes(CKA_EC_PARAMS)
        .ok_or_else(|| Code::TemplateIncomplete.err("key without CKA_EC_PARAMS"))?;
    let curve = curve_from_params(params, edwards)?;
    match attrs.get_ulong(CKA_CLASS) {
        Some(CKO_PRIVATE_KEY) => {
            let v = attrs
                .get_bytes(CKA_VALUE)
                .ok_or_else(|| Code::TemplateIncomplete.err("private key without CKA_VALUE"))?;
            if v.len() != curve.key_len() {
                return Err(Code::AttributeValueInvalid.err(format!(
                    "CKA_VALUE of a {curve:?} key is {} bytes",
                    curve.key_len()
                )));
            }
            EdKey::from_private(curve, v)
                .map_err(|e| Code::AttributeValueInvalid.err(format!("private key: {e}")))
        }
        Some(CKO_PUBLIC_KEY) => {
            let v = attrs
                .get_bytes(CKA_EC_POINT)
                .ok_or_else(|| Code::TemplateIncomplete.err("public key without CKA_EC_POINT"))?;
            EdKey::from_public(curve, decode_point(curve, v)?)
                .map_err(|e| Code::AttributeValueInvalid.err(format!("public key: {e}")))
        }
        _ => Err(Code::KeyTypeInconsistent.err("not a public or private key")),
    }
}

/// The parsed key of a CKK_EC_EDWARDS object, built once per object and shared.
pub fn edwards_key(key: &Object) -> Result<Arc<EdKey>> {
    if key.key_type() != Some(CKK_EC_EDWARDS) {
        return Err(Code::KeyTypeInconsistent.err("not an Edwards key"));
    }
    key.cached(|a| build(a, true))
}

/// The parsed key of a CKK_EC_MONTGOMERY object, built once per object and shared.
pub fn montgomery_key(key: &Object) -> Result<Arc<EdKey>> {
    if key.key_type() != Some(CKK_EC_MONTGOMERY) {
        return Err(Code::KeyTypeInconsistent.err("not a Montgomery key"));
    }
    key.cached(|a| build(a, false))
}

/// Check an Edwards key's attributes the way an operation will read them.
pub fn validate_edwards_key(attrs: &Attrs) -> Result<()> {
    build(attrs, true).map(|_| ())
}

/// Check a Montgomery key's attributes the way an operation will read them.
pub fn validate_montgomery_key(attrs: &Attrs) -> Result<()> {
    build(attrs, false).map(|_| ())
}

/// The SubjectPublicKeyInfo of an Edwards (`edwards`) or Montgomery key object's attributes.
pub fn public_info(attrs: &Attrs, edwards: bool) -> Result<Vec<u8>> {
    Ok(build(attrs, edwards)?.spki_der()?)
}

fn info(flags: CK_FLAGS) -> MechanismInfo {
    MechanismInfo {
        min_key_size: MIN_BITS,
        max_key_size: MAX_BITS,
        flags: flags | CURVE_FLAGS,
    }
}

/// CKM_EC_EDWARDS_KEY_PAIR_GEN (`edwards`) or CKM_EC_MONTGOMERY_KEY_PAIR_GEN.
struct KeyPairGen {
    edwards: bool,
}

impl KeyPairGen {
    fn key_type(&self) -> CK_KEY_TYPE {
        if self.edwards {
            CKK_EC_EDWARDS
        } else {
            CKK_EC_MONTGOMERY
        }
    }
}

impl Mech for KeyPairGen {
    fn info(&self) -> MechanismInfo {
        info(CKF_GENERATE_KEY_PAIR)
    }

    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        if self.edwards {
            &[CKK_EC_EDWARDS]
        } else {
            &[CKK_EC_MONTGOMERY]
        }
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
        let curve = curve_from_params(params, self.edwards)?;
        let key = EdKey::generate(curve)?;
        if !key.check_pair()? {
            return Err(Code::FipsSelfTestFailed.err("key pair failed its pair-wise test"));
        }
        let point = key.public_raw()?;
        let spki = key.spki_der()?;
        let value = key.private_raw()?;

        let ty = self.key_type();
        let mut pubattrs = Attrs::new();
        pubattrs.set(CKA_KEY_TYPE, AttrValue::Ulong(ty));
        pubattrs.set(CKA_EC_PARAMS, AttrValue::bytes(params));
        pubattrs.set(CKA_EC_POINT, AttrValue::bytes(encode_ec_point(&point)));
        pubattrs.set(CKA_PUBLIC_KEY_INFO, AttrValue::bytes(spki.clone()));
        let mut privattrs = Attrs::new();
        privattrs.set(CKA_KEY_TYPE, AttrValue::Ulong(ty));
        privattrs.set(CKA_EC_PARAMS, AttrValue::bytes(params));
        privattrs.set(CKA_VALUE, AttrValue::Bytes(value));
        privattrs.set(CKA_PUBLIC_KEY_INFO, AttrValue::bytes(spki));
        Ok((pubattrs, privattrs))
    }
}

/// The EdDSA instance a CKM_EDDSA mechanism asks for, with its context owned.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Instance {
    Pure,
    Context(Vec<u8>),
    PreHash(Vec<u8>),
}

impl Instance {
    fn from_mech(mech: &Mechanism) -> Result<Instance> {
        Ok(match &mech.params {
            MechParams::EdDsa { prehash, context } => {
                if context.len() > MAX_CONTEXT {
                    return Err(
                        Code::MechanismParamInvalid.err("the EdDSA context is at most 255 bytes")
                    );
                }
                match (prehash, context.is_empty()) {
                    (true, _) => Instance::PreHash(context.clone()),
                    // See the module doc: no Ed25519ctx with an empty context; for Ed448 an
                    // empty context is pure Ed448 by definition.
                    (false, true) => Instance::Pure,
                    (false, false) => Instance::Context(context.clone()),
                }
            }
            _ => {
                no_params(mech)?;
                Instance::Pure
            }
        })
    }

    /// The non-pure instance, if this is one.
    fn flavor(&self) -> Option<Flavor<'_>> {
        match self {
            Instance::Pure => None,
            Instance::Context(c) => Some(Flavor {
                prehash: false,
                context: c,
            }),
            Instance::PreHash(c) => Some(Flavor {
                prehash: true,
                context: c,
            }),
        }
    }
}

/// What a multi-part EdDSA operation keeps of its input: the whole message (bounded) for
/// the pure and context instances, which read it twice, or the running PH(M).
enum Input {
    Message(Message),
    Prehash(Prehash),
}

impl Input {
    fn new(curve: EdCurve, instance: &Instance) -> Result<Input> {
        Ok(match instance {
            Instance::PreHash(_) => Input::Prehash(Prehash::new(curve)?),
            _ => Input::Message(Message::new()),
        })
    }

    fn add(&mut self, data: &[u8]) -> Result<()> {
        match self {
            Input::Message(m) => m.add(data),
            Input::Prehash(p) => p.update(data),
        }
    }

    /// The message, or PH(M); the input is empty afterwards.
    fn take(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        match self {
            Input::Message(m) => Ok(std::mem::take(&mut m.0)),
            Input::Prehash(p) => Ok(Zeroizing::new(p.finish()?.to_vec())),
        }
    }
}

/// The message of a multi-part EdDSA operation, kept whole (bounded).
struct Message(Zeroizing<Vec<u8>>);

impl Message {
    fn new() -> Message {
        Message(Zeroizing::new(Vec::new()))
    }

    fn add(&mut self, data: &[u8]) -> Result<()> {
        if self.0.len().saturating_add(data.len()) > MAX_MESSAGE {
            return Err(Code::DataLenRange.err("EdDSA messages are limited to 16 MiB"));
        }
        self.0.extend_from_slice(data);
        Ok(())
    }
}

struct EdDsa;

impl Mech for EdDsa {
    fn info(&self) -> MechanismInfo {
        info(CKF_SIGN | CKF_VERIFY)
    }

    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        &[CKK_EC_EDWARDS]
    }

    fn sign_init(&self, mech: &Mechanism, key: &Object) -> Result<Box<dyn SignOp>> {
        let instance = Instance::from_mech(mech)?;
        let key = edwards_key(key)?;
        if !key.has_private() {
            return Err(Code::KeyTypeInconsistent.err("signing needs a private key"));
        }
        Ok(Box::new(EdDsaSign {
            input: Input::new(key.curve(), &instance)?,
            key,
            instance,
        }))
    }

    fn verify_init(&self, mech: &Mechanism, key: &Object) -> Result<Box<dyn VerifyOp>> {
        let instance = Instance::from_mech(mech)?;
        let key = edwards_key(key)?;
        Ok(Box::new(EdDsaVerify {
            input: Input::new(key.curve(), &instance)?,
            key,
            instance,
        }))
    }
}

struct EdDsaSign {
    key: Arc<EdKey>,
    instance: Instance,
    input: Input,
}

impl SignOp for EdDsaSign {
    fn sig_len(&self) -> usize {
        self.key.curve().signature_len()
    }

    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.input.add(data)
    }

    fn finish(&mut self) -> Result<Bytes> {
        let input = self.input.take()?;
        let sig = match self.instance.flavor() {
            None => self.key.sign(EdVariant::Pure, &input)?,
            Some(flavor) => {
                let seed = self.key.private_raw()?;
                variants::sign(self.key.curve(), &seed, flavor, &input)?
            }
        };
        Ok(Zeroizing::new(sig))
    }
}

struct EdDsaVerify {
    key: Arc<EdKey>,
    instance: Instance,
    input: Input,
}

impl VerifyOp for EdDsaVerify {
    fn sig_len(&self) -> usize {
        self.key.curve().signature_len()
    }

    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.input.add(data)
    }

    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        if signature.len() != self.sig_len() {
            return Err(Code::SignatureLenRange.err(format!(
                "an EdDSA signature with this key is {} bytes, not {}",
                self.sig_len(),
                signature.len()
            )));
        }
        let input = self.input.take()?;
        let valid = match self.instance.flavor() {
            None => self.key.verify(EdVariant::Pure, &input, signature)?,
            Some(flavor) => variants::verify(
                self.key.curve(),
                &self.key.public_raw()?,
                flavor,
                &input,
                signature,
            )?,
        };
        if valid {
            Ok(())
        } else {
            Err(Code::SignatureInvalid.err("EdDSA signature does not verify"))
        }
    }
}

pub(crate) fn register(reg: &mut Registry) {
    reg.add(
        CKM_EC_EDWARDS_KEY_PAIR_GEN,
        Box::new(KeyPairGen { edwards: true }),
    );
    reg.add(
        CKM_EC_MONTGOMERY_KEY_PAIR_GEN,
        Box::new(KeyPairGen { edwards: false }),
    );
    reg.add(CKM_EDDSA, Box::new(EdDsa));
}

#[cfg(test)]
mod tests;
