//! The module's configuration: a TOML file named by `KEYWARD_CONF`, else the user's and the
//! system's default locations, else built-in defaults.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Code, Result};
use crate::store::{KdfParams, MachineSecretSource};

mod access;
pub use access::AccessRule;
mod daemon;
pub use daemon::{DaemonConfig, NameOrId};

/// Environment variable naming the configuration file.
pub const CONF_ENV: &str = "KEYWARD_CONF";
/// The system-wide configuration file.
pub const SYSTEM_CONF: &str = "/etc/keyward/keyward.toml";
/// Environment variable naming the daemon's socket; when set, the module talks to the daemon
/// whatever `mode` says.
pub const SOCKET_ENV: &str = "KEYWARD_SOCKET";
/// The daemon's socket when the configuration names none.
pub const DEFAULT_SOCKET: &str = "/run/keyward/keyward.sock";

/// Where the token engine runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// In the process that loads the module.
    #[default]
    Embedded,
    /// In the keystore daemon, reached over its Unix socket.
    Daemon,
}

/// Where tokens live and how they are protected.
#[derive(Clone, Debug)]
pub struct Config {
    /// The directory holding one SQLite database per token.
    pub storage_dir: PathBuf,
    /// Log level for the module's `tracing` output (error, warn, info, debug, trace).
    pub log_level: String,
    /// Failed logins before a PIN is locked.
    pub pin_retry_limit: u32,
    /// Smallest PIN length accepted by C_InitToken, C_InitPIN and C_SetPIN.
    pub min_pin_len: usize,
    /// Largest PIN length accepted.
    pub max_pin_len: usize,
    /// Use FIPS-approved algorithms only (PBKDF2 instead of Argon2id for PIN keys).
    pub fips_only: bool,
    /// The KDF for PIN-derived keys of new tokens and new PINs.
    pub kdf: KdfParams,
    /// Where the machine secret comes from (`machine_secret = "systemd:<credential>"` or
    /// `"file:<path>"`): tokens created or re-initialised while it is set are bound to it
    /// (docs/storage-format.md). Read when the engine starts.
    pub machine_secret: Option<MachineSecretSource>,
    /// Embedded engine or daemon (see [`Config::daemon_socket`] for the effective choice).
    pub mode: Mode,
    /// The daemon's Unix socket.
    pub socket: PathBuf,
    /// Daemon mode: who may use, administer or log in without a PIN to which token
    /// (`[[access]]` tables; see docs/daemon.md). Ignored in embedded mode.
    pub access: Vec<AccessRule>,
    /// The daemon's own settings: its socket's permissions, its user, its limits (`[daemon]`).
    pub daemon: DaemonConfig,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    storage_dir: Option<PathBuf>,
    log_level: Option<String>,
    pin_retry_limit: Option<u32>,
    min_pin_len: Option<usize>,
    max_pin_len: Option<usize>,
    fips_only: Option<bool>,
    kdf: Option<KdfFile>,
    machine_secret: Option<String>,
    mode: Option<Mode>,
    socket: Option<PathBuf>,
    access: Option<Vec<access::AccessFile>>,
    daemon: Option<daemon::DaemonFile>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct KdfFile {
    algorithm: Option<String>,
    memory_kib: Option<u32>,
    iterations: Option<u32>,
    parallelism: Option<u32>,
    pbkdf2_iterations: Option<u32>,
}

/// Argon2id defaults: OWASP's minimum (m=19 MiB, t=2, p=1).
pub const ARGON2_DEFAULT: (u32, u32, u32) = (19 * 1024, 2, 1);
/// PBKDF2-HMAC-SHA256 default iteration count (OWASP 2023).
pub const PBKDF2_DEFAULT: u32 = 600_000;

impl Config {
    /// Load from `KEYWARD_CONF` if set (the file must exist), else from the first default
    /// location that exists, else built-in defaults.
    pub fn load() -> Result<Config> {
        if let Some(path) = std::env::var_os(CONF_ENV) {
            return Config::from_file(Path::new(&path));
        }
        for path in default_locations() {
            if path.exists() {
                return Config::from_file(&path);
            }
        }
        Config::from_str("", None)
    }

