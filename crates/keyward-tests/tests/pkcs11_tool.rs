//! OpenSC's `pkcs11-tool` (Debian package `opensc`) as an independent client: token and PIN
//! initialisation, EC P-256 and RSA-2048 key pairs, signatures made by the tool and checked
//! both by the tool and by the openssl crate, object listing, and the tool's own `--test`.
//!
//! Each tool run is its own process loading the module. Each test has its own storage
//! directory and configuration, so the free slot is the only slot at its start.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use openssl::hash::MessageDigest;
use openssl::pkey::PKey;

use common::{SO_PIN, USER_PIN};

const TOOL: &str = "pkcs11-tool";

/// One test's own storage directory and configuration: the tool runs as separate processes,
/// so tests never share a token even when they run as threads of one process.
struct Tool {
    dir: PathBuf,
    conf: PathBuf,
}

impl Tool {
    fn new(name: &str) -> Tool {
        let dir = common::env().dir.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("keyward.toml");
        std::fs::write(
            &conf,
            format!(
                "storage_dir = \"{}\"\npin_retry_limit = {}\n[kdf]\nmemory_kib = 1024\niterations = 1\n",
                dir.join("tokens").display(),
                common::RETRY_LIMIT
            ),
        )
        .unwrap();
        std::fs::create_dir_all(dir.join("softhsm")).unwrap();
        std::fs::write(
            dir.join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\n",
                dir.join("softhsm").display()
            ),
        )
        .unwrap();
        Tool { dir, conf }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(TOOL)
            .arg("--module")
            .arg(common::module_path())
            .args(args)
            .env("KEYWARD_CONF", &self.conf)
            .env("SOFTHSM2_CONF", self.dir.join("softhsm2.conf"))
            .output()
            .unwrap_or_else(|e| panic!("{TOOL} (Debian package opensc) cannot run: {e}"))
    }

    /// Run the tool and require success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{TOOL} {args:?} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Initialise a token and its user PIN; returns the label.
    fn init(&self, label: &str) -> String {
        let out = self.ok(&["--init-token", "--label", label, "--so-pin", SO_PIN]);
        assert!(out.to_lowercase().contains("initialized"), "{out}");
        self.ok(&[
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

    fn keypair(&self, label: &str, key_type: &str, id: &str, key_label: &str) {
        self.ok(&[
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

    /// Sign a file with the tool and verify it with the tool: (data, signature).
    fn sign_and_verify(&self, label: &str, id: &str, mechanism: &str) -> (Vec<u8>, Vec<u8>) {
        let data = self.dir.join(format!("data-{id}"));
        let sig = self.dir.join(format!("sig-{id}"));
        std::fs::write(&data, b"signed by pkcs11-tool through Keyward").unwrap();
        self.ok(&[
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
        let out = self.ok(&[
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
    fn public_key(&self, label: &str, id: &str) -> PKey<openssl::pkey::Public> {
        let out = self.dir.join(format!("pub-{id}.der"));
        self.ok(&[
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
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn init_token_and_pin() {
    let t = Tool::new("init_token_and_pin");
    let label = t.init("tool-init");
    let slots = t.ok(&["--list-token-slots"]);
    assert!(slots.contains("tool-init"), "{slots}");
    assert!(slots.contains("PIN initialized"), "{slots}");
    // The user logs in with the PIN; a wrong PIN is refused.
    t.ok(&[
        "--token-label",
        &label,
        "--login",
        "--pin",
        USER_PIN,
        "--list-objects",
    ]);
    let bad = t.run(&[
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
    let t = Tool::new("ec_p256_keypair_signs_and_verifies");
    let label = t.init("tool-ec");
    t.keypair(&label, "EC:prime256v1", "01", "ec-key");
    let (data, sig) = t.sign_and_verify(&label, "01", "ECDSA-SHA256");
    assert_eq!(sig.len(), 64, "raw r || s");
    let pk = t.public_key(&label, "01");
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
    let t = Tool::new("rsa_2048_keypair_signs_and_verifies");
    let label = t.init("tool-rsa");
    t.keypair(&label, "rsa:2048", "02", "rsa-key");
    let (data, sig) = t.sign_and_verify(&label, "02", "SHA256-RSA-PKCS");
    assert_eq!(sig.len(), 256);
    let pk = t.public_key(&label, "02");
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
    let t = Tool::new("objects_are_listed");
    let label = t.init("tool-list");
    t.keypair(&label, "EC:prime256v1", "0a", "listed-ec");
    t.keypair(&label, "EC:secp384r1", "0b", "listed-p384");
    let public = t.ok(&["--token-label", &label, "--list-objects"]);
    assert!(
        public.contains("listed-ec") && public.contains("listed-p384"),
        "{public}"
    );
    assert!(public.contains("Public Key Object"), "{public}");
    assert!(
        !public.contains("Private Key Object"),
        "private keys need a login:\n{public}"
    );
    let all = t.ok(&[
        "--token-label",
        &label,
        "--login",
        "--pin",
        USER_PIN,
        "--list-objects",
    ]);
    assert_eq!(all.matches("Private Key Object").count(), 2, "{all}");
    let mechs = t.ok(&["--token-label", &label, "--list-mechanisms"]);
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
    let t = Tool::new("tool_self_test_passes");
    let label = t.init("tool-test");
    t.keypair(&label, "EC:prime256v1", "11", "test-ec");
    t.keypair(&label, "rsa:2048", "12", "test-rsa");
    // --allow-sw: the tool otherwise skips mechanisms without CKF_HW, i.e. all signatures.
    let out = t.run(&[
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
    let t = Tool::new("tool_thread_and_fork_tests_pass");
    t.init("tool-threads");
    // Two threads, each: C_Initialize (with locking), C_GetInfo, C_GetSlotList,
    // C_GetTokenInfo of slot 0.
    let out = t.run(&[
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
    let out = t.ok(&["--test-fork", "-L"]);
    assert!(out.contains("tool-threads"), "{out}");
}

#[test]
fn tool_ec_test_passes() {
    let t = Tool::new("tool_ec_test_passes");
    let label = t.init("tool-ec");
    // Generates a P-256 pair, signs with CKM_ECDSA_SHA1, changes CKA_ID/CKA_LABEL/CKA_SUBJECT
    // and deletes the pair again.
    let out = t.ok(&[
        "--token-label",
        &label,
        "--login",
        "--pin",
        USER_PIN,
        "--session-rw",
        "--test-ec",
        "--id",
        "21",
        "--key-type",
        "EC:prime256v1",
    ]);
    for step in [
        "Key pair generated",
        "Doing a signature",
        "Deleting the private and the public key again",
        "==> OK",
    ] {
        assert!(out.contains(step), "{step} in\n{out}");
    }
}
