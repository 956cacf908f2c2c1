//! HMAC and generic-secret tests: RFC 2202 / RFC 4231 vectors, SHA-3 against the default
//! OpenSSL context, *_GENERAL truncation, multi-part splits and exact error codes.

use super::*;
use crate::error::Error;
use crate::mechanism::registry;
use crate::types::AttrValue;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn key_of(ty: CK_KEY_TYPE, value: &[u8]) -> Object {
    let mut a = Attrs::new();
    a.set(CKA_CLASS, AttrValue::Ulong(CKO_SECRET_KEY));
    a.set(CKA_KEY_TYPE, AttrValue::Ulong(ty));
    a.set(CKA_VALUE, AttrValue::bytes(value));
    Object::new(a)
}

fn key(value: &[u8]) -> Object {
    key_of(CKK_GENERIC_SECRET, value)
}

fn m(ty: CK_MECHANISM_TYPE, params: MechParams) -> Mechanism {
    Mechanism { mech: ty, params }
}

fn sign(ty: CK_MECHANISM_TYPE, p: MechParams, k: &Object, parts: &[&[u8]]) -> Result<Vec<u8>> {
    let mut op = registry().get(ty)?.sign_init(&m(ty, p), k)?;
    for part in parts {
        op.update(part)?;
    }
    let len = op.sig_len();
    let out = op.finish()?;
    assert_eq!(out.len(), len);
    Ok(out.to_vec())
}

fn verify(ty: CK_MECHANISM_TYPE, p: MechParams, k: &Object, data: &[u8], sig: &[u8]) -> Result<()> {
    registry()
        .get(ty)?
        .verify_init(&m(ty, p), k)?
        .one_shot(data, sig)
}

fn code<T: std::fmt::Debug>(r: Result<T>) -> Code {
    let e: Error = r.unwrap_err();
    e.code()
}

#[test]
fn rfc_4231_case_1_and_rfc_2202() {
    let k = key(&[0x0b; 20]);
    let cases = [
        (CKM_SHA_1_HMAC, "b617318655057264e28bc0b6fb378c8ef146be00"),
        (
            CKM_SHA224_HMAC,
            "896fb1128abbdf196832107cd49df33f47b4b1169912ba4f53684b22",
        ),
        (
            CKM_SHA256_HMAC,
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        ),
        (
            CKM_SHA384_HMAC,
            "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6",
        ),
        (
            CKM_SHA512_HMAC,
            "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
        ),
    ];
    // The same key object serves every hash: each gets its own cached template.
    for (ty, mac) in cases {
        assert_eq!(
            hex::encode(sign(ty, MechParams::None, &k, &[b"Hi There"]).unwrap()),
            mac
        );
        assert_eq!(
            hex::encode(sign(ty, MechParams::None, &k, &[b"H", b"", b"i Th", b"ere"]).unwrap()),
            mac
        );
        verify(ty, MechParams::None, &k, b"Hi There", &h(mac)).unwrap();
    }
}

