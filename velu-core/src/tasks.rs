//! The task catalog: which kinds of job exist, what plan each needs, how each runs.
//!
//! Built-in kinds are `echo`, `sleep` and `fail` (the standard kinds, from `hero`).
//! Operators add command kinds from a tasks file (YAML: each front end turns the text into
//! a document, `config::load_tasks_file` reads it as a [`TasksFile`]): an argv list run without a shell, a minimum plan, a timeout, a retry
//! policy and an environment allow-list.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::plans::{Plan, PlanKinds};
use crate::{CoreError, CoreResult};

/// Longest `sleep` a job may ask for, in seconds.
pub const MAX_SLEEP_SECS: u64 = 3600;
/// Largest `max_attempts` anyone may set.
pub const MAX_ATTEMPTS_LIMIT: u32 = 25;
/// Longest timeout a kind may declare.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Environment variables never passed to a command, even if a tasks file lists them (a
/// tasks file that lists one is refused; the worker skips them regardless).
pub const NEVER_PASSED: &[&str] = &[
    "VELU_DATABASE_URL",
    "VELU_API_KEY_PEPPER",
    "VELU_API_KEY_PEPPER_FILE",
    "VELU_API_KEY",
    "VELU_SECRETS_KEY",
    "VELU_SECRETS_KEY_FILE",
    "VELU_TEST_DATABASE_URL",
    "DATABASE_URL",
    "PGPASSWORD",
];

/// How a kind runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runner {
    /// Returns its payload.
    Echo,
    /// Sleeps `payload.seconds` (bounded), then returns `{slept: seconds}`.
    Sleep,
    /// Fails with `payload.message` (for testing retries).
    Fail,
    /// Runs an external command.
    Command(CommandSpec),
}

/// An operator-defined command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// Program and arguments; relative program paths resolve against the tasks file.
    pub argv: Vec<String>,
    /// Names of environment variables passed through from the worker.
    pub env_allow: Vec<String>,
    /// Names of the org secrets each job receives as environment variables
    /// (docs/secrets.md); a job whose org lacks one fails with `secret_unavailable`.
    pub secrets: Vec<String>,
}

/// Retry delays: `base * 2^(attempt-1)`, capped at `max`, with full jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// First delay.
    pub base: Duration,
    /// Largest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(2),
            max: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// The delay before retrying after failed attempt number `attempt` (1-based), with
    /// jitter drawn from `[delay/2, delay]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(20);
        let full = self.base.saturating_mul(1u32 << exp).min(self.max);
        let half = full / 2;
        let jitter = rand::random_range(0.0..=1.0);
        half + half.mul_f64(jitter)
    }
}

/// One kind of job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskKind {
    /// Name used in `task` fields.
    pub name: String,
    /// Lowest plan allowed to run it (never `base`).
    pub min_plan: Plan,
    /// How it runs.
    pub runner: Runner,
    /// Longest a single attempt may run.
    pub timeout: Duration,
    /// Attempts before the job fails for good (a submit may ask for fewer or more, up to
    /// [`MAX_ATTEMPTS_LIMIT`]).
    pub max_attempts: u32,
    /// Delays between attempts.
    pub backoff: Backoff,
    /// One line for `task list`.
    pub description: String,
}

/// The catalog: every kind, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskCatalog {
    kinds: BTreeMap<String, TaskKind>,
}

/// A task kind as `task list` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskInfo {
    /// Kind name.
    pub name: String,
    /// `builtin` or `command`.
    pub kind: String,
    /// Lowest plan that may run it.
    pub min_plan: Plan,
    /// Per-attempt timeout, in seconds.
    pub timeout_secs: u64,
    /// Default attempts.
    pub max_attempts: u32,
    /// What it does.
    pub description: String,
}

/// The catalog as `task list` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskList {
    /// Every kind, sorted by name.
    pub items: Vec<TaskInfo>,
}

/// The tasks file, as front ends deserialize it from YAML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TasksFile {
    /// Command kinds.
    pub tasks: Vec<TaskFileEntry>,
}

/// One command kind in the tasks file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskFileEntry {
    /// Kind name (`^[a-z][a-z0-9-]{0,63}$`).
    pub name: String,
    /// `hero` or `superhero`.
    pub min_plan: String,
    /// Program and arguments, no shell.
    pub command: Vec<String>,
    /// Per-attempt timeout in seconds (default 60).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// Attempts (default 3).
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// First retry delay in seconds (default 2).
    #[serde(default)]
    pub backoff_secs: Option<u64>,
    /// Largest retry delay in seconds (default 300).
    #[serde(default)]
    pub backoff_max_secs: Option<u64>,
    /// Environment variables passed through (default none).
    #[serde(default)]
    pub env: Vec<String>,
    /// Org secrets each job receives as environment variables (default none).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// One line for `task list`.
    #[serde(default)]
    pub description: Option<String>,
}

impl Default for TaskCatalog {
    fn default() -> Self {
        TaskCatalog::builtin()
    }
}

