//! End-to-end tests of keyward's crypto commands against Keyward's module (embedded and through
//! keywardd) and SoftHSMv2, each result checked by the openssl command: signatures, verification
//! of openssl's signatures, AES-GCM, ChaCha20-Poly1305 and RSA-OAEP, digests, ECDH/X25519 agreement, CSRs and self-signed certificates.

mod common;

use common::*;

const DATA: &[u8] = b"firmware image 1.2.3\n\x00\x01\x02 with binary bytes\n";

fn write(e: &Env, name: &str, bytes: &[u8]) -> String {
    std::fs::write(e.path(name), bytes).unwrap();
    e.p(name)
}

fn read(e: &Env, name: &str) -> Vec<u8> {
    std::fs::read(e.path(name)).unwrap()
}

/// Generate a key `label` of `spec` with `usage` and export its public key to LABEL.pem.
fn key(e: &Env, uri: &str, spec: &str, label: &str, usage: &str) -> String {
    let pin = e.p("user.pin");
    e.ok(&[
        "key",
        "generate",
        spec,
        &format!("{uri};object={label}"),
        "--usage",
        usage,
        "--pin-source",
        &pin,
    ]);
    if !spec.starts_with("aes") && !spec.starts_with("generic") {
        let pem = e.p(&format!("{label}.pem"));
        e.ok(&[
            "export",
            &format!("{uri};object={label};type=public"),
            "-o",
            &pem,
        ]);
    }
    format!("{uri};object={label}")
}

fn stdout(o: std::process::Output) -> String {
    String::from_utf8(o.stdout).unwrap()
}

