//! The PKCS#11 3.0 object attribute rules as data — one table per object class and key type —
//! and the one validator that creating, copying, modifying and reading objects all go through.
//!
//! Each table row carries the spec's footnotes (common footnotes 1–12) as flags. Mechanism code
//! never checks attributes itself: it hands what it produced to [`new_object`] as `generated`.
//!
//! # Token choices where the spec leaves the value to the token (footnote 9)
//! - CKA_PRIVATE: TRUE for private and secret keys, FALSE for data objects, certificates and
//!   public keys.
//! - CKA_SENSITIVE: TRUE for private and secret keys (the spec's secret-key default is FALSE;
//!   a key that should be readable must say so).
//! - CKA_EXTRACTABLE: FALSE for keys made by C_CreateObject, C_GenerateKey(Pair) and
//!   C_DeriveKey; TRUE for C_UnwrapKey, as the spec prescribes.
//! - Usage flags of private and secret keys (ENCRYPT, DECRYPT, SIGN, VERIFY, SIGN_RECOVER, WRAP,
//!   UNWRAP) default to FALSE: a key does what its template asks for and nothing more. Public
//!   keys default ENCRYPT, VERIFY and VERIFY_RECOVER to TRUE — anyone holding the public key
//!   can do those offline — but CKA_WRAP to FALSE, since an imported public wrapping key is how
//!   extractable keys are exported.
//! - CKA_DERIVE, CKA_TRUSTED, CKA_WRAP_WITH_TRUSTED, CKA_ALWAYS_AUTHENTICATE: FALSE.
//!   CKA_ALLOWED_MECHANISMS has no default: absent means "no restriction".
//!
//! # Decisions the spec leaves open
//! - An attribute the object class does not have is CKR_ATTRIBUTE_TYPE_INVALID (also for
//!   attributes that other classes have).
//! - Footnotes 2/4/6 ("must not be specified") are CKR_ATTRIBUTE_READ_ONLY, except that a
//!   template may repeat exactly the public value the mechanism itself produced (e.g.
//!   CKA_EC_PARAMS in both key-pair templates); key material is refused whatever its value.
//!   C_DeriveKey refuses what footnotes 4 or 6 refuse.
//! - CKA_VALUE_LEN and CKA_MODULUS_BITS are computed from the key; a template may state them
//!   when they agree with the key (else CKR_TEMPLATE_INCONSISTENT).
//! - CKA_PUBLIC_KEY_INFO and CKA_EC_POINT of private keys are taken only from the token: the
//!   mechanism that made the key, or for C_CreateObject the public half computed from the
//!   imported material (`mechanism::import`). A template may repeat the computed value; a
//!   different one is CKR_ATTRIBUTE_VALUE_INVALID on import, and a value the token does not
//!   compute is CKR_ATTRIBUTE_TYPE_INVALID. CKA_CHECK_VALUE in a template is ignored unless a
//!   mechanism computed one, which it must then equal.
//! - A key with CKA_WRAP and CKA_DECRYPT, or CKA_UNWRAP and CKA_ENCRYPT, both TRUE is
//!   CKR_TEMPLATE_INCONSISTENT on every path (key separation against wrap-then-decrypt).
//! - CKA_MODIFIABLE=FALSE: C_SetAttributeValue is CKR_ACTION_PROHIBITED; C_CopyObject may still
//!   change only CKA_TOKEN, CKA_PRIVATE, CKA_MODIFIABLE, CKA_DESTROYABLE and CKA_COPYABLE.
//! - A certificate with CKA_TRUSTED=TRUE cannot be modified (CKR_ACTION_PROHIBITED). Only the
//!   SO may give an object CKA_TRUSTED=TRUE, which includes copying a trusted object.
//! - CKA_COPYABLE may go TRUE→FALSE through C_SetAttributeValue as well as C_CopyObject.
//! - Data objects' CKA_APPLICATION, CKA_OBJECT_ID and CKA_VALUE stay modifiable.
//! - An X.509 certificate object must hold the certificate itself (CKA_URL-only certificates
//!   are not supported).
//! - Template attributes (CKA_WRAP_TEMPLATE, ...) are stored sorted and deep-copied; nesting
//!   one inside another is CKR_TEMPLATE_INCONSISTENT, more than [`MAX_NESTED`] entries is
//!   CKR_ATTRIBUTE_VALUE_INVALID.

use cryptoki_sys::*;

use crate::error::{Code, Result};
use crate::object::cert;
use crate::types::{AttrKind, AttrResult, AttrValue, Attribute, Attrs, attr_kind};

/// How an object is being created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// C_CreateObject.
    Create,
    /// C_GenerateKey / C_GenerateKeyPair with this mechanism.
    Generate {
        /// The key-generation mechanism (becomes CKA_KEY_GEN_MECHANISM).
        mech: CK_MECHANISM_TYPE,
    },
    /// C_UnwrapKey.
    Unwrap,
    /// C_DeriveKey, with the provenance of the base key(s).
    Derive {
        /// Every base key had CKA_ALWAYS_SENSITIVE=TRUE.
        base_always_sensitive: bool,
        /// Every base key had CKA_NEVER_EXTRACTABLE=TRUE.
        base_never_extractable: bool,
    },
}

/// Who is logged in to the token of the session making the call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Actor {
    /// The security officer.
    pub so: bool,
    /// The normal user.
    pub user: bool,
}

/// The most attributes a template attribute (CKA_WRAP_TEMPLATE, ...) may hold.
pub const MAX_NESTED: usize = 64;

