//! End-to-end tests of the `keyward` binary against Keyward's module (embedded and through
//! keywardd) and SoftHSMv2: tokens,
//! PINs, key generation, listing, export checked with the openssl command, import with
//! CKA_ID links, deletion, and the documented exit codes.

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

/// Generate each key type, check the listing, and export public keys checked by openssl.
fn generate_list_export(e: &Env, types: &[(&str, &str)]) {
    let uri = e.token("gen");
    let pin = e.p("user.pin");
    for (spec, _) in types {
        let label = format!("k-{}", spec.replace(':', "-"));
        let out = e.ok(&[
            "key",
            "generate",
            spec,
            &format!("{uri};object={label}"),
            "--pin-source",
            &pin,
        ]);
        assert!(
            out.lines().all(|l| l.contains(&format!("object={label}"))),
            "{out}"
        );
    }
    let objs = e.list(&uri);
    for (spec, want_type) in types {
        let label = format!("k-{}", spec.replace(':', "-"));
        let pair = !spec.starts_with("aes") && !spec.starts_with("generic");
        let secret = find(&objs, &label, if pair { "private" } else { "secret-key" });
        assert_eq!(secret["key_type"], *want_type, "{secret}");
        assert_eq!(secret["sensitive"], true, "{secret}");
        assert_eq!(secret["extractable"], false, "{secret}");
        assert_eq!(secret["private"], true, "{secret}");
        // The URI listed names exactly this object.
        let listed = secret["uri"].as_str().unwrap();
        let again = e.list(listed);
        assert_eq!(again.len(), 1, "{listed}");
        if pair {
            let public = find(&objs, &label, "public");
            assert_eq!(public["id"], secret["id"], "a pair shares its CKA_ID");
            let pem = e.path(&format!("{label}.pem"));
            e.ok(&[
                "export",
                &format!("{uri};object={label}"),
                "-o",
                &pem.display().to_string(),
            ]);
            openssl(
                e.dir.path(),
                &[
                    "pkey",
                    "-pubin",
                    "-in",
                    &pem.display().to_string(),
                    "-noout",
                ],
            );
            // DER too, read back by openssl as DER.
            let der = e.path(&format!("{label}.der"));
            e.ok(&[
                "export",
                &format!("{uri};object={label};type=public"),
                "--der",
                "-o",
                &der.display().to_string(),
            ]);
            openssl(
                e.dir.path(),
                &[
                    "pkey",
                    "-pubin",
                    "-inform",
                    "DER",
                    "-in",
                    &der.display().to_string(),
                    "-noout",
                ],
            );
        }
    }
    // A secret key is never exported.
    if let Some((spec, _)) = types.iter().find(|(s, _)| s.starts_with("aes")) {
        let label = format!("k-{}", spec.replace(':', "-"));
        let err = e.fails(
            &[
                "export",
                &format!("{uri};object={label}"),
                "--login",
                "--pin-source",
                &pin,
            ],
            1,
        );
        assert!(err.contains("secret key"), "{err}");
    }
}

