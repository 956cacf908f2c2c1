//! One initialised token: its store and the in-memory cache of its objects, shared by every
//! application of the engine.
//!
//! Finds are served from indexes over the cache (by label, id, key type and class), so a
//! lookup among ten thousand objects touches a handful of entries. Another process's commits are noticed
//! through the store's cheap change check before each find and merged in.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use cryptoki_sys::*;

use crate::error::{Code, Result};
use crate::object::Object;
use crate::store::{MasterKey, StoredObject, TokenStore};
use crate::types::Attrs;

/// A token object as cached: its identity in the store and its immutable contents.
pub(crate) struct Entry {
    pub uid: String,
    pub generation: u64,
    pub object: Arc<Object>,
    pub private: bool,
    /// False when key material sealed under the master key could not be opened (no user login).
    pub complete: bool,
}

#[derive(Default)]
struct Cache {
    by_uid: HashMap<String, Arc<Entry>>,
    by_label: HashMap<Vec<u8>, HashSet<String>>,
    by_id: HashMap<Vec<u8>, HashSet<String>>,
    by_class: HashMap<CK_OBJECT_CLASS, HashSet<String>>,
    by_key_type: HashMap<CK_KEY_TYPE, HashSet<String>>,
}

impl Cache {
    fn index(&mut self, e: &Entry, add: bool) {
        let attrs = e.object.attrs();
        for (map, key) in [
            (&mut self.by_label, attrs.get_bytes(CKA_LABEL)),
            (&mut self.by_id, attrs.get_bytes(CKA_ID)),
        ] {
            let Some(key) = key else { continue };
            if add {
                map.entry(key.to_vec()).or_default().insert(e.uid.clone());
            } else if let Some(set) = map.get_mut(key) {
                set.remove(&e.uid);
                if set.is_empty() {
                    map.remove(key);
                }
            }
        }
        let class = e.object.class();
        let key_type = e.object.key_type();
        for (map, key) in [
            (&mut self.by_class, Some(class)),
            (&mut self.by_key_type, key_type),
        ] {
            let Some(key) = key else { continue };
            if add {
                map.entry(key).or_default().insert(e.uid.clone());
            } else if let Some(set) = map.get_mut(&key) {
                set.remove(&e.uid);
                if set.is_empty() {
                    map.remove(&key);
                }
            }
        }
    }

    fn put(&mut self, e: Arc<Entry>) {
        if let Some(old) = self.by_uid.remove(&e.uid) {
            self.index(&old, false);
        }
        self.index(&e, true);
        self.by_uid.insert(e.uid.clone(), e);
    }

    fn remove(&mut self, uid: &str) {
        if let Some(old) = self.by_uid.remove(uid) {
            self.index(&old, false);
        }
    }
}

/// An initialised token.
pub(crate) struct Token {
    pub slot_id: CK_SLOT_ID,
    pub path: PathBuf,
    pub store: TokenStore,
    cache: RwLock<Cache>,
    /// The master key while at least one application is logged in as the user; private
    /// objects are cached only then.
    user_mk: Mutex<Option<(usize, Arc<MasterKey>)>>,
    pub sessions: AtomicUsize,
    pub rw_sessions: AtomicUsize,
}

impl Token {
    pub fn open(path: PathBuf, store: TokenStore) -> Result<Token> {
        let slot_id = CK_SLOT_ID::try_from(store.record()?.slot_id)
            .map_err(|_| Code::DeviceError.err("slot id out of range"))?;
        let t = Token {
            slot_id,
            path,
            store,
            cache: RwLock::new(Cache::default()),
            user_mk: Mutex::new(None),
            sessions: AtomicUsize::new(0),
            rw_sessions: AtomicUsize::new(0),
        };
        t.reload()?;
        Ok(t)
    }

