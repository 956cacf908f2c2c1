//! `keyward csr URI`: a PKCS#10 certification request for a key pair, its
//! CertificationRequestInfo written here in DER and signed inside the token.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Args;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use keyward_uri::Pkcs11Uri;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};
use openssl::x509::{X509NameBuilder, X509Req};

use super::sign::{self, Alg, Hash};
use crate::error::{Error, Result};
use crate::select::{self, App, Global, Obj, Token};

pub const CSR_HELP: &str = "\
The request is signed inside the token: ECDSA with SHA-256 (P-256, secp256k1), SHA-384 (P-384)
or SHA-512 (P-521), RSA PKCS#1 v1.5 with SHA-256, or Ed25519/Ed448. --subject takes
\"CN=device-123,O=Acme\" (a comma inside a value is written \\,) or openssl's \"/CN=x/O=y\";
--san takes DNS:name, URI:uri, IP:address or email:address, and may be repeated.

Examples:
  keyward csr 'pkcs11:token=device;object=identity' --subject 'CN=device-123,O=Acme' \\
      --san DNS:device-123.acme.example --san URI:urn:acme:device:123 -o identity.csr
  openssl req -in identity.csr -verify -noout -text";

#[derive(Debug, Args)]
pub struct CsrArgs {
    /// The key pair (its private key signs; its public key goes into the request)
    pub uri: String,
    /// The subject, e.g. "CN=device-123,O=Acme"
    #[arg(long)]
    pub subject: String,
    /// A subject alternative name: DNS:name, URI:uri, IP:address or email:address
    #[arg(long, value_name = "TYPE:VALUE")]
    pub san: Vec<String>,
    /// Write to FILE (default: stdout)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// DER instead of PEM
    #[arg(long)]
    pub der: bool,
}

/// A small DER writer: enough for requests and certificates.
pub mod der {
    /// One TLV with a definite length.
    pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let n = content.len();
        if n < 0x80 {
            out.push(n as u8);
        } else {
            let bytes = n.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
        out.extend_from_slice(content);
        out
    }
    pub fn seq(parts: &[&[u8]]) -> Vec<u8> {
        tlv(0x30, &parts.concat())
    }
    pub fn set(parts: &[&[u8]]) -> Vec<u8> {
        tlv(0x31, &parts.concat())
    }
    /// A non-negative INTEGER from big-endian magnitude bytes.
    pub fn uint(be: &[u8]) -> Vec<u8> {
        let skip = be.iter().take_while(|b| **b == 0).count();
        let mut v: Vec<u8> = be[skip..].to_vec();
        if v.first().is_none_or(|b| b & 0x80 != 0) {
            v.insert(0, 0);
        }
        tlv(0x02, &v)
    }
    pub fn bit_string(bytes: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8];
        v.extend_from_slice(bytes);
        tlv(0x03, &v)
    }
    pub fn octet_string(bytes: &[u8]) -> Vec<u8> {
        tlv(0x04, bytes)
    }
    /// An Extension: OID, critical flag when set, and the value wrapped in an OCTET STRING.
    pub fn extension(oid: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
        let os = octet_string(value);
        if critical {
            seq(&[oid, &[0x01, 0x01, 0xff], &os])
        } else {
            seq(&[oid, &os])
        }
    }
}

pub const OID_SAN: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x11];
const OID_EXTENSION_REQUEST: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e,
];

/// The algorithm to sign with for a public key, and its DER AlgorithmIdentifier.
pub fn signature_alg(key: &PKey<Public>) -> Result<(Alg, Vec<u8>)> {
    const ECDSA: [u8; 8] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x00];
    let ecdsa = |h: Hash, last: u8| {
        let mut oid = ECDSA;
        oid[7] = last;
        (Alg::Ecdsa(h), der::seq(&[&der::tlv(0x06, &oid)]))
    };
    Ok(match key.id() {
        Id::EC => {
            let ec = key
                .ec_key()
                .map_err(|e| Error::pkcs11(format!("reading the EC public key: {e}")))?;
            match ec.group().curve_name() {
                Some(Nid::SECP384R1) => ecdsa(Hash::Sha384, 3),
                Some(Nid::SECP521R1) => ecdsa(Hash::Sha512, 4),
                _ => ecdsa(Hash::Sha256, 2),
            }
        }
        Id::RSA => (
            Alg::RsaPkcs(Hash::Sha256),
            der::seq(&[
                &[
                    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b,
                ],
                &[0x05, 0x00],
            ]),
        ),
        Id::ED25519 => (Alg::Eddsa, der::seq(&[&[0x06, 0x03, 0x2b, 0x65, 0x70]])),
        Id::ED448 => (Alg::Eddsa, der::seq(&[&[0x06, 0x03, 0x2b, 0x65, 0x71]])),
        _ => {
            return Err(Error::usage(
                "only RSA, ECDSA and EdDSA keys can sign requests and certificates",
            ));
        }
    })
}

