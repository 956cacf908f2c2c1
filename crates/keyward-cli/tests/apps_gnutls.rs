//! GnuTLS's tools with Keyward's module (`--provider`, PIN in GNUTLS_PIN): p11tool lists the
//! token and its objects under the URIs keyward gives them, certtool self-signs certificates
//! with token keys (checked by OpenSSL), and gnutls-serv serves TLS 1.3 and 1.2 with a token
//! key to gnutls-cli (checked by the data echoed back), also with the client's key in the token.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::Mode;
use common::apps::*;
use keyward_uri::Pkcs11Uri;

fn uri(s: &str) -> Pkcs11Uri {
    s.parse()
        .unwrap_or_else(|e| panic!("not a PKCS#11 URI: {s:?}: {e:?}"))
}

/// `program --provider MODULE` with the user PIN in GNUTLS_PIN.
fn gnutls(d: &Device, program: &str) -> Command {
    let mut c = d.command(program);
    c.arg("--provider")
        .arg(d.module())
        .env("GNUTLS_PIN", d.pin())
        .stdin(Stdio::null());
    c
}

/// The `URL:` values p11tool printed.
fn urls(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("URL: "))
        .map(str::to_owned)
        .collect()
}

/// The URIs `keyward list --json` gives the token's objects (logged in or not), canonical.
fn keyward_uris(d: &Device, login: bool) -> BTreeSet<String> {
    let objects = if login {
        d.e.list(&d.token)
    } else {
        let out = d.e.ok(&["list", &d.token, "--json"]);
        serde_json::from_str::<serde_json::Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    };
    objects
        .iter()
        .map(|o| uri(o["uri"].as_str().unwrap()).to_string())
        .collect()
}

/// DER of a PEM certificate file or text.
fn cert_der(pem: &[u8]) -> Vec<u8> {
    openssl::x509::X509::from_pem(pem)
        .unwrap()
        .to_der()
        .unwrap()
}

/// DER of a PEM public key file.
fn spki_der(pem: &Path) -> Vec<u8> {
    openssl::pkey::PKey::public_key_from_pem(&std::fs::read(pem).unwrap())
        .unwrap()
        .public_key_to_der()
        .unwrap()
}

/// p11tool finds the token under keyward's token URI, and lists its objects under the URIs
/// keyward lists (public ones without login, all with the PIN; none with a wrong PIN). The
/// certificate p11tool exports by URI is the one imported.
fn p11tool_lists_token_and_objects(mode: Mode) {
    let d = Device::new(mode);
    let keys = [
        d.key_with_cert("rsa:2048", "tls-rsa", "01", "localhost"),
        d.key_with_cert("ec:p256", "tls-ec", "02", "localhost"),
    ];

    let o = run_ok(gnutls(&d, "p11tool").arg("--list-tokens"));
    let tokens: Vec<String> = urls(&text(&o))
        .into_iter()
        .filter(|u| u.contains("token=device"))
        .collect();
    assert_eq!(tokens.len(), 1, "{}", text(&o));
    assert_eq!(uri(&tokens[0]), uri(&d.token), "{}", text(&o));

    let list = |login: bool| {
        let mut c = gnutls(&d, "p11tool");
        c.arg("--list-all");
        if login {
            c.arg("--login");
        }
        let o = run_ok(c.arg("pkcs11:token=device"));
        urls(&text(&o))
    };
    let public = list(false);
    let all = list(true);
    for u in public.iter().chain(&all) {
        assert!(u.contains("token=device"), "{u}");
        assert!(
            keys.iter()
                .any(|k| u.contains(&format!("object={};", k.label))
                    || u.ends_with(&format!("object={}", k.label))),
            "{u} names none of the keys"
        );
    }
    let canonical =
        |v: &[String]| -> BTreeSet<String> { v.iter().map(|u| uri(u).to_string()).collect() };
    assert_eq!(canonical(&public), keyward_uris(&d, false), "{public:#?}");
    assert_eq!(canonical(&all), keyward_uris(&d, true), "{all:#?}");
    // Key pairs and certificates: 3 objects per key, the private keys only after login.
    assert_eq!(all.len(), 3 * keys.len(), "{all:#?}");
    assert_eq!(public.len(), 2 * keys.len(), "{public:#?}");
    assert!(!public.iter().any(|u| u.contains("type=private")));

    let o = gnutls(&d, "p11tool")
        .env("GNUTLS_PIN", "not-the-pin")
        .args(["--list-all", "--login", "pkcs11:token=device"])
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains("type=private"), "{}", text(&o));

    for k in &keys {
        let o = run_ok(
            gnutls(&d, "p11tool")
                .arg("--export")
                .arg(format!("{};type=cert", k.uri)),
        );
        assert_eq!(
            cert_der(&o.stdout),
            cert_der(&std::fs::read(&k.cert).unwrap())
        );
        let o = run_ok(
            gnutls(&d, "p11tool")
                .args(["--login", "--export-pubkey"])
                .arg(format!("{};type=private", k.uri)),
        );
        let exported = d.path(&format!("{}.p11tool.pub.pem", k.label));
        std::fs::write(&exported, &o.stdout).unwrap();
        assert_eq!(spki_der(&exported), spki_der(&k.public), "{}", k.label);
    }
}

