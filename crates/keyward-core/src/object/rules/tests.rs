//! Table-driven tests of the attribute rules: every case asserts the exact CKR code.

use super::*;

const USER: Actor = Actor {
    so: false,
    user: true,
};
const SO: Actor = Actor {
    so: true,
    user: false,
};

fn b(ty: CK_ATTRIBUTE_TYPE, v: bool) -> (CK_ATTRIBUTE_TYPE, AttrValue) {
    (ty, AttrValue::Bool(v))
}
fn u(ty: CK_ATTRIBUTE_TYPE, v: CK_ULONG) -> (CK_ATTRIBUTE_TYPE, AttrValue) {
    (ty, AttrValue::Ulong(v))
}
fn by(ty: CK_ATTRIBUTE_TYPE, v: &[u8]) -> (CK_ATTRIBUTE_TYPE, AttrValue) {
    (ty, AttrValue::bytes(v.to_vec()))
}

fn attrs(list: &[(CK_ATTRIBUTE_TYPE, AttrValue)]) -> Attrs {
    let mut a = Attrs::new();
    for (ty, v) in list {
        a.set(*ty, v.clone());
    }
    a
}

/// `base` with `extra` added or replaced.
fn with(base: &Attrs, extra: &[(CK_ATTRIBUTE_TYPE, AttrValue)]) -> Attrs {
    let mut a = base.clone();
    for (ty, v) in extra {
        a.set(*ty, v.clone());
    }
    a
}

fn without(base: &Attrs, ty: CK_ATTRIBUTE_TYPE) -> Attrs {
    let mut a = base.clone();
    a.0.remove(&ty);
    a
}

fn code<T: std::fmt::Debug>(r: Result<T>) -> Code {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code(),
    }
}

fn create(t: &Attrs) -> Result<Attrs> {
    new_object(t, &Attrs::new(), Origin::Create, USER)
}

fn modulus() -> Vec<u8> {
    let mut m = vec![0xC5u8; 256];
    m[255] = 0x01;
    m
}

fn aes() -> Attrs {
    attrs(&[
        u(CKA_CLASS, CKO_SECRET_KEY),
        u(CKA_KEY_TYPE, CKK_AES),
        by(CKA_VALUE, &[7; 32]),
    ])
}
fn generic() -> Attrs {
    attrs(&[
        u(CKA_CLASS, CKO_SECRET_KEY),
        u(CKA_KEY_TYPE, CKK_GENERIC_SECRET),
        by(CKA_VALUE, &[9; 20]),
    ])
}
fn rsa_pub() -> Attrs {
    attrs(&[
        u(CKA_CLASS, CKO_PUBLIC_KEY),
        u(CKA_KEY_TYPE, CKK_RSA),
        by(CKA_MODULUS, &modulus()),
        by(CKA_PUBLIC_EXPONENT, &[1, 0, 1]),
    ])
}
fn rsa_priv() -> Attrs {
    attrs(&[
        u(CKA_CLASS, CKO_PRIVATE_KEY),
        u(CKA_KEY_TYPE, CKK_RSA),
        by(CKA_MODULUS, &modulus()),
        by(CKA_PUBLIC_EXPONENT, &[1, 0, 1]),
        by(CKA_PRIVATE_EXPONENT, &[3; 256]),
        by(CKA_PRIME_1, &[4; 128]),
        by(CKA_PRIME_2, &[5; 128]),
        by(CKA_EXPONENT_1, &[6; 128]),
        by(CKA_EXPONENT_2, &[7; 128]),
        by(CKA_COEFFICIENT, &[8; 128]),
    ])
}
const P256: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const ED25519: &[u8] = &[0x06, 0x03, 0x2B, 0x65, 0x70];
const X25519: &[u8] = &[0x06, 0x03, 0x2B, 0x65, 0x6E];
fn ec_pub(kt: CK_KEY_TYPE, params: &[u8]) -> Attrs {
    attrs(&[
        u(CKA_CLASS, CKO_PUBLIC_KEY),
        u(CKA_KEY_TYPE, kt),
        by(CKA_EC_PARAMS, params),
        by(CKA_EC_POINT, &[0x04, 0x41, 0x04, 1, 2, 3]),
    ])
}
fn ec_priv(kt: CK_KEY_TYPE, params: &[u8]) -> Attrs {
    attrs(&[
        u(CKA_CLASS, CKO_PRIVATE_KEY),
        u(CKA_KEY_TYPE, kt),
        by(CKA_EC_PARAMS, params),
        by(CKA_VALUE, &[0x11; 32]),
    ])
}
fn data() -> Attrs {
    attrs(&[
        u(CKA_CLASS, CKO_DATA),
        by(CKA_APPLICATION, b"app"),
        by(CKA_VALUE, b"payload"),
    ])
}

/// Every private or secret key template the token can create.
fn hidden_keys() -> Vec<(&'static str, Attrs)> {
    vec![
        ("AES", aes()),
        ("generic", generic()),
        ("RSA private", rsa_priv()),
        ("EC private", ec_priv(CKK_EC, P256)),
        ("Ed25519 private", ec_priv(CKK_EC_EDWARDS, ED25519)),
        ("X25519 private", ec_priv(CKK_EC_MONTGOMERY, X25519)),
    ]
}

fn aes_generated() -> Attrs {
    attrs(&[
        u(CKA_KEY_TYPE, CKK_AES),
        by(CKA_VALUE, &[0x42; 32]),
        u(CKA_VALUE_LEN, 32),
    ])
}
fn aes_gen_template() -> Attrs {
    attrs(&[u(CKA_CLASS, CKO_SECRET_KEY), u(CKA_VALUE_LEN, 32)])
}
fn generate_aes(t: &Attrs) -> Result<Attrs> {
    new_object(
        t,
        &aes_generated(),
        Origin::Generate {
            mech: CKM_AES_KEY_GEN,
        },
        USER,
    )
}
const RSA_GEN: Origin = Origin::Generate {
    mech: CKM_RSA_PKCS_KEY_PAIR_GEN,
};
fn rsa_generated_pub() -> Attrs {
    without(&rsa_pub(), CKA_CLASS)
}
fn rsa_generated_priv() -> Attrs {
    without(&rsa_priv(), CKA_CLASS)
}

