//! RSA family tests; signatures are compared with the `openssl` crate's default-context signer
//! (PKCS#1 v1.5 is deterministic, so the bytes must be identical).

use std::sync::OnceLock;

use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey as OsslPKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::Signer;

use super::*;
use crate::mechanism::registry;

fn object(class: CK_OBJECT_CLASS, generated: &Attrs) -> Object {
    let mut a = generated.clone();
    a.set(CKA_CLASS, AttrValue::Ulong(class));
    Object::new(a)
}

fn gen_template(bits: CK_ULONG, e: Option<&[u8]>) -> Attrs {
    let mut t = Attrs::new();
    t.set(CKA_MODULUS_BITS, AttrValue::Ulong(bits));
    if let Some(e) = e {
        t.set(CKA_PUBLIC_EXPONENT, AttrValue::bytes(e));
    }
    t
}

fn generate(t: &Attrs) -> Result<(Attrs, Attrs)> {
    registry()
        .get(CKM_RSA_PKCS_KEY_PAIR_GEN)?
        .generate_key_pair(&Mechanism::new(CKM_RSA_PKCS_KEY_PAIR_GEN), t, &Attrs::new())
}

/// One generated pair shared by the tests (generation dominates their run time).
fn pair() -> &'static (Object, Object) {
    static PAIR: OnceLock<(Object, Object)> = OnceLock::new();
    PAIR.get_or_init(|| {
        let (p, s) = generate(&gen_template(2048, None)).unwrap();
        (object(CKO_PUBLIC_KEY, &p), object(CKO_PRIVATE_KEY, &s))
    })
}

fn reference_private(private: &Object) -> OsslPKey<Private> {
    let a = private.attrs();
    let bn = |t| BigNum::from_slice(a.get_bytes(t).unwrap()).unwrap();
    let rsa = Rsa::from_private_components(
        bn(CKA_MODULUS),
        bn(CKA_PUBLIC_EXPONENT),
        bn(CKA_PRIVATE_EXPONENT),
        bn(CKA_PRIME_1),
        bn(CKA_PRIME_2),
        bn(CKA_EXPONENT_1),
        bn(CKA_EXPONENT_2),
        bn(CKA_COEFFICIENT),
    )
    .unwrap();
    OsslPKey::from_rsa(rsa).unwrap()
}

fn sign(mech: CK_MECHANISM_TYPE, key: &Object, parts: &[&[u8]]) -> Result<Vec<u8>> {
    let mut op = registry()
        .get(mech)?
        .sign_init(&Mechanism::new(mech), key)?;
    for p in parts {
        op.update(p)?;
    }
    let sig = op.finish()?;
    assert_eq!(sig.len(), op.sig_len());
    Ok(sig.to_vec())
}

fn verify(mech: CK_MECHANISM_TYPE, key: &Object, data: &[u8], sig: &[u8]) -> Result<()> {
    registry()
        .get(mech)?
        .verify_init(&Mechanism::new(mech), key)?
        .one_shot(data, sig)
}

#[test]
fn key_pair_attributes_follow_the_conventions() {
    let (public, private) = pair();
    let pa = public.attrs();
    assert_eq!(pa.get_ulong(CKA_KEY_TYPE), Some(CKK_RSA));
    assert_eq!(pa.get_ulong(CKA_MODULUS_BITS), Some(2048));
    assert_eq!(pa.get_bytes(CKA_PUBLIC_EXPONENT), Some(&[1u8, 0, 1][..]));
    let n = pa.get_bytes(CKA_MODULUS).unwrap();
    assert_eq!(n.len(), 256);
    assert_ne!(n[0], 0);
    let spki = OsslPKey::public_key_from_der(pa.get_bytes(CKA_PUBLIC_KEY_INFO).unwrap()).unwrap();
    assert_eq!(spki.rsa().unwrap().n().to_vec(), n);

    let sa = private.attrs();
    for t in [
        CKA_PRIVATE_EXPONENT,
        CKA_PRIME_1,
        CKA_PRIME_2,
        CKA_EXPONENT_1,
        CKA_EXPONENT_2,
        CKA_COEFFICIENT,
    ] {
        let v = sa.get_bytes(t).unwrap();
        assert!(
            !v.is_empty() && v[0] != 0,
            "attribute {t:#x} has a leading zero or is empty"
        );
    }
    assert_eq!(sa.get_bytes(CKA_MODULUS), Some(n));
    assert_eq!(
        sa.get_bytes(CKA_PUBLIC_KEY_INFO),
        pa.get_bytes(CKA_PUBLIC_KEY_INFO)
    );
    assert!(
        reference_private(private)
            .rsa()
            .unwrap()
            .check_key()
            .unwrap()
    );
}

