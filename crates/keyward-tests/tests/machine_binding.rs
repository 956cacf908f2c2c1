//! Machine binding through the C ABI (SECURITY AUTH-06, BIND-01): a token created while a
//! machine secret is configured opens only where that secret is. Its storage directory,
//! moved and opened with another secret or none, shows no token and is not written; with
//! the right secret (from a key file or a systemd credential) it works wherever it lies.
//!
//! Each configuration runs in a child process of this test binary (the module reads its
//! configuration once, at C_Initialize).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::slot::Slot;

use common::{ROLE_ENV, SO_PIN, USER_PIN, env_var, is_keyward, module_path, pin, role};

const LABEL: &str = "machine-bound";
const DATA: &[u8] = b"bound data object value";
/// The child test that plays every role.
const CHILD: &str = "child";
/// Where a child finds the token file whose bytes it must leave alone.
const DB_ENV: &str = "KEYWARD_TEST_DB";

fn initialised() -> Pkcs11 {
    let p = Pkcs11::new(module_path()).expect("load the module");
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .expect("C_Initialize");
    p
}

fn slot_by_label(p: &Pkcs11, label: &str) -> Option<Slot> {
    p.get_slots_with_initialized_token()
        .expect("C_GetSlotList")
        .into_iter()
        .find(|s| p.get_token_info(*s).is_ok_and(|t| t.label() == label))
}

/// The roles a child plays, chosen by `ROLE_ENV`.
fn play(role: &str) {
    match role {
        // Create the bound token: SO and user PIN, one private data object.
        "create" => {
            let p = initialised();
            let free = p
                .get_all_slots()
                .expect("C_GetSlotList")
                .into_iter()
                .find(|s| p.get_token_info(*s).is_ok_and(|t| !t.token_initialized()))
                .expect("a free slot");
            p.init_token(free, &pin(SO_PIN), LABEL)
                .expect("C_InitToken");
            let slot = slot_by_label(&p, LABEL).expect("the new token is listed");
            let s = p.open_rw_session(slot).expect("C_OpenSession");
            s.login(UserType::So, Some(&pin(SO_PIN))).expect("SO login");
            s.init_pin(&pin(USER_PIN)).expect("C_InitPIN");
            s.logout().expect("C_Logout");
            s.login(UserType::User, Some(&pin(USER_PIN)))
                .expect("user login");
            s.create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Label(b"bound".to_vec()),
                Attribute::Value(DATA.to_vec()),
            ])
            .expect("C_CreateObject");
        }
        // The token is there and works: user login, the private object reads back.
        "present" => {
            let p = initialised();
            let slot = slot_by_label(&p, LABEL).expect("the bound token is listed");
            let s = p.open_ro_session(slot).expect("C_OpenSession");
            s.login(UserType::User, Some(&pin(USER_PIN)))
                .expect("user login with the right secret");
            let found = s
                .find_objects(&[Attribute::Label(b"bound".to_vec())])
                .expect("C_FindObjects");
            assert_eq!(found.len(), 1);
            let v = s
                .get_attributes(found[0], &[AttributeType::Value])
                .expect("C_GetAttributeValue");
            assert!(matches!(&v[..], [Attribute::Value(d)] if d == DATA));
        }
        // Another secret or none: no slot shows the token, only the free slot is listed, and
        // nothing (not even a C_InitToken in the free slot) touches the bound file.
        "absent" => {
            let db = PathBuf::from(env_var(DB_ENV));
            let before = std::fs::read(&db).expect("read the token file");
            let p = initialised();
            assert_eq!(slot_by_label(&p, LABEL), None, "the bound token is listed");
            let slots = p.get_all_slots().expect("C_GetSlotList");
            assert_eq!(slots.len(), 1, "only the free slot");
            let info = p.get_token_info(slots[0]).expect("C_GetTokenInfo");
            assert!(!info.token_initialized());
            p.init_token(slots[0], &pin(SO_PIN), "another token")
                .expect("C_InitToken of the free slot");
            drop(p);
            assert_eq!(
                std::fs::read(&db).expect("read the token file"),
                before,
                "the bound token's file was written"
            );
        }
        // The configured secret cannot be read: C_Initialize refuses to start.
        "refused" => {
            let p = Pkcs11::new(module_path()).expect("load the module");
            let r = p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
            assert!(
                matches!(
                    r,
                    Err(cryptoki::error::Error::Pkcs11(
                        cryptoki::error::RvError::GeneralError,
                        _
                    ))
                ),
                "{r:?}"
            );
        }
        other => panic!("unknown role {other}"),
    }
}

