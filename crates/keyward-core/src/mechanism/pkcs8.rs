//! Private keys as PKCS#8 PrivateKeyInfo (RFC 5208), the form C_WrapKey wraps them in, and
//! back from it to the attributes of an unwrapped private key.
//!
//! Supported: RSA (two primes), EC on the named curves of [`ec`](crate::mechanism::ec)
//! (RFC 5915 ECPrivateKey with the public point; the curve OID in the algorithm identifier),
//! and Ed25519, Ed448, X25519 and X448 (RFC 8410).
//!
//! Decisions:
//! - An unwrapped key gets exactly the attributes key-pair generation gives a private key of
//!   its type (key type, key material, CKA_EC_PARAMS, CKA_PUBLIC_KEY_INFO), so it differs from a
//!   generated one only in provenance. That means no CKA_EC_POINT, which generation does not
//!   set on private keys either. CKA_EC_PARAMS is the curve's OID (RFC 8410 OID for the
//!   Edwards and Montgomery curves), whatever form the wrapped key's original had.
//! - A PrivateKeyInfo holding another key type than the template's CKA_KEY_TYPE is
//!   CKR_TEMPLATE_INCONSISTENT: the wrapped key is intact, the template contradicts it. A
//!   template naming a key type this token does not unwrap is the same.
//! - Anything else wrong with the plaintext — not DER, not a PrivateKeyInfo, an unsupported
//!   algorithm, curve or multi-prime RSA, components that do not form a key pair, an EC
//!   public point that does not match the scalar — is CKR_WRAPPED_KEY_INVALID.
//! - An RSA key without all its CRT values (possible through C_CreateObject) cannot be
//!   wrapped, since RSAPrivateKey has no optional fields: CKR_KEY_NOT_WRAPPABLE.

use cryptoki_sys::*;
use keyward_ossl::edwards::EdKey;
use keyward_ossl::pkcs8::{self, PrivateKeyParts};
use keyward_ossl::pkey::{PKey, RsaComponents, RsaCrt};

use crate::error::{Code, Error, Result};
use crate::mechanism::{Bytes, ec, eddsa, rsa};
use crate::object::Object;
use crate::types::{AttrValue, Attrs};

fn key_material<'a>(key: &'a Object, ty: CK_ATTRIBUTE_TYPE, name: &str) -> Result<&'a [u8]> {
    key.attrs()
        .get_bytes(ty)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Code::KeyNotWrappable.err(format!("the private key has no {name}")))
}

/// The PrivateKeyInfo DER of a private key object.
pub fn encode(key: &Object) -> Result<Bytes> {
    let attr = |ty, name| key_material(key, ty, name);
    let der = match key.key_type() {
        Some(CKK_RSA) => {
            let crt = [
                CKA_PRIME_1,
                CKA_PRIME_2,
                CKA_EXPONENT_1,
                CKA_EXPONENT_2,
                CKA_COEFFICIENT,
            ]
            .map(|ty| key.attrs().get_bytes(ty).filter(|v| !v.is_empty()));
            let [Some(p), Some(q), Some(dp), Some(dq), Some(qinv)] = crt else {
                return Err(Code::KeyNotWrappable
                    .err("an RSA key without all its CRT values has no PKCS#8 form"));
            };
            pkcs8::rsa_to_der(&RsaComponents {
                n: attr(CKA_MODULUS, "CKA_MODULUS")?,
                e: attr(CKA_PUBLIC_EXPONENT, "CKA_PUBLIC_EXPONENT")?,
                d: attr(CKA_PRIVATE_EXPONENT, "CKA_PRIVATE_EXPONENT")?,
                crt: Some(RsaCrt { p, q, dp, dq, qinv }),
            })?
        }
        Some(CKK_EC) => {
            let curve = ec::curve_from_params(attr(CKA_EC_PARAMS, "CKA_EC_PARAMS")?)?;
            pkcs8::ec_to_der(curve, attr(CKA_VALUE, "CKA_VALUE")?)?
        }
        Some(t @ (CKK_EC_EDWARDS | CKK_EC_MONTGOMERY)) => {
            let params = attr(CKA_EC_PARAMS, "CKA_EC_PARAMS")?;
            let curve = eddsa::curve_from_params(params, t == CKK_EC_EDWARDS)?;
            pkcs8::ed_to_der(curve, attr(CKA_VALUE, "CKA_VALUE")?)?
        }
        Some(t) => {
            return Err(Code::KeyNotWrappable.err(format!(
                "private keys of type {t:#x} cannot be wrapped by this token"
            )));
        }
        None => return Err(Code::KeyNotWrappable.err("the private key has no CKA_KEY_TYPE")),
    };
    Ok(der)
}

