//! ECDH family tests: both sides of generated key pairs agree, secrets match the `openssl`
//! crate's `Deriver` in the default context and RFC 7748, KDF output matches an X9.63
//! computation made here with `openssl::hash`, and the exact error codes.

use std::sync::Arc;

use keyward_ossl::edwards::EdCurve;
use keyward_ossl::pkey::Curve;
use openssl::bn::{BigNum, BigNumContext};
use openssl::derive::Deriver;
use openssl::ec::{EcGroup, EcKey, EcPoint, PointConversionForm};
use openssl::hash::{MessageDigest, hash};
use openssl::nid::Nid;
use openssl::pkey::PKey as OsslPKey;

use super::*;
use crate::error::Error;
use crate::mechanism::ec::encode_ec_point;
use crate::mechanism::registry;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

struct NoKeys;

impl KeyLookup for NoKeys {
    fn key(&self, _handle: CK_OBJECT_HANDLE) -> Result<Arc<Object>> {
        Err(Code::KeyHandleInvalid.err("no keys here"))
    }
}

fn object(class: CK_OBJECT_CLASS, generated: &Attrs) -> Object {
    let mut a = generated.clone();
    a.set(CKA_CLASS, AttrValue::Ulong(class));
    Object::new(a)
}

/// A key pair made by the token's own generation mechanism: (public, private).
fn generate(gen_mech: CK_MECHANISM_TYPE, params: &[u8]) -> (Object, Object) {
    let mut public = Attrs::new();
    public.set(CKA_EC_PARAMS, AttrValue::bytes(params));
    let (p, s) = registry()
        .get(gen_mech)
        .unwrap()
        .generate_key_pair(&Mechanism::new(gen_mech), &public, &Attrs::new())
        .unwrap();
    (object(CKO_PUBLIC_KEY, &p), object(CKO_PRIVATE_KEY, &s))
}

fn ec_pair(curve: Curve) -> (Object, Object) {
    generate(CKM_EC_KEY_PAIR_GEN, curve.oid_der())
}

fn x_pair(curve: EdCurve) -> (Object, Object) {
    generate(CKM_EC_MONTGOMERY_KEY_PAIR_GEN, curve.oid_der())
}

/// The DER OCTET STRING in CKA_EC_POINT, as the peer's public value.
fn point_of(public: &Object) -> Vec<u8> {
    public.attrs().get_bytes(CKA_EC_POINT).unwrap().to_vec()
}

fn ecdh(kdf: CK_ULONG, shared: &[u8], public: &[u8]) -> Mechanism {
    Mechanism {
        mech: CKM_ECDH1_DERIVE,
        params: MechParams::Ecdh {
            kdf,
            shared_data: shared.to_vec(),
            public_data: public.to_vec(),
        },
    }
}

fn template(value_len: Option<CK_ULONG>, key_type: CK_KEY_TYPE) -> Attrs {
    let mut t = Attrs::new();
    t.set(CKA_CLASS, AttrValue::Ulong(CKO_SECRET_KEY));
    t.set(CKA_KEY_TYPE, AttrValue::Ulong(key_type));
    if let Some(l) = value_len {
        t.set(CKA_VALUE_LEN, AttrValue::Ulong(l));
    }
    t
}

fn derive_with(mech: &Mechanism, base: &Object, t: &Attrs) -> Result<Vec<u8>> {
    let out = registry()
        .get(mech.mech)
        .unwrap()
        .derive_key(mech, base, t, &NoKeys)?;
    assert_eq!(out.0.len(), 1, "only CKA_VALUE is returned");
    Ok(out.get_bytes(CKA_VALUE).unwrap().to_vec())
}

fn derive(mech: &Mechanism, base: &Object, value_len: Option<CK_ULONG>) -> Result<Vec<u8>> {
    derive_with(mech, base, &template(value_len, CKK_GENERIC_SECRET))
}

fn code(r: Result<Vec<u8>>) -> Code {
    r.map_err(|e: Error| e.code()).unwrap_err()
}

