//! RSA family tests; signatures are compared with the `openssl` crate's default-context signer
//! (PKCS#1 v1.5 is deterministic, so the bytes must be identical).

use std::sync::OnceLock;

use openssl::bn::BigNum;
use openssl::encrypt::{Decrypter, Encrypter};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey as OsslPKey, Private};
use openssl::rsa::Padding;
use openssl::rsa::Rsa;
use openssl::sign::{RsaPssSaltlen, Signer, Verifier};

use super::*;
use crate::mechanism::registry;

fn object(class: CK_OBJECT_CLASS, generated: &Attrs) -> Object {
    let mut a = generated.clone();
    a.set(CKA_CLASS, AttrValue::Ulong(class));
    Object::new(a)
}

fn gen_template(bits: CK_ULONG, e: Option<&[u8]>) -> Attrs {
    let mut t = Attrs::new();
    t.set(CKA_MODULUS_BITS, AttrValue::Ulong(bits));
    if let Some(e) = e {
        t.set(CKA_PUBLIC_EXPONENT, AttrValue::bytes(e));
    }
    t
}

fn generate(t: &Attrs) -> Result<(Attrs, Attrs)> {
    registry()
        .get(CKM_RSA_PKCS_KEY_PAIR_GEN)?
        .generate_key_pair(&Mechanism::new(CKM_RSA_PKCS_KEY_PAIR_GEN), t, &Attrs::new())
}

/// One generated pair shared by the tests (generation dominates their run time).
fn pair() -> &'static (Object, Object) {
    static PAIR: OnceLock<(Object, Object)> = OnceLock::new();
    PAIR.get_or_init(|| {
        let (p, s) = generate(&gen_template(2048, None)).unwrap();
        (object(CKO_PUBLIC_KEY, &p), object(CKO_PRIVATE_KEY, &s))
    })
}

fn reference_private(private: &Object) -> OsslPKey<Private> {
    let a = private.attrs();
    let bn = |t| BigNum::from_slice(a.get_bytes(t).unwrap()).unwrap();
    let rsa = Rsa::from_private_components(
        bn(CKA_MODULUS),
        bn(CKA_PUBLIC_EXPONENT),
        bn(CKA_PRIVATE_EXPONENT),
        bn(CKA_PRIME_1),
        bn(CKA_PRIME_2),
        bn(CKA_EXPONENT_1),
        bn(CKA_EXPONENT_2),
        bn(CKA_COEFFICIENT),
    )
    .unwrap();
    OsslPKey::from_rsa(rsa).unwrap()
}

fn sign(mech: CK_MECHANISM_TYPE, key: &Object, parts: &[&[u8]]) -> Result<Vec<u8>> {
    let mut op = registry()
        .get(mech)?
        .sign_init(&Mechanism::new(mech), key)?;
    for p in parts {
        op.update(p)?;
    }
    let sig = op.finish()?;
    assert_eq!(sig.len(), op.sig_len());
    Ok(sig.to_vec())
}

fn verify(mech: CK_MECHANISM_TYPE, key: &Object, data: &[u8], sig: &[u8]) -> Result<()> {
    registry()
        .get(mech)?
        .verify_init(&Mechanism::new(mech), key)?
        .one_shot(data, sig)
}

#[test]
fn key_pair_attributes_follow_the_conventions() {
    let (public, private) = pair();
    let pa = public.attrs();
    assert_eq!(pa.get_ulong(CKA_KEY_TYPE), Some(CKK_RSA));
    assert_eq!(pa.get_ulong(CKA_MODULUS_BITS), Some(2048));
    assert_eq!(pa.get_bytes(CKA_PUBLIC_EXPONENT), Some(&[1u8, 0, 1][..]));
    let n = pa.get_bytes(CKA_MODULUS).unwrap();
    assert_eq!(n.len(), 256);
    assert_ne!(n[0], 0);
    let spki = OsslPKey::public_key_from_der(pa.get_bytes(CKA_PUBLIC_KEY_INFO).unwrap()).unwrap();
    assert_eq!(spki.rsa().unwrap().n().to_vec(), n);

    let sa = private.attrs();
    for t in [
        CKA_PRIVATE_EXPONENT,
        CKA_PRIME_1,
        CKA_PRIME_2,
        CKA_EXPONENT_1,
        CKA_EXPONENT_2,
        CKA_COEFFICIENT,
    ] {
        let v = sa.get_bytes(t).unwrap();
        assert!(
            !v.is_empty() && v[0] != 0,
            "attribute {t:#x} has a leading zero or is empty"
        );
    }
    assert_eq!(sa.get_bytes(CKA_MODULUS), Some(n));
    assert_eq!(
        sa.get_bytes(CKA_PUBLIC_KEY_INFO),
        pa.get_bytes(CKA_PUBLIC_KEY_INFO)
    );
    assert!(
        reference_private(private)
            .rsa()
            .unwrap()
            .check_key()
            .unwrap()
    );
}

#[test]
fn sha256_rsa_pkcs_matches_the_default_context_signer() {
    let (public, private) = pair();
    let msg = b"PKCS#1 v1.5 is deterministic";
    let expected = Signer::new(MessageDigest::sha256(), &reference_private(private))
        .unwrap()
        .sign_oneshot_to_vec(msg)
        .unwrap();
    assert_eq!(
        sign(CKM_SHA256_RSA_PKCS, private, &[msg]).unwrap(),
        expected
    );
    assert_eq!(
        sign(CKM_SHA256_RSA_PKCS, private, &[&msg[..5], b"", &msg[5..]]).unwrap(),
        expected
    );
    verify(CKM_SHA256_RSA_PKCS, public, msg, &expected).unwrap();

    // CKM_RSA_PKCS over the caller's DigestInfo gives the same signature.
    let d = keyward_ossl::digest::digest(DigestAlg::Sha256, msg).unwrap();
    let di = digest_info(DigestAlg::Sha256, &d).unwrap();
    assert_eq!(sign(CKM_RSA_PKCS, private, &[&di]).unwrap(), expected);
    verify(CKM_RSA_PKCS, public, &di, &expected).unwrap();

    let mut bad = expected.clone();
    bad[17] ^= 1;
    assert_eq!(
        verify(CKM_SHA256_RSA_PKCS, public, msg, &bad)
            .unwrap_err()
            .code(),
        Code::SignatureInvalid
    );
    assert_eq!(
        verify(CKM_SHA256_RSA_PKCS, public, b"msg", &expected)
            .unwrap_err()
            .code(),
        Code::SignatureInvalid
    );
    assert_eq!(
        verify(CKM_RSA_PKCS, public, &di[1..], &expected)
            .unwrap_err()
            .code(),
        Code::SignatureInvalid
    );
    assert_eq!(
        verify(CKM_SHA256_RSA_PKCS, public, msg, &expected[..255])
            .unwrap_err()
            .code(),
        Code::SignatureLenRange
    );
}

#[test]
fn sha384_and_sha512_variants_match_too() {
    let (public, private) = pair();
    for (mech, md) in [
        (CKM_SHA384_RSA_PKCS, MessageDigest::sha384()),
        (CKM_SHA512_RSA_PKCS, MessageDigest::sha512()),
    ] {
        let expected = Signer::new(md, &reference_private(private))
            .unwrap()
            .sign_oneshot_to_vec(b"x")
            .unwrap();
        assert_eq!(sign(mech, private, &[b"x"]).unwrap(), expected);
        verify(mech, public, b"x", &expected).unwrap();
    }
}

#[test]
fn raw_input_is_limited_to_k_minus_11() {
    let (public, private) = pair();
    let sig = sign(CKM_RSA_PKCS, private, &[&[7u8; 245]]).unwrap();
    verify(CKM_RSA_PKCS, public, &[7u8; 245], &sig).unwrap();
    assert_eq!(
        sign(CKM_RSA_PKCS, private, &[&[7u8; 246]])
            .unwrap_err()
            .code(),
        Code::DataLenRange
    );
    assert_eq!(
        sign(CKM_RSA_PKCS, private, &[&[7u8; 200], &[7u8; 46]])
            .unwrap_err()
            .code(),
        Code::DataLenRange
    );
    assert_eq!(
        verify(CKM_RSA_PKCS, public, &[7u8; 246], &sig)
            .unwrap_err()
            .code(),
        Code::DataLenRange
    );
}

