//! Mechanisms: the trait each family implements, the operation traits, and the registry.
//!
//! The engine makes the generic checks once before a family runs (mechanism known, key type,
//! usage attribute, CKA_ALLOWED_MECHANISMS, login); a family checks its parameters and key
//! sizes and does the crypto through `keyward_ossl`.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use cryptoki_sys::*;
use zeroize::Zeroizing;

use crate::error::{Code, Error, Result};
use crate::object::Object;
use crate::types::{Attrs, Mechanism, MechanismInfo};

pub mod aes;
pub mod chacha;
pub mod digest;
pub mod ec;
pub mod ecdh;
pub mod eddsa;
pub mod hmac;
pub mod import;
pub mod kdf;
pub mod keyblob;
pub mod pkcs8;
pub mod random;
pub mod rsa;

/// Secret bytes produced by an operation.
pub type Bytes = Zeroizing<Vec<u8>>;

fn invalid() -> Error {
    Code::MechanismInvalid.err("mechanism does not support this operation")
}

/// Other objects a derivation's parameters name (the second key of
/// CKM_CONCATENATE_BASE_AND_KEY, HKDF's salt key). The engine resolves the handle in the
/// caller's session and counts the object's provenance into the derived key's.
pub trait KeyLookup {
    /// The object behind `handle`, or CKR_KEY_HANDLE_INVALID.
    fn key(&self, handle: CK_OBJECT_HANDLE) -> Result<Arc<Object>>;
}

/// One mechanism type. Every method defaults to CKR_MECHANISM_INVALID.
///
/// C_WrapKey and C_UnwrapKey need no methods of their own: a mechanism whose info has
/// CKF_WRAP / CKF_UNWRAP wraps by encrypting the key's bytes (see [`keyblob`]) with
/// `encrypt_init` and unwraps with `decrypt_init`; the engine applies CKA_WRAP / CKA_UNWRAP
/// instead of CKA_ENCRYPT / CKA_DECRYPT.
pub trait Mech: Send + Sync {
    /// CK_MECHANISM_INFO: true key-size range and flags.
    fn info(&self) -> MechanismInfo;

    /// The key types this mechanism works with; checked by the engine before the usage
    /// attribute (CKR_KEY_TYPE_INCONSISTENT has priority over CKR_KEY_FUNCTION_NOT_PERMITTED).
    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        &[]
    }

    /// The object classes the mechanism's key may have, when it takes only some (a key
    /// agreement takes private keys only); checked with the key type, before the usage
    /// attribute.
    fn key_classes(&self) -> Option<&'static [CK_OBJECT_CLASS]> {
        None
    }

    /// Start an encryption with `key`.
    fn encrypt_init(&self, _mech: &Mechanism, _key: &Object) -> Result<Box<dyn CipherOp>> {
        Err(invalid())
    }
    /// Start a decryption with `key`.
    fn decrypt_init(&self, _mech: &Mechanism, _key: &Object) -> Result<Box<dyn CipherOp>> {
        Err(invalid())
    }
    /// Start a signature or MAC with `key`.
    fn sign_init(&self, _mech: &Mechanism, _key: &Object) -> Result<Box<dyn SignOp>> {
        Err(invalid())
    }
    /// Start a verification with `key`.
    fn verify_init(&self, _mech: &Mechanism, _key: &Object) -> Result<Box<dyn VerifyOp>> {
        Err(invalid())
    }
    /// Start a digest.
    fn digest_init(&self, _mech: &Mechanism) -> Result<Box<dyn DigestOp>> {
        Err(invalid())
    }
    /// Generate a secret key. `template` is the caller's template; the result holds the
    /// attributes the mechanism determines (CKA_KEY_TYPE, CKA_VALUE, CKA_VALUE_LEN).
    fn generate_key(&self, _mech: &Mechanism, _template: &Attrs) -> Result<Attrs> {
        Err(invalid())
    }
    /// Generate a key pair from the caller's templates; the result holds, for the public and
    /// the private key, the attributes the mechanism determines (key type, domain parameters,
    /// public and private values).
    fn generate_key_pair(
        &self,
        _mech: &Mechanism,
        _public: &Attrs,
        _private: &Attrs,
    ) -> Result<(Attrs, Attrs)> {
        Err(invalid())
    }
    /// Derive a key (C_DeriveKey) from `base`. `template` is the caller's template merged
    /// with the base key's CKA_DERIVE_TEMPLATE; the result holds the attributes the
    /// mechanism determines (CKA_VALUE, and CKA_KEY_TYPE/CKA_CLASS when it sets them).
    fn derive_key(
        &self,
        _mech: &Mechanism,
        _base: &Object,
        _template: &Attrs,
        _keys: &dyn KeyLookup,
    ) -> Result<Attrs> {
        Err(invalid())
    }
}

