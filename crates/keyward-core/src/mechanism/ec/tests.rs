//! EC family tests; signatures are cross-checked with the `openssl` crate's default context.

use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey as OsslPKey, Public};
use openssl::pkey_ctx::PkeyCtx;
use openssl::sign::Verifier;

use super::*;
use crate::mechanism::registry;

fn object(class: CK_OBJECT_CLASS, generated: &Attrs) -> Object {
    let mut a = generated.clone();
    a.set(CKA_CLASS, AttrValue::Ulong(class));
    Object::new(a)
}

fn generate(curve: Curve) -> (Object, Object) {
    let mut public = Attrs::new();
    public.set(CKA_EC_PARAMS, AttrValue::bytes(curve.oid_der()));
    let (p, s) = registry()
        .get(CKM_EC_KEY_PAIR_GEN)
        .unwrap()
        .generate_key_pair(&Mechanism::new(CKM_EC_KEY_PAIR_GEN), &public, &Attrs::new())
        .unwrap();
    (object(CKO_PUBLIC_KEY, &p), object(CKO_PRIVATE_KEY, &s))
}

fn reference(public: &Object) -> OsslPKey<Public> {
    OsslPKey::public_key_from_der(public.attrs().get_bytes(CKA_PUBLIC_KEY_INFO).unwrap()).unwrap()
}

fn der(rs: &[u8]) -> Vec<u8> {
    let (r, s) = rs.split_at(rs.len() / 2);
    EcdsaSig::from_private_components(
        BigNum::from_slice(r).unwrap(),
        BigNum::from_slice(s).unwrap(),
    )
    .unwrap()
    .to_der()
    .unwrap()
}

fn sign(mech: CK_MECHANISM_TYPE, key: &Object, parts: &[&[u8]]) -> Vec<u8> {
    let mut op = registry()
        .get(mech)
        .unwrap()
        .sign_init(&Mechanism::new(mech), key)
        .unwrap();
    for p in parts {
        op.update(p).unwrap();
    }
    let sig = op.finish().unwrap();
    assert_eq!(sig.len(), op.sig_len());
    sig.to_vec()
}

fn verify(mech: CK_MECHANISM_TYPE, key: &Object, data: &[u8], sig: &[u8]) -> Result<()> {
    registry()
        .get(mech)
        .unwrap()
        .verify_init(&Mechanism::new(mech), key)
        .unwrap()
        .one_shot(data, sig)
}

#[test]
fn key_pair_attributes_follow_the_conventions() {
    for curve in Curve::ALL {
        let (public, private) = generate(curve);
        let pa = public.attrs();
        assert_eq!(pa.get_ulong(CKA_KEY_TYPE), Some(CKK_EC));
        assert_eq!(pa.get_bytes(CKA_EC_PARAMS), Some(curve.oid_der()));
        let wrapped = pa.get_bytes(CKA_EC_POINT).unwrap();
        let point = decode_ec_point(curve, wrapped).unwrap();
        assert_eq!(point.len(), curve.point_len());
        assert_eq!(point[0], 0x04);
        assert_eq!(wrapped[0], 0x04);
        // The SPKI, read independently, holds the same point.
        let ec = reference(&public).ec_key().unwrap();
        let mut ctx = openssl::bn::BigNumContext::new().unwrap();
        let bytes = ec
            .public_key()
            .to_bytes(
                ec.group(),
                openssl::ec::PointConversionForm::UNCOMPRESSED,
                &mut ctx,
            )
            .unwrap();
        assert_eq!(bytes, point);

        let sa = private.attrs();
        assert_eq!(sa.get_bytes(CKA_VALUE).unwrap().len(), curve.field_len());
        assert_eq!(
            sa.get_bytes(CKA_PUBLIC_KEY_INFO),
            pa.get_bytes(CKA_PUBLIC_KEY_INFO)
        );
        assert_eq!(sa.get_bytes(CKA_EC_PARAMS), Some(curve.oid_der()));
    }
}

#[test]
fn ecdsa_sha256_single_and_multi_part_verified_independently() {
    let (public, private) = generate(Curve::P256);
    let msg = b"The quick brown fox jumps over the lazy dog";
    let one = sign(CKM_ECDSA_SHA256, &private, &[msg]);
    let multi = sign(CKM_ECDSA_SHA256, &private, &[&msg[..10], &msg[10..]]);
    assert_eq!(one.len(), 64);
    let reference = reference(&public);
    for sig in [&one, &multi] {
        let mut v = Verifier::new(MessageDigest::sha256(), &reference).unwrap();
        assert!(v.verify_oneshot(&der(sig), msg).unwrap());
        verify(CKM_ECDSA_SHA256, &public, msg, sig).unwrap();
    }
    let mut bad = one.clone();
    bad[40] ^= 0x10;
    assert_eq!(
        verify(CKM_ECDSA_SHA256, &public, msg, &bad)
            .unwrap_err()
            .code(),
        Code::SignatureInvalid
    );
    assert_eq!(
        verify(CKM_ECDSA_SHA256, &public, b"other", &one)
            .unwrap_err()
            .code(),
        Code::SignatureInvalid
    );
    assert_eq!(
        verify(CKM_ECDSA_SHA256, &public, msg, &one[..63])
            .unwrap_err()
            .code(),
        Code::SignatureLenRange
    );
    assert_eq!(
        verify(CKM_ECDSA_SHA256, &public, msg, &[0u8; 65])
            .unwrap_err()
            .code(),
        Code::SignatureLenRange
    );
}

