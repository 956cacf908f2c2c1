//! Template decoding and C_GetAttributeValue writing, with misaligned buffers and guard bytes.

use std::mem::size_of;
use std::ptr::null_mut;

use super::*;

fn attr(ty: CK_ATTRIBUTE_TYPE, p: *mut u8, len: usize) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_: ty,
        pValue: p.cast(),
        ulValueLen: len as CK_ULONG,
    }
}

fn read_vec(t: &[CK_ATTRIBUTE]) -> Result<Vec<Attribute>> {
    // SAFETY: every pValue in the tests points into live local buffers of the stated size.
    unsafe { read(t.as_ptr(), t.len() as CK_ULONG) }
}

#[test]
fn decodes_each_kind_from_misaligned_values() {
    // One buffer, values placed at odd offsets.
    let mut buf = [0u8; 64];
    let ul = size_of::<CK_ULONG>();
    buf[1] = CK_TRUE;
    buf[3..3 + ul].copy_from_slice(&CKO_SECRET_KEY.to_ne_bytes());
    buf[20..23].copy_from_slice(b"abc");
    buf[25..25 + ul].copy_from_slice(&CKM_AES_GCM.to_ne_bytes());
    buf[25 + ul..25 + 2 * ul].copy_from_slice(&CKM_AES_CBC.to_ne_bytes());
    let base = buf.as_mut_ptr();
    let t = [
        attr(CKA_TOKEN, base.wrapping_add(1), 1),
        attr(CKA_CLASS, base.wrapping_add(3), ul),
        attr(CKA_LABEL, base.wrapping_add(20), 3),
        attr(CKA_ALLOWED_MECHANISMS, base.wrapping_add(25), 2 * ul),
        attr(CKA_ID, null_mut(), 0),
    ];
    let got = read_vec(&t).unwrap();
    assert_eq!(
        got,
        vec![
            Attribute::bool(CKA_TOKEN, true),
            Attribute::ulong(CKA_CLASS, CKO_SECRET_KEY),
            Attribute::bytes(CKA_LABEL, b"abc".to_vec()),
            Attribute {
                ty: CKA_ALLOWED_MECHANISMS,
                value: AttrValue::Mechanisms(vec![CKM_AES_GCM, CKM_AES_CBC]),
            },
            Attribute::bytes(CKA_ID, Vec::new()),
        ]
    );
}

#[test]
fn fixed_sizes_are_exact() {
    let mut b = [0u8; 16];
    let p = b.as_mut_ptr();
    for (ty, len) in [
        (CKA_TOKEN, 0),
        (CKA_TOKEN, 2),
        (CKA_CLASS, 4.min(size_of::<CK_ULONG>() - 1)),
        (CKA_CLASS, size_of::<CK_ULONG>() + 1),
        (CKA_ALLOWED_MECHANISMS, size_of::<CK_ULONG>() + 1),
        (CKA_WRAP_TEMPLATE, size_of::<CK_ATTRIBUTE>() - 1),
    ] {
        let e = read_vec(&[attr(ty, p, len)]).unwrap_err();
        assert_eq!(
            e.code(),
            Code::AttributeValueInvalid,
            "type {ty:#x} len {len}"
        );
    }
}

#[test]
fn null_value_with_length_is_value_invalid() {
    let e = read_vec(&[attr(CKA_LABEL, null_mut(), 4)]).unwrap_err();
    assert_eq!(e.code(), Code::AttributeValueInvalid);
}

#[test]
fn null_template_with_count_is_arguments_bad() {
    // SAFETY: NULL with a count is refused before any access.
    let e = unsafe { read(std::ptr::null(), 2) }.unwrap_err();
    assert_eq!(e.code(), Code::ArgumentsBad);
    // SAFETY: NULL with count 0 is never dereferenced.
    assert!(unsafe { read(std::ptr::null(), 0) }.unwrap().is_empty());
}

