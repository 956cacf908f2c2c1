//! Objects (PKCS#11 3.0 §4, §5.7): data objects, certificates with fields taken from the DER,
//! keys of every supported type, template errors, one-way and token-maintained attributes,
//! MODIFIABLE/COPYABLE/DESTROYABLE, access by session state, CKA_UNIQUE_ID, copy, destroy,
//! size, find and handle stability (SECURITY ATTR-01..07, SESS-01).

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{
    Attribute, AttributeType, CertificateType, KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::UserType;
use cryptoki_sys::*;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;

use super::keys::{self, P256_OID};
use crate::common::{
    self, USER_PIN, attr_bool, attr_bytes, attr_ulong, find, is_keyward, pin, pkcs11, raw_attr,
    user_session,
};
use crate::{assert_ckr, assert_rv, call};

fn data(label: &str, token: bool, private: bool) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(token),
        Attribute::Private(private),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Application(b"keyward-tests".to_vec()),
        Attribute::Value(format!("value of {label}").into_bytes()),
    ]
}

#[test]
fn data_objects_round_trip() {
    let slot = common::fresh_token();
    let s = user_session(slot);
    let h = s.create_object(&data("d1", true, false)).unwrap();
    assert_eq!(attr_bytes(&s, h, AttributeType::Label), b"d1");
    assert_eq!(attr_bytes(&s, h, AttributeType::Value), b"value of d1");
    assert_eq!(
        attr_bytes(&s, h, AttributeType::Application),
        b"keyward-tests"
    );
    assert_eq!(attr_ulong(&s, h, AttributeType::Class), CKO_DATA);
    assert!(attr_bool(&s, h, AttributeType::Token));
    assert!(!attr_bool(&s, h, AttributeType::Private));
    // Defaults of a storage object.
    assert!(attr_bool(&s, h, AttributeType::Modifiable));
    assert!(attr_bool(&s, h, AttributeType::Copyable));
    assert!(attr_bool(&s, h, AttributeType::Destroyable));
    // Session objects may be created in R/O sessions.
    let ro = pkcs11().open_ro_session(slot).unwrap();
    let sh = ro.create_object(&data("ro-session", false, false)).unwrap();
    assert!(!attr_bool(&ro, sh, AttributeType::Token));
}

#[test]
fn certificate_fields_come_from_the_der() {
    if !is_keyward() {
        return; // other tokens require CKA_SUBJECT in the template
    }
    let slot = common::fresh_token();
    let s = user_session(slot);
    let cert = keys::test_certificate("keyward cert");
    let h = s
        .create_object(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(CertificateType::X_509),
            Attribute::Token(true),
            Attribute::Label(b"cert".to_vec()),
            Attribute::Value(cert.der.clone()),
        ])
        .expect("create an X.509 certificate from its value alone");
    assert_eq!(attr_bytes(&s, h, AttributeType::Value), cert.der);
    assert_eq!(attr_bytes(&s, h, AttributeType::Subject), cert.subject);
    assert_eq!(attr_bytes(&s, h, AttributeType::Issuer), cert.issuer);
    assert_eq!(attr_bytes(&s, h, AttributeType::SerialNumber), cert.serial);
    assert_eq!(attr_ulong(&s, h, AttributeType::CertificateType), CKC_X_509);
    // Certificates are public by default.
    assert!(!attr_bool(&s, h, AttributeType::Private));
    let found = find(
        &s,
        &[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::Subject(cert.subject.clone()),
        ],
    );
    assert_eq!(found, vec![h]);
}

#[test]
fn certificate_value_must_be_a_certificate() {
    let slot = common::fresh_token();
    let s = user_session(slot);
    let mut not_a_cert = keys::test_certificate("x").der;
    not_a_cert.truncate(not_a_cert.len() / 2);
    for value in [b"hello".to_vec(), not_a_cert] {
        assert_rv!(
            s.create_object(&[
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::CertificateType(CertificateType::X_509),
                Attribute::Value(value),
            ]),
            AttributeValueInvalid
        );
    }
}

