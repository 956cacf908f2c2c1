//! Key wrapping mechanisms through the C ABI: CKM_AES_KEY_WRAP, _KWP and _PAD on secret keys,
//! checked against the openssl crate; private keys wrapped as PKCS#8 with KWP and AES-GCM,
//! opened and parsed by the openssl crate, unwrapped and used to sign; RSA-OAEP wrapping; the
//! error codes of bad wrapped keys. (The wrap rules themselves are in `keymgmt`.)

use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;
use openssl::aes::{AesKey, wrap_key};
use openssl::cipher::{Cipher, CipherRef};
use openssl::cipher_ctx::CipherCtx;
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey};
use openssl::rsa::{Padding, Rsa};
use openssl::symm::decrypt_aead;

use super::keys;
use crate::assert_ckr;
use crate::call;
use crate::common::{self, attr_bool, attr_bytes, attr_ulong, is_keyward, sh, user_session};

const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
const X25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x6e];
const GCM_IV: [u8; 12] = [0x3c; 12];
const GCM_AAD: &[u8] = b"keyward private key wrap";

/// A mechanism given as its type and an optional byte-string parameter (the key-wrap IVs),
/// or as a cryptoki mechanism.
enum Mech<'a> {
    Raw(CK_MECHANISM_TYPE, Option<&'a [u8]>),
    Ck(Mechanism<'a>),
}

impl Mech<'_> {
    fn ck(&self) -> CK_MECHANISM {
        match self {
            Mech::Raw(ty, p) => CK_MECHANISM {
                mechanism: *ty,
                pParameter: p.map_or(std::ptr::null_mut(), |v| v.as_ptr() as *mut _),
                ulParameterLen: p.map_or(0, |v| v.len() as CK_ULONG),
            },
            Mech::Ck(m) => m.into(),
        }
    }
}

const KW: Mech<'static> = Mech::Raw(CKM_AES_KEY_WRAP, None);
const KWP: Mech<'static> = Mech::Raw(CKM_AES_KEY_WRAP_KWP, None);
const PAD: Mech<'static> = Mech::Raw(CKM_AES_KEY_WRAP_PAD, None);

fn gcm(iv: &mut [u8]) -> Mech<'_> {
    Mech::Ck(Mechanism::AesGcm(
        GcmParams::new(iv, GCM_AAD, 128.into()).expect("GCM params"),
    ))
}

/// C_WrapKey: the length query, then the wrap into a buffer of exactly that length.
fn wrap(
    s: &Session,
    m: &Mech,
    wrapping: ObjectHandle,
    key: ObjectHandle,
) -> Result<Vec<u8>, CK_RV> {
    let mut mech = m.ck();
    let (w, k) = (wrapping.handle(), key.handle());
    let mut len: CK_ULONG = 0;
    let rv = call!(
        C_WrapKey,
        sh(s),
        &mut mech,
        w,
        k,
        std::ptr::null_mut(),
        &mut len
    );
    if rv != CKR_OK {
        return Err(rv);
    }
    let mut out = vec![0u8; len as usize];
    let rv = call!(
        C_WrapKey,
        sh(s),
        &mut mech,
        w,
        k,
        out.as_mut_ptr(),
        &mut len
    );
    if rv != CKR_OK {
        return Err(rv);
    }
    out.truncate(len as usize);
    Ok(out)
}

fn unwrap(
    s: &Session,
    m: &Mech,
    unwrapping: ObjectHandle,
    blob: &[u8],
    template: &[Attribute],
) -> Result<ObjectHandle, CK_RV> {
    let mut mech = m.ck();
    let mut t: Vec<CK_ATTRIBUTE> = template.iter().map(CK_ATTRIBUTE::from).collect();
    let mut h: CK_OBJECT_HANDLE = CK_INVALID_HANDLE;
    let rv = call!(
        C_UnwrapKey,
        sh(s),
        &mut mech,
        unwrapping.handle(),
        blob.as_ptr() as *mut u8,
        blob.len() as CK_ULONG,
        t.as_mut_ptr(),
        t.len() as CK_ULONG,
        &mut h
    );
    if rv != CKR_OK {
        return Err(rv);
    }
    // SAFETY: the token just returned this handle for a new object in this session.
    Ok(unsafe { ObjectHandle::new_from_raw(h) })
}

