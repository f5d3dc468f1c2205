//! Global flags and what they resolve to: settings, the task catalog, an open [`Velu`].

use clap::Args;
use serde::Serialize;
use velu_core::db::SchemaPolicy;
use velu_core::settings::Settings;
use velu_core::tasks::TaskCatalog;
use velu_core::{CoreResult, OpenOptions, Velu};
use velu_http::flags::ConfigArgs;

use crate::output::{Format, render};

/// Flags every command accepts.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Data directory, database, tasks file, pepper file (shared with the `velu-http`
    /// binary).
    #[command(flatten)]
    pub config: ConfigArgs,

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
        self.config.sources().settings()
    }

    /// The task catalog: built-ins plus the tasks file, if any.
    pub fn tasks(&self) -> CoreResult<TaskCatalog> {
        self.config.sources().tasks()
    }

    /// Opens Velu for a short command (PostgreSQL schema must be current).
    pub async fn open(&self) -> CoreResult<Velu> {
        self.open_with(OpenOptions::default()).await
    }

    /// Opens Velu with explicit options.
    pub async fn open_with(&self, opts: OpenOptions) -> CoreResult<Velu> {
        self.config.sources().open(opts).await
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
