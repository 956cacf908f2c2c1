//! The `openssl` command-line tool as an independent implementation: signatures made in the
//! token verify with `openssl dgst` / `openssl pkeyutl` from the exported CKA_PUBLIC_KEY_INFO,
//! and data encrypted by `openssl pkeyutl` / `openssl enc` decrypts in the token.

mod common;
#[path = "suite/keys.rs"]
mod keys;

use std::path::{Path, PathBuf};
use std::process::Command;

use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use common::{attr_bytes, user_session};

/// A scratch directory for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = common::env().dir.join("openssl-cli").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Run `openssl` with `args`; panics with its output unless it succeeds.
fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl command is installed");
    assert!(
        out.status.success(),
        "openssl {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// Write the public key's CKA_PUBLIC_KEY_INFO (SPKI DER) to `dir/pub.der`.
fn export_public(sess: &Session, public: ObjectHandle, dir: &Path) -> PathBuf {
    let spki = attr_bytes(sess, public, AttributeType::PublicKeyInfo);
    assert!(
        !spki.is_empty(),
        "the public key has its SubjectPublicKeyInfo"
    );
    let path = dir.join("pub.der");
    std::fs::write(&path, spki).unwrap();
    path
}

fn sign_attrs() -> (Vec<Attribute>, Vec<Attribute>) {
    (
        vec![Attribute::Verify(true), Attribute::Encrypt(true)],
        vec![Attribute::Sign(true), Attribute::Decrypt(true)],
    )
}

#[test]
fn token_signatures_verify_with_openssl_dgst() {
    let sess = user_session(common::fresh_token());
    let data = b"signed by the token, checked by openssl(1)".repeat(10);
    let (mut pt, vt) = sign_attrs();
    // RSA-2048: PKCS#1 v1.5 and PSS with SHA-256.
    pt.push(Attribute::ModulusBits(2048.into()));
    pt.push(Attribute::PublicExponent(vec![1, 0, 1]));
    let (rsa_pub, rsa_priv) = sess
        .generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &pt, &vt)
        .unwrap();
    let dir = scratch("rsa");
    let pubkey = export_public(&sess, rsa_pub, &dir);
    let msg = dir.join("data");
    std::fs::write(&msg, &data).unwrap();
    let sig = dir.join("sig");
    std::fs::write(
        &sig,
        sess.sign(&Mechanism::Sha256RsaPkcs, rsa_priv, &data)
            .unwrap(),
    )
    .unwrap();
    let base = [
        "dgst",
        "-sha256",
        "-keyform",
        "DER",
        "-verify",
        s(&pubkey),
        "-signature",
        s(&sig),
    ];
    let out = openssl(&[&base[..], &[s(&msg)]].concat());
    assert!(String::from_utf8_lossy(&out).contains("Verified OK"));
    let pss = PkcsPssParams {
        hash_alg: MechanismType::SHA256,
        mgf: PkcsMgfType::MGF1_SHA256,
        s_len: 32.into(),
    };
    std::fs::write(
        &sig,
        sess.sign(&Mechanism::Sha256RsaPkcsPss(pss), rsa_priv, &data)
            .unwrap(),
    )
    .unwrap();
    let out = openssl(
        &[
            &base[..],
            &[
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:32",
                s(&msg),
            ],
        ]
        .concat(),
    );
    assert!(String::from_utf8_lossy(&out).contains("Verified OK"));
    // A changed message does not verify.
    std::fs::write(&msg, b"something else").unwrap();
    let bad = Command::new("openssl")
        .args(base)
        .args(["-sigopt", "rsa_padding_mode:pss", s(&msg)])
        .output()
        .unwrap();
    assert!(!bad.status.success(), "openssl rejects a changed message");

    // ECDSA on P-256 and P-384 (openssl takes the DER form of the token's r‖s).
    for (oid, md, name) in [
        (keys::P256_OID, "-sha256", "p256"),
        (keys::P384_OID, "-sha384", "p384"),
    ] {
        let (mut pt, vt) = sign_attrs();
        pt.retain(|a| !matches!(a, Attribute::Encrypt(_)));
        pt.push(Attribute::EcParams(oid.to_vec()));
        let vt: Vec<Attribute> = vt
            .into_iter()
            .filter(|a| !matches!(a, Attribute::Decrypt(_)))
            .collect();
        let (ec_pub, ec_priv) = sess
            .generate_key_pair(&Mechanism::EccKeyPairGen, &pt, &vt)
            .unwrap();
        let dir = scratch(name);
        let pubkey = export_public(&sess, ec_pub, &dir);
        let msg = dir.join("data");
        std::fs::write(&msg, &data).unwrap();
        let mech = if md == "-sha256" {
            Mechanism::EcdsaSha256
        } else {
            Mechanism::EcdsaSha384
        };
        let raw = sess.sign(&mech, ec_priv, &data).unwrap();
        let sig = dir.join("sig");
        std::fs::write(&sig, keys::ecdsa_raw_to_der(&raw)).unwrap();
        let out = openssl(&[
            "dgst",
            md,
            "-keyform",
            "DER",
            "-verify",
            s(&pubkey),
            "-signature",
            s(&sig),
            s(&msg),
        ]);
        assert!(
            String::from_utf8_lossy(&out).contains("Verified OK"),
            "{name}"
        );
    }
}

