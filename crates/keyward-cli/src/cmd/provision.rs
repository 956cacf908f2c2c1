//! `keyward provision MANIFEST.toml`: declarative, idempotent provisioning. Each token,
//! key, CSR, certificate and data object the manifest names is made only when missing, one
//! PKCS#11 call per object, so a run that stops part-way leaves whole objects behind and the
//! next run finishes the job; the report says what was created and what was already there.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use cryptoki::object::{Attribute, AttributeType, CertificateType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use openssl::x509::{X509, X509Req};
use serde::Serialize;
use zeroize::Zeroizing;

use super::key::{Spec, generate_in};
use crate::error::{Error, Exit, Result};
use crate::manifest::{self, Cert, Csr, Data, DataValue, Key, PinSource};
use crate::pin::{self, Secret};
use crate::select::{self, App, Global, Obj, Token};

pub const PROVISION_HELP: &str = "\
The manifest names tokens (label, so_pin_source and user_pin_source as file:PATH or
env:NAME) and, under each, [[token.key]], [[token.csr]], [[token.certificate]],
[[token.ca]] and [[token.data]] entries. What exists is left alone; what is missing is
made; a second run changes nothing. ${name} in labels, subjects, SANs and paths comes from
--vars, the manifest's [vars], or the environment. Relative input files are taken from the
manifest's directory, CSR outputs from the current directory.

Examples:
  keyward provision examples/device-identity.toml --vars serial=SN0001
  keyward provision line.toml --vars serial=$(cat /sys/class/dmi/id/product_serial) --report out.json";

#[derive(Debug, Args)]
pub struct ProvisionArgs {
    /// The manifest (TOML)
    pub manifest: PathBuf,
    /// Values of ${NAME} in the manifest (overriding its [vars] and the environment)
    #[arg(long = "vars", value_name = "NAME=VALUE", num_args = 1.., value_parser = manifest::parse_var)]
    pub vars: Vec<(String, String)>,
    /// Write the JSON report to FILE as well (`-` for stdout instead of the summary)
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Unchanged,
}

/// One line of the report: a manifest entry and the objects (or file) it stands for.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub kind: &'static str,
    pub token: String,
    pub name: String,
    pub status: Status,
    /// The URIs of the token objects this entry is (a key pair has two).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<String>,
    /// The file written (CSRs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// The JSON report.
#[derive(Debug, Serialize)]
pub struct Report {
    pub manifest: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub created: usize,
    pub unchanged: usize,
    pub items: Vec<Item>,
}

pub fn run(g: &Global, a: ProvisionArgs) -> Result<()> {
    let cli_vars: BTreeMap<String, String> = a.vars.iter().cloned().collect();
    let plan = manifest::load(&a.manifest, &cli_vars)?;
    // Every PIN is read before any token changes, so a missing one stops the run at once.
    let mut pins = Vec::with_capacity(plan.len());
    for t in &plan {
        let so = read_pin(&t.so_pin, &t.label, "SO")?;
        let user = read_pin(&t.user_pin, &t.label, "user")?;
        pins.push((so, user));
    }
    let app = App::open(g, None)?;
    let mut items = Vec::new();
    let mut failure = None;
    for (t, (so, user)) in plan.iter().zip(&pins) {
        if let Err(e) = provision_token(&app, t, so, user, &mut items) {
            failure = Some(e);
            break;
        }
    }
    let report = Report {
        manifest: a.manifest.display().to_string(),
        ok: failure.is_none(),
        error: failure.as_ref().map(|e| e.to_string()),
        created: items.iter().filter(|i| i.status == Status::Created).count(),
        unchanged: items
            .iter()
            .filter(|i| i.status == Status::Unchanged)
            .count(),
        items,
    };
    let to_stdout = a.report.as_deref() == Some(Path::new("-"));
    if !to_stdout {
        crate::io::print(&summary(&report))?;
    }
    if let Some(p) = &a.report {
        let mut js = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::usage(format!("encoding the report: {e}")))?;
        js.push('\n');
        crate::io::write_output(Some(p), js.as_bytes())?;
    }
    match failure {
        None => Ok(()),
        Some(e) => Err(Error {
            msg: format!(
                "{} (what was made before stays; fix this and run again to finish)",
                e.msg
            ),
            ..e
        }),
    }
}

