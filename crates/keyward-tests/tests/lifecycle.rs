//! Library lifecycle, restarts and processes (PKCS#11 3.0 §5.4; SECURITY SESS-07, AUTH-01,
//! STORE-01/02): C_Initialize/C_Finalize rules and arguments, fork, state that survives a
//! restart or is seen from a second process, tampered store records, and the KDF settings
//! that reach the store.
//!
//! Every test needs a process of its own. cargo-nextest gives each test one; under plain
//! `cargo test` each test re-runs itself in a child process of this binary.

mod common;

use std::io::Read;
use std::os::fd::FromRawFd;
use std::process::Command;
use std::ptr::null_mut;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::{Session, UserType};
use cryptoki_sys::*;

use common::{
    Conf, RETRY_LIMIT, ROLE_ENV, SO_PIN, USER_PIN, env_var, find, is_keyward, load, pin, role,
};

/// True when this process should run the test body; otherwise run it in a child and check
/// that it passed.
fn isolated(name: &str) -> bool {
    let nextest = std::env::var("NEXTEST_EXECUTION_MODE").is_ok_and(|m| m == "process-per-test");
    if nextest || role().is_some() {
        return true;
    }
    let out = Command::new(std::env::current_exe().expect("current_exe"))
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, "isolated")
        .env_remove(common::STORAGE_ENV)
        .output()
        .expect("spawn the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name} in its own process: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    false
}

fn init_raw(args: Option<&mut CK_C_INITIALIZE_ARGS>) -> CK_RV {
    let p = args.map_or(null_mut(), |a| (a as *mut CK_C_INITIALIZE_ARGS).cast());
    call!(C_Initialize, p)
}

fn initialised() -> Pkcs11 {
    let p = load();
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .expect("C_Initialize");
    p
}

fn user(p: &Pkcs11, slot: cryptoki::slot::Slot) -> Session {
    let s = p.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    s
}

#[test]
fn initialize_twice_and_finalize_twice() {
    if !isolated("initialize_twice_and_finalize_twice") {
        return;
    }
    assert_ckr!(init_raw(None), CKR_OK);
    assert_ckr!(init_raw(None), CKR_CRYPTOKI_ALREADY_INITIALIZED);
    assert_ckr!(call!(C_Finalize, null_mut()), CKR_OK);
    assert_ckr!(call!(C_Finalize, null_mut()), CKR_CRYPTOKI_NOT_INITIALIZED);
    // And again: finalisation leaves the library ready for a new C_Initialize.
    assert_ckr!(init_raw(None), CKR_OK);
    let mut info = CK_INFO::default();
    assert_ckr!(call!(C_GetInfo, &mut info), CKR_OK);
    assert_ckr!(call!(C_Finalize, null_mut()), CKR_OK);
}

