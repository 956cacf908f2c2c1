//! Key material shared by the suite: curve OIDs, keys made with the openssl crate and their
//! PKCS#11 templates, exported public keys turned back into openssl keys, a test certificate.

#![allow(dead_code)]

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint, PointConversionForm};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private, Public};
use openssl::rsa::Rsa;
use openssl::x509::{X509, X509NameBuilder};

use crate::common::attr_bytes;

/// DER of the OID prime256v1 (CKA_EC_PARAMS).
pub const P256_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER of the OID secp384r1.
pub const P384_OID: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
/// DER of the OID secp521r1.
pub const P521_OID: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
/// DER of the OID secp256k1.
pub const K256_OID: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];

pub fn nid_of(oid: &[u8]) -> Nid {
    if oid == P256_OID {
        Nid::X9_62_PRIME256V1
    } else if oid == P384_OID {
        Nid::SECP384R1
    } else if oid == P521_OID {
        Nid::SECP521R1
    } else if oid == K256_OID {
        Nid::SECP256K1
    } else {
        panic!("unknown curve OID {}", hex::encode(oid))
    }
}

/// DER OCTET STRING around `content` (short and long length forms).
pub fn der_octet_string(content: &[u8]) -> Vec<u8> {
    let mut v = vec![0x04];
    let n = content.len();
    if n < 0x80 {
        v.push(n as u8);
    } else if n < 0x100 {
        v.extend([0x81, n as u8]);
    } else {
        v.extend([0x82, (n >> 8) as u8, n as u8]);
    }
    v.extend_from_slice(content);
    v
}

/// The content of a DER OCTET STRING, checking that nothing else is there.
pub fn der_octet_string_content(der: &[u8]) -> &[u8] {
    assert_eq!(
        der.first(),
        Some(&0x04),
        "not an OCTET STRING: {}",
        hex::encode(der)
    );
    let (len, off) = match der[1] {
        n if n < 0x80 => (usize::from(n), 2),
        0x81 => (usize::from(der[2]), 3),
        0x82 => ((usize::from(der[2]) << 8) | usize::from(der[3]), 4),
        _ => panic!("unexpected DER length"),
    };
    assert_eq!(der.len(), off + len, "OCTET STRING length mismatch");
    &der[off..]
}

/// The public key of an EC key object (CKA_EC_PARAMS + CKA_EC_POINT) as an openssl key.
pub fn ec_public_from_token(s: &Session, public: ObjectHandle) -> PKey<Public> {
    let params = attr_bytes(s, public, AttributeType::EcParams);
    let point_der = attr_bytes(s, public, AttributeType::EcPoint);
    let point = der_octet_string_content(&point_der);
    let group = EcGroup::from_curve_name(nid_of(&params)).unwrap();
    let mut ctx = BigNumContext::new().unwrap();
    let p = EcPoint::from_bytes(&group, point, &mut ctx).expect("a valid point");
    PKey::from_ec_key(EcKey::from_public_key(&group, &p).unwrap()).unwrap()
}

/// The public key of an RSA key object (CKA_MODULUS + CKA_PUBLIC_EXPONENT).
pub fn rsa_public_from_token(s: &Session, public: ObjectHandle) -> PKey<Public> {
    let n = attr_bytes(s, public, AttributeType::Modulus);
    let e = attr_bytes(s, public, AttributeType::PublicExponent);
    let rsa = Rsa::from_public_components(
        BigNum::from_slice(&n).unwrap(),
        BigNum::from_slice(&e).unwrap(),
    )
    .unwrap();
    PKey::from_rsa(rsa).unwrap()
}

/// A raw `r ‖ s` ECDSA signature as DER, for openssl.
pub fn ecdsa_raw_to_der(sig: &[u8]) -> Vec<u8> {
    let half = sig.len() / 2;
    let r = BigNum::from_slice(&sig[..half]).unwrap();
    let s = BigNum::from_slice(&sig[half..]).unwrap();
    EcdsaSig::from_private_components(r, s)
        .unwrap()
        .to_der()
        .unwrap()
}

/// A DER ECDSA signature as raw `r ‖ s` of `half` bytes each.
pub fn ecdsa_der_to_raw(der: &[u8], half: usize) -> Vec<u8> {
    let sig = EcdsaSig::from_der(der).unwrap();
    let mut v = sig.r().to_vec_padded(half as i32).unwrap();
    v.extend(sig.s().to_vec_padded(half as i32).unwrap());
    v
}

/// Verify with openssl: `true` if `sig` is valid for `data` under `key` and `md`.
pub fn openssl_verify(key: &PKey<Public>, md: MessageDigest, data: &[u8], sig: &[u8]) -> bool {
    let mut v = openssl::sign::Verifier::new(md, key).unwrap();
    v.update(data).unwrap();
    v.verify(sig).unwrap_or(false)
}