#[test]
fn pkcs1_decryption_and_unwrapping_are_offered() {
    let (public, private) = pair();
    let m = registry().get(CKM_RSA_PKCS).unwrap();
    // Decryption has implicit rejection; the engine's unwrap replaces a synthetic message of
    // the wrong length by a random key (engine/keys.rs), so unwrapping reveals nothing either.
    assert_eq!(
        m.info().flags,
        CKF_SIGN | CKF_VERIFY | CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP
    );
    assert_eq!(
        m.decrypt_init(&Mechanism::new(CKM_RSA_PKCS), public)
            .err()
            .unwrap()
            .code(),
        Code::KeyTypeInconsistent
    );
    assert_eq!(
        m.decrypt_init(&with(CKM_RSA_PKCS, MechParams::Bytes(vec![0])), private)
            .err()
            .unwrap()
            .code(),
        Code::MechanismParamInvalid
    );
    let g = registry().get(CKM_RSA_PKCS_KEY_PAIR_GEN).unwrap().info();
    assert_eq!(
        (g.min_key_size, g.max_key_size, g.flags),
        (2048, 8192, CKF_GENERATE_KEY_PAIR)
    );
}

#[test]
fn generation_template_errors_and_exponent() {
    assert_eq!(
        generate(&Attrs::new()).unwrap_err().code(),
        Code::TemplateIncomplete
    );
    assert_eq!(
        generate(&gen_template(1024, None)).unwrap_err().code(),
        Code::KeySizeRange
    );
    assert_eq!(
        generate(&gen_template(8193, None)).unwrap_err().code(),
        Code::KeySizeRange
    );
    for bad in [
        &[0x01, 0x00, 0x00][..],
        &[1],
        &[],
        &[1, 0, 0, 0, 0, 0, 0, 0, 1],
    ] {
        assert_eq!(
            generate(&gen_template(2048, Some(bad))).unwrap_err().code(),
            Code::AttributeValueInvalid
        );
    }
    // A caller-chosen exponent is honoured (leading zeros are not significant).
    let (p, _) = generate(&gen_template(2048, Some(&[0, 0, 0, 3]))).unwrap();
    assert_eq!(p.get_bytes(CKA_PUBLIC_EXPONENT), Some(&[3u8][..]));
}

#[test]
fn public_keys_cannot_sign_and_keys_are_parsed_once() {
    let (public, private) = pair();
    let m = registry().get(CKM_SHA256_RSA_PKCS).unwrap();
    assert_eq!(
        m.sign_init(&Mechanism::new(CKM_SHA256_RSA_PKCS), public)
            .err()
            .unwrap()
            .code(),
        Code::KeyTypeInconsistent
    );
    let a = rsa_key(private).unwrap();
    let b = rsa_key(private).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
}

#[test]
fn private_key_without_crt_values_signs_the_same() {
    let (public, private) = pair();
    let mut a = Attrs::new();
    for t in [
        CKA_CLASS,
        CKA_KEY_TYPE,
        CKA_MODULUS,
        CKA_PUBLIC_EXPONENT,
        CKA_PRIVATE_EXPONENT,
    ] {
        a.set(t, private.attrs().get(t).unwrap().clone());
    }
    validate_rsa_key(&a).unwrap();
    let bare = Object::new(a.clone());
    let sig = sign(CKM_SHA256_RSA_PKCS, &bare, &[b"no crt"]).unwrap();
    assert_eq!(
        sig,
        sign(CKM_SHA256_RSA_PKCS, private, &[b"no crt"]).unwrap()
    );
    verify(CKM_SHA256_RSA_PKCS, public, b"no crt", &sig).unwrap();
    // A private key must carry its public exponent (PKCS#11 2.40 and later).
    let mut no_e = a;
    no_e.0.remove(&CKA_PUBLIC_EXPONENT);
    assert_eq!(
        validate_rsa_key(&no_e).unwrap_err().code(),
        Code::TemplateIncomplete
    );
}

fn pss(hash: CK_MECHANISM_TYPE, mgf: CK_ULONG, salt_len: CK_ULONG) -> MechParams {
    MechParams::Pss {
        hash,
        mgf,
        salt_len,
    }
}

fn with(mech: CK_MECHANISM_TYPE, params: MechParams) -> Mechanism {
    Mechanism { mech, params }
}

fn sign_with(m: &Mechanism, key: &Object, parts: &[&[u8]]) -> Result<Vec<u8>> {
    let mut op = registry().get(m.mech)?.sign_init(m, key)?;
    for p in parts {
        op.update(p)?;
    }
    let sig = op.finish()?;
    assert_eq!(sig.len(), op.sig_len());
    Ok(sig.to_vec())
}

fn verify_with(m: &Mechanism, key: &Object, data: &[u8], sig: &[u8]) -> Result<()> {
    registry()
        .get(m.mech)?
        .verify_init(m, key)?
        .one_shot(data, sig)
}

fn sign_init_code(m: &Mechanism, key: &Object) -> Code {
    registry()
        .get(m.mech)
        .unwrap()
        .sign_init(m, key)
        .err()
        .unwrap()
        .code()
}

fn verify_init_code(m: &Mechanism, key: &Object) -> Code {
    registry()
        .get(m.mech)
        .unwrap()
        .verify_init(m, key)
        .err()
        .unwrap()
        .code()
}

fn reference_pss_verifier<'a>(
    key: &'a OsslPKey<Private>,
    md: MessageDigest,
    mgf: MessageDigest,
    salt: i32,
) -> Verifier<'a> {
    let mut v = Verifier::new(md, key).unwrap();
    v.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
    v.set_rsa_mgf1_md(mgf).unwrap();
    v.set_rsa_pss_saltlen(RsaPssSaltlen::custom(salt)).unwrap();
    v
}

#[test]
fn pss_signatures_interoperate_with_the_default_context() {
    let (public, private) = pair();
    let reference = reference_private(private);
    let msg = b"RSASSA-PSS is randomised, so it is checked, not compared";
    let m = with(
        CKM_SHA256_RSA_PKCS_PSS,
        pss(CKM_SHA256, CKG_MGF1_SHA256, 32),
    );
    // Ours, single- and multi-part, verified by the default context.
    let sig = sign_with(&m, private, &[msg]).unwrap();
    let sig2 = sign_with(&m, private, &[&msg[..7], b"", &msg[7..]]).unwrap();
    assert_ne!(sig, sig2, "a fresh salt each time");
    for s in [&sig, &sig2] {
        assert!(
            reference_pss_verifier(
                &reference,
                MessageDigest::sha256(),
                MessageDigest::sha256(),
                32
            )
            .verify_oneshot(s, msg)
            .unwrap()
        );
        verify_with(&m, public, msg, s).unwrap();
    }
    // The default context's, with a different MGF hash and salt, verified by ours, also
    // through CKM_RSA_PKCS_PSS over the digest.
    let mut signer = Signer::new(MessageDigest::sha384(), &reference).unwrap();
    signer.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
    signer.set_rsa_mgf1_md(MessageDigest::sha1()).unwrap();
    signer
        .set_rsa_pss_saltlen(RsaPssSaltlen::custom(20))
        .unwrap();
    let theirs = signer.sign_oneshot_to_vec(msg).unwrap();
    let m384 = with(CKM_SHA384_RSA_PKCS_PSS, pss(CKM_SHA384, CKG_MGF1_SHA1, 20));
    verify_with(&m384, public, msg, &theirs).unwrap();
    let digest = keyward_ossl::digest::digest(DigestAlg::Sha384, msg).unwrap();
    let raw = with(CKM_RSA_PKCS_PSS, pss(CKM_SHA384, CKG_MGF1_SHA1, 20));
    verify_with(&raw, public, &digest, &theirs).unwrap();
    // CKM_RSA_PKCS_PSS signs a caller's digest the same way.
    let ours = sign_with(&raw, private, &[&digest]).unwrap();
    assert!(
        reference_pss_verifier(
            &reference,
            MessageDigest::sha384(),
            MessageDigest::sha1(),
            20
        )
        .verify_oneshot(&ours, msg)
        .unwrap()
    );
    // Wrong salt length, message or signature: CKR_SIGNATURE_INVALID.
    let m384_salt = with(CKM_SHA384_RSA_PKCS_PSS, pss(CKM_SHA384, CKG_MGF1_SHA1, 21));
    for (mech, data, s) in [
        (&m384_salt, &msg[..], &theirs[..]),
        (&m384, b"other", &theirs),
        (&m, msg, &theirs),
    ] {
        assert_eq!(
            verify_with(mech, public, data, s).unwrap_err().code(),
            Code::SignatureInvalid
        );
    }
    assert_eq!(
        verify_with(&m384, public, msg, &theirs[1..])
            .unwrap_err()
            .code(),
        Code::SignatureLenRange
    );
    // Every hash variant signs and verifies, SHA-1 included.
    for (mech, hash, mgf) in [
        (CKM_SHA1_RSA_PKCS_PSS, CKM_SHA_1, CKG_MGF1_SHA1),
        (CKM_SHA224_RSA_PKCS_PSS, CKM_SHA224, CKG_MGF1_SHA224),
        (CKM_SHA512_RSA_PKCS_PSS, CKM_SHA512, CKG_MGF1_SHA3_256),
    ] {
        let m = with(mech, pss(hash, mgf, 0));
        let s = sign_with(&m, private, &[b"x"]).unwrap();
        verify_with(&m, public, b"x", &s).unwrap();
    }
}