// Rule flags; the footnote numbers are the spec's common footnotes.
/// ^1^: the finished object must have it (from the template or the mechanism).
const REQ: u32 = 1;
/// ^3^: C_GenerateKey(Pair) needs it (template or mechanism).
const REQ_GEN: u32 = 1 << 1;
/// ^4^: not in a C_GenerateKey(Pair) template (nor C_DeriveKey).
const NO_GEN: u32 = 1 << 2;
/// ^6^: not in a C_UnwrapKey template (nor C_DeriveKey).
const NO_UNWRAP: u32 = 1 << 3;
/// ^7^: secret key material (hidden if SENSITIVE or unextractable; encrypted at rest).
const SECRET: u32 = 1 << 4;
/// ^8^: may change through C_SetAttributeValue and C_CopyObject.
const MOD: u32 = 1 << 5;
/// May change through C_CopyObject only (CKA_TOKEN, CKA_PRIVATE, ...).
const COPY: u32 = 1 << 6;
/// ^10^: only the SO may make it TRUE; otherwise modifiable.
const SO_TRUE: u32 = 1 << 7;
/// ^11^: may change FALSE→TRUE, never back.
const ONLY_TO_TRUE: u32 = 1 << 8;
/// ^12^: may change TRUE→FALSE, never back.
const ONLY_TO_FALSE: u32 = 1 << 9;
/// Kept by the token; never in any template (^2,4,6^ and not settable).
const TOKEN_SET: u32 = 1 << 10;
/// Computed from the key; a template may only repeat the computed value.
const COMPUTED: u32 = 1 << 11;
/// Only the mechanism that makes the key supplies it.
const MECH_ONLY: u32 = 1 << 12;
/// CKA_CHECK_VALUE: kept only when a mechanism computed it.
const CHECK: u32 = 1 << 13;

/// A default value, filled in when neither the template nor the mechanism gives one.
#[derive(Clone, Copy)]
enum Def {
    /// No default: absent stays absent (or is required).
    No,
    Bool(bool),
    Ulong(CK_ULONG),
    /// An empty byte string.
    Empty,
    /// CKA_EXTRACTABLE's default, which depends on the origin.
    Extractable,
}

/// One row of an attribute table.
struct Rule {
    ty: CK_ATTRIBUTE_TYPE,
    name: &'static str,
    flags: u32,
    def: Def,
}

impl Rule {
    fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }
}

macro_rules! rules {
    ($($ty:ident: $flags:expr, $def:expr;)*) => {
        &[$(Rule { ty: $ty, name: stringify!($ty), flags: $flags, def: $def },)*]
    };
}

const FIXED: u32 = 0;

static COMMON: &[Rule] = rules! {
    CKA_CLASS: REQ, Def::No;
    CKA_UNIQUE_ID: TOKEN_SET, Def::No;
    CKA_TOKEN: COPY, Def::Bool(false);
    CKA_MODIFIABLE: COPY, Def::Bool(true);
    CKA_COPYABLE: COPY | ONLY_TO_FALSE, Def::Bool(true);
    CKA_DESTROYABLE: COPY, Def::Bool(true);
    CKA_LABEL: MOD, Def::Empty;
};

static DATA: &[Rule] = rules! {
    CKA_PRIVATE: COPY, Def::Bool(false);
    CKA_APPLICATION: MOD, Def::Empty;
    CKA_OBJECT_ID: MOD, Def::Empty;
    CKA_VALUE: MOD, Def::Empty;
};

static CERTIFICATE: &[Rule] = rules! {
    CKA_PRIVATE: COPY, Def::Bool(false);
    CKA_CERTIFICATE_TYPE: REQ, Def::No;
    CKA_TRUSTED: SO_TRUE, Def::Bool(false);
    CKA_CERTIFICATE_CATEGORY: FIXED, Def::Ulong(CK_CERTIFICATE_CATEGORY_UNSPECIFIED);
    CKA_CHECK_VALUE: CHECK, Def::No;
    CKA_START_DATE: FIXED, Def::Empty;
    CKA_END_DATE: FIXED, Def::Empty;
    CKA_PUBLIC_KEY_INFO: FIXED, Def::Empty;
};

static X509: &[Rule] = rules! {
    CKA_SUBJECT: FIXED, Def::No;
    CKA_ID: MOD, Def::Empty;
    CKA_ISSUER: MOD, Def::No;
    CKA_SERIAL_NUMBER: MOD, Def::No;
    CKA_VALUE: REQ, Def::No;
    CKA_URL: FIXED, Def::Empty;
    CKA_HASH_OF_SUBJECT_PUBLIC_KEY: FIXED, Def::Empty;
    CKA_HASH_OF_ISSUER_PUBLIC_KEY: FIXED, Def::Empty;
    CKA_JAVA_MIDP_SECURITY_DOMAIN: FIXED, Def::Ulong(CK_SECURITY_DOMAIN_UNSPECIFIED);
    CKA_NAME_HASH_ALGORITHM: FIXED, Def::No;
};

static KEY: &[Rule] = rules! {
    CKA_KEY_TYPE: REQ, Def::No;
    CKA_ID: MOD, Def::Empty;
    CKA_START_DATE: MOD, Def::Empty;
    CKA_END_DATE: MOD, Def::Empty;
    CKA_DERIVE: MOD, Def::Bool(false);
    CKA_LOCAL: TOKEN_SET, Def::No;
    CKA_KEY_GEN_MECHANISM: TOKEN_SET, Def::No;
    CKA_ALLOWED_MECHANISMS: FIXED, Def::No;
};

