//! Per-job cgroup v2 groups: every process a job starts, `setsid` or double-forked
//! daemons included, stays in its job's group and dies with it.
//!
//! Layout: `<this process's v2 cgroup>/velu-<pid>-<random>/<job id>`. The cgroup2 mount is
//! found in `/proc/self/mountinfo` (it is `/sys/fs/cgroup` on a pure v2 host and
//! `/sys/fs/cgroup/unified` on a hybrid one), the process's own group in the `0::` line of
//! `/proc/self/cgroup`. The job's first process joins its group between `fork` and `exec`
//! (a `write(2)` of `0` to `cgroup.procs`, opened beforehand), so it and all it starts are
//! inside before any job code runs. Ending a job writes `1` to `cgroup.kill` (Linux 5.14+;
//! before that, every pid listed in `cgroup.procs` gets SIGKILL until none is left), then
//! removes the group. Groups of a worker process that died are killed and removed by the
//! next worker that starts on the host.
//!
//! Why not the `cgroups-rs` crate: its v2 hierarchy is fixed at `/sys/fs/cgroup` and, on a
//! hybrid host, it picks cgroup v1 (which has no `cgroup.kill`), so it cannot use the
//! writable cgroup2 mounted elsewhere; it also has no way to join a group before `exec`.

use std::fs::{File, OpenOptions};
use std::io::{self, ErrorKind};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The cgroup2 mount point and the root of the hierarchy it shows.
fn cgroup2_mount() -> Option<(PathBuf, String)> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|line| {
        let (mount, fs) = line.split_once(" - ")?;
        if fs.split(' ').next() != Some("cgroup2") {
            return None;
        }
        let mut fields = mount.split(' ');
        let root = fields.nth(3)?;
        let point = fields.next()?;
        Some((PathBuf::from(unescape(point)), unescape(root)))
    })
}

/// Undoes the octal escapes of `/proc/self/mountinfo` (`\040` for a space, ...).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let code = bytes.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (bytes[i], code) {
            (b'\\', Some(c)) => {
                out.push(c);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// This process's cgroup v2 directory, if the host has a cgroup2 mount showing it.
fn own_dir() -> Option<PathBuf> {
    let (mount, root) = cgroup2_mount()?;
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = own.lines().find_map(|l| l.strip_prefix("0::"))?.trim();
    let relative = match path.strip_prefix(root.trim_end_matches('/')) {
        Some(rest) if root != "/" => rest,
        _ => path,
    };
    let dir = mount.join(relative.trim_start_matches('/'));
    dir.join("cgroup.procs").exists().then_some(dir)
}

/// Kills every process in the group at `dir`: `cgroup.kill` if the kernel has it, else
/// SIGKILL to each listed pid, repeated while new ones appear (a fork racing the kill).
fn kill_all(dir: &Path) {
    if std::fs::write(dir.join("cgroup.kill"), "1").is_ok() {
        return;
    }
    for _ in 0..100 {
        let pids = procs(dir);
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// The pids in the group at `dir` (empty if it is gone).
fn procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Whether any process is left in the group at `dir` (or below it).
fn populated(dir: &Path) -> bool {
    match std::fs::read_to_string(dir.join("cgroup.events")) {
        Ok(events) => events.lines().any(|l| l.trim() == "populated 1"),
        Err(_) => !procs(dir).is_empty(),
    }
}

/// Kills what is left in the group at `dir` and removes it (and its child groups).
fn destroy(dir: &Path) {
    if let Ok(children) = std::fs::read_dir(dir) {
        for child in children.flatten() {
            if child.file_type().is_ok_and(|t| t.is_dir()) {
                destroy(&child.path());
            }
        }
    }
    kill_all(dir);
    let until = Instant::now() + Duration::from_secs(1);
    while populated(dir) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    if let Err(e) = std::fs::remove_dir(dir)
        && e.kind() != ErrorKind::NotFound
    {
        tracing::warn!(cgroup = %dir.display(), error = %e, "cannot remove a job cgroup");
    }
}

/// The parent group of one worker's job groups. Dropping it kills and removes whatever
/// is left below it.
#[derive(Debug)]
pub struct WorkerGroup {
    dir: PathBuf,
}

impl WorkerGroup {
    /// Creates this worker's group under the process's own cgroup, after removing the
    /// groups of worker processes that no longer exist. Fails where the host has no
    /// writable cgroup2.
    pub fn create() -> io::Result<WorkerGroup> {
        let base = own_dir().ok_or_else(|| io::Error::new(ErrorKind::NotFound, "no cgroup2"))?;
        sweep_dead_workers(&base);
        let name = format!("velu-{}-{:08x}", std::process::id(), rand::random::<u32>());
        let dir = base.join(name);
        std::fs::create_dir(&dir)?;
        Ok(WorkerGroup { dir })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Creates the group of one job (`name` is the job id, a UUID) and opens its
    /// `cgroup.procs` for the job's first process to join.
    pub fn job(&self, name: &str) -> io::Result<JobGroup> {
        let dir = self.dir.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            // A group left by an earlier attempt of the same job: empty it, reuse it.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => kill_all(&dir),
            Err(e) => return Err(e),
        }
        let procs = OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"))?;
        Ok(JobGroup { dir, procs })
    }
}

impl Drop for WorkerGroup {
    fn drop(&mut self) {
        destroy(&self.dir);
    }
}

/// Removes `velu-<pid>-*` groups whose worker process is gone (it was killed, so its
/// jobs may still run).
fn sweep_dead_workers(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix("velu-"))
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        let Some(pid) = pid else { continue };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            tracing::warn!(cgroup = %entry.path().display(), "killing the jobs of a worker that died");
            destroy(&entry.path());
        }
    }
}

/// One job's group. [`JobGroup::end`] kills every process in it and removes it; dropping
/// it does the same without waiting.
#[derive(Debug)]
pub struct JobGroup {
    dir: PathBuf,
    procs: File,
}

impl JobGroup {
    /// The open `cgroup.procs` of the group, for the child to write `0` into before
    /// `exec` (see [`join`]).
    pub fn procs_fd(&self) -> RawFd {
        self.procs.as_raw_fd()
    }

    /// Kills every process of the job, waits (up to 2 s) until they are gone, and removes
    /// the group.
    pub async fn end(self) {
        kill_all(&self.dir);
        let until = Instant::now() + Duration::from_secs(2);
        while populated(&self.dir) && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(5)).await;
            kill_all(&self.dir);
        }
        // Drop removes the (now empty) group.
    }
}

impl Drop for JobGroup {
    fn drop(&mut self) {
        kill_all(&self.dir);
        if std::fs::remove_dir(&self.dir).is_err() {
            // Still emptying: the worker group's drop or the next start removes it.
            tracing::debug!(cgroup = %self.dir.display(), "job cgroup not yet empty");
        }
    }
}

/// Moves the calling process into the group whose `cgroup.procs` is open as `fd`. Runs in
/// the forked child before `exec`: a single `write(2)`, async-signal-safe.
pub fn join(fd: RawFd) -> io::Result<()> {
    // SAFETY: writes one byte from a static buffer to a file descriptor the parent keeps
    // open for the duration of the spawn.
    let n = unsafe { nix::libc::write(fd, b"0".as_ptr().cast(), 1) };
    if n == 1 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape(r"/sys/fs/cgroup\040x"), "/sys/fs/cgroup x");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape(r"\"), r"\");
    }
}
