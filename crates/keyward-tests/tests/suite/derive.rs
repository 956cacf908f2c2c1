//! C_DeriveKey with CKM_ECDH1_DERIVE and CKM_ECDH1_COFACTOR_DERIVE: both parties in the
//! token agree, shared secrets equal the openssl crate's and a NIST CAVS vector, X9.63 KDF
//! output equals a computation made here with `openssl::hash`, refused parameters and keys
//! give their codes, and derived keys carry the provenance the spec gives them.

use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;
use openssl::derive::Deriver;
use openssl::hash::{MessageDigest, hash};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey};

use super::keys::{self, K256_OID, P256_OID, P384_OID, P521_OID, der_octet_string};
use crate::common::{self, attr_bool, attr_bytes, is_keyward, pkcs11, user_session};
use crate::{assert_ckr, assert_rv, call};

/// DER of id-X25519 (1.3.101.110) and id-X448 (1.3.101.111).
const X25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x6e];
const X448_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x6f];

fn session() -> Session {
    user_session(common::fresh_token())
}

/// A session key pair whose private half may derive: (public, private).
fn pair(s: &Session, oid: &[u8], private_extra: &[Attribute]) -> (ObjectHandle, ObjectHandle) {
    let gen_mech = if oid == X25519_OID || oid == X448_OID {
        Mechanism::EccMontgomeryKeyPairGen
    } else {
        Mechanism::EccKeyPairGen
    };
    let mut private = vec![Attribute::Token(false), Attribute::Derive(true)];
    private.extend_from_slice(private_extra);
    s.generate_key_pair(
        &gen_mech,
        &[Attribute::Token(false), Attribute::EcParams(oid.to_vec())],
        &private,
    )
    .expect("C_GenerateKeyPair")
}

/// The raw public value of a token key (CKA_EC_POINT without its OCTET STRING).
fn raw_point(s: &Session, public: ObjectHandle) -> Vec<u8> {
    keys::der_octet_string_content(&attr_bytes(s, public, AttributeType::EcPoint)).to_vec()
}

/// A readable generic secret of `len` bytes (CKD_NULL's natural length when `None`).
fn readable_secret(len: Option<u64>) -> Vec<Attribute> {
    let mut t = vec![
        Attribute::Token(false),
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ];
    if let Some(l) = len {
        t.push(Attribute::ValueLen(l.into()));
    }
    t
}

/// Derive with CKM_ECDH1_DERIVE and read the new key's CKA_VALUE.
fn derive_value(
    s: &Session,
    base: ObjectHandle,
    kdf: EcKdf<'_>,
    peer: &[u8],
    len: Option<u64>,
) -> cryptoki::error::Result<Vec<u8>> {
    let mech = Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(kdf, peer));
    let key = s.derive_key(&mech, base, &readable_secret(len))?;
    Ok(attr_bytes(s, key, AttributeType::Value))
}

/// The token's CKD_NULL secret from `base` and `peer`, its full length.
fn secret(s: &Session, base: ObjectHandle, peer: &[u8]) -> Vec<u8> {
    derive_value(s, base, EcKdf::null(), peer, None).expect("ECDH1_DERIVE CKD_NULL")
}

