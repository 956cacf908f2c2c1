//! `keyward export URI`: public keys as SubjectPublicKeyInfo (PEM or DER), certificates, and
//! data objects; a private or secret key's value is never exported.

use std::path::PathBuf;

use clap::Args;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use cryptoki::session::Session;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::pkey::{Id, PKey, Public};
use openssl::rsa::Rsa;
use openssl::x509::X509;

use super::key::{Curve, OID_ED448, OID_ED25519, OID_X448, OID_X25519};
use crate::error::{Error, Result};
use crate::select::{self, App, Global, Obj, parse_uri};

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The public key, certificate or data object to export
    pub uri: String,
    /// Write to FILE instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// DER instead of PEM (keys and certificates)
    #[arg(long)]
    pub der: bool,
    /// Log in first (private data objects and certificates need it)
    #[arg(long)]
    pub login: bool,
}

pub fn run(g: &Global, a: ExportArgs) -> Result<()> {
    let uri = parse_uri(&a.uri)?;
    let app = App::open(g, Some(&uri))?;
    let login = a.login || uri.pin_value().is_some() || uri.pin_source().is_some();
    let (t, s) = app.user_session(Some(&uri), false, login)?;
    let found = select::objects(&s, Some(&uri))?;
    // A key pair's label names both halves; the public half is the one to export.
    let exportable: Vec<Obj> = found
        .iter()
        .filter(|o| {
            matches!(
                o.class,
                ObjectClass::PUBLIC_KEY | ObjectClass::CERTIFICATE | ObjectClass::DATA
            )
        })
        .cloned()
        .collect();
    let o = if exportable.is_empty() && !found.is_empty() {
        let o = select::exactly_one(found, &t, &uri, login)?;
        if o.class == ObjectClass::SECRET_KEY {
            return Err(Error::usage(format!(
                "{} is a secret key: its value never leaves the token",
                o.uri(&t)
            )));
        }
        o
    } else {
        select::exactly_one(exportable, &t, &uri, login)?
    };
    let bytes = match o.class {
        ObjectClass::PUBLIC_KEY | ObjectClass::PRIVATE_KEY => {
            let der = spki(&s, &o).map_err(|e| {
                if o.class == ObjectClass::PRIVATE_KEY {
                    Error::usage(format!(
                        "{} is a private key: its value is never exported, and it carries no public key (CKA_PUBLIC_KEY_INFO)",
                        o.uri(&t)
                    ))
                    .hint("export the public key: add type=public to the URI")
                } else {
                    e
                }
            })?;
            if a.der { der } else { pem("PUBLIC KEY", &der) }
        }
        ObjectClass::CERTIFICATE => {
            let der = value(&s, &o)?;
            if a.der {
                der
            } else {
                let x = X509::from_der(&der).map_err(|e| {
                    Error::pkcs11(format!("the certificate's value is not X.509 DER: {e}"))
                })?;
                x.to_pem()
                    .map_err(|e| Error::pkcs11(format!("encoding PEM: {e}")))?
            }
        }
        _ => value(&s, &o)?,
    };
    crate::io::write_output(a.output.as_deref(), &bytes)
}

fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    let b64 = openssl::base64::encode_block(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out.into_bytes()
}

fn value(s: &Session, o: &Obj) -> Result<Vec<u8>> {
    let attrs = s
        .get_attributes(o.handle, &[AttributeType::Value])
        .map_err(|e| Error::ck("reading the object's value", e))?;
    attrs
        .into_iter()
        .find_map(|a| match a {
            Attribute::Value(v) => Some(v),
            _ => None,
        })
        .ok_or_else(|| Error::pkcs11("the object's value is not readable (sensitive or absent)"))
}

/// The SubjectPublicKeyInfo DER of a key: CKA_PUBLIC_KEY_INFO when the module fills it, else
/// built from the modulus and exponent or the curve and point.
pub fn spki(s: &Session, o: &Obj) -> Result<Vec<u8>> {
    let attrs = s
        .get_attributes(
            o.handle,
            &[
                AttributeType::PublicKeyInfo,
                AttributeType::Modulus,
                AttributeType::PublicExponent,
                AttributeType::EcParams,
                AttributeType::EcPoint,
            ],
        )
        .map_err(|e| Error::ck("reading the public key", e))?;
    let (mut info, mut n, mut e, mut params, mut point) = (None, None, None, None, None);
    for a in attrs {
        match a {
            Attribute::PublicKeyInfo(v) if !v.is_empty() => info = Some(v),
            Attribute::Modulus(v) => n = Some(v),
            Attribute::PublicExponent(v) => e = Some(v),
            Attribute::EcParams(v) => params = Some(v),
            Attribute::EcPoint(v) => point = Some(v),
            _ => {}
        }
    }
    if let Some(i) = info {
        return Ok(i);
    }
    let key: PKey<Public> = match (select::key_type(s, o.handle), n, e, params, point) {
        (Some(KeyType::RSA), Some(n), Some(e), _, _) => {
            let rsa = Rsa::from_public_components(bn(&n)?, bn(&e)?)
                .map_err(|e| Error::pkcs11(format!("the RSA public key is invalid: {e}")))?;
            PKey::from_rsa(rsa).map_err(ossl)?
        }
        (Some(KeyType::EC), _, _, Some(p), Some(pt)) => {
            let curve = Curve::from_oid_der(&p)
                .ok_or_else(|| Error::pkcs11("the key's curve is not one this tool knows"))?;
            let group = EcGroup::from_curve_name(curve.nid()).map_err(ossl)?;
            let mut ctx = BigNumContext::new().map_err(ossl)?;
            let raw = unwrap_octet_string(&pt);
            let point = EcPoint::from_bytes(&group, raw, &mut ctx)
                .map_err(|e| Error::pkcs11(format!("the EC point is invalid: {e}")))?;
            PKey::from_ec_key(EcKey::from_public_key(&group, &point).map_err(ossl)?)
                .map_err(ossl)?
        }
        (Some(KeyType::EC_EDWARDS | KeyType::EC_MONTGOMERY), _, _, Some(p), Some(pt)) => {
            let id = match p.as_slice() {
                x if x == OID_ED25519 => Id::ED25519,
                x if x == OID_ED448 => Id::ED448,
                x if x == OID_X25519 => Id::X25519,
                x if x == OID_X448 => Id::X448,
                _ => return Err(Error::pkcs11("the key's curve is not one this tool knows")),
            };
            PKey::public_key_from_raw_bytes(unwrap_octet_string(&pt), id)
                .map_err(|e| Error::pkcs11(format!("the public key is invalid: {e}")))?
        }
        _ => {
            return Err(Error::pkcs11(
                "the object carries no public key this tool can read",
            ));
        }
    };
    key.public_key_to_der().map_err(ossl)
}

fn bn(b: &[u8]) -> Result<BigNum> {
    BigNum::from_slice(b).map_err(ossl)
}

fn ossl(e: openssl::error::ErrorStack) -> Error {
    Error::pkcs11(format!("OpenSSL: {e}"))
}

/// CKA_EC_POINT is a DER OCTET STRING by the spec; some modules store the bare point.
pub fn unwrap_octet_string(v: &[u8]) -> &[u8] {
    match v {
        [0x04, len, rest @ ..] if usize::from(*len) == rest.len() && *len < 0x80 => rest,
        [0x04, 0x81, len, rest @ ..] if usize::from(*len) == rest.len() => rest,
        [0x04, 0x82, hi, lo, rest @ ..]
            if (usize::from(*hi) << 8 | usize::from(*lo)) == rest.len() =>
        {
            rest
        }
        _ => v,
    }
}
