//! CKM_RSA_PKCS decryption through the C ABI (SECURITY SIDE-01): ciphertexts made by the
//! openssl crate from the exported public key decrypt to their messages, and a ciphertext whose
//! padding is wrong gives CKR_OK with a synthetic message that is the same on every try
//! (implicit rejection), so no return code tells good padding from bad.

use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::Session;
use openssl::pkey::{PKey, Public};
use openssl::rsa::Padding;

use crate::assert_rv;
use crate::common::{self, attr_bytes, is_keyward, pkcs11, user_session};

/// A 2048-bit pair whose private half decrypts, and the public key as openssl reads it from
/// CKA_PUBLIC_KEY_INFO.
fn decryption_pair(s: &Session) -> (ObjectHandle, PKey<Public>) {
    let (public, private) = s
        .generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[
                Attribute::ModulusBits(2048u64.into()),
                Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
                Attribute::Encrypt(true),
            ],
            &[Attribute::Decrypt(true)],
        )
        .expect("RSA C_GenerateKeyPair");
    let spki = attr_bytes(s, public, AttributeType::PublicKeyInfo);
    (private, PKey::public_key_from_der(&spki).unwrap())
}

fn encrypt(public: &PKey<Public>, msg: &[u8]) -> Vec<u8> {
    let rsa = public.rsa().unwrap();
    let mut ct = vec![0u8; rsa.size() as usize];
    let n = rsa.public_encrypt(msg, &mut ct, Padding::PKCS1).unwrap();
    assert_eq!(n, 256);
    ct
}

#[test]
fn rsa_pkcs_decryption_with_implicit_rejection() {
    let slot = common::fresh_token();
    let info = pkcs11()
        .get_mechanism_info(slot, MechanismType::RSA_PKCS)
        .unwrap();
    assert!(info.decrypt() && info.encrypt(), "{info:?}");
    if is_keyward() {
        // Unwrapping is offered: a wrong length becomes a random key (keymgmt.rs tests it).
        assert!(info.unwrap() && info.wrap(), "{info:?}");
    }
    let s = user_session(slot);
    let (private, public) = decryption_pair(&s);

    for len in [0usize, 1, 32, 245] {
        let msg: Vec<u8> = (0..len).map(|i| (i * 13 + 1) as u8).collect();
        let ct = encrypt(&public, &msg);
        assert_eq!(s.decrypt(&Mechanism::RsaPkcs, private, &ct).unwrap(), msg);
        // Multi-part: the ciphertext is gathered and decrypted at C_DecryptFinal.
        s.decrypt_init(&Mechanism::RsaPkcs, private).unwrap();
        let mut out = s.decrypt_update(&ct[..100]).unwrap();
        out.extend(s.decrypt_update(&ct[100..]).unwrap());
        out.extend(s.decrypt_final().unwrap());
        assert_eq!(out, msg, "multi-part, {len} bytes");
    }

    // Garbage below the modulus (whose top bit is set): CKR_OK, the same bytes each time, and
    // other bytes for another ciphertext.
    let garbage = [vec![0x42u8; 256], vec![0x17u8; 256]];
    let first: Vec<Vec<u8>> = garbage
        .iter()
        .map(|ct| s.decrypt(&Mechanism::RsaPkcs, private, ct).unwrap())
        .collect();
    for (ct, out) in garbage.iter().zip(&first) {
        assert!(out.len() <= 245);
        assert_eq!(&s.decrypt(&Mechanism::RsaPkcs, private, ct).unwrap(), out);
    }
    assert_ne!(first[0], first[1]);

    // The faults anyone can see without the key are the only errors.
    assert_rv!(
        s.decrypt(&Mechanism::RsaPkcs, private, &[0x42u8; 255]),
        EncryptedDataLenRange
    );
    assert_rv!(
        s.decrypt(&Mechanism::RsaPkcs, private, &[0xffu8; 256]),
        EncryptedDataInvalid
    );
}