fn nid(curve: Curve) -> Nid {
    match curve {
        Curve::P256 => Nid::X9_62_PRIME256V1,
        Curve::P384 => Nid::SECP384R1,
        Curve::P521 => Nid::SECP521R1,
        Curve::Secp256k1 => Nid::SECP256K1,
    }
}

/// The shared secret computed by the openssl crate from the private key's CKA_VALUE and
/// the peer's raw point.
fn reference_ec(curve: Curve, private: &Object, peer_point: &[u8]) -> Vec<u8> {
    let group = EcGroup::from_curve_name(nid(curve)).unwrap();
    let mut ctx = BigNumContext::new().unwrap();
    let d = BigNum::from_slice(private.attrs().get_bytes(CKA_VALUE).unwrap()).unwrap();
    let mut q = EcPoint::new(&group).unwrap();
    q.mul_generator2(&group, &d, &mut ctx).unwrap();
    let own =
        OsslPKey::from_ec_key(EcKey::from_private_components(&group, &d, &q).unwrap()).unwrap();
    let p = EcPoint::from_bytes(&group, peer_point, &mut ctx).unwrap();
    let peer = OsslPKey::from_ec_key(EcKey::from_public_key(&group, &p).unwrap()).unwrap();
    let mut der = Deriver::new(&own).unwrap();
    der.set_peer(&peer).unwrap();
    der.derive_to_vec().unwrap()
}

/// X9.63 KDF computed here: Hash(Z ‖ counter ‖ info) for counter 1, 2, ...
fn reference_x963(md: MessageDigest, z: &[u8], info: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut counter = 1u32;
    while out.len() < len {
        let input = [z, &counter.to_be_bytes(), info].concat();
        out.extend_from_slice(&hash(md, &input).unwrap());
        counter += 1;
    }
    out.truncate(len);
    out
}

#[test]
fn both_sides_agree_and_match_openssl_on_every_curve() {
    for curve in Curve::ALL {
        let (pub_a, priv_a) = ec_pair(curve);
        let (pub_b, priv_b) = ec_pair(curve);
        let z_a = derive(&ecdh(CKD_NULL, &[], &point_of(&pub_b)), &priv_a, None).unwrap();
        let z_b = derive(&ecdh(CKD_NULL, &[], &point_of(&pub_a)), &priv_b, None).unwrap();
        assert_eq!(z_a, z_b, "{curve:?}");
        assert_eq!(z_a.len(), curve.field_len(), "{curve:?}");
        let raw_b = decode_ec_point(curve, &point_of(&pub_b)).unwrap().to_vec();
        assert_eq!(z_a, reference_ec(curve, &priv_a, &raw_b), "{curve:?}");

        // The raw point gives what the DER-wrapped one gives; so does the cofactor variant.
        let raw = derive(&ecdh(CKD_NULL, &[], &raw_b), &priv_a, None).unwrap();
        assert_eq!(raw, z_a);
        let mut cofactor = ecdh(CKD_NULL, &[], &raw_b);
        cofactor.mech = CKM_ECDH1_COFACTOR_DERIVE;
        assert_eq!(derive(&cofactor, &priv_a, None).unwrap(), z_a);
    }
}

#[test]
fn compressed_peer_points_are_accepted() {
    let (_, priv_a) = ec_pair(Curve::P384);
    let group = EcGroup::from_curve_name(Nid::SECP384R1).unwrap();
    let peer = EcKey::generate(&group).unwrap();
    let mut ctx = BigNumContext::new().unwrap();
    let full = peer
        .public_key()
        .to_bytes(&group, PointConversionForm::UNCOMPRESSED, &mut ctx)
        .unwrap();
    let compressed = peer
        .public_key()
        .to_bytes(&group, PointConversionForm::COMPRESSED, &mut ctx)
        .unwrap();
    let want = derive(&ecdh(CKD_NULL, &[], &full), &priv_a, None).unwrap();
    assert_eq!(
        derive(&ecdh(CKD_NULL, &[], &compressed), &priv_a, None).unwrap(),
        want
    );
    let wrapped = encode_ec_point(&compressed);
    assert_eq!(
        derive(&ecdh(CKD_NULL, &[], &wrapped), &priv_a, None).unwrap(),
        want
    );
}

