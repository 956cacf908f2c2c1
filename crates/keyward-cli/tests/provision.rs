//! End-to-end tests of `keyward provision` against Keyward's module, embedded and through
//! keywardd, and against SoftHSMv2: a fresh run creates every object, a second run changes nothing, a run stopped
//! by a missing certificate file is finished by the next one, and conflicts are refused.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const SO_PIN: &str = "so-pin-4242";
const USER_PIN: &str = "user-pin-4242";
const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// Keyward's module with its own storage, PIN files, and optionally a daemon.
struct Env {
    dir: tempfile::TempDir,
    module: PathBuf,
    vars: Vec<(&'static str, String)>,
    daemon: Option<Child>,
}

fn built(name: &str) -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_keyward"));
    exe.parent()
        .map(|d| d.join(name))
        .filter(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not next to {}: build it first with cargo build --workspace --all-targets",
                exe.display()
            )
        })
}

impl Env {
    fn new(daemon: bool) -> Env {
        let module = built("libkeyward_pkcs11.so");
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let conf = dir.path().join("keyward.toml");
        std::fs::write(
            &conf,
            format!(
                "storage_dir = \"{}\"\nlog_level = \"error\"\n[kdf]\nmemory_kib = 1024\niterations = 1\n",
                dir.path().join("tokens").display()
            ),
        )
        .unwrap();
        std::fs::write(dir.path().join("so.pin"), format!("{SO_PIN}\n")).unwrap();
        std::fs::write(dir.path().join("user.pin"), format!("{USER_PIN}\n")).unwrap();
        let mut e = Env {
            dir,
            module,
            vars: vec![("KEYWARD_CONF", conf.display().to_string())],
            daemon: None,
        };
        if daemon {
            e.start_daemon(&conf);
        }
        e
    }

    /// SoftHSMv2 with its own token directory, if it is installed.
    fn softhsm() -> Option<Env> {
        if !Path::new(SOFTHSM).exists() {
            eprintln!("SoftHSMv2 is not installed ({SOFTHSM}); skipping");
            return None;
        }
        let mut e = Env::new(false);
        let tokens = e.path("softhsm-tokens");
        std::fs::create_dir(&tokens).unwrap();
        let conf = e.path("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        e.module = PathBuf::from(SOFTHSM);
        e.vars = vec![("SOFTHSM2_CONF", conf.display().to_string())];
        Some(e)
    }

    /// keywardd on a socket of its own; the module reaches it through KEYWARD_SOCKET.
    fn start_daemon(&mut self, conf: &Path) {
        let socket = self.path("run/keyward.sock");
        let log = std::fs::File::create(self.path("keywardd.log")).unwrap();
        let mut child = Command::new(built("keywardd"))
            .arg("--config")
            .arg(conf)
            .arg("--socket")
            .arg(&socket)
            .env_remove("KEYWARD_SOCKET")
            .env_remove("KEYWARD_CONF")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&socket).is_err() {
            if let Some(st) = child.try_wait().unwrap() {
                panic!(
                    "keywardd exited at start ({st}):\n{}",
                    std::fs::read_to_string(self.path("keywardd.log")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "keywardd did not answer");
            std::thread::sleep(Duration::from_millis(20));
        }
        self.vars
            .push(("KEYWARD_SOCKET", socket.display().to_string()));
        self.daemon = Some(child);
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).unwrap();
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_keyward"));
        c.arg("--module").arg(&self.module).args(args);
        for v in [
            "KEYWARD_PIN",
            "KEYWARD_SO_PIN",
            "KEYWARD_NEW_PIN",
            "KEYWARD_MODULE",
            "KEYWARD_SOCKET",
        ] {
            c.env_remove(v);
        }
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c.current_dir(self.dir.path());
        c.output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "keyward {args:?} failed ({:?}):\n{}\n{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    fn fails(&self, args: &[&str], code: i32) -> String {
        let o = self.run(args);
        assert_eq!(
            o.status.code(),
            Some(code),
            "keyward {args:?}: stdout {}\nstderr {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stderr).unwrap()
    }

    /// Every object on the token, logged in, as `keyward list --json` prints them.
    fn list(&self, token: &str) -> Vec<Value> {
        let pin = self.p("user.pin");
        let uri = format!("pkcs11:token={token}");
        let out = self.ok(&["list", &uri, "--login", "--pin-source", &pin, "--json"]);
        let mut v = serde_json::from_str::<Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .clone();
        v.sort_by_key(|o| o["uri"].as_str().unwrap_or_default().to_owned());
        v
    }

    fn provision(&self, serial: &str, report: &str) -> Value {
        self.ok(&[
            "provision",
            "m.toml",
            "--vars",
            &format!("serial={serial}"),
            "--report",
            report,
        ]);
        self.report(report)
    }

    fn report(&self, name: &str) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.path(name)).unwrap()).unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn openssl(dir: &Path, args: &[&str]) -> Output {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn find<'a>(objs: &'a [Value], label: &str, class: &str) -> &'a Value {
    objs.iter()
        .find(|o| o["label"] == label && o["class"] == class)
        .unwrap_or_else(|| panic!("no {class} object {label:?} in {objs:#?}"))
}

