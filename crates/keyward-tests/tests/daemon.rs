//! keywardd as a process: started from its built binary with a temporary configuration and
//! socket, driven over the wire protocol (`keyward_proto::Remote`) by this process and by
//! children it starts (re-running this test binary in a role), killed and restarted.
//! Covers SECURITY §9 (IPC-01..05) and the daemon half of FIPS-04.
//!
//! Tests that need another uid (`setpriv`) run only as root and print why they skip otherwise.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use cryptoki_sys::*;
use keyward_core::api::{Api, SessionHandle};
use keyward_core::types::{AttrResult, AttrValue, Attribute, Mechanism};
use keyward_proto::{Hello, HelloReply, MAGIC, PROTOCOL_VERSION, Remote, decode, encode};

const SO_PIN: &[u8] = b"so-pin-daemon-0001";
const USER_PIN: &[u8] = b"user-pin-daemon-0001";
/// Environment variable carrying a child's role (see [`role`]).
const ROLE_ENV: &str = "KEYWARD_DAEMON_TEST_ROLE";
/// Environment variable carrying the socket to a child.
const SOCKET_ENV: &str = "KEYWARD_DAEMON_TEST_SOCKET";
const RW: CK_FLAGS = CKF_SERIAL_SESSION | CKF_RW_SESSION;

// ---- harness --------------------------------------------------------------------------------

/// The built `keywardd` next to this test executable (`target/<profile>/keywardd`).
fn keywardd() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .skip(1)
        .take(3)
        .map(|d| d.join("keywardd"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "keywardd not found near {}: cargo build --all-targets",
                exe.display()
            )
        })
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A directory for one daemon: configuration, tokens, socket and log.
struct Place {
    dir: tempfile::TempDir,
}

impl Place {
    fn new() -> Place {
        Place {
            dir: tempfile::Builder::new()
                .prefix("keywardd-test-")
                .tempdir()
                .expect("temp dir"),
        }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn socket(&self) -> PathBuf {
        self.path().join("run/keyward.sock")
    }
    fn conf(&self) -> PathBuf {
        self.path().join("keyward.toml")
    }
    fn log(&self) -> PathBuf {
        self.path().join("keywardd.log")
    }
    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }
    /// Write the configuration: fast PIN hashing, the tokens here, plus `extra` (top-level
    /// keys first, then tables).
    fn configure(&self, top: &str, tables: &str) {
        let text = format!(
            "storage_dir = \"{}\"\nlog_level = \"info\"\n{top}\n\
             [kdf]\nalgorithm = \"argon2id\"\nmemory_kib = 1024\niterations = 1\nparallelism = 1\n\
             {tables}\n",
            self.path().join("tokens").display()
        );
        std::fs::write(self.conf(), text).expect("write the configuration");
    }
}

/// A running daemon, killed when dropped.
struct Daemon {
    child: Child,
    socket: PathBuf,
}

