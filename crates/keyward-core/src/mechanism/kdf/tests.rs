//! Key-derivation tests: RFC 5869 (HKDF, all of appendix A in the three modes), RFC 6070 and
//! RFC 7914 (PBKDF2), NIST CAVP SP 800-108 counter-mode vectors, the concatenation
//! protection rules, and AES encryption of data checked against the `openssl` crate.

use std::collections::BTreeMap;

use openssl::symm::{Cipher, Crypter, Mode};

use super::pbkdf2::{MAX_ITERATIONS, MAX_WORK};
use super::*;
use crate::error::Error;
use crate::mechanism::registry;
use crate::types::{HkdfSalt, MechParams, PrfData};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn range(a: u8, b: u8) -> Vec<u8> {
    (a..=b).collect()
}

fn key_of(ty: CK_KEY_TYPE, value: &[u8]) -> Object {
    let mut a = Attrs::new();
    a.set(CKA_CLASS, AttrValue::Ulong(CKO_SECRET_KEY));
    a.set(CKA_KEY_TYPE, AttrValue::Ulong(ty));
    a.set(CKA_VALUE, AttrValue::bytes(value));
    a.set(CKA_DERIVE, AttrValue::Bool(true));
    a.set(CKA_SENSITIVE, AttrValue::Bool(false));
    a.set(CKA_EXTRACTABLE, AttrValue::Bool(true));
    Object::new(a)
}

fn with(obj: &Object, ty: CK_ATTRIBUTE_TYPE, v: AttrValue) -> Object {
    let mut a = obj.attrs().clone();
    a.set(ty, v);
    Object::new(a)
}

/// The keys a test's parameters may name.
#[derive(Default)]
struct Keys(BTreeMap<CK_OBJECT_HANDLE, Arc<Object>>);

impl KeyLookup for Keys {
    fn key(&self, handle: CK_OBJECT_HANDLE) -> Result<Arc<Object>> {
        self.0
            .get(&handle)
            .cloned()
            .ok_or_else(|| Code::KeyHandleInvalid.err("no such key"))
    }
}

fn template(pairs: &[(CK_ATTRIBUTE_TYPE, AttrValue)]) -> Attrs {
    let mut t = Attrs::new();
    t.set(CKA_CLASS, AttrValue::Ulong(CKO_SECRET_KEY));
    t.set(CKA_KEY_TYPE, AttrValue::Ulong(CKK_GENERIC_SECRET));
    for (ty, v) in pairs {
        t.set(*ty, v.clone());
    }
    t
}

fn len_template(len: usize) -> Attrs {
    template(&[(CKA_VALUE_LEN, AttrValue::Ulong(len as CK_ULONG))])
}

fn derive_with(
    mech: CK_MECHANISM_TYPE,
    params: MechParams,
    base: &Object,
    t: &Attrs,
    keys: &Keys,
) -> Result<Vec<u8>> {
    let m = Mechanism { mech, params };
    let out = registry().get(mech)?.derive_key(&m, base, t, keys)?;
    assert_eq!(out.iter().count(), 1, "only CKA_VALUE is produced");
    Ok(out.get_bytes(CKA_VALUE).unwrap().to_vec())
}

fn derive(
    mech: CK_MECHANISM_TYPE,
    params: MechParams,
    base: &Object,
    t: &Attrs,
) -> Result<Vec<u8>> {
    derive_with(mech, params, base, t, &Keys::default())
}

fn code<T: std::fmt::Debug>(r: Result<T>) -> Code {
    let e: Error = r.unwrap_err();
    e.code()
}

// ---------------------------------------------------------------------------------------
// HKDF

struct Rfc5869 {
    hash: CK_MECHANISM_TYPE,
    ikm: Vec<u8>,
    salt: Option<Vec<u8>>,
    info: Vec<u8>,
    prk: &'static str,
    okm: &'static str,
}

fn rfc5869() -> Vec<Rfc5869> {
    let long_ikm = range(0x00, 0x4f);
    let long_salt = range(0x60, 0xaf);
    let long_info = range(0xb0, 0xff);
    vec![
        // A.1
        Rfc5869 {
            hash: CKM_SHA256,
            ikm: vec![0x0b; 22],
            salt: Some(range(0x00, 0x0c)),
            info: range(0xf0, 0xf9),
            prk: "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
            okm: "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf\
                  34007208d5b887185865",
        },
        // A.2
        Rfc5869 {
            hash: CKM_SHA256,
            ikm: long_ikm.clone(),
            salt: Some(long_salt.clone()),
            info: long_info.clone(),
            prk: "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
            okm: "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c\
                  59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71\
                  cc30c58179ec3e87c14c01d5c1f3434f1d87",
        },
        // A.3: zero-length salt and info.
        Rfc5869 {
            hash: CKM_SHA256,
            ikm: vec![0x0b; 22],
            salt: Some(Vec::new()),
            info: Vec::new(),
            prk: "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
            okm: "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d\
                  9d201395faa4b61a96c8",
        },
        // A.4
        Rfc5869 {
            hash: CKM_SHA_1,
            ikm: vec![0x0b; 11],
            salt: Some(range(0x00, 0x0c)),
            info: range(0xf0, 0xf9),
            prk: "9b6c18c432a7bf8f0e71c8eb88f4b30baa2ba243",
            okm: "085a01ea1b10f36933068b56efa5ad81a4f14b822f5b091568a9cdd4f155fda2\
                  c22e422478d305f3f896",
        },
        // A.5
        Rfc5869 {
            hash: CKM_SHA_1,
            ikm: long_ikm,
            salt: Some(long_salt),
            info: long_info,
            prk: "8adae09a2a307059478d309b26c4115a224cfaf6",
            okm: "0bd770a74d1160f7c9f12cd5912a06ebff6adcae899d92191fe4305673ba2ffe\
                  8fa3f1a4e5ad79f3f334b3b202b2173c486ea37ce3d397ed034c7f9dfeb15c5e\
                  927336d0441f4c4300e2cff0d0900b52d3b4",
        },
        // A.6: zero-length salt and info.
        Rfc5869 {
            hash: CKM_SHA_1,
            ikm: vec![0x0b; 22],
            salt: Some(Vec::new()),
            info: Vec::new(),
            prk: "da8c8a73c7fa77288ec6f5e7c297786aa0d32d01",
            okm: "0ac1af7002b3d761d1e55298da9d0506b9ae52057220a306e07b6b87e8df21d0\
                  ea00033de03984d34918",
        },
        // A.7: salt not provided (CKF_HKDF_SALT_NULL).
        Rfc5869 {
            hash: CKM_SHA_1,
            ikm: vec![0x0c; 22],
            salt: None,
            info: Vec::new(),
            prk: "2adccada18779e7c2077ad2eb19d3f3e731385dd",
            okm: "2c91117204d745f3500d636a62f64f0ab3bae548aa53d423b0d1f27ebba6f5e5\
                  673a081d70cce7acfc48",
        },
    ]
}

