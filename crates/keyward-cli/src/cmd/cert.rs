//! `keyward cert self-sign URI`: an X.509 v3 certificate for a key pair, its TBSCertificate
//! written here in DER and signed inside the token, optionally stored as a CKO_CERTIFICATE
//! linked to the key by CKA_ID.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use cryptoki::object::{Attribute, CertificateType, ObjectClass};
use openssl::pkey::PKey;
use openssl::x509::X509;

use super::csr::{self, OID_SAN, der};
use super::key::print_made;
use crate::error::{Error, Result};
use crate::select::{self, App, Global};

#[derive(Debug, Subcommand)]
pub enum CertCmd {
    /// Make a self-signed certificate for a key pair, signed inside the token
    #[command(after_help = "\
The certificate is X.509 v3 with a random 16-byte serial, issuer = subject, validity from now
for --days, basicConstraints CA:TRUE and keyUsage digitalSignature+keyCertSign (critical, as
for `openssl req -x509`), subject and authority key identifiers (SHA-1 of the
SubjectPublicKeyInfo) and the --san names. Signature algorithms as for `keyward csr`.

Examples:
  keyward cert self-sign 'pkcs11:token=device;object=identity' --subject 'CN=device-123,O=Acme' \\
      --days 365 --san DNS:device-123.local -o identity.crt
  keyward cert self-sign 'pkcs11:token=device;object=identity' --subject CN=device-123 --import
  openssl verify -CAfile identity.crt identity.crt")]
    SelfSign(SelfSignArgs),
}

#[derive(Debug, Args)]
pub struct SelfSignArgs {
    /// The key pair (its private key signs; its public key is certified)
    pub uri: String,
    /// The subject (and issuer), e.g. "CN=device-123,O=Acme"
    #[arg(long)]
    pub subject: String,
    /// Validity in days from now
    #[arg(long, default_value = "365")]
    pub days: u32,
    /// A subject alternative name: DNS:name, URI:uri, IP:address or email:address
    #[arg(long, value_name = "TYPE:VALUE")]
    pub san: Vec<String>,
    /// Also store the certificate in the token, with the key's CKA_ID and label
    #[arg(long)]
    pub import: bool,
    /// Write to FILE (default: stdout, unless --import)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// DER instead of PEM
    #[arg(long)]
    pub der: bool,
}