fn invalid(what: &str) -> impl Fn(keyward_ossl::Error) -> Error + '_ {
    move |e| Code::WrappedKeyInvalid.err(format!("{what}: {e}"))
}

/// The key type a parsed key has.
fn key_type_of(parts: &PrivateKeyParts) -> CK_KEY_TYPE {
    match parts {
        PrivateKeyParts::Rsa(_) => CKK_RSA,
        PrivateKeyParts::Ec { .. } => CKK_EC,
        PrivateKeyParts::Ed { curve, .. } if curve.is_edwards() => CKK_EC_EDWARDS,
        PrivateKeyParts::Ed { .. } => CKK_EC_MONTGOMERY,
    }
}

/// The attributes of a private key of `key_type` from a PrivateKeyInfo DER (those key-pair
/// generation gives the private key: see the module documentation).
pub fn decode(key_type: CK_KEY_TYPE, der: &[u8]) -> Result<Attrs> {
    if !matches!(
        key_type,
        CKK_RSA | CKK_EC | CKK_EC_EDWARDS | CKK_EC_MONTGOMERY
    ) {
        return Err(Code::TemplateInconsistent.err(format!(
            "private keys of type {key_type:#x} cannot be unwrapped by this token"
        )));
    }
    let parts = pkcs8::from_der(der).map_err(invalid("the unwrapped PrivateKeyInfo"))?;
    let found = key_type_of(&parts);
    if found != key_type {
        return Err(Code::TemplateInconsistent.err(format!(
            "the wrapped key is of type {found:#x}, the template says {key_type:#x}"
        )));
    }
    let mut out = Attrs::new();
    out.set(CKA_KEY_TYPE, AttrValue::Ulong(key_type));
    match parts {
        PrivateKeyParts::Rsa(p) => {
            let parts = RsaComponents {
                n: &p.n,
                e: &p.e,
                d: &p.d,
                crt: Some(RsaCrt {
                    p: &p.p,
                    q: &p.q,
                    dp: &p.dp,
                    dq: &p.dq,
                    qinv: &p.qinv,
                }),
            };
            let key = PKey::rsa_private_from_components(&parts).map_err(invalid("RSA key"))?;
            if parts.crt_consistent().map_err(invalid("RSA key"))? != Some(true) {
                return Err(
                    Code::WrappedKeyInvalid.err("the RSA components do not form a key pair")
                );
            }
            out.set(CKA_MODULUS, AttrValue::bytes(p.n.clone()));
            out.set(CKA_PUBLIC_EXPONENT, AttrValue::bytes(p.e.clone()));
            out.set(
                CKA_PUBLIC_KEY_INFO,
                AttrValue::bytes(key.spki_der().map_err(invalid("RSA key"))?),
            );
            for (ty, v) in [
                (CKA_PRIVATE_EXPONENT, &p.d),
                (CKA_PRIME_1, &p.p),
                (CKA_PRIME_2, &p.q),
                (CKA_EXPONENT_1, &p.dp),
                (CKA_EXPONENT_2, &p.dq),
                (CKA_COEFFICIENT, &p.qinv),
            ] {
                out.set(ty, AttrValue::Bytes(v.clone()));
            }
            // The modulus sizes RSA keys may have here, as for any other RSA key object.
            let mut probe = out.clone();
            probe.set(CKA_CLASS, AttrValue::Ulong(CKO_PRIVATE_KEY));
            rsa::validate_rsa_key(&probe)
                .map_err(|e| Code::WrappedKeyInvalid.err(format!("RSA key: {}", e.detail())))?;
        }
        PrivateKeyParts::Ec {
            curve,
            private,
            public,
        } => {
            // With the point the encoding carried, this also checks that it matches.
            let given = (!public.is_empty()).then_some(public.as_slice());
            let key = PKey::ec_from_components(curve, Some(&private), given)
                .map_err(invalid("EC key"))?;
            out.set(CKA_EC_PARAMS, AttrValue::bytes(curve.oid_der()));
            out.set(CKA_VALUE, AttrValue::Bytes(private));
            out.set(
                CKA_PUBLIC_KEY_INFO,
                AttrValue::bytes(key.spki_der().map_err(invalid("EC key"))?),
            );
        }
        PrivateKeyParts::Ed { curve, private } => {
            let key = EdKey::from_private(curve, &private).map_err(invalid("key"))?;
            out.set(CKA_EC_PARAMS, AttrValue::bytes(curve.oid_der()));
            out.set(CKA_VALUE, AttrValue::Bytes(private));
            out.set(
                CKA_PUBLIC_KEY_INFO,
                AttrValue::bytes(key.spki_der().map_err(invalid("key"))?),
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