    /// Load from one file; a missing or malformed file is an error naming the file.
    pub fn from_file(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Code::GeneralError.err(format!("cannot read configuration {}: {e}", path.display()))
        })?;
        Config::from_str(&text, path.parent())
            .map_err(|e| e.context(format!("configuration {}", path.display())))
    }

    /// Parse configuration text; relative paths are taken from `base`.
    pub fn from_str(text: &str, base: Option<&Path>) -> Result<Config> {
        let f: File = toml::from_str(text)
            .map_err(|e| Code::GeneralError.err(format!("malformed configuration: {e}")))?;
        let storage_dir = match f.storage_dir {
            Some(p) if p.is_relative() => base.unwrap_or(Path::new(".")).join(p),
            Some(p) => p,
            None => default_storage_dir(),
        };
        let fips_only = f.fips_only.unwrap_or(false);
        let k = f.kdf.unwrap_or_default();
        let algorithm = k.algorithm.unwrap_or_else(|| {
            if fips_only {
                "pbkdf2-sha256"
            } else {
                "argon2id"
            }
            .to_string()
        });
        let kdf = match algorithm.as_str() {
            "argon2id" if fips_only => {
                return Err(Code::GeneralError.err(
                    "kdf.algorithm argon2id is not FIPS-approved; use pbkdf2-sha256 with fips_only",
                ));
            }
            "argon2id" => KdfParams::Argon2id {
                m_kib: k.memory_kib.unwrap_or(ARGON2_DEFAULT.0),
                t: k.iterations.unwrap_or(ARGON2_DEFAULT.1),
                p: k.parallelism.unwrap_or(ARGON2_DEFAULT.2),
            },
            "pbkdf2-sha256" => KdfParams::Pbkdf2Sha256 {
                iterations: k.pbkdf2_iterations.unwrap_or(PBKDF2_DEFAULT),
            },
            other => {
                return Err(Code::GeneralError.err(format!(
                    "kdf.algorithm must be \"argon2id\" or \"pbkdf2-sha256\", not {other:?}"
                )));
            }
        };
        let min_pin_len = f.min_pin_len.unwrap_or(4);
        let max_pin_len = f.max_pin_len.unwrap_or(256);
        if min_pin_len == 0 || min_pin_len > max_pin_len {
            return Err(
                Code::GeneralError.err("min_pin_len must be at least 1 and at most max_pin_len")
            );
        }
        let pin_retry_limit = f.pin_retry_limit.unwrap_or(10);
        if pin_retry_limit == 0 {
            return Err(Code::GeneralError.err("pin_retry_limit must be at least 1"));
        }
        let socket = match f.socket {
            Some(p) if p.as_os_str().is_empty() => {
                return Err(Code::GeneralError.err("socket must not be empty"));
            }
            Some(p) if p.is_relative() => base.unwrap_or(Path::new(".")).join(p),
            Some(p) => p,
            None => PathBuf::from(DEFAULT_SOCKET),
        };
        let machine_secret = f
            .machine_secret
            .map(|s| MachineSecretSource::parse(&s, base))
            .transpose()?;
        let log_level = f.log_level.unwrap_or_else(|| "warn".to_string());
        if !["off", "error", "warn", "info", "debug", "trace"].contains(&log_level.as_str()) {
            return Err(Code::GeneralError.err(format!(
                "log_level must be one of off, error, warn, info, debug, trace, not {log_level:?}"
            )));
        }
        let access = access::resolve(f.access.unwrap_or_default())?;
        let daemon = daemon::resolve(f.daemon.unwrap_or_default())?;
        Ok(Config {
            mode: f.mode.unwrap_or_default(),
            socket,
            access,
            daemon,
            storage_dir,
            log_level,
            pin_retry_limit,
            min_pin_len,
            max_pin_len,
            fips_only,
            kdf,
            machine_secret,
        })
    }
}

impl Config {
    /// The daemon socket the module should use: `KEYWARD_SOCKET` if set (daemon mode whatever
    /// the file says), else `socket` in daemon mode, else `None` (embedded engine).
    pub fn daemon_socket(&self) -> Option<PathBuf> {
        if let Some(p) = std::env::var_os(SOCKET_ENV).filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(p));
        }
        (self.mode == Mode::Daemon).then(|| self.socket.clone())
    }
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