/// An AES-256 key that wraps and unwraps, readable so the test can check its results.
fn kek(s: &Session) -> (ObjectHandle, Vec<u8>) {
    let h = s
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::ValueLen(32.into()),
                Attribute::Wrap(true),
                Attribute::Unwrap(true),
                // Readable needs both (a sensitive or unextractable value stays inside).
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
            ],
        )
        .expect("C_GenerateKey KEK");
    let v = attr_bytes(s, h, AttributeType::Value);
    (h, v)
}

/// A readable, extractable secret key: AES of 16/24/32 bytes or a generic secret.
fn secret(s: &Session, key_type: KeyType, len: u64) -> (ObjectHandle, Vec<u8>) {
    let mech = if key_type == KeyType::AES {
        Mechanism::AesKeyGen
    } else {
        Mechanism::GenericSecretKeyGen
    };
    let h = s
        .generate_key(
            &mech,
            &[
                Attribute::ValueLen(len.into()),
                Attribute::Extractable(true),
                Attribute::Sensitive(false),
            ],
        )
        .expect("C_GenerateKey secret");
    let v = attr_bytes(s, h, AttributeType::Value);
    (h, v)
}

fn cipher_run(c: &CipherRef, encrypt: bool, key: &[u8], input: &[u8]) -> Option<Vec<u8>> {
    let mut ctx = CipherCtx::new().unwrap();
    if encrypt {
        ctx.encrypt_init(Some(c), Some(key), None).unwrap();
    } else {
        ctx.decrypt_init(Some(c), Some(key), None).unwrap();
    }
    let mut out = vec![0u8; input.len() + 16];
    let n = ctx.cipher_update(input, Some(&mut out)).ok()?;
    out.truncate(n);
    Some(out)
}

/// RFC 3394 by the openssl crate, with PKCS#7 padding first for _PAD.
fn openssl_kw(kek: &[u8], iv: Option<[u8; 8]>, data: &[u8], pkcs7: bool) -> Vec<u8> {
    let mut input = data.to_vec();
    if pkcs7 {
        let n = 8 - data.len() % 8;
        input.extend(std::iter::repeat_n(n as u8, n));
    }
    let k = AesKey::new_encrypt(kek).unwrap();
    let mut out = vec![0u8; input.len() + 8];
    let n = wrap_key(&k, iv, &mut out, &input).unwrap();
    out.truncate(n);
    out
}

/// RFC 5649 by the openssl crate's AES-256-WRAP-PAD (default context).
fn openssl_kwp(kek: &[u8], data: &[u8]) -> Vec<u8> {
    cipher_run(Cipher::aes_256_wrap_pad(), true, kek, data).expect("openssl KWP wrap")
}

fn openssl_kwp_open(kek: &[u8], blob: &[u8]) -> Vec<u8> {
    cipher_run(Cipher::aes_256_wrap_pad(), false, kek, blob).expect("openssl KWP unwrap")
}

fn openssl_gcm_open(kek: &[u8], blob: &[u8]) -> Vec<u8> {
    let (ct, tag) = blob.split_at(blob.len() - 16);
    decrypt_aead(
        openssl::symm::Cipher::aes_256_gcm(),
        kek,
        Some(&GCM_IV),
        GCM_AAD,
        ct,
        tag,
    )
    .expect("openssl GCM open")
}

fn secret_template(key_type: KeyType) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(key_type),
        Attribute::Sensitive(false),
    ]
}