/// Sign with each key type; openssl checks every signature; keyward's verify accepts them
/// and refuses changed data with exit code 6.
fn sign_and_verify(e: &Env, types: &[(&str, &str)]) {
    let uri = e.token("sig");
    let pin = e.p("user.pin");
    let data = write(e, "data", DATA);
    write(e, "other", b"not the signed data");
    for (spec, dgst) in types {
        let label = format!("s-{}", spec.replace(':', "-"));
        let k = key(e, &uri, spec, &label, "sign");
        let sig = e.p(&format!("{label}.sig"));
        e.ok(&["sign", &k, "-i", &data, "-o", &sig, "--pin-source", &pin]);
        let pem = e.p(&format!("{label}.pem"));
        let out = if *dgst == "eddsa" {
            stdout(openssl(
                e.dir.path(),
                &[
                    "pkeyutl", "-verify", "-pubin", "-inkey", &pem, "-rawin", "-in", &data,
                    "-sigfile", &sig,
                ],
            ))
        } else {
            stdout(openssl(
                e.dir.path(),
                &[
                    "dgst",
                    &format!("-{dgst}"),
                    "-verify",
                    &pem,
                    "-signature",
                    &sig,
                    &data,
                ],
            ))
        };
        assert!(out.contains("Verified"), "{spec}: {out}");
        // keyward verify needs no PIN for a public key.
        let out = e.ok(&["verify", &k, "--signature", &sig, "-i", &data]);
        assert!(out.contains("verified"), "{out}");
        let err = e.fails(&["verify", &k, "--signature", &sig, "-i", &e.p("other")], 6);
        assert!(err.contains("does not verify"), "{err}");
    }

    // ECDSA as raw r||s: 64 bytes for P-256, and verify reads it back with --format raw.
    if types.iter().any(|(s, _)| *s == "ec:p256") {
        let k = format!("{uri};object=s-ec-p256");
        let raw = e.p("raw.sig");
        e.ok(&[
            "sign",
            &k,
            "-i",
            &data,
            "-o",
            &raw,
            "--format",
            "raw",
            "--pin-source",
            &pin,
        ]);
        assert_eq!(read(e, "raw.sig").len(), 64);
        e.ok(&[
            "verify",
            &k,
            "--signature",
            &raw,
            "--format",
            "raw",
            "-i",
            &data,
        ]);
        // A raw signature read as DER is simply invalid.
        e.fails(&["verify", &k, "--signature", &raw, "-i", &data], 6);
        // A mechanism for another key type is a usage error.
        e.fails(
            &[
                "sign",
                &k,
                "--mechanism",
                "rsa-pss-sha256",
                "--pin-source",
                &pin,
            ],
            1,
        );
    }

    // RSA-PSS, checked by openssl with the PSS options.
    if types.iter().any(|(s, _)| *s == "rsa:2048") {
        let k = format!("{uri};object=s-rsa-2048");
        let sig = e.p("pss.sig");
        e.ok(&[
            "sign",
            &k,
            "--mechanism",
            "rsa-pss-sha256",
            "-i",
            &data,
            "-o",
            &sig,
            "--pin-source",
            &pin,
        ]);
        let out = stdout(openssl(
            e.dir.path(),
            &[
                "dgst",
                "-sha256",
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:digest",
                "-verify",
                &e.p("s-rsa-2048.pem"),
                "-signature",
                &sig,
                &data,
            ],
        ));
        assert!(out.contains("Verified OK"), "{out}");
        e.ok(&[
            "verify",
            &k,
            "--mechanism",
            "rsa-pss-sha256",
            "--signature",
            &sig,
            "-i",
            &data,
        ]);
        // PKCS#1 v1.5 is not PSS.
        e.fails(&["verify", &k, "--signature", &sig, "-i", &data], 6);
    }

    // A signature made by openssl, verified with the imported key's public half.
    openssl(
        e.dir.path(),
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "ossl.key",
        ],
    );
    openssl(
        e.dir.path(),
        &[
            "dgst", "-sha256", "-sign", "ossl.key", "-out", "ossl.sig", &data,
        ],
    );
    e.ok(&[
        "import",
        &e.p("ossl.key"),
        &format!("{uri};object=ossl"),
        "--id",
        "0f",
        "--pin-source",
        &pin,
    ]);
    e.ok(&[
        "verify",
        &format!("{uri};object=ossl;type=public"),
        "--signature",
        &e.p("ossl.sig"),
        "-i",
        &data,
    ]);

    // HMAC with a generic secret key: a SHA-256 MAC is 32 bytes and verifies (with a login).
    let k = key(e, &uri, "generic:256", "mac", "sign");
    e.ok(&[
        "sign",
        &k,
        "-i",
        &data,
        "-o",
        &e.p("mac"),
        "--pin-source",
        &pin,
    ]);
    assert_eq!(read(e, "mac").len(), 32);
    e.ok(&[
        "verify",
        &k,
        "--signature",
        &e.p("mac"),
        "-i",
        &data,
        "--pin-source",
        &pin,
    ]);
    e.fails(
        &[
            "verify",
            &k,
            "--signature",
            &e.p("mac"),
            "-i",
            &e.p("other"),
            "--pin-source",
            &pin,
        ],
        6,
    );
    // A mechanism that does not fit the key is a usage error.
    e.fails(
        &[
            "sign",
            &k,
            "--mechanism",
            "ecdsa-sha256",
            "-i",
            &data,
            "--pin-source",
            &pin,
        ],
        1,
    );
}