/// Import a PKCS#8 key with its certificate, a PKCS#12 bundle, an encrypted PKCS#8 key, a
/// PKCS#1 key, a SEC1 key and a data object; check the CKA_ID links and the round trip.
fn import_and_delete(e: &Env) {
    let uri = e.token("imp");
    let pin = e.p("user.pin");
    let d = e.dir.path();
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "ec.key",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-new",
            "-x509",
            "-key",
            "ec.key",
            "-subj",
            "/CN=device-1",
            "-days",
            "30",
            "-out",
            "ec.crt",
        ],
    );
    // Key then certificate, imported separately without ids: the public key hash links them.
    e.ok(&[
        "import",
        "ec.key",
        &format!("{uri};object=tls"),
        "--pin-source",
        &pin,
    ]);
    e.ok(&["import", "ec.crt", &uri, "--pin-source", &pin]);
    let objs = e.list(&uri);
    let key = find(&objs, "tls", "private");
    let cert = find(&objs, "device-1", "cert");
    assert_eq!(
        key["id"], cert["id"],
        "the certificate links to its key by CKA_ID"
    );
    assert_eq!(find(&objs, "tls", "public")["id"], key["id"]);
    // The certificate comes back byte for byte.
    e.ok(&[
        "export",
        &format!("{uri};object=device-1;type=cert"),
        "--der",
        "-o",
        "back.der",
    ]);
    let orig = openssl(d, &["x509", "-in", "ec.crt", "-outform", "DER"]).stdout;
    assert_eq!(std::fs::read(d.join("back.der")).unwrap(), orig);

    // PKCS#12 with an RSA key, its password from a file.
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "rsa.key",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-new",
            "-x509",
            "-key",
            "rsa.key",
            "-subj",
            "/CN=bundle",
            "-days",
            "30",
            "-out",
            "rsa.crt",
        ],
    );
    openssl(
        d,
        &[
            "pkcs12",
            "-export",
            "-inkey",
            "rsa.key",
            "-in",
            "rsa.crt",
            "-passout",
            "pass:p12-secret",
            "-out",
            "b.p12",
        ],
    );
    std::fs::write(d.join("p12.pass"), "p12-secret\n").unwrap();
    e.fails(
        &[
            "import",
            "b.p12",
            &format!("{uri};object=p12"),
            "--pin-source",
            &pin,
            "--password-source",
            "wrong.pin",
        ],
        3,
    );
    e.ok(&[
        "import",
        "b.p12",
        &format!("{uri};object=p12;id=%42"),
        "--pin-source",
        &pin,
        "--password-source",
        "p12.pass",
    ]);
    let objs = e.list(&format!("{uri};id=%42"));
    let classes: Vec<&str> = objs.iter().map(|o| o["class"].as_str().unwrap()).collect();
    assert_eq!(classes.len(), 3, "{objs:#?}");
    for c in ["private", "public", "cert"] {
        assert!(classes.contains(&c), "{classes:?}");
    }
    assert!(objs.iter().all(|o| o["label"] == "p12" && o["id"] == "42"));
    assert_eq!(find(&objs, "p12", "private")["key_type"], "rsa:2048");

    // Encrypted PKCS#8, PKCS#1 and SEC1.
    openssl(
        d,
        &[
            "pkcs8",
            "-topk8",
            "-in",
            "rsa.key",
            "-v2",
            "aes-256-cbc",
            "-passout",
            "pass:p12-secret",
            "-out",
            "enc.key",
        ],
    );
    e.ok(&[
        "import",
        "enc.key",
        &format!("{uri};object=enc"),
        "--pin-source",
        &pin,
        "--password-source",
        "p12.pass",
    ]);
    openssl(
        d,
        &["rsa", "-in", "rsa.key", "-traditional", "-out", "pkcs1.key"],
    );
    e.ok(&[
        "import",
        "pkcs1.key",
        &format!("{uri};object=pkcs1"),
        "--pin-source",
        &pin,
    ]);
    openssl(d, &["ec", "-in", "ec.key", "-out", "sec1.key"]);
    let sec1 = std::fs::read_to_string(d.join("sec1.key")).unwrap();
    assert!(sec1.contains("BEGIN EC PRIVATE KEY"), "{sec1}");
    e.ok(&[
        "import",
        "sec1.key",
        &format!("{uri};object=sec1"),
        "--pin-source",
        &pin,
    ]);
    let objs = e.list(&uri);
    assert_eq!(
        find(&objs, "enc", "private")["id"],
        find(&objs, "pkcs1", "private")["id"]
    );
    assert_eq!(find(&objs, "sec1", "private")["key_type"], "ec:p256");
    assert_eq!(find(&objs, "sec1", "private")["extractable"], false);

    // A data object round-trips.
    std::fs::write(d.join("serial.bin"), b"\x00serial-0042\xff").unwrap();
    e.ok(&[
        "import",
        "serial.bin",
        &format!("{uri};object=serial"),
        "--data",
        "--pin-source",
        &pin,
    ]);
    e.ok(&[
        "export",
        &format!("{uri};object=serial;type=data"),
        "--login",
        "--pin-source",
        &pin,
        "-o",
        "serial.out",
    ]);
    assert_eq!(
        std::fs::read(d.join("serial.out")).unwrap(),
        b"\x00serial-0042\xff"
    );
    // The URI `list` prints for it names it (a data object has no CKA_ID, so no `id=`).
    let objs = e.list(&uri);
    let listed = find(&objs, "serial", "data")["uri"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!listed.contains("id="), "{listed}");
    e.ok(&[
        "export",
        &listed,
        "--login",
        "--pin-source",
        &pin,
        "-o",
        "serial2.out",
    ]);
    assert_eq!(
        std::fs::read(d.join("serial2.out")).unwrap(),
        b"\x00serial-0042\xff"
    );

    // Delete: a label naming a pair is ambiguous without --all; a certificate alone is not.
    let err = e.fails(
        &["delete", &format!("{uri};object=tls"), "--pin-source", &pin],
        1,
    );
    assert!(err.contains("2 objects match"), "{err}");
    e.ok(&[
        "delete",
        &format!("{uri};object=device-1;type=cert"),
        "--pin-source",
        &pin,
    ]);
    e.ok(&[
        "delete",
        &format!("{uri};object=tls"),
        "--all",
        "--pin-source",
        &pin,
    ]);
    let objs = e.list(&uri);
    assert!(
        objs.iter()
            .all(|o| o["label"] != "tls" && o["label"] != "device-1"),
        "{objs:#?}"
    );
    e.fails(
        &["delete", &format!("{uri};object=tls"), "--pin-source", &pin],
        2,
    );
}

