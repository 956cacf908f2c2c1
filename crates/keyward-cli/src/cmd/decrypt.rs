//! `keyward decrypt URI`: decryption inside the token of what `keyward encrypt` (or openssl,
//! for RSA-OAEP) wrote; the plaintext goes only to the output.

use std::path::PathBuf;

use clap::Args;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::ObjectClass;
use zeroize::Zeroizing;

use super::encrypt::{self, Cipher, GCM_IV_LEN, GCM_TAG_LEN};
use crate::error::{Error, Result};
use crate::select::Global;

pub const DECRYPT_HELP: &str = "\
Mechanisms and formats as for `keyward encrypt` (see its help): aes-gcm reads
IV (12 bytes) || ciphertext || tag (16 bytes) and fails if anything was changed,
chacha20-poly1305 the same layout with its 12-byte nonce;
rsa-oaep-sha256 reads the bare ciphertext.

Examples:
  keyward decrypt 'pkcs11:token=device;object=storage' -i secrets.enc -o secrets.json
  openssl pkeyutl -encrypt -pubin -inkey backup.pem -pkeyopt rsa_padding_mode:oaep \\
      -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 -in k -out k.enc
  keyward decrypt 'pkcs11:token=device;object=backup' -i k.enc -o k";

#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// The key: an AES or ChaCha20 secret key, or an RSA private key
    pub uri: String,
    /// Read the ciphertext from FILE (default: stdin)
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Write the plaintext to FILE (default: stdout)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The mechanism (default: by key type)
    #[arg(long, value_name = "NAME")]
    pub mechanism: Option<String>,
    /// Additional authenticated data given to encrypt (AES-GCM, ChaCha20-Poly1305), read from
    /// FILE
    #[arg(long, value_name = "FILE")]
    pub aad: Option<PathBuf>,
}

pub fn run(g: &Global, a: DecryptArgs) -> Result<()> {
    let (_t, s, key) = encrypt::open_key(
        g,
        &a.uri,
        &[ObjectClass::PRIVATE_KEY, ObjectClass::SECRET_KEY],
        true,
        "private or secret key",
    )?;
    let cipher = Cipher::choose(a.mechanism.as_deref(), crate::raw::key_type(&s, key.handle))?;
    let aad = match a.aad.as_deref() {
        Some(p) => std::fs::read(p).map_err(|e| Error::io("reading", p, e))?,
        None => Vec::new(),
    };
    if !aad.is_empty() && !cipher.is_aead() {
        return Err(Error::usage(
            "--aad applies to AES-GCM and ChaCha20-Poly1305 only",
        ));
    }
    let data = crate::io::read_input(a.input.as_deref())?;
    let plain = Zeroizing::new(match cipher {
        Cipher::AesGcm => {
            if data.len() < GCM_IV_LEN + GCM_TAG_LEN {
                return Err(Error::usage(format!(
                    "the input is {} bytes: too short for IV (12) || ciphertext || tag (16)",
                    data.len()
                )));
            }
            let (iv, body) = data.split_at(GCM_IV_LEN);
            let mut iv = iv.to_vec();
            let params = encrypt::gcm(&mut iv, &aad)?;
            s.decrypt(&Mechanism::AesGcm(params), key.handle, body)
                .map_err(|e| {
                    Error::ck("decrypting with AES-GCM", e).hint(
                        "a wrong key, a changed ciphertext or different --aad all fail the tag check",
                    )
                })?
        }
        Cipher::ChaCha20Poly1305 => {
            if data.len() < GCM_IV_LEN + GCM_TAG_LEN {
                return Err(Error::usage(format!(
                    "the input is {} bytes: too short for nonce (12) || ciphertext || tag (16)",
                    data.len()
                )));
            }
            let (nonce, body) = data.split_at(GCM_IV_LEN);
            let mut n = [0u8; GCM_IV_LEN];
            n.copy_from_slice(nonce);
            crate::raw::chacha20_poly1305(&s, key.handle, &n, &aad, body, false).map_err(|e| {
                e.hint(
                    "a wrong key, a changed ciphertext or different --aad all fail the tag check",
                )
            })?
        }
        Cipher::RsaOaep(h) => s
            .decrypt(&Mechanism::RsaPkcsOaep(encrypt::oaep(h)), key.handle, &data)
            .map_err(|e| Error::ck("decrypting with RSA-OAEP", e))?,
    });
    crate::io::write_output(a.output.as_deref(), &plain)
}
