//! `keyward key generate`: keys made inside the token (C_GenerateKeyPair, C_GenerateKey),
//! private and secret parts sensitive and non-extractable unless asked otherwise.

use clap::{Args, Subcommand, ValueEnum};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectHandle};
use cryptoki::session::Session;

use crate::error::{Error, Result};
use crate::select::{App, Global, Obj, Token, parse_uri};

#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// Generate a key pair or a secret key inside a token
    #[command(after_help = "\
Key types: rsa:2048 rsa:3072 rsa:4096, ec:p256 ec:p384 ec:p521 ec:secp256k1, ed25519, ed448,
x25519, x448, aes:128 aes:192 aes:256, chacha20 (256 bits, for ChaCha20-Poly1305),
generic:BITS (HMAC and derivation secrets).

Examples:
  keyward key generate ec:p256 'pkcs11:token=device;object=identity;id=%01'
  keyward key generate rsa:3072 'pkcs11:token=device' --label backup --usage sign,encrypt
  keyward key generate ec:p384 'pkcs11:token=device;object=ecdh' --usage derive
  keyward key generate aes:256 'pkcs11:token=device;object=storage' --usage encrypt,wrap")]
    Generate(GenerateArgs),
}

/// What a key may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Usage {
    /// sign and verify (MAC for secret keys)
    Sign,
    /// encrypt and decrypt
    Encrypt,
    /// wrap and unwrap other keys
    Wrap,
    /// key derivation and agreement (ECDH, X25519, KDFs)
    Derive,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The key type, e.g. ec:p256, rsa:3072, ed25519, aes:256 (see below)
    #[arg(value_name = "TYPE")]
    pub spec: String,
    /// The token, optionally with the new key's object= label and id= (default: the only
    /// initialised token)
    pub uri: Option<String>,
    /// The label (CKA_LABEL); overrides the URI's object=
    #[arg(long)]
    pub label: Option<String>,
    /// The id in hex (CKA_ID); overrides the URI's id= (default: 8 random bytes)
    #[arg(long, value_name = "HEX")]
    pub id: Option<String>,
    /// Usages, comma-separated (default: sign for signature keys, derive for X25519/X448,
    /// encrypt for AES and ChaCha20)
    #[arg(long, value_delimiter = ',')]
    pub usage: Vec<Usage>,
    /// Let the private or secret key be wrapped out of the token (CKA_EXTRACTABLE); its
    /// value stays sensitive
    #[arg(long)]
    pub extractable: bool,
}

/// A key type the tool can generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spec {
    Rsa(u64),
    Ec(Curve),
    Ed25519,
    Ed448,
    X25519,
    X448,
    Aes(u64),
    ChaCha20,
    Generic(u64),
}

/// Named curves, with their DER-encoded OIDs (CKA_EC_PARAMS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
    P521,
    Secp256k1,
}

impl Curve {
    pub fn oid_der(self) -> &'static [u8] {
        match self {
            Curve::P256 => &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
            Curve::P384 => &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22],
            Curve::P521 => &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23],
            Curve::Secp256k1 => &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a],
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Curve::P256 => "p256",
            Curve::P384 => "p384",
            Curve::P521 => "p521",
            Curve::Secp256k1 => "secp256k1",
        }
    }
    pub fn nid(self) -> openssl::nid::Nid {
        use openssl::nid::Nid;
        match self {
            Curve::P256 => Nid::X9_62_PRIME256V1,
            Curve::P384 => Nid::SECP384R1,
            Curve::P521 => Nid::SECP521R1,
            Curve::Secp256k1 => Nid::SECP256K1,
        }
    }
    pub const ALL: [Curve; 4] = [Curve::P256, Curve::P384, Curve::P521, Curve::Secp256k1];
    pub fn from_oid_der(der: &[u8]) -> Option<Curve> {
        Self::ALL.into_iter().find(|c| c.oid_der() == der)
    }
    pub fn from_nid(nid: openssl::nid::Nid) -> Option<Curve> {
        Self::ALL.into_iter().find(|c| c.nid() == nid)
    }
}

/// DER OIDs of the Edwards and Montgomery curves (RFC 8410).
pub const OID_ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
pub const OID_ED448: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x71];
pub const OID_X25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x6e];
pub const OID_X448: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x6f];

