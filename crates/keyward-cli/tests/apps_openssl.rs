//! OpenSSL 3 with libp11's PKCS#11 engine (Debian's libengine-pkcs11-openssl) loading
//! Keyward's module: `openssl req`, `dgst`, `pkeyutl`, `s_server` and `s_client` use keys that
//! stay in the token, named by PKCS#11 URIs. Every result is checked by plain OpenSSL with no
//! engine, against the public key exported from the token or the test CA.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::Mode;
use common::apps::*;

/// libp11's engine as Debian installs it.
const ENGINE: &str = "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so";

/// The two key types every test covers: (keyward TYPE, label, CKA_ID).
const KEYS: [(&str, &str, &str); 2] = [("rsa:2048", "tls-rsa", "01"), ("ec:p256", "tls-ec", "02")];

/// An OpenSSL configuration that loads libp11's engine with Keyward's module, and the PIN
/// file the key URIs name. `init = 1` initialises the engine at start-up, which programs that
/// only look the engine up (nginx) need.
fn engine_conf(d: &Device) -> PathBuf {
    require(ENGINE);
    let conf = d.path("openssl-pkcs11.cnf");
    std::fs::write(
        &conf,
        format!(
            "openssl_conf = openssl_init\n\
             [openssl_init]\nengines = engine_section\n\
             [engine_section]\npkcs11 = pkcs11_section\n\
             [pkcs11_section]\nengine_id = pkcs11\ndynamic_path = {ENGINE}\n\
             MODULE_PATH = {}\ninit = 1\n",
            d.module().display()
        ),
    )
    .unwrap();
    // libp11 takes a pin-source file verbatim, newline included.
    std::fs::write(d.path("engine.pin"), d.pin()).unwrap();
    std::fs::write(d.path("engine-wrong.pin"), "not-the-pin").unwrap();
    conf
}

/// The key's URI with the PIN file libp11 logs in with.
fn key_uri(d: &Device, k: &KeyCert) -> String {
    format!("{};pin-source=file:{}", k.uri, d.p("engine.pin"))
}

/// `openssl` with the engine configuration and the module's environment.
fn engine_openssl(d: &Device) -> Command {
    let conf = engine_conf(d);
    let mut c = d.command("openssl");
    c.env("OPENSSL_CONF", conf);
    c
}

/// Plain `openssl`: no engine, no module, only files.
fn plain(d: &Device) -> Command {
    let mut c = Command::new("openssl");
    c.env_remove("OPENSSL_CONF")
        .env_remove("KEYWARD_CONF")
        .env_remove("KEYWARD_SOCKET")
        .current_dir(d.e.dir.path());
    c
}

