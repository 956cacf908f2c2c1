//! Self-hardening at start: no core dumps and no ptrace by the same uid (PR_SET_DUMPABLE 0,
//! RLIMIT_CORE 0), a private umask, and memory locked against swapping (SECURITY FIPS-04).

use rustix::mm::{MlockAllFlags, mlockall};
use rustix::process::{DumpableBehavior, Resource, Rlimit, geteuid, getrlimit, setrlimit};

/// Make the process undumpable (no core file, `/proc/<pid>` owned by root, no ptrace by the
/// same uid) with a zero core-size limit, and set the umask to 0077 so files and sockets start
/// private. Failures are logged: the daemon still runs, less protected.
pub fn no_dumps() {
    match rustix::process::set_dumpable_behavior(DumpableBehavior::NotDumpable) {
        Ok(()) => tracing::debug!("PR_SET_DUMPABLE 0"),
        Err(e) => tracing::warn!(error = %e, "cannot make the process undumpable"),
    }
    let zero = Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    match setrlimit(Resource::Core, zero) {
        Ok(()) => tracing::debug!("RLIMIT_CORE 0"),
        Err(e) => tracing::warn!(error = %e, "cannot set RLIMIT_CORE to 0"),
    }
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    tracing::debug!("umask 0077");
}

/// Before a switch away from root: lift RLIMIT_MEMLOCK so that [`lock_memory`] still works
/// once CAP_IPC_LOCK is gone.
pub fn lift_memlock_limit() {
    if !geteuid().is_root() {
        return;
    }
    let unlimited = Rlimit {
        current: None,
        maximum: None,
    };
    match setrlimit(Resource::Memlock, unlimited) {
        Ok(()) => tracing::debug!("RLIMIT_MEMLOCK unlimited"),
        Err(e) => tracing::warn!(error = %e, "cannot lift RLIMIT_MEMLOCK"),
    }
}

/// Lock current and future pages in RAM (MCL_ONFAULT: as they are touched, so reserved thread
/// stacks cost nothing until used). With a finite RLIMIT_MEMLOCK and no CAP_IPC_LOCK, a later
/// allocation beyond the limit would fail, so locking is skipped then, with a warning.
pub fn lock_memory() {
    let limit = getrlimit(Resource::Memlock);
    if limit.current.is_some() && !geteuid().is_root() {
        tracing::warn!(
            limit = limit.current,
            "not locking memory: RLIMIT_MEMLOCK is finite (set LimitMEMLOCK=infinity); \
             secrets may be swapped out"
        );
        return;
    }
    let flags = MlockAllFlags::CURRENT | MlockAllFlags::FUTURE | MlockAllFlags::ONFAULT;
    match mlockall(flags) {
        Ok(()) => tracing::debug!("mlockall(MCL_CURRENT|MCL_FUTURE|MCL_ONFAULT)"),
        Err(e) => tracing::warn!(error = %e, "mlockall not permitted; secrets may be swapped out"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undumpable_with_no_core_limit() {
        // Runs in this test process; nothing else in the unit tests depends on dumpability.
        no_dumps();
        assert_eq!(
            rustix::process::dumpable_behavior().unwrap(),
            DumpableBehavior::NotDumpable
        );
        let core = getrlimit(Resource::Core);
        assert_eq!((core.current, core.maximum), (Some(0), Some(0)));
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(status.contains("Umask:\t0077"), "{status}");
    }
}
