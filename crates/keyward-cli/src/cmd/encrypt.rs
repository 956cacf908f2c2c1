//! `keyward encrypt URI`: encryption inside the token (AES-GCM for AES keys, ChaCha20-Poly1305
//! for ChaCha20 keys, RSA-OAEP for RSA public keys) and the formats `decrypt` reads back.

use std::path::PathBuf;

use clap::Args;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::ObjectClass;
use cryptoki::session::Session;
use cryptoki_sys::{CK_KEY_TYPE, CKK_AES, CKK_CHACHA20, CKK_RSA};
use keyward_uri::Pkcs11Uri;

use super::sign;
use crate::error::{Error, Result};
use crate::select::{self, App, Global, Obj, Token};

pub const ENCRYPT_HELP: &str = "\
Mechanisms (--mechanism), default by key type:
  aes-gcm (AES keys): output = 12-byte random IV || ciphertext || 16-byte tag; --aad FILE adds
    authenticated data, which decrypt must be given too.
  rsa-oaep-sha256 (RSA keys; also rsa-oaep-sha1, rsa-oaep-sha384, rsa-oaep-sha512): OAEP with
    MGF1 over the same hash and an empty label; output = the bare ciphertext, as
    `openssl pkeyutl -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256` makes it.
  chacha20-poly1305 (ChaCha20 keys): output = 12-byte random nonce || ciphertext || 16-byte
    tag (RFC 8439); --aad as for aes-gcm.

Examples:
  keyward encrypt 'pkcs11:token=device;object=storage' -i secrets.json -o secrets.enc
  keyward encrypt 'pkcs11:token=device;object=backup;type=public' -i session.key -o session.key.enc";

#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// The key: an AES or ChaCha20 secret key, or an RSA public key
    pub uri: String,
    /// Read the plaintext from FILE (default: stdin)
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Write the result to FILE (default: stdout)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The mechanism (default: by key type, see below)
    #[arg(long, value_name = "NAME")]
    pub mechanism: Option<String>,
    /// Additional authenticated data for AES-GCM or ChaCha20-Poly1305, read from FILE
    #[arg(long, value_name = "FILE")]
    pub aad: Option<PathBuf>,
    /// Log in first (secret keys need it; it is done anyway when the URI finds no key
    /// without it)
    #[arg(long)]
    pub login: bool,
}

/// An encryption scheme and its output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    AesGcm,
    ChaCha20Poly1305,
    RsaOaep(MechanismType),
}

impl Cipher {
    /// Whether the scheme takes additional authenticated data.
    pub fn is_aead(self) -> bool {
        matches!(self, Cipher::AesGcm | Cipher::ChaCha20Poly1305)
    }
}

pub const GCM_IV_LEN: usize = 12;
pub const GCM_TAG_LEN: usize = 16;

impl Cipher {
    pub fn parse(name: &str) -> Result<Cipher> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "aes-gcm" => Cipher::AesGcm,
            "rsa-oaep" | "rsa-oaep-sha256" => Cipher::RsaOaep(MechanismType::SHA256),
            "rsa-oaep-sha1" => Cipher::RsaOaep(MechanismType::SHA1),
            "rsa-oaep-sha384" => Cipher::RsaOaep(MechanismType::SHA384),
            "rsa-oaep-sha512" => Cipher::RsaOaep(MechanismType::SHA512),
            "chacha20-poly1305" => Cipher::ChaCha20Poly1305,
            _ => {
                return Err(Error::usage(format!(
                    "unknown mechanism {name:?}: use aes-gcm, chacha20-poly1305 or rsa-oaep-sha256 (sha1, sha384, sha512)"
                )));
            }
        })
    }

    /// The named scheme checked against the key type (CKA_KEY_TYPE as a number: cryptoki
    /// cannot name ChaCha20), or the key type's default.
    pub fn choose(name: Option<&str>, kt: Option<CK_KEY_TYPE>) -> Result<Cipher> {
        let c = match (name, kt) {
            (Some(n), _) => Cipher::parse(n)?,
            (None, Some(CKK_AES)) => Cipher::AesGcm,
            (None, Some(CKK_CHACHA20)) => Cipher::ChaCha20Poly1305,
            (None, Some(CKK_RSA)) => Cipher::RsaOaep(MechanismType::SHA256),
            (None, _) => {
                return Err(Error::usage(
                    "this key cannot encrypt here: use an AES key (AES-GCM), a ChaCha20 key (ChaCha20-Poly1305) or an RSA key (RSA-OAEP)",
                ));
            }
        };
        let fits = match c {
            Cipher::AesGcm => kt == Some(CKK_AES),
            Cipher::ChaCha20Poly1305 => kt == Some(CKK_CHACHA20),
            Cipher::RsaOaep(_) => kt == Some(CKK_RSA),
        };
        if !fits {
            return Err(Error::usage(format!("{c:?} does not fit this key")));
        }
        Ok(c)
    }
}