/// An AEAD key (AES-GCM, ChaCha20-Poly1305) round-trips with the documented layout
/// (nonce || ciphertext || tag) and refuses changed input or missing AAD.
fn aead_round_trip(e: &Env, k: &str, mech: Option<&str>) {
    let pin = e.p("user.pin");
    let data = write(e, "plain", DATA);
    let aad = write(e, "aad", b"header v1");
    let with_mech = |mut args: Vec<String>| {
        if let Some(m) = mech {
            args.extend(["--mechanism".to_owned(), m.to_owned()]);
        }
        args
    };
    for (out, aad) in [("c1", None), ("c2", Some(&aad))] {
        let mut args = with_mech(vec![
            "encrypt".to_owned(),
            k.to_owned(),
            "-i".into(),
            data.clone(),
            "-o".into(),
            e.p(out),
            "--pin-source".into(),
            pin.clone(),
        ]);
        if let Some(a) = aad {
            args.extend(["--aad".to_owned(), a.clone()]);
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        e.ok(&refs);
        assert_eq!(read(e, out).len(), 12 + DATA.len() + 16, "IV || ct || tag");
        let mut dargs = with_mech(vec![
            "decrypt".into(),
            k.to_owned(),
            "-i".into(),
            e.p(out),
            "-o".into(),
            e.p(&format!("{out}.plain")),
            "--pin-source".into(),
            pin.clone(),
        ]);
        if let Some(a) = aad {
            dargs.extend(["--aad".to_owned(), a.clone()]);
        }
        let refs: Vec<&str> = dargs.iter().map(String::as_str).collect();
        e.ok(&refs);
        assert_eq!(read(e, &format!("{out}.plain")), DATA);
    }
    // A fresh IV each time.
    assert_ne!(read(e, "c1")[..12], read(e, "c2")[..12]);
    // The AAD is bound: decrypting c2 without it fails, and so does a flipped bit.
    e.fails(&["decrypt", k, "-i", &e.p("c2"), "--pin-source", &pin], 4);
    let mut bad = read(e, "c1");
    bad[20] ^= 1;
    let bad = write(e, "c1.bad", &bad);
    e.fails(&["decrypt", k, "-i", &bad, "--pin-source", &pin], 4);
    let short = write(e, "short", &[0u8; 20]);
    e.fails(&["decrypt", k, "-i", &short, "--pin-source", &pin], 1);
}

/// AES-GCM and, where the module has it, ChaCha20-Poly1305 round trips; RSA-OAEP with hash
/// `oaep` (SoftHSMv2 has only SHA-1) decrypts what openssl encrypted.
fn encrypt_and_decrypt(e: &Env, oaep: &str, chacha: bool) {
    let mech = format!("rsa-oaep-{oaep}");
    let uri = e.token("enc");
    let pin = e.p("user.pin");
    let data = write(e, "plain", DATA);
    let k = key(e, &uri, "aes:256", "aes", "encrypt");
    aead_round_trip(e, &k, None);
    aead_round_trip(e, &k, Some("aes-gcm"));
    // A scheme that does not fit the key is a usage error, before any call.
    let wrong = [
        "encrypt",
        &k,
        "--mechanism",
        "chacha20-poly1305",
        "-i",
        &data,
        "--pin-source",
        &pin,
    ];
    e.fails(&wrong, 1);
    let generate = [
        "key",
        "generate",
        "chacha20",
        &format!("{uri};object=cc"),
        "--pin-source",
        &pin,
    ];
    if chacha {
        e.ok(&generate);
        let c = format!("{uri};object=cc");
        let listed: serde_json::Value =
            serde_json::from_str(&e.ok(&["list", &c, "--login", "--json", "--pin-source", &pin]))
                .unwrap();
        assert_eq!(listed[0]["key_type"], "chacha20", "{listed}");
        aead_round_trip(e, &c, None);
        aead_round_trip(e, &c, Some("chacha20-poly1305"));
        e.fails(
            &[
                "encrypt",
                &c,
                "--mechanism",
                "aes-gcm",
                "-i",
                &data,
                "--pin-source",
                &pin,
            ],
            1,
        );
    } else {
        // The module lacks CKM_CHACHA20_KEY_GEN: its refusal is a PKCS#11 error.
        let err = e.fails(&generate, 4);
        assert!(err.contains("CKR_MECHANISM_INVALID"), "{err}");
    }

    // RSA-OAEP (SHA-256, MGF1-SHA-256): openssl encrypts to the exported public key.
    let r = key(e, &uri, "rsa:2048", "rsa", "encrypt");
    openssl(
        e.dir.path(),
        &[
            "pkeyutl",
            "-encrypt",
            "-pubin",
            "-inkey",
            &e.p("rsa.pem"),
            "-pkeyopt",
            "rsa_padding_mode:oaep",
            "-pkeyopt",
            &format!("rsa_oaep_md:{oaep}"),
            "-pkeyopt",
            &format!("rsa_mgf1_md:{oaep}"),
            "-in",
            &data,
            "-out",
            "oaep.bin",
        ],
    );
    e.ok(&[
        "decrypt",
        &r,
        "--mechanism",
        &mech,
        "-i",
        &e.p("oaep.bin"),
        "-o",
        &e.p("oaep.plain"),
        "--pin-source",
        &pin,
    ]);
    assert_eq!(read(e, "oaep.plain"), DATA);
    // And keyward's own encryption with the public key, no PIN needed.
    e.ok(&[
        "encrypt",
        &format!("{r};type=public"),
        "--mechanism",
        &mech,
        "-i",
        &data,
        "-o",
        &e.p("oaep2.bin"),
    ]);
    assert_eq!(read(e, "oaep2.bin").len(), 256);
    e.ok(&[
        "decrypt",
        &r,
        "--mechanism",
        &mech,
        "-i",
        &e.p("oaep2.bin"),
        "-o",
        &e.p("oaep2.plain"),
        "--pin-source",
        &pin,
    ]);
    assert_eq!(read(e, "oaep2.plain"), DATA);
}

/// The token's digests equal openssl's.
fn digests(e: &Env) {
    let uri = e.token("dig");
    let data = write(e, "d", DATA);
    for alg in ["sha1", "sha256", "sha384", "sha512"] {
        let ours = e.ok(&["digest", &uri, "--mechanism", alg, "-i", &data]);
        let theirs = stdout(openssl(
            e.dir.path(),
            &["dgst", &format!("-{alg}"), "-r", &data],
        ));
        let theirs = theirs.split_whitespace().next().unwrap();
        assert_eq!(ours.trim(), theirs, "{alg}");
    }
    e.ok(&["digest", &uri, "--binary", "-i", &data, "-o", &e.p("bin")]);
    assert_eq!(read(e, "bin").len(), 32);
    e.fails(&["digest", &uri, "--mechanism", "md4", "-i", &data], 1);
}

/// ECDH (and X25519 where supported): the exported secret equals openssl's side of the
/// agreement; a kept secret is a sensitive token key.
fn derive(e: &Env, curves: &[(&str, &str)]) {
    let uri = e.token("der");
    let pin = e.p("user.pin");
    for (spec, genpkey) in curves {
        let label = format!("d-{}", spec.replace(':', "-"));
        let k = key(e, &uri, spec, &label, "derive");
        let peer_key = format!("{label}.peer.key");
        let peer_pub = e.p(&format!("{label}.peer.pem"));
        let mut args = vec!["genpkey", "-out", &peer_key];
        args.extend(genpkey.split(' '));
        openssl(e.dir.path(), &args);
        openssl(
            e.dir.path(),
            &["pkey", "-in", &peer_key, "-pubout", "-out", &peer_pub],
        );
        let ours = e.p(&format!("{label}.shared"));
        e.ok(&[
            "derive",
            &k,
            "--peer",
            &peer_pub,
            "--export",
            "-o",
            &ours,
            "--pin-source",
            &pin,
        ]);
        openssl(
            e.dir.path(),
            &[
                "pkeyutl",
                "-derive",
                "-inkey",
                &peer_key,
                "-peerkey",
                &e.p(&format!("{label}.pem")),
                "-out",
                "theirs.bin",
            ],
        );
        assert_eq!(read(e, &format!("{label}.shared")), read(e, "theirs.bin"));
        let made = e.ok(&[
            "derive",
            &k,
            "--peer",
            &peer_pub,
            "--label",
            &format!("{label}-kept"),
            "--pin-source",
            &pin,
        ]);
        assert!(made.contains(&format!("object={label}-kept")), "{made}");
        let objs = e.list(&format!("{uri};object={label}-kept"));
        assert_eq!(objs.len(), 1);
        assert_eq!(objs[0]["class"], "secret-key");
        assert_eq!(objs[0]["sensitive"], true);
    }
    e.fails(
        &[
            "derive",
            &format!("{uri};object=d-ec-p256"),
            "--peer",
            &e.p("d-ec-p256.peer.pem"),
            "--pin-source",
            &pin,
        ],
        1,
    );
}

/// CSRs verified and read by `openssl req`; self-signed certificates verified by `openssl
/// verify`, and imported next to their key with its CKA_ID.
fn csr_and_cert(e: &Env, types: &[&str]) {
    let uri = e.token("pki");
    let pin = e.p("user.pin");
    for spec in types {
        let label = format!("c-{}", spec.replace(':', "-"));
        let k = key(e, &uri, spec, &label, "sign");
        let csr = e.p(&format!("{label}.csr"));
        e.ok(&[
            "csr",
            &k,
            "--subject",
            "CN=device-123,O=Acme\\, Inc.",
            "--san",
            "DNS:device-123.acme.example",
            "--san",
            "URI:urn:acme:device:123",
            "--san",
            "IP:10.0.0.7",
            "-o",
            &csr,
            "--pin-source",
            &pin,
        ]);
        let o = openssl(
            e.dir.path(),
            &["req", "-in", &csr, "-verify", "-noout", "-text"],
        );
        let text = stdout(o.clone()) + &String::from_utf8_lossy(&o.stderr);
        assert!(text.contains("verify OK"), "{spec}: {text}");
        assert!(
            text.contains("CN = device-123") && text.contains("Acme, Inc."),
            "{text}"
        );
        for want in [
            "DNS:device-123.acme.example",
            "URI:urn:acme:device:123",
            "IP Address:10.0.0.7",
        ] {
            assert!(text.contains(want), "{spec}: {want} missing in {text}");
        }

        let crt = e.p(&format!("{label}.crt"));
        e.ok(&[
            "cert",
            "self-sign",
            &k,
            "--subject",
            "CN=device-123,O=Acme",
            "--days",
            "30",
            "--san",
            "DNS:device-123.local",
            "--import",
            "-o",
            &crt,
            "--pin-source",
            &pin,
        ]);
        let out = stdout(openssl(e.dir.path(), &["verify", "-CAfile", &crt, &crt]));
        assert!(out.contains(": OK"), "{out}");
        let text = stdout(openssl(
            e.dir.path(),
            &["x509", "-in", &crt, "-noout", "-text"],
        ));
        assert!(
            text.contains("Subject: CN = device-123, O = Acme")
                && text.contains("Issuer: CN = device-123, O = Acme")
                && text.contains("DNS:device-123.local")
                && text.contains("CA:TRUE"),
            "{text}"
        );
        // The stored certificate carries the key's CKA_ID and exports to the same bytes.
        let objs = e.list(&format!("{uri};object={label}"));
        let cert = find(&objs, &label, "cert");
        let private = find(&objs, &label, "private");
        assert_eq!(cert["id"], private["id"]);
        let again = e.p(&format!("{label}.again.crt"));
        e.ok(&[
            "export",
            &format!("{uri};object={label};type=cert"),
            "-o",
            &again,
        ]);
        assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(&crt).unwrap());
    }
    // A subject that is not FIELD=value, and an unknown SAN type, are usage errors.
    let k = format!("{uri};object=c-{}", types[0].replace(':', "-"));
    e.fails(&["csr", &k, "--subject", "device", "--pin-source", &pin], 1);
    e.fails(
        &[
            "csr",
            &k,
            "--subject",
            "CN=x",
            "--san",
            "FTP:x",
            "--pin-source",
            &pin,
        ],
        1,
    );
}

