//! A Python program using PyKCS11 against Keyward's module: it finds the token by label, logs
//! in with a PIN from a file, lists the keys, signs with EC P-256 (CKM_ECDSA_SHA256) and RSA
//! (CKM_SHA256_RSA_PKCS) keys and verifies in the token; the listing must match `keyward list`
//! and openssl must accept the signatures with the exported public keys and the certificates.

mod common;
#[path = "apps/verify.rs"]
mod verify;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use common::Mode;
use common::apps::*;
use serde_json::Value;
use verify::{ecdsa_der, openssl_verifies};

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/apps/pykcs11_sign.py")
}

/// python3 running the PyKCS11 script against the device's module.
fn pykcs11(d: &Device) -> Command {
    let mut c = d.command("python3");
    c.arg(script()).env("PKCS11_MODULE", d.module());
    c
}

fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

fn pykcs11_lists_signs_and_verifies(mode: Mode) {
    let mut d = Device::new(mode);
    let ec = d.key_with_cert("ec:p256", "sig-ec", "01", "ec.device.test");
    let rsa = d.key_with_cert("rsa:2048", "sig-rsa", "a1b2", "rsa.device.test");
    let data = d.path("data.bin");
    std::fs::write(&data, b"firmware image 1.2.3\n".repeat(100)).unwrap();
    let pin = d.p("user.pin");

    let o = run_ok(pykcs11(&d).args([
        "--token",
        TOKEN,
        "--pin-file",
        &pin,
        "--data",
        &data.display().to_string(),
        "--out",
        &d.p(""),
        "--sign",
        &ec.label,
        "--sign",
        &rsa.label,
    ]));
    let lines = json_lines(&text(&o));

    // The keys the script lists are the keys `keyward list` shows, with the same id and type.
    let listed: BTreeSet<(String, String, String, String)> = lines
        .iter()
        .filter(|l| l.get("class").is_some())
        .map(|l| {
            (
                l["class"].as_str().unwrap().to_owned(),
                l["label"].as_str().unwrap().to_owned(),
                l["id"].as_str().unwrap().to_owned(),
                l["key_type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let keyward: BTreeSet<(String, String, String, String)> =
        d.e.list(&d.token)
            .iter()
            .filter(|o| ["private", "public", "secret"].contains(&o["class"].as_str().unwrap()))
            .map(|o| {
                (
                    o["class"].as_str().unwrap().to_owned(),
                    o["label"].as_str().unwrap().to_owned(),
                    o["id"].as_str().unwrap().to_owned(),
                    o["key_type"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
    assert_eq!(listed, keyward);
    assert_eq!(listed.len(), 4, "{listed:?}");
    for (k, t) in [(&ec, "ec:p256"), (&rsa, "rsa:2048")] {
        for class in ["private", "public"] {
            let want = (class.into(), k.label.clone(), k.id.clone(), t.into());
            assert!(listed.contains(&want), "{want:?} not in {listed:?}");
        }
    }

    // Both signatures made and checked with C_Verify by the script...
    let signed: Vec<&Value> = lines.iter().filter(|l| l.get("signed").is_some()).collect();
    assert_eq!(signed.len(), 2, "{lines:?}");
    for (s, k, mech) in [
        (signed[0], &ec, "CKM_ECDSA_SHA256"),
        (signed[1], &rsa, "CKM_SHA256_RSA_PKCS"),
    ] {
        assert_eq!(s["signed"], k.label.as_str());
        assert_eq!(s["mechanism"], mech);
        assert_eq!(s["verified"], true);
    }

    // ...and checked by openssl with the exported public key and with the certificate.
    let dir = d.path("");
    let other = d.path("other.bin");
    std::fs::write(&other, b"firmware image 1.2.4\n".repeat(100)).unwrap();
    let raw = std::fs::read(d.path("sig-ec.sig")).unwrap();
    assert_eq!(raw.len(), 64, "P-256 r||s");
    let ec_der = d.path("sig-ec.der");
    std::fs::write(&ec_der, ecdsa_der(&raw)).unwrap();
    let rsa_sig = d.path("sig-rsa.sig");
    assert_eq!(std::fs::metadata(&rsa_sig).unwrap().len(), 256);
    for (k, sig) in [(&ec, &ec_der), (&rsa, &rsa_sig)] {
        assert!(
            openssl_verifies(&dir, &k.public, false, sig, &data),
            "{}",
            k.label
        );
        assert!(
            openssl_verifies(&dir, &k.cert, true, sig, &data),
            "{}",
            k.label
        );
        assert!(
            !openssl_verifies(&dir, &k.public, false, sig, &other),
            "{}",
            k.label
        );
    }
    // Each signature is bound to its key: the other key's certificate refuses it.
    assert!(!openssl_verifies(&dir, &rsa.cert, true, &ec_der, &data));

    // The PIN from the environment works too; a wrong PIN is refused by the module.
    let o = run_ok(
        pykcs11(&d)
            .env("PKCS11_PIN", d.pin())
            .args(["--data", &data.display().to_string()]),
    );
    assert_eq!(json_lines(&text(&o)).len(), 4);
    let o = pykcs11(&d)
        .args(["--pin-file", &d.p("wrong.pin"), "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("CKR_PIN_INCORRECT"), "{err}");

    if mode == Mode::Daemon {
        // The script reached the token through keywardd: without it, no token.
        d.e.stop_daemon();
        let o = pykcs11(&d)
            .args(["--pin-file", &pin, "--data"])
            .arg(&data)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains("keyward daemon"),
            "{err}"
        );
    }
}

both_modes!(pykcs11_lists_signs_and_verifies);