fn all_output(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn read(d: &Device, name: &str) -> String {
    std::fs::read_to_string(d.path(name)).unwrap()
}

/// The public key (SPKI PEM) in a certificate or request, as plain OpenSSL prints it.
fn pubkey_of(d: &Device, what: &str, file: &str) -> String {
    text(&run_ok(
        plain(d).args([what, "-in", file, "-noout", "-pubkey"]),
    ))
}

/// Run a client to completion with `input` on its standard input, killing it after 60 s.
fn client(mut c: Command, input: &[u8]) -> Output {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {c:?}: {e}"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// `openssl req` makes a CSR and a self-signed certificate with each token key; plain
/// OpenSSL checks their signatures and finds the token's public key in them.
fn req_csr_and_self_signed(mode: Mode) {
    let d = Device::new(mode);
    for (spec, label, id) in KEYS {
        let k = d.key_with_cert(spec, label, id, "localhost");
        let public = std::fs::read_to_string(&k.public).unwrap();
        let uri = key_uri(&d, &k);
        let csr = format!("{label}.req.pem");
        run_ok(engine_openssl(&d).args([
            "req",
            "-new",
            "-engine",
            "pkcs11",
            "-keyform",
            "engine",
            "-key",
            &uri,
            "-subj",
            &format!("/CN=req-{label}"),
            "-out",
            &csr,
        ]));
        let o = run_ok(plain(&d).args(["req", "-in", &csr, "-verify", "-noout", "-subject"]));
        let out = all_output(&o);
        assert!(out.contains("verify OK"), "{out}");
        assert!(out.contains(&format!("CN = req-{label}")), "{out}");
        assert_eq!(pubkey_of(&d, "req", &csr), public);

        let cert = format!("{label}.self.pem");
        run_ok(engine_openssl(&d).args([
            "req",
            "-new",
            "-x509",
            "-days",
            "1",
            "-engine",
            "pkcs11",
            "-keyform",
            "engine",
            "-key",
            &uri,
            "-subj",
            &format!("/CN=self-{label}"),
            "-out",
            &cert,
        ]));
        let o = run_ok(plain(&d).args(["verify", "-check_ss_sig", "-CAfile", &cert, &cert]));
        assert_eq!(text(&o).trim(), format!("{cert}: OK"));
        assert_eq!(pubkey_of(&d, "x509", &cert), public);
        let o = run_ok(plain(&d).args(["x509", "-in", &cert, "-noout", "-text"]));
        let alg = if spec.starts_with("rsa") {
            "sha256WithRSAEncryption"
        } else {
            "ecdsa-with-SHA256"
        };
        assert!(
            text(&o).contains(&format!("Signature Algorithm: {alg}")),
            "{}",
            text(&o)
        );
    }
}

/// `openssl dgst -sign` and `openssl pkeyutl -sign` sign with each token key (RSA also with
/// PSS); plain OpenSSL verifies with the exported public key, and rejects other data. A wrong
/// PIN signs nothing.
fn dgst_and_pkeyutl_sign(mode: Mode) {
    let d = Device::new(mode);
    std::fs::write(d.path("data.txt"), b"firmware image 1.2.3\n").unwrap();
    std::fs::write(d.path("other.txt"), b"firmware image 6.6.6\n").unwrap();
    run_ok(plain(&d).args([
        "dgst",
        "-sha256",
        "-binary",
        "-out",
        "data.sha256",
        "data.txt",
    ]));
    for (spec, label, id) in KEYS {
        let k = d.key_with_cert(spec, label, id, "localhost");
        let public = k.public.display().to_string();
        let uri = key_uri(&d, &k);

        let sig = format!("{label}.dgst.sig");
        run_ok(engine_openssl(&d).args([
            "dgst", "-sha256", "-engine", "pkcs11", "-keyform", "engine", "-sign", &uri, "-out",
            &sig, "data.txt",
        ]));
        let o = run_ok(plain(&d).args([
            "dgst",
            "-sha256",
            "-verify",
            &public,
            "-signature",
            &sig,
            "data.txt",
        ]));
        assert_eq!(text(&o).trim(), "Verified OK");
        let o = plain(&d)
            .args([
                "dgst",
                "-sha256",
                "-verify",
                &public,
                "-signature",
                &sig,
                "other.txt",
            ])
            .output()
            .unwrap();
        assert!(!o.status.success(), "{}", all_output(&o));

        let sig = format!("{label}.pkeyutl.sig");
        run_ok(engine_openssl(&d).args([
            "pkeyutl",
            "-sign",
            "-engine",
            "pkcs11",
            "-keyform",
            "engine",
            "-inkey",
            &uri,
            "-in",
            "data.sha256",
            "-pkeyopt",
            "digest:sha256",
            "-out",
            &sig,
        ]));
        let o = run_ok(plain(&d).args([
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            &public,
            "-in",
            "data.sha256",
            "-sigfile",
            &sig,
            "-pkeyopt",
            "digest:sha256",
        ]));
        assert_eq!(text(&o).trim(), "Signature Verified Successfully");
        // The same signature over the message, the way other verifiers see it.
        let o = run_ok(plain(&d).args([
            "dgst",
            "-sha256",
            "-verify",
            &public,
            "-signature",
            &sig,
            "data.txt",
        ]));
        assert_eq!(text(&o).trim(), "Verified OK");

        if spec.starts_with("rsa") {
            let sig = format!("{label}.pss.sig");
            run_ok(engine_openssl(&d).args([
                "pkeyutl",
                "-sign",
                "-engine",
                "pkcs11",
                "-keyform",
                "engine",
                "-inkey",
                &uri,
                "-in",
                "data.sha256",
                "-pkeyopt",
                "digest:sha256",
                "-pkeyopt",
                "rsa_padding_mode:pss",
                "-pkeyopt",
                "rsa_pss_saltlen:32",
                "-out",
                &sig,
            ]));
            let o = run_ok(plain(&d).args([
                "dgst",
                "-sha256",
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:32",
                "-verify",
                &public,
                "-signature",
                &sig,
                "data.txt",
            ]));
            assert_eq!(text(&o).trim(), "Verified OK");
        }

        let wrong = format!("{};pin-source=file:{}", k.uri, d.p("engine-wrong.pin"));
        let o = engine_openssl(&d)
            .args([
                "dgst",
                "-sha256",
                "-engine",
                "pkcs11",
                "-keyform",
                "engine",
                "-sign",
                &wrong,
                "-out",
                "wrong.sig",
                "data.txt",
            ])
            .output()
            .unwrap();
        assert!(!o.status.success(), "{}", all_output(&o));
        assert!(
            all_output(&o).contains("PIN incorrect"),
            "{}",
            all_output(&o)
        );
    }
}

/// `openssl s_server` with its private key in the token serves a file over TLS to a plain
/// `openssl s_client` that verifies the chain and host name against the test CA.
fn s_server_key_in_token(mode: Mode) {
    let d = Device::new(mode);
    let nonce = format!("served by a token key {}", std::process::id());
    std::fs::write(d.path("hello.txt"), &nonce).unwrap();
    for (spec, label, id) in KEYS {
        let k = d.key_with_cert(spec, label, id, "localhost");
        let port = free_port();
        let mut server = engine_openssl(&d);
        server.args([
            "s_server",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-engine",
            "pkcs11",
            "-keyform",
            "engine",
            "-key",
            &key_uri(&d, &k),
            "-cert",
            &k.cert.display().to_string(),
            "-WWW",
        ]);
        let server = Server::start(server, port, d.path(&format!("s_server-{label}.log")));

        let mut c = plain(&d);
        c.args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            "localhost",
            "-verify_hostname",
            "localhost",
            "-CAfile",
            &d.ca.display().to_string(),
            "-verify_return_error",
            "-ign_eof",
        ]);
        let o = client(c, b"GET /hello.txt HTTP/1.0\r\n\r\n");
        let out = all_output(&o);
        assert!(o.status.success(), "{out}\nserver:\n{}", server.output());
        assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
        assert!(out.contains("HTTP/1.0 200 ok"), "{out}");
        assert!(out.contains(&nonce), "{out}");
        let kind = if spec.starts_with("rsa") {
            "Peer signature type: RSA-PSS"
        } else {
            "Peer signature type: ECDSA"
        };
        assert!(out.contains(kind), "{out}");
        // The certificate the server presented is the token's.
        assert!(out.contains("subject=CN = localhost"), "{out}");
    }
}

