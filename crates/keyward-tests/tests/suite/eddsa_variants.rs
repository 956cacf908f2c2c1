//! CKM_EDDSA with CK_EDDSA_PARAMS through the C ABI: the RFC 8032 keys imported with
//! C_CreateObject sign Ed25519ctx, Ed25519ph, Ed448 with a context and Ed448ph byte for byte
//! (single- and multi-part), the public keys verify them, and tampered signatures, wrong
//! lengths and over-long contexts give their exact codes.

use cryptoki::error::RvError;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use super::keys::der_octet_string;
use crate::common::{self, is_keyward, rv_of, user_session};

/// DER of id-Ed25519 (1.3.101.112) and id-Ed448 (1.3.101.113), RFC 8410.
const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
const ED448_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x71];

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

/// One RFC 8032 vector: instance, seed, public key, context, message, signature.
struct Vector {
    ed448: bool,
    prehash: bool,
    seed: &'static str,
    public: &'static str,
    context: &'static str,
    msg: &'static str,
    sig: &'static str,
}

const ED25519CTX_SEED: &str = "0305334e381af78f141cb666f6199f57bc3495335a256a95bd2a55bf546663f6";
const ED25519CTX_PUBLIC: &str = "dfc9425e4f968f7f0c29f0259cf5f9aed6851c2bb4ad8bfb860cfee0ab248292";
const ED448PH_SEED: &str = "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42ef7822e0d5104127dc05d6dbefde69e3ab2cec7c867c6e2c49";
const ED448PH_PUBLIC: &str = "259b71c19f83ef77a7abd26524cbdb3161b590a48f7d17de3ee0ba9c52beb743c09428a131d6b1b57303d90d8132c276d5ed3d5d01c0f53880";

/// RFC 8032 §7.2 (Ed25519ctx foo, bar, foo2, foo3), §7.3 (Ed25519ph abc), §7.4 (Ed448, 1
/// octet with context "foo") and §7.5 (Ed448ph abc, with and without context "foo").
const VECTORS: [Vector; 8] = [
    Vector {
        ed448: false,
        prehash: false,
        seed: ED25519CTX_SEED,
        public: ED25519CTX_PUBLIC,
        context: "666f6f",
        msg: "f726936d19c800494e3fdaff20b276a8",
        sig: "55a4cc2f70a54e04288c5f4cd1e45a7bb520b36292911876cada7323198dd87a8b36950b95130022907a7fb7c4e9b2d5f6cca685a587b4b21f4b888e4e7edb0d",
    },
    Vector {
        ed448: false,
        prehash: false,
        seed: ED25519CTX_SEED,
        public: ED25519CTX_PUBLIC,
        context: "626172",
        msg: "f726936d19c800494e3fdaff20b276a8",
        sig: "fc60d5872fc46b3aa69f8b5b4351d5808f92bcc044606db097abab6dbcb1aee3216c48e8b3b66431b5b186d1d28f8ee15a5ca2df6668346291c2043d4eb3e90d",
    },
    Vector {
        ed448: false,
        prehash: false,
        seed: ED25519CTX_SEED,
        public: ED25519CTX_PUBLIC,
        context: "666f6f",
        msg: "508e9e6882b979fea900f62adceaca35",
        sig: "8b70c1cc8310e1de20ac53ce28ae6e7207f33c3295e03bb5c0732a1d20dc64908922a8b052cf99b7c4fe107a5abb5b2c4085ae75890d02df26269d8945f84b0b",
    },
    Vector {
        ed448: false,
        prehash: false,
        seed: "ab9c2853ce297ddab85c993b3ae14bcad39b2c682beabc27d6d4eb20711d6560",
        public: "0f1d1274943b91415889152e893d80e93275a1fc0b65fd71b4b0dda10ad7d772",
        context: "666f6f",
        msg: "f726936d19c800494e3fdaff20b276a8",
        sig: "21655b5f1aa965996b3f97b3c849eafba922a0a62992f73b3d1b73106a84ad85e9b86a7b6005ea868337ff2d20a7f5fbd4cd10b0be49a68da2b2e0dc0ad8960f",
    },
    Vector {
        ed448: false,
        prehash: true,
        seed: "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        public: "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        context: "",
        msg: "616263",
        sig: "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae4131f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406",
    },
    Vector {
        ed448: true,
        prehash: false,
        seed: "c4eab05d357007c632f3dbb48489924d552b08fe0c353a0d4a1f00acda2c463afbea67c5e8d2877c5e3bc397a659949ef8021e954e0a12274e",
        public: "43ba28f430cdff456ae531545f7ecd0ac834a55d9358c0372bfa0c6c6798c0866aea01eb00742802b8438ea4cb82169c235160627b4c3a9480",
        context: "666f6f",
        msg: "03",
        sig: "d4f8f6131770dd46f40867d6fd5d5055de43541f8c5e35abbcd001b32a89f7d2151f7647f11d8ca2ae279fb842d607217fce6e042f6815ea000c85741de5c8da1144a6a1aba7f96de42505d7a7298524fda538fccbbb754f578c1cad10d54d0d5428407e85dcbc98a49155c13764e66c3c00",
    },
    Vector {
        ed448: true,
        prehash: true,
        seed: ED448PH_SEED,
        public: ED448PH_PUBLIC,
        context: "",
        msg: "616263",
        sig: "822f6901f7480f3d5f562c592994d9693602875614483256505600bbc281ae381f54d6bce2ea911574932f52a4e6cadd78769375ec3ffd1b801a0d9b3f4030cd433964b6457ea39476511214f97469b57dd32dbc560a9a94d00bff07620464a3ad203df7dc7ce360c3cd3696d9d9fab90f00",
    },
    Vector {
        ed448: true,
        prehash: true,
        seed: ED448PH_SEED,
        public: ED448PH_PUBLIC,
        context: "666f6f",
        msg: "616263",
        sig: "c32299d46ec8ff02b54540982814dce9a05812f81962b649d528095916a2aa481065b1580423ef927ecf0af5888f90da0f6a9a85ad5dc3f280d91224ba9911a3653d00e484e2ce232521481c8658df304bb7745a73514cdb9bf3e15784ab71284f8d0704a608c54a6b62d97beb511d132100",
    },
];

