//! Key management rules (PKCS#11 3.0 §5.18.6–7, SECURITY KEY-02..06, ATTR-02/04): what
//! C_WrapKey refuses and in which order, CKA_WRAP_WITH_TRUSTED and CKA_TRUSTED, the wrap and
//! unwrap templates, the provenance of unwrapped keys, and key separation. The wrapping
//! mechanism is AES-GCM; the wrapped bytes are opened with the openssl crate.

use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;
use openssl::symm::{Cipher, decrypt_aead};

use super::keys;
use crate::common::{self, attr_bool, attr_bytes, attr_ulong, find, is_keyward, sh, user_session};
use crate::{assert_ckr, assert_rv, call};

const IV: [u8; 12] = [0x5a; 12];
const AAD: &[u8] = b"keyward wrap";

fn gcm(iv: &mut [u8]) -> Mechanism<'_> {
    Mechanism::AesGcm(GcmParams::new(iv, AAD, 128.into()).expect("GCM params"))
}

fn wrap(
    s: &Session,
    wrapping: ObjectHandle,
    key: ObjectHandle,
) -> cryptoki::error::Result<Vec<u8>> {
    let mut iv = IV;
    s.wrap_key(&gcm(&mut iv), wrapping, key)
}

fn unwrap(
    s: &Session,
    unwrapping: ObjectHandle,
    blob: &[u8],
    template: &[Attribute],
) -> cryptoki::error::Result<ObjectHandle> {
    let mut iv = IV;
    s.unwrap_key(&gcm(&mut iv), unwrapping, blob, template)
}

/// A readable AES wrapping key (so the test can open what it wraps).
fn wrapping_key(s: &Session, extra: &[Attribute]) -> ObjectHandle {
    let mut t = vec![
        Attribute::ValueLen(32.into()),
        Attribute::Wrap(true),
        Attribute::Unwrap(true),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ];
    t.extend_from_slice(extra);
    s.generate_key(&Mechanism::AesKeyGen, &t)
        .expect("C_GenerateKey wrapping key")
}

/// An AES key to be wrapped.
fn target(s: &Session, len: u64, extra: &[Attribute]) -> ObjectHandle {
    let mut t = vec![
        Attribute::ValueLen(len.into()),
        Attribute::Encrypt(true),
        Attribute::Extractable(true),
    ];
    t.extend_from_slice(extra);
    s.generate_key(&Mechanism::AesKeyGen, &t)
        .expect("C_GenerateKey target")
}

/// A handle that no longer names an object.
fn gone(s: &Session) -> ObjectHandle {
    let h = target(s, 16, &[]);
    s.destroy_object(h).unwrap();
    h
}

/// Open an AES-GCM wrap with the openssl crate.
fn open(wrapping_value: &[u8], blob: &[u8]) -> Vec<u8> {
    let (ct, tag) = blob.split_at(blob.len() - 16);
    decrypt_aead(
        Cipher::aes_256_gcm(),
        wrapping_value,
        Some(&IV),
        AAD,
        ct,
        tag,
    )
    .expect("openssl opens the token's wrap")
}

fn unwrap_template(len: u64) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(len.into()),
        Attribute::Encrypt(true),
    ]
}

#[test]
fn wrapped_keys_open_independently_and_unwrap_as_new_keys() {
    if !is_keyward() {
        return; // SoftHSMv2 does not wrap with AES-GCM
    }
    let s = user_session(common::fresh_token());
    let w = wrapping_key(&s, &[]);
    let w_value = attr_bytes(&s, w, AttributeType::Value);
    // Sensitive but extractable keys wrap (sensitive is not unextractable).
    let t = target(&s, 24, &[Attribute::Sensitive(true)]);
    let blob = wrap(&s, w, t).unwrap();
    assert_eq!(blob.len(), 24 + 16);
    let value = open(&w_value, &blob);
    assert_eq!(value.len(), 24);

    let u = unwrap(&s, w, &blob, &unwrap_template(24)).unwrap();
    // Provenance of an unwrapped key (ATTR-04): not local, never "always sensitive" nor
    // "never extractable", extractable by default.
    assert!(!attr_bool(&s, u, AttributeType::Local));
    assert!(!attr_bool(&s, u, AttributeType::AlwaysSensitive));
    assert!(!attr_bool(&s, u, AttributeType::NeverExtractable));
    assert!(attr_bool(&s, u, AttributeType::Extractable));
    assert_eq!(
        attr_ulong(&s, u, AttributeType::KeyGenMechanism),
        CK_UNAVAILABLE_INFORMATION
    );
    // Same key: what one encrypts the other decrypts after a second unwrap made readable.
    let readable = unwrap(
        &s,
        w,
        &blob,
        &[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Sensitive(false),
        ],
    )
    .unwrap();
    assert_eq!(attr_bytes(&s, readable, AttributeType::Value), value);
}

