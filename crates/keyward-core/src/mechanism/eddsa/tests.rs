//! EdDSA family tests: RFC 8032 vectors through imported key objects, generated keys checked
//! with the `openssl` crate in the default context, and the exact error codes.

use openssl::pkey::{Id, PKey as OsslPKey};
use openssl::sign::Verifier;

use super::*;
use crate::error::Code;
use crate::mechanism::registry;
use crate::object::rules::{self, Actor, Origin};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
const ED448_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x71];
const X25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x6e];
const X448_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x6f];
const P256_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

fn name(n: &str) -> Vec<u8> {
    let mut v = vec![0x13, n.len() as u8];
    v.extend_from_slice(n.as_bytes());
    v
}

fn key(
    class: CK_OBJECT_CLASS,
    ty: CK_KEY_TYPE,
    params: &[u8],
    attr: CK_ATTRIBUTE_TYPE,
    v: &[u8],
) -> Object {
    let mut a = Attrs::new();
    a.set(CKA_CLASS, AttrValue::Ulong(class));
    a.set(CKA_KEY_TYPE, AttrValue::Ulong(ty));
    a.set(CKA_EC_PARAMS, AttrValue::bytes(params));
    a.set(attr, AttrValue::bytes(v));
    Object::new(a)
}

fn ed_private(params: &[u8], seed: &str) -> Object {
    key(CKO_PRIVATE_KEY, CKK_EC_EDWARDS, params, CKA_VALUE, &h(seed))
}

fn ed_public(params: &[u8], point: &[u8]) -> Object {
    key(CKO_PUBLIC_KEY, CKK_EC_EDWARDS, params, CKA_EC_POINT, point)
}

fn eddsa(prehash: bool, context: &[u8]) -> Mechanism {
    Mechanism {
        mech: CKM_EDDSA,
        params: MechParams::EdDsa {
            prehash,
            context: context.to_vec(),
        },
    }
}

fn sign(mech: &Mechanism, key: &Object, parts: &[&[u8]]) -> Result<Vec<u8>> {
    let mut op = registry().get(CKM_EDDSA)?.sign_init(mech, key)?;
    for p in parts {
        op.update(p)?;
    }
    let sig = op.finish()?;
    assert_eq!(sig.len(), op.sig_len());
    Ok(sig.to_vec())
}

fn verify(mech: &Mechanism, key: &Object, data: &[u8], sig: &[u8]) -> Result<()> {
    registry()
        .get(CKM_EDDSA)?
        .verify_init(mech, key)?
        .one_shot(data, sig)
}

fn code<T>(r: Result<T>) -> Code {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.code(),
    }
}

/// RFC 8032 §7.1 TEST 1, 2, 3: seed, public key, message, signature.
const ED25519_VECTORS: [(&str, &str, &str, &str); 3] = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
];

/// RFC 8032 §7.4 "-----Blank" and "-----1 octet".
const ED448_VECTORS: [(&str, &str, &str, &str); 2] = [
    (
        "6c82a562cb808d10d632be89c8513ebf6c929f34ddfa8c9f63c9960ef6e348a3528c8a3fcc2f044e39a3fc5b94492f8f032e7549a20098f95b",
        "5fd7449b59b461fd2ce787ec616ad46a1da1342485a70e1f8a0ea75d80e96778edf124769b46c7061bd6783df1e50f6cd1fa1abeafe8256180",
        "",
        "533a37f6bbe457251f023c0d88f976ae2dfb504a843e34d2074fd823d41a591f2b233f034f628281f2fd7a22ddd47d7828c59bd0a21bfd3980ff0d2028d4b18a9df63e006c5d1c2d345b925d8dc00b4104852db99ac5c7cdda8530a113a0f4dbb61149f05a7363268c71d95808ff2e652600",
    ),
    (
        "c4eab05d357007c632f3dbb48489924d552b08fe0c353a0d4a1f00acda2c463afbea67c5e8d2877c5e3bc397a659949ef8021e954e0a12274e",
        "43ba28f430cdff456ae531545f7ecd0ac834a55d9358c0372bfa0c6c6798c0866aea01eb00742802b8438ea4cb82169c235160627b4c3a9480",
        "03",
        "26b8f91727bd62897af15e41eb43c377efb9c610d48f2335cb0bd0087810f4352541b143c4b981b7e18f62de8ccdf633fc1bf037ab7cd779805e0dbcc0aae1cbcee1afb2e027df36bc04dcecbf154336c19f0af7e0a6472905e799f1953d2a0ff3348ab21aa4adafd1d234441cf807c03a00",
    ),
];