/// certtool signs a self-signed CA certificate with each token key named by URI: OpenSSL
/// verifies it, and its public key is the token's.
fn certtool_self_signs_with_token_key(mode: Mode) {
    let d = Device::new(mode);
    let template = d.path("self.tmpl");
    std::fs::write(
        &template,
        "cn = \"Keyward device\"\nserial = 7\nexpiration_days = 2\nca\ncert_signing_key\n\
         signing_key\n",
    )
    .unwrap();
    for (spec, label, id) in [
        ("rsa:2048", "self-rsa", "11"),
        ("ec:p256", "self-ec", "12"),
        ("ed25519", "self-ed", "13"),
    ] {
        let k = d.key_with_cert(spec, label, id, "localhost");
        let out = d.path(&format!("{label}.self.pem"));
        run_ok(
            gnutls(&d, "certtool")
                .arg("--generate-self-signed")
                .arg("--load-privkey")
                .arg(&k.uri)
                .arg("--template")
                .arg(&template)
                .arg("--outfile")
                .arg(&out),
        );
        let o = run_ok(
            Command::new("openssl")
                .arg("verify")
                .arg("-CAfile")
                .arg(&out)
                .arg(&out),
        );
        assert!(text(&o).trim().ends_with(": OK"), "{spec}: {}", text(&o));
        let cert = openssl::x509::X509::from_pem(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(
            cert.public_key().unwrap().public_key_to_der().unwrap(),
            spki_der(&k.public),
            "{spec}"
        );
        let subject = cert
            .subject_name()
            .entries()
            .map(|e| String::from_utf8_lossy(e.data().as_slice()).into_owned())
            .collect::<Vec<_>>();
        assert_eq!(subject, ["Keyward device"], "{spec}");
    }
}

/// gnutls-cli's session: the handshake description and what came back, checked by `check`.
struct Session {
    out: String,
    err: String,
}

/// Connect gnutls-cli to `port` trusting the test CA, send `line`, and wait for the server to
/// echo it back before closing.
fn echo_through(
    d: &Device,
    port: u16,
    priority: &str,
    client: Option<&KeyCert>,
    line: &str,
) -> Session {
    let mut c = d.command("gnutls-cli");
    c.arg("--x509cafile").arg(&d.ca).args([
        "--priority",
        priority,
        "-p",
        &port.to_string(),
        "localhost",
    ]);
    if let Some(k) = client {
        c.arg("--provider")
            .arg(d.module())
            .env("GNUTLS_PIN", d.pin())
            .arg("--x509keyfile")
            .arg(&k.uri)
            .arg("--x509certfile")
            .arg(&k.cert);
    }
    let err_log = d.path(&format!("gnutls-cli-{port}-{priority}.log"));
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&err_log).unwrap())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    // gnutls-cli may close as soon as its input ends: keep it open until the echo came back.
    writeln!(stdin, "{line}").unwrap();
    let mut out = String::new();
    let mut echoed = false;
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(30)) {
        out.push_str(&l);
        out.push('\n');
        if l == line {
            echoed = true;
            break;
        }
    }
    drop(stdin);
    if !echoed {
        let _ = child.kill();
    }
    let _ = child.wait();
    let _ = reader.join();
    let err = std::fs::read_to_string(&err_log).unwrap_or_default();
    assert!(
        echoed,
        "no echo of {line:?}:\nstdout:\n{out}\nstderr:\n{err}"
    );
    Session { out, err }
}

