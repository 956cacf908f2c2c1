//! The provisioning manifest (`keyward provision`): its TOML form, strict about unknown
//! fields, and its checks and `${var}` substitution before anything touches a token.
//!
//! Relative input paths (PIN files, certificates, data files) are taken from the manifest's
//! directory, so a manifest and the files it names travel together; outputs (CSRs) are
//! relative to the current directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use serde::Deserialize;

use crate::cmd::key::{Spec, Usage, parse_id};
use crate::error::{Error, Result};

/// The whole manifest.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Default values of `${name}` variables (`--vars` overrides them).
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    #[serde(default, rename = "token")]
    pub tokens: Vec<TokenEntry>,
}

/// A token: created if absent, its PINs checked if present.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    pub label: String,
    /// `file:PATH` or `env:NAME`; never the PIN itself.
    pub so_pin_source: String,
    pub user_pin_source: String,
    #[serde(default, rename = "key")]
    pub keys: Vec<KeyEntry>,
    #[serde(default, rename = "csr")]
    pub csrs: Vec<CsrEntry>,
    #[serde(default, rename = "certificate")]
    pub certificates: Vec<CertEntry>,
    #[serde(default, rename = "ca")]
    pub cas: Vec<CertEntry>,
    #[serde(default, rename = "data")]
    pub data: Vec<DataEntry>,
}

/// A key generated inside the token.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// As `keyward key generate` takes it: ec:p256, rsa:3072, ed25519, aes:256, ...
    #[serde(rename = "type")]
    pub key_type: String,
    pub label: String,
    /// CKA_ID in hex.
    pub id: String,
    /// sign, encrypt, wrap, derive (default: the type's usual one).
    #[serde(default)]
    pub usage: Vec<String>,
    #[serde(default)]
    pub extractable: bool,
}

/// A certificate signing request written out for a key of the token.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsrEntry {
    /// The label of a key entry of the same token.
    pub key: String,
    /// e.g. `CN=${serial},O=Example Devices`.
    pub subject: String,
    /// e.g. `DNS:${serial}.devices.example.com`, `IP:10.0.0.1`, `URI:urn:dev:${serial}`.
    #[serde(default)]
    pub san: Vec<String>,
    pub output: String,
}

/// A certificate to import (`[[token.certificate]]` for a key's own, `[[token.ca]]` for
/// authorities and other public certificates).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertEntry {
    pub file: String,
    /// The label of the key entry this certificate belongs to (its CKA_ID links them).
    #[serde(default)]
    pub key: Option<String>,
    /// CKA_LABEL (default: the key's label, else the certificate's common name).
    #[serde(default)]
    pub label: Option<String>,
    /// CKA_ID in hex (default: the linked key's id, else SHA-1 of the public key).
    #[serde(default)]
    pub id: Option<String>,
}

/// A data object (CKO_DATA) from a file or an inline value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataEntry {
    pub label: String,
    #[serde(default = "default_application")]
    pub application: String,
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
    /// Readable only after login (default true).
    #[serde(default = "yes")]
    pub private: bool,
}

fn default_application() -> String {
    "keyward".to_owned()
}

fn yes() -> bool {
    true
}

/// Where a PIN comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinSource {
    File(PathBuf),
    Env(String),
}

/// A key to generate, checked.
#[derive(Debug, Clone)]
pub struct Key {
    pub spec: Spec,
    pub spec_text: String,
    pub label: String,
    pub id: Vec<u8>,
    pub usage: Vec<Usage>,
    pub extractable: bool,
}

/// A CSR to write, its variables substituted.
#[derive(Debug, Clone)]
pub struct Csr {
    pub key: String,
    pub subject: String,
    pub sans: Vec<String>,
    pub output: PathBuf,
}

/// A certificate to import, its path resolved.
#[derive(Debug, Clone)]
pub struct Cert {
    pub file: PathBuf,
    pub key: Option<String>,
    pub label: Option<String>,
    pub id: Option<Vec<u8>>,
    pub authority: bool,
}

/// Where a data object's value comes from.
#[derive(Debug, Clone)]
pub enum DataValue {
    File(PathBuf),
    Inline(String),
}

#[derive(Debug, Clone)]
pub struct Data {
    pub label: String,
    pub application: String,
    pub value: DataValue,
    pub private: bool,
}

/// One token's plan, every field checked and substituted.
#[derive(Debug, Clone)]
pub struct Token {
    pub label: String,
    pub so_pin: PinSource,
    pub user_pin: PinSource,
    pub keys: Vec<Key>,
    pub csrs: Vec<Csr>,
    pub certs: Vec<Cert>,
    pub data: Vec<Data>,
}