fn check_pure(params: &[u8], vectors: &[(&str, &str, &str, &str)]) {
    for (seed, public, msg, sig) in vectors {
        let (msg, sig, public) = (h(msg), h(sig), h(public));
        let private = ed_private(params, seed);
        // No parameter, and the explicit "pure" parameter, give the RFC's bytes.
        assert_eq!(
            sign(&Mechanism::new(CKM_EDDSA), &private, &[&msg]).unwrap(),
            sig
        );
        assert_eq!(sign(&eddsa(false, b""), &private, &[&msg]).unwrap(), sig);
        // Multi-part gives the same signature.
        let (a, b) = msg.split_at(msg.len() / 2);
        assert_eq!(
            sign(&Mechanism::new(CKM_EDDSA), &private, &[a, b, b""]).unwrap(),
            sig
        );

        // The public key verifies with CKA_EC_POINT as DER OCTET STRING and as raw bytes.
        for point in [encode_ec_point(&public), public.clone()] {
            let pubkey = ed_public(params, &point);
            verify(&Mechanism::new(CKM_EDDSA), &pubkey, &msg, &sig).unwrap();
            let mut bad = sig.clone();
            bad[sig.len() - 1] ^= 0x01;
            assert_eq!(
                code(verify(&Mechanism::new(CKM_EDDSA), &pubkey, &msg, &bad)),
                Code::SignatureInvalid
            );
            assert_eq!(
                code(verify(&Mechanism::new(CKM_EDDSA), &pubkey, b"other", &sig)),
                Code::SignatureInvalid
            );
            assert_eq!(
                code(verify(&Mechanism::new(CKM_EDDSA), &pubkey, &msg, &sig[1..])),
                Code::SignatureLenRange
            );
            let mut long = sig.clone();
            long.push(0);
            assert_eq!(
                code(verify(&Mechanism::new(CKM_EDDSA), &pubkey, &msg, &long)),
                Code::SignatureLenRange
            );
        }
        // The private key verifies too (it holds the public half).
        verify(&Mechanism::new(CKM_EDDSA), &private, &msg, &sig).unwrap();
    }
}

#[test]
fn ed25519_rfc8032_vectors() {
    check_pure(ED25519_OID, &ED25519_VECTORS);
    check_pure(&name("edwards25519"), &ED25519_VECTORS);
}

#[test]
fn ed448_rfc8032_vectors() {
    check_pure(ED448_OID, &ED448_VECTORS);
    check_pure(&name("edwards448"), &ED448_VECTORS);
}

/// Ed25519ctx (RFC 8032 §7.2 "foo"), Ed25519ph (§7.3 "abc") and Ed448 with context "foo"
/// (§7.4): byte-exact where OpenSSL implements the instances (3.2 and later), otherwise
/// refused at init with CKR_MECHANISM_PARAM_INVALID.
#[test]
fn context_and_prehash_vectors() {
    let cases = [
        (
            ED25519_OID,
            "0305334e381af78f141cb666f6199f57bc3495335a256a95bd2a55bf546663f6",
            false,
            "666f6f",
            "f726936d19c800494e3fdaff20b276a8",
            "55a4cc2f70a54e04288c5f4cd1e45a7bb520b36292911876cada7323198dd87a8b36950b95130022907a7fb7c4e9b2d5f6cca685a587b4b21f4b888e4e7edb0d",
        ),
        (
            ED25519_OID,
            "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
            true,
            "",
            "616263",
            "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae4131f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406",
        ),
        (
            ED448_OID,
            "c4eab05d357007c632f3dbb48489924d552b08fe0c353a0d4a1f00acda2c463afbea67c5e8d2877c5e3bc397a659949ef8021e954e0a12274e",
            false,
            "666f6f",
            "03",
            "d4f8f6131770dd46f40867d6fd5d5055de43541f8c5e35abbcd001b32a89f7d2151f7647f11d8ca2ae279fb842d607217fce6e042f6815ea000c85741de5c8da1144a6a1aba7f96de42505d7a7298524fda538fccbbb754f578c1cad10d54d0d5428407e85dcbc98a49155c13764e66c3c00",
        ),
    ];
    for (params, seed, prehash, ctx, msg, sig) in cases {
        let private = ed_private(params, seed);
        let mech = eddsa(prehash, &h(ctx));
        let r = sign(&mech, &private, &[&h(msg)]);
        if variants_supported() {
            assert_eq!(r.unwrap(), h(sig));
            verify(&mech, &private, &h(msg), &h(sig)).unwrap();
            // The same signature is not valid as plain EdDSA.
            assert_eq!(
                code(verify(
                    &Mechanism::new(CKM_EDDSA),
                    &private,
                    &h(msg),
                    &h(sig)
                )),
                Code::SignatureInvalid
            );
        } else {
            assert_eq!(code(r), Code::MechanismParamInvalid);
            assert_eq!(
                code(verify(&mech, &private, &h(msg), &h(sig))),
                Code::MechanismParamInvalid
            );
        }
    }
}