#[test]
fn create_rejections_have_the_spec_codes() {
    let vendor: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | 1;
    let nested_deep = AttrValue::Template(vec![Attribute {
        ty: CKA_WRAP_TEMPLATE,
        value: AttrValue::Template(Vec::new()),
    }]);
    let too_many = AttrValue::Template(
        (0..=MAX_NESTED as CK_ULONG)
            .map(|i| Attribute::bytes(CKA_VENDOR_DEFINED + i, vec![1]))
            .collect(),
    );
    let cases: Vec<(&str, Attrs, Code)> = vec![
        (
            "no class",
            without(&aes(), CKA_CLASS),
            Code::TemplateIncomplete,
        ),
        (
            "hw feature class",
            with(&data(), &[u(CKA_CLASS, CKO_HW_FEATURE)]),
            Code::AttributeValueInvalid,
        ),
        (
            "unknown class",
            with(&data(), &[u(CKA_CLASS, 0x1234_5678)]),
            Code::AttributeValueInvalid,
        ),
        (
            "no key type",
            without(&aes(), CKA_KEY_TYPE),
            Code::TemplateIncomplete,
        ),
        (
            "unsupported key type",
            with(&aes(), &[u(CKA_KEY_TYPE, CKK_DES3)]),
            Code::AttributeValueInvalid,
        ),
        (
            "AES private key",
            with(&ec_priv(CKK_EC, P256), &[u(CKA_KEY_TYPE, CKK_AES)]),
            Code::TemplateInconsistent,
        ),
        (
            "RSA secret key",
            with(&aes(), &[u(CKA_KEY_TYPE, CKK_RSA)]),
            Code::TemplateInconsistent,
        ),
        (
            "AES without value",
            without(&aes(), CKA_VALUE),
            Code::TemplateIncomplete,
        ),
        (
            "AES 15 bytes",
            with(&aes(), &[by(CKA_VALUE, &[1; 15])]),
            Code::AttributeValueInvalid,
        ),
        (
            "AES 33 bytes",
            with(&aes(), &[by(CKA_VALUE, &[1; 33])]),
            Code::AttributeValueInvalid,
        ),
        (
            "VALUE_LEN contradicts VALUE",
            with(&aes(), &[u(CKA_VALUE_LEN, 16)]),
            Code::TemplateInconsistent,
        ),
        (
            "generic empty value",
            with(&generic(), &[by(CKA_VALUE, &[])]),
            Code::AttributeValueInvalid,
        ),
        (
            "CKA_LOCAL",
            with(&aes(), &[b(CKA_LOCAL, true)]),
            Code::AttributeReadOnly,
        ),
        (
            "CKA_LOCAL false",
            with(&aes(), &[b(CKA_LOCAL, false)]),
            Code::AttributeReadOnly,
        ),
        (
            "CKA_KEY_GEN_MECHANISM",
            with(&aes(), &[u(CKA_KEY_GEN_MECHANISM, CKM_AES_KEY_GEN)]),
            Code::AttributeReadOnly,
        ),
        (
            "CKA_ALWAYS_SENSITIVE",
            with(&aes(), &[b(CKA_ALWAYS_SENSITIVE, true)]),
            Code::AttributeReadOnly,
        ),
        (
            "CKA_NEVER_EXTRACTABLE",
            with(&rsa_priv(), &[b(CKA_NEVER_EXTRACTABLE, true)]),
            Code::AttributeReadOnly,
        ),
        (
            "CKA_UNIQUE_ID",
            with(&data(), &[by(CKA_UNIQUE_ID, b"1")]),
            Code::AttributeReadOnly,
        ),
        (
            "RSA attribute on AES",
            with(&aes(), &[by(CKA_MODULUS, &[1])]),
            Code::AttributeTypeInvalid,
        ),
        (
            "vendor attribute",
            with(&aes(), &[by(vendor, &[1])]),
            Code::AttributeTypeInvalid,
        ),
        (
            "key attribute on data",
            with(&data(), &[u(CKA_KEY_TYPE, CKK_AES)]),
            Code::AttributeTypeInvalid,
        ),
        (
            "SENSITIVE on public key",
            with(&rsa_pub(), &[b(CKA_SENSITIVE, true)]),
            Code::AttributeTypeInvalid,
        ),
        (
            "bool as ulong",
            with(&aes(), &[u(CKA_SENSITIVE, 1)]),
            Code::AttributeValueInvalid,
        ),
        (
            "class as bytes",
            with(&aes(), &[by(CKA_CLASS, &[4, 0, 0, 0, 0, 0, 0, 0])]),
            Code::AttributeValueInvalid,
        ),
        (
            "TRUSTED by the user",
            with(&aes(), &[b(CKA_TRUSTED, true)]),
            Code::AttributeReadOnly,
        ),
        (
            "ALWAYS_AUTHENTICATE on a public object",
            with(
                &rsa_priv(),
                &[b(CKA_ALWAYS_AUTHENTICATE, true), b(CKA_PRIVATE, false)],
            ),
            Code::TemplateInconsistent,
        ),
        (
            "date with dashes",
            with(&aes(), &[by(CKA_START_DATE, b"2024-1-1")]),
            Code::AttributeValueInvalid,
        ),
        (
            "month 13",
            with(&aes(), &[by(CKA_END_DATE, b"20241301")]),
            Code::AttributeValueInvalid,
        ),
        (
            "nested template",
            with(&aes(), &[(CKA_WRAP_TEMPLATE, nested_deep)]),
            Code::TemplateInconsistent,
        ),
        (
            "oversized template",
            with(&aes(), &[(CKA_WRAP_TEMPLATE, too_many)]),
            Code::AttributeValueInvalid,
        ),
        (
            "PUBLIC_KEY_INFO from caller",
            with(&ec_priv(CKK_EC, P256), &[by(CKA_PUBLIC_KEY_INFO, &[0x30])]),
            Code::AttributeTypeInvalid,
        ),
        (
            "EC_POINT on private key",
            with(&ec_priv(CKK_EC, P256), &[by(CKA_EC_POINT, &[4])]),
            Code::AttributeTypeInvalid,
        ),
        (
            "RSA private without d",
            without(&rsa_priv(), CKA_PRIVATE_EXPONENT),
            Code::TemplateIncomplete,
        ),
        (
            "RSA public without e",
            without(&rsa_pub(), CKA_PUBLIC_EXPONENT),
            Code::TemplateIncomplete,
        ),
        (
            "RSA empty modulus",
            with(&rsa_pub(), &[by(CKA_MODULUS, &[])]),
            Code::AttributeValueInvalid,
        ),
        (
            "RSA zero modulus",
            with(&rsa_pub(), &[by(CKA_MODULUS, &[0, 0])]),
            Code::AttributeValueInvalid,
        ),
        (
            "MODULUS_BITS wrong",
            with(&rsa_pub(), &[u(CKA_MODULUS_BITS, 1024)]),
            Code::TemplateInconsistent,
        ),
        (
            "EC public without point",
            without(&ec_pub(CKK_EC, P256), CKA_EC_POINT),
            Code::TemplateIncomplete,
        ),
        (
            "EC private without params",
            without(&ec_priv(CKK_EC, P256), CKA_EC_PARAMS),
            Code::TemplateIncomplete,
        ),
        (
            "EC private empty value",
            with(&ec_priv(CKK_EC, P256), &[by(CKA_VALUE, &[])]),
            Code::AttributeValueInvalid,
        ),
        (
            "X.509 without value",
            attrs(&[
                u(CKA_CLASS, CKO_CERTIFICATE),
                u(CKA_CERTIFICATE_TYPE, CKC_X_509),
            ]),
            Code::TemplateIncomplete,
        ),
        (
            "certificate without type",
            attrs(&[u(CKA_CLASS, CKO_CERTIFICATE), by(CKA_VALUE, &[0x30, 0])]),
            Code::TemplateIncomplete,
        ),
        (
            "attribute certificate",
            attrs(&[
                u(CKA_CLASS, CKO_CERTIFICATE),
                u(CKA_CERTIFICATE_TYPE, CKC_X_509_ATTR_CERT),
                by(CKA_VALUE, &[0x30, 0]),
            ]),
            Code::AttributeValueInvalid,
        ),
        (
            "X.509 that is no certificate",
            attrs(&[
                u(CKA_CLASS, CKO_CERTIFICATE),
                u(CKA_CERTIFICATE_TYPE, CKC_X_509),
                by(CKA_VALUE, b"hello"),
            ]),
            Code::AttributeValueInvalid,
        ),
        (
            "unknown certificate category",
            attrs(&[
                u(CKA_CLASS, CKO_CERTIFICATE),
                u(CKA_CERTIFICATE_TYPE, CKC_X_509),
                by(CKA_VALUE, b"hello"),
                u(CKA_CERTIFICATE_CATEGORY, 4),
            ]),
            Code::AttributeValueInvalid,
        ),
    ];
    for (what, t, want) in cases {
        assert_eq!(code(create(&t)), want, "{what}");
    }
}

#[test]
fn create_fills_spec_and_token_defaults() {
    let k = create(&aes()).unwrap();
    for (ty, want) in [
        (CKA_TOKEN, false),
        (CKA_PRIVATE, true),
        (CKA_MODIFIABLE, true),
        (CKA_COPYABLE, true),
        (CKA_DESTROYABLE, true),
        (CKA_SENSITIVE, true),
        (CKA_EXTRACTABLE, false),
        (CKA_DERIVE, false),
        (CKA_ENCRYPT, false),
        (CKA_WRAP, false),
        (CKA_TRUSTED, false),
        (CKA_WRAP_WITH_TRUSTED, false),
        (CKA_LOCAL, false),
        (CKA_ALWAYS_SENSITIVE, false),
        (CKA_NEVER_EXTRACTABLE, false),
    ] {
        assert_eq!(k.get_bool(ty), Some(want), "{ty:#x}");
    }
    assert_eq!(k.get_ulong(CKA_VALUE_LEN), Some(32));
    assert_eq!(
        k.get_ulong(CKA_KEY_GEN_MECHANISM),
        Some(CK_UNAVAILABLE_INFORMATION)
    );
    for ty in [CKA_LABEL, CKA_ID, CKA_START_DATE, CKA_END_DATE] {
        assert_eq!(k.get_bytes(ty), Some(&[][..]), "{ty:#x}");
    }
    assert!(!k.has(CKA_ALLOWED_MECHANISMS));
    assert!(!k.has(CKA_UNIQUE_ID));

    let p = create(&rsa_pub()).unwrap();
    assert_eq!(p.get_bool(CKA_PRIVATE), Some(false));
    assert_eq!(p.get_bool(CKA_VERIFY), Some(true));
    assert_eq!(p.get_bool(CKA_ENCRYPT), Some(true));
    assert_eq!(p.get_bool(CKA_WRAP), Some(false));
    assert_eq!(p.get_ulong(CKA_MODULUS_BITS), Some(2048));
    assert!(!p.has(CKA_SENSITIVE));

    let d = create(&data()).unwrap();
    assert_eq!(d.get_bool(CKA_PRIVATE), Some(false));
    assert_eq!(d.get_bytes(CKA_OBJECT_ID), Some(&[][..]));
    assert_eq!(d.get_bytes(CKA_VALUE), Some(&b"payload"[..]));

    // Explicit values win over defaults; stated-correctly computed values are accepted.
    let k = create(&with(
        &aes(),
        &[
            b(CKA_SENSITIVE, false),
            b(CKA_EXTRACTABLE, true),
            b(CKA_ENCRYPT, true),
            u(CKA_VALUE_LEN, 32),
            (
                CKA_ALLOWED_MECHANISMS,
                AttrValue::Mechanisms(vec![CKM_AES_GCM]),
            ),
            by(CKA_START_DATE, b"20240229"),
        ],
    ))
    .unwrap();
    assert_eq!(k.get_bool(CKA_SENSITIVE), Some(false));
    assert_eq!(k.get_bool(CKA_EXTRACTABLE), Some(true));
    assert_eq!(k.get_bool(CKA_ENCRYPT), Some(true));
    assert_eq!(
        k.get(CKA_ALLOWED_MECHANISMS),
        Some(&AttrValue::Mechanisms(vec![CKM_AES_GCM]))
    );
    assert!(create(&with(&rsa_pub(), &[u(CKA_MODULUS_BITS, 2048)])).is_ok());

    // The SO may create trusted objects; ALWAYS_AUTHENTICATE with the default CKA_PRIVATE.
    assert!(
        new_object(
            &with(&aes(), &[b(CKA_TRUSTED, true)]),
            &Attrs::new(),
            Origin::Create,
            SO
        )
        .is_ok()
    );
    assert!(create(&with(&rsa_priv(), &[b(CKA_ALWAYS_AUTHENTICATE, true)])).is_ok());
}