#[test]
fn secret_keys_wrap_with_kw_kwp_and_pad_as_openssl_computes() {
    if !is_keyward() {
        return; // SoftHSMv2 runs RFC 5649 under CKM_AES_KEY_WRAP_PAD
    }
    let s = user_session(common::fresh_token());
    let (w, w_value) = kek(&s);
    let iv = [0x0fu8; 8];
    for (key_type, len) in [
        (KeyType::AES, 16u64),
        (KeyType::AES, 32),
        (KeyType::GENERIC_SECRET, 20),
        (KeyType::GENERIC_SECRET, 24),
    ] {
        let (k, value) = secret(&s, key_type, len);
        let kw_ok = len % 8 == 0;
        let cases: [(&Mech, Option<Vec<u8>>); 4] = [
            (
                &KW,
                kw_ok.then(|| openssl_kw(&w_value, None, &value, false)),
            ),
            (
                &Mech::Raw(CKM_AES_KEY_WRAP, Some(&iv)),
                kw_ok.then(|| openssl_kw(&w_value, Some(iv), &value, false)),
            ),
            (&KWP, Some(openssl_kwp(&w_value, &value))),
            (&PAD, Some(openssl_kw(&w_value, None, &value, true))),
        ];
        for (m, expected) in cases {
            let what = format!("{key_type:?} of {len} bytes under {:#x}", m.ck().mechanism);
            let Some(expected) = expected else {
                // RFC 3394 takes whole semiblocks only.
                assert_eq!(wrap(&s, m, w, k), Err(CKR_KEY_SIZE_RANGE), "{what}");
                continue;
            };
            let blob = wrap(&s, m, w, k).unwrap_or_else(|rv| panic!("{what}: {rv:#x}"));
            assert_eq!(blob, expected, "{what}");
            let u = unwrap(&s, m, w, &blob, &secret_template(key_type))
                .unwrap_or_else(|rv| panic!("{what}: unwrap {rv:#x}"));
            assert_eq!(attr_bytes(&s, u, AttributeType::Value), value, "{what}");
            assert_eq!(attr_ulong(&s, u, AttributeType::ValueLen), len, "{what}");
            assert_eq!(
                attr_ulong(&s, u, AttributeType::KeyType),
                CK_KEY_TYPE::from(key_type),
                "{what}"
            );
        }
    }
    // KWP wraps are the RFC 5649 blobs the openssl crate opens.
    let (k, value) = secret(&s, KeyType::GENERIC_SECRET, 20);
    let blob = wrap(&s, &KWP, w, k).unwrap();
    assert_eq!(openssl_kwp_open(&w_value, &blob), value);
    // A template CKA_VALUE_LEN shorter than the unwrapped value takes its prefix.
    let mut t = secret_template(KeyType::GENERIC_SECRET);
    t.push(Attribute::ValueLen(16.into()));
    let u = unwrap(&s, &KWP, w, &blob, &t).unwrap();
    assert_eq!(attr_bytes(&s, u, AttributeType::Value), &value[..16]);
}

/// An extractable private key and its public key.
struct Pair {
    name: &'static str,
    key_type: KeyType,
    public: ObjectHandle,
    private: ObjectHandle,
}

fn pairs(s: &Session) -> Vec<Pair> {
    let gen_pair = |name, key_type, mech: Mechanism, public: Vec<Attribute>, sign: bool| {
        let usage = if sign {
            Attribute::Sign(true)
        } else {
            Attribute::Derive(true)
        };
        let (public, private) = s
            .generate_key_pair(&mech, &public, &[usage, Attribute::Extractable(true)])
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        Pair {
            name,
            key_type,
            public,
            private,
        }
    };
    vec![
        gen_pair(
            "RSA-2048",
            KeyType::RSA,
            Mechanism::RsaPkcsKeyPairGen,
            vec![
                Attribute::ModulusBits(2048.into()),
                Attribute::PublicExponent(vec![1, 0, 1]),
                Attribute::Verify(true),
            ],
            true,
        ),
        gen_pair(
            "P-256",
            KeyType::EC,
            Mechanism::EccKeyPairGen,
            vec![
                Attribute::EcParams(keys::P256_OID.to_vec()),
                Attribute::Verify(true),
            ],
            true,
        ),
        gen_pair(
            "Ed25519",
            KeyType::EC_EDWARDS,
            Mechanism::EccEdwardsKeyPairGen,
            vec![
                Attribute::EcParams(ED25519_OID.to_vec()),
                Attribute::Verify(true),
            ],
            true,
        ),
        gen_pair(
            "X25519",
            KeyType::EC_MONTGOMERY,
            Mechanism::EccMontgomeryKeyPairGen,
            vec![Attribute::EcParams(X25519_OID.to_vec())],
            false,
        ),
    ]
}