#[test]
fn certificate_subject_must_match_the_der() {
    let slot = common::fresh_token();
    let s = user_session(slot);
    // CKA_SUBJECT is the certificate's subject: a contradicting one is refused, or at
    // least never stored (a search by subject must not find a certificate for another name).
    let cert = keys::test_certificate("y");
    let r = s.create_object(&[
        Attribute::Class(ObjectClass::CERTIFICATE),
        Attribute::CertificateType(CertificateType::X_509),
        Attribute::Value(cert.der),
        Attribute::Subject(keys::test_certificate("other").subject),
    ]);
    if let Ok(h) = r {
        assert_eq!(
            attr_bytes(&s, h, AttributeType::Subject),
            cert.subject,
            "a certificate stored with a subject that is not its own"
        );
    }
}

#[test]
fn imported_ec_keys_work() {
    let slot = common::fresh_token();
    let s = user_session(slot);
    let k = keys::openssl_ec(Nid::X9_62_PRIME256V1);
    let (pub_t, priv_t) = keys::ec_import_templates(&k, P256_OID);
    let public = s.create_object(&pub_t).expect("import EC public key");
    let private = s.create_object(&priv_t).expect("import EC private key");
    // Imported private keys default to private and sensitive.
    assert!(attr_bool(&s, private, AttributeType::Private));
    assert!(attr_bool(&s, private, AttributeType::Sensitive));
    assert!(!attr_bool(&s, private, AttributeType::Local));
    let (rv, len, _) = raw_attr(&s, private, CKA_VALUE);
    assert_ckr!(rv, CKR_ATTRIBUTE_SENSITIVE);
    assert_eq!(len, CK_UNAVAILABLE_INFORMATION);

    // The token signs with the imported key; openssl verifies with the original.
    let msg = b"imported EC key";
    let sig = s.sign(&Mechanism::EcdsaSha256, private, msg).unwrap();
    let pk = openssl::pkey::PKey::from_ec_key(
        openssl::ec::EcKey::from_public_key(k.group(), k.public_key()).unwrap(),
    )
    .unwrap();
    assert!(keys::openssl_verify(
        &pk,
        MessageDigest::sha256(),
        msg,
        &keys::ecdsa_raw_to_der(&sig)
    ));
    // openssl signs; the token verifies with the imported public key.
    let mut signer = openssl::sign::Signer::new(
        MessageDigest::sha256(),
        &openssl::pkey::PKey::from_ec_key(k.clone()).unwrap(),
    )
    .unwrap();
    signer.update(msg).unwrap();
    let der = signer.sign_to_vec().unwrap();
    s.verify(
        &Mechanism::EcdsaSha256,
        public,
        msg,
        &keys::ecdsa_der_to_raw(&der, 32),
    )
    .expect("the token verifies openssl's signature");
}

#[test]
fn imported_rsa_keys_work() {
    let slot = common::fresh_token();
    let s = user_session(slot);
    let k = openssl::rsa::Rsa::generate(2048).unwrap();
    let (pub_t, priv_t) = keys::rsa_import_templates(&k);
    let public = s.create_object(&pub_t).expect("import RSA public key");
    let private = s.create_object(&priv_t).expect("import RSA private key");
    for ty in [
        CKA_PRIVATE_EXPONENT,
        CKA_PRIME_1,
        CKA_PRIME_2,
        CKA_EXPONENT_1,
        CKA_EXPONENT_2,
        CKA_COEFFICIENT,
    ] {
        let (rv, len, _) = raw_attr(&s, private, ty);
        assert_ckr!(rv, CKR_ATTRIBUTE_SENSITIVE);
        assert_eq!(len, CK_UNAVAILABLE_INFORMATION, "attribute {ty:#x}");
    }
    assert_eq!(
        attr_bytes(&s, private, AttributeType::Modulus),
        k.n().to_vec()
    );
    assert_eq!(attr_ulong(&s, public, AttributeType::ModulusBits), 2048);
    let msg = b"imported RSA key";
    let sig = s.sign(&Mechanism::Sha256RsaPkcs, private, msg).unwrap();
    let pk = openssl::pkey::PKey::from_rsa(
        openssl::rsa::Rsa::from_public_components(
            k.n().to_owned().unwrap(),
            k.e().to_owned().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(keys::openssl_verify(
        &pk,
        MessageDigest::sha256(),
        msg,
        &sig
    ));
    s.verify(&Mechanism::Sha256RsaPkcs, public, msg, &sig)
        .unwrap();
}

#[test]
fn imported_secret_keys() {
    let slot = common::fresh_token();
    let s = user_session(slot);
    for (kt, len) in [
        (KeyType::AES, 16),
        (KeyType::AES, 24),
        (KeyType::AES, 32),
        (KeyType::GENERIC_SECRET, 20),
    ] {
        let h = s
            .create_object(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(kt),
                Attribute::Value(vec![0x42; len]),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
            ])
            .unwrap_or_else(|e| panic!("import {kt:?} of {len} bytes: {e}"));
        assert_eq!(attr_bytes(&s, h, AttributeType::Value), vec![0x42; len]);
        assert_eq!(attr_ulong(&s, h, AttributeType::ValueLen), len as CK_ULONG);
        assert!(
            attr_bool(&s, h, AttributeType::Private),
            "secret keys default to private"
        );
    }
    // An AES key has 16, 24 or 32 bytes.
    assert_rv!(
        s.create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Value(vec![1; 7]),
        ]),
        AttributeValueInvalid
    );
}

