//! `worker.tasks`: the catalog a remote worker runs from, so it needs no tasks file; and
//! the catalog a remote worker builds from it.

use std::time::Duration;

use super::served::{Served, served};
use super::wire::{RunnerName, WorkerTask, WorkerTasks};
use crate::principal::Principal;
use crate::tasks::{
    Backoff, CommandSpec, MAX_ATTEMPTS_LIMIT, MAX_TIMEOUT, NEVER_PASSED, Runner, TaskCatalog,
    TaskKind,
};
use crate::{CoreError, CoreResult, Velu};

/// The task kinds the caller may run, each with how it runs (for command kinds: the
/// program, its arguments and the environment allow-list, which the public `task list`
/// never shows). A platform key gets every kind; an org key only the kinds its org's plan
/// allows (it can claim nothing else), so an org running its own workers learns the
/// command lines of those kinds and no others. Scope: `jobs:work`.
pub async fn worker_tasks(velu: &Velu, who: &Principal) -> CoreResult<WorkerTasks> {
    let served = served(velu, who).await?;
    let allowed = |k: &TaskKind| match &served {
        Served::All => true,
        Served::Org { plan, .. } => k.min_plan <= *plan,
    };
    Ok(WorkerTasks {
        items: velu
            .tasks()
            .iter()
            .filter(|k| allowed(k))
            .map(worker_task)
            .collect(),
    })
}

fn worker_task(k: &TaskKind) -> WorkerTask {
    let (runner, command, env, secrets) = match &k.runner {
        Runner::Echo => (RunnerName::Echo, vec![], vec![], vec![]),
        Runner::Sleep => (RunnerName::Sleep, vec![], vec![], vec![]),
        Runner::Fail => (RunnerName::Fail, vec![], vec![], vec![]),
        Runner::Command(spec) => (
            RunnerName::Command,
            spec.argv.clone(),
            spec.env_allow.clone(),
            spec.secrets.clone(),
        ),
    };
    WorkerTask {
        name: k.name.clone(),
        min_plan: k.min_plan,
        runner,
        command,
        env,
        secrets,
        timeout_secs: k.timeout.as_secs(),
        max_attempts: k.max_attempts,
        backoff_secs: k.backoff.base.as_secs(),
        backoff_max_secs: k.backoff.max.as_secs(),
        description: k.description.clone(),
    }
}

/// The catalog a remote worker runs from, built from a server's `worker.tasks` answer.
/// Checked like a tasks file (a server is trusted no more than any other input): a
/// command kind needs a program, a secret variable is never passed, timeouts and attempts
/// stay in range.
pub fn catalog_from_tasks(tasks: &WorkerTasks) -> CoreResult<TaskCatalog> {
    let kinds = tasks
        .items
        .iter()
        .map(|t| {
            let bad =
                |why: &str| CoreError::Config(format!("server task kind `{}`: {why}", t.name));
            let runner = match t.runner {
                RunnerName::Echo => Runner::Echo,
                RunnerName::Sleep => Runner::Sleep,
                RunnerName::Fail => Runner::Fail,
                RunnerName::Command => {
                    if t.command.is_empty() {
                        return Err(bad("a command kind needs a program"));
                    }
                    if t.env.iter().any(|n| NEVER_PASSED.contains(&n.as_str())) {
                        return Err(bad("a secret variable is never passed to commands"));
                    }
                    crate::tasks::check_secret_names(&t.secrets, &t.env).map_err(|e| bad(&e))?;
                    Runner::Command(CommandSpec {
                        argv: t.command.clone(),
                        env_allow: t.env.clone(),
                        secrets: t.secrets.clone(),
                    })
                }
            };
            let timeout = Duration::from_secs(t.timeout_secs);
            if timeout.is_zero() || timeout > MAX_TIMEOUT + Duration::from_secs(3600) {
                return Err(bad("timeout out of range"));
            }
            if !(1..=MAX_ATTEMPTS_LIMIT).contains(&t.max_attempts) {
                return Err(bad("max_attempts out of range"));
            }
            Ok(TaskKind {
                name: t.name.clone(),
                min_plan: t.min_plan,
                runner,
                timeout,
                max_attempts: t.max_attempts,
                backoff: Backoff {
                    base: Duration::from_secs(t.backoff_secs),
                    max: Duration::from_secs(t.backoff_max_secs),
                },
                description: t.description.clone(),
            })
        })
        .collect::<CoreResult<Vec<_>>>()?;
    Ok(TaskCatalog::from_kinds(kinds))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::tasks::{TaskFileEntry, TasksFile};

    fn command(name: &str, env: Vec<String>) -> TaskFileEntry {
        TaskFileEntry {
            name: name.into(),
            min_plan: "superhero".into(),
            command: vec!["./run.sh".into(), "--fast".into()],
            timeout_secs: Some(90),
            max_attempts: Some(5),
            backoff_secs: Some(3),
            backoff_max_secs: Some(30),
            env,
            secrets: vec!["DEPLOY_TOKEN".into()],
            description: Some("runs".into()),
        }
    }

    #[test]
    fn a_remote_worker_rebuilds_the_servers_catalog_exactly() {
        let file = TasksFile {
            tasks: vec![command("deploy", vec!["LANG".into()])],
        };
        let catalog = TaskCatalog::with_file(file, Path::new("/srv/velu")).unwrap();
        let wire = WorkerTasks {
            items: catalog.iter().map(worker_task).collect(),
        };
        assert_eq!(catalog_from_tasks(&wire).unwrap(), catalog);
    }

    #[test]
    fn a_server_cannot_make_a_worker_pass_secrets_or_run_nothing() {
        let catalog = TaskCatalog::with_file(
            TasksFile {
                tasks: vec![command("deploy", vec![])],
            },
            Path::new("/srv"),
        )
        .unwrap();
        let good: Vec<WorkerTask> = catalog.iter().map(worker_task).collect();
        let deploy = good.iter().find(|t| t.name == "deploy").unwrap().clone();
        for bad in [
            WorkerTask {
                env: vec!["VELU_API_KEY".into()],
                ..deploy.clone()
            },
            WorkerTask {
                command: vec![],
                ..deploy.clone()
            },
            WorkerTask {
                timeout_secs: 0,
                ..deploy.clone()
            },
            WorkerTask {
                max_attempts: 0,
                ..deploy.clone()
            },
            WorkerTask {
                secrets: vec!["VELU_SECRETS_KEY".into()],
                ..deploy.clone()
            },
        ] {
            let err = catalog_from_tasks(&WorkerTasks { items: vec![bad] }).unwrap_err();
            assert_eq!(err.code(), "config");
        }
    }
}
