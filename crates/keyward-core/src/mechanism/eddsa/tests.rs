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

/// An RFC 8032 vector for an instance with parameters: seed, public key, context, message
/// (PH(M) is computed by the mechanism), signature.
struct Vector {
    seed: &'static str,
    public: &'static str,
    context: &'static str,
    msg: &'static str,
    sig: &'static str,
}

/// RFC 8032 §7.2: Ed25519ctx, TEST foo, bar, foo2 and foo3.
const ED25519CTX_VECTORS: [Vector; 4] = [
    Vector {
        seed: "0305334e381af78f141cb666f6199f57bc3495335a256a95bd2a55bf546663f6",
        public: "dfc9425e4f968f7f0c29f0259cf5f9aed6851c2bb4ad8bfb860cfee0ab248292",
        context: "666f6f",
        msg: "f726936d19c800494e3fdaff20b276a8",
        sig: "55a4cc2f70a54e04288c5f4cd1e45a7bb520b36292911876cada7323198dd87a8b36950b95130022907a7fb7c4e9b2d5f6cca685a587b4b21f4b888e4e7edb0d",
    },
    Vector {
        seed: "0305334e381af78f141cb666f6199f57bc3495335a256a95bd2a55bf546663f6",
        public: "dfc9425e4f968f7f0c29f0259cf5f9aed6851c2bb4ad8bfb860cfee0ab248292",
        context: "626172",
        msg: "f726936d19c800494e3fdaff20b276a8",
        sig: "fc60d5872fc46b3aa69f8b5b4351d5808f92bcc044606db097abab6dbcb1aee3216c48e8b3b66431b5b186d1d28f8ee15a5ca2df6668346291c2043d4eb3e90d",
    },
    Vector {
        seed: "0305334e381af78f141cb666f6199f57bc3495335a256a95bd2a55bf546663f6",
        public: "dfc9425e4f968f7f0c29f0259cf5f9aed6851c2bb4ad8bfb860cfee0ab248292",
        context: "666f6f",
        msg: "508e9e6882b979fea900f62adceaca35",
        sig: "8b70c1cc8310e1de20ac53ce28ae6e7207f33c3295e03bb5c0732a1d20dc64908922a8b052cf99b7c4fe107a5abb5b2c4085ae75890d02df26269d8945f84b0b",
    },
    Vector {
        seed: "ab9c2853ce297ddab85c993b3ae14bcad39b2c682beabc27d6d4eb20711d6560",
        public: "0f1d1274943b91415889152e893d80e93275a1fc0b65fd71b4b0dda10ad7d772",
        context: "666f6f",
        msg: "f726936d19c800494e3fdaff20b276a8",
        sig: "21655b5f1aa965996b3f97b3c849eafba922a0a62992f73b3d1b73106a84ad85e9b86a7b6005ea868337ff2d20a7f5fbd4cd10b0be49a68da2b2e0dc0ad8960f",
    },
];

/// RFC 8032 §7.3: Ed25519ph, TEST abc.
const ED25519PH_VECTOR: Vector = Vector {
    seed: "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
    public: "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
    context: "",
    msg: "616263",
    sig: "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae4131f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406",
};

/// RFC 8032 §7.4: Ed448, 1 octet with context "foo".
const ED448_CTX_VECTOR: Vector = Vector {
    seed: "c4eab05d357007c632f3dbb48489924d552b08fe0c353a0d4a1f00acda2c463afbea67c5e8d2877c5e3bc397a659949ef8021e954e0a12274e",
    public: "43ba28f430cdff456ae531545f7ecd0ac834a55d9358c0372bfa0c6c6798c0866aea01eb00742802b8438ea4cb82169c235160627b4c3a9480",
    context: "666f6f",
    msg: "03",
    sig: "d4f8f6131770dd46f40867d6fd5d5055de43541f8c5e35abbcd001b32a89f7d2151f7647f11d8ca2ae279fb842d607217fce6e042f6815ea000c85741de5c8da1144a6a1aba7f96de42505d7a7298524fda538fccbbb754f578c1cad10d54d0d5428407e85dcbc98a49155c13764e66c3c00",
};