/// C_DeriveKey through the raw function list, for what cryptoki cannot express (the cofactor
/// mechanism, CKD_NULL with shared data, unknown KDFs): the return code and the new handle.
fn raw_derive(
    s: &Session,
    mech: CK_MECHANISM_TYPE,
    kdf: CK_EC_KDF_TYPE,
    shared: &[u8],
    peer: &[u8],
    base: ObjectHandle,
) -> (CK_RV, CK_OBJECT_HANDLE) {
    let mut params = CK_ECDH1_DERIVE_PARAMS {
        kdf,
        ulSharedDataLen: shared.len() as CK_ULONG,
        pSharedData: if shared.is_empty() {
            std::ptr::null_mut()
        } else {
            shared.as_ptr().cast_mut()
        },
        ulPublicDataLen: peer.len() as CK_ULONG,
        pPublicData: peer.as_ptr().cast_mut(),
    };
    let mut m = CK_MECHANISM {
        mechanism: mech,
        pParameter: (&raw mut params).cast(),
        ulParameterLen: size_of::<CK_ECDH1_DERIVE_PARAMS>() as CK_ULONG,
    };
    let mut class = CKO_SECRET_KEY;
    let mut key_type = CKK_GENERIC_SECRET;
    let mut value_len: CK_ULONG = 16;
    let mut no: CK_BBOOL = CK_FALSE;
    let mut yes: CK_BBOOL = CK_TRUE;
    let attr = |type_, p: *mut std::ffi::c_void, n: usize| CK_ATTRIBUTE {
        type_,
        pValue: p,
        ulValueLen: n as CK_ULONG,
    };
    let mut template = [
        attr(CKA_CLASS, (&raw mut class).cast(), size_of::<CK_ULONG>()),
        attr(
            CKA_KEY_TYPE,
            (&raw mut key_type).cast(),
            size_of::<CK_ULONG>(),
        ),
        attr(
            CKA_VALUE_LEN,
            (&raw mut value_len).cast(),
            size_of::<CK_ULONG>(),
        ),
        attr(CKA_TOKEN, (&raw mut no).cast(), 1),
        attr(CKA_SENSITIVE, (&raw mut no).cast(), 1),
        attr(CKA_EXTRACTABLE, (&raw mut yes).cast(), 1),
    ];
    let mut key: CK_OBJECT_HANDLE = CK_INVALID_HANDLE;
    let rv = call!(
        C_DeriveKey,
        s.handle(),
        &mut m,
        base.handle(),
        template.as_mut_ptr(),
        template.len() as CK_ULONG,
        &mut key
    );
    (rv, key)
}

/// CKA_VALUE of an object known only by its raw handle.
fn raw_value(s: &Session, key: CK_OBJECT_HANDLE) -> Vec<u8> {
    let mut buf = [0u8; 256];
    let mut t = CK_ATTRIBUTE {
        type_: CKA_VALUE,
        pValue: buf.as_mut_ptr().cast(),
        ulValueLen: buf.len() as CK_ULONG,
    };
    let rv = call!(C_GetAttributeValue, s.handle(), key, &mut t, 1);
    assert_ckr!(rv, CKR_OK);
    buf[..t.ulValueLen as usize].to_vec()
}

/// ANSI X9.63 KDF computed here: Hash(Z ‖ counter ‖ info) for counter 1, 2, …
fn x963(md: MessageDigest, z: &[u8], info: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut counter = 1u32;
    while out.len() < len {
        let input = [z, &counter.to_be_bytes()[..], info].concat();
        out.extend_from_slice(&hash(md, &input).unwrap());
        counter += 1;
    }
    out.truncate(len);
    out
}

/// cryptoki's name for an X9.63 KDF.
fn x963_kdf(kdf: CK_EC_KDF_TYPE, shared: &[u8]) -> EcKdf<'_> {
    match kdf {
        CKD_SHA1_KDF => EcKdf::sha1(shared),
        CKD_SHA224_KDF => EcKdf::sha224(shared),
        CKD_SHA256_KDF => EcKdf::sha256(shared),
        CKD_SHA384_KDF => EcKdf::sha384(shared),
        CKD_SHA512_KDF => EcKdf::sha512(shared),
        CKD_SHA3_224_KDF => EcKdf::sha3_224(shared),
        CKD_SHA3_256_KDF => EcKdf::sha3_256(shared),
        CKD_SHA3_384_KDF => EcKdf::sha3_384(shared),
        CKD_SHA3_512_KDF => EcKdf::sha3_512(shared),
        other => panic!("no X9.63 KDF {other:#x}"),
    }
}

fn gcm(iv: &mut [u8]) -> Mechanism<'_> {
    Mechanism::AesGcm(GcmParams::new(iv, b"ecdh", 128.into()).unwrap())
}

