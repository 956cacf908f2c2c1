//! NSS (certutil, modutil, tstclnt) against Keyward's module: the module registered in an NSS
//! database, the token's certificates listed by nickname (`device:LABEL`), a certificate
//! request signed by a token key (checked by openssl), and a TLS client authentication made by
//! NSS with a token key, the way Firefox or Chromium use a device key through their NSS
//! database.

mod common;

use std::path::Path;
use std::process::Command;

use common::apps::*;
use common::{Mode, openssl};

/// An empty NSS database (no password) in the test directory, with Keyward's module added as
/// `keyward`; `friendly` registers it with `-mechanisms FRIENDLY` (certificates readable
/// without logging in, NSS's `slotFlags=PublicCerts`).
fn nss_db(d: &Device, name: &str, friendly: bool) -> String {
    let dir = d.path(name);
    std::fs::create_dir(&dir).unwrap();
    let db = format!("sql:{}", dir.display());
    run_ok(
        d.command("certutil")
            .args(["-N", "-d", &db, "--empty-password"]),
    );
    let mut add = d.command("modutil");
    add.args(["-dbdir", &db, "-add", "keyward", "-libfile"])
        .arg(d.module())
        .arg("-force");
    if friendly {
        add.args(["-mechanisms", "FRIENDLY"]);
    }
    let out = text(&run_ok(&mut add));
    assert!(out.contains("Module \"keyward\" added"), "{out}");
    db
}

/// The text of `modutil -list`'s entry for the module named `keyward`.
fn modutil_entry(d: &Device, db: &str) -> String {
    let out = text(&run_ok(d.command("modutil").args(["-dbdir", db, "-list"])));
    let start = out
        .find(". keyward\n")
        .unwrap_or_else(|| panic!("no module keyward in modutil -list:\n{out}"));
    out[start..].to_owned()
}

/// DER of a PEM certificate, for comparing certificates whatever their text form.
fn der(d: &Device, pem: &Path) -> Vec<u8> {
    let out = d.path("cmp.der");
    openssl(
        d.path("").as_path(),
        &[
            "x509",
            "-in",
            &pem.display().to_string(),
            "-outform",
            "DER",
            "-out",
            &out.display().to_string(),
        ],
    );
    std::fs::read(out).unwrap()
}

fn modutil_and_certutil_see_the_token(mode: Mode) {
    let d = Device::new(mode);
    let rsa = d.key_with_cert("rsa:2048", "tls-rsa", "01", "nss-rsa");
    let ec = d.key_with_cert("ec:p256", "tls-ec", "02", "nss-ec");
    let db = nss_db(&d, "nssdb", false);

    let entry = modutil_entry(&d, &db);
    assert!(
        entry.contains(&format!("library name: {}", d.module().display())),
        "{entry}"
    );
    assert!(entry.contains("status: loaded"), "{entry}");
    assert!(entry.contains("token: device\n"), "{entry}");
    let serial = d
        .token
        .split(';')
        .find_map(|p| p.strip_prefix("serial="))
        .unwrap();
    assert!(
        entry.contains(&format!(
            "uri: pkcs11:token=device;manufacturer=Keyward;serial={serial}"
        )),
        "{entry}"
    );

    // Every certificate of the token, by the nickname NSS gives it: token:CKA_LABEL, with the
    // user trust flags NSS sets when the private key is there too.
    let pin = d.p("user.pin");
    let out = text(&run_ok(
        d.command("certutil")
            .args(["-L", "-d", &db, "-h", "all", "-f", &pin]),
    ));
    for kc in [&rsa, &ec] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("device:{} ", kc.label)))
            .unwrap_or_else(|| panic!("no device:{} in certutil -L:\n{out}", kc.label));
        assert!(line.trim_end().ends_with("u,u,u"), "{line}");
    }
    // The token's private keys, listed by their CKA_ID.
    let out = text(&run_ok(
        d.command("certutil")
            .args(["-K", "-d", &db, "-h", "device", "-f", &pin]),
    ));
    assert!(
        out.lines()
            .any(|l| l.contains("rsa") && l.contains(" 01 ") && l.ends_with("tls-rsa")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("ec") && l.contains(" 02 ") && l.ends_with("tls-ec")),
        "{out}"
    );

    // By nickname, with the module registered FRIENDLY: NSS reads a login-required token's
    // certificates only after logging in unless told they are public, and certutil does not
    // pass its PIN file to that login.
    let db = nss_db(&d, "nssdb-friendly", true);
    for kc in [&rsa, &ec] {
        let pem = d.path(&format!("{}.nss.pem", kc.label));
        run_ok(d.command("certutil").args([
            "-L",
            "-d",
            &db,
            "-n",
            &format!("device:{}", kc.label),
            "-a",
            "-o",
            &pem.display().to_string(),
        ]));
        assert_eq!(der(&d, &pem), der(&d, &kc.cert), "{}", kc.label);
    }
}

