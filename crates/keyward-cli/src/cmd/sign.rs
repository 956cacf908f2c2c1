//! `keyward sign URI`: a signature or MAC made inside the token, with the mechanism chosen
//! from the key type, and the signing pieces `verify`, `csr` and `cert` share.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use cryptoki::error::RvError;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use keyward_uri::Pkcs11Uri;
use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;

use super::key::{Curve, OID_ED448, OID_ED25519};
use crate::error::{Error, Result, rv_of};
use crate::select::{self, Obj, Token};

pub const SIGN_HELP: &str = "\
Mechanisms (--mechanism), default by key type:
  ecdsa-sha256 (P-256, secp256k1), ecdsa-sha384 (P-384), ecdsa-sha512 (P-521), ecdsa (the
  input is already a hash); rsa-pkcs-sha256 (RSA default: PKCS#1 v1.5, what `openssl dgst
  -sha256` checks), rsa-pkcs-sha384, rsa-pkcs-sha512, rsa-pss-sha256, rsa-pss-sha384,
  rsa-pss-sha512 (salt as long as the hash, MGF1 with the same hash); eddsa (Ed25519, Ed448);
  hmac-sha256 (secret keys), hmac-sha384, hmac-sha512.
ECDSA signatures are written as DER (what openssl expects) unless --format raw asks for
PKCS#11's r||s.

Examples:
  keyward sign 'pkcs11:token=device;object=identity' -i firmware.bin -o firmware.sig
  openssl dgst -sha256 -verify identity.pem -signature firmware.sig firmware.bin
  keyward sign 'pkcs11:token=device;object=backup' --mechanism rsa-pss-sha256 -i doc -o doc.sig
  echo -n hello | keyward sign 'pkcs11:token=device;object=mac' > hello.mac";

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The private key (or secret key for a MAC)
    pub uri: String,
    /// Read the data from FILE (default: stdin)
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Write the signature to FILE (default: stdout)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The signature mechanism (default: by key type, see below)
    #[arg(long, value_name = "NAME")]
    pub mechanism: Option<String>,
    /// ECDSA signature encoding: der (default) or raw r||s
    #[arg(long, value_enum)]
    pub format: Option<SigFormat>,
}

/// How an ECDSA signature is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SigFormat {
    /// r||s, each as long as the curve's field (PKCS#11's own format)
    Raw,
    /// an ASN.1 Ecdsa-Sig-Value (X.509, openssl)
    Der,
}

/// A hash inside a signature mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn md(self) -> MessageDigest {
        match self {
            Hash::Sha256 => MessageDigest::sha256(),
            Hash::Sha384 => MessageDigest::sha384(),
            Hash::Sha512 => MessageDigest::sha512(),
        }
    }
    fn mech_type(self) -> MechanismType {
        match self {
            Hash::Sha256 => MechanismType::SHA256,
            Hash::Sha384 => MechanismType::SHA384,
            Hash::Sha512 => MechanismType::SHA512,
        }
    }
    fn mgf(self) -> PkcsMgfType {
        match self {
            Hash::Sha256 => PkcsMgfType::MGF1_SHA256,
            Hash::Sha384 => PkcsMgfType::MGF1_SHA384,
            Hash::Sha512 => PkcsMgfType::MGF1_SHA512,
        }
    }
    fn len(self) -> u64 {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }
}

/// A signature algorithm the tool drives through the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Ecdsa(Hash),
    /// CKM_ECDSA over input that is already a hash.
    EcdsaPrehashed,
    RsaPkcs(Hash),
    RsaPss(Hash),
    Eddsa,
    Hmac(Hash),
}

impl Alg {
    pub fn parse(name: &str) -> Result<Alg> {
        let h = |s: &str| match s {
            "sha256" => Some(Hash::Sha256),
            "sha384" => Some(Hash::Sha384),
            "sha512" => Some(Hash::Sha512),
            _ => None,
        };
        let lower = name.to_ascii_lowercase();
        let alg = match lower.as_str() {
            "ecdsa" => Some(Alg::EcdsaPrehashed),
            "eddsa" | "ed25519" | "ed448" => Some(Alg::Eddsa),
            other => {
                if let Some(x) = other.strip_prefix("ecdsa-") {
                    h(x).map(Alg::Ecdsa)
                } else if let Some(x) = other.strip_prefix("rsa-pkcs-") {
                    h(x).map(Alg::RsaPkcs)
                } else if let Some(x) = other.strip_prefix("rsa-pss-") {
                    h(x).map(Alg::RsaPss)
                } else if let Some(x) = other.strip_prefix("hmac-") {
                    h(x).map(Alg::Hmac)
                } else {
                    None
                }
            }
        };
        alg.ok_or_else(|| {
            Error::usage(format!(
                "unknown signature mechanism {name:?}: use ecdsa-sha256|384|512, ecdsa, rsa-pkcs-sha256|384|512, rsa-pss-sha256|384|512, eddsa or hmac-sha256|384|512"
            ))
        })
    }

    pub fn is_ecdsa(self) -> bool {
        matches!(self, Alg::Ecdsa(_) | Alg::EcdsaPrehashed)
    }

    /// Whether a key of this kind can use the algorithm.
    fn fits(self, kind: &KeyKind) -> bool {
        match self {
            Alg::Ecdsa(_) | Alg::EcdsaPrehashed => matches!(kind, KeyKind::Ec { .. }),
            Alg::RsaPkcs(_) | Alg::RsaPss(_) => matches!(kind, KeyKind::Rsa),
            Alg::Eddsa => matches!(kind, KeyKind::Ed25519 | KeyKind::Ed448),
            Alg::Hmac(_) => matches!(kind, KeyKind::Secret),
        }
    }
}

/// What a key is, as far as choosing a mechanism goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    /// An ECDSA curve; `field` is the length of r and s in raw signatures.
    Ec {
        curve: Option<Curve>,
        field: Option<usize>,
    },
    Ed25519,
    Ed448,
    Montgomery,
    Secret,
}

impl KeyKind {
    /// The default signature algorithm for this kind of key.
    pub fn default_alg(self) -> Result<Alg> {
        Ok(match self {
            KeyKind::Rsa => Alg::RsaPkcs(Hash::Sha256),
            KeyKind::Ec {
                curve: Some(Curve::P384),
                ..
            } => Alg::Ecdsa(Hash::Sha384),
            KeyKind::Ec {
                curve: Some(Curve::P521),
                ..
            } => Alg::Ecdsa(Hash::Sha512),
            KeyKind::Ec { .. } => Alg::Ecdsa(Hash::Sha256),
            KeyKind::Ed25519 | KeyKind::Ed448 => Alg::Eddsa,
            KeyKind::Secret => Alg::Hmac(Hash::Sha256),
            KeyKind::Montgomery => {
                return Err(Error::usage(
                    "X25519/X448 keys only agree on secrets; they cannot sign (see keyward derive)",
                ));
            }
        })
    }
}

pub fn curve_field_len(c: Curve) -> usize {
    match c {
        Curve::P256 | Curve::Secp256k1 => 32,
        Curve::P384 => 48,
        Curve::P521 => 66,
    }
}

/// Read the key type (and curve) of a key object.
pub fn key_kind(s: &Session, h: ObjectHandle) -> Result<KeyKind> {
    let kt = select::key_type(s, h);
    let params = || -> Result<Vec<u8>> {
        let attrs = s
            .get_attributes(h, &[AttributeType::EcParams])
            .map_err(|e| Error::ck("reading the key's curve", e))?;
        Ok(attrs
            .into_iter()
            .find_map(|a| match a {
                Attribute::EcParams(p) => Some(p),
                _ => None,
            })
            .unwrap_or_default())
    };
    Ok(match kt {
        Some(KeyType::RSA) => KeyKind::Rsa,
        Some(KeyType::EC) => {
            let curve = Curve::from_oid_der(&params()?);
            KeyKind::Ec {
                curve,
                field: curve.map(curve_field_len),
            }
        }
        Some(KeyType::EC_EDWARDS) => {
            let p = params()?;
            if p == OID_ED448 {
                KeyKind::Ed448
            } else if p == OID_ED25519 {
                KeyKind::Ed25519
            } else {
                // Some modules name the curve by a printable string instead of an OID.
                let text = String::from_utf8_lossy(&p).to_ascii_lowercase();
                if text.contains("448") {
                    KeyKind::Ed448
                } else {
                    KeyKind::Ed25519
                }
            }
        }
        Some(KeyType::EC_MONTGOMERY) => KeyKind::Montgomery,
        Some(KeyType::GENERIC_SECRET | KeyType::AES) => KeyKind::Secret,
        _ => {
            return Err(Error::usage(
                "the key's type is not one this tool can sign or verify with",
            ));
        }
    })
}

/// The one key among the objects the URI matches whose class is one of `classes` (a key
/// pair's label names both halves).
pub fn find_key(
    s: &Session,
    t: &Token,
    uri: &Pkcs11Uri,
    classes: &[ObjectClass],
    logged_in: bool,
    what: &str,
) -> Result<Obj> {
    let found = select::objects(s, Some(uri))?;
    let keys: Vec<Obj> = found
        .iter()
        .filter(|o| classes.contains(&o.class))
        .cloned()
        .collect();
    if keys.is_empty() && !found.is_empty() {
        let names: Vec<String> = found.iter().map(|o| o.uri(t).to_string()).collect();
        return Err(Error::usage(format!(
            "{} names no {what}; it matches:\n    {}",
            select::shown(uri),
            names.join("\n    ")
        )));
    }
    select::exactly_one(keys, t, uri, logged_in)
}

fn mechanism(alg: Alg, pss: &PkcsPssParams) -> Mechanism<'static> {
    match alg {
        Alg::Ecdsa(Hash::Sha256) => Mechanism::EcdsaSha256,
        Alg::Ecdsa(Hash::Sha384) => Mechanism::EcdsaSha384,
        Alg::Ecdsa(Hash::Sha512) => Mechanism::EcdsaSha512,
        Alg::EcdsaPrehashed => Mechanism::Ecdsa,
        Alg::RsaPkcs(Hash::Sha256) => Mechanism::Sha256RsaPkcs,
        Alg::RsaPkcs(Hash::Sha384) => Mechanism::Sha384RsaPkcs,
        Alg::RsaPkcs(Hash::Sha512) => Mechanism::Sha512RsaPkcs,
        Alg::RsaPss(Hash::Sha256) => Mechanism::Sha256RsaPkcsPss(*pss),
        Alg::RsaPss(Hash::Sha384) => Mechanism::Sha384RsaPkcsPss(*pss),
        Alg::RsaPss(Hash::Sha512) => Mechanism::Sha512RsaPkcsPss(*pss),
        Alg::Eddsa => Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
        Alg::Hmac(Hash::Sha256) => Mechanism::Sha256Hmac,
        Alg::Hmac(Hash::Sha384) => Mechanism::Sha384Hmac,
        Alg::Hmac(Hash::Sha512) => Mechanism::Sha512Hmac,
    }
}

fn pss_params(alg: Alg) -> PkcsPssParams {
    let h = match alg {
        Alg::RsaPss(h) => h,
        _ => Hash::Sha256,
    };
    PkcsPssParams {
        hash_alg: h.mech_type(),
        mgf: h.mgf(),
        s_len: h.len().into(),
    }
}

fn digest(h: Hash, data: &[u8]) -> Result<Vec<u8>> {
    openssl::hash::hash(h.md(), data)
        .map(|d| d.to_vec())
        .map_err(|e| Error::pkcs11(format!("hashing: {e}")))
}

/// Sign `data` inside the token; the result is PKCS#11's format (r||s for ECDSA). ECDSA with
/// a hash falls back to hashing here and CKM_ECDSA when the token lacks the combined
/// mechanism (SoftHSMv2 has only CKM_ECDSA).
pub fn token_sign(s: &Session, key: ObjectHandle, alg: Alg, data: &[u8]) -> Result<Vec<u8>> {
    let pss = pss_params(alg);
    match s.sign(&mechanism(alg, &pss), key, data) {
        Ok(sig) => Ok(sig),
        Err(e) if rv_of(&e) == Some(RvError::MechanismInvalid) => match alg {
            Alg::Ecdsa(h) => s
                .sign(&Mechanism::Ecdsa, key, &digest(h, data)?)
                .map_err(|e| Error::ck("signing with CKM_ECDSA", e)),
            _ => Err(Error::ck(&format!("signing with {alg:?}"), e)),
        },
        Err(e) => Err(Error::ck(&format!("signing with {alg:?}"), e)),
    }
}

/// Verify inside the token: `Ok(false)` for a signature that does not match.
pub fn token_verify(
    s: &Session,
    key: ObjectHandle,
    alg: Alg,
    data: &[u8],
    sig: &[u8],
) -> Result<bool> {
    let pss = pss_params(alg);
    let verdict =
        |r: cryptoki::error::Result<()>| -> std::result::Result<bool, cryptoki::error::Error> {
            match r {
                Ok(()) => Ok(true),
                Err(e)
                    if matches!(
                        rv_of(&e),
                        Some(RvError::SignatureInvalid | RvError::SignatureLenRange)
                    ) =>
                {
                    Ok(false)
                }
                Err(e) => Err(e),
            }
        };
    match verdict(s.verify(&mechanism(alg, &pss), key, data, sig)) {
        Ok(v) => Ok(v),
        Err(e) if rv_of(&e) == Some(RvError::MechanismInvalid) => match alg {
            Alg::Ecdsa(h) => verdict(s.verify(&Mechanism::Ecdsa, key, &digest(h, data)?, sig))
                .map_err(|e| Error::ck("verifying with CKM_ECDSA", e)),
            _ => Err(Error::ck(&format!("verifying with {alg:?}"), e)),
        },
        Err(e) => Err(Error::ck(&format!("verifying with {alg:?}"), e)),
    }
}

/// r||s (PKCS#11) to an ASN.1 Ecdsa-Sig-Value.
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return Err(Error::pkcs11(format!(
            "the token returned a {}-byte ECDSA signature, not r||s",
            raw.len()
        )));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let bn = |b: &[u8]| BigNum::from_slice(b).map_err(|e| Error::pkcs11(format!("OpenSSL: {e}")));
    EcdsaSig::from_private_components(bn(r)?, bn(s)?)
        .and_then(|sig| sig.to_der())
        .map_err(|e| Error::pkcs11(format!("encoding the ECDSA signature: {e}")))
}

/// An ASN.1 Ecdsa-Sig-Value to r||s with each half `field` bytes long.
pub fn ecdsa_der_to_raw(der: &[u8], field: usize) -> Result<Vec<u8>> {
    let sig = EcdsaSig::from_der(der)
        .map_err(|e| Error::usage(format!("the signature is not a DER ECDSA signature: {e}")))?;
    let mut out = Vec::with_capacity(field * 2);
    for n in [sig.r(), sig.s()] {
        let b = n.to_vec();
        if b.len() > field {
            return Err(Error::usage(
                "the ECDSA signature's r or s is longer than the curve allows",
            ));
        }
        out.extend(std::iter::repeat_n(0u8, field - b.len()));
        out.extend(b);
    }
    Ok(out)
}

/// The algorithm to use: the one named, checked against the key, or the key's default.
pub fn choose_alg(name: Option<&str>, kind: KeyKind) -> Result<Alg> {
    let alg = match name {
        Some(n) => Alg::parse(n)?,
        None => kind.default_alg()?,
    };
    if !alg.fits(&kind) {
        return Err(Error::usage(format!(
            "{} does not fit this key ({kind:?})",
            name.unwrap_or("the mechanism")
        )));
    }
    Ok(alg)
}

pub fn run(g: &select::Global, a: SignArgs) -> Result<()> {
    let uri = select::parse_uri(&a.uri)?;
    let app = select::App::open(g, Some(&uri))?;
    let (t, s) = app.user_session(Some(&uri), false, true)?;
    let key = find_key(
        &s,
        &t,
        &uri,
        &[ObjectClass::PRIVATE_KEY, ObjectClass::SECRET_KEY],
        true,
        "private or secret key",
    )?;
    let kind = key_kind(&s, key.handle)?;
    let alg = choose_alg(a.mechanism.as_deref(), kind)?;
    if a.format.is_some() && !alg.is_ecdsa() {
        return Err(Error::usage(
            "--format applies to ECDSA signatures only; other signatures have one encoding",
        ));
    }
    let data = crate::io::read_input(a.input.as_deref())?;
    let raw = token_sign(&s, key.handle, alg, &data)?;
    let out = if alg.is_ecdsa() && a.format != Some(SigFormat::Raw) {
        ecdsa_raw_to_der(&raw)?
    } else {
        raw
    };
    crate::io::write_output(a.output.as_deref(), &out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        assert_eq!(
            Alg::parse("ECDSA-SHA384").unwrap(),
            Alg::Ecdsa(Hash::Sha384)
        );
        assert_eq!(
            Alg::parse("rsa-pss-sha512").unwrap(),
            Alg::RsaPss(Hash::Sha512)
        );
        assert_eq!(Alg::parse("eddsa").unwrap(), Alg::Eddsa);
        assert!(Alg::parse("rsa-pss-md5").is_err());
    }

    #[test]
    fn defaults_follow_the_curve() {
        let ec = |c| KeyKind::Ec {
            curve: Some(c),
            field: Some(curve_field_len(c)),
        };
        assert_eq!(
            ec(Curve::P521).default_alg().unwrap(),
            Alg::Ecdsa(Hash::Sha512)
        );
        assert_eq!(
            ec(Curve::P256).default_alg().unwrap(),
            Alg::Ecdsa(Hash::Sha256)
        );
        assert_eq!(
            KeyKind::Rsa.default_alg().unwrap(),
            Alg::RsaPkcs(Hash::Sha256)
        );
        assert!(KeyKind::Montgomery.default_alg().is_err());
    }

    #[test]
    fn ecdsa_encodings_round_trip() {
        let mut raw = vec![0u8; 64];
        raw[31] = 7; // r = 7: short integers are padded back to the field length
        raw[32] = 0x80; // s has its top bit set: DER adds a zero byte
        raw[63] = 1;
        let der = ecdsa_raw_to_der(&raw).unwrap();
        assert_eq!(&der[..5], &[0x30, 0x26, 0x02, 0x01, 0x07]);
        assert_eq!(ecdsa_der_to_raw(&der, 32).unwrap(), raw);
        assert!(ecdsa_der_to_raw(&der, 16).is_err());
        assert!(ecdsa_raw_to_der(&raw[..63]).is_err());
    }
}