/// `openssl s_server -Verify 1` requires a client certificate; `openssl s_client` presents
/// one whose key is in the token, and the server shows it back over the connection.
fn s_client_cert_in_token(mode: Mode) {
    let d = Device::new(mode);
    let (server_key, server_cert) = d.software_server();
    let (server_key, server_cert) = (
        server_key.display().to_string(),
        server_cert.display().to_string(),
    );
    for (spec, label, id) in KEYS {
        let cn = format!("device-client-{label}");
        let k = d.key_with_cert(spec, label, id, &cn);
        let port = free_port();
        let mut server = plain(&d);
        server.args([
            "s_server",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-key",
            &server_key,
            "-cert",
            &server_cert,
            "-Verify",
            "1",
            "-CAfile",
            &d.ca.display().to_string(),
            "-verify_return_error",
            "-www",
        ]);
        let server = Server::start(server, port, d.path(&format!("s_server-{label}.log")));

        let mut c = engine_openssl(&d);
        c.args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            "localhost",
            "-verify_hostname",
            "localhost",
            "-CAfile",
            &d.ca.display().to_string(),
            "-verify_return_error",
            "-engine",
            "pkcs11",
            "-keyform",
            "engine",
            "-key",
            &key_uri(&d, &k),
            "-cert",
            &k.cert.display().to_string(),
            "-ign_eof",
        ]);
        let o = client(c, b"GET / HTTP/1.0\r\n\r\n");
        let out = all_output(&o);
        assert!(o.status.success(), "{out}\nserver:\n{}", server.output());
        assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
        assert!(out.contains("HTTP/1.0 200 ok"), "{out}");
        // s_server -www prints the client certificate it verified.
        assert!(out.contains("Client certificate"), "{out}");
        assert!(out.contains(&format!("Subject: CN={cn}")), "{out}");
        let log = server.output();
        assert!(log.contains(&format!("depth=0 CN = {cn}")), "{log}");
        let served = pem_after(&out, "Client certificate");
        assert_eq!(served.trim(), read(&d, &format!("{label}.pem")).trim());
    }
}

