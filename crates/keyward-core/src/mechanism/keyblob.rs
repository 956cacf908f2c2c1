//! The bytes C_WrapKey encrypts and C_UnwrapKey decrypts (PKCS#11 3.0 §5.18.6–7): a secret
//! key's CKA_VALUE, or a private key's PKCS#8 PrivateKeyInfo; and back to the attributes a
//! new key object gets from them.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use crate::error::{Code, Result};
use crate::mechanism::Bytes;
use crate::object::Object;
use crate::types::{AttrValue, Attrs};

/// The plaintext `mech` encrypts to wrap `key`.
///
/// Only mechanisms with integrity or a fixed format wrap (SECURITY KEY-06), so the
/// zero-padding the spec describes for unpadded ECB/CBC wrapping never applies.
pub fn encode(key: &Object) -> Result<Bytes> {
    match key.class() {
        CKO_SECRET_KEY => {
            let value = key
                .attrs()
                .get_bytes(CKA_VALUE)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Code::KeyNotWrappable.err("the key has no value to wrap"))?;
            Ok(Zeroizing::new(value.to_vec()))
        }
        CKO_PRIVATE_KEY => crate::mechanism::pkcs8::encode(key),
        _ => Err(Code::KeyNotWrappable.err("only secret and private keys can be wrapped")),
    }
}

/// The attributes the mechanism determines for a key unwrapped from `plain`, given the
/// caller's (merged) template, which names the class and key type.
pub fn decode(template: &Attrs, plain: Bytes) -> Result<Attrs> {
    let class = template
        .get_ulong(CKA_CLASS)
        .ok_or_else(|| Code::TemplateIncomplete.err("CKA_CLASS is missing"))?;
    let key_type = template
        .get_ulong(CKA_KEY_TYPE)
        .ok_or_else(|| Code::TemplateIncomplete.err("CKA_KEY_TYPE is missing"))?;
    match class {
        CKO_SECRET_KEY => {
            let mut value = plain;
            if let Some(len) = template.get_ulong(CKA_VALUE_LEN) {
                let len = usize::try_from(len)
                    .ok()
                    .filter(|l| *l > 0 && *l <= value.len())
                    .ok_or_else(|| {
                        Code::TemplateInconsistent
                            .err("CKA_VALUE_LEN does not fit the unwrapped key")
                    })?;
                value.truncate(len);
            }
            if value.is_empty() {
                return Err(Code::WrappedKeyInvalid.err("the wrapped key is empty"));
            }
            if key_type == CKK_AES && ![16, 24, 32].contains(&value.len()) {
                return Err(Code::WrappedKeyInvalid.err(format!(
                    "an AES key is 16, 24 or 32 bytes, not {}",
                    value.len()
                )));
            }
            if key_type == CKK_CHACHA20 && value.len() != 32 {
                return Err(Code::WrappedKeyInvalid
                    .err(format!("a ChaCha20 key is 32 bytes, not {}", value.len())));
            }
            let mut out = Attrs::new();
            out.set(CKA_VALUE, AttrValue::Bytes(value));
            Ok(out)
        }
        CKO_PRIVATE_KEY => crate::mechanism::pkcs8::decode(key_type, &plain),
        _ => Err(Code::TemplateInconsistent.err("only secret and private keys can be unwrapped")),
    }
}