#[test]
fn calls_before_initialize_are_refused() {
    if !isolated("calls_before_initialize_are_refused") {
        return;
    }
    // C_GetFunctionList works before C_Initialize (it is how callers find C_Initialize).
    let _ = common::raw();
    let mut info = CK_INFO::default();
    assert_ckr!(call!(C_GetInfo, &mut info), CKR_CRYPTOKI_NOT_INITIALIZED);
    let mut n: CK_ULONG = 0;
    assert_ckr!(
        call!(C_GetSlotList, CK_FALSE, null_mut(), &mut n),
        CKR_CRYPTOKI_NOT_INITIALIZED
    );
    let mut h: CK_SESSION_HANDLE = 0;
    assert_ckr!(
        call!(
            C_OpenSession,
            1,
            CKF_SERIAL_SESSION,
            null_mut(),
            None,
            &mut h
        ),
        CKR_CRYPTOKI_NOT_INITIALIZED
    );
    let mut buf = [0u8; 4];
    assert_ckr!(
        call!(C_GenerateRandom, 1, buf.as_mut_ptr(), 4),
        CKR_CRYPTOKI_NOT_INITIALIZED
    );
    assert_ckr!(call!(C_CloseAllSessions, 1), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_ckr!(call!(C_Finalize, null_mut()), CKR_CRYPTOKI_NOT_INITIALIZED);
}

unsafe extern "C" fn create_mutex(m: CK_VOID_PTR_PTR) -> CK_RV {
    // SAFETY: the module passes a writable pointer.
    unsafe { *m = 1usize as CK_VOID_PTR };
    CKR_OK
}
unsafe extern "C" fn mutex_op(_m: CK_VOID_PTR) -> CK_RV {
    CKR_OK
}

fn args(flags: CK_FLAGS, callbacks: bool) -> CK_C_INITIALIZE_ARGS {
    CK_C_INITIALIZE_ARGS {
        CreateMutex: callbacks.then_some(create_mutex as _),
        DestroyMutex: callbacks.then_some(mutex_op as _),
        LockMutex: callbacks.then_some(mutex_op as _),
        UnlockMutex: callbacks.then_some(mutex_op as _),
        flags,
        pReserved: null_mut(),
    }
}

#[test]
fn initialize_arguments() {
    if !isolated("initialize_arguments") {
        return;
    }
    let not_initialised = || {
        let mut info = CK_INFO::default();
        assert_ckr!(call!(C_GetInfo, &mut info), CKR_CRYPTOKI_NOT_INITIALIZED);
    };
    // pReserved must be NULL.
    let mut a = args(CKF_OS_LOCKING_OK, false);
    let mut reserved = 0u8;
    a.pReserved = (&raw mut reserved).cast();
    assert_ckr!(init_raw(Some(&mut a)), CKR_ARGUMENTS_BAD);
    not_initialised();
    // Mutex callbacks without CKF_OS_LOCKING_OK: the module cannot lock through them.
    let mut a = args(0, true);
    assert_ckr!(init_raw(Some(&mut a)), CKR_CANT_LOCK);
    not_initialised();
    // Some callbacks but not all.
    let mut a = args(CKF_OS_LOCKING_OK, true);
    a.LockMutex = None;
    assert_ckr!(init_raw(Some(&mut a)), CKR_ARGUMENTS_BAD);
    not_initialised();
    // Callbacks with CKF_OS_LOCKING_OK: the module may use OS locking.
    let mut a = args(CKF_OS_LOCKING_OK, true);
    assert_ckr!(init_raw(Some(&mut a)), CKR_OK);
    let mut reserved = 0u8;
    assert_ckr!(
        call!(C_Finalize, (&raw mut reserved).cast()),
        CKR_ARGUMENTS_BAD
    );
    assert_ckr!(call!(C_Finalize, null_mut()), CKR_OK);
    // CKF_OS_LOCKING_OK alone.
    let mut a = args(CKF_OS_LOCKING_OK, false);
    assert_ckr!(init_raw(Some(&mut a)), CKR_OK);
    assert_ckr!(call!(C_Finalize, null_mut()), CKR_OK);
    // No flags, no callbacks: single-threaded use, fine.
    let mut a = args(0, false);
    assert_ckr!(init_raw(Some(&mut a)), CKR_OK);
    assert_ckr!(call!(C_Finalize, null_mut()), CKR_OK);
    // The module creates no threads, so this is fine too.
    let mut a = args(
        CKF_LIBRARY_CANT_CREATE_OS_THREADS | CKF_OS_LOCKING_OK,
        false,
    );
    let rv = init_raw(Some(&mut a));
    assert!(rv == CKR_OK || rv == CKR_NEED_TO_CREATE_THREADS, "{rv:#x}");
    if rv == CKR_OK {
        assert_ckr!(call!(C_Finalize, null_mut()), CKR_OK);
    }
}

#[test]
fn finalize_ends_sessions_and_logins() {
    if !isolated("finalize_ends_sessions_and_logins") {
        return;
    }
    let p = initialised();
    let slot = common::fresh_token_in(&p);
    let label = p.get_token_info(slot).unwrap().label().to_string();
    let s = p.open_rw_session_no_drop(slot).unwrap();
    s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    let old = s.handle();
    p.finalize().unwrap();
    let p = initialised();
    let mut info = CK_SESSION_INFO::default();
    assert_ckr!(
        call!(C_GetSessionInfo, old, &mut info),
        CKR_SESSION_HANDLE_INVALID
    );
    let slot = common::slot_by_label(&p, &label).expect("the token after restart");
    let s = p.open_ro_session(slot).unwrap();
    assert_eq!(
        s.get_session_info().unwrap().session_state(),
        cryptoki::session::SessionState::RoPublic,
        "no login survives C_Finalize"
    );
    if is_keyward() {
        assert_eq!(p.get_token_info(slot).unwrap().session_count(), Some(1));
    }
}

const FORK: &str = "fork_child_must_initialize_again";

#[test]
fn fork_child_must_initialize_again() {
    if !is_keyward() {
        return; // other modules may keep their state across fork()
    }
    if !isolated(FORK) {
        return;
    }
    let p = initialised();
    let slot = common::fresh_token_in(&p);
    let s = user(&p, slot);
    let (_, key) = s
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::EcParams(vec![
                0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
            ])],
            &[
                Attribute::Sign(true),
                Attribute::Token(true),
                Attribute::Label(b"forked".to_vec()),
            ],
        )
        .unwrap();
    let slot_id = common::slot_id(slot);
    let parent_session = s.handle();

    let mut fds = [0i32; 2];
    // SAFETY: a two-element array for pipe(2).
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child only calls the module, writes to the pipe and _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code =
            std::panic::catch_unwind(|| fork_child(slot_id, parent_session, fds[1])).unwrap_or(100);
        // SAFETY: leaving the child without running the parent's destructors or harness.
        unsafe { libc::_exit(code) };
    }
    // SAFETY: closing the parent's copy of the write end.
    unsafe { libc::close(fds[1]) };
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "child crashed: status {status}");
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "child step {} failed",
        libc::WEXITSTATUS(status)
    );
    // SAFETY: we own the read end.
    let mut pipe = unsafe { std::fs::File::from_raw_fd(fds[0]) };
    let mut child_random = Vec::new();
    pipe.read_to_end(&mut child_random).unwrap();
    assert_eq!(child_random.len(), 32);

    // The parent keeps working with its session, login and key.
    let sig = s.sign(&Mechanism::EcdsaSha256, key, b"after fork").unwrap();
    assert_eq!(sig.len(), 64);
    let mine = s.generate_random_vec(32).unwrap();
    assert_ne!(mine, child_random, "parent and child random streams differ");
}

