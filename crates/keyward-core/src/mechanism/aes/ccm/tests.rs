//! CKM_AES_CCM tests: RFC 3610 and SP 800-38C vectors through the operation interface,
//! multi-part equal to single-part, tag, length and parameter errors with their exact codes.

use super::*;
use crate::error::Error;
use crate::mechanism::registry;
use crate::types::{AttrValue, Attrs};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn key(value: &[u8]) -> Object {
    let mut a = Attrs::new();
    a.set(CKA_CLASS, AttrValue::Ulong(CKO_SECRET_KEY));
    a.set(CKA_KEY_TYPE, AttrValue::Ulong(CKK_AES));
    a.set(CKA_VALUE, AttrValue::bytes(value));
    Object::new(a)
}

fn ccm(data_len: usize, nonce: &[u8], aad: &[u8], mac_len: CK_ULONG) -> Mechanism {
    Mechanism {
        mech: CKM_AES_CCM,
        params: MechParams::Ccm {
            data_len: data_len as CK_ULONG,
            nonce: nonce.to_vec(),
            aad: aad.to_vec(),
            mac_len,
        },
    }
}

fn start(encrypt: bool, m: &Mechanism, k: &Object) -> Result<Box<dyn CipherOp>> {
    let family = registry().get(CKM_AES_CCM)?;
    if encrypt {
        family.encrypt_init(m, k)
    } else {
        family.decrypt_init(m, k)
    }
}

fn one_shot(encrypt: bool, m: &Mechanism, k: &Object, data: &[u8]) -> Result<Vec<u8>> {
    let mut op = start(encrypt, m, k)?;
    let bound = op.output_len(data.len(), true);
    let out = op.one_shot(data)?;
    assert!(out.len() <= bound, "{} > {bound}", out.len());
    Ok(out.to_vec())
}

/// Multi-part over `parts`; every update must return nothing (CCM outputs all in final).
fn multi(encrypt: bool, m: &Mechanism, k: &Object, parts: &[&[u8]]) -> Result<Vec<u8>> {
    let mut op = start(encrypt, m, k)?;
    for p in parts {
        assert_eq!(op.output_len(p.len(), false), 0);
        assert!(op.update(p)?.is_empty(), "no output before the final");
    }
    let bound = op.output_len(0, true);
    let out = op.finish()?;
    assert!(out.len() <= bound, "{} > {bound}", out.len());
    Ok(out.to_vec())
}

fn code<T>(r: Result<T>) -> Code {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => Error::code(&e),
    }
}

// RFC 3610 §8, packet vector #1: AES-128, 13-byte nonce, 8-byte header as AAD, 23-byte
// payload, M = 8.
const K: &str = "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf";
const NONCE: &str = "00000003020100a0a1a2a3a4a5";
const AAD: &str = "0001020304050607";
const PT: &str = "08090a0b0c0d0e0f101112131415161718191a1b1c1d1e";
const CT_TAG: &str = "588c979a61c663d2f066d0c2c0f989806d5f6b61dac38417e8d12cfdf926e0";

#[test]
fn rfc3610_vector_single_and_multi_part() {
    let k = key(&h(K));
    let pt = h(PT);
    let expected = h(CT_TAG);
    let m = ccm(pt.len(), &h(NONCE), &h(AAD), 8);
    assert_eq!(one_shot(true, &m, &k, &pt).unwrap(), expected);
    assert_eq!(one_shot(false, &m, &k, &expected).unwrap(), pt);
    for split in [0usize, 1, 7, 16, 22, 23] {
        let (a, b) = pt.split_at(split);
        assert_eq!(multi(true, &m, &k, &[a, b]).unwrap(), expected, "{split}");
    }
    for split in [0usize, 1, 16, 23, 24, 30, 31] {
        let (a, b) = expected.split_at(split);
        assert_eq!(multi(false, &m, &k, &[a, b]).unwrap(), pt, "{split}");
    }
    let parts: Vec<&[u8]> = pt.chunks(3).collect();
    assert_eq!(multi(true, &m, &k, &parts).unwrap(), expected);
}

// NIST SP 800-38C Appendix C, example 3: 12-byte nonce, 20 bytes of AAD, 24-byte payload,
// 8-byte tag.
#[test]
fn sp800_38c_example_3() {
    let k = key(&h("404142434445464748494a4b4c4d4e4f"));
    let pt = h("202122232425262728292a2b2c2d2e2f3031323334353637");
    let m = ccm(
        pt.len(),
        &h("101112131415161718191a1b"),
        &h("000102030405060708090a0b0c0d0e0f10111213"),
        8,
    );
    let ct = one_shot(true, &m, &k, &pt).unwrap();
    assert_eq!(
        hex::encode(&ct),
        "e3b201a9f5b71a7a9b1ceaeccd97e70b6176aad9a4428aa5484392fbc1b09951"
    );
    assert_eq!(multi(false, &m, &k, &[&ct[..5], &ct[5..]]).unwrap(), pt);
}

