//! Objects: their attribute sets, the attribute rules of PKCS#11 3.0 §4, and the
//! per-object cache of parsed key material.

use std::any::Any;
use std::fmt;
use std::sync::{Arc, OnceLock};

use cryptoki_sys::*;

use crate::error::{Code, Result};
use crate::types::Attrs;

mod cert;
pub mod rules;

/// One object's attributes plus a lazily built, type-erased cache of its parsed key material
/// (an OpenSSL key, a cipher context pool). An object is immutable once shared: changing an
/// attribute makes a new `Object`, so the cache can never describe stale attributes.
pub struct Object {
    attrs: Attrs,
    cache: OnceLock<Arc<dyn Any + Send + Sync>>,
}

impl Object {
    /// An object with these attributes.
    pub fn new(attrs: Attrs) -> Object {
        Object {
            attrs,
            cache: OnceLock::new(),
        }
    }

    /// The attributes.
    pub fn attrs(&self) -> &Attrs {
        &self.attrs
    }

    /// CKA_CLASS (every valid object has one).
    pub fn class(&self) -> CK_OBJECT_CLASS {
        self.attrs
            .get_ulong(CKA_CLASS)
            .unwrap_or(CK_UNAVAILABLE_INFORMATION)
    }

    /// CKA_KEY_TYPE, for keys.
    pub fn key_type(&self) -> Option<CK_KEY_TYPE> {
        self.attrs.get_ulong(CKA_KEY_TYPE)
    }

    /// A boolean attribute, with the given default when absent.
    pub fn flag(&self, ty: CK_ATTRIBUTE_TYPE, default: bool) -> bool {
        self.attrs.get_bool(ty).unwrap_or(default)
    }

    /// The parsed form of this object's key material, built once by `build` and shared by
    /// every operation that uses the key afterwards (parsing DER per operation costs ~20x).
    pub fn cached<T, F>(&self, build: F) -> Result<Arc<T>>
    where
        T: Any + Send + Sync,
        F: FnOnce(&Attrs) -> Result<T>,
    {
        let any = match self.cache.get() {
            Some(a) => a.clone(),
            None => {
                let built: Arc<dyn Any + Send + Sync> = Arc::new(build(&self.attrs)?);
                // Another thread may have won the race; either value is equivalent.
                self.cache.get_or_init(|| built).clone()
            }
        };
        any.downcast::<T>()
            .map_err(|_| Code::GeneralError.err("key cache holds another type"))
    }
}

impl fmt::Debug for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Object")
            .field("attrs", &self.attrs)
            .finish_non_exhaustive()
    }
}