fn statuses(report: &Value) -> Vec<(String, String, String)> {
    report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap().to_owned(),
                i["name"].as_str().unwrap().to_owned(),
                i["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

const MANIFEST: &str = r#"
[vars]
org = "Example Devices"

[[token]]
label = "factory"
so_pin_source = "file:so.pin"
user_pin_source = "file:user.pin"

[[token.key]]
type = "ec:p256"
label = "identity"
id = "01"

[[token.key]]
type = "ed25519"
label = "tls"
id = "02"

[[token.key]]
type = "aes:256"
label = "storage"
id = "03"
usage = ["wrap"]

[[token.csr]]
key = "identity"
subject = "CN=${serial},O=${org}"
san = ["DNS:${serial}.devices.example.com"]
output = "${serial}.csr"
"#;

const CA: &str = r#"
[[token.ca]]
file = "ota-ca.pem"
label = "ota"

[[token.data]]
label = "serial"
application = "device"
value = "${serial}"
private = false

[[token.data]]
label = "config"
file = "config.bin"
"#;

const LEAF: &str = r#"
[[token.certificate]]
file = "identity.pem"
key = "identity"
"#;

/// A CA (key and certificate) of the test's own, made with openssl.
fn make_ca(e: &Env) {
    openssl(
        e.dir.path(),
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ota-ca.pem",
            "-days",
            "30",
            "-subj",
            "/CN=Test OTA CA",
        ],
    );
    e.write("config.bin", "mode=factory\n\u{0}\u{1}binary");
}

fn fresh_run_then_nothing(e: &Env) {
    make_ca(e);
    e.write("m.toml", &format!("{MANIFEST}{CA}"));
    let r1 = e.provision("SN0001", "r1.json");
    assert_eq!(r1["ok"], true);
    let s1 = statuses(&r1);
    let names: Vec<(&str, &str)> = s1
        .iter()
        .map(|(k, n, _)| (k.as_str(), n.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("token", "factory"),
            ("key", "identity"),
            ("key", "tls"),
            ("key", "storage"),
            ("csr", "identity"),
            ("ca", "ota"),
            ("data", "serial"),
            ("data", "config"),
        ]
    );
    assert!(s1.iter().all(|(_, _, s)| s == "created"), "{s1:?}");
    assert_eq!(r1["created"], 8);

    let objs = e.list("factory");
    // Every object in the token is in the report, by a URI that selects it alone.
    let reported: Vec<String> = r1["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] != "token")
        .flat_map(|i| i["objects"].as_array().cloned().unwrap_or_default())
        .map(|u| u.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(reported.len(), objs.len(), "{objs:#?}\n{r1:#}");
    let pin = e.p("user.pin");
    for uri in &reported {
        let out = e.ok(&["list", uri, "--login", "--pin-source", &pin, "--json"]);
        let found: Vec<Value> = serde_json::from_str(&out).unwrap();
        assert_eq!(found.len(), 1, "{uri} selects {found:#?}");
    }
    let reported_uri = |label: &str| -> String {
        reported
            .iter()
            .find(|u| u.contains(&format!(";object={label};")))
            .unwrap()
            .clone()
    };

    let id = find(&objs, "identity", "private");
    assert_eq!(id["key_type"], "ec:p256");
    assert_eq!(id["id"], "01");
    assert_eq!(id["extractable"], false);
    assert_eq!(id["sensitive"], true);
    assert_eq!(id["local"], true);
    assert_eq!(find(&objs, "identity", "public")["id"], "01");
    assert_eq!(find(&objs, "tls", "private")["key_type"], "ed25519");
    let storage = find(&objs, "storage", "secret-key");
    assert_eq!(storage["key_type"], "aes:256");
    assert_eq!(storage["id"], "03");
    let usage: Vec<&str> = storage["usage"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        usage.contains(&"wrap") && usage.contains(&"unwrap"),
        "{usage:?}"
    );
    assert!(
        !usage.contains(&"encrypt") && !usage.contains(&"sign"),
        "{usage:?}"
    );
    let ca = find(&objs, "ota", "cert");
    assert_eq!(ca["private"], false);
    assert_eq!(find(&objs, "serial", "data")["private"], false);
    assert_eq!(find(&objs, "config", "data")["private"], true);
    assert_eq!(objs.len(), 8, "{objs:#?}");

    // The certificate in the token is the file's, byte for byte.
    let cert_uri = ca["uri"].as_str().unwrap();
    e.ok(&["export", cert_uri, "--der", "-o", "ca-out.der"]);
    openssl(
        e.dir.path(),
        &[
            "x509",
            "-in",
            "ota-ca.pem",
            "-outform",
            "DER",
            "-out",
            "ca-in.der",
        ],
    );
    assert_eq!(
        std::fs::read(e.path("ca-out.der")).unwrap(),
        std::fs::read(e.path("ca-in.der")).unwrap()
    );
    // The data objects hold the substituted value and the file's bytes.
    assert_eq!(e.ok(&["export", &reported_uri("serial")]), "SN0001");
    e.ok(&[
        "export",
        &reported_uri("config"),
        "--login",
        "--pin-source",
        &pin,
        "-o",
        "config-out.bin",
    ]);
    assert_eq!(
        std::fs::read(e.path("config-out.bin")).unwrap(),
        std::fs::read(e.path("config.bin")).unwrap()
    );

    // The CSR: signed by the token's key (checked by openssl), for the substituted subject.
    let v = openssl(
        e.dir.path(),
        &[
            "req",
            "-in",
            "SN0001.csr",
            "-verify",
            "-noout",
            "-subject",
            "-text",
        ],
    );
    let text = String::from_utf8_lossy(&v.stdout);
    assert!(
        text.contains("subject=CN = SN0001, O = Example Devices"),
        "{text}"
    );
    assert!(text.contains("DNS:SN0001.devices.example.com"), "{text}");
    let pub_uri = find(&objs, "identity", "public")["uri"].as_str().unwrap();
    e.ok(&["export", pub_uri, "-o", "identity-pub.pem"]);
    let csr_pub = openssl(
        e.dir.path(),
        &["req", "-in", "SN0001.csr", "-noout", "-pubkey"],
    );
    assert_eq!(
        csr_pub.stdout,
        std::fs::read(e.path("identity-pub.pem")).unwrap()
    );
    let csr1 = std::fs::read(e.path("SN0001.csr")).unwrap();

    // A second run: everything unchanged, no new object, the CSR left as it was.
    let out = e.ok(&[
        "provision",
        "m.toml",
        "--vars",
        "serial=SN0001",
        "--report",
        "r2.json",
    ]);
    assert!(out.contains("0 created, 8 unchanged"), "{out}");
    let r2 = e.report("r2.json");
    assert!(
        statuses(&r2).iter().all(|(_, _, s)| s == "unchanged"),
        "{r2:#}"
    );
    assert_eq!(r2["created"], 0);
    assert_eq!(e.list("factory"), objs);
    assert_eq!(std::fs::read(e.path("SN0001.csr")).unwrap(), csr1);

    // Another serial on the same keys: a new CSR file, nothing new in the token.
    e.write("m.toml", MANIFEST);
    let r3 = e.provision("SN0002", "r3.json");
    let s3 = statuses(&r3);
    assert!(
        s3.contains(&("csr".into(), "identity".into(), "created".into())),
        "{s3:?}"
    );
    assert_eq!(r3["created"], 1, "{r3:#}");
    openssl(
        e.dir.path(),
        &["req", "-in", "SN0002.csr", "-verify", "-noout"],
    );
}

#[test]
fn embedded_fresh_run_creates_everything_and_a_second_changes_nothing() {
    fresh_run_then_nothing(&Env::new(false));
}

#[test]
fn daemon_fresh_run_creates_everything_and_a_second_changes_nothing() {
    fresh_run_then_nothing(&Env::new(true));
}

fn stopped_then_finished(e: &Env) {
    make_ca(e);
    // The identity's certificate does not exist yet: the CA signs the CSR of the first run.
    e.write("m.toml", &format!("{MANIFEST}{LEAF}{CA}"));
    let err = e.fails(
        &[
            "provision",
            "m.toml",
            "--vars",
            "serial=SN0009",
            "--report",
            "r1.json",
        ],
        5,
    );
    assert!(err.contains("identity.pem"), "{err}");
    assert!(err.contains("run again"), "{err}");
    let r1 = e.report("r1.json");
    assert_eq!(r1["ok"], false);
    assert!(
        r1["error"].as_str().unwrap().contains("identity.pem"),
        "{r1:#}"
    );
    assert_eq!(r1["created"], 5, "{r1:#}");
    // What was made before the failure is whole: three keys (five objects), no certificate.
    let objs = e.list("factory");
    assert_eq!(objs.len(), 5, "{objs:#?}");
    assert!(
        objs.iter()
            .all(|o| o["class"] != "cert" && o["class"] != "data")
    );

    // The CA signs the request; the rerun imports the certificate, linked to its key.
    openssl(
        e.dir.path(),
        &[
            "x509",
            "-req",
            "-in",
            "SN0009.csr",
            "-CA",
            "ota-ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-out",
            "identity.pem",
        ],
    );
    let r2 = e.provision("SN0009", "r2.json");
    let s2 = statuses(&r2);
    let created: Vec<(&str, &str)> = s2
        .iter()
        .filter(|(_, _, s)| s == "created")
        .map(|(k, n, _)| (k.as_str(), n.as_str()))
        .collect();
    assert_eq!(
        created,
        [
            ("certificate", "identity"),
            ("ca", "ota"),
            ("data", "serial"),
            ("data", "config")
        ],
        "{s2:?}"
    );
    let objs = e.list("factory");
    assert_eq!(objs.len(), 9, "{objs:#?}");
    let leaf = find(&objs, "identity", "cert");
    assert_eq!(leaf["id"], "01", "linked to the identity key by CKA_ID");
    // The CA certificate keeps an id of its own (SHA-1 of its public key).
    assert_ne!(find(&objs, "ota", "cert")["id"], "01");

    // A third run: nothing left to do.
    let r3 = e.provision("SN0009", "r3.json");
    assert_eq!(r3["created"], 0, "{r3:#}");
    assert_eq!(e.list("factory"), objs);
}

#[test]
fn embedded_failure_part_way_then_rerun_completes() {
    stopped_then_finished(&Env::new(false));
}

#[test]
fn daemon_failure_part_way_then_rerun_completes() {
    stopped_then_finished(&Env::new(true));
}

#[test]
fn softhsm_provisions_the_same_way() {
    if let Some(e) = Env::softhsm() {
        fresh_run_then_nothing(&e);
    }
    if let Some(e) = Env::softhsm() {
        stopped_then_finished(&e);
    }
}

#[test]
fn a_certificate_without_key_entry_links_by_public_key() {
    let e = Env::new(false);
    make_ca(&e);
    e.write("m.toml", MANIFEST);
    e.provision("SN5", "r1.json");
    openssl(
        e.dir.path(),
        &[
            "x509",
            "-req",
            "-in",
            "SN5.csr",
            "-CA",
            "ota-ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.der",
            "-outform",
            "DER",
        ],
    );
    e.write(
        "m.toml",
        &format!("{MANIFEST}\n[[token.certificate]]\nfile = \"leaf.der\"\n"),
    );
    let r = e.provision("SN5", "r2.json");
    assert_eq!(r["created"], 1, "{r:#}");
    let objs = e.list("factory");
    // No label given and no key entry: the common name names it, the public key links it.
    let leaf = find(&objs, "SN5", "cert");
    assert_eq!(leaf["id"], "01");
    // The same certificate under [[token.ca]] is recognised as already there.
    e.write(
        "m.toml",
        &format!("{MANIFEST}\n[[token.ca]]\nfile = \"leaf.der\"\n"),
    );
    assert_eq!(e.provision("SN5", "r3.json")["created"], 0);
}

#[test]
fn conflicts_and_bad_manifests_are_refused() {
    let e = Env::new(false);
    e.write("m.toml", MANIFEST);
    e.provision("SN1", "r.json");

    // The same label and id with another type: refused, naming the key and both types.
    e.write("m.toml", &MANIFEST.replacen("ec:p256", "ec:p384", 1));
    let err = e.fails(&["provision", "m.toml", "--vars", "serial=SN1"], 1);
    assert!(err.contains("\"identity\""), "{err}");
    assert!(err.contains("ec:p256") && err.contains("ec:p384"), "{err}");
    assert!(err.contains("keyward delete"), "{err}");

    // Another id on an existing label: refused rather than a second "identity" key.
    e.write(
        "m.toml",
        &MANIFEST.replacen("id = \"01\"", "id = \"11\"", 1),
    );
    let err = e.fails(&["provision", "m.toml", "--vars", "serial=SN1"], 1);
    assert!(err.contains("id 01"), "{err}");

    // A data object with the same label and application but another value.
    e.write(
        "m.toml",
        &format!("{MANIFEST}\n[[token.data]]\nlabel = \"n\"\nvalue = \"a\"\n"),
    );
    e.provision("SN1", "r.json");
    e.write(
        "m.toml",
        &format!("{MANIFEST}\n[[token.data]]\nlabel = \"n\"\nvalue = \"b\"\n"),
    );
    let err = e.fails(&["provision", "m.toml", "--vars", "serial=SN1"], 1);
    assert!(err.contains("another value"), "{err}");

    // A wrong user PIN source: a PIN error, and the SO PIN was checked first.
    e.write("wrong.pin", "nope-nope\n");
    e.write(
        "m.toml",
        &MANIFEST.replace("file:user.pin", "file:wrong.pin"),
    );
    let err = e.fails(&["provision", "m.toml", "--vars", "serial=SN1"], 3);
    assert!(err.contains("user PIN"), "{err}");

    // Manifest errors, before anything is touched.
    let before = e.list("factory");
    for (text, want) in [
        (
            MANIFEST.replace("id = \"02\"", "id = \"02\"\npin = \"1234\""),
            "unknown field `pin`",
        ),
        (
            MANIFEST.replace("file:so.pin", "so-pin-4242"),
            "file:PATH or env:NAME",
        ),
        (MANIFEST.replace("ed25519", "ed25520"), "unknown key type"),
    ] {
        e.write("m.toml", &text);
        let err = e.fails(&["provision", "m.toml", "--vars", "serial=SN1"], 1);
        assert!(err.contains(want), "{want:?} not in {err}");
    }
    e.write("m.toml", MANIFEST);
    let err = e.fails(&["provision", "m.toml"], 1);
    assert!(err.contains("${serial}"), "{err}");
    assert_eq!(e.list("factory"), before);
}