#[test]
fn template_errors() {
    let slot = common::fresh_token();
    let s = user_session(slot);
    // No class.
    assert_rv!(
        s.create_object(&[Attribute::Label(b"classless".to_vec())]),
        TemplateIncomplete
    );
    // A key without its key type / value.
    assert_rv!(
        s.create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Value(vec![1; 16]),
        ]),
        TemplateIncomplete
    );
    assert_rv!(
        s.create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
        ]),
        TemplateIncomplete
    );
    // An EC public key without its point.
    assert_rv!(
        s.create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::EC),
            Attribute::EcParams(P256_OID.to_vec()),
        ]),
        TemplateIncomplete
    );
    // AES key generation without CKA_VALUE_LEN.
    assert_rv!(
        s.generate_key(&Mechanism::AesKeyGen, &[Attribute::Encrypt(true)]),
        TemplateIncomplete
    );
    // Contradictions.
    assert_rv!(
        s.generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::ValueLen(16.into()),
                Attribute::KeyType(KeyType::RSA)
            ]
        ),
        TemplateInconsistent
    );
    assert_rv!(
        s.generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::ValueLen(16.into()),
                Attribute::Class(ObjectClass::PUBLIC_KEY)
            ]
        ),
        TemplateInconsistent
    );
    // An attribute the object type does not have.
    assert_rv!(
        s.create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Modulus(vec![1, 2, 3]),
        ]),
        AttributeTypeInvalid
    );
    assert_rv!(
        s.create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::VendorDefined((
                AttributeType::VendorDefined(CKA_VENDOR_DEFINED | 0x77),
                vec![1]
            )),
        ]),
        AttributeTypeInvalid
    );
    // A bad value.
    assert_rv!(
        s.create_object(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(CertificateType::WTLS),
            Attribute::Value(vec![1, 2, 3]),
        ]),
        AttributeValueInvalid
    );
    // Token-maintained attributes cannot be given.
    for a in [
        Attribute::Local(true),
        Attribute::AlwaysSensitive(true),
        Attribute::NeverExtractable(true),
        Attribute::KeyGenMechanism(cryptoki::mechanism::MechanismType::AES_KEY_GEN),
        Attribute::UniqueId(b"chosen".to_vec()),
    ] {
        let r = s.create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Value(vec![9; 16]),
            a.clone(),
        ]);
        assert_rv!(r, AttributeReadOnly);
    }
    assert_rv!(
        s.create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::UniqueId(b"u".to_vec())
        ]),
        AttributeReadOnly
    );
    // ALWAYS_AUTHENTICATE needs a private key object.
    assert_rv!(
        s.generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::EcParams(P256_OID.to_vec())],
            &[
                Attribute::Private(false),
                Attribute::AlwaysAuthenticate(true)
            ],
        ),
        TemplateInconsistent
    );
    assert!(find(&s, &[]).is_empty(), "failed templates create nothing");
}

