//! Containment: every process a command job starts ends with the job (timeout, cancel,
//! normal exit, worker shutdown), even one that left the job's process group with
//! `setsid` or double-forked into a daemon.
//!
//! Chosen once per worker, logged at start, best first:
//! * **cgroup v2** ([`super::cgroup`]): one group per job, killed whole (`cgroup.kill`);
//! * **subreaper** ([`super::reaper`]): where no writable cgroup2 exists, orphans come back
//!   to the worker and are attributed by the job's tag;
//! * **process group** only, where even that is refused: `setsid` escapes it.

use std::os::fd::RawFd;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::cgroup::{JobGroup, WorkerGroup};
use super::reaper;
use crate::{CoreError, CoreResult};

/// How a worker makes sure a job's processes end with it.
#[derive(Debug)]
pub enum Containment {
    /// A cgroup v2 per job under this worker's group.
    Cgroup(WorkerGroup),
    /// The worker is a child subreaper and kills the job's descendants and tagged orphans.
    Subreaper,
    /// Only the job's process group is killed.
    ProcessGroup,
}

impl Containment {
    /// The best containment this host allows (creates the worker's cgroup, or makes the
    /// process a subreaper).
    pub fn detect() -> Containment {
        match WorkerGroup::create() {
            Ok(group) => Containment::Cgroup(group),
            Err(e) => {
                tracing::debug!(error = %e, "no writable cgroup2");
                if reaper::enable() {
                    Containment::Subreaper
                } else {
                    Containment::ProcessGroup
                }
            }
        }
    }

    /// Logs which containment applies.
    pub fn log(&self) {
        match self {
            Containment::Cgroup(g) => tracing::info!(
                cgroup = %g.path().display(),
                "command jobs are contained by cgroup v2: each job's processes are killed together"
            ),
            Containment::Subreaper => tracing::info!(
                "no writable cgroup2: command jobs are contained by a subreaper (descendants and tagged orphans are killed)"
            ),
            Containment::ProcessGroup => tracing::warn!(
                "no cgroup2 and no subreaper: only a job's process group is killed; `setsid` escapes it"
            ),
        }
    }

    /// Short name: `cgroup`, `subreaper` or `process_group`.
    pub fn kind(&self) -> &'static str {
        match self {
            Containment::Cgroup(_) => "cgroup",
            Containment::Subreaper => "subreaper",
            Containment::ProcessGroup => "process_group",
        }
    }

    /// Prepares the containment of one job (before its process is spawned).
    pub fn job(&self, job_id: &str) -> CoreResult<JobScope> {
        let group = match self {
            Containment::Cgroup(g) => Some(g.job(job_id).map_err(|e| {
                CoreError::internal(format!("cannot create the job's cgroup: {e}"))
            })?),
            _ => None,
        };
        Ok(JobScope {
            group,
            subreaper: matches!(self, Containment::Subreaper),
            job_id: job_id.to_owned(),
            leader: None,
        })
    }
}

/// The containment of one running job. Call [`JobScope::end`] when the job is over.
#[derive(Debug)]
pub struct JobScope {
    group: Option<JobGroup>,
    subreaper: bool,
    job_id: String,
    leader: Option<i32>,
}

impl JobScope {
    /// The `cgroup.procs` the child must join before `exec` (see [`super::cgroup::join`]).
    pub fn procs_fd(&self) -> Option<RawFd> {
        self.group.as_ref().map(JobGroup::procs_fd)
    }

    /// Records the job's first process (its pid is also its process group).
    pub fn started(&mut self, pid: Option<u32>) {
        self.leader = pid.map(|p| p as i32);
        if let (true, Some(pid)) = (self.subreaper, self.leader) {
            reaper::add_leader(pid);
        }
    }

    /// Kills the job's process group (while its first process has not been waited for,
    /// so the group id cannot have been reused).
    pub fn kill_group(&self) {
        if let Some(pid) = self.leader {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }

    /// Kills every process the job started, after its first process was waited for.
    pub async fn end(mut self) {
        if let Some(pid) = self.leader.take() {
            reaper::remove_leader(pid);
        }
        if let Some(group) = self.group.take() {
            group.end().await;
        } else if self.subreaper {
            reaper::kill_job(None, &self.job_id).await;
        }
    }
}

impl Drop for JobScope {
    fn drop(&mut self) {
        if let Some(pid) = self.leader {
            reaper::remove_leader(pid);
        }
    }
}