/// The forked child: each failed step exits with its own code.
fn fork_child(slot: CK_SLOT_ID, parent_session: CK_SESSION_HANDLE, out: i32) -> i32 {
    let mut n: CK_ULONG = 0;
    if call!(C_GetSlotList, CK_FALSE, null_mut(), &mut n) != CKR_CRYPTOKI_NOT_INITIALIZED {
        return 1;
    }
    let mut info = CK_SESSION_INFO::default();
    if call!(C_GetSessionInfo, parent_session, &mut info) != CKR_CRYPTOKI_NOT_INITIALIZED {
        return 2;
    }
    if call!(C_Initialize, null_mut()) != CKR_OK {
        return 3;
    }
    if call!(C_GetSessionInfo, parent_session, &mut info) != CKR_SESSION_HANDLE_INVALID {
        return 4;
    }
    let mut h: CK_SESSION_HANDLE = 0;
    if call!(
        C_OpenSession,
        slot,
        CKF_SERIAL_SESSION,
        null_mut(),
        None,
        &mut h
    ) != CKR_OK
    {
        return 5;
    }
    if call!(C_GetSessionInfo, h, &mut info) != CKR_OK || info.state != CKS_RO_PUBLIC_SESSION {
        return 6; // the parent's login is not inherited
    }
    let mut pn = USER_PIN.as_bytes().to_vec();
    if call!(C_Login, h, CKU_USER, pn.as_mut_ptr(), pn.len() as CK_ULONG) != CKR_OK {
        return 7;
    }
    let mut label = *b"forked";
    let mut t = [CK_ATTRIBUTE {
        type_: CKA_LABEL,
        pValue: label.as_mut_ptr().cast(),
        ulValueLen: 6,
    }];
    if call!(C_FindObjectsInit, h, t.as_mut_ptr(), 1) != CKR_OK {
        return 8;
    }
    let mut found = [CK_OBJECT_HANDLE::MIN; 4];
    let mut count: CK_ULONG = 0;
    call!(C_FindObjects, h, found.as_mut_ptr(), 4, &mut count);
    call!(C_FindObjectsFinal, h);
    // The private key carries the label.
    if count != 1 {
        return 9;
    }
    let mut random = [0u8; 32];
    if call!(C_GenerateRandom, h, random.as_mut_ptr(), 32) != CKR_OK {
        return 10;
    }
    // SAFETY: writing 32 bytes from a live buffer to our pipe.
    let written = unsafe { libc::write(out, random.as_ptr().cast(), 32) };
    if written != 32 {
        return 11;
    }
    if call!(C_Finalize, null_mut()) != CKR_OK {
        return 12;
    }
    0
}

