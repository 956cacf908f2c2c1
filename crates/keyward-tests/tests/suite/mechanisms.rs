//! Mechanisms (PKCS#11 3.0 §5.9–5.14, current mechanisms §6): key generation, signatures
//! single- and multi-part checked with the openssl crate against the exported public key,
//! AES-GCM in both directions against openssl, SHA-256 known answers, the operation state
//! rules, truthful mechanism information, and random numbers (SECURITY SESS-06, KEY-01).

use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use cryptoki::session::Session;
use cryptoki_sys::*;
use openssl::hash::{MessageDigest, hash};
use openssl::symm::{Cipher, decrypt_aead, encrypt_aead};

use super::keys::{self, P256_OID, P384_OID};
use crate::common::{self, attr_bytes, attr_ulong, is_keyward, pkcs11, user_session};
use crate::{assert_ckr, assert_rv, call};

#[test]
fn mechanism_list_and_info_are_truthful() {
    let p = pkcs11();
    let slot = common::fresh_token();
    let list = p.get_mechanism_list(slot).unwrap();
    let wanted = [
        (MechanismType::ECC_KEY_PAIR_GEN, "EC key pair gen"),
        (MechanismType::ECDSA, "ECDSA"),
        (MechanismType::ECDSA_SHA256, "ECDSA-SHA256"),
        (MechanismType::RSA_PKCS_KEY_PAIR_GEN, "RSA key pair gen"),
        (MechanismType::RSA_PKCS, "RSA PKCS"),
        (MechanismType::SHA256_RSA_PKCS, "SHA256-RSA-PKCS"),
        (MechanismType::AES_KEY_GEN, "AES key gen"),
        (MechanismType::AES_GCM, "AES-GCM"),
        (MechanismType::SHA256, "SHA-256"),
    ];
    for (m, name) in wanted {
        assert!(list.contains(&m), "{name} is listed");
    }
    let info = |m| p.get_mechanism_info(slot, m).unwrap();
    let i = info(MechanismType::ECC_KEY_PAIR_GEN);
    assert!(i.generate_key_pair() && !i.sign() && !i.encrypt());
    if is_keyward() {
        assert!(i.min_key_size() <= 256 && i.max_key_size() >= 384, "{i:?}");
    }
    for m in [MechanismType::ECDSA, MechanismType::ECDSA_SHA256] {
        let i = info(m);
        assert!(
            i.sign() && i.verify() && !i.encrypt() && !i.generate_key_pair(),
            "{m:?}: {i:?}"
        );
    }
    let i = info(MechanismType::RSA_PKCS_KEY_PAIR_GEN);
    assert!(i.generate_key_pair());
    if is_keyward() {
        assert_eq!((i.min_key_size(), i.max_key_size()), (2048, 8192));
    }
    let i = info(MechanismType::SHA256_RSA_PKCS);
    assert!(i.sign() && i.verify());
    let i = info(MechanismType::AES_KEY_GEN);
    assert!(i.generate() && !i.generate_key_pair());
    if is_keyward() {
        assert_eq!((i.min_key_size(), i.max_key_size()), (16, 32));
    }
    let i = info(MechanismType::AES_GCM);
    assert!(i.encrypt() && i.decrypt() && !i.sign());
    let i = info(MechanismType::SHA256);
    assert!(i.digest() && !i.sign());
    // Every listed mechanism has information; an unlisted one is CKR_MECHANISM_INVALID.
    for m in &list {
        p.get_mechanism_info(slot, *m)
            .unwrap_or_else(|e| panic!("{m:?}: {e}"));
    }
    let mut ci = CK_MECHANISM_INFO::default();
    assert_ckr!(
        call!(
            C_GetMechanismInfo,
            common::slot_id(slot),
            CKM_VENDOR_DEFINED | 0x4242,
            &mut ci
        ),
        CKR_MECHANISM_INVALID
    );
}

