//! Key derivation (PKCS#11 3.0 Current Mechanisms §2.42–2.43, §2.40, §6.43): HKDF (RFC 5869),
//! PBKDF2 (RFC 8018), the SP 800-108 counter-mode KDF, key and data concatenation, and AES
//! encryption of data.
//!
//! The constructions are built here over HMAC, CMAC and AES from `keyward_ossl`; SP 800-108
//! has to be, since PKCS#11 lets the caller lay out the PRF input freely.
//!
//! Decisions the spec leaves open:
//! - Every key a parameter names (HKDF's salt key, the second key of
//!   CKM_CONCATENATE_BASE_AND_KEY, an SP 800-108 key handle) must be a secret key that
//!   permits CKA_DERIVE and allows the mechanism in CKA_ALLOWED_MECHANISMS, as the base key
//!   must: a key whose owner did not allow derivation does not feed one.
//! - Derivations whose output exposes their input (the concatenations, and AES encryption of
//!   caller data, which would otherwise be an encryption oracle for a key that may also
//!   unwrap) keep the derived key sensitive when any input key is sensitive and unextractable
//!   when any input key is unextractable (SECURITY KEY-06); asking otherwise is
//!   CKR_TEMPLATE_INCONSISTENT.

use std::sync::Arc;

use cryptoki_sys::*;
use keyward_ossl::digest::DigestAlg;
use keyward_ossl::mac::{Mac, MacKey};

use crate::error::{Code, Result};
use crate::mechanism::{Bytes, KeyLookup, Registry};
use crate::object::Object;
use crate::types::{AttrValue, Attrs, Mechanism};

mod hkdf;
mod pbkdf2;
mod simple;
mod sp800_108;

/// The secret key types whose CKA_VALUE feeds a derivation as raw bytes.
const VALUE_KEY_TYPES: &[CK_KEY_TYPE] = &[CKK_GENERIC_SECRET, CKK_HKDF, CKK_AES];

/// The digest of a hash mechanism (HKDF's prfHashMechanism).
fn digest_of(hash: CK_MECHANISM_TYPE) -> Option<DigestAlg> {
    Some(match hash {
        CKM_SHA_1 => DigestAlg::Sha1,
        CKM_SHA224 => DigestAlg::Sha224,
        CKM_SHA256 => DigestAlg::Sha256,
        CKM_SHA384 => DigestAlg::Sha384,
        CKM_SHA512 => DigestAlg::Sha512,
        CKM_SHA512_224 => DigestAlg::Sha512_224,
        CKM_SHA512_256 => DigestAlg::Sha512_256,
        CKM_SHA3_224 => DigestAlg::Sha3_224,
        CKM_SHA3_256 => DigestAlg::Sha3_256,
        CKM_SHA3_384 => DigestAlg::Sha3_384,
        CKM_SHA3_512 => DigestAlg::Sha3_512,
        _ => return None,
    })
}

/// An HMAC key. HMAC pads its key with zeros to the block size, so an empty key and a single
/// zero byte are the same key; the latter keeps OpenSSL from seeing a zero-length key.
fn hmac_key(alg: DigestAlg, key: &[u8]) -> Result<MacKey> {
    let key = if key.is_empty() { &[0u8][..] } else { key };
    Ok(MacKey::hmac(alg, key)?)
}

/// The MAC under `key` of the concatenation of `parts`.
fn mac(key: &MacKey, parts: &[&[u8]]) -> Result<Bytes> {
    let mut m: Mac = key.start()?;
    for p in parts {
        m.update(p)?;
    }
    Ok(m.finish()?)
}

/// The CKA_VALUE of a secret key, non-empty.
fn value_of(key: &Object) -> Result<&[u8]> {
    match key.attrs().get_bytes(CKA_VALUE) {
        Some(v) if key.class() == CKO_SECRET_KEY && !v.is_empty() => Ok(v),
        _ => Err(Code::KeyTypeInconsistent.err("the key has no secret value")),
    }
}

/// A key named in the parameters of `mech`: a secret key of one of `types`, with CKA_DERIVE
/// and `mech` in its CKA_ALLOWED_MECHANISMS (when it has the attribute).
fn named_key(
    keys: &dyn KeyLookup,
    handle: CK_OBJECT_HANDLE,
    mech: &Mechanism,
    types: &[CK_KEY_TYPE],
) -> Result<Arc<Object>> {
    let key = keys.key(handle)?;
    if key.class() != CKO_SECRET_KEY || !key.key_type().is_some_and(|t| types.contains(&t)) {
        return Err(Code::KeyTypeInconsistent.err(format!(
            "mechanism {:#x} cannot use key {handle} in its parameters",
            mech.mech
        )));
    }
    if !key.flag(CKA_DERIVE, false) {
        return Err(Code::KeyFunctionNotPermitted.err(format!(
            "key {handle} in the parameters does not permit CKA_DERIVE"
        )));
    }
    if let Some(AttrValue::Mechanisms(allowed)) = key.attrs().get(CKA_ALLOWED_MECHANISMS)
        && !allowed.contains(&mech.mech)
    {
        return Err(Code::MechanismInvalid.err(format!(
            "mechanism {:#x} is not in the CKA_ALLOWED_MECHANISMS of key {handle}",
            mech.mech
        )));
    }
    Ok(key)
}

/// The derived object's mechanism-made attributes: its value (the rules compute the rest).
fn derived(value: Bytes) -> Attrs {
    let mut out = Attrs::new();
    out.set(CKA_VALUE, AttrValue::Bytes(value));
    out
}

/// Keep the derived key at least as protected as its inputs (SECURITY KEY-06): sensitive if
/// any input is (a key without the attribute counts as sensitive), unextractable if any input
/// is. The template's defaults are sensitive and unextractable, so only an explicit request
/// for less protection is refused.
fn inherit_protection(template: &Attrs, inputs: &[&Object]) -> Result<()> {
    if inputs.iter().any(|k| k.flag(CKA_SENSITIVE, true))
        && template.get_bool(CKA_SENSITIVE) == Some(false)
    {
        return Err(Code::TemplateInconsistent
            .err("a key derived from a sensitive key this way must be sensitive"));
    }
    if inputs.iter().any(|k| !k.flag(CKA_EXTRACTABLE, false))
        && template.get_bool(CKA_EXTRACTABLE) == Some(true)
    {
        return Err(Code::TemplateInconsistent
            .err("a key derived from an unextractable key this way must be unextractable"));
    }
    Ok(())
}

/// A length as CK_ULONG (key sizes in mechanism info).
const fn ulong(n: usize) -> CK_ULONG {
    n as CK_ULONG
}

pub(crate) fn register(reg: &mut Registry) {
    hkdf::register(reg);
    pbkdf2::register(reg);
    sp800_108::register(reg);
    simple::register(reg);
}

#[cfg(test)]
mod tests;