impl Vector {
    fn oid(&self) -> &'static [u8] {
        if self.ed448 { ED448_OID } else { ED25519_OID }
    }

    fn scheme<'a>(&self, context: &'a [u8]) -> EddsaSignatureScheme<'a> {
        match (self.ed448, self.prehash) {
            (false, false) => EddsaSignatureScheme::Ed25519ctx(context),
            (false, true) => EddsaSignatureScheme::Ed25519ph(context),
            (true, false) => EddsaSignatureScheme::Ed448(context),
            (true, true) => EddsaSignatureScheme::Ed448ph(context),
        }
    }
}

fn mech(scheme: EddsaSignatureScheme<'_>) -> Mechanism<'_> {
    Mechanism::Eddsa(EddsaParams::new(scheme))
}

/// The RFC key imported as a session key pair: (public, private).
fn import(s: &Session, v: &Vector) -> (ObjectHandle, ObjectHandle) {
    let private = s
        .create_object(&[
            Attribute::Token(false),
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::EC_EDWARDS),
            Attribute::EcParams(v.oid().to_vec()),
            Attribute::Value(h(v.seed)),
            Attribute::Sign(true),
        ])
        .expect("import the RFC 8032 private key");
    let public = s
        .create_object(&[
            Attribute::Token(false),
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::EC_EDWARDS),
            Attribute::EcParams(v.oid().to_vec()),
            Attribute::EcPoint(der_octet_string(&h(v.public))),
            Attribute::Verify(true),
        ])
        .expect("import the RFC 8032 public key");
    (public, private)
}

fn session() -> Session {
    user_session(common::fresh_token())
}

#[test]
fn rfc8032_vectors_sign_and_verify_byte_for_byte() {
    let s = session();
    for v in &VECTORS {
        let (public, private) = import(&s, v);
        let (ctx, msg, expect) = (h(v.context), h(v.msg), h(v.sig));
        let m = mech(v.scheme(&ctx));

        assert_eq!(s.sign(&m, private, &msg).unwrap(), expect, "{}", v.sig);
        s.sign_init(&m, private).unwrap();
        for part in msg.chunks(1) {
            s.sign_update(part).unwrap();
        }
        assert_eq!(s.sign_final().unwrap(), expect);

        s.verify(&m, public, &msg, &expect).unwrap();
        s.verify_init(&m, public).unwrap();
        for part in msg.chunks(2) {
            s.verify_update(part).unwrap();
        }
        s.verify_final(&expect).unwrap();
    }
}

