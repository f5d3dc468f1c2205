//! Configuration loading: from what a front end parsed (flags with `VELU_*` fallbacks) to
//! [`Settings`], the [`TaskCatalog`] and an open [`Velu`]. Every front end (the CLI, the
//! `velu-http` binary, the test harness) resolves its configuration here, so they cannot
//! disagree about defaults, the pepper's sources or how a tasks file is read.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::settings::{Settings, redact_url};
use crate::tasks::{TaskCatalog, TasksFile};
use crate::{CoreError, CoreResult, OpenOptions, Velu};

/// The environment variable holding the API key pepper. Read from the environment only: a
/// flag would show the secret in the process list.
pub const PEPPER_ENV: &str = "VELU_API_KEY_PEPPER";

/// Turns the text of a tasks file into a document. The file is YAML, and velu-core knows
/// nothing of YAML: each front end passes its parser (JSON, a subset of YAML, when none is
/// given).
pub type TasksParser = fn(&str) -> Result<serde_json::Value, String>;

/// Parses a tasks file written as JSON (the default [`TasksParser`]).
pub fn json_tasks(text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// Where a process's configuration comes from, as its front end parsed it. `None` means
/// "not given": velu-core fills in the default.
#[derive(Clone)]
pub struct ConfigSources {
    /// Data directory [default: the platform's user data directory].
    pub home: Option<PathBuf>,
    /// Database URL [default: the SQLite file in the data directory].
    pub database_url: Option<String>,
    /// YAML file of operator-defined command task kinds [default: built-ins only].
    pub tasks_file: Option<PathBuf>,
    /// File holding the pepper, read when [`PEPPER_ENV`] is not set.
    pub pepper_file: Option<PathBuf>,
    /// File holding the secrets key, read when `VELU_SECRETS_KEY` is not set
    /// (`crate::secrets`).
    pub secrets_key_file: Option<PathBuf>,
    /// Connections per database pool [default: `db::DEFAULT_POOL_SIZE`].
    pub db_pool_size: Option<u32>,
    /// How the tasks file's text becomes a document.
    pub parse_tasks: TasksParser,
}

impl Default for ConfigSources {
    fn default() -> Self {
        ConfigSources {
            home: None,
            database_url: None,
            tasks_file: None,
            pepper_file: None,
            secrets_key_file: None,
            db_pool_size: None,
            parse_tasks: json_tasks,
        }
    }
}

impl ConfigSources {
    /// Settings from these sources plus the pepper: [`PEPPER_ENV`], else the pepper file.
    pub fn settings(&self) -> CoreResult<Settings> {
        Settings::new(self.home.clone(), self.database_url.clone())?
            .with_pepper_from(std::env::var(PEPPER_ENV).ok(), self.pepper_file.as_deref())?
            .with_secrets_key(
                std::env::var(crate::secrets::KEY_ENV).ok(),
                self.secrets_key_file.clone(),
            )
            .with_billing_secret(crate::billing::BillingSecret::from_env()?)
            .with_db_pool_size(self.db_pool_size)
    }

    /// The task catalog: built-ins plus the tasks file, if any.
    pub fn tasks(&self) -> CoreResult<TaskCatalog> {
        match &self.tasks_file {
            Some(path) => load_tasks_file(path, self.parse_tasks),
            None => Ok(TaskCatalog::builtin()),
        }
    }

    /// Opens Velu with these settings and this catalog.
    pub async fn open(&self, opts: OpenOptions) -> CoreResult<Velu> {
        Velu::open(self.settings()?, self.tasks()?, opts).await
    }
}

impl fmt::Debug for ConfigSources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigSources")
            .field("home", &self.home)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field("tasks_file", &self.tasks_file)
            .field("pepper_file", &self.pepper_file)
            .field("secrets_key_file", &self.secrets_key_file)
            .field("db_pool_size", &self.db_pool_size)
            .finish()
    }
}

/// Reads a tasks file into a catalog with `parse`; relative programs resolve against its
/// folder.
pub fn load_tasks_file(path: &Path, parse: TasksParser) -> CoreResult<TaskCatalog> {
    let bad =
        |e: &dyn fmt::Display| CoreError::Config(format!("tasks file {}: {e}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(&e))?;
    let doc = parse(&text).map_err(|e| bad(&e))?;
    let file: TasksFile = serde_json::from_value(doc).map_err(|e| bad(&e))?;
    let dir = path
        .canonicalize()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    TaskCatalog::with_file(file, &dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_database_password() {
        let sources = ConfigSources {
            database_url: Some("postgres://u:pw@h/d".into()),
            ..ConfigSources::default()
        };
        let text = format!("{sources:?}");
        assert!(!text.contains("pw@"), "{text}");
    }

    #[test]
    fn no_tasks_file_means_the_builtins() {
        let tasks = ConfigSources::default().tasks().unwrap();
        assert!(tasks.get("echo").is_some());
    }

    #[test]
    fn a_missing_tasks_file_is_a_config_error() {
        let e = load_tasks_file(Path::new("/nonexistent/tasks.yaml"), json_tasks).unwrap_err();
        assert_eq!(e.code(), "config");
    }
}
