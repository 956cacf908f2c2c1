//! Finding what a PKCS#11 URI names: the one token (slot) it selects, the objects it
//! matches, and a session on that token logged in with a PIN from the usual sources.

use std::path::PathBuf;

use cryptoki::context::Pkcs11;
use cryptoki::error::RvError;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use keyward_uri::{ObjectFields, ObjectType, Pkcs11Uri, SlotFields, TokenFields};

use crate::error::{Error, Result, rv_of};
use crate::module::{self, ModuleChoice};
use crate::pin::{self, Sources};

/// Options every command shares.
#[derive(Debug, Clone, Default)]
pub struct Global {
    pub module: Option<PathBuf>,
    pub pin_source: Option<PathBuf>,
    pub so_pin_source: Option<PathBuf>,
}

/// A slot with a token, as listed by C_GetSlotList/C_GetTokenInfo.
#[derive(Debug, Clone)]
pub struct Token {
    pub slot: Slot,
    pub label: String,
    pub manufacturer: String,
    pub model: String,
    pub serial: String,
    pub initialized: bool,
    pub user_pin_initialized: bool,
    pub login_required: bool,
}

impl Token {
    /// The token's identity as URI matching sees it.
    pub fn fields(&self) -> TokenFields<'_> {
        TokenFields {
            label: &self.label,
            manufacturer: &self.manufacturer,
            model: &self.model,
            serial: &self.serial,
        }
    }

    /// The URI naming this token: `pkcs11:token=..;manufacturer=..;serial=..;model=..`.
    pub fn uri(&self) -> Pkcs11Uri {
        Pkcs11Uri::new()
            .with_token(self.label.clone())
            .with_manufacturer(self.manufacturer.clone())
            .with_serial(self.serial.clone())
            .with_model(self.model.clone())
    }
}

/// The loaded module and the command's shared options.
pub struct App {
    pub p11: Pkcs11,
    pub global: Global,
}

impl App {
    /// Load the module the options or the URI name.
    pub fn open(global: &Global, uri: Option<&Pkcs11Uri>) -> Result<App> {
        let choice = ModuleChoice {
            explicit: global.module.clone(),
            uri_path: uri.and_then(|u| u.module_path()).map(str::to_owned),
            uri_name: uri.and_then(|u| u.module_name()).map(str::to_owned),
        };
        let p11 = module::load(&choice)?;
        Ok(App {
            p11,
            global: global.clone(),
        })
    }

    /// Every slot that holds a token, initialised or not.
    pub fn tokens(&self) -> Result<Vec<Token>> {
        let slots = self
            .p11
            .get_slots_with_token()
            .map_err(|e| Error::ck("listing slots", e))?;
        let mut out = Vec::with_capacity(slots.len());
        for slot in slots {
            let ti = self
                .p11
                .get_token_info(slot)
                .map_err(|e| Error::ck("reading token information", e))?;
            out.push(Token {
                slot,
                label: ti.label().trim_end().to_owned(),
                manufacturer: ti.manufacturer_id().trim_end().to_owned(),
                model: ti.model().trim_end().to_owned(),
                serial: ti.serial_number().trim_end().to_owned(),
                initialized: ti.token_initialized(),
                user_pin_initialized: ti.user_pin_initialized(),
                login_required: ti.login_required(),
            });
        }
        Ok(out)
    }

    /// The slot fields of a slot, for URI matching.
    fn slot_matches(&self, uri: &Pkcs11Uri, slot: Slot) -> Result<bool> {
        let si = self
            .p11
            .get_slot_info(slot)
            .map_err(|e| Error::ck("reading slot information", e))?;
        Ok(uri.matches_slot(&SlotFields {
            description: si.slot_description(),
            manufacturer: si.manufacturer_id(),
            id: slot.id(),
        }))
    }

    /// The one initialised token the URI names (any token when there is no URI and only one
    /// is initialised). None or several is an error that lists the candidates.
    pub fn token(&self, uri: Option<&Pkcs11Uri>) -> Result<Token> {
        let mut found = Vec::new();
        for t in self.tokens()?.into_iter().filter(|t| t.initialized) {
            let ok = match uri {
                None => true,
                Some(u) => u.matches_token(&t.fields()) && self.slot_matches(u, t.slot)?,
            };
            if ok {
                found.push(t);
            }
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(Error::not_found(match uri {
                Some(u) => format!("no initialised token matches {}", shown(u)),
                None => "no initialised token".to_owned(),
            })
            .hint("list tokens with: keyward token list (create one with: keyward token init)")),
            _ => {
                let names: Vec<String> = found.iter().map(|t| t.uri().to_string()).collect();
                Err(Error::usage(format!(
                    "{} tokens match; name one with a URI:\n    {}",
                    found.len(),
                    names.join("\n    ")
                )))
            }
        }
    }

