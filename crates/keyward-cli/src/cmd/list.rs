//! `keyward list [URI]`: objects with their URIs, as a table or JSON (C_FindObjects,
//! C_GetAttributeValue).

use clap::Args;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use cryptoki::session::{Session, UserType};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::select::{self, App, Global, Obj, Token, parse_uri};

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Which objects (and tokens): e.g. 'pkcs11:token=device;type=cert' (default: all)
    pub uri: Option<String>,
    /// Log in as the user first, to see private objects too (PIN from the usual sources)
    #[arg(long)]
    pub login: bool,
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

/// Print a JSON value, pretty, with a final newline.
pub fn print_json<T: serde::Serialize + ?Sized>(v: &T) -> Result<()> {
    let mut s =
        serde_json::to_string_pretty(v).map_err(|e| Error::usage(format!("encoding JSON: {e}")))?;
    s.push('\n');
    crate::io::print(&s)
}

pub fn run(g: &Global, a: ListArgs) -> Result<()> {
    let uri = a.uri.as_deref().map(parse_uri).transpose()?;
    let app = App::open(g, uri.as_ref())?;
    let login = a.login
        || uri
            .as_ref()
            .is_some_and(|u| u.pin_value().is_some() || u.pin_source().is_some());
    // A PIN is tried on one token only: a wrong guess on others would count towards locking.
    let tokens: Vec<Token> = if login {
        vec![app.token(uri.as_ref())?]
    } else {
        let all: Vec<Token> = app
            .tokens()?
            .into_iter()
            .filter(|t| t.initialized)
            .collect();
        all.into_iter()
            .filter(|t| uri.as_ref().is_none_or(|u| u.matches_token(&t.fields())))
            .collect()
    };
    let mut rows = Vec::new();
    let mut js = Vec::new();
    for t in &tokens {
        let s = app.session(t, false)?;
        if login {
            app.login(&s, t, UserType::User, &app.user_pin_sources(uri.as_ref()))?;
        }
        let mut objs = select::objects(&s, uri.as_ref())?;
        objs.sort_by(|a, b| {
            (&a.label, &a.id, u64::from(a.class)).cmp(&(&b.label, &b.id, u64::from(b.class)))
        });
        for o in objs {
            let v = describe_json(&s, t, &o)?;
            rows.push(vec![
                class_name(o.class).to_owned(),
                v["key_type"].as_str().unwrap_or("").to_owned(),
                o.label.clone(),
                hex::encode(&o.id),
                o.uri(t).to_string(),
            ]);
            js.push(v);
        }
    }
    if a.json {
        return print_json(&js);
    }
    let mut text = super::slots::table(&["CLASS", "KEY TYPE", "LABEL", "ID", "URI"], &rows);
    if !login && tokens.iter().any(|t| t.login_required) {
        text.push_str("(private objects are shown after login: add --login)\n");
    }
    crate::io::print(&text)
}

pub fn class_name(c: ObjectClass) -> &'static str {
    match c {
        ObjectClass::PUBLIC_KEY => "public",
        ObjectClass::PRIVATE_KEY => "private",
        ObjectClass::SECRET_KEY => "secret-key",
        ObjectClass::CERTIFICATE => "cert",
        ObjectClass::DATA => "data",
        _ => "other",
    }
}

/// A key type's name, with its size or curve when known.
pub fn key_type_name(s: &Session, o: &Obj) -> String {
    let kt = select::key_type(s, o.handle);
    let attrs = s
        .get_attributes(
            o.handle,
            &[
                AttributeType::ModulusBits,
                AttributeType::Modulus,
                AttributeType::EcParams,
                AttributeType::ValueLen,
            ],
        )
        .unwrap_or_default();
    let mut bits = None;
    let mut params = None;
    let mut len = None;
    for a in attrs {
        match a {
            Attribute::ModulusBits(b) => bits = Some(u64::from(b)),
            Attribute::Modulus(m) if bits.is_none() => bits = Some(m.len() as u64 * 8),
            Attribute::EcParams(p) => params = Some(p),
            Attribute::ValueLen(l) => len = Some(u64::from(l) * 8),
            _ => {}
        }
    }
    let p = params.as_deref().unwrap_or_default();
    match kt {
        Some(KeyType::RSA) => format!("rsa:{}", bits.unwrap_or(0)),
        Some(KeyType::EC) => match super::key::Curve::from_oid_der(p) {
            Some(c) => format!("ec:{}", c.name()),
            None => "ec".to_owned(),
        },
        Some(KeyType::EC_EDWARDS) => if p == super::key::OID_ED448 {
            "ed448"
        } else {
            "ed25519"
        }
        .to_owned(),
        Some(KeyType::EC_MONTGOMERY) => if p == super::key::OID_X448 {
            "x448"
        } else {
            "x25519"
        }
        .to_owned(),
        Some(KeyType::AES) => format!("aes:{}", len.unwrap_or(0)),
        Some(KeyType::GENERIC_SECRET) => format!("generic:{}", len.unwrap_or(0)),
        Some(other) => other.to_string(),
        None if matches!(
            o.class,
            ObjectClass::PRIVATE_KEY | ObjectClass::PUBLIC_KEY | ObjectClass::SECRET_KEY
        ) =>
        {
            // Key types cryptoki cannot name, read as numbers.
            match crate::raw::key_type(s, o.handle) {
                Some(cryptoki_sys::CKK_CHACHA20) => "chacha20".to_owned(),
                Some(n) => format!("{n:#x}"),
                None => "unknown".to_owned(),
            }
        }
        None => String::new(),
    }
}

fn describe_json(s: &Session, t: &Token, o: &Obj) -> Result<Value> {
    let mut v = json!({
        "uri": o.uri(t).to_string(),
        "token": t.label,
        "class": class_name(o.class),
        "label": o.label,
        "id": hex::encode(&o.id),
    });
    let key_type = key_type_name(s, o);
    v["key_type"] = if key_type.is_empty() {
        Value::Null
    } else {
        Value::from(key_type)
    };
    let want = [
        AttributeType::Private,
        AttributeType::Sensitive,
        AttributeType::Extractable,
        AttributeType::Local,
        AttributeType::Sign,
        AttributeType::Verify,
        AttributeType::Encrypt,
        AttributeType::Decrypt,
        AttributeType::Wrap,
        AttributeType::Unwrap,
        AttributeType::Derive,
    ];
    let attrs = s.get_attributes(o.handle, &want).unwrap_or_default();
    let mut usage = Vec::new();
    for a in attrs {
        match a {
            Attribute::Private(b) => v["private"] = b.into(),
            Attribute::Sensitive(b) => v["sensitive"] = b.into(),
            Attribute::Extractable(b) => v["extractable"] = b.into(),
            Attribute::Local(b) => v["local"] = b.into(),
            Attribute::Sign(true) => usage.push("sign"),
            Attribute::Verify(true) => usage.push("verify"),
            Attribute::Encrypt(true) => usage.push("encrypt"),
            Attribute::Decrypt(true) => usage.push("decrypt"),
            Attribute::Wrap(true) => usage.push("wrap"),
            Attribute::Unwrap(true) => usage.push("unwrap"),
            Attribute::Derive(true) => usage.push("derive"),
            _ => {}
        }
    }
    if matches!(
        o.class,
        ObjectClass::PRIVATE_KEY | ObjectClass::PUBLIC_KEY | ObjectClass::SECRET_KEY
    ) {
        v["usage"] = usage.into();
    }
    Ok(v)
}