fn hkdf(
    extract: bool,
    expand: bool,
    prf: CK_MECHANISM_TYPE,
    salt: HkdfSalt,
    info: &[u8],
) -> MechParams {
    MechParams::Hkdf {
        extract,
        expand,
        prf,
        salt,
        info: info.to_vec(),
    }
}

#[test]
fn rfc5869_appendix_a_in_all_three_modes() {
    for (i, v) in rfc5869().into_iter().enumerate() {
        let salt = v.salt.clone().map_or(HkdfSalt::Null, HkdfSalt::Data);
        let okm = h(v.okm);
        let prk = h(v.prk);
        let ikm = key_of(CKK_GENERIC_SECRET, &v.ikm);
        // Extract and expand.
        let full = hkdf(true, true, v.hash, salt.clone(), &v.info);
        let got = derive(CKM_HKDF_DERIVE, full, &ikm, &len_template(okm.len())).unwrap();
        assert_eq!(hex::encode(got), v.okm, "A.{} extract+expand", i + 1);
        // Extract only: the PRK, one hash long, with or without CKA_VALUE_LEN.
        let ext = hkdf(true, false, v.hash, salt.clone(), &v.info);
        let got = derive(CKM_HKDF_DERIVE, ext.clone(), &ikm, &template(&[])).unwrap();
        assert_eq!(hex::encode(got), v.prk, "A.{} extract", i + 1);
        let got = derive(CKM_HKDF_DERIVE, ext, &ikm, &len_template(prk.len())).unwrap();
        assert_eq!(got, prk);
        // Expand only, from the PRK as a CKK_HKDF key; the salt is ignored.
        let prk_key = key_of(CKK_HKDF, &prk);
        let exp = hkdf(false, true, v.hash, HkdfSalt::Key(999), &v.info);
        let got = derive(CKM_HKDF_DERIVE, exp, &prk_key, &len_template(okm.len())).unwrap();
        assert_eq!(hex::encode(got), v.okm, "A.{} expand", i + 1);
    }
}

#[test]
fn hkdf_salt_key_and_data_output() {
    let v = &rfc5869()[0];
    let ikm = key_of(CKK_GENERIC_SECRET, &v.ikm);
    let salt_key = Arc::new(key_of(CKK_HKDF, v.salt.as_deref().unwrap()));
    let mut keys = Keys::default();
    keys.0.insert(7, salt_key.clone());
    let p = hkdf(true, true, CKM_SHA256, HkdfSalt::Key(7), &v.info);
    let got = derive_with(CKM_HKDF_DERIVE, p.clone(), &ikm, &len_template(42), &keys).unwrap();
    assert_eq!(hex::encode(got), v.okm);

    // CKM_HKDF_DATA: the same bytes into a data object's CKA_VALUE.
    let mut data_t = Attrs::new();
    data_t.set(CKA_CLASS, AttrValue::Ulong(CKO_DATA));
    data_t.set(CKA_VALUE_LEN, AttrValue::Ulong(42));
    let got = derive_with(CKM_HKDF_DATA, p.clone(), &ikm, &data_t, &keys).unwrap();
    assert_eq!(hex::encode(got), v.okm);

    // A salt key must be a derive-capable HKDF or generic secret key allowing the mechanism.
    keys.0.insert(
        8,
        Arc::new(with(&salt_key, CKA_DERIVE, AttrValue::Bool(false))),
    );
    keys.0.insert(9, Arc::new(key_of(CKK_AES, &[1; 16])));
    keys.0.insert(
        10,
        Arc::new(with(
            &salt_key,
            CKA_ALLOWED_MECHANISMS,
            AttrValue::Mechanisms(vec![CKM_HKDF_DATA]),
        )),
    );
    let salted = |h| hkdf(true, true, CKM_SHA256, HkdfSalt::Key(h), &[]);
    let t = len_template(32);
    let r = derive_with(CKM_HKDF_DERIVE, salted(8), &ikm, &t, &keys);
    assert_eq!(code(r), Code::KeyFunctionNotPermitted);
    let r = derive_with(CKM_HKDF_DERIVE, salted(9), &ikm, &t, &keys);
    assert_eq!(code(r), Code::KeyTypeInconsistent);
    let r = derive_with(CKM_HKDF_DERIVE, salted(10), &ikm, &t, &keys);
    assert_eq!(code(r), Code::MechanismInvalid);
    let r = derive_with(CKM_HKDF_DERIVE, salted(11), &ikm, &t, &keys);
    assert_eq!(code(r), Code::KeyHandleInvalid);
}

