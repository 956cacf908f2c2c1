//! Tests of key agreement and the X9.63 KDF: RFC 7748 and NIST CAVS known answers, and
//! shared secrets cross-checked with the `openssl` crate's `Deriver` in the default context.

use openssl::bn::BigNumContext;
use openssl::derive::Deriver;
use openssl::ec::{EcGroup, EcKey, EcPoint, PointConversionForm};
use openssl::hash::{MessageDigest, hash};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey as OsslPKey, Private};

use super::*;
use crate::pkey::Curve;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn nid(curve: Curve) -> Nid {
    match curve {
        Curve::P256 => Nid::X9_62_PRIME256V1,
        Curve::P384 => Nid::SECP384R1,
        Curve::P521 => Nid::SECP521R1,
        Curve::Secp256k1 => Nid::SECP256K1,
    }
}

fn openssl_ec_key(curve: Curve) -> OsslPKey<Private> {
    let group = EcGroup::from_curve_name(nid(curve)).unwrap();
    OsslPKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

fn openssl_point(key: &OsslPKey<Private>, form: PointConversionForm) -> Vec<u8> {
    let ec = key.ec_key().unwrap();
    let mut ctx = BigNumContext::new().unwrap();
    ec.public_key()
        .to_bytes(ec.group(), form, &mut ctx)
        .unwrap()
}

/// The openssl crate's ECDH of its own key with our key's public point.
fn openssl_ec_agree(own: &OsslPKey<Private>, peer_point: &[u8]) -> Vec<u8> {
    let ec = own.ec_key().unwrap();
    let mut ctx = BigNumContext::new().unwrap();
    let point = EcPoint::from_bytes(ec.group(), peer_point, &mut ctx).unwrap();
    let peer = OsslPKey::from_ec_key(EcKey::from_public_key(ec.group(), &point).unwrap()).unwrap();
    let mut d = Deriver::new(own).unwrap();
    d.set_peer(&peer).unwrap();
    d.derive_to_vec().unwrap()
}

#[test]
fn ec_agreement_matches_openssl_on_every_curve_both_ways() {
    for curve in Curve::ALL {
        let ours = PKey::generate_ec(curve).unwrap();
        let theirs = openssl_ec_key(curve);
        let their_point = openssl_point(&theirs, PointConversionForm::UNCOMPRESSED);
        let z = ec_agree(&ours, &their_point).unwrap().expect("valid peer");
        assert_eq!(z.len(), curve.field_len(), "{curve:?}");
        let reference = openssl_ec_agree(&theirs, &ours.ec_public_point().unwrap());
        assert_eq!(z.as_slice(), reference.as_slice(), "{curve:?}");

        // The compressed encoding of the same point gives the same secret.
        let compressed = openssl_point(&theirs, PointConversionForm::COMPRESSED);
        let zc = ec_agree(&ours, &compressed)
            .unwrap()
            .expect("compressed peer");
        assert_eq!(zc.as_slice(), z.as_slice(), "{curve:?}");
    }
}

#[test]
fn ec_agreement_refuses_points_off_the_curve_and_bad_encodings() {
    let ours = PKey::generate_ec(Curve::P256).unwrap();
    let theirs = openssl_ec_key(Curve::P256);
    let good = openssl_point(&theirs, PointConversionForm::UNCOMPRESSED);

    let mut off_curve = good.clone();
    off_curve[64] ^= 1;
    assert!(ec_agree(&ours, &off_curve).unwrap().is_none());
    // The identity, truncated and over-long points, hybrid form, a P-384 point on P-256.
    assert!(ec_agree(&ours, &[0x00]).unwrap().is_none());
    assert!(ec_agree(&ours, &good[..64]).unwrap().is_none());
    assert!(
        ec_agree(&ours, &[good.as_slice(), &[0]].concat())
            .unwrap()
            .is_none()
    );
    let mut hybrid = good.clone();
    hybrid[0] = 0x06 | (good[64] & 1);
    assert!(ec_agree(&ours, &hybrid).unwrap().is_none());
    let p384 = openssl_point(
        &openssl_ec_key(Curve::P384),
        PointConversionForm::UNCOMPRESSED,
    );
    assert!(ec_agree(&ours, &p384).unwrap().is_none());
    assert!(ec_agree(&ours, &[]).unwrap().is_none());

    // A public key cannot agree.
    let public = PKey::ec_from_components(Curve::P256, None, Some(&good)).unwrap();
    assert!(ec_agree(&public, &good).is_err());
    // After the refusals, a good point still works (no stale OpenSSL errors in the way).
    assert!(ec_agree(&ours, &good).unwrap().is_some());
}

// RFC 7748 §6.1 and §6.2: Alice's private key, Bob's public key, the shared secret.
const X25519_ALICE: &str = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
const X25519_BOB: &str = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
const X25519_SHARED: &str = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
const X448_ALICE: &str = "9a8f4925d1519f5775cf46b04b5800d4ee9ee8bae8bc5565d498c28dd9c9baf5\
                          74a9419744897391006382a6f127ab1d9ac2d8c0a598726b";
const X448_BOB: &str = "3eb7a829b0cd20f5bcfc0b599b6feccf6da4627107bdb0d4f345b43027d8b972\
                        fc3e34fb4232a13ca706dcb57aec3dae07bdc1c67bf33609";
const X448_SHARED: &str = "07fff4181ac6cc95ec1c16a94a0f74d12da232ce40a77552281d282bb60c0b56\
                           fd2464c335543936521c24403085d59a449a5037514a879d";

#[test]
fn x_agreement_matches_rfc_7748() {
    for (curve, alice, bob, shared) in [
        (EdCurve::X25519, X25519_ALICE, X25519_BOB, X25519_SHARED),
        (EdCurve::X448, X448_ALICE, X448_BOB, X448_SHARED),
    ] {
        let key = EdKey::from_private(curve, &h(alice)).unwrap();
        let z = x_agree(&key, &h(bob)).unwrap().expect("valid peer");
        assert_eq!(hex::encode(&*z), shared, "{curve:?}");
    }
}

#[test]
fn x_agreement_matches_openssl_with_generated_keys() {
    for (curve, id) in [(EdCurve::X25519, Id::X25519), (EdCurve::X448, Id::X448)] {
        let ours = EdKey::generate(curve).unwrap();
        let theirs = match id {
            Id::X25519 => OsslPKey::generate_x25519().unwrap(),
            _ => OsslPKey::generate_x448().unwrap(),
        };
        let their_public = theirs.raw_public_key().unwrap();
        let z = x_agree(&ours, &their_public).unwrap().expect("valid peer");
        let peer = OsslPKey::public_key_from_raw_bytes(&ours.public_raw().unwrap(), id).unwrap();
        let mut d = Deriver::new(&theirs).unwrap();
        d.set_peer(&peer).unwrap();
        assert_eq!(
            z.as_slice(),
            d.derive_to_vec().unwrap().as_slice(),
            "{curve:?}"
        );
    }
}

#[test]
fn x_agreement_refuses_small_order_points_and_wrong_lengths() {
    let key = EdKey::from_private(EdCurve::X25519, &h(X25519_ALICE)).unwrap();
    // u = 0, u = 1 and a point of order 8 all give the all-zero secret.
    for u in [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    ] {
        assert!(x_agree(&key, &h(u)).unwrap().is_none(), "{u}");
    }
    assert!(x_agree(&key, &h(X25519_BOB)[..31]).unwrap().is_none());
    assert!(
        x_agree(&key, &[h(X25519_BOB), vec![0]].concat())
            .unwrap()
            .is_none()
    );
    let x448 = EdKey::from_private(EdCurve::X448, &h(X448_ALICE)).unwrap();
    assert!(x_agree(&x448, &[0u8; 56]).unwrap().is_none());
    assert!(x_agree(&x448, &h(X25519_BOB)).unwrap().is_none());
    // Public keys and Edwards keys cannot agree.
    let public = EdKey::from_public(EdCurve::X25519, &h(X25519_BOB)).unwrap();
    assert!(x_agree(&public, &h(X25519_BOB)).is_err());
    let ed = EdKey::generate(EdCurve::Ed25519).unwrap();
    assert!(x_agree(&ed, &h(X25519_BOB)).is_err());
    assert!(x_agree(&key, &h(X25519_BOB)).unwrap().is_some());
}

/// NIST CAVS 12.0 ANS X9.63-2001 KDF vectors (first of each group: empty SharedInfo with
/// 128-bit output, 128-bit SharedInfo with 1024-bit output).
const X963_CAVS: &[(DigestAlg, &str, &str, &str)] = &[
    (
        DigestAlg::Sha1,
        "1c7d7b5f0597b03d06a018466ed1a93e30ed4b04dc64ccdd",
        "",
        "bf71dffd8f4d99223936beb46fee8ccc",
    ),
    (
        DigestAlg::Sha1,
        "fd17198b89ab39c4ab5d7cca363b82f9fd7e23c3984dc8a2",
        "856a53f3e36a26bbc5792879f307cce2",
        "6e5fad865cb4a51c95209b16df0cc490bc2c9064405c5bccd4ee4832a531fbe7\
         f10cb79e2eab6ab1149fbd5a23cfdabc41242269c9df22f628c4424333855b64\
         e95e2d4fb8469c669f17176c07d103376b10b384ec5763d8b8c610409f19aca8\
         eb31f9d85cc61a8d6d4a03d03e5a506b78d6847e93d295ee548c65afedd2efec",
    ),
    (
        DigestAlg::Sha224,
        "9ba3226ba0fca6bd5ddaef5b8d763a4d3303bc258d90468c",
        "",
        "15ccbd7d6b8f918335799b3920e69c1f",
    ),
    (
        DigestAlg::Sha224,
        "da67a73072d521a8272c69023573012ddf9b46bff65b3900",
        "727997aed53e78f74b1d66743a4ea4d2",
        "dfc3126c5eebf9a58d89730e8d8ff7cc772592f28c10b349b437d9d068698a22\
         e532eae975dfaf9c5c6a9f2935eafb05353013c253444e61f07bc9ddd15948e6\
         14bdc7e445ba3b1893f42f87f18fb352d49956009a642c362d45410b43a9ab37\
         6e9261210739174759511d1f9e52f6ec73dfed446dbafaf7fd1a57113abc2e8d",
    ),
    (
        DigestAlg::Sha256,
        "96c05619d56c328ab95fe84b18264b08725b85e33fd34f08",
        "",
        "443024c3dae66b95e6f5670601558f71",
    ),
    (
        DigestAlg::Sha256,
        "22518b10e70f2a3f243810ae3254139efbee04aa57c7af7d",
        "75eef81aa3041e33b80971203d2c0c52",
        "c498af77161cc59f2962b9a713e2b215152d139766ce34a776df11866a69bf2e\
         52a13d9c7c6fc878c50c5ea0bc7b00e0da2447cfd874f6cf92f30d0097111485\
         500c90c3af8b487872d04685d14c8d1dc8d7fa08beb0ce0ababc11f0bd496269\
         142d43525a78e5bc79a17f59676a5706dc54d54d4d1f0bd7e386128ec26afc21",
    ),
    (
        DigestAlg::Sha384,
        "d8554db1b392cd55c3fe957bed76af09c13ac2a9392f88f6",
        "",
        "671a46aada145162f8ddf1ca586a1cda",
    ),
    (
        DigestAlg::Sha384,
        "c051fd22539c9de791d6c43a854b8f80a6bf70190050854a",
        "1317504aa34759bb4c931e3b78201945",
        "cf6a84434734ac6949e1d7976743277be789906908ad3ca3a8923da7f476abbe\
         b574306d7243031a85566914bfd247d2519c479953d9d55b6b831e56260806c3\
         9af21b74e3ecf470e3bd8332791c8a23c13352514fdef00c2d1a408ba31b2d3f\
         9fdcb373895484649a645d1845eec91b5bfdc5ad28c7824984482002dd4a8677",
    ),
    (
        DigestAlg::Sha512,
        "87fc0d8c4477485bb574f5fcea264b30885dc8d90ad82782",
        "",
        "947665fbb9152153ef460238506a0245",
    ),
    (
        DigestAlg::Sha512,
        "00aa5bb79b33e389fa58ceadc047197f14e73712f452caa9fc4c9adb369348b8\
         1507392f1a86ddfdb7c4ff8231c4bd0f44e44a1b55b1404747a9e2e753f55ef0\
         5a2d",
        "e3b5b4c1b0d5cf1d2b3a2f9937895d31",
        "4463f869f3cc18769b52264b0112b5858f7ad32a5a2d96d8cffabf7fa733633d\
         6e4dd2a599acceb3ea54a6217ce0b50eef4f6b40a5c30250a5a8eeee20800226\
         7089dbf351f3f5022aa9638bf1ee419dea9c4ff745a25ac27bda33ca08bd56dd\
         1a59b4106cf2dbbc0ab2aa8e2efa7b17902d34276951ceccab87f9661c3e8816",
    ),
];

#[test]
fn x963_kdf_matches_nist_cavs() {
    for (alg, z, info, want) in X963_CAVS {
        let want = h(want);
        let got = x963_kdf(*alg, &h(z), &h(info), want.len()).unwrap();
        assert_eq!(hex::encode(&*got), hex::encode(&want), "{alg:?}");
        // A shorter output is a prefix of the longer one.
        let short = x963_kdf(*alg, &h(z), &h(info), 5).unwrap();
        assert_eq!(short.as_slice(), &want[..5]);
    }
}

#[test]
fn x963_kdf_with_sha3_matches_a_direct_computation() {
    let z = h("22518b10e70f2a3f243810ae3254139efbee04aa57c7af7d");
    let info = b"shared info";
    for (alg, md) in [
        (DigestAlg::Sha3_224, MessageDigest::sha3_224()),
        (DigestAlg::Sha3_256, MessageDigest::sha3_256()),
        (DigestAlg::Sha3_384, MessageDigest::sha3_384()),
        (DigestAlg::Sha3_512, MessageDigest::sha3_512()),
    ] {
        let mut want = Vec::new();
        for counter in 1u32..=3 {
            let input = [z.as_slice(), &counter.to_be_bytes(), info].concat();
            want.extend_from_slice(&hash(md, &input).unwrap());
        }
        let len = 2 * alg.output_len() + 7;
        let got = x963_kdf(alg, &z, info, len).unwrap();
        assert_eq!(got.as_slice(), &want[..len], "{alg:?}");
    }
    assert!(x963_kdf(DigestAlg::Sha256, &z, &[], 0).unwrap().is_empty());
}
