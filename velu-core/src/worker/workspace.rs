//! Job workspaces: `<home>/workspaces/<org_id>/<job_id>`, private to the owner (0700).
//!
//! Retention: a workspace is kept after its job ends, for inspection, and removed by the
//! worker once it has not been modified for the retention period (default 24 h; `0`
//! removes it as soon as the attempt ends). Workers sweep at start and every hour.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::{CoreError, CoreResult, Velu};

/// The root of every workspace.
pub fn root(velu: &Velu) -> PathBuf {
    velu.settings().home.join("workspaces")
}

/// Creates (0700, parents too) and returns the workspace of a job.
pub fn create(velu: &Velu, org_id: &str, job_id: &str) -> CoreResult<PathBuf> {
    // Ids are UUIDs we made; refuse anything else rather than join it into a path.
    if !crate::ids::is_uuid(org_id) || !crate::ids::is_uuid(job_id) {
        return Err(CoreError::internal("workspace ids must be UUIDs"));
    }
    let dir = root(velu).join(org_id).join(job_id);
    for d in [
        root(velu),
        root(velu).join(org_id),
        dir.clone(),
        dir.join("tmp"),
    ] {
        private_dir(&d)?;
    }
    Ok(dir)
}

fn private_dir(dir: &Path) -> CoreResult<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| CoreError::Config(format!("workspace {}: {e}", dir.display())))
        }
        Err(e) => Err(CoreError::Config(format!(
            "workspace {}: {e}",
            dir.display()
        ))),
    }
}

/// Removes a job's workspace now.
pub fn remove(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot remove workspace");
    }
}

/// Removes workspaces untouched for longer than `retention`; returns how many.
pub fn collect_garbage(velu: &Velu, retention: Duration) -> usize {
    let Ok(orgs) = std::fs::read_dir(root(velu)) else {
        return 0;
    };
    let cutoff = SystemTime::now() - retention;
    let mut removed = 0;
    for org in orgs.flatten() {
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