#[test]
fn hkdf_parameter_and_length_errors() {
    let ikm = key_of(CKK_GENERIC_SECRET, &[0x0b; 22]);
    let t = len_template(32);
    let neither = hkdf(false, false, CKM_SHA256, HkdfSalt::Null, &[]);
    assert_eq!(
        code(derive(CKM_HKDF_DERIVE, neither, &ikm, &t)),
        Code::MechanismParamInvalid
    );
    let bad_hash = hkdf(true, true, CKM_SHA256_HMAC, HkdfSalt::Null, &[]);
    assert_eq!(
        code(derive(CKM_HKDF_DERIVE, bad_hash, &ikm, &t)),
        Code::MechanismParamInvalid
    );
    assert_eq!(
        code(derive(CKM_HKDF_DERIVE, MechParams::None, &ikm, &t)),
        Code::MechanismParamInvalid
    );
    // Extract-only makes exactly one hash.
    let ext = hkdf(true, false, CKM_SHA256, HkdfSalt::Null, &[]);
    assert_eq!(
        code(derive(CKM_HKDF_DERIVE, ext, &ikm, &len_template(16))),
        Code::TemplateInconsistent
    );
    // Expand makes at most 255 blocks.
    let full = hkdf(true, true, CKM_SHA256, HkdfSalt::Null, &[]);
    assert_eq!(
        derive(CKM_HKDF_DERIVE, full.clone(), &ikm, &len_template(255 * 32))
            .unwrap()
            .len(),
        255 * 32
    );
    assert_eq!(
        code(derive(
            CKM_HKDF_DERIVE,
            full.clone(),
            &ikm,
            &len_template(255 * 32 + 1)
        )),
        Code::AttributeValueInvalid
    );
    // An AES key takes the hash length when it is an AES length.
    let aes = template(&[(CKA_KEY_TYPE, AttrValue::Ulong(CKK_AES))]);
    assert_eq!(
        derive(CKM_HKDF_DERIVE, full.clone(), &ikm, &aes)
            .unwrap()
            .len(),
        32
    );
    let sha1 = hkdf(true, true, CKM_SHA_1, HkdfSalt::Null, &[]);
    assert_eq!(
        code(derive(CKM_HKDF_DERIVE, sha1, &ikm, &aes)),
        Code::TemplateIncomplete
    );
    // SHA-3 and SHA-512 are offered; each gives its own output.
    let a = derive(
        CKM_HKDF_DERIVE,
        hkdf(true, true, CKM_SHA3_256, HkdfSalt::Null, &[]),
        &ikm,
        &t,
    )
    .unwrap();
    let b = derive(
        CKM_HKDF_DERIVE,
        hkdf(true, true, CKM_SHA512, HkdfSalt::Null, &[]),
        &ikm,
        &t,
    )
    .unwrap();
    assert_ne!(a, b);
    // Key types outside the list are refused by the engine before the mechanism runs.
    let m = registry().get(CKM_HKDF_DERIVE).unwrap();
    assert_eq!(m.key_types(), &[CKK_GENERIC_SECRET, CKK_HKDF]);
    assert_eq!(m.info().flags, CKF_DERIVE);
}

#[test]
fn hkdf_key_generation() {
    let hkdf_len = |len: CK_ULONG| {
        let mut t = Attrs::new();
        t.set(CKA_VALUE_LEN, AttrValue::Ulong(len));
        t
    };
    let keygen = registry().get(CKM_HKDF_KEY_GEN).unwrap();
    assert_eq!(keygen.info().flags, CKF_GENERATE);
    let m = Mechanism::new(CKM_HKDF_KEY_GEN);
    let out = keygen.generate_key(&m, &hkdf_len(32)).unwrap();
    assert_eq!(out.get_ulong(CKA_KEY_TYPE), Some(CKK_HKDF));
    assert_eq!(out.get_bytes(CKA_VALUE).unwrap().len(), 32);
    assert_eq!(out.get_ulong(CKA_VALUE_LEN), Some(32));
    let other = keygen.generate_key(&m, &hkdf_len(32)).unwrap();
    assert_ne!(out.get_bytes(CKA_VALUE), other.get_bytes(CKA_VALUE));
    assert_eq!(
        code(keygen.generate_key(&m, &Attrs::new())),
        Code::TemplateIncomplete
    );
    assert_eq!(
        code(keygen.generate_key(&m, &hkdf_len(0))),
        Code::AttributeValueInvalid
    );
    assert_eq!(
        code(keygen.generate_key(&m, &hkdf_len(65))),
        Code::AttributeValueInvalid
    );
    // Another key type is refused; CKK_HKDF itself is fine.
    let mut aes = hkdf_len(16);
    aes.set(CKA_KEY_TYPE, AttrValue::Ulong(CKK_AES));
    assert_eq!(
        code(keygen.generate_key(&m, &aes)),
        Code::TemplateInconsistent
    );
    aes.set(CKA_KEY_TYPE, AttrValue::Ulong(CKK_HKDF));
    assert!(keygen.generate_key(&m, &aes).is_ok());
    let p = Mechanism {
        mech: CKM_HKDF_KEY_GEN,
        params: MechParams::Ulong(1),
    };
    assert_eq!(
        code(keygen.generate_key(&p, &hkdf_len(32))),
        Code::MechanismParamInvalid
    );
}

// ---------------------------------------------------------------------------------------
// PBKDF2

fn pbkdf2_params(prf: CK_ULONG, password: &[u8], salt: &[u8], iterations: CK_ULONG) -> Mechanism {
    Mechanism {
        mech: CKM_PKCS5_PBKD2,
        params: MechParams::Pbkdf2 {
            salt_source: CKZ_SALT_SPECIFIED,
            salt: salt.to_vec(),
            iterations,
            prf,
            password: zeroize::Zeroizing::new(password.to_vec()),
        },
    }
}