/// Sign with `private` in the token and verify with `public` (the original pair's public key)
/// in the openssl crate; X25519 does not sign.
fn signs_for(s: &Session, p: &Pair, private: ObjectHandle) {
    let data = b"signed by an unwrapped key";
    let spki = attr_bytes(s, p.public, AttributeType::PublicKeyInfo);
    let public = PKey::public_key_from_der(&spki).unwrap();
    let ok = match p.key_type {
        KeyType::RSA => {
            let sig = s.sign(&Mechanism::Sha256RsaPkcs, private, data).unwrap();
            keys::openssl_verify(&public, MessageDigest::sha256(), data, &sig)
        }
        KeyType::EC => {
            let sig = s.sign(&Mechanism::EcdsaSha256, private, data).unwrap();
            let der = keys::ecdsa_raw_to_der(&sig);
            keys::openssl_verify(&public, MessageDigest::sha256(), data, &der)
        }
        KeyType::EC_EDWARDS => {
            let m = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
            let sig = s.sign(&m, private, data).unwrap();
            let mut v = openssl::sign::Verifier::new_without_digest(&public).unwrap();
            v.verify_oneshot(&sig, data).unwrap()
        }
        _ => return,
    };
    assert!(ok, "{}: the unwrapped key's signature verifies", p.name);
}

fn private_template(p: &Pair) -> Vec<Attribute> {
    let usage = if p.key_type == KeyType::EC_MONTGOMERY {
        Attribute::Derive(true)
    } else {
        Attribute::Sign(true)
    };
    vec![
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(p.key_type),
        usage,
    ]
}

#[test]
fn private_keys_wrap_as_pkcs8_with_kwp_and_gcm() {
    if !is_keyward() {
        return;
    }
    let s = user_session(common::fresh_token());
    let (w, w_value) = kek(&s);
    for p in pairs(&s) {
        let spki = attr_bytes(&s, p.public, AttributeType::PublicKeyInfo);
        let id = match p.key_type {
            KeyType::RSA => Id::RSA,
            KeyType::EC => Id::EC,
            KeyType::EC_EDWARDS => Id::ED25519,
            _ => Id::X25519,
        };
        let mut iv = GCM_IV;
        for (label, m) in [("KWP", KWP), ("GCM", gcm(&mut iv))] {
            let what = format!("{} under {label}", p.name);
            let blob = wrap(&s, &m, w, p.private).unwrap_or_else(|rv| panic!("{what}: {rv:#x}"));
            // Opened and parsed outside the token: a PrivateKeyInfo of the same key pair.
            let der = match label {
                "KWP" => openssl_kwp_open(&w_value, &blob),
                _ => openssl_gcm_open(&w_value, &blob),
            };
            let theirs = PKey::private_key_from_pkcs8(&der).unwrap();
            assert_eq!(theirs.id(), id, "{what}");
            assert_eq!(theirs.public_key_to_der().unwrap(), spki, "{what}");

            let u = unwrap(&s, &m, w, &blob, &private_template(&p))
                .unwrap_or_else(|rv| panic!("{what}: unwrap {rv:#x}"));
            // Provenance of an unwrapped key.
            assert!(!attr_bool(&s, u, AttributeType::Local), "{what}");
            assert!(!attr_bool(&s, u, AttributeType::AlwaysSensitive), "{what}");
            assert!(!attr_bool(&s, u, AttributeType::NeverExtractable), "{what}");
            assert!(attr_bool(&s, u, AttributeType::Sensitive), "{what}");
            assert_eq!(
                attr_bytes(&s, u, AttributeType::PublicKeyInfo),
                spki,
                "{what}"
            );
            signs_for(&s, &p, u);
        }
    }
}