#[test]
fn wrap_checks_and_their_codes() {
    if !is_keyward() {
        return;
    }
    let s = user_session(common::fresh_token());
    let w = wrapping_key(&s, &[]);
    let t = target(&s, 16, &[]);
    let bogus = gone(&s);
    assert_rv!(wrap(&s, bogus, t), WrappingKeyHandleInvalid);
    assert_rv!(wrap(&s, w, bogus), KeyHandleInvalid);
    // The wrapping key must permit wrapping.
    let no_wrap = keys::gen_aes(&s, 32, &[]);
    assert_rv!(wrap(&s, no_wrap, t), KeyFunctionNotPermitted);
    // A key of the wrong type for the mechanism.
    let (ec_pub, _) = keys::gen_ec(&s, keys::P256_OID, false);
    assert_rv!(wrap(&s, ec_pub, t), WrappingKeyTypeInconsistent);
    // A mechanism that encrypts but has no integrity does not wrap (KEY-06).
    let cbc = Mechanism::AesCbcPad([0u8; 16]);
    assert_rv!(s.wrap_key(&cbc, w, t), MechanismInvalid);
    // CKA_ALLOWED_MECHANISMS of the wrapping key (KEY-02).
    let only_kw = wrapping_key(
        &s,
        &[Attribute::AllowedMechanisms(vec![
            cryptoki::mechanism::MechanismType::AES_KEY_WRAP,
        ])],
    );
    assert_rv!(wrap(&s, only_kw, t), MechanismInvalid);
    // Unextractable keys never leave, also after a refused flip back (ATTR-02).
    let fixed = keys::gen_aes(&s, 16, &[Attribute::Extractable(false)]);
    assert_rv!(wrap(&s, w, fixed), KeyUnextractable);
    let flipped = target(&s, 16, &[]);
    s.update_attributes(flipped, &[Attribute::Extractable(false)])
        .unwrap();
    assert_rv!(
        s.update_attributes(flipped, &[Attribute::Extractable(true)]),
        AttributeReadOnly
    );
    assert_rv!(wrap(&s, w, flipped), KeyUnextractable);
    // Public keys are not wrapped.
    assert_rv!(wrap(&s, w, ec_pub), KeyNotWrappable);
    assert!(wrap(&s, w, t).is_ok());

    // Length query and a short buffer through the raw call.
    let mut iv = IV;
    let mut params = CK_GCM_PARAMS {
        pIv: iv.as_mut_ptr(),
        ulIvLen: 12,
        ulIvBits: 96,
        pAAD: AAD.as_ptr() as *mut u8,
        ulAADLen: AAD.len() as CK_ULONG,
        ulTagBits: 128,
    };
    let mut mech = CK_MECHANISM {
        mechanism: CKM_AES_GCM,
        pParameter: (&mut params as *mut CK_GCM_PARAMS).cast(),
        ulParameterLen: size_of::<CK_GCM_PARAMS>() as CK_ULONG,
    };
    let mut len: CK_ULONG = 0;
    let (wh, th) = (w.handle(), t.handle());
    assert_ckr!(
        call!(
            C_WrapKey,
            sh(&s),
            &mut mech,
            wh,
            th,
            std::ptr::null_mut(),
            &mut len
        ),
        CKR_OK
    );
    assert_eq!(len, 32);
    let mut buf = [0u8; 64];
    let mut short: CK_ULONG = 31;
    assert_ckr!(
        call!(
            C_WrapKey,
            sh(&s),
            &mut mech,
            wh,
            th,
            buf.as_mut_ptr(),
            &mut short
        ),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(short, 32);
}

#[test]
fn wrap_with_trusted_needs_a_trusted_wrapping_key() {
    if !is_keyward() {
        return;
    }
    let slot = common::fresh_token();
    // Only the SO marks keys trusted; it makes a public (non-private) wrapping key the user
    // can then use.
    let w_value = [0x42u8; 32];
    {
        let so = common::so_session(slot);
        so.create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Value(w_value.to_vec()),
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Wrap(true),
            Attribute::Trusted(true),
            Attribute::Label(b"trusted-wrap".to_vec()),
        ])
        .expect("the SO creates a trusted wrapping key");
        so.logout().unwrap();
    }
    let s = user_session(slot);
    let trusted = find(&s, &[Attribute::Label(b"trusted-wrap".to_vec())])[0];
    let untrusted = wrapping_key(&s, &[]);
    // The user cannot make a key trusted, by any path (KEY-04).
    assert_rv!(
        s.update_attributes(untrusted, &[Attribute::Trusted(true)]),
        AttributeReadOnly
    );
    assert_rv!(
        s.copy_object(untrusted, &[Attribute::Trusted(true)]),
        AttributeReadOnly
    );
    let t = target(&s, 16, &[Attribute::WrapWithTrusted(true)]);
    assert_rv!(wrap(&s, untrusted, t), KeyNotWrappable);
    let blob = wrap(&s, trusted, t).expect("a trusted key wraps it");
    assert_eq!(open(&w_value, &blob).len(), 16);
    // WRAP_WITH_TRUSTED cannot be cleared.
    assert_rv!(
        s.update_attributes(t, &[Attribute::WrapWithTrusted(false)]),
        AttributeReadOnly
    );
}