/// gnutls-serv with its key in the token (URI) and its CA-issued certificate serves TLS 1.3
/// and TLS 1.2 to gnutls-cli, which trusts the test CA: the handshake used the token key's
/// signature scheme, and the line sent came back through the session.
fn gnutls_serv_with_token_key(mode: Mode) {
    let d = Device::new(mode);
    for (spec, label, id, tls13, tls12) in [
        (
            "rsa:2048",
            "tls-rsa",
            "21",
            "RSA-PSS-RSAE-SHA256",
            "RSA-SHA256",
        ),
        (
            "ec:p256",
            "tls-ec",
            "22",
            "ECDSA-SECP256R1-SHA256",
            "ECDSA-SHA256",
        ),
        ("ed25519", "tls-ed", "23", "EdDSA-Ed25519", "EdDSA-Ed25519"),
    ] {
        let k = d.key_with_cert(spec, label, id, "localhost");
        let port = free_port();
        let mut c = gnutls(&d, "gnutls-serv");
        c.args(["--echo", "-p", &port.to_string(), "--x509keyfile"])
            .arg(&k.uri)
            .arg("--x509certfile")
            .arg(&k.cert);
        let server = Server::start(c, port, d.path(&format!("gnutls-serv-{label}.log")));
        for (priority, version, scheme) in [
            ("NORMAL", "TLS1.3", tls13),
            ("NORMAL:-VERS-TLS1.3", "TLS1.2", tls12),
        ] {
            let line = format!("hello {label} over {version}");
            let s = echo_through(&d, port, priority, None, &line);
            let all = format!("{}{}", s.out, s.err);
            assert!(all.contains("Handshake was completed"), "{all}");
            assert!(all.contains("The certificate is trusted"), "{all}");
            assert!(
                all.contains(&format!("({version}-X.509)"))
                    && all.contains(&format!("-({scheme})-")),
                "{spec} {version}: expected {scheme}:\n{all}"
            );
            let log = server.output();
            assert!(
                log.contains(&format!("received cmd: {line}")),
                "server log:\n{log}"
            );
        }
    }
}

/// Mutual TLS with both keys in the token: gnutls-serv requires a client certificate from the
/// test CA and gnutls-cli signs with its token key.
fn gnutls_mutual_tls_with_token_keys(mode: Mode) {
    let d = Device::new(mode);
    let server_key = d.key_with_cert("ec:p256", "tls-server", "31", "localhost");
    let client_key = d.key_with_cert("rsa:2048", "tls-client", "32", "device client");
    let port = free_port();
    let mut c = gnutls(&d, "gnutls-serv");
    c.args(["--echo", "--require-client-cert", "--verify-client-cert"])
        .arg("--x509cafile")
        .arg(&d.ca)
        .args(["-p", &port.to_string(), "--x509keyfile"])
        .arg(&server_key.uri)
        .arg("--x509certfile")
        .arg(&server_key.cert);
    let server = Server::start(c, port, d.path("gnutls-serv-mutual.log"));
    let s = echo_through(
        &d,
        port,
        "NORMAL",
        Some(&client_key),
        "hello from the client key",
    );
    let all = format!("{}{}", s.out, s.err);
    assert!(all.contains("Handshake was completed"), "{all}");
    assert!(all.contains("Successfully sent 1 certificate(s)"), "{all}");
    let log = server.output();
    assert!(log.contains("CN=device client"), "server log:\n{log}");
    assert!(
        log.contains("received cmd: hello from the client key"),
        "server log:\n{log}"
    );
}

both_modes!(
    p11tool_lists_token_and_objects,
    certtool_self_signs_with_token_key,
    gnutls_serv_with_token_key,
    gnutls_mutual_tls_with_token_keys
);
