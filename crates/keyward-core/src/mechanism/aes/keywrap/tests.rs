//! AES key wrap through the operation interface: RFC 3394 §4 and RFC 5649 §6 vectors, _PAD
//! against an independent PKCS#7 + RFC 3394 computation, tampering, lengths and parameters.

use cryptoki_sys::*;
use openssl::aes::{AesKey, wrap_key};

use super::pkcs7_pad;
use crate::error::{Code, Result};
use crate::mechanism::registry;
use crate::object::Object;
use crate::types::{AttrValue, Attrs, MechParams, Mechanism};

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

fn mech(ty: CK_MECHANISM_TYPE, iv: Option<&[u8]>) -> Mechanism {
    Mechanism {
        mech: ty,
        params: iv.map_or(MechParams::None, |v| MechParams::Bytes(v.to_vec())),
    }
}

/// Run an operation over `parts`, checking the length bounds the engine relies on.
fn run(encrypt: bool, m: &Mechanism, k: &Object, parts: &[&[u8]]) -> Result<Vec<u8>> {
    let family = registry().get(m.mech)?;
    let mut op = if encrypt {
        family.encrypt_init(m, k)?
    } else {
        family.decrypt_init(m, k)?
    };
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let bound = op.output_len(total, true);
    for p in parts {
        assert!(op.update(p)?.is_empty());
    }
    let out = op.finish()?;
    assert!(out.len() <= bound, "{} > {bound}", out.len());
    Ok(out.to_vec())
}

fn enc(ty: CK_MECHANISM_TYPE, kek: &[u8], iv: Option<&[u8]>, data: &[u8]) -> Result<Vec<u8>> {
    let k = key(kek);
    let m = mech(ty, iv);
    let one = run(true, &m, &k, &[data])?;
    // Split input gives the single-part result.
    let (a, b) = data.split_at(data.len() / 2);
    assert_eq!(run(true, &m, &k, &[a, b])?, one);
    Ok(one)
}

fn dec(ty: CK_MECHANISM_TYPE, kek: &[u8], iv: Option<&[u8]>, data: &[u8]) -> Result<Vec<u8>> {
    run(false, &mech(ty, iv), &key(kek), &[data])
}

fn code<T>(r: Result<T>) -> Code {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.code(),
    }
}

const KEK128: &str = "000102030405060708090A0B0C0D0E0F";
const KEK192: &str = "000102030405060708090A0B0C0D0E0F1011121314151617";
const KEK256: &str = "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F";
const DATA: &str = "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F";

#[test]
fn rfc3394_section4_all_six() {
    let vectors = [
        (
            KEK128,
            16,
            "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5",
        ),
        (
            KEK192,
            16,
            "96778B25AE6CA435F92B5B97C050AED2468AB8A17AD84E5D",
        ),
        (
            KEK256,
            16,
            "64E8C3F9CE0F5BA263E9777905818A2A93C8191E7D6E8AE7",
        ),
        (
            KEK192,
            24,
            "031D33264E15D33268F24EC260743EDCE1C6C7DDEE725A936BA814915C6762D2",
        ),
        (
            KEK256,
            24,
            "A8F9BC1612C68B3FF6E6F4FBE30E71E4769C8B80A32CB8958CD5D17D6B254DA1",
        ),
        (
            KEK256,
            32,
            "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21",
        ),
    ];
    for (kek, len, wrapped) in vectors {
        let data = &h(DATA)[..len];
        assert_eq!(
            enc(CKM_AES_KEY_WRAP, &h(kek), None, data).unwrap(),
            h(wrapped)
        );
        let default_iv = h("A6A6A6A6A6A6A6A6");
        assert_eq!(
            enc(CKM_AES_KEY_WRAP, &h(kek), Some(&default_iv), data).unwrap(),
            h(wrapped)
        );
        assert_eq!(
            dec(CKM_AES_KEY_WRAP, &h(kek), None, &h(wrapped)).unwrap(),
            data
        );
    }
}