fn check_ec_key(s: &Session, oid: &[u8], point_len: usize) {
    let (public, private) = keys::gen_ec(s, oid, false);
    assert_eq!(attr_ulong(s, public, AttributeType::KeyType), CKK_EC);
    assert_eq!(attr_bytes(s, public, AttributeType::EcParams), oid);
    assert_eq!(attr_bytes(s, private, AttributeType::EcParams), oid);
    let point_der = attr_bytes(s, public, AttributeType::EcPoint);
    let point = keys::der_octet_string_content(&point_der);
    assert_eq!(point.len(), point_len, "uncompressed point length");
    assert_eq!(point[0], 0x04, "uncompressed point");
    let pk = keys::ec_public_from_token(s, public);
    // CKA_PUBLIC_KEY_INFO is the SPKI DER of the same key, on both objects.
    let spki = pk.public_key_to_der().unwrap();
    assert_eq!(attr_bytes(s, public, AttributeType::PublicKeyInfo), spki);
    if is_keyward() {
        assert_eq!(attr_bytes(s, private, AttributeType::PublicKeyInfo), spki);
    }

    let half = (point_len - 1) / 2;
    let msg = b"a message signed in the token";
    // CKM_ECDSA_SHA256, single-part.
    let sig = s.sign(&Mechanism::EcdsaSha256, private, msg).unwrap();
    assert_eq!(sig.len(), 2 * half, "raw r || s");
    let der = keys::ecdsa_raw_to_der(&sig);
    assert!(
        keys::openssl_verify(&pk, MessageDigest::sha256(), msg, &der),
        "openssl verifies"
    );
    s.verify(&Mechanism::EcdsaSha256, public, msg, &sig)
        .unwrap();
    // Multi-part.
    s.sign_init(&Mechanism::EcdsaSha256, private).unwrap();
    s.sign_update(&msg[..5]).unwrap();
    s.sign_update(&msg[5..]).unwrap();
    let sig2 = s.sign_final().unwrap();
    assert!(keys::openssl_verify(
        &pk,
        MessageDigest::sha256(),
        msg,
        &keys::ecdsa_raw_to_der(&sig2)
    ));
    s.verify_init(&Mechanism::EcdsaSha256, public).unwrap();
    s.verify_update(&msg[..3]).unwrap();
    s.verify_update(&msg[3..]).unwrap();
    s.verify_final(&sig2).unwrap();
    // CKM_ECDSA over a digest computed outside.
    let digest = hash(MessageDigest::sha256(), msg).unwrap();
    let sig3 = s.sign(&Mechanism::Ecdsa, private, &digest).unwrap();
    assert!(keys::openssl_verify(
        &pk,
        MessageDigest::sha256(),
        msg,
        &keys::ecdsa_raw_to_der(&sig3)
    ));
    s.verify(&Mechanism::Ecdsa, public, &digest, &sig3).unwrap();
    // A changed message or signature fails.
    assert_rv!(
        s.verify(&Mechanism::EcdsaSha256, public, b"another message", &sig),
        SignatureInvalid
    );
    let mut bad = sig.clone();
    bad[3] ^= 1;
    assert_rv!(
        s.verify(&Mechanism::EcdsaSha256, public, msg, &bad),
        SignatureInvalid
    );
    assert_rv!(
        s.verify(&Mechanism::EcdsaSha256, public, msg, &sig[1..]),
        SignatureLenRange
    );
}

#[test]
fn ec_p256_keys_sign_and_verify() {
    let s = user_session(common::fresh_token());
    check_ec_key(&s, P256_OID, 65);
}

#[test]
fn ec_p384_keys_sign_and_verify() {
    let s = user_session(common::fresh_token());
    check_ec_key(&s, P384_OID, 97);
}

/// Beyond the required curves: the others the mechanism information claims (up to 521 bits).
#[test]
fn ec_p521_and_secp256k1_keys_sign_and_verify() {
    if !is_keyward() {
        return;
    }
    let s = user_session(common::fresh_token());
    check_ec_key(&s, keys::P521_OID, 133);
    check_ec_key(&s, keys::K256_OID, 65);
}

#[test]
fn ec_unsupported_curve_is_refused() {
    let s = user_session(common::fresh_token());
    // brainpoolP256r1
    let brainpool = vec![
        0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07,
    ];
    let r = s.generate_key_pair(
        &Mechanism::EccKeyPairGen,
        &[Attribute::EcParams(brainpool)],
        &[Attribute::Sign(true)],
    );
    if is_keyward() {
        assert_rv!(r, CurveNotSupported);
    }
    // Parameters that are not a named-curve OID at all.
    let r = s.generate_key_pair(
        &Mechanism::EccKeyPairGen,
        &[Attribute::EcParams(vec![0x30, 0x00])],
        &[Attribute::Sign(true)],
    );
    assert!(r.is_err(), "explicit or malformed parameters");
}