/// Split "CN=a,O=b" (or "/CN=a/O=b") into (field, value) pairs; `\` escapes the next character.
pub fn parse_subject(subject: &str) -> Result<Vec<(String, String)>> {
    let (body, sep) = match subject.strip_prefix('/') {
        Some(rest) => (rest, '/'),
        None => (subject, ','),
    };
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n) => cur.push(n),
                None => return Err(Error::usage("--subject ends with a lone backslash")),
            }
        } else if c == sep {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    parts.push(cur);
    let mut out = Vec::new();
    for p in parts {
        if p.trim().is_empty() {
            continue;
        }
        let (k, v) = p.split_once('=').ok_or_else(|| {
            Error::usage(format!(
                "--subject: {p:?} is not FIELD=value (e.g. CN=device-123,O=Acme)"
            ))
        })?;
        out.push((k.trim().to_owned(), v.to_owned()));
    }
    if out.is_empty() {
        return Err(Error::usage(
            "--subject is empty: give at least CN=... (e.g. CN=device-123,O=Acme)",
        ));
    }
    Ok(out)
}

/// The DER Name for a subject string.
pub fn subject_der(subject: &str) -> Result<Vec<u8>> {
    let mut b = X509NameBuilder::new().map_err(|e| Error::pkcs11(format!("OpenSSL: {e}")))?;
    for (k, v) in parse_subject(subject)? {
        b.append_entry_by_text(&k, &v).map_err(|e| {
            Error::usage(format!(
                "--subject: {k}={v:?} is not accepted (unknown field or bad value): {e}"
            ))
        })?;
    }
    b.build()
        .to_der()
        .map_err(|e| Error::pkcs11(format!("encoding the subject: {e}")))
}

/// The DER GeneralNames for `--san` values.
pub fn general_names(sans: &[String]) -> Result<Vec<u8>> {
    let mut names = Vec::new();
    for san in sans {
        let (kind, value) = san.split_once(':').ok_or_else(|| {
            Error::usage(format!(
                "--san {san:?}: write TYPE:VALUE (DNS:, URI:, IP: or email:)"
            ))
        })?;
        let ascii = |tag: u8| -> Result<Vec<u8>> {
            if !value.is_ascii() || value.is_empty() {
                return Err(Error::usage(format!(
                    "--san {san:?}: the value must be non-empty ASCII (IA5String)"
                )));
            }
            Ok(der::tlv(tag, value.as_bytes()))
        };
        let gn = match kind.to_ascii_lowercase().as_str() {
            "dns" => ascii(0x82)?,
            "uri" => ascii(0x86)?,
            "email" => ascii(0x81)?,
            "ip" => {
                let ip: IpAddr = value.parse().map_err(|_| {
                    Error::usage(format!("--san {san:?}: {value:?} is not an IP address"))
                })?;
                match ip {
                    IpAddr::V4(a) => der::tlv(0x87, &a.octets()),
                    IpAddr::V6(a) => der::tlv(0x87, &a.octets()),
                }
            }
            _ => {
                return Err(Error::usage(format!(
                    "--san {san:?}: the type must be DNS, URI, IP or email"
                )));
            }
        };
        names.push(gn);
    }
    let refs: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
    Ok(der::seq(&refs))
}

/// Sign `tbs` with the token key and return the DER signature value X.509 wants.
pub fn sign_tbs(session: &Session, key: ObjectHandle, alg: Alg, tbs: &[u8]) -> Result<Vec<u8>> {
    let raw = sign::token_sign(session, key, alg, tbs)?;
    if alg.is_ecdsa() {
        sign::ecdsa_raw_to_der(&raw)
    } else {
        Ok(raw)
    }
}