#[test]
fn pss_parameters_are_checked() {
    let (public, private) = pair();
    // 2048-bit key, SHA-256: the salt may be 256 - 32 - 2 = 222 bytes, no more.
    let ok = with(
        CKM_SHA256_RSA_PKCS_PSS,
        pss(CKM_SHA256, CKG_MGF1_SHA256, 222),
    );
    let s = sign_with(&ok, private, &[b"max salt"]).unwrap();
    verify_with(&ok, public, b"max salt", &s).unwrap();
    let bad = [
        Mechanism::new(CKM_SHA256_RSA_PKCS_PSS),
        with(CKM_RSA_PKCS_PSS, MechParams::None),
        with(
            CKM_SHA256_RSA_PKCS_PSS,
            pss(CKM_SHA256, CKG_MGF1_SHA256, 223),
        ),
        with(
            CKM_SHA256_RSA_PKCS_PSS,
            pss(CKM_SHA384, CKG_MGF1_SHA256, 32),
        ),
        with(CKM_SHA256_RSA_PKCS_PSS, pss(CKM_SHA256, 0, 32)),
        with(CKM_SHA256_RSA_PKCS_PSS, pss(CKM_SHA256, 10, 32)),
        with(CKM_RSA_PKCS_PSS, pss(CKM_MD5, CKG_MGF1_SHA256, 16)),
        with(
            CKM_RSA_PKCS_PSS,
            pss(CKM_SHA256, CKG_MGF1_SHA256, CK_ULONG::MAX),
        ),
        with(
            CKM_RSA_PKCS_PSS,
            MechParams::Oaep {
                hash: CKM_SHA256,
                mgf: CKG_MGF1_SHA256,
                label: vec![],
            },
        ),
        // A mechanism without parameters given some.
        with(CKM_SHA256_RSA_PKCS, pss(CKM_SHA256, CKG_MGF1_SHA256, 32)),
        with(CKM_RSA_X_509, MechParams::Bytes(vec![1])),
    ];
    for m in &bad {
        assert_eq!(
            sign_init_code(m, private),
            Code::MechanismParamInvalid,
            "{m:?}"
        );
        assert_eq!(
            verify_init_code(m, public),
            Code::MechanismParamInvalid,
            "{m:?}"
        );
    }
}

#[test]
fn pss_over_a_digest_needs_the_hash_length() {
    let (public, private) = pair();
    let m = with(CKM_RSA_PKCS_PSS, pss(CKM_SHA256, CKG_MGF1_SHA256, 32));
    for len in [0, 20, 31] {
        assert_eq!(
            sign_with(&m, private, &[&vec![1u8; len]])
                .unwrap_err()
                .code(),
            Code::DataLenRange,
            "{len}"
        );
        assert_eq!(
            verify_with(&m, public, &vec![1u8; len], &[0u8; 256])
                .unwrap_err()
                .code(),
            Code::DataLenRange
        );
    }
    assert_eq!(
        sign_with(&m, private, &[&[1u8; 20], &[1u8; 13]])
            .unwrap_err()
            .code(),
        Code::DataLenRange
    );
    let s = sign_with(&m, private, &[&[1u8; 16], &[1u8; 16]]).unwrap();
    verify_with(&m, public, &[1u8; 32], &s).unwrap();
}

#[test]
fn sha1_and_sha3_rsa_pkcs_match_the_default_context() {
    let (public, private) = pair();
    for (mech, md) in [
        (CKM_SHA1_RSA_PKCS, MessageDigest::sha1()),
        (CKM_SHA3_224_RSA_PKCS, MessageDigest::sha3_224()),
        (CKM_SHA3_256_RSA_PKCS, MessageDigest::sha3_256()),
        (CKM_SHA3_384_RSA_PKCS, MessageDigest::sha3_384()),
        (CKM_SHA3_512_RSA_PKCS, MessageDigest::sha3_512()),
    ] {
        let theirs = Signer::new(md, &reference_private(private))
            .unwrap()
            .sign_oneshot_to_vec(b"firmware v1")
            .unwrap();
        // PKCS#1 v1.5 is deterministic: the token's signature is OpenSSL's, byte for byte.
        let ours = sign(mech, private, &[b"firm", b"ware v1"]).unwrap();
        assert_eq!(ours, theirs, "{mech:#x}");
        verify(mech, public, b"firmware v1", &theirs).unwrap();
        assert_eq!(
            verify(mech, public, b"firmware v2", &theirs)
                .unwrap_err()
                .code(),
            Code::SignatureInvalid
        );
    }
}

#[test]
fn sha3_pss_interoperates_with_the_default_context() {
    let (public, private) = pair();
    for (mech, hash, mgf, md) in [
        (
            CKM_SHA3_256_RSA_PKCS_PSS,
            CKM_SHA3_256,
            CKG_MGF1_SHA3_256,
            MessageDigest::sha3_256(),
        ),
        (
            CKM_SHA3_512_RSA_PKCS_PSS,
            CKM_SHA3_512,
            CKG_MGF1_SHA3_512,
            MessageDigest::sha3_512(),
        ),
    ] {
        let salt = md.size();
        let m = with(mech, pss(hash, mgf, salt as CK_ULONG));
        let mut op = registry()
            .get(mech)
            .unwrap()
            .sign_init(&m, private)
            .unwrap();
        let sig = op.one_shot(b"pss over sha3").unwrap();
        let reference = reference_private(private);
        let mut v = Verifier::new(md, &reference).unwrap();
        v.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
        v.set_rsa_mgf1_md(md).unwrap();
        v.set_rsa_pss_saltlen(RsaPssSaltlen::custom(salt as i32))
            .unwrap();
        assert!(
            v.verify_oneshot(&sig, b"pss over sha3").unwrap(),
            "{mech:#x}"
        );
        let mut vop = registry()
            .get(mech)
            .unwrap()
            .verify_init(&m, public)
            .unwrap();
        vop.one_shot(b"pss over sha3", &sig).unwrap();
    }
}

