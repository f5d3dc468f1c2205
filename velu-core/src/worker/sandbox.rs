//! The filesystem sandbox of command jobs (Linux Landlock, applied in the child just
//! before `exec`).
//!
//! A command job may read and execute the system (`/usr`, `/bin`, `/lib*`, `/etc`) and
//! its own program's folder, use `/dev/null` and friends, and read and write its own
//! workspace. Nothing else: not Velu's data directory (database file, pepper), not other
//! jobs' workspaces, not `/proc` (where the worker's environment lives). It may not signal
//! processes outside its sandbox. On kernels without Landlock this degrades to no
//! filesystem sandbox, said once in the log; the scrubbed environment and the working
//! directory still apply.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use landlock::{
    ABI, Access, AccessFs, CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetCreated,
    RulesetCreatedAttr, Scope, path_beneath_rules,
};

/// The newest Landlock ABI this code was written and tested against.
const ABI_VERSION: ABI = ABI::V6;

const SYSTEM_READ: &[&str] = &["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc"];
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