/// A PKCS#10 request (DER) for the key pair whose private key is `key` and whose public key
/// is `public_key_info` (SubjectPublicKeyInfo DER), signed inside the token. The result is
/// checked against the public key before it is returned.
pub fn build_csr(
    session: &Session,
    key: ObjectHandle,
    public_key_info: &[u8],
    subject: &str,
    sans: &[String],
) -> Result<Vec<u8>> {
    let pkey = PKey::public_key_from_der(public_key_info)
        .map_err(|e| Error::pkcs11(format!("the public key is not SubjectPublicKeyInfo: {e}")))?;
    let spki = pkey
        .public_key_to_der()
        .map_err(|e| Error::pkcs11(format!("encoding the public key: {e}")))?;
    let (alg, alg_id) = signature_alg(&pkey)?;
    let name = subject_der(subject)?;
    let attributes = if sans.is_empty() {
        der::tlv(0xa0, &[])
    } else {
        let exts = der::seq(&[&der::extension(OID_SAN, false, &general_names(sans)?)]);
        der::tlv(
            0xa0,
            &der::seq(&[OID_EXTENSION_REQUEST, &der::set(&[&exts])]),
        )
    };
    let info = der::seq(&[&der::uint(&[0]), &name, &spki, &attributes]);
    let sig = sign_tbs(session, key, alg, &info)?;
    let csr = der::seq(&[&info, &alg_id, &der::bit_string(&sig)]);
    let ok = X509Req::from_der(&csr)
        .and_then(|r| r.verify(&pkey))
        .map_err(|e| Error::pkcs11(format!("the request does not parse back: {e}")))?;
    if !ok {
        return Err(Error::pkcs11(
            "the token's signature does not verify with the key pair's public key",
        ));
    }
    Ok(csr)
}

/// PEM armour around DER.
pub fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    let b64 = openssl::base64::encode_block(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out.into_bytes()
}

/// The private key a URI names, and the SubjectPublicKeyInfo of its pair: from the private
/// key's own attributes, else from the public key with the same CKA_ID.
pub fn key_pair(s: &Session, t: &Token, uri: &Pkcs11Uri) -> Result<(Obj, Vec<u8>)> {
    let private = sign::find_key(s, t, uri, &[ObjectClass::PRIVATE_KEY], true, "private key")?;
    if let Ok(spki) = super::export::spki(s, &private) {
        return Ok((private, spki));
    }
    let handles = s
        .find_objects(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Id(private.id.clone()),
        ])
        .map_err(|e| Error::ck("searching the public key", e))?;
    for h in handles {
        let o = select::describe(s, h)?;
        if let Ok(spki) = super::export::spki(s, &o) {
            return Ok((private, spki));
        }
    }
    Err(Error::not_found(format!(
        "no public key found for {}: the private key carries none and no public key has its CKA_ID",
        private.uri(t)
    ))
    .hint("import the public key or certificate with the same --id"))
}

pub fn run(g: &Global, a: CsrArgs) -> Result<()> {
    let uri = select::parse_uri(&a.uri)?;
    let app = App::open(g, Some(&uri))?;
    let (t, s) = app.user_session(Some(&uri), false, true)?;
    let (key, spki) = key_pair(&s, &t, &uri)?;
    let csr = build_csr(&s, key.handle, &spki, &a.subject, &a.san)?;
    let out = if a.der {
        csr
    } else {
        pem("CERTIFICATE REQUEST", &csr)
    };
    crate::io::write_output(a.output.as_deref(), &out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths() {
        assert_eq!(der::tlv(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        let long = der::tlv(0x04, &[0u8; 200]);
        assert_eq!(&long[..3], &[0x04, 0x81, 200]);
        let longer = der::tlv(0x04, &[0u8; 300]);
        assert_eq!(&longer[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(der::uint(&[0, 0, 0x80]), vec![0x02, 2, 0, 0x80]);
        assert_eq!(der::uint(&[0]), vec![0x02, 1, 0]);
    }

    #[test]
    fn subjects_parse_both_ways() {
        let a = parse_subject("CN=device-123,O=Acme\\, Inc.").unwrap();
        assert_eq!(
            a,
            vec![
                ("CN".to_owned(), "device-123".to_owned()),
                ("O".to_owned(), "Acme, Inc.".to_owned())
            ]
        );
        assert_eq!(parse_subject("/CN=x/O=y").unwrap().len(), 2);
        assert!(parse_subject("CN").is_err());
        assert!(parse_subject("").is_err());
        assert!(subject_der("XX=1").is_err());
    }

    #[test]
    fn sans_encode() {
        let gn = general_names(&["DNS:a.b".to_owned(), "IP:10.0.0.1".to_owned()]).unwrap();
        assert_eq!(
            gn,
            vec![0x30, 11, 0x82, 3, b'a', b'.', b'b', 0x87, 4, 10, 0, 0, 1]
        );
        assert!(general_names(&["FTP:x".to_owned()]).is_err());
        assert!(general_names(&["IP:nope".to_owned()]).is_err());
    }
}
