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
fn decryption_is_not_offered() {
    let (_, private) = pair();
    let m = registry().get(CKM_RSA_PKCS).unwrap();
    assert_eq!(
        m.decrypt_init(&Mechanism::new(CKM_RSA_PKCS), private)
            .err()
            .unwrap()
            .code(),
        Code::MechanismInvalid
    );
    // Encryption is a public-key operation and offered; decryption is not.
    assert_eq!(m.info().flags, CKF_SIGN | CKF_VERIFY | CKF_ENCRYPT);
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
fn sha1_rsa_pkcs_verifies_old_signatures_only() {
    let (public, private) = pair();
    let old = Signer::new(MessageDigest::sha1(), &reference_private(private))
        .unwrap()
        .sign_oneshot_to_vec(b"firmware v1")
        .unwrap();
    verify(CKM_SHA1_RSA_PKCS, public, b"firmware v1", &old).unwrap();
    assert_eq!(
        verify(CKM_SHA1_RSA_PKCS, public, b"firmware v2", &old)
            .unwrap_err()
            .code(),
        Code::SignatureInvalid
    );
    let m = Mechanism::new(CKM_SHA1_RSA_PKCS);
    assert_eq!(sign_init_code(&m, private), Code::MechanismInvalid);
    let info = registry().get(CKM_SHA1_RSA_PKCS).unwrap().info();
    assert_eq!((info.min_key_size, info.flags), (1024, CKF_VERIFY));
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
        oaep(CKM_SHA3_256, CKG_MGF1_SHA256, b""),
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
        (CKM_SHA1_RSA_PKCS, CKF_VERIFY),
        (CKM_RSA_X_509, CKF_SIGN | CKF_VERIFY),
        (
            CKM_RSA_PKCS_OAEP,
            CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP,
        ),
        (CKM_RSA_PKCS, CKF_SIGN | CKF_VERIFY | CKF_ENCRYPT),
    ] {
        assert_eq!(registry().get(m).unwrap().info().flags, flags, "{m:#x}");
        assert_eq!(registry().get(m).unwrap().key_types(), &[CKK_RSA]);
    }
}
