//! Test harness: finds and loads the PKCS#11 module, gives each process its own storage
//! directory and configuration, creates fresh tokens, and reaches the raw C entry points.
//!
//! The module comes from `TEST_PKCS11_MODULE`, else `libkeyward_pkcs11.so` in the target
//! directory of the running test executable. The same suite runs against SoftHSMv2
//! (`TEST_PKCS11_MODULE=/usr/lib/softhsm/libsofthsm2.so`); assertions about Keyward's own
//! choices are guarded by [`is_keyward`].

#![allow(dead_code)]

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use cryptoki_sys::*;

/// The SO PIN of every token the harness creates.
pub const SO_PIN: &str = "so-pin-7f3a-canary";
/// The user PIN the harness sets with C_InitPIN.
pub const USER_PIN: &str = "user-pin-7f3a-canary";
/// The retry limit written to the configuration.
pub const RETRY_LIMIT: usize = 10;

/// Environment variable: run this process on an existing storage directory (second-process
/// tests hand theirs to the child).
pub const STORAGE_ENV: &str = "KEYWARD_TEST_STORAGE";
/// Environment variable: the role a re-executed test process plays (see [`child`]).
pub const ROLE_ENV: &str = "KEYWARD_TEST_ROLE";

/// Assert that a cryptoki result failed with exactly this `RvError` variant.
#[macro_export]
macro_rules! assert_rv {
    ($result:expr, $rv:ident) => {{
        match $result {
            Err(cryptoki::error::Error::Pkcs11(rv, _)) if rv == cryptoki::error::RvError::$rv => {}
            Err(e) => panic!(
                "{}: expected CKR {}, got error {e:?}",
                stringify!($result),
                stringify!($rv)
            ),
            Ok(_) => panic!(
                "{}: expected CKR {}, got CKR_OK",
                stringify!($result),
                stringify!($rv)
            ),
        }
    }};
}

/// Assert that a raw CK_RV equals a CKR_ constant, naming both on failure.
#[macro_export]
macro_rules! assert_ckr {
    ($rv:expr, $want:ident) => {{
        let got: cryptoki_sys::CK_RV = $rv;
        assert_eq!(
            got,
            cryptoki_sys::$want,
            "{}: expected {} ({:#x}), got {:#x}",
            stringify!($rv),
            stringify!($want),
            cryptoki_sys::$want,
            got
        );
    }};
}

/// Call a function of the raw 2.40 function list: `call!(C_GetInfo, &mut info)`.
#[macro_export]
macro_rules! call {
    ($f:ident $(, $arg:expr)* $(,)?) => {{
        let f = $crate::common::raw()
            .$f
            .unwrap_or_else(|| panic!("{} is NULL in the function list", stringify!($f)));
        // SAFETY: the arguments follow the PKCS#11 contract of the function; each test
        // passes buffers that live across the call. The arguments are plain values (handles,
        // lengths, pointers), so evaluating them inside the block hides no unsafe code.
        #[allow(clippy::macro_metavars_in_unsafe)]
        unsafe { f($($arg),*) }
    }};
}

/// Call a function of the raw 3.0 function list (Keyward only).
#[macro_export]
macro_rules! call30 {
    ($f:ident $(, $arg:expr)* $(,)?) => {{
        let f = $crate::common::raw30()
            .expect("the module has no 3.0 interface")
            .$f
            .unwrap_or_else(|| panic!("{} is NULL in the 3.0 function list", stringify!($f)));
        // SAFETY: as for `call!`.
        #[allow(clippy::macro_metavars_in_unsafe)]
        unsafe { f($($arg),*) }
    }};
}

/// The CKR code of a cryptoki result, `None` for success.
pub fn rv_of<T>(r: &cryptoki::error::Result<T>) -> Option<RvError> {
    match r {
        Ok(_) => None,
        Err(Error::Pkcs11(rv, _)) => Some(*rv),
        Err(e) => panic!("not a PKCS#11 error: {e:?}"),
    }
}

