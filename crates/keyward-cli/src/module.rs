//! Finding and loading the PKCS#11 module: `--module PATH` (or `KEYWARD_MODULE`), the URI's
//! module-path or module-name, else Keyward's own module next to this executable or in the
//! standard install directories.

use std::path::{Path, PathBuf};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};

use crate::error::{Error, Result};

/// The file name of Keyward's module.
pub const OUR_MODULE: &str = "libkeyward_pkcs11.so";

/// Where distributions install PKCS#11 modules, searched in order.
const STANDARD_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/pkcs11",
    "/usr/lib/aarch64-linux-gnu/pkcs11",
    "/usr/lib/pkcs11",
    "/usr/local/lib",
    "/usr/local/lib/pkcs11",
    "/usr/lib",
];

/// Where the module comes from, in priority order.
#[derive(Debug, Default, Clone)]
pub struct ModuleChoice {
    /// `--module PATH` or `KEYWARD_MODULE`.
    pub explicit: Option<PathBuf>,
    /// The URI's `module-path` query attribute.
    pub uri_path: Option<String>,
    /// The URI's `module-name` query attribute.
    pub uri_name: Option<String>,
}

/// The module file to load.
pub fn resolve(choice: &ModuleChoice) -> Result<PathBuf> {
    if let Some(p) = &choice.explicit {
        return existing(p.clone(), "--module/KEYWARD_MODULE");
    }
    if let Some(p) = &choice.uri_path {
        return existing(PathBuf::from(p), "the URI's module-path");
    }
    if let Some(name) = &choice.uri_name {
        // RFC 7512: module-name is the file name without "lib" prefix or suffix.
        let files = [format!("lib{name}.so"), format!("{name}.so"), name.clone()];
        for dir in STANDARD_DIRS {
            for f in &files {
                let p = Path::new(dir).join(f);
                if p.is_file() {
                    return Ok(p);
                }
            }
        }
        return Err(Error::not_found(format!(
            "no module named {name:?} in {}",
            STANDARD_DIRS.join(", ")
        ))
        .hint("give its path with --module PATH"));
    }
    let mut looked = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .as_deref()
        .and_then(Path::parent)
    {
        looked.push(dir.join(OUR_MODULE));
        looked.push(dir.join("../lib").join(OUR_MODULE));
    }
    for dir in STANDARD_DIRS {
        looked.push(Path::new(dir).join(OUR_MODULE));
    }
    looked.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        let list: Vec<String> = looked.iter().map(|p| p.display().to_string()).collect();
        Error::not_found(format!(
            "{OUR_MODULE} not found (looked at {})",
            list.join(", ")
        ))
        .hint("name a module with --module PATH or KEYWARD_MODULE")
    })
}

fn existing(p: PathBuf, from: &str) -> Result<PathBuf> {
    if p.is_file() {
        Ok(p)
    } else {
        Err(Error::not_found(format!(
            "the module {} (from {from}) does not exist",
            p.display()
        )))
    }
}

/// Load and initialise the module.
pub fn load(choice: &ModuleChoice) -> Result<Pkcs11> {
    let path = resolve(choice)?;
    let p11 =
        Pkcs11::new(&path).map_err(|e| Error::ck(&format!("loading {}", path.display()), e))?;
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(|e| Error::ck(&format!("initialising {}", path.display()), e))?;
    crate::raw::set_module(&path);
    Ok(p11)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_explicit_module_is_not_found() {
        let c = ModuleChoice {
            explicit: Some(PathBuf::from("/nonexistent/libx.so")),
            ..Default::default()
        };
        let e = resolve(&c).unwrap_err();
        assert_eq!(e.exit, crate::error::Exit::NotFound);
    }
}