impl Daemon {
    /// Start `keywardd --config .. --socket .. --log-level debug` and wait until it answers.
    fn start(place: &Place) -> Daemon {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(place.log())
            .expect("daemon log");
        let child = Command::new(keywardd())
            .arg("--config")
            .arg(place.conf())
            .arg("--socket")
            .arg(place.socket())
            .arg("--log-level")
            .arg("debug")
            .env_remove("KEYWARD_SOCKET")
            .env_remove("KEYWARD_CONF")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start keywardd");
        let mut d = Daemon {
            child,
            socket: place.socket(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = d.child.try_wait().expect("try_wait") {
                panic!("keywardd exited at start ({st}):\n{}", place.log_text());
            }
            if Remote::connect(&d.socket).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "keywardd did not answer on {} within 20 s:\n{}",
                d.socket.display(),
                place.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn remote(&self) -> Remote {
        Remote::connect(&self.socket).expect("connect to keywardd")
    }

    fn assert_alive(&mut self, place: &Place) {
        if let Some(st) = self.child.try_wait().expect("try_wait") {
            panic!("keywardd died ({st}):\n{}", place.log_text());
        }
    }

    /// SIGTERM, then the exit status (within `limit`).
    fn terminate(mut self, limit: Duration) -> ExitStatus {
        signal(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return st;
            }
            assert!(Instant::now() < deadline, "keywardd ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("pid");
    // SAFETY: kill has no memory preconditions; the pid is our own child.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig})");
}

/// The role this process was started in by [`child`], if any.
fn role() -> Option<String> {
    std::env::var(ROLE_ENV).ok()
}

/// Re-run this test binary as a child playing `role` in `test`, its stdout piped.
fn child(test: &str, role: &str, socket: &Path, wrapper: &[&str]) -> Child {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, role)
        .env(SOCKET_ENV, socket)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start a child")
}

fn child_socket() -> PathBuf {
    PathBuf::from(std::env::var_os(SOCKET_ENV).expect("socket for the child"))
}

/// Print one line for the parent and flush it. It starts on a line of its own: the test
/// harness has written "test <name> ... " without a newline before running the test.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "\n{line}").expect("stdout");
    out.flush().expect("flush");
}

/// Lines the child writes that start with `prefix` (other lines are the test harness's).
fn wait_for_line(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    prefix: &str,
) -> String {
    for line in lines {
        let line = line.expect("child output");
        if line.starts_with(prefix) {
            return line;
        }
    }
    panic!("child ended before printing {prefix:?}");
}

fn label32(s: &str) -> [u8; 32] {
    let mut l = [b' '; 32];
    l[..s.len()].copy_from_slice(s.as_bytes());
    l
}

/// Initialise a token labelled `label` on the free slot with the user PIN set; its slot.
fn make_token(api: &dyn Api, label: &str) -> CK_SLOT_ID {
    let slot = api
        .slot_list(false)
        .expect("C_GetSlotList")
        .into_iter()
        .find(|s| {
            api.token_info(*s)
                .map(|t| t.flags & CKF_TOKEN_INITIALIZED == 0)
                .unwrap_or(false)
        })
        .expect("a free slot");
    api.init_token(slot, SO_PIN, &label32(label))
        .expect("C_InitToken");
    let s = api.open_session(slot, RW).expect("C_OpenSession");
    api.login(s, CKU_SO, SO_PIN).expect("C_Login SO");
    api.init_pin(s, USER_PIN).expect("C_InitPIN");
    api.logout(s).expect("C_Logout");
    api.close_session(s).expect("C_CloseSession");
    slot
}

/// The slot of the token labelled `label`.
fn slot_of(api: &dyn Api, label: &str) -> CK_SLOT_ID {
    api.slot_list(true)
        .expect("C_GetSlotList")
        .into_iter()
        .find(|s| {
            api.token_info(*s)
                .is_ok_and(|t| t.label.trim_end() == label)
        })
        .unwrap_or_else(|| panic!("no token {label:?}"))
}

fn data_object(label: &str) -> Vec<Attribute> {
    vec![
        Attribute::ulong(CKA_CLASS, CKO_DATA),
        Attribute::bool(CKA_TOKEN, true),
        Attribute::bool(CKA_PRIVATE, false),
        Attribute::bytes(CKA_LABEL, label.as_bytes().to_vec()),
        Attribute::bytes(CKA_VALUE, label.as_bytes().to_vec()),
    ]
}

/// Labels of the token's data objects.
fn data_labels(api: &dyn Api, s: SessionHandle) -> Vec<String> {
    api.find_objects_init(s, vec![Attribute::ulong(CKA_CLASS, CKO_DATA)])
        .expect("C_FindObjectsInit");
    let mut handles = Vec::new();
    loop {
        let got = api.find_objects(s, 256).expect("C_FindObjects");
        if got.is_empty() {
            break;
        }
        handles.extend(got);
    }
    api.find_objects_final(s).expect("C_FindObjectsFinal");
    handles
        .into_iter()
        .map(|h| {
            let r = api.get_attribute_value(s, h, &[CKA_LABEL]).expect("label");
            match r.as_slice() {
                [AttrResult::Value(AttrValue::Bytes(b))] => {
                    String::from_utf8(b.to_vec()).expect("utf-8 label")
                }
                other => panic!("label: {other:?}"),
            }
        })
        .collect()
}

fn sha256(api: &dyn Api, s: SessionHandle, data: &[u8]) -> Vec<u8> {
    api.digest_init(s, &Mechanism::new(CKM_SHA256))
        .expect("C_DigestInit");
    match api.digest(s, data, Some(64)).expect("C_Digest") {
        keyward_core::types::Output::Data(d) => d.to_vec(),
        other => panic!("digest: {other:?}"),
    }
}

/// SHA-256 of "abc" (FIPS 180-2 appendix B.1).
const SHA256_ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

fn proc_status(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/<pid>/status")
}

fn status_field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key} in status"))
}

// ---- socket and process hardening -----------------------------------------------------------

#[test]
fn the_socket_has_the_configured_mode_group_and_directory() {
    let place = Place::new();
    // As root the group is nogroup (65534); otherwise our own primary group, the only one a
    // user can give a file to for sure.
    let gid = if is_root() {
        65534
    } else {
        // SAFETY: getegid has no preconditions and cannot fail.
        unsafe { libc::getegid() }
    };
    place.configure(
        "",
        &format!("[daemon]\nsocket_mode = \"0640\"\nsocket_group = {gid}\n"),
    );
    let daemon = Daemon::start(&place);
    let sock = std::fs::symlink_metadata(place.socket()).expect("socket");
    assert_eq!(sock.mode() & 0o7777, 0o640, "socket mode");
    assert_eq!(sock.gid(), gid, "socket group");
    let dir = std::fs::metadata(place.socket().parent().expect("dir")).expect("dir");
    assert_eq!(dir.mode() & 0o7777, 0o750, "socket directory mode");
    assert_eq!(dir.gid(), gid, "socket directory group");

    // A second daemon does not take over a live socket.
    let second = Command::new(keywardd())
        .arg("--config")
        .arg(place.conf())
        .arg("--socket")
        .arg(place.socket())
        .stderr(Stdio::piped())
        .output()
        .expect("second keywardd");
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("another daemon is listening"), "{err}");

    // SIGTERM: exit 0 and the socket file is gone.
    let st = daemon.terminate(Duration::from_secs(15));
    assert!(st.success(), "exit status {st}:\n{}", place.log_text());
    assert!(!place.socket().exists(), "socket removed at exit");
    assert!(place.log_text().contains("stopped"), "{}", place.log_text());
}

