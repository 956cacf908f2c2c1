//! Key management (PKCS#11 3.0 §5.18.6–8): C_WrapKey, C_UnwrapKey and C_DeriveKey, with the
//! rules that keep keys from leaving the token in ways their attributes forbid.
//!
//! Decisions the spec leaves open:
//! - A mechanism wraps and unwraps when its CK_MECHANISM_INFO says CKF_WRAP / CKF_UNWRAP; it
//!   does so with its encryption and decryption, so the two can never disagree.
//! - CKA_ALWAYS_AUTHENTICATE is not asked for by C_UnwrapKey or C_DeriveKey: there is no
//!   operation to log in to between the calls, and SoftHSMv2 and Kryoptic behave the same.
//! - CKM_RSA_PKCS unwraps only secret keys whose length the template fixes, and a decrypted
//!   value of another length becomes a random key: no error tells a bad padding apart.
//! - C_DeriveKey without CKA_CLASS makes a secret key (a data object for CKM_HKDF_DATA), and
//!   without CKA_KEY_TYPE a generic secret.

use std::cell::RefCell;
use std::sync::Arc;

use cryptoki_sys::*;
use zeroize::Zeroizing;

use crate::api::{ObjectHandle, SessionHandle};
use crate::engine::app::{Application, poisoned};
use crate::engine::crypto::KeyRole;
use crate::error::{Code, Error, Result};
use crate::mechanism::{KeyLookup, derived_key_len, keyblob};
use crate::object::Object;
use crate::object::rules::{self, Origin};
use crate::types::{AttrValue, Attribute, Attrs, Mechanism, OutCap, Output};

/// Replace an error's code by the one the calling function's spec names for it.
fn recode(e: Error, map: &[(Code, Code)]) -> Error {
    match map.iter().find(|(from, _)| *from == e.code()) {
        Some((_, to)) => to.err(e.detail().to_owned()),
        None => e,
    }
}

/// The nested template attribute `ty` of `key`, if it has one.
fn template_of(key: &Object, ty: CK_ATTRIBUTE_TYPE) -> Option<&[Attribute]> {
    match key.attrs().get(ty) {
        Some(AttrValue::Template(t)) => Some(t),
        _ => None,
    }
}

/// Resolves the extra keys a derivation names, remembering them for provenance.
struct Lookup<'a> {
    app: &'a Application,
    session: SessionHandle,
    seen: RefCell<Vec<Arc<Object>>>,
}

impl KeyLookup for Lookup<'_> {
    fn key(&self, handle: CK_OBJECT_HANDLE) -> Result<Arc<Object>> {
        let object = self
            .app
            .resolve_key(self.session, handle, Code::KeyHandleInvalid)?;
        self.seen.borrow_mut().push(object.clone());
        Ok(object)
    }
}

/// The key length CKM_RSA_PKCS unwraps to, fixed by the template before anything is
/// decrypted: PKCS#1 v1.5 has no integrity, so only secret keys of a known length unwrap.
fn pkcs1_unwrap_len(template: &Attrs) -> Result<usize> {
    if template.get_ulong(CKA_CLASS) != Some(CKO_SECRET_KEY) {
        return Err(Code::TemplateInconsistent
            .err("CKM_RSA_PKCS unwraps secret keys only: it has no integrity check"));
    }
    derived_key_len(template, None)
}

impl Application {
    pub(crate) fn wrap_key_impl(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        wrapping_key: ObjectHandle,
        key: ObjectHandle,
        cap: OutCap,
    ) -> Result<Output> {
        self.session(session)?;
        let target = self.resolve_key(session, key, Code::KeyHandleInvalid)?;
        let (m, wrapping, _) =
            self.prepare_as(session, mech, wrapping_key, CKA_WRAP, KeyRole::WRAPPING)?;
        if m.info().flags & CKF_WRAP == 0 {
            return Err(Code::MechanismInvalid
                .err(format!("mechanism {:#x} does not wrap keys", mech.mech)));
        }
        if !matches!(target.class(), CKO_SECRET_KEY | CKO_PRIVATE_KEY) {
            return Err(Code::KeyNotWrappable.err("only secret and private keys can be wrapped"));
        }
        if !target.flag(CKA_EXTRACTABLE, false) {
            return Err(Code::KeyUnextractable.err("the key has CKA_EXTRACTABLE=FALSE"));
        }
        if target.flag(CKA_WRAP_WITH_TRUSTED, false) && !wrapping.flag(CKA_TRUSTED, false) {
            return Err(Code::KeyNotWrappable
                .err("the key has CKA_WRAP_WITH_TRUSTED and the wrapping key is not trusted"));
        }
        if let Some(t) = template_of(&wrapping, CKA_WRAP_TEMPLATE)
            && !rules::matches_template(target.attrs(), t)
        {
            // The spec's "shall" for a key outside the wrapping template.
            return Err(Code::KeyHandleInvalid
                .err("the key does not match the wrapping key's CKA_WRAP_TEMPLATE"));
        }
        let plain = keyblob::encode(&target)?;
        // Wrapping is cheap next to a round trip, and the length of an OAEP or GCM result
        // is only certain once made: compute it, then apply the buffer rules.
        let wrapped = m
            .encrypt_init(mech, &wrapping)?
            .one_shot(&plain)
            .map_err(|e| recode(e, &[(Code::DataLenRange, Code::KeySizeRange)]))?;
        Ok(match cap {
            None => Output::Len(wrapped.len()),
            Some(c) if c < wrapped.len() => Output::TooSmall(wrapped.len()),
            Some(_) => Output::Data(wrapped),
        })
    }