static PUBLIC_KEY: &[Rule] = rules! {
    CKA_PRIVATE: COPY, Def::Bool(false);
    CKA_SUBJECT: MOD, Def::Empty;
    CKA_ENCRYPT: MOD, Def::Bool(true);
    CKA_VERIFY: MOD, Def::Bool(true);
    CKA_VERIFY_RECOVER: MOD, Def::Bool(true);
    CKA_WRAP: MOD, Def::Bool(false);
    CKA_TRUSTED: SO_TRUE, Def::Bool(false);
    CKA_WRAP_TEMPLATE: FIXED, Def::No;
    CKA_PUBLIC_KEY_INFO: MECH_ONLY, Def::No;
};

static PRIVATE_KEY: &[Rule] = rules! {
    CKA_PRIVATE: COPY, Def::Bool(true);
    CKA_SUBJECT: MOD, Def::Empty;
    CKA_SENSITIVE: ONLY_TO_TRUE, Def::Bool(true);
    CKA_DECRYPT: MOD, Def::Bool(false);
    CKA_SIGN: MOD, Def::Bool(false);
    CKA_SIGN_RECOVER: MOD, Def::Bool(false);
    CKA_UNWRAP: MOD, Def::Bool(false);
    CKA_EXTRACTABLE: ONLY_TO_FALSE, Def::Extractable;
    CKA_ALWAYS_SENSITIVE: TOKEN_SET, Def::No;
    CKA_NEVER_EXTRACTABLE: TOKEN_SET, Def::No;
    CKA_WRAP_WITH_TRUSTED: ONLY_TO_TRUE, Def::Bool(false);
    CKA_UNWRAP_TEMPLATE: FIXED, Def::No;
    CKA_DERIVE_TEMPLATE: FIXED, Def::No;
    CKA_ALWAYS_AUTHENTICATE: FIXED, Def::Bool(false);
    CKA_PUBLIC_KEY_INFO: MECH_ONLY, Def::No;
};

static SECRET_KEY: &[Rule] = rules! {
    CKA_PRIVATE: COPY, Def::Bool(true);
    CKA_SENSITIVE: ONLY_TO_TRUE, Def::Bool(true);
    CKA_ENCRYPT: MOD, Def::Bool(false);
    CKA_DECRYPT: MOD, Def::Bool(false);
    CKA_SIGN: MOD, Def::Bool(false);
    CKA_VERIFY: MOD, Def::Bool(false);
    CKA_WRAP: MOD, Def::Bool(false);
    CKA_UNWRAP: MOD, Def::Bool(false);
    CKA_EXTRACTABLE: ONLY_TO_FALSE, Def::Extractable;
    CKA_ALWAYS_SENSITIVE: TOKEN_SET, Def::No;
    CKA_NEVER_EXTRACTABLE: TOKEN_SET, Def::No;
    CKA_CHECK_VALUE: CHECK, Def::No;
    CKA_WRAP_WITH_TRUSTED: ONLY_TO_TRUE, Def::Bool(false);
    CKA_TRUSTED: SO_TRUE, Def::Bool(false);
    CKA_WRAP_TEMPLATE: FIXED, Def::No;
    CKA_UNWRAP_TEMPLATE: FIXED, Def::No;
    CKA_DERIVE_TEMPLATE: FIXED, Def::No;
};

static RSA_PUBLIC: &[Rule] = rules! {
    CKA_MODULUS: REQ | NO_GEN, Def::No;
    CKA_MODULUS_BITS: REQ_GEN | COMPUTED, Def::No;
    CKA_PUBLIC_EXPONENT: REQ, Def::No;
};

static RSA_PRIVATE: &[Rule] = rules! {
    CKA_MODULUS: REQ | NO_GEN | NO_UNWRAP, Def::No;
    CKA_PUBLIC_EXPONENT: REQ | NO_GEN | NO_UNWRAP, Def::No;
    CKA_PRIVATE_EXPONENT: REQ | NO_GEN | NO_UNWRAP | SECRET, Def::No;
    CKA_PRIME_1: NO_GEN | NO_UNWRAP | SECRET, Def::No;
    CKA_PRIME_2: NO_GEN | NO_UNWRAP | SECRET, Def::No;
    CKA_EXPONENT_1: NO_GEN | NO_UNWRAP | SECRET, Def::No;
    CKA_EXPONENT_2: NO_GEN | NO_UNWRAP | SECRET, Def::No;
    CKA_COEFFICIENT: NO_GEN | NO_UNWRAP | SECRET, Def::No;
    // Not in the spec's private-key table, but applications read it from private keys.
    CKA_MODULUS_BITS: COMPUTED, Def::No;
};

/// Weierstrass, Edwards and Montgomery public keys share one layout.
static EC_PUBLIC: &[Rule] = rules! {
    CKA_EC_PARAMS: REQ | REQ_GEN, Def::No;
    CKA_EC_POINT: REQ | NO_GEN, Def::No;
};

static EC_PRIVATE: &[Rule] = rules! {
    CKA_EC_PARAMS: REQ | NO_GEN | NO_UNWRAP, Def::No;
    CKA_VALUE: REQ | NO_GEN | NO_UNWRAP | SECRET, Def::No;
    CKA_EC_POINT: MECH_ONLY, Def::No;
};

/// AES and generic secret keys share one layout; lengths are checked per key type.
static SECRET_VALUE: &[Rule] = rules! {
    CKA_VALUE: REQ | NO_GEN | NO_UNWRAP | SECRET, Def::No;
    CKA_VALUE_LEN: REQ_GEN | COMPUTED, Def::No;
};

/// The rules of one kind of object: the class's tables plus the key or certificate type's.
struct Table {
    class: CK_OBJECT_CLASS,
    sub: CK_ULONG,
    parts: [&'static [Rule]; 4],
}

impl Table {
    fn get(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<&'static Rule> {
        self.rules().find(|r| r.ty == ty)
    }