/// The module under test: `TEST_PKCS11_MODULE`, else `target/<profile>/libkeyward_pkcs11.so`
/// next to this test executable (`target/<profile>/deps/<test>`). Missing = loud failure.
pub fn module_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(p) = std::env::var_os("TEST_PKCS11_MODULE") {
            let p = PathBuf::from(p);
            assert!(
                p.exists(),
                "TEST_PKCS11_MODULE={} does not exist",
                p.display()
            );
            return p;
        }
        let exe = std::env::current_exe().expect("current_exe");
        let mut candidates = Vec::new();
        for dir in exe.ancestors().skip(1).take(3) {
            candidates.push(dir.join("libkeyward_pkcs11.so"));
        }
        candidates
            .iter()
            .find(|p| p.exists())
            .cloned()
            .unwrap_or_else(|| {
                panic!(
                    "\n\n*** libkeyward_pkcs11.so not found (looked at {candidates:?}).\n\
                     *** Build it first: cargo build --workspace --all-targets\n\
                     *** (cargo does not build a cdylib for another crate's tests, \
                     rust-lang/cargo#8311), or set TEST_PKCS11_MODULE.\n"
                )
            })
    })
    .clone()
}

/// True when the module under test is Keyward (Keyward-only assertions check this).
pub fn is_keyward() -> bool {
    module_path()
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.contains("keyward"))
}

/// The configuration a process writes before loading the module.
#[derive(Clone, Debug)]
pub struct Conf {
    pub retry_limit: usize,
    /// `None` leaves the `[kdf]` table out, so the built-in defaults apply.
    pub kdf: Option<String>,
}

impl Default for Conf {
    fn default() -> Self {
        Conf {
            retry_limit: RETRY_LIMIT,
            // Small Argon2id parameters keep the many PIN operations of the suite fast.
            kdf: Some(
                "algorithm = \"argon2id\"\nmemory_kib = 1024\niterations = 1\nparallelism = 1\n"
                    .into(),
            ),
        }
    }
}

static CONF: OnceLock<Conf> = OnceLock::new();

/// Choose this process's configuration; call before anything loads the module.
pub fn configure(conf: Conf) {
    CONF.set(conf)
        .expect("configure() must run before the module is loaded");
}

/// The per-process environment: storage directory and configuration files.
pub struct Env {
    pub dir: PathBuf,
    pub conf_path: PathBuf,
}

/// Create this process's storage directory and configuration, and point the module at them.
pub fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let dir = match std::env::var_os(STORAGE_ENV) {
            Some(d) => PathBuf::from(d),
            None => {
                let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("keyward-suite");
                std::fs::create_dir_all(&root).expect("create the suite's tmp root");
                remove_stale(&root);
                let dir = root.join(format!("{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).expect("create the storage directory");
                dir
            }
        };
        let conf = CONF.get_or_init(Conf::default).clone();
        let tokens = dir.join("tokens");
        let conf_path = dir.join("keyward.toml");
        let mut text = format!(
            "storage_dir = \"{}\"\nlog_level = \"warn\"\npin_retry_limit = {}\nfips_only = false\n",
            tokens.display(),
            conf.retry_limit
        );
        if let Some(kdf) = &conf.kdf {
            text.push_str("[kdf]\n");
            text.push_str(kdf);
        }
        if std::env::var_os(STORAGE_ENV).is_none() || !conf_path.exists() {
            std::fs::write(&conf_path, text).expect("write keyward.toml");
        }
        if daemon_backend() && std::env::var_os("KEYWARD_SOCKET").is_none() {
            start_daemon(&dir, &conf_path);
        }
        // SoftHSMv2 reads its own configuration; the same directory serves both.
        let softhsm_dir = dir.join("softhsm");
        std::fs::create_dir_all(&softhsm_dir).expect("create the SoftHSM token directory");
        let softhsm_conf = dir.join("softhsm2.conf");
        std::fs::write(
            &softhsm_conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                softhsm_dir.display()
            ),
        )
        .expect("write softhsm2.conf");
        // SAFETY: runs once, inside this OnceLock, before the module is loaded; the suite
        // reads these variables only through this function.
        unsafe {
            std::env::set_var("KEYWARD_CONF", &conf_path);
            std::env::set_var("SOFTHSM2_CONF", &softhsm_conf);
        }
        Env { dir, conf_path }
    })
}