#[test]
fn raw_ecdsa_truncates_long_hashes_like_openssl() {
    let (public, private) = generate(Curve::P384);
    let reference = reference(&public);
    for len in [20usize, 48, 64, 100] {
        let hash: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let sig = sign(CKM_ECDSA, &private, &[&hash]);
        assert_eq!(sig.len(), 96);
        let mut ctx = PkeyCtx::new(&reference).unwrap();
        ctx.verify_init().unwrap();
        assert!(
            ctx.verify(&hash, &der(&sig)).unwrap(),
            "hash of {len} bytes"
        );
        verify(CKM_ECDSA, &public, &hash, &sig).unwrap();
    }
    let mut op = registry()
        .get(CKM_ECDSA)
        .unwrap()
        .sign_init(&Mechanism::new(CKM_ECDSA), &private)
        .unwrap();
    assert_eq!(
        op.update(&[0u8; 1025]).unwrap_err().code(),
        Code::DataLenRange
    );
}

#[test]
fn p521_signatures_are_132_bytes() {
    let (public, private) = generate(Curve::P521);
    let sig = sign(CKM_ECDSA_SHA512, &private, &[b"m"]);
    assert_eq!(sig.len(), 132);
    verify(CKM_ECDSA_SHA512, &public, b"m", &sig).unwrap();
    let reference = reference(&public);
    let mut v = Verifier::new(MessageDigest::sha512(), &reference).unwrap();
    assert!(v.verify_oneshot(&der(&sig), b"m").unwrap());
}

#[test]
fn public_key_with_raw_point_is_accepted() {
    let (public, private) = generate(Curve::Secp256k1);
    let point = decode_ec_point(
        Curve::Secp256k1,
        public.attrs().get_bytes(CKA_EC_POINT).unwrap(),
    )
    .unwrap()
    .to_vec();
    let mut a = Attrs::new();
    a.set(CKA_CLASS, AttrValue::Ulong(CKO_PUBLIC_KEY));
    a.set(CKA_KEY_TYPE, AttrValue::Ulong(CKK_EC));
    a.set(CKA_EC_PARAMS, AttrValue::bytes(Curve::Secp256k1.oid_der()));
    a.set(CKA_EC_POINT, AttrValue::bytes(point.clone()));
    let raw = Object::new(a.clone());
    let sig = sign(CKM_ECDSA_SHA256, &private, &[b"k1"]);
    verify(CKM_ECDSA_SHA256, &raw, b"k1", &sig).unwrap();
    // A point off the curve is refused when the key is used.
    let mut off = point;
    off[10] ^= 1;
    a.set(CKA_EC_POINT, AttrValue::bytes(off));
    let e = registry()
        .get(CKM_ECDSA_SHA256)
        .unwrap()
        .verify_init(&Mechanism::new(CKM_ECDSA_SHA256), &Object::new(a))
        .err()
        .unwrap();
    assert_eq!(e.code(), Code::AttributeValueInvalid);
}

#[test]
fn ec_point_encodings() {
    let p256 = [4u8; 65];
    let wrapped = encode_ec_point(&p256);
    assert_eq!(wrapped[..2], [0x04, 0x41]);
    assert_eq!(decode_ec_point(Curve::P256, &wrapped).unwrap(), &p256[..]);
    assert_eq!(decode_ec_point(Curve::P256, &p256).unwrap(), &p256[..]);
    let p521 = [4u8; 133];
    let wrapped = encode_ec_point(&p521);
    assert_eq!(wrapped[..3], [0x04, 0x81, 0x85]);
    assert_eq!(decode_ec_point(Curve::P521, &wrapped).unwrap(), &p521[..]);
    let mut compressed = vec![0x04, 0x21, 0x02];
    compressed.extend([1u8; 32]);
    assert_eq!(decode_ec_point(Curve::P256, &compressed).unwrap().len(), 33);
    assert!(decode_ec_point(Curve::P256, &[4u8; 64]).is_err());
    assert!(decode_ec_point(Curve::P384, &p256).is_err());
}

