//! p11-kit against Keyward's module, registered by dist/p11-kit/keyward.module: `p11-kit
//! list-modules` shows the module and its token, and a program loading p11-kit-proxy.so
//! (pkcs11-tool here) reaches the token and signs with its keys (checked by openssl).
//!
//! p11-kit reads user configuration (~/.config/pkcs11/modules/) only in programs not running
//! as root, so those runs happen in a user namespace as uid 1000 (the same process outside,
//! with the same access to the module's files and to keywardd). The system-wide registration
//! is run in a private mount namespace with the dist file, unchanged, in place of
//! /usr/share/p11-kit/modules: nothing outside the test directory changes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::apps::*;
use common::{Mode, openssl};

const PROXY: &str = "/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so";
/// p11-kit's module directory, where a bare `module:` name is looked up.
const MODULE_DIR: &str = "/usr/lib/x86_64-linux-gnu/pkcs11";
const PACKAGE_MODULES: &str = "/usr/share/p11-kit/modules";

/// The module configuration shipped for system-wide registration.
fn dist_module() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/p11-kit/keyward.module");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `cmd` run with the module's environment and the test directory as working directory,
/// without the outer environment's p11-kit or Keyward settings.
fn command(d: &Device, program: &str, args: &[&str]) -> Command {
    require(program);
    let mut c = Command::new(program);
    c.args(args)
        .env_remove("P11_KIT_NO_USER_CONFIG")
        .env_remove("KEYWARD_PIN")
        .env_remove("KEYWARD_SOCKET")
        .env_remove("KEYWARD_CONF")
        .current_dir(d.path(""));
    for (k, v) in &d.e.vars {
        c.env(k, v);
    }
    c
}

/// A HOME with dist/p11-kit/keyward.module as a user module, its `module:` line (only) made
/// the built module's absolute path; `user-config: only` keeps the machine's other modules
/// out of the test.
fn user_home(d: &Device) -> PathBuf {
    let home = d.path("home");
    let conf = home.join(".config/pkcs11");
    std::fs::create_dir_all(conf.join("modules")).unwrap();
    let dist = dist_module();
    let mut replaced = 0;
    let module: Vec<String> = dist
        .lines()
        .map(|l| {
            if l.starts_with("module:") {
                replaced += 1;
                format!("module: {}", d.module().display())
            } else {
                l.to_owned()
            }
        })
        .collect();
    assert_eq!(replaced, 1, "one module: line in the dist file:\n{dist}");
    std::fs::write(
        conf.join("modules/keyward.module"),
        module.join("\n") + "\n",
    )
    .unwrap();
    std::fs::write(conf.join("pkcs11.conf"), "user-config: only\n").unwrap();
    home
}

/// `program args` as uid 1000 in a user namespace, with `home` as HOME: p11-kit skips user
/// configuration for uid 0.
fn as_user(d: &Device, home: &Path, program: &str, args: &[&str]) -> Command {
    require(program);
    let mut full = vec!["--user", "--map-user=1000", "--map-group=1000", program];
    full.extend_from_slice(args);
    let mut c = command(d, "unshare", &full);
    c.env("HOME", home);
    c
}

/// The `p11-kit list-modules` entry of the module whose line starts with `name:`: that line
/// and the indented ones after it.
fn module_entry(out: &str, name: &str) -> String {
    let mut lines = out
        .lines()
        .skip_while(|l| !l.starts_with(&format!("{name}: ")));
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("no module {name} in p11-kit list-modules:\n{out}"));
    let mut entry = format!("{first}\n");
    for l in lines.take_while(|l| l.starts_with([' ', '\t'])) {
        entry.push_str(l);
        entry.push('\n');
    }
    entry
}

fn token_serial(d: &Device) -> String {
    d.token
        .split(';')
        .find_map(|p| p.strip_prefix("serial="))
        .unwrap()
        .to_owned()
}

/// The module's entry shows the token `device` with its serial number and flags.
fn assert_lists_device(d: &Device, entry: &str) {
    assert!(entry.contains("library-manufacturer: Keyward"), "{entry}");
    assert!(entry.contains("token: device\n"), "{entry}");
    assert!(
        entry.contains(&format!("serial-number: {}", token_serial(d))),
        "{entry}"
    );
    assert!(entry.contains("token-initialized"), "{entry}");
    assert!(entry.contains("login-required"), "{entry}");
}