/// Whether this test binary runs the suite against `keywardd` (the `daemon_suite` binary):
/// the same tests, with the module in daemon mode.
pub fn daemon_backend() -> bool {
    std::env::current_exe()
        .ok()
        .and_then(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy().starts_with("daemon_suite"))
        })
        .unwrap_or(false)
}

/// A built binary of the workspace next to this test executable (`target/<profile>/<name>`).
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .skip(1)
        .take(3)
        .map(|d| d.join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "{name} not found next to {}: cargo build --all-targets",
                exe.display()
            )
        })
}

/// Start `keywardd` on this process's configuration and point the module (and any child
/// process of this test, which inherits the environment) at its socket. The daemon runs
/// until this process ends: a thread that never exits starts it with PR_SET_PDEATHSIG.
fn start_daemon(dir: &Path, conf: &Path) {
    use std::os::unix::process::CommandExt;
    let socket = dir.join("keyward.sock");
    let log = std::fs::File::create(dir.join("keywardd.log")).expect("daemon log file");
    let mut cmd = Command::new(workspace_binary("keywardd"));
    cmd.arg("--config")
        .arg(conf)
        .arg("--socket")
        .arg(&socket)
        .env("KEYWARD_CONF", conf)
        .stdout(std::process::Stdio::null())
        .stderr(log);
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let child = cmd.spawn();
        let started = child.is_ok();
        tx.send(child.map(|c| c.id()))
            .expect("report the daemon's start");
        if started {
            // The daemon dies with this thread (PR_SET_PDEATHSIG), so it must outlive the tests.
            loop {
                std::thread::park();
            }
        }
    });
    let pid = rx
        .recv()
        .expect("daemon start")
        .unwrap_or_else(|e| panic!("cannot start keywardd: {e}"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "keywardd (pid {pid}) did not listen on {} within 20 s; see {}",
            socket.display(),
            dir.join("keywardd.log").display()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // SAFETY: set once, inside the OnceLock that builds the environment, before the module
    // is loaded; the suite reads it only through the module.
    unsafe { std::env::set_var("KEYWARD_SOCKET", &socket) };
}

/// The directory holding the token databases.
pub fn token_dir() -> PathBuf {
    env().dir.join("tokens")
}

/// Remove storage directories left by test processes that no longer run.
fn remove_stale(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Load the module without initialising it (lifecycle tests drive C_Initialize themselves).
pub fn load() -> Pkcs11 {
    env();
    Pkcs11::new(module_path())
        .unwrap_or_else(|e| panic!("cannot load {}: {e}", module_path().display()))
}

/// The module of this process, initialised once with CKF_OS_LOCKING_OK.
pub fn pkcs11() -> &'static Pkcs11 {
    static CTX: OnceLock<Pkcs11> = OnceLock::new();
    CTX.get_or_init(|| {
        let p = load();
        p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .expect("C_Initialize");
        p
    })
}

struct Raw {
    _lib: cryptoki_sys::Pkcs11,
    list: CK_FUNCTION_LIST,
    list30: Option<CK_FUNCTION_LIST_3_0>,
}

fn raw_lists() -> &'static Raw {
    static RAW: OnceLock<Raw> = OnceLock::new();
    RAW.get_or_init(|| {
        env();
        // SAFETY: loading a PKCS#11 module runs no code beyond its initialisers; dlopen of
        // the same path returns the instance cryptoki uses, so both share one state.
        let lib = unsafe { cryptoki_sys::Pkcs11::new(module_path()) }.expect("dlopen");
        let mut p: *mut CK_FUNCTION_LIST = std::ptr::null_mut();
        // SAFETY: writes one pointer to `p`.
        let rv = unsafe { lib.C_GetFunctionList(&mut p) };
        assert_eq!(rv, CKR_OK, "C_GetFunctionList");
        assert!(!p.is_null(), "C_GetFunctionList returned NULL");
        // SAFETY: the module returned a valid, static function list.
        let list = unsafe { *p };
        let mut list30 = None;
        if lib.C_GetInterface.is_ok() {
            let mut iface: *mut CK_INTERFACE = std::ptr::null_mut();
            let mut name = *b"PKCS 11\0";
            let mut version = CK_VERSION { major: 3, minor: 0 };
            // SAFETY: a NUL-terminated name, a readable version and a writable pointer.
            let rv = unsafe { lib.C_GetInterface(name.as_mut_ptr(), &mut version, &mut iface, 0) };
            if rv == CKR_OK && !iface.is_null() {
                // SAFETY: the module's interface points to a 3.0 function list.
                list30 = Some(unsafe { *((*iface).pFunctionList as *const CK_FUNCTION_LIST_3_0) });
            }
        }
        Raw {
            _lib: lib,
            list,
            list30,
        }
    })
}

