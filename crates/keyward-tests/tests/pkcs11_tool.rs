//! OpenSC's `pkcs11-tool` (Debian package `opensc`) as an independent client: token and PIN
//! initialisation, EC P-256 and RSA-2048 key pairs, signatures made by the tool and checked
//! both by the tool and by the openssl crate, object listing, and the tool's own `--test`.
//!
//! Each tool run is its own process loading the module; each test has its own storage
//! directory (this process's), so the free slot is the only slot at the start.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use openssl::hash::MessageDigest;
use openssl::pkey::PKey;

use common::{SO_PIN, USER_PIN};

const TOOL: &str = "pkcs11-tool";

fn run(args: &[&str]) -> Output {
    let env = common::env();
    let module = common::module_path();
    Command::new(TOOL)
        .arg("--module")
        .arg(&module)
        .args(args)
        .env("KEYWARD_CONF", &env.conf_path)
        .env("SOFTHSM2_CONF", env.dir.join("softhsm2.conf"))
        .output()
        .unwrap_or_else(|e| panic!("{TOOL} (Debian package opensc) cannot run: {e}"))
}

/// Run the tool and require success; returns stdout.
fn ok(args: &[&str]) -> String {
    let out = run(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{TOOL} {args:?} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn work(name: &str) -> PathBuf {
    let d = common::env().dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Initialise a token and its user PIN with the tool; returns the label.
fn init(label: &str) -> String {
    let out = ok(&["--init-token", "--label", label, "--so-pin", SO_PIN]);
    assert!(out.to_lowercase().contains("initialized"), "{out}");
    ok(&[
        "--token-label",
        label,
        "--init-pin",
        "--so-pin",
        SO_PIN,
        "--pin",
        USER_PIN,
    ]);
    label.to_string()
}

fn keypair(label: &str, key_type: &str, id: &str, key_label: &str) {
    ok(&[
        "--token-label",
        label,
        "--login",
        "--pin",
        USER_PIN,
        "--keypairgen",
        "--key-type",
        key_type,
        "--id",
        id,
        "--label",
        key_label,
    ]);
}

fn sign_and_verify(label: &str, id: &str, mechanism: &str, dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let data = dir.join(format!("data-{id}"));
    let sig = dir.join(format!("sig-{id}"));
    std::fs::write(&data, b"signed by pkcs11-tool through Keyward").unwrap();
    ok(&[
        "--token-label",
        label,
        "--login",
        "--pin",
        USER_PIN,
        "--sign",
        "--mechanism",
        mechanism,
        "--id",
        id,
        "--input-file",
        s(&data),
        "--output-file",
        s(&sig),
    ]);
    let out = ok(&[
        "--token-label",
        label,
        "--login",
        "--pin",
        USER_PIN,
        "--verify",
        "--mechanism",
        mechanism,
        "--id",
        id,
        "--input-file",
        s(&data),
        "--signature-file",
        s(&sig),
    ]);
    assert!(out.contains("Signature is valid"), "{out}");
    (std::fs::read(&data).unwrap(), std::fs::read(&sig).unwrap())
}

/// The public key of `id` as exported by the tool (SubjectPublicKeyInfo DER).
fn public_key(label: &str, id: &str, dir: &Path) -> PKey<openssl::pkey::Public> {
    let out = dir.join(format!("pub-{id}.der"));
    ok(&[
        "--token-label",
        label,
        "--read-object",
        "--type",
        "pubkey",
        "--id",
        id,
        "--output-file",
        s(&out),
    ]);
    let der = std::fs::read(&out).unwrap();
    PKey::public_key_from_der(&der).expect("the exported public key is SPKI DER")
}

#[test]
fn init_token_and_pin() {
    let label = init("tool-init");
    let slots = ok(&["--list-token-slots"]);
    assert!(slots.contains("tool-init"), "{slots}");
    assert!(slots.contains("PIN initialized"), "{slots}");
    // The user logs in with the PIN; a wrong PIN is refused.
    ok(&[
        "--token-label",
        &label,
        "--login",
        "--pin",
        USER_PIN,
        "--list-objects",
    ]);
    let bad = run(&[
        "--token-label",
        &label,
        "--login",
        "--pin",
        "wrong-pin",
        "--list-objects",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("CKR_PIN_INCORRECT"));
}

#[test]
fn ec_p256_keypair_signs_and_verifies() {
    let label = init("tool-ec");
    let dir = work("tool-ec");
    keypair(&label, "EC:prime256v1", "01", "ec-key");
    let (data, sig) = sign_and_verify(&label, "01", "ECDSA-SHA256", &dir);
    assert_eq!(sig.len(), 64, "raw r || s");
    let pk = public_key(&label, "01", &dir);
    let der = {
        let r = openssl::bn::BigNum::from_slice(&sig[..32]).unwrap();
        let s = openssl::bn::BigNum::from_slice(&sig[32..]).unwrap();
        openssl::ecdsa::EcdsaSig::from_private_components(r, s)
            .unwrap()
            .to_der()
            .unwrap()
    };
    let mut v = openssl::sign::Verifier::new(MessageDigest::sha256(), &pk).unwrap();
    v.update(&data).unwrap();
    assert!(
        v.verify(&der).unwrap(),
        "openssl verifies the tool's signature"
    );
}

#[test]
fn rsa_2048_keypair_signs_and_verifies() {
    let label = init("tool-rsa");
    let dir = work("tool-rsa");
    keypair(&label, "rsa:2048", "02", "rsa-key");
    let (data, sig) = sign_and_verify(&label, "02", "SHA256-RSA-PKCS", &dir);
    assert_eq!(sig.len(), 256);
    let pk = public_key(&label, "02", &dir);
    assert_eq!(pk.bits(), 2048);
    let mut v = openssl::sign::Verifier::new(MessageDigest::sha256(), &pk).unwrap();
    v.update(&data).unwrap();
    assert!(
        v.verify(&sig).unwrap(),
        "openssl verifies the tool's signature"
    );
}

#[test]
fn objects_are_listed() {
    let label = init("tool-list");
    keypair(&label, "EC:prime256v1", "0a", "listed-ec");
    keypair(&label, "EC:secp384r1", "0b", "listed-p384");
    let public = ok(&["--token-label", &label, "--list-objects"]);
    assert!(
        public.contains("listed-ec") && public.contains("listed-p384"),
        "{public}"
    );
    assert!(public.contains("Public Key Object"), "{public}");
    assert!(
        !public.contains("Private Key Object"),
        "private keys need a login:\n{public}"
    );
    let all = ok(&[
        "--token-label",
        &label,
        "--login",
        "--pin",
        USER_PIN,
        "--list-objects",
    ]);
    assert_eq!(all.matches("Private Key Object").count(), 2, "{all}");
    let mechs = ok(&["--token-label", &label, "--list-mechanisms"]);
    for m in [
        "ECDSA",
        "ECDSA-SHA256",
        "SHA256-RSA-PKCS",
        "AES-GCM",
        "SHA256",
    ] {
        assert!(mechs.contains(m), "{m} in\n{mechs}");
    }
}

#[test]
fn tool_self_test_passes() {
    let label = init("tool-test");
    keypair(&label, "EC:prime256v1", "11", "test-ec");
    keypair(&label, "rsa:2048", "12", "test-rsa");
    // --allow-sw: the tool otherwise skips mechanisms without CKF_HW, i.e. all signatures.
    let out = run(&[
        "--token-label",
        &label,
        "--login",
        "--pin",
        USER_PIN,
        "--test",
        "--allow-sw",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("No errors"),
        "pkcs11-tool --test ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    for part in ["SHA256: OK", "SHA256-RSA-PKCS: OK", "RSA-PKCS: OK"] {
        assert!(stdout.contains(part), "{part} in\n{stdout}");
    }
}

#[test]
fn tool_thread_and_fork_tests_pass() {
    init("tool-threads");
    // Two threads, each: C_Initialize (with locking), C_GetInfo, C_GetSlotList,
    // C_GetTokenInfo of slot 0.
    let out = run(&[
        "--test-threads",
        "ILGISLT0",
        "--test-threads",
        "ILGISLT0",
        "-L",
    ]);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && all.contains("all threads have ended with CKR_OK"),
        "--test-threads ({}):\n{all}",
        out.status
    );
    // C_Initialize in a forked child of an initialised process.
    let out = ok(&["--test-fork", "-L"]);
    assert!(out.contains("tool-threads"), "{out}");
}
