//! `keyward import FILE [URI]`: private keys (PKCS#8, encrypted or not, PKCS#1, SEC1), X.509
//! certificates, PKCS#12 bundles and raw data objects, parsed with OpenSSL and created with
//! C_CreateObject; a key, its public half and its certificate share one CKA_ID.

use std::path::PathBuf;

use clap::Args;
use cryptoki::object::{Attribute, CertificateType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use openssl::bn::BigNumContext;
use openssl::ec::PointConversionForm;
use openssl::pkey::{Id, PKey, PKeyRef, Private, Public};
use openssl::x509::X509;
use zeroize::Zeroize;

use super::key::{
    Curve, OID_ED448, OID_ED25519, OID_X448, OID_X25519, Usage, parse_id, usage_attrs,
};
use crate::error::{Error, Result};
use crate::pin::{self, Sources};
use crate::select::{App, Global, parse_uri};

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file to import (PEM or DER; `-` for stdin)
    pub file: PathBuf,
    /// The token, optionally with the object= label and id= to give the new objects
    pub uri: Option<String>,
    /// The label (CKA_LABEL); default: the URI's object=, else the certificate's common name
    #[arg(long)]
    pub label: Option<String>,
    /// The id in hex (CKA_ID); default: the URI's id=, else the SHA-1 of the public key, so a
    /// key and its certificate imported separately still link
    #[arg(long, value_name = "HEX")]
    pub id: Option<String>,
    /// Import the file's bytes as a data object (CKO_DATA) instead of parsing it
    #[arg(long)]
    pub data: bool,
    /// With --data: make the data object readable without login (CKA_PRIVATE false)
    #[arg(long, requires = "data")]
    pub public: bool,
    /// Read the password of an encrypted key or PKCS#12 bundle from the first line of FILE
    /// (or set KEYWARD_IMPORT_PASSWORD)
    #[arg(long, value_name = "FILE")]
    pub password_source: Option<PathBuf>,
    /// Usages of imported private keys, comma-separated (default: sign, or derive for
    /// X25519/X448)
    #[arg(long, value_delimiter = ',')]
    pub usage: Vec<Usage>,
    /// Let imported private keys be wrapped out of the token later (CKA_EXTRACTABLE)
    #[arg(long)]
    pub extractable: bool,
}

/// What a file held.
enum Item {
    Key(PKey<Private>),
    Public(PKey<Public>),
    Cert(X509),
}