#[test]
fn rfc_4231_cases_2_5_6() {
    let jefe = key(b"Jefe");
    assert_eq!(
        hex::encode(
            sign(
                CKM_SHA256_HMAC,
                MechParams::None,
                &jefe,
                &[b"what do ya want ", b"for nothing?"]
            )
            .unwrap()
        ),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    // Case 5: output truncated to 128 bits, through the _GENERAL mechanism.
    let k5 = key(&[0x0c; 20]);
    let t = sign(
        CKM_SHA256_HMAC_GENERAL,
        MechParams::Ulong(16),
        &k5,
        &[b"Test With Truncation"],
    )
    .unwrap();
    assert_eq!(hex::encode(&t), "a3b6167473100ee06e0c796c2955552b");
    verify(
        CKM_SHA256_HMAC_GENERAL,
        MechParams::Ulong(16),
        &k5,
        b"Test With Truncation",
        &t,
    )
    .unwrap();
    // Case 6: a key longer than the block is hashed first.
    let k6 = key_of(CKK_SHA256_HMAC, &[0xaa; 131]);
    assert_eq!(
        hex::encode(
            sign(
                CKM_SHA256_HMAC,
                MechParams::None,
                &k6,
                &[b"Test Using Larger Than Block-Size Key - Hash Key First"]
            )
            .unwrap()
        ),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
}

#[test]
fn every_hash_matches_the_default_context_at_odd_splits() {
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::sign::Signer;
    let value: Vec<u8> = (0..77u8).collect();
    let k = key(&value);
    let data: Vec<u8> = (0..301u32).map(|i| (i * 7) as u8).collect();
    for (plain, general, alg, types) in HMACS {
        let pk = PKey::hmac(&value).unwrap();
        let mut s = Signer::new(MessageDigest::from_name(alg.name()).unwrap(), &pk).unwrap();
        s.update(&data).unwrap();
        let expect = s.sign_to_vec().unwrap();
        let parts: Vec<&[u8]> = data.chunks(13).collect();
        assert_eq!(
            sign(plain, MechParams::None, &k, &parts).unwrap(),
            expect,
            "{alg:?}"
        );
        let short = sign(
            general,
            MechParams::Ulong(5),
            &k,
            &[&data[..100], &data[100..]],
        )
        .unwrap();
        assert_eq!(short, expect[..5], "{alg:?}");
        let full = alg.output_len() as CK_ULONG;
        assert_eq!(
            sign(general, MechParams::Ulong(full), &k, &[&data]).unwrap(),
            expect
        );
        assert_eq!(
            code(sign(general, MechParams::Ulong(full + 1), &k, &[])),
            Code::MechanismParamInvalid
        );
        assert_eq!(
            code(sign(general, MechParams::Ulong(0), &k, &[])),
            Code::MechanismParamInvalid
        );
        assert_eq!(
            code(sign(general, MechParams::None, &k, &[])),
            Code::MechanismParamInvalid
        );
        assert_eq!(
            code(sign(plain, MechParams::Ulong(full), &k, &[])),
            Code::MechanismParamInvalid
        );
        let mech = registry().get(plain).unwrap();
        assert_eq!(mech.key_types(), types);
        assert_eq!(mech.info().flags, CKF_SIGN | CKF_VERIFY);
        assert_eq!(
            registry().get(general).unwrap().info().flags,
            CKF_SIGN | CKF_VERIFY
        );
    }
}

#[test]
fn verification_errors_have_exact_codes() {
    let k = key(b"Jefe");
    let data = b"what do ya want for nothing?";
    let mac = h("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    assert_eq!(
        code(verify(
            CKM_SHA256_HMAC,
            MechParams::None,
            &k,
            data,
            &mac[..31]
        )),
        Code::SignatureLenRange
    );
    assert_eq!(
        code(verify(
            CKM_SHA256_HMAC,
            MechParams::None,
            &k,
            data,
            &[mac.clone(), vec![0]].concat()
        )),
        Code::SignatureLenRange
    );
    assert_eq!(
        code(verify(
            CKM_SHA256_HMAC_GENERAL,
            MechParams::Ulong(10),
            &k,
            data,
            &mac[..12]
        )),
        Code::SignatureLenRange
    );
    let mut bad = mac.clone();
    bad[0] ^= 0x80;
    assert_eq!(
        code(verify(CKM_SHA256_HMAC, MechParams::None, &k, data, &bad)),
        Code::SignatureInvalid
    );
    assert_eq!(
        code(verify(
            CKM_SHA256_HMAC,
            MechParams::None,
            &k,
            b"what do ya want for nothing!",
            &mac
        )),
        Code::SignatureInvalid
    );
    assert_eq!(
        code(verify(
            CKM_SHA256_HMAC_GENERAL,
            MechParams::Ulong(10),
            &k,
            data,
            &bad[..10]
        )),
        Code::SignatureInvalid
    );
    verify(
        CKM_SHA256_HMAC_GENERAL,
        MechParams::Ulong(10),
        &k,
        data,
        &mac[..10],
    )
    .unwrap();
    assert_eq!(
        code(sign(CKM_SHA256_HMAC, MechParams::None, &key(&[]), &[])),
        Code::KeySizeRange
    );
}

#[test]
fn generic_secret_generation() {
    let gen_ = registry().get(CKM_GENERIC_SECRET_KEY_GEN).unwrap();
    let mech = m(CKM_GENERIC_SECRET_KEY_GEN, MechParams::None);
    let mut t = Attrs::new();
    assert_eq!(code(gen_.generate_key(&mech, &t)), Code::TemplateIncomplete);
    for bad in [0, MAX_KEY_LEN as CK_ULONG + 1] {
        t.set(CKA_VALUE_LEN, AttrValue::Ulong(bad));
        assert_eq!(
            code(gen_.generate_key(&mech, &t)),
            Code::AttributeValueInvalid
        );
    }
    t.set(CKA_VALUE_LEN, AttrValue::Ulong(32));
    let a = gen_.generate_key(&mech, &t).unwrap();
    let b = gen_.generate_key(&mech, &t).unwrap();
    assert_eq!(a.get_ulong(CKA_KEY_TYPE), Some(CKK_GENERIC_SECRET));
    assert_eq!(a.get_ulong(CKA_VALUE_LEN), Some(32));
    assert_eq!(a.get_bytes(CKA_VALUE).unwrap().len(), 32);
    assert_ne!(a.get_bytes(CKA_VALUE), b.get_bytes(CKA_VALUE));
    t.set(CKA_KEY_TYPE, AttrValue::Ulong(CKK_SHA3_256_HMAC));
    let c = gen_.generate_key(&mech, &t).unwrap();
    assert_eq!(c.get_ulong(CKA_KEY_TYPE), Some(CKK_SHA3_256_HMAC));
    let bad_params = m(CKM_GENERIC_SECRET_KEY_GEN, MechParams::Ulong(1));
    assert_eq!(
        code(gen_.generate_key(&bad_params, &t)),
        Code::MechanismParamInvalid
    );
    // A generated key MACs.
    let k = key(a.get_bytes(CKA_VALUE).unwrap());
    let mac = sign(CKM_SHA384_HMAC, MechParams::None, &k, &[b"x"]).unwrap();
    verify(CKM_SHA384_HMAC, MechParams::None, &k, b"x", &mac).unwrap();
    // Sizes in bits for this mechanism (PKCS#11 3.0 §2.36.2).
    let info = gen_.info();
    assert_eq!(
        (info.min_key_size, info.max_key_size, info.flags),
        (8, 8 * MAX_KEY_LEN as CK_ULONG, CKF_GENERATE)
    );
}