/// nginx, stopped gracefully so that its worker exits with its master.
struct Nginx(Server);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && matches!(self.0.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// nginx serves TLS with both its keys (RSA and EC) in the token, named as
/// `engine:pkcs11:pkcs11:...`; its master loads them and its worker, a forked child, signs
/// the handshakes. A plain `openssl s_client` picks each key by signature algorithm and
/// verifies the chain against the test CA.
fn nginx_keys_in_token(mode: Mode) {
    let d = Device::new(mode);
    let rsa = d.key_with_cert("rsa:2048", "nginx-rsa", "21", "localhost");
    let ec = d.key_with_cert("ec:p256", "nginx-ec", "22", "localhost");
    let conf = engine_conf(&d);
    let dir = d.e.dir.path().display().to_string();
    let port = free_port();
    let nonce = format!("nginx-{}", std::process::id());
    let mut site = format!(
        "daemon off;\nmaster_process on;\nworker_processes 1;\n\
         # The worker reaches the token storage (or the daemon's socket) of the test, owned by root.\n\
         user root;\npid {dir}/nginx.pid;\nerror_log {dir}/nginx-error.log info;\n\
         env KEYWARD_CONF;\nenv KEYWARD_SOCKET;\nenv OPENSSL_CONF;\n\
         events {{ worker_connections 16; }}\n\
         http {{\n  access_log {dir}/nginx-access.log;\n"
    );
    for t in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        site.push_str(&format!("  {t}_temp_path {dir}/nginx-{t};\n"));
    }
    site.push_str(&format!(
        "  server {{\n    listen 127.0.0.1:{port} ssl;\n    ssl_protocols TLSv1.2 TLSv1.3;\n"
    ));
    for k in [&rsa, &ec] {
        site.push_str(&format!(
            "    ssl_certificate {};\n    ssl_certificate_key \"engine:pkcs11:{}\";\n",
            k.cert.display(),
            key_uri(&d, k)
        ));
    }
    site.push_str(&format!(
        "    location / {{ return 200 \"{nonce} over $ssl_protocol\\n\"; }}\n  }}\n}}\n"
    ));
    std::fs::write(d.path("nginx.conf"), site).unwrap();
    let mut c = d.command("nginx");
    c.env("OPENSSL_CONF", &conf).args([
        "-p",
        &dir,
        "-e",
        &format!("{dir}/nginx-error.log"),
        "-c",
        &d.p("nginx.conf"),
    ]);
    let nginx = Nginx(Server::start(c, port, d.path("nginx.log")));

    for (sigalgs, kind, max) in [
        ("rsa_pss_rsae_sha256", "RSA-PSS", "-tls1_3"),
        ("ecdsa_secp256r1_sha256", "ECDSA", "-tls1_3"),
        ("RSA+SHA256", "RSA", "-tls1_2"),
        ("ECDSA+SHA256", "ECDSA", "-tls1_2"),
    ] {
        let mut c = plain(&d);
        c.args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            "localhost",
            "-verify_hostname",
            "localhost",
            "-CAfile",
            &d.ca.display().to_string(),
            "-verify_return_error",
            "-sigalgs",
            sigalgs,
            max,
            "-ign_eof",
        ]);
        let o = client(
            c,
            b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        );
        let out = all_output(&o);
        assert!(o.status.success(), "{out}\nnginx:\n{}", nginx.0.output());
        assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
        assert!(
            out.contains(&format!("Peer signature type: {kind}\n")),
            "{sigalgs}: {out}"
        );
        let protocol = if max == "-tls1_3" {
            "TLSv1.3"
        } else {
            "TLSv1.2"
        };
        assert!(out.contains(&format!("{nonce} over {protocol}")), "{out}");
    }
}

/// The first PEM certificate after `marker` in `text`.
fn pem_after(text: &str, marker: &str) -> String {
    let rest = &text[text.find(marker).unwrap()..];
    let begin = rest.find("-----BEGIN CERTIFICATE-----").unwrap();
    let end = rest.find("-----END CERTIFICATE-----").unwrap() + "-----END CERTIFICATE-----".len();
    rest[begin..end].to_owned()
}

both_modes!(
    req_csr_and_self_signed,
    dgst_and_pkeyutl_sign,
    s_server_key_in_token,
    s_client_cert_in_token,
    nginx_keys_in_token
);
