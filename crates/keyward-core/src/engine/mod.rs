//! The token engine: the tokens of one storage directory, shared by every application, and
//! the per-application state (sessions, handles, login) behind [`Application`].

mod app;
mod crypto;
mod keys;
mod message;
mod objects;
mod peer;
mod session;
mod token;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use cryptoki_sys::*;

use crate::config::Config;
use crate::error::{Code, Result};
use crate::store::{MachineSecret, TokenStore};

pub use app::Application;
pub use peer::Peer;
use token::Token;

/// File name of a token database: `token-<serial>.db`.
const TOKEN_PREFIX: &str = "token-";
const TOKEN_SUFFIX: &str = ".db";

/// The engine: configuration plus the tokens of its storage directory. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub config: Config,
    /// The machine secret (configuration `machine_secret`), read once at start.
    machine: Option<MachineSecret>,
    tokens: RwLock<BTreeMap<CK_SLOT_ID, Arc<Token>>>,
    /// Serialises directory scans and token creation.
    scan: Mutex<()>,
}

impl Engine {
    /// Open the storage directory (created 0700 if missing) and every token in it. A
    /// configured machine secret that cannot be read is an error: tokens created without it
    /// would silently be unbound.
    pub fn new(config: Config) -> Result<Engine> {
        ensure_dir(&config.storage_dir)?;
        let machine = config
            .machine_secret
            .as_ref()
            .map(MachineSecret::load)
            .transpose()?;
        let shared = Arc::new(Shared {
            config,
            machine,
            tokens: RwLock::new(BTreeMap::new()),
            scan: Mutex::new(()),
        });
        shared.rescan()?;
        Ok(Engine { shared })
    }

    /// A new PKCS#11 application: its own sessions, handles and login state.
    pub fn application(&self) -> Application {
        self.application_for(None)
    }

    /// A new application for a daemon client (`Some(peer)`), held to the `[[access]]` rules
    /// for that peer (docs/daemon.md); `None` is an embedded application, not restricted.
    pub fn application_for(&self, peer: Option<Peer>) -> Application {
        Application::new(self.shared.clone(), peer)
    }

    /// Whether a daemon client may connect at all: it is root or the daemon's own uid, or an
    /// `[[access]]` rule names it (as a user, SO or group member). A peer refused here would
    /// see no token and could create none.
    pub fn admits(&self, peer: &Peer) -> bool {
        peer::admits(&self.shared.config, peer)
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }
}

fn ensure_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| {
                Code::GeneralError.err(format!(
                    "cannot create storage directory {}: {e}",
                    dir.display()
                ))
            })?;
    }
    let meta = fs::metadata(dir)
        .map_err(|e| Code::GeneralError.err(format!("storage directory {}: {e}", dir.display())))?;
    if !meta.is_dir() {
        return Err(
            Code::GeneralError.err(format!("storage path {} is not a directory", dir.display()))
        );
    }
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(dir = %dir.display(), "storage directory is accessible to other users; use mode 0700");
    }
    Ok(())
}

impl Shared {
    /// Open tokens that appeared in the directory (created by another process) since the last scan.
    pub fn rescan(&self) -> Result<()> {
        let _g = self
            .scan
            .lock()
            .map_err(|_| Code::GeneralError.err("lock poisoned"))?;
        let dir = &self.config.storage_dir;
        let entries = fs::read_dir(dir)
            .map_err(|e| Code::GeneralError.err(format!("cannot list {}: {e}", dir.display())))?;
        let known: Vec<PathBuf> = self.tokens()?.values().map(|t| t.path.clone()).collect();
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(TOKEN_PREFIX) && n.ends_with(TOKEN_SUFFIX))
            })
            .filter(|p| !known.contains(p))
            .collect();
        paths.sort();
        for path in paths {
            match TokenStore::open_bound(&path, self.machine.as_ref())
                .and_then(|store| Token::open(path.clone(), store))
            {
                Ok(token) => {
                    let mut tokens = self
                        .tokens
                        .write()
                        .map_err(|_| Code::GeneralError.err("lock poisoned"))?;
                    let slot = token.slot_id;
                    match tokens.entry(slot) {
                        std::collections::btree_map::Entry::Occupied(_) => {
                            tracing::warn!(path = %path.display(), slot, "two token files claim one slot; ignoring this one");
                        }
                        std::collections::btree_map::Entry::Vacant(v) => {
                            v.insert(Arc::new(token));
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "cannot open token; skipping it")
                }
            }
        }
        Ok(())
    }

    pub fn tokens(&self) -> Result<BTreeMap<CK_SLOT_ID, Arc<Token>>> {
        Ok(self
            .tokens
            .read()
            .map_err(|_| Code::GeneralError.err("lock poisoned"))?
            .clone())
    }

    pub fn token(&self, slot: CK_SLOT_ID) -> Option<Arc<Token>> {
        self.tokens.read().ok()?.get(&slot).cloned()
    }

    /// The slot where C_InitToken creates a new token: one past the highest token slot.
    pub fn free_slot(&self) -> Result<CK_SLOT_ID> {
        Ok(self.tokens()?.keys().next_back().map_or(1, |s| s + 1))
    }

    /// Create a token in the free slot.
    pub fn create_token(&self, slot: CK_SLOT_ID, so_pin: &[u8], label: &str) -> Result<()> {
        let _g = self
            .scan
            .lock()
            .map_err(|_| Code::GeneralError.err("lock poisoned"))?;
        if slot != self.free_slot()? {
            return Err(Code::SlotIdInvalid.err("the free slot changed; list slots again"));
        }
        let mut raw = [0u8; 8];
        keyward_ossl::rand::fill(&mut raw)?;
        let serial: String = raw.iter().map(|b| format!("{b:02X}")).collect();
        let path = self
            .config
            .storage_dir
            .join(format!("{TOKEN_PREFIX}{serial}{TOKEN_SUFFIX}"));
        // CK_SLOT_ID is 32 bits wide on 32-bit targets.
        #[allow(clippy::useless_conversion)]
        let slot_id = u64::from(slot);
        let store = TokenStore::create_bound(
            &path,
            slot_id,
            label,
            &serial,
            so_pin,
            &self.config.kdf,
            self.config.pin_retry_limit,
            self.machine.as_ref(),
        )?;
        let token = Token::open(path, store)?;
        self.tokens
            .write()
            .map_err(|_| Code::GeneralError.err("lock poisoned"))?
            .insert(slot, Arc::new(token));
        tracing::info!(slot, "token created");
        Ok(())
    }
}

#[cfg(test)]
mod tests;