fn certutil_signs_a_request_with_a_token_key(mode: Mode) {
    let d = Device::new(mode);
    let rsa = d.key_with_cert("rsa:2048", "tls-rsa", "01", "nss-rsa");
    let ec = d.key_with_cert("ec:p256", "tls-ec", "02", "nss-ec");
    let db = nss_db(&d, "nssdb", false);
    let pin = d.p("user.pin");
    for kc in [&rsa, &ec] {
        // -k takes the key's CKA_ID: certutil looks a certificate's key up by NSS's own
        // CKA_ID convention (SHA-1 of the public key), which a device's keys need not follow.
        let csr = d.path(&format!("{}.nss.csr", kc.label));
        run_ok(d.command("certutil").args([
            "-R",
            "-d",
            &db,
            "-h",
            "device",
            "-k",
            &kc.id,
            "-s",
            &format!("CN=nss request {}", kc.label),
            "-f",
            &pin,
            "-a",
            "-o",
            &csr.display().to_string(),
        ]));
        let csr = csr.display().to_string();
        let o = openssl(
            d.path("").as_path(),
            &["req", "-in", &csr, "-verify", "-noout", "-subject"],
        );
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(all.contains("verify OK"), "{all}");
        assert!(
            all.contains(&format!("CN = nss request {}", kc.label)),
            "{all}"
        );
        // Signed by the token's key: the request carries its public key.
        let o = openssl(
            d.path("").as_path(),
            &["req", "-in", &csr, "-pubkey", "-noout"],
        );
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            std::fs::read_to_string(&kc.public).unwrap(),
            "{}",
            kc.label
        );
    }
}

fn tstclnt_authenticates_with_a_token_key(mode: Mode) {
    let d = Device::new(mode);
    let rsa = d.key_with_cert("rsa:2048", "tls-rsa", "01", "nss-client-rsa");
    let ec = d.key_with_cert("ec:p256", "tls-ec", "02", "nss-client-ec");
    let db = nss_db(&d, "nssdb", true);
    // NSS must trust the test CA to accept the server.
    run_ok(
        d.command("certutil")
            .args([
                "-A",
                "-d",
                &db,
                "-n",
                "Keyward test CA",
                "-t",
                "C,,",
                "-a",
                "-i",
            ])
            .arg(&d.ca),
    );

    // The server requires a client certificate from the test CA and answers each line
    // reversed; CLOSE ends the connection.
    let (key, cert) = d.software_server();
    let port = free_port();
    require("openssl");
    let mut s = Command::new("openssl");
    s.args(["s_server", "-accept", &format!("127.0.0.1:{port}")])
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .arg("-CAfile")
        .arg(&d.ca)
        .args(["-Verify", "1", "-verify_return_error", "-rev"]);
    let server = Server::start(s, port, d.path("s_server.log"));

    let pin = d.p("user.pin");
    for kc in [&rsa, &ec] {
        let line = format!("hello from nss with {}", kc.label);
        let request = d.path("request.txt");
        std::fs::write(&request, format!("{line}\nCLOSE\n")).unwrap();
        let o = run_ok(d.command("tstclnt").args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-a",
            "localhost",
            "-d",
            &db,
            "-n",
            &format!("device:{}", kc.label),
            "-W",
            &pin,
            "-V",
            "tls1.2:tls1.3",
            "-A",
            &request.display().to_string(),
        ]));
        // The server read the line through the authenticated connection and sent it back.
        let reversed: String = line.chars().rev().collect();
        assert!(
            text(&o).contains(&reversed),
            "tstclnt with {}:\n{}\nserver:\n{}",
            kc.label,
            text(&o),
            server.output()
        );
        // The server verified the client certificate issued for this token key, so the
        // CertificateVerify was signed by the key in the token.
        let log = server.output();
        assert!(
            log.contains(&format!(
                "Peer certificate: CN = nss-client-{}",
                &kc.label[4..]
            )),
            "{log}"
        );
    }
    let log = server.output();
    assert!(log.contains("Signature type: RSA-PSS"), "{log}");
    assert!(log.contains("Signature type: ECDSA"), "{log}");
}

both_modes!(
    modutil_and_certutil_see_the_token,
    certutil_signs_a_request_with_a_token_key,
    tstclnt_authenticates_with_a_token_key,
);