#[test]
fn parameter_errors() {
    let private = ed_private(ED25519_OID, ED25519_VECTORS[0].0);
    let long = [7u8; 256];
    assert_eq!(
        code(sign(&eddsa(false, &long), &private, &[b"m"])),
        Code::MechanismParamInvalid
    );
    assert_eq!(
        code(sign(&eddsa(true, &long), &private, &[b"m"])),
        Code::MechanismParamInvalid
    );
    let bytes = Mechanism {
        mech: CKM_EDDSA,
        params: MechParams::Bytes(vec![1]),
    };
    assert_eq!(
        code(sign(&bytes, &private, &[b"m"])),
        Code::MechanismParamInvalid
    );
    let ulong = Mechanism {
        mech: CKM_EDDSA,
        params: MechParams::Ulong(1),
    };
    assert_eq!(
        code(verify(&ulong, &private, b"m", &[0; 64])),
        Code::MechanismParamInvalid
    );
    // 255 bytes of context are within the limit (accepted where the instance exists).
    let r = sign(&eddsa(false, &long[..255]), &private, &[b"m"]);
    assert_eq!(r.is_ok(), variants_supported());

    // A public key cannot sign; a Montgomery or Weierstrass key is the wrong type.
    let public = ed_public(ED25519_OID, &h(ED25519_VECTORS[0].1));
    assert_eq!(
        code(sign(&Mechanism::new(CKM_EDDSA), &public, &[b"m"])),
        Code::KeyTypeInconsistent
    );
    let x = key(
        CKO_PRIVATE_KEY,
        CKK_EC_MONTGOMERY,
        X25519_OID,
        CKA_VALUE,
        &[9; 32],
    );
    assert_eq!(
        code(sign(&Mechanism::new(CKM_EDDSA), &x, &[b"m"])),
        Code::KeyTypeInconsistent
    );
}

#[test]
fn key_object_errors() {
    let seed = ED25519_VECTORS[0].0;
    // An X25519 curve on an Edwards key, a P-256 curve, an unknown RFC 8410 arc.
    for params in [
        X25519_OID,
        P256_OID,
        &[0x06, 0x03, 0x2b, 0x65, 0x72][..],
        &name("ed25519")[..],
    ] {
        let k = ed_private(params, seed);
        assert_eq!(
            code(sign(&Mechanism::new(CKM_EDDSA), &k, &[b"m"])),
            Code::CurveNotSupported
        );
    }
    for params in [&[0x06, 0x05, 0x2b][..], &[0x30, 0x00][..], &[][..]] {
        assert_eq!(
            code(validate_edwards_key(ed_private(params, seed).attrs())),
            Code::DomainParamsInvalid
        );
    }
    // Private value and public point of the wrong length.
    assert_eq!(
        code(validate_edwards_key(ed_private(ED448_OID, seed).attrs())),
        Code::AttributeValueInvalid
    );
    assert_eq!(
        code(validate_edwards_key(
            ed_public(ED25519_OID, &[0x04, 0x1f, 1, 2]).attrs()
        )),
        Code::AttributeValueInvalid
    );
    let mut no_point = Attrs::new();
    no_point.set(CKA_CLASS, AttrValue::Ulong(CKO_PUBLIC_KEY));
    no_point.set(CKA_EC_PARAMS, AttrValue::bytes(ED25519_OID));
    assert_eq!(
        code(validate_edwards_key(&no_point)),
        Code::TemplateIncomplete
    );
    validate_edwards_key(ed_public(ED25519_OID, &h(ED25519_VECTORS[0].1)).attrs()).unwrap();
    validate_montgomery_key(
        key(
            CKO_PUBLIC_KEY,
            CKK_EC_MONTGOMERY,
            &name("curve448"),
            CKA_EC_POINT,
            &[5; 56],
        )
        .attrs(),
    )
    .unwrap();
}