    fn rules(&self) -> impl Iterator<Item = &'static Rule> + use<> {
        let parts = self.parts;
        parts.into_iter().flatten()
    }

    fn is_key(&self) -> bool {
        matches!(
            self.class,
            CKO_PUBLIC_KEY | CKO_PRIVATE_KEY | CKO_SECRET_KEY
        )
    }

    /// Private and secret keys: the ones with SENSITIVE / EXTRACTABLE.
    fn is_hidden_key(&self) -> bool {
        matches!(self.class, CKO_PRIVATE_KEY | CKO_SECRET_KEY)
    }
}

const EMPTY: &[Rule] = &[];
const PRIVATE_KEY_TYPES: &[CK_KEY_TYPE] = &[CKK_RSA, CKK_EC, CKK_EC_EDWARDS, CKK_EC_MONTGOMERY];
const SECRET_KEY_TYPES: &[CK_KEY_TYPE] = &[CKK_AES, CKK_GENERIC_SECRET, CKK_CHACHA20, CKK_HKDF];

/// The table for class `class` and key/certificate type `sub` (ignored for data objects).
fn table(class: CK_OBJECT_CLASS, sub: CK_ULONG) -> Result<Table> {
    let parts = match class {
        CKO_DATA => [COMMON, DATA, EMPTY, EMPTY],
        CKO_CERTIFICATE if sub == CKC_X_509 => [COMMON, CERTIFICATE, X509, EMPTY],
        CKO_CERTIFICATE => {
            return Err(Code::AttributeValueInvalid.err(format!(
                "certificate type {sub:#x} is not supported (only CKC_X_509)"
            )));
        }
        CKO_PUBLIC_KEY | CKO_PRIVATE_KEY | CKO_SECRET_KEY => {
            let by_type = match (class, sub) {
                (CKO_PUBLIC_KEY, CKK_RSA) => RSA_PUBLIC,
                (CKO_PRIVATE_KEY, CKK_RSA) => RSA_PRIVATE,
                (CKO_PUBLIC_KEY, CKK_EC | CKK_EC_EDWARDS | CKK_EC_MONTGOMERY) => EC_PUBLIC,
                (CKO_PRIVATE_KEY, CKK_EC | CKK_EC_EDWARDS | CKK_EC_MONTGOMERY) => EC_PRIVATE,
                (CKO_SECRET_KEY, CKK_AES | CKK_GENERIC_SECRET | CKK_CHACHA20 | CKK_HKDF) => {
                    SECRET_VALUE
                }
                (_, CKK_RSA | CKK_EC | CKK_EC_EDWARDS | CKK_EC_MONTGOMERY)
                | (_, CKK_AES | CKK_GENERIC_SECRET | CKK_CHACHA20 | CKK_HKDF) => {
                    return Err(Code::TemplateInconsistent.err(format!(
                        "key type {sub:#x} does not go with object class {class:#x}"
                    )));
                }
                _ => {
                    return Err(Code::AttributeValueInvalid
                        .err(format!("key type {sub:#x} is not supported")));
                }
            };
            let class_rules = match class {
                CKO_PUBLIC_KEY => PUBLIC_KEY,
                CKO_PRIVATE_KEY => PRIVATE_KEY,
                _ => SECRET_KEY,
            };
            [COMMON, KEY, class_rules, by_type]
        }
        _ => {
            return Err(Code::AttributeValueInvalid
                .err(format!("object class {class:#x} is not supported")));
        }
    };
    Ok(Table { class, sub, parts })
}

/// The table of an existing object; a stored object without class or type is corrupt.
fn table_of(obj: &Attrs) -> Result<Table> {
    let class = obj
        .get_ulong(CKA_CLASS)
        .ok_or_else(|| Code::GeneralError.err("stored object has no CKA_CLASS"))?;
    let sub = match class {
        CKO_CERTIFICATE => obj.get_ulong(CKA_CERTIFICATE_TYPE),
        CKO_PUBLIC_KEY | CKO_PRIVATE_KEY | CKO_SECRET_KEY => obj.get_ulong(CKA_KEY_TYPE),
        _ => Some(0),
    }
    .ok_or_else(|| Code::GeneralError.err("stored object has no key or certificate type"))?;
    table(class, sub).map_err(|e| Code::GeneralError.err(format!("stored object: {e}")))
}

fn name_of(ty: CK_ATTRIBUTE_TYPE, rule: Option<&Rule>) -> String {
    match rule {
        Some(r) => r.name.to_string(),
        None => format!("attribute {ty:#x}"),
    }
}

fn bool_of(v: &AttrValue) -> Option<bool> {
    match v {
        AttrValue::Bool(b) => Some(*b),
        _ => None,
    }
}

fn kind_of(v: &AttrValue) -> AttrKind {
    match v {
        AttrValue::Bool(_) => AttrKind::Bool,
        AttrValue::Ulong(_) => AttrKind::Ulong,
        AttrValue::Bytes(_) => AttrKind::Bytes,
        AttrValue::Template(_) => AttrKind::Template,
        AttrValue::Mechanisms(_) => AttrKind::Mechanisms,
    }
}

/// Check the encoding of every attribute and deep-copy nested templates into their stored
/// form (sorted, without duplicates).
fn normalize(template: &Attrs) -> Result<Attrs> {
    let mut out = Attrs::new();
    for (ty, v) in template.iter() {
        if kind_of(v) != attr_kind(ty) {
            return Err(Code::AttributeValueInvalid
                .err(format!("attribute {ty:#x} has a value of the wrong type")));
        }
        let v = match v {
            AttrValue::Template(inner) => AttrValue::Template(nested(ty, inner)?),
            other => other.clone(),
        };
        out.set(ty, v);
    }
    Ok(out)
}

