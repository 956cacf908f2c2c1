//! The seccomp allow-list applied once the daemon has started: the system calls it needs to
//! accept clients, run the engine (SQLite, OpenSSL, threads) and log, and nothing that starts
//! programs, opens network sockets, changes identity or inspects other processes.
//!
//! A call outside the list kills the whole process (SECCOMP_RET_KILL_PROCESS). The kernel
//! records it (audit type SECCOMP, `sig=31 syscall=<n>`; systemd shows status=31/SYS), which
//! names the call at once, where an EPERM would surface as a puzzling failure deep inside
//! SQLite or OpenSSL and let a compromised daemon keep probing. Committed objects survive the
//! kill (every write is one SQLite transaction). `[daemon] seccomp = false` turns the filter
//! off to debug. The list was taken from `strace -f -c` over the daemon test suites.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Calls allowed with any arguments, on every architecture.
const COMMON: &[libc::c_long] = &[
    // I/O on descriptors the daemon already holds: sockets, token databases, stderr.
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_pread64,
    libc::SYS_pwrite64,
    libc::SYS_preadv,
    libc::SYS_pwritev,
    libc::SYS_lseek,
    libc::SYS_close,
    libc::SYS_fcntl,
    libc::SYS_flock,
    libc::SYS_fsync,
    libc::SYS_fdatasync,
    libc::SYS_ftruncate,
    libc::SYS_fallocate,
    libc::SYS_fstat,
    libc::SYS_newfstatat,
    libc::SYS_statx,
    libc::SYS_fstatfs,
    libc::SYS_statfs,
    libc::SYS_dup,
    libc::SYS_dup3,
    // Token databases and their journals in the storage directory; /proc for peer groups.
    libc::SYS_openat,
    libc::SYS_unlinkat,
    // A new token database is created under a temporary name and linked into place.
    libc::SYS_linkat,
    libc::SYS_renameat,
    libc::SYS_renameat2,
    libc::SYS_mkdirat,
    libc::SYS_faccessat,
    libc::SYS_faccessat2,
    libc::SYS_readlinkat,
    libc::SYS_getdents64,
    libc::SYS_getcwd,
    libc::SYS_fchmod,
    libc::SYS_fchown,
    libc::SYS_fchmodat,
    libc::SYS_utimensat,
    // Accepting and serving clients on the listening socket it already has.
    libc::SYS_accept,
    libc::SYS_accept4,
    libc::SYS_recvfrom,
    libc::SYS_recvmsg,
    libc::SYS_sendto,
    libc::SYS_sendmsg,
    libc::SYS_shutdown,
    libc::SYS_getsockopt,
    libc::SYS_getsockname,
    libc::SYS_getpeername,
    libc::SYS_ppoll,
    libc::SYS_pselect6,
    // Memory.
    libc::SYS_brk,
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_mprotect,
    libc::SYS_madvise,
    libc::SYS_mlock,
    libc::SYS_munlock,
    libc::SYS_membarrier,
    // Threads, time, signals, randomness.
    libc::SYS_clone,
    libc::SYS_clone3,
    libc::SYS_futex,
    libc::SYS_set_robust_list,
    libc::SYS_get_robust_list,
    libc::SYS_rseq,
    libc::SYS_set_tid_address,
    libc::SYS_sched_yield,
    libc::SYS_sched_getaffinity,
    libc::SYS_exit,
    libc::SYS_exit_group,
    libc::SYS_gettid,
    libc::SYS_getpid,
    libc::SYS_getppid,
    libc::SYS_getuid,
    libc::SYS_geteuid,
    libc::SYS_getgid,
    libc::SYS_getegid,
    libc::SYS_getresuid,
    libc::SYS_getresgid,
    libc::SYS_getrandom,
    libc::SYS_clock_gettime,
    libc::SYS_clock_getres,
    libc::SYS_gettimeofday,
    libc::SYS_clock_nanosleep,
    libc::SYS_nanosleep,
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigreturn,
    libc::SYS_sigaltstack,
    libc::SYS_restart_syscall,
    libc::SYS_prlimit64,
    libc::SYS_getrusage,
    libc::SYS_sysinfo,
    libc::SYS_uname,
    // abort(3) on a fatal error raises SIGABRT at itself.
    libc::SYS_tgkill,
];

