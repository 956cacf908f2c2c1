//! CKM_AES_CTS tests: the RFC 3962 vectors (published as CS3, reordered to CS1), a
//! cross-check against OpenSSL's own CBC-CTS, multi-part equal to single-part for many
//! splits, and the length and parameter errors with their exact codes.

use super::*;
use crate::mechanism::registry;
use crate::types::{AttrValue, Attrs, MechParams};

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

fn cts(iv: &[u8]) -> Mechanism {
    Mechanism {
        mech: CKM_AES_CTS,
        params: MechParams::Bytes(iv.to_vec()),
    }
}

fn start(encrypt: bool, m: &Mechanism, k: &Object) -> Result<Box<dyn CipherOp>> {
    let family = registry().get(m.mech)?;
    if encrypt {
        family.encrypt_init(m, k)
    } else {
        family.decrypt_init(m, k)
    }
}

fn one_shot(encrypt: bool, m: &Mechanism, k: &Object, data: &[u8]) -> Result<Vec<u8>> {
    let mut op = start(encrypt, m, k)?;
    assert_eq!(op.output_len(data.len(), true), data.len());
    Ok(op.one_shot(data)?.to_vec())
}

/// Multi-part over `data` cut into parts of the given sizes (cycled); every output must
/// match its announced length exactly.
fn multi(
    encrypt: bool,
    m: &Mechanism,
    k: &Object,
    data: &[u8],
    sizes: &[usize],
) -> Result<Vec<u8>> {
    let mut op = start(encrypt, m, k)?;
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].min(rest.len());
        let (part, tail) = rest.split_at(n);
        let announced = op.output_len(part.len(), false);
        let o = op.update(part)?;
        assert_eq!(o.len(), announced);
        out.extend_from_slice(&o);
        rest = tail;
        i += 1;
    }
    let announced = op.output_len(0, true);
    let o = op.finish()?;
    assert_eq!(o.len(), announced);
    out.extend_from_slice(&o);
    Ok(out)
}

fn code<T>(r: Result<T>) -> Code {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.code(),
    }
}

/// CS3 output (RFC 3962) to CS1: CS3 ends with C(n) ‖ C*(n-1), CS1 with C*(n-1) ‖ C(n),
/// where C*(n-1) has as many bytes as the last partial (or full) block.
fn cs3_to_cs1(ct: &[u8]) -> Vec<u8> {
    let n = ct.len();
    let d = n - 16 * ((n - 1) / 16);
    let (head, tail) = ct.split_at(n - 16 - d);
    let (c_n, stolen) = tail.split_at(16);
    [head, stolen, c_n].concat()
}

// RFC 3962 Appendix B: AES-128 key "chicken teriyaki", zero IV, prefixes of one sentence.
const RFC3962_KEY: &[u8] = b"chicken teriyaki";
const RFC3962_PT: &[u8] = b"I would like the General Gau's Chicken, please, and wonton soup.";
const RFC3962_CS3: [(usize, &str); 6] = [
    (17, "c6353568f2bf8cb4d8a580362da7ff7f97"),
    (
        31,
        "fc00783e0efdb2c1d445d4c8eff7ed2297687268d6ecccc0c07b25e25ecfe5",
    ),
    (
        32,
        "39312523a78662d5be7fcbcc98ebf5a897687268d6ecccc0c07b25e25ecfe584",
    ),
    (
        47,
        "97687268d6ecccc0c07b25e25ecfe584b3fffd940c16a18c1b5549d2f838029e39312523a78662d5be7fcbcc98ebf5",
    ),
    (
        48,
        "97687268d6ecccc0c07b25e25ecfe5849dad8bbb96c4cdc03bc103e1a194bbd839312523a78662d5be7fcbcc98ebf5a8",
    ),
    (
        64,
        "97687268d6ecccc0c07b25e25ecfe58439312523a78662d5be7fcbcc98ebf5a84807efe836ee89a526730dbc2f7bc8409dad8bbb96c4cdc03bc103e1a194bbd8",
    ),
];

const SPLITS: [&[usize]; 7] = [&[1], &[5], &[15], &[16], &[17], &[31, 2], &[33, 16, 3]];