fn nested(outer: CK_ATTRIBUTE_TYPE, inner: &[Attribute]) -> Result<Vec<Attribute>> {
    if inner.len() > MAX_NESTED {
        return Err(Code::AttributeValueInvalid.err(format!(
            "template attribute {outer:#x} holds more than {MAX_NESTED} attributes"
        )));
    }
    for a in inner {
        if kind_of(&a.value) == AttrKind::Template || attr_kind(a.ty) == AttrKind::Template {
            return Err(Code::TemplateInconsistent.err(format!(
                "template attribute {outer:#x} may not hold another template"
            )));
        }
        if kind_of(&a.value) != attr_kind(a.ty) {
            return Err(Code::AttributeValueInvalid.err(format!(
                "attribute {:#x} inside {outer:#x} has a value of the wrong type",
                a.ty
            )));
        }
    }
    let sorted = Attrs::from_template(inner.to_vec())?;
    Ok(sorted
        .iter()
        .map(|(ty, value)| Attribute {
            ty,
            value: value.clone(),
        })
        .collect())
}

/// Per-attribute value checks that do not depend on other attributes.
fn check_value(ty: CK_ATTRIBUTE_TYPE, v: &AttrValue) -> Result<()> {
    match (ty, v) {
        (CKA_START_DATE | CKA_END_DATE, AttrValue::Bytes(b)) if !valid_date(b) => {
            Err(Code::AttributeValueInvalid.err("a CK_DATE is empty or 8 digits YYYYMMDD"))
        }
        (CKA_CERTIFICATE_CATEGORY, AttrValue::Ulong(c))
            if *c > CK_CERTIFICATE_CATEGORY_OTHER_ENTITY =>
        {
            Err(Code::AttributeValueInvalid.err(format!("certificate category {c} is unknown")))
        }
        (CKA_JAVA_MIDP_SECURITY_DOMAIN, AttrValue::Ulong(d))
            if *d > CK_SECURITY_DOMAIN_THIRD_PARTY =>
        {
            Err(Code::AttributeValueInvalid.err(format!("security domain {d} is unknown")))
        }
        _ => Ok(()),
    }
}

fn valid_date(b: &[u8]) -> bool {
    if b.is_empty() {
        return true;
    }
    if b.len() != 8 || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let num = |r: std::ops::Range<usize>| {
        b[r].iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
    };
    (1..=12).contains(&num(4..6)) && (1..=31).contains(&num(6..8))
}

/// The value of `ty` from the template or the mechanism; both present and different is
/// CKR_TEMPLATE_INCONSISTENT.
fn pick_ulong(
    template: &Attrs,
    generated: &Attrs,
    ty: CK_ATTRIBUTE_TYPE,
    what: &str,
) -> Result<Option<CK_ULONG>> {
    let t = template.get_ulong(ty);
    let g = generated.get_ulong(ty);
    match (t, g) {
        (Some(a), Some(b)) if a != b => Err(Code::TemplateInconsistent.err(format!(
            "the template's {what} {a:#x} contradicts the mechanism's {b:#x}"
        ))),
        (Some(a), _) => Ok(Some(a)),
        (None, b) => Ok(b),
    }
}

/// The table for a new object, from the class and type in the template or the mechanism's output.
fn table_for_new(template: &Attrs, generated: &Attrs) -> Result<Table> {
    let class = pick_ulong(template, generated, CKA_CLASS, "CKA_CLASS")?
        .ok_or_else(|| Code::TemplateIncomplete.err("CKA_CLASS is missing"))?;
    let sub = match class {
        CKO_DATA => 0,
        CKO_CERTIFICATE => pick_ulong(
            template,
            generated,
            CKA_CERTIFICATE_TYPE,
            "CKA_CERTIFICATE_TYPE",
        )?
        .ok_or_else(|| Code::TemplateIncomplete.err("CKA_CERTIFICATE_TYPE is missing"))?,
        CKO_PUBLIC_KEY | CKO_PRIVATE_KEY | CKO_SECRET_KEY => {
            pick_ulong(template, generated, CKA_KEY_TYPE, "CKA_KEY_TYPE")?
                .ok_or_else(|| Code::TemplateIncomplete.err("CKA_KEY_TYPE is missing"))?
        }
        _ => {
            return Err(Code::AttributeValueInvalid
                .err(format!("object class {class:#x} cannot be created")));
        }
    };
    table(class, sub)
}

/// Whether a template for `origin` may not give this attribute (footnotes 2, 4, 6).
fn forbidden_for(rule: &Rule, origin: Origin) -> bool {
    match origin {
        Origin::Create => false,
        Origin::Generate { .. } => rule.has(NO_GEN),
        Origin::Unwrap => rule.has(NO_UNWRAP),
        Origin::Derive { .. } => rule.has(NO_GEN | NO_UNWRAP),
    }
}