    fn mk(&self) -> Option<Arc<MasterKey>> {
        self.user_mk
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(|(_, mk)| mk.clone()))
    }

    /// Replace the cache with the store's contents, keeping entries whose generation did not
    /// change (and so their parsed-key caches).
    fn reload(&self) -> Result<()> {
        let mk = self.mk();
        let loaded = self.store.load_objects(mk.as_deref())?;
        let mut cache = self
            .cache
            .write()
            .map_err(|_| Code::GeneralError.err("cache lock poisoned"))?;
        let mut seen = HashSet::new();
        for s in loaded {
            seen.insert(s.uid.clone());
            let unchanged = cache
                .by_uid
                .get(&s.uid)
                .is_some_and(|e| e.generation == s.generation && e.complete == s.complete);
            if !unchanged {
                cache.put(Arc::new(entry(s)));
            }
        }
        let gone: Vec<String> = cache
            .by_uid
            .keys()
            .filter(|u| !seen.contains(*u))
            .cloned()
            .collect();
        for uid in gone {
            cache.remove(&uid);
        }
        Ok(())
    }

    /// Merge in what other processes committed since the last check.
    pub fn refresh(&self) -> Result<()> {
        if self.store.changed()? {
            self.reload()
        } else {
            Ok(())
        }
    }

    /// An application logged in as the user: hold the master key and cache private objects.
    pub fn user_login(&self, mk: Arc<MasterKey>) -> Result<()> {
        {
            let mut g = self
                .user_mk
                .lock()
                .map_err(|_| Code::GeneralError.err("lock poisoned"))?;
            match g.as_mut() {
                Some((n, _)) => *n += 1,
                None => *g = Some((1, mk)),
            }
        }
        self.reload()
    }

    /// An application logged out: when none is left, drop the master key and the private objects.
    pub fn user_logout(&self) -> Result<()> {
        let last = {
            let mut g = self
                .user_mk
                .lock()
                .map_err(|_| Code::GeneralError.err("lock poisoned"))?;
            match g.as_mut() {
                Some((n, _)) if *n > 1 => {
                    *n -= 1;
                    false
                }
                _ => {
                    *g = None;
                    true
                }
            }
        };
        if last {
            let mut cache = self
                .cache
                .write()
                .map_err(|_| Code::GeneralError.err("cache lock poisoned"))?;
            let private: Vec<String> = cache
                .by_uid
                .values()
                .filter(|e| e.private)
                .map(|e| e.uid.clone())
                .collect();
            for uid in private {
                cache.remove(&uid);
            }
            drop(cache);
            // Public objects' key material, opened while logged in, is dropped too.
            self.reload()?;
        }
        Ok(())
    }

    pub fn get(&self, uid: &str) -> Option<Arc<Entry>> {
        self.cache.read().ok()?.by_uid.get(uid).cloned()
    }

    /// Objects matching `template`, served from the most selective index.
    pub fn find(&self, template: &Attrs, include_private: bool) -> Result<Vec<Arc<Entry>>> {
        let cache = self
            .cache
            .read()
            .map_err(|_| Code::GeneralError.err("cache lock poisoned"))?;
        let visible =
            |e: &Arc<Entry>| (include_private || !e.private) && e.object.attrs().matches(template);
        let from = |set: Option<&HashSet<String>>| -> Vec<Arc<Entry>> {
            set.map(|s| {
                s.iter()
                    .filter_map(|u| cache.by_uid.get(u))
                    .filter(|e| visible(e))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
        };
        let found = if let Some(label) = template.get_bytes(CKA_LABEL) {
            from(cache.by_label.get(label))
        } else if let Some(id) = template.get_bytes(CKA_ID) {
            from(cache.by_id.get(id))
        } else if let Some(key_type) = template.get_ulong(CKA_KEY_TYPE) {
            from(cache.by_key_type.get(&key_type))
        } else if let Some(class) = template.get_ulong(CKA_CLASS) {
            from(cache.by_class.get(&class))
        } else {
            cache
                .by_uid
                .values()
                .filter(|e| visible(e))
                .cloned()
                .collect()
        };
        Ok(found)
    }

    pub fn insert(&self, mk: Option<&MasterKey>, uid: String, attrs: Attrs) -> Result<Arc<Entry>> {
        let generation = self.store.insert_object(mk, &uid, &attrs)?;
        let e = Arc::new(Entry {
            private: is_private(&attrs),
            complete: true,
            uid,
            generation,
            object: Arc::new(Object::new(attrs)),
        });
        self.cache
            .write()
            .map_err(|_| Code::GeneralError.err("cache lock poisoned"))?
            .put(e.clone());
        Ok(e)
    }

    pub fn update(&self, mk: Option<&MasterKey>, uid: &str, attrs: Attrs) -> Result<Arc<Entry>> {
        let generation = self.store.update_object(mk, uid, &attrs)?;
        let e = Arc::new(Entry {
            private: is_private(&attrs),
            complete: true,
            uid: uid.to_string(),
            generation,
            object: Arc::new(Object::new(attrs)),
        });
        self.cache
            .write()
            .map_err(|_| Code::GeneralError.err("cache lock poisoned"))?
            .put(e.clone());
        Ok(e)
    }

    pub fn delete(&self, uid: &str) -> Result<()> {
        self.store.delete_object(uid)?;
        self.cache
            .write()
            .map_err(|_| Code::GeneralError.err("cache lock poisoned"))?
            .remove(uid);
        Ok(())
    }

    /// After C_InitToken: everything cached is gone.
    pub fn clear(&self) -> Result<()> {
        *self
            .cache
            .write()
            .map_err(|_| Code::GeneralError.err("cache lock poisoned"))? = Cache::default();
        if let Ok(mut g) = self.user_mk.lock() {
            *g = None;
        }
        Ok(())
    }

    pub fn session_count(&self) -> usize {
        self.sessions.load(Ordering::SeqCst)
    }
}

fn is_private(attrs: &Attrs) -> bool {
    attrs.get_bool(CKA_PRIVATE).unwrap_or(false)
}

fn entry(s: StoredObject) -> Entry {
    Entry {
        private: is_private(&s.attrs),
        complete: s.complete,
        uid: s.uid,
        generation: s.generation,
        object: Arc::new(Object::new(s.attrs)),
    }
}
