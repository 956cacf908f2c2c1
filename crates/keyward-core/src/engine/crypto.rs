//! Cryptographic operations (PKCS#11 3.0 §5.8–5.12): the generic checks made once before a
//! mechanism family runs, and the operation life cycle (an operation ends on error or when it
//! produced its final output, not on a length query or a too-small buffer).

use std::sync::Arc;

use cryptoki_sys::*;

use crate::api::{ObjectHandle, SessionHandle};
use crate::engine::app::{Application, poisoned};
use crate::engine::session::{Active, ContextAuth, bounded, exact};
use crate::error::{Code, Result};
use crate::mechanism::{Mech, registry};
use crate::object::Object;
use crate::types::{AttrValue, Mechanism, OutCap, Output};

/// One step of a multi-part or single-part cipher operation.
pub(crate) enum Step<'a> {
    OneShot(&'a [u8]),
    Update(&'a [u8]),
    Final,
}

/// The codes for faults of a key in one role: the key of an operation or derivation, the
/// wrapping key of C_WrapKey, the unwrapping key of C_UnwrapKey.
#[derive(Clone, Copy)]
pub(crate) struct KeyRole {
    handle_invalid: Code,
    type_inconsistent: Code,
}

impl KeyRole {
    pub(crate) const OPERATION: KeyRole = KeyRole {
        handle_invalid: Code::KeyHandleInvalid,
        type_inconsistent: Code::KeyTypeInconsistent,
    };
    pub(crate) const WRAPPING: KeyRole = KeyRole {
        handle_invalid: Code::WrappingKeyHandleInvalid,
        type_inconsistent: Code::WrappingKeyTypeInconsistent,
    };
    pub(crate) const UNWRAPPING: KeyRole = KeyRole {
        handle_invalid: Code::UnwrappingKeyHandleInvalid,
        type_inconsistent: Code::UnwrappingKeyTypeInconsistent,
    };
}

fn not_initialized(what: &str) -> crate::Error {
    Code::OperationNotInitialized.err(format!("no active {what} operation"))
}

impl Application {
    /// Resolve a key handle for use in an operation (`missing` names the handle's role).
    pub(crate) fn resolve_key(
        &self,
        session: SessionHandle,
        key: ObjectHandle,
        missing: Code,
    ) -> Result<Arc<Object>> {
        Ok(self.resolve(session, key, missing)?.0.object)
    }

    /// The checks every key-using *Init makes, in the spec's priority order: mechanism known,
    /// key handle, key type (CKR_KEY_TYPE_INCONSISTENT before CKR_KEY_FUNCTION_NOT_PERMITTED),
    /// usage attribute, CKA_ALLOWED_MECHANISMS.
    fn prepare(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        key: ObjectHandle,
        usage: CK_ATTRIBUTE_TYPE,
    ) -> Result<(&'static dyn Mech, Arc<Object>, ContextAuth)> {
        self.prepare_as(session, mech, key, usage, KeyRole::OPERATION)
    }

    /// `prepare` for a key in `role`, whose faults have their own codes.
    pub(crate) fn prepare_as(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        key: ObjectHandle,
        usage: CK_ATTRIBUTE_TYPE,
        role: KeyRole,
    ) -> Result<(&'static dyn Mech, Arc<Object>, ContextAuth)> {
        let m = registry().get(mech.mech)?;
        let object = self.resolve_key(session, key, role.handle_invalid)?;
        let class = object.class();
        let is_key = matches!(class, CKO_SECRET_KEY | CKO_PUBLIC_KEY | CKO_PRIVATE_KEY);
        let key_type = object.key_type();
        let class_ok = m.key_classes().is_none_or(|c| c.contains(&class));
        if !is_key || !class_ok || !key_type.is_some_and(|t| m.key_types().contains(&t)) {
            return Err(role
                .type_inconsistent
                .err(format!("mechanism {:#x} cannot use this key", mech.mech)));
        }
        if !object.flag(usage, false) {
            return Err(Code::KeyFunctionNotPermitted.err(format!(
                "the key does not permit this use (attribute {usage:#x})"
            )));
        }
        if let Some(AttrValue::Mechanisms(allowed)) = object.attrs().get(CKA_ALLOWED_MECHANISMS)
            && !allowed.contains(&mech.mech)
        {
            return Err(Code::MechanismInvalid.err(format!(
                "mechanism {:#x} is not in the key's CKA_ALLOWED_MECHANISMS",
                mech.mech
            )));
        }
        let auth = if class == CKO_PRIVATE_KEY && object.flag(CKA_ALWAYS_AUTHENTICATE, false) {
            ContextAuth::Needed
        } else {
            ContextAuth::NotNeeded
        };
        Ok((m, object, auth))
    }

    pub(crate) fn cipher_init(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        key: ObjectHandle,
        encrypt: bool,
    ) -> Result<()> {
        let s = self.session(session)?;
        {
            let g = s.lock().map_err(|_| poisoned())?;
            let active = if encrypt {
                g.encrypt.is_some()
            } else {
                g.decrypt.is_some()
            };
            if active {
                return Err(
                    Code::OperationActive.err("an operation of this kind is already active")
                );
            }
        }
        let usage = if encrypt { CKA_ENCRYPT } else { CKA_DECRYPT };
        let (m, object, auth) = self.prepare(session, mech, key, usage)?;
        let op = if encrypt {
            m.encrypt_init(mech, &object)?
        } else {
            m.decrypt_init(mech, &object)?
        };
        let mut g = s.lock().map_err(|_| poisoned())?;
        let slot = if encrypt {
            &mut g.encrypt
        } else {
            &mut g.decrypt
        };
        if slot.is_some() {
            return Err(Code::OperationActive.err("an operation of this kind is already active"));
        }
        *slot = Some(Active::new(op, auth));
        Ok(())
    }

    pub(crate) fn cipher_step(
        &self,
        session: SessionHandle,
        encrypt: bool,
        step: Step<'_>,
        cap: OutCap,
    ) -> Result<Output> {
        let s = self.session(session)?;
        let mut g = s.lock().map_err(|_| poisoned())?;
        let slot = if encrypt {
            &mut g.encrypt
        } else {
            &mut g.decrypt
        };
        let active = slot
            .as_mut()
            .ok_or_else(|| not_initialized(if encrypt { "encryption" } else { "decryption" }))?;
        active.auth.check()?;
        let op = &mut active.op;
        let (r, last) = match step {
            Step::OneShot(data) => (
                bounded(
                    op.output_len(data.len(), true),
                    cap,
                    &mut active.pending,
                    || op.one_shot(data),
                ),
                true,
            ),
            Step::Update(data) => (
                bounded(
                    op.output_len(data.len(), false),
                    cap,
                    &mut active.pending,
                    || op.update(data),
                ),
                false,
            ),
            Step::Final => (
                bounded(op.output_len(0, true), cap, &mut active.pending, || {
                    op.finish()
                }),
                true,
            ),
        };
        match &r {
            Err(_) => *slot = None,
            Ok(Output::Data(_)) if last => *slot = None,
            Ok(_) => {}
        }
        r
    }

    pub(crate) fn digest_init_impl(&self, session: SessionHandle, mech: &Mechanism) -> Result<()> {
        let s = self.session(session)?;
        let m = registry().get(mech.mech)?;
        let mut g = s.lock().map_err(|_| poisoned())?;
        if g.digest.is_some() {
            return Err(Code::OperationActive.err("a digest is already active"));
        }
        g.digest = Some(Active::new(m.digest_init(mech)?, ContextAuth::NotNeeded));
        Ok(())
    }

    pub(crate) fn digest_impl(
        &self,
        session: SessionHandle,
        data: Option<&[u8]>,
        cap: OutCap,
    ) -> Result<Output> {
        let s = self.session(session)?;
        let mut g = s.lock().map_err(|_| poisoned())?;
        let active = g.digest.as_mut().ok_or_else(|| not_initialized("digest"))?;
        let op = &mut active.op;
        let r = exact(op.len(), cap, || {
            if let Some(d) = data {
                op.update(d)?;
            }
            op.finish()
        });
        if matches!(r, Err(_) | Ok(Output::Data(_))) {
            g.digest = None;
        }
        r
    }

    pub(crate) fn digest_update_impl(&self, session: SessionHandle, data: &[u8]) -> Result<()> {
        let s = self.session(session)?;
        let mut g = s.lock().map_err(|_| poisoned())?;
        let active = g.digest.as_mut().ok_or_else(|| not_initialized("digest"))?;
        let r = active.op.update(data);
        if r.is_err() {
            g.digest = None;
        }
        r
    }

    pub(crate) fn digest_key_impl(&self, session: SessionHandle, key: ObjectHandle) -> Result<()> {
        let s = self.session(session)?;
        if s.lock().map_err(|_| poisoned())?.digest.is_none() {
            return Err(not_initialized("digest"));
        }
        let object = self.resolve_key(session, key, Code::KeyHandleInvalid)?;
        let value = match (object.class(), object.attrs().get_bytes(CKA_VALUE)) {
            (CKO_SECRET_KEY, Some(v)) => zeroize::Zeroizing::new(v.to_vec()),
            _ => {
                return Err(
                    Code::KeyIndigestible.err("only secret keys with a value can be digested")
                );
            }
        };
        self.digest_update_impl(session, &value)
    }

    pub(crate) fn sign_init_impl(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        key: ObjectHandle,
    ) -> Result<()> {
        let s = self.session(session)?;
        if s.lock().map_err(|_| poisoned())?.sign.is_some() {
            return Err(Code::OperationActive.err("a signature is already active"));
        }
        let (m, object, auth) = self.prepare(session, mech, key, CKA_SIGN)?;
        let op = m.sign_init(mech, &object)?;
        let mut g = s.lock().map_err(|_| poisoned())?;
        if g.sign.is_some() {
            return Err(Code::OperationActive.err("a signature is already active"));
        }
        g.sign = Some(Active::new(op, auth));
        Ok(())
    }

    pub(crate) fn sign_impl(
        &self,
        session: SessionHandle,
        data: Option<&[u8]>,
        cap: OutCap,
    ) -> Result<Output> {
        let s = self.session(session)?;
        let mut g = s.lock().map_err(|_| poisoned())?;
        let active = g
            .sign
            .as_mut()
            .ok_or_else(|| not_initialized("signature"))?;
        active.auth.check()?;
        let op = &mut active.op;
        let r = exact(op.sig_len(), cap, || match data {
            Some(d) => op.one_shot(d),
            None => op.finish(),
        });
        if matches!(r, Err(_) | Ok(Output::Data(_))) {
            g.sign = None;
        }
        r
    }

    pub(crate) fn sign_update_impl(&self, session: SessionHandle, data: &[u8]) -> Result<()> {
        let s = self.session(session)?;
        let mut g = s.lock().map_err(|_| poisoned())?;
        let active = g
            .sign
            .as_mut()
            .ok_or_else(|| not_initialized("signature"))?;
        let r = active.auth.check().and_then(|()| active.op.update(data));
        if r.is_err() {
            g.sign = None;
        }
        r
    }

    pub(crate) fn verify_init_impl(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        key: ObjectHandle,
    ) -> Result<()> {
        let s = self.session(session)?;
        if s.lock().map_err(|_| poisoned())?.verify.is_some() {
            return Err(Code::OperationActive.err("a verification is already active"));
        }
        let (m, object, _) = self.prepare(session, mech, key, CKA_VERIFY)?;
        let op = m.verify_init(mech, &object)?;
        let mut g = s.lock().map_err(|_| poisoned())?;
        if g.verify.is_some() {
            return Err(Code::OperationActive.err("a verification is already active"));
        }
        g.verify = Some(Active::new(op, ContextAuth::NotNeeded));
        Ok(())
    }

    pub(crate) fn verify_impl(
        &self,
        session: SessionHandle,
        data: Option<&[u8]>,
        signature: &[u8],
    ) -> Result<()> {
        let s = self.session(session)?;
        let mut g = s.lock().map_err(|_| poisoned())?;
        let mut active = g
            .verify
            .take()
            .ok_or_else(|| not_initialized("verification"))?;
        match data {
            Some(d) => active.op.one_shot(d, signature),
            None => active.op.finish(signature),
        }
    }

    pub(crate) fn verify_update_impl(&self, session: SessionHandle, data: &[u8]) -> Result<()> {
        let s = self.session(session)?;
        let mut g = s.lock().map_err(|_| poisoned())?;
        let active = g
            .verify
            .as_mut()
            .ok_or_else(|| not_initialized("verification"))?;
        let r = active.op.update(data);
        if r.is_err() {
            g.verify = None;
        }
        r
    }

    /// For operations no mechanism of the token offers yet: validate the session and the key
    /// handle as the spec orders, then refuse the mechanism.
    pub(crate) fn no_mechanism_for(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        key: Option<ObjectHandle>,
        what: &str,
    ) -> Result<()> {
        self.session(session)?;
        if let Some(k) = key {
            self.resolve_key(session, k, Code::KeyHandleInvalid)?;
        }
        Err(Code::MechanismInvalid.err(format!(
            "mechanism {:#x} does not support {what}",
            mech.mech
        )))
    }

    /// Message-based calls without a message-based operation.
    pub(crate) fn no_message_op<T>(&self, session: SessionHandle) -> Result<T> {
        self.session(session)?;
        Err(not_initialized("message-based"))
    }
}
