//! Key derivation through the raw C ABI, so the parameter structures go through the module's
//! own decoding: HKDF (RFC 5869 A.1 in its three modes, a salt key, a data object, generated
//! CKK_HKDF keys), PBKDF2 with both parameter layouts (RFC 7914 §11), the SP 800-108 counter
//! mode (a NIST CAVP vector), the concatenations with their protection rules, and AES
//! encryption of data checked against the openssl crate.

use std::ffi::c_void;
use std::mem::size_of;

use cryptoki::object::{Attribute, KeyType, ObjectClass};
use cryptoki::session::Session;
use cryptoki_sys::*;
use openssl::symm::{Cipher, Crypter, Mode};

use crate::common::{self, is_keyward, user_session};
use crate::{assert_ckr, call};

fn session() -> Session {
    user_session(common::fresh_token())
}

/// A session secret key with CKA_DERIVE, readable unless `protect`.
fn secret(s: &Session, ty: KeyType, value: &[u8], protect: bool) -> CK_OBJECT_HANDLE {
    s.create_object(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(ty),
        Attribute::Token(false),
        Attribute::Value(value.to_vec()),
        Attribute::Derive(true),
        Attribute::Sensitive(protect),
        Attribute::Extractable(!protect),
    ])
    .expect("C_CreateObject secret key")
    .handle()
}

/// A template value.
#[derive(Clone, Copy)]
enum V {
    B(bool),
    U(CK_ULONG),
}

/// A raw template whose values live as long as it does.
struct Template {
    _values: Vec<Vec<u8>>,
    attrs: Vec<CK_ATTRIBUTE>,
}

fn template(items: &[(CK_ATTRIBUTE_TYPE, V)]) -> Template {
    let mut values: Vec<Vec<u8>> = items
        .iter()
        .map(|(_, v)| match v {
            V::B(b) => vec![u8::from(*b)],
            V::U(u) => u.to_ne_bytes().to_vec(),
        })
        .collect();
    let attrs = items
        .iter()
        .zip(values.iter_mut())
        .map(|((ty, _), v)| CK_ATTRIBUTE {
            type_: *ty,
            pValue: v.as_mut_ptr().cast(),
            ulValueLen: v.len() as CK_ULONG,
        })
        .collect();
    Template {
        _values: values,
        attrs,
    }
}

/// A readable session generic secret of `len` bytes.
fn readable(len: CK_ULONG) -> Template {
    template(&[
        (CKA_TOKEN, V::B(false)),
        (CKA_VALUE_LEN, V::U(len)),
        (CKA_SENSITIVE, V::B(false)),
        (CKA_EXTRACTABLE, V::B(true)),
    ])
}

fn mechanism<P>(mech: CK_MECHANISM_TYPE, params: &mut P) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: mech,
        pParameter: (params as *mut P).cast::<c_void>(),
        ulParameterLen: size_of::<P>() as CK_ULONG,
    }
}

/// C_DeriveKey through the raw function list: the code and the new handle.
fn derive(
    s: &Session,
    m: &mut CK_MECHANISM,
    base: CK_OBJECT_HANDLE,
    t: &mut Template,
) -> (CK_RV, CK_OBJECT_HANDLE) {
    let mut key = CK_INVALID_HANDLE;
    let rv = call!(
        C_DeriveKey,
        s.handle(),
        m,
        base,
        t.attrs.as_mut_ptr(),
        t.attrs.len() as CK_ULONG,
        &mut key
    );
    (rv, key)
}

/// C_GenerateKey through the raw function list.
fn generate(s: &Session, m: &mut CK_MECHANISM, t: &mut Template) -> (CK_RV, CK_OBJECT_HANDLE) {
    let mut key = CK_INVALID_HANDLE;
    let rv = call!(
        C_GenerateKey,
        s.handle(),
        m,
        t.attrs.as_mut_ptr(),
        t.attrs.len() as CK_ULONG,
        &mut key
    );
    (rv, key)
}