/// Validate a creation template and produce the object's full attribute set. `generated`
/// holds the attributes a mechanism produced (key type, key material, CKA_VALUE_LEN, ...);
/// for C_CreateObject it is empty. CKA_UNIQUE_ID is left to the caller.
pub fn new_object(
    template: &Attrs,
    generated: &Attrs,
    origin: Origin,
    actor: Actor,
) -> Result<Attrs> {
    let template = normalize(template)?;
    let generated = normalize(generated)
        .map_err(|e| Code::GeneralError.err(format!("mechanism output: {e}")))?;
    let table = table_for_new(&template, &generated)?;
    let allowed_class = match origin {
        Origin::Create => true,
        Origin::Generate { .. } => table.is_key(),
        Origin::Unwrap => table.is_hidden_key(),
        // The engine lets only CKM_HKDF_DATA make data objects.
        Origin::Derive { .. } => matches!(table.class, CKO_SECRET_KEY | CKO_DATA),
    };
    if !allowed_class {
        return Err(Code::TemplateInconsistent.err(format!(
            "object class {:#x} cannot be made this way",
            table.class
        )));
    }

    let mut out = Attrs::new();
    for (ty, v) in generated.iter() {
        let rule = table.get(ty).ok_or_else(|| {
            Code::GeneralError.err(format!(
                "the mechanism produced {ty:#x}, which this object cannot have"
            ))
        })?;
        // Provenance is the token's to compute, whatever a mechanism says.
        if !rule.has(TOKEN_SET) {
            out.set(ty, v.clone());
        }
    }
    for (ty, v) in template.iter() {
        let rule = table.get(ty);
        let name = name_of(ty, rule);
        let rule = rule.ok_or_else(|| {
            Code::AttributeTypeInvalid
                .err(format!("{name} is not an attribute of this object class"))
        })?;
        let from_mech = generated.get(ty);
        if rule.has(TOKEN_SET) {
            return Err(Code::AttributeReadOnly.err(format!("{name} is set by the token")));
        }
        // Repeating the mechanism's value is harmless, except for key material, where
        // accepting an equal value would answer "is this the key?".
        if forbidden_for(rule, origin) && (rule.has(SECRET) || from_mech != Some(v)) {
            return Err(Code::AttributeReadOnly.err(format!(
                "{name} may not be given when the token makes the key"
            )));
        }
        if rule.has(MECH_ONLY) && from_mech != Some(v) {
            // An imported key's public half that the caller contradicts is a wrong value
            // (SECURITY KEY-07); anything else is not taken from templates at all.
            let code = if from_mech.is_some() && origin == Origin::Create {
                Code::AttributeValueInvalid
            } else {
                Code::AttributeTypeInvalid
            };
            return Err(code.err(format!("{name} is only taken from the key itself")));
        }
        if rule.has(CHECK) {
            match from_mech {
                Some(g) if g != v => {
                    return Err(
                        Code::AttributeValueInvalid.err(format!("{name} does not match the key"))
                    );
                }
                Some(_) => {}
                // Not computed: the spec says to ignore a supplied value.
                None => continue,
            }
        }
        if rule.has(SO_TRUE) && bool_of(v) == Some(true) && !actor.so {
            return Err(
                Code::AttributeReadOnly.err(format!("only the SO may set {name} to CK_TRUE"))
            );
        }
        check_value(ty, v)?;
        if let Some(g) = from_mech
            && g != v
        {
            return Err(Code::TemplateInconsistent.err(format!(
                "{name} contradicts the value the mechanism produced"
            )));
        }
        out.set(ty, v.clone());
    }

    for rule in table.rules() {
        let missing = !out.has(rule.ty);
        let needed =
            rule.has(REQ) || (matches!(origin, Origin::Generate { .. }) && rule.has(REQ_GEN));
        if missing && needed {
            return Err(Code::TemplateIncomplete.err(format!("{} is missing", rule.name)));
        }
    }
    if table.class == CKO_CERTIFICATE {
        cert::fill_x509(&mut out)?;
    }
    for rule in table.rules() {
        if out.has(rule.ty) {
            continue;
        }
        let v = match rule.def {
            Def::No => continue,
            Def::Bool(b) => AttrValue::Bool(b),
            Def::Ulong(u) => AttrValue::Ulong(u),
            Def::Empty => AttrValue::bytes(Vec::new()),
            Def::Extractable => AttrValue::Bool(origin == Origin::Unwrap),
        };
        out.set(rule.ty, v);
    }
    key_values(&table, &mut out)?;
    if table.is_key() {
        provenance(&table, origin, &mut out);
    }
    consistent(&out)?;
    Ok(out)
}

/// Key-material checks and the attributes computed from the material.
fn key_values(table: &Table, out: &mut Attrs) -> Result<()> {
    let nonempty = |out: &Attrs, ty: CK_ATTRIBUTE_TYPE, name: &str| -> Result<usize> {
        match out.get_bytes(ty) {
            Some(b) if !b.is_empty() => Ok(b.len()),
            _ => Err(Code::AttributeValueInvalid.err(format!("{name} is empty"))),
        }
    };
    match (table.class, table.sub) {
        (CKO_SECRET_KEY, key_type) => {
            let len = nonempty(out, CKA_VALUE, "CKA_VALUE")?;
            if key_type == CKK_AES && ![16, 24, 32].contains(&len) {
                return Err(Code::AttributeValueInvalid
                    .err(format!("an AES key is 16, 24 or 32 bytes, not {len}")));
            }
            if key_type == CKK_CHACHA20 && len != 32 {
                return Err(Code::AttributeValueInvalid
                    .err(format!("a ChaCha20 key is 32 bytes, not {len}")));
            }
            let len = CK_ULONG::try_from(len)
                .map_err(|_| Code::AttributeValueInvalid.err("key too long"))?;
            computed(out, CKA_VALUE_LEN, "CKA_VALUE_LEN", len)?;
        }
        (CKO_PUBLIC_KEY | CKO_PRIVATE_KEY, CKK_RSA) => {
            nonempty(out, CKA_MODULUS, "CKA_MODULUS")?;
            nonempty(out, CKA_PUBLIC_EXPONENT, "CKA_PUBLIC_EXPONENT")?;
            if table.class == CKO_PRIVATE_KEY {
                nonempty(out, CKA_PRIVATE_EXPONENT, "CKA_PRIVATE_EXPONENT")?;
            }
            let bits = bit_len(out.get_bytes(CKA_MODULUS).unwrap_or_default());
            if bits == 0 {
                return Err(Code::AttributeValueInvalid.err("CKA_MODULUS is zero"));
            }
            computed(out, CKA_MODULUS_BITS, "CKA_MODULUS_BITS", bits)?;
        }
        (CKO_PUBLIC_KEY, _) => {
            nonempty(out, CKA_EC_PARAMS, "CKA_EC_PARAMS")?;
            nonempty(out, CKA_EC_POINT, "CKA_EC_POINT")?;
        }
        (CKO_PRIVATE_KEY, _) => {
            nonempty(out, CKA_EC_PARAMS, "CKA_EC_PARAMS")?;
            nonempty(out, CKA_VALUE, "CKA_VALUE")?;
        }
        _ => {}
    }
    Ok(())
}