#[test]
fn nested_template_one_level_from_misaligned_array() {
    let mut sign = CK_TRUE;
    let inner = [attr(CKA_SIGN, &mut sign, 1)];
    // Copy the inner array to an odd offset.
    let bytes = size_of_val(&inner);
    let mut store = vec![0u8; bytes + 1];
    // SAFETY: `store` has bytes + 1 bytes; the source is a live array of `bytes` bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(
            inner.as_ptr().cast::<u8>(),
            store.as_mut_ptr().add(1),
            bytes,
        )
    };
    let t = [attr(
        CKA_WRAP_TEMPLATE,
        store.as_mut_ptr().wrapping_add(1),
        bytes,
    )];
    let got = read_vec(&t).unwrap();
    assert_eq!(
        got,
        vec![Attribute {
            ty: CKA_WRAP_TEMPLATE,
            value: AttrValue::Template(vec![Attribute::bool(CKA_SIGN, true)]),
        }]
    );

    // A template inside a template is refused.
    let mut inner2 = [attr(CKA_UNWRAP_TEMPLATE, null_mut(), 0)];
    let t2 = [attr(
        CKA_WRAP_TEMPLATE,
        inner2.as_mut_ptr().cast(),
        size_of_val(&inner2),
    )];
    assert_eq!(
        read_vec(&t2).unwrap_err().code(),
        Code::TemplateInconsistent
    );
}

const GUARD: u8 = 0xA5;

#[test]
fn get_attribute_value_five_cases_process_every_entry() {
    let mut label = [GUARD; 8];
    let mut secret = [GUARD; 8];
    let mut small = [GUARD; 8];
    let mut tok = [GUARD; 2];
    let mut t = [
        attr(CKA_LABEL, label.as_mut_ptr(), 5),  // case 4: copied
        attr(CKA_VALUE, secret.as_mut_ptr(), 8), // case 1: sensitive
        attr(CKA_ID, small.as_mut_ptr(), 2),     // case 5: too small
        attr(CKA_SUBJECT, null_mut(), 0),        // case 3: length query
        attr(0x8000_1234, null_mut(), 0),        // case 2: invalid
        attr(CKA_TOKEN, tok.as_mut_ptr(), 1),    // bool
    ];
    let results = vec![
        AttrResult::Value(AttrValue::bytes(b"abc".to_vec())),
        AttrResult::Sensitive,
        AttrResult::Value(AttrValue::bytes(b"xyz".to_vec())),
        AttrResult::Value(AttrValue::bytes(vec![1; 30])),
        AttrResult::Invalid,
        AttrResult::Value(AttrValue::Bool(true)),
    ];
    // SAFETY: every pValue points to a live local buffer at least ulValueLen long.
    let rt = unsafe { ResultTemplate::new(t.as_mut_ptr(), t.len() as CK_ULONG) }.unwrap();
    assert_eq!(
        rt.types(),
        vec![
            CKA_LABEL,
            CKA_VALUE,
            CKA_ID,
            CKA_SUBJECT,
            0x8000_1234,
            CKA_TOKEN
        ]
    );
    let e = rt.write(&results).unwrap_err();
    assert_eq!(e.code(), Code::AttributeSensitive);
    let lens: Vec<CK_ULONG> = t.iter().map(|a| a.ulValueLen).collect();
    assert_eq!(
        lens,
        vec![
            3,
            CK_UNAVAILABLE_INFORMATION,
            CK_UNAVAILABLE_INFORMATION,
            30,
            CK_UNAVAILABLE_INFORMATION,
            1
        ]
    );
    assert_eq!(label, [b'a', b'b', b'c', GUARD, GUARD, GUARD, GUARD, GUARD]);
    assert_eq!(secret, [GUARD; 8]);
    assert_eq!(small, [GUARD; 8]);
    assert_eq!(tok, [CK_TRUE, GUARD]);
}

#[test]
fn get_attribute_value_code_priority() {
    let mut small = [GUARD; 1];
    let mut t = [
        attr(CKA_LABEL, small.as_mut_ptr(), 1),
        attr(CKA_ID, null_mut(), 0),
    ];
    // SAFETY: live local buffers.
    let rt = unsafe { ResultTemplate::new(t.as_mut_ptr(), 2) }.unwrap();
    let e = rt
        .write(&[
            AttrResult::Value(AttrValue::bytes(b"ab".to_vec())),
            AttrResult::Invalid,
        ])
        .unwrap_err();
    assert_eq!(e.code(), Code::AttributeTypeInvalid);
    // Only a short buffer: CKR_BUFFER_TOO_SMALL.
    let mut t = [attr(CKA_LABEL, small.as_mut_ptr(), 1)];
    // SAFETY: live local buffer.
    let rt = unsafe { ResultTemplate::new(t.as_mut_ptr(), 1) }.unwrap();
    let e = rt
        .write(&[AttrResult::Value(AttrValue::bytes(b"ab".to_vec()))])
        .unwrap_err();
    assert_eq!(e.code(), Code::BufferTooSmall);
    assert_eq!(small, [GUARD]);
}