#[test]
fn tampered_signatures_and_wrong_parameters_are_invalid() {
    let s = session();
    for v in &VECTORS {
        let (public, _) = import(&s, v);
        let (ctx, msg, expect) = (h(v.context), h(v.msg), h(v.sig));
        let m = mech(v.scheme(&ctx));
        let invalid = |m: &Mechanism, data: &[u8], sig: &[u8]| {
            assert_eq!(
                rv_of(&s.verify(m, public, data, sig)),
                Some(RvError::SignatureInvalid),
                "{}",
                v.sig
            );
        };

        for byte in [0, expect.len() / 2, expect.len() - 2] {
            let mut bad = expect.clone();
            bad[byte] ^= 0x80;
            invalid(&m, &msg, &bad);
        }
        invalid(&m, b"not the message", &expect);
        let other = b"other context";
        invalid(&mech(v.scheme(other)), &msg, &expect);
        invalid(&mech(EddsaSignatureScheme::Pure), &msg, &expect);

        assert_eq!(
            rv_of(&s.verify(&m, public, &msg, &expect[..expect.len() - 1])),
            Some(RvError::SignatureLenRange)
        );
        let mut long = expect.clone();
        long.push(0);
        assert_eq!(
            rv_of(&s.verify(&m, public, &msg, &long)),
            Some(RvError::SignatureLenRange)
        );
    }
}

#[test]
fn context_length_limits() {
    let s = session();
    for v in [&VECTORS[0], &VECTORS[4], &VECTORS[5], &VECTORS[6]] {
        let (public, private) = import(&s, v);
        let max = [0x42u8; 255];
        let m = mech(v.scheme(&max));
        let sig = s.sign(&m, private, b"message").unwrap();
        s.verify(&m, public, b"message", &sig).unwrap();

        let over = [0x42u8; 256];
        let m = mech(v.scheme(&over));
        assert_eq!(
            rv_of(&s.sign(&m, private, b"message")),
            Some(RvError::MechanismParamInvalid)
        );
        assert_eq!(
            rv_of(&s.verify(&m, public, b"message", &sig)),
            Some(RvError::MechanismParamInvalid)
        );
    }
}

/// CK_EDDSA_PARAMS with phFlag false and an empty context on an Ed25519 key is pure Ed25519
/// (as with no parameter); on an Ed448 key it is Ed448 with an empty context, which is pure
/// Ed448 too. RFC 8032 §7.1 TEST 2 and §7.4 "1 octet" check the bytes.
#[test]
fn empty_context_without_prehash_is_pure_eddsa() {
    let s = session();
    let cases = [
        (
            Vector {
                ed448: false,
                prehash: false,
                seed: "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
                public: "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
                context: "",
                msg: "72",
                sig: "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
            },
            EddsaSignatureScheme::Ed25519ctx(&[]),
        ),
        (
            Vector {
                ed448: true,
                prehash: false,
                seed: "c4eab05d357007c632f3dbb48489924d552b08fe0c353a0d4a1f00acda2c463afbea67c5e8d2877c5e3bc397a659949ef8021e954e0a12274e",
                public: "43ba28f430cdff456ae531545f7ecd0ac834a55d9358c0372bfa0c6c6798c0866aea01eb00742802b8438ea4cb82169c235160627b4c3a9480",
                context: "",
                msg: "03",
                sig: "26b8f91727bd62897af15e41eb43c377efb9c610d48f2335cb0bd0087810f4352541b143c4b981b7e18f62de8ccdf633fc1bf037ab7cd779805e0dbcc0aae1cbcee1afb2e027df36bc04dcecbf154336c19f0af7e0a6472905e799f1953d2a0ff3348ab21aa4adafd1d234441cf807c03a00",
            },
            EddsaSignatureScheme::Ed448(&[]),
        ),
    ];
    for (v, scheme) in cases {
        let (public, private) = import(&s, &v);
        let (msg, expect) = (h(v.msg), h(v.sig));
        assert_eq!(s.sign(&mech(scheme), private, &msg).unwrap(), expect);
        s.verify(&mech(EddsaSignatureScheme::Pure), public, &msg, &expect)
            .unwrap();
    }
}

/// C_GetMechanismInfo for CKM_EDDSA is unchanged by the parameterised instances: sign and
/// verify over 255..448-bit keys, curves named by OID or name.
#[test]
fn mechanism_info_is_unchanged() {
    let slot = common::fresh_token();
    let info = common::pkcs11()
        .get_mechanism_info(slot, MechanismType::EDDSA)
        .unwrap();
    assert!(info.sign() && info.verify());
    if is_keyward() {
        assert_eq!((info.min_key_size(), info.max_key_size()), (255, 448));
        assert!(!info.encrypt() && !info.digest() && !info.generate_key_pair());
        assert!(info.ec_from_oid());
    }
}