/// Raw attribute storage for templates cryptoki cannot express (nested templates).
struct RawTemplate {
    values: Vec<Vec<u8>>,
    attrs: Vec<CK_ATTRIBUTE>,
}

impl RawTemplate {
    fn new() -> RawTemplate {
        RawTemplate {
            values: Vec::new(),
            attrs: Vec::new(),
        }
    }
    fn bytes(mut self, ty: CK_ATTRIBUTE_TYPE, v: &[u8]) -> RawTemplate {
        self.values.push(v.to_vec());
        let last = self.values.last_mut().expect("just pushed");
        self.attrs.push(CK_ATTRIBUTE {
            type_: ty,
            pValue: last.as_mut_ptr().cast(),
            ulValueLen: last.len() as CK_ULONG,
        });
        self
    }
    fn ulong(self, ty: CK_ATTRIBUTE_TYPE, v: CK_ULONG) -> RawTemplate {
        self.bytes(ty, &v.to_ne_bytes())
    }
    fn bool(self, ty: CK_ATTRIBUTE_TYPE, v: bool) -> RawTemplate {
        self.bytes(ty, &[CK_BBOOL::from(v)])
    }
    /// A nested template attribute pointing at `inner`'s array (which must outlive the call).
    fn nested(mut self, ty: CK_ATTRIBUTE_TYPE, inner: &mut RawTemplate) -> RawTemplate {
        self.attrs.push(CK_ATTRIBUTE {
            type_: ty,
            pValue: inner.attrs.as_mut_ptr().cast(),
            ulValueLen: (inner.attrs.len() * size_of::<CK_ATTRIBUTE>()) as CK_ULONG,
        });
        self
    }
}

/// C_GenerateKey of a 32-byte readable AES key with a nested template attribute.
fn key_with_template(
    s: &Session,
    usage: CK_ATTRIBUTE_TYPE,
    ty: CK_ATTRIBUTE_TYPE,
    inner: &mut RawTemplate,
) -> ObjectHandle {
    let label = common::unique_label("tmpl");
    let mut t = RawTemplate::new()
        .bytes(CKA_LABEL, label.as_bytes())
        .ulong(CKA_VALUE_LEN, 32)
        .bool(usage, true)
        .bool(CKA_SENSITIVE, false)
        .bool(CKA_EXTRACTABLE, true)
        .nested(ty, inner);
    let mut mech = CK_MECHANISM {
        mechanism: CKM_AES_KEY_GEN,
        pParameter: std::ptr::null_mut(),
        ulParameterLen: 0,
    };
    let mut h: CK_OBJECT_HANDLE = 0;
    assert_ckr!(
        call!(
            C_GenerateKey,
            sh(s),
            &mut mech,
            t.attrs.as_mut_ptr(),
            t.attrs.len() as CK_ULONG,
            &mut h
        ),
        CKR_OK
    );
    let found = find(s, &[Attribute::Label(label.into_bytes())]);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].handle(), h);
    found[0]
}