/// An EC public key with a point that is not on its curve, or an unknown curve, is refused
/// when created, or at the latest when used (SECURITY KEY-07).
#[test]
fn invalid_ec_public_keys_never_verify() {
    let s = user_session(common::fresh_token());
    let cases: [(&str, Vec<u8>, Vec<u8>); 3] = [
        (
            "unknown curve",
            vec![0x06, 0x03, 1, 2, 3],
            keys::der_octet_string(&[4; 65]),
        ),
        (
            "point off the curve",
            P256_OID.to_vec(),
            keys::der_octet_string(&[4; 65]),
        ),
        (
            "truncated point",
            P256_OID.to_vec(),
            keys::der_octet_string(&[4; 30]),
        ),
    ];
    for (what, params, point) in cases {
        let r = s.create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::EC),
            Attribute::EcParams(params),
            Attribute::EcPoint(point),
            Attribute::Verify(true),
        ]);
        let Ok(h) = r else { continue };
        let v = s.verify(&Mechanism::EcdsaSha256, h, b"m", &[1; 64]);
        assert!(
            matches!(
                common::rv_of(&v),
                Some(
                    cryptoki::error::RvError::CurveNotSupported
                        | cryptoki::error::RvError::DomainParamsInvalid
                        | cryptoki::error::RvError::AttributeValueInvalid
                        | cryptoki::error::RvError::KeyTypeInconsistent
                        | cryptoki::error::RvError::FunctionFailed
                )
            ),
            "{what}: accepted at creation, and then C_Verify gave {v:?}"
        );
    }
}

#[test]
fn rsa_2048_signs_and_verifies() {
    let s = user_session(common::fresh_token());
    let (public, private) = keys::gen_rsa(&s, 2048);
    let n = attr_bytes(&s, public, AttributeType::Modulus);
    assert_eq!(n.len(), 256);
    assert_eq!(
        attr_bytes(&s, public, AttributeType::PublicExponent),
        vec![1, 0, 1]
    );
    assert_eq!(attr_ulong(&s, public, AttributeType::ModulusBits), 2048);
    assert_eq!(attr_bytes(&s, private, AttributeType::Modulus), n);
    let pk = keys::rsa_public_from_token(&s, public);
    assert_eq!(
        attr_bytes(&s, public, AttributeType::PublicKeyInfo),
        pk.public_key_to_der().unwrap()
    );
    let msg = b"RSA in the token";

    // CKM_SHA256_RSA_PKCS single- and multi-part.
    let sig = s.sign(&Mechanism::Sha256RsaPkcs, private, msg).unwrap();
    assert_eq!(sig.len(), 256);
    assert!(keys::openssl_verify(
        &pk,
        MessageDigest::sha256(),
        msg,
        &sig
    ));
    s.sign_init(&Mechanism::Sha256RsaPkcs, private).unwrap();
    s.sign_update(b"RSA in").unwrap();
    s.sign_update(b" the token").unwrap();
    assert_eq!(s.sign_final().unwrap(), sig, "PKCS#1 v1.5 is deterministic");
    s.verify(&Mechanism::Sha256RsaPkcs, public, msg, &sig)
        .unwrap();
    s.verify_init(&Mechanism::Sha256RsaPkcs, public).unwrap();
    s.verify_update(b"RSA").unwrap();
    s.verify_update(b" in the token").unwrap();
    s.verify_final(&sig).unwrap();

    // CKM_RSA_PKCS over a DigestInfo gives the same signature.
    let digest = hash(MessageDigest::sha256(), msg).unwrap();
    let mut info = hex::decode("3031300d060960864801650304020105000420").unwrap();
    info.extend_from_slice(&digest);
    let raw = s.sign(&Mechanism::RsaPkcs, private, &info).unwrap();
    assert_eq!(raw, sig);
    s.verify(&Mechanism::RsaPkcs, public, &info, &raw).unwrap();
    // And openssl recovers the DigestInfo from it.
    let rsa = pk.rsa().unwrap();
    let mut out = vec![0u8; 256];
    let n = rsa
        .public_decrypt(&raw, &mut out, openssl::rsa::Padding::PKCS1)
        .unwrap();
    assert_eq!(&out[..n], info.as_slice());

    let mut bad = sig.clone();
    bad[100] ^= 0x80;
    assert_rv!(
        s.verify(&Mechanism::Sha256RsaPkcs, public, msg, &bad),
        SignatureInvalid
    );
    assert_rv!(
        s.verify(&Mechanism::Sha256RsaPkcs, public, msg, &sig[..255]),
        SignatureLenRange
    );
}