/// Exit codes: a wrong PIN is 3 and names the CKR code; a missing object 2; a bad URI 1.
fn error_codes(e: &Env) {
    let uri = e.token("err");
    let wrong = e.p("wrong.pin");
    let err = e.fails(&["list", &uri, "--login", "--pin-source", &wrong], 3);
    assert!(
        err.contains("wrong PIN") && err.contains("CKR_PIN_INCORRECT"),
        "{err}"
    );
    let err = e.fails(&["export", &format!("{uri};object=nothing-here")], 2);
    assert!(err.contains("no object matches"), "{err}");
    e.fails(&["list", "pkcs11:token=err;token=again"], 1);
    e.fails(&["token", "info", "pkcs11:token=no-such-token"], 2);
    e.fails(&["key", "generate", "rsa:1000", &uri], 1);
    // No PIN source and no terminal: a PIN error, not a hang.
    let err = e.fails(
        &["key", "generate", "ec:p256", &format!("{uri};object=x")],
        3,
    );
    assert!(err.contains("PIN"), "{err}");
    // The PIN from the environment works, and from the URI's pin-source.
    let mut c = Command::new(env!("CARGO_BIN_EXE_keyward"));
    c.arg("--module")
        .arg(&e.module)
        .args(["list", &uri, "--login", "--json"]);
    c.env("KEYWARD_PIN", USER_PIN).env_remove("KEYWARD_SOCKET");
    for (k, v) in &e.vars {
        c.env(k, v);
    }
    assert!(c.output().unwrap().status.success());
    let src = format!("{uri}?pin-source={}", e.p("user.pin"));
    e.ok(&["list", &src, "--json"]);
    // pin change, then the old PIN is wrong.
    let new = e.path("new.pin");
    std::fs::write(&new, "changed-pin-77\n").unwrap();
    e.ok(&[
        "pin",
        "change",
        &uri,
        "--pin-source",
        &e.p("user.pin"),
        "--new-pin-source",
        &new.display().to_string(),
    ]);
    e.fails(
        &["list", &uri, "--login", "--pin-source", &e.p("user.pin")],
        3,
    );
    e.ok(&[
        "list",
        &uri,
        "--login",
        "--pin-source",
        &new.display().to_string(),
    ]);
    // The SO changes its own PIN, then uses the new one.
    let so2 = e.path("so2.pin");
    std::fs::write(&so2, "so-pin-changed-9\n").unwrap();
    let so2 = so2.display().to_string();
    e.ok(&[
        "pin",
        "change",
        &uri,
        "--so",
        "--so-pin-source",
        &e.p("so.pin"),
        "--new-pin-source",
        &so2,
    ]);
    e.fails(
        &[
            "pin",
            "unlock",
            &uri,
            "--so-pin-source",
            &e.p("so.pin"),
            "--new-pin-source",
            &e.p("user.pin"),
        ],
        3,
    );
    std::fs::copy(&so2, e.path("so.pin")).unwrap();
    // The SO resets it.
    e.ok(&[
        "pin",
        "unlock",
        &uri,
        "--so-pin-source",
        &e.p("so.pin"),
        "--new-pin-source",
        &e.p("user.pin"),
    ]);
    e.ok(&["list", &uri, "--login", "--pin-source", &e.p("user.pin")]);
}

