//! AES family tests: NIST GCM vectors through the operation interface, multi-part splits,
//! tag and parameter errors.

use super::*;
use crate::mechanism::registry;
use crate::types::AttrValue;

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

fn gcm(iv: &[u8], aad: &[u8], tag_bits: CK_ULONG) -> Mechanism {
    Mechanism {
        mech: CKM_AES_GCM,
        params: MechParams::Gcm {
            iv: iv.to_vec(),
            iv_bits: (iv.len() * 8) as CK_ULONG,
            aad: aad.to_vec(),
            tag_bits,
        },
    }
}

fn run(encrypt: bool, m: &Mechanism, k: &Object, parts: &[&[u8]]) -> Result<Vec<u8>> {
    let mech = registry().get(CKM_AES_GCM)?;
    let mut op = if encrypt {
        mech.encrypt_init(m, k)?
    } else {
        mech.decrypt_init(m, k)?
    };
    let mut out = Vec::new();
    for p in parts {
        let bound = op.output_len(p.len(), false);
        let o = op.update(p)?;
        assert!(o.len() <= bound);
        out.extend_from_slice(&o);
    }
    let bound = op.output_len(0, true);
    let o = op.finish()?;
    assert!(o.len() <= bound);
    out.extend_from_slice(&o);
    Ok(out)
}

// McGrew & Viega, "The Galois/Counter Mode of Operation", test case 4 (also in SP 800-38D's
// validation vectors): AES-128, 96-bit IV, 20 bytes of AAD, 60 bytes of plaintext.
const K: &str = "feffe9928665731c6d6a8f9467308308";
const IV: &str = "cafebabefacedbaddecaf888";
const P: &str = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
const A: &str = "feedfacedeadbeeffeedfacedeadbeefabaddad2";
const C: &str = "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091";
const T: &str = "5bc94fbc3221a5db94fae95ae7121a47";

#[test]
fn nist_vector_single_and_multi_part() {
    let k = key(&h(K));
    let m = gcm(&h(IV), &h(A), 128);
    let expected = h(&format!("{C}{T}"));
    let pt = h(P);
    let mech = registry().get(CKM_AES_GCM).unwrap();
    let mut op = mech.encrypt_init(&m, &k).unwrap();
    assert_eq!(op.output_len(pt.len(), true), pt.len() + 16);
    assert_eq!(&*op.one_shot(&pt).unwrap(), &expected[..]);
    for split in [1usize, 7, 16, 59] {
        let (a, b) = pt.split_at(split);
        assert_eq!(
            run(true, &m, &k, &[a, b]).unwrap(),
            expected,
            "split {split}"
        );
        let (a, b) = expected.split_at(split);
        assert_eq!(run(false, &m, &k, &[a, b]).unwrap(), pt, "split {split}");
    }
    // Byte-by-byte decryption: the tag straddles many calls.
    let parts: Vec<&[u8]> = expected.chunks(1).collect();
    assert_eq!(run(false, &m, &k, &parts).unwrap(), pt);
    // A truncated 96-bit tag is the first 12 bytes of the full one.
    let short = run(true, &gcm(&h(IV), &h(A), 96), &k, &[&pt]).unwrap();
    assert_eq!(short, expected[..expected.len() - 4]);
}

#[test]
fn decryption_failures_have_their_codes() {
    let k = key(&h(K));
    let m = gcm(&h(IV), &h(A), 128);
    let mut sealed = h(&format!("{C}{T}"));
    sealed[70] ^= 1;
    assert_eq!(
        run(false, &m, &k, &[&sealed]).unwrap_err().code(),
        Code::EncryptedDataInvalid
    );
    let good = h(&format!("{C}{T}"));
    assert_eq!(
        run(false, &gcm(&h(IV), b"", 128), &k, &[&good])
            .unwrap_err()
            .code(),
        Code::EncryptedDataInvalid
    );
    assert_eq!(
        run(false, &m, &k, &[&good[..15]]).unwrap_err().code(),
        Code::EncryptedDataLenRange
    );
    // Update never releases plaintext before the tag is checked.
    let mech = registry().get(CKM_AES_GCM).unwrap();
    let mut op = mech.decrypt_init(&m, &k).unwrap();
    assert!(op.update(&good).unwrap().is_empty());
    assert_eq!(op.output_len(0, false), 0);
    assert_eq!(op.output_len(0, true), 60);
}

