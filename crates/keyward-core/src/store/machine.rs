//! Machine binding: a secret kept outside the token files (a systemd credential or a key file
//! only the daemon's user can read) that every key of a bound token also depends on, so that
//! a copied storage directory is useless elsewhere, even with the PINs.

use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use keyward_ossl::digest::DigestAlg;
use keyward_ossl::mac::MacKey;
use zeroize::Zeroizing;

use crate::error::{Code, Result};

/// Shortest machine secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 32;
/// Longest machine secret accepted, in bytes (a key, not a document).
pub const MAX_SECRET_LEN: usize = 4096;
/// The environment variable systemd sets for a service with `LoadCredential=` or
/// `LoadCredentialEncrypted=`.
pub const CREDENTIALS_ENV: &str = "CREDENTIALS_DIRECTORY";

/// HKDF info of the per-token machine key.
const TOKEN_KEY_INFO: &[u8] = b"keyward machine binding v1";
/// HKDF info of a machine-bound PIN key.
const BOUND_KEK_INFO: &[u8] = b"keyward machine-bound pin key v1";
/// HKDF info of the key of the identity wrap (login without a PIN, docs/daemon.md).
const IDENTITY_KEY_INFO: &[u8] = b"keyward identity login v1";

/// Where the machine secret comes from (configuration `machine_secret`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MachineSecretSource {
    /// `systemd:<name>`: the credential `<name>` in `$CREDENTIALS_DIRECTORY`, as systemd
    /// provides it for `LoadCredential=` and `LoadCredentialEncrypted=` (which systemd seals
    /// with the TPM2 when the device has one).
    Systemd(String),
    /// `file:<path>`: a file owned by the process's effective user that no one else may
    /// access (mode 0600 or 0400).
    File(PathBuf),
}

impl MachineSecretSource {
    /// Parse `systemd:<credential name>` or `file:<path>`; a relative path is taken from
    /// `base` (the configuration file's directory).
    pub fn parse(spec: &str, base: Option<&Path>) -> Result<MachineSecretSource> {
        let bad = |why: &str| {
            Code::GeneralError.err(format!(
                "machine_secret must be \"systemd:<credential name>\" or \"file:<path>\": {why}"
            ))
        };
        if let Some(name) = spec.strip_prefix("systemd:") {
            if name.is_empty()
                || name == "."
                || name == ".."
                || name.contains('/')
                || name.contains('\0')
            {
                return Err(bad("a credential name is one non-empty file name"));
            }
            Ok(MachineSecretSource::Systemd(name.to_string()))
        } else if let Some(path) = spec.strip_prefix("file:") {
            if path.is_empty() || path.contains('\0') {
                return Err(bad("the file path is empty"));
            }
            let path = Path::new(path);
            Ok(MachineSecretSource::File(if path.is_relative() {
                base.unwrap_or(Path::new(".")).join(path)
            } else {
                path.to_path_buf()
            }))
        } else {
            Err(bad(&format!("unknown kind in {spec:?}")))
        }
    }
}

impl fmt::Display for MachineSecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MachineSecretSource::Systemd(name) => write!(f, "systemd credential {name:?}"),
            MachineSecretSource::File(path) => write!(f, "key file {}", path.display()),
        }
    }
}

/// The machine secret, as read. Zeroized on drop, never printed, never cloned.
pub struct MachineSecret {
    secret: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for MachineSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MachineSecret(<redacted>)")
    }
}

impl MachineSecret {
    /// Read the secret from `source`. A missing or unreadable source, a key file that group
    /// or others may access or that another user owns, and a secret shorter than
    /// [`MIN_SECRET_LEN`] or longer than [`MAX_SECRET_LEN`] bytes are errors
    /// (CKR_GENERAL_ERROR) naming the source, never the secret.
    pub fn load(source: &MachineSecretSource) -> Result<MachineSecret> {
        MachineSecret::load_from(source, std::env::var_os(CREDENTIALS_ENV).as_deref())
    }

    /// [`MachineSecret::load`] with the credentials directory given instead of read from
    /// `$CREDENTIALS_DIRECTORY`.
    pub fn load_from(
        source: &MachineSecretSource,
        credentials_dir: Option<&OsStr>,
    ) -> Result<MachineSecret> {
        let secret = match source {
            MachineSecretSource::Systemd(name) => {
                let dir = credentials_dir.filter(|d| !d.is_empty()).ok_or_else(|| {
                    Code::GeneralError.err(format!(
                        "machine secret: {source} configured but {CREDENTIALS_ENV} is not \
                             set (run under systemd with LoadCredential= or \
                             LoadCredentialEncrypted=)"
                    ))
                })?;
                // systemd owns this directory: private to the service, on a non-swappable
                // file system, access granted to the service's user (possibly by an ACL on a
                // root-owned file), so owner and mode bits are not ours to judge.
                read_secret(&Path::new(&dir).join(name), source, false)?
            }
            MachineSecretSource::File(path) => read_secret(path, source, true)?,
        };
        MachineSecret::from_bytes(&secret)
            .map_err(|e| e.context(format!("machine secret from {source}")))
    }

