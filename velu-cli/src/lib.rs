//! velu-cli: the operator's tool. Thin by rule: each command calls one velu-core operation
//! as the operator (`actor_type: cli`, the OS user) and prints its document, YAML by
//! default, as the only thing on stdout. Errors go to stderr as `error[<code>]: <detail>`
//! with the exit code of [`exit_codes::EXIT_CODES`]; logs go to stderr too.

pub mod commands;
pub mod context;
pub mod exit_codes;
pub mod output;
pub mod reference;
pub mod values;

use std::ffi::OsString;
use std::io::Write;

use clap::{Parser, Subcommand};
use velu_core::CoreResult;
use velu_http::ServeOptions;

use commands::audit::AuditCommand;
use commands::completions::CompletionsArgs;
use commands::docs::DocsCommand;
use commands::job::JobCommand;
use commands::key::KeyCommand;
use commands::migrate::MigrateCommand;
use commands::org::OrgCommand;
use commands::plan::PlanCommand;
use commands::task::TaskCommand;
use commands::whoami::WhoamiArgs;
use commands::worker::WorkerArgs;
use context::Global;

/// Velu: the control plane of a multi-tenant job platform.
///
/// Prints one YAML document on stdout (-o json for JSON); errors on stderr as
/// `error[<code>]: <detail>` with a documented exit code (docs/errors.md).
#[derive(Debug, Parser)]
#[command(name = "velu-cli", version, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Every command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Organizations: create, bootstrap, list, show, set-plan.
    #[command(subcommand)]
    Org(OrgCommand),
    /// API keys: create, list, show, revoke, rotate, import.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Plan tiers and their limits.
    #[command(subcommand)]
    Plan(PlanCommand),
    /// Jobs: submit, list, show, cancel, retry, stats.
    #[command(subcommand)]
    Job(JobCommand),
    /// The task catalog.
    #[command(subcommand)]
    Task(TaskCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Describe the operator, or the API key in VELU_API_KEY.
    Whoami(WhoamiArgs),
    /// Database schema migrations.
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// Serve the HTTP API (docs at /docs).
    Serve(ServeOptions),
    /// Run jobs from the queue.
    Worker(WorkerArgs),
    /// Generated references (OpenAPI spec, CLI reference).
    #[command(subcommand)]
    Docs(DocsCommand),
    /// Print the shell completion script, e.g. `velu-cli completions bash >
    /// /etc/bash_completion.d/velu-cli`.
    Completions(CompletionsArgs),
}

impl Command {
    async fn run(self, g: &Global) -> CoreResult<String> {
        match self {
            Command::Org(c) => c.run(g).await,
            Command::Key(c) => c.run(g).await,
            Command::Plan(c) => c.run(g).await,
            Command::Job(c) => c.run(g).await,
            Command::Task(c) => c.run(g).await,
            Command::Audit(c) => c.run(g).await,
            Command::Whoami(c) => c.run(g).await,
            Command::Migrate(c) => c.run(g).await,
            Command::Serve(args) => commands::serve::run(args, g).await,
            Command::Worker(c) => c.run(g).await,
            Command::Docs(c) => c.run(),
            Command::Completions(c) => c.run(),
        }
    }
}

/// Like [`run`], and first sends logs to stderr: `info` for the long-running `serve` and
/// `worker`, `warn` for everything else (override with `VELU_LOG`).
pub async fn run_main<I, T>(
    args: I,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_inner(args, out, err, true).await
}

/// Runs the CLI with `args` (including the program name), writing the document to `out`
/// and errors to `err`. Returns the exit status. Does not touch logging.
pub async fn run<I, T>(args: I, out: &mut (dyn Write + Send), err: &mut (dyn Write + Send)) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_inner(args, out, err, false).await
}

fn init_logging(command: &Command) {
    velu_http::logs::init(match command {
        Command::Serve(_) | Command::Worker(_) => "info",
        _ => "warn",
    });
}

async fn run_inner<I, T>(
    args: I,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
    logs: bool,
) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors and go to stdout.
            let text = e.render().to_string();
            let sink: &mut (dyn Write + Send) = if e.use_stderr() { err } else { out };
            let _ = output::write_quietly(sink, &text);
            return if e.use_stderr() { exit_codes::USAGE } else { 0 };
        }
    };
    if logs {
        init_logging(&cli.command);
    }
    // Boxed: the command futures are large; keep them off the caller's stack.
    match Box::pin(cli.command.run(&cli.global)).await {
        Ok(doc) => match output::write_quietly(out, &doc) {
            Ok(()) => match cli.global.take_after_output() {
                None => 0,
                Some(e) => {
                    let _ = output::write_quietly(err, &output::error_line(&e));
                    exit_codes::exit_code(e.code())
                }
            },
            Err(e) => {
                let _ = writeln!(err, "error[internal]: cannot write output: {e}");
                exit_codes::exit_code("internal")
            }
        },
        Err(e) => {
            let _ = output::write_quietly(err, &output::error_line(&e));
            exit_codes::exit_code(e.code())
        }
    }
}