#[test]
fn tampering_is_encrypted_data_invalid_and_releases_nothing() {
    let k = key(&h(K));
    let pt = h(PT);
    let m = ccm(pt.len(), &h(NONCE), &h(AAD), 8);
    let good = h(CT_TAG);
    for i in [0usize, 10, good.len() - 8, good.len() - 1] {
        let mut bad = good.clone();
        bad[i] ^= 0x01;
        assert_eq!(
            code(one_shot(false, &m, &k, &bad)),
            Code::EncryptedDataInvalid,
            "{i}"
        );
        assert_eq!(
            code(multi(false, &m, &k, &[&bad[..20], &bad[20..]])),
            Code::EncryptedDataInvalid
        );
    }
    let other_aad = ccm(pt.len(), &h(NONCE), b"another header", 8);
    assert_eq!(
        code(one_shot(false, &other_aad, &k, &good)),
        Code::EncryptedDataInvalid
    );
}

#[test]
fn lengths_must_match_ul_data_len() {
    let k = key(&[5u8; 32]);
    let m = ccm(10, &[1u8; 12], b"", 16);
    assert_eq!(one_shot(true, &m, &k, &[0u8; 10]).unwrap().len(), 26);
    assert_eq!(code(one_shot(true, &m, &k, &[0u8; 9])), Code::DataLenRange);
    assert_eq!(code(one_shot(true, &m, &k, &[0u8; 11])), Code::DataLenRange);
    // Too much shows in the update that passes ulDataLen; too little in the final.
    let mut op = start(true, &m, &k).unwrap();
    op.update(&[0u8; 6]).unwrap();
    assert_eq!(code(op.update(&[0u8; 5])), Code::DataLenRange);
    assert_eq!(
        code(multi(true, &m, &k, &[&[0u8; 4], &[0u8; 5]])),
        Code::DataLenRange
    );
    let sealed = one_shot(true, &m, &k, &[9u8; 10]).unwrap();
    assert_eq!(
        code(one_shot(false, &m, &k, &sealed[..25])),
        Code::EncryptedDataLenRange
    );
    let mut longer = sealed.clone();
    longer.push(0);
    assert_eq!(
        code(one_shot(false, &m, &k, &longer)),
        Code::EncryptedDataLenRange
    );
    assert_eq!(
        code(multi(false, &m, &k, &[&longer[..20], &longer[20..]])),
        Code::EncryptedDataLenRange
    );
    assert_eq!(
        code(multi(false, &m, &k, &[&sealed[..3]])),
        Code::EncryptedDataLenRange
    );
    // The length query of a decryption is ulDataLen, of an encryption ulDataLen + MAC.
    assert_eq!(start(false, &m, &k).unwrap().output_len(26, true), 10);
    assert_eq!(start(true, &m, &k).unwrap().output_len(10, true), 26);
}

#[test]
fn empty_payload_authenticates_the_aad() {
    let k = key(&[3u8; 16]);
    let m = ccm(0, &[2u8; 7], b"authenticated only", 4);
    let tag = one_shot(true, &m, &k, b"").unwrap();
    assert_eq!(tag.len(), 4);
    assert!(one_shot(false, &m, &k, &tag).unwrap().is_empty());
    let other = ccm(0, &[2u8; 7], b"authenticated onlx", 4);
    assert_eq!(
        code(one_shot(false, &other, &k, &tag)),
        Code::EncryptedDataInvalid
    );
}

#[test]
fn parameters_have_exact_codes() {
    let k = key(&[1u8; 16]);
    let bad = [
        ccm(4, &[0u8; 6], b"", 8),
        ccm(4, &[0u8; 14], b"", 8),
        ccm(4, &[0u8; 12], b"", 0),
        ccm(4, &[0u8; 12], b"", 2),
        ccm(4, &[0u8; 12], b"", 5),
        ccm(4, &[0u8; 12], b"", 18),
        // A 13-byte nonce leaves two length bytes: 65535 at most.
        ccm(65536, &[0u8; 13], b"", 8),
        // A 12-byte nonce leaves three: 2^24 - 1.
        ccm(1 << 24, &[0u8; 12], b"", 8),
        Mechanism {
            mech: CKM_AES_CCM,
            params: MechParams::Bytes(vec![0u8; 16]),
        },
        Mechanism {
            mech: CKM_AES_CCM,
            params: MechParams::None,
        },
    ];
    for m in &bad {
        assert_eq!(
            code(start(true, m, &k)),
            Code::MechanismParamInvalid,
            "{m:?}"
        );
        assert_eq!(
            code(start(false, m, &k)),
            Code::MechanismParamInvalid,
            "{m:?}"
        );
    }
    for (n, t) in [(7usize, 4), (13, 16), (10, 6), (8, 14)] {
        assert!(start(true, &ccm(65535, &vec![0u8; n], b"", t), &k).is_ok());
    }
    assert_eq!(
        code(start(true, &ccm(4, &[0u8; 12], b"", 8), &key(&[0u8; 20]))),
        Code::KeySizeRange
    );
}

#[test]
fn mechanism_info_is_truthful() {
    let m = registry().get(CKM_AES_CCM).unwrap();
    let i = m.info();
    assert_eq!((i.min_key_size, i.max_key_size), (16, 32));
    assert_eq!(
        i.flags,
        CKF_ENCRYPT
            | CKF_DECRYPT
            | CKF_WRAP
            | CKF_UNWRAP
            | CKF_MESSAGE_ENCRYPT
            | CKF_MESSAGE_DECRYPT
    );
    assert_eq!(m.key_types(), &[CKK_AES]);
}