pub fn run(g: &Global, a: ImportArgs) -> Result<()> {
    let uri = a.uri.as_deref().map(parse_uri).transpose()?;
    let input = zeroize::Zeroizing::new(crate::io::read_input(Some(&a.file))?);
    let password = Sources {
        file: a.password_source.as_deref(),
        env: Some(pin::ENV_IMPORT),
        prompt: "Password of the file: ",
        ..Default::default()
    };
    let label_arg = a
        .label
        .clone()
        .or_else(|| uri.as_ref().and_then(|u| u.object()).map(str::to_owned));
    let id_arg = match (&a.id, uri.as_ref().and_then(|u| u.id())) {
        (Some(h), _) => Some(parse_id(h)?),
        (None, Some(id)) => Some(id.to_vec()),
        (None, None) => None,
    };

    if a.data {
        let label = label_arg.ok_or_else(|| {
            Error::usage("give the data object a label: --label or object= in the URI")
        })?;
        let app = App::open(g, uri.as_ref())?;
        let (t, s) = app.user_session(uri.as_ref(), true, true)?;
        let mut tmpl = vec![
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Private(!a.public),
            Attribute::Label(label.into_bytes()),
            Attribute::Application(b"keyward".to_vec()),
            Attribute::Value(input.to_vec()),
        ];
        let h = create(&s, &mut tmpl, "creating the data object")?;
        return super::key::print_made(&s, &t, &[h]);
    }

    let items = parse(&input, &password)?;
    if items.is_empty() {
        return Err(Error::usage(format!(
            "{} holds no key or certificate",
            a.file.display()
        )));
    }
    let app = App::open(g, uri.as_ref())?;
    let (t, s) = app.user_session(uri.as_ref(), true, true)?;
    // The first certificate matching a key names it; CA certificates after it keep their own.
    let key_spki = items.iter().find_map(|i| match i {
        Item::Key(k) => k.public_key_to_der().ok(),
        Item::Public(k) => k.public_key_to_der().ok(),
        Item::Cert(_) => None,
    });
    let mut made = Vec::new();
    let mut ca_count = 0;
    for item in &items {
        let spki = match item {
            Item::Key(k) => k.public_key_to_der().map_err(ossl)?,
            Item::Public(k) => k.public_key_to_der().map_err(ossl)?,
            Item::Cert(c) => c
                .public_key()
                .and_then(|k| k.public_key_to_der())
                .map_err(ossl)?,
        };
        let is_ca_extra =
            matches!(item, Item::Cert(_)) && key_spki.as_ref().is_some_and(|k| *k != spki);
        let id = match (&id_arg, is_ca_extra) {
            (Some(id), false) => id.clone(),
            _ => openssl::sha::sha1(&spki).to_vec(),
        };
        let cn = match item {
            Item::Cert(c) => common_name(c),
            _ => None,
        };
        let label = if is_ca_extra {
            ca_count += 1;
            cn.clone().unwrap_or_else(|| {
                format!(
                    "{}-ca{ca_count}",
                    label_arg.as_deref().unwrap_or("imported")
                )
            })
        } else {
            label_arg
                .clone()
                .or_else(|| {
                    items.iter().find_map(|i| match i {
                        Item::Cert(c) => common_name(c),
                        _ => None,
                    })
                })
                .unwrap_or_else(|| "imported".to_owned())
        };
        let common = vec![
            Attribute::Token(true),
            Attribute::Label(label.into_bytes()),
            Attribute::Id(id),
        ];
        match item {
            Item::Cert(c) => {
                let mut tmpl = common;
                tmpl.extend([
                    Attribute::Class(ObjectClass::CERTIFICATE),
                    Attribute::CertificateType(CertificateType::X_509),
                    Attribute::Private(false),
                    Attribute::Subject(c.subject_name().to_der().map_err(ossl)?),
                    Attribute::Issuer(c.issuer_name().to_der().map_err(ossl)?),
                    Attribute::SerialNumber(der_integer(
                        &c.serial_number().to_bn().map_err(ossl)?.to_vec(),
                    )),
                    Attribute::Value(c.to_der().map_err(ossl)?),
                ]);
                made.push(create(&s, &mut tmpl, "creating the certificate")?);
            }
            Item::Public(k) => {
                let (kt, material) = public_material(k)?;
                let usage = default_usage(kt, &a.usage);
                let (_, pub_use) = usage_attrs(&usage, false);
                let mut tmpl = common;
                tmpl.extend([
                    Attribute::Class(ObjectClass::PUBLIC_KEY),
                    Attribute::KeyType(kt),
                    Attribute::Private(false),
                ]);
                tmpl.extend(material);
                tmpl.extend(pub_use);
                made.push(create(&s, &mut tmpl, "creating the public key")?);
            }
            Item::Key(k) => {
                let (kt, mut private) = private_material(k)?;
                let usage = default_usage(kt, &a.usage);
                let (priv_use, pub_use) = usage_attrs(&usage, false);
                let mut tmpl = common.clone();
                tmpl.extend([
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::KeyType(kt),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(a.extractable),
                ]);
                tmpl.append(&mut private);
                tmpl.extend(priv_use);
                made.push(create(&s, &mut tmpl, "creating the private key")?);
                // The public half as its own object, so it can be exported and found by URI.
                let pk = PKey::public_key_from_der(&spki).map_err(ossl)?;
                let (_, material) = public_material(&pk)?;
                let mut tmpl = common;
                tmpl.extend([
                    Attribute::Class(ObjectClass::PUBLIC_KEY),
                    Attribute::KeyType(kt),
                    Attribute::Private(false),
                ]);
                tmpl.extend(material);
                tmpl.extend(pub_use);
                made.push(create(&s, &mut tmpl, "creating the public key")?);
            }
        }
    }
    super::key::print_made(&s, &t, &made)
}

fn default_usage(kt: KeyType, given: &[Usage]) -> Vec<Usage> {
    if !given.is_empty() {
        given.to_vec()
    } else if kt == KeyType::EC_MONTGOMERY {
        vec![Usage::Derive]
    } else {
        vec![Usage::Sign]
    }
}

/// Create an object, then wipe the key material the template held.
fn create(s: &Session, tmpl: &mut [Attribute], doing: &str) -> Result<ObjectHandle> {
    let r = s.create_object(tmpl).map_err(|e| Error::ck(doing, e));
    for a in tmpl.iter_mut() {
        match a {
            Attribute::Value(v)
            | Attribute::PrivateExponent(v)
            | Attribute::Prime1(v)
            | Attribute::Prime2(v)
            | Attribute::Exponent1(v)
            | Attribute::Exponent2(v)
            | Attribute::Coefficient(v) => v.zeroize(),
            _ => {}
        }
    }
    r
}