/// Runs only as a child (`ROLE_ENV` set); as a plain test it has nothing to do.
#[test]
fn child() {
    if let Some(r) = role() {
        play(&r);
    }
}

/// Run `role` in a child with configuration `conf` and extra environment.
fn run(role: &str, conf: &Path, envs: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
    cmd.args([CHILD, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, role)
        .env("KEYWARD_CONF", conf)
        .env_remove("KEYWARD_SOCKET")
        .env_remove("CREDENTIALS_DIRECTORY")
        .env_remove(common::STORAGE_ENV);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("spawn the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child {role} with {}: {}\nstdout:\n{stdout}\nstderr:\n{}",
        conf.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn write_private(path: &Path, bytes: &[u8], mode: u32) {
    std::fs::write(path, bytes).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A configuration file for `storage` with `machine_secret` (TOML value) if given.
fn conf(root: &Path, name: &str, storage: &Path, secret: Option<&str>) -> PathBuf {
    let mut text = format!(
        "storage_dir = \"{}\"\nlog_level = \"error\"\npin_retry_limit = 5\n",
        storage.display()
    );
    if let Some(s) = secret {
        text.push_str(&format!("machine_secret = \"{s}\"\n"));
    }
    text.push_str("[kdf]\nalgorithm = \"argon2id\"\nmemory_kib = 1024\niterations = 1\n");
    let path = root.join(name);
    std::fs::write(&path, text).expect("write the configuration");
    path
}

fn token_file(dir: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list the storage directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "db"))
        .collect();
    assert_eq!(files.len(), 1, "one token file in {}", dir.display());
    files.remove(0)
}

#[test]
fn moved_storage_opens_only_with_its_machine_secret() {
    if role().is_some() || !is_keyward() {
        return;
    }
    let root = tempfile::Builder::new()
        .prefix("keyward-machine-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("tmp dir");
    let root = root.path();
    let key_a = root.join("a.key");
    let key_b = root.join("b.key");
    let mut a = [0u8; 32];
    openssl::rand::rand_bytes(&mut a).expect("random secret");
    write_private(&key_a, &a, 0o600);
    write_private(&key_b, &[0x42; 32], 0o600);

    // Create the token with secret A.
    let tokens = root.join("tokens");
    let conf_a = conf(
        root,
        "a.toml",
        &tokens,
        Some(&format!("file:{}", key_a.display())),
    );
    run("create", &conf_a, &[]);
    let db = token_file(&tokens);
    let bytes = std::fs::read(&db).expect("token file");
    assert!(
        !bytes.windows(a.len()).any(|w| w == a),
        "secret in the token file"
    );

    // Move the storage directory, as a copy to another machine would.
    let moved = root.join("moved");
    std::fs::rename(&tokens, &moved).expect("move the storage directory");
    let db = moved.join(db.file_name().expect("file name"));

    // Another secret, or none: the token is not there, and its file is not written.
    let other = root.join("other");
    for (name, secret) in [
        ("b.toml", Some(format!("file:{}", key_b.display()))),
        ("none.toml", None),
    ] {
        let _ = std::fs::remove_dir_all(&other);
        copy_dir(&moved, &other);
        let copy = other.join(db.file_name().expect("file name"));
        let c = conf(root, name, &other, secret.as_deref());
        run("absent", &c, &[(DB_ENV, &copy)]);
    }

    // The right secret opens it where it now lies: from the key file ...
    let conf_moved = conf(
        root,
        "moved.toml",
        &moved,
        Some(&format!("file:{}", key_a.display())),
    );
    run("present", &conf_moved, &[]);
    // ... or as a systemd credential in $CREDENTIALS_DIRECTORY.
    let creds = root.join("credentials");
    std::fs::create_dir(&creds).expect("credentials dir");
    write_private(&creds.join("keyward-machine"), &a, 0o400);
    let conf_sys = conf(
        root,
        "systemd.toml",
        &moved,
        Some("systemd:keyward-machine"),
    );
    run(
        "present",
        &conf_sys,
        &[("CREDENTIALS_DIRECTORY", creds.as_path())],
    );
    // Without the credentials directory, or with a key file others can read, the module
    // does not start (rather than create unbound tokens).
    run("refused", &conf_sys, &[]);
    std::fs::set_permissions(&key_a, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    run("refused", &conf_moved, &[]);
    std::fs::set_permissions(&key_a, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    run("present", &conf_moved, &[]);
}

/// Copy the token files of `from` into a new directory `to` (mode 0700, files 0600).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir(to).expect("create the copy");
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    for e in std::fs::read_dir(from).expect("list") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|e| e == "db") {
            let t = to.join(p.file_name().expect("name"));
            std::fs::copy(&p, &t).expect("copy");
            std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
    }
}
