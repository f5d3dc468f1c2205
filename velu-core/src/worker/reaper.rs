//! The fallback where no writable cgroup2 exists: the worker is a child subreaper
//! (`PR_SET_CHILD_SUBREAPER`), so a job's orphans (a `setsid` child whose parent exited, a
//! double-forked daemon) are re-parented to the worker instead of to init.
//!
//! When a job ends, the worker kills, repeatedly until none is left:
//! * every descendant of the job's first process (while it lives), and
//! * every orphan re-parented to the worker whose environment carries the job's tag
//!   (`VELU_JOB_ID=<id>`, set for every command), with all its descendants;
//!
//! and reaps the orphans it killed. Limits: a process that re-executes itself with a
//! scrubbed environment after its parent exited cannot be attributed to its job and is
//! left running; an orphan that exits on its own after its job ended stays a zombie
//! child of the worker (one pid, nothing runs); each pass over `/proc` can miss a process
//! forked during it (passes repeat until none is found, so only a fork storm escapes).

use std::collections::{HashMap, HashSet};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

/// Makes this process a child subreaper; false if the kernel refused.
pub fn enable() -> bool {
    nix::sys::prctl::set_child_subreaper(true).is_ok()
}

/// First processes of running jobs (never mistaken for orphans; tokio reaps them).
static LEADERS: LazyLock<Mutex<HashSet<i32>>> = LazyLock::new(|| Mutex::new(HashSet::new()));

fn leaders() -> std::sync::MutexGuard<'static, HashSet<i32>> {
    LEADERS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Notes a job's first process (so it is not reaped from under tokio).
pub fn add_leader(pid: i32) {
    leaders().insert(pid);
}

/// Forgets a job's first process once it has been waited for.
pub fn remove_leader(pid: i32) {
    leaders().remove(&pid);
}

/// One process from `/proc/<pid>/stat`.
struct Proc {
    ppid: i32,
    zombie: bool,
}

fn processes() -> HashMap<i32, Proc> {
    let mut all = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return all;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
        let mut rest = stat
            .rsplit_once(") ")
            .map(|(_, r)| r)
            .unwrap_or("")
            .split(' ');
        let zombie = rest.next() == Some("Z");
        if let Some(ppid) = rest.next().and_then(|p| p.parse().ok()) {
            all.insert(pid, Proc { ppid, zombie });
        }
    }
    all
}

fn tagged(pid: i32, tag: &[u8]) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == tag))
}

/// Every process of the job: descendants of `leader`, and orphans tagged with `job_id`
/// and their descendants. The second set is this process's own children.
fn members(all: &HashMap<i32, Proc>, leader: Option<i32>, job_id: &str) -> (Vec<i32>, Vec<i32>) {
    let me = std::process::id() as i32;
    let tag = format!("VELU_JOB_ID={job_id}").into_bytes();
    let running = leaders().clone();
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for (pid, p) in all {
        children.entry(p.ppid).or_default().push(*pid);
    }
    let orphans: Vec<i32> = children
        .get(&me)
        .into_iter()
        .flatten()
        .copied()
        .filter(|pid| !running.contains(pid) && !all[pid].zombie && tagged(*pid, &tag))
        .collect();
    let mut found = Vec::new();
    let mut stack: Vec<i32> = leader
        .into_iter()
        .flat_map(|l| children.get(&l).cloned().unwrap_or_default())
        .chain(orphans.iter().copied())
        .collect();
    while let Some(pid) = stack.pop() {
        found.push(pid);
        stack.extend(children.get(&pid).into_iter().flatten());
    }
    (found, orphans)
}

/// Kills every process of the job (see the module docs) and reaps its orphans. `leader`
/// is the job's first process while it has not been waited for.
pub async fn kill_job(leader: Option<i32>, job_id: &str) {
    let mut killed_orphans = HashSet::new();
    let mut rounds = 0;
    loop {
        let all = processes();
        let (found, orphans) = members(&all, leader, job_id);
        let live: Vec<i32> = found.iter().copied().filter(|p| !all[p].zombie).collect();
        for pid in &live {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        killed_orphans.extend(orphans);
        rounds += 1;
        if live.is_empty() || rounds == 50 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if rounds == 50 {
        tracing::warn!(job = %job_id, "some processes of the job would not die");
    }
    // The orphans are this process's children now: reap them (they died above).
    for _ in 0..20 {
        killed_orphans.retain(|pid| {
            matches!(
                waitpid(Pid::from_raw(*pid), Some(WaitPidFlag::WNOHANG)),
                Ok(nix::sys::wait::WaitStatus::StillAlive)
            )
        });
        if killed_orphans.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a cgroup: a `setsid` orphan tagged with the job's id is killed and reaped; an
    /// untagged one is left alone.
    #[tokio::test]
    async fn tagged_orphans_are_killed_and_reaped() {
        assert!(enable(), "the kernel refused PR_SET_CHILD_SUBREAPER");
        let dir = tempfile::tempdir().expect("temp dir");
        let spawn = |job: &str, file: &str| {
            let script = format!(
                "setsid sh -c 'echo $$ > {file}; exec sleep 300' </dev/null >/dev/null 2>&1 &"
            );
            let status = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(script)
                .current_dir(dir.path())
                .env("VELU_JOB_ID", job)
                .status()
                .expect("sh runs");
            assert!(status.success());
        };
        spawn("job-a", "a.pid");
        spawn("job-b", "b.pid");
        let pid = |file: &str| -> i32 {
            for _ in 0..200 {
                if let Some(p) = std::fs::read_to_string(dir.path().join(file))
                    .ok()
                    .and_then(|t| t.trim().parse().ok())
                {
                    return p;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            panic!("{file} never written");
        };
        let (a, b) = (pid("a.pid"), pid("b.pid"));
        kill_job(None, "job-a").await;
        assert!(
            !std::path::Path::new(&format!("/proc/{a}")).exists(),
            "the tagged orphan was killed and reaped"
        );
        assert!(
            std::path::Path::new(&format!("/proc/{b}")).exists(),
            "another job's orphan lives"
        );
        kill_job(None, "job-b").await;
        assert!(!std::path::Path::new(&format!("/proc/{b}")).exists());
    }
}