    /// A session on the token, read-write or not.
    pub fn session(&self, t: &Token, rw: bool) -> Result<Session> {
        let r = if rw {
            self.p11.open_rw_session(t.slot)
        } else {
            self.p11.open_ro_session(t.slot)
        };
        r.map_err(|e| Error::ck(&format!("opening a session on token {:?}", t.label), e))
    }

    /// Where the user PIN comes from for this URI.
    pub fn user_pin_sources<'a>(&'a self, uri: Option<&'a Pkcs11Uri>) -> Sources<'a> {
        Sources {
            file: self.global.pin_source.as_deref(),
            env: Some(pin::ENV_USER),
            uri_value: uri.and_then(|u| u.pin_value()),
            uri_source: uri.and_then(|u| u.pin_source()),
            prompt: "User PIN: ",
            confirm: false,
        }
    }

    /// Where the SO PIN comes from.
    pub fn so_pin_sources(&self, confirm: bool) -> Sources<'_> {
        Sources {
            file: self.global.so_pin_source.as_deref(),
            env: Some(pin::ENV_SO),
            uri_value: None,
            uri_source: None,
            prompt: "SO PIN: ",
            confirm,
        }
    }

    /// Log the session in as the user (or SO) with a PIN from its sources.
    pub fn login(&self, s: &Session, t: &Token, who: UserType, src: &Sources<'_>) -> Result<()> {
        self.login_with(s, t, who, &src.get()?)
    }

    /// Log the session in with a PIN already read.
    pub fn login_with(
        &self,
        s: &Session,
        t: &Token,
        who: UserType,
        secret: &pin::Secret,
    ) -> Result<()> {
        match s.login(who, Some(&pin::auth(secret))) {
            Ok(()) => Ok(()),
            Err(e) if rv_of(&e) == Some(RvError::UserAlreadyLoggedIn) => Ok(()),
            Err(e) if rv_of(&e) == Some(RvError::PinIncorrect) => Err(Error::pin(format!(
                "wrong PIN{} (CKR_PIN_INCORRECT)",
                self.tries_left(t, who)
            ))
            .hint("check the PIN source; each wrong attempt counts towards locking the PIN")),
            Err(e) => Err(Error::ck(&format!("logging in to token {:?}", t.label), e)),
        }
    }

    /// What the token says about the PIN's remaining tries after a wrong attempt.
    fn tries_left(&self, t: &Token, who: UserType) -> String {
        let Ok(ti) = self.p11.get_token_info(t.slot) else {
            return String::new();
        };
        let (locked, last, low) = if matches!(who, UserType::So) {
            (
                ti.so_pin_locked(),
                ti.so_pin_final_try(),
                ti.so_pin_count_low(),
            )
        } else {
            (
                ti.user_pin_locked(),
                ti.user_pin_final_try(),
                ti.user_pin_count_low(),
            )
        };
        if locked {
            " (the PIN is now locked)".to_owned()
        } else if last {
            " (1 try left before it locks)".to_owned()
        } else if low {
            " (few tries left before it locks)".to_owned()
        } else {
            String::new()
        }
    }

    /// A session on the token the URI names, logged in as the user when `login` says so.
    pub fn user_session(
        &self,
        uri: Option<&Pkcs11Uri>,
        rw: bool,
        login: bool,
    ) -> Result<(Token, Session)> {
        let t = self.token(uri)?;
        let s = self.session(&t, rw)?;
        if login {
            self.login(&s, &t, UserType::User, &self.user_pin_sources(uri))?;
        }
        Ok((t, s))
    }
}

/// An object found on a token, with what listing and selecting need.
#[derive(Debug, Clone)]
pub struct Obj {
    pub handle: ObjectHandle,
    pub class: ObjectClass,
    pub label: String,
    pub id: Vec<u8>,
}

impl Obj {
    /// The URI object type of this object's class, if it has one.
    pub fn object_type(&self) -> Option<ObjectType> {
        class_to_type(self.class)
    }