#[test]
fn nested_templates_are_stored_sorted_and_deduplicated() {
    let t = AttrValue::Template(vec![
        Attribute::bool(CKA_SENSITIVE, true),
        Attribute::ulong(CKA_CLASS, CKO_SECRET_KEY),
        Attribute::bool(CKA_SENSITIVE, true),
    ]);
    let k = create(&with(&aes(), &[(CKA_WRAP_TEMPLATE, t)])).unwrap();
    assert_eq!(
        k.get(CKA_WRAP_TEMPLATE),
        Some(&AttrValue::Template(vec![
            Attribute::ulong(CKA_CLASS, CKO_SECRET_KEY),
            Attribute::bool(CKA_SENSITIVE, true),
        ]))
    );
    let conflict = AttrValue::Template(vec![
        Attribute::bool(CKA_SENSITIVE, true),
        Attribute::bool(CKA_SENSITIVE, false),
    ]);
    assert_eq!(
        code(create(&with(&aes(), &[(CKA_UNWRAP_TEMPLATE, conflict)]))),
        Code::TemplateInconsistent
    );
    let wrong_kind = AttrValue::Template(vec![Attribute::ulong(CKA_SENSITIVE, 1)]);
    assert_eq!(
        code(create(&with(&aes(), &[(CKA_DERIVE_TEMPLATE, wrong_kind)]))),
        Code::AttributeValueInvalid
    );
}

#[test]
fn generate_sets_provenance_and_refuses_key_material() {
    let k = generate_aes(&aes_gen_template()).unwrap();
    assert_eq!(k.get_bool(CKA_LOCAL), Some(true));
    assert_eq!(k.get_ulong(CKA_KEY_GEN_MECHANISM), Some(CKM_AES_KEY_GEN));
    assert_eq!(k.get_bool(CKA_SENSITIVE), Some(true));
    assert_eq!(k.get_bool(CKA_EXTRACTABLE), Some(false));
    assert_eq!(k.get_bool(CKA_ALWAYS_SENSITIVE), Some(true));
    assert_eq!(k.get_bool(CKA_NEVER_EXTRACTABLE), Some(true));
    assert_eq!(k.get_bytes(CKA_VALUE), Some(&[0x42; 32][..]));

    let k = generate_aes(&with(
        &aes_gen_template(),
        &[b(CKA_SENSITIVE, false), b(CKA_EXTRACTABLE, true)],
    ))
    .unwrap();
    assert_eq!(k.get_bool(CKA_ALWAYS_SENSITIVE), Some(false));
    assert_eq!(k.get_bool(CKA_NEVER_EXTRACTABLE), Some(false));

    // A mechanism cannot claim provenance: the token computes it.
    let lying = with(
        &aes_generated(),
        &[b(CKA_LOCAL, false), b(CKA_ALWAYS_SENSITIVE, false)],
    );
    let k = new_object(
        &aes_gen_template(),
        &lying,
        Origin::Generate {
            mech: CKM_AES_KEY_GEN,
        },
        USER,
    )
    .unwrap();
    assert_eq!(k.get_bool(CKA_LOCAL), Some(true));
    assert_eq!(k.get_bool(CKA_ALWAYS_SENSITIVE), Some(true));

    let cases: Vec<(&str, Attrs, Code)> = vec![
        (
            "CKA_VALUE in template",
            with(&aes_gen_template(), &[by(CKA_VALUE, &[1; 32])]),
            Code::AttributeReadOnly,
        ),
        (
            "key type contradicts",
            with(&aes_gen_template(), &[u(CKA_KEY_TYPE, CKK_GENERIC_SECRET)]),
            Code::TemplateInconsistent,
        ),
        (
            "VALUE_LEN contradicts",
            with(&aes_gen_template(), &[u(CKA_VALUE_LEN, 16)]),
            Code::TemplateInconsistent,
        ),
        (
            "class data",
            with(&aes_gen_template(), &[u(CKA_CLASS, CKO_DATA)]),
            Code::TemplateInconsistent,
        ),
        (
            "class private key",
            with(&aes_gen_template(), &[u(CKA_CLASS, CKO_PRIVATE_KEY)]),
            Code::TemplateInconsistent,
        ),
        (
            "CKA_LOCAL in template",
            with(&aes_gen_template(), &[b(CKA_LOCAL, true)]),
            Code::AttributeReadOnly,
        ),
        (
            "NEVER_EXTRACTABLE in template",
            with(&aes_gen_template(), &[b(CKA_NEVER_EXTRACTABLE, true)]),
            Code::AttributeReadOnly,
        ),
        (
            "UNIQUE_ID in template",
            with(&aes_gen_template(), &[by(CKA_UNIQUE_ID, b"x")]),
            Code::AttributeReadOnly,
        ),
        (
            "TRUSTED by the user",
            with(&aes_gen_template(), &[b(CKA_TRUSTED, true)]),
            Code::AttributeReadOnly,
        ),
    ];
    for (what, t, want) in cases {
        assert_eq!(code(generate_aes(&t)), want, "{what}");
    }

    // Footnote 3: CKA_VALUE_LEN must come from somewhere.
    let no_len = without(&aes_generated(), CKA_VALUE_LEN);
    let t = without(&aes_gen_template(), CKA_VALUE_LEN);
    assert_eq!(
        code(new_object(
            &t,
            &no_len,
            Origin::Generate {
                mech: CKM_AES_KEY_GEN
            },
            USER
        )),
        Code::TemplateIncomplete
    );
    // A mechanism producing an attribute the object cannot have is a token bug.
    let odd = with(&aes_generated(), &[by(CKA_MODULUS, &[1])]);
    assert_eq!(
        code(new_object(
            &aes_gen_template(),
            &odd,
            Origin::Generate {
                mech: CKM_AES_KEY_GEN
            },
            USER
        )),
        Code::GeneralError
    );
}