fn pbkdf2_gen(m: &Mechanism, t: &Attrs) -> Result<Vec<u8>> {
    let out = registry().get(CKM_PKCS5_PBKD2)?.generate_key(m, t)?;
    let v = out.get_bytes(CKA_VALUE).unwrap().to_vec();
    assert_eq!(out.get_ulong(CKA_VALUE_LEN), Some(v.len() as CK_ULONG));
    Ok(v)
}

#[test]
fn rfc6070_pbkdf2_hmac_sha1() {
    let cases: [(&[u8], &[u8], CK_ULONG, &str); 5] = [
        (
            b"password",
            b"salt",
            1,
            "0c60c80f961f0e71f3a9b524af6012062fe037a6",
        ),
        (
            b"password",
            b"salt",
            2,
            "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957",
        ),
        (
            b"password",
            b"salt",
            4096,
            "4b007901b765489abead49d926f721d065a429c1",
        ),
        (
            b"passwordPASSWORDpassword",
            b"saltSALTsaltSALTsaltSALTsaltSALTsalt",
            4096,
            "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038",
        ),
        (
            b"pass\0word",
            b"sa\0lt",
            4096,
            "56fa6aa75548099dcc37d7f03425e0c3",
        ),
    ];
    for (password, salt, c, dk) in cases {
        let m = pbkdf2_params(CKP_PKCS5_PBKD2_HMAC_SHA1, password, salt, c);
        let got = pbkdf2_gen(&m, &len_template(dk.len() / 2)).unwrap();
        assert_eq!(hex::encode(got), dk);
    }
    // RFC 6070's 16,777,216-iteration case is past the denial-of-service bound.
    let m = pbkdf2_params(CKP_PKCS5_PBKD2_HMAC_SHA1, b"password", b"salt", 16_777_216);
    assert_eq!(
        code(pbkdf2_gen(&m, &len_template(20))),
        Code::MechanismParamInvalid
    );
}

#[test]
fn rfc7914_pbkdf2_hmac_sha256() {
    let m = pbkdf2_params(CKP_PKCS5_PBKD2_HMAC_SHA256, b"passwd", b"salt", 1);
    assert_eq!(
        hex::encode(pbkdf2_gen(&m, &len_template(64)).unwrap()),
        "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc\
         49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"
    );
    let m = pbkdf2_params(CKP_PKCS5_PBKD2_HMAC_SHA256, b"Password", b"NaCl", 80000);
    assert_eq!(
        hex::encode(pbkdf2_gen(&m, &len_template(64)).unwrap()),
        "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56\
         a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d"
    );
}

#[test]
fn pbkdf2_matches_openssl_for_every_prf_and_key_type() {
    let prfs = [
        (
            CKP_PKCS5_PBKD2_HMAC_SHA224,
            openssl::hash::MessageDigest::sha224(),
        ),
        (
            CKP_PKCS5_PBKD2_HMAC_SHA384,
            openssl::hash::MessageDigest::sha384(),
        ),
        (
            CKP_PKCS5_PBKD2_HMAC_SHA512,
            openssl::hash::MessageDigest::sha512(),
        ),
    ];
    for (prf, md) in prfs {
        let mut want = [0u8; 70];
        openssl::pkcs5::pbkdf2_hmac(b"pin", b"0123456789abcdef", 1000, md, &mut want).unwrap();
        let m = pbkdf2_params(prf, b"pin", b"0123456789abcdef", 1000);
        assert_eq!(pbkdf2_gen(&m, &len_template(70)).unwrap(), want);
    }
    // The empty password is HMAC's empty key.
    let mut want = [0u8; 32];
    openssl::pkcs5::pbkdf2_hmac(
        b"",
        b"salt",
        3,
        openssl::hash::MessageDigest::sha256(),
        &mut want,
    )
    .unwrap();
    let m = pbkdf2_params(CKP_PKCS5_PBKD2_HMAC_SHA256, b"", b"salt", 3);
    assert_eq!(pbkdf2_gen(&m, &len_template(32)).unwrap(), want);
    // An AES key without CKA_VALUE_LEN is one hash long when that is an AES size.
    let aes = template(&[(CKA_KEY_TYPE, AttrValue::Ulong(CKK_AES))]);
    let out = registry()
        .get(CKM_PKCS5_PBKD2)
        .unwrap()
        .generate_key(&m, &aes)
        .unwrap();
    assert_eq!(out.get_ulong(CKA_KEY_TYPE), Some(CKK_AES));
    assert_eq!(out.get_bytes(CKA_VALUE), Some(&want[..]));
    // No CKA_KEY_TYPE: a generic secret one hash long.
    let out = registry()
        .get(CKM_PKCS5_PBKD2)
        .unwrap()
        .generate_key(&m, &Attrs::new())
        .unwrap();
    assert_eq!(out.get_ulong(CKA_KEY_TYPE), Some(CKK_GENERIC_SECRET));
    assert_eq!(out.get_ulong(CKA_VALUE_LEN), Some(32));
}