    pub fn fields(&self) -> ObjectFields<'_> {
        ObjectFields {
            label: Some(&self.label),
            id: Some(&self.id),
            object_type: self.object_type(),
        }
    }

    /// The URI naming this object on token `t`: the token's URI plus object, type and id.
    pub fn uri(&self, t: &Token) -> Pkcs11Uri {
        let mut u = t.uri().with_object(self.label.clone());
        // Objects without CKA_ID (data objects) are named without `id=`, which would match
        // only objects that have an empty one.
        if !self.id.is_empty() {
            u = u.with_id(self.id.clone());
        }
        if let Some(ty) = self.object_type() {
            u = u.with_object_type(ty);
        }
        u
    }
}

pub fn class_to_type(c: ObjectClass) -> Option<ObjectType> {
    ObjectType::from_class(u64::from(c))
}

fn type_to_class(t: ObjectType) -> Option<ObjectClass> {
    ObjectClass::try_from(t.class()).ok()
}

/// A URI for messages: without its query, which may hold a PIN.
pub fn shown(u: &Pkcs11Uri) -> String {
    u.clone().without_query().to_string()
}

/// Read one object's class, label and id.
pub fn describe(s: &Session, h: ObjectHandle) -> Result<Obj> {
    let attrs = s
        .get_attributes(
            h,
            &[
                AttributeType::Class,
                AttributeType::Label,
                AttributeType::Id,
            ],
        )
        .map_err(|e| Error::ck("reading object attributes", e))?;
    let mut o = Obj {
        handle: h,
        class: ObjectClass::DATA,
        label: String::new(),
        id: Vec::new(),
    };
    for a in attrs {
        match a {
            Attribute::Class(c) => o.class = c,
            Attribute::Label(l) => o.label = String::from_utf8_lossy(&l).into_owned(),
            Attribute::Id(i) => o.id = i,
            _ => {}
        }
    }
    Ok(o)
}

/// Every object on the session's token that the URI's object attributes match (all objects
/// for `None`). The module filters by label, id and class; the URI checks the rest.
pub fn objects(s: &Session, uri: Option<&Pkcs11Uri>) -> Result<Vec<Obj>> {
    let mut template = Vec::new();
    if let Some(u) = uri {
        if let Some(l) = u.object() {
            template.push(Attribute::Label(l.as_bytes().to_vec()));
        }
        if let Some(id) = u.id() {
            template.push(Attribute::Id(id.to_vec()));
        }
        if let Some(c) = u.object_type().and_then(type_to_class) {
            template.push(Attribute::Class(c));
        }
    }
    let handles = s
        .find_objects(&template)
        .map_err(|e| Error::ck("searching objects", e))?;
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        let o = describe(s, h)?;
        if uri.is_none_or(|u| u.matches_object(&o.fields())) {
            out.push(o);
        }
    }
    Ok(out)
}

/// The one object among `found` (already matched against `uri`); none or several is an
/// error that lists what matched.
pub fn exactly_one(found: Vec<Obj>, t: &Token, uri: &Pkcs11Uri, logged_in: bool) -> Result<Obj> {
    let mut found = found;
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => {
            let e = Error::not_found(format!("no object matches {}", shown(uri)));
            Err(if logged_in {
                e.hint("list objects with: keyward list")
            } else {
                e.hint("private objects are visible only after login: add --login")
            })
        }
        n => {
            let names: Vec<String> = found.iter().map(|o| o.uri(t).to_string()).collect();
            Err(Error::usage(format!(
                "{n} objects match {}; name one (add type=, id= or object=):\n    {}",
                shown(uri),
                names.join("\n    ")
            )))
        }
    }
}

/// Read CKA_KEY_TYPE on its own: cryptoki refuses key types it does not know (ChaCha20),
/// which must not fail a whole listing.
pub fn key_type(s: &Session, h: ObjectHandle) -> Option<KeyType> {
    match s.get_attributes(h, &[AttributeType::KeyType]) {
        Ok(v) => v.into_iter().find_map(|a| match a {
            Attribute::KeyType(k) => Some(k),
            _ => None,
        }),
        Err(_) => None,
    }
}

/// Parse a URI given on the command line, as a usage error when malformed.
pub fn parse_uri(s: &str) -> Result<Pkcs11Uri> {
    s.parse::<Pkcs11Uri>()
        .map_err(|e| Error::usage(format!("bad PKCS#11 URI {s:?}: {e}")))
}