    /// A secret given directly (tests, tools).
    pub fn from_bytes(secret: &[u8]) -> Result<MachineSecret> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(Code::GeneralError.err(format!(
                "a machine secret must be at least {MIN_SECRET_LEN} bytes, not {}",
                secret.len()
            )));
        }
        if secret.len() > MAX_SECRET_LEN {
            return Err(Code::GeneralError.err(format!(
                "a machine secret must be at most {MAX_SECRET_LEN} bytes"
            )));
        }
        Ok(MachineSecret {
            secret: Zeroizing::new(secret.to_vec()),
        })
    }

    /// The per-token machine key: HKDF-SHA256(secret, salt = serial, info = "keyward machine
    /// binding v1"). The serial never changes for a token file, so neither does this key.
    pub(crate) fn token_key(&self, serial: &str) -> Result<MachineKey> {
        Ok(MachineKey {
            key: hkdf_sha256(&self.secret, serial.as_bytes(), TOKEN_KEY_INFO)?,
            serial: serial.to_string(),
        })
    }
}

/// One token's machine key and the serial it was derived for. Zeroized on drop, never
/// printed.
pub(crate) struct MachineKey {
    key: Zeroizing<[u8; 32]>,
    serial: String,
}

impl fmt::Debug for MachineKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MachineKey(<redacted>)")
    }
}

impl MachineKey {
    pub(crate) fn key(&self) -> &[u8; 32] {
        &self.key
    }

    pub(crate) fn serial(&self) -> &str {
        &self.serial
    }

    /// The machine-bound form of a PIN-derived key: HKDF-SHA256(KEK ‖ machine key, no salt,
    /// info = "keyward machine-bound pin key v1"). Either input alone is useless.
    pub(crate) fn bind_kek(&self, kek: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>> {
        let mut ikm = Zeroizing::new([0u8; 64]);
        ikm[..32].copy_from_slice(kek);
        ikm[32..].copy_from_slice(&self.key[..]);
        hkdf_sha256(&ikm[..], &[], BOUND_KEK_INFO)
    }

    /// The key of the identity wrap: HKDF-SHA256(machine key, salt = token id, info =
    /// "keyward identity login v1"). The token id changes at every C_InitToken, so a wrap
    /// made before a re-initialisation never opens afterwards.
    pub(crate) fn identity_key(&self, token_id: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
        hkdf_sha256(&self.key[..], token_id, IDENTITY_KEY_INFO)
    }
}

/// Read a secret file: a regular file (checked on the open descriptor, so a swap after the
/// check cannot matter); with `private`, owned by the effective user with no group or other
/// permission bits.
fn read_secret(
    path: &Path,
    source: &MachineSecretSource,
    private: bool,
) -> Result<Zeroizing<Vec<u8>>> {
    let fail = |why: String| Code::GeneralError.err(format!("machine secret: {source}: {why}"));
    let mut file = File::open(path).map_err(|e| fail(format!("cannot open: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| fail(format!("cannot inspect: {e}")))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".into()));
    }
    if private {
        let me = nix::unistd::geteuid().as_raw();
        if meta.uid() != me {
            return Err(fail(format!(
                "owned by uid {}, not by this process's user (uid {me}); refusing it",
                meta.uid()
            )));
        }
        if meta.mode() & 0o077 != 0 {
            return Err(fail(format!(
                "mode {:o} lets group or others access it; refusing it (chmod 600)",
                meta.mode() & 0o7777
            )));
        }
    }
    let mut secret = Zeroizing::new(Vec::with_capacity(MAX_SECRET_LEN + 1));
    // One byte more than allowed, so an oversized file is noticed without reading it all.
    (&mut file)
        .take(MAX_SECRET_LEN as u64 + 1)
        .read_to_end(&mut secret)
        .map_err(|e| fail(format!("cannot read: {e}")))?;
    Ok(secret)
}

/// HMAC-SHA256 over the concatenation of `parts`.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Result<Zeroizing<[u8; 32]>> {
    let mut mac = MacKey::hmac(DigestAlg::Sha256, key)?.start()?;
    for p in parts {
        mac.update(p)?;
    }
    let tag = mac.finish()?;
    let mut out = Zeroizing::new([0u8; 32]);
    if tag.len() != out.len() {
        return Err(Code::GeneralError.err("HMAC-SHA256 gave an output of the wrong length"));
    }
    out.copy_from_slice(&tag);
    Ok(out)
}