/// Read, parse and check a manifest. `cli_vars` (from `--vars`) override the manifest's
/// `[vars]`, which override the environment.
pub fn load(path: &Path, cli_vars: &BTreeMap<String, String>) -> Result<Vec<Token>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
    let m: Manifest = toml::from_str(&text)
        .map_err(|e| Error::usage(format!("manifest {}: {e}", path.display())))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let vars = Vars {
        cli: cli_vars,
        manifest: &m.vars,
    };
    plan(&m, base, &vars).map_err(|e| {
        let msg = format!("manifest {}: {}", path.display(), e.msg);
        Error { msg, ..e }
    })
}

/// `${name}` values, looked up in order.
pub struct Vars<'a> {
    pub cli: &'a BTreeMap<String, String>,
    pub manifest: &'a BTreeMap<String, String>,
}

impl Vars<'_> {
    fn get(&self, name: &str) -> Option<String> {
        self.cli
            .get(name)
            .or_else(|| self.manifest.get(name))
            .cloned()
            .or_else(|| std::env::var(name).ok())
    }

    /// Replace each `${name}`; `$$` is a literal `$`. An unknown or unterminated variable
    /// is an error naming it and `what` it appeared in.
    pub fn subst(&self, s: &str, what: &str) -> Result<String> {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            if let Some(r) = after.strip_prefix('$') {
                out.push('$');
                rest = r;
            } else if let Some(r) = after.strip_prefix('{') {
                let end = r
                    .find('}')
                    .ok_or_else(|| Error::usage(format!("{what}: unterminated ${{ in {s:?}")))?;
                let name = &r[..end];
                let v = self.get(name).ok_or_else(|| {
                    Error::usage(format!(
                        "{what}: no value for ${{{name}}} (give it with --vars {name}=VALUE, in [vars], or in the environment)"
                    ))
                })?;
                out.push_str(&v);
                rest = &r[end + 1..];
            } else {
                return Err(Error::usage(format!(
                    "{what}: a lone $ in {s:?} (write ${{name}}, or $$ for a dollar sign)"
                )));
            }
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// Parse `KEY=VALUE` from `--vars`.
pub fn parse_var(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if valid_name(k) => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!(
            "{s:?} is not NAME=VALUE (NAME: letters, digits, _ and -)"
        )),
    }
}

