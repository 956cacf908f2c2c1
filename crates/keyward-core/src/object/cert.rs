//! Certificate objects: the fields a CKC_X_509 certificate object takes from its own DER.

use cryptoki_sys::*;

use crate::error::{Code, Result};
use crate::types::{AttrValue, Attrs};

/// Check that CKA_VALUE of an X.509 certificate object is exactly one certificate and fill
/// CKA_SUBJECT, CKA_ISSUER and CKA_SERIAL_NUMBER from it where the template left them out.
/// Values the caller gave are kept: the spec lets applications set them (ISSUER and
/// SERIAL_NUMBER even stay modifiable), and Cryptoki attaches no meaning to them.
pub(crate) fn fill_x509(attrs: &mut Attrs) -> Result<()> {
    let der = attrs
        .get_bytes(CKA_VALUE)
        .ok_or_else(|| Code::TemplateIncomplete.err("an X.509 certificate needs CKA_VALUE"))?;
    let fields = keyward_ossl::x509::parse_certificate(der).map_err(|e| {
        Code::AttributeValueInvalid.err(format!("CKA_VALUE is not an X.509 certificate: {e}"))
    })?;
    for (ty, value) in [
        (CKA_SUBJECT, fields.subject),
        (CKA_ISSUER, fields.issuer),
        (CKA_SERIAL_NUMBER, fields.serial),
    ] {
        if !attrs.has(ty) {
            attrs.set(ty, AttrValue::bytes(value));
        }
    }
    Ok(())
}
