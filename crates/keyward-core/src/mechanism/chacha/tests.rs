//! ChaCha20 family tests: RFC 8439 §2.8.2 through the operation interface, multi-part equal
//! to single-part, tag and parameter errors with their exact codes, key generation.

use super::*;
use crate::mechanism::registry;
use crate::types::{AttrValue, Attrs};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn key(value: &[u8]) -> Object {
    let mut a = Attrs::new();
    a.set(CKA_CLASS, AttrValue::Ulong(CKO_SECRET_KEY));
    a.set(CKA_KEY_TYPE, AttrValue::Ulong(CKK_CHACHA20));
    a.set(CKA_VALUE, AttrValue::bytes(value));
    Object::new(a)
}

fn aead(nonce: &[u8], aad: &[u8]) -> Mechanism {
    Mechanism {
        mech: CKM_CHACHA20_POLY1305,
        params: MechParams::Gcm {
            iv: nonce.to_vec(),
            iv_bits: (nonce.len() * 8) as CK_ULONG,
            aad: aad.to_vec(),
            tag_bits: 128,
        },
    }
}

fn start(encrypt: bool, m: &Mechanism, k: &Object) -> Result<Box<dyn CipherOp>> {
    let family = registry().get(CKM_CHACHA20_POLY1305)?;
    if encrypt {
        family.encrypt_init(m, k)
    } else {
        family.decrypt_init(m, k)
    }
}

/// Multi-part over `parts`, checking each output against its bound; decryption must
/// output nothing before the final.
fn run(encrypt: bool, m: &Mechanism, k: &Object, parts: &[&[u8]]) -> Result<Vec<u8>> {
    let mut op = start(encrypt, m, k)?;
    let mut out = Vec::new();
    for p in parts {
        let bound = op.output_len(p.len(), false);
        let o = op.update(p)?;
        assert!(o.len() <= bound);
        if !encrypt {
            assert!(o.is_empty(), "no plaintext before the tag is checked");
        }
        out.extend_from_slice(&o);
    }
    let bound = op.output_len(0, true);
    let o = op.finish()?;
    assert!(o.len() <= bound);
    out.extend_from_slice(&o);
    Ok(out)
}

fn one_shot(encrypt: bool, m: &Mechanism, k: &Object, data: &[u8]) -> Result<Vec<u8>> {
    let mut op = start(encrypt, m, k)?;
    let bound = op.output_len(data.len(), true);
    let out = op.one_shot(data)?;
    assert_eq!(out.len(), bound);
    Ok(out.to_vec())
}

fn code<T>(r: Result<T>) -> Code {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.code(),
    }
}

// RFC 8439 §2.8.2.
const KEY: &str = "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f";
const NONCE: &str = "070000004041424344454647";
const AAD: &str = "50515253c0c1c2c3c4c5c6c7";
const PT: &[u8] = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
const CT: &str = "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116";
const TAG: &str = "1ae10b594f09e26a7e902ecbd0600691";

#[test]
fn rfc8439_vector_single_and_multi_part() {
    let k = key(&h(KEY));
    let m = aead(&h(NONCE), &h(AAD));
    let expected = h(&format!("{CT}{TAG}"));
    assert_eq!(one_shot(true, &m, &k, PT).unwrap(), expected);
    assert_eq!(one_shot(false, &m, &k, &expected).unwrap(), PT);
    for split in [0usize, 1, 63, 64, 65, 113, 114] {
        let (a, b) = PT.split_at(split);
        assert_eq!(run(true, &m, &k, &[a, b]).unwrap(), expected, "{split}");
    }
    // Decryption splits inside the tag, at its start, and byte by byte.
    for split in [0usize, 1, 100, 114, 120, 129, 130] {
        let (a, b) = expected.split_at(split);
        assert_eq!(run(false, &m, &k, &[a, b]).unwrap(), PT, "{split}");
    }
    let bytes: Vec<&[u8]> = expected.chunks(1).collect();
    assert_eq!(run(false, &m, &k, &bytes).unwrap(), PT);
}