/// An attribute of an object known by its raw handle, read with an exactly sized buffer.
fn get(s: &Session, h: CK_OBJECT_HANDLE, ty: CK_ATTRIBUTE_TYPE) -> Vec<u8> {
    let mut t = CK_ATTRIBUTE {
        type_: ty,
        pValue: std::ptr::null_mut(),
        ulValueLen: 0,
    };
    assert_ckr!(call!(C_GetAttributeValue, s.handle(), h, &mut t, 1), CKR_OK);
    let mut buf = vec![0u8; t.ulValueLen as usize];
    t.pValue = buf.as_mut_ptr().cast();
    assert_ckr!(call!(C_GetAttributeValue, s.handle(), h, &mut t, 1), CKR_OK);
    buf
}

fn value(s: &Session, h: CK_OBJECT_HANDLE) -> Vec<u8> {
    get(s, h, CKA_VALUE)
}

fn ulong(s: &Session, h: CK_OBJECT_HANDLE, ty: CK_ATTRIBUTE_TYPE) -> CK_ULONG {
    let v = get(s, h, ty);
    CK_ULONG::from_ne_bytes(v.as_slice().try_into().expect("a CK_ULONG attribute"))
}

fn flag(s: &Session, h: CK_OBJECT_HANDLE, ty: CK_ATTRIBUTE_TYPE) -> bool {
    get(s, h, ty) == [CK_TRUE]
}

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("hex")
}

// RFC 5869 A.1.
const IKM: [u8; 22] = [0x0b; 22];
const SALT: [u8; 13] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
const INFO: [u8; 10] = [0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9];
const PRK: &str = "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5";
const OKM: &str =
    "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865";

fn hkdf_params(
    extract: bool,
    expand: bool,
    salt_type: CK_ULONG,
    salt: &mut [u8],
    salt_key: CK_OBJECT_HANDLE,
    info: &mut [u8],
) -> CK_HKDF_PARAMS {
    CK_HKDF_PARAMS {
        bExtract: CK_BBOOL::from(extract),
        bExpand: CK_BBOOL::from(expand),
        prfHashMechanism: CKM_SHA256,
        ulSaltType: salt_type,
        pSalt: salt.as_mut_ptr(),
        ulSaltLen: salt.len() as CK_ULONG,
        hSaltKey: salt_key,
        pInfo: info.as_mut_ptr(),
        ulInfoLen: info.len() as CK_ULONG,
    }
}