impl std::str::FromStr for Spec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Spec> {
        let lower = s.to_ascii_lowercase();
        let (kind, arg) = match lower.split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (lower.as_str(), None),
        };
        let bits = |allowed: &[u64]| -> Result<u64> {
            let a = arg.ok_or_else(|| {
                Error::usage(format!("{s}: give the size, e.g. {kind}:{}", allowed[0]))
            })?;
            let n: u64 = a
                .parse()
                .map_err(|_| Error::usage(format!("{s}: {a:?} is not a size")))?;
            if allowed.contains(&n) {
                Ok(n)
            } else {
                Err(Error::usage(format!(
                    "{s}: the size must be one of {allowed:?}"
                )))
            }
        };
        let spec = match (kind, arg) {
            ("rsa", _) => Spec::Rsa(bits(&[2048, 3072, 4096])?),
            ("ec", Some("p256" | "p-256" | "prime256v1" | "secp256r1")) => Spec::Ec(Curve::P256),
            ("ec", Some("p384" | "p-384" | "secp384r1")) => Spec::Ec(Curve::P384),
            ("ec", Some("p521" | "p-521" | "secp521r1")) => Spec::Ec(Curve::P521),
            ("ec", Some("secp256k1")) => Spec::Ec(Curve::Secp256k1),
            ("ec", _) => {
                return Err(Error::usage(format!(
                    "{s}: the curve must be p256, p384, p521 or secp256k1"
                )));
            }
            ("ed25519", None) => Spec::Ed25519,
            ("ed448", None) => Spec::Ed448,
            ("x25519", None) => Spec::X25519,
            ("x448", None) => Spec::X448,
            ("aes", _) => Spec::Aes(bits(&[128, 192, 256])?),
            ("chacha20", None) => Spec::ChaCha20,
            ("generic", Some(a)) => {
                let n: u64 = a
                    .parse()
                    .map_err(|_| Error::usage(format!("{s}: {a:?} is not a size in bits")))?;
                if n == 0 || !n.is_multiple_of(8) || n > 8192 {
                    return Err(Error::usage(format!(
                        "{s}: the size must be a multiple of 8 bits, 8 to 8192"
                    )));
                }
                Spec::Generic(n)
            }
            _ => {
                return Err(Error::usage(format!(
                    "unknown key type {s:?}: use rsa:BITS, ec:CURVE, ed25519, ed448, x25519, x448, aes:BITS, chacha20 or generic:BITS"
                )));
            }
        };
        Ok(spec)
    }
}

impl Spec {
    pub fn is_pair(self) -> bool {
        !matches!(self, Spec::Aes(_) | Spec::ChaCha20 | Spec::Generic(_))
    }
    pub fn default_usage(self) -> Vec<Usage> {
        match self {
            Spec::X25519 | Spec::X448 => vec![Usage::Derive],
            Spec::Aes(_) | Spec::ChaCha20 => vec![Usage::Encrypt],
            _ => vec![Usage::Sign],
        }
    }
    pub fn allowed_usage(self) -> &'static [Usage] {
        match self {
            Spec::Rsa(_) => &[Usage::Sign, Usage::Encrypt, Usage::Wrap],
            Spec::Ec(_) => &[Usage::Sign, Usage::Derive],
            Spec::Ed25519 | Spec::Ed448 => &[Usage::Sign],
            Spec::X25519 | Spec::X448 => &[Usage::Derive],
            Spec::Aes(_) => &[Usage::Encrypt, Usage::Wrap, Usage::Sign, Usage::Derive],
            Spec::ChaCha20 => &[Usage::Encrypt, Usage::Wrap],
            Spec::Generic(_) => &[Usage::Sign, Usage::Derive],
        }
    }
}

/// Attributes for the private (or secret) and public halves from the usages.
pub fn usage_attrs(usage: &[Usage], secret: bool) -> (Vec<Attribute>, Vec<Attribute>) {
    let has = |u| usage.contains(&u);
    let (sign, enc, wrap, derive) = (
        has(Usage::Sign),
        has(Usage::Encrypt),
        has(Usage::Wrap),
        has(Usage::Derive),
    );
    let mut private = vec![
        Attribute::Sign(sign),
        Attribute::Decrypt(enc),
        Attribute::Unwrap(wrap),
        Attribute::Derive(derive),
    ];
    if secret {
        private.extend([
            Attribute::Verify(sign),
            Attribute::Encrypt(enc),
            Attribute::Wrap(wrap),
        ]);
    }
    let public = vec![
        Attribute::Verify(sign),
        Attribute::Encrypt(enc),
        Attribute::Wrap(wrap),
    ];
    (private, public)
}

/// Parse a hex id given on the command line.
pub fn parse_id(hex_id: &str) -> Result<Vec<u8>> {
    let clean: String = hex_id.chars().filter(|c| *c != ':').collect();
    hex::decode(&clean).map_err(|e| Error::usage(format!("--id {hex_id:?} is not hex: {e}")))
}

/// A fresh random id, for keys created without one.
pub fn random_id() -> Result<Vec<u8>> {
    let mut id = vec![0u8; 8];
    openssl::rand::rand_bytes(&mut id)
        .map_err(|e| Error::pkcs11(format!("making a random id: {e}")))?;
    Ok(id)
}

pub fn run(g: &Global, c: KeyCmd) -> Result<()> {
    match c {
        KeyCmd::Generate(a) => generate(g, a),
    }
}