/// The module's 2.40 function list, for calls cryptoki cannot express (NULL pointers,
/// short buffers).
pub fn raw() -> &'static CK_FUNCTION_LIST {
    &raw_lists().list
}

/// The module's 3.0 function list, if it has one.
pub fn raw30() -> Option<&'static CK_FUNCTION_LIST_3_0> {
    raw_lists().list30.as_ref()
}

/// Look up an exported symbol of the module by name (for `dlsym` users).
pub fn has_symbol(name: &str) -> bool {
    let path = CString::new(module_path().to_str().expect("utf-8 path")).expect("no NUL");
    let sym = CString::new(name).expect("no NUL");
    // SAFETY: dlopen of an already-loaded library bumps its refcount; dlsym only reads.
    unsafe {
        let h = libc::dlopen(path.as_ptr(), libc::RTLD_NOW);
        assert!(!h.is_null(), "dlopen failed");
        let found = !libc::dlsym(h, sym.as_ptr()).is_null();
        libc::dlclose(h);
        found
    }
}

pub fn pin(s: &str) -> AuthPin {
    AuthPin::from(s)
}

static SEQ: AtomicUsize = AtomicUsize::new(0);
/// Token creation takes "the" free slot, so threads of one process take turns.
static CREATING: Mutex<()> = Mutex::new(());

/// A label no other token of this run has.
pub fn unique_label(prefix: &str) -> String {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    let mut l = format!("{prefix}-{}-{n}", std::process::id());
    l.truncate(32);
    l
}

/// The slot that holds no initialised token (where C_InitToken creates one).
pub fn free_slot(p: &Pkcs11) -> Slot {
    p.get_all_slots()
        .expect("C_GetSlotList")
        .into_iter()
        .find(|s| {
            p.get_token_info(*s)
                .map(|t| !t.token_initialized())
                .unwrap_or(false)
        })
        .expect("no slot with an uninitialised token")
}

/// The slot whose token carries `label`.
pub fn slot_by_label(p: &Pkcs11, label: &str) -> Option<Slot> {
    p.get_slots_with_initialized_token()
        .expect("C_GetSlotList")
        .into_iter()
        .find(|s| {
            p.get_token_info(*s)
                .map(|t| t.label() == label)
                .unwrap_or(false)
        })
}

/// Initialise a new token in the free slot with a unique label; returns its slot and label.
/// The user PIN is not set.
pub fn fresh_token_without_user_pin_in(p: &Pkcs11) -> (Slot, String) {
    let _g = CREATING.lock().unwrap_or_else(|e| e.into_inner());
    let label = unique_label("kw");
    let free = free_slot(p);
    p.init_token(free, &pin(SO_PIN), &label)
        .expect("C_InitToken");
    // SoftHSMv2 moves a new token to a slot derived from its serial: look it up by label.
    let slot = slot_by_label(p, &label).expect("the new token is listed");
    (slot, label)
}

/// Initialise a new token and set its user PIN; returns its slot.
pub fn fresh_token_in(p: &Pkcs11) -> Slot {
    let (slot, _) = fresh_token_without_user_pin_in(p);
    set_user_pin(p, slot, USER_PIN);
    slot
}

/// Set the user PIN through an SO session.
pub fn set_user_pin(p: &Pkcs11, slot: Slot, user_pin: &str) {
    let s = p.open_rw_session(slot).expect("C_OpenSession");
    s.login(UserType::So, Some(&pin(SO_PIN)))
        .expect("SO C_Login");
    s.init_pin(&pin(user_pin)).expect("C_InitPIN");
    s.logout().expect("C_Logout");
}

/// A fresh token (with user PIN) in this process's module.
pub fn fresh_token() -> Slot {
    fresh_token_in(pkcs11())
}