/// The text for people: one line per entry, then the totals.
fn summary(r: &Report) -> String {
    let mut out = String::new();
    for i in &r.items {
        let status = match i.status {
            Status::Created => "created",
            Status::Unchanged => "unchanged",
        };
        let what = i
            .path
            .clone()
            .or_else(|| i.objects.first().cloned())
            .unwrap_or_default();
        out.push_str(&format!(
            "{status:<10} {:<12} {:<20} {what}\n",
            i.kind, i.name
        ));
    }
    let verdict = if !r.ok {
        "stopped by an error"
    } else if r.created == 0 {
        "nothing to do: everything was already provisioned"
    } else {
        "done"
    };
    out.push_str(&format!(
        "{} created, {} unchanged: {verdict}\n",
        r.created, r.unchanged
    ));
    out
}

fn read_pin(src: &PinSource, token: &str, who: &str) -> Result<Secret> {
    match src {
        PinSource::File(p) => pin::first_line(p),
        PinSource::Env(var) => {
            let v = std::env::var(var).map_err(|_| {
                Error::pin(format!(
                    "token {token:?}: the {who} PIN's variable {var} is not set"
                ))
            })?;
            let v = Zeroizing::new(v);
            if v.is_empty() {
                return Err(Error::pin(format!(
                    "token {token:?}: the {who} PIN's variable {var} is empty"
                )));
            }
            Ok(v)
        }
    }
}

fn provision_token(
    app: &App,
    plan: &manifest::Token,
    so: &Secret,
    user: &Secret,
    items: &mut Vec<Item>,
) -> Result<()> {
    let (t, s, status) = open_token(app, plan, so, user)?;
    items.push(Item {
        kind: "token",
        token: t.label.clone(),
        name: t.label.clone(),
        status,
        objects: vec![t.uri().to_string()],
        path: None,
    });
    let mut fresh_keys = Vec::new();
    for k in &plan.keys {
        let item = key_step(&s, &t, k)?;
        if item.status == Status::Created {
            fresh_keys.push(k.label.clone());
        }
        items.push(item);
    }
    for c in &plan.csrs {
        let key = key_of(plan, &c.key)?;
        items.push(csr_step(&s, &t, c, key, fresh_keys.contains(&c.key))?);
    }
    for c in &plan.certs {
        let key = c.key.as_deref().map(|k| key_of(plan, k)).transpose()?;
        cert_step(&s, &t, c, key, items)?;
    }
    for d in &plan.data {
        items.push(data_step(&s, &t, d)?);
    }
    Ok(())
}

fn key_of<'a>(plan: &'a manifest::Token, label: &str) -> Result<&'a Key> {
    plan.keys
        .iter()
        .find(|k| k.label == label)
        .ok_or_else(|| Error::usage(format!("no [[token.key]] labelled {label:?}")))
}

/// The token, initialised with its SO PIN and user PIN if missing, its PINs checked if
/// present, and a read-write session logged in as the user.
fn open_token(
    app: &App,
    plan: &manifest::Token,
    so: &Secret,
    user: &Secret,
) -> Result<(Token, Session, Status)> {
    let mut status = Status::Unchanged;
    let t = match find_token(app, &plan.label)? {
        Some(t) => t,
        None => {
            let free = app
                .tokens()?
                .into_iter()
                .find(|t| !t.initialized)
                .ok_or_else(|| {
                    Error::not_found(format!(
                        "token {:?} does not exist and no slot holds an uninitialised token",
                        plan.label
                    ))
                })?;
            app.p11
                .init_token(free.slot, &pin::auth(so), &plan.label)
                .map_err(|e| Error::ck(&format!("initialising token {:?}", plan.label), e))?;
            status = Status::Created;
            // Some modules (Keyward, SoftHSMv2) move a new token to a slot of its own.
            find_token(app, &plan.label)?.ok_or_else(|| {
                Error::pkcs11(format!(
                    "token {:?} was initialised but does not show in the slot list",
                    plan.label
                ))
            })?
        }
    };
    let s = app.session(&t, true)?;
    // The SO logs in on every run: a factory line learns of a wrong SO PIN source now, not
    // when a token finally needs it.
    app.login_with(&s, &t, UserType::So, so)
        .map_err(|e| prefix(e, &format!("token {:?}: SO PIN", t.label)))?;
    if !t.user_pin_initialized {
        s.init_pin(&pin::auth(user))
            .map_err(|e| Error::ck(&format!("setting the user PIN of {:?}", t.label), e))?;
        status = Status::Created;
    }
    s.logout()
        .map_err(|e| Error::ck(&format!("logging the SO out of {:?}", t.label), e))?;
    app.login_with(&s, &t, UserType::User, user)
        .map_err(|e| prefix(e, &format!("token {:?}: user PIN", t.label)))?;
    Ok((t, s, status))
}