#[test]
fn empty_plaintext_empty_aad_and_long_iv() {
    let k = key(&[0u8; 32]);
    // NIST test case 13: AES-256, zero key and IV, nothing to encrypt.
    let out = run(true, &gcm(&[0u8; 12], b"", 128), &k, &[]).unwrap();
    assert_eq!(hex::encode(&out), "530f8afbc74536b9a963b4f1c4cb738b");
    assert!(
        run(false, &gcm(&[0u8; 12], b"", 128), &k, &[&out])
            .unwrap()
            .is_empty()
    );
    for iv_len in [1usize, 128, 200, 256, 257, 1000] {
        let m = gcm(&vec![9u8; iv_len], b"aad", 128);
        let ct = run(true, &m, &k, &[b"long iv"]).unwrap();
        assert_eq!(run(false, &m, &k, &[&ct]).unwrap(), b"long iv");
    }
}

#[test]
fn bad_parameters_and_keys() {
    let k = key(&[1u8; 16]);
    let mech = registry().get(CKM_AES_GCM).unwrap();
    for m in [
        gcm(&[], b"", 128),
        gcm(&[0u8; 12], b"", 0),
        gcm(&[0u8; 12], b"", 40),
        gcm(&[0u8; 12], b"", 136),
        Mechanism::new(CKM_AES_GCM),
        Mechanism {
            mech: CKM_AES_GCM,
            params: MechParams::Bytes(vec![0u8; 12]),
        },
    ] {
        assert_eq!(
            mech.encrypt_init(&m, &k).err().unwrap().code(),
            Code::MechanismParamInvalid,
            "{m:?}"
        );
        assert_eq!(
            mech.decrypt_init(&m, &k).err().unwrap().code(),
            Code::MechanismParamInvalid,
            "{m:?}"
        );
    }
    let odd = key(&[1u8; 20]);
    assert_eq!(
        mech.encrypt_init(&gcm(&[0u8; 12], b"", 128), &odd)
            .err()
            .unwrap()
            .code(),
        Code::KeySizeRange
    );
    let info = mech.info();
    assert_eq!(
        (info.min_key_size, info.max_key_size, info.flags),
        (
            16,
            32,
            CKF_ENCRYPT
                | CKF_DECRYPT
                | CKF_WRAP
                | CKF_UNWRAP
                | CKF_MESSAGE_ENCRYPT
                | CKF_MESSAGE_DECRYPT
        )
    );
}

#[test]
fn key_generation() {
    let g = registry().get(CKM_AES_KEY_GEN).unwrap();
    let m = Mechanism::new(CKM_AES_KEY_GEN);
    let with_len = |l: CK_ULONG| {
        let mut t = Attrs::new();
        t.set(CKA_VALUE_LEN, AttrValue::Ulong(l));
        g.generate_key(&m, &t)
    };
    for l in [16, 24, 32] {
        let a = with_len(l).unwrap();
        assert_eq!(a.get_ulong(CKA_KEY_TYPE), Some(CKK_AES));
        assert_eq!(a.get_ulong(CKA_VALUE_LEN), Some(l));
        assert_eq!(a.get_bytes(CKA_VALUE).unwrap().len() as CK_ULONG, l);
    }
    assert_ne!(
        with_len(32).unwrap().get_bytes(CKA_VALUE),
        with_len(32).unwrap().get_bytes(CKA_VALUE)
    );
    assert_eq!(
        g.generate_key(&m, &Attrs::new()).unwrap_err().code(),
        Code::TemplateIncomplete
    );
    for bad in [0, 8, 20, 64] {
        assert_eq!(
            with_len(bad).unwrap_err().code(),
            Code::AttributeValueInvalid
        );
    }
    // A generated key works with GCM.
    let mut a = with_len(24).unwrap();
    a.set(CKA_CLASS, AttrValue::Ulong(CKO_SECRET_KEY));
    let k = Object::new(a);
    let m = gcm(&[3u8; 12], b"", 128);
    let ct = run(true, &m, &k, &[b"x"]).unwrap();
    assert_eq!(run(false, &m, &k, &[&ct]).unwrap(), b"x");
}