/// Sign `data.txt` through `module` with pkcs11-tool by CKA_ID and check the signatures with
/// openssl and the public keys exported by keyward. `wrap` runs the program (user or mount
/// namespace).
fn sign_through_proxy(d: &Device, keys: &[(&KeyCert, &str)], wrap: &dyn Fn(&[&str]) -> Command) {
    let listing = text(&run_ok(&mut wrap(&[
        "pkcs11-tool",
        "--module",
        PROXY,
        "-L",
    ])));
    assert!(listing.contains("token label        : device"), "{listing}");
    assert!(
        listing.contains(&format!("serial num         : {}", token_serial(d))),
        "{listing}"
    );
    std::fs::write(d.path("data.txt"), "signed through p11-kit-proxy\n").unwrap();
    let pin = d.pin();
    for (kc, mech) in keys {
        let sig = format!("{}.sig", kc.label);
        let mut args = vec![
            "pkcs11-tool",
            "--module",
            PROXY,
            "--token-label",
            "device",
            "--login",
            "--pin",
            pin,
            "--sign",
            "-m",
            mech,
            "--id",
            &kc.id,
            "-i",
            "data.txt",
            "-o",
            &sig,
        ];
        if mech.starts_with("ECDSA") {
            args.extend_from_slice(&["--signature-format", "openssl"]);
        }
        run_ok(&mut wrap(&args));
        let o = openssl(
            d.path("").as_path(),
            &[
                "dgst",
                "-sha256",
                "-verify",
                &kc.public.display().to_string(),
                "-signature",
                &sig,
                "data.txt",
            ],
        );
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("Verified OK"),
            "{}",
            kc.label
        );
    }
}

fn user_module_config_lists_the_token_and_the_proxy_signs(mode: Mode) {
    let d = Device::new(mode);
    let rsa = d.key_with_cert("rsa:2048", "tls-rsa", "01", "p11kit-rsa");
    let ec = d.key_with_cert("ec:p256", "tls-ec", "02", "p11kit-ec");
    let home = user_home(&d);

    let out = text(&run_ok(&mut as_user(
        &d,
        &home,
        "p11-kit",
        &["list-modules"],
    )));
    let entry = module_entry(&out, "keyward");
    assert!(
        entry.starts_with(&format!("keyward: {}\n", d.module().display())),
        "{entry}"
    );
    assert_lists_device(&d, &entry);

    sign_through_proxy(
        &d,
        &[(&ec, "ECDSA-SHA256"), (&rsa, "SHA256-RSA-PKCS")],
        &|args| as_user(&d, &home, args[0], &args[1..]),
    );
}

fn root_ignores_user_module_config(mode: Mode) {
    // Shows why the other runs use a user namespace: as uid 0, p11-kit does not read
    // ~/.config/pkcs11, so a user module file does not register Keyward for root.
    let d = Device::new(mode);
    let home = user_home(&d);
    let mut c = command(
        &d,
        "unshare",
        &["--user", "--map-root-user", "p11-kit", "list-modules"],
    );
    c.env("HOME", &home);
    let out = text(&run_ok(&mut c));
    assert!(!out.contains("keyward:"), "{out}");
}

/// `args` in a private mount namespace (owned by a user namespace, so no privilege is needed)
/// where the package module directory holds only the dist file, unchanged, and p11-kit's
/// module directory only libkeyward_pkcs11.so.
fn system_wide(d: &Device, args: &[&str]) -> Command {
    let modules = d.path("system/modules");
    let libs = d.path("system/pkcs11");
    if !modules.exists() {
        std::fs::create_dir_all(&modules).unwrap();
        std::fs::create_dir_all(&libs).unwrap();
        std::fs::write(modules.join("keyward.module"), dist_module()).unwrap();
        std::os::unix::fs::symlink(d.module(), libs.join("libkeyward_pkcs11.so")).unwrap();
    }
    let script = format!(
        "mount --bind \"$1\" {PACKAGE_MODULES} && mount --bind \"$2\" {MODULE_DIR} && shift 2 && exec \"$@\""
    );
    let mut full = vec![
        "--user",
        "--map-root-user",
        "--mount",
        "sh",
        "-c",
        &script,
        "sh",
    ];
    let (m, l) = (modules.display().to_string(), libs.display().to_string());
    full.push(&m);
    full.push(&l);
    full.extend_from_slice(args);
    let mut c = command(d, "unshare", &full);
    // Only the system directories: no user configuration (uid 0 inside would skip it anyway).
    c.env("P11_KIT_NO_USER_CONFIG", "1");
    c
}

fn system_module_config_lists_the_token_and_the_proxy_signs(mode: Mode) {
    let d = Device::new(mode);
    let rsa = d.key_with_cert("rsa:2048", "tls-rsa", "01", "p11kit-rsa");
    let ec = d.key_with_cert("ec:p256", "tls-ec", "02", "p11kit-ec");
    require("p11-kit");

    let out = text(&run_ok(&mut system_wide(&d, &["p11-kit", "list-modules"])));
    // The bare name, found in p11-kit's module directory.
    let entry = module_entry(&out, "keyward");
    assert!(
        entry.starts_with("keyward: libkeyward_pkcs11.so\n"),
        "{entry}"
    );
    assert_lists_device(&d, &entry);

    require("pkcs11-tool");
    sign_through_proxy(
        &d,
        &[(&ec, "ECDSA-SHA256"), (&rsa, "SHA256-RSA-PKCS")],
        &|args| system_wide(&d, args),
    );
}

both_modes!(
    user_module_config_lists_the_token_and_the_proxy_signs,
    root_ignores_user_module_config,
    system_module_config_lists_the_token_and_the_proxy_signs,
);