fn prefix(e: Error, what: &str) -> Error {
    Error {
        msg: format!("{what}: {}", e.msg),
        ..e
    }
}

/// The URI naming an object; without `id=` when it has no CKA_ID (data objects), since an
/// empty `id=` matches only an empty CKA_ID.
fn uri_of(o: &Obj, t: &Token) -> keyward_uri::Pkcs11Uri {
    if !o.id.is_empty() {
        return o.uri(t);
    }
    let mut u = t.uri().with_object(o.label.clone());
    if let Some(ty) = o.object_type() {
        u = u.with_object_type(ty);
    }
    u
}

fn find_token(app: &App, label: &str) -> Result<Option<Token>> {
    let mut found: Vec<Token> = app
        .tokens()?
        .into_iter()
        .filter(|t| t.initialized && t.label == label)
        .collect();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        n => Err(Error::usage(format!(
            "{n} tokens are labelled {label:?}; the manifest cannot tell them apart"
        ))),
    }
}

/// The type name `keyward list` shows for a key of this type.
fn spec_name(spec: Spec) -> String {
    match spec {
        Spec::Rsa(b) => format!("rsa:{b}"),
        Spec::Ec(c) => format!("ec:{}", c.name()),
        Spec::Ed25519 => "ed25519".to_owned(),
        Spec::Ed448 => "ed448".to_owned(),
        Spec::X25519 => "x25519".to_owned(),
        Spec::X448 => "x448".to_owned(),
        Spec::Aes(b) => format!("aes:{b}"),
        Spec::ChaCha20 => "chacha20".to_owned(),
        Spec::Generic(b) => format!("generic:{b}"),
    }
}

const KEY_CLASSES: [ObjectClass; 3] = [
    ObjectClass::PRIVATE_KEY,
    ObjectClass::SECRET_KEY,
    ObjectClass::PUBLIC_KEY,
];

/// Keys matching a template (any key class).
fn find_keys(s: &Session, template: &[Attribute]) -> Result<Vec<Obj>> {
    let mut out = Vec::new();
    for class in KEY_CLASSES {
        let mut t = template.to_vec();
        t.push(Attribute::Class(class));
        for h in s
            .find_objects(&t)
            .map_err(|e| Error::ck("searching keys", e))?
        {
            out.push(select::describe(s, h)?);
        }
    }
    Ok(out)
}