#[test]
fn both_parties_in_the_token_derive_the_same_aes_key() {
    let s = session();
    let curves: &[&[u8]] = if is_keyward() {
        &[P256_OID, P384_OID, P521_OID, K256_OID, X25519_OID, X448_OID]
    } else {
        &[P256_OID, P384_OID, P521_OID]
    };
    for oid in curves {
        let (pub_a, priv_a) = pair(&s, oid, &[]);
        let (pub_b, priv_b) = pair(&s, oid, &[]);
        let aes = |base, peer: &[u8]| {
            // SoftHSMv2 has CKD_NULL only.
            let kdf = if is_keyward() {
                EcKdf::sha256(b"key for session 42")
            } else {
                EcKdf::null()
            };
            let mech = Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(kdf, peer));
            s.derive_key(
                &mech,
                base,
                &[
                    Attribute::Token(false),
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::ValueLen(32.into()),
                    Attribute::Encrypt(true),
                    Attribute::Decrypt(true),
                ],
            )
            .expect("ECDH1_DERIVE into an AES key")
        };
        let key_a = aes(priv_a, &raw_point(&s, pub_b));
        // Party B sends its public value DER-wrapped, as CKA_EC_POINT holds it.
        let key_b = aes(priv_b, &attr_bytes(&s, pub_a, AttributeType::EcPoint));
        if is_keyward() {
            // Keyward's default for secret keys.
            assert!(attr_bool(&s, key_a, AttributeType::Sensitive));
        }
        let mut iv = [7u8; 12];
        let ct = s.encrypt(&gcm(&mut iv), key_a, b"agreed").unwrap();
        let mut iv = [7u8; 12];
        let pt = s.decrypt(&gcm(&mut iv), key_b, &ct);
        assert_eq!(pt.unwrap(), b"agreed", "curve {}", hex::encode(oid));
    }
}

fn openssl_ec_peer(nid: Nid) -> (PKey<openssl::pkey::Private>, Vec<u8>) {
    let k = keys::openssl_ec(nid);
    let point = keys::ec_point_bytes(&k);
    (PKey::from_ec_key(k).unwrap(), point)
}

#[test]
fn ec_shared_secrets_equal_openssl() {
    let s = session();
    let mut curves = vec![
        (P256_OID, Nid::X9_62_PRIME256V1, 32),
        (P384_OID, Nid::SECP384R1, 48),
        (P521_OID, Nid::SECP521R1, 66),
    ];
    if is_keyward() {
        curves.push((K256_OID, Nid::SECP256K1, 32));
    }
    for (oid, nid, len) in curves {
        let (pub_a, priv_a) = pair(&s, oid, &[]);
        let (theirs, their_point) = openssl_ec_peer(nid);
        let z = secret(&s, priv_a, &their_point);
        assert_eq!(z.len(), len);
        let ours = keys::ec_public_from_token(&s, pub_a);
        let mut d = Deriver::new(&theirs).unwrap();
        d.set_peer(&ours).unwrap();
        assert_eq!(z, d.derive_to_vec().unwrap(), "curve {}", hex::encode(oid));
    }
}

#[test]
fn montgomery_shared_secrets_equal_openssl() {
    if !is_keyward() {
        return;
    }
    let s = session();
    for (oid, id) in [(X25519_OID, Id::X25519), (X448_OID, Id::X448)] {
        let (pub_a, priv_a) = pair(&s, oid, &[]);
        let theirs = match id {
            Id::X25519 => PKey::generate_x25519().unwrap(),
            _ => PKey::generate_x448().unwrap(),
        };
        let z = secret(&s, priv_a, &theirs.raw_public_key().unwrap());
        let ours = PKey::public_key_from_raw_bytes(&raw_point(&s, pub_a), id).unwrap();
        let mut d = Deriver::new(&theirs).unwrap();
        d.set_peer(&ours).unwrap();
        assert_eq!(z, d.derive_to_vec().unwrap(), "{id:?}");
    }
}