#[test]
fn generate_key_pair_templates() {
    let pub_t = attrs(&[
        u(CKA_CLASS, CKO_PUBLIC_KEY),
        u(CKA_MODULUS_BITS, 2048),
        by(CKA_PUBLIC_EXPONENT, &[1, 0, 1]),
        b(CKA_VERIFY, true),
    ]);
    let priv_t = attrs(&[u(CKA_CLASS, CKO_PRIVATE_KEY), b(CKA_SIGN, true)]);
    let p = new_object(&pub_t, &rsa_generated_pub(), RSA_GEN, USER).unwrap();
    let v = new_object(&priv_t, &rsa_generated_priv(), RSA_GEN, USER).unwrap();
    assert_eq!(p.get_bool(CKA_LOCAL), Some(true));
    assert_eq!(
        p.get_ulong(CKA_KEY_GEN_MECHANISM),
        Some(CKM_RSA_PKCS_KEY_PAIR_GEN)
    );
    assert_eq!(p.get_ulong(CKA_MODULUS_BITS), Some(2048));
    assert_eq!(v.get_bool(CKA_LOCAL), Some(true));
    assert_eq!(v.get_bool(CKA_ALWAYS_SENSITIVE), Some(true));
    assert_eq!(v.get_bool(CKA_NEVER_EXTRACTABLE), Some(true));
    assert_eq!(v.get_bool(CKA_SIGN), Some(true));
    assert_eq!(v.get_ulong(CKA_MODULUS_BITS), Some(2048));

    // Footnote 3: CKA_MODULUS_BITS in the public template.
    assert_eq!(
        code(new_object(
            &without(&pub_t, CKA_MODULUS_BITS),
            &without(&rsa_generated_pub(), CKA_MODULUS_BITS),
            RSA_GEN,
            USER
        )),
        Code::TemplateIncomplete
    );
    assert_eq!(
        code(new_object(
            &with(&pub_t, &[u(CKA_MODULUS_BITS, 3072)]),
            &rsa_generated_pub(),
            RSA_GEN,
            USER
        )),
        Code::TemplateInconsistent
    );
    // Key material is refused even when it equals what the mechanism made: no "is this the
    // key?" answers.
    assert_eq!(
        code(new_object(
            &with(&priv_t, &[by(CKA_PRIME_1, &[4; 128])]),
            &rsa_generated_priv(),
            RSA_GEN,
            USER
        )),
        Code::AttributeReadOnly
    );
    // Footnote 4 on the private half: refused unless it repeats the mechanism's value.
    assert_eq!(
        code(new_object(
            &with(&priv_t, &[by(CKA_PRIME_1, &[1])]),
            &rsa_generated_priv(),
            RSA_GEN,
            USER
        )),
        Code::AttributeReadOnly
    );
    assert_eq!(
        code(new_object(
            &with(&priv_t, &[by(CKA_PUBLIC_EXPONENT, &[3])]),
            &rsa_generated_priv(),
            RSA_GEN,
            USER
        )),
        Code::AttributeReadOnly
    );
    assert!(
        new_object(
            &with(&priv_t, &[by(CKA_PUBLIC_EXPONENT, &[1, 0, 1])]),
            &rsa_generated_priv(),
            RSA_GEN,
            USER
        )
        .is_ok()
    );
    // Footnote 4 on the public half: the modulus comes from the mechanism.
    assert_eq!(
        code(new_object(
            &with(&pub_t, &[by(CKA_MODULUS, &[1; 256])]),
            &rsa_generated_pub(),
            RSA_GEN,
            USER
        )),
        Code::AttributeReadOnly
    );

    let ec_gen = Origin::Generate {
        mech: CKM_EC_KEY_PAIR_GEN,
    };
    let gen_pub = without(&ec_pub(CKK_EC, P256), CKA_CLASS);
    let gen_priv = without(&ec_priv(CKK_EC, P256), CKA_CLASS);
    let ec_pub_t = attrs(&[u(CKA_CLASS, CKO_PUBLIC_KEY), by(CKA_EC_PARAMS, P256)]);
    assert!(new_object(&ec_pub_t, &gen_pub, ec_gen, USER).is_ok());
    assert_eq!(
        code(new_object(
            &without(&ec_pub_t, CKA_EC_PARAMS),
            &without(&gen_pub, CKA_EC_PARAMS),
            ec_gen,
            USER
        )),
        Code::TemplateIncomplete
    );
    let ec_priv_t = attrs(&[u(CKA_CLASS, CKO_PRIVATE_KEY), by(CKA_EC_PARAMS, P256)]);
    assert!(new_object(&ec_priv_t, &gen_priv, ec_gen, USER).is_ok());
    assert_eq!(
        code(new_object(
            &with(&ec_priv_t, &[by(CKA_EC_PARAMS, ED25519)]),
            &gen_priv,
            ec_gen,
            USER
        )),
        Code::AttributeReadOnly
    );
    // CKA_EC_POINT and CKA_PUBLIC_KEY_INFO on a private key only from the mechanism.
    let with_point = with(
        &gen_priv,
        &[
            by(CKA_EC_POINT, &[4, 1]),
            by(CKA_PUBLIC_KEY_INFO, &[0x30, 0]),
        ],
    );
    let v = new_object(&ec_priv_t, &with_point, ec_gen, USER).unwrap();
    assert_eq!(v.get_bytes(CKA_EC_POINT), Some(&[4, 1][..]));
    assert_eq!(
        code(new_object(
            &with(&ec_priv_t, &[by(CKA_EC_POINT, &[4, 2])]),
            &with_point,
            ec_gen,
            USER
        )),
        Code::AttributeTypeInvalid
    );
}

#[test]
fn unwrap_and_derive_provenance() {
    let t = attrs(&[
        u(CKA_CLASS, CKO_SECRET_KEY),
        u(CKA_KEY_TYPE, CKK_AES),
        b(CKA_DECRYPT, true),
    ]);
    let value = attrs(&[by(CKA_VALUE, &[5; 16])]);
    let k = new_object(&t, &value, Origin::Unwrap, USER).unwrap();
    assert_eq!(k.get_bool(CKA_EXTRACTABLE), Some(true));
    assert_eq!(k.get_bool(CKA_SENSITIVE), Some(true));
    assert_eq!(k.get_bool(CKA_LOCAL), Some(false));
    assert_eq!(k.get_bool(CKA_ALWAYS_SENSITIVE), Some(false));
    assert_eq!(k.get_bool(CKA_NEVER_EXTRACTABLE), Some(false));
    assert_eq!(
        k.get_ulong(CKA_KEY_GEN_MECHANISM),
        Some(CK_UNAVAILABLE_INFORMATION)
    );
    assert_eq!(k.get_ulong(CKA_VALUE_LEN), Some(16));
    let k = new_object(
        &with(&t, &[b(CKA_EXTRACTABLE, false)]),
        &value,
        Origin::Unwrap,
        USER,
    )
    .unwrap();
    assert_eq!(k.get_bool(CKA_NEVER_EXTRACTABLE), Some(false));

    let cases: Vec<(&str, Attrs, Code)> = vec![
        (
            "value in template",
            with(&t, &[by(CKA_VALUE, &[5; 16])]),
            Code::AttributeReadOnly,
        ),
        (
            "no key type",
            without(&t, CKA_KEY_TYPE),
            Code::TemplateIncomplete,
        ),
        (
            "VALUE_LEN contradicts",
            with(&t, &[u(CKA_VALUE_LEN, 32)]),
            Code::TemplateInconsistent,
        ),
        (
            "public key",
            with(&t, &[u(CKA_CLASS, CKO_PUBLIC_KEY), u(CKA_KEY_TYPE, CKK_EC)]),
            Code::TemplateInconsistent,
        ),
        (
            "ALWAYS_SENSITIVE",
            with(&t, &[b(CKA_ALWAYS_SENSITIVE, true)]),
            Code::AttributeReadOnly,
        ),
    ];
    for (what, tt, want) in cases {
        assert_eq!(
            code(new_object(&tt, &value, Origin::Unwrap, USER)),
            want,
            "{what}"
        );
    }

    let derive = |always, never| Origin::Derive {
        base_always_sensitive: always,
        base_never_extractable: never,
    };
    let dt = attrs(&[
        u(CKA_CLASS, CKO_SECRET_KEY),
        u(CKA_KEY_TYPE, CKK_GENERIC_SECRET),
    ]);
    let dv = attrs(&[by(CKA_VALUE, &[6; 32])]);
    let cases = [
        // (base AS, base NE, SENSITIVE, EXTRACTABLE) -> (AS, NE)
        ((true, true, true, false), (true, true)),
        ((true, true, false, true), (false, false)),
        ((false, true, true, false), (false, true)),
        ((true, false, true, false), (true, false)),
    ];
    for ((always, never, s, e), (want_as, want_ne)) in cases {
        let k = new_object(
            &with(&dt, &[b(CKA_SENSITIVE, s), b(CKA_EXTRACTABLE, e)]),
            &dv,
            derive(always, never),
            USER,
        )
        .unwrap();
        assert_eq!(
            k.get_bool(CKA_ALWAYS_SENSITIVE),
            Some(want_as),
            "{always} {never} {s} {e}"
        );
        assert_eq!(
            k.get_bool(CKA_NEVER_EXTRACTABLE),
            Some(want_ne),
            "{always} {never} {s} {e}"
        );
        assert_eq!(k.get_bool(CKA_LOCAL), Some(false));
    }
    // Defaults for a derived key: sensitive and unextractable.
    let k = new_object(&dt, &dv, derive(true, true), USER).unwrap();
    assert_eq!(k.get_bool(CKA_ALWAYS_SENSITIVE), Some(true));
    assert_eq!(k.get_bool(CKA_NEVER_EXTRACTABLE), Some(true));
    assert_eq!(
        code(new_object(
            &with(&dt, &[by(CKA_VALUE, &[6; 32])]),
            &dv,
            derive(true, true),
            USER
        )),
        Code::AttributeReadOnly
    );
    assert_eq!(
        code(new_object(
            &rsa_pub(),
            &Attrs::new(),
            derive(true, true),
            USER
        )),
        Code::TemplateInconsistent
    );
}