#[test]
fn hkdf_rfc5869_in_three_modes_through_the_abi() {
    if !is_keyward() {
        return;
    }
    let s = session();
    let base = secret(&s, KeyType::GENERIC_SECRET, &IKM, false);
    let (mut salt, mut info) = (SALT, INFO);

    let mut p = hkdf_params(true, true, CKF_HKDF_SALT_DATA, &mut salt, 0, &mut info);
    let (rv, k) = derive(
        &s,
        &mut mechanism(CKM_HKDF_DERIVE, &mut p),
        base,
        &mut readable(42),
    );
    assert_ckr!(rv, CKR_OK);
    assert_eq!(hex::encode(value(&s, k)), OKM);
    assert_eq!(ulong(&s, k, CKA_VALUE_LEN), 42);

    // Extract only: no CKA_VALUE_LEN needed.
    let mut p = hkdf_params(true, false, CKF_HKDF_SALT_DATA, &mut salt, 0, &mut info);
    let mut t = template(&[
        (CKA_TOKEN, V::B(false)),
        (CKA_SENSITIVE, V::B(false)),
        (CKA_EXTRACTABLE, V::B(true)),
    ]);
    let (rv, prk) = derive(&s, &mut mechanism(CKM_HKDF_DERIVE, &mut p), base, &mut t);
    assert_ckr!(rv, CKR_OK);
    assert_eq!(hex::encode(value(&s, prk)), PRK);

    // Expand only from the PRK as a CKK_HKDF key.
    let prk_key = secret(&s, KeyType::HKDF, &hex(PRK), false);
    let mut p = hkdf_params(false, true, 0, &mut [], 0, &mut info);
    let (rv, k) = derive(
        &s,
        &mut mechanism(CKM_HKDF_DERIVE, &mut p),
        prk_key,
        &mut readable(42),
    );
    assert_ckr!(rv, CKR_OK);
    assert_eq!(hex::encode(value(&s, k)), OKM);

    // The salt from a key.
    let salt_key = secret(&s, KeyType::HKDF, &SALT, true);
    let mut p = hkdf_params(true, true, CKF_HKDF_SALT_KEY, &mut [], salt_key, &mut info);
    let (rv, k) = derive(
        &s,
        &mut mechanism(CKM_HKDF_DERIVE, &mut p),
        base,
        &mut readable(42),
    );
    assert_ckr!(rv, CKR_OK);
    assert_eq!(hex::encode(value(&s, k)), OKM);

    // CKM_HKDF_DATA makes a data object of CKA_VALUE_LEN bytes.
    let mut p = hkdf_params(true, true, CKF_HKDF_SALT_DATA, &mut salt, 0, &mut info);
    let mut t = template(&[(CKA_TOKEN, V::B(false)), (CKA_VALUE_LEN, V::U(42))]);
    let (rv, d) = derive(&s, &mut mechanism(CKM_HKDF_DATA, &mut p), base, &mut t);
    assert_ckr!(rv, CKR_OK);
    assert_eq!(ulong(&s, d, CKA_CLASS), CKO_DATA);
    assert_eq!(hex::encode(value(&s, d)), OKM);
    // CKM_HKDF_DERIVE never makes data objects.
    let mut t = template(&[(CKA_CLASS, V::U(CKO_DATA)), (CKA_VALUE_LEN, V::U(42))]);
    let (rv, _) = derive(&s, &mut mechanism(CKM_HKDF_DERIVE, &mut p), base, &mut t);
    assert_ckr!(rv, CKR_TEMPLATE_INCONSISTENT);

    // Neither extract nor expand, an unknown hash, a truncated structure.
    let mut p = hkdf_params(false, false, CKF_HKDF_SALT_NULL, &mut [], 0, &mut info);
    let (rv, _) = derive(
        &s,
        &mut mechanism(CKM_HKDF_DERIVE, &mut p),
        base,
        &mut readable(32),
    );
    assert_ckr!(rv, CKR_MECHANISM_PARAM_INVALID);
    let mut p = hkdf_params(true, true, CKF_HKDF_SALT_NULL, &mut [], 0, &mut info);
    p.prfHashMechanism = CKM_MD5;
    let (rv, _) = derive(
        &s,
        &mut mechanism(CKM_HKDF_DERIVE, &mut p),
        base,
        &mut readable(32),
    );
    assert_ckr!(rv, CKR_MECHANISM_PARAM_INVALID);
    let mut m = mechanism(CKM_HKDF_DERIVE, &mut p);
    m.ulParameterLen -= 8;
    let (rv, _) = derive(&s, &mut m, base, &mut readable(32));
    assert_ckr!(rv, CKR_MECHANISM_PARAM_INVALID);
    // An AES base key is not an HKDF key.
    let aes = secret(&s, KeyType::AES, &[1; 16], false);
    let mut p = hkdf_params(true, true, CKF_HKDF_SALT_NULL, &mut [], 0, &mut info);
    let (rv, _) = derive(
        &s,
        &mut mechanism(CKM_HKDF_DERIVE, &mut p),
        aes,
        &mut readable(32),
    );
    assert_ckr!(rv, CKR_KEY_TYPE_INCONSISTENT);
}