#[test]
fn key_pair_template_errors() {
    let m = registry().get(CKM_EC_KEY_PAIR_GEN).unwrap();
    let mech = Mechanism::new(CKM_EC_KEY_PAIR_GEN);
    let gen_with = |params: &[u8]| {
        let mut a = Attrs::new();
        a.set(CKA_EC_PARAMS, AttrValue::bytes(params));
        m.generate_key_pair(&mech, &a, &Attrs::new())
            .err()
            .unwrap()
            .code()
    };
    assert_eq!(
        m.generate_key_pair(&mech, &Attrs::new(), &Attrs::new())
            .err()
            .unwrap()
            .code(),
        Code::TemplateIncomplete
    );
    // Ed25519's OID is well-formed but not a curve of this mechanism.
    assert_eq!(
        gen_with(&[0x06, 0x03, 0x2b, 0x65, 0x70]),
        Code::CurveNotSupported
    );
    // secp224r1 (1.3.132.0.33) is not offered.
    assert_eq!(
        gen_with(&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x21]),
        Code::CurveNotSupported
    );
    assert_eq!(
        gen_with(&[0x30, 0x03, 0x02, 0x01, 0x01]),
        Code::DomainParamsInvalid
    );
    assert_eq!(gen_with(&[0x06, 0x08, 0x2a]), Code::DomainParamsInvalid);
    let mut a = Attrs::new();
    a.set(CKA_EC_PARAMS, AttrValue::bytes(Curve::P256.oid_der()));
    let mut b = Attrs::new();
    b.set(CKA_EC_PARAMS, AttrValue::bytes(Curve::P384.oid_der()));
    assert_eq!(
        m.generate_key_pair(&mech, &a, &b).err().unwrap().code(),
        Code::TemplateInconsistent
    );
}

#[test]
fn info_is_truthful() {
    let i = registry().get(CKM_ECDSA).unwrap().info();
    assert_eq!((i.min_key_size, i.max_key_size), (256, 521));
    assert_eq!(
        i.flags,
        CKF_SIGN | CKF_VERIFY | CKF_EC_F_P | CKF_EC_OID | CKF_EC_CURVENAME | CKF_EC_UNCOMPRESS
    );
    let g = registry().get(CKM_EC_KEY_PAIR_GEN).unwrap().info();
    assert_ne!(g.flags & CKF_GENERATE_KEY_PAIR, 0);
}

/// The hashed ECDSA mechanisms hash with their own algorithm (checked by OpenSSL verifying
/// over the message with that digest).
#[test]
fn hashed_ecdsa_mechanisms_use_their_digest() {
    let (public, private) = generate(Curve::P384);
    let msg = b"hash me with the right function";
    for (mech, md) in [
        (CKM_ECDSA_SHA1, MessageDigest::sha1()),
        (CKM_ECDSA_SHA224, MessageDigest::sha224()),
        (CKM_ECDSA_SHA256, MessageDigest::sha256()),
        (CKM_ECDSA_SHA384, MessageDigest::sha384()),
        (CKM_ECDSA_SHA512, MessageDigest::sha512()),
        (CKM_ECDSA_SHA3_224, MessageDigest::sha3_224()),
        (CKM_ECDSA_SHA3_256, MessageDigest::sha3_256()),
        (CKM_ECDSA_SHA3_384, MessageDigest::sha3_384()),
        (CKM_ECDSA_SHA3_512, MessageDigest::sha3_512()),
    ] {
        let sig = sign(mech, &private, &[&msg[..5], &msg[5..]]);
        let reference = reference(&public);
        let mut v = Verifier::new(md, &reference).unwrap();
        assert!(v.verify_oneshot(&der(&sig), msg).unwrap(), "{mech:#x}");
        verify(mech, &public, msg, &sig).unwrap();
        assert_eq!(
            verify(mech, &public, b"other", &sig).unwrap_err().code(),
            Code::SignatureInvalid
        );
    }
}

/// CKA_EC_PARAMS as a PrintableString curve name (PKCS#11 3.0): keys are made on the named
/// curve and keep the caller's form of the parameters.
#[test]
fn curve_names_name_curves() {
    let name = |s: &str| {
        let mut v = vec![0x13, s.len() as u8];
        v.extend_from_slice(s.as_bytes());
        v
    };
    for (n, curve) in [
        ("prime256v1", Curve::P256),
        ("secp256r1", Curve::P256),
        ("P-256", Curve::P256),
        ("secp384r1", Curve::P384),
        ("P-521", Curve::P521),
        ("secp256k1", Curve::Secp256k1),
    ] {
        assert_eq!(curve_from_params(&name(n)).unwrap(), curve, "{n}");
    }
    assert_eq!(
        curve_from_params(&name("brainpoolP256r1"))
            .unwrap_err()
            .code(),
        Code::CurveNotSupported
    );
    assert_eq!(
        curve_from_params(&[0x13, 5, b'P']).unwrap_err().code(),
        Code::DomainParamsInvalid
    );
    let mut public = Attrs::new();
    public.set(CKA_EC_PARAMS, AttrValue::bytes(name("secp384r1")));
    let (p, s) = registry()
        .get(CKM_EC_KEY_PAIR_GEN)
        .unwrap()
        .generate_key_pair(&Mechanism::new(CKM_EC_KEY_PAIR_GEN), &public, &Attrs::new())
        .unwrap();
    assert_eq!(p.get_bytes(CKA_EC_PARAMS), Some(&name("secp384r1")[..]));
    let (public, private) = (object(CKO_PUBLIC_KEY, &p), object(CKO_PRIVATE_KEY, &s));
    let sig = sign(CKM_ECDSA_SHA384, &private, &[b"named"]);
    assert_eq!(sig.len(), 96, "a P-384 signature");
    verify(CKM_ECDSA_SHA384, &public, b"named", &sig).unwrap();
}