const SLOTS: &str = "slot_ids_are_stable_across_restarts";

#[test]
fn slot_ids_are_stable_across_restarts() {
    if role().as_deref() == Some("peer") {
        let p = initialised();
        let want: Vec<(String, u64)> = serde_pairs(&env_var("KW_SLOTS"));
        for (label, id) in want {
            let slot = common::slot_by_label(&p, &label).expect("token listed in the peer");
            assert_eq!(slot.id(), id, "{label}");
        }
        return;
    }
    if !isolated(SLOTS) {
        return;
    }
    let p = initialised();
    let mut tokens = Vec::new();
    for _ in 0..3 {
        let (slot, label) = common::fresh_token_without_user_pin_in(&p);
        tokens.push((label, slot.id()));
    }
    p.finalize().unwrap();
    let p = initialised();
    for (label, id) in &tokens {
        let slot = common::slot_by_label(&p, label).expect("token listed after restart");
        assert_eq!(slot.id(), *id, "{label} keeps its slot");
    }
    // The free slot is still distinct.
    let free = common::free_slot(&p);
    assert!(tokens.iter().all(|(_, id)| *id != free.id()));
    let spec = tokens
        .iter()
        .map(|(l, id)| format!("{l}={id}"))
        .collect::<Vec<_>>()
        .join(",");
    common::child_ok(SLOTS, "peer", &[("KW_SLOTS", spec)]);
}

fn serde_pairs(s: &str) -> Vec<(String, u64)> {
    s.split(',')
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("label=id");
            (k.to_string(), v.parse().expect("slot id"))
        })
        .collect()
}

const PERSIST: &str = "objects_persist_across_restarts";

