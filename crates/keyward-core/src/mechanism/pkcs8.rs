//! Private keys as PKCS#8 PrivateKeyInfo (RFC 5208), the form C_WrapKey wraps them in.

use cryptoki_sys::CK_KEY_TYPE;

use crate::error::{Code, Result};
use crate::mechanism::Bytes;
use crate::object::Object;
use crate::types::Attrs;

/// The PrivateKeyInfo DER of a private key object.
pub fn encode(_key: &Object) -> Result<Bytes> {
    Err(Code::KeyNotWrappable.err("private keys cannot be wrapped by this token"))
}

/// The attributes of a private key of `key_type` from a PrivateKeyInfo DER.
pub fn decode(_key_type: CK_KEY_TYPE, _der: &[u8]) -> Result<Attrs> {
    Err(Code::TemplateInconsistent.err("private keys cannot be unwrapped by this token"))
}