impl TaskCatalog {
    /// The built-in kinds only.
    pub fn builtin() -> TaskCatalog {
        let builtin = |name: &str, runner, max_attempts, description: &str| TaskKind {
            name: name.to_owned(),
            min_plan: Plan::Hero,
            runner,
            timeout: Duration::from_secs(if name == "sleep" {
                MAX_SLEEP_SECS + 60
            } else {
                60
            }),
            max_attempts,
            backoff: Backoff::default(),
            description: description.to_owned(),
        };
        let kinds = [
            builtin("echo", Runner::Echo, 3, "Returns its payload."),
            builtin(
                "sleep",
                Runner::Sleep,
                3,
                "Sleeps payload.seconds (at most 3600), then returns {slept}.",
            ),
            builtin(
                "fail",
                Runner::Fail,
                3,
                "Fails with payload.message; for testing retries.",
            ),
        ];
        TaskCatalog {
            kinds: kinds.into_iter().map(|k| (k.name.clone(), k)).collect(),
        }
    }

    /// The built-in kinds plus the command kinds of a tasks file found in `base_dir`.
    pub fn with_file(file: TasksFile, base_dir: &Path) -> CoreResult<TaskCatalog> {
        let mut catalog = TaskCatalog::builtin();
        for entry in file.tasks {
            let kind = command_kind(entry, base_dir)?;
            if catalog.kinds.contains_key(&kind.name) {
                return Err(CoreError::Config(format!(
                    "tasks file: kind `{}` is defined twice or shadows a built-in",
                    kind.name
                )));
            }
            catalog.kinds.insert(kind.name.clone(), kind);
        }
        Ok(catalog)
    }

    /// A catalog of exactly `kinds` (a remote worker's, from its server's
    /// `worker.tasks`); a later kind of the same name replaces an earlier one.
    pub fn from_kinds(kinds: impl IntoIterator<Item = TaskKind>) -> TaskCatalog {
        TaskCatalog {
            kinds: kinds.into_iter().map(|k| (k.name.clone(), k)).collect(),
        }
    }

    /// Looks up a kind.
    pub fn get(&self, name: &str) -> Option<&TaskKind> {
        self.kinds.get(name)
    }

    /// Names of the kinds `plan` may run, sorted.
    pub fn kinds_for(&self, plan: Plan) -> Vec<String> {
        self.kinds
            .values()
            .filter(|k| k.min_plan <= plan)
            .map(|k| k.name.clone())
            .collect()
    }

    /// Every kind, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &TaskKind> {
        self.kinds.values()
    }
}

impl PlanKinds for TaskCatalog {
    fn kinds_for(&self, plan: Plan) -> Vec<String> {
        TaskCatalog::kinds_for(self, plan)
    }
}

fn command_kind(e: TaskFileEntry, base_dir: &Path) -> CoreResult<TaskKind> {
    let bad = |why: String| CoreError::Config(format!("tasks file: kind `{}`: {why}", e.name));
    let name_ok = e.name.len() <= 64
        && e.name.starts_with(|c: char| c.is_ascii_lowercase())
        && e.name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !name_ok {
        return Err(bad("name must match ^[a-z][a-z0-9-]{0,63}$".into()));
    }
    let min_plan: Plan = e
        .min_plan
        .parse()
        .map_err(|_| bad(format!("unknown plan `{}`", e.min_plan)))?;
    if min_plan == Plan::Base {
        return Err(bad(
            "min_plan cannot be base: the base plan runs no tasks".into()
        ));
    }
    let Some(program) = e.command.first() else {
        return Err(bad("command must name a program".into()));
    };
    let timeout = Duration::from_secs(e.timeout_secs.unwrap_or(60));
    if timeout.is_zero() || timeout > MAX_TIMEOUT {
        return Err(bad("timeout_secs must be between 1 and 86400".into()));
    }
    let max_attempts = e.max_attempts.unwrap_or(3);
    if !(1..=MAX_ATTEMPTS_LIMIT).contains(&max_attempts) {
        return Err(bad(format!(
            "max_attempts must be between 1 and {MAX_ATTEMPTS_LIMIT}"
        )));
    }
    let backoff = Backoff {
        base: Duration::from_secs(e.backoff_secs.unwrap_or(2)),
        max: Duration::from_secs(e.backoff_max_secs.unwrap_or(300)),
    };
    if let Some(name) = e.env.iter().find(|n| NEVER_PASSED.contains(&n.as_str())) {
        return Err(bad(format!(
            "`{name}` is a secret and is never passed to commands"
        )));
    }
    check_secret_names(&e.secrets, &e.env).map_err(bad)?;
    let mut argv = e.command.clone();
    argv[0] = resolve_program(program, base_dir);
    Ok(TaskKind {
        // Never the command line: the catalog is public (`GET /v1/tasks`), and a command's
        // program, arguments and environment are the operator's (docs/security.md).
        description: e
            .description
            .clone()
            .unwrap_or_else(|| "An operator-defined command.".to_owned()),
        name: e.name,
        min_plan,
        runner: Runner::Command(CommandSpec {
            argv,
            env_allow: e.env,
            secrets: e.secrets,
        }),
        timeout,
        max_attempts,
        backoff,
    })
}