fn ossl(e: openssl::error::ErrorStack) -> Error {
    Error::usage(format!("OpenSSL: {e}"))
}

fn common_name(c: &X509) -> Option<String> {
    c.subject_name()
        .entries_by_nid(openssl::nid::Nid::COMMONNAME)
        .next()
        .and_then(|e| e.data().to_string().ok())
}

/// A DER INTEGER from big-endian magnitude bytes (CKA_SERIAL_NUMBER).
fn der_integer(mag: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(mag.len() + 1);
    if mag.first().is_none_or(|b| *b & 0x80 != 0) {
        body.push(0);
    }
    body.extend_from_slice(mag);
    let mut out = vec![0x02];
    der_len(&mut out, body.len());
    out.extend(body);
    out
}

fn der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
}

/// A DER OCTET STRING around `v` (CKA_EC_POINT).
fn octet_string(v: &[u8]) -> Vec<u8> {
    let mut out = vec![0x04];
    der_len(&mut out, v.len());
    out.extend_from_slice(v);
    out
}

fn public_material<T: openssl::pkey::HasPublic>(
    k: &PKeyRef<T>,
) -> Result<(KeyType, Vec<Attribute>)> {
    match k.id() {
        Id::RSA => {
            let r = k.rsa().map_err(ossl)?;
            Ok((
                KeyType::RSA,
                vec![
                    Attribute::Modulus(r.n().to_vec()),
                    Attribute::PublicExponent(r.e().to_vec()),
                ],
            ))
        }
        Id::EC => {
            let ec = k.ec_key().map_err(ossl)?;
            let curve = ec
                .group()
                .curve_name()
                .and_then(Curve::from_nid)
                .ok_or_else(|| {
                    Error::usage("the key's curve is not P-256, P-384, P-521 or secp256k1")
                })?;
            let mut ctx = BigNumContext::new().map_err(ossl)?;
            let point = ec
                .public_key()
                .to_bytes(ec.group(), PointConversionForm::UNCOMPRESSED, &mut ctx)
                .map_err(ossl)?;
            Ok((
                KeyType::EC,
                vec![
                    Attribute::EcParams(curve.oid_der().to_vec()),
                    Attribute::EcPoint(octet_string(&point)),
                ],
            ))
        }
        id => {
            let (kt, oid) = raw_kind(id)?;
            let raw = k.raw_public_key().map_err(ossl)?;
            Ok((
                kt,
                vec![
                    Attribute::EcParams(oid.to_vec()),
                    Attribute::EcPoint(octet_string(&raw)),
                ],
            ))
        }
    }
}

fn raw_kind(id: Id) -> Result<(KeyType, &'static [u8])> {
    match id {
        Id::ED25519 => Ok((KeyType::EC_EDWARDS, OID_ED25519)),
        Id::ED448 => Ok((KeyType::EC_EDWARDS, OID_ED448)),
        Id::X25519 => Ok((KeyType::EC_MONTGOMERY, OID_X25519)),
        Id::X448 => Ok((KeyType::EC_MONTGOMERY, OID_X448)),
        _ => Err(Error::usage(
            "unsupported key algorithm (RSA, EC, Ed25519, Ed448, X25519 and X448 are)",
        )),
    }
}

fn private_material(k: &PKey<Private>) -> Result<(KeyType, Vec<Attribute>)> {
    match k.id() {
        Id::RSA => {
            let r = k.rsa().map_err(ossl)?;
            let need = |b: Option<&openssl::bn::BigNumRef>| -> Result<Vec<u8>> {
                b.map(|b| b.to_vec())
                    .ok_or_else(|| Error::usage("the RSA key lacks its CRT parameters"))
            };
            Ok((
                KeyType::RSA,
                vec![
                    Attribute::Modulus(r.n().to_vec()),
                    Attribute::PublicExponent(r.e().to_vec()),
                    Attribute::PrivateExponent(r.d().to_vec()),
                    Attribute::Prime1(need(r.p())?),
                    Attribute::Prime2(need(r.q())?),
                    Attribute::Exponent1(need(r.dmp1())?),
                    Attribute::Exponent2(need(r.dmq1())?),
                    Attribute::Coefficient(need(r.iqmp())?),
                ],
            ))
        }
        Id::EC => {
            let ec = k.ec_key().map_err(ossl)?;
            let curve = ec
                .group()
                .curve_name()
                .and_then(Curve::from_nid)
                .ok_or_else(|| {
                    Error::usage("the key's curve is not P-256, P-384, P-521 or secp256k1")
                })?;
            let len = usize::try_from(ec.group().order_bits().div_ceil(8)).unwrap_or(66);
            let d = ec
                .private_key()
                .to_vec_padded(i32::try_from(len).unwrap_or(66))
                .map_err(ossl)?;
            Ok((
                KeyType::EC,
                vec![
                    Attribute::EcParams(curve.oid_der().to_vec()),
                    Attribute::Value(d),
                ],
            ))
        }
        id => {
            let (kt, oid) = raw_kind(id)?;
            let raw = k.raw_private_key().map_err(ossl)?;
            Ok((
                kt,
                vec![Attribute::EcParams(oid.to_vec()), Attribute::Value(raw)],
            ))
        }
    }
}