fn mgf(h: MechanismType) -> PkcsMgfType {
    match h {
        MechanismType::SHA1 => PkcsMgfType::MGF1_SHA1,
        MechanismType::SHA384 => PkcsMgfType::MGF1_SHA384,
        MechanismType::SHA512 => PkcsMgfType::MGF1_SHA512,
        _ => PkcsMgfType::MGF1_SHA256,
    }
}

pub fn oaep(h: MechanismType) -> PkcsOaepParams<'static> {
    PkcsOaepParams::new(h, mgf(h), PkcsOaepSource::empty())
}

pub fn gcm<'a>(iv: &'a mut [u8], aad: &'a [u8]) -> Result<GcmParams<'a>> {
    GcmParams::new(iv, aad, ((GCM_TAG_LEN * 8) as u64).into())
        .map_err(|e| Error::usage(format!("AES-GCM parameters: {e}")))
}

/// Find the key for encrypt or decrypt, logging in when asked, when the URI carries a PIN,
/// or when no key of `classes` is visible without it.
pub fn open_key(
    g: &Global,
    uri_text: &str,
    classes: &[ObjectClass],
    login: bool,
    what: &str,
) -> Result<(Token, Session, Obj)> {
    let uri: Pkcs11Uri = select::parse_uri(uri_text)?;
    let app = App::open(g, Some(&uri))?;
    let mut login = login || uri.pin_value().is_some() || uri.pin_source().is_some();
    let (t, mut s) = app.user_session(Some(&uri), false, login)?;
    if !login
        && !select::objects(&s, Some(&uri))?
            .iter()
            .any(|o| classes.contains(&o.class))
    {
        login = true;
        s = app.user_session(Some(&uri), false, true)?.1;
    }
    let key = sign::find_key(&s, &t, &uri, classes, login, what)?;
    Ok((t, s, key))
}

fn read_aad(p: Option<&std::path::Path>) -> Result<Vec<u8>> {
    match p {
        Some(p) => std::fs::read(p).map_err(|e| Error::io("reading", p, e)),
        None => Ok(Vec::new()),
    }
}

pub fn run(g: &Global, a: EncryptArgs) -> Result<()> {
    let (_t, s, key) = open_key(
        g,
        &a.uri,
        &[ObjectClass::PUBLIC_KEY, ObjectClass::SECRET_KEY],
        a.login,
        "public or secret key",
    )?;
    let cipher = Cipher::choose(a.mechanism.as_deref(), crate::raw::key_type(&s, key.handle))?;
    let aad = read_aad(a.aad.as_deref())?;
    if !aad.is_empty() && !cipher.is_aead() {
        return Err(Error::usage(
            "--aad applies to AES-GCM and ChaCha20-Poly1305 only",
        ));
    }
    let data = crate::io::read_input(a.input.as_deref())?;
    let out = match cipher {
        Cipher::AesGcm => {
            let mut iv = [0u8; GCM_IV_LEN];
            openssl::rand::rand_bytes(&mut iv)
                .map_err(|e| Error::pkcs11(format!("making a random IV: {e}")))?;
            let mut iv_param = iv;
            let params = gcm(&mut iv_param, &aad)?;
            let ct = s
                .encrypt(&Mechanism::AesGcm(params), key.handle, &data)
                .map_err(|e| Error::ck("encrypting with AES-GCM", e))?;
            let mut out = iv.to_vec();
            out.extend(ct);
            out
        }
        Cipher::ChaCha20Poly1305 => {
            let mut nonce = [0u8; GCM_IV_LEN];
            openssl::rand::rand_bytes(&mut nonce)
                .map_err(|e| Error::pkcs11(format!("making a random nonce: {e}")))?;
            let ct = crate::raw::chacha20_poly1305(&s, key.handle, &nonce, &aad, &data, true)?;
            let mut out = nonce.to_vec();
            out.extend(ct);
            out
        }
        Cipher::RsaOaep(h) => s
            .encrypt(&Mechanism::RsaPkcsOaep(oaep(h)), key.handle, &data)
            .map_err(|e| Error::ck("encrypting with RSA-OAEP", e))?,
    };
    crate::io::write_output(a.output.as_deref(), &out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_refusals() {
        assert_eq!(Cipher::choose(None, Some(CKK_AES)).unwrap(), Cipher::AesGcm);
        assert_eq!(
            Cipher::choose(None, Some(CKK_CHACHA20)).unwrap(),
            Cipher::ChaCha20Poly1305
        );
        assert_eq!(
            Cipher::choose(None, Some(CKK_RSA)).unwrap(),
            Cipher::RsaOaep(MechanismType::SHA256)
        );
        assert!(Cipher::choose(Some("aes-gcm"), Some(CKK_RSA)).is_err());
        assert!(Cipher::choose(Some("chacha20-poly1305"), Some(CKK_AES)).is_err());
        assert!(Cipher::choose(None, Some(cryptoki_sys::CKK_EC)).is_err());
        assert!(Cipher::choose(None, None).is_err());
    }
}
