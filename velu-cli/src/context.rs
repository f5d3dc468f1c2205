//! Global flags and what they resolve to: settings, the task catalog, an open [`Velu`].

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;
use velu_core::db::SchemaPolicy;
use velu_core::settings::Settings;
use velu_core::tasks::TaskCatalog;
use velu_core::{CoreResult, OpenOptions, Velu};
use velu_http::config::load_tasks_file;

use crate::output::{Format, render};

/// Flags every command accepts.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Data directory (SQLite file, generated pepper, job workspaces) [default: the
    /// platform's user data directory, e.g. ~/.local/share/velu].
    #[arg(long, env = "VELU_HOME", global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB [default: velu.db in the
    /// data directory].
    #[arg(
        long,
        env = "VELU_DATABASE_URL",
        global = true,
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,

    /// YAML file of operator-defined command task kinds.
    #[arg(long, env = "VELU_TASKS_FILE", global = true, value_name = "FILE")]
    pub tasks_file: Option<PathBuf>,

    /// File holding the API key pepper (when VELU_API_KEY_PEPPER is not set).
    #[arg(
        long,
        env = "VELU_API_KEY_PEPPER_FILE",
        global = true,
        value_name = "FILE"
    )]
    pub pepper_file: Option<PathBuf>,

    /// Format of the document printed on stdout.
    #[arg(
        short = 'o',
        long,
        value_enum,
        default_value_t,
        global = true,
        env = "VELU_OUTPUT"
    )]
    pub output: Format,

    /// An error to report after the document is printed: a step that failed after a
    /// commit (e.g. writing `--env-file`), so the document still reaches stdout.
    #[arg(skip)]
    pub after_output: std::sync::Arc<std::sync::Mutex<Option<velu_core::CoreError>>>,
}

impl Global {
    /// Records an error to report (with its exit code) once the document is printed.
    pub fn fail_after_output(&self, e: velu_core::CoreError) {
        *self.after_output.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    }

    /// The error recorded by [`Global::fail_after_output`], if any.
    pub fn take_after_output(&self) -> Option<velu_core::CoreError> {
        self.after_output
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Settings from the flags plus the pepper: `VELU_API_KEY_PEPPER` (environment only: a
    /// flag would show it in the process list) or `--pepper-file`.
    pub fn settings(&self) -> CoreResult<Settings> {
        Settings::new(self.home.clone(), self.database_url.clone())?.with_pepper_from(
            std::env::var("VELU_API_KEY_PEPPER").ok(),
            self.pepper_file.as_deref(),
        )
    }

    /// The task catalog: built-ins plus the tasks file, if any.
    pub fn tasks(&self) -> CoreResult<TaskCatalog> {
        match &self.tasks_file {
            Some(path) => load_tasks_file(path),
            None => Ok(TaskCatalog::builtin()),
        }
    }

    /// Opens Velu for a short command (PostgreSQL schema must be current).
    pub async fn open(&self) -> CoreResult<Velu> {
        self.open_with(OpenOptions::default()).await
    }

    /// Opens Velu with explicit options.
    pub async fn open_with(&self, opts: OpenOptions) -> CoreResult<Velu> {
        Velu::open(self.settings()?, self.tasks()?, opts).await
    }

    /// Opens Velu without looking at the schema (for `migrate`).
    pub async fn open_unchecked(&self) -> CoreResult<Velu> {
        self.open_with(OpenOptions {
            schema: Some(SchemaPolicy::Ignore),
            ..OpenOptions::default()
        })
        .await
    }

    /// Renders a document in the chosen format.
    pub fn render<T: Serialize>(&self, doc: &T) -> CoreResult<String> {
        render(doc, self.output)
    }
}