#[test]
fn x509_is_raw_rsa_on_the_left_padded_input() {
    let (public, private) = pair();
    let rsa = reference_private(private).rsa().unwrap();
    let data = b"raw block";
    let sig = sign(CKM_RSA_X_509, private, &[&data[..3], &data[3..]]).unwrap();
    let mut block = vec![0u8; 256];
    block[256 - data.len()..].copy_from_slice(data);
    let mut expected = vec![0u8; 256];
    rsa.private_encrypt(&block, &mut expected, Padding::NONE)
        .unwrap();
    assert_eq!(sig, expected);
    // Leading zeros are not significant: the padded block verifies the same signature.
    verify(CKM_RSA_X_509, public, data, &sig).unwrap();
    verify(CKM_RSA_X_509, public, &block, &sig).unwrap();
    assert_eq!(
        verify(CKM_RSA_X_509, public, b"raw blocK", &sig)
            .unwrap_err()
            .code(),
        Code::SignatureInvalid
    );
    assert_eq!(
        verify(CKM_RSA_X_509, public, data, &[0xff; 256])
            .unwrap_err()
            .code(),
        Code::SignatureInvalid
    );
    let n = rsa.n().to_vec();
    assert_eq!(
        sign(CKM_RSA_X_509, private, &[&n]).unwrap_err().code(),
        Code::DataInvalid
    );
    assert_eq!(
        sign(CKM_RSA_X_509, private, &[&[0xff; 256]])
            .unwrap_err()
            .code(),
        Code::DataInvalid
    );
    assert_eq!(
        sign(CKM_RSA_X_509, private, &[&[0u8; 200], &[0u8; 57]])
            .unwrap_err()
            .code(),
        Code::DataLenRange
    );
    assert_eq!(
        verify(CKM_RSA_X_509, public, &[0u8; 257], &sig)
            .unwrap_err()
            .code(),
        Code::DataLenRange
    );
    let info = registry().get(CKM_RSA_X_509).unwrap().info();
    assert_eq!(info.flags, CKF_SIGN | CKF_VERIFY);
}

fn oaep(hash: CK_MECHANISM_TYPE, mgf: CK_ULONG, label: &[u8]) -> Mechanism {
    with(
        CKM_RSA_PKCS_OAEP,
        MechParams::Oaep {
            hash,
            mgf,
            label: label.to_vec(),
        },
    )
}

fn encrypt_with(m: &Mechanism, key: &Object, parts: &[&[u8]]) -> Result<Vec<u8>> {
    let mut op = registry().get(m.mech)?.encrypt_init(m, key)?;
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(&op.update(p)?);
    }
    let last = op.finish()?;
    assert!(last.len() <= op.output_len(0, true));
    out.extend_from_slice(&last);
    Ok(out)
}

fn decrypt_with(m: &Mechanism, key: &Object, ct: &[u8]) -> Result<Vec<u8>> {
    let mut op = registry().get(m.mech)?.decrypt_init(m, key)?;
    let pt = op.one_shot(ct)?;
    Ok(pt.to_vec())
}

#[test]
fn oaep_interoperates_with_the_default_context() {
    let (public, private) = pair();
    let reference = reference_private(private);
    for (hash, mgf, md, mgf_md, label) in [
        (
            CKM_SHA256,
            CKG_MGF1_SHA256,
            MessageDigest::sha256(),
            MessageDigest::sha256(),
            &b""[..],
        ),
        (
            CKM_SHA_1,
            CKG_MGF1_SHA1,
            MessageDigest::sha1(),
            MessageDigest::sha1(),
            &b"context"[..],
        ),
        (
            CKM_SHA512,
            CKG_MGF1_SHA256,
            MessageDigest::sha512(),
            MessageDigest::sha256(),
            &b"mixed"[..],
        ),
    ] {
        let m = oaep(hash, mgf, label);
        let max = 256 - 2 * md.size() - 2;
        let msg = vec![0x3cu8; max];
        let ct = encrypt_with(&m, public, &[&msg[..10], &msg[10..]]).unwrap();
        assert_eq!(ct.len(), 256);
        let mut dec = Decrypter::new(&reference).unwrap();
        dec.set_rsa_padding(Padding::PKCS1_OAEP).unwrap();
        dec.set_rsa_oaep_md(md).unwrap();
        dec.set_rsa_mgf1_md(mgf_md).unwrap();
        if !label.is_empty() {
            dec.set_rsa_oaep_label(label).unwrap();
        }
        let mut out = vec![0u8; dec.decrypt_len(&ct).unwrap()];
        let n = dec.decrypt(&ct, &mut out).unwrap();
        assert_eq!(&out[..n], &msg[..]);
        assert_eq!(decrypt_with(&m, private, &ct).unwrap(), msg);
        assert_eq!(
            encrypt_with(&m, public, &[&msg, b"!"]).unwrap_err().code(),
            Code::DataLenRange
        );

        let mut enc = Encrypter::new(&reference).unwrap();
        enc.set_rsa_padding(Padding::PKCS1_OAEP).unwrap();
        enc.set_rsa_oaep_md(md).unwrap();
        enc.set_rsa_mgf1_md(mgf_md).unwrap();
        if !label.is_empty() {
            enc.set_rsa_oaep_label(label).unwrap();
        }
        let mut theirs = vec![0u8; enc.encrypt_len(b"key material").unwrap()];
        let n = enc.encrypt(b"key material", &mut theirs).unwrap();
        theirs.truncate(n);
        assert_eq!(decrypt_with(&m, private, &theirs).unwrap(), b"key material");
    }
}

#[test]
fn oaep_decryption_failures_are_one_code() {
    let (public, private) = pair();
    let m = oaep(CKM_SHA256, CKG_MGF1_SHA256, b"label");
    let ct = encrypt_with(&m, public, &[b"secret"]).unwrap();
    let mut flipped = ct.clone();
    flipped[0] ^= 0x01;
    let mut tail = ct.clone();
    tail[255] ^= 0x80;
    let invalid: [(&Mechanism, &[u8]); 6] = [
        (&m, &flipped),
        (&m, &tail),
        (&m, &[0xff; 256]),
        (&m, &[0; 256]),
        (&oaep(CKM_SHA256, CKG_MGF1_SHA256, b"other"), &ct),
        (&oaep(CKM_SHA256, CKG_MGF1_SHA1, b"label"), &ct),
    ];
    for (mech, c) in invalid {
        assert_eq!(
            decrypt_with(mech, private, c).unwrap_err().code(),
            Code::EncryptedDataInvalid
        );
    }
    for c in [&ct[..255], &[&ct[..], &[0]].concat(), &[]] {
        assert_eq!(
            decrypt_with(&m, private, c).unwrap_err().code(),
            Code::EncryptedDataLenRange
        );
    }
    assert_eq!(decrypt_with(&m, private, &ct).unwrap(), b"secret");
}

#[test]
fn oaep_parameters_are_checked() {
    let (public, private) = pair();
    let bad = [
        Mechanism::new(CKM_RSA_PKCS_OAEP),
        oaep(CKM_MD5, CKG_MGF1_SHA256, b""),
        oaep(CKM_SHA512_224, CKG_MGF1_SHA256, b""),
        oaep(CKM_SHA256, 0, b""),
        oaep(CKM_SHA256, CKM_SHA256, b""),
        with(CKM_RSA_PKCS_OAEP, pss(CKM_SHA256, CKG_MGF1_SHA256, 32)),
    ];
    let r = registry().get(CKM_RSA_PKCS_OAEP).unwrap();
    for m in &bad {
        assert_eq!(
            r.encrypt_init(m, public).err().unwrap().code(),
            Code::MechanismParamInvalid,
            "{m:?}"
        );
        assert_eq!(
            r.decrypt_init(m, private).err().unwrap().code(),
            Code::MechanismParamInvalid,
            "{m:?}"
        );
    }
    let good = oaep(CKM_SHA256, CKG_MGF1_SHA256, b"");
    assert_eq!(
        r.decrypt_init(&good, public).err().unwrap().code(),
        Code::KeyTypeInconsistent
    );
    assert_eq!(
        r.sign_init(&good, private).err().unwrap().code(),
        Code::MechanismInvalid
    );
    let info = r.info();
    assert_eq!(
        (info.min_key_size, info.max_key_size, info.flags),
        (
            2048,
            16384,
            CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP
        )
    );
}