    pub(crate) fn unwrap_key_impl(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        unwrapping_key: ObjectHandle,
        wrapped: &[u8],
        template: Vec<Attribute>,
    ) -> Result<ObjectHandle> {
        let (s, token, slot) = self.token_of(session)?;
        let rw = s.lock().map_err(|_| poisoned())?.rw;
        let actor = self.actor(slot)?;
        let (m, unwrapping, _) = self.prepare_as(
            session,
            mech,
            unwrapping_key,
            CKA_UNWRAP,
            KeyRole::UNWRAPPING,
        )?;
        if m.info().flags & CKF_UNWRAP == 0 {
            return Err(Code::MechanismInvalid
                .err(format!("mechanism {:#x} does not unwrap keys", mech.mech)));
        }
        let mut template = Attrs::from_template(template)?;
        if let Some(t) = template_of(&unwrapping, CKA_UNWRAP_TEMPLATE) {
            template = rules::merge_templates(t, &template)?;
        }
        if !template.has(CKA_CLASS) {
            return Err(Code::TemplateIncomplete.err("CKA_CLASS is missing"));
        }
        if !template.has(CKA_KEY_TYPE) {
            return Err(Code::TemplateIncomplete.err("CKA_KEY_TYPE is missing"));
        }
        self.precheck(rw, actor, &template, true)?;
        if wrapped.is_empty() {
            return Err(Code::WrappedKeyLenRange.err("the wrapped key is empty"));
        }
        let no_oracle_len = if mech.mech == CKM_RSA_PKCS {
            Some(pkcs1_unwrap_len(&template)?)
        } else {
            None
        };
        let mut plain = m
            .decrypt_init(mech, &unwrapping)?
            .one_shot(wrapped)
            .map_err(|e| {
                recode(
                    e,
                    &[
                        (Code::EncryptedDataInvalid, Code::WrappedKeyInvalid),
                        (Code::EncryptedDataLenRange, Code::WrappedKeyLenRange),
                    ],
                )
            })?;
        if let Some(n) = no_oracle_len
            && plain.len() != n
        {
            // A wrong length is what a bad padding looks like after implicit rejection; a
            // random key instead of an error keeps the two cases alike (the TLS 1.2 answer to
            // Bleichenbacher, RFC 5246 §7.4.7.1). The work done is the same either way.
            let mut random = Zeroizing::new(vec![0u8; n]);
            keyward_ossl::rand::fill_private(&mut random)?;
            plain = random;
        }
        let generated = keyblob::decode(&template, plain)?;
        let attrs = rules::new_object(&template, &generated, Origin::Unwrap, actor)?;
        self.store_new(session, &token, slot, rw, actor, attrs)
    }

    pub(crate) fn derive_key_impl(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        base_key: ObjectHandle,
        template: Vec<Attribute>,
    ) -> Result<ObjectHandle> {
        let (s, token, slot) = self.token_of(session)?;
        let rw = s.lock().map_err(|_| poisoned())?.rw;
        let actor = self.actor(slot)?;
        let (m, base, _) =
            self.prepare_as(session, mech, base_key, CKA_DERIVE, KeyRole::OPERATION)?;
        let mut template = Attrs::from_template(template)?;
        if let Some(t) = template_of(&base, CKA_DERIVE_TEMPLATE) {
            template = rules::merge_templates(t, &template)?;
        }
        if !template.has(CKA_CLASS) {
            let class = if mech.mech == CKM_HKDF_DATA {
                CKO_DATA
            } else {
                CKO_SECRET_KEY
            };
            template.set(CKA_CLASS, AttrValue::Ulong(class));
        }
        let class = template.get_ulong(CKA_CLASS);
        // Only CKM_HKDF_DATA makes data objects: any other derivation into a readable data
        // object would hand out a secret.
        if (class == Some(CKO_DATA)) != (mech.mech == CKM_HKDF_DATA) {
            return Err(Code::TemplateInconsistent.err(format!(
                "mechanism {:#x} cannot derive an object of class {:#x}",
                mech.mech,
                class.unwrap_or(CK_UNAVAILABLE_INFORMATION)
            )));
        }
        if class == Some(CKO_SECRET_KEY) && !template.has(CKA_KEY_TYPE) {
            template.set(CKA_KEY_TYPE, AttrValue::Ulong(CKK_GENERIC_SECRET));
        }
        self.precheck(rw, actor, &template, class != Some(CKO_DATA))?;
        let lookup = Lookup {
            app: self,
            session,
            seen: RefCell::new(Vec::new()),
        };
        let generated = m.derive_key(mech, &base, &template, &lookup)?;
        if class == Some(CKO_DATA) {
            // CKM_HKDF_DATA takes its output length from CKA_VALUE_LEN, which a data object
            // does not have.
            template.0.remove(&CKA_VALUE_LEN);
        }
        let bases = lookup.seen.into_inner();
        let all = |ty| {
            std::iter::once(&base)
                .chain(bases.iter())
                .all(|k| k.flag(ty, false))
        };
        let origin = Origin::Derive {
            base_always_sensitive: all(CKA_ALWAYS_SENSITIVE),
            base_never_extractable: all(CKA_NEVER_EXTRACTABLE),
        };
        let attrs = rules::new_object(&template, &generated, origin, actor)?;
        self.store_new(session, &token, slot, rw, actor, attrs)
    }
}