/// Set a computed attribute; a value already given must agree with it.
fn computed(out: &mut Attrs, ty: CK_ATTRIBUTE_TYPE, name: &str, value: CK_ULONG) -> Result<()> {
    match out.get_ulong(ty) {
        Some(given) if given != value => Err(Code::TemplateInconsistent
            .err(format!("{name} {given} does not match the key ({value})"))),
        _ => {
            out.set(ty, AttrValue::Ulong(value));
            Ok(())
        }
    }
}

/// Bits in a big-endian unsigned integer.
fn bit_len(be: &[u8]) -> CK_ULONG {
    let Some(pos) = be.iter().position(|b| *b != 0) else {
        return 0;
    };
    let top = 8 - be[pos].leading_zeros() as usize;
    CK_ULONG::try_from((be.len() - pos - 1) * 8 + top).unwrap_or(CK_ULONG::MAX)
}

/// CKA_LOCAL, CKA_KEY_GEN_MECHANISM, CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE of a new key.
fn provenance(table: &Table, origin: Origin, out: &mut Attrs) {
    let (local, mech) = match origin {
        Origin::Generate { mech } => (true, mech),
        _ => (false, CK_UNAVAILABLE_INFORMATION),
    };
    out.set(CKA_LOCAL, AttrValue::Bool(local));
    out.set(CKA_KEY_GEN_MECHANISM, AttrValue::Ulong(mech));
    if !table.is_hidden_key() {
        return;
    }
    // Defaults are filled, so both are present; fail closed if not.
    let sensitive = out.get_bool(CKA_SENSITIVE).unwrap_or(false);
    let extractable = out.get_bool(CKA_EXTRACTABLE).unwrap_or(true);
    let (always, never) = match origin {
        Origin::Generate { .. } => (sensitive, !extractable),
        Origin::Create | Origin::Unwrap => (false, false),
        Origin::Derive {
            base_always_sensitive,
            base_never_extractable,
        } => (
            base_always_sensitive && sensitive,
            base_never_extractable && !extractable,
        ),
    };
    out.set(CKA_ALWAYS_SENSITIVE, AttrValue::Bool(always));
    out.set(CKA_NEVER_EXTRACTABLE, AttrValue::Bool(never));
}