#[test]
fn rsa_pkcs_encryption_is_offered_and_decryptable_elsewhere() {
    let (public, private) = pair();
    let m = Mechanism::new(CKM_RSA_PKCS);
    let ct = encrypt_with(&m, public, &[&[0x42u8; 245]]).unwrap();
    let mut out = vec![0u8; 256];
    let n = reference_private(private)
        .rsa()
        .unwrap()
        .private_decrypt(&ct, &mut out, Padding::PKCS1)
        .unwrap();
    assert_eq!(&out[..n], &[0x42u8; 245][..]);
    assert_eq!(
        encrypt_with(&m, public, &[&[0x42u8; 246]])
            .unwrap_err()
            .code(),
        Code::DataLenRange
    );
    assert_eq!(
        registry()
            .get(CKM_RSA_PKCS)
            .unwrap()
            .encrypt_init(&with(CKM_RSA_PKCS, MechParams::Bytes(vec![0])), public)
            .err()
            .unwrap()
            .code(),
        Code::MechanismParamInvalid
    );
}

/// A 1024-bit key made by the `openssl` crate, as the token would import it.
fn small_pair() -> &'static (Object, Object, OsslPKey<Private>) {
    static PAIR: OnceLock<(Object, Object, OsslPKey<Private>)> = OnceLock::new();
    PAIR.get_or_init(|| {
        let rsa = Rsa::generate(1024).unwrap();
        let mut public = Attrs::new();
        public.set(CKA_CLASS, AttrValue::Ulong(CKO_PUBLIC_KEY));
        public.set(CKA_KEY_TYPE, AttrValue::Ulong(CKK_RSA));
        public.set(CKA_MODULUS, AttrValue::bytes(rsa.n().to_vec()));
        public.set(CKA_PUBLIC_EXPONENT, AttrValue::bytes(rsa.e().to_vec()));
        let mut private = public.clone();
        private.set(CKA_CLASS, AttrValue::Ulong(CKO_PRIVATE_KEY));
        private.set(CKA_PRIVATE_EXPONENT, AttrValue::bytes(rsa.d().to_vec()));
        validate_rsa_key(&public).unwrap();
        validate_rsa_key(&private).unwrap();
        (
            Object::new(public),
            Object::new(private),
            OsslPKey::from_rsa(rsa).unwrap(),
        )
    })
}

#[test]
fn keys_under_2048_bits_only_verify() {
    let (public, private, reference) = small_pair();
    let old = Signer::new(MessageDigest::sha256(), reference)
        .unwrap()
        .sign_oneshot_to_vec(b"legacy")
        .unwrap();
    verify(CKM_SHA256_RSA_PKCS, public, b"legacy", &old).unwrap();
    let mut v = Signer::new(MessageDigest::sha1(), reference).unwrap();
    v.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
    v.set_rsa_pss_saltlen(RsaPssSaltlen::custom(20)).unwrap();
    let old_pss = v.sign_oneshot_to_vec(b"legacy").unwrap();
    verify_with(
        &with(CKM_SHA1_RSA_PKCS_PSS, pss(CKM_SHA_1, CKG_MGF1_SHA1, 20)),
        public,
        b"legacy",
        &old_pss,
    )
    .unwrap();
    assert_eq!(
        sign_init_code(&Mechanism::new(CKM_SHA256_RSA_PKCS), private),
        Code::KeySizeRange
    );
    let r = registry().get(CKM_RSA_PKCS_OAEP).unwrap();
    let m = oaep(CKM_SHA256, CKG_MGF1_SHA256, b"");
    assert_eq!(
        r.encrypt_init(&m, public).err().unwrap().code(),
        Code::KeySizeRange
    );
    assert_eq!(
        r.decrypt_init(&m, private).err().unwrap().code(),
        Code::KeySizeRange
    );
    let pkcs = registry().get(CKM_RSA_PKCS).unwrap();
    assert_eq!(
        pkcs.encrypt_init(&Mechanism::new(CKM_RSA_PKCS), public)
            .err()
            .unwrap()
            .code(),
        Code::KeySizeRange
    );
    assert_eq!(
        pkcs.decrypt_init(&Mechanism::new(CKM_RSA_PKCS), private)
            .err()
            .unwrap()
            .code(),
        Code::KeySizeRange
    );
    let info = registry().get(CKM_SHA256_RSA_PKCS_PSS).unwrap().info();
    assert_eq!(
        (info.min_key_size, info.max_key_size, info.flags),
        (1024, 16384, CKF_SIGN | CKF_VERIFY)
    );
    // Below 1024 bits a key is not even imported.
    let tiny = Rsa::generate(512).unwrap();
    let mut a = Attrs::new();
    a.set(CKA_CLASS, AttrValue::Ulong(CKO_PUBLIC_KEY));
    a.set(CKA_MODULUS, AttrValue::bytes(tiny.n().to_vec()));
    a.set(CKA_PUBLIC_EXPONENT, AttrValue::bytes(tiny.e().to_vec()));
    assert_eq!(validate_rsa_key(&a).unwrap_err().code(), Code::KeySizeRange);
}

#[test]
fn every_new_mechanism_is_registered_with_its_operations() {
    for (m, flags) in [
        (CKM_RSA_PKCS_PSS, CKF_SIGN | CKF_VERIFY),
        (CKM_SHA1_RSA_PKCS_PSS, CKF_SIGN | CKF_VERIFY),
        (CKM_SHA224_RSA_PKCS_PSS, CKF_SIGN | CKF_VERIFY),
        (CKM_SHA256_RSA_PKCS_PSS, CKF_SIGN | CKF_VERIFY),
        (CKM_SHA384_RSA_PKCS_PSS, CKF_SIGN | CKF_VERIFY),
        (CKM_SHA512_RSA_PKCS_PSS, CKF_SIGN | CKF_VERIFY),
        (CKM_SHA224_RSA_PKCS, CKF_SIGN | CKF_VERIFY),
        (CKM_SHA1_RSA_PKCS, CKF_SIGN | CKF_VERIFY),
        (CKM_SHA3_256_RSA_PKCS, CKF_SIGN | CKF_VERIFY),
        (CKM_SHA3_384_RSA_PKCS_PSS, CKF_SIGN | CKF_VERIFY),
        (CKM_RSA_X_509, CKF_SIGN | CKF_VERIFY),
        (
            CKM_RSA_PKCS_OAEP,
            CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP,
        ),
        (
            CKM_RSA_PKCS,
            CKF_SIGN | CKF_VERIFY | CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP,
        ),
    ] {
        assert_eq!(registry().get(m).unwrap().info().flags, flags, "{m:#x}");
        assert_eq!(registry().get(m).unwrap().key_types(), &[CKK_RSA]);
    }
}

// CKM_RSA_PKCS decryption with implicit rejection.

fn pkcs1() -> Mechanism {
    Mechanism::new(CKM_RSA_PKCS)
}

fn pkcs1_decrypt_parts(key: &Object, parts: &[&[u8]]) -> Result<Vec<u8>> {
    let mut op = registry().get(CKM_RSA_PKCS)?.decrypt_init(&pkcs1(), key)?;
    let mut out = Vec::new();
    for p in parts {
        let part = op.update(p)?;
        assert!(part.len() <= op.output_len(p.len(), false));
        out.extend_from_slice(&part);
    }
    let last = op.finish()?;
    assert!(last.len() <= op.output_len(0, true));
    out.extend_from_slice(&last);
    Ok(out)
}

/// `em` (k bytes, below the modulus) raised to e: a ciphertext that decrypts to exactly `em`.
fn raw_encrypt(private: &Object, em: &[u8]) -> Vec<u8> {
    let rsa = reference_private(private).rsa().unwrap();
    let mut out = vec![0u8; rsa.size() as usize];
    let n = rsa.public_encrypt(em, &mut out, Padding::NONE).unwrap();
    assert_eq!(n, out.len());
    out
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let k = OsslPKey::hmac(key).unwrap();
    let mut s = Signer::new(MessageDigest::sha256(), &k).unwrap();
    for p in parts {
        s.update(p).unwrap();
    }
    s.sign_to_vec().unwrap()
}

/// The draft's PRF, written out plainly over the default context's HMAC.
fn reference_prf(kdk: &[u8], label: &[u8], len: usize) -> Vec<u8> {
    let bits = u16::try_from(len * 8).unwrap().to_be_bytes();
    let mut out = Vec::new();
    let mut i = 0u16;
    while out.len() < len {
        out.extend(hmac_sha256(kdk, &[&i.to_be_bytes(), label, &bits]));
        i += 1;
    }
    out.truncate(len);
    out
}