fn generate(g: &Global, a: GenerateArgs) -> Result<()> {
    let spec: Spec = a.spec.parse()?;
    let usage = if a.usage.is_empty() {
        spec.default_usage()
    } else {
        a.usage.clone()
    };
    if let Some(bad) = usage.iter().find(|u| !spec.allowed_usage().contains(u)) {
        return Err(Error::usage(format!(
            "{} keys cannot be used for {bad:?} (allowed: {:?})",
            a.spec,
            spec.allowed_usage()
        )));
    }
    let uri = a.uri.as_deref().map(parse_uri).transpose()?;
    let label = a
        .label
        .clone()
        .or_else(|| uri.as_ref().and_then(|u| u.object()).map(str::to_owned))
        .ok_or_else(|| Error::usage("give the key a label: --label NAME or object= in the URI"))?;
    let id = match (&a.id, uri.as_ref().and_then(|u| u.id())) {
        (Some(h), _) => parse_id(h)?,
        (None, Some(id)) => id.to_vec(),
        (None, None) => random_id()?,
    };
    let app = App::open(g, uri.as_ref())?;
    let (t, s) = app.user_session(uri.as_ref(), true, true)?;
    let made = generate_in(&s, spec, &a.spec, &label, &id, &usage, a.extractable)?;
    print_made(&s, &t, &made)
}

/// Generate a key (pair) inside the session's token: the private or secret part first in
/// the result, sensitive, extractable only when asked.
pub fn generate_in(
    s: &Session,
    spec: Spec,
    spec_text: &str,
    label: &str,
    id: &[u8],
    usage: &[Usage],
    extractable: bool,
) -> Result<Vec<ObjectHandle>> {
    let common = vec![
        Attribute::Token(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ];
    let secret_common = [
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(extractable),
    ];
    let (priv_use, pub_use) = usage_attrs(usage, !spec.is_pair());
    let made: Vec<ObjectHandle> = if spec.is_pair() {
        let (mech, mut pubt) = match spec {
            Spec::Rsa(bits) => (
                Mechanism::RsaPkcsKeyPairGen,
                vec![
                    Attribute::ModulusBits(bits.into()),
                    Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
                ],
            ),
            Spec::Ec(c) => (
                Mechanism::EccKeyPairGen,
                vec![Attribute::EcParams(c.oid_der().to_vec())],
            ),
            Spec::Ed25519 => (
                Mechanism::EccEdwardsKeyPairGen,
                vec![Attribute::EcParams(OID_ED25519.to_vec())],
            ),
            Spec::Ed448 => (
                Mechanism::EccEdwardsKeyPairGen,
                vec![Attribute::EcParams(OID_ED448.to_vec())],
            ),
            Spec::X25519 => (
                Mechanism::EccMontgomeryKeyPairGen,
                vec![Attribute::EcParams(OID_X25519.to_vec())],
            ),
            Spec::X448 => (
                Mechanism::EccMontgomeryKeyPairGen,
                vec![Attribute::EcParams(OID_X448.to_vec())],
            ),
            _ => return Err(Error::usage("not a key pair type")),
        };
        pubt.extend(common.iter().cloned());
        pubt.push(Attribute::Private(false));
        pubt.extend(pub_use);
        let mut privt = common.clone();
        privt.extend(secret_common.iter().cloned());
        privt.extend(priv_use);
        let (pubh, privh) = s
            .generate_key_pair(&mech, &pubt, &privt)
            .map_err(|e| Error::ck(&format!("generating a {spec_text} key pair"), e))?;
        vec![privh, pubh]
    } else {
        let mut tmpl = common.clone();
        tmpl.extend(secret_common.iter().cloned());
        tmpl.extend(priv_use);
        let mech = match spec {
            Spec::Aes(bits) => {
                tmpl.push(Attribute::ValueLen((bits / 8).into()));
                Mechanism::AesKeyGen
            }
            Spec::Generic(bits) => {
                tmpl.push(Attribute::ValueLen((bits / 8).into()));
                tmpl.push(Attribute::KeyType(KeyType::GENERIC_SECRET));
                Mechanism::GenericSecretKeyGen
            }
            Spec::ChaCha20 => {
                // cryptoki cannot name CKM_CHACHA20_KEY_GEN; the key type and its 32 bytes
                // follow from the mechanism.
                let h = crate::raw::generate_key(
                    s,
                    cryptoki_sys::CKM_CHACHA20_KEY_GEN,
                    &tmpl,
                    &format!("generating a {spec_text} key"),
                )?;
                return Ok(vec![h]);
            }
            _ => return Err(Error::usage("not a secret key type")),
        };
        let h = s
            .generate_key(&mech, &tmpl)
            .map_err(|e| Error::ck(&format!("generating a {spec_text} key"), e))?;
        vec![h]
    };
    Ok(made)
}

/// Print the URI of each new object, one a line.
pub fn print_made(s: &Session, t: &Token, made: &[ObjectHandle]) -> Result<()> {
    let mut out = String::new();
    for h in made {
        let o: Obj = crate::select::describe(s, *h)?;
        out.push_str(&o.uri(t).to_string());
        out.push('\n');
    }
    crate::io::print(&out)
}