#[test]
fn multi_part_input_is_bounded() {
    let private = ed_private(ED25519_OID, ED25519_VECTORS[0].0);
    let mut op = registry()
        .get(CKM_EDDSA)
        .unwrap()
        .sign_init(&Mechanism::new(CKM_EDDSA), &private)
        .unwrap();
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..16 {
        op.update(&chunk).unwrap();
    }
    assert_eq!(code(op.update(b"x")), Code::DataLenRange);
}

fn generate(mech: CK_MECHANISM_TYPE, params: &[u8]) -> Result<(Attrs, Attrs)> {
    let mut public = Attrs::new();
    public.set(CKA_EC_PARAMS, AttrValue::bytes(params));
    registry()
        .get(mech)?
        .generate_key_pair(&Mechanism::new(mech), &public, &Attrs::new())
}

fn as_object(class: CK_OBJECT_CLASS, generated: &Attrs) -> Object {
    let mut a = generated.clone();
    a.set(CKA_CLASS, AttrValue::Ulong(class));
    Object::new(a)
}

fn ossl_id(curve: EdCurve) -> Id {
    match curve {
        EdCurve::Ed25519 => Id::ED25519,
        EdCurve::Ed448 => Id::ED448,
        EdCurve::X25519 => Id::X25519,
        EdCurve::X448 => Id::X448,
    }
}

/// The generated attributes, checked independently with the default context, and accepted
/// by the object rules for C_GenerateKeyPair.
fn check_generated(mech: CK_MECHANISM_TYPE, ty: CK_KEY_TYPE, params: &[u8], curve: EdCurve) {
    let (p, s) = generate(mech, params).unwrap();
    let n = curve.key_len();
    assert_eq!(p.get_ulong(CKA_KEY_TYPE), Some(ty));
    assert_eq!(s.get_ulong(CKA_KEY_TYPE), Some(ty));
    assert_eq!(p.get_bytes(CKA_EC_PARAMS), Some(params));
    assert_eq!(s.get_bytes(CKA_EC_PARAMS), Some(params));
    let point = p.get_bytes(CKA_EC_POINT).unwrap();
    assert_eq!(point.len(), n + 2);
    assert_eq!(&point[..2], [0x04, n as u8]);
    let value = s.get_bytes(CKA_VALUE).unwrap();
    assert_eq!(value.len(), n);

    let reference = OsslPKey::private_key_from_raw_bytes(value, ossl_id(curve)).unwrap();
    assert_eq!(reference.raw_public_key().unwrap(), &point[2..]);
    let spki = reference.public_key_to_der().unwrap();
    assert_eq!(p.get_bytes(CKA_PUBLIC_KEY_INFO), Some(&spki[..]));
    assert_eq!(s.get_bytes(CKA_PUBLIC_KEY_INFO), Some(&spki[..]));

    let origin = Origin::Generate { mech };
    let user = Actor {
        so: false,
        user: true,
    };
    let mut pt = Attrs::new();
    pt.set(CKA_CLASS, AttrValue::Ulong(CKO_PUBLIC_KEY));
    pt.set(CKA_EC_PARAMS, AttrValue::bytes(params));
    let mut st = Attrs::new();
    st.set(CKA_CLASS, AttrValue::Ulong(CKO_PRIVATE_KEY));
    rules::new_object(&pt, &p, origin, user).unwrap();
    rules::new_object(&st, &s, origin, user).unwrap();
}

