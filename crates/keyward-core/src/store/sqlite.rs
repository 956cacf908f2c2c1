//! SQLite plumbing for the token store: creating the file with safe modes, connection
//! settings (WAL, synchronous=FULL, secure_delete, busy timeout), the schema, and the checks
//! made on every open.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::{Code, Result};

/// `PRAGMA application_id` of a Keyward token store ("KWS1").
pub(crate) const APPLICATION_ID: i32 = 0x4B57_5331;
/// `PRAGMA user_version` of a new store: the schema version.
pub(crate) const SCHEMA_VERSION: i32 = 1;
/// `PRAGMA user_version` of a store whose `pin` table also accepts the identity wrap
/// (`who = 2`). A store moves to it when it first gets an identity wrap; all others stay at
/// version 1, which older Keyward releases still open.
pub(crate) const IDENTITY_SCHEMA_VERSION: i32 = 2;
/// How long a call waits for another process's write transaction before giving up.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const SCHEMA: &str = "
CREATE TABLE token (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    token_id        BLOB    NOT NULL,
    slot_id         INTEGER NOT NULL,
    label           TEXT    NOT NULL,
    serial          TEXT    NOT NULL,
    retry_limit     INTEGER NOT NULL,
    public_key      BLOB    NOT NULL,
    mk_check        BLOB    NOT NULL,
    meta_tag        BLOB    NOT NULL,
    next_generation INTEGER NOT NULL
);
CREATE TABLE pin (
    who      INTEGER PRIMARY KEY CHECK (who IN (0, 1)),
    failures INTEGER NOT NULL CHECK (failures >= 0),
    kdf      BLOB    NOT NULL,
    wrapped  BLOB    NOT NULL
);
CREATE TABLE object (
    uid        TEXT    PRIMARY KEY,
    generation INTEGER NOT NULL,
    private    INTEGER NOT NULL CHECK (private IN (0, 1)),
    record     BLOB    NOT NULL,
    tag        BLOB
);
";

/// The version-2 `pin` table: as in version 1, with `who = 2` for the identity wrap.
const PIN_TABLE_V2: &str = "
CREATE TABLE pin_v2 (
    who      INTEGER PRIMARY KEY CHECK (who IN (0, 1, 2)),
    failures INTEGER NOT NULL CHECK (failures >= 0),
    kdf      BLOB    NOT NULL,
    wrapped  BLOB    NOT NULL
);
INSERT INTO pin_v2 (who, failures, kdf, wrapped) SELECT who, failures, kdf, wrapped FROM pin;
DROP TABLE pin;
ALTER TABLE pin_v2 RENAME TO pin;
";

fn io_err(what: &str, path: &Path, e: std::io::Error) -> crate::error::Error {
    Code::DeviceError.err(format!("{what} {}: {e}", path.display()))
}

/// The sibling path `<file name><suffix>`.
pub(crate) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// Make the store's directory (mode 0700) if it does not exist yet.
pub(crate) fn ensure_dir(path: &Path) -> Result<()> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => {
            if m.mode() & 0o022 != 0 {
                tracing::warn!(dir = %dir.display(), mode = format!("{:o}", m.mode() & 0o7777),
                    "token store directory is writable by group or others");
            }
            Ok(())
        }
        Ok(_) => Err(Code::DeviceError.err(format!("{} is not a directory", dir.display()))),
        Err(e) if e.kind() == ErrorKind::NotFound => DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io_err("cannot create", dir, e)),
        Err(e) => Err(io_err("cannot inspect", dir, e)),
    }
}

/// Create an empty file with mode 0600; fails if it exists.
pub(crate) fn create_file(path: &Path) -> Result<()> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
        .map_err(|e| io_err("cannot create", path, e))
}

/// Remove a file and its WAL and shared-memory companions, ignoring absent ones.
pub(crate) fn remove_with_companions(path: &Path) {
    for p in [
        path.to_path_buf(),
        sibling(path, "-wal"),
        sibling(path, "-shm"),
    ] {
        if let Err(e) = fs::remove_file(&p)
            && e.kind() != ErrorKind::NotFound
        {
            tracing::warn!(path = %p.display(), error = %e, "cannot remove");
        }
    }
}

/// Publish a finished store at `path` without ever replacing an existing file; then make the
/// directory entry durable.
pub(crate) fn publish(tmp: &Path, path: &Path) -> Result<()> {
    match fs::hard_link(tmp, path) {
        Ok(()) => {
            fs::remove_file(tmp).map_err(|e| io_err("cannot remove", tmp, e))?;
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            return Err(Code::GeneralError.err(format!("{} already exists", path.display())));
        }
        // File systems without hard links: check, then rename (not atomic against a
        // concurrent creator of the same name, which the random serial makes unlikely).
        Err(_) => {
            if fs::symlink_metadata(path).is_ok() {
                return Err(Code::GeneralError.err(format!("{} already exists", path.display())));
            }
            fs::rename(tmp, path).map_err(|e| io_err("cannot rename to", path, e))?;
        }
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err("cannot sync", dir, e))?;
    }
    Ok(())
}