#[test]
fn pbkdf2_parameter_errors_and_bounds() {
    let t = len_template(32);
    let ok = pbkdf2_params(CKP_PKCS5_PBKD2_HMAC_SHA256, b"p", b"s", 1);
    assert!(pbkdf2_gen(&ok, &t).is_ok());
    let zero = pbkdf2_params(CKP_PKCS5_PBKD2_HMAC_SHA256, b"p", b"s", 0);
    assert_eq!(code(pbkdf2_gen(&zero, &t)), Code::MechanismParamInvalid);
    let many = pbkdf2_params(CKP_PKCS5_PBKD2_HMAC_SHA256, b"p", b"s", MAX_ITERATIONS + 1);
    assert_eq!(code(pbkdf2_gen(&many, &t)), Code::MechanismParamInvalid);
    // The bound is on total work: the most iterations allowed, times several blocks, is refused.
    let max = pbkdf2_params(CKP_PKCS5_PBKD2_HMAC_SHA256, b"p", b"s", MAX_ITERATIONS);
    let blocks = MAX_WORK / MAX_ITERATIONS + 1;
    assert_eq!(
        code(pbkdf2_gen(&max, &len_template(32 * blocks as usize))),
        Code::MechanismParamInvalid
    );
    let gost = pbkdf2_params(CKP_PKCS5_PBKD2_HMAC_GOSTR3411, b"p", b"s", 1);
    assert_eq!(code(pbkdf2_gen(&gost, &t)), Code::MechanismParamInvalid);
    let mut other_source = pbkdf2_params(CKP_PKCS5_PBKD2_HMAC_SHA256, b"p", b"s", 1);
    if let MechParams::Pbkdf2 { salt_source, .. } = &mut other_source.params {
        *salt_source = 2;
    }
    assert_eq!(
        code(pbkdf2_gen(&other_source, &t)),
        Code::MechanismParamInvalid
    );
    let none = Mechanism::new(CKM_PKCS5_PBKD2);
    assert_eq!(code(pbkdf2_gen(&none, &t)), Code::MechanismParamInvalid);
    let ec = template(&[(CKA_KEY_TYPE, AttrValue::Ulong(CKK_EC))]);
    assert_eq!(code(pbkdf2_gen(&ok, &ec)), Code::TemplateInconsistent);
    assert_eq!(
        code(pbkdf2_gen(&ok, &len_template(4097))),
        Code::AttributeValueInvalid
    );
    // The password is never printed.
    let p = pbkdf2_params(CKP_PKCS5_PBKD2_HMAC_SHA256, b"hunter2-secret", b"s", 1);
    let shown = format!("{p:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("68756e74"),
        "{shown}"
    );
}

// ---------------------------------------------------------------------------------------
// SP 800-108 counter mode

fn counter(bits: CK_ULONG) -> PrfData {
    PrfData::Counter {
        little_endian: false,
        bits,
    }
}

fn kbkdf(prf: CK_MECHANISM_TYPE, data: Vec<PrfData>) -> MechParams {
    MechParams::Sp800108 { prf, data }
}

#[test]
fn nist_cavp_sp800_108_counter_mode() {
    let mut n = 0;
    for line in include_str!("kbkdf_counter.txt").lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let (prf, key_type) = match f[0] {
            "CMAC_AES128" | "CMAC_AES192" | "CMAC_AES256" => (CKM_AES_CMAC, CKK_AES),
            "HMAC_SHA1" => (CKM_SHA_1_HMAC, CKK_GENERIC_SECRET),
            "HMAC_SHA224" => (CKM_SHA224_HMAC, CKK_GENERIC_SECRET),
            "HMAC_SHA256" => (CKM_SHA256_HMAC, CKK_GENERIC_SECRET),
            "HMAC_SHA384" => (CKM_SHA384_HMAC, CKK_GENERIC_SECRET),
            "HMAC_SHA512" => (CKM_SHA512_HMAC, CKK_GENERIC_SECRET),
            other => panic!("unknown PRF {other}"),
        };
        let bits: CK_ULONG = f[1].parse().unwrap();
        let l: usize = f[2].parse().unwrap();
        let mut data = Vec::new();
        if f[4] != "-" {
            data.push(PrfData::Bytes(h(f[4])));
        }
        data.push(counter(bits));
        if f[5] != "-" {
            data.push(PrfData::Bytes(h(f[5])));
        }
        let base = key_of(key_type, &h(f[3]));
        let got = derive(
            CKM_SP800_108_COUNTER_KDF,
            kbkdf(prf, data),
            &base,
            &len_template(l / 8),
        )
        .unwrap();
        assert_eq!(hex::encode(got), f[6], "{line}");
        n += 1;
    }
    assert_eq!(n, 96);
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let k = openssl::pkey::PKey::hmac(key).unwrap();
    let mut s = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &k).unwrap();
    for p in parts {
        s.update(p).unwrap();
    }
    s.sign_to_vec().unwrap()
}

#[test]
fn sp800_108_dkm_length_key_handles_and_little_endian() {
    // PRF(K, [i]_32le || label || 0x00 || context || [L]_16be || other key), L in bits.
    let k = [0x42u8; 32];
    let other = [0x99u8; 16];
    let base = key_of(CKK_GENERIC_SECRET, &k);
    let mut keys = Keys::default();
    keys.0
        .insert(5, Arc::new(key_of(CKK_GENERIC_SECRET, &other)));
    let data = |method| {
        vec![
            PrfData::Counter {
                little_endian: true,
                bits: 32,
            },
            PrfData::Bytes(b"label".to_vec()),
            PrfData::Bytes(vec![0]),
            PrfData::Bytes(b"context".to_vec()),
            PrfData::DkmLength {
                method,
                little_endian: false,
                bits: 16,
            },
            PrfData::Key(5),
        ]
    };
    let p = kbkdf(CKM_SHA256_HMAC, data(CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS));
    let got = derive_with(
        CKM_SP800_108_COUNTER_KDF,
        p,
        &base,
        &len_template(40),
        &keys,
    )
    .unwrap();
    let block = |i: u32, l: u16| {
        hmac_sha256(
            &k,
            &[
                &i.to_le_bytes(),
                b"label",
                &[0],
                b"context",
                &l.to_be_bytes(),
                &other,
            ],
        )
    };
    let mut want = block(1, 320);
    want.extend(block(2, 320));
    want.truncate(40);
    assert_eq!(got, want);
    // Sum of segments: two whole SHA-256 blocks, 512 bits.
    let p = kbkdf(
        CKM_SHA256_HMAC,
        data(CK_SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS),
    );
    let got = derive_with(
        CKM_SP800_108_COUNTER_KDF,
        p,
        &base,
        &len_template(40),
        &keys,
    )
    .unwrap();
    let mut want = block(1, 512);
    want.extend(block(2, 512));
    want.truncate(40);
    assert_eq!(got, want);
    // The named key must permit derivation.
    let locked = with(
        &key_of(CKK_GENERIC_SECRET, &other),
        CKA_DERIVE,
        AttrValue::Bool(false),
    );
    keys.0.insert(5, Arc::new(locked));
    let p = kbkdf(CKM_SHA256_HMAC, data(CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS));
    let r = derive_with(
        CKM_SP800_108_COUNTER_KDF,
        p,
        &base,
        &len_template(40),
        &keys,
    );
    assert_eq!(code(r), Code::KeyFunctionNotPermitted);
}