#[test]
fn sensitive_and_extractable_are_one_way() {
    for (what, t) in hidden_keys() {
        let k = create(&with(
            &t,
            &[b(CKA_SENSITIVE, true), b(CKA_EXTRACTABLE, true)],
        ))
        .unwrap();
        for op in [Change::Set, Change::Copy] {
            let run = |k: &Attrs, t: &Attrs| match op {
                Change::Set => set_attributes(k, t, USER),
                Change::Copy => copy_object(k, t, USER),
            };
            // ATTR-01: TRUE -> FALSE refused, and a failing template changes nothing.
            let bad = attrs(&[by(CKA_LABEL, b"new"), b(CKA_SENSITIVE, false)]);
            assert_eq!(code(run(&k, &bad)), Code::AttributeReadOnly, "{what}");
            assert_eq!(k.get_bytes(CKA_LABEL), Some(&[][..]));
            // ATTR-02: TRUE -> FALSE allowed; NEVER_EXTRACTABLE stays FALSE.
            let n = run(&k, &attrs(&[b(CKA_EXTRACTABLE, false)])).unwrap();
            assert_eq!(n.get_bool(CKA_EXTRACTABLE), Some(false), "{what}");
            assert_eq!(n.get_bool(CKA_NEVER_EXTRACTABLE), Some(false), "{what}");
            assert_eq!(
                code(run(&n, &attrs(&[b(CKA_EXTRACTABLE, true)]))),
                Code::AttributeReadOnly,
                "{what}"
            );
            assert_eq!(
                read_attribute(
                    &n,
                    if t.has(CKA_VALUE) {
                        CKA_VALUE
                    } else {
                        CKA_PRIVATE_EXPONENT
                    }
                ),
                AttrResult::Sensitive
            );
        }
        // FALSE -> TRUE allowed; ALWAYS_SENSITIVE does not follow.
        let k = create(&with(&t, &[b(CKA_SENSITIVE, false)])).unwrap();
        let n = set_attributes(&k, &attrs(&[b(CKA_SENSITIVE, true)]), USER).unwrap();
        assert_eq!(n.get_bool(CKA_SENSITIVE), Some(true));
        assert_eq!(n.get_bool(CKA_ALWAYS_SENSITIVE), Some(false), "{what}");
        let c = copy_object(&k, &attrs(&[b(CKA_SENSITIVE, true)]), USER).unwrap();
        assert_eq!(c.get_bool(CKA_SENSITIVE), Some(true));
        assert_eq!(c.get_bool(CKA_ALWAYS_SENSITIVE), Some(false), "{what}");
    }
}

#[test]
fn set_attribute_rules() {
    let k = create(&with(
        &aes(),
        &[b(CKA_WRAP_WITH_TRUSTED, true), b(CKA_EXTRACTABLE, true)],
    ))
    .unwrap();
    let cases: Vec<(&str, Attrs, Code)> = vec![
        (
            "CKA_CLASS",
            attrs(&[u(CKA_CLASS, CKO_SECRET_KEY)]),
            Code::AttributeReadOnly,
        ),
        (
            "CKA_KEY_TYPE",
            attrs(&[u(CKA_KEY_TYPE, CKK_GENERIC_SECRET)]),
            Code::AttributeReadOnly,
        ),
        (
            "CKA_VALUE",
            attrs(&[by(CKA_VALUE, &[1; 32])]),
            Code::AttributeReadOnly,
        ),
        (
            "CKA_VALUE_LEN",
            attrs(&[u(CKA_VALUE_LEN, 32)]),
            Code::AttributeReadOnly,
        ),
        (
            "CKA_ALLOWED_MECHANISMS",
            attrs(&[(
                CKA_ALLOWED_MECHANISMS,
                AttrValue::Mechanisms(vec![CKM_AES_GCM]),
            )]),
            Code::AttributeReadOnly,
        ),
        (
            "CKA_WRAP_TEMPLATE",
            attrs(&[(CKA_WRAP_TEMPLATE, AttrValue::Template(Vec::new()))]),
            Code::AttributeReadOnly,
        ),
        (
            "CKA_TOKEN",
            attrs(&[b(CKA_TOKEN, true)]),
            Code::AttributeReadOnly,
        ),
        (
            "CKA_PRIVATE",
            attrs(&[b(CKA_PRIVATE, false)]),
            Code::AttributeReadOnly,
        ),
        (
            "CKA_MODIFIABLE",
            attrs(&[b(CKA_MODIFIABLE, false)]),
            Code::AttributeReadOnly,
        ),
        (
            "CKA_DESTROYABLE",
            attrs(&[b(CKA_DESTROYABLE, false)]),
            Code::AttributeReadOnly,
        ),
        (
            "CKA_LOCAL",
            attrs(&[b(CKA_LOCAL, false)]),
            Code::AttributeReadOnly,
        ),
        (
            "CKA_KEY_GEN_MECHANISM",
            attrs(&[u(CKA_KEY_GEN_MECHANISM, 0)]),
            Code::AttributeReadOnly,
        ),
        (
            "CKA_ALWAYS_SENSITIVE",
            attrs(&[b(CKA_ALWAYS_SENSITIVE, true)]),
            Code::AttributeReadOnly,
        ),
        (
            "CKA_NEVER_EXTRACTABLE",
            attrs(&[b(CKA_NEVER_EXTRACTABLE, true)]),
            Code::AttributeReadOnly,
        ),
        (
            "CKA_UNIQUE_ID",
            attrs(&[by(CKA_UNIQUE_ID, b"x")]),
            Code::AttributeReadOnly,
        ),
        (
            "WRAP_WITH_TRUSTED off",
            attrs(&[b(CKA_WRAP_WITH_TRUSTED, false)]),
            Code::AttributeReadOnly,
        ),
        (
            "TRUSTED by the user",
            attrs(&[b(CKA_TRUSTED, true)]),
            Code::AttributeReadOnly,
        ),
        (
            "unknown attribute",
            attrs(&[by(CKA_MODULUS, &[1])]),
            Code::AttributeTypeInvalid,
        ),
        (
            "wrong kind",
            attrs(&[by(CKA_ENCRYPT, &[1])]),
            Code::AttributeValueInvalid,
        ),
        (
            "bad date",
            attrs(&[by(CKA_END_DATE, b"2024")]),
            Code::AttributeValueInvalid,
        ),
    ];
    for (what, t, want) in cases {
        assert_eq!(code(set_attributes(&k, &t, USER)), want, "{what}");
    }
    let n = set_attributes(
        &k,
        &attrs(&[
            by(CKA_LABEL, b"label"),
            by(CKA_ID, b"id"),
            by(CKA_START_DATE, b"20240101"),
            b(CKA_ENCRYPT, true),
            b(CKA_DECRYPT, true),
            b(CKA_SIGN, true),
            b(CKA_VERIFY, true),
            b(CKA_DERIVE, true),
            b(CKA_COPYABLE, false),
        ]),
        USER,
    )
    .unwrap();
    assert_eq!(n.get_bytes(CKA_LABEL), Some(&b"label"[..]));
    assert_eq!(n.get_bool(CKA_DERIVE), Some(true));
    assert_eq!(n.get_bool(CKA_COPYABLE), Some(false));
    assert_eq!(
        code(set_attributes(&n, &attrs(&[b(CKA_COPYABLE, true)]), USER)),
        Code::AttributeReadOnly
    );
    // KEY-04: the SO may set CKA_TRUSTED; WRAP_WITH_TRUSTED may be turned on.
    assert_eq!(
        set_attributes(&k, &attrs(&[b(CKA_TRUSTED, true)]), SO)
            .unwrap()
            .get_bool(CKA_TRUSTED),
        Some(true)
    );
    let g = create(&aes()).unwrap();
    assert!(set_attributes(&g, &attrs(&[b(CKA_WRAP_WITH_TRUSTED, true)]), USER).is_ok());
    assert!(set_attributes(&g, &attrs(&[b(CKA_TRUSTED, false)]), USER).is_ok());

    // ATTR-06: MODIFIABLE=FALSE blocks C_SetAttributeValue but not creation.
    let frozen = create(&with(&aes(), &[b(CKA_MODIFIABLE, false)])).unwrap();
    assert_eq!(
        code(set_attributes(
            &frozen,
            &attrs(&[by(CKA_LABEL, b"x")]),
            USER
        )),
        Code::ActionProhibited
    );
    assert_eq!(
        code(set_attributes(&frozen, &Attrs::new(), USER)),
        Code::ActionProhibited
    );

    // Private key specifics.
    let v = create(&with(&rsa_priv(), &[b(CKA_ALWAYS_AUTHENTICATE, true)])).unwrap();
    assert_eq!(
        code(set_attributes(
            &v,
            &attrs(&[b(CKA_ALWAYS_AUTHENTICATE, false)]),
            USER
        )),
        Code::AttributeReadOnly
    );
    assert_eq!(
        code(set_attributes(&v, &attrs(&[by(CKA_PRIME_1, &[1])]), USER)),
        Code::AttributeReadOnly
    );
    assert!(
        set_attributes(
            &v,
            &attrs(&[by(CKA_SUBJECT, b"s"), b(CKA_SIGN_RECOVER, true)]),
            USER
        )
        .is_ok()
    );
    // Data objects' contents stay modifiable.
    let d = create(&data()).unwrap();
    let d2 = set_attributes(
        &d,
        &attrs(&[by(CKA_VALUE, b"other"), by(CKA_APPLICATION, b"b")]),
        USER,
    )
    .unwrap();
    assert_eq!(d2.get_bytes(CKA_VALUE), Some(&b"other"[..]));
}

