//! Global flags and what they resolve to: settings, the task catalog, an open [`Velu`].

use clap::Args;
use serde::Serialize;
use velu_core::db::SchemaPolicy;
use velu_core::settings::Settings;
use velu_core::tasks::TaskCatalog;
use velu_core::{CoreResult, OpenOptions, Velu};
use velu_http::flags::ConfigArgs;

use crate::output::{Format, Selection, render_selected};

/// Flags every command accepts (listed after the command's own, under their own
/// heading).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
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

    /// Use this context of the config file instead of its current one (see `velu-cli
    /// context`); flags and environment variables still win over it.
    #[arg(long, env = "VELU_CONTEXT", global = true, value_name = "NAME")]
    pub context: Option<String>,

    /// The config file of contexts [default: $XDG_CONFIG_HOME/velu/config.yaml].
    #[arg(
        long = "config",
        env = "VELU_CONFIG",
        global = true,
        value_name = "FILE"
    )]
    pub config_file: Option<std::path::PathBuf>,

    /// Remote mode: run the command through its HTTP twin on this Velu server, as the key
    /// in VELU_API_KEY (or --key-file), and print the same document. No database needed.
    #[arg(long, env = "VELU_SERVER", global = true, value_name = "URL")]
    pub server: Option<String>,

    /// Read the API key of remote mode from this file (first line) instead of VELU_API_KEY.
    #[arg(long, env = "VELU_API_KEY_FILE", global = true, value_name = "FILE")]
    pub key_file: Option<std::path::PathBuf>,

    /// Remote mode: also trust the certificate authorities of this PEM file (a private CA
    /// that signed the server's certificate), besides the bundled web roots.
    #[arg(long, env = "VELU_CA_FILE", global = true, value_name = "FILE")]
    pub ca_file: Option<std::path::PathBuf>,

    /// Remote mode: allow a plain http:// server on another machine, which sends the API
    /// key in clear (by default plain http reaches only this machine: localhost, loopback).
    #[arg(long, env = "VELU_ALLOW_HTTP", global = true)]
    pub allow_http: bool,

    /// Print the command's HTTP request as a curl command line (the key as
    /// `$VELU_API_KEY`, the server as `--server` or `$VELU_SERVER`) instead of running it.
    #[arg(long, global = true)]
    pub print_http: bool,

    /// Print only ids, one per line (of each item of a list, or of what was made).
    #[arg(short = 'q', long, global = true, conflicts_with = "field")]
    pub quiet: bool,

    /// Print only the value at this dotted path of the document, e.g. `job.status`,
    /// `items.0.id`, `keys.admin.token` (a plain value prints bare).
    #[arg(long, global = true, value_name = "PATH")]
    pub field: Option<String>,

    /// What to report after the document is printed: a step that failed after a commit
    /// (e.g. writing `--env-file`), or how a waited-for job ended, so the document still
    /// reaches stdout. Holds the exit status and the stderr line.
    #[arg(skip)]
    pub after_output: std::sync::Arc<std::sync::Mutex<Option<(u8, String)>>>,
}

impl Global {
    /// Records an error to report (with its exit code) once the document is printed.
    pub fn fail_after_output(&self, e: velu_core::CoreError) {
        let status = crate::exit_codes::exit_code(e.code());
        self.end_after_output(status, crate::output::error_line(&e));
    }

    /// Records an exit status (and a stderr line, if not empty) for after the document.
    pub fn end_after_output(&self, status: u8, line: String) {
        *self.after_output.lock().unwrap_or_else(|p| p.into_inner()) = Some((status, line));
    }

    /// What [`Global::fail_after_output`] or [`Global::end_after_output`] recorded.
    pub fn take_after_output(&self) -> Option<(u8, String)> {
        self.after_output
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// The server and key of remote mode: `--server`, and the key from `--key-file` or
    /// `VELU_API_KEY` (never from the command line, where the process list shows it).
    pub fn remote(&self) -> CoreResult<crate::twin::Remote> {
        let server = self.server.as_deref().unwrap_or_default();
        crate::twin::Remote::new(server, self.remote_key()?, &self.trust())
    }

    /// How remote mode trusts its server (`--ca-file`, `--allow-http`).
    pub fn trust(&self) -> crate::remote::Trust {
        crate::remote::Trust {
            ca_file: self.ca_file.clone(),
            allow_http: self.allow_http,
        }
    }

    /// The API key of remote mode: the first line of `--key-file`, else `VELU_API_KEY`
    /// (empty when neither is set).
    pub fn remote_key(&self) -> CoreResult<String> {
        Ok(match &self.key_file {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| {
                    velu_core::CoreError::Config(format!("key file {}: {e}", path.display()))
                })?
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
            None => std::env::var("VELU_API_KEY").unwrap_or_default(),
        })
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

    /// Opens Velu for a command that never reads the task catalog (orgs, keys, audit,
    /// reading and cancelling jobs, ...): the tasks file is not read, so a relative
    /// `--tasks-file` from another directory fails only the commands that need it.
    pub async fn open_without_tasks(&self) -> CoreResult<Velu> {
        let mut sources = self.config.sources();
        sources.tasks_file = None;
        sources.open(OpenOptions::default()).await
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
        let selection = Selection {
            quiet: self.quiet,
            field: self.field.clone(),
        };
        render_selected(doc, self.output, &selection)
    }
}
