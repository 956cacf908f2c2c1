//! Elliptic-curve key agreement (PKCS#11 3.0 Current Mechanisms, "Elliptic curve
//! Diffie-Hellman key derivation"): CKM_ECDH1_DERIVE on EC keys
//! (P-256, P-384, P-521, secp256k1) and Montgomery keys (X25519, X448), and
//! CKM_ECDH1_COFACTOR_DERIVE on EC keys, with the KDFs CKD_NULL and the ANSI X9.63 KDF over
//! SHA-1, SHA-2 and SHA-3 (CKD_SHA*_KDF, CKD_SHA3_*_KDF).
//!
//! Decisions the spec leaves open:
//! - The peer's public value is accepted raw (SEC 1 uncompressed or compressed point; the
//!   32- or 56-byte u-coordinate for X25519/X448) or wrapped in a DER OCTET STRING as
//!   CKA_EC_POINT holds it.
//! - A peer value that is refused — wrong length or encoding, a point not on the base key's
//!   curve, the identity, a small-order X25519/X448 point that makes the secret all zeros —
//!   is CKR_MECHANISM_PARAM_INVALID, as SoftHSMv2 and Kryoptic answer: the value arrives as a
//!   mechanism parameter, so one code covers every way it can be wrong (CKR_PUBLIC_KEY_INVALID
//!   is not used).
//! - Every curve here has cofactor 1, so CKM_ECDH1_COFACTOR_DERIVE gives the same secret as
//!   CKM_ECDH1_DERIVE. It is offered for EC keys only: PKCS#11 3.0 lists Montgomery keys
//!   under CKM_ECDH1_DERIVE alone.
//! - With CKD_NULL the key is the shared secret truncated from its leading end as the spec
//!   says (the last CKA_VALUE_LEN bytes); asking for more than the secret's length is
//!   CKR_TEMPLATE_INCONSISTENT. With a KDF the key is the first CKA_VALUE_LEN bytes of its
//!   output, which needs CKA_VALUE_LEN or a key type of fixed length
//!   (CKR_TEMPLATE_INCOMPLETE otherwise) and is at most [`MAX_KDF_OUTPUT`] bytes.
//! - The base key must be a private key: a public key (even one with CKA_DERIVE) is
//!   CKR_KEY_TYPE_INCONSISTENT.

use cryptoki_sys::*;
use keyward_ossl::digest::DigestAlg;
use keyward_ossl::ecdh::{ec_agree, x_agree, x963_kdf};
use keyward_ossl::pkey::KeyKind;
use zeroize::Zeroizing;

use crate::error::{Code, Result};
use crate::mechanism::ec::{decode_ec_point, ec_key};
use crate::mechanism::eddsa::{decode_point, montgomery_key};
use crate::mechanism::{Bytes, KeyLookup, Mech, Registry, derived_key_len};
use crate::object::Object;
use crate::types::{AttrValue, Attrs, MechParams, Mechanism, MechanismInfo};

/// The longest key a KDF derives: far above any key type's size, and it stops a template's
/// CKA_VALUE_LEN from making the token hash gigabytes.
pub const MAX_KDF_OUTPUT: usize = 4096;

/// Point encodings accepted and curves named by OID; compressed points are accepted.
const EC_FLAGS: CK_FLAGS =
    CKF_EC_F_P | CKF_EC_OID | CKF_EC_UNCOMPRESS | CKF_EC_COMPRESS | CKF_DERIVE;

/// The key derivation applied to the shared secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kdf {
    /// CKD_NULL: the raw secret.
    Null,
    /// The ANSI X9.63 KDF with this hash.
    X963(DigestAlg),
}

impl Kdf {
    fn from_ck(kdf: CK_EC_KDF_TYPE) -> Result<Kdf> {
        Ok(match kdf {
            CKD_NULL => Kdf::Null,
            CKD_SHA1_KDF => Kdf::X963(DigestAlg::Sha1),
            CKD_SHA224_KDF => Kdf::X963(DigestAlg::Sha224),
            CKD_SHA256_KDF => Kdf::X963(DigestAlg::Sha256),
            CKD_SHA384_KDF => Kdf::X963(DigestAlg::Sha384),
            CKD_SHA512_KDF => Kdf::X963(DigestAlg::Sha512),
            CKD_SHA3_224_KDF => Kdf::X963(DigestAlg::Sha3_224),
            CKD_SHA3_256_KDF => Kdf::X963(DigestAlg::Sha3_256),
            CKD_SHA3_384_KDF => Kdf::X963(DigestAlg::Sha3_384),
            CKD_SHA3_512_KDF => Kdf::X963(DigestAlg::Sha3_512),
            other => {
                return Err(Code::MechanismParamInvalid.err(format!(
                    "key derivation function {other:#x} is not supported"
                )));
            }
        })
    }
}

/// CK_ECDH1_DERIVE_PARAMS, checked.
struct Params<'a> {
    kdf: Kdf,
    shared_data: &'a [u8],
    public_data: &'a [u8],
}

