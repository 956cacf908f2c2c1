//! Keys given to C_CreateObject: their material is checked the way operations will read it,
//! and their public half (CKA_PUBLIC_KEY_INFO) computed, so that an imported key fails at
//! import rather than at first use and answers like a generated one (SECURITY KEY-07).

use cryptoki_sys::*;

use crate::error::{Code, Result};
use crate::mechanism::{ec, eddsa, rsa};
use crate::types::{AttrValue, Attrs};

/// The attributes the token computes for an imported public or private key (none for other
/// objects and for key types without a public half).
pub fn public_half(attrs: &Attrs) -> Result<Attrs> {
    let mut out = Attrs::new();
    if !matches!(
        attrs.get_ulong(CKA_CLASS),
        Some(CKO_PRIVATE_KEY | CKO_PUBLIC_KEY)
    ) {
        return Ok(out);
    }
    let spki = match attrs.get_ulong(CKA_KEY_TYPE) {
        Some(CKK_RSA) => rsa::public_info(attrs),
        Some(CKK_EC) => ec::public_info(attrs),
        Some(CKK_EC_EDWARDS) => eddsa::public_info(attrs, true),
        Some(CKK_EC_MONTGOMERY) => eddsa::public_info(attrs, false),
        _ => return Ok(out),
    }
    // C_CreateObject reports bad key material as a bad attribute value.
    .map_err(|e| match e.code() {
        Code::TemplateIncomplete
        | Code::AttributeValueInvalid
        | Code::CurveNotSupported
        | Code::DomainParamsInvalid => e,
        _ => Code::AttributeValueInvalid.err(format!("key material: {}", e.detail())),
    })?;
    out.set(CKA_PUBLIC_KEY_INFO, AttrValue::bytes(spki));
    Ok(out)
}