mod keyward_module {
    use super::*;

    fn sign_and_verify(mode: Mode) {
        super::sign_and_verify(
            &Env::keyward_in(mode),
            &[
                ("ec:p256", "sha256"),
                ("ec:p384", "sha384"),
                ("ec:p521", "sha512"),
                ("ec:secp256k1", "sha256"),
                ("rsa:2048", "sha256"),
                ("ed25519", "eddsa"),
                ("ed448", "eddsa"),
            ],
        );
    }

    fn encrypt_and_decrypt(mode: Mode) {
        super::encrypt_and_decrypt(&Env::keyward_in(mode), "sha256", true);
    }

    fn digests(mode: Mode) {
        super::digests(&Env::keyward_in(mode));
    }

    fn derive(mode: Mode) {
        super::derive(
            &Env::keyward_in(mode),
            &[
                ("ec:p256", "-algorithm EC -pkeyopt ec_paramgen_curve:P-256"),
                ("ec:p384", "-algorithm EC -pkeyopt ec_paramgen_curve:P-384"),
                ("x25519", "-algorithm X25519"),
            ],
        );
    }

    fn csr_and_cert(mode: Mode) {
        super::csr_and_cert(
            &Env::keyward_in(mode),
            &["ec:p256", "ec:p384", "ec:p521", "rsa:2048", "ed25519"],
        );
    }