#[test]
fn token_ed25519_signatures_verify_with_openssl_pkeyutl() {
    if !common::is_keyward() {
        return;
    }
    let sess = user_session(common::fresh_token());
    // RFC 8410 OID of Ed25519.
    let (ed_pub, ed_priv) = sess
        .generate_key_pair(
            &Mechanism::EccEdwardsKeyPairGen,
            &[
                Attribute::Verify(true),
                Attribute::EcParams(vec![0x06, 0x03, 0x2b, 0x65, 0x70]),
            ],
            &[Attribute::Sign(true)],
        )
        .unwrap();
    let dir = scratch("ed25519");
    let pubkey = export_public(&sess, ed_pub, &dir);
    let data = b"an Ed25519 message";
    let msg = dir.join("data");
    std::fs::write(&msg, data).unwrap();
    let sig = dir.join("sig");
    std::fs::write(
        &sig,
        sess.sign(
            &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
            ed_priv,
            data,
        )
        .unwrap(),
    )
    .unwrap();
    let out = openssl(&[
        "pkeyutl",
        "-verify",
        "-pubin",
        "-keyform",
        "DER",
        "-inkey",
        s(&pubkey),
        "-rawin",
        "-in",
        s(&msg),
        "-sigfile",
        s(&sig),
    ]);
    assert!(String::from_utf8_lossy(&out).contains("Signature Verified Successfully"));
}

#[test]
fn openssl_ciphertexts_decrypt_in_the_token() {
    let sess = user_session(common::fresh_token());
    let secret = b"a session key that openssl(1) encrypted";
    let dir = scratch("decrypt");
    let msg = dir.join("msg");
    std::fs::write(&msg, secret).unwrap();

    // RSA-OAEP with SHA-256 from `openssl pkeyutl`.
    let (mut pt, vt) = sign_attrs();
    pt.push(Attribute::ModulusBits(2048.into()));
    pt.push(Attribute::PublicExponent(vec![1, 0, 1]));
    let (rsa_pub, rsa_priv) = sess
        .generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &pt, &vt)
        .unwrap();
    let pubkey = export_public(&sess, rsa_pub, &dir);
    let ct = dir.join("ct");
    openssl(&[
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-keyform",
        "DER",
        "-inkey",
        s(&pubkey),
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-pkeyopt",
        "rsa_oaep_md:sha256",
        "-pkeyopt",
        "rsa_mgf1_md:sha256",
        "-in",
        s(&msg),
        "-out",
        s(&ct),
    ]);
    let oaep = PkcsOaepParams::new(
        MechanismType::SHA256,
        PkcsMgfType::MGF1_SHA256,
        PkcsOaepSource::empty(),
    );
    let back = sess
        .decrypt(
            &Mechanism::RsaPkcsOaep(oaep),
            rsa_priv,
            &std::fs::read(&ct).unwrap(),
        )
        .unwrap();
    assert_eq!(back, secret);

    // AES-128-CBC with PKCS#7 padding from `openssl enc`, into an imported key.
    let key = [0x2bu8; 16];
    let iv = [0x07u8; 16];
    let aes = sess
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Value(key.to_vec()),
            Attribute::Decrypt(true),
        ])
        .unwrap();
    openssl(&[
        "enc",
        "-aes-128-cbc",
        "-K",
        &hex::encode(key),
        "-iv",
        &hex::encode(iv),
        "-in",
        s(&msg),
        "-out",
        s(&ct),
    ]);
    let back = sess
        .decrypt(&Mechanism::AesCbcPad(iv), aes, &std::fs::read(&ct).unwrap())
        .unwrap();
    assert_eq!(back, secret);
}
