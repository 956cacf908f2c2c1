//! What the end-to-end tests of the `keyward` binary share: a module (Keyward's, embedded or
//! through keywardd, or SoftHSMv2) with its own storage and PIN files, running keyward and openssl.

// Each test binary uses its own subset of these.
#![allow(dead_code)]

pub mod apps;

use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const SO_PIN: &str = "so-pin-4242";
pub const USER_PIN: &str = "user-pin-4242";
pub const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// How Keyward's module runs its token engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// In the keyward process itself.
    Embedded,
    /// In keywardd, reached over its socket.
    Daemon,
}

/// One module with its own storage, PIN files, and the daemon it talks to, if any.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub module: PathBuf,
    pub vars: Vec<(&'static str, String)>,
    pub keyward: bool,
    /// Where Keyward's engine runs (Embedded for SoftHSMv2).
    pub mode: Mode,
    /// keywardd, killed when the environment is dropped.
    pub daemon: Option<Child>,
}

/// A file built next to the keyward binary (target/<profile>/).
pub fn built(name: &str) -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_keyward"));
    exe.parent()
        .map(|d| d.join(name))
        .filter(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not next to {}: build it first with cargo build --workspace --all-targets",
                exe.display()
            )
        })
}

impl Env {
    /// Keyward's module with its engine in-process.
    pub fn keyward() -> Env {
        Env::keyward_in(Mode::Embedded)
    }

    /// Keyward's module with its engine in a keywardd of its own.
    pub fn daemon() -> Env {
        Env::keyward_in(Mode::Daemon)
    }

    pub fn keyward_in(mode: Mode) -> Env {
        let module = built("libkeyward_pkcs11.so");
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let conf = dir.path().join("keyward.toml");
        std::fs::write(
            &conf,
            format!(
                "storage_dir = \"{}\"\nlog_level = \"error\"\n[kdf]\nmemory_kib = 1024\niterations = 1\n",
                dir.path().join("tokens").display()
            ),
        )
        .unwrap();
        let mut e = Env::finish(
            dir,
            module,
            vec![("KEYWARD_CONF", conf.display().to_string())],
            true,
        );
        if mode == Mode::Daemon {
            e.start_daemon(&conf);
            e.mode = Mode::Daemon;
        }
        e
    }

    /// keywardd with this storage on a socket in the temporary directory; the module reaches
    /// it through KEYWARD_SOCKET.
    fn start_daemon(&mut self, conf: &Path) {
        let socket = self.path("run/keyward.sock");
        let log = std::fs::File::create(self.path("keywardd.log")).unwrap();
        let mut child = Command::new(built("keywardd"))
            .arg("--config")
            .arg(conf)
            .arg("--socket")
            .arg(&socket)
            .env_remove("KEYWARD_SOCKET")
            .env_remove("KEYWARD_CONF")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&socket).is_err() {
            if let Some(st) = child.try_wait().unwrap() {
                panic!(
                    "keywardd exited at start ({st}):\n{}",
                    std::fs::read_to_string(self.path("keywardd.log")).unwrap_or_default()
                );
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("keywardd did not answer on {}", socket.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.vars
            .push(("KEYWARD_SOCKET", socket.display().to_string()));
        self.daemon = Some(child);
    }

    pub fn softhsm() -> Option<Env> {
        if !Path::new(SOFTHSM).exists() {
            eprintln!("SoftHSMv2 is not installed ({SOFTHSM}); skipping");
            return None;
        }
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        Some(Env::finish(
            dir,
            PathBuf::from(SOFTHSM),
            vec![("SOFTHSM2_CONF", conf.display().to_string())],
            false,
        ))
    }

    pub fn finish(
        dir: tempfile::TempDir,
        module: PathBuf,
        vars: Vec<(&'static str, String)>,
        keyward: bool,
    ) -> Env {
        std::fs::write(dir.path().join("so.pin"), format!("{SO_PIN}\n")).unwrap();
        std::fs::write(dir.path().join("user.pin"), format!("{USER_PIN}\n")).unwrap();
        std::fs::write(dir.path().join("wrong.pin"), "not-the-pin\n").unwrap();
        Env {
            dir,
            module,
            vars,
            keyward,
            mode: Mode::Embedded,
            daemon: None,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// Run keyward with this module; PINs come only from the files given in `args`.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_keyward"));
        c.arg("--module").arg(&self.module).args(args);
        c.env_remove("KEYWARD_PIN")
            .env_remove("KEYWARD_SO_PIN")
            .env_remove("KEYWARD_NEW_PIN")
            .env_remove("KEYWARD_MODULE")
            .env_remove("KEYWARD_SOCKET")
            .env_remove("KEYWARD_IMPORT_PASSWORD");
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c.current_dir(self.dir.path());
        c.output().unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "keyward {args:?} failed ({:?}):\n{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let o = self.run(args);
        assert_eq!(
            o.status.code(),
            Some(code),
            "keyward {args:?}: stdout {}\nstderr {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stderr).unwrap()
    }

    /// Stop keywardd now, to show that the commands before went through it.
    pub fn stop_daemon(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// A token labelled `label` with both PINs set.
    pub fn token(&self, label: &str) -> String {
        if self.mode == Mode::Daemon {
            // keywardd lets only root create tokens; the temporary directory is ours, so its
            // owner is our effective uid.
            let uid = std::fs::metadata(self.dir.path()).unwrap().uid();
            assert_eq!(
                uid, 0,
                "keywardd creates tokens only for root: run the daemon-mode tests as root"
            );
        }
        let so = self.p("so.pin");
        let out = self.ok(&["token", "init", "--label", label, "--so-pin-source", &so]);
        let uri = out.trim().to_owned();
        assert!(uri.starts_with(&format!("pkcs11:token={label};")), "{uri}");
        let user = self.p("user.pin");
        self.ok(&[
            "pin",
            "set",
            &uri,
            "--so-pin-source",
            &so,
            "--new-pin-source",
            &user,
        ]);
        uri
    }

    pub fn list(&self, uri: &str) -> Vec<Value> {
        let pin = self.p("user.pin");
        let out = self.ok(&["list", uri, "--login", "--pin-source", &pin, "--json"]);
        serde_json::from_str::<Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn openssl(dir: &Path, args: &[&str]) -> Output {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

pub fn find<'a>(objs: &'a [Value], label: &str, class: &str) -> &'a Value {
    objs.iter()
        .find(|o| o["label"] == label && o["class"] == class)
        .unwrap_or_else(|| panic!("no {class} object {label:?} in {objs:#?}"))
}