#[test]
fn hkdf_key_generation_through_the_abi() {
    if !is_keyward() {
        return;
    }
    let s = session();
    let mut m = CK_MECHANISM {
        mechanism: CKM_HKDF_KEY_GEN,
        pParameter: std::ptr::null_mut(),
        ulParameterLen: 0,
    };
    let mut t = template(&[
        (CKA_TOKEN, V::B(false)),
        (CKA_VALUE_LEN, V::U(32)),
        (CKA_DERIVE, V::B(true)),
    ]);
    let (rv, k) = generate(&s, &mut m, &mut t);
    assert_ckr!(rv, CKR_OK);
    assert_eq!(ulong(&s, k, CKA_KEY_TYPE), CKK_HKDF);
    assert_eq!(ulong(&s, k, CKA_VALUE_LEN), 32);
    assert!(flag(&s, k, CKA_LOCAL));
    assert_eq!(ulong(&s, k, CKA_KEY_GEN_MECHANISM), CKM_HKDF_KEY_GEN);
    // It derives.
    let mut info = INFO;
    let mut p = hkdf_params(true, true, CKF_HKDF_SALT_NULL, &mut [], 0, &mut info);
    let (rv, _) = derive(
        &s,
        &mut mechanism(CKM_HKDF_DERIVE, &mut p),
        k,
        &mut readable(16),
    );
    assert_ckr!(rv, CKR_OK);
    // CKA_VALUE_LEN is required.
    let mut t = template(&[(CKA_TOKEN, V::B(false))]);
    let (rv, _) = generate(&s, &mut m, &mut t);
    assert_ckr!(rv, CKR_TEMPLATE_INCOMPLETE);
}

#[test]
fn pbkdf2_both_parameter_layouts_through_the_abi() {
    if !is_keyward() {
        return;
    }
    let s = session();
    let want = "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc\
                49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783";
    let mut salt = *b"salt";
    let mut password = *b"passwd";
    let mut p2 = CK_PKCS5_PBKD2_PARAMS2 {
        saltSource: CKZ_SALT_SPECIFIED,
        pSaltSourceData: salt.as_mut_ptr().cast(),
        ulSaltSourceDataLen: 4,
        iterations: 1,
        prf: CKP_PKCS5_PBKD2_HMAC_SHA256,
        pPrfData: std::ptr::null_mut(),
        ulPrfDataLen: 0,
        pPassword: password.as_mut_ptr(),
        ulPasswordLen: 6,
    };
    let (rv, k) = generate(
        &s,
        &mut mechanism(CKM_PKCS5_PBKD2, &mut p2),
        &mut readable(64),
    );
    assert_ckr!(rv, CKR_OK);
    assert_eq!(hex::encode(value(&s, k)), want);
    assert_eq!(ulong(&s, k, CKA_KEY_GEN_MECHANISM), CKM_PKCS5_PBKD2);

    let mut len: CK_ULONG = 6;
    let mut p1 = CK_PKCS5_PBKD2_PARAMS {
        saltSource: CKZ_SALT_SPECIFIED,
        pSaltSourceData: salt.as_mut_ptr().cast(),
        ulSaltSourceDataLen: 4,
        iterations: 1,
        prf: CKP_PKCS5_PBKD2_HMAC_SHA256,
        pPrfData: std::ptr::null_mut(),
        ulPrfDataLen: 0,
        pPassword: password.as_mut_ptr(),
        ulPasswordLen: &mut len,
    };
    let (rv, k) = generate(
        &s,
        &mut mechanism(CKM_PKCS5_PBKD2, &mut p1),
        &mut readable(64),
    );
    assert_ckr!(rv, CKR_OK);
    assert_eq!(hex::encode(value(&s, k)), want);

    // An AES-256 key, sized by its type.
    let mut t = template(&[
        (CKA_TOKEN, V::B(false)),
        (CKA_KEY_TYPE, V::U(CKK_AES)),
        (CKA_ENCRYPT, V::B(true)),
    ]);
    let (rv, k) = generate(&s, &mut mechanism(CKM_PKCS5_PBKD2, &mut p2), &mut t);
    assert_ckr!(rv, CKR_OK);
    assert_eq!(ulong(&s, k, CKA_VALUE_LEN), 32);
    assert!(flag(&s, k, CKA_SENSITIVE));

    // The iteration bound (a denial-of-service guard) and an unknown PRF.
    p2.iterations = 10_000_001;
    let (rv, _) = generate(
        &s,
        &mut mechanism(CKM_PKCS5_PBKD2, &mut p2),
        &mut readable(32),
    );
    assert_ckr!(rv, CKR_MECHANISM_PARAM_INVALID);
    p2.iterations = 1;
    p2.prf = CKP_PKCS5_PBKD2_HMAC_GOSTR3411;
    let (rv, _) = generate(
        &s,
        &mut mechanism(CKM_PKCS5_PBKD2, &mut p2),
        &mut readable(32),
    );
    assert_ckr!(rv, CKR_MECHANISM_PARAM_INVALID);
}