/// NIST CAVS ECC CDH primitive vector, P-256 COUNT = 0: the IUT's private key, the CAVS
/// party's public point, and Z.
const CDH_P256_D: &str = "7d7dc5f71eb29ddaf80d6214632eeae03d9058af1fb6d22ed80badb62bc1a534";
const CDH_P256_QX: &str = "700c48f77f56584c5cc632ca65640db91b6bacce3a4df6b42ce7cc838833d287";
const CDH_P256_QY: &str = "db71e509e3fd9b060ddb20ba5c51dcc5948d46fbf640dfe0441782cab85fa4ac";
const CDH_P256_Z: &str = "46fc62106420ff012e54a434fbdd2d25ccc5852060561e68040dd7778997bd7b";

fn import_cavs_key(s: &Session) -> ObjectHandle {
    s.create_object(&[
        Attribute::Token(false),
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::EC),
        Attribute::EcParams(P256_OID.to_vec()),
        Attribute::Value(hex::decode(CDH_P256_D).unwrap()),
        Attribute::Derive(true),
    ])
    .expect("import the CAVS private key")
}

fn cavs_peer() -> Vec<u8> {
    hex::decode(format!("04{CDH_P256_QX}{CDH_P256_QY}")).unwrap()
}

#[test]
fn ckd_null_and_x963_kdfs_match_known_answers() {
    let s = session();
    let base = import_cavs_key(&s);
    let peer = cavs_peer();
    let z = secret(&s, base, &peer);
    assert_eq!(hex::encode(&z), CDH_P256_Z);
    // CKD_NULL truncation removes bytes from the leading end, as the spec's ECDH section says.
    let short = derive_value(&s, base, EcKdf::null(), &peer, Some(16)).unwrap();
    assert_eq!(short, z[16..]);
    if is_keyward() {
        let r = derive_value(&s, base, EcKdf::null(), &peer, Some(33));
        assert_rv!(r, TemplateInconsistent);
    }

    // SoftHSMv2 implements no X9.63 KDF.
    if !is_keyward() {
        return;
    }
    let info = b"shared info for X9.63";
    let kdfs = [
        (CKD_SHA1_KDF, MessageDigest::sha1()),
        (CKD_SHA224_KDF, MessageDigest::sha224()),
        (CKD_SHA256_KDF, MessageDigest::sha256()),
        (CKD_SHA384_KDF, MessageDigest::sha384()),
        (CKD_SHA512_KDF, MessageDigest::sha512()),
        (CKD_SHA3_224_KDF, MessageDigest::sha3_224()),
        (CKD_SHA3_256_KDF, MessageDigest::sha3_256()),
        (CKD_SHA3_384_KDF, MessageDigest::sha3_384()),
        (CKD_SHA3_512_KDF, MessageDigest::sha3_512()),
    ];
    for (kdf, md) in kdfs {
        for (shared, len) in [(&info[..], 80usize), (&[][..], 16)] {
            let got = derive_value(&s, base, x963_kdf(kdf, shared), &peer, Some(len as u64));
            assert_eq!(got.unwrap(), x963(md, &z, shared, len), "kdf {kdf:#x}");
        }
    }
}

#[test]
fn cofactor_derivation_equals_plain_ecdh_on_cofactor_one_curves() {
    // SoftHSMv2 has no CKM_ECDH1_COFACTOR_DERIVE.
    if !is_keyward() {
        return;
    }
    let s = session();
    let base = import_cavs_key(&s);
    let (rv, key) = raw_derive(
        &s,
        CKM_ECDH1_COFACTOR_DERIVE,
        CKD_NULL,
        &[],
        &cavs_peer(),
        base,
    );
    assert_ckr!(rv, CKR_OK);
    let value = raw_value(&s, key);
    let z = hex::decode(CDH_P256_Z).unwrap();
    assert_eq!(value, z[16..]);
    // Montgomery keys have only CKM_ECDH1_DERIVE.
    let (_, x) = pair(&s, X25519_OID, &[]);
    let (rv, _) = raw_derive(&s, CKM_ECDH1_COFACTOR_DERIVE, CKD_NULL, &[], &[9; 32], x);
    assert_ckr!(rv, CKR_KEY_TYPE_INCONSISTENT);
}