#[test]
fn objects_persist_across_restarts() {
    if role().as_deref() == Some("peer") {
        let p = initialised();
        let slot = common::slot_by_label(&p, &env_var("KW_LABEL")).unwrap();
        let s = user(&p, slot);
        check_persisted(&s, &hex::decode(env_var("KW_POINT")).unwrap());
        return;
    }
    if !isolated(PERSIST) {
        return;
    }
    let p = initialised();
    let (slot, label) = common::fresh_token_without_user_pin_in(&p);
    common::set_user_pin(&p, slot, USER_PIN);
    let point = {
        let s = user(&p, slot);
        s.create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Label(b"kept-data".to_vec()),
            Attribute::Value(b"persisted value".to_vec()),
        ])
        .unwrap();
        s.create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(false),
            Attribute::Label(b"session-data".to_vec()),
        ])
        .unwrap();
        let (public, _) = s
            .generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[
                    Attribute::EcParams(vec![
                        0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
                    ]),
                    Attribute::Token(true),
                    Attribute::Label(b"kept-key".to_vec()),
                    Attribute::Verify(true),
                ],
                &[
                    Attribute::Token(true),
                    Attribute::Label(b"kept-key".to_vec()),
                    Attribute::Sign(true),
                ],
            )
            .unwrap();
        common::attr_bytes(&s, public, AttributeType::EcPoint)
    };
    p.finalize().unwrap();
    let p = initialised();
    let s = user(&p, slot);
    check_persisted(&s, &point);
    drop(s);
    common::child_ok(
        PERSIST,
        "peer",
        &[("KW_LABEL", label), ("KW_POINT", hex::encode(&point))],
    );
}

fn check_persisted(s: &Session, point: &[u8]) {
    let d = find(s, &[Attribute::Label(b"kept-data".to_vec())]);
    assert_eq!(d.len(), 1, "the token data object persists");
    assert_eq!(
        common::attr_bytes(s, d[0], AttributeType::Value),
        b"persisted value"
    );
    assert!(find(s, &[Attribute::Label(b"session-data".to_vec())]).is_empty());
    let pubs = find(
        s,
        &[
            Attribute::Label(b"kept-key".to_vec()),
            Attribute::Class(ObjectClass::PUBLIC_KEY),
        ],
    );
    let privs = find(
        s,
        &[
            Attribute::Label(b"kept-key".to_vec()),
            Attribute::Class(ObjectClass::PRIVATE_KEY),
        ],
    );
    assert_eq!((pubs.len(), privs.len()), (1, 1));
    assert_eq!(
        common::attr_bytes(s, pubs[0], AttributeType::EcPoint),
        point
    );
    assert!(common::attr_bool(s, privs[0], AttributeType::Sensitive));
    let sig = s
        .sign(&Mechanism::EcdsaSha256, privs[0], b"persisted")
        .unwrap();
    s.verify(&Mechanism::EcdsaSha256, pubs[0], b"persisted", &sig)
        .unwrap();
}

const LOCKOUT: &str = "lockout_survives_restarts";

#[test]
fn lockout_survives_restarts() {
    if !is_keyward() {
        return;
    }
    if role().as_deref() == Some("peer") {
        let p = initialised();
        let slot = common::slot_by_label(&p, &env_var("KW_LABEL")).unwrap();
        assert!(p.get_token_info(slot).unwrap().user_pin_locked());
        let s = p.open_ro_session(slot).unwrap();
        assert_rv!(s.login(UserType::User, Some(&pin(USER_PIN))), PinLocked);
        return;
    }
    if !isolated(LOCKOUT) {
        return;
    }
    let p = initialised();
    let (slot, label) = common::fresh_token_without_user_pin_in(&p);
    common::set_user_pin(&p, slot, USER_PIN);
    {
        let s = p.open_ro_session(slot).unwrap();
        for _ in 0..RETRY_LIMIT - 1 {
            assert_rv!(s.login(UserType::User, Some(&pin("guess"))), PinIncorrect);
        }
    }
    p.finalize().unwrap();
    let p = initialised();
    assert!(
        p.get_token_info(slot).unwrap().user_pin_final_try(),
        "the count survived"
    );
    let s = p.open_ro_session(slot).unwrap();
    assert_rv!(s.login(UserType::User, Some(&pin("guess"))), PinLocked);
    assert_rv!(s.login(UserType::User, Some(&pin(USER_PIN))), PinLocked);
    drop(s);
    p.finalize().unwrap();
    let p = initialised();
    let s = p.open_ro_session(slot).unwrap();
    assert_rv!(s.login(UserType::User, Some(&pin(USER_PIN))), PinLocked);
    drop(s);
    common::child_ok(LOCKOUT, "peer", &[("KW_LABEL", label)]);
}

