//! PKCS#8 export and import of private key objects: generated keys of every family go out as
//! PrivateKeyInfo the openssl crate reads, and come back as the attributes generation gave.

use cryptoki_sys::*;
use openssl::pkey::{Id, PKey as OsslKey};

use super::{decode, encode};
use crate::error::{Code, Result};
use crate::mechanism::registry;
use crate::object::Object;
use crate::types::{AttrValue, Attrs, MechParams, Mechanism};

const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const P521: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
const K256: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];
const ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
const ED448: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x71];
const X25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x6e];
const X448: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x6f];

fn code<T>(r: Result<T>) -> Code {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.code(),
    }
}

/// Generate a key pair; returns the private key's generated attributes.
fn generate(mech: CK_MECHANISM_TYPE, public: Attrs) -> Attrs {
    let m = Mechanism {
        mech,
        params: MechParams::None,
    };
    let (_, private) = registry()
        .get(mech)
        .unwrap()
        .generate_key_pair(&m, &public, &Attrs::new())
        .unwrap();
    private
}

fn object(generated: &Attrs) -> Object {
    let mut a = generated.clone();
    a.set(CKA_CLASS, AttrValue::Ulong(CKO_PRIVATE_KEY));
    Object::new(a)
}

fn with(ty: CK_ATTRIBUTE_TYPE, v: AttrValue) -> Attrs {
    let mut a = Attrs::new();
    a.set(ty, v);
    a
}

fn ec_params(oid: &[u8]) -> Attrs {
    with(CKA_EC_PARAMS, AttrValue::bytes(oid))
}

/// Out and back in: the DER is a PrivateKeyInfo the openssl crate reads as `id`, and decoding
/// gives exactly the attributes generation gave.
fn round_trip(key_type: CK_KEY_TYPE, generated: &Attrs, id: Id) -> Vec<u8> {
    let der = encode(&object(generated)).unwrap();
    let theirs = OsslKey::private_key_from_pkcs8(&der).unwrap();
    assert_eq!(theirs.id(), id);
    assert_eq!(&decode(key_type, &der).unwrap(), generated);
    der.to_vec()
}

#[test]
fn rsa_keys_round_trip_with_all_crt_values() {
    let generated = generate(
        CKM_RSA_PKCS_KEY_PAIR_GEN,
        with(CKA_MODULUS_BITS, AttrValue::Ulong(2048)),
    );
    let der = round_trip(CKK_RSA, &generated, Id::RSA);
    let rsa = OsslKey::private_key_from_pkcs8(&der)
        .unwrap()
        .rsa()
        .unwrap();
    assert!(rsa.check_key().unwrap());
    assert_eq!(
        rsa.p().unwrap().to_vec(),
        generated.get_bytes(CKA_PRIME_1).unwrap()
    );
    assert_eq!(
        rsa.iqmp().unwrap().to_vec(),
        generated.get_bytes(CKA_COEFFICIENT).unwrap()
    );

    // A key created without its CRT values has no PKCS#8 form.
    let mut no_crt = generated.clone();
    no_crt.0.remove(&CKA_PRIME_2);
    assert_eq!(code(encode(&object(&no_crt))), Code::KeyNotWrappable);

    // Components that do not belong together are an invalid wrapped key.
    let mut wrong_d = generated.clone();
    let mut d = generated.get_bytes(CKA_PRIVATE_EXPONENT).unwrap().to_vec();
    d[100] ^= 1;
    wrong_d.set(CKA_PRIVATE_EXPONENT, AttrValue::bytes(d));
    let bad = encode(&object(&wrong_d)).unwrap();
    assert_eq!(code(decode(CKK_RSA, &bad)), Code::WrappedKeyInvalid);
}

#[test]
fn ec_keys_round_trip_on_every_curve() {
    for oid in [P256, P384, P521, K256] {
        let generated = generate(CKM_EC_KEY_PAIR_GEN, ec_params(oid));
        let der = round_trip(CKK_EC, &generated, Id::EC);
        let ec = OsslKey::private_key_from_pkcs8(&der)
            .unwrap()
            .ec_key()
            .unwrap();
        ec.check_key().unwrap();
        // The scalar as the token holds it (padded to the field size).
        let field = generated.get_bytes(CKA_VALUE).unwrap().len();
        assert_eq!(
            ec.private_key().to_vec_padded(field as i32).unwrap(),
            generated.get_bytes(CKA_VALUE).unwrap()
        );
        // The curve goes by its OID, and the public point is in the ECPrivateKey.
        assert!(der.windows(oid.len()).any(|w| w == oid));
        let spki = generated.get_bytes(CKA_PUBLIC_KEY_INFO).unwrap();
        let point = &spki[spki.len() - (2 * field + 1)..];
        assert!(der.windows(point.len()).any(|w| w == point));
    }
}