#[test]
fn rfc5649_section6_both() {
    let kek = h("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8");
    for (data, wrapped) in [
        (
            "c37b7e6492584340bed12207808941155068f738",
            "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a",
        ),
        ("466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"),
    ] {
        assert_eq!(
            enc(CKM_AES_KEY_WRAP_KWP, &kek, None, &h(data)).unwrap(),
            h(wrapped)
        );
        let default_iv = h("A65959A6");
        assert_eq!(
            enc(CKM_AES_KEY_WRAP_KWP, &kek, Some(&default_iv), &h(data)).unwrap(),
            h(wrapped)
        );
        assert_eq!(
            dec(CKM_AES_KEY_WRAP_KWP, &kek, None, &h(wrapped)).unwrap(),
            h(data)
        );
    }
}

/// _PAD computed independently: PKCS#7 padding done here, RFC 3394 by the openssl crate.
fn pad_reference(kek: &[u8], iv: Option<[u8; 8]>, data: &[u8]) -> Vec<u8> {
    let n = 8 - data.len() % 8;
    let mut padded = data.to_vec();
    padded.extend(std::iter::repeat_n(n as u8, n));
    let k = AesKey::new_encrypt(kek).unwrap();
    let mut out = vec![0u8; padded.len() + 8];
    let len = wrap_key(&k, iv, &mut out, &padded).unwrap();
    out.truncate(len);
    out
}

#[test]
fn pad_is_pkcs7_then_rfc3394() {
    let kek = h(KEK256);
    for len in [8usize, 15, 16, 17, 20, 24, 31, 32, 33, 64] {
        let data: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(37)).collect();
        let ours = enc(CKM_AES_KEY_WRAP_PAD, &kek, None, &data).unwrap();
        assert_eq!(ours, pad_reference(&kek, None, &data), "{len} bytes");
        assert_eq!(ours.len(), (len / 8 + 2) * 8);
        assert_eq!(dec(CKM_AES_KEY_WRAP_PAD, &kek, None, &ours).unwrap(), data);
        // Not RFC 5649: the same data under KWP differs.
        assert_ne!(enc(CKM_AES_KEY_WRAP_KWP, &kek, None, &data).unwrap(), ours);
    }
    let iv = [0x11u8; 8];
    let data = h("00112233445566778899aabbccddeeff0102030405");
    let ours = enc(CKM_AES_KEY_WRAP_PAD, &kek, Some(&iv), &data).unwrap();
    assert_eq!(ours, pad_reference(&kek, Some(iv), &data));
    assert_eq!(
        dec(CKM_AES_KEY_WRAP_PAD, &kek, Some(&iv), &ours).unwrap(),
        data
    );
    assert_eq!(
        code(dec(CKM_AES_KEY_WRAP_PAD, &kek, None, &ours)),
        Code::EncryptedDataInvalid
    );
}

#[test]
fn pad_padding_is_checked_after_integrity() {
    let kek = h(KEK128);
    // A valid RFC 3394 wrap of bytes whose last byte is not a PKCS#7 padding.
    let k = AesKey::new_encrypt(&kek).unwrap();
    for plain in [[0u8; 16], [9u8; 16], {
        let mut p = [3u8; 16];
        p[14] = 4;
        p
    }] {
        let mut wrapped = [0u8; 24];
        wrap_key(&k, None, &mut wrapped, &plain).unwrap();
        assert_eq!(
            code(dec(CKM_AES_KEY_WRAP_PAD, &kek, None, &wrapped)),
            Code::EncryptedDataInvalid
        );
        // The same bytes are a fine KW ciphertext.
        assert_eq!(dec(CKM_AES_KEY_WRAP, &kek, None, &wrapped).unwrap(), plain);
    }
    assert_eq!(pkcs7_pad(&[1, 2, 3]).as_slice(), &[1, 2, 3, 5, 5, 5, 5, 5]);
    assert_eq!(pkcs7_pad(&[0; 8]).len(), 16);
}

