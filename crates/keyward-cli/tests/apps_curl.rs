//! curl (Debian's, built with OpenSSL) presents a client certificate whose key stays in
//! Keyward's token, through libp11's PKCS#11 engine, to a local `openssl s_server` that
//! requires client certificates from the test CA.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use common::Mode;
use common::apps::*;

/// libp11's engine as Debian installs it.
const ENGINE: &str = "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so";

/// An OpenSSL configuration (curl reads it from OPENSSL_CONF) that loads libp11's engine with
/// Keyward's module, and the PIN file the key URIs name.
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
    conf
}

/// Plain `openssl`: no engine, no module.
fn plain(d: &Device) -> Command {
    let mut c = Command::new("openssl");
    c.env_remove("OPENSSL_CONF")
        .env_remove("KEYWARD_CONF")
        .env_remove("KEYWARD_SOCKET")
        .current_dir(d.e.dir.path());
    c
}

/// curl with the engine configuration and the module's environment, trusting the test CA.
fn curl(d: &Device, port: u16) -> Command {
    let conf = engine_conf(d);
    let mut c = d.command("curl");
    c.env("OPENSSL_CONF", conf).args([
        "--silent",
        "--show-error",
        "--include",
        "--max-time",
        "60",
        "--cacert",
        &d.ca.display().to_string(),
        &format!("https://localhost:{port}/"),
    ]);
    c
}

fn all_output(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `openssl s_server -www` on loopback with a software key issued by the test CA (CN=localhost),
/// requiring a client certificate from the test CA.
fn server(d: &Device) -> (Server, u16) {
    d.software_server();
    let port = free_port();
    let mut c = plain(d);
    c.args([
        "s_server",
        "-accept",
        &format!("127.0.0.1:{port}"),
        "-key",
        "server.key",
        "-cert",
        "server.pem",
        "-Verify",
        "1",
        "-CAfile",
        "ca.pem",
        "-verify_return_error",
        "-www",
    ]);
    (Server::start(c, port, d.path("s_server.log")), port)
}

/// What s_server -www answered, with the client certificate it verified.
fn assert_seen(out: &str, server: &Server, cn: &str, cert: &str) {
    assert!(out.starts_with("HTTP/1.0 200 ok"), "{out}");
    assert!(out.contains("Client certificate"), "{out}");
    assert!(out.contains(&format!("Subject: CN={cn}")), "{out}");
    let rest = &out[out.find("Client certificate").unwrap()..];
    let begin = rest.find("-----BEGIN CERTIFICATE-----").unwrap();
    let end = rest.find("-----END CERTIFICATE-----").unwrap() + "-----END CERTIFICATE-----".len();
    assert_eq!(rest[begin..end].trim(), cert.trim());
    let log = server.output();
    assert!(log.contains(&format!("depth=0 CN = {cn}")), "{log}");
}

/// curl's client key is in the token (`--key-type ENG --key pkcs11:...`), its certificate a
/// PEM file (RSA) or also read from the token by URI (`--cert-type ENG`, EC). Without the
/// token key the server refuses the request.
fn curl_client_cert_in_token(mode: Mode) {
    let d = Device::new(mode);
    let rsa = d.key_with_cert("rsa:2048", "curl-rsa", "11", "curl-client-rsa");
    let ec = d.key_with_cert("ec:p256", "curl-ec", "12", "curl-client-ec");
    let pin = format!("pin-source=file:{}", d.p("engine.pin"));
    let (server, port) = server(&d);

    let o = run_ok(curl(&d, port).args([
        "--engine",
        "pkcs11",
        "--key-type",
        "ENG",
        "--key",
        &format!("{};{pin}", rsa.uri),
        "--cert",
        &rsa.cert.display().to_string(),
    ]));
    let cert = std::fs::read_to_string(&rsa.cert).unwrap();
    assert_seen(&text(&o), &server, "curl-client-rsa", &cert);

    let o = run_ok(curl(&d, port).args([
        "--engine",
        "pkcs11",
        "--key-type",
        "ENG",
        "--key",
        &format!("{};{pin}", ec.uri),
        "--cert-type",
        "ENG",
        "--cert",
        &format!("{};{pin}", ec.uri),
    ]));
    let cert = std::fs::read_to_string(&ec.cert).unwrap();
    assert_seen(&text(&o), &server, "curl-client-ec", &cert);

    let o = curl(&d, port).output().unwrap();
    assert!(!o.status.success(), "{}", all_output(&o));
    assert!(
        !all_output(&o).contains("HTTP/1.0 200 ok"),
        "{}",
        all_output(&o)
    );
}

both_modes!(curl_client_cert_in_token);