#[test]
fn rsa_key_sizes_outside_the_range_are_refused() {
    if !is_keyward() {
        return;
    }
    let s = user_session(common::fresh_token());
    for bits in [1024u64, 8200] {
        let r = s.generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[Attribute::ModulusBits(bits.into())],
            &[Attribute::Sign(true)],
        );
        assert_rv!(r, KeySizeRange);
    }
}

fn gcm_encrypt(
    s: &Session,
    key: cryptoki::object::ObjectHandle,
    iv: &[u8],
    aad: &[u8],
    pt: &[u8],
) -> Vec<u8> {
    let mut iv = iv.to_vec();
    let params = GcmParams::new(&mut iv, aad, 128.into()).unwrap();
    s.encrypt(&Mechanism::AesGcm(params), key, pt)
        .expect("AES-GCM encrypt")
}

fn gcm_decrypt(
    s: &Session,
    key: cryptoki::object::ObjectHandle,
    iv: &[u8],
    aad: &[u8],
    ct: &[u8],
) -> cryptoki::error::Result<Vec<u8>> {
    let mut iv = iv.to_vec();
    let params = GcmParams::new(&mut iv, aad, 128.into()).unwrap();
    s.decrypt(&Mechanism::AesGcm(params), key, ct)
}

#[test]
fn aes_gcm_round_trip_in_the_token() {
    let s = user_session(common::fresh_token());
    for len in [16u64, 24, 32] {
        let key = keys::gen_aes(&s, len, &[]);
        assert_eq!(
            attr_ulong(&s, key, AttributeType::ValueLen),
            CK_ULONG::try_from(len).unwrap()
        );
        let iv = [7u8; 12];
        let pt = b"attack at dawn, and bring snacks";
        let ct = gcm_encrypt(&s, key, &iv, b"header", pt);
        assert_eq!(ct.len(), pt.len() + 16, "ciphertext and 128-bit tag");
        assert_ne!(&ct[..pt.len()], pt);
        assert_eq!(gcm_decrypt(&s, key, &iv, b"header", &ct).unwrap(), pt);
        // Wrong AAD, changed ciphertext, or truncated tag: refused.
        assert_rv!(
            gcm_decrypt(&s, key, &iv, b"other", &ct),
            EncryptedDataInvalid
        );
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert_rv!(
            gcm_decrypt(&s, key, &iv, b"header", &bad),
            EncryptedDataInvalid
        );
        // Empty plaintext and empty AAD work.
        let ct0 = gcm_encrypt(&s, key, &iv, b"", b"");
        assert_eq!(ct0.len(), 16);
        assert_eq!(gcm_decrypt(&s, key, &iv, b"", &ct0).unwrap(), b"");
    }
}

#[test]
fn aes_gcm_matches_openssl() {
    let s = user_session(common::fresh_token());
    let raw_key: Vec<u8> = (0u8..32).collect();
    let key = s
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Value(raw_key.clone()),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
        ])
        .unwrap();
    let iv = hex::decode("cafebabefacedbaddecaf888").unwrap();
    let aad = b"associated data";
    let pt: Vec<u8> = (0..100u8).collect();
    // Token encrypts, openssl decrypts.
    let ct = gcm_encrypt(&s, key, &iv, aad, &pt);
    let (body, tag) = ct.split_at(ct.len() - 16);
    let opened = decrypt_aead(Cipher::aes_256_gcm(), &raw_key, Some(&iv), aad, body, tag)
        .expect("openssl opens the token's ciphertext");
    assert_eq!(opened, pt);
    // openssl encrypts, the token decrypts.
    let mut tag2 = [0u8; 16];
    let mut ct2 = encrypt_aead(
        Cipher::aes_256_gcm(),
        &raw_key,
        Some(&iv),
        aad,
        &pt,
        &mut tag2,
    )
    .unwrap();
    assert_eq!(ct2, body, "same key, IV and AAD give the same ciphertext");
    ct2.extend_from_slice(&tag2);
    assert_eq!(gcm_decrypt(&s, key, &iv, aad, &ct2).unwrap(), pt);

    // Multi-part encryption gives the same bytes as single-part.
    let mut ivm = iv.clone();
    let params = GcmParams::new(&mut ivm, aad, 128.into()).unwrap();
    s.encrypt_init(&Mechanism::AesGcm(params), key).unwrap();
    let mut multi = s.encrypt_update(&pt[..33]).unwrap();
    multi.extend(s.encrypt_update(&pt[33..]).unwrap());
    multi.extend(s.encrypt_final().unwrap());
    assert_eq!(multi, ct);
    let mut ivd = iv.clone();
    let params = GcmParams::new(&mut ivd, aad, 128.into()).unwrap();
    s.decrypt_init(&Mechanism::AesGcm(params), key).unwrap();
    let mut plain = s.decrypt_update(&ct[..50]).unwrap();
    plain.extend(s.decrypt_update(&ct[50..]).unwrap());
    plain.extend(s.decrypt_final().unwrap());
    assert_eq!(plain, pt);
}