#[test]
fn sha256_rsa_pkcs_matches_the_default_context_signer() {
    let (public, private) = pair();
    let msg = b"PKCS#1 v1.5 is deterministic";
    let expected = Signer::new(MessageDigest::sha256(), &reference_private(private))
        .unwrap()
        .sign_oneshot_to_vec(msg)
        .unwrap();
    assert_eq!(
        sign(CKM_SHA256_RSA_PKCS, private, &[msg]).unwrap(),
        expected
    );
    assert_eq!(
        sign(CKM_SHA256_RSA_PKCS, private, &[&msg[..5], b"", &msg[5..]]).unwrap(),
        expected
    );
    verify(CKM_SHA256_RSA_PKCS, public, msg, &expected).unwrap();

    // CKM_RSA_PKCS over the caller's DigestInfo gives the same signature.
    let d = keyward_ossl::digest::digest(DigestAlg::Sha256, msg).unwrap();
    let di = digest_info(DigestAlg::Sha256, &d).unwrap();
    assert_eq!(sign(CKM_RSA_PKCS, private, &[&di]).unwrap(), expected);
    verify(CKM_RSA_PKCS, public, &di, &expected).unwrap();

    let mut bad = expected.clone();
    bad[17] ^= 1;
    assert_eq!(
        verify(CKM_SHA256_RSA_PKCS, public, msg, &bad)
            .unwrap_err()
            .code(),
        Code::SignatureInvalid
    );
    assert_eq!(
        verify(CKM_SHA256_RSA_PKCS, public, b"msg", &expected)
            .unwrap_err()
            .code(),
        Code::SignatureInvalid
    );
    assert_eq!(
        verify(CKM_RSA_PKCS, public, &di[1..], &expected)
            .unwrap_err()
            .code(),
        Code::SignatureInvalid
    );
    assert_eq!(
        verify(CKM_SHA256_RSA_PKCS, public, msg, &expected[..255])
            .unwrap_err()
            .code(),
        Code::SignatureLenRange
    );
}

#[test]
fn sha384_and_sha512_variants_match_too() {
    let (public, private) = pair();
    for (mech, md) in [
        (CKM_SHA384_RSA_PKCS, MessageDigest::sha384()),
        (CKM_SHA512_RSA_PKCS, MessageDigest::sha512()),
    ] {
        let expected = Signer::new(md, &reference_private(private))
            .unwrap()
            .sign_oneshot_to_vec(b"x")
            .unwrap();
        assert_eq!(sign(mech, private, &[b"x"]).unwrap(), expected);
        verify(mech, public, b"x", &expected).unwrap();
    }
}

#[test]
fn raw_input_is_limited_to_k_minus_11() {
    let (public, private) = pair();
    let sig = sign(CKM_RSA_PKCS, private, &[&[7u8; 245]]).unwrap();
    verify(CKM_RSA_PKCS, public, &[7u8; 245], &sig).unwrap();
    assert_eq!(
        sign(CKM_RSA_PKCS, private, &[&[7u8; 246]])
            .unwrap_err()
            .code(),
        Code::DataLenRange
    );
    assert_eq!(
        sign(CKM_RSA_PKCS, private, &[&[7u8; 200], &[7u8; 46]])
            .unwrap_err()
            .code(),
        Code::DataLenRange
    );
    assert_eq!(
        verify(CKM_RSA_PKCS, public, &[7u8; 246], &sig)
            .unwrap_err()
            .code(),
        Code::DataLenRange
    );
}