/// A fresh token without user PIN, and its label.
pub fn fresh_token_without_user_pin() -> (Slot, String) {
    fresh_token_without_user_pin_in(pkcs11())
}

/// An R/W session logged in as the user.
pub fn user_session(slot: Slot) -> Session {
    let s = pkcs11().open_rw_session(slot).expect("C_OpenSession");
    s.login(UserType::User, Some(&pin(USER_PIN)))
        .expect("user C_Login");
    s
}

/// An R/W session logged in as the SO.
pub fn so_session(slot: Slot) -> Session {
    let s = pkcs11().open_rw_session(slot).expect("C_OpenSession");
    s.login(UserType::So, Some(&pin(SO_PIN)))
        .expect("SO C_Login");
    s
}

/// The session handle cryptoki keeps inside a `Session`.
pub fn sh(s: &Session) -> CK_SESSION_HANDLE {
    s.handle()
}

/// Read one attribute through the raw C_GetAttributeValue: `(rv, ulValueLen, value)`.
/// The value is fetched with an exactly sized buffer when the length query succeeds.
pub fn raw_attr(
    s: &Session,
    obj: ObjectHandle,
    ty: CK_ATTRIBUTE_TYPE,
) -> (CK_RV, CK_ULONG, Option<Vec<u8>>) {
    let mut t = CK_ATTRIBUTE {
        type_: ty,
        pValue: std::ptr::null_mut(),
        ulValueLen: 0,
    };
    let rv = call!(C_GetAttributeValue, s.handle(), obj.handle(), &mut t, 1);
    if rv != CKR_OK {
        return (rv, t.ulValueLen, None);
    }
    let mut buf = vec![0u8; usize::try_from(t.ulValueLen).expect("length fits")];
    t.pValue = buf.as_mut_ptr().cast();
    let rv = call!(C_GetAttributeValue, s.handle(), obj.handle(), &mut t, 1);
    (rv, t.ulValueLen, Some(buf))
}

/// One attribute's bytes through cryptoki, panicking if it is unavailable.
pub fn attr_bytes(s: &Session, obj: ObjectHandle, ty: AttributeType) -> Vec<u8> {
    let (rv, _, v) = raw_attr(s, obj, ty.into());
    assert_eq!(rv, CKR_OK, "reading {ty:?}");
    v.expect("value")
}

/// A CK_BBOOL attribute.
pub fn attr_bool(s: &Session, obj: ObjectHandle, ty: AttributeType) -> bool {
    let v = attr_bytes(s, obj, ty);
    assert_eq!(v.len(), 1, "{ty:?} is a CK_BBOOL");
    v[0] != 0
}

/// A CK_ULONG attribute.
pub fn attr_ulong(s: &Session, obj: ObjectHandle, ty: AttributeType) -> CK_ULONG {
    let v = attr_bytes(s, obj, ty);
    let arr: [u8; size_of::<CK_ULONG>()] = v.as_slice().try_into().expect("a CK_ULONG attribute");
    CK_ULONG::from_ne_bytes(arr)
}

/// Handles found by a template.
pub fn find(s: &Session, template: &[Attribute]) -> Vec<ObjectHandle> {
    s.find_objects(template).expect("C_FindObjects")
}

/// Re-run this test in a new process of the same test binary with `role` and extra
/// environment, sharing this process's storage directory; returns the child's output.
/// The child sees its role through [`role`].
pub fn child(test: &str, role: &str, envs: &[(&str, String)]) -> Output {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, role)
        .env(STORAGE_ENV, &env().dir);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("spawn the test binary")
}

/// Like [`child`], and assert that the child's test passed.
pub fn child_ok(test: &str, role: &str, envs: &[(&str, String)]) -> Output {
    let out = child(test, role, envs);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child {test} ({role}) failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// This process's role when started by [`child`].
pub fn role() -> Option<String> {
    std::env::var(ROLE_ENV).ok()
}

/// An environment value passed to a child, or a panic naming it.
pub fn env_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

/// A cryptoki slot as the C type (CK_SLOT_ID is 32 bits wide on 32-bit targets).
pub fn slot_id(slot: Slot) -> CK_SLOT_ID {
    CK_SLOT_ID::try_from(slot.id()).expect("slot id fits CK_SLOT_ID")
}
