//! `keyward derive URI --peer PUB.pem`: ECDH / X25519 / X448 key agreement inside the token;
//! the shared secret becomes a new secret key object that stays in the token, unless
//! `--export` asks for a non-sensitive, extractable one whose value is written out.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use openssl::bn::BigNumContext;
use openssl::ec::PointConversionForm;
use openssl::pkey::{Id, PKey, Public};
use zeroize::Zeroizing;

use super::key::{parse_id, print_made, random_id};
use super::sign::{self, KeyKind};
use crate::error::{Error, Result};
use crate::select::{self, App, Global};

pub const DERIVE_HELP: &str = "\
The agreed secret (CKD_NULL: the x coordinate, or the X25519/X448 output) becomes a secret key
object: generic (default; usable for HMAC and further derivation) or aes (16, 24 or 32 bytes
taken from the left of the secret). It is sensitive and stays in the token; the command
prints its URI. With --export the key is made in the session only, non-sensitive and
extractable, its value is written to the output, and it is destroyed.

Examples:
  keyward derive 'pkcs11:token=device;object=ecdh' --peer server.pem --label session-1
  keyward derive 'pkcs11:token=device;object=x25519' --peer peer.pem --label k --key-type aes --length 32
  keyward derive 'pkcs11:token=device;object=ecdh' --peer server.pem --export -o shared.bin";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DerivedType {
    Generic,
    Aes,
}

#[derive(Debug, Args)]
pub struct DeriveArgs {
    /// Our private key (EC with derive usage, X25519 or X448)
    pub uri: String,
    /// The peer's public key: SubjectPublicKeyInfo PEM or DER
    #[arg(long, value_name = "FILE")]
    pub peer: PathBuf,
    /// The new key's label (CKA_LABEL); required unless --export
    #[arg(long)]
    pub label: Option<String>,
    /// The new key's id in hex (CKA_ID; default: 8 random bytes)
    #[arg(long, value_name = "HEX")]
    pub id: Option<String>,
    /// The new key's type
    #[arg(long, value_enum, default_value = "generic")]
    pub key_type: DerivedType,
    /// The new key's length in bytes (default: the whole secret; 32 for aes)
    #[arg(long, value_name = "BYTES")]
    pub length: Option<u64>,
    /// Write the secret out instead of keeping it (the key is made non-sensitive and
    /// extractable, in the session only)
    #[arg(long)]
    pub export: bool,
    /// With --export: write to FILE (default: stdout)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// The peer key's public value as PKCS#11 wants it: the uncompressed EC point, or the raw
/// X25519/X448 key.
fn peer_public(der_or_pem: &[u8]) -> Result<(PKey<Public>, Vec<u8>)> {
    let key = PKey::public_key_from_pem(der_or_pem)
        .or_else(|_| PKey::public_key_from_der(der_or_pem))
        .map_err(|e| {
            Error::usage(format!(
                "--peer is not a public key (SubjectPublicKeyInfo PEM or DER): {e}"
            ))
        })?;
    let raw = match key.id() {
        Id::EC => {
            let ec = key
                .ec_key()
                .map_err(|e| Error::usage(format!("--peer: {e}")))?;
            let mut ctx = BigNumContext::new().map_err(|e| Error::pkcs11(format!("{e}")))?;
            ec.public_key()
                .to_bytes(ec.group(), PointConversionForm::UNCOMPRESSED, &mut ctx)
                .map_err(|e| Error::usage(format!("--peer: {e}")))?
        }
        Id::X25519 | Id::X448 => key
            .raw_public_key()
            .map_err(|e| Error::usage(format!("--peer: {e}")))?,
        _ => {
            return Err(Error::usage(
                "--peer must be an EC, X25519 or X448 public key",
            ));
        }
    };
    Ok((key, raw))
}

pub fn run(g: &Global, a: DeriveArgs) -> Result<()> {
    if !a.export && a.label.is_none() {
        return Err(Error::usage(
            "give the new key a label with --label (or use --export)",
        ));
    }
    if a.output.is_some() && !a.export {
        return Err(Error::usage(
            "-o applies with --export only: a kept key stays in the token",
        ));
    }
    let peer_bytes = std::fs::read(&a.peer).map_err(|e| Error::io("reading", &a.peer, e))?;
    let (peer, public_data) = peer_public(&peer_bytes)?;
    let uri = select::parse_uri(&a.uri)?;
    let app = App::open(g, Some(&uri))?;
    let (t, s) = app.user_session(Some(&uri), true, true)?;
    let key = sign::find_key(
        &s,
        &t,
        &uri,
        &[ObjectClass::PRIVATE_KEY],
        true,
        "private key",
    )?;
    let secret_len = match (sign::key_kind(&s, key.handle)?, peer.id()) {
        (KeyKind::Ec { field: Some(f), .. }, Id::EC) => f as u64,
        (KeyKind::Montgomery, Id::X25519 | Id::X448) => public_data.len() as u64,
        (kind, _) => {
            return Err(Error::usage(format!(
                "the key ({kind:?}) and --peer ({:?}) cannot agree on a secret: both must be EC on the same curve, or X25519/X448",
                peer.id()
            )));
        }
    };
    let (kt, len) = match a.key_type {
        DerivedType::Generic => (KeyType::GENERIC_SECRET, a.length.unwrap_or(secret_len)),
        DerivedType::Aes => {
            let l = a.length.unwrap_or(32);
            if ![16, 24, 32].contains(&l) {
                return Err(Error::usage("--length for aes must be 16, 24 or 32"));
            }
            (KeyType::AES, l)
        }
    };
    if len == 0 || len > secret_len {
        return Err(Error::usage(format!(
            "--length must be 1 to {secret_len} bytes (the agreed secret's length)"
        )));
    }
    let id = match &a.id {
        Some(h) => parse_id(h)?,
        None => random_id()?,
    };
    let mut tmpl = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(kt),
        Attribute::ValueLen(len.into()),
        Attribute::Token(!a.export),
        Attribute::Private(true),
        Attribute::Sensitive(!a.export),
        Attribute::Extractable(a.export),
        Attribute::Id(id),
    ];
    if let Some(l) = &a.label {
        tmpl.push(Attribute::Label(l.as_bytes().to_vec()));
    }
    if kt == KeyType::AES {
        tmpl.extend([Attribute::Encrypt(true), Attribute::Decrypt(true)]);
    } else {
        tmpl.extend([
            Attribute::Sign(true),
            Attribute::Verify(true),
            Attribute::Derive(true),
        ]);
    }
    let params = Ecdh1DeriveParams::new(EcKdf::null(), &public_data);
    let h = s
        .derive_key(&Mechanism::Ecdh1Derive(params), key.handle, &tmpl)
        .map_err(|e| Error::ck("deriving the shared key (CKM_ECDH1_DERIVE)", e))?;
    if !a.export {
        return print_made(&s, &t, &[h]);
    }
    let value = s
        .get_attributes(h, &[AttributeType::Value])
        .map_err(|e| Error::ck("reading the derived key", e));
    // The session key is not needed once read (or once reading failed).
    let _ = s.destroy_object(h);
    let value = Zeroizing::new(
        value?
            .into_iter()
            .find_map(|a| match a {
                Attribute::Value(v) => Some(v),
                _ => None,
            })
            .ok_or_else(|| Error::pkcs11("the token did not return the derived value"))?,
    );
    crate::io::write_output(a.output.as_deref(), &value)
}