/// HKDF-SHA256 (RFC 5869) with a 32-byte output: one expand block. An empty salt is the
/// RFC's "not provided" (32 zero bytes).
fn hkdf_sha256(ikm: &[u8], salt: &[u8], info: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
    let zeros = [0u8; 32];
    let prk = hmac_sha256(if salt.is_empty() { &zeros } else { salt }, &[ikm])?;
    hmac_sha256(&prk[..], &[info, &[1u8]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hkdf_matches_rfc5869_test_case_1() {
        // RFC 5869 A.1: the first 32 bytes of the 42-byte OKM.
        let ikm = [0x0bu8; 22];
        let salt: Vec<u8> = (0x00..=0x0c).collect();
        let info: Vec<u8> = (0xf0..=0xf9).collect();
        let okm = hkdf_sha256(&ikm, &salt, &info).unwrap();
        assert_eq!(
            hex::encode(&okm[..]),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
        );
    }

    #[test]
    fn hkdf_without_salt_matches_rfc5869_test_case_3() {
        // RFC 5869 A.3: empty salt and info.
        let okm = hkdf_sha256(&[0x0bu8; 22], &[], &[]).unwrap();
        assert_eq!(
            hex::encode(&okm[..]),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
        );
    }

    #[test]
    fn token_keys_depend_on_secret_and_serial() {
        let a = MachineSecret::from_bytes(&[1u8; 32]).unwrap();
        let b = MachineSecret::from_bytes(&[2u8; 32]).unwrap();
        let ka = a.token_key("0011223344556677").unwrap();
        assert_eq!(
            ka.key(),
            a.token_key("0011223344556677").unwrap().key(),
            "deterministic"
        );
        assert_ne!(ka.key(), a.token_key("0011223344556678").unwrap().key());
        assert_ne!(ka.key(), b.token_key("0011223344556677").unwrap().key());
        let kek = [7u8; 32];
        let bound = ka.bind_kek(&kek).unwrap();
        assert_ne!(&bound[..], &kek[..]);
        assert_ne!(
            &bound[..],
            &b.token_key("0011223344556677")
                .unwrap()
                .bind_kek(&kek)
                .unwrap()[..]
        );
        assert!(!format!("{a:?}{ka:?}").contains("1, 1"));
    }

    #[test]
    fn identity_keys_are_separate_from_every_other_key() {
        let a = MachineSecret::from_bytes(&[1u8; 32]).unwrap();
        let ka = a.token_key("0011223344556677").unwrap();
        let id = ka.identity_key(b"token-id-1").unwrap();
        assert_eq!(&id[..], &ka.identity_key(b"token-id-1").unwrap()[..]);
        // Another token identity (a re-initialisation) or another token: another key.
        assert_ne!(&id[..], &ka.identity_key(b"token-id-2").unwrap()[..]);
        let kb = a.token_key("0011223344556678").unwrap();
        assert_ne!(&id[..], &kb.identity_key(b"token-id-1").unwrap()[..]);
        // Not the machine key, and not what HKDF gives under the other info strings.
        assert_ne!(&id[..], &ka.key()[..]);
        assert_ne!(
            &id[..],
            &hkdf_sha256(&ka.key()[..], b"token-id-1", TOKEN_KEY_INFO).unwrap()[..]
        );
        // Independently computed: HKDF-SHA256(ikm = machine key, salt = token id, info).
        let prk = hmac_sha256(b"token-id-1", &[&ka.key()[..]]).unwrap();
        let okm = hmac_sha256(&prk[..], &[b"keyward identity login v1", &[1u8]]).unwrap();
        assert_eq!(&id[..], &okm[..]);
    }

    #[test]
    fn length_limits() {
        assert!(MachineSecret::from_bytes(&[9u8; MIN_SECRET_LEN - 1]).is_err());
        assert!(MachineSecret::from_bytes(&[9u8; MIN_SECRET_LEN]).is_ok());
        assert!(MachineSecret::from_bytes(&vec![9u8; MAX_SECRET_LEN + 1]).is_err());
    }

    #[test]
    fn source_syntax() {
        assert_eq!(
            MachineSecretSource::parse("systemd:keyward-machine", None).unwrap(),
            MachineSecretSource::Systemd("keyward-machine".into())
        );
        assert_eq!(
            MachineSecretSource::parse("file:/etc/keyward/machine.key", None).unwrap(),
            MachineSecretSource::File("/etc/keyward/machine.key".into())
        );
        assert_eq!(
            MachineSecretSource::parse("file:machine.key", Some(Path::new("/etc/keyward")))
                .unwrap(),
            MachineSecretSource::File("/etc/keyward/machine.key".into())
        );
        for bad in [
            "",
            "systemd:",
            "systemd:../x",
            "systemd:a/b",
            "systemd:..",
            "file:",
            "tpm2:x",
            "/etc/key",
        ] {
            let e = MachineSecretSource::parse(bad, None).unwrap_err();
            assert_eq!(e.code(), Code::GeneralError, "{bad}");
        }
    }
}