#[test]
fn sp800_108_layout_and_key_errors() {
    let base = key_of(CKK_GENERIC_SECRET, &[7; 32]);
    let t = len_template(32);
    let run = |data: Vec<PrfData>| {
        code(derive(
            CKM_SP800_108_COUNTER_KDF,
            kbkdf(CKM_SHA256_HMAC, data),
            &base,
            &t,
        ))
    };
    let bytes = PrfData::Bytes(b"x".to_vec());
    let dkm = PrfData::DkmLength {
        method: CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS,
        little_endian: false,
        bits: 32,
    };
    assert_eq!(run(vec![bytes.clone()]), Code::MechanismParamInvalid);
    assert_eq!(
        run(vec![counter(8), counter(8)]),
        Code::MechanismParamInvalid
    );
    assert_eq!(run(vec![counter(12)]), Code::MechanismParamInvalid);
    assert_eq!(
        run(vec![counter(8), dkm.clone(), dkm.clone()]),
        Code::MechanismParamInvalid
    );
    assert_eq!(
        run(vec![counter(8), PrfData::Bytes(Vec::new())]),
        Code::MechanismParamInvalid
    );
    let narrow = PrfData::DkmLength {
        method: CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS,
        little_endian: false,
        bits: 8,
    };
    // 256 bits do not fit in 8.
    assert_eq!(run(vec![counter(8), narrow]), Code::MechanismParamInvalid);
    let bad_method = PrfData::DkmLength {
        method: 9,
        little_endian: false,
        bits: 32,
    };
    assert_eq!(
        run(vec![counter(8), bad_method]),
        Code::MechanismParamInvalid
    );
    assert_eq!(
        run(vec![counter(8), PrfData::Key(77)]),
        Code::KeyHandleInvalid
    );
    assert_eq!(run(vec![bytes.clone(); 33]), Code::MechanismParamInvalid);
    assert!(
        derive(
            CKM_SP800_108_COUNTER_KDF,
            kbkdf(CKM_SHA256_HMAC, vec![counter(8), dkm]),
            &base,
            &t
        )
        .is_ok()
    );

    // An 8-bit counter counts to 255 blocks (AES-CMAC: 16 bytes each).
    let aes = key_of(CKK_AES, &[1; 16]);
    let cmac8 = kbkdf(CKM_AES_CMAC, vec![counter(8)]);
    let got = derive(
        CKM_SP800_108_COUNTER_KDF,
        cmac8.clone(),
        &aes,
        &len_template(255 * 16),
    );
    assert_eq!(got.unwrap().len(), 255 * 16);
    let r = derive(
        CKM_SP800_108_COUNTER_KDF,
        cmac8,
        &aes,
        &len_template(256 * 16),
    );
    assert_eq!(code(r), Code::AttributeValueInvalid);
    let ok = kbkdf(CKM_SHA_1_HMAC, vec![counter(8)]);
    let r = derive(
        CKM_SP800_108_COUNTER_KDF,
        ok.clone(),
        &base,
        &len_template(4097),
    );
    assert_eq!(code(r), Code::AttributeValueInvalid);
    // The length is needed.
    assert_eq!(
        code(derive(
            CKM_SP800_108_COUNTER_KDF,
            ok.clone(),
            &base,
            &template(&[])
        )),
        Code::TemplateIncomplete
    );

    // PRF and key type must agree.
    assert_eq!(
        code(derive(CKM_SP800_108_COUNTER_KDF, ok.clone(), &aes, &t)),
        Code::KeyTypeInconsistent
    );
    let cmac = kbkdf(CKM_AES_CMAC, vec![counter(8)]);
    assert_eq!(
        code(derive(CKM_SP800_108_COUNTER_KDF, cmac.clone(), &base, &t)),
        Code::KeyTypeInconsistent
    );
    assert_eq!(
        derive(CKM_SP800_108_COUNTER_KDF, cmac, &aes, &t)
            .unwrap()
            .len(),
        32
    );
    let sha256_type = key_of(CKK_SHA256_HMAC, &[7; 32]);
    let p = kbkdf(CKM_SHA256_HMAC, vec![counter(8)]);
    assert!(derive(CKM_SP800_108_COUNTER_KDF, p.clone(), &sha256_type, &t).is_ok());
    assert_eq!(
        code(derive(CKM_SP800_108_COUNTER_KDF, ok, &sha256_type, &t)),
        Code::KeyTypeInconsistent
    );
    let unknown = kbkdf(CKM_SHA256, vec![counter(8)]);
    assert_eq!(
        code(derive(CKM_SP800_108_COUNTER_KDF, unknown, &base, &t)),
        Code::MechanismParamInvalid
    );
    let m = registry().get(CKM_SP800_108_COUNTER_KDF).unwrap();
    assert_eq!(m.info().flags, CKF_DERIVE);
    assert!(registry().get(CKM_SP800_108_FEEDBACK_KDF).is_err());
}

// ---------------------------------------------------------------------------------------
// Concatenation