/// The older calls x86-64 programs still use; aarch64 and riscv64 never had them.
#[cfg(target_arch = "x86_64")]
const LEGACY: &[libc::c_long] = &[
    libc::SYS_open,
    libc::SYS_stat,
    libc::SYS_lstat,
    libc::SYS_access,
    libc::SYS_readlink,
    libc::SYS_unlink,
    libc::SYS_link,
    libc::SYS_rename,
    libc::SYS_mkdir,
    libc::SYS_poll,
    libc::SYS_select,
    libc::SYS_getdents,
    libc::SYS_arch_prctl,
    libc::SYS_time,
];
#[cfg(not(target_arch = "x86_64"))]
const LEGACY: &[libc::c_long] = &[];

/// prctl options allowed: naming threads, and reading (not setting) the dumpable flag.
const PRCTL_OPTIONS: &[libc::c_int] =
    &[libc::PR_SET_NAME, libc::PR_GET_NAME, libc::PR_GET_DUMPABLE];

/// The filter for this architecture, or `None` where seccompiler has no support for it.
pub fn program() -> Result<Option<BpfProgram>, String> {
    let Ok(arch) = TargetArch::try_from(std::env::consts::ARCH) else {
        return Ok(None);
    };
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for &n in COMMON.iter().chain(LEGACY) {
        rules.insert(n, Vec::new());
    }
    let mut prctl = Vec::new();
    for &opt in PRCTL_OPTIONS {
        let opt = u64::try_from(opt).map_err(|e| e.to_string())?;
        let cond = SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, opt)
            .map_err(|e| e.to_string())?;
        prctl.push(SeccompRule::new(vec![cond]).map_err(|e| e.to_string())?);
    }
    rules.insert(libc::SYS_prctl, prctl);
    // ioctl only to switch blocking mode and close-on-exec, and isatty(3) (a terminal ioctl
    // such as TIOCSTI on an inherited terminal could type into it).
    let mut ioctl = Vec::new();
    for req in [libc::FIONBIO, libc::FIOCLEX, libc::FIONCLEX, libc::TCGETS] {
        // c_ulong: u64 here, u32 on 32-bit targets.
        #[allow(clippy::useless_conversion)]
        let req = u64::from(req);
        let cond = SeccompCondition::new(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, req)
            .map_err(|e| e.to_string())?;
        ioctl.push(SeccompRule::new(vec![cond]).map_err(|e| e.to_string())?);
    }
    rules.insert(libc::SYS_ioctl, ioctl);
    // Socket options only at the socket level (the protocol code sets read timeouts).
    let level = u64::try_from(libc::SOL_SOCKET).map_err(|e| e.to_string())?;
    let cond = SeccompCondition::new(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, level)
        .map_err(|e| e.to_string())?;
    rules.insert(
        libc::SYS_setsockopt,
        vec![SeccompRule::new(vec![cond]).map_err(|e| e.to_string())?],
    );
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        arch,
    )
    .map_err(|e| e.to_string())?;
    BpfProgram::try_from(filter)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// Confine every thread of the process from now on (also sets PR_SET_NO_NEW_PRIVS).
pub fn confine() -> Result<(), String> {
    match program()? {
        Some(p) => {
            seccompiler::apply_filter_all_threads(&p).map_err(|e| e.to_string())?;
            tracing::debug!(
                calls = COMMON.len() + LEGACY.len() + 3,
                "seccomp allow-list applied (other calls kill the process)"
            );
        }
        None => tracing::warn!(
            arch = std::env::consts::ARCH,
            "no seccomp filter for this architecture; running unconfined"
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_compiles_and_excludes_dangerous_calls() {
        let p = program().unwrap();
        if TargetArch::try_from(std::env::consts::ARCH).is_ok() {
            assert!(p.is_some_and(|p| !p.is_empty()));
        }
        for n in [
            libc::SYS_execve,
            libc::SYS_execveat,
            libc::SYS_ptrace,
            libc::SYS_socket,
            libc::SYS_connect,
            libc::SYS_bind,
            libc::SYS_setuid,
            libc::SYS_setgid,
            libc::SYS_setgroups,
            libc::SYS_process_vm_readv,
            libc::SYS_process_vm_writev,
            libc::SYS_mount,
            libc::SYS_bpf,
            libc::SYS_kill,
            libc::SYS_ioctl,
            libc::SYS_prctl,
            libc::SYS_setsockopt,
        ] {
            assert!(
                !COMMON.contains(&n) && !LEGACY.contains(&n),
                "syscall {n} allowed"
            );
        }
    }
}