#[test]
fn sensitive_is_one_way() {
    let slot = common::fresh_token();
    let s = user_session(slot);
    let k = s
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Value(vec![3; 32]),
            Attribute::Sensitive(false),
        ])
        .unwrap();
    assert!(!attr_bool(&s, k, AttributeType::Sensitive));
    s.update_attributes(k, &[Attribute::Sensitive(true)])
        .unwrap();
    assert!(attr_bool(&s, k, AttributeType::Sensitive));
    assert!(
        !attr_bool(&s, k, AttributeType::AlwaysSensitive),
        "turning sensitive later does not make it always sensitive"
    );
    assert_rv!(
        s.update_attributes(k, &[Attribute::Sensitive(false)]),
        AttributeReadOnly
    );
    assert_rv!(
        s.copy_object(k, &[Attribute::Sensitive(false)]),
        AttributeReadOnly
    );
    // A failed template changes nothing, not even its valid parts.
    assert_rv!(
        s.update_attributes(
            k,
            &[
                Attribute::Label(b"new".to_vec()),
                Attribute::Sensitive(false)
            ]
        ),
        AttributeReadOnly
    );
    assert!(attr_bool(&s, k, AttributeType::Sensitive));
    let (rv, _, _) = raw_attr(&s, k, CKA_LABEL);
    assert_ckr!(rv, CKR_OK);
    assert_ne!(raw_attr(&s, k, CKA_LABEL).2.unwrap(), b"new");
    let (rv, _, _) = raw_attr(&s, k, CKA_VALUE);
    assert_ckr!(rv, CKR_ATTRIBUTE_SENSITIVE);
}

#[test]
fn extractable_is_one_way() {
    let slot = common::fresh_token();
    let s = user_session(slot);
    let k = keys::gen_aes(&s, 16, &[Attribute::Extractable(true)]);
    assert!(!attr_bool(&s, k, AttributeType::NeverExtractable));
    s.update_attributes(k, &[Attribute::Extractable(false)])
        .unwrap();
    assert!(!attr_bool(&s, k, AttributeType::Extractable));
    assert!(
        !attr_bool(&s, k, AttributeType::NeverExtractable),
        "NEVER_EXTRACTABLE stays FALSE"
    );
    assert_rv!(
        s.update_attributes(k, &[Attribute::Extractable(true)]),
        AttributeReadOnly
    );
    assert_rv!(
        s.copy_object(k, &[Attribute::Extractable(true)]),
        AttributeReadOnly
    );
    assert!(!attr_bool(&s, k, AttributeType::Extractable));
}

#[test]
fn token_maintained_attributes() {
    let slot = common::fresh_token();
    let s = user_session(slot);
    // Generated.
    let g = keys::gen_aes(&s, 32, &[Attribute::Extractable(false)]);
    assert!(attr_bool(&s, g, AttributeType::Local));
    assert_eq!(
        attr_ulong(&s, g, AttributeType::KeyGenMechanism),
        CKM_AES_KEY_GEN
    );
    assert!(attr_bool(&s, g, AttributeType::AlwaysSensitive));
    assert!(attr_bool(&s, g, AttributeType::NeverExtractable));
    assert!(
        attr_bool(&s, g, AttributeType::Private),
        "secret keys default to private"
    );
    assert!(
        attr_bool(&s, g, AttributeType::Sensitive),
        "secret keys default to sensitive"
    );
    let (public, private) = keys::gen_ec(&s, P256_OID, false);
    assert!(attr_bool(&s, private, AttributeType::Local));
    assert!(attr_bool(&s, public, AttributeType::Local));
    assert_eq!(
        attr_ulong(&s, private, AttributeType::KeyGenMechanism),
        CKM_EC_KEY_PAIR_GEN
    );
    assert!(attr_bool(&s, private, AttributeType::Private));
    assert!(attr_bool(&s, private, AttributeType::Sensitive));
    assert!(attr_bool(&s, private, AttributeType::AlwaysSensitive));
    // Created.
    let c = s
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Value(vec![5; 16]),
        ])
        .unwrap();
    assert!(!attr_bool(&s, c, AttributeType::Local));
    assert!(!attr_bool(&s, c, AttributeType::AlwaysSensitive));
    assert!(!attr_bool(&s, c, AttributeType::NeverExtractable));
    assert_eq!(
        attr_ulong(&s, c, AttributeType::KeyGenMechanism),
        CK_UNAVAILABLE_INFORMATION
    );
    // None of them can be set.
    for a in [
        Attribute::Local(false),
        Attribute::AlwaysSensitive(false),
        Attribute::NeverExtractable(false),
        Attribute::KeyGenMechanism(cryptoki::mechanism::MechanismType::SHA256),
        Attribute::UniqueId(b"x".to_vec()),
        Attribute::Class(ObjectClass::DATA),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
    ] {
        assert_rv!(
            s.update_attributes(g, std::slice::from_ref(&a)),
            AttributeReadOnly
        );
    }
}