/// RFC 8032 §7.5: Ed448ph, TEST abc and TEST abc with context "foo".
const ED448PH_VECTORS: [Vector; 2] = [
    Vector {
        seed: "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42ef7822e0d5104127dc05d6dbefde69e3ab2cec7c867c6e2c49",
        public: "259b71c19f83ef77a7abd26524cbdb3161b590a48f7d17de3ee0ba9c52beb743c09428a131d6b1b57303d90d8132c276d5ed3d5d01c0f53880",
        context: "",
        msg: "616263",
        sig: "822f6901f7480f3d5f562c592994d9693602875614483256505600bbc281ae381f54d6bce2ea911574932f52a4e6cadd78769375ec3ffd1b801a0d9b3f4030cd433964b6457ea39476511214f97469b57dd32dbc560a9a94d00bff07620464a3ad203df7dc7ce360c3cd3696d9d9fab90f00",
    },
    Vector {
        seed: "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42ef7822e0d5104127dc05d6dbefde69e3ab2cec7c867c6e2c49",
        public: "259b71c19f83ef77a7abd26524cbdb3161b590a48f7d17de3ee0ba9c52beb743c09428a131d6b1b57303d90d8132c276d5ed3d5d01c0f53880",
        context: "666f6f",
        msg: "616263",
        sig: "c32299d46ec8ff02b54540982814dce9a05812f81962b649d528095916a2aa481065b1580423ef927ecf0af5888f90da0f6a9a85ad5dc3f280d91224ba9911a3653d00e484e2ce232521481c8658df304bb7745a73514cdb9bf3e15784ab71284f8d0704a608c54a6b62d97beb511d132100",
    },
];

/// The group order L, little-endian, as long as a signature's S.
const ED25519_ORDER: &str = "edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010";
const ED448_ORDER: &str = "f34458ab92c27823558fc58d72c26c219036d6ae49db4ec4e923ca7cffffffffffffffffffffffffffffffffffffffffffffffffffffff3f00";

