//! A Java 17 program using the SunPKCS11 provider against Keyward's module: the PKCS11 key store
//! lists the token's private keys that have a certificate under the same CKA_ID, signs with
//! SHA256withECDSA and SHA256withRSA in the token and verifies with the certificate in Java;
//! openssl must accept the signatures it writes.

mod common;
#[path = "apps/verify.rs"]
mod verify;

use std::path::{Path, PathBuf};

use common::Mode;
use common::apps::*;
use serde_json::Value;
use verify::openssl_verifies;

/// Compile the program into the test's directory; returns its class path.
fn compile(d: &Device) -> PathBuf {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/apps/SunPkcs11Sign.java");
    let classes = d.path("classes");
    run_ok(d.command("javac").arg("-d").arg(&classes).arg(&src));
    classes
}

/// SunPKCS11's configuration for the slot holding the token `device`.
fn config(d: &Device, name: &str, extra: &str) -> PathBuf {
    let tokens: Value = serde_json::from_str(&d.e.ok(&["token", "list", "--json"])).unwrap();
    let slot = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["label"] == TOKEN)
        .unwrap_or_else(|| panic!("no token {TOKEN} in {tokens:#}"))["slot_id"]
        .as_u64()
        .unwrap();
    let path = d.path(name);
    std::fs::write(
        &path,
        format!(
            "name = keyward\nlibrary = {}\nslot = {slot}\n{extra}",
            d.module().display()
        ),
    )
    .unwrap();
    path
}

fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

fn run_java(
    d: &Device,
    classes: &Path,
    conf: &Path,
    pin: &str,
    data: &Path,
) -> std::process::Output {
    d.command("java")
        .arg("-cp")
        .arg(classes)
        .arg("SunPkcs11Sign")
        .arg(conf)
        .arg(pin)
        .arg(data)
        .arg(d.path(""))
        .output()
        .unwrap()
}

fn sunpkcs11_signs_with_token_keys(mode: Mode) {
    let mut d = Device::new(mode);
    let ec = d.key_with_cert("ec:p256", "sig-ec", "01", "ec.device.test");
    let rsa = d.key_with_cert("rsa:2048", "sig-rsa", "a1b2", "rsa.device.test");
    // A key without a certificate is no key entry for SunPKCS11.
    d.e.ok(&[
        "key",
        "generate",
        "ec:p256",
        &d.token,
        "--label",
        "no-cert",
        "--id",
        "03",
        "--usage",
        "sign",
        "--pin-source",
        &d.p("user.pin"),
    ]);
    let data = d.path("data.bin");
    std::fs::write(&data, b"firmware image 1.2.3\n".repeat(100)).unwrap();
    let classes = compile(&d);
    let conf = config(&d, "sunpkcs11.cfg", "");

    let o = run_java(&d, &classes, &conf, &d.p("user.pin"), &data);
    let out = text(&o);
    assert!(
        o.status.success(),
        "java failed ({}):\n{out}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    let lines = json_lines(&out);

    let aliases: Vec<&Value> = lines.iter().filter(|l| l.get("alias").is_some()).collect();
    assert_eq!(aliases.len(), 2, "{out}");
    for (a, k, cn) in [
        (aliases[0], &ec, "CN=ec.device.test"),
        (aliases[1], &rsa, "CN=rsa.device.test"),
    ] {
        assert_eq!(a["alias"], k.label.as_str(), "{out}");
        assert_eq!(a["key_entry"], true, "{out}");
        assert_eq!(a["subject"], cn, "{out}");
    }

    let signed: Vec<&Value> = lines.iter().filter(|l| l.get("signed").is_some()).collect();
    assert_eq!(signed.len(), 2, "{out}");
    let dir = d.path("");
    let other = d.path("other.bin");
    std::fs::write(&other, b"firmware image 1.2.4\n".repeat(100)).unwrap();
    for (s, k, alg) in [
        (signed[0], &ec, "SHA256withECDSA"),
        (signed[1], &rsa, "SHA256withRSA"),
    ] {
        assert_eq!(s["signed"], k.label.as_str());
        assert_eq!(s["algorithm"], alg);
        assert_eq!(s["provider"], "SunPKCS11-keyward");
        assert_eq!(s["verified"], true);
        // Java's ECDSA signatures are DER already.
        let sig = d.path(&format!("{}.sig", k.label));
        assert!(
            openssl_verifies(&dir, &k.cert, true, &sig, &data),
            "{}",
            k.label
        );
        assert!(
            openssl_verifies(&dir, &k.public, false, &sig, &data),
            "{}",
            k.label
        );
        assert!(
            !openssl_verifies(&dir, &k.public, false, &sig, &other),
            "{}",
            k.label
        );
    }

    // A wrong PIN fails the key store's load.
    let o = run_java(&d, &classes, &conf, &d.p("wrong.pin"), &data);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(err.contains("CKR_PIN_INCORRECT"), "{err}");

    if mode == Mode::Daemon {
        // The JVM reached the token through keywardd: without it, no token.
        d.e.stop_daemon();
        let o = run_java(&d, &classes, &conf, &d.p("user.pin"), &data);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains("keyward daemon"),
            "{}\n{err}",
            text(&o)
        );
    }
}

both_modes!(sunpkcs11_signs_with_token_keys);