#[test]
fn modifiable_copyable_destroyable() {
    let slot = common::fresh_token();
    let s = user_session(slot);
    let mut t = data("frozen", true, false);
    t.push(Attribute::Modifiable(false));
    let frozen = s.create_object(&t).unwrap();
    let r = s.update_attributes(frozen, &[Attribute::Label(b"thawed".to_vec())]);
    if is_keyward() {
        assert_rv!(r, ActionProhibited);
    } else {
        assert!(r.is_err());
    }
    assert_eq!(attr_bytes(&s, frozen, AttributeType::Label), b"frozen");

    let mut t = data("single", true, false);
    t.push(Attribute::Copyable(false));
    let single = s.create_object(&t).unwrap();
    assert_rv!(s.copy_object(single, &[]), ActionProhibited);
    assert_rv!(
        s.update_attributes(single, &[Attribute::Copyable(true)]),
        AttributeReadOnly
    );

    let mut t = data("permanent", true, false);
    t.push(Attribute::Destroyable(false));
    let permanent = s.create_object(&t).unwrap();
    assert_rv!(s.destroy_object(permanent), ActionProhibited);
    assert_eq!(
        find(&s, &[Attribute::Label(b"permanent".to_vec())]),
        vec![permanent]
    );
}

#[test]
fn private_objects_need_a_user_login() {
    let p = pkcs11();
    let slot = common::fresh_token();
    let rw = p.open_rw_session(slot).unwrap();
    // Creating a private object needs the user.
    assert_rv!(rw.create_object(&data("p", true, true)), UserNotLoggedIn);
    assert_rv!(rw.create_object(&data("p", false, true)), UserNotLoggedIn);
    rw.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    let private = rw.create_object(&data("private", true, true)).unwrap();
    let public = rw.create_object(&data("public", true, false)).unwrap();
    assert_eq!(find(&rw, &[Attribute::Class(ObjectClass::DATA)]).len(), 2);
    rw.logout().unwrap();
    assert_eq!(
        find(&rw, &[]),
        vec![public],
        "private objects are invisible"
    );
    assert!(find(&rw, &[Attribute::Label(b"private".to_vec())]).is_empty());
    let (rv, _, _) = raw_attr(&rw, private, CKA_LABEL);
    assert_ckr!(rv, CKR_OBJECT_HANDLE_INVALID);
    assert_rv!(rw.destroy_object(private), ObjectHandleInvalid);
    // The SO does not see them either.
    rw.login(UserType::So, Some(&pin(common::SO_PIN))).unwrap();
    assert_eq!(find(&rw, &[]), vec![public]);
    rw.logout().unwrap();
    rw.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    assert_eq!(find(&rw, &[Attribute::Label(b"private".to_vec())]).len(), 1);
}

#[test]
fn token_objects_need_a_read_write_session() {
    let p = pkcs11();
    let slot = common::fresh_token();
    let rw = user_session(slot);
    let obj = rw.create_object(&data("t", true, false)).unwrap();
    let ro = p.open_ro_session(slot).unwrap();
    assert_rv!(ro.create_object(&data("t2", true, false)), SessionReadOnly);
    let seen = find(&ro, &[Attribute::Label(b"t".to_vec())]);
    assert_eq!(seen.len(), 1, "R/O sessions read token objects");
    assert_rv!(ro.destroy_object(seen[0]), SessionReadOnly);
    assert_rv!(
        ro.update_attributes(seen[0], &[Attribute::Label(b"x".to_vec())]),
        SessionReadOnly
    );
    assert_rv!(ro.copy_object(seen[0], &[]), SessionReadOnly);
    // A session copy of a token object is fine in R/O.
    let copy = ro.copy_object(seen[0], &[Attribute::Token(false)]).unwrap();
    assert!(!attr_bool(&ro, copy, AttributeType::Token));
    assert_eq!(attr_bytes(&ro, obj, AttributeType::Label), b"t");
    // Key generation too.
    assert_rv!(
        ro.generate_key(
            &Mechanism::AesKeyGen,
            &[Attribute::ValueLen(16.into()), Attribute::Token(true)]
        ),
        SessionReadOnly
    );
}

