//! The filesystem sandbox of command jobs (Linux Landlock, applied in the child just
//! before `exec`).
//!
//! A command job may read and execute the system (`/usr`, `/bin`, `/sbin`, `/lib*`), read
//! the few files of `/etc` that programs need ([`ETC_READ`]), read its own program's
//! folder, use `/dev/null` and friends, and read and write its own workspace. Nothing
//! else: not the rest of `/etc` (`/etc/shadow`, keys, service configuration), not Velu's
//! data directory (database file, pepper), not other jobs' workspaces, not `/proc` (where
//! the worker's environment lives). It may not signal processes outside its sandbox. On kernels without Landlock this degrades to no
//! filesystem sandbox, said once in the log; the scrubbed environment and the working
//! directory still apply.

use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};

use landlock::{
    ABI, Access, AccessFs, CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetCreated,
    RulesetCreatedAttr, Scope, path_beneath_rules,
};

/// The newest Landlock ABI this code was written and tested against.
const ABI_VERSION: ABI = ABI::V6;

const SYSTEM_READ: &[&str] = &["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64"];

/// What of `/etc` a job may read: the dynamic loader's cache and configuration, user and
/// group names (no password hashes: those are in `/etc/shadow`), name resolution, time
/// zone, TLS roots, the Debian alternatives links, and Python's site configuration
/// (`/etc/python3*`, matched when the ruleset is built). Paths missing on a host are
/// skipped.
pub const ETC_READ: &[&str] = &[
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/ld.so.preload",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/resolv.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/mime.types",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
    "/etc/alternatives",
];

/// [`ETC_READ`] plus `/etc/python3*`.
static ETC_PATHS: LazyLock<Vec<PathBuf>> = LazyLock::new(|| {
    let mut paths: Vec<PathBuf> = ETC_READ.iter().map(PathBuf::from).collect();
    if let Ok(entries) = std::fs::read_dir("/etc") {
        paths.extend(
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
                .map(|e| e.path()),
        );
    }
    paths
});

const DEVICES: &[&str] = &["/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"];

/// Builds the ruleset for a job (in the parent: this opens files and allocates).
pub fn prepare(workspace: &Path, program: &Path) -> Option<RulesetCreated> {
    let abi = ABI_VERSION;
    let program_dir = program.parent().filter(|p| p.is_absolute());
    let build = || -> Result<RulesetCreated, landlock::RulesetError> {
        let read = AccessFs::from_read(abi);
        let ruleset = Ruleset::default()
            .set_compatibility(CompatLevel::BestEffort)
            .handle_access(AccessFs::from_all(abi))?
            .scope(Scope::from_all(abi))?
            .create()?
            .add_rules(path_beneath_rules(SYSTEM_READ, read))?
            .add_rules(path_beneath_rules(ETC_PATHS.iter(), read))?
            .add_rules(path_beneath_rules(program_dir, read))?
            .add_rules(path_beneath_rules(DEVICES, AccessFs::from_file(abi)))?
            .add_rules(path_beneath_rules([workspace], AccessFs::from_all(abi)))?;
        Ok(ruleset)
    };
    match build() {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(error = %e, "cannot build the Landlock sandbox; running without it");
            None
        }
    }
}

/// The highest descriptor number to mark close-on-exec where `close_range(2)` is missing
/// (read in the parent: `sysconf` is not async-signal-safe).
pub fn fd_limit() -> RawFd {
    // SAFETY: sysconf has no preconditions.
    let max = unsafe { nix::libc::sysconf(nix::libc::_SC_OPEN_MAX) };
    max.clamp(1024, 65_536) as RawFd
}

/// Makes every descriptor above stderr close at `exec`, so nothing the worker holds (its
/// database connections, files it inherited from whoever started it) reaches the job.
/// Called between `fork` and `exec`: `close_range(2)` with `CLOSE_RANGE_CLOEXEC` (Linux
/// 5.11+), else one `fcntl(2)` per descriptor up to `limit`. Close-on-exec rather than
/// closing keeps the standard library's exec-error pipe working.
pub fn close_inherited_fds(limit: RawFd) {
    use nix::libc;
    // SAFETY: plain system calls on integers; async-signal-safe.
    unsafe {
        let done = libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        ) == 0;
        if !done {
            for fd in 3..limit {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
    }
}

static WARNED: AtomicBool = AtomicBool::new(false);

/// Applies the ruleset to the calling (child) process. Called between `fork` and `exec`:
/// it only makes the `prctl` and `landlock_restrict_self` system calls.
pub fn enter(ruleset: RulesetCreated) -> std::io::Result<()> {
    match ruleset.restrict_self() {
        Ok(_) => Ok(()),
        Err(_) => Err(std::io::Error::from_raw_os_error(nix::libc::EPERM)),
    }
}

/// Whether this kernel enforces the sandbox: a throwaway thread restricts itself (Landlock
/// applies per thread, so nothing else is affected) and reports what took effect.
pub fn enforced() -> bool {
    std::thread::spawn(|| {
        Ruleset::default()
            .handle_access(AccessFs::from_all(ABI_VERSION))
            .and_then(|r| r.create())
            .and_then(|r| r.restrict_self())
            .is_ok_and(|status| status.ruleset != landlock::RulesetStatus::NotEnforced)
    })
    .join()
    .unwrap_or(false)
}

/// Logs once whether this kernel enforces the sandbox.
pub fn log_support() {
    if WARNED.swap(true, Ordering::Relaxed) {
        return;
    }
    if enforced() {
        tracing::info!("command jobs run in a Landlock filesystem sandbox");
    } else {
        tracing::warn!(
            "this kernel has no Landlock: command jobs run without a filesystem sandbox"
        );
    }
}