fn valid_name(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn pin_source(s: &str, base: &Path, what: &str) -> Result<PinSource> {
    if let Some(p) = s.strip_prefix("file:") {
        if p.is_empty() {
            return Err(Error::usage(format!("{what}: file: needs a path")));
        }
        Ok(PinSource::File(resolve(base, p)))
    } else if let Some(v) = s.strip_prefix("env:") {
        if v.is_empty() {
            return Err(Error::usage(format!("{what}: env: needs a variable name")));
        }
        Ok(PinSource::Env(v.to_owned()))
    } else {
        Err(Error::usage(format!(
            "{what}: give file:PATH or env:NAME (PINs are never written in the manifest)"
        )))
    }
}

fn plan(m: &Manifest, base: &Path, vars: &Vars<'_>) -> Result<Vec<Token>> {
    if m.tokens.is_empty() {
        return Err(Error::usage("no [[token]]"));
    }
    for k in m.vars.keys() {
        if !valid_name(k) {
            return Err(Error::usage(format!(
                "[vars]: {k:?} is not a variable name"
            )));
        }
    }
    let mut out = Vec::with_capacity(m.tokens.len());
    let mut token_labels = Vec::new();
    for t in &m.tokens {
        let label = vars.subst(&t.label, "[[token]] label")?;
        if label.is_empty() || label.len() > 32 {
            return Err(Error::usage(format!(
                "token {label:?}: the label must be 1 to 32 bytes"
            )));
        }
        if token_labels.contains(&label) {
            return Err(Error::usage(format!("token {label:?} appears twice")));
        }
        token_labels.push(label.clone());
        let at = |what: &str| format!("token {label:?}: {what}");
        let so_pin = pin_source(
            &vars.subst(&t.so_pin_source, &at("so_pin_source"))?,
            base,
            &at("so_pin_source"),
        )?;
        let user_pin = pin_source(
            &vars.subst(&t.user_pin_source, &at("user_pin_source"))?,
            base,
            &at("user_pin_source"),
        )?;

        let mut keys: Vec<Key> = Vec::new();
        for k in &t.keys {
            let what = at(&format!("key {:?}", k.label));
            if k.label.is_empty() {
                return Err(Error::usage(at("a key needs a label")));
            }
            let spec: Spec = k
                .key_type
                .parse()
                .map_err(|e: Error| Error::usage(format!("{what}: {}", e.msg)))?;
            let id = parse_id(&k.id)
                .map_err(|_| Error::usage(format!("{what}: id {:?} is not hex", k.id)))?;
            if id.is_empty() {
                return Err(Error::usage(format!("{what}: the id is empty")));
            }
            let usage = if k.usage.is_empty() {
                spec.default_usage()
            } else {
                let mut u = Vec::new();
                for name in &k.usage {
                    u.push(Usage::from_str(name, true).map_err(|_| {
                        Error::usage(format!(
                            "{what}: unknown usage {name:?} (sign, encrypt, wrap, derive)"
                        ))
                    })?);
                }
                u
            };
            if let Some(bad) = usage.iter().find(|u| !spec.allowed_usage().contains(u)) {
                return Err(Error::usage(format!(
                    "{what}: {} keys cannot be used for {bad:?} (allowed: {:?})",
                    k.key_type,
                    spec.allowed_usage()
                )));
            }
            if keys.iter().any(|o| o.label == k.label) {
                return Err(Error::usage(format!("{what}: the label appears twice")));
            }
            if keys.iter().any(|o| o.id == id) {
                return Err(Error::usage(format!(
                    "{what}: id {} is already another key's",
                    k.id
                )));
            }
            keys.push(Key {
                spec,
                spec_text: k.key_type.clone(),
                label: k.label.clone(),
                id,
                usage,
                extractable: k.extractable,
            });
        }

        let key_named = |name: &str, what: &str| -> Result<&Key> {
            keys.iter()
                .find(|k| k.label == name)
                .ok_or_else(|| Error::usage(format!("{what}: no [[token.key]] labelled {name:?}")))
        };

        let mut csrs = Vec::new();
        for c in &t.csrs {
            let what = at(&format!("csr for {:?}", c.key));
            let key = key_named(&c.key, &what)?;
            if !key.spec.is_pair() {
                return Err(Error::usage(format!(
                    "{what}: a secret key cannot sign a CSR"
                )));
            }
            let subject = vars.subst(&c.subject, &format!("{what}: subject"))?;
            let mut sans = Vec::new();
            for s in &c.san {
                sans.push(vars.subst(s, &format!("{what}: san"))?);
            }
            let output = PathBuf::from(vars.subst(&c.output, &format!("{what}: output"))?);
            csrs.push(Csr {
                key: c.key.clone(),
                subject,
                sans,
                output,
            });
        }

        let mut certs = Vec::new();
        for (list, authority) in [(&t.certificates, false), (&t.cas, true)] {
            for c in list {
                let kind = if authority { "ca" } else { "certificate" };
                let what = at(&format!("{kind} {:?}", c.file));
                let file = resolve(base, &vars.subst(&c.file, &what)?);
                if let Some(k) = &c.key {
                    key_named(k, &what)?;
                }
                let id =
                    c.id.as_deref()
                        .map(|h| {
                            parse_id(h)
                                .map_err(|_| Error::usage(format!("{what}: id {h:?} is not hex")))
                        })
                        .transpose()?;
                let label = c
                    .label
                    .as_deref()
                    .map(|l| vars.subst(l, &what))
                    .transpose()?;
                certs.push(Cert {
                    file,
                    key: c.key.clone(),
                    label,
                    id,
                    authority,
                });
            }
        }

        let mut data = Vec::new();
        for d in &t.data {
            let what = at(&format!("data {:?}", d.label));
            let value = match (&d.file, &d.value) {
                (Some(f), None) => DataValue::File(resolve(base, &vars.subst(f, &what)?)),
                (None, Some(v)) => DataValue::Inline(vars.subst(v, &what)?),
                _ => {
                    return Err(Error::usage(format!(
                        "{what}: give exactly one of file or value"
                    )));
                }
            };
            if data
                .iter()
                .any(|o: &Data| o.label == d.label && o.application == d.application)
            {
                return Err(Error::usage(format!("{what}: appears twice")));
            }
            data.push(Data {
                label: d.label.clone(),
                application: d.application.clone(),
                value,
                private: d.private,
            });
        }

        out.push(Token {
            label,
            so_pin,
            user_pin,
            keys,
            csrs,
            certs,
            data,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(cli: &'a BTreeMap<String, String>, m: &'a BTreeMap<String, String>) -> Vars<'a> {
        Vars { cli, manifest: m }
    }

    #[test]
    fn variables_are_substituted_in_order() {
        let cli = BTreeMap::from([("serial".to_owned(), "SN1".to_owned())]);
        let m = BTreeMap::from([
            ("serial".to_owned(), "default".to_owned()),
            ("org".to_owned(), "Acme".to_owned()),
        ]);
        let v = vars(&cli, &m);
        assert_eq!(
            v.subst("CN=${serial},O=${org} $$5", "t").unwrap(),
            "CN=SN1,O=Acme $5"
        );
        let e = v.subst("CN=${nope_kw_test}", "subject").unwrap_err();
        assert!(e.msg.contains("${nope_kw_test}"), "{}", e.msg);
        assert!(v.subst("CN=${serial", "t").is_err());
        assert!(v.subst("CN=$serial", "t").is_err());
    }

    const GOOD: &str = r#"
[vars]
org = "Acme"

[[token]]
label = "device"
so_pin_source = "file:so.pin"
user_pin_source = "env:KEYWARD_PIN"

[[token.key]]
type = "ec:p256"
label = "identity"
id = "01"

[[token.csr]]
key = "identity"
subject = "CN=${serial},O=${org}"
san = ["DNS:${serial}.example.com"]
output = "${serial}.csr"

[[token.certificate]]
file = "identity.pem"
key = "identity"

[[token.ca]]
file = "/etc/ca.pem"

[[token.data]]
label = "serial"
value = "${serial}"
"#;

    fn parse(text: &str, cli: &BTreeMap<String, String>) -> Result<Vec<Token>> {
        let m: Manifest = toml::from_str(text).map_err(|e| Error::usage(e.to_string()))?;
        let v = Vars {
            cli,
            manifest: &m.vars,
        };
        plan(&m, Path::new("/m"), &v)
    }

    #[test]
    fn a_manifest_is_planned() {
        let cli = BTreeMap::from([("serial".to_owned(), "SN7".to_owned())]);
        let t = parse(GOOD, &cli).unwrap();
        assert_eq!(t.len(), 1);
        let t = &t[0];
        assert_eq!(t.so_pin, PinSource::File(PathBuf::from("/m/so.pin")));
        assert_eq!(t.user_pin, PinSource::Env("KEYWARD_PIN".to_owned()));
        assert_eq!(t.keys[0].id, vec![1]);
        assert_eq!(t.keys[0].usage, vec![Usage::Sign]);
        assert_eq!(t.csrs[0].subject, "CN=SN7,O=Acme");
        assert_eq!(t.csrs[0].sans, vec!["DNS:SN7.example.com".to_owned()]);
        assert_eq!(t.csrs[0].output, PathBuf::from("SN7.csr"));
        assert_eq!(t.certs[0].file, PathBuf::from("/m/identity.pem"));
        assert!(!t.certs[0].authority);
        assert_eq!(t.certs[1].file, PathBuf::from("/etc/ca.pem"));
        assert!(t.certs[1].authority);
        assert!(matches!(&t.data[0].value, DataValue::Inline(v) if v == "SN7"));
        assert!(t.data[0].private);
    }

    #[test]
    fn bad_manifests_are_refused_with_the_reason() {
        let cli = BTreeMap::from([("serial".to_owned(), "SN7".to_owned())]);
        let cases = [
            (
                GOOD.replace("id = \"01\"", "id = \"01\"\npin = \"1234\""),
                "pin",
            ),
            (GOOD.replace("file:so.pin", "1234"), "file:PATH or env:NAME"),
            (GOOD.replace("ec:p256", "ec:p999"), "curve"),
            (GOOD.replace("id = \"01\"", "id = \"zz\""), "not hex"),
            (
                GOOD.replace("key = \"identity\"\nsubject", "key = \"nokey\"\nsubject"),
                "nokey",
            ),
            (
                GOOD.replace("id = \"01\"", "id = \"01\"\nusage = [\"encrypt\"]"),
                "cannot be used",
            ),
            (GOOD.replace("value = \"${serial}\"", ""), "exactly one"),
        ];
        for (text, want) in cases {
            let e = parse(&text, &cli).unwrap_err();
            assert!(e.msg.contains(want), "{want:?} not in {:?}", e.msg);
        }
        let e = parse(GOOD, &BTreeMap::new()).unwrap_err();
        assert!(e.msg.contains("${serial}"), "{}", e.msg);
    }

    #[test]
    fn vars_arguments_are_checked() {
        assert_eq!(
            parse_var("serial=A=B").unwrap(),
            ("serial".to_owned(), "A=B".to_owned())
        );
        assert!(parse_var("=x").is_err());
        assert!(parse_var("noequals").is_err());
    }
}