#[test]
fn ckd_null_truncates_from_the_leading_end() {
    let (pub_b, _) = ec_pair(Curve::P521);
    let (_, priv_a) = ec_pair(Curve::P521);
    let m = ecdh(CKD_NULL, &[], &point_of(&pub_b));
    let full = derive(&m, &priv_a, None).unwrap();
    assert_eq!(full.len(), 66);
    assert_eq!(derive(&m, &priv_a, Some(20)).unwrap(), full[46..]);
    // An AES key takes its length from CKA_VALUE_LEN; P-521's 66 bytes are no AES length.
    let aes = derive_with(&m, &priv_a, &template(Some(32), CKK_AES)).unwrap();
    assert_eq!(aes, full[34..]);
    assert_eq!(
        code(derive_with(&m, &priv_a, &template(None, CKK_AES))),
        Code::TemplateIncomplete
    );
    assert_eq!(
        code(derive(&m, &priv_a, Some(67))),
        Code::TemplateInconsistent
    );
    // On P-256 an AES key without CKA_VALUE_LEN is the whole 32-byte secret.
    let (pub_c, priv_c) = ec_pair(Curve::P256);
    let m = ecdh(CKD_NULL, &[], &point_of(&pub_c));
    assert_eq!(
        derive_with(&m, &priv_c, &template(None, CKK_AES)).unwrap(),
        derive(&m, &priv_c, None).unwrap()
    );
}

#[test]
fn x963_kdfs_match_a_computation_over_the_raw_secret() {
    let (pub_a, priv_a) = ec_pair(Curve::P256);
    let (pub_b, priv_b) = ec_pair(Curve::P256);
    let z = derive(&ecdh(CKD_NULL, &[], &point_of(&pub_b)), &priv_a, None).unwrap();
    let info = b"ECDH shared info";
    for (kdf, md) in [
        (CKD_SHA1_KDF, MessageDigest::sha1()),
        (CKD_SHA224_KDF, MessageDigest::sha224()),
        (CKD_SHA256_KDF, MessageDigest::sha256()),
        (CKD_SHA384_KDF, MessageDigest::sha384()),
        (CKD_SHA512_KDF, MessageDigest::sha512()),
        (CKD_SHA3_224_KDF, MessageDigest::sha3_224()),
        (CKD_SHA3_256_KDF, MessageDigest::sha3_256()),
        (CKD_SHA3_384_KDF, MessageDigest::sha3_384()),
        (CKD_SHA3_512_KDF, MessageDigest::sha3_512()),
    ] {
        for (shared, len) in [(&info[..], 100usize), (&[][..], 16)] {
            let a = derive(
                &ecdh(kdf, shared, &point_of(&pub_b)),
                &priv_a,
                Some(len as CK_ULONG),
            )
            .unwrap();
            let b = derive(
                &ecdh(kdf, shared, &point_of(&pub_a)),
                &priv_b,
                Some(len as CK_ULONG),
            )
            .unwrap();
            assert_eq!(a, b, "kdf {kdf:#x}");
            assert_eq!(a, reference_x963(md, &z, shared, len), "kdf {kdf:#x}");
        }
        // A KDF has no natural length: CKA_VALUE_LEN (or a fixed-size key type) is needed.
        let m = ecdh(kdf, info, &point_of(&pub_b));
        assert_eq!(code(derive(&m, &priv_a, None)), Code::TemplateIncomplete);
        let aes = derive_with(&m, &priv_a, &template(Some(24), CKK_AES)).unwrap();
        assert_eq!(aes, reference_x963(md, &z, info, 24));
    }
}

#[test]
fn kdf_output_is_bounded() {
    let (pub_b, _) = ec_pair(Curve::P256);
    let (_, priv_a) = ec_pair(Curve::P256);
    let m = ecdh(CKD_SHA256_KDF, &[], &point_of(&pub_b));
    assert_eq!(derive(&m, &priv_a, Some(4096)).unwrap().len(), 4096);
    assert_eq!(
        code(derive(&m, &priv_a, Some(4097))),
        Code::AttributeValueInvalid
    );
}