#[test]
fn copy_rules() {
    let gen_t = with(&aes_gen_template(), &[b(CKA_EXTRACTABLE, true)]);
    let k = with(
        &generate_aes(&gen_t).unwrap(),
        &[by(CKA_UNIQUE_ID, b"uid-1")],
    );
    assert_eq!(k.get_bool(CKA_ALWAYS_SENSITIVE), Some(true));
    let c = copy_object(
        &k,
        &attrs(&[
            b(CKA_TOKEN, true),
            b(CKA_PRIVATE, false),
            b(CKA_MODIFIABLE, false),
            b(CKA_DESTROYABLE, false),
            b(CKA_EXTRACTABLE, false),
            by(CKA_LABEL, b"copy"),
        ]),
        USER,
    )
    .unwrap();
    assert!(!c.has(CKA_UNIQUE_ID));
    assert_eq!(c.get_bool(CKA_TOKEN), Some(true));
    assert_eq!(c.get_bool(CKA_EXTRACTABLE), Some(false));
    assert_eq!(c.get_bool(CKA_NEVER_EXTRACTABLE), Some(false));
    assert_eq!(c.get_bool(CKA_ALWAYS_SENSITIVE), Some(true));
    assert_eq!(c.get_bool(CKA_LOCAL), Some(true));
    assert_eq!(c.get_ulong(CKA_KEY_GEN_MECHANISM), Some(CKM_AES_KEY_GEN));

    let cases: Vec<(&str, Attrs, Code)> = vec![
        (
            "SENSITIVE off",
            attrs(&[b(CKA_SENSITIVE, false)]),
            Code::AttributeReadOnly,
        ),
        (
            "CKA_LOCAL",
            attrs(&[b(CKA_LOCAL, true)]),
            Code::AttributeReadOnly,
        ),
        (
            "CKA_CLASS",
            attrs(&[u(CKA_CLASS, CKO_DATA)]),
            Code::AttributeReadOnly,
        ),
        (
            "CKA_VALUE",
            attrs(&[by(CKA_VALUE, &[0; 32])]),
            Code::AttributeReadOnly,
        ),
        (
            "TRUSTED by the user",
            attrs(&[b(CKA_TRUSTED, true)]),
            Code::AttributeReadOnly,
        ),
        (
            "unknown attribute",
            attrs(&[by(CKA_EC_POINT, &[1])]),
            Code::AttributeTypeInvalid,
        ),
    ];
    for (what, t, want) in cases {
        assert_eq!(code(copy_object(&k, &t, USER)), want, "{what}");
    }

    let uncopyable = create(&with(&aes(), &[b(CKA_COPYABLE, false)])).unwrap();
    assert_eq!(
        code(copy_object(&uncopyable, &Attrs::new(), USER)),
        Code::ActionProhibited
    );

    // An unmodifiable object may be copied, changing only the copy-time attributes.
    let frozen = create(&with(&aes(), &[b(CKA_MODIFIABLE, false)])).unwrap();
    assert_eq!(
        code(copy_object(&frozen, &attrs(&[by(CKA_LABEL, b"x")]), USER)),
        Code::AttributeReadOnly
    );
    assert_eq!(
        code(copy_object(&frozen, &attrs(&[b(CKA_ENCRYPT, true)]), USER)),
        Code::AttributeReadOnly
    );
    assert!(
        copy_object(
            &frozen,
            &attrs(&[b(CKA_TOKEN, true), b(CKA_COPYABLE, false)]),
            USER
        )
        .is_ok()
    );

    // Only the SO may make a trusted object, also by copying one.
    let trusted = new_object(
        &with(&aes(), &[b(CKA_TRUSTED, true)]),
        &Attrs::new(),
        Origin::Create,
        SO,
    )
    .unwrap();
    assert_eq!(
        code(copy_object(&trusted, &Attrs::new(), USER)),
        Code::AttributeReadOnly
    );
    assert_eq!(
        copy_object(&trusted, &attrs(&[b(CKA_TRUSTED, false)]), USER)
            .unwrap()
            .get_bool(CKA_TRUSTED),
        Some(false)
    );
    assert!(copy_object(&trusted, &Attrs::new(), SO).is_ok());

    // SESS-05 holds for copies too.
    let auth = create(&with(&rsa_priv(), &[b(CKA_ALWAYS_AUTHENTICATE, true)])).unwrap();
    assert_eq!(
        code(copy_object(&auth, &attrs(&[b(CKA_PRIVATE, false)]), USER)),
        Code::TemplateInconsistent
    );
}

#[test]
fn read_attribute_follows_footnote_7() {
    // Kryoptic PR #198: SENSITIVE=TRUE *or* EXTRACTABLE=FALSE hides, not AND.
    let matrix = [
        ((true, true), false),
        ((true, false), false),
        ((false, false), false),
        ((false, true), true),
    ];
    for (what, t) in hidden_keys() {
        let secret: Vec<CK_ATTRIBUTE_TYPE> = t
            .iter()
            .map(|(ty, _)| ty)
            .filter(|ty| is_secret_attribute(t.get_ulong(CKA_CLASS).unwrap(), *ty))
            .collect();
        assert!(!secret.is_empty(), "{what}");
        for ((s, e), readable) in matrix {
            let k = create(&with(&t, &[b(CKA_SENSITIVE, s), b(CKA_EXTRACTABLE, e)])).unwrap();
            for ty in &secret {
                let got = read_attribute(&k, *ty);
                if readable {
                    assert_eq!(
                        got,
                        AttrResult::Value(k.get(*ty).unwrap().clone()),
                        "{what} {ty:#x}"
                    );
                } else {
                    assert_eq!(got, AttrResult::Sensitive, "{what} {ty:#x} S={s} E={e}");
                }
            }
            assert_eq!(
                read_attribute(&k, CKA_LABEL),
                AttrResult::Value(AttrValue::bytes(Vec::new()))
            );
            assert_eq!(
                read_attribute(&k, CKA_SENSITIVE),
                AttrResult::Value(AttrValue::Bool(s))
            );
            assert_eq!(
                read_attribute(&k, CKA_MODULUS_BITS).clone() == AttrResult::Invalid,
                !k.has(CKA_MODULUS_BITS)
            );
            assert_eq!(
                read_attribute(&k, CKA_ALLOWED_MECHANISMS),
                AttrResult::Invalid
            );
            assert_eq!(read_attribute(&k, CKA_VENDOR_DEFINED), AttrResult::Invalid);
        }
    }
    // A key that somehow lacks the flags is treated as hidden.
    let bare = attrs(&[u(CKA_CLASS, CKO_SECRET_KEY), by(CKA_VALUE, &[1; 16])]);
    assert_eq!(read_attribute(&bare, CKA_VALUE), AttrResult::Sensitive);
    // Public material is always readable.
    let p = create(&rsa_pub()).unwrap();
    assert_eq!(
        read_attribute(&p, CKA_MODULUS),
        AttrResult::Value(AttrValue::bytes(modulus()))
    );
    let d = create(&data()).unwrap();
    assert_eq!(
        read_attribute(&d, CKA_VALUE),
        AttrResult::Value(AttrValue::bytes(b"payload".to_vec()))
    );
}