fn key_step(s: &Session, t: &Token, k: &Key) -> Result<Item> {
    let what = format!("key {:?} (id {})", k.label, hex::encode(&k.id));
    let by_label = find_keys(s, &[Attribute::Label(k.label.as_bytes().to_vec())])?;
    let by_id = find_keys(s, &[Attribute::Id(k.id.clone())])?;
    // Another label on this id, or another id on this label, would make the CKA_ID links and
    // the URIs ambiguous: refuse rather than add a second key.
    if let Some(o) = by_label
        .iter()
        .chain(&by_id)
        .find(|o| o.id != k.id || o.label != k.label)
    {
        return Err(Error::usage(format!(
            "{what}: the token already has a key {:?} with id {}; delete it or change the manifest",
            o.label,
            hex::encode(&o.id)
        ))
        .hint(format!("keyward delete '{}'", uri_of(o, t))));
    }
    let mut item = Item {
        kind: "key",
        token: t.label.clone(),
        name: k.label.clone(),
        status: Status::Unchanged,
        objects: Vec::new(),
        path: None,
    };
    if let Some(main) = by_label
        .iter()
        .find(|o| o.class == ObjectClass::PRIVATE_KEY || o.class == ObjectClass::SECRET_KEY)
    {
        let have = super::list::key_type_name(s, main);
        let want = spec_name(k.spec);
        if have != want {
            return Err(Error::usage(format!(
                "{what} exists as {have}, but the manifest says {} ({want}); delete it or change the manifest",
                k.spec_text
            ))
            .hint(format!("keyward delete '{}' --all", uri_of(main, t))));
        }
        item.objects = by_label.iter().map(|o| uri_of(o, t).to_string()).collect();
        return Ok(item);
    }
    if let Some(o) = by_label.first() {
        return Err(Error::usage(format!(
            "{what}: only its public key is in the token; delete it to generate the pair again"
        ))
        .hint(format!("keyward delete '{}'", uri_of(o, t))));
    }
    let made = generate_in(
        s,
        k.spec,
        &k.spec_text,
        &k.label,
        &k.id,
        &k.usage,
        k.extractable,
    )?;
    for h in made {
        item.objects
            .push(uri_of(&select::describe(s, h)?, t).to_string());
    }
    item.status = Status::Created;
    Ok(item)
}

/// The private key and the SubjectPublicKeyInfo of a key pair the manifest names.
fn key_pair(s: &Session, t: &Token, k: &Key) -> Result<(ObjectHandle, Vec<u8>)> {
    let objs = find_keys(
        s,
        &[
            Attribute::Label(k.label.as_bytes().to_vec()),
            Attribute::Id(k.id.clone()),
        ],
    )?;
    let private = objs
        .iter()
        .find(|o| o.class == ObjectClass::PRIVATE_KEY)
        .ok_or_else(|| {
            Error::not_found(format!(
                "token {:?} has no private key {:?}",
                t.label, k.label
            ))
        })?;
    // The public half when it exists; else the private key's CKA_PUBLIC_KEY_INFO.
    let public = objs
        .iter()
        .find(|o| o.class == ObjectClass::PUBLIC_KEY)
        .unwrap_or(private);
    Ok((private.handle, super::export::spki(s, public)?))
}

fn csr_step(s: &Session, t: &Token, c: &Csr, k: &Key, key_is_new: bool) -> Result<Item> {
    let (private, spki) = key_pair(s, t, k)?;
    let mut item = Item {
        kind: "csr",
        token: t.label.clone(),
        name: k.label.clone(),
        status: Status::Unchanged,
        objects: Vec::new(),
        path: Some(c.output.display().to_string()),
    };
    if !key_is_new && csr_is_current(&c.output, &spki, &c.subject)? {
        return Ok(item);
    }
    let der = super::csr::build_csr(s, private, &spki, &c.subject, &c.sans)?;
    let bytes = if c.output.extension().is_some_and(|e| e == "der") {
        der
    } else {
        super::csr::pem("CERTIFICATE REQUEST", &der)
    };
    write_atomic(&c.output, &bytes)?;
    item.status = Status::Created;
    Ok(item)
}

/// A CSR already at `path` for this key and subject needs no new one.
fn csr_is_current(path: &Path, spki: &[u8], subject: &str) -> Result<bool> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io("reading", path, e)),
    };
    let req = X509Req::from_pem(&bytes).or_else(|_| X509Req::from_der(&bytes));
    let Ok(req) = req else {
        return Ok(false);
    };
    let same_key = req
        .public_key()
        .and_then(|k| k.public_key_to_der())
        .is_ok_and(|d| d == spki);
    Ok(same_key && subject_matches(&req, subject)?)
}