fn protected(value: &[u8], sensitive: bool, extractable: bool) -> Object {
    let k = key_of(CKK_GENERIC_SECRET, value);
    let k = with(&k, CKA_SENSITIVE, AttrValue::Bool(sensitive));
    with(&k, CKA_EXTRACTABLE, AttrValue::Bool(extractable))
}

#[test]
fn concatenation_values_and_lengths() {
    let base = protected(&[1, 2, 3, 4], false, true);
    let mut keys = Keys::default();
    keys.0.insert(
        3,
        Arc::new(protected(&[0x89, 0xab, 0xcd, 0xef], false, true)),
    );
    let t = template(&[]);
    let got = derive_with(
        CKM_CONCATENATE_BASE_AND_KEY,
        MechParams::Ulong(3),
        &base,
        &t,
        &keys,
    )
    .unwrap();
    assert_eq!(got, [1, 2, 3, 4, 0x89, 0xab, 0xcd, 0xef]);
    let data = MechParams::Bytes(vec![9, 9]);
    assert_eq!(
        derive(CKM_CONCATENATE_BASE_AND_DATA, data.clone(), &base, &t).unwrap(),
        [1, 2, 3, 4, 9, 9]
    );
    assert_eq!(
        derive(CKM_CONCATENATE_DATA_AND_BASE, data.clone(), &base, &t).unwrap(),
        [9, 9, 1, 2, 3, 4]
    );
    // CKA_VALUE_LEN truncates from the end and may not exceed the concatenation.
    assert_eq!(
        derive(
            CKM_CONCATENATE_DATA_AND_BASE,
            data.clone(),
            &base,
            &len_template(3)
        )
        .unwrap(),
        [9, 9, 1]
    );
    assert_eq!(
        code(derive(
            CKM_CONCATENATE_BASE_AND_DATA,
            data.clone(),
            &base,
            &len_template(7)
        )),
        Code::TemplateInconsistent
    );
    // A key type of fixed length takes that length; too short a concatenation fails.
    let aes = template(&[(CKA_KEY_TYPE, AttrValue::Ulong(CKK_AES))]);
    assert_eq!(
        code(derive(
            CKM_CONCATENATE_BASE_AND_DATA,
            data.clone(),
            &base,
            &aes
        )),
        Code::TemplateIncomplete
    );
    let aes16 = template(&[
        (CKA_KEY_TYPE, AttrValue::Ulong(CKK_AES)),
        (CKA_VALUE_LEN, AttrValue::Ulong(16)),
    ]);
    assert_eq!(
        code(derive(
            CKM_CONCATENATE_BASE_AND_DATA,
            data.clone(),
            &base,
            &aes16
        )),
        Code::TemplateInconsistent
    );
    // Wrong parameter shapes.
    assert_eq!(
        code(derive(
            CKM_CONCATENATE_BASE_AND_DATA,
            MechParams::Ulong(3),
            &base,
            &t
        )),
        Code::MechanismParamInvalid
    );
    assert_eq!(
        code(derive(CKM_CONCATENATE_BASE_AND_KEY, data, &base, &t)),
        Code::MechanismParamInvalid
    );
    assert_eq!(
        code(derive_with(
            CKM_CONCATENATE_BASE_AND_KEY,
            MechParams::Ulong(4),
            &base,
            &t,
            &keys
        )),
        Code::KeyHandleInvalid
    );
}

#[test]
fn concatenation_keeps_sensitive_and_unextractable_inputs_protected() {
    let open = protected(&[1; 8], false, true);
    let sensitive = protected(&[2; 8], true, true);
    let unextractable = protected(&[3; 8], false, false);
    let mut keys = Keys::default();
    keys.0
        .insert(1, Arc::new(Object::new(open.attrs().clone())));
    keys.0
        .insert(2, Arc::new(Object::new(sensitive.attrs().clone())));
    keys.0
        .insert(3, Arc::new(Object::new(unextractable.attrs().clone())));
    let readable = template(&[
        (CKA_SENSITIVE, AttrValue::Bool(false)),
        (CKA_EXTRACTABLE, AttrValue::Bool(true)),
    ]);
    let not_sensitive = template(&[(CKA_SENSITIVE, AttrValue::Bool(false))]);
    let extractable = template(&[(CKA_EXTRACTABLE, AttrValue::Bool(true))]);
    let defaults = template(&[]);
    let concat = |base: &Object, other, t: &Attrs| {
        derive_with(
            CKM_CONCATENATE_BASE_AND_KEY,
            MechParams::Ulong(other),
            base,
            t,
            &keys,
        )
    };
    // Open inputs may give a readable key.
    assert!(concat(&open, 1, &readable).is_ok());
    // A sensitive input (base or other) forbids SENSITIVE=FALSE; defaults are fine.
    assert_eq!(
        code(concat(&open, 2, &not_sensitive)),
        Code::TemplateInconsistent
    );
    assert_eq!(
        code(concat(&sensitive, 1, &not_sensitive)),
        Code::TemplateInconsistent
    );
    assert!(concat(&sensitive, 1, &extractable).is_ok());
    assert!(concat(&open, 2, &defaults).is_ok());
    // An unextractable input forbids EXTRACTABLE=TRUE.
    assert_eq!(
        code(concat(&open, 3, &extractable)),
        Code::TemplateInconsistent
    );
    assert_eq!(
        code(concat(&unextractable, 1, &extractable)),
        Code::TemplateInconsistent
    );
    assert!(concat(&unextractable, 1, &not_sensitive).is_ok());
    // A key without the attributes counts as protected.
    let bare = {
        let mut a = Attrs::new();
        a.set(CKA_CLASS, AttrValue::Ulong(CKO_SECRET_KEY));
        a.set(CKA_KEY_TYPE, AttrValue::Ulong(CKK_GENERIC_SECRET));
        a.set(CKA_VALUE, AttrValue::bytes(vec![4; 8]));
        Object::new(a)
    };
    let data = MechParams::Bytes(vec![5]);
    assert_eq!(
        code(derive(
            CKM_CONCATENATE_BASE_AND_DATA,
            data.clone(),
            &bare,
            &not_sensitive
        )),
        Code::TemplateInconsistent
    );
    assert_eq!(
        code(derive(
            CKM_CONCATENATE_DATA_AND_BASE,
            data.clone(),
            &bare,
            &extractable
        )),
        Code::TemplateInconsistent
    );
    assert!(derive(CKM_CONCATENATE_DATA_AND_BASE, data, &open, &readable).is_ok());
}