/// The length in bytes of a secret key a derivation makes: CKA_VALUE_LEN from the template,
/// else the fixed length of its key type, else `default` (the mechanism's natural output
/// length; `None` when the mechanism has none and the template must say).
pub fn derived_key_len(template: &Attrs, default: Option<usize>) -> Result<usize> {
    let key_type = template.get_ulong(CKA_KEY_TYPE);
    let len = match (template.get_ulong(CKA_VALUE_LEN), key_type) {
        (Some(l), _) => usize::try_from(l)
            .map_err(|_| Code::AttributeValueInvalid.err("CKA_VALUE_LEN too large"))?,
        (None, Some(CKK_CHACHA20)) => 32,
        // An AES key takes the natural length only when that is an AES key length.
        (None, Some(CKK_AES)) => default
            .filter(|d| [16, 24, 32].contains(d))
            .ok_or_else(|| {
                Code::TemplateIncomplete.err("CKA_VALUE_LEN is needed for this AES key")
            })?,
        (None, _) => default
            .ok_or_else(|| Code::TemplateIncomplete.err("CKA_VALUE_LEN is needed for this key"))?,
    };
    if len == 0 {
        return Err(Code::AttributeValueInvalid.err("CKA_VALUE_LEN is zero"));
    }
    if key_type == Some(CKK_AES) && ![16, 24, 32].contains(&len) {
        return Err(
            Code::TemplateInconsistent.err(format!("an AES key is 16, 24 or 32 bytes, not {len}"))
        );
    }
    if key_type == Some(CKK_CHACHA20) && len != 32 {
        return Err(Code::TemplateInconsistent.err("a ChaCha20 key is 32 bytes"));
    }
    Ok(len)
}

/// An encryption or decryption in progress.
pub trait CipherOp: Send {
    /// An upper bound of the output of `update(input_len)` (`last` false) or of
    /// `one_shot(input_len)` / `finish` after the data so far (`last` true).
    fn output_len(&self, input_len: usize, last: bool) -> usize;
    /// Process a part; returns what can be output so far.
    fn update(&mut self, input: &[u8]) -> Result<Bytes>;
    /// Finish; returns the remaining output.
    fn finish(&mut self) -> Result<Bytes>;
    /// Single-part operation.
    fn one_shot(&mut self, input: &[u8]) -> Result<Bytes> {
        let mut out = self.update(input)?;
        out.extend_from_slice(&self.finish()?);
        Ok(out)
    }
}

/// A signature or MAC in progress.
pub trait SignOp: Send {
    /// The exact signature length.
    fn sig_len(&self) -> usize;
    /// Add data (multi-part). Mechanisms over raw input (CKM_ECDSA, CKM_RSA_PKCS) buffer it
    /// and return CKR_DATA_LEN_RANGE past their input limit.
    fn update(&mut self, data: &[u8]) -> Result<()>;
    /// Produce the signature over everything given to `update`.
    fn finish(&mut self) -> Result<Bytes>;
    /// Single-part signature.
    fn one_shot(&mut self, data: &[u8]) -> Result<Bytes> {
        self.update(data)?;
        self.finish()
    }
}

/// A verification in progress.
pub trait VerifyOp: Send {
    /// The signature length the key produces (for CKR_SIGNATURE_LEN_RANGE checks).
    fn sig_len(&self) -> usize;
    /// Add data.
    fn update(&mut self, data: &[u8]) -> Result<()>;
    /// Check `signature` over everything given to `update`: CKR_SIGNATURE_LEN_RANGE for a
    /// wrong length, CKR_SIGNATURE_INVALID for a wrong signature.
    fn finish(&mut self, signature: &[u8]) -> Result<()>;
    /// Single-part verification.
    fn one_shot(&mut self, data: &[u8], signature: &[u8]) -> Result<()> {
        self.update(data)?;
        self.finish(signature)
    }
}

/// A digest in progress.
#[allow(clippy::len_without_is_empty)] // a digest's length is never zero
pub trait DigestOp: Send {
    /// The digest length.
    fn len(&self) -> usize;
    /// Add data.
    fn update(&mut self, data: &[u8]) -> Result<()>;
    /// The digest of everything added.
    fn finish(&mut self) -> Result<Bytes>;
}

/// The mechanisms the token implements, keyed by CKM_ type.
pub struct Registry {
    map: BTreeMap<CK_MECHANISM_TYPE, Box<dyn Mech>>,
}

impl Registry {
    /// Add a mechanism (a family's `register` calls this).
    pub fn add(&mut self, ty: CK_MECHANISM_TYPE, mech: Box<dyn Mech>) {
        self.map.insert(ty, mech);
    }

    /// The mechanism for `ty`, or CKR_MECHANISM_INVALID.
    pub fn get(&self, ty: CK_MECHANISM_TYPE) -> Result<&dyn Mech> {
        self.map.get(&ty).map(|m| m.as_ref()).ok_or_else(|| {
            Code::MechanismInvalid.err(format!("mechanism {ty:#x} is not supported"))
        })
    }

    /// Every mechanism type, in ascending order.
    pub fn types(&self) -> Vec<CK_MECHANISM_TYPE> {
        self.map.keys().copied().collect()
    }
}

/// The registry of every family (the one place that lists them).
pub fn registry() -> &'static Registry {
    static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
        let mut reg = Registry {
            map: BTreeMap::new(),
        };
        // Families register here, e.g. `digest::register(&mut reg);`
        digest::register(&mut reg);
        ec::register(&mut reg);
        ecdh::register(&mut reg);
        eddsa::register(&mut reg);
        rsa::register(&mut reg);
        aes::register(&mut reg);
        hmac::register(&mut reg);
        kdf::register(&mut reg);
        chacha::register(&mut reg);
        reg
    });
    &REGISTRY
}