#[test]
fn unique_ids_are_assigned_and_read_only() {
    if !is_keyward() {
        return; // a 3.0 attribute
    }
    let slot = common::fresh_token();
    let s = user_session(slot);
    let a = s.create_object(&data("a", true, false)).unwrap();
    let b = s.create_object(&data("b", false, false)).unwrap();
    let k = keys::gen_aes(&s, 16, &[Attribute::Token(true)]);
    let ids: Vec<Vec<u8>> = [a, b, k]
        .iter()
        .map(|h| attr_bytes(&s, *h, AttributeType::UniqueId))
        .collect();
    for id in &ids {
        assert!(!id.is_empty());
    }
    assert_ne!(ids[0], ids[1]);
    assert_ne!(ids[0], ids[2]);
    assert_ne!(ids[1], ids[2]);
    assert_rv!(
        s.update_attributes(a, &[Attribute::UniqueId(b"mine".to_vec())]),
        AttributeReadOnly
    );
    let c = s.copy_object(a, &[]).unwrap();
    assert_ne!(
        attr_bytes(&s, c, AttributeType::UniqueId),
        ids[0],
        "a copy gets its own id"
    );
    assert_eq!(find(&s, &[Attribute::UniqueId(ids[0].clone())]), vec![a]);
}

#[test]
fn copy_set_destroy_and_size() {
    let slot = common::fresh_token();
    let s = user_session(slot);
    let orig = s.create_object(&data("orig", true, false)).unwrap();
    let copy = s
        .copy_object(
            orig,
            &[Attribute::Label(b"copy".to_vec()), Attribute::Token(false)],
        )
        .unwrap();
    assert_ne!(copy, orig);
    assert_eq!(attr_bytes(&s, copy, AttributeType::Label), b"copy");
    assert_eq!(attr_bytes(&s, copy, AttributeType::Value), b"value of orig");
    assert!(!attr_bool(&s, copy, AttributeType::Token));
    assert_eq!(attr_bytes(&s, orig, AttributeType::Label), b"orig");

    s.update_attributes(orig, &[Attribute::Label(b"renamed".to_vec())])
        .unwrap();
    assert_eq!(attr_bytes(&s, orig, AttributeType::Label), b"renamed");
    // Data objects have no CKA_ID (PKCS#11 3.0 §4.5).
    assert_rv!(
        s.update_attributes(orig, &[Attribute::Id(vec![7])]),
        AttributeTypeInvalid
    );

    let mut size: CK_ULONG = 0;
    assert_ckr!(
        call!(C_GetObjectSize, s.handle(), orig.handle(), &mut size),
        CKR_OK
    );
    assert!(
        size > 0,
        "an object has a size (or CK_UNAVAILABLE_INFORMATION)"
    );

    s.destroy_object(orig).unwrap();
    assert_rv!(s.destroy_object(orig), ObjectHandleInvalid);
    let (rv, _, _) = raw_attr(&s, orig, CKA_LABEL);
    assert_ckr!(rv, CKR_OBJECT_HANDLE_INVALID);
    assert_eq!(find(&s, &[]), vec![copy]);
}

#[test]
fn session_objects_end_with_their_session() {
    let p = pkcs11();
    let slot = common::fresh_token();
    let keep = p.open_ro_session(slot).unwrap();
    let s = p.open_rw_session(slot).unwrap();
    let h = s.create_object(&data("ephemeral", false, false)).unwrap();
    assert_eq!(
        find(&keep, &[Attribute::Label(b"ephemeral".to_vec())]),
        vec![h]
    );
    s.close().unwrap();
    assert!(find(&keep, &[Attribute::Label(b"ephemeral".to_vec())]).is_empty());
    let (rv, _, _) = raw_attr(&keep, h, CKA_LABEL);
    assert_ckr!(rv, CKR_OBJECT_HANDLE_INVALID);
}