/// Refuse a store that is not a regular file or that group or others may access.
pub(crate) fn check_file(path: &Path) -> Result<()> {
    let m = fs::metadata(path).map_err(|e| {
        if e.kind() == ErrorKind::NotFound {
            Code::TokenNotPresent.err(format!("no token store at {}", path.display()))
        } else {
            io_err("cannot inspect", path, e)
        }
    })?;
    if !m.is_file() {
        return Err(Code::DeviceError.err(format!("{} is not a regular file", path.display())));
    }
    if m.mode() & 0o077 != 0 {
        return Err(Code::DeviceError.err(format!(
            "refusing token store {}: mode {:o} lets group or others access it (chmod 600)",
            path.display(),
            m.mode() & 0o7777
        )));
    }
    Ok(())
}

/// Open an existing database file read-write (never creating it).
pub(crate) fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| Code::DeviceError.err(format!("cannot open {}: {e}", path.display())))?;
    configure(&conn)?;
    Ok(conn)
}

/// Connection settings required for durability and for leaving no stale secrets behind.
fn configure(conn: &Connection) -> Result<()> {
    // The pragma rather than `Connection::busy_timeout`, which needs SQLite 3.44's client
    // data API; the system SQLite of the targets may be older.
    let ms = i64::try_from(BUSY_TIMEOUT.as_millis()).unwrap_or(i64::MAX);
    conn.pragma_update(None, "busy_timeout", ms)?;
    // The database file may come from anyone who can write the directory: run nothing
    // stored in its schema with side effects.
    conn.pragma_update(None, "trusted_schema", "OFF")?;
    conn.pragma_update(None, "cell_size_check", "ON")?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Code::DeviceError.err(format!(
            "token store cannot use WAL journaling (journal_mode is {mode})"
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Write the schema into a new, empty database.
pub(crate) fn create_schema(conn: &Connection) -> Result<()> {
    conn.execute_batch(SCHEMA)?;
    conn.pragma_update(None, "application_id", APPLICATION_ID)?;
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    Ok(())
}

/// Move a version-1 store to version 2 (nothing to do if it is there already). Runs inside
/// the caller's write transaction, so a crash leaves either version whole: the `pin` table
/// is rebuilt with its new constraint (rows copied, the old table dropped, which
/// `secure_delete` overwrites) and `user_version` is part of the same commit.
pub(crate) fn upgrade_for_identity(conn: &Connection) -> Result<()> {
    let version: i32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    match version {
        IDENTITY_SCHEMA_VERSION => Ok(()),
        SCHEMA_VERSION => {
            conn.execute_batch(PIN_TABLE_V2)?;
            conn.pragma_update(None, "user_version", IDENTITY_SCHEMA_VERSION)?;
            tracing::info!("token store schema upgraded to version 2 (identity wrap)");
            Ok(())
        }
        v => Err(Code::TokenNotRecognized.err(format!("unsupported store schema version {v}"))),
    }
}

/// Checks made on every open; every failure is fatal for this token (fail closed).
pub(crate) fn check_database(conn: &Connection, path: &Path) -> Result<()> {
    let app: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    if app != APPLICATION_ID {
        return Err(Code::TokenNotRecognized
            .err(format!("{} is not a Keyward token store", path.display())));
    }
    let version: i32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version != SCHEMA_VERSION && version != IDENTITY_SCHEMA_VERSION {
        return Err(Code::TokenNotRecognized.err(format!(
            "{}: unsupported store schema version {version}",
            path.display()
        )));
    }
    let mut stmt = conn.prepare("PRAGMA quick_check")?;
    let problems: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<_>>()?;
    if problems.len() != 1 || problems[0] != "ok" {
        let first: Vec<&str> = problems.iter().take(5).map(String::as_str).collect();
        return Err(Code::DeviceError.err(format!(
            "token store {} failed its integrity check: {}",
            path.display(),
            first.join("; ")
        )));
    }
    // Only our three tables (and their automatic indexes) may exist: a trigger or view added
    // behind our back could, for example, reset the PIN failure counter on every write.
    let foreign: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master
         WHERE NOT ((type = 'table' AND name IN ('token', 'pin', 'object'))
                 OR (type = 'index' AND name LIKE 'sqlite_autoindex_%' AND sql IS NULL))",
        [],
        |r| r.get(0),
    )?;
    if foreign != 0 {
        return Err(Code::DeviceError.err(format!(
            "token store {} holds unexpected schema objects (triggers, views or tables)",
            path.display()
        )));
    }
    Ok(())
}

/// Move the WAL into the database and truncate it, so that overwritten or deleted rows
/// (old PIN wraps, deleted objects) do not linger in the WAL. Failing to do so is logged,
/// not fatal: the change itself is committed.
pub(crate) fn checkpoint_truncate(conn: &Connection) {
    match conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    }) {
        Ok((0, _, _)) => {}
        Ok((busy, log, done)) => tracing::warn!(
            busy,
            log,
            done,
            "WAL checkpoint could not finish (another connection is reading); stale pages stay in \
             the WAL until the next checkpoint"
        ),
        Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
    }
}

/// `PRAGMA data_version`: changes when another connection commits.
pub(crate) fn data_version(conn: &Connection) -> Result<i64> {
    // Cached: this runs before every find, so parsing the pragma each time would dominate.
    Ok(conn
        .prepare_cached("PRAGMA data_version")?
        .query_row([], |r| r.get(0))?)
}
