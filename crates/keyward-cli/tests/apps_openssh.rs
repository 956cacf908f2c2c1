//! OpenSSH with keys in Keyward's token: `ssh-keygen -D` lists them, ssh-agent loads the
//! module (`ssh-add -s`, PIN through SSH_ASKPASS) and signs with them (`ssh-keygen -Y sign`,
//! checked by `ssh-keygen -Y verify` against the token's exported public keys), and `ssh -I`
//! logs in to a loopback sshd with them.
//!
//! OpenSSH 9.2 reads RSA and ECDSA keys from PKCS#11 modules only: it skips the token's
//! Ed25519 key ("skipping unsupported key type"); a later OpenSSH that lists it must list the
//! token's key.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Mode;
use common::apps::*;

/// The token's RSA, EC P-256 and Ed25519 keys, with certificates.
struct Keys {
    rsa: KeyCert,
    ec: KeyCert,
    ed: KeyCert,
}

fn keys(d: &Device) -> Keys {
    Keys {
        rsa: d.key_with_cert("rsa:2048", "ssh-rsa", "01", "ssh rsa"),
        ec: d.key_with_cert("ec:p256", "ssh-ec", "02", "ssh ec"),
        ed: d.key_with_cert("ed25519", "ssh-ed", "03", "ssh ed25519"),
    }
}

/// `TYPE BASE64` of an exported SPKI, converted by `ssh-keygen -i -m PKCS8`.
fn converted(d: &Device, k: &KeyCert) -> String {
    let o = run_ok(
        d.command("ssh-keygen")
            .args(["-i", "-m", "PKCS8", "-f"])
            .arg(&k.public),
    );
    type_and_blob(text(&o).trim())
}

/// `ssh-ed25519 BASE64` of an exported Ed25519 SPKI: OpenSSH 9.2's `ssh-keygen -i` cannot
/// convert one, so the wire format (RFC 8709) is built here.
fn ed25519_line(k: &KeyCert) -> String {
    let pem = std::fs::read(&k.public).unwrap();
    let key = openssl::pkey::PKey::public_key_from_pem(&pem).unwrap();
    let raw = key.raw_public_key().unwrap();
    let mut blob = Vec::new();
    for part in [b"ssh-ed25519".as_slice(), raw.as_slice()] {
        blob.extend_from_slice(&u32::try_from(part.len()).unwrap().to_be_bytes());
        blob.extend_from_slice(part);
    }
    format!("ssh-ed25519 {}", openssl::base64::encode_block(&blob))
}

