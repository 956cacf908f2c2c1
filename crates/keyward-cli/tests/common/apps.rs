//! What the application tests share: a device token provisioned with `keyward` (keys generated
//! in the token, certificates issued by a test CA from CSRs signed in the token and imported
//! under the key's CKA_ID), and helpers to run real programs against Keyward's module, embedded
//! or through keywardd.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{Env, Mode, USER_PIN, openssl};

/// The token every application test uses.
pub const TOKEN: &str = "device";

/// A key pair in the token with a certificate issued by the test CA.
pub struct KeyCert {
    /// `pkcs11:token=device;object=LABEL` (no type=: programs pick the class they need).
    pub uri: String,
    pub label: String,
    /// CKA_ID in hex.
    pub id: String,
    /// The certificate (PEM), also imported into the token under the key's CKA_ID.
    pub cert: PathBuf,
    /// The public key (SPKI PEM) exported from the token.
    pub public: PathBuf,
}

/// Keyward's module with a provisioned token `device` and a test CA (a software key).
pub struct Device {
    pub e: Env,
    /// The token's URI as `keyward token init` printed it.
    pub token: String,
    /// The CA certificate (PEM) that issued every KeyCert.
    pub ca: PathBuf,
}

impl Device {
    pub fn new(mode: Mode) -> Device {
        let e = Env::keyward_in(mode);
        let token = e.token(TOKEN);
        let ca = make_ca(e.dir.path(), "ca", "Keyward test CA");
        Device { e, token, ca }
    }

    /// The module the programs load.
    pub fn module(&self) -> &Path {
        &self.e.module
    }

    pub fn mode(&self) -> Mode {
        self.e.mode
    }

    /// The user PIN.
    pub fn pin(&self) -> &'static str {
        USER_PIN
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.e.path(name)
    }

    pub fn p(&self, name: &str) -> String {
        self.e.p(name)
    }

    /// `pkcs11:token=device;object=LABEL`.
    pub fn object_uri(&self, label: &str) -> String {
        format!("pkcs11:token={TOKEN};object={label}")
    }

    /// Generate a `spec` key pair (keyward's TYPE: rsa:2048, ec:p256, ed25519, ...) labelled
    /// `label` with CKA_ID `id_hex`, make a CSR signed in the token, have the test CA issue a
    /// certificate for `cn` (SANs DNS:localhost and IP:127.0.0.1, server and client TLS usage)
    /// and import it into the token under the same CKA_ID.
    pub fn key_with_cert(&self, spec: &str, label: &str, id_hex: &str, cn: &str) -> KeyCert {
        self.key_with_cert_ext(spec, label, id_hex, cn, TLS_EXTENSIONS)
    }

    /// As [`Device::key_with_cert`], with the certificate's extensions given as an openssl
    /// extension file's text.
    pub fn key_with_cert_ext(
        &self,
        spec: &str,
        label: &str,
        id_hex: &str,
        cn: &str,
        extensions: &str,
    ) -> KeyCert {
        let e = &self.e;
        let pin = e.p("user.pin");
        let uri = self.object_uri(label);
        e.ok(&[
            "key",
            "generate",
            spec,
            &self.token,
            "--label",
            label,
            "--id",
            id_hex,
            "--usage",
            usage_for(spec),
            "--pin-source",
            &pin,
        ]);
        let csr = e.p(&format!("{label}.csr"));
        e.ok(&[
            "csr",
            &uri,
            "--subject",
            &format!("CN={cn}"),
            "--san",
            "DNS:localhost",
            "--san",
            "IP:127.0.0.1",
            "-o",
            &csr,
            "--pin-source",
            &pin,
        ]);
        let cert = self.issue(label, &csr, extensions);
        e.ok(&[
            "import",
            &cert.display().to_string(),
            &self.token,
            "--label",
            label,
            "--id",
            id_hex,
            "--pin-source",
            &pin,
        ]);
        let public = e.path(&format!("{label}.pub.pem"));
        e.ok(&[
            "export",
            &format!("{uri};type=public"),
            "-o",
            &public.display().to_string(),
        ]);
        KeyCert {
            uri,
            label: label.to_owned(),
            id: id_hex.to_owned(),
            cert,
            public,
        }
    }

    /// Have the test CA issue `NAME.pem` from the request `csr` with `extensions` (an openssl
    /// extension file's text).
    pub fn issue(&self, name: &str, csr: &str, extensions: &str) -> PathBuf {
        let ext = self.path(&format!("{name}.ext"));
        std::fs::write(&ext, extensions).unwrap();
        let cert = self.path(&format!("{name}.pem"));
        openssl(
            self.e.dir.path(),
            &[
                "x509",
                "-req",
                "-in",
                csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &ext.display().to_string(),
                "-out",
                &cert.display().to_string(),
            ],
        );
        cert
    }

    /// A software key (`server.key`) and certificate (`server.pem`, CN=localhost, server
    /// auth) from the test CA, for the TLS peers that are not under test: (key, cert).
    pub fn software_server(&self) -> (PathBuf, PathBuf) {
        openssl(
            self.e.dir.path(),
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "server.key",
                "-subj",
                "/CN=localhost",
                "-out",
                "server.csr",
            ],
        );
        let cert = self.issue(
            "server",
            &self.p("server.csr"),
            "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n\
             subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        );
        (self.path("server.key"), cert)
    }

    /// A command for `program` that reaches this device's module: the module's configuration
    /// (and the daemon's socket) in its environment, the test directory as its working
    /// directory, and no PIN in its environment.
    pub fn command(&self, program: &str) -> Command {
        require(program);
        let mut c = Command::new(program);
        c.env_remove("KEYWARD_PIN")
            .env_remove("KEYWARD_SO_PIN")
            .env_remove("KEYWARD_MODULE")
            .env_remove("KEYWARD_SOCKET")
            .env_remove("KEYWARD_CONF");
        for (k, v) in &self.e.vars {
            c.env(k, v);
        }
        c.current_dir(self.e.dir.path());
        c
    }
}