fn object_count(s: &Session) -> usize {
    s.find_objects(&[]).expect("C_FindObjects").len()
}

#[test]
fn refused_parameters_and_keys_give_their_codes_and_create_nothing() {
    if !is_keyward() {
        return;
    }
    let s = session();
    let (_, priv_a) = pair(&s, P256_OID, &[]);
    let peer = cavs_peer();
    let before = object_count(&s);

    // A point off the curve, a point of another curve, the identity, a truncated point.
    let mut off_curve = peer.clone();
    off_curve[64] ^= 1;
    let (pub_384, _) = pair(&s, P384_OID, &[]);
    let before = before + 2;
    for bad in [
        off_curve,
        raw_point(&s, pub_384),
        vec![0x00],
        peer[..64].to_vec(),
        der_octet_string(&peer[..64]),
    ] {
        let r = derive_value(&s, priv_a, EcKdf::null(), &bad, None);
        assert_rv!(r, MechanismParamInvalid);
    }
    // CKD_NULL with shared data; KDFs the token does not implement; no public value.
    let (rv, _) = raw_derive(&s, CKM_ECDH1_DERIVE, CKD_NULL, b"info", &peer, priv_a);
    assert_ckr!(rv, CKR_MECHANISM_PARAM_INVALID);
    for kdf in [0, CKD_SHA1_KDF_ASN1, CKD_SHA256_KDF_SP800, 0x8000_0001] {
        let (rv, _) = raw_derive(&s, CKM_ECDH1_DERIVE, kdf, &[], &peer, priv_a);
        assert_ckr!(rv, CKR_MECHANISM_PARAM_INVALID);
    }
    let (rv, _) = raw_derive(&s, CKM_ECDH1_DERIVE, CKD_NULL, &[], &[], priv_a);
    assert_ckr!(rv, CKR_MECHANISM_PARAM_INVALID);

    // X25519 peers of small order make an all-zero secret; wrong lengths.
    let (_, x) = pair(&s, X25519_OID, &[]);
    let before = before + 2;
    for bad in [
        vec![0u8; 32],
        hex::decode("0100000000000000000000000000000000000000000000000000000000000000").unwrap(),
        hex::decode("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800").unwrap(),
        vec![9u8; 31],
        peer.clone(),
    ] {
        let r = derive_value(&s, x, EcKdf::null(), &bad, None);
        assert_rv!(r, MechanismParamInvalid);
    }

    // A key without CKA_DERIVE, a public key (even one that allows deriving), an AES key.
    let (plain_public, no_derive) = s
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[
                Attribute::Token(false),
                Attribute::EcParams(P256_OID.to_vec()),
            ],
            &[Attribute::Token(false), Attribute::Sign(true)],
        )
        .unwrap();
    let r = derive_value(&s, no_derive, EcKdf::null(), &peer, None);
    assert_rv!(r, KeyFunctionNotPermitted);
    if is_keyward() {
        // The wrong class outranks the missing usage flag (SECURITY KEY-01).
        let r = derive_value(&s, plain_public, EcKdf::null(), &peer, None);
        assert_rv!(r, KeyTypeInconsistent);
    }
    let (derivable_public, _) = s
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[
                Attribute::Token(false),
                Attribute::EcParams(P256_OID.to_vec()),
                Attribute::Derive(true),
            ],
            &[Attribute::Token(false)],
        )
        .unwrap();
    let r = derive_value(&s, derivable_public, EcKdf::null(), &peer, None);
    assert_rv!(r, KeyTypeInconsistent);
    let aes = keys::gen_aes(&s, 32, &[Attribute::Token(false), Attribute::Derive(true)]);
    let r = derive_value(&s, aes, EcKdf::null(), &peer, None);
    assert_rv!(r, KeyTypeInconsistent);
    let before = before + 5;

    // A KDF without CKA_VALUE_LEN for a generic secret has no length to derive.
    let r = derive_value(&s, priv_a, EcKdf::sha256(b""), &peer, None);
    assert_rv!(r, TemplateIncomplete);

    assert_eq!(
        object_count(&s),
        before,
        "a refused derivation creates no object"
    );
}