#[test]
fn secret_attributes() {
    let cases = [
        (CKO_SECRET_KEY, CKA_VALUE, true),
        (CKO_PRIVATE_KEY, CKA_VALUE, true),
        (CKO_PRIVATE_KEY, CKA_PRIVATE_EXPONENT, true),
        (CKO_PRIVATE_KEY, CKA_PRIME_1, true),
        (CKO_PRIVATE_KEY, CKA_PRIME_2, true),
        (CKO_PRIVATE_KEY, CKA_EXPONENT_1, true),
        (CKO_PRIVATE_KEY, CKA_EXPONENT_2, true),
        (CKO_PRIVATE_KEY, CKA_COEFFICIENT, true),
        (CKO_PRIVATE_KEY, CKA_MODULUS, false),
        (CKO_PRIVATE_KEY, CKA_PUBLIC_EXPONENT, false),
        (CKO_PRIVATE_KEY, CKA_EC_PARAMS, false),
        (CKO_SECRET_KEY, CKA_VALUE_LEN, false),
        (CKO_SECRET_KEY, CKA_LABEL, false),
        (CKO_PUBLIC_KEY, CKA_EC_POINT, false),
        (CKO_PUBLIC_KEY, CKA_VALUE, false),
        (CKO_DATA, CKA_VALUE, false),
        (CKO_CERTIFICATE, CKA_VALUE, false),
    ];
    for (class, ty, want) in cases {
        assert_eq!(is_secret_attribute(class, ty), want, "{class:#x} {ty:#x}");
    }
}

/// ATTR-05 / tpm2-pkcs11 PR #348: every key, however made, carries the attributes its class
/// defines, so nothing answers "type invalid" where the spec promises a value.
#[test]
fn every_key_object_is_well_formed() {
    let common = [
        CKA_CLASS,
        CKA_KEY_TYPE,
        CKA_TOKEN,
        CKA_PRIVATE,
        CKA_MODIFIABLE,
        CKA_COPYABLE,
        CKA_DESTROYABLE,
        CKA_LABEL,
        CKA_ID,
        CKA_START_DATE,
        CKA_END_DATE,
        CKA_DERIVE,
        CKA_LOCAL,
        CKA_KEY_GEN_MECHANISM,
    ];
    let hidden = [
        CKA_SENSITIVE,
        CKA_EXTRACTABLE,
        CKA_ALWAYS_SENSITIVE,
        CKA_NEVER_EXTRACTABLE,
        CKA_WRAP_WITH_TRUSTED,
        CKA_DECRYPT,
        CKA_SIGN,
        CKA_UNWRAP,
    ];
    let private = [CKA_SUBJECT, CKA_SIGN_RECOVER, CKA_ALWAYS_AUTHENTICATE];
    let secret = [
        CKA_ENCRYPT,
        CKA_VERIFY,
        CKA_WRAP,
        CKA_TRUSTED,
        CKA_VALUE_LEN,
    ];
    let public = [
        CKA_SUBJECT,
        CKA_ENCRYPT,
        CKA_VERIFY,
        CKA_VERIFY_RECOVER,
        CKA_WRAP,
        CKA_TRUSTED,
    ];
    let mut made: Vec<(String, Attrs)> = Vec::new();
    for (what, t) in hidden_keys() {
        made.push((format!("created {what}"), create(&t).unwrap()));
    }
    for t in [
        rsa_pub(),
        ec_pub(CKK_EC, P256),
        ec_pub(CKK_EC_EDWARDS, ED25519),
        ec_pub(CKK_EC_MONTGOMERY, X25519),
    ] {
        made.push(("created public".into(), create(&t).unwrap()));
    }
    made.push((
        "generated AES".into(),
        generate_aes(&aes_gen_template()).unwrap(),
    ));
    made.push((
        "generated RSA public".into(),
        new_object(
            &attrs(&[u(CKA_CLASS, CKO_PUBLIC_KEY), u(CKA_MODULUS_BITS, 2048)]),
            &rsa_generated_pub(),
            RSA_GEN,
            USER,
        )
        .unwrap(),
    ));
    made.push((
        "generated RSA private".into(),
        new_object(
            &attrs(&[u(CKA_CLASS, CKO_PRIVATE_KEY)]),
            &rsa_generated_priv(),
            RSA_GEN,
            USER,
        )
        .unwrap(),
    ));
    made.push((
        "unwrapped AES".into(),
        new_object(&aes_gen_template(), &aes_generated(), Origin::Unwrap, USER).unwrap(),
    ));
    made.push((
        "unwrapped EC private".into(),
        new_object(
            &attrs(&[u(CKA_CLASS, CKO_PRIVATE_KEY)]),
            &without(&ec_priv(CKK_EC, P256), CKA_CLASS),
            Origin::Unwrap,
            USER,
        )
        .unwrap(),
    ));
    made.push((
        "derived generic".into(),
        new_object(
            &attrs(&[
                u(CKA_CLASS, CKO_SECRET_KEY),
                u(CKA_KEY_TYPE, CKK_GENERIC_SECRET),
            ]),
            &attrs(&[by(CKA_VALUE, &[1; 48])]),
            Origin::Derive {
                base_always_sensitive: true,
                base_never_extractable: false,
            },
            USER,
        )
        .unwrap(),
    ));
    for (what, k) in &made {
        let class = k.get_ulong(CKA_CLASS).unwrap();
        let mut need: Vec<CK_ATTRIBUTE_TYPE> = common.to_vec();
        match class {
            CKO_PRIVATE_KEY => need.extend(hidden.iter().chain(&private)),
            CKO_SECRET_KEY => need.extend(hidden.iter().chain(&secret)),
            _ => need.extend(&public),
        }
        for ty in need {
            assert!(k.has(ty), "{what} lacks {ty:#x}");
            assert_ne!(read_attribute(k, ty), AttrResult::Invalid, "{what} {ty:#x}");
        }
        // Every attribute it has is one its table knows, with the right encoding.
        let table = table_of(k).unwrap();
        for (ty, v) in k.iter() {
            assert!(table.get(ty).is_some(), "{what} has stray {ty:#x}");
            assert_eq!(kind_of(v), attr_kind(ty), "{what} {ty:#x}");
        }
    }
}

mod certificates {
    use super::*;
    use openssl::asn1::{Asn1Integer, Asn1Time, Asn1Type};
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::{X509Builder, X509Name, X509NameBuilder};

    fn name(cn: &str) -> X509Name {
        let mut b = X509NameBuilder::new().unwrap();
        b.append_entry_by_nid_with_type(Nid::COMMONNAME, cn, Asn1Type::UTF8STRING)
            .unwrap();
        b.build()
    }

    /// Name { CN=<cn> } encoded by hand, independent of the parser under test.
    fn name_der(cn: &str) -> Vec<u8> {
        let mut atv = vec![0x06, 0x03, 0x55, 0x04, 0x03, 0x0C, cn.len() as u8];
        atv.extend_from_slice(cn.as_bytes());
        let mut rdn = vec![0x30, atv.len() as u8];
        rdn.extend(atv);
        let mut set = vec![0x31, rdn.len() as u8];
        set.extend(rdn);
        let mut out = vec![0x30, set.len() as u8];
        out.extend(set);
        out
    }

    fn certificate() -> Vec<u8> {
        let key = PKey::from_ec_key(
            EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
        )
        .unwrap();
        let mut b = X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(
            &Asn1Integer::from_bn(&BigNum::from_hex_str("A1B2C3").unwrap()).unwrap(),
        )
        .unwrap();
        b.set_subject_name(&name("device 7")).unwrap();
        b.set_issuer_name(&name("factory ca")).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        b.build().to_der().unwrap()
    }

    fn cert_template(der: &[u8]) -> Attrs {
        attrs(&[
            u(CKA_CLASS, CKO_CERTIFICATE),
            u(CKA_CERTIFICATE_TYPE, CKC_X_509),
            by(CKA_VALUE, der),
            by(CKA_LABEL, b"device cert"),
        ])
    }