    fn help_has_examples(mode: Mode) {
        let e = Env::keyward_in(mode);
        for (cmd, want) in [
            (vec!["sign", "--help"], "keyward sign 'pkcs11:"),
            (vec!["verify", "--help"], "keyward verify 'pkcs11:"),
            (vec!["encrypt", "--help"], "keyward encrypt 'pkcs11:"),
            (vec!["decrypt", "--help"], "keyward decrypt 'pkcs11:"),
            (vec!["digest", "--help"], "keyward digest -i"),
            (vec!["derive", "--help"], "keyward derive 'pkcs11:"),
            (vec!["csr", "--help"], "keyward csr 'pkcs11:"),
            (
                vec!["cert", "self-sign", "--help"],
                "keyward cert self-sign",
            ),
        ] {
            let out = e.ok(&cmd);
            assert!(out.contains(want), "{cmd:?}: {out}");
        }
        assert!(
            e.ok(&["--help"])
                .contains("6  the signature does not verify")
        );
    }

    mod embedded {
        use super::Mode;

        #[test]
        fn sign_and_verify() {
            super::sign_and_verify(Mode::Embedded);
        }

        #[test]
        fn encrypt_and_decrypt() {
            super::encrypt_and_decrypt(Mode::Embedded);
        }

        #[test]
        fn digests() {
            super::digests(Mode::Embedded);
        }