pub fn run(g: &Global, c: CertCmd) -> Result<()> {
    match c {
        CertCmd::SelfSign(a) => self_sign(g, a),
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// An X.509 Time: UTCTime through 2049, GeneralizedTime after (RFC 5280 4.1.2.5).
fn x509_time(secs: i64) -> Vec<u8> {
    let (y, mo, d) = civil(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    let (h, mi, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    if (1950..2050).contains(&y) {
        let t = format!("{:02}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z", y % 100);
        der::tlv(0x17, t.as_bytes())
    } else {
        let t = format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z");
        der::tlv(0x18, t.as_bytes())
    }
}

fn self_sign(g: &Global, a: SelfSignArgs) -> Result<()> {
    if a.days == 0 || a.days > 36_500 {
        return Err(Error::usage("--days must be 1 to 36500"));
    }
    let uri = select::parse_uri(&a.uri)?;
    let app = App::open(g, Some(&uri))?;
    let (t, s) = app.user_session(Some(&uri), a.import, true)?;
    let (key, spki_in) = csr::key_pair(&s, &t, &uri)?;
    let pkey = PKey::public_key_from_der(&spki_in)
        .map_err(|e| Error::pkcs11(format!("the public key is not SubjectPublicKeyInfo: {e}")))?;
    let spki = pkey
        .public_key_to_der()
        .map_err(|e| Error::pkcs11(format!("encoding the public key: {e}")))?;
    let (alg, alg_id) = csr::signature_alg(&pkey)?;
    let name = csr::subject_der(&a.subject)?;

    let mut serial = [0u8; 16];
    openssl::rand::rand_bytes(&mut serial)
        .map_err(|e| Error::pkcs11(format!("making a serial number: {e}")))?;
    serial[0] = (serial[0] & 0x7f) | 0x40; // positive, and always 16 bytes long
    let serial_der = der::uint(&serial);

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| Error::usage("the system clock is before 1970"))?
        .as_secs() as i64;
    let validity = der::seq(&[
        &x509_time(now),
        &x509_time(now + i64::from(a.days) * 86_400),
    ]);

    let key_id = openssl::hash::hash(openssl::hash::MessageDigest::sha1(), &spki)
        .map_err(|e| Error::pkcs11(format!("hashing the public key: {e}")))?;
    let mut exts = vec![
        // basicConstraints CA:TRUE
        der::extension(
            &[0x06, 0x03, 0x55, 0x1d, 0x13],
            true,
            &der::seq(&[&[0x01, 0x01, 0xff]]),
        ),
        // keyUsage digitalSignature (bit 0) and keyCertSign (bit 5)
        der::extension(
            &[0x06, 0x03, 0x55, 0x1d, 0x0f],
            true,
            &[0x03, 0x02, 0x02, 0x84],
        ),
        // subjectKeyIdentifier
        der::extension(
            &[0x06, 0x03, 0x55, 0x1d, 0x0e],
            false,
            &der::octet_string(&key_id),
        ),
        // authorityKeyIdentifier [0] keyIdentifier: itself
        der::extension(
            &[0x06, 0x03, 0x55, 0x1d, 0x23],
            false,
            &der::seq(&[&der::tlv(0x80, &key_id)]),
        ),
    ];
    if !a.san.is_empty() {
        exts.push(der::extension(OID_SAN, false, &csr::general_names(&a.san)?));
    }
    let ext_refs: Vec<&[u8]> = exts.iter().map(Vec::as_slice).collect();
    let tbs = der::seq(&[
        &[0xa0, 0x03, 0x02, 0x01, 0x02],
        &serial_der,
        &alg_id,
        &name,
        &validity,
        &name,
        &spki,
        &der::tlv(0xa3, &der::seq(&ext_refs)),
    ]);
    let sig = csr::sign_tbs(&s, key.handle, alg, &tbs)?;
    let cert = der::seq(&[&tbs, &alg_id, &der::bit_string(&sig)]);
    let ok = X509::from_der(&cert)
        .and_then(|c| c.verify(&pkey))
        .map_err(|e| Error::pkcs11(format!("the certificate does not parse back: {e}")))?;
    if !ok {
        return Err(Error::pkcs11(
            "the token's signature does not verify with the key pair's public key",
        ));
    }

    if a.import {
        let tmpl = vec![
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(CertificateType::X_509),
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Label(key.label.as_bytes().to_vec()),
            Attribute::Id(key.id.clone()),
            Attribute::Subject(name.clone()),
            Attribute::Issuer(name.clone()),
            Attribute::SerialNumber(serial_der),
            Attribute::Value(cert.clone()),
        ];
        let h = s
            .create_object(&tmpl)
            .map_err(|e| Error::ck("storing the certificate", e))?;
        print_made(&s, &t, &[h])?;
        if a.output.is_none() {
            return Ok(());
        }
    }
    let out = if a.der {
        cert
    } else {
        csr::pem("CERTIFICATE", &cert)
    };
    crate::io::write_output(a.output.as_deref(), &out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_then_generalized() {
        assert_eq!(x509_time(0), der::tlv(0x17, b"700101000000Z"));
        // 2000-02-29 12:34:56
        assert_eq!(x509_time(951_827_696), der::tlv(0x17, b"000229123456Z"));
        // 2050-01-01 00:00:00
        assert_eq!(x509_time(2_524_608_000), der::tlv(0x18, b"20500101000000Z"));
    }
}