/// The first two fields (key type and base64 blob) of an OpenSSH public key line.
fn type_and_blob(line: &str) -> String {
    line.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Check the keys OpenSSH listed (`TYPE BASE64 COMMENT` lines) against the token's: exactly
/// its RSA and EC keys, with the labels as comments when `labels`, and its Ed25519 key only
/// if this OpenSSH reads Ed25519 keys from modules.
fn assert_token_keys(d: &Device, k: &Keys, listing: &str, labels: bool) {
    let lines: Vec<&str> = listing.lines().filter(|l| !l.trim().is_empty()).collect();
    let got: BTreeSet<String> = lines.iter().map(|l| type_and_blob(l)).collect();
    let mut want: BTreeSet<String> = [converted(d, &k.rsa), converted(d, &k.ec)].into();
    let ed = ed25519_line(&k.ed);
    if got.iter().any(|l| l.starts_with("ssh-ed25519 ")) {
        want.insert(ed);
    }
    assert_eq!(got, want, "OpenSSH listed:\n{listing}");
    assert_eq!(lines.len(), want.len(), "{listing}");
    if labels {
        for (key, label) in [(&k.rsa, "ssh-rsa"), (&k.ec, "ssh-ec")] {
            let line = format!("{} {label}", converted(d, key));
            assert!(lines.contains(&line.as_str()), "no {line:?} in:\n{listing}");
        }
    }
}

/// Write an OpenSSH public key file (mode 0600: ssh refuses wider identity files).
fn write_pub(d: &Device, name: &str, line: &str) -> PathBuf {
    let p = d.path(name);
    std::fs::write(&p, format!("{line}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// A script printing the PIN in `pin_file`, for SSH_ASKPASS.
fn askpass(d: &Device, pin_file: &str) -> PathBuf {
    let p = d.path(&format!("askpass-{pin_file}.sh"));
    std::fs::write(&p, format!("#!/bin/sh\ncat '{}'\n", d.p(pin_file))).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
    p
}

/// The module's path as ssh-agent compares it with its allow-list (it resolves the path).
fn module_path(d: &Device) -> PathBuf {
    d.module().canonicalize().unwrap()
}

/// `ssh-keygen -D` lists the token's public keys under their labels.
fn keygen_lists_token_keys(mode: Mode) {
    let d = Device::new(mode);
    let k = keys(&d);
    let o = run_ok(d.command("ssh-keygen").arg("-D").arg(d.module()));
    assert_token_keys(&d, &k, &text(&o), true);
}

/// An ssh-agent of the test's own, on a socket in the test directory; killed when dropped.
struct Agent {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl Agent {
    /// Started with the module's environment: its ssh-pkcs11-helper loads the module. Only
    /// this module is allowed (`-P`).
    fn start(d: &Device) -> Agent {
        let socket = d.path("agent.sock");
        let log = d.path("ssh-agent.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = d
            .command("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .arg("-P")
            .arg(module_path(d))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let mut a = Agent { child, socket, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&a.socket).is_err() {
            if let Some(st) = a.child.try_wait().unwrap() {
                panic!("ssh-agent exited at start ({st}):\n{}", a.output());
            }
            assert!(
                Instant::now() < deadline,
                "ssh-agent did not answer:\n{}",
                a.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        a
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `program` talking to this agent.
    fn command(&self, d: &Device, program: &str) -> Command {
        let mut c = d.command(program);
        c.env("SSH_AUTH_SOCK", &self.socket).stdin(Stdio::null());
        c
    }

    /// `ssh-add -s MODULE` with the PIN from `pin_file` through SSH_ASKPASS.
    fn add_module(&self, d: &Device, pin_file: &str) -> std::process::Output {
        self.command(d, "ssh-add")
            .env("SSH_ASKPASS", askpass(d, pin_file))
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env_remove("DISPLAY")
            .arg("-s")
            .arg(module_path(d))
            .output()
            .unwrap()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// ssh-agent loads the module with the user PIN (not with a wrong one), lists the token's
/// keys, and signs with them: `ssh-keygen -Y sign` given only the public key signs through the
/// agent; the signatures verify for the token's exported keys and not for another message.
fn agent_signs_with_token_keys(mode: Mode) {
    let d = Device::new(mode);
    let k = keys(&d);
    let agent = Agent::start(&d);

    let o = agent.add_module(&d, "wrong.pin");
    assert!(
        !o.status.success(),
        "ssh-add -s with a wrong PIN succeeded:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = agent.command(&d, "ssh-add").arg("-L").output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("no identities"), "{}", text(&o));

    let o = agent.add_module(&d, "user.pin");
    assert!(
        o.status.success(),
        "ssh-add -s failed ({}):\n{}\nssh-agent:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr),
        agent.output()
    );
    let listed = run_ok(agent.command(&d, "ssh-add").arg("-L"));
    assert_token_keys(&d, &k, &text(&listed), true);

    // Who may sign: the token's keys as exported, not as the agent reports them.
    let rsa = converted(&d, &k.rsa);
    let ec = converted(&d, &k.ec);
    std::fs::write(
        d.path("allowed_signers"),
        format!("device@keyward {rsa}\ndevice@keyward {ec}\n"),
    )
    .unwrap();
    for (name, line, kind) in [("rsa", &rsa, "RSA"), ("ec", &ec, "ECDSA")] {
        let public = write_pub(&d, &format!("id_{name}.pub"), line);
        let message = d.path(&format!("message-{name}.txt"));
        std::fs::write(&message, format!("firmware manifest signed by {name}\n")).unwrap();
        let o = run_ok(
            agent
                .command(&d, "ssh-keygen")
                .args(["-Y", "sign", "-n", "file", "-f"])
                .arg(&public)
                .arg(&message),
        );
        let sig = d.path(&format!("message-{name}.txt.sig"));
        assert!(
            std::fs::read_to_string(&sig)
                .unwrap_or_default()
                .starts_with("-----BEGIN SSH SIGNATURE-----"),
            "no signature from {o:?}"
        );

        let verify = |data: &Path| {
            d.command("ssh-keygen")
                .args(["-Y", "verify", "-f", "allowed_signers"])
                .args(["-I", "device@keyward", "-n", "file", "-s"])
                .arg(&sig)
                .stdin(std::fs::File::open(data).unwrap())
                .output()
                .unwrap()
        };
        let o = verify(&message);
        assert!(
            o.status.success(),
            "{kind} signature does not verify:\n{}{}",
            text(&o),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            text(&o).contains(&format!(
                "Good \"file\" signature for device@keyward with {kind} key"
            )),
            "{}",
            text(&o)
        );
        let other = d.path(&format!("other-{name}.txt"));
        std::fs::write(&other, format!("firmware manifest signed by {name}!\n")).unwrap();
        let o = verify(&other);
        assert!(
            !o.status.success(),
            "{kind} signature verifies for another message:\n{}",
            text(&o)
        );
    }
}

/// `ssh -I MODULE` logs in to a loopback sshd with each of the token's keys (PIN through
/// SSH_ASKPASS); sshd accepted exactly that key.
fn ssh_logs_in_with_token_keys(mode: Mode) {
    let d = Device::new(mode);
    let k = keys(&d);
    let rsa = converted(&d, &k.rsa);
    let ec = converted(&d, &k.ec);

    let host_key = d.p("ssh_host_key");
    run_ok(
        d.command("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f", &host_key]),
    );
    let authorized = d.p("authorized_keys");
    std::fs::write(&authorized, format!("{rsa}\n{ec}\n")).unwrap();
    let port = free_port();
    let config = d.path("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n\
             AuthorizedKeysFile {authorized}\nPubkeyAuthentication yes\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
             PidFile none\nStrictModes no\n"
        ),
    )
    .unwrap();
    // sshd running as root wants its privilege separation directory, which the system's
    // service manager creates at boot; not needed (and not creatable) for other users.
    let _ = std::fs::create_dir_all("/run/sshd");
    let mut c = d.command("/usr/sbin/sshd");
    c.arg("-D").arg("-e").arg("-f").arg(&config);
    let sshd = Server::start(c, port, d.path("sshd.log"));

    let user = text(&run_ok(Command::new("id").arg("-un")))
        .trim()
        .to_owned();
    let askpass = askpass(&d, "user.pin");
    for (name, line, kind) in [("rsa", &rsa, "RSA"), ("ec", &ec, "ECDSA")] {
        let public = write_pub(&d, &format!("id_{name}.pub"), line);
        let o = d
            .command("ssh")
            .env("SSH_ASKPASS", &askpass)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env_remove("DISPLAY")
            .env_remove("SSH_AUTH_SOCK")
            .args(["-F", "/dev/null", "-I"])
            .arg(d.module())
            .arg("-i")
            .arg(&public)
            .args(["-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no"])
            .args(["-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"])
            .args(["-o", "ConnectTimeout=20", "-p", &port.to_string()])
            .arg(format!("{user}@127.0.0.1"))
            .arg(format!("echo logged-in-with-{name}"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "ssh with the {kind} key failed ({}):\n{}\nsshd:\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr),
            sshd.output()
        );
        assert_eq!(text(&o).trim(), format!("logged-in-with-{name}"));

        let fp = text(&run_ok(d.command("ssh-keygen").arg("-lf").arg(&public)));
        let fp = fp.split_whitespace().nth(1).unwrap().to_owned();
        let accepted = format!("Accepted publickey for {user} from 127.0.0.1");
        let log = sshd.output();
        assert!(
            log.lines()
                .any(|l| l.contains(&accepted) && l.ends_with(&format!("{kind} {fp}"))),
            "sshd did not accept {kind} {fp}:\n{log}"
        );
    }
}

both_modes!(
    keygen_lists_token_keys,
    agent_signs_with_token_keys,
    ssh_logs_in_with_token_keys
);