/// Every key and certificate in a PEM or DER file.
fn parse(input: &[u8], password: &Sources<'_>) -> Result<Vec<Item>> {
    if let Some(start) = find(input, b"-----BEGIN ") {
        return parse_pem(&input[start..], password);
    }
    let der = input;
    if let Ok(c) = X509::from_der(der) {
        return Ok(vec![Item::Cert(c)]);
    }
    if let Ok(k) = PKey::private_key_from_der(der) {
        return Ok(vec![Item::Key(k)]);
    }
    if let Ok(k) = PKey::public_key_from_der(der) {
        return Ok(vec![Item::Public(k)]);
    }
    if let Ok(p12) = openssl::pkcs12::Pkcs12::from_der(der) {
        let pass = password.get()?;
        let parsed = p12.parse2(&pass).map_err(|_| {
            Error::pin("cannot open the PKCS#12 bundle: wrong password or damaged file")
        })?;
        let mut out = Vec::new();
        if let Some(k) = parsed.pkey {
            out.push(Item::Key(k));
        }
        if let Some(c) = parsed.cert {
            out.push(Item::Cert(c));
        }
        for c in parsed.ca.into_iter().flatten() {
            out.push(Item::Cert(c));
        }
        return Ok(out);
    }
    // Last: an encrypted PKCS#8 key, which needs the password.
    if der.first() == Some(&0x30) {
        let pass = password.get()?;
        if let Ok(k) = PKey::private_key_from_pkcs8_passphrase(der, pass.as_bytes()) {
            return Ok(vec![Item::Key(k)]);
        }
    }
    Err(Error::usage(
        "the file is not a certificate, a private or public key (PKCS#8, PKCS#1, SEC1, SPKI) or a PKCS#12 bundle; use --data to import raw bytes",
    ))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_pem(mut rest: &[u8], password: &Sources<'_>) -> Result<Vec<Item>> {
    let mut out = Vec::new();
    while let Some(start) = find(rest, b"-----BEGIN ") {
        let block_start = &rest[start..];
        let label_end = find(&block_start[11..], b"-----")
            .ok_or_else(|| Error::usage("malformed PEM header"))?;
        let label = String::from_utf8_lossy(&block_start[11..11 + label_end]).into_owned();
        let end_marker = format!("-----END {label}-----");
        let end = find(block_start, end_marker.as_bytes())
            .ok_or_else(|| Error::usage(format!("PEM block {label:?} has no end line")))?
            + end_marker.len();
        let block = &block_start[..end];
        let bad = |e: openssl::error::ErrorStack| {
            Error::usage(format!("cannot parse the PEM block {label:?}: {e}"))
        };
        match label.as_str() {
            "CERTIFICATE" | "TRUSTED CERTIFICATE" | "X509 CERTIFICATE" => {
                out.push(Item::Cert(X509::from_pem(block).map_err(bad)?))
            }
            "PUBLIC KEY" => out.push(Item::Public(PKey::public_key_from_pem(block).map_err(bad)?)),
            "RSA PUBLIC KEY" => {
                let r = openssl::rsa::Rsa::public_key_from_pem_pkcs1(block).map_err(bad)?;
                out.push(Item::Public(PKey::from_rsa(r).map_err(bad)?))
            }
            "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" => {
                let encrypted = label == "ENCRYPTED PRIVATE KEY"
                    || find(block, b"Proc-Type: 4,ENCRYPTED").is_some();
                let k = if encrypted {
                    let pass = password.get()?;
                    PKey::private_key_from_pem_passphrase(block, pass.as_bytes()).map_err(|_| {
                        Error::pin("cannot decrypt the private key: wrong password or damaged file")
                    })?
                } else {
                    PKey::private_key_from_pem(block).map_err(bad)?
                };
                out.push(Item::Key(k));
            }
            "EC PARAMETERS" => {}
            other => return Err(Error::usage(format!("unsupported PEM block {other:?}"))),
        }
        rest = &block_start[end..];
    }
    Ok(out)
}