// RFC 7748 §6.1 and §6.2.
const X25519_ALICE: &str = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
const X25519_BOB: &str = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
const X25519_SHARED: &str = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
const X448_ALICE: &str = "9a8f4925d1519f5775cf46b04b5800d4ee9ee8bae8bc5565d498c28dd9c9baf5\
                          74a9419744897391006382a6f127ab1d9ac2d8c0a598726b";
const X448_BOB: &str = "3eb7a829b0cd20f5bcfc0b599b6feccf6da4627107bdb0d4f345b43027d8b972\
                        fc3e34fb4232a13ca706dcb57aec3dae07bdc1c67bf33609";
const X448_SHARED: &str = "07fff4181ac6cc95ec1c16a94a0f74d12da232ce40a77552281d282bb60c0b56\
                           fd2464c335543936521c24403085d59a449a5037514a879d";

fn montgomery_private(params: &[u8], value: &[u8]) -> Object {
    let mut a = Attrs::new();
    a.set(CKA_CLASS, AttrValue::Ulong(CKO_PRIVATE_KEY));
    a.set(CKA_KEY_TYPE, AttrValue::Ulong(CKK_EC_MONTGOMERY));
    a.set(CKA_EC_PARAMS, AttrValue::bytes(params));
    a.set(CKA_VALUE, AttrValue::bytes(value));
    Object::new(a)
}

#[test]
fn montgomery_keys_match_rfc_7748_raw_and_wrapped() {
    for (curve, alice, bob, shared) in [
        (EdCurve::X25519, X25519_ALICE, X25519_BOB, X25519_SHARED),
        (EdCurve::X448, X448_ALICE, X448_BOB, X448_SHARED),
    ] {
        let key = montgomery_private(curve.oid_der(), &h(alice));
        let raw = derive(&ecdh(CKD_NULL, &[], &h(bob)), &key, None).unwrap();
        assert_eq!(hex::encode(&raw), shared, "{curve:?}");
        let wrapped = derive(&ecdh(CKD_NULL, &[], &encode_ec_point(&h(bob))), &key, None);
        assert_eq!(hex::encode(wrapped.unwrap()), shared, "{curve:?}");
        // A key whose CKA_EC_PARAMS names the curve by PrintableString works alike.
        let name = curve.curve_name();
        let mut params = vec![0x13, name.len() as u8];
        params.extend_from_slice(name.as_bytes());
        let named = montgomery_private(&params, &h(alice));
        assert_eq!(
            hex::encode(derive(&ecdh(CKD_NULL, &[], &h(bob)), &named, None).unwrap()),
            shared
        );
    }
}

#[test]
fn generated_montgomery_pairs_agree_with_kdf() {
    for curve in [EdCurve::X25519, EdCurve::X448] {
        let (pub_a, priv_a) = x_pair(curve);
        let (pub_b, priv_b) = x_pair(curve);
        let a = derive(
            &ecdh(CKD_SHA256_KDF, b"x", &point_of(&pub_b)),
            &priv_a,
            Some(32),
        );
        let b = derive(
            &ecdh(CKD_SHA256_KDF, b"x", &point_of(&pub_a)),
            &priv_b,
            Some(32),
        );
        assert_eq!(a.unwrap(), b.unwrap(), "{curve:?}");
    }
}