#[test]
fn bad_wrapped_keys_and_their_codes() {
    if !is_keyward() {
        return;
    }
    let s = user_session(common::fresh_token());
    let (w, _) = kek(&s);
    let (k, _) = secret(&s, KeyType::AES, 32);
    let template = secret_template(KeyType::AES);
    for m in [KW, KWP, PAD] {
        let ty = m.ck().mechanism;
        let blob = wrap(&s, &m, w, k).unwrap();
        let mut bad = blob.clone();
        bad[blob.len() / 2] ^= 0x01;
        assert_eq!(
            unwrap(&s, &m, w, &bad, &template),
            Err(CKR_WRAPPED_KEY_INVALID),
            "{ty:#x}"
        );
        assert_eq!(
            unwrap(&s, &m, w, &blob[..blob.len() - 1], &template),
            Err(CKR_WRAPPED_KEY_LEN_RANGE),
            "{ty:#x}"
        );
        assert_eq!(
            unwrap(&s, &m, w, &blob[..8], &template),
            Err(CKR_WRAPPED_KEY_LEN_RANGE),
            "{ty:#x}"
        );
        // A parameter of the wrong size.
        let iv5 = [0u8; 5];
        assert_eq!(
            wrap(&s, &Mech::Raw(ty, Some(&iv5)), w, k),
            Err(CKR_MECHANISM_PARAM_INVALID),
            "{ty:#x}"
        );
    }
    // A KW blob under another IV does not authenticate.
    let iv = [7u8; 8];
    let blob = wrap(&s, &Mech::Raw(CKM_AES_KEY_WRAP, Some(&iv)), w, k).unwrap();
    assert_eq!(
        unwrap(&s, &KW, w, &blob, &template),
        Err(CKR_WRAPPED_KEY_INVALID)
    );
    // AES-GCM: a wrong tag.
    let mut gcm_iv = GCM_IV;
    let blob = wrap(&s, &gcm(&mut gcm_iv), w, k).unwrap();
    let mut bad = blob.clone();
    *bad.last_mut().unwrap() ^= 0x80;
    let mut gcm_iv = GCM_IV;
    assert_eq!(
        unwrap(&s, &gcm(&mut gcm_iv), w, &bad, &template),
        Err(CKR_WRAPPED_KEY_INVALID)
    );
    // A private key unwrapped under another key type, and a secret key blob as a private key.
    let (_, ec_private) = s
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::EcParams(keys::P256_OID.to_vec())],
            &[Attribute::Sign(true), Attribute::Extractable(true)],
        )
        .unwrap();
    let blob = wrap(&s, &KWP, w, ec_private).unwrap();
    let mut t = vec![
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::RSA),
        Attribute::Sign(true),
    ];
    assert_eq!(
        unwrap(&s, &KWP, w, &blob, &t),
        Err(CKR_TEMPLATE_INCONSISTENT)
    );
    let aes_blob = wrap(&s, &KWP, w, k).unwrap();
    t[1] = Attribute::KeyType(KeyType::EC);
    assert_eq!(
        unwrap(&s, &KWP, w, &aes_blob, &t),
        Err(CKR_WRAPPED_KEY_INVALID)
    );
}

#[test]
fn rsa_oaep_wraps_an_aes_key_openssl_unwraps() {
    if !is_keyward() {
        return;
    }
    let s = user_session(common::fresh_token());
    let rsa = Rsa::generate(2048).unwrap();
    let (mut public, mut private) = keys::rsa_import_templates(&rsa);
    public.push(Attribute::Wrap(true));
    // Usage flags beyond unwrapping are dropped: UNWRAP with ENCRYPT is refused anyway.
    private.retain(|a| a.attribute_type() != AttributeType::Sign);
    private.push(Attribute::Unwrap(true));
    let public = s.create_object(&public).unwrap();
    let private = s.create_object(&private).unwrap();
    let (k, value) = secret(&s, KeyType::AES, 32);
    let oaep = || {
        Mech::Ck(Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
            MechanismType::SHA256,
            PkcsMgfType::MGF1_SHA256,
            PkcsOaepSource::empty(),
        )))
    };
    let blob = wrap(&s, &oaep(), public, k).unwrap();
    assert_eq!(blob.len(), 256);
    // The openssl crate opens it with the private key.
    let pkey = PKey::from_rsa(rsa).unwrap();
    let mut dec = openssl::encrypt::Decrypter::new(&pkey).unwrap();
    dec.set_rsa_padding(Padding::PKCS1_OAEP).unwrap();
    dec.set_rsa_oaep_md(MessageDigest::sha256()).unwrap();
    dec.set_rsa_mgf1_md(MessageDigest::sha256()).unwrap();
    let mut out = vec![0u8; dec.decrypt_len(&blob).unwrap()];
    let n = dec.decrypt(&blob, &mut out).unwrap();
    assert_eq!(&out[..n], value.as_slice());
    // And the token unwraps it back.
    let u = unwrap(&s, &oaep(), private, &blob, &secret_template(KeyType::AES)).unwrap();
    assert_eq!(attr_bytes(&s, u, AttributeType::Value), value);
    assert!(!attr_bool(&s, u, AttributeType::Local));
    let mut bad = blob.clone();
    bad[0] ^= 1;
    assert_ckr!(
        unwrap(&s, &oaep(), private, &bad, &secret_template(KeyType::AES)).unwrap_err(),
        CKR_WRAPPED_KEY_INVALID
    );
}