#[test]
fn sp800_108_counter_mode_through_the_abi() {
    if !is_keyward() {
        return;
    }
    let s = session();
    // NIST CAVP KDFCTR_gen.txt, PRF=HMAC_SHA256, CTRLOCATION=BEFORE_FIXED, RLEN=32_BITS, L=320
    // (the unit tests' vector file; this one has the counter first).
    let line = include_str!("../../../keyward-core/src/mechanism/kdf/kbkdf_counter.txt")
        .lines()
        .find(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() == 7 && f[0] == "HMAC_SHA256" && f[1] == "32" && f[4] == "-"
        })
        .expect("an HMAC_SHA256 32-bit counter-first vector");
    let f: Vec<&str> = line.split_whitespace().collect();
    let (ki, mut fixed, ko) = (hex(f[3]), hex(f[5]), f[6]);
    let base = secret(&s, KeyType::GENERIC_SECRET, &ki, false);
    let mut counter = CK_SP800_108_COUNTER_FORMAT {
        bLittleEndian: CK_FALSE,
        ulWidthInBits: 32,
    };
    let mut data = [
        CK_PRF_DATA_PARAM {
            type_: CK_SP800_108_ITERATION_VARIABLE,
            pValue: (&raw mut counter).cast(),
            ulValueLen: size_of::<CK_SP800_108_COUNTER_FORMAT>() as CK_ULONG,
        },
        CK_PRF_DATA_PARAM {
            type_: CK_SP800_108_BYTE_ARRAY,
            pValue: fixed.as_mut_ptr().cast(),
            ulValueLen: fixed.len() as CK_ULONG,
        },
    ];
    let mut p = CK_SP800_108_KDF_PARAMS {
        prfType: CKM_SHA256_HMAC,
        ulNumberOfDataParams: 2,
        pDataParams: data.as_mut_ptr(),
        ulAdditionalDerivedKeys: 0,
        pAdditionalDerivedKeys: std::ptr::null_mut(),
    };
    let (rv, k) = derive(
        &s,
        &mut mechanism(CKM_SP800_108_COUNTER_KDF, &mut p),
        base,
        &mut readable(40),
    );
    assert_ckr!(rv, CKR_OK);
    assert_eq!(hex::encode(value(&s, k)), ko);

    // Additional derived keys are a documented limit.
    let mut extra_t = template(&[(CKA_VALUE_LEN, V::U(16))]);
    let mut extra_h: CK_OBJECT_HANDLE = CK_INVALID_HANDLE;
    let mut extra = CK_DERIVED_KEY {
        pTemplate: extra_t.attrs.as_mut_ptr(),
        ulAttributeCount: extra_t.attrs.len() as CK_ULONG,
        phKey: &mut extra_h,
    };
    p.ulAdditionalDerivedKeys = 1;
    p.pAdditionalDerivedKeys = &mut extra;
    let (rv, _) = derive(
        &s,
        &mut mechanism(CKM_SP800_108_COUNTER_KDF, &mut p),
        base,
        &mut readable(40),
    );
    assert_ckr!(rv, CKR_MECHANISM_PARAM_INVALID);
    // The feedback mode is not offered.
    let (rv, _) = derive(
        &s,
        &mut mechanism(CKM_SP800_108_FEEDBACK_KDF, &mut p),
        base,
        &mut readable(40),
    );
    assert_ckr!(rv, CKR_MECHANISM_INVALID);
}

