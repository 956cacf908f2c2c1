//! C_GetAttributeValue (PKCS#11 3.0 §5.7.5): every template entry is processed, and the
//! value of a sensitive or unextractable secret never reaches a caller buffer
//! (SECURITY ATTR-05: canary-filled buffers, the four SENSITIVE × EXTRACTABLE cases).

use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;

use super::keys::{self, P256_OID};
use crate::common::{self, attr_bool, user_session};
use crate::{assert_ckr, call};

const CANARY: u8 = 0xA5;
/// An attribute type no object has.
const UNKNOWN: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | 0x5eed;

fn get(s: &Session, obj: ObjectHandle, t: &mut [CK_ATTRIBUTE]) -> CK_RV {
    call!(
        C_GetAttributeValue,
        s.handle(),
        obj.handle(),
        t.as_mut_ptr(),
        t.len() as CK_ULONG
    )
}

fn entry(ty: CK_ATTRIBUTE_TYPE, buf: &mut [u8]) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_: ty,
        pValue: buf.as_mut_ptr().cast(),
        ulValueLen: buf.len() as CK_ULONG,
    }
}

#[test]
fn mixed_template_processes_every_attribute() {
    let slot = common::fresh_token();
    let s = user_session(slot);
    let key = keys::gen_aes(
        &s,
        32,
        &[
            Attribute::Label(b"mixed-template".to_vec()),
            Attribute::Id(vec![1, 2, 3, 4]),
        ],
    );
    let mut value = [CANARY; 64];
    let mut label = [CANARY; 64];
    let mut unknown = [CANARY; 16];
    let mut small_id = [CANARY; 2];
    let mut class = [CANARY; size_of::<CK_OBJECT_CLASS>()];
    let mut t = [
        entry(CKA_VALUE, &mut value),
        entry(CKA_LABEL, &mut label),
        entry(UNKNOWN, &mut unknown),
        entry(CKA_ID, &mut small_id),
        entry(CKA_CLASS, &mut class),
    ];
    let rv = get(&s, key, &mut t);
    assert!(
        [
            CKR_ATTRIBUTE_SENSITIVE,
            CKR_ATTRIBUTE_TYPE_INVALID,
            CKR_BUFFER_TOO_SMALL
        ]
        .contains(&rv),
        "rv {rv:#x}: one of the three applicable codes"
    );
    assert_eq!(
        t[0].ulValueLen, CK_UNAVAILABLE_INFORMATION,
        "sensitive value"
    );
    assert_eq!(t[1].ulValueLen, 14, "the label is copied");
    assert_eq!(t[2].ulValueLen, CK_UNAVAILABLE_INFORMATION, "unknown type");
    assert_eq!(
        t[3].ulValueLen, CK_UNAVAILABLE_INFORMATION,
        "too-small buffer"
    );
    assert_eq!(t[4].ulValueLen, size_of::<CK_OBJECT_CLASS>() as CK_ULONG);
    assert!(
        value.iter().all(|b| *b == CANARY),
        "nothing written for the sensitive value"
    );
    assert_eq!(&label[..14], b"mixed-template");
    assert!(
        label[14..].iter().all(|b| *b == CANARY),
        "nothing past the label"
    );
    assert!(unknown.iter().all(|b| *b == CANARY));
    assert_eq!(
        CK_OBJECT_CLASS::from_ne_bytes(class),
        CKO_SECRET_KEY,
        "entries after errors are filled"
    );

    // A length query processes every entry as well.
    let mut q = [
        CK_ATTRIBUTE {
            type_: CKA_VALUE,
            pValue: std::ptr::null_mut(),
            ulValueLen: 0,
        },
        CK_ATTRIBUTE {
            type_: CKA_ID,
            pValue: std::ptr::null_mut(),
            ulValueLen: 0,
        },
        CK_ATTRIBUTE {
            type_: UNKNOWN,
            pValue: std::ptr::null_mut(),
            ulValueLen: 0,
        },
        CK_ATTRIBUTE {
            type_: CKA_LABEL,
            pValue: std::ptr::null_mut(),
            ulValueLen: 0,
        },
    ];
    let rv = get(&s, key, &mut q);
    assert!(
        [CKR_ATTRIBUTE_SENSITIVE, CKR_ATTRIBUTE_TYPE_INVALID].contains(&rv),
        "{rv:#x}"
    );
    assert_eq!(q[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    assert_eq!(q[1].ulValueLen, 4);
    assert_eq!(q[2].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    assert_eq!(q[3].ulValueLen, 14);
}

/// (SENSITIVE, EXTRACTABLE) → may CKA_VALUE be read? Only FALSE/TRUE.
#[test]
fn secret_value_matrix() {
    let slot = common::fresh_token();
    let s = user_session(slot);
    for (sensitive, extractable) in [(true, true), (true, false), (false, false), (false, true)] {
        let value = vec![0x3c; 32];
        let key = s
            .create_object(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Value(value.clone()),
                Attribute::Sensitive(sensitive),
                Attribute::Extractable(extractable),
            ])
            .unwrap();
        assert_eq!(attr_bool(&s, key, AttributeType::Sensitive), sensitive);
        let mut buf = [CANARY; 48];
        let mut t = [entry(CKA_VALUE, &mut buf)];
        let rv = get(&s, key, &mut t);
        let readable = !sensitive && extractable;
        if readable {
            assert_ckr!(rv, CKR_OK);
            assert_eq!(t[0].ulValueLen, 32);
            assert_eq!(&buf[..32], value.as_slice());
        } else {
            assert_eq!(
                rv, CKR_ATTRIBUTE_SENSITIVE,
                "S={sensitive} E={extractable}: {rv:#x}"
            );
            assert_eq!(t[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
            assert!(
                buf.iter().all(|b| *b == CANARY),
                "S={sensitive} E={extractable} leaked"
            );
        }
    }
}

/// Every secret component of generated private keys stays in the token.
#[test]
fn generated_private_key_components_are_hidden() {
    let slot = common::fresh_token();
    let s = user_session(slot);
    let (_, ec) = keys::gen_ec(&s, P256_OID, false);
    let (_, rsa) = keys::gen_rsa(&s, 2048);
    let cases: [(ObjectHandle, &[CK_ATTRIBUTE_TYPE]); 2] = [
        (ec, &[CKA_VALUE]),
        (
            rsa,
            &[
                CKA_PRIVATE_EXPONENT,
                CKA_PRIME_1,
                CKA_PRIME_2,
                CKA_EXPONENT_1,
                CKA_EXPONENT_2,
                CKA_COEFFICIENT,
            ],
        ),
    ];
    for (key, types) in cases {
        for ty in types {
            let mut buf = [CANARY; 600];
            let mut t = [entry(*ty, &mut buf)];
            let rv = get(&s, key, &mut t);
            assert_ckr!(rv, CKR_ATTRIBUTE_SENSITIVE);
            assert_eq!(t[0].ulValueLen, CK_UNAVAILABLE_INFORMATION, "{ty:#x}");
            assert!(buf.iter().all(|b| *b == CANARY), "{ty:#x} leaked");
        }
        // The well-formed key carries its policy attributes.
        for ty in [
            AttributeType::Sensitive,
            AttributeType::Extractable,
            AttributeType::AlwaysSensitive,
            AttributeType::NeverExtractable,
            AttributeType::Local,
            AttributeType::Private,
        ] {
            let (rv, len, _) = common::raw_attr(&s, key, ty.into());
            assert_ckr!(rv, CKR_OK);
            assert_eq!(len, 1, "{ty:?}");
        }
    }
}

#[test]
fn exact_length_and_too_small_buffers() {
    let slot = common::fresh_token();
    let s = user_session(slot);
    let obj = s
        .create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(false),
            Attribute::Value(vec![0x11; 40]),
        ])
        .unwrap();
    let mut exact = [CANARY; 40];
    let mut t = [entry(CKA_VALUE, &mut exact)];
    assert_ckr!(get(&s, obj, &mut t), CKR_OK);
    assert_eq!(t[0].ulValueLen, 40);
    assert!(exact.iter().all(|b| *b == 0x11));
    let mut small = [CANARY; 39];
    let mut t = [entry(CKA_VALUE, &mut small)];
    assert_ckr!(get(&s, obj, &mut t), CKR_BUFFER_TOO_SMALL);
    assert_eq!(t[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
}