impl Params<'_> {
    fn from_mech(mech: &Mechanism) -> Result<Params<'_>> {
        let MechParams::Ecdh {
            kdf,
            shared_data,
            public_data,
        } = &mech.params
        else {
            return Err(Code::MechanismParamInvalid.err("ECDH needs CK_ECDH1_DERIVE_PARAMS"));
        };
        let kdf = Kdf::from_ck(*kdf)?;
        if kdf == Kdf::Null && !shared_data.is_empty() {
            return Err(Code::MechanismParamInvalid.err("CKD_NULL takes no shared data"));
        }
        if public_data.is_empty() {
            return Err(Code::MechanismParamInvalid.err("the peer's public value is missing"));
        }
        Ok(Params {
            kdf,
            shared_data,
            public_data,
        })
    }
}

fn bad_peer() -> crate::error::Error {
    Code::MechanismParamInvalid
        .err("the peer's public value is not a valid point of the key's curve")
}

/// The shared secret of the private key `base` and the peer's public value.
fn shared_secret(base: &Object, public_data: &[u8]) -> Result<Bytes> {
    let secret = match base.key_type() {
        Some(CKK_EC) => {
            let key = ec_key(base)?;
            if !key.has_private() {
                return Err(Code::KeyTypeInconsistent.err("ECDH needs an EC private key"));
            }
            let KeyKind::Ec(curve) = key.kind() else {
                return Err(Code::KeyTypeInconsistent.err("not an EC key"));
            };
            let point = decode_ec_point(curve, public_data).map_err(|_| bad_peer())?;
            ec_agree(&key, point)?
        }
        Some(CKK_EC_MONTGOMERY) => {
            let key = montgomery_key(base)?;
            if !key.has_private() {
                return Err(Code::KeyTypeInconsistent.err("key agreement needs a private key"));
            }
            let peer = decode_point(key.curve(), public_data).map_err(|_| bad_peer())?;
            x_agree(&key, peer)?
        }
        _ => return Err(Code::KeyTypeInconsistent.err("not an EC or Montgomery key")),
    };
    secret.ok_or_else(bad_peer)
}

/// CKM_ECDH1_DERIVE (`montgomery` true: also on CKK_EC_MONTGOMERY keys) or
/// CKM_ECDH1_COFACTOR_DERIVE.
struct Ecdh {
    montgomery: bool,
}

impl Mech for Ecdh {
    fn info(&self) -> MechanismInfo {
        if self.montgomery {
            // X25519 (255 bits) to P-521; Montgomery keys name their curve by OID or name.
            MechanismInfo {
                min_key_size: 255,
                max_key_size: 521,
                flags: EC_FLAGS | CKF_EC_CURVENAME,
            }
        } else {
            MechanismInfo {
                min_key_size: 256,
                max_key_size: 521,
                flags: EC_FLAGS,
            }
        }
    }

    fn key_classes(&self) -> Option<&'static [CK_OBJECT_CLASS]> {
        Some(&[CKO_PRIVATE_KEY])
    }

    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        if self.montgomery {
            &[CKK_EC, CKK_EC_MONTGOMERY]
        } else {
            &[CKK_EC]
        }
    }

    fn derive_key(
        &self,
        mech: &Mechanism,
        base: &Object,
        template: &Attrs,
        _keys: &dyn KeyLookup,
    ) -> Result<Attrs> {
        if base.class() != CKO_PRIVATE_KEY {
            return Err(Code::KeyTypeInconsistent.err("ECDH derives from a private key"));
        }
        if !self
            .key_types()
            .contains(&base.key_type().unwrap_or(CK_UNAVAILABLE_INFORMATION))
        {
            return Err(Code::KeyTypeInconsistent.err("this mechanism cannot use this key"));
        }
        let params = Params::from_mech(mech)?;
        let z = shared_secret(base, params.public_data)?;
        let value = match params.kdf {
            Kdf::Null => {
                let len = derived_key_len(template, Some(z.len()))?;
                let start = z.len().checked_sub(len).ok_or_else(|| {
                    Code::TemplateInconsistent.err(format!(
                        "the shared secret is {} bytes, fewer than the {len} asked for",
                        z.len()
                    ))
                })?;
                Zeroizing::new(z[start..].to_vec())
            }
            Kdf::X963(alg) => {
                let len = derived_key_len(template, None)?;
                if len > MAX_KDF_OUTPUT {
                    return Err(Code::AttributeValueInvalid.err(format!(
                        "a key derived by ECDH is at most {MAX_KDF_OUTPUT} bytes"
                    )));
                }
                x963_kdf(alg, &z, params.shared_data, len)?
            }
        };
        let mut out = Attrs::new();
        out.set(CKA_VALUE, AttrValue::Bytes(value));
        Ok(out)
    }
}

pub(crate) fn register(reg: &mut Registry) {
    reg.add(CKM_ECDH1_DERIVE, Box::new(Ecdh { montgomery: true }));
    reg.add(
        CKM_ECDH1_COFACTOR_DERIVE,
        Box::new(Ecdh { montgomery: false }),
    );
}

#[cfg(test)]
mod tests;