#[test]
fn concatenation_keeps_inputs_protected_through_the_abi() {
    if !is_keyward() {
        return;
    }
    let s = session();
    let open = secret(&s, KeyType::GENERIC_SECRET, &[1, 2, 3, 4], false);
    let hidden = secret(&s, KeyType::GENERIC_SECRET, &[5, 6, 7, 8], true);
    let mut other = hidden;
    let mut m = mechanism(CKM_CONCATENATE_BASE_AND_KEY, &mut other);
    // A readable result from a sensitive, unextractable input is refused either way round.
    let (rv, _) = derive(&s, &mut m, open, &mut readable(8));
    assert_ckr!(rv, CKR_TEMPLATE_INCONSISTENT);
    let mut t = template(&[(CKA_TOKEN, V::B(false)), (CKA_EXTRACTABLE, V::B(true))]);
    let (rv, _) = derive(&s, &mut m, open, &mut t);
    assert_ckr!(rv, CKR_TEMPLATE_INCONSISTENT);
    // The defaults keep it protected, and the provenance says it was not always sensitive.
    let mut t = template(&[(CKA_TOKEN, V::B(false))]);
    let (rv, k) = derive(&s, &mut m, open, &mut t);
    assert_ckr!(rv, CKR_OK);
    assert!(flag(&s, k, CKA_SENSITIVE));
    assert!(!flag(&s, k, CKA_EXTRACTABLE));
    assert!(!flag(&s, k, CKA_ALWAYS_SENSITIVE));
    assert_eq!(ulong(&s, k, CKA_VALUE_LEN), 8);

    // Open inputs: the value is the concatenation, truncated by CKA_VALUE_LEN.
    let open2 = secret(&s, KeyType::GENERIC_SECRET, &[9, 9], false);
    let mut other = open2;
    let (rv, k) = derive(
        &s,
        &mut mechanism(CKM_CONCATENATE_BASE_AND_KEY, &mut other),
        open,
        &mut readable(6),
    );
    assert_ckr!(rv, CKR_OK);
    assert_eq!(value(&s, k), [1, 2, 3, 4, 9, 9]);
    let mut data = [0xaau8, 0xbb];
    let mut sd = CK_KEY_DERIVATION_STRING_DATA {
        pData: data.as_mut_ptr(),
        ulLen: 2,
    };
    let (rv, k) = derive(
        &s,
        &mut mechanism(CKM_CONCATENATE_DATA_AND_BASE, &mut sd),
        open,
        &mut readable(3),
    );
    assert_ckr!(rv, CKR_OK);
    assert_eq!(value(&s, k), [0xaa, 0xbb, 1]);
    let (rv, k) = derive(
        &s,
        &mut mechanism(CKM_CONCATENATE_BASE_AND_DATA, &mut sd),
        open,
        &mut readable(6),
    );
    assert_ckr!(rv, CKR_OK);
    assert_eq!(value(&s, k), [1, 2, 3, 4, 0xaa, 0xbb]);
    // Longer than the concatenation.
    let (rv, _) = derive(
        &s,
        &mut mechanism(CKM_CONCATENATE_BASE_AND_DATA, &mut sd),
        open,
        &mut readable(7),
    );
    assert_ckr!(rv, CKR_TEMPLATE_INCONSISTENT);
    // A sensitive base with data.
    let (rv, _) = derive(
        &s,
        &mut mechanism(CKM_CONCATENATE_BASE_AND_DATA, &mut sd),
        hidden,
        &mut readable(6),
    );
    assert_ckr!(rv, CKR_TEMPLATE_INCONSISTENT);
}

fn openssl_encrypt(cipher: Cipher, key: &[u8], iv: Option<&[u8]>, data: &[u8]) -> Vec<u8> {
    let mut c = Crypter::new(cipher, Mode::Encrypt, key, iv).expect("Crypter");
    c.pad(false);
    let mut out = vec![0; data.len() + 16];
    let n = c.update(data, &mut out).expect("update");
    let m = c.finalize(&mut out[n..]).expect("finalize");
    out.truncate(n + m);
    out
}