#[test]
fn wrap_template_limits_what_a_key_wraps() {
    if !is_keyward() {
        return;
    }
    let s = user_session(common::fresh_token());
    let mut only_256 = RawTemplate::new()
        .ulong(CKA_KEY_TYPE, CKK_AES)
        .ulong(CKA_VALUE_LEN, 32);
    let w = key_with_template(&s, CKA_WRAP, CKA_WRAP_TEMPLATE, &mut only_256);
    assert!(wrap(&s, w, target(&s, 32, &[])).is_ok());
    // One attribute matches and one does not: the spec's "shall" is CKR_KEY_HANDLE_INVALID.
    assert_rv!(wrap(&s, w, target(&s, 16, &[])), KeyHandleInvalid);
    // The template is read-only once the key exists.
    let mut again = RawTemplate::new().ulong(CKA_VALUE_LEN, 16);
    let mut set = RawTemplate::new().nested(CKA_WRAP_TEMPLATE, &mut again);
    assert_ckr!(
        call!(
            C_SetAttributeValue,
            sh(&s),
            w.handle(),
            set.attrs.as_mut_ptr(),
            1
        ),
        CKR_ATTRIBUTE_READ_ONLY
    );
}

#[test]
fn unwrap_template_is_applied_and_cannot_be_contradicted() {
    if !is_keyward() {
        return;
    }
    let s = user_session(common::fresh_token());
    let mut strict = RawTemplate::new()
        .bool(CKA_SENSITIVE, true)
        .bool(CKA_EXTRACTABLE, false);
    let w = key_with_template(&s, CKA_UNWRAP, CKA_UNWRAP_TEMPLATE, &mut strict);
    // The same key wraps for the test through a second, template-free key of equal value.
    let w_value = attr_bytes(&s, w, AttributeType::Value);
    let wrapper = s
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Value(w_value.clone()),
            Attribute::Wrap(true),
        ])
        .unwrap();
    let t = target(&s, 16, &[]);
    let blob = wrap(&s, wrapper, t).unwrap();
    let before = find(&s, &[]).len();
    let mut contradicting = unwrap_template(16);
    contradicting.push(Attribute::Extractable(true));
    assert_rv!(unwrap(&s, w, &blob, &contradicting), TemplateInconsistent);
    assert_eq!(
        find(&s, &[]).len(),
        before,
        "a failed unwrap leaves nothing"
    );
    let u = unwrap(&s, w, &blob, &unwrap_template(16)).unwrap();
    assert!(attr_bool(&s, u, AttributeType::Sensitive));
    assert!(!attr_bool(&s, u, AttributeType::Extractable));
    assert!(!attr_bool(&s, u, AttributeType::NeverExtractable));
}

#[test]
fn unwrap_checks_and_their_codes() {
    if !is_keyward() {
        return;
    }
    let s = user_session(common::fresh_token());
    let w = wrapping_key(&s, &[]);
    let blob = wrap(&s, w, target(&s, 16, &[])).unwrap();
    let before = find(&s, &[]).len();
    let bogus = gone(&s);
    assert_rv!(
        unwrap(&s, bogus, &blob, &unwrap_template(16)),
        UnwrappingKeyHandleInvalid
    );
    let (ec_pub, _) = keys::gen_ec(&s, keys::P256_OID, false);
    assert_rv!(
        unwrap(&s, ec_pub, &blob, &unwrap_template(16)),
        UnwrappingKeyTypeInconsistent
    );
    let no_unwrap = keys::gen_aes(&s, 32, &[]);
    assert_rv!(
        unwrap(&s, no_unwrap, &blob, &unwrap_template(16)),
        KeyFunctionNotPermitted
    );
    // The template names the class and the key type.
    assert_rv!(
        unwrap(&s, w, &blob, &[Attribute::KeyType(KeyType::AES)]),
        TemplateIncomplete
    );
    assert_rv!(
        unwrap(&s, w, &blob, &[Attribute::Class(ObjectClass::SECRET_KEY)]),
        TemplateIncomplete
    );
    // Integrity and length faults.
    let mut tampered = blob.clone();
    tampered[3] ^= 1;
    assert_rv!(
        unwrap(&s, w, &tampered, &unwrap_template(16)),
        WrappedKeyInvalid
    );
    assert_rv!(
        unwrap(&s, w, &blob[..10], &unwrap_template(16)),
        WrappedKeyLenRange
    );
    // The key bytes do not fit the key type.
    let long = wrap(&s, w, target(&s, 24, &[])).unwrap();
    assert_rv!(
        unwrap(
            &s,
            w,
            &long,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(32.into()),
            ],
        ),
        TemplateInconsistent
    );
    // Key material may not come from the template.
    let mut with_value = unwrap_template(16);
    with_value.push(Attribute::Value(vec![0u8; 16]));
    assert_rv!(unwrap(&s, w, &blob, &with_value), AttributeReadOnly);
    assert_eq!(
        find(&s, &[]).len(),
        before + 4,
        "only the keys the test made were added"
    );
}