/// The synthetic message the draft defines for `ct` under `private`.
fn reference_synthetic(private: &Object, ct: &[u8]) -> Vec<u8> {
    let k = ct.len();
    let d = private.attrs().get_bytes(CKA_PRIVATE_EXPONENT).unwrap();
    let mut d_padded = vec![0u8; k - d.len()];
    d_padded.extend_from_slice(d);
    let kdk = hmac_sha256(&openssl::sha::sha256(&d_padded), &[ct]);
    let max = k - 10;
    let mask = (1usize << (usize::BITS - max.leading_zeros())) - 1;
    let len = reference_prf(&kdk, b"length", 256)
        .chunks(2)
        .map(|c| usize::from(u16::from_be_bytes([c[0], c[1]])) & mask)
        .rfind(|&c| c < max)
        .unwrap_or(0);
    reference_prf(&kdk, b"message", k)[k - len..].to_vec()
}

#[test]
fn pkcs1_decryption_reads_the_default_context_encryption() {
    let (public, private) = pair();
    let reference = reference_private(private);
    for len in [0usize, 1, 16, 48, 245] {
        let msg: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
        let mut enc = Encrypter::new(&reference).unwrap();
        enc.set_rsa_padding(Padding::PKCS1).unwrap();
        let mut ct = vec![0u8; enc.encrypt_len(&msg).unwrap()];
        let n = enc.encrypt(&msg, &mut ct).unwrap();
        ct.truncate(n);
        assert_eq!(decrypt_with(&pkcs1(), private, &ct).unwrap(), msg, "{len}");
        // Multi-part input is gathered into the one block.
        assert_eq!(
            pkcs1_decrypt_parts(private, &[&ct[..1], &ct[1..100], &ct[100..]]).unwrap(),
            msg
        );
        // And the token's own encryption comes back.
        let ours = encrypt_with(&pkcs1(), public, &[&msg]).unwrap();
        assert_eq!(decrypt_with(&pkcs1(), private, &ours).unwrap(), msg);
    }
}

#[test]
fn pkcs1_decryption_faults_anyone_can_see_are_errors() {
    let (_, private) = pair();
    let n = private.attrs().get_bytes(CKA_MODULUS).unwrap().to_vec();
    assert_eq!(n.len(), 256);
    let long = [&n[..], &[0][..]].concat();
    for ct in [&n[..255], &long[..], &[]] {
        assert_eq!(
            decrypt_with(&pkcs1(), private, ct).unwrap_err().code(),
            Code::EncryptedDataLenRange
        );
    }
    assert_eq!(
        pkcs1_decrypt_parts(private, &[&n[..200], &n[..57]])
            .unwrap_err()
            .code(),
        Code::EncryptedDataLenRange
    );
    assert_eq!(
        pkcs1_decrypt_parts(private, &[&n[..200]])
            .unwrap_err()
            .code(),
        Code::EncryptedDataLenRange
    );
    for ct in [n.clone(), vec![0xff; 256]] {
        assert_eq!(
            decrypt_with(&pkcs1(), private, &ct).unwrap_err().code(),
            Code::EncryptedDataInvalid
        );
    }
}

#[test]
fn bad_padding_decrypts_to_a_fixed_synthetic_message() {
    let (_, private) = pair();
    let mut outputs = Vec::new();
    for ct in [vec![0x01u8; 256], vec![0x02u8; 256], vec![0u8; 256], {
        let mut v = vec![0x5au8; 256];
        v[0] = 0x10;
        v
    }] {
        let out = decrypt_with(&pkcs1(), private, &ct).unwrap();
        assert_eq!(out, reference_synthetic(private, &ct));
        assert!(out.len() <= 245);
        // Again, and with the key parsed afresh: the output is a function of key and
        // ciphertext alone.
        assert_eq!(decrypt_with(&pkcs1(), private, &ct).unwrap(), out);
        let fresh = Object::new(private.attrs().clone());
        assert_eq!(decrypt_with(&pkcs1(), &fresh, &ct).unwrap(), out);
        outputs.push(out);
    }
    for (i, a) in outputs.iter().enumerate() {
        for b in &outputs[i + 1..] {
            assert_ne!(a, b);
        }
    }
}

/// A block of 256 bytes: `head`, nonzero filler, `tail`.
fn em_block(head: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut b = head.to_vec();
    b.extend((0..256 - head.len() - tail.len()).map(|i| 0x21 + (i % 150) as u8));
    b.extend_from_slice(tail);
    b
}

#[test]
fn every_padding_check_falls_back_to_the_synthetic_message() {
    let (_, private) = pair();
    let msg = b"the real message";
    let tail = [&[0u8][..], msg].concat();
    let zero_in_ps = |at: usize| {
        let mut b = em_block(&[0, 2], &tail);
        b[2 + at] = 0;
        b
    };
    let mut bad = vec![
        ("first byte not 0", em_block(&[1, 2], &tail)),
        ("second byte 1", em_block(&[0, 1], &tail)),
        ("second byte 3", em_block(&[0, 3], &tail)),
        ("no separator", em_block(&[0, 2], &[])),
        ("all zero", vec![0; 256]),
    ];
    for at in 0..8 {
        bad.push(("zero within the first 8 bytes of PS", zero_in_ps(at)));
    }
    for (what, em) in &bad {
        let ct = raw_encrypt(private, em);
        let out = decrypt_with(&pkcs1(), private, &ct).unwrap();
        assert_eq!(out, reference_synthetic(private, &ct), "{what}");
        assert_ne!(&out[..], &msg[..], "{what}");
    }
    // The edges that are valid: PS of exactly 8 bytes, and an empty message (the draft's
    // "valid empty" vector: 00 02 PS 00 with nothing after it).
    let ps8 = zero_in_ps(8);
    let good = [
        ("valid", em_block(&[0, 2], &tail), msg.to_vec()),
        ("PS of exactly 8 bytes", ps8.clone(), ps8[11..].to_vec()),
        ("empty message", em_block(&[0, 2], &[0]), Vec::new()),
    ];
    for (what, em, expected) in &good {
        let ct = raw_encrypt(private, em);
        assert_eq!(
            &decrypt_with(&pkcs1(), private, &ct).unwrap(),
            expected,
            "{what}"
        );
    }
}