#[test]
fn the_daemon_is_undumpable_confined_and_drops_privileges() {
    let place = Place::new();
    if is_root() {
        // The daemon switches to nobody, which must own its storage.
        std::fs::create_dir_all(place.path().join("tokens")).expect("tokens");
        for p in [place.path().to_path_buf(), place.path().join("tokens")] {
            std::os::unix::fs::chown(&p, Some(65534), Some(65534)).expect("chown");
        }
        place.configure("", "[daemon]\nuser = \"nobody\"\nsocket_mode = \"0666\"\n");
    } else {
        place.configure("", "");
    }
    let mut daemon = Daemon::start(&place);
    let pid = daemon.pid();
    let status = proc_status(pid);
    let euid: u32 = status_field(&status, "Uid")
        .split_whitespace()
        .nth(1)
        .and_then(|u| u.parse().ok())
        .expect("euid");
    if is_root() {
        assert_eq!(
            status_field(&status, "Uid")
                .split_whitespace()
                .collect::<Vec<_>>(),
            ["65534"; 4],
            "all uids dropped"
        );
        assert_eq!(
            status_field(&status, "Gid")
                .split_whitespace()
                .collect::<Vec<_>>(),
            ["65534"; 4],
            "all gids dropped"
        );
        assert_eq!(
            status_field(&status, "Groups"),
            "",
            "no supplementary groups"
        );
        assert_eq!(status_field(&status, "CapEff"), "0000000000000000");
        let locked: u64 = status_field(&status, "VmLck")
            .trim_end_matches("kB")
            .trim()
            .parse()
            .expect("VmLck");
        // Locking needs RLIMIT_MEMLOCK lifted before the switch, which some containers forbid
        // root too; then the daemon must say that it runs unlocked.
        let log = place.log_text();
        if log.contains("cannot lift RLIMIT_MEMLOCK") {
            assert_eq!(locked, 0);
            assert!(log.contains("not locking memory"), "{log}");
            println!("memory not locked: this environment forbids lifting RLIMIT_MEMLOCK");
        } else {
            assert!(locked > 0, "memory locked: VmLck {locked} kB");
        }
    }
    // PR_SET_DUMPABLE 0: the kernel gives the files in /proc/<pid>/ (not the directory) to
    // root, whatever the process's own uid.
    assert_ne!(euid, 0, "this check needs a non-root daemon");
    for f in ["mem", "environ", "status"] {
        let owner = std::fs::metadata(format!("/proc/{pid}/{f}"))
            .expect("/proc file")
            .uid();
        assert_eq!(
            owner, 0,
            "/proc/{pid}/{f} owned by root: the daemon is not dumpable"
        );
    }
    assert_eq!(status_field(&status, "Seccomp"), "2", "seccomp filter mode");
    assert_eq!(status_field(&status, "NoNewPrivs"), "1");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .expect("core limit line");
    assert_eq!(
        core.split_whitespace().skip(4).take(2).collect::<Vec<_>>(),
        ["0", "0"],
        "{core}"
    );

    if is_root() {
        // The same uid cannot read the daemon's environment (ptrace access mode check) ...
        let read = Command::new("setpriv")
            .args([
                "--reuid",
                "65534",
                "--regid",
                "65534",
                "--clear-groups",
                "cat",
            ])
            .arg(format!("/proc/{pid}/environ"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("setpriv cat");
        assert!(!read.success(), "nobody read the daemon's environ");
        // ... while it can read that of an ordinary process of its own.
        let mut sleeper = Command::new("setpriv")
            .args([
                "--reuid",
                "65534",
                "--regid",
                "65534",
                "--clear-groups",
                "sleep",
                "30",
            ])
            .spawn()
            .expect("sleeper");
        std::thread::sleep(Duration::from_millis(200));
        let control = Command::new("setpriv")
            .args([
                "--reuid",
                "65534",
                "--regid",
                "65534",
                "--clear-groups",
                "cat",
            ])
            .arg(format!("/proc/{}/environ", sleeper.id()))
            .stdout(Stdio::null())
            .status()
            .expect("setpriv cat control");
        let _ = sleeper.kill();
        let _ = sleeper.wait();
        assert!(
            control.success(),
            "control: a dumpable process's environ is readable"
        );
    } else {
        println!("skipping the cross-uid /proc checks: not root");
    }

    // It still serves, under the filter.
    let api = daemon.remote();
    let slot = make_token(&api, "hardened");
    let s = api.open_session(slot, RW).expect("session");
    assert_eq!(hex::encode(sha256(&api, s, b"abc")), SHA256_ABC);
    api.create_object(s, data_object("under-seccomp"))
        .expect("C_CreateObject");
    daemon.assert_alive(&place);
    let log = place.log_text();
    assert!(log.contains("seccomp allow-list applied"), "{log}");
    assert!(log.contains("PR_SET_DUMPABLE 0"), "{log}");
}

// ---- clients that fail ----------------------------------------------------------------------

#[test]
fn a_client_killed_mid_operation_leaves_the_daemon_serving() {
    if role().as_deref() == Some("doomed") {
        let api = Remote::connect(&child_socket()).expect("connect");
        let slot = slot_of(&api, "doomed");
        let s1 = api.open_session(slot, RW).expect("session 1");
        let s2 = api.open_session(slot, RW).expect("session 2");
        api.login(s1, CKU_USER, USER_PIN).expect("login");
        api.create_object(
            s1,
            vec![
                Attribute::ulong(CKA_CLASS, CKO_DATA),
                Attribute::bool(CKA_TOKEN, false),
                Attribute::bool(CKA_PRIVATE, true),
                Attribute::bytes(CKA_LABEL, b"session-object".to_vec()),
            ],
        )
        .expect("session object");
        api.digest_init(s2, &Mechanism::new(CKM_SHA256))
            .expect("C_DigestInit");
        api.digest_update(s2, b"half of a message")
            .expect("C_DigestUpdate");
        say("READY");
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let place = Place::new();
    place.configure("", "");
    let mut daemon = Daemon::start(&place);
    let api = daemon.remote();
    let slot = make_token(&api, "doomed");

    let mut doomed = child(
        "a_client_killed_mid_operation_leaves_the_daemon_serving",
        "doomed",
        &daemon.socket,
        &[],
    );
    let mut lines = BufReader::new(doomed.stdout.take().expect("stdout")).lines();
    wait_for_line(&mut lines, "READY");
    assert_eq!(api.token_info(slot).expect("info").session_count, 2);
    signal(doomed.id(), libc::SIGKILL);
    let _ = doomed.wait();

    // The daemon notices the dead connection and closes its sessions.
    let deadline = Instant::now() + Duration::from_secs(10);
    while api.token_info(slot).expect("info").session_count != 0 {
        assert!(
            Instant::now() < deadline,
            "the killed client's sessions stay open"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon.assert_alive(&place);

    // Another client: starts logged out, sees no residue, works.
    let other = daemon.remote();
    let s = other.open_session(slot, RW).expect("session");
    assert_eq!(
        other.session_info(s).expect("info").state,
        CKS_RW_PUBLIC_SESSION,
        "not logged in by the killed client"
    );
    other
        .login(s, CKU_USER, USER_PIN)
        .expect("login after the kill");
    assert!(
        data_labels(&other, s).is_empty(),
        "the session object is gone"
    );
    assert_eq!(hex::encode(sha256(&other, s, b"abc")), SHA256_ABC);
    // The existing connection is unaffected too.
    let s0 = api
        .open_session(slot, RW)
        .expect("session on the first connection");
    assert_eq!(hex::encode(sha256(&api, s0, b"abc")), SHA256_ABC);
}

/// A raw connection that has said hello.
fn hello(socket: &Path) -> UnixStream {
    let mut s = UnixStream::connect(socket).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let h = encode(&Hello {
        magic: MAGIC,
        version: PROTOCOL_VERSION,
    })
    .expect("encode hello");
    keyward_proto::write_frame(&mut s, &h).expect("send hello");
    let reply = keyward_proto::read_frame(&mut s, 4096).expect("hello reply");
    assert!(matches!(
        decode::<HelloReply>(&reply).expect("decode reply"),
        HelloReply::Welcome { .. }
    ));
    s
}

/// Send `bytes`, stop writing, and read until the daemon closes the connection (it must,
/// within the read timeout); the bytes it sent back.
fn send_and_drain(mut s: UnixStream, bytes: &[u8]) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    // The daemon may close before taking everything: a failed write is part of the test.
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut back = Vec::new();
    match s.read_to_end(&mut back) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the daemon did not close the connection: {e}"),
    }
    back
}

/// xorshift64*: reproducible noise without a dependency.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next().to_le_bytes()[3]).collect()
    }
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = u32::try_from(payload.len())
        .expect("len")
        .to_be_bytes()
        .to_vec();
    f.extend_from_slice(payload);
    f
}

#[test]
fn malformed_and_random_frames_never_stop_the_daemon() {
    let place = Place::new();
    place.configure("", "");
    let mut daemon = Daemon::start(&place);
    let api = daemon.remote();
    let slot = make_token(&api, "frames");
    let sock = daemon.socket.clone();

    // A client that connects and says nothing does not hold up the others.
    let silent = UnixStream::connect(&sock).expect("silent client");

    let hello_bytes = encode(&Hello {
        magic: MAGIC,
        version: PROTOCOL_VERSION,
    })
    .expect("hello");
    let wrong_version = encode(&Hello {
        magic: MAGIC,
        version: PROTOCOL_VERSION + 1,
    })
    .expect("hello");
    let wrong_magic = encode(&Hello {
        magic: *b"PKCS",
        version: PROTOCOL_VERSION,
    })
    .expect("hello");
    // Before the handshake.
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("half a length", vec![0, 0]),
        ("4 GiB length", vec![0xff; 4]),
        (
            "32 MiB + 1 length",
            ((32u32 << 20) + 1).to_be_bytes().to_vec(),
        ),
        ("truncated hello", frame(&hello_bytes)[..5].to_vec()),
        ("wrong magic", frame(&wrong_magic)),
        ("garbage hello", frame(b"\x00\x01\x02 not a hello at all")),
        ("text", b"GET / HTTP/1.1\r\nHost: keyward\r\n\r\n".to_vec()),
    ];
    cases.push(("hello with trailing bytes in the frame", {
        let mut p = hello_bytes.to_vec();
        p.extend_from_slice(b"extra");
        frame(&p)
    }));
    for (name, bytes) in &cases {
        let s = UnixStream::connect(&sock).expect("connect");
        send_and_drain(s, bytes);
        if let Some(st) = daemon.child.try_wait().expect("try_wait") {
            panic!("keywardd died ({st}) on {name}:\n{}", place.log_text());
        }
    }

    // The wrong version gets a typed refusal, then the connection closes.
    let s = UnixStream::connect(&sock).expect("connect");
    let back = send_and_drain(s, &frame(&wrong_version));
    let reply = keyward_proto::read_frame(&mut back.as_slice(), 4096).expect("refusal frame");
    assert!(
        matches!(decode::<HelloReply>(&reply), Ok(HelloReply::Refused { .. })),
        "wrong version refused"
    );

    // After a good hello: bad frames close the connection.
    for bytes in [
        vec![0xff, 0xff, 0xff, 0xff],
        ((32u32 << 20) + 1).to_be_bytes().to_vec(),
        frame(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"),
        frame(&[]),
        vec![0, 0, 1, 0, 1, 2, 3],
    ] {
        send_and_drain(hello(&sock), &bytes);
        daemon.assert_alive(&place);
    }

    // A few thousand random frames: random lengths and bytes, and random payloads behind a
    // valid request id and call number, 20 per connection.
    let mut noise = Noise(0x6b65_7977_6172_6464);
    let mut sent = 0;
    for round in 0..150 {
        let mut bytes = Vec::new();
        for _ in 0..20 {
            let len = usize::try_from(noise.next() % 96).expect("len");
            let mut payload = noise.bytes(len);
            if round % 2 == 0 && payload.len() > 2 {
                // A small request id and a plausible call index, so the decoder goes deep.
                payload[0] = u8::try_from(noise.next() % 100).expect("byte");
                payload[1] = u8::try_from(noise.next() % 90).expect("byte");
            }
            bytes.extend(frame(&payload));
            sent += 1;
        }
        if round % 10 == 0 {
            // Raw noise where a length should be.
            bytes = noise.bytes(200);
        }
        send_and_drain(hello(&sock), &bytes);
    }
    assert!(sent >= 3000);
    daemon.assert_alive(&place);
    drop(silent);

    // Still serving: the first connection and a new one.
    let s = api.open_session(slot, RW).expect("session");
    assert_eq!(hex::encode(sha256(&api, s, b"abc")), SHA256_ABC);
    let fresh = daemon.remote();
    let s = fresh.open_session(slot, RW).expect("session");
    assert_eq!(hex::encode(sha256(&fresh, s, b"abc")), SHA256_ABC);
    daemon.assert_alive(&place);
}

#[test]
fn max_clients_refuses_the_extra_client() {
    let place = Place::new();
    place.configure("", "[daemon]\nmax_clients = 2\n");
    let daemon = Daemon::start(&place);
    let a = daemon.remote();
    // Wait until the probe connection of `start` has been released.
    let deadline = Instant::now() + Duration::from_secs(5);
    let b = loop {
        match Remote::connect(&daemon.socket) {
            Ok(b) => break b,
            Err(_) => {
                assert!(Instant::now() < deadline, "second client refused");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    assert!(a.slot_list(false).is_ok() && b.slot_list(false).is_ok());
    assert!(
        Remote::connect(&daemon.socket).is_err(),
        "a third client is refused"
    );
    assert!(
        place.log_text().contains("max_clients"),
        "{}",
        place.log_text()
    );
    drop(b);
    let deadline = Instant::now() + Duration::from_secs(5);
    let c = loop {
        match Remote::connect(&daemon.socket) {
            Ok(c) => break c,
            Err(_) => {
                assert!(Instant::now() < deadline, "a place did not free up");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    assert!(c.slot_list(false).is_ok());
}

// ---- stop and restart -----------------------------------------------------------------------

#[test]
fn sigterm_under_load_loses_no_committed_object() {
    if role().as_deref() == Some("creator") {
        let api = Remote::connect(&child_socket()).expect("connect");
        let slot = slot_of(&api, "load");
        let s = api.open_session(slot, RW).expect("session");
        let me = std::process::id();
        for i in 0.. {
            let label = format!("obj-{me}-{i}");
            match api.create_object(s, data_object(&label)) {
                Ok(_) => say(&format!("OK {label}")),
                Err(e) => {
                    say(&format!("END {e}"));
                    return;
                }
            }
        }
        return;
    }
    let place = Place::new();
    place.configure("", "");
    let daemon = Daemon::start(&place);
    make_token(&daemon.remote(), "load");

    let test = "sigterm_under_load_loses_no_committed_object";
    let creators: Vec<Child> = (0..2)
        .map(|_| child(test, "creator", &daemon.socket, &[]))
        .collect();
    let readers: Vec<_> = creators
        .into_iter()
        .map(|mut c| {
            let out = c.stdout.take().expect("stdout");
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let h = std::thread::spawn(move || {
                let mut ok = Vec::new();
                let mut ended = None;
                for line in BufReader::new(out).lines() {
                    let line = line.expect("line");
                    if let Some(l) = line.strip_prefix("OK ") {
                        ok.push(l.to_string());
                        if ok.len() == 25 {
                            let _ = tx.send(());
                        }
                    } else if let Some(e) = line.strip_prefix("END ") {
                        ended = Some(e.to_string());
                    }
                }
                let _ = c.wait();
                (ok, ended)
            });
            (h, rx)
        })
        .collect();
    for (_, rx) in &readers {
        rx.recv_timeout(Duration::from_secs(60))
            .expect("a creator made 25 objects");
    }
    let st = daemon.terminate(Duration::from_secs(15));
    assert!(
        st.success(),
        "SIGTERM exit status {st}:\n{}",
        place.log_text()
    );

    let mut committed = Vec::new();
    for (h, _) in readers {
        let (ok, ended) = h.join().expect("reader");
        assert!(ended.is_some(), "the creator saw its daemon go");
        committed.extend(ok);
    }

    let daemon = Daemon::start(&place);
    let api = daemon.remote();
    let slot = slot_of(&api, "load");
    let s = api.open_session(slot, RW).expect("session");
    let present: std::collections::BTreeSet<String> = data_labels(&api, s).into_iter().collect();
    let missing: Vec<_> = committed.iter().filter(|l| !present.contains(*l)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged objects lost: {missing:?}",
        missing.len(),
        committed.len()
    );
    // At most the one call per creator in flight at the stop may have committed unanswered.
    assert!(present.len() <= committed.len() + 2);
}

// ---- access control -------------------------------------------------------------------------

#[test]
fn a_peer_outside_the_access_rules_is_refused() {
    if let Some(r) = role() {
        let socket = child_socket();
        match r.as_str() {
            "outsider" => match Remote::connect(&socket) {
                Ok(api) => say(&format!("CONNECTED {:?}", api.slot_list(false))),
                Err(e) => say(&format!("REFUSED {e}")),
            },
            "member" => {
                let api = Remote::connect(&socket).expect("a listed uid connects");
                let slot = slot_of(&api, "acl");
                let s = api.open_session(slot, RW).expect("session");
                api.login(s, CKU_USER, USER_PIN).expect("login");
                say("MEMBER OK");
            }
            other => panic!("unknown role {other}"),
        }
        return;
    }
    if !is_root() {
        println!("skipping: running a client as another uid needs root (setpriv)");
        return;
    }
    let place = Place::new();
    place.configure(
        "",
        // Root (this process) administers the token; 65533 uses it; 65534 is not named.
        "[daemon]\nsocket_mode = \"0666\"\n\n[[access]]\ntoken = \"acl\"\nusers = [0, 65533]\n\
         so_users = [0]\n",
    );
    // Everyone may reach the socket file (0666, in a directory they can enter): the refusal
    // below is the daemon's, by SO_PEERCRED.
    std::fs::set_permissions(place.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let daemon = Daemon::start(&place);
    std::fs::set_permissions(
        place.socket().parent().expect("dir"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    make_token(&daemon.remote(), "acl");
    let test = "a_peer_outside_the_access_rules_is_refused";

    let run_as = |uid: &str, role: &str| -> String {
        let wrapper = ["setpriv", "--reuid", uid, "--regid", uid, "--clear-groups"];
        let mut c = child(test, role, &daemon.socket, &wrapper);
        let mut out = String::new();
        c.stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut out)
            .expect("child output");
        let st = c.wait().expect("wait");
        assert!(st.success(), "{role} as {uid}: {st}\n{out}");
        out
    };
    let out = run_as("65534", "outsider");
    assert!(out.contains("REFUSED"), "uid 65534 was served: {out}");
    let log = place.log_text();
    assert!(
        log.contains("no [[access]] rule admits it") && log.contains("uid=65534"),
        "refusal logged with the uid: {log}"
    );
    let out = run_as("65533", "member");
    assert!(out.contains("MEMBER OK"), "{out}");
}

// ---- socket activation ----------------------------------------------------------------------

#[test]
fn a_socket_passed_by_systemd_is_served() {
    let Some(activate) = [
        "/usr/bin/systemd-socket-activate",
        "/bin/systemd-socket-activate",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.is_file()) else {
        println!("skipping: systemd-socket-activate is not installed");
        return;
    };
    let place = Place::new();
    place.configure("", "");
    let socket = place.path().join("activated.sock");
    let log = std::fs::File::create(place.log()).expect("log");
    // systemd-socket-activate binds the socket, sets LISTEN_FDS/LISTEN_PID and execs keywardd
    // on the first connection, as keywardd.socket does.
    let mut child = Command::new(activate)
        .arg("-l")
        .arg(&socket)
        .arg(keywardd())
        .arg("--config")
        .arg(place.conf())
        .arg("--log-level")
        .arg("debug")
        .env_remove("KEYWARD_SOCKET")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("systemd-socket-activate");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(
            Instant::now() < deadline,
            "no socket:\n{}",
            place.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let api = Remote::connect(&socket).expect("connect through the passed socket");
    let slot = make_token(&api, "activated");
    let s = api.open_session(slot, RW).expect("session");
    assert_eq!(hex::encode(sha256(&api, s, b"abc")), SHA256_ABC);
    let log = place.log_text();
    assert!(
        log.contains("serving the socket passed by systemd"),
        "{log}"
    );
    signal(child.id(), libc::SIGTERM);
    let st = child.wait().expect("wait");
    assert!(st.success(), "{st}:\n{}", place.log_text());
}

#[test]
fn a_restarted_daemon_serves_reconnecting_clients() {
    let place = Place::new();
    place.configure("", "");
    let d = Daemon::start(&place);
    let api = d.remote();
    let slot = make_token(&api, "restart");
    let s = api.open_session(slot, RW).expect("C_OpenSession");
    api.login(s, CKU_USER, USER_PIN).expect("C_Login");
    api.create_object(s, data_object("kept"))
        .expect("C_CreateObject");
    assert!(d.terminate(Duration::from_secs(15)).success());
    // The call that finds the daemon gone fails, and so do calls while it is away.
    let gone = api.session_info(s).expect_err("the daemon is gone");
    assert_eq!(gone.code(), keyward_core::Code::DeviceRemoved, "{gone}");
    let away = api.slot_list(true).expect_err("still gone");
    assert_eq!(away.code(), keyward_core::Code::DeviceRemoved, "{away}");

    let _d2 = Daemon::start(&place);
    // The same client connects again by itself: its old session is gone, not someone else's.
    let stale = api.session_info(s).expect_err("the old session is gone");
    assert_eq!(
        stale.code(),
        keyward_core::Code::SessionHandleInvalid,
        "{stale}"
    );
    let slot = slot_of(&api, "restart");
    let s = api.open_session(slot, RW).expect("a new session");
    assert_eq!(
        api.session_info(s).expect("C_GetSessionInfo").state,
        CKS_RW_PUBLIC_SESSION
    );
    api.login(s, CKU_USER, USER_PIN).expect("log in again");
    assert_eq!(data_labels(&api, s), vec!["kept".to_string()]);
}

/// Whether this process's readable memory holds `masked[i] ^ mask[i]` anywhere. The bytes
/// searched for are never assembled in memory (only their masked form is), so the search
/// does not find its own needle.
fn own_memory_contains(masked: &[u8], mask: &[u8]) -> bool {
    use std::io::{Seek, SeekFrom};
    let first = masked[0] ^ mask[0];
    let maps = std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps");
    let mut mem = std::fs::File::open("/proc/self/mem").expect("/proc/self/mem");
    for line in maps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(range), Some(perms)) = (fields.first(), fields.get(1)) else {
            continue;
        };
        let path = fields.get(5).copied().unwrap_or("");
        if !perms.starts_with('r') || path == "[vvar]" || path == "[vsyscall]" {
            continue;
        }
        let (a, b) = range.split_once('-').expect("range");
        let (a, b) = (
            u64::from_str_radix(a, 16).expect("start"),
            u64::from_str_radix(b, 16).expect("end"),
        );
        let Ok(len) = usize::try_from(b - a) else {
            continue;
        };
        if len > 1 << 30 {
            continue;
        }
        let mut buf = vec![0u8; len];
        if mem.seek(SeekFrom::Start(a)).is_err() || mem.read_exact(&mut buf).is_err() {
            continue;
        }
        let hit = buf.windows(masked.len()).any(|w| {
            w[0] == first
                && w.iter()
                    .zip(masked.iter().zip(mask))
                    .all(|(x, (m, k))| *x == m ^ k)
        });
        if hit {
            return true;
        }
    }
    false
}

/// The private value of a key generated in daemon mode never enters the client's address
/// space: it is read back by another process, then searched for in this one's memory.
#[test]
fn a_private_value_never_enters_the_client() {
    if role().as_deref() == Some("reader") {
        // Another client reads the value (the key is made readable for this purpose only).
        let api = Remote::connect(&child_socket()).expect("connect");
        let slot = slot_of(&api, "memscan");
        let s = api.open_session(slot, RW).expect("C_OpenSession");
        api.login(s, CKU_USER, USER_PIN).expect("C_Login");
        api.find_objects_init(s, vec![Attribute::bytes(CKA_LABEL, b"scanned".to_vec())])
            .expect("C_FindObjectsInit");
        let h = api.find_objects(s, 1).expect("C_FindObjects")[0];
        let r = api
            .get_attribute_value(s, h, &[CKA_VALUE])
            .expect("CKA_VALUE");
        let [AttrResult::Value(AttrValue::Bytes(v))] = r.as_slice() else {
            panic!("CKA_VALUE: {r:?}");
        };
        say(&format!("VALUE {}", hex::encode(v.as_slice())));
        return;
    }
    let place = Place::new();
    place.configure("", "");
    let d = Daemon::start(&place);
    let api = d.remote();
    let slot = make_token(&api, "memscan");
    let s = api.open_session(slot, RW).expect("C_OpenSession");
    api.login(s, CKU_USER, USER_PIN).expect("C_Login");
    let key = api
        .generate_key(
            s,
            &Mechanism::new(CKM_AES_KEY_GEN),
            vec![
                Attribute::ulong(CKA_VALUE_LEN, 32),
                Attribute::bool(CKA_TOKEN, true),
                Attribute::bool(CKA_SENSITIVE, false),
                Attribute::bool(CKA_EXTRACTABLE, true),
                Attribute::bool(CKA_ENCRYPT, true),
                Attribute::bytes(CKA_LABEL, b"scanned".to_vec()),
            ],
        )
        .expect("C_GenerateKey");
    // Use it, so the daemon has parsed and cached it.
    api.encrypt_init(s, &Mechanism::new(CKM_AES_ECB), key)
        .expect("C_EncryptInit");
    api.encrypt(s, &[0u8; 16], Some(16)).expect("C_Encrypt");
    let mut reader = child(
        "a_private_value_never_enters_the_client",
        "reader",
        &d.socket,
        &[],
    );
    let out = BufReader::new(reader.stdout.take().expect("stdout"));
    let mut lines = out.lines();
    let line = wait_for_line(&mut lines, "VALUE ");
    lines.for_each(drop);
    assert!(reader.wait().expect("reader").success());
    // Keep the value only masked: decode the hex digit pairs straight into value ^ mask.
    let hex_value = line.trim_start_matches("VALUE ").trim();
    assert_eq!(hex_value.len(), 64, "a 32-byte key");
    let mask: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
    let masked: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hex_value[2 * i..2 * i + 2], 16).expect("hex") ^ mask[i])
        .collect();
    // The scan works: a secret this process does hold is found ...
    let held: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(91) ^ 0x3c).collect();
    let held_masked: Vec<u8> = held.iter().zip(&mask).map(|(h, m)| h ^ m).collect();
    assert!(
        own_memory_contains(&held_masked, &mask),
        "the scan finds bytes this process holds"
    );
    drop(held);
    // ... and the daemon's key is nowhere in this client's memory.
    assert!(
        !own_memory_contains(&masked, &mask),
        "the key generated in daemon mode is in the client's memory"
    );
}

// ---- login without a PIN ----------------------------------------------------------------------

#[test]
fn a_listed_identity_logs_in_without_a_pin_on_a_machine_bound_token() {
    let place = Place::new();
    let key = place.path().join("machine.key");
    std::fs::write(&key, [0x3cu8; 32]).expect("write the machine secret");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    place.configure(
        "machine_secret = \"file:machine.key\"",
        &format!(
            "[[access]]\ntoken = \"idlogin\"\nusers = [{me}]\nso_users = [{me}]\n\
             login_without_pin = [{me}]\n"
        ),
    );
    let d = Daemon::start(&place);
    // The SO's C_InitPIN through the daemon gives the bound token its identity wrap.
    make_token(&d.remote(), "idlogin");

    let api = d.remote();
    let slot = slot_of(&api, "idlogin");
    let flags = api.token_info(slot).expect("C_GetTokenInfo").flags;
    assert_ne!(flags & CKF_PROTECTED_AUTHENTICATION_PATH, 0, "{flags:#x}");
    let s = api.open_session(slot, RW).expect("C_OpenSession");
    api.login(s, CKU_USER, b"").expect("C_Login without a PIN");
    assert_eq!(
        api.session_info(s).expect("C_GetSessionInfo").state,
        CKS_RW_USER_FUNCTIONS
    );
    let mut private = data_object("private-kept");
    private[2] = Attribute::bool(CKA_PRIVATE, true);
    api.create_object(s, private).expect("C_CreateObject");
    api.logout(s).expect("C_Logout");
    assert!(
        data_labels(&api, s).is_empty(),
        "private object seen logged out"
    );
    // The SO role always needs its PIN: an empty one is a wrong PIN, counted.
    let e = api.login(s, CKU_SO, b"").expect_err("SO without a PIN");
    assert_eq!(e.code(), keyward_core::Code::PinIncorrect, "{e}");
    api.login(s, CKU_SO, SO_PIN).expect("C_Login SO");
    api.logout(s).expect("C_Logout");

    // After a restart (the same machine secret) the identity still opens the token.
    drop(api);
    assert!(d.terminate(Duration::from_secs(15)).success());
    let d = Daemon::start(&place);
    let api = d.remote();
    let slot = slot_of(&api, "idlogin");
    let s = api
        .open_session(slot, CKF_SERIAL_SESSION)
        .expect("C_OpenSession");
    api.login(s, CKU_USER, b"").expect("C_Login without a PIN");
    assert_eq!(data_labels(&api, s), vec!["private-kept".to_string()]);
    assert!(
        place
            .log_text()
            .contains("logged in as the user without a PIN"),
        "{}",
        place.log_text()
    );

    // A real program through the module: pkcs11-tool sees the protected authentication path,
    // logs in with C_Login(NULL, 0) and lists the private object.
    let module = keywardd().with_file_name("libkeyward_pkcs11.so");
    let out = Command::new("pkcs11-tool")
        .arg("--module")
        .arg(&module)
        .args([
            "--token-label",
            "idlogin",
            "--login",
            "--list-objects",
            "--type",
            "data",
        ])
        .env("KEYWARD_CONF", place.conf())
        .env("KEYWARD_SOCKET", &d.socket)
        .stdin(Stdio::null())
        .output()
        .expect("run pkcs11-tool");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("private-kept"),
        "pkcs11-tool ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