/// Checks the secret names a kind lists: valid names (`crate::secrets::check_name`), at
/// most `MAX_SECRETS_PER_TASK`, no duplicates, none also passed through from the worker.
pub fn check_secret_names(names: &[String], env: &[String]) -> Result<(), String> {
    use crate::secrets::{MAX_SECRETS_PER_TASK, check_name};
    if names.len() > MAX_SECRETS_PER_TASK {
        return Err(format!("at most {MAX_SECRETS_PER_TASK} secrets"));
    }
    for (i, name) in names.iter().enumerate() {
        check_name(name).map_err(|e| format!("secret `{name}`: {e}"))?;
        if names[..i].contains(name) {
            return Err(format!("secret `{name}` is listed twice"));
        }
        if env.contains(name) {
            return Err(format!(
                "`{name}` is both a secret and a passed-through variable"
            ));
        }
    }
    Ok(())
}

/// `./x` and `dir/x` resolve against the tasks file's directory; bare names use `PATH`.
fn resolve_program(program: &str, base_dir: &Path) -> String {
    if program.contains('/') && !Path::new(program).is_absolute() {
        let p: PathBuf = base_dir.join(program);
        p.to_string_lossy().into_owned()
    } else {
        program.to_owned()
    }
}

/// Lists the catalog. Public.
pub fn list_tasks(tasks: &TaskCatalog) -> TaskList {
    TaskList {
        items: tasks
            .iter()
            .map(|k| TaskInfo {
                name: k.name.clone(),
                kind: match k.runner {
                    Runner::Command(_) => "command",
                    _ => "builtin",
                }
                .to_owned(),
                min_plan: k.min_plan,
                timeout_secs: k.timeout.as_secs(),
                max_attempts: k.max_attempts,
                description: k.description.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, plan: &str) -> TaskFileEntry {
        TaskFileEntry {
            name: name.into(),
            min_plan: plan.into(),
            command: vec!["./bin/run.sh".into(), "--flag".into()],
            timeout_secs: None,
            max_attempts: None,
            backoff_secs: None,
            backoff_max_secs: None,
            env: vec![],
            secrets: vec![],
            description: None,
        }
    }

    #[test]
    fn secret_names_are_checked() {
        let mut e = entry("deploy", "hero");
        e.secrets = vec!["GITHUB_TOKEN".into()];
        assert!(
            TaskCatalog::with_file(
                TasksFile {
                    tasks: vec![e.clone()]
                },
                Path::new("/")
            )
            .is_ok()
        );
        for (secrets, env) in [
            (vec!["lower".to_owned()], vec![]),
            (vec!["A".to_owned(), "A".to_owned()], vec![]),
            (vec!["VELU_SECRETS_KEY".to_owned()], vec![]),
            (vec!["TOKEN".to_owned()], vec!["TOKEN".to_owned()]),
        ] {
            let mut bad = e.clone();
            bad.secrets = secrets;
            bad.env = env;
            let err =
                TaskCatalog::with_file(TasksFile { tasks: vec![bad] }, Path::new("/")).unwrap_err();
            assert_eq!(err.code(), "config");
        }
    }

    #[test]
    fn plans_gate_kinds() {
        let file = TasksFile {
            tasks: vec![entry("plan", "hero"), entry("execute", "superhero")],
        };
        let c = TaskCatalog::with_file(file, Path::new("/opt/velu")).unwrap();
        assert!(c.kinds_for(Plan::Base).is_empty());
        assert_eq!(
            c.kinds_for(Plan::Hero),
            vec!["echo", "fail", "plan", "sleep"]
        );
        assert_eq!(c.kinds_for(Plan::Superhero).len(), 5);
        let Runner::Command(spec) = &c.get("plan").unwrap().runner else {
            panic!("command kind")
        };
        assert_eq!(spec.argv, vec!["/opt/velu/./bin/run.sh", "--flag"]);
    }

    #[test]
    fn bad_files_are_refused() {
        let dup = TasksFile {
            tasks: vec![entry("echo", "hero")],
        };
        assert!(TaskCatalog::with_file(dup, Path::new(".")).is_err());
        let base = TasksFile {
            tasks: vec![entry("x", "base")],
        };
        assert!(TaskCatalog::with_file(base, Path::new(".")).is_err());
        let mut empty = entry("y", "hero");
        empty.command.clear();
        assert!(TaskCatalog::with_file(TasksFile { tasks: vec![empty] }, Path::new(".")).is_err());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let b = Backoff {
            base: Duration::from_secs(2),
            max: Duration::from_secs(10),
        };
        for _ in 0..50 {
            let d1 = b.delay(1);
            assert!(d1 >= Duration::from_secs(1) && d1 <= Duration::from_secs(2));
            let d3 = b.delay(3);
            assert!(d3 >= Duration::from_secs(4) && d3 <= Duration::from_secs(8));
            assert!(b.delay(30) <= Duration::from_secs(10));
        }
    }
}
