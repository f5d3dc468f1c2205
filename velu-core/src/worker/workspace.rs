//! Job workspaces: `<home>/workspaces/<org_id>/<job_id>`, private to the owner (0700).
//!
//! Links are never followed while preparing, cleaning or sweeping workspaces: a job may
//! leave symlinks in its workspace (to `/etc/passwd`, to another directory) and the worker,
//! running outside the sandbox, must not act on their targets.
//!
//! Retention: a workspace is kept after its job ends, for inspection, and removed by the
//! worker once it has not been modified for the retention period (default 24 h; `0`
//! removes it as soon as the attempt ends). Workers sweep at start and every hour, off
//! their heartbeat. A running job's workspace is never swept, however old its folder's
//! time: its worker holds an exclusive `flock` on the folder while the attempt runs
//! ([`Workspace`]), and a sweep (of any worker sharing the home) passes over a folder it
//! cannot lock.

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

/// A job's workspace while its attempt runs: the folder, held locked against sweeps.
#[derive(Debug)]
pub struct Workspace {
    dir: PathBuf,
    /// The folder itself, opened without following links and locked (`flock`, exclusive)
    /// until this is dropped; opened close-on-exec, so the job's processes never hold it.
    _lock: std::fs::File,
}

impl Workspace {
    /// The folder.
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

/// Creates (0700, parents too) the workspace of a job under `root` and holds it locked
/// while the returned [`Workspace`] lives.
pub fn create(root: &Path, org_id: &str, job_id: &str) -> CoreResult<Workspace> {
    // A sweep may have locked the folder to remove it just as the job takes it: then it is
    // gone once the lock is had, and is made again.
    for _ in 0..3 {
        let dir = prepare(root, org_id, job_id)?;
        let err =
            |e: std::io::Error| CoreError::Config(format!("workspace {}: {e}", dir.display()));
        let lock = open_dir(&dir).map_err(err)?;
        lock.lock().map_err(err)?;
        if same_dir(&lock, &dir) {
            return Ok(Workspace { dir, _lock: lock });
        }
    }
    Err(CoreError::Config(format!(
        "workspace of job {job_id}: removed again and again while being made"
    )))
}

/// Opens the folder `dir` itself, never a link in its place.
fn open_dir(dir: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW)
        .open(dir)
}

/// Whether `dir` still names the folder `handle` has open.
fn same_dir(handle: &std::fs::File, dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (handle.metadata(), std::fs::symlink_metadata(dir)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Creates (0700, parents too) the folders of a job's workspace under `root`.
fn prepare(root: &Path, org_id: &str, job_id: &str) -> CoreResult<PathBuf> {
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

/// Removes a workspace unless a running attempt holds it (its lock is taken, by this
/// process or another); true when removed. A non-folder is removed as [`remove`] does.
fn remove_unless_running(dir: &Path) -> bool {
    let lock = match open_dir(dir) {
        Ok(lock) => lock,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
        // A link or a file in a job folder's place: nothing can hold it.
        Err(_) => {
            remove(dir);
            return true;
        }
    };
    match lock.try_lock() {
        Ok(()) => {
            remove(dir);
            true
        }
        Err(std::fs::TryLockError::WouldBlock) => false,
        Err(std::fs::TryLockError::Error(e)) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot lock workspace; kept");
            false
        }
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
    // A retention beyond the clock's range keeps everything.
    let Some(cutoff) = SystemTime::now().checked_sub(retention) else {
        return 0;
    };
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
            if old && remove_unless_running(&job.path()) {
                removed += 1;
            }
        }
    }
    if removed > 0 {
        tracing::info!(removed, "removed old workspaces");
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: &str = "0193a3b0-0000-7000-8000-000000000001";
    const JOB: &str = "0193a3b0-0000-7000-8000-000000000002";
    const OLD_JOB: &str = "0193a3b0-0000-7000-8000-000000000003";

    #[test]
    fn a_running_jobs_workspace_is_never_swept() {
        let home = tempfile::tempdir().unwrap();
        let root = home.path().join("workspaces");
        let running = create(&root, ORG, JOB).unwrap();
        std::fs::write(running.path().join("work.txt"), "in progress").unwrap();
        let ended = create(&root, ORG, OLD_JOB).unwrap();
        let ended_dir = ended.path().to_owned();
        drop(ended);
        std::thread::sleep(Duration::from_millis(20));
        // Retention 0: every folder is old enough; only the one no attempt holds goes.
        assert_eq!(collect_garbage_in(&root, Duration::ZERO), 1);
        assert!(!ended_dir.exists());
        assert!(
            running.path().join("work.txt").exists(),
            "the running job keeps its files"
        );
        // Its attempt over, it is swept like any other.
        let dir = running.path().to_owned();
        drop(running);
        assert_eq!(collect_garbage_in(&root, Duration::ZERO), 1);
        assert!(!dir.exists());
    }

    #[test]
    fn a_retention_past_the_clocks_range_keeps_everything() {
        let home = tempfile::tempdir().unwrap();
        let root = home.path().join("workspaces");
        let dir = create(&root, ORG, JOB).unwrap().path().to_owned();
        assert_eq!(collect_garbage_in(&root, Duration::MAX), 0);
        assert!(dir.exists());
    }

    #[test]
    fn a_link_in_a_job_folders_place_is_removed_not_followed() {
        let home = tempfile::tempdir().unwrap();
        let root = home.path().join("workspaces");
        let target = home.path().join("elsewhere");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("keep.txt"), "not a workspace").unwrap();
        drop(create(&root, ORG, JOB).unwrap());
        let link = root.join(ORG).join(OLD_JOB);
        std::os::unix::fs::symlink(&target, &link).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(collect_garbage_in(&root, Duration::ZERO), 2);
        assert!(
            std::fs::symlink_metadata(&link).is_err(),
            "the link is gone"
        );
        assert!(target.join("keep.txt").exists(), "its target is untouched");
    }
}
