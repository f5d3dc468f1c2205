//! Job workspaces: `<home>/workspaces/<org_id>/<job_id>`, private to the owner (0700).
//!
//! Links are never followed while preparing, cleaning or sweeping workspaces: a job may
//! leave symlinks in its workspace (to `/etc/passwd`, to another directory) and the worker,
//! running outside the sandbox, must not act on their targets.
//!
//! Retention: a workspace is kept after its job ends, for inspection, and removed by the
//! worker once it has not been modified for the retention period (default 24 h; `0`
//! removes it as soon as the attempt ends). Workers sweep at start and every hour.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::{CoreError, CoreResult, Velu};

/// The root of every workspace.
pub fn root(velu: &Velu) -> PathBuf {
    root_in(&velu.settings().home)
}

/// The root of every workspace under data directory `home`.
pub fn root_in(home: &Path) -> PathBuf {
    home.join("workspaces")
}

/// Creates (0700, parents too) and returns the workspace of a job under `root`.
pub fn create(root: &Path, org_id: &str, job_id: &str) -> CoreResult<PathBuf> {
    // Ids are UUIDs we made; refuse anything else rather than join it into a path (a
    // remote worker's server is trusted with this no more than any other input).
    if !crate::ids::is_uuid(org_id) || !crate::ids::is_uuid(job_id) {
        return Err(CoreError::internal("workspace ids must be UUIDs"));
    }
    let dir = root.join(org_id).join(job_id);
    // The root and the org folder are the operator's (no job can write there): either may
    // be a link the operator made. The job's folder and its `tmp` are the job's.
    for d in [root.to_owned(), root.join(org_id)] {
        operator_dir(&d)?;
    }
    for d in [dir.clone(), dir.join("tmp")] {
        private_dir(&d)?;
    }
    Ok(dir)
}

/// Creates `dir` (0700) unless it exists.
fn operator_dir(dir: &Path) -> CoreResult<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(CoreError::Config(format!(
            "workspace {}: {e}",
            dir.display()
        ))),
        _ => Ok(()),
    }
}

/// Makes `dir` a private (0700) directory without following links: an existing real
/// directory is opened with `O_NOFOLLOW` and its mode set through that descriptor; a
/// symlink or any other non-directory a job left there is removed (the link itself, never
/// its target) and a fresh directory made.
fn private_dir(dir: &Path) -> CoreResult<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let err = |e: std::io::Error| CoreError::Config(format!("workspace {}: {e}", dir.display()));
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_dir() => {}
        Ok(_) => {
            tracing::warn!(path = %dir.display(), "replacing a non-directory in a workspace");
            std::fs::remove_file(dir).map_err(err)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let handle = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW)
                .open(dir)
                .map_err(err)?;
            handle
                .set_permissions(std::fs::Permissions::from_mode(0o700))
                .map_err(err)
        }
        Err(e) => Err(err(e)),
    }
}

/// Removes a job's workspace now. Links inside it are removed, never followed (and a
/// workspace path that is itself a link only loses the link).
pub fn remove(dir: &Path) {
    let result = match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_dir() => std::fs::remove_dir_all(dir),
        Ok(_) => std::fs::remove_file(dir),
        Err(e) => Err(e),
    };
    if let Err(e) = result
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot remove workspace");
    }
}

/// Removes workspaces untouched for longer than `retention`; returns how many.
pub fn collect_garbage(velu: &Velu, retention: Duration) -> usize {
    collect_garbage_in(&root(velu), retention)
}

/// [`collect_garbage`] of the workspaces under `root`.
pub fn collect_garbage_in(root: &Path, retention: Duration) -> usize {
    let Ok(orgs) = std::fs::read_dir(root) else {
        return 0;
    };
    let cutoff = SystemTime::now() - retention;
    let mut removed = 0;
    // `DirEntry` types and metadata are those of the entry itself (`lstat`): a link is
    // never walked into.
    let real_dir = |e: &std::fs::DirEntry| e.file_type().is_ok_and(|t| t.is_dir());
    for org in orgs.flatten().filter(real_dir) {
        let Ok(jobs) = std::fs::read_dir(org.path()) else {
            continue;
        };
        for job in jobs.flatten() {
            let old = job
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < cutoff);
            if old {
                remove(&job.path());
                removed += 1;
            }
        }
    }
    if removed > 0 {
        tracing::info!(removed, "removed old workspaces");
    }
    removed
}