#[test]
fn decryption_is_not_offered() {
    let (_, private) = pair();
    let m = registry().get(CKM_RSA_PKCS).unwrap();
    assert_eq!(
        m.decrypt_init(&Mechanism::new(CKM_RSA_PKCS), private)
            .err()
            .unwrap()
            .code(),
        Code::MechanismInvalid
    );
    assert_eq!(m.info().flags, CKF_SIGN | CKF_VERIFY);
    let g = registry().get(CKM_RSA_PKCS_KEY_PAIR_GEN).unwrap().info();
    assert_eq!(
        (g.min_key_size, g.max_key_size, g.flags),
        (2048, 4096, CKF_GENERATE_KEY_PAIR)
    );
}

#[test]
fn generation_template_errors_and_exponent() {
    assert_eq!(
        generate(&Attrs::new()).unwrap_err().code(),
        Code::TemplateIncomplete
    );
    assert_eq!(
        generate(&gen_template(1024, None)).unwrap_err().code(),
        Code::KeySizeRange
    );
    assert_eq!(
        generate(&gen_template(8192, None)).unwrap_err().code(),
        Code::KeySizeRange
    );
    for bad in [
        &[0x01, 0x00, 0x00][..],
        &[1],
        &[],
        &[1, 0, 0, 0, 0, 0, 0, 0, 1],
    ] {
        assert_eq!(
            generate(&gen_template(2048, Some(bad))).unwrap_err().code(),
            Code::AttributeValueInvalid
        );
    }
    // A caller-chosen exponent is honoured (leading zeros are not significant).
    let (p, _) = generate(&gen_template(2048, Some(&[0, 0, 0, 3]))).unwrap();
    assert_eq!(p.get_bytes(CKA_PUBLIC_EXPONENT), Some(&[3u8][..]));
}

#[test]
fn public_keys_cannot_sign_and_keys_are_parsed_once() {
    let (public, private) = pair();
    let m = registry().get(CKM_SHA256_RSA_PKCS).unwrap();
    assert_eq!(
        m.sign_init(&Mechanism::new(CKM_SHA256_RSA_PKCS), public)
            .err()
            .unwrap()
            .code(),
        Code::KeyTypeInconsistent
    );
    let a = rsa_key(private).unwrap();
    let b = rsa_key(private).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
}

#[test]
fn private_key_without_crt_values_signs_the_same() {
    let (public, private) = pair();
    let mut a = Attrs::new();
    for t in [
        CKA_CLASS,
        CKA_KEY_TYPE,
        CKA_MODULUS,
        CKA_PUBLIC_EXPONENT,
        CKA_PRIVATE_EXPONENT,
    ] {
        a.set(t, private.attrs().get(t).unwrap().clone());
    }
    validate_rsa_key(&a).unwrap();
    let bare = Object::new(a.clone());
    let sig = sign(CKM_SHA256_RSA_PKCS, &bare, &[b"no crt"]).unwrap();
    assert_eq!(
        sig,
        sign(CKM_SHA256_RSA_PKCS, private, &[b"no crt"]).unwrap()
    );
    verify(CKM_SHA256_RSA_PKCS, public, b"no crt", &sig).unwrap();
    // A private key must carry its public exponent (PKCS#11 2.40 and later).
    let mut no_e = a;
    no_e.0.remove(&CKA_PUBLIC_EXPONENT);
    assert_eq!(
        validate_rsa_key(&no_e).unwrap_err().code(),
        Code::TemplateIncomplete
    );
}