#[test]
fn no_key_both_wraps_and_decrypts() {
    if !is_keyward() {
        return; // a Keyward hardening beyond the spec (SECURITY KEY-06)
    }
    let s = user_session(common::fresh_token());
    assert_rv!(
        s.generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::ValueLen(32.into()),
                Attribute::Wrap(true),
                Attribute::Decrypt(true),
            ],
        ),
        TemplateInconsistent
    );
    let w = wrapping_key(&s, &[]);
    assert_rv!(
        s.update_attributes(w, &[Attribute::Decrypt(true)]),
        TemplateInconsistent
    );
    assert_rv!(
        s.update_attributes(w, &[Attribute::Encrypt(true)]),
        TemplateInconsistent
    );
    // The attack the rule stops: wrap a sensitive key, then decrypt the blob.
    let secret = target(&s, 16, &[Attribute::Sensitive(true)]);
    let blob = wrap(&s, w, secret).unwrap();
    let mut iv = IV;
    assert_rv!(s.decrypt(&gcm(&mut iv), w, &blob), KeyFunctionNotPermitted);
}

#[test]
fn rsa_pkcs1_unwrap_is_no_padding_oracle() {
    if !is_keyward() {
        return;
    }
    let s = user_session(common::fresh_token());
    let (public, private) = s
        .generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[
                Attribute::ModulusBits(2048.into()),
                Attribute::PublicExponent(vec![1, 0, 1]),
                Attribute::Wrap(true),
            ],
            &[Attribute::Unwrap(true)],
        )
        .unwrap();
    let readable = |len: u64| {
        vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::ValueLen(len.into()),
            Attribute::Sensitive(false),
        ]
    };
    // A key wrapped by openssl (PKCS#1 v1.5) unwraps to its value.
    let spki = attr_bytes(&s, public, AttributeType::PublicKeyInfo);
    let pkey = openssl::pkey::PKey::public_key_from_der(&spki).unwrap();
    let value = [0x3cu8; 20];
    let mut enc = openssl::encrypt::Encrypter::new(&pkey).unwrap();
    enc.set_rsa_padding(openssl::rsa::Padding::PKCS1).unwrap();
    let mut blob = vec![0u8; enc.encrypt_len(&value).unwrap()];
    let n = enc.encrypt(&value, &mut blob).unwrap();
    blob.truncate(n);
    let u = s
        .unwrap_key(&Mechanism::RsaPkcs, private, &blob, &readable(20))
        .unwrap();
    assert_eq!(attr_bytes(&s, u, AttributeType::Value), value);
    // And a token wrap opens with openssl.
    let t = target(&s, 16, &[Attribute::Sensitive(false)]);
    let wrapped = s.wrap_key(&Mechanism::RsaPkcs, public, t).unwrap();
    assert_eq!(wrapped.len(), 256);
    // A garbage blob (bad padding) and a good blob of the wrong length both give CKR_OK and a
    // key of the asked length; nothing tells them apart.
    let mut garbage = blob.clone();
    garbage[100] ^= 0x40;
    for b in [&garbage, &blob] {
        let k = s
            .unwrap_key(&Mechanism::RsaPkcs, private, b, &readable(32))
            .expect("no error for a bad padding or length");
        assert_eq!(attr_bytes(&s, k, AttributeType::Value).len(), 32);
    }
    // The length must be known before decrypting, and only secret keys unwrap.
    assert_rv!(
        s.unwrap_key(
            &Mechanism::RsaPkcs,
            private,
            &blob,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
            ],
        ),
        TemplateIncomplete
    );
    assert_rv!(
        s.unwrap_key(
            &Mechanism::RsaPkcs,
            private,
            &blob,
            &[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(KeyType::EC),
            ],
        ),
        TemplateInconsistent
    );
}
