//! X.509 certificate fields PKCS#11 keeps next to a certificate: subject, issuer and serial
//! number, each as the DER the certificate itself carries.
//!
//! OpenSSL decides whether the bytes are a certificate at all; the serial number and the
//! outer length are read from the caller's bytes, so the stored values are exactly the
//! encodings inside the certificate rather than re-encodings. Decoding without a target
//! object makes OpenSSL skip its extension cache (and the SHA-1 it would fetch), so no
//! algorithm is taken from the default library context here.

use openssl::x509::X509;

use crate::{Error, Result};

/// The searchable fields of one X.509 certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertFields {
    /// DER of the subject Name.
    pub subject: Vec<u8>,
    /// DER of the issuer Name.
    pub issuer: Vec<u8>,
    /// DER of the serialNumber INTEGER (tag, length and content).
    pub serial: Vec<u8>,
}

/// Parse a DER X.509 certificate. Anything that is not exactly one certificate (truncated,
/// trailing bytes, not a certificate) is an error.
pub fn parse_certificate(der: &[u8]) -> Result<CertFields> {
    let (outer, rest) = tlv(der, 0x30).ok_or_else(|| bad("not a DER SEQUENCE"))?;
    if !rest.is_empty() {
        return Err(bad("bytes after the certificate"));
    }
    let cert = X509::from_der(der)?;
    let subject = cert.subject_name().to_der()?;
    let issuer = cert.issuer_name().to_der()?;
    let serial = serial_der(outer).ok_or_else(|| bad("no serial number"))?;
    Ok(CertFields {
        subject,
        issuer,
        serial,
    })
}

fn bad(why: &str) -> Error {
    Error(format!("X.509 certificate: {why}"))
}

/// The serialNumber TLV inside Certificate's content: tbsCertificate is the first SEQUENCE,
/// and in it an optional `[0] EXPLICIT version` precedes the INTEGER serial.
fn serial_der(cert_content: &[u8]) -> Option<Vec<u8>> {
    let (tbs, _) = tlv(cert_content, 0x30)?;
    let mut fields = tbs;
    if fields.first() == Some(&0xA0) {
        fields = tlv(fields, 0xA0)?.1;
    }
    let (_, after) = tlv(fields, 0x02)?;
    let len = fields.len() - after.len();
    Some(fields.get(..len)?.to_vec())
}

/// Read one DER TLV with tag `tag` from the front of `input`: (content, remaining input).
/// Only definite lengths are accepted; a length longer than the input is `None`.
fn tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    if t != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        // 0x80 is BER's indefinite length; more than 4 length bytes is no certificate.
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some(rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::asn1::{Asn1Integer, Asn1Time, Asn1Type};
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::{X509Builder, X509NameBuilder};

    fn name(cn: &str) -> openssl::x509::X509Name {
        let mut b = X509NameBuilder::new().unwrap();
        b.append_entry_by_nid_with_type(Nid::COMMONNAME, cn, Asn1Type::UTF8STRING)
            .unwrap();
        b.build()
    }

    /// DER of a Name with one CN, encoded by hand so the test does not trust OpenSSL's encoder.
    fn name_der(cn: &str) -> Vec<u8> {
        let mut atv = vec![0x06, 0x03, 0x55, 0x04, 0x03, 0x0C, cn.len() as u8];
        atv.extend_from_slice(cn.as_bytes());
        let mut seq = vec![0x30, atv.len() as u8];
        seq.extend(atv);
        let mut set = vec![0x31, seq.len() as u8];
        set.extend(seq);
        let mut out = vec![0x30, set.len() as u8];
        out.extend(set);
        out
    }

    fn cert(serial_hex: &str) -> Vec<u8> {
        let key = PKey::from_ec_key(
            EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
        )
        .unwrap();
        let mut b = X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        let sn = Asn1Integer::from_bn(&BigNum::from_hex_str(serial_hex).unwrap()).unwrap();
        b.set_serial_number(&sn).unwrap();
        b.set_subject_name(&name("keyward leaf")).unwrap();
        b.set_issuer_name(&name("keyward ca")).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        b.build().to_der().unwrap()
    }

    #[test]
    fn fields_match_hand_encoded_der() {
        // High bit set: DER needs a leading zero byte.
        let der = cert("8F0102");
        let f = parse_certificate(&der).unwrap();
        assert_eq!(f.subject, name_der("keyward leaf"));
        assert_eq!(f.issuer, name_der("keyward ca"));
        assert_eq!(f.serial, vec![0x02, 0x04, 0x00, 0x8F, 0x01, 0x02]);
        let f = parse_certificate(&cert("01")).unwrap();
        assert_eq!(f.serial, vec![0x02, 0x01, 0x01]);
    }

    #[test]
    fn refuses_what_is_not_one_certificate() {
        let der = cert("01");
        assert!(parse_certificate(&[]).is_err());
        assert!(parse_certificate(b"not a certificate").is_err());
        assert!(parse_certificate(&der[..der.len() - 1]).is_err());
        let mut trailing = der.clone();
        trailing.push(0);
        assert!(parse_certificate(&trailing).is_err());
        // A well-formed SEQUENCE that is not a certificate.
        assert!(parse_certificate(&[0x30, 0x03, 0x02, 0x01, 0x01]).is_err());
    }
}