// ---------------------------------------------------------------------------------------
// AES encryption of data

fn openssl_aes(mode: &str, key: &[u8], iv: Option<&[u8]>, data: &[u8]) -> Vec<u8> {
    let cipher = match (mode, key.len()) {
        ("ecb", 16) => Cipher::aes_128_ecb(),
        ("ecb", 24) => Cipher::aes_192_ecb(),
        ("ecb", 32) => Cipher::aes_256_ecb(),
        ("cbc", 16) => Cipher::aes_128_cbc(),
        ("cbc", 24) => Cipher::aes_192_cbc(),
        ("cbc", 32) => Cipher::aes_256_cbc(),
        _ => unreachable!(),
    };
    let mut c = Crypter::new(cipher, Mode::Encrypt, key, iv).unwrap();
    c.pad(false);
    let mut out = vec![0; data.len() + 16];
    let n = c.update(data, &mut out).unwrap();
    let m = c.finalize(&mut out[n..]).unwrap();
    out.truncate(n + m);
    out
}

#[test]
fn aes_encrypt_data_matches_openssl() {
    let data: Vec<u8> = (0..48u8).collect();
    let iv = [0xa5u8; 16];
    for klen in [16usize, 24, 32] {
        let kv: Vec<u8> = (0..klen as u8).map(|b| b.wrapping_mul(7)).collect();
        let base = with(&key_of(CKK_AES, &kv), CKA_SENSITIVE, AttrValue::Bool(false));
        let ecb = derive(
            CKM_AES_ECB_ENCRYPT_DATA,
            MechParams::Bytes(data.clone()),
            &base,
            &template(&[]),
        )
        .unwrap();
        assert_eq!(ecb, openssl_aes("ecb", &kv, None, &data));
        let p = MechParams::EncryptData {
            iv: iv.to_vec(),
            data: data.clone(),
        };
        let cbc = derive(CKM_AES_CBC_ENCRYPT_DATA, p.clone(), &base, &template(&[])).unwrap();
        assert_eq!(cbc, openssl_aes("cbc", &kv, Some(&iv), &data));
        // Truncated from the end to an AES key.
        let aes = template(&[
            (CKA_KEY_TYPE, AttrValue::Ulong(CKK_AES)),
            (CKA_VALUE_LEN, AttrValue::Ulong(24)),
        ]);
        let got = derive(CKM_AES_CBC_ENCRYPT_DATA, p, &base, &aes).unwrap();
        assert_eq!(got, cbc[..24]);
    }
}

#[test]
fn aes_encrypt_data_errors_and_protection() {
    let base = with(
        &key_of(CKK_AES, &[3; 16]),
        CKA_SENSITIVE,
        AttrValue::Bool(false),
    );
    let t = template(&[]);
    let ecb = |d: Vec<u8>, t: &Attrs, k: &Object| {
        derive(CKM_AES_ECB_ENCRYPT_DATA, MechParams::Bytes(d), k, t)
    };
    assert_eq!(
        code(ecb(vec![0; 15], &t, &base)),
        Code::MechanismParamInvalid
    );
    assert_eq!(
        code(ecb(Vec::new(), &t, &base)),
        Code::MechanismParamInvalid
    );
    // Data too short for the key asked for: the spec's CKR_DATA_LEN_RANGE.
    assert_eq!(
        code(ecb(vec![0; 16], &len_template(32), &base)),
        Code::DataLenRange
    );
    let short_iv = MechParams::EncryptData {
        iv: vec![0; 8],
        data: vec![0; 16],
    };
    assert_eq!(
        code(derive(CKM_AES_CBC_ENCRYPT_DATA, short_iv, &base, &t)),
        Code::MechanismParamInvalid
    );
    assert_eq!(
        code(derive(
            CKM_AES_CBC_ENCRYPT_DATA,
            MechParams::Bytes(vec![0; 16]),
            &base,
            &t
        )),
        Code::MechanismParamInvalid
    );
    // A sensitive or unextractable AES key does not become an encryption oracle.
    let sensitive = with(&base, CKA_SENSITIVE, AttrValue::Bool(true));
    let readable = template(&[(CKA_SENSITIVE, AttrValue::Bool(false))]);
    assert_eq!(
        code(ecb(vec![0; 16], &readable, &sensitive)),
        Code::TemplateInconsistent
    );
    assert!(ecb(vec![0; 16], &t, &sensitive).is_ok());
    let unextractable = with(&base, CKA_EXTRACTABLE, AttrValue::Bool(false));
    let extractable = template(&[(CKA_EXTRACTABLE, AttrValue::Bool(true))]);
    assert_eq!(
        code(ecb(vec![0; 16], &extractable, &unextractable)),
        Code::TemplateInconsistent
    );
    let m = registry().get(CKM_AES_CBC_ENCRYPT_DATA).unwrap();
    assert_eq!(
        (m.info().min_key_size, m.info().max_key_size, m.info().flags),
        (16, 32, CKF_DERIVE)
    );
    assert_eq!(m.key_types(), &[CKK_AES]);
}