#[test]
fn find_matches_any_attribute_over_session_and_token_objects() {
    let slot = common::fresh_token();
    let s = user_session(slot);
    let t1 = s
        .create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Label(b"alpha".to_vec()),
            Attribute::ObjectId(vec![0x06, 0x01, 0x01]),
            Attribute::Application(b"app-x".to_vec()),
        ])
        .unwrap();
    let s1 = s
        .create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(false),
            Attribute::Label(b"alpha".to_vec()),
            Attribute::ObjectId(vec![0x06, 0x01, 0x02]),
            Attribute::Application(b"app-y".to_vec()),
        ])
        .unwrap();
    let (public, private) = keys::gen_ec(&s, P256_OID, true);
    let key = keys::gen_aes(&s, 16, &[Attribute::Token(false), Attribute::Id(vec![1])]);

    let sorted = |mut v: Vec<ObjectHandle>| {
        v.sort_by_key(ObjectHandle::handle);
        v
    };
    assert_eq!(
        sorted(find(&s, &[])),
        sorted(vec![t1, s1, public, private, key])
    );
    assert_eq!(
        sorted(find(&s, &[Attribute::Label(b"alpha".to_vec())])),
        sorted(vec![t1, s1])
    );
    assert_eq!(find(&s, &[Attribute::Id(vec![1])]), vec![key]);
    assert_eq!(
        find(&s, &[Attribute::ObjectId(vec![0x06, 0x01, 0x01])]),
        vec![t1]
    );
    assert_eq!(
        find(&s, &[Attribute::Application(b"app-y".to_vec())]),
        vec![s1]
    );
    assert_eq!(
        sorted(find(&s, &[Attribute::Token(true)])),
        sorted(vec![t1, public, private])
    );
    assert_eq!(
        sorted(find(&s, &[Attribute::Token(false)])),
        sorted(vec![s1, key])
    );
    assert_eq!(
        find(&s, &[Attribute::Class(ObjectClass::PRIVATE_KEY)]),
        vec![private]
    );
    assert_eq!(find(&s, &[Attribute::KeyType(KeyType::AES)]), vec![key]);
    assert_eq!(
        find(
            &s,
            &[
                Attribute::EcParams(P256_OID.to_vec()),
                Attribute::Class(ObjectClass::PUBLIC_KEY)
            ]
        ),
        vec![public]
    );
    assert_eq!(find(&s, &[Attribute::Sign(true)]), vec![private]);
    assert!(
        find(
            &s,
            &[Attribute::Label(b"alpha".to_vec()), Attribute::Id(vec![3])]
        )
        .is_empty()
    );
    // An attribute no object has matches nothing.
    assert!(find(&s, &[Attribute::Modulus(vec![1])]).is_empty());
}

#[test]
fn find_operation_state() {
    let slot = common::fresh_token();
    let s = user_session(slot);
    for i in 0..5u8 {
        s.create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(false),
            Attribute::Application(vec![b'a' + i]),
        ])
        .unwrap();
    }
    let mut out = [CK_OBJECT_HANDLE::MIN; 8];
    let mut n: CK_ULONG = 0;
    assert_ckr!(
        call!(C_FindObjects, s.handle(), out.as_mut_ptr(), 8, &mut n),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_ckr!(
        call!(C_FindObjectsFinal, s.handle()),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_ckr!(
        call!(C_FindObjectsInit, s.handle(), std::ptr::null_mut(), 0),
        CKR_OK
    );
    assert_ckr!(
        call!(C_FindObjectsInit, s.handle(), std::ptr::null_mut(), 0),
        CKR_OPERATION_ACTIVE
    );
    // Results arrive in pieces, each object once.
    let mut seen = Vec::new();
    loop {
        assert_ckr!(
            call!(C_FindObjects, s.handle(), out.as_mut_ptr(), 2, &mut n),
            CKR_OK
        );
        assert!(n <= 2);
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&out[..n as usize]);
    }
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 5);
    assert_ckr!(
        call!(C_FindObjects, s.handle(), std::ptr::null_mut(), 2, &mut n),
        CKR_ARGUMENTS_BAD
    );
    assert_ckr!(call!(C_FindObjectsFinal, s.handle()), CKR_OK);
    assert_ckr!(
        call!(C_FindObjectsFinal, s.handle()),
        CKR_OPERATION_NOT_INITIALIZED
    );
}

#[test]
fn handles_are_stable() {
    let slot = common::fresh_token();
    let s = user_session(slot);
    let a = s.create_object(&data("stable", true, false)).unwrap();
    let found1 = find(&s, &[Attribute::Label(b"stable".to_vec())]);
    for i in 0..10 {
        s.create_object(&data(&format!("other{i}"), i % 2 == 0, false))
            .unwrap();
    }
    let found2 = find(&s, &[Attribute::Label(b"stable".to_vec())]);
    assert_eq!(found1, vec![a]);
    assert_eq!(found2, vec![a]);
    // Another session of the application sees the same handle.
    let other = pkcs11().open_ro_session(slot).unwrap();
    assert_eq!(
        find(&other, &[Attribute::Label(b"stable".to_vec())]),
        vec![a]
    );
    // Changing an attribute keeps the handle.
    s.update_attributes(a, &[Attribute::Label(b"moved".to_vec())])
        .unwrap();
    assert_eq!(find(&s, &[Attribute::Label(b"moved".to_vec())]), vec![a]);
}