/// draft-irtf-cfrg-rsa-guidance appendix B.1: the 2048-bit test key.
const DRAFT_K2048: &str = "-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDIzIOXFAmNpWyq
I2QPk9yJl8FjcpaPwbDG31ETwclOiyHkitIpfmVBkBG05tj15zsbeLJXQAMh0e9r
YC1OyM6NFByUkF60rTBmOaSSBlNLbn8mB0I+l9/9EzyI1yE5ne+8fpbM3L1/Oq4f
6JJxK/tJKYF9URZmRAofrLeiCPXqFlkQrdij8tSXICNgzLYyAk8NBxacGRjzFveU
sUOu9U7IdSKkwCl4+WiZgL/79knDB+gYGb/4hAljjUi9lL4VK1n/ZJ+gvWKdD/oY
E8Or9LVr08LqVGXf+hRYkpKp2KJK0mvn7gUQdBtjgtQ8g9W/pApGYT0GK+RFUX28
rwy04adpAgMBAAECggEAFFUBDg8tWHZjpmam/xzNu/Dt2BAGRtAqAjkikImSxK05
5VZZKXJu9lCMOnEVjvC2/3UdOdB1gLstLwYyEEQtBgP/UNu9ezX+LJuxmkehr4Wk
wkkB4CyotYt5GbIO3zKqz79RrbS8S2G5t+loyqTVcPcO8Y2AYyKIk+R9Q578p5Ml
m88s0Qij2GiM3weOeseZlp8jOdLB9SK5aWhGKakzuq7CaBYl6rhPTlb0RH6diPua
GZz3ECPg4lexREGzPITTvGfKgDHSYSYYEDp6CkCEQmL3XYiQzWFuUfkDVIj9bgmd
6P9tZaT/EYJUgHyfWNL7uouhUdyMaL40nJd6IE4EwQKBgQD49a1rqCiTG+pFm4o/
bcBB0jSCQJwlcelj8x90hgKiVjcbOIPtRZ7PlwUmRZ7dFuBVIvWkXZR1Gy7C2vJy
x/iBalLADRgIAXFjTaiZ15cyIvUbk3YwVIaWqffYwkpZSXwe/NRVz7l+6G0rbTSX
KzMv2jA/BJmbTra1zAuzPndh3QKBgQDOei47SakLljMKEtxoK9+9+66N1twDthR6
771XV0Pw9tpNhiNQYbca/ZytLTQCXlashrD3dD6zXhrLyiN4lUJEZbcG7SIXXlcY
yMcLZwPqj2tRD5Rb5I5aNrs8PJFzK1id/AXXLYCQMZRFK9ohNIZH7HKUPxGoRuYv
rr6OtTaw/QKBgHb+FfGK4jnN8d9rRFykvGu5aNeIwhkzpPXc0oADPWcSBizAim3y
BMH70L5GMHRD5t1KZFY3VCnU4DjKJW+vHJvekcaxe3b4GZX5HEjLvrx78ONJTAg1
nk6M1qWH17ltYiH9fg+1xVdfCC7ld2l5gHGyu7SjIjgVG0cxS7ZUeQMRAoGBAJmI
SLBVSZoQCcvH0pSzax/98gIObnNkBT6U3hoADck0BYf34nJ29ozfYI11O2M3ewO2
9AhNLAJ8SziWCmIzup7Zc4t28Q6nW+RWB4v3AfZ8xrPz/cGG5kM2x2s3LoCRDsgL
CtzCPQL7muEEhqKCSAdbTqflbd/POILkUVYUcaKRAoGAZDv3RkKffYNmegZTAhNH
77/AXmNR+CGp3rtg4OzN5QBa2ensMeVY9+ksKTKOdFadfO98dMq8KzVe1AGhoJFL
Tjy7BkhOWBlgURae0UyqLvpuoETgVNJhRMwWKcVQEFWKBOEz9Et8JE2sJb+RPFe4
kO5J9UglnNY0BP72hZ3Pl1o=
-----END PRIVATE KEY-----
";