/// Rules between attributes that hold for every object, however it was made or changed.
fn consistent(obj: &Attrs) -> Result<()> {
    if obj.get_bool(CKA_ALWAYS_AUTHENTICATE) == Some(true)
        && obj.get_bool(CKA_PRIVATE) != Some(true)
    {
        return Err(
            Code::TemplateInconsistent.err("CKA_ALWAYS_AUTHENTICATE=TRUE needs CKA_PRIVATE=TRUE")
        );
    }
    // Key separation (SECURITY KEY-06): a key that wraps and decrypts would decrypt what it
    // wrapped, and one that unwraps and encrypts would import chosen key values as if they
    // were secret; both hand out sensitive keys through two legal calls.
    let on = |ty| obj.get_bool(ty) == Some(true);
    if (on(CKA_WRAP) && on(CKA_DECRYPT)) || (on(CKA_UNWRAP) && on(CKA_ENCRYPT)) {
        return Err(Code::TemplateInconsistent
            .err("a key may not both wrap and decrypt, nor both unwrap and encrypt"));
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    Set,
    Copy,
}

/// Whether `actor` may change attribute `rule` from `old` to `new` in a set or copy.
fn may_change(
    rule: &Rule,
    old: Option<&AttrValue>,
    new: &AttrValue,
    actor: Actor,
    op: Change,
) -> Result<()> {
    let name = rule.name;
    let read_only = |why: &str| Err(Code::AttributeReadOnly.err(format!("{name} {why}")));
    if rule.has(TOKEN_SET) {
        return read_only("is set by the token");
    }
    let new_b = bool_of(new);
    let old_b = old.and_then(bool_of);
    if rule.has(ONLY_TO_TRUE) {
        // A missing old value counts as TRUE: fail closed.
        if old_b.unwrap_or(true) && new_b == Some(false) {
            return read_only("cannot be changed once CK_TRUE");
        }
        return Ok(());
    }
    if rule.has(ONLY_TO_FALSE) {
        if !old_b.unwrap_or(false) && new_b == Some(true) {
            return read_only("cannot be changed once CK_FALSE");
        }
        return Ok(());
    }
    if rule.has(SO_TRUE) {
        if new_b == Some(true) && !actor.so {
            return read_only("can only be set to CK_TRUE by the SO");
        }
        return Ok(());
    }
    if rule.has(MOD) || (rule.has(COPY) && op == Change::Copy) {
        return Ok(());
    }
    read_only("cannot be changed after the object is created")
}

/// Apply a set or copy template to `existing`; the result is only returned whole.
fn change(existing: &Attrs, template: &Attrs, actor: Actor, op: Change) -> Result<Attrs> {
    let table = table_of(existing)?;
    let template = normalize(template)?;
    let frozen = !existing.get_bool(CKA_MODIFIABLE).unwrap_or(true);
    let mut out = existing.clone();
    for (ty, v) in template.iter() {
        let rule = table.get(ty);
        let name = name_of(ty, rule);
        let rule = rule.ok_or_else(|| {
            Code::AttributeTypeInvalid.err(format!("{name} is not an attribute of this object"))
        })?;
        if frozen && op == Change::Copy && !rule.has(COPY) {
            return Err(Code::AttributeReadOnly.err(format!(
                "{name} of an unmodifiable object cannot change in a copy"
            )));
        }
        if rule.has(CHECK) {
            // An empty value removes the check value (spec); any other value must be it.
            match v {
                AttrValue::Bytes(b) if b.is_empty() => {
                    out.0.remove(&ty);
                    continue;
                }
                _ if existing.get(ty) == Some(v) => continue,
                _ => {
                    return Err(
                        Code::AttributeReadOnly.err(format!("{name} is computed by the token"))
                    );
                }
            }
        }
        may_change(rule, existing.get(ty), v, actor, op)?;
        check_value(ty, v)?;
        out.set(ty, v.clone());
    }
    consistent(&out)?;
    Ok(out)
}

/// C_CopyObject: the copy's attribute set (without CKA_UNIQUE_ID, which the caller assigns).
/// Provenance (CKA_LOCAL, CKA_KEY_GEN_MECHANISM, CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE)
/// is the original's.
pub fn copy_object(existing: &Attrs, template: &Attrs, actor: Actor) -> Result<Attrs> {
    if !existing.get_bool(CKA_COPYABLE).unwrap_or(true) {
        return Err(Code::ActionProhibited.err("the object has CKA_COPYABLE=FALSE"));
    }
    let mut out = change(existing, template, actor, Change::Copy)?;
    if out.get_bool(CKA_TRUSTED) == Some(true) && !actor.so {
        return Err(Code::AttributeReadOnly.err(
            "only the SO may make an object with CKA_TRUSTED=TRUE; copy it with CKA_TRUSTED=FALSE",
        ));
    }
    out.0.remove(&CKA_UNIQUE_ID);
    Ok(out)
}

/// C_SetAttributeValue: the new full attribute set (all or nothing).
pub fn set_attributes(existing: &Attrs, template: &Attrs, actor: Actor) -> Result<Attrs> {
    if !existing.get_bool(CKA_MODIFIABLE).unwrap_or(true) {
        return Err(Code::ActionProhibited.err("the object has CKA_MODIFIABLE=FALSE"));
    }
    if existing.get_ulong(CKA_CLASS) == Some(CKO_CERTIFICATE)
        && existing.get_bool(CKA_TRUSTED) == Some(true)
    {
        return Err(Code::ActionProhibited.err("trusted certificates cannot be modified"));
    }
    change(existing, template, actor, Change::Set)
}

/// C_GetAttributeValue for one attribute: footnote 7 hides key material when CKA_SENSITIVE
/// is TRUE *or* CKA_EXTRACTABLE is FALSE (a key missing either flag counts as hidden).
pub fn read_attribute(obj: &Attrs, ty: CK_ATTRIBUTE_TYPE) -> AttrResult {
    let Some(v) = obj.get(ty) else {
        return AttrResult::Invalid;
    };
    let class = obj
        .get_ulong(CKA_CLASS)
        .unwrap_or(CK_UNAVAILABLE_INFORMATION);
    if is_secret_attribute(class, ty) {
        let sensitive = obj.get_bool(CKA_SENSITIVE).unwrap_or(true);
        let extractable = obj.get_bool(CKA_EXTRACTABLE).unwrap_or(false);
        if sensitive || !extractable {
            return AttrResult::Sensitive;
        }
    }
    AttrResult::Value(v.clone())
}

/// Whether `ty` of an object of this class is key material (footnote 7; encrypted at rest).
pub fn is_secret_attribute(class: CK_OBJECT_CLASS, ty: CK_ATTRIBUTE_TYPE) -> bool {
    let subs = match class {
        CKO_PRIVATE_KEY => PRIVATE_KEY_TYPES,
        CKO_SECRET_KEY => SECRET_KEY_TYPES,
        _ => return false,
    };
    subs.iter().any(|sub| {
        table(class, *sub)
            .ok()
            .and_then(|t| t.get(ty))
            .is_some_and(|r| r.has(SECRET))
    })
}

/// The template to create a key with when a parent key's CKA_UNWRAP_TEMPLATE or
/// CKA_DERIVE_TEMPLATE applies: the parent's attributes plus the caller's, where the caller
/// may not contradict the parent (CKR_TEMPLATE_INCONSISTENT).
pub fn merge_templates(parent: &[Attribute], caller: &Attrs) -> Result<Attrs> {
    let mut out = caller.clone();
    for a in parent {
        match caller.get(a.ty) {
            Some(v) if *v != a.value => {
                return Err(Code::TemplateInconsistent.err(format!(
                    "attribute {:#x} contradicts the key's template",
                    a.ty
                )));
            }
            _ => out.set(a.ty, a.value.clone()),
        }
    }
    Ok(out)
}

/// Whether every attribute of a CKA_WRAP_TEMPLATE (or similar match template) is present in
/// `obj` with an equal value.
pub fn matches_template(obj: &Attrs, template: &[Attribute]) -> bool {
    template.iter().all(|a| obj.get(a.ty) == Some(&a.value))
}

#[cfg(test)]
mod tests;