mod keyward_module {
    use super::*;

    const TYPES: &[(&str, &str)] = &[
        ("rsa:2048", "rsa:2048"),
        ("ec:p256", "ec:p256"),
        ("ec:p384", "ec:p384"),
        ("ec:p521", "ec:p521"),
        ("ec:secp256k1", "ec:secp256k1"),
        ("ed25519", "ed25519"),
        ("ed448", "ed448"),
        ("x25519", "x25519"),
        ("aes:128", "aes:128"),
        ("aes:256", "aes:256"),
        ("generic:256", "generic:256"),
    ];

    fn generate_list_export(mode: Mode) {
        super::generate_list_export(&Env::keyward_in(mode), TYPES);
    }

    fn import_and_delete(mode: Mode) {
        super::import_and_delete(&Env::keyward_in(mode));
    }

    fn error_codes(mode: Mode) {
        super::error_codes(&Env::keyward_in(mode));
    }

    fn slots_tokens_and_mechanisms(mode: Mode) {
        let mut e = Env::keyward_in(mode);
        assert!(e.keyward);
        let uri = e.token("info");
        let slots: Value = serde_json::from_str(&e.ok(&["slots", "--json"])).unwrap();
        assert!(
            slots
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["label"] == "info" && s["uri"] == uri.as_str())
        );
        let tokens: Value = serde_json::from_str(&e.ok(&["token", "list", "--json"])).unwrap();
        assert_eq!(tokens[0]["uri"], uri.as_str());
        let info: Value = serde_json::from_str(&e.ok(&["token", "info", &uri, "--json"])).unwrap();
        let flags: Vec<&str> = info["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        assert!(
            flags.contains(&"user_pin_initialized") && flags.contains(&"token_initialized"),
            "{flags:?}"
        );
        let mechs: Value = serde_json::from_str(&e.ok(&["mechanisms", &uri, "--json"])).unwrap();
        let ecdsa = mechs
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["mechanism"] == "CKM_ECDSA")
            .unwrap();
        assert!(
            ecdsa["flags"]
                .as_array()
                .unwrap()
                .contains(&Value::from("sign"))
        );
        // Every mechanism is listed by its spec name, those cryptoki cannot name included.
        let names: Vec<&str> = mechs
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["mechanism"].as_str().unwrap())
            .collect();
        for m in [
            "CKM_CHACHA20_POLY1305",
            "CKM_CHACHA20_KEY_GEN",
            "CKM_AES_KEY_WRAP_KWP",
            "CKM_SHA3_256_HMAC",
            "CKM_ECDSA_SHA3_256",
        ] {
            assert!(names.contains(&m), "{m} missing from {names:?}");
        }
        assert!(!names.iter().any(|n| n.starts_with("0x")), "{names:?}");
        let chacha = mechs
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["mechanism"] == "CKM_CHACHA20_POLY1305")
            .unwrap();
        assert_eq!(chacha["value"], 0x4021);
        assert!(
            chacha["flags"]
                .as_array()
                .unwrap()
                .contains(&Value::from("message_encrypt"))
        );
        match mode {
            // The engine is in keyward itself: no daemon, and the token is still there.
            Mode::Embedded => {
                assert!(e.daemon.is_none());
                let tokens: Value =
                    serde_json::from_str(&e.ok(&["token", "list", "--json"])).unwrap();
                assert_eq!(tokens[0]["uri"], uri.as_str());
            }
            // Everything above went through keywardd: without it the module cannot start.
            Mode::Daemon => {
                e.stop_daemon();
                let err = e.fails(&["slots", "--json"], 4);
                assert!(
                    err.contains("CKR_DEVICE_ERROR") && err.contains("keyward daemon"),
                    "{err}"
                );
            }
        }
    }

    fn completions_man_pages_and_help(mode: Mode) {
        let e = Env::keyward_in(mode);
        let bash = e.ok(&["completions", "bash"]);
        assert!(bash.contains("keyward") && bash.contains("generate"));
        e.ok(&["man", &e.p("man")]);
        for page in ["keyward.1", "keyward-key-generate.1", "keyward-import.1"] {
            let text = std::fs::read_to_string(e.path("man").join(page)).unwrap();
            assert!(text.contains(".TH"), "{page}");
        }
        let help = e.ok(&["--help"]);
        assert!(
            help.contains("Exit codes") && help.contains("Examples"),
            "{help}"
        );
        let help = e.ok(&["key", "generate", "--help"]);
        assert!(help.contains("keyward key generate ec:p256"), "{help}");
    }

    mod embedded {
        use super::Mode;

        #[test]
        fn generate_list_export() {
            super::generate_list_export(Mode::Embedded);
        }

        #[test]
        fn import_and_delete() {
            super::import_and_delete(Mode::Embedded);
        }

        #[test]
        fn error_codes() {
            super::error_codes(Mode::Embedded);
        }

        #[test]
        fn slots_tokens_and_mechanisms() {
            super::slots_tokens_and_mechanisms(Mode::Embedded);
        }

        #[test]
        fn completions_man_pages_and_help() {
            super::completions_man_pages_and_help(Mode::Embedded);
        }
    }

    mod daemon {
        use super::Mode;

        #[test]
        fn generate_list_export() {
            super::generate_list_export(Mode::Daemon);
        }

        #[test]
        fn import_and_delete() {
            super::import_and_delete(Mode::Daemon);
        }

        #[test]
        fn error_codes() {
            super::error_codes(Mode::Daemon);
        }

        #[test]
        fn slots_tokens_and_mechanisms() {
            super::slots_tokens_and_mechanisms(Mode::Daemon);
        }

        #[test]
        fn completions_man_pages_and_help() {
            super::completions_man_pages_and_help(Mode::Daemon);
        }
    }
}

mod softhsm {
    use super::*;

    #[test]
    fn generate_list_export() {
        if let Some(e) = Env::softhsm() {
            assert!(!e.keyward);
            super::generate_list_export(
                &e,
                &[
                    ("rsa:2048", "rsa:2048"),
                    ("ec:p256", "ec:p256"),
                    ("ec:p384", "ec:p384"),
                    ("ed25519", "ed25519"),
                    ("aes:256", "aes:256"),
                    ("generic:256", "generic:256"),
                ],
            );
        }
    }

    #[test]
    fn import_and_delete() {
        if let Some(e) = Env::softhsm() {
            super::import_and_delete(&e);
        }
    }

    #[test]
    fn error_codes() {
        if let Some(e) = Env::softhsm() {
            super::error_codes(&e);
        }
    }
}