/// Appendix B.1 (what, ciphertext, expected output).
const DRAFT_B1: &[(&str, &str, &str)] = &[
    (
        "valid",
        "8bfe264e85d3bdeaa6b8851b8e3b956ee3d226fd3f69063a86880173a273d9f283b2eebdd1ed35f7e02d91c571981b6737d5320bd8396b0f3ad5b019daec1b0aab3cbbc026395f4fd14f13673f2dfc81f9b660ec26ac381e6db3299b4e460b43fab9955df2b3cfaa20e900e19c856238fd371899c2bf2ce8c868b76754e5db3b036533fd603746be13c10d4e3e6022ebc905d20c2a7f32b215a4cd53b3f44ca1c327d2c2b651145821c08396c89071f665349c25e44d2733cd9305985ceef6430c3cf57af5fa224089221218fa34737c79c446d28a94c41c96e4e92ac53fbcf384dea8419ea089f8784445a492c812eb0d409467f75afd7d4d1078886205a066",
        "6c6f72656d20697073756d20646f6c6f722073697420616d6574",
    ),
    (
        "valid empty",
        "443ad9c5f00a1f4e9601717d274aacc93a824cb4d99b3c6a42e2b017e52e018443bd77d34a80703cd9b6acf523cd3b2cd1fea31940a68fba828836f1c3ed2fef071e95e0922ff0f47d0e81dacc13ecdeda3db6476f41e5b3f9ccfcfdf91558007b68ffbbe5e93bb088f1e4f0bb39bc7d8600b38930ecd00a341d8cc76955837efff0f0797c4b46fb1b375bba49bcdc877f39aaadb045c56b836072383eec6627ae280ad4f9a45d6e5b4cc7cf61d42b194ff0b9c9167c621e5380d8333e3b7f20c8d564c9ec6c2805f77c0146adea2f688a943b67ce8889f4a6353e6396d551c36a6dbf19359a825d14b69ccc4fd747cf14a1ca8578d7f0a67dc14b37f5e17ca3",
        "",
    ),
    (
        "valid, ciphertext starting with a zero byte",
        "00a2e8f114ea8d05d12dc843e3cc3b2edc8229ff2a028bda29ba9d55e3cd02911902fef1f42a075bf05e8016e8567213d6f260fa49e360779dd81aeea3e04c2cb567e0d72b98bf754014561b7511e083d20e0bfb9cd23f8a0d3c88900c49d2fcd5843ff0765607b2026f28202a87aa94678aed22a0c20724541394cd8f44e373eba1d2bae98f516c1e2ba3d86852d064f856b1daf24795e767a2b90396e50743e3150664afab131fe40ea405dcf572dd1079af1d3f0392ccadcca0a12740dbb213b925ca2a06b1bc1383e83a658c82ba2e7427342379084d5f66b544579f07664cb26edd4f10fd913fdbc0de05ef887d4d1ec1ac95652397ea7fd4e4759fda8b",
        "6c6f72656d20697073756d",
    ),
    (
        "invalid, synthetic message of length zero",
        "20aaa8adbbc593a924ba1c5c7990b5c2242ae4b99d0fe636a19a4cf754edbcee774e472fe028160ed42634f8864900cb514006da642cae6ae8c7d087caebcfa6dad1551301e130344989a1d462d4164505f6393933450c67bc6d39d8f5160907cabc251b737925a1cf21e5c6aa5781b7769f6a2a583d97cce008c0f8b6add5f0b2bd80bee60237aa39bb20719fe75749f4bc4e42466ef5a861ae3a92395c7d858d430bfe38040f445ea93fa2958b503539800ffa5ce5f8cf51fa8171a91f36cb4f4575e8de6b4d3f096ee140b938fd2f50ee13f0d050222e2a72b0a3069ff3a6738e82c87090caa5aed4fcbe882c49646aa250b98f12f83c8d528113614a29e7",
        "",
    ),
    (
        "invalid, synthetic message of the largest length",
        "48cceab10f39a4db32f60074feea473cbcdb7accf92e150417f76b44756b190e843e79ec12aa85083a21f5437e7bad0a60482e601198f9d86923239c8786ee728285afd0937f7dde12717f28389843d7375912b07b991f4fdb0190fced8ba665314367e8c5f9d2981d0f5128feeb46cb50fc237e64438a86df198dd0209364ae3a842d77532b66b7ef263b83b1541ed671b120dfd660462e2107a4ee7b964e734a7bd68d90dda61770658a3c242948532da32648687e0318286473f675b412d6468f013f14d760a358dfcad3cda2afeec5e268a37d250c37f722f468a70dfd92d7294c3c1ee1e7f8843b7d16f9f37ef35748c3ae93aa155cdcdfeb4e78567303",
        "22d850137b9eebe092b24f602dc5bb7918c16bd89ddbf20467b119d205f9c2e4bd7d2592cf1e532106e0f33557565923c73a02d4f09c0c22bea89148183e60317f7028b3aa1f261f91c979393101d7e15f4067e63979b32751658ef769610fe97cf9cef3278b3117d384051c3b1d82c251c2305418c8f6840530e631aad63e70e20e025bcd8efb54c92ec6d3b106a2f8e64eeff7d38495b0fc50c97138af4b1c0a67a1c4e27b077b8439332edfa8608dfeae653cd6a628ac550395f7e74390e42c11682234870925eeaa1fa71b76cf1f2ee3bda69f6717033ff8b7c95c9799e7a3bea5e7e4a1c359772fb6b1c6e6c516661dfe30c3",
    ),
    (
        "invalid, ciphertext starting with a zero byte",
        "006f89db685c0a132700c6a17f88a37a6635d0ab89de4c45dc09736c891ca5bf3401ce34c6e5d51e94ed2f518857ddc12d9f9f9e68e01cdc30d86ae5dd83988c0c46a8e39daa1b328a23def551d67fa1964fb15242c83ddd7dd5b1aec720a391d0b86cb16cf4d3c466850c3df88a3ed85993900d1287a0c90c4b04d34ba29e59967661f3f10e0c998f64e14e777e8e81371eca5318b4e0b53414292130c821477c51e2bff844836ab10dff293d82e4f40d345968ef268c92ed0bc238f31d50f4d3f759c23964923e135d15527556410fbd2c451d6a2aa852dc88b01139c6fdd826736d8cd3780601b2977b09c080bd8c0fa471606ad59f053ad33d9eeb905f20",
        "2b5dd72df3cae37f1aef",
    ),
    (
        "invalid, length from the second-to-last candidate",
        "1439e08c3f84c1a7fec74ce07614b20e01f6fa4e8c2a6cffdc3520d8889e5d9a950c6425798f85d4be38d300ea5695f13ecd4cb389d1ff5b82484b494d6280ab7fa78e645933981cb934cce8bfcd114cc0e6811eefa47aae20af638a1cd163d2d3366186d0a07df0c81f6c9f3171cf3561472e98a6006bf75ddb457bed036dcce199369de7d94ef2c68e8467ee0604eea2b3009479162a7891ba5c40cab17f49e1c438cb6eaea4f76ce23cce0e483ff0e96fa790ea15be67671814342d0a23f4a20262b6182e72f3a67cd289711503c85516a9ed225422f98b116f1ab080a80abd6f0216df88d8cfd67c139243be8dd78502a7aaf6bc99d7da71bcdf627e7354",
        "0f9b",
    ),
    (
        "invalid first byte of the padding",
        "9b2ec9c0c917c98f1ad3d0119aec6be51ae3106e9af1914d48600ab6a2c0c0c8ae02a2dc3039906ff3aac904af32ec798fd65f3ad1afa2e69400e7c1de81f5728f3b3291f38263bc7a90a0563e43ce7a0d4ee9c0d8a716621ca5d3d081188769ce1b131af7d35b13dea99153579c86db31fe07d5a2c14d621b77854e48a8df41b5798563af489a291e417b6a334c63222627376118c02c53b6e86310f728734ffc86ef9d7c8bf56c0c841b24b82b59f51aee4526ba1c4268506d301e4ebc498c6aebb6fd5258c876bf900bac8ca4d309dd522f6a6343599a8bc3760f422c10c72d0ad527ce4af1874124ace3d99bb74db8d69d2528db22c3a37644640f95c05f",
        "a1f8c9255c35cfba403ccc",
    ),
    (
        "invalid second byte of the padding",
        "782c2b59a21a511243820acedd567c136f6d3090c115232a82a5efb0b178285f55b5ec2d2bac96bf00d6592ea7cdc3341610c8fb07e527e5e2d20cfaf2c7f23e375431f45e998929a02f25fd95354c33838090bca838502259e92d86d568bc2cdb132fab2a399593ca60a015dc2bb1afcd64fef8a3834e17e5358d822980dc446e845b3ab4702b1ee41fe5db716d92348d5091c15d35a110555a35deb4650a5a1d2c98025d42d4544f8b32aa6a5e02dc02deaed9a7313b73b49b0d4772a3768b0ea0db5846ace6569cae677bf67fb0acf3c255dc01ec8400c963b6e49b1067728b4e563d7e1e1515664347b92ee64db7efb5452357a02fff7fcb7437abc2e579",
        "e6d700309ca0ed62452254",
    ),
    (
        "invalid, PS of length zero",
        "0096136621faf36d5290b16bd26295de27f895d1faa51c800dafce73d001d60796cd4e2ac3fa2162131d859cd9da5a0c8a42281d9a63e5f353971b72e36b5722e4ac444d77f892a5443deb3dca49fa732fe855727196e23c26eeac55eeced8267a209ebc0f92f4656d64a6c13f7f7ce544ebeb0f668fe3a6c0f189e4bcd5ea12b73cf63e0c8350ee130dd62f01e5c97a1e13f52fde96a9a1bc9936ce734fdd61f27b18216f1d6de87f49cf4f2ea821fb8efd1f92cdad529baf7e31aff9bff4074f2cad2b4243dd15a711adcf7de900851fbd6bcb53dac399d7c880531d06f25f7002e1aaf1722765865d2c2b902c7736acd27bc6cbd3e38b560e2eecf7d4b576",
        "ba27b1842e7c21c0e7ef6a",
    ),
    (
        "invalid, zero as the eighth byte of PS",
        "a7a340675a82c30e22219a55bc07cdf36d47d01834c1834f917f18b517419ce9de2a96460e745024436470ed85e94297b283537d52189c406a3f533cb405cc6a9dba46b482ce98b6e3dd52d8fce2237425617e38c11fbc46b61897ef200d01e4f25f5f6c4c5b38cd0de38ba11908b86595a8036a08a42a3d05b79600a97ac18ba368a08d6cf6ccb624f6e8002afc75599fba4de3d4f3ba7d208391ebe8d21f8282b18e2c10869eb2702e68f9176b42b0ddc9d763f0c86ba0ff92c957aaeab76d9ab8da52ea297ec11d92d770146faa1b300e0f91ef969b53e7d2907ffc984e9a9c9d11fb7d6cba91972059b46506b035efec6575c46d7114a6b935864858445f",
        "63cb0bf65fc8255dd29e17",
    ),
    (
        "invalid, no separator",
        "3d1b97e7aa34eaf1f4fc171ceb11dcfffd9a46a5b6961205b10b302818c1fcc9f4ec78bf18ea0cee7e9fa5b16fb4c611463b368b3312ac11cf9c06b7cf72b54e284848a508d3f02328c62c2999d0fb60929f81783c7a256891bc2ff4d91df2af96a24fc5701a1823af939ce6dbdc510608e3d41eec172ad2d51b9fc61b4217c923cadcf5bac321355ef8be5e5f090cdc2bd0c697d9058247db3ad613fdce87d2955a6d1c948a5160f93da21f731d74137f5d1f53a1923adb513d2e6e1589d44cc079f4c6ddd471d38ac82d20d8b1d21f8d65f3b6907086809f4123e08d86fb38729585de026a485d8f0e703fd4772f6668febf67df947b82195fa3867e3a3065",
        "6f09a0b62699337c497b0b",
    ),
];

/// The draft's key as a token object, with or without its CRT values.
fn draft_key(crt: bool) -> Object {
    let rsa = Rsa::private_key_from_pem(DRAFT_K2048.as_bytes()).unwrap();
    let mut a = Attrs::new();
    a.set(CKA_CLASS, AttrValue::Ulong(CKO_PRIVATE_KEY));
    a.set(CKA_KEY_TYPE, AttrValue::Ulong(CKK_RSA));
    a.set(CKA_MODULUS, AttrValue::bytes(rsa.n().to_vec()));
    a.set(CKA_PUBLIC_EXPONENT, AttrValue::bytes(rsa.e().to_vec()));
    a.set(CKA_PRIVATE_EXPONENT, AttrValue::bytes(rsa.d().to_vec()));
    if crt {
        for (t, v) in [
            (CKA_PRIME_1, rsa.p()),
            (CKA_PRIME_2, rsa.q()),
            (CKA_EXPONENT_1, rsa.dmp1()),
            (CKA_EXPONENT_2, rsa.dmq1()),
            (CKA_COEFFICIENT, rsa.iqmp()),
        ] {
            a.set(t, AttrValue::bytes(v.unwrap().to_vec()));
        }
    }
    validate_rsa_key(&a).unwrap();
    Object::new(a)
}

#[test]
fn draft_test_vectors_decrypt_byte_for_byte() {
    for crt in [true, false] {
        let key = draft_key(crt);
        for (what, ct, expected) in DRAFT_B1 {
            let ct = hex::decode(ct).unwrap();
            let out = decrypt_with(&pkcs1(), &key, &ct).unwrap();
            assert_eq!(hex::encode(&out), *expected, "{what} (CRT: {crt})");
            if what.starts_with("invalid") {
                assert_eq!(out, reference_synthetic(&key, &ct), "{what}");
            }
        }
    }
}