#[test]
fn rfc3962_vectors_in_cs1_order_single_and_multi_part() {
    let k = key(RFC3962_KEY);
    let m = cts(&[0u8; 16]);
    for (len, cs3) in RFC3962_CS3 {
        let pt = &RFC3962_PT[..len];
        let cs1 = cs3_to_cs1(&h(cs3));
        assert_eq!(cs1.len(), len);
        assert_eq!(one_shot(true, &m, &k, pt).unwrap(), cs1, "{len}");
        assert_eq!(one_shot(false, &m, &k, &cs1).unwrap(), pt, "{len}");
        for sizes in SPLITS {
            assert_eq!(
                multi(true, &m, &k, pt, sizes).unwrap(),
                cs1,
                "{len} {sizes:?}"
            );
            assert_eq!(
                multi(false, &m, &k, &cs1, sizes).unwrap(),
                pt,
                "{len} {sizes:?}"
            );
        }
    }
    // A single block is one CBC block: the first block of the 32-byte CBC output.
    assert_eq!(
        hex::encode(one_shot(true, &m, &k, &RFC3962_PT[..16]).unwrap()),
        "97687268d6ecccc0c07b25e25ecfe584"
    );
}

#[test]
fn whole_blocks_are_plain_cbc() {
    let k = key(&[0x42u8; 24]);
    let iv = [9u8; 16];
    let cbc = Mechanism {
        mech: CKM_AES_CBC,
        params: MechParams::Bytes(iv.to_vec()),
    };
    for len in [16usize, 32, 48, 80] {
        let pt: Vec<u8> = (0..len as u8).collect();
        let expected = {
            let mut op = start(true, &cbc, &k).unwrap();
            op.one_shot(&pt).unwrap().to_vec()
        };
        assert_eq!(
            one_shot(true, &cts(&iv), &k, &pt).unwrap(),
            expected,
            "{len}"
        );
    }
}

/// OpenSSL's CBC-CTS (default context, default variant CS1) in one call.
fn openssl_cts(encrypt: bool, key: &[u8], iv: &[u8], data: &[u8]) -> Vec<u8> {
    use openssl::cipher::Cipher;
    use openssl::cipher_ctx::CipherCtx;
    let name = match key.len() {
        16 => "AES-128-CBC-CTS",
        24 => "AES-192-CBC-CTS",
        _ => "AES-256-CBC-CTS",
    };
    let c = Cipher::fetch(None, name, None).unwrap();
    let mut ctx = CipherCtx::new().unwrap();
    if encrypt {
        ctx.encrypt_init(Some(&c), Some(key), Some(iv)).unwrap();
    } else {
        ctx.decrypt_init(Some(&c), Some(key), Some(iv)).unwrap();
    }
    let mut out = Vec::new();
    ctx.cipher_update_vec(data, &mut out).unwrap();
    ctx.cipher_final_vec(&mut out).unwrap();
    out
}

#[test]
fn matches_openssl_cbc_cts_for_every_length() {
    for key_len in [16usize, 24, 32] {
        let raw: Vec<u8> = (0..key_len as u8).map(|b| b.wrapping_mul(37)).collect();
        let k = key(&raw);
        let iv: Vec<u8> = (100..116u8).collect();
        let m = cts(&iv);
        for len in 16..=100usize {
            let pt: Vec<u8> = (0..len).map(|i| (i * 7 + key_len) as u8).collect();
            let ct = one_shot(true, &m, &k, &pt).unwrap();
            assert_eq!(ct, openssl_cts(true, &raw, &iv, &pt), "{key_len} {len}");
            assert_eq!(openssl_cts(false, &raw, &iv, &ct), pt);
            assert_eq!(multi(false, &m, &k, &ct, &[7, 19]).unwrap(), pt);
            assert_eq!(multi(true, &m, &k, &pt, &[18, 1]).unwrap(), ct);
        }
    }
}

#[test]
fn short_input_and_parameters_have_exact_codes() {
    let k = key(&[1u8; 16]);
    let m = cts(&[0u8; 16]);
    for len in [0usize, 1, 15] {
        let data = vec![0u8; len];
        assert_eq!(code(one_shot(true, &m, &k, &data)), Code::DataLenRange);
        assert_eq!(
            code(one_shot(false, &m, &k, &data)),
            Code::EncryptedDataLenRange
        );
        assert_eq!(code(multi(true, &m, &k, &data, &[4])), Code::DataLenRange);
    }
    for params in [
        MechParams::None,
        MechParams::Bytes(vec![0u8; 15]),
        MechParams::Bytes(vec![0u8; 17]),
    ] {
        let bad = Mechanism {
            mech: CKM_AES_CTS,
            params,
        };
        assert_eq!(code(start(true, &bad, &k)), Code::MechanismParamInvalid);
        assert_eq!(code(start(false, &bad, &k)), Code::MechanismParamInvalid);
    }
    assert_eq!(code(start(true, &m, &key(&[0u8; 17]))), Code::KeySizeRange);
    let i = registry().get(CKM_AES_CTS).unwrap().info();
    assert_eq!((i.min_key_size, i.max_key_size), (16, 32));
    assert_eq!(i.flags, CKF_ENCRYPT | CKF_DECRYPT);
}