#[test]
fn derived_keys_carry_the_base_keys_provenance() {
    let s = session();
    let peer = cavs_peer();
    let (_, locked) = pair(
        &s,
        P256_OID,
        &[Attribute::Sensitive(true), Attribute::Extractable(false)],
    );
    assert!(attr_bool(&s, locked, AttributeType::AlwaysSensitive));
    assert!(attr_bool(&s, locked, AttributeType::NeverExtractable));
    let derive = |base, sensitive, extractable| {
        let mech = Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), &peer));
        s.derive_key(
            &mech,
            base,
            &[
                Attribute::Token(false),
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(16.into()),
                Attribute::Sensitive(sensitive),
                Attribute::Extractable(extractable),
            ],
        )
        .expect("ECDH1_DERIVE")
    };
    let flags = |k| {
        (
            attr_bool(&s, k, AttributeType::AlwaysSensitive),
            attr_bool(&s, k, AttributeType::NeverExtractable),
            attr_bool(&s, k, AttributeType::Local),
        )
    };
    // ALWAYS_SENSITIVE follows SENSITIVE and NEVER_EXTRACTABLE the opposite of EXTRACTABLE
    // while the base key has them; derived keys are never CKA_LOCAL.
    assert_eq!(flags(derive(locked, true, false)), (true, true, false));
    assert_eq!(flags(derive(locked, false, true)), (false, false, false));
    assert_eq!(flags(derive(locked, true, true)), (true, false, false));
    // A base key that was once extractable passes that on.
    let (_, open) = pair(
        &s,
        P256_OID,
        &[Attribute::Sensitive(true), Attribute::Extractable(true)],
    );
    assert_eq!(flags(derive(open, true, false)), (true, false, false));
    let (_, readable) = pair(
        &s,
        P256_OID,
        &[Attribute::Sensitive(false), Attribute::Extractable(true)],
    );
    assert_eq!(flags(derive(readable, true, false)), (false, false, false));
}

#[test]
fn ecdh_mechanism_info() {
    let p = pkcs11();
    let slot = common::fresh_token();
    let list = p.get_mechanism_list(slot).unwrap();
    assert!(list.contains(&MechanismType::ECDH1_DERIVE));
    let i = p
        .get_mechanism_info(slot, MechanismType::ECDH1_DERIVE)
        .unwrap();
    assert!(i.derive() && !i.sign() && !i.encrypt() && !i.generate_key_pair());
    if !is_keyward() {
        return;
    }
    assert!(
        i.ec_f_p() && i.ec_uncompressed() && i.ec_compressed(),
        "{i:?}"
    );
    let mut info = CK_MECHANISM_INFO::default();
    let rv = call!(
        C_GetMechanismInfo,
        common::slot_id(slot),
        CKM_ECDH1_DERIVE,
        &mut info
    );
    assert_ckr!(rv, CKR_OK);
    assert_eq!(
        info.flags,
        CKF_DERIVE
            | CKF_EC_F_P
            | CKF_EC_OID
            | CKF_EC_CURVENAME
            | CKF_EC_UNCOMPRESS
            | CKF_EC_COMPRESS
    );
    assert_eq!((info.ulMinKeySize, info.ulMaxKeySize), (255, 521));
    let rv = call!(
        C_GetMechanismInfo,
        common::slot_id(slot),
        CKM_ECDH1_COFACTOR_DERIVE,
        &mut info
    );
    assert_ckr!(rv, CKR_OK);
    assert_eq!(
        info.flags,
        CKF_DERIVE | CKF_EC_F_P | CKF_EC_OID | CKF_EC_UNCOMPRESS | CKF_EC_COMPRESS
    );
    let gen_info = p
        .get_mechanism_info(slot, MechanismType::ECC_KEY_PAIR_GEN)
        .unwrap();
    assert_eq!(
        (info.ulMinKeySize, info.ulMaxKeySize),
        (
            gen_info.min_key_size() as CK_ULONG,
            gen_info.max_key_size() as CK_ULONG
        )
    );
}