/// Generate an EC key pair in the token.
pub fn gen_ec(s: &Session, oid: &[u8], token: bool) -> (ObjectHandle, ObjectHandle) {
    s.generate_key_pair(
        &Mechanism::EccKeyPairGen,
        &[
            Attribute::EcParams(oid.to_vec()),
            Attribute::Token(token),
            Attribute::Verify(true),
            Attribute::Label(b"ec".to_vec()),
        ],
        &[
            Attribute::Token(token),
            Attribute::Sign(true),
            Attribute::Label(b"ec".to_vec()),
        ],
    )
    .expect("EC C_GenerateKeyPair")
}

/// Generate an RSA key pair in the token.
pub fn gen_rsa(s: &Session, bits: u64) -> (ObjectHandle, ObjectHandle) {
    s.generate_key_pair(
        &Mechanism::RsaPkcsKeyPairGen,
        &[
            Attribute::ModulusBits(bits.into()),
            Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
            Attribute::Verify(true),
        ],
        &[Attribute::Sign(true)],
    )
    .expect("RSA C_GenerateKeyPair")
}

/// Generate an AES key of `len` bytes in the token.
pub fn gen_aes(s: &Session, len: u64, extra: &[Attribute]) -> ObjectHandle {
    let mut t = vec![
        Attribute::ValueLen(len.into()),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
    ];
    t.extend_from_slice(extra);
    s.generate_key(&Mechanism::AesKeyGen, &t)
        .expect("C_GenerateKey AES")
}

/// A P-256 key made by openssl.
pub fn openssl_ec(nid: Nid) -> EcKey<Private> {
    EcKey::generate(&EcGroup::from_curve_name(nid).unwrap()).unwrap()
}

/// The uncompressed point of an EC key.
pub fn ec_point_bytes(k: &EcKey<Private>) -> Vec<u8> {
    let mut ctx = BigNumContext::new().unwrap();
    k.public_key()
        .to_bytes(k.group(), PointConversionForm::UNCOMPRESSED, &mut ctx)
        .unwrap()
}

/// Templates importing an openssl EC key: (public, private).
pub fn ec_import_templates(k: &EcKey<Private>, oid: &[u8]) -> (Vec<Attribute>, Vec<Attribute>) {
    let half = (k.group().degree() as usize).div_ceil(8);
    let public = vec![
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(KeyType::EC),
        Attribute::EcParams(oid.to_vec()),
        Attribute::EcPoint(der_octet_string(&ec_point_bytes(k))),
        Attribute::Verify(true),
    ];
    let private = vec![
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::EC),
        Attribute::EcParams(oid.to_vec()),
        Attribute::Value(k.private_key().to_vec_padded(half as i32).unwrap()),
        Attribute::Sign(true),
    ];
    (public, private)
}

/// Templates importing an openssl RSA key: (public, private with CRT values).
pub fn rsa_import_templates(k: &Rsa<Private>) -> (Vec<Attribute>, Vec<Attribute>) {
    let public = vec![
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(KeyType::RSA),
        Attribute::Modulus(k.n().to_vec()),
        Attribute::PublicExponent(k.e().to_vec()),
        Attribute::Verify(true),
    ];
    let private = vec![
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::RSA),
        Attribute::Modulus(k.n().to_vec()),
        Attribute::PublicExponent(k.e().to_vec()),
        Attribute::PrivateExponent(k.d().to_vec()),
        Attribute::Prime1(k.p().unwrap().to_vec()),
        Attribute::Prime2(k.q().unwrap().to_vec()),
        Attribute::Exponent1(k.dmp1().unwrap().to_vec()),
        Attribute::Exponent2(k.dmq1().unwrap().to_vec()),
        Attribute::Coefficient(k.iqmp().unwrap().to_vec()),
        Attribute::Sign(true),
    ];
    (public, private)
}

/// A self-signed certificate with serial 0x01F2 and its expected DER fields:
/// (certificate, subject, issuer, serial INTEGER).
pub struct TestCert {
    pub der: Vec<u8>,
    pub subject: Vec<u8>,
    pub issuer: Vec<u8>,
    pub serial: Vec<u8>,
}

pub fn test_certificate(cn: &str) -> TestCert {
    let key = PKey::from_ec_key(openssl_ec(Nid::X9_62_PRIME256V1)).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    name.append_entry_by_text("O", "Keyward tests").unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let serial = BigNum::from_u32(0x01F2).unwrap().to_asn1_integer().unwrap();
    b.set_serial_number(&serial).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let cert = b.build();
    TestCert {
        der: cert.to_der().unwrap(),
        subject: cert.subject_name().to_der().unwrap(),
        issuer: cert.issuer_name().to_der().unwrap(),
        // DER INTEGER 0x01F2: tag, length, big-endian content.
        serial: vec![0x02, 0x02, 0x01, 0xF2],
    }
}