#[test]
fn sha256_known_answers() {
    let s = pkcs11().open_ro_session(common::fresh_token()).unwrap();
    let abc = s.digest(&Mechanism::Sha256, b"abc").unwrap();
    assert_eq!(
        hex::encode(&abc),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let empty = s.digest(&Mechanism::Sha256, b"").unwrap();
    assert_eq!(
        hex::encode(&empty),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    s.digest_init(&Mechanism::Sha256).unwrap();
    s.digest_update(b"abcdbcdecdefdefgefghfghighij").unwrap();
    s.digest_update(b"hijkijkljklmklmnlmnomnopnopq").unwrap();
    assert_eq!(
        hex::encode(s.digest_final().unwrap()),
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
    );
    // A million 'a's in pieces.
    s.digest_init(&Mechanism::Sha256).unwrap();
    let chunk = [b'a'; 1000];
    for _ in 0..1000 {
        s.digest_update(&chunk).unwrap();
    }
    assert_eq!(
        hex::encode(s.digest_final().unwrap()),
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
    );
}

#[test]
fn operation_state_rules() {
    let s = user_session(common::fresh_token());
    let (public, private) = keys::gen_ec(&s, P256_OID, false);
    // Nothing active.
    assert_rv!(s.sign_update(b"x"), OperationNotInitialized);
    assert_rv!(s.sign_final(), OperationNotInitialized);
    assert_rv!(s.verify_final(&[0; 64]), OperationNotInitialized);
    assert_rv!(s.digest_update(b"x"), OperationNotInitialized);
    assert_rv!(s.encrypt_final(), OperationNotInitialized);
    // One operation of a kind at a time.
    s.sign_init(&Mechanism::EcdsaSha256, private).unwrap();
    assert_rv!(
        s.sign_init(&Mechanism::EcdsaSha256, private),
        OperationActive
    );
    s.sign_update(b"data").unwrap();
    s.sign_final().unwrap();
    // A finished operation is gone.
    assert_rv!(s.sign_update(b"more"), OperationNotInitialized);
    // A single-part call ends it too.
    s.sign_init(&Mechanism::EcdsaSha256, private).unwrap();
    let mut out = [0u8; 64];
    let mut len: CK_ULONG = 64;
    let data = b"data";
    assert_ckr!(
        call!(
            C_Sign,
            s.handle(),
            data.as_ptr().cast_mut(),
            4,
            out.as_mut_ptr(),
            &mut len
        ),
        CKR_OK
    );
    assert_ckr!(
        call!(
            C_Sign,
            s.handle(),
            data.as_ptr().cast_mut(),
            4,
            out.as_mut_ptr(),
            &mut len
        ),
        CKR_OPERATION_NOT_INITIALIZED
    );
    // A failed operation ends it.
    s.verify_init(&Mechanism::EcdsaSha256, public).unwrap();
    assert_rv!(
        s.verify(&Mechanism::EcdsaSha256, public, b"m", &[1; 64]),
        OperationActive
    );
    s.verify_update(b"m").unwrap();
    assert_rv!(s.verify_final(&[1; 64]), SignatureInvalid);
    assert_rv!(s.verify_final(&[1; 64]), OperationNotInitialized);
    // Digest: after final, updates are refused.
    s.digest_init(&Mechanism::Sha256).unwrap();
    s.digest_final().unwrap();
    assert_rv!(s.digest_update(b"late"), OperationNotInitialized);
    // Different kinds may run side by side (the token sets CKF_DUAL_CRYPTO_OPERATIONS-style
    // independence per kind).
    s.sign_init(&Mechanism::EcdsaSha256, private).unwrap();
    s.digest_init(&Mechanism::Sha256).unwrap();
    s.digest_update(b"abc").unwrap();
    s.sign_update(b"abc").unwrap();
    assert_eq!(
        hex::encode(s.digest_final().unwrap()),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    s.sign_final().unwrap();
}

#[test]
fn key_usage_and_type_are_checked() {
    let s = user_session(common::fresh_token());
    let (public, private) = s
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[
                Attribute::EcParams(P256_OID.to_vec()),
                Attribute::Verify(false),
            ],
            &[Attribute::Sign(false)],
        )
        .unwrap();
    assert_rv!(
        s.sign_init(&Mechanism::EcdsaSha256, private),
        KeyFunctionNotPermitted
    );
    assert_rv!(
        s.verify_init(&Mechanism::EcdsaSha256, public),
        KeyFunctionNotPermitted
    );
    let aes = keys::gen_aes(&s, 32, &[]);
    assert_rv!(
        s.sign_init(&Mechanism::EcdsaSha256, aes),
        KeyTypeInconsistent
    );
    let (_, rsa_private) = keys::gen_rsa(&s, 2048);
    assert_rv!(
        s.sign_init(&Mechanism::EcdsaSha256, rsa_private),
        KeyTypeInconsistent
    );
    let mut iv = [0u8; 12];
    let params = GcmParams::new(&mut iv, &[], 128.into()).unwrap();
    assert_rv!(
        s.encrypt_init(&Mechanism::AesGcm(params), rsa_private),
        KeyTypeInconsistent
    );
    // An AES key that may only decrypt.
    let dec_only = s
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::ValueLen(16.into()),
                Attribute::Encrypt(false),
                Attribute::Decrypt(true),
            ],
        )
        .unwrap();
    let mut iv = [0u8; 12];
    let params = GcmParams::new(&mut iv, &[], 128.into()).unwrap();
    assert_rv!(
        s.encrypt_init(&Mechanism::AesGcm(params), dec_only),
        KeyFunctionNotPermitted
    );
    // CKA_ALLOWED_MECHANISMS restricts a key.
    let (_, only_ecdsa) = s
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::EcParams(P256_OID.to_vec())],
            &[
                Attribute::Sign(true),
                Attribute::AllowedMechanisms(vec![MechanismType::ECDSA]),
            ],
        )
        .unwrap();
    s.sign(&Mechanism::Ecdsa, only_ecdsa, &[0u8; 32]).unwrap();
    let r = s.sign_init(&Mechanism::EcdsaSha256, only_ecdsa);
    assert!(
        r.is_err(),
        "a mechanism outside CKA_ALLOWED_MECHANISMS is refused"
    );
}