fn default_locations() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|x| !x.is_empty()) {
        v.push(PathBuf::from(x).join("keyward/keyward.toml"));
    } else if let Some(h) = home() {
        v.push(h.join(".config/keyward/keyward.toml"));
    }
    v.push(PathBuf::from(SYSTEM_CONF));
    v
}

/// The user's data directory: `$XDG_DATA_HOME/keyward/tokens`, `~/.local/share/keyward/tokens`,
/// or `/var/lib/keyward/tokens` for a user without a home.
pub fn default_storage_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("keyward/tokens");
    }
    match home() {
        Some(h) => h.join(".local/share/keyward/tokens"),
        None => PathBuf::from("/var/lib/keyward/tokens"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_owasp_argon2id() {
        let c = Config::from_str("storage_dir = \"/tmp/x\"", None).unwrap();
        assert_eq!(
            c.kdf,
            KdfParams::Argon2id {
                m_kib: 19 * 1024,
                t: 2,
                p: 1
            }
        );
        assert_eq!(c.pin_retry_limit, 10);
        assert_eq!(c.storage_dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn fips_only_selects_pbkdf2() {
        let c = Config::from_str("fips_only = true", None).unwrap();
        assert_eq!(
            c.kdf,
            KdfParams::Pbkdf2Sha256 {
                iterations: 600_000
            }
        );
        let e = Config::from_str("fips_only = true\n[kdf]\nalgorithm = \"argon2id\"", None)
            .unwrap_err();
        assert_eq!(e.code(), Code::GeneralError);
    }

    #[test]
    fn malformed_and_unknown_keys_are_errors() {
        assert!(Config::from_str("storage_dir = [", None).is_err());
        let e = Config::from_str("storage_dri = \"/x\"", None).unwrap_err();
        assert!(e.detail().contains("storage_dri"), "{e}");
        assert!(Config::from_str("log_level = \"loud\"", None).is_err());
    }

    #[test]
    fn relative_storage_dir_is_relative_to_the_file() {
        let c =
            Config::from_str("storage_dir = \"tokens\"", Some(Path::new("/etc/keyward"))).unwrap();
        assert_eq!(c.storage_dir, PathBuf::from("/etc/keyward/tokens"));
    }

    #[test]
    fn mode_and_socket() {
        let c = Config::from_str("", None).unwrap();
        assert_eq!(c.mode, Mode::Embedded);
        assert_eq!(c.socket, PathBuf::from(DEFAULT_SOCKET));
        let c = Config::from_str(
            "mode = \"daemon\"\nsocket = \"k.sock\"",
            Some(Path::new("/etc/keyward")),
        )
        .unwrap();
        assert_eq!(c.mode, Mode::Daemon);
        assert_eq!(c.socket, PathBuf::from("/etc/keyward/k.sock"));
        assert!(Config::from_str("mode = \"remote\"", None).is_err());
        assert!(Config::from_str("socket = \"\"", None).is_err());
        // The environment variable is read by `daemon_socket`; without it the mode decides.
        if std::env::var_os(SOCKET_ENV).is_none() {
            assert_eq!(
                c.daemon_socket(),
                Some(PathBuf::from("/etc/keyward/k.sock"))
            );
            assert_eq!(Config::from_str("", None).unwrap().daemon_socket(), None);
        }
    }

    #[test]
    fn machine_secret_sources() {
        assert_eq!(Config::from_str("", None).unwrap().machine_secret, None);
        let c = Config::from_str("machine_secret = \"systemd:keyward-machine\"", None).unwrap();
        assert_eq!(
            c.machine_secret,
            Some(MachineSecretSource::Systemd("keyward-machine".into()))
        );
        let c = Config::from_str(
            "machine_secret = \"file:machine.key\"",
            Some(Path::new("/etc/keyward")),
        )
        .unwrap();
        assert_eq!(
            c.machine_secret,
            Some(MachineSecretSource::File("/etc/keyward/machine.key".into()))
        );
        for bad in ["\"\"", "\"tpm:x\"", "\"systemd:a/b\"", "\"file:\"", "1"] {
            let e = Config::from_str(&format!("machine_secret = {bad}"), None).unwrap_err();
            assert_eq!(e.code(), Code::GeneralError, "{bad}");
        }
    }

    #[test]
    fn missing_file_is_an_error() {
        assert!(Config::from_file(Path::new("/nonexistent/keyward.toml")).is_err());
    }
}