#[test]
fn aes_encrypt_data_matches_openssl_through_the_abi() {
    if !is_keyward() {
        return;
    }
    let s = session();
    let kv: Vec<u8> = (0..32u8).collect();
    let base = secret(&s, KeyType::AES, &kv, false);
    let mut data: Vec<u8> = (100..132u8).collect();
    let mut sd = CK_KEY_DERIVATION_STRING_DATA {
        pData: data.as_mut_ptr(),
        ulLen: 32,
    };
    let (rv, k) = derive(
        &s,
        &mut mechanism(CKM_AES_ECB_ENCRYPT_DATA, &mut sd),
        base,
        &mut readable(32),
    );
    assert_ckr!(rv, CKR_OK);
    assert_eq!(
        value(&s, k),
        openssl_encrypt(Cipher::aes_256_ecb(), &kv, None, &data)
    );

    let iv = [0x3cu8; 16];
    let mut cp = CK_AES_CBC_ENCRYPT_DATA_PARAMS {
        iv,
        pData: data.as_mut_ptr(),
        length: 32,
    };
    let (rv, k) = derive(
        &s,
        &mut mechanism(CKM_AES_CBC_ENCRYPT_DATA, &mut cp),
        base,
        &mut readable(20),
    );
    assert_ckr!(rv, CKR_OK);
    let want = openssl_encrypt(Cipher::aes_256_cbc(), &kv, Some(&iv), &data);
    assert_eq!(value(&s, k), want[..20]);
    // An AES key made of the ciphertext.
    let mut t = template(&[
        (CKA_TOKEN, V::B(false)),
        (CKA_KEY_TYPE, V::U(CKK_AES)),
        (CKA_VALUE_LEN, V::U(16)),
    ]);
    let (rv, _) = derive(
        &s,
        &mut mechanism(CKM_AES_CBC_ENCRYPT_DATA, &mut cp),
        base,
        &mut t,
    );
    assert_ckr!(rv, CKR_OK);

    // Data that is no whole number of blocks, or too short for the key.
    sd.ulLen = 20;
    let (rv, _) = derive(
        &s,
        &mut mechanism(CKM_AES_ECB_ENCRYPT_DATA, &mut sd),
        base,
        &mut readable(16),
    );
    assert_ckr!(rv, CKR_MECHANISM_PARAM_INVALID);
    sd.ulLen = 16;
    let (rv, _) = derive(
        &s,
        &mut mechanism(CKM_AES_ECB_ENCRYPT_DATA, &mut sd),
        base,
        &mut readable(32),
    );
    assert_ckr!(rv, CKR_DATA_LEN_RANGE);
    // A sensitive AES key is no encryption oracle.
    let hidden = secret(&s, KeyType::AES, &kv, true);
    let (rv, _) = derive(
        &s,
        &mut mechanism(CKM_AES_ECB_ENCRYPT_DATA, &mut sd),
        hidden,
        &mut readable(16),
    );
    assert_ckr!(rv, CKR_TEMPLATE_INCONSISTENT);
}

#[test]
fn kdf_mechanisms_are_listed_with_their_flags() {
    if !is_keyward() {
        return;
    }
    let slot = common::fresh_token();
    let id = common::slot_id(slot);
    let cases = [
        (CKM_HKDF_DERIVE, CKF_DERIVE),
        (CKM_HKDF_DATA, CKF_DERIVE),
        (CKM_HKDF_KEY_GEN, CKF_GENERATE),
        (CKM_PKCS5_PBKD2, CKF_GENERATE),
        (CKM_SP800_108_COUNTER_KDF, CKF_DERIVE),
        (CKM_CONCATENATE_BASE_AND_KEY, CKF_DERIVE),
        (CKM_CONCATENATE_BASE_AND_DATA, CKF_DERIVE),
        (CKM_CONCATENATE_DATA_AND_BASE, CKF_DERIVE),
        (CKM_AES_ECB_ENCRYPT_DATA, CKF_DERIVE),
        (CKM_AES_CBC_ENCRYPT_DATA, CKF_DERIVE),
    ];
    for (mech, flags) in cases {
        let mut info = CK_MECHANISM_INFO::default();
        assert_ckr!(call!(C_GetMechanismInfo, id, mech, &mut info), CKR_OK);
        assert_eq!(info.flags, flags, "mechanism {mech:#x}");
        assert!(info.ulMinKeySize >= 1 && info.ulMinKeySize <= info.ulMaxKeySize);
    }
}