#[test]
fn get_attribute_value_ulong_mechanisms_and_nested_template() {
    let ul = size_of::<CK_ULONG>();
    let mut class = vec![GUARD; ul + 1];
    let mut mechs = vec![GUARD; 2 * ul];
    let mut t = [
        attr(CKA_CLASS, class.as_mut_ptr().wrapping_add(1), ul), // misaligned output
        attr(CKA_ALLOWED_MECHANISMS, mechs.as_mut_ptr(), 2 * ul),
        attr(CKA_WRAP_TEMPLATE, null_mut(), 0),
    ];
    let stored = vec![
        Attribute::bool(CKA_SIGN, true),
        Attribute::bytes(CKA_LABEL, b"xy".to_vec()),
    ];
    let results = vec![
        AttrResult::Value(AttrValue::Ulong(CKO_PRIVATE_KEY)),
        AttrResult::Value(AttrValue::Mechanisms(vec![CKM_ECDSA, CKM_EDDSA])),
        AttrResult::Value(AttrValue::Template(stored.clone())),
    ];
    // SAFETY: live local buffers of the stated sizes.
    let rt = unsafe { ResultTemplate::new(t.as_mut_ptr(), 3) }.unwrap();
    rt.write(&results).unwrap();
    assert_eq!(class[0], GUARD);
    assert_eq!(class[1..], CKO_PRIVATE_KEY.to_ne_bytes());
    assert_eq!(mechs[..ul], CKM_ECDSA.to_ne_bytes());
    assert_eq!(mechs[ul..], CKM_EDDSA.to_ne_bytes());
    // Template length in C layout.
    assert_eq!(t[2].ulValueLen as usize, 2 * size_of::<CK_ATTRIBUTE>());

    // Second round: the caller supplies an array of two entries with NULL values (lengths).
    let mut nested = [attr(0, null_mut(), 0), attr(0, null_mut(), 0)];
    let mut t = [attr(
        CKA_WRAP_TEMPLATE,
        nested.as_mut_ptr().cast(),
        size_of_val(&nested),
    )];
    // SAFETY: live local array.
    let rt = unsafe { ResultTemplate::new(t.as_mut_ptr(), 1) }.unwrap();
    rt.write(&[AttrResult::Value(AttrValue::Template(stored.clone()))])
        .unwrap();
    assert_eq!((nested[0].type_, nested[0].ulValueLen), (CKA_SIGN, 1));
    assert_eq!((nested[1].type_, nested[1].ulValueLen), (CKA_LABEL, 2));

    // Third round: values, one buffer too small.
    let mut b1 = [GUARD; 1];
    let mut b2 = [GUARD; 1];
    let mut nested = [attr(0, b1.as_mut_ptr(), 1), attr(0, b2.as_mut_ptr(), 1)];
    let mut t = [attr(
        CKA_WRAP_TEMPLATE,
        nested.as_mut_ptr().cast(),
        size_of_val(&nested),
    )];
    // SAFETY: live local arrays and buffers.
    let rt = unsafe { ResultTemplate::new(t.as_mut_ptr(), 1) }.unwrap();
    let e = rt
        .write(&[AttrResult::Value(AttrValue::Template(stored))])
        .unwrap_err();
    assert_eq!(e.code(), Code::BufferTooSmall);
    assert_eq!(b1, [CK_TRUE]);
    assert_eq!(nested[0].ulValueLen, 1);
    assert_eq!(b2, [GUARD]);
    assert_eq!(nested[1].ulValueLen, CK_UNAVAILABLE_INFORMATION);
}

#[test]
fn short_template_array_for_nested_value_is_too_small() {
    let mut one = [attr(0, null_mut(), 0)];
    let mut t = [attr(
        CKA_WRAP_TEMPLATE,
        one.as_mut_ptr().cast(),
        size_of_val(&one),
    )];
    let stored = vec![
        Attribute::bool(CKA_SIGN, true),
        Attribute::bool(CKA_VERIFY, true),
    ];
    // SAFETY: live local array.
    let rt = unsafe { ResultTemplate::new(t.as_mut_ptr(), 1) }.unwrap();
    let e = rt
        .write(&[AttrResult::Value(AttrValue::Template(stored))])
        .unwrap_err();
    assert_eq!(e.code(), Code::BufferTooSmall);
    assert_eq!(t[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    assert_eq!(one[0].type_, 0, "nothing written into a too-small array");
}