#[test]
fn ec_point_that_does_not_match_the_scalar_is_invalid() {
    let a = generate(CKM_EC_KEY_PAIR_GEN, ec_params(P256));
    let b = generate(CKM_EC_KEY_PAIR_GEN, ec_params(P256));
    let der = encode(&object(&a)).unwrap().to_vec();
    let point_of = |g: &Attrs| {
        let spki = g.get_bytes(CKA_PUBLIC_KEY_INFO).unwrap();
        spki[spki.len() - 65..].to_vec()
    };
    let (pa, pb) = (point_of(&a), point_of(&b));
    let at = der.windows(65).position(|w| w == pa).unwrap();
    let mut spliced = der.clone();
    spliced[at..at + 65].copy_from_slice(&pb);
    assert_eq!(code(decode(CKK_EC, &spliced)), Code::WrappedKeyInvalid);
}

#[test]
fn edwards_and_montgomery_keys_round_trip() {
    for (mech, key_type, oid, id) in [
        (
            CKM_EC_EDWARDS_KEY_PAIR_GEN,
            CKK_EC_EDWARDS,
            ED25519,
            Id::ED25519,
        ),
        (
            CKM_EC_EDWARDS_KEY_PAIR_GEN,
            CKK_EC_EDWARDS,
            ED448,
            Id::ED448,
        ),
        (
            CKM_EC_MONTGOMERY_KEY_PAIR_GEN,
            CKK_EC_MONTGOMERY,
            X25519,
            Id::X25519,
        ),
        (
            CKM_EC_MONTGOMERY_KEY_PAIR_GEN,
            CKK_EC_MONTGOMERY,
            X448,
            Id::X448,
        ),
    ] {
        let generated = generate(mech, ec_params(oid));
        let der = round_trip(key_type, &generated, id);
        let theirs = OsslKey::private_key_from_pkcs8(&der).unwrap();
        assert_eq!(
            theirs.raw_private_key().unwrap(),
            generated.get_bytes(CKA_VALUE).unwrap()
        );
    }
    // A key made with the curve-name form of CKA_EC_PARAMS comes back with the OID.
    let name = [&[0x13u8, 12][..], b"edwards25519"].concat();
    let generated = generate(CKM_EC_EDWARDS_KEY_PAIR_GEN, ec_params(&name));
    let back = decode(CKK_EC_EDWARDS, &encode(&object(&generated)).unwrap()).unwrap();
    assert_eq!(back.get_bytes(CKA_EC_PARAMS), Some(ED25519));
    assert_eq!(back.get_bytes(CKA_VALUE), generated.get_bytes(CKA_VALUE));
}

#[test]
fn key_type_mismatch_and_garbage() {
    let ec = generate(CKM_EC_KEY_PAIR_GEN, ec_params(P256));
    let der = encode(&object(&ec)).unwrap();
    for other in [CKK_RSA, CKK_EC_EDWARDS, CKK_EC_MONTGOMERY, CKK_DSA, CKK_AES] {
        assert_eq!(code(decode(other, &der)), Code::TemplateInconsistent);
    }
    let ed = generate(CKM_EC_EDWARDS_KEY_PAIR_GEN, ec_params(ED25519));
    let ed_der = encode(&object(&ed)).unwrap();
    assert_eq!(
        code(decode(CKK_EC_MONTGOMERY, &ed_der)),
        Code::TemplateInconsistent
    );
    for garbage in [
        &b""[..],
        b"\x30\x00",
        b"not DER at all",
        &der[..der.len() - 3],
    ] {
        assert_eq!(code(decode(CKK_EC, garbage)), Code::WrappedKeyInvalid);
    }
    let mut trailing = der.to_vec();
    trailing.push(0);
    assert_eq!(code(decode(CKK_EC, &trailing)), Code::WrappedKeyInvalid);
    // Other key types do not wrap.
    let mut dsa = Attrs::new();
    dsa.set(CKA_KEY_TYPE, AttrValue::Ulong(CKK_DSA));
    dsa.set(CKA_VALUE, AttrValue::bytes([1u8; 20]));
    assert_eq!(code(encode(&object(&dsa))), Code::KeyNotWrappable);
}