/// Whether the request's subject is the DER Name `keyward csr` builds for `subject`.
fn subject_matches(req: &X509Req, subject: &str) -> Result<bool> {
    let want = super::csr::subject_der(subject)?;
    Ok(req.subject_name().to_der().is_ok_and(|have| have == want))
}

/// Write a file whole or not at all: a temporary file beside it, then a rename.
fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| Error::usage(format!("{} is not a file name", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, data).map_err(|e| Error::io("writing", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io("writing", path, e)
    })
}

/// The certificates in a PEM (one or more) or DER file.
fn read_certs(path: &Path) -> Result<Vec<X509>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("reading the certificate", path, e))?;
    let bad = |e: openssl::error::ErrorStack| {
        Error::usage(format!(
            "{} is not an X.509 certificate (PEM or DER): {e}",
            path.display()
        ))
    };
    let certs = if bytes.starts_with(b"-----") || bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        X509::stack_from_pem(&bytes).map_err(bad)?
    } else {
        vec![X509::from_der(&bytes).map_err(bad)?]
    };
    if certs.is_empty() {
        return Err(Error::usage(format!(
            "{} holds no certificate",
            path.display()
        )));
    }
    Ok(certs)
}

fn value_of(s: &Session, h: ObjectHandle) -> Result<Option<Vec<u8>>> {
    let attrs = s
        .get_attributes(h, &[AttributeType::Value])
        .map_err(|e| Error::ck("reading an object's value", e))?;
    Ok(attrs.into_iter().find_map(|a| match a {
        Attribute::Value(v) => Some(v),
        _ => None,
    }))
}

fn ossl(e: openssl::error::ErrorStack) -> Error {
    Error::usage(format!("OpenSSL: {e}"))
}

fn cert_step(
    s: &Session,
    t: &Token,
    c: &Cert,
    key: Option<&Key>,
    items: &mut Vec<Item>,
) -> Result<()> {
    let certs = read_certs(&c.file)?;
    if !c.authority && certs.len() > 1 {
        return Err(Error::usage(format!(
            "{} holds {} certificates; a [[token.certificate]] is one, put chains in [[token.ca]]",
            c.file.display(),
            certs.len()
        )));
    }
    let existing = s
        .find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE)])
        .map_err(|e| Error::ck("searching certificates", e))?;
    for cert in &certs {
        let der = cert.to_der().map_err(ossl)?;
        let cn = cert
            .subject_name()
            .entries_by_nid(openssl::nid::Nid::COMMONNAME)
            .next()
            .and_then(|e| e.data().to_string().ok());
        let mut item = Item {
            kind: if c.authority { "ca" } else { "certificate" },
            token: t.label.clone(),
            name: String::new(),
            status: Status::Unchanged,
            objects: Vec::new(),
            path: None,
        };
        let mut same = None;
        for h in &existing {
            if value_of(s, *h)?.as_deref() == Some(der.as_slice()) {
                same = Some(*h);
                break;
            }
        }
        if let Some(h) = same {
            let o = select::describe(s, h)?;
            item.name = o.label.clone();
            item.objects.push(uri_of(&o, t).to_string());
            items.push(item);
            continue;
        }
        let spki = cert
            .public_key()
            .and_then(|k| k.public_key_to_der())
            .map_err(ossl)?;
        let id = match (&c.id, key) {
            (Some(id), _) => id.clone(),
            (None, Some(k)) => {
                let (_, key_spki) = key_pair(s, t, k)?;
                if key_spki != spki {
                    return Err(Error::usage(format!(
                        "{} is not for key {:?}: its public key differs",
                        c.file.display(),
                        k.label
                    )));
                }
                k.id.clone()
            }
            (None, None) if c.authority => openssl::sha::sha1(&spki).to_vec(),
            (None, None) => key_id_by_public_key(s, &spki)?.ok_or_else(|| {
                Error::not_found(format!(
                    "{}: no key in token {:?} has this certificate's public key",
                    c.file.display(),
                    t.label
                ))
                .hint("name its key with key = \"LABEL\", or import it as a [[token.ca]]")
            })?,
        };
        let label = c
            .label
            .clone()
            .or_else(|| key.map(|k| k.label.clone()))
            .or(cn)
            .or_else(|| c.file.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "certificate".to_owned());
        let tmpl = vec![
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(CertificateType::X_509),
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Label(label.clone().into_bytes()),
            Attribute::Id(id),
            Attribute::Subject(cert.subject_name().to_der().map_err(ossl)?),
            Attribute::Issuer(cert.issuer_name().to_der().map_err(ossl)?),
            Attribute::SerialNumber(der_integer(
                &cert.serial_number().to_bn().map_err(ossl)?.to_vec(),
            )),
            Attribute::Value(der),
        ];
        let h = s
            .create_object(&tmpl)
            .map_err(|e| Error::ck(&format!("creating certificate {label:?}"), e))?;
        item.name = label;
        item.objects
            .push(uri_of(&select::describe(s, h)?, t).to_string());
        item.status = Status::Created;
        items.push(item);
    }
    Ok(())
}