#[test]
fn tampered_ciphertexts_fail_integrity() {
    let kek = h(KEK256);
    let data = h(DATA);
    for ty in [CKM_AES_KEY_WRAP, CKM_AES_KEY_WRAP_KWP, CKM_AES_KEY_WRAP_PAD] {
        let wrapped = enc(ty, &kek, None, &data).unwrap();
        for i in [0, wrapped.len() / 2, wrapped.len() - 1] {
            let mut bad = wrapped.clone();
            bad[i] ^= 0x40;
            assert_eq!(
                code(dec(ty, &kek, None, &bad)),
                Code::EncryptedDataInvalid,
                "{ty:#x} byte {i}"
            );
        }
        let mut other = kek.clone();
        other[0] ^= 1;
        assert_eq!(
            code(dec(ty, &other, None, &wrapped)),
            Code::EncryptedDataInvalid
        );
        // Wrong lengths are a length error, not an integrity one.
        assert_eq!(
            code(dec(ty, &kek, None, &wrapped[..wrapped.len() - 1])),
            Code::EncryptedDataLenRange
        );
        assert_eq!(
            code(dec(ty, &kek, None, &wrapped[..8])),
            Code::EncryptedDataLenRange
        );
    }
}

#[test]
fn input_lengths_and_parameters() {
    let kek = h(KEK128);
    for bad in [0usize, 8, 15, 17, 23] {
        assert_eq!(
            code(enc(CKM_AES_KEY_WRAP, &kek, None, &vec![1u8; bad])),
            Code::DataLenRange,
            "{bad}"
        );
    }
    assert_eq!(
        code(enc(CKM_AES_KEY_WRAP_KWP, &kek, None, &[])),
        Code::DataLenRange
    );
    assert_eq!(
        code(enc(CKM_AES_KEY_WRAP_PAD, &kek, None, &[1u8; 7])),
        Code::DataLenRange
    );
    for len in 1..=17 {
        let w = enc(CKM_AES_KEY_WRAP_KWP, &kek, None, &vec![2u8; len]).unwrap();
        assert_eq!(
            dec(CKM_AES_KEY_WRAP_KWP, &kek, None, &w).unwrap(),
            vec![2u8; len]
        );
    }
    let k = key(&kek);
    for (ty, bad) in [
        (CKM_AES_KEY_WRAP, vec![0u8; 4]),
        (CKM_AES_KEY_WRAP, vec![0u8; 16]),
        (CKM_AES_KEY_WRAP_PAD, vec![0u8; 4]),
        (CKM_AES_KEY_WRAP_KWP, vec![0u8; 8]),
        (CKM_AES_KEY_WRAP_KWP, vec![]),
    ] {
        let m = Mechanism {
            mech: ty,
            params: MechParams::Bytes(bad),
        };
        let family = registry().get(ty).unwrap();
        assert_eq!(
            code(family.encrypt_init(&m, &k)),
            Code::MechanismParamInvalid
        );
        assert_eq!(
            code(family.decrypt_init(&m, &k)),
            Code::MechanismParamInvalid
        );
    }
    let short = key(&[0u8; 20]);
    assert_eq!(
        code(
            registry()
                .get(CKM_AES_KEY_WRAP)
                .unwrap()
                .encrypt_init(&mech(CKM_AES_KEY_WRAP, None), &short)
        ),
        Code::KeySizeRange
    );
    for ty in [CKM_AES_KEY_WRAP, CKM_AES_KEY_WRAP_KWP, CKM_AES_KEY_WRAP_PAD] {
        let info = registry().get(ty).unwrap().info();
        assert_eq!(
            info.flags,
            CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP
        );
        assert_eq!((info.min_key_size, info.max_key_size), (16, 32));
    }
}