/// A TLS server and client certificate for the loopback host.
pub const TLS_EXTENSIONS: &str = "basicConstraints=CA:FALSE\n\
    keyUsage=critical,digitalSignature,keyEncipherment\n\
    extendedKeyUsage=serverAuth,clientAuth\n\
    subjectAltName=DNS:localhost,IP:127.0.0.1\n";

/// A self-signed CA with a software P-256 key: `dir/NAME.key` and `dir/NAME.pem`, returned.
pub fn make_ca(dir: &Path, name: &str, cn: &str) -> PathBuf {
    let (key, cert) = (format!("{name}.key"), format!("{name}.pem"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &cert,
            "-days",
            "2",
            "-subj",
            &format!("/CN={cn}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    dir.join(cert)
}

/// Usages `keyward key generate` accepts for a key type, enough for TLS.
fn usage_for(spec: &str) -> &'static str {
    if spec.starts_with("rsa") {
        "sign,encrypt"
    } else {
        "sign"
    }
}

/// Panic with what to install when a program the tests drive is missing: a missing program
/// must fail the run, not skip it (scripts/test installs them all).
pub fn require(program: &str) {
    if program.contains('/') {
        assert!(
            Path::new(program).exists(),
            "{program} is missing: run scripts/test, which installs the packages the tests need"
        );
        return;
    }
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{program} is not installed: run scripts/test, which installs the packages the tests need"
    );
}

/// Run to completion; panic with both outputs unless it succeeds.
pub fn run_ok(c: &mut Command) -> Output {
    let o = c.output().unwrap_or_else(|e| panic!("starting {c:?}: {e}"));
    assert!(
        o.status.success(),
        "{c:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Standard output as text.
pub fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A loopback port nobody listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server process, killed when dropped; its output goes to `log`.
pub struct Server {
    pub child: Child,
    pub log: PathBuf,
}

impl Server {
    /// Start `c` with its output to `log` and wait until it accepts on `port`.
    pub fn start(mut c: Command, port: u16, log: PathBuf) -> Server {
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = c
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {c:?}: {e}"));
        let mut s = Server { child, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(st) = s.child.try_wait().unwrap() {
                panic!("{c:?} exited at start ({st}):\n{}", s.output());
            }
            assert!(
                Instant::now() < deadline,
                "{c:?} did not listen on {port}:\n{}",
                s.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    /// What the server printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run the test body for both modes of Keyward's module.
#[macro_export]
macro_rules! both_modes {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[test]
                fn $name() {
                    super::$name($crate::common::Mode::Embedded);
                }
            )*
        }
        mod daemon {
            $(
                #[test]
                fn $name() {
                    super::$name($crate::common::Mode::Daemon);
                }
            )*
        }
    };
}