#[test]
fn refused_peer_values_are_mechanism_param_invalid() {
    let (pub_b, _) = ec_pair(Curve::P256);
    let (_, priv_a) = ec_pair(Curve::P256);
    let good = decode_ec_point(Curve::P256, &point_of(&pub_b))
        .unwrap()
        .to_vec();
    let mut off_curve = good.clone();
    off_curve[64] ^= 1;
    let (pub_384, _) = ec_pair(Curve::P384);
    for bad in [
        off_curve,
        vec![0x00],
        good[..64].to_vec(),
        [good.as_slice(), &[0]].concat(),
        point_of(&pub_384),
        encode_ec_point(&good[..64]),
    ] {
        let r = derive(&ecdh(CKD_NULL, &[], &bad), &priv_a, None);
        assert_eq!(
            code(r),
            Code::MechanismParamInvalid,
            "{}",
            hex::encode(&bad)
        );
    }
    // X25519: the all-zero secret of small-order points, and wrong lengths.
    let x = montgomery_private(EdCurve::X25519.oid_der(), &h(X25519_ALICE));
    for bad in [
        vec![0u8; 32],
        h("0100000000000000000000000000000000000000000000000000000000000000"),
        h("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
        vec![9u8; 31],
        vec![9u8; 56],
    ] {
        let r = derive(&ecdh(CKD_NULL, &[], &bad), &x, None);
        assert_eq!(
            code(r),
            Code::MechanismParamInvalid,
            "{}",
            hex::encode(&bad)
        );
    }
}

#[test]
fn parameter_errors() {
    let (pub_b, _) = ec_pair(Curve::P256);
    let (pub_a, priv_a) = ec_pair(Curve::P256);
    let point = point_of(&pub_b);
    // CKD_NULL with shared data; unknown and unsupported KDFs; no public value.
    assert_eq!(
        code(derive(&ecdh(CKD_NULL, b"info", &point), &priv_a, None)),
        Code::MechanismParamInvalid
    );
    for kdf in [
        0,
        CKD_SHA1_KDF_ASN1,
        CKD_SHA256_KDF_SP800,
        CKD_BLAKE2B_256_KDF,
        0x1234,
    ] {
        let r = derive(&ecdh(kdf, &[], &point), &priv_a, Some(16));
        assert_eq!(code(r), Code::MechanismParamInvalid, "kdf {kdf:#x}");
    }
    assert_eq!(
        code(derive(&ecdh(CKD_NULL, &[], &[]), &priv_a, None)),
        Code::MechanismParamInvalid
    );
    assert_eq!(
        code(derive(&Mechanism::new(CKM_ECDH1_DERIVE), &priv_a, None)),
        Code::MechanismParamInvalid
    );
    // A public key (of either family) is no base key; nor is a Montgomery key for the
    // cofactor variant.
    assert_eq!(
        code(derive(&ecdh(CKD_NULL, &[], &point), &pub_a, None)),
        Code::KeyTypeInconsistent
    );
    let (x_pub, x_priv) = x_pair(EdCurve::X25519);
    assert_eq!(
        code(derive(
            &ecdh(CKD_NULL, &[], &point_of(&x_pub)),
            &x_pub,
            None
        )),
        Code::KeyTypeInconsistent
    );
    let mut cofactor = ecdh(CKD_NULL, &[], &point_of(&x_pub));
    cofactor.mech = CKM_ECDH1_COFACTOR_DERIVE;
    assert_eq!(
        code(derive(&cofactor, &x_priv, None)),
        Code::KeyTypeInconsistent
    );
    // A point of the other family's key: an EC point for an X25519 key.
    assert_eq!(
        code(derive(&ecdh(CKD_NULL, &[], &point), &x_priv, None)),
        Code::MechanismParamInvalid
    );
}

#[test]
fn mechanism_info_and_key_types() {
    let m = registry().get(CKM_ECDH1_DERIVE).unwrap();
    let info = m.info();
    assert_eq!((info.min_key_size, info.max_key_size), (255, 521));
    assert_eq!(
        info.flags,
        CKF_DERIVE
            | CKF_EC_F_P
            | CKF_EC_OID
            | CKF_EC_CURVENAME
            | CKF_EC_UNCOMPRESS
            | CKF_EC_COMPRESS
    );
    assert_eq!(m.key_types(), &[CKK_EC, CKK_EC_MONTGOMERY]);
    let c = registry().get(CKM_ECDH1_COFACTOR_DERIVE).unwrap();
    let info = c.info();
    assert_eq!((info.min_key_size, info.max_key_size), (256, 521));
    assert_eq!(info.flags & CKF_EC_CURVENAME, 0);
    assert_eq!(c.key_types(), &[CKK_EC]);
    // The EC key sizes are those of CKM_EC_KEY_PAIR_GEN.
    let gen_info = registry().get(CKM_EC_KEY_PAIR_GEN).unwrap().info();
    assert_eq!(
        (gen_info.min_key_size, gen_info.max_key_size),
        (info.min_key_size, info.max_key_size)
    );
}