    #[test]
    fn fields_are_filled_from_the_der() {
        let der = certificate();
        let c = create(&cert_template(&der)).unwrap();
        assert_eq!(c.get_bytes(CKA_SUBJECT), Some(&name_der("device 7")[..]));
        assert_eq!(c.get_bytes(CKA_ISSUER), Some(&name_der("factory ca")[..]));
        assert_eq!(
            c.get_bytes(CKA_SERIAL_NUMBER),
            Some(&[0x02, 0x04, 0x00, 0xA1, 0xB2, 0xC3][..])
        );
        assert_eq!(c.get_bytes(CKA_VALUE), Some(&der[..]));
        assert_eq!(
            c.get_ulong(CKA_CERTIFICATE_CATEGORY),
            Some(CK_CERTIFICATE_CATEGORY_UNSPECIFIED)
        );
        assert_eq!(
            c.get_ulong(CKA_JAVA_MIDP_SECURITY_DOMAIN),
            Some(CK_SECURITY_DOMAIN_UNSPECIFIED)
        );
        assert_eq!(c.get_bool(CKA_TRUSTED), Some(false));
        assert_eq!(c.get_bool(CKA_PRIVATE), Some(false));
        assert_eq!(c.get_bytes(CKA_ID), Some(&[][..]));
        assert_eq!(
            read_attribute(&c, CKA_VALUE),
            AttrResult::Value(AttrValue::bytes(der.clone()))
        );

        // A subject that is not the certificate's own is refused; other values the caller
        // gave are kept.
        assert_eq!(
            code(create(&with(
                &cert_template(&der),
                &[by(CKA_SUBJECT, b"given")]
            ))),
            Code::TemplateInconsistent
        );
        let c = create(&with(
            &cert_template(&der),
            &[by(CKA_ISSUER, b"given"), u(CKA_CERTIFICATE_CATEGORY, 2)],
        ))
        .unwrap();
        assert_eq!(c.get_bytes(CKA_SUBJECT), Some(&name_der("device 7")[..]));
        assert_eq!(c.get_bytes(CKA_ISSUER), Some(&b"given"[..]));
        assert_eq!(c.get_ulong(CKA_CERTIFICATE_CATEGORY), Some(2));

        // A certificate's CHECK_VALUE from the caller is ignored (not computed by this token).
        let c = create(&with(
            &cert_template(&der),
            &[by(CKA_CHECK_VALUE, &[1, 2, 3])],
        ))
        .unwrap();
        assert!(!c.has(CKA_CHECK_VALUE));

        let mut trailing = der.clone();
        trailing.push(0);
        assert_eq!(
            code(create(&cert_template(&trailing))),
            Code::AttributeValueInvalid
        );
        assert_eq!(
            code(create(&cert_template(&der[..der.len() - 1]))),
            Code::AttributeValueInvalid
        );
    }

    #[test]
    fn modification_rules() {
        let der = certificate();
        let c = create(&cert_template(&der)).unwrap();
        let n = set_attributes(
            &c,
            &attrs(&[
                by(CKA_ID, b"k1"),
                by(CKA_ISSUER, b"i"),
                by(CKA_SERIAL_NUMBER, &[2, 1, 1]),
                by(CKA_LABEL, b"l"),
            ]),
            USER,
        )
        .unwrap();
        assert_eq!(n.get_bytes(CKA_ID), Some(&b"k1"[..]));
        for (what, t) in [
            ("CKA_VALUE", attrs(&[by(CKA_VALUE, &der)])),
            ("CKA_SUBJECT", attrs(&[by(CKA_SUBJECT, b"s")])),
            (
                "CKA_CERTIFICATE_TYPE",
                attrs(&[u(CKA_CERTIFICATE_TYPE, CKC_X_509)]),
            ),
            (
                "CKA_CERTIFICATE_CATEGORY",
                attrs(&[u(CKA_CERTIFICATE_CATEGORY, 1)]),
            ),
            ("CKA_START_DATE", attrs(&[by(CKA_START_DATE, b"20240101")])),
            ("CKA_TRUSTED by the user", attrs(&[b(CKA_TRUSTED, true)])),
        ] {
            assert_eq!(
                code(set_attributes(&c, &t, USER)),
                Code::AttributeReadOnly,
                "{what}"
            );
        }
        assert_eq!(
            code(set_attributes(&c, &attrs(&[by(CKA_MODULUS, &[1])]), USER)),
            Code::AttributeTypeInvalid
        );
        // The SO may trust a certificate; a trusted certificate is then frozen.
        let t = set_attributes(&c, &attrs(&[b(CKA_TRUSTED, true)]), SO).unwrap();
        assert_eq!(
            code(set_attributes(&t, &attrs(&[by(CKA_LABEL, b"x")]), SO)),
            Code::ActionProhibited
        );
        assert_eq!(
            code(new_object(
                &with(&cert_template(&der), &[b(CKA_TRUSTED, true)]),
                &Attrs::new(),
                Origin::Create,
                USER
            )),
            Code::AttributeReadOnly
        );
        // Certificates are never generated.
        assert_eq!(
            code(new_object(
                &cert_template(&der),
                &Attrs::new(),
                Origin::Generate {
                    mech: CKM_AES_KEY_GEN
                },
                USER
            )),
            Code::TemplateInconsistent
        );
    }
}

#[test]
fn merge_and_match_templates() {
    let parent = vec![
        Attribute::bool(CKA_SENSITIVE, true),
        Attribute::bool(CKA_EXTRACTABLE, false),
    ];
    let caller = attrs(&[u(CKA_CLASS, CKO_SECRET_KEY), b(CKA_SENSITIVE, true)]);
    let m = merge_templates(&parent, &caller).unwrap();
    assert_eq!(m.get_bool(CKA_EXTRACTABLE), Some(false));
    assert_eq!(m.get_ulong(CKA_CLASS), Some(CKO_SECRET_KEY));
    // KEY-05: the caller cannot loosen the parent's template.
    let loosen = attrs(&[b(CKA_EXTRACTABLE, true)]);
    assert_eq!(
        code(merge_templates(&parent, &loosen)),
        Code::TemplateInconsistent
    );

    let k = create(&with(&aes(), &[b(CKA_EXTRACTABLE, false)])).unwrap();
    assert!(matches_template(&k, &parent));
    assert!(!matches_template(&k, &[Attribute::bool(CKA_TRUSTED, true)]));
    assert!(!matches_template(
        &k,
        &[Attribute::bool(CKA_VERIFY_RECOVER, true)]
    ));
}

/// The tables themselves: no type twice in one object's rules, defaults of the attribute's
/// own encoding, and key material neither defaulted nor changeable.
#[test]
fn tables_are_coherent() {
    let mut kinds = vec![(CKO_DATA, 0), (CKO_CERTIFICATE, CKC_X_509)];
    kinds.extend(
        PRIVATE_KEY_TYPES
            .iter()
            .flat_map(|kt| [(CKO_PUBLIC_KEY, *kt), (CKO_PRIVATE_KEY, *kt)]),
    );
    kinds.extend(SECRET_KEY_TYPES.iter().map(|kt| (CKO_SECRET_KEY, *kt)));
    for (class, sub) in kinds {
        let t = table(class, sub).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for r in t.rules() {
            assert!(
                seen.insert(r.ty),
                "{} twice for {class:#x}/{sub:#x}",
                r.name
            );
            let def_kind = match r.def {
                Def::No | Def::Empty => AttrKind::Bytes,
                Def::Bool(_) | Def::Extractable => AttrKind::Bool,
                Def::Ulong(_) => AttrKind::Ulong,
            };
            if !matches!(r.def, Def::No) {
                assert_eq!(def_kind, attr_kind(r.ty), "{}", r.name);
            }
            if r.has(SECRET) {
                assert!(matches!(r.def, Def::No), "{}", r.name);
                assert!(
                    !r.has(MOD | COPY | SO_TRUE | ONLY_TO_TRUE | ONLY_TO_FALSE),
                    "{}",
                    r.name
                );
            }
            if r.has(ONLY_TO_TRUE | ONLY_TO_FALSE | SO_TRUE) {
                assert_eq!(attr_kind(r.ty), AttrKind::Bool, "{}", r.name);
            }
        }
    }
}

/// SECURITY KEY-06: no key both wraps and decrypts, or both unwraps and encrypts, however
/// it is made or changed.
#[test]
fn wrap_and_decrypt_are_never_one_key() {
    let secret = |extra: &[(CK_ATTRIBUTE_TYPE, AttrValue)]| {
        let mut t = vec![
            u(CKA_CLASS, CKO_SECRET_KEY),
            u(CKA_KEY_TYPE, CKK_AES),
            by(CKA_VALUE, &[7u8; 16]),
        ];
        t.extend_from_slice(extra);
        attrs(&t)
    };
    for pair in [[CKA_WRAP, CKA_DECRYPT], [CKA_UNWRAP, CKA_ENCRYPT]] {
        let both = secret(&[b(pair[0], true), b(pair[1], true)]);
        assert_eq!(
            code(new_object(&both, &Attrs::new(), Origin::Create, USER)),
            Code::TemplateInconsistent,
            "{pair:x?} at creation"
        );
        let one = new_object(
            &secret(&[b(pair[0], true)]),
            &Attrs::new(),
            Origin::Create,
            USER,
        )
        .unwrap();
        assert_eq!(
            code(set_attributes(&one, &attrs(&[b(pair[1], true)]), USER)),
            Code::TemplateInconsistent,
            "{pair:x?} by a change"
        );
        assert_eq!(
            code(copy_object(&one, &attrs(&[b(pair[1], true)]), USER)),
            Code::TemplateInconsistent,
            "{pair:x?} by a copy"
        );
    }
    // Wrapping and encrypting (or unwrapping and decrypting) together are harmless.
    for fine in [[CKA_WRAP, CKA_ENCRYPT], [CKA_UNWRAP, CKA_DECRYPT]] {
        let t = secret(&[b(fine[0], true), b(fine[1], true)]);
        assert!(new_object(&t, &Attrs::new(), Origin::Create, USER).is_ok());
    }
}