/// The CKA_ID of the key in the token whose public key is `spki`.
fn key_id_by_public_key(s: &Session, spki: &[u8]) -> Result<Option<Vec<u8>>> {
    for class in [ObjectClass::PUBLIC_KEY, ObjectClass::PRIVATE_KEY] {
        let handles = s
            .find_objects(&[Attribute::Class(class)])
            .map_err(|e| Error::ck("searching keys", e))?;
        for h in handles {
            let o = select::describe(s, h)?;
            if super::export::spki(s, &o).is_ok_and(|k| k == spki) {
                return Ok(Some(o.id));
            }
        }
    }
    Ok(None)
}

/// A DER INTEGER from big-endian magnitude bytes (CKA_SERIAL_NUMBER).
fn der_integer(mag: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(mag.len() + 1);
    if mag.first().is_none_or(|b| *b & 0x80 != 0) {
        body.push(0);
    }
    body.extend_from_slice(mag);
    let mut out = vec![0x02];
    if body.len() < 0x80 {
        out.push(body.len() as u8);
    } else {
        let len = body.len().to_be_bytes();
        let bytes: Vec<u8> = len.into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend(body);
    out
}

fn data_step(s: &Session, t: &Token, d: &Data) -> Result<Item> {
    let value = match &d.value {
        DataValue::Inline(v) => v.as_bytes().to_vec(),
        DataValue::File(p) => {
            std::fs::read(p).map_err(|e| Error::io("reading the data file", p, e))?
        }
    };
    let mut item = Item {
        kind: "data",
        token: t.label.clone(),
        name: d.label.clone(),
        status: Status::Unchanged,
        objects: Vec::new(),
        path: None,
    };
    let found = s
        .find_objects(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Label(d.label.as_bytes().to_vec()),
            Attribute::Application(d.application.as_bytes().to_vec()),
        ])
        .map_err(|e| Error::ck("searching data objects", e))?;
    if let Some(h) = found.first() {
        let o = select::describe(s, *h)?;
        if value_of(s, *h)?.as_deref() != Some(value.as_slice()) {
            return Err(Error::new(
                Exit::Usage,
                format!(
                    "data object {:?} ({}) exists with another value; delete it to replace it",
                    d.label, d.application
                ),
            )
            .hint(format!("keyward delete '{}'", uri_of(&o, t))));
        }
        item.objects.push(uri_of(&o, t).to_string());
        return Ok(item);
    }
    let tmpl = vec![
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(true),
        Attribute::Private(d.private),
        Attribute::Label(d.label.as_bytes().to_vec()),
        Attribute::Application(d.application.as_bytes().to_vec()),
        Attribute::Value(value),
    ];
    let h = s
        .create_object(&tmpl)
        .map_err(|e| Error::ck(&format!("creating data object {:?}", d.label), e))?;
    item.objects
        .push(uri_of(&select::describe(s, h)?, t).to_string());
    item.status = Status::Created;
    Ok(item)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_numbers_are_der_integers() {
        assert_eq!(der_integer(&[0x01]), vec![0x02, 0x01, 0x01]);
        assert_eq!(der_integer(&[0x80]), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(der_integer(&[]), vec![0x02, 0x01, 0x00]);
    }
}