#[test]
fn private_keys_need_a_login_to_sign() {
    let slot = common::fresh_token();
    let s = user_session(slot);
    let (_, private) = keys::gen_ec(&s, P256_OID, true);
    s.logout().unwrap();
    // After logout the private key's handle no longer names anything this session may use.
    let r = s.sign_init(&Mechanism::EcdsaSha256, private);
    assert!(
        matches!(
            common::rv_of(&r),
            Some(cryptoki::error::RvError::ObjectHandleInvalid)
                | Some(cryptoki::error::RvError::KeyHandleInvalid)
                | Some(cryptoki::error::RvError::UserNotLoggedIn)
        ),
        "{r:?}"
    );
}

#[test]
fn random_numbers() {
    let p = pkcs11();
    let s = p.open_ro_session(common::fresh_token()).unwrap();
    let a = s.generate_random_vec(32).unwrap();
    let b = s.generate_random_vec(32).unwrap();
    assert_eq!(a.len(), 32);
    assert_ne!(a, b);
    assert_ne!(a, vec![0; 32]);
    let big = s.generate_random_vec(4096).unwrap();
    // Crude sanity: every byte value shows up in 4 KiB of random data with overwhelming odds
    // for most values; require at least 200 distinct ones.
    let distinct: std::collections::BTreeSet<u8> = big.iter().copied().collect();
    assert!(
        distinct.len() > 200,
        "{} distinct byte values",
        distinct.len()
    );
    s.seed_random(b"additional entropy from the application")
        .unwrap();
    let c = s.generate_random_vec(32).unwrap();
    assert_ne!(c, a);
    let mut empty: [u8; 0] = [];
    assert_ckr!(
        call!(C_GenerateRandom, s.handle(), empty.as_mut_ptr(), 0),
        CKR_OK
    );
    let mut buf = [0u8; 8];
    assert_ckr!(
        call!(C_GenerateRandom, 0, buf.as_mut_ptr(), 8),
        CKR_SESSION_HANDLE_INVALID
    );
    assert_ckr!(
        call!(C_SeedRandom, 0, buf.as_mut_ptr(), 8),
        CKR_SESSION_HANDLE_INVALID
    );
}