/// Run the sqlite3 command-line shell on a token database.
fn sqlite(db: &std::path::Path, sql: &str) -> String {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .expect("the sqlite3 command-line shell (Debian package sqlite3)");
    assert!(
        out.status.success(),
        "sqlite3 {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The database of the token with this serial (docs/storage-format.md: `token-<serial>.db`).
fn token_db(serial: &str) -> std::path::PathBuf {
    let p = common::token_dir().join(format!("token-{serial}.db"));
    assert!(p.exists(), "{} exists", p.display());
    p
}

/// Flip one bit in the middle of an object row's `record`.
fn flip_record(db: &std::path::Path, uid: &str) {
    let hexrec = sqlite(
        db,
        &format!("SELECT hex(record) FROM object WHERE uid = '{uid}';"),
    );
    let mut bytes = hex::decode(&hexrec).expect("hex record");
    assert!(!bytes.is_empty(), "row {uid} exists");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    sqlite(
        db,
        &format!(
            "UPDATE object SET record = X'{}' WHERE uid = '{uid}';",
            hex::encode(&bytes)
        ),
    );
}

#[test]
fn tampered_records_are_refused() {
    if !is_keyward() {
        return;
    }
    if !isolated("tampered_records_are_refused") {
        return;
    }
    let p = initialised();
    let slot = common::fresh_token_in(&p);
    let serial = p.get_token_info(slot).unwrap().serial_number().to_string();
    let label = p.get_token_info(slot).unwrap().label().to_string();
    let mut uids = std::collections::BTreeMap::new();
    {
        let s = user(&p, slot);
        for (name, private) in [
            ("priv-victim", true),
            ("priv-intact", true),
            ("pub-victim", false),
            ("pub-intact", false),
        ] {
            let h = s
                .create_object(&[
                    Attribute::Class(ObjectClass::DATA),
                    Attribute::Token(true),
                    Attribute::Private(private),
                    Attribute::Label(name.as_bytes().to_vec()),
                    Attribute::Value(vec![0x5a; 64]),
                ])
                .unwrap();
            let uid = common::attr_bytes(&s, h, AttributeType::UniqueId);
            uids.insert(name, String::from_utf8(uid).expect("uid is text"));
        }
    }
    p.finalize().unwrap();
    let db = token_db(&serial);
    let rows = sqlite(&db, "SELECT count(*) FROM object;");
    assert_eq!(rows, "4");
    flip_record(&db, &uids["priv-victim"]);
    flip_record(&db, &uids["pub-victim"]);

    let p = initialised();
    let s = user(&p, slot);
    let labels = |s: &Session| {
        let mut v: Vec<String> = find(s, &[Attribute::Class(ObjectClass::DATA)])
            .into_iter()
            .map(|h| String::from_utf8(common::attr_bytes(s, h, AttributeType::Label)).unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        labels(&s),
        vec!["priv-intact", "pub-intact"],
        "tampered records are refused"
    );
    drop(s);
    p.finalize().unwrap();

    // Editing the token's authenticated metadata makes the token unusable.
    sqlite(&db, "UPDATE token SET label = 'evil';");
    let p = initialised();
    assert!(common::slot_by_label(&p, &label).is_none());
    assert!(
        common::slot_by_label(&p, "evil").is_none(),
        "a re-labelled token is refused"
    );

    p.finalize().unwrap();

    // The original label authenticates again; a trigger smuggled into the schema (one that
    // resets the failure counter) makes the store unusable.
    sqlite(&db, &format!("UPDATE token SET label = '{label}';"));
    let p = initialised();
    assert!(
        common::slot_by_label(&p, &label).is_some(),
        "the original metadata is accepted"
    );
    p.finalize().unwrap();
    sqlite(
        &db,
        "CREATE TRIGGER keep_trying AFTER UPDATE ON pin BEGIN UPDATE pin SET failures = 0; END;",
    );
    let p = initialised();
    assert!(
        common::slot_by_label(&p, &label).is_none(),
        "a store with a trigger is refused"
    );
    let _ = SO_PIN;
}

#[test]
fn kdf_defaults_are_applied() {
    if !is_keyward() {
        return;
    }
    if !isolated("kdf_defaults_are_applied") {
        return;
    }
    common::configure(Conf {
        kdf: None,
        ..Conf::default()
    });
    let p = initialised();
    let slot = common::fresh_token_in(&p);
    let serial = p.get_token_info(slot).unwrap().serial_number().to_string();
    let db = token_db(&serial);
    // docs/storage-format.md: 0x01 · m_kib:u32 · t:u32 · p:u32 · salt_len:u8 · salt (LE).
    let want = "01004C00000200000001000000";
    for who in [0, 1] {
        let kdf = sqlite(&db, &format!("SELECT hex(kdf) FROM pin WHERE who = {who};"));
        assert!(
            kdf.starts_with(want),
            "PIN row {who}: Argon2id m=19456 KiB, t=2, p=1 expected, got {kdf}"
        );
        // A 32-byte salt.
        assert_eq!(&kdf[26..28], "20", "salt length");
        assert_eq!(kdf.len(), 28 + 64);
    }
    let s = user(&p, slot);
    s.logout().unwrap();
}

#[test]
fn pbkdf2_can_be_configured() {
    if !is_keyward() {
        return;
    }
    if !isolated("pbkdf2_can_be_configured") {
        return;
    }
    common::configure(Conf {
        kdf: Some("algorithm = \"pbkdf2-sha256\"\npbkdf2_iterations = 1000\n".into()),
        ..Conf::default()
    });
    let p = initialised();
    let slot = common::fresh_token_in(&p);
    let serial = p.get_token_info(slot).unwrap().serial_number().to_string();
    let db = token_db(&serial);
    let kdf = sqlite(&db, "SELECT hex(kdf) FROM pin WHERE who = 1;");
    assert!(
        kdf.starts_with("02E8030000"),
        "PBKDF2, 1000 iterations: {kdf}"
    );
    let s = user(&p, slot);
    assert_rv!(
        p.open_rw_session(slot)
            .unwrap()
            .login(UserType::User, Some(&pin(USER_PIN))),
        UserAlreadyLoggedIn
    );
    s.logout().unwrap();
}

#[test]
fn bad_configuration_fails_initialize_cleanly() {
    if !is_keyward() {
        return;
    }
    if !isolated("bad_configuration_fails_initialize_cleanly") {
        return;
    }
    let conf = &common::env().conf_path;
    let good = std::fs::read_to_string(conf).expect("read keyward.toml");
    // Malformed TOML, an unknown key, a bad value, and a missing file: each is a clear
    // CKR_GENERAL_ERROR from C_Initialize, the library stays uninitialised, and the process
    // goes on.
    for text in [
        "storage_dir = [",
        "storage_dri = \"/tmp\"\n",
        "log_level = \"loud\"\n",
    ] {
        std::fs::write(conf, text).unwrap();
        assert_ckr!(init_raw(None), CKR_GENERAL_ERROR);
        let mut info = CK_INFO::default();
        assert_ckr!(call!(C_GetInfo, &mut info), CKR_CRYPTOKI_NOT_INITIALIZED);
    }
    std::fs::remove_file(conf).unwrap();
    assert_ckr!(init_raw(None), CKR_GENERAL_ERROR);
    // Once the file is right again, the same process initialises normally.
    std::fs::write(conf, good).unwrap();
    assert_ckr!(init_raw(None), CKR_OK);
    assert_ckr!(call!(C_Finalize, null_mut()), CKR_OK);
}