#[test]
fn edwards_key_pair_generation() {
    let m = CKM_EC_EDWARDS_KEY_PAIR_GEN;
    check_generated(m, CKK_EC_EDWARDS, ED25519_OID, EdCurve::Ed25519);
    check_generated(m, CKK_EC_EDWARDS, ED448_OID, EdCurve::Ed448);
    check_generated(m, CKK_EC_EDWARDS, &name("edwards25519"), EdCurve::Ed25519);
    check_generated(m, CKK_EC_EDWARDS, &name("edwards448"), EdCurve::Ed448);

    // A generated pair signs and verifies, and the default context agrees.
    for params in [ED25519_OID, ED448_OID] {
        let (p, s) = generate(m, params).unwrap();
        let (public, private) = (
            as_object(CKO_PUBLIC_KEY, &p),
            as_object(CKO_PRIVATE_KEY, &s),
        );
        let msg = b"generated key pair";
        let sig = sign(&Mechanism::new(CKM_EDDSA), &private, &[msg]).unwrap();
        verify(&Mechanism::new(CKM_EDDSA), &public, msg, &sig).unwrap();
        let reference =
            OsslPKey::public_key_from_der(p.get_bytes(CKA_PUBLIC_KEY_INFO).unwrap()).unwrap();
        let mut v = Verifier::new_without_digest(&reference).unwrap();
        assert!(v.verify_oneshot(&sig, msg).unwrap());
    }
}

#[test]
fn montgomery_key_pair_generation() {
    let m = CKM_EC_MONTGOMERY_KEY_PAIR_GEN;
    check_generated(m, CKK_EC_MONTGOMERY, X25519_OID, EdCurve::X25519);
    check_generated(m, CKK_EC_MONTGOMERY, X448_OID, EdCurve::X448);
    check_generated(m, CKK_EC_MONTGOMERY, &name("curve25519"), EdCurve::X25519);
    check_generated(m, CKK_EC_MONTGOMERY, &name("curve448"), EdCurve::X448);
    let (p, s) = generate(m, X25519_OID).unwrap();
    montgomery_key(&as_object(CKO_PUBLIC_KEY, &p)).unwrap();
    assert!(
        montgomery_key(&as_object(CKO_PRIVATE_KEY, &s))
            .unwrap()
            .has_private()
    );
}

#[test]
fn key_pair_generation_errors() {
    let (ed, mont) = (CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EC_MONTGOMERY_KEY_PAIR_GEN);
    assert_eq!(code(generate(ed, X25519_OID)), Code::CurveNotSupported);
    assert_eq!(code(generate(ed, P256_OID)), Code::CurveNotSupported);
    assert_eq!(
        code(generate(ed, &name("curve448"))),
        Code::CurveNotSupported
    );
    assert_eq!(code(generate(mont, ED448_OID)), Code::CurveNotSupported);
    assert_eq!(
        code(generate(mont, &name("x25519"))),
        Code::CurveNotSupported
    );
    assert_eq!(
        code(generate(ed, &[0x06, 0x09, 0x2b])),
        Code::DomainParamsInvalid
    );
    assert_eq!(code(generate(ed, &[0x04, 0x00])), Code::DomainParamsInvalid);

    let none = registry().get(ed).unwrap().generate_key_pair(
        &Mechanism::new(ed),
        &Attrs::new(),
        &Attrs::new(),
    );
    assert_eq!(code(none), Code::TemplateIncomplete);

    let mut public = Attrs::new();
    public.set(CKA_EC_PARAMS, AttrValue::bytes(ED25519_OID));
    let mut private = Attrs::new();
    private.set(CKA_EC_PARAMS, AttrValue::bytes(ED448_OID));
    let r = registry()
        .get(ed)
        .unwrap()
        .generate_key_pair(&Mechanism::new(ed), &public, &private);
    assert_eq!(code(r), Code::TemplateInconsistent);

    let with_param = Mechanism {
        mech: ed,
        params: MechParams::Bytes(vec![1]),
    };
    let r = registry()
        .get(ed)
        .unwrap()
        .generate_key_pair(&with_param, &public, &Attrs::new());
    assert_eq!(code(r), Code::MechanismParamInvalid);
}

#[test]
fn mechanism_info() {
    for m in [
        CKM_EC_EDWARDS_KEY_PAIR_GEN,
        CKM_EC_MONTGOMERY_KEY_PAIR_GEN,
        CKM_EDDSA,
    ] {
        let i = registry().get(m).unwrap().info();
        assert_eq!((i.min_key_size, i.max_key_size), (255, 448));
        assert_ne!(i.flags & CKF_EC_CURVENAME, 0);
    }
    assert_ne!(
        registry().get(CKM_EDDSA).unwrap().info().flags & CKF_SIGN,
        0
    );
}