#[test]
fn tampering_is_encrypted_data_invalid() {
    let k = key(&h(KEY));
    let m = aead(&h(NONCE), &h(AAD));
    let good = h(&format!("{CT}{TAG}"));
    for i in [0usize, 57, 113, 114, 129] {
        let mut bad = good.clone();
        bad[i] ^= 0x80;
        assert_eq!(
            code(one_shot(false, &m, &k, &bad)),
            Code::EncryptedDataInvalid
        );
        assert_eq!(
            code(run(false, &m, &k, &[&bad[..40], &bad[40..]])),
            Code::EncryptedDataInvalid
        );
    }
    let other = aead(&h(NONCE), b"");
    assert_eq!(
        code(one_shot(false, &other, &k, &good)),
        Code::EncryptedDataInvalid
    );
    assert_eq!(
        code(one_shot(false, &m, &k, &good[..15])),
        Code::EncryptedDataLenRange
    );
    // Empty plaintext: the tag alone.
    let tag = one_shot(true, &m, &k, b"").unwrap();
    assert_eq!(tag.len(), 16);
    assert!(one_shot(false, &m, &k, &tag).unwrap().is_empty());
}

#[test]
fn parameters_and_keys_have_exact_codes() {
    let k = key(&[7u8; 32]);
    for nonce_len in [0usize, 8, 11, 13, 24] {
        let m = aead(&vec![0u8; nonce_len], b"");
        assert_eq!(code(start(true, &m, &k)), Code::MechanismParamInvalid);
        assert_eq!(code(start(false, &m, &k)), Code::MechanismParamInvalid);
    }
    for params in [MechParams::None, MechParams::Bytes(vec![0u8; 12])] {
        let m = Mechanism {
            mech: CKM_CHACHA20_POLY1305,
            params,
        };
        assert_eq!(code(start(true, &m, &k)), Code::MechanismParamInvalid);
    }
    let m = aead(&[0u8; 12], b"");
    assert_eq!(code(start(true, &m, &key(&[7u8; 16]))), Code::KeySizeRange);
    let family = registry().get(CKM_CHACHA20_POLY1305).unwrap();
    assert_eq!(family.key_types(), &[CKK_CHACHA20]);
    let i = family.info();
    assert_eq!((i.min_key_size, i.max_key_size), (32, 32));
    assert_eq!(
        i.flags,
        CKF_ENCRYPT
            | CKF_DECRYPT
            | CKF_WRAP
            | CKF_UNWRAP
            | CKF_MESSAGE_ENCRYPT
            | CKF_MESSAGE_DECRYPT
    );
}

#[test]
fn key_generation() {
    let family = registry().get(CKM_CHACHA20_KEY_GEN).unwrap();
    let m = Mechanism {
        mech: CKM_CHACHA20_KEY_GEN,
        params: MechParams::None,
    };
    let mut t = Attrs::new();
    let a = family.generate_key(&m, &t).unwrap();
    let b = family.generate_key(&m, &t).unwrap();
    assert_eq!(a.get_ulong(CKA_KEY_TYPE), Some(CKK_CHACHA20));
    assert_eq!(a.get_ulong(CKA_VALUE_LEN), Some(32));
    assert_eq!(a.get_bytes(CKA_VALUE).unwrap().len(), 32);
    assert_ne!(a.get_bytes(CKA_VALUE), b.get_bytes(CKA_VALUE));
    t.set(CKA_VALUE_LEN, AttrValue::Ulong(32));
    assert!(family.generate_key(&m, &t).is_ok());
    t.set(CKA_VALUE_LEN, AttrValue::Ulong(16));
    assert_eq!(
        code(family.generate_key(&m, &t)),
        Code::AttributeValueInvalid
    );
    let with_param = Mechanism {
        mech: CKM_CHACHA20_KEY_GEN,
        params: MechParams::Bytes(vec![1]),
    };
    assert_eq!(
        code(family.generate_key(&with_param, &Attrs::new())),
        Code::MechanismParamInvalid
    );
    let i = family.info();
    assert_eq!(
        (i.min_key_size, i.max_key_size, i.flags),
        (32, 32, CKF_GENERATE)
    );
    // A generated key encrypts.
    let k = key(a.get_bytes(CKA_VALUE).unwrap());
    let m = aead(&[1u8; 12], b"x");
    let ct = one_shot(true, &m, &k, b"generated").unwrap();
    assert_eq!(one_shot(false, &m, &k, &ct).unwrap(), b"generated");
}
