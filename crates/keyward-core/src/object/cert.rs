//! Certificate objects: the fields a CKC_X_509 certificate object takes from its own DER.

use cryptoki_sys::*;

use crate::error::{Code, Result};
use crate::types::{AttrValue, Attrs};

/// Check that CKA_VALUE of an X.509 certificate object is exactly one certificate and fill
/// CKA_SUBJECT, CKA_ISSUER and CKA_SERIAL_NUMBER from it where the template left them out.
/// A CKA_SUBJECT that is not the certificate's own is refused (CKR_TEMPLATE_INCONSISTENT):
/// applications find certificates and their keys by subject, so a false one would let a
/// certificate be found under another name. ISSUER and SERIAL_NUMBER given by the caller are
/// kept: they stay modifiable, and some applications encode them their own way.
pub(crate) fn fill_x509(attrs: &mut Attrs) -> Result<()> {
    let der = attrs
        .get_bytes(CKA_VALUE)
        .ok_or_else(|| Code::TemplateIncomplete.err("an X.509 certificate needs CKA_VALUE"))?;
    let fields = keyward_ossl::x509::parse_certificate(der).map_err(|e| {
        Code::AttributeValueInvalid.err(format!("CKA_VALUE is not an X.509 certificate: {e}"))
    })?;
    if attrs
        .get_bytes(CKA_SUBJECT)
        .is_some_and(|s| s != fields.subject.as_slice())
    {
        return Err(Code::TemplateInconsistent
            .err("CKA_SUBJECT differs from the subject of the certificate in CKA_VALUE"));
    }
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