/// `sig` with S replaced by S + L: the same value modulo L, but not canonical.
fn non_canonical_s(sig: &[u8], order: &str) -> Vec<u8> {
    let half = sig.len() / 2;
    let mut out = sig.to_vec();
    let mut carry = 0u16;
    for (o, l) in out[half..].iter_mut().zip(h(order)) {
        let sum = u16::from(*o) + u16::from(l) + carry;
        *o = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    out
}

/// Sign through CKM_EDDSA and compare with the RFC's bytes (one-shot and multi-part), then
/// verify with the public key (both CKA_EC_POINT forms) and the private key, and check that
/// tampering, another message, another context, another instance and a bad length fail with
/// the right codes.
fn check_variant(params: &[u8], prehash: bool, v: &Vector, order: &str) {
    let (ctx, msg, expect, public) = (h(v.context), h(v.msg), h(v.sig), h(v.public));
    let mech = eddsa(prehash, &ctx);
    let private = ed_private(params, v.seed);
    assert_eq!(sign(&mech, &private, &[&msg]).unwrap(), expect);
    let (a, b) = msg.split_at(1);
    assert_eq!(sign(&mech, &private, &[a, b"", b]).unwrap(), expect);
    verify(&mech, &private, &msg, &expect).unwrap();

    for point in [encode_ec_point(&public), public.clone()] {
        let pubkey = ed_public(params, &point);
        verify(&mech, &pubkey, &msg, &expect).unwrap();
        let mut op = registry()
            .get(CKM_EDDSA)
            .unwrap()
            .verify_init(&mech, &pubkey)
            .unwrap();
        op.update(a).unwrap();
        op.update(b).unwrap();
        op.finish(&expect).unwrap();

        let invalid = |m: &Mechanism, data: &[u8], sig: &[u8]| {
            assert_eq!(code(verify(m, &pubkey, data, sig)), Code::SignatureInvalid);
        };
        for byte in [0, expect.len() / 2, expect.len() - 2] {
            let mut bad = expect.clone();
            bad[byte] ^= 0x01;
            invalid(&mech, &msg, &bad);
        }
        invalid(&mech, b"another message", &expect);
        let mut other_ctx = ctx.clone();
        other_ctx.push(b'!');
        invalid(&eddsa(prehash, &other_ctx), &msg, &expect);
        invalid(&eddsa(!prehash, &ctx), &msg, &expect);
        invalid(&Mechanism::new(CKM_EDDSA), &msg, &expect);
        // S + L is rejected (RFC 8032 §5.1.7/§5.2.7: S must be below L).
        invalid(&mech, &msg, &non_canonical_s(&expect, order));
        assert_eq!(
            code(verify(&mech, &pubkey, &msg, &expect[1..])),
            Code::SignatureLenRange
        );
        let mut long = expect.clone();
        long.push(0);
        assert_eq!(
            code(verify(&mech, &pubkey, &msg, &long)),
            Code::SignatureLenRange
        );
    }
}

#[test]
fn ed25519ctx_rfc8032_vectors() {
    for v in &ED25519CTX_VECTORS {
        check_variant(ED25519_OID, false, v, ED25519_ORDER);
    }
    check_variant(
        &name("edwards25519"),
        false,
        &ED25519CTX_VECTORS[0],
        ED25519_ORDER,
    );
}

#[test]
fn ed25519ph_rfc8032_vector() {
    check_variant(ED25519_OID, true, &ED25519PH_VECTOR, ED25519_ORDER);
}

#[test]
fn ed448_context_rfc8032_vector() {
    check_variant(ED448_OID, false, &ED448_CTX_VECTOR, ED448_ORDER);
    check_variant(&name("edwards448"), false, &ED448_CTX_VECTOR, ED448_ORDER);
}

#[test]
fn ed448ph_rfc8032_vectors() {
    for v in &ED448PH_VECTORS {
        check_variant(ED448_OID, true, v, ED448_ORDER);
    }
}

/// Ed25519ph agrees with ed25519-dalek (an independent implementation) both ways, with and
/// without a context.
#[test]
fn ed25519ph_agrees_with_ed25519_dalek() {
    use ed25519_dalek::{Digest, Sha512, Signature, SigningKey};
    let seed = [0x5au8; 32];
    let dalek = SigningKey::from_bytes(&seed);
    let private = ed_private(ED25519_OID, &hex::encode(seed));
    let public = ed_public(ED25519_OID, dalek.verifying_key().as_bytes());
    let msg = b"pre-hashed through the token";
    for ctx in [&b""[..], b"keyward", &[0xffu8; 255][..]] {
        let mech = eddsa(true, ctx);
        let ours = sign(&mech, &private, &[msg]).unwrap();
        let sig = Signature::from_slice(&ours).unwrap();
        dalek
            .verifying_key()
            .verify_prehashed_strict(Sha512::new().chain_update(msg), Some(ctx), &sig)
            .unwrap();
        let theirs = dalek
            .sign_prehashed(Sha512::new().chain_update(msg), Some(ctx))
            .unwrap();
        assert_eq!(theirs.to_bytes().to_vec(), ours);
        verify(&mech, &public, msg, &theirs.to_bytes()).unwrap();
    }
}

/// Strict verification: a public key or R of small order never verifies, even for the
/// "signature" (R = identity, S = 0) that a cofactorless check would accept for any message.
#[test]
fn small_order_points_are_refused() {
    let mut identity = vec![0u8; 32];
    identity[0] = 1;
    let pubkey = ed_public(ED25519_OID, &identity);
    let mut sig = identity.clone();
    sig.extend_from_slice(&[0u8; 32]);
    for mech in [eddsa(false, b"ctx"), eddsa(true, b"")] {
        assert_eq!(
            code(verify(&mech, &pubkey, b"anything", &sig)),
            Code::SignatureInvalid
        );
    }

    let mut identity = vec![0u8; 57];
    identity[0] = 1;
    let pubkey = ed_public(ED448_OID, &identity);
    let mut sig = identity.clone();
    sig.extend_from_slice(&[0u8; 57]);
    for mech in [eddsa(false, b"ctx"), eddsa(true, b"")] {
        assert_eq!(
            code(verify(&mech, &pubkey, b"anything", &sig)),
            Code::SignatureInvalid
        );
    }

    // A valid signature whose R is replaced by a small-order point does not verify.
    let v = &ED25519CTX_VECTORS[0];
    let mut bad = h(v.sig);
    bad[..32].copy_from_slice(&{
        let mut id = [0u8; 32];
        id[0] = 1;
        id
    });
    let pubkey = ed_public(ED25519_OID, &h(v.public));
    assert_eq!(
        code(verify(
            &eddsa(false, &h(v.context)),
            &pubkey,
            &h(v.msg),
            &bad
        )),
        Code::SignatureInvalid
    );
}

/// Non-canonical encodings of R (Ed448: the seven unused bits of the last octet) and of the
/// public key are refused.
#[test]
fn non_canonical_encodings_are_refused() {
    let v = &ED448_CTX_VECTOR;
    let mech = eddsa(false, &h(v.context));
    let mut sig = h(v.sig);
    sig[56] |= 0x01;
    let pubkey = ed_public(ED448_OID, &h(v.public));
    assert_eq!(
        code(verify(&mech, &pubkey, &h(v.msg), &sig)),
        Code::SignatureInvalid
    );
    let mut public = h(v.public);
    public[56] |= 0x01;
    let pubkey = ed_public(ED448_OID, &public);
    assert_eq!(
        code(verify(&mech, &pubkey, &h(v.msg), &h(v.sig))),
        Code::SignatureInvalid
    );

    // Ed25519: y = p + 1 is a non-canonical encoding of y = 1.
    let y = h("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
    let pubkey = ed_public(ED25519_OID, &y);
    let mut sig = h("0100000000000000000000000000000000000000000000000000000000000000");
    sig.extend_from_slice(&[0u8; 32]);
    assert_eq!(
        code(verify(&eddsa(false, b"c"), &pubkey, b"m", &sig)),
        Code::SignatureInvalid
    );
}

/// With phFlag false, an empty context is pure EdDSA for both curves (see the module doc):
/// a signature made so verifies with no parameter, and Ed25519ctx needs a non-empty context.
#[test]
fn empty_context_without_prehash_is_pure() {
    for (params, v) in [
        (ED25519_OID, ED25519_VECTORS[1]),
        (ED448_OID, ED448_VECTORS[1]),
    ] {
        let private = ed_private(params, v.0);
        let sig = sign(&eddsa(false, b""), &private, &[&h(v.2)]).unwrap();
        assert_eq!(sig, h(v.3));
        verify(&Mechanism::new(CKM_EDDSA), &private, &h(v.2), &sig).unwrap();
    }
}

/// Pre-hash instances hash as data arrives, so they take more than the 16 MiB that the
/// message-keeping instances accept.
#[test]
fn prehash_input_is_not_bounded() {
    let private = ed_private(ED25519_OID, ED25519PH_VECTOR.seed);
    let mech = eddsa(true, b"big");
    let mut op = registry()
        .get(CKM_EDDSA)
        .unwrap()
        .sign_init(&mech, &private)
        .unwrap();
    let chunk = vec![0x61u8; 1 << 20];
    for _ in 0..17 {
        op.update(&chunk).unwrap();
    }
    let sig = op.finish().unwrap();
    let mut v = registry()
        .get(CKM_EDDSA)
        .unwrap()
        .verify_init(&mech, &private)
        .unwrap();
    for _ in 0..17 {
        v.update(&chunk).unwrap();
    }
    v.finish(&sig).unwrap();

    let mut op = registry()
        .get(CKM_EDDSA)
        .unwrap()
        .sign_init(&eddsa(false, b"ctx"), &private)
        .unwrap();
    for _ in 0..16 {
        op.update(&chunk).unwrap();
    }
    assert_eq!(code(op.update(b"x")), Code::DataLenRange);
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
    // 255 bytes of context are within the limit, for both curves and both instances.
    for (params, seed) in [
        (ED25519_OID, ED25519_VECTORS[0].0),
        (ED448_OID, ED448_VECTORS[0].0),
    ] {
        let private = ed_private(params, seed);
        for prehash in [false, true] {
            let mech = eddsa(prehash, &long[..255]);
            let sig = sign(&mech, &private, &[b"m"]).unwrap();
            verify(&mech, &private, b"m", &sig).unwrap();
            assert_eq!(
                code(verify(&eddsa(prehash, &long[..254]), &private, b"m", &sig)),
                Code::SignatureInvalid
            );
        }
    }

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