        #[test]
        fn derive() {
            super::derive(Mode::Embedded);
        }

        #[test]
        fn csr_and_cert() {
            super::csr_and_cert(Mode::Embedded);
        }

        #[test]
        fn help_has_examples() {
            super::help_has_examples(Mode::Embedded);
        }
    }

    mod daemon {
        use super::Mode;

        #[test]
        fn sign_and_verify() {
            super::sign_and_verify(Mode::Daemon);
        }

        #[test]
        fn encrypt_and_decrypt() {
            super::encrypt_and_decrypt(Mode::Daemon);
        }

        #[test]
        fn digests() {
            super::digests(Mode::Daemon);
        }

        #[test]
        fn derive() {
            super::derive(Mode::Daemon);
        }

        #[test]
        fn csr_and_cert() {
            super::csr_and_cert(Mode::Daemon);
        }

        #[test]
        fn help_has_examples() {
            super::help_has_examples(Mode::Daemon);
        }
    }
}

mod softhsm {
    use super::*;

    #[test]
    fn sign_and_verify() {
        if let Some(e) = Env::softhsm() {
            super::sign_and_verify(
                &e,
                &[
                    ("ec:p256", "sha256"),
                    ("ec:p384", "sha384"),
                    ("rsa:2048", "sha256"),
                    ("ed25519", "eddsa"),
                ],
            );
        }
    }

    #[test]
    fn encrypt_and_decrypt() {
        if let Some(e) = Env::softhsm() {
            super::encrypt_and_decrypt(&e, "sha1", false);
        }
    }

    #[test]
    fn digests() {
        if let Some(e) = Env::softhsm() {
            super::digests(&e);
        }
    }

    #[test]
    fn derive() {
        if let Some(e) = Env::softhsm() {
            super::derive(
                &e,
                &[("ec:p256", "-algorithm EC -pkeyopt ec_paramgen_curve:P-256")],
            );
        }
    }

    #[test]
    fn csr_and_cert() {
        if let Some(e) = Env::softhsm() {
            super::csr_and_cert(&e, &["ec:p256", "rsa:2048", "ed25519"]);
        }
    }
}
