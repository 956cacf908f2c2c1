//! Object management (PKCS#11 3.0 §5.7) and key generation: access rules of the session
//! states, token versus session objects, and the handle table. Attribute semantics live in
//! `object::rules`; this file decides who may do what, where.

use std::sync::Arc;

use cryptoki_sys::*;

use crate::api::{ObjectHandle, SessionHandle};
use crate::engine::app::{Application, ObjRef, poisoned};
use crate::engine::session::Find;
use crate::engine::token::Token;
use crate::error::{Code, Result};
use crate::mechanism::registry;
use crate::object::Object;
use crate::object::rules::{self, Actor, Origin};
use crate::store::Who;
use crate::types::{AttrResult, Attribute, Attrs, Mechanism};

/// A resolved handle: what it is and its current contents.
pub(crate) struct Resolved {
    pub reference: ObjRef,
    pub object: Arc<Object>,
}

fn new_uid() -> Result<String> {
    let mut raw = [0u8; 16];
    keyward_ossl::rand::fill(&mut raw)?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

impl Application {
    /// Resolve `h` for a session on `slot`: unknown handles, objects of another token, and
    /// private objects without a user login are all CKR_OBJECT_HANDLE_INVALID (`missing`).
    pub(crate) fn resolve_in(
        &self,
        slot: CK_SLOT_ID,
        token: &Token,
        h: ObjectHandle,
        missing: Code,
    ) -> Result<Resolved> {
        let r = self
            .handles
            .read()
            .map_err(|_| poisoned())?
            .map
            .get(&h)
            .cloned()
            .ok_or_else(|| missing.err(format!("no object {h}")))?;
        let object = match &r {
            ObjRef::Token { slot: s, uid } if *s == slot => token
                .get(uid)
                .ok_or_else(|| missing.err(format!("object {h} was destroyed")))?
                .object
                .clone(),
            ObjRef::Session {
                slot: s, object, ..
            } if *s == slot => object.clone(),
            _ => return Err(missing.err(format!("object {h} belongs to another token"))),
        };
        if object.flag(CKA_PRIVATE, false) && self.who(slot)? != Some(Who::User) {
            return Err(missing.err(format!(
                "object {h} is private and the user is not logged in"
            )));
        }
        Ok(Resolved {
            reference: r,
            object,
        })
    }

    pub(crate) fn resolve(
        &self,
        session: SessionHandle,
        h: ObjectHandle,
        missing: Code,
    ) -> Result<(Resolved, bool, Arc<Token>, CK_SLOT_ID)> {
        let (s, token, slot) = self.token_of(session)?;
        let rw = s.lock().map_err(|_| poisoned())?.rw;
        Ok((self.resolve_in(slot, &token, h, missing)?, rw, token, slot))
    }

    /// Access rules for creating or changing an object (UG "permitted object accesses").
    fn check_write(&self, rw: bool, actor: Actor, is_token: bool, is_private: bool) -> Result<()> {
        if is_private && !actor.user {
            return Err(Code::UserNotLoggedIn.err("private objects need the user to be logged in"));
        }
        if is_token && !rw {
            return Err(Code::SessionReadOnly.err("token objects need a R/W session"));
        }
        Ok(())
    }

    /// The access rules for storing the finished object `attrs`.
    pub(crate) fn may_store(&self, rw: bool, actor: Actor, attrs: &Attrs) -> Result<()> {
        self.check_write(rw, actor, flag(attrs, CKA_TOKEN), flag(attrs, CKA_PRIVATE))
    }

    /// Check the access rules for a finished new object, then store it.
    pub(crate) fn store_new(
        &self,
        session: SessionHandle,
        token: &Token,
        slot: CK_SLOT_ID,
        rw: bool,
        actor: Actor,
        attrs: Attrs,
    ) -> Result<ObjectHandle> {
        self.may_store(rw, actor, &attrs)?;
        self.add_object(session, token, slot, attrs)
    }

    /// Store a new object (token or session) and return its handle.
    fn add_object(
        &self,
        session: SessionHandle,
        token: &Token,
        slot: CK_SLOT_ID,
        mut attrs: Attrs,
    ) -> Result<ObjectHandle> {
        let uid = new_uid()?;
        attrs.set(
            CKA_UNIQUE_ID,
            crate::types::AttrValue::bytes(uid.as_bytes().to_vec()),
        );
        if attrs.get_bool(CKA_TOKEN).unwrap_or(false) {
            let mk = self.mk(slot)?;
            let e = token.insert(mk.as_deref(), uid, attrs)?;
            Ok(self
                .handles
                .write()
                .map_err(|_| poisoned())?
                .of_token(slot, &e.uid))
        } else {
            let object = Arc::new(Object::new(attrs));
            Ok(self
                .handles
                .write()
                .map_err(|_| poisoned())?
                .alloc(ObjRef::Session {
                    slot,
                    owner: session,
                    object,
                }))
        }
    }

    pub(crate) fn create_object_impl(
        &self,
        session: SessionHandle,
        template: Vec<Attribute>,
    ) -> Result<ObjectHandle> {
        let (s, token, slot) = self.token_of(session)?;
        let rw = s.lock().map_err(|_| poisoned())?.rw;
        let actor = self.actor(slot)?;
        let template = Attrs::from_template(template)?;
        // The template's own checks come first; then the key material is checked and its
        // public half computed from the finished attributes, which a stated
        // CKA_PUBLIC_KEY_INFO must then equal.
        let is_key = matches!(
            template.get_ulong(CKA_CLASS),
            Some(CKO_PUBLIC_KEY | CKO_PRIVATE_KEY)
        );
        let mut probe = template.clone();
        if is_key {
            probe.0.remove(&CKA_PUBLIC_KEY_INFO);
        }
        let mut attrs = rules::new_object(&probe, &Attrs::new(), Origin::Create, actor)?;
        let computed = crate::mechanism::import::public_half(&attrs)?;
        if !computed.0.is_empty() || (is_key && template.has(CKA_PUBLIC_KEY_INFO)) {
            attrs = rules::new_object(&template, &computed, Origin::Create, actor)?;
        }
        self.store_new(session, &token, slot, rw, actor, attrs)
    }

    pub(crate) fn copy_object_impl(
        &self,
        session: SessionHandle,
        object: ObjectHandle,
        template: Vec<Attribute>,
    ) -> Result<ObjectHandle> {
        let (r, rw, token, slot) = self.resolve(session, object, Code::ObjectHandleInvalid)?;
        let actor = self.actor(slot)?;
        let attrs = rules::copy_object(r.object.attrs(), &Attrs::from_template(template)?, actor)?;
        self.store_new(session, &token, slot, rw, actor, attrs)
    }

    pub(crate) fn destroy_object_impl(
        &self,
        session: SessionHandle,
        object: ObjectHandle,
    ) -> Result<()> {
        let (r, rw, token, slot) = self.resolve(session, object, Code::ObjectHandleInvalid)?;
        let actor = self.actor(slot)?;
        let attrs = r.object.attrs();
        self.check_write(rw, actor, flag(attrs, CKA_TOKEN), flag(attrs, CKA_PRIVATE))?;
        if !attrs.get_bool(CKA_DESTROYABLE).unwrap_or(true) {
            return Err(Code::ActionProhibited.err("the object has CKA_DESTROYABLE=FALSE"));
        }
        if let ObjRef::Token { uid, .. } = &r.reference {
            token.delete(uid)?;
        }
        self.handles.write().map_err(|_| poisoned())?.remove(object);
        Ok(())
    }

    pub(crate) fn object_size_impl(
        &self,
        session: SessionHandle,
        object: ObjectHandle,
    ) -> Result<CK_ULONG> {
        let (r, ..) = self.resolve(session, object, Code::ObjectHandleInvalid)?;
        let size: usize = r
            .object
            .attrs()
            .iter()
            .map(|(_, v)| value_size(v) + 16)
            .sum();
        Ok(CK_ULONG::try_from(size).unwrap_or(CK_UNAVAILABLE_INFORMATION))
    }

    pub(crate) fn get_attribute_value_impl(
        &self,
        session: SessionHandle,
        object: ObjectHandle,
        types: &[CK_ATTRIBUTE_TYPE],
    ) -> Result<Vec<AttrResult>> {
        let (r, ..) = self.resolve(session, object, Code::ObjectHandleInvalid)?;
        Ok(types
            .iter()
            .map(|ty| rules::read_attribute(r.object.attrs(), *ty))
            .collect())
    }

    pub(crate) fn set_attribute_value_impl(
        &self,
        session: SessionHandle,
        object: ObjectHandle,
        template: Vec<Attribute>,
    ) -> Result<()> {
        let (r, rw, token, slot) = self.resolve(session, object, Code::ObjectHandleInvalid)?;
        let actor = self.actor(slot)?;
        let old = r.object.attrs();
        self.check_write(rw, actor, flag(old, CKA_TOKEN), flag(old, CKA_PRIVATE))?;
        let new = rules::set_attributes(old, &Attrs::from_template(template)?, actor)?;
        match r.reference {
            ObjRef::Token { uid, .. } => {
                let mk = self.mk(slot)?;
                token.update(mk.as_deref(), &uid, new)?;
            }
            ObjRef::Session { slot, owner, .. } => {
                let updated = Arc::new(Object::new(new));
                self.handles.write().map_err(|_| poisoned())?.map.insert(
                    object,
                    ObjRef::Session {
                        slot,
                        owner,
                        object: updated,
                    },
                );
            }
        }
        Ok(())
    }

    pub(crate) fn find_objects_init_impl(
        &self,
        session: SessionHandle,
        template: Vec<Attribute>,
    ) -> Result<()> {
        let (s, token, slot) = self.token_of(session)?;
        if s.lock().map_err(|_| poisoned())?.find.is_some() {
            return Err(Code::OperationActive.err("a find is already active in this session"));
        }
        let user = self.who(slot)? == Some(Who::User);
        // A template naming one attribute twice with different values matches nothing.
        let results = match Attrs::from_template(template) {
            Err(_) => Vec::new(),
            Ok(t) => {
                token.refresh()?;
                let found = token.find(&t, user)?;
                // Most handles already exist: look them up under the shared lock and take the
                // exclusive one only for objects this application has not seen yet.
                let mut out = Vec::with_capacity(found.len());
                let mut unseen = Vec::new();
                {
                    let handles = self.handles.read().map_err(|_| poisoned())?;
                    for e in &found {
                        match handles.token.get(&(slot, e.uid.clone())) {
                            Some(h) => out.push(*h),
                            None => unseen.push(e.uid.clone()),
                        }
                    }
                    for h in &handles.session {
                        if let Some(ObjRef::Session {
                            slot: s, object, ..
                        }) = handles.map.get(h)
                            && *s == slot
                            && (user || !object.flag(CKA_PRIVATE, false))
                            && object.attrs().matches(&t)
                        {
                            out.push(*h);
                        }
                    }
                }
                if !unseen.is_empty() {
                    let mut handles = self.handles.write().map_err(|_| poisoned())?;
                    out.extend(unseen.iter().map(|uid| handles.of_token(slot, uid)));
                }
                out.sort_unstable();
                out
            }
        };
        let mut g = s.lock().map_err(|_| poisoned())?;
        if g.find.is_some() {
            return Err(Code::OperationActive.err("a find is already active in this session"));
        }
        g.find = Some(Find { results, pos: 0 });
        Ok(())
    }

    /// Access checks that can be made from the caller's template before any key is generated.
    pub(crate) fn precheck(
        &self,
        rw: bool,
        actor: Actor,
        template: &Attrs,
        private_default: bool,
    ) -> Result<()> {
        self.check_write(
            rw,
            actor,
            template.get_bool(CKA_TOKEN).unwrap_or(false),
            template.get_bool(CKA_PRIVATE).unwrap_or(private_default),
        )
    }

    pub(crate) fn generate_key_impl(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        template: Vec<Attribute>,
    ) -> Result<ObjectHandle> {
        let (s, token, slot) = self.token_of(session)?;
        let rw = s.lock().map_err(|_| poisoned())?.rw;
        let actor = self.actor(slot)?;
        let m = registry().get(mech.mech)?;
        let mut template = Attrs::from_template(template)?;
        if !template.has(CKA_CLASS) {
            template.set(CKA_CLASS, crate::types::AttrValue::Ulong(CKO_SECRET_KEY));
        }
        self.precheck(rw, actor, &template, true)?;
        let generated = m.generate_key(mech, &template)?;
        let attrs = rules::new_object(
            &template,
            &generated,
            Origin::Generate { mech: mech.mech },
            actor,
        )?;
        self.store_new(session, &token, slot, rw, actor, attrs)
    }

    pub(crate) fn generate_key_pair_impl(
        &self,
        session: SessionHandle,
        mech: &Mechanism,
        public_template: Vec<Attribute>,
        private_template: Vec<Attribute>,
    ) -> Result<(ObjectHandle, ObjectHandle)> {
        let (s, token, slot) = self.token_of(session)?;
        let rw = s.lock().map_err(|_| poisoned())?.rw;
        let actor = self.actor(slot)?;
        let m = registry().get(mech.mech)?;
        let mut public = Attrs::from_template(public_template)?;
        let mut private = Attrs::from_template(private_template)?;
        if !public.has(CKA_CLASS) {
            public.set(CKA_CLASS, crate::types::AttrValue::Ulong(CKO_PUBLIC_KEY));
        }
        if !private.has(CKA_CLASS) {
            private.set(CKA_CLASS, crate::types::AttrValue::Ulong(CKO_PRIVATE_KEY));
        }
        self.precheck(rw, actor, &public, false)?;
        self.precheck(rw, actor, &private, true)?;
        let (gen_pub, gen_priv) = m.generate_key_pair(mech, &public, &private)?;
        let origin = Origin::Generate { mech: mech.mech };
        let pub_attrs = rules::new_object(&public, &gen_pub, origin, actor)?;
        let priv_attrs = rules::new_object(&private, &gen_priv, origin, actor)?;
        self.may_store(rw, actor, &pub_attrs)?;
        self.may_store(rw, actor, &priv_attrs)?;
        let ph = self.add_object(session, &token, slot, pub_attrs)?;
        match self.add_object(session, &token, slot, priv_attrs) {
            Ok(vh) => Ok((ph, vh)),
            Err(e) => {
                // Both keys or neither: undo the public half.
                if let Err(undo) = self.destroy_created(slot, &token, ph) {
                    tracing::error!(error = %undo, "could not remove the public key of a failed key-pair generation");
                }
                Err(e)
            }
        }
    }

    fn destroy_created(&self, _slot: CK_SLOT_ID, token: &Token, h: ObjectHandle) -> Result<()> {
        let r = self
            .handles
            .read()
            .map_err(|_| poisoned())?
            .map
            .get(&h)
            .cloned();
        if let Some(ObjRef::Token { uid, .. }) = r {
            token.delete(&uid)?;
        }
        self.handles.write().map_err(|_| poisoned())?.remove(h);
        Ok(())
    }
}

fn flag(attrs: &Attrs, ty: CK_ATTRIBUTE_TYPE) -> bool {
    attrs.get_bool(ty).unwrap_or(false)
}

fn value_size(v: &crate::types::AttrValue) -> usize {
    use crate::types::AttrValue;
    match v {
        AttrValue::Bool(_) => 1,
        AttrValue::Ulong(_) => size_of::<CK_ULONG>(),
        AttrValue::Bytes(b) => b.len(),
        AttrValue::Template(t) => t.iter().map(|a| value_size(&a.value) + 16).sum(),
        AttrValue::Mechanisms(m) => m.len() * size_of::<CK_ULONG>(),
    }
}