/// Imported keys are checked at import and get their public half (CKA_PUBLIC_KEY_INFO) from
/// the token, equal to what openssl computes; a contradicting one is refused (SECURITY KEY-07).
#[test]
fn imported_keys_carry_their_public_half() {
    if !is_keyward() {
        return;
    }
    let s = user_session(common::fresh_token());
    // EC: the public point is computed from the private value alone.
    let k = keys::openssl_ec(Nid::X9_62_PRIME256V1);
    let want = openssl::pkey::PKey::from_ec_key(k.clone())
        .unwrap()
        .public_key_to_der()
        .unwrap();
    let (pub_t, priv_t) = keys::ec_import_templates(&k, P256_OID);
    let private = s.create_object(&priv_t).unwrap();
    assert_eq!(attr_bytes(&s, private, AttributeType::PublicKeyInfo), want);
    assert!(!attr_bool(&s, private, AttributeType::Local));
    assert!(!attr_bool(&s, private, AttributeType::AlwaysSensitive));
    assert!(!attr_bool(&s, private, AttributeType::NeverExtractable));
    let public = s.create_object(&pub_t).unwrap();
    assert_eq!(attr_bytes(&s, public, AttributeType::PublicKeyInfo), want);
    // Stating the right public half is fine; another key's is a wrong value.
    let mut stated = priv_t.clone();
    stated.push(Attribute::PublicKeyInfo(want.clone()));
    s.create_object(&stated).expect("the matching public half");
    let other = keys::openssl_ec(Nid::X9_62_PRIME256V1);
    let mut wrong = priv_t.clone();
    wrong.push(Attribute::PublicKeyInfo(
        openssl::pkey::PKey::from_ec_key(other)
            .unwrap()
            .public_key_to_der()
            .unwrap(),
    ));
    assert_rv!(s.create_object(&wrong), AttributeValueInvalid);
    // A point off the curve is refused at import.
    let mut off_curve = pub_t.clone();
    off_curve.retain(|a| !matches!(a, Attribute::EcPoint(_)));
    let mut point = keys::ec_point_bytes(&k);
    point[40] ^= 1;
    off_curve.push(Attribute::EcPoint(keys::der_octet_string(&point)));
    assert_rv!(s.create_object(&off_curve), AttributeValueInvalid);

    // RSA: components that do not agree are refused.
    let r = openssl::rsa::Rsa::generate(2048).unwrap();
    let want = openssl::pkey::PKey::from_rsa(r.clone())
        .unwrap()
        .public_key_to_der()
        .unwrap();
    let (_, priv_t) = keys::rsa_import_templates(&r);
    let private = s.create_object(&priv_t).unwrap();
    assert_eq!(attr_bytes(&s, private, AttributeType::PublicKeyInfo), want);
    let mut bad = priv_t.clone();
    for a in bad.iter_mut() {
        if let Attribute::PrivateExponent(d) = a {
            let last = d.len() - 1;
            d[last] ^= 2;
        }
    }
    assert_rv!(s.create_object(&bad), AttributeValueInvalid);

    // Ed25519 and X25519 private keys (RFC 8410 OIDs) from their raw private values.
    for (id, oid, key_type) in [
        (
            openssl::pkey::Id::ED25519,
            [0x06u8, 0x03, 0x2b, 0x65, 0x70],
            KeyType::EC_EDWARDS,
        ),
        (
            openssl::pkey::Id::X25519,
            [0x06u8, 0x03, 0x2b, 0x65, 0x6e],
            KeyType::EC_MONTGOMERY,
        ),
    ] {
        let k = if id == openssl::pkey::Id::ED25519 {
            openssl::pkey::PKey::generate_ed25519().unwrap()
        } else {
            openssl::pkey::PKey::generate_x25519().unwrap()
        };
        let private = s
            .create_object(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(key_type),
                Attribute::EcParams(oid.to_vec()),
                Attribute::Value(k.raw_private_key().unwrap()),
            ])
            .unwrap();
        assert_eq!(
            attr_bytes(&s, private, AttributeType::PublicKeyInfo),
            k.public_key_to_der().unwrap(),
            "{id:?}"
        );
    }
}
