//! velu-cli: the operator's tool. Thin by rule: each command calls one velu-core operation
//! as the operator (`actor_type: cli`, the OS user) and prints its document, YAML by
//! default, as the only thing on stdout. Errors go to stderr as `error[<code>]: <detail>`
//! with the exit code of [`exit_codes::EXIT_CODES`]; logs go to stderr too.

pub mod commands;
pub mod context;
pub mod contexts;
pub mod examples;
pub mod exit_codes;
pub mod output;
pub mod reference;
pub mod remote;
pub mod twin;
pub mod values;

use std::ffi::OsString;
use std::io::Write;

use clap::{Parser, Subcommand};
use velu_core::CoreResult;
use velu_http::ServeOptions;

use commands::audit::AuditCommand;
use commands::billing::BillingCommand;
use commands::completions::CompletionsArgs;
use commands::context::ContextCommand;
use commands::docs::DocsCommand;
use commands::fleet::WorkerCommand;
use commands::job::JobCommand;
use commands::key::KeyCommand;
use commands::migrate::MigrateCommand;
use commands::org::OrgCommand;
use commands::plan::PlanCommand;
use commands::queue::QueueCommand;
use commands::retention::RetentionCommand;
use commands::schedule::ScheduleCommand;
use commands::secret::SecretCommand;
use commands::task::TaskCommand;
use commands::usage::UsageArgs;
use commands::whoami::WhoamiArgs;
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
    /// Schedules, per-org periodic jobs: create, list, show, pause, resume, delete.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Org secrets for jobs: set (value from stdin or a file), list, delete, rekey.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// The task catalog; pause or resume a task kind in every org.
    #[command(subcommand)]
    Task(TaskCommand),
    /// An org's queue: pause, resume, show.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// History retention per plan: show what is due, run the removal.
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Usage per org and UTC day (jobs, run seconds, API requests), e.g. `-o csv`.
    Usage(UsageArgs),
    /// The billing contract: sign and verify plan-change events (local helpers).
    #[command(subcommand)]
    Billing(BillingCommand),
    /// Describe the operator, or the API key in VELU_API_KEY.
    Whoami(WhoamiArgs),
    /// Database schema migrations.
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// Serve the HTTP API (docs at /docs).
    Serve(ServeOptions),
    /// Run jobs from the queue (the default), or list the fleet (`worker list`).
    Worker(WorkerCommand),
    /// Generated references (OpenAPI spec, CLI reference).
    #[command(subcommand)]
    Docs(DocsCommand),
    /// Print the shell completion script, e.g. `velu-cli completions bash >
    /// /etc/bash_completion.d/velu-cli`.
    Completions(CompletionsArgs),
    /// Named contexts of the config file: where commands go, and the default org.
    #[command(subcommand)]
    Context(ContextCommand),
}

/// Why a command printed no document: its own error, or the server's (remote mode).
enum Failure {
    Core(velu_core::CoreError),
    Remote { code: String, detail: String },
}

impl From<velu_core::CoreError> for Failure {
    fn from(e: velu_core::CoreError) -> Self {
        Failure::Core(e)
    }
}

impl From<twin::RemoteFailure> for Failure {
    fn from(e: twin::RemoteFailure) -> Self {
        match e {
            twin::RemoteFailure::Problem { code, detail } => Failure::Remote { code, detail },
            twin::RemoteFailure::Core(e) => Failure::Core(e),
        }
    }
}

impl Command {
    /// The HTTP twin of a parity command; an error for a command only local mode can run;
    /// `None` for a command that needs no database and runs the same either way (docs,
    /// completions) or handles `--server` itself (`worker`).
    fn http_twin(&self) -> Option<CoreResult<twin::HttpCall>> {
        use commands::local_only;
        Some(match self {
            Command::Org(c) => c.http_twin(),
            Command::Key(c) => c.http_twin(),
            Command::Plan(c) => c.http_twin(),
            Command::Job(c) => c.http_twin(),
            Command::Task(c) => c.http_twin(),
            Command::Audit(c) => c.http_twin(),
            Command::Usage(c) => c.http_twin(),
            Command::Whoami(c) => c.http_twin(),
            Command::Queue(c) => c.http_twin(),
            Command::Retention(c) => c.http_twin(),
            Command::Schedule(c) => c.http_twin(),
            Command::Secret(c) => c.http_twin(),
            Command::Migrate(_) => Err(local_only("migrate", "schema changes are the operator's")),
            Command::Serve(_) => Err(local_only("serve", "it is the server")),
            Command::Worker(c) => return c.http_twin(),
            Command::Docs(_)
            | Command::Completions(_)
            | Command::Context(_)
            | Command::Billing(_) => return None,
        })
    }

    /// Runs the command: locally, or through its HTTP twin in remote mode, or prints that
    /// twin with `--print-http`.
    async fn run(self, g: &Global) -> Result<String, Failure> {
        if g.print_http
            && let Command::Secret(c) = &self
            && c.carries_value()
        {
            return Err(commands::local_only(
                "secret set --print-http",
                "it would print the value",
            )
            .into());
        }
        if (g.print_http || g.server.is_some())
            && let Some(twin) = self.http_twin()
        {
            let call = twin?;
            if g.print_http {
                return Ok(twin::curl_command(&call, g.server.as_deref()));
            }
            let remote = g.remote()?;
            let doc = remote.send(&call).await?;
            if let Command::Job(job) = &self
                && let Some(timeout) = job.waits()
            {
                return Ok(commands::job::wait_remote(g, &remote, &call, doc, timeout).await?);
            }
            if let Command::Job(job) = &self
                && let Some((_, timeout)) = job.watches()
            {
                return Ok(commands::job::watch_remote(g, &remote, &call, doc, timeout).await?);
            }
            return Ok(g.render(&doc)?);
        }
        Ok(self.run_local(g).await?)
    }

    async fn run_local(self, g: &Global) -> CoreResult<String> {
        match self {
            Command::Org(c) => c.run(g).await,
            Command::Key(c) => c.run(g).await,
            Command::Plan(c) => c.run(g).await,
            Command::Job(c) => c.run(g).await,
            Command::Schedule(c) => c.run(g).await,
            Command::Secret(c) => c.run(g).await,
            Command::Task(c) => c.run(g).await,
            Command::Queue(c) => c.run(g).await,
            Command::Retention(c) => c.run(g).await,
            Command::Audit(c) => c.run(g).await,
            Command::Usage(c) => c.run(g).await,
            Command::Whoami(c) => c.run(g).await,
            Command::Migrate(c) => c.run(g).await,
            Command::Serve(args) => commands::serve::run(args, g).await,
            Command::Worker(c) => c.run(g).await,
            Command::Docs(c) => c.run(),
            Command::Billing(c) => c.run(g),
            Command::Completions(c) => c.run(),
            Command::Context(c) => c.run(g),
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

/// The whole command tree as users see it: the derive's commands plus each command's
/// examples (what help, completion, docs/cli.md and the man pages are made from).
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    examples::attach(Cli::command())
}

/// The clap command with the chosen context's defaults (`--context`/`VELU_CONTEXT`, else
/// the config file's current one), read before parsing.
fn command_in_context(args: &[OsString]) -> CoreResult<clap::Command> {
    let from_env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let config = contexts::flag_value(args, "config").or_else(|| from_env("VELU_CONFIG"));
    let name = contexts::flag_value(args, "context").or_else(|| from_env("VELU_CONTEXT"));
    let Some(path) = contexts::config_path(config.as_deref().map(std::path::Path::new)) else {
        return Ok(command());
    };
    let file = contexts::ConfigFile::load(&path)?;
    let name = name.map(|n| n.to_string_lossy().into_owned());
    Ok(match file.pick(name.as_deref())? {
        Some((_, ctx)) => contexts::with_defaults(command(), ctx),
        None => command(),
    })
}

fn init_logging(command: &Command) {
    velu_http::logs::init(match command {
        Command::Serve(_) => "info",
        Command::Worker(w) if w.runs_worker() => "info",
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
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let command = match command_in_context(&args) {
        Ok(command) => command,
        Err(e) => {
            let _ = output::write_quietly(err, &output::error_line(&e));
            return exit_codes::exit_code(e.code());
        }
    };
    let parsed = command
        .try_get_matches_from(&args)
        .and_then(|m| <Cli as clap::FromArgMatches>::from_arg_matches(&m));
    let cli = match parsed {
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
                Some((status, line)) => {
                    let _ = output::write_quietly(err, &line);
                    status
                }
            },
            Err(e) => {
                let _ = writeln!(err, "error[internal]: cannot write output: {e}");
                exit_codes::exit_code("internal")
            }
        },
        Err(Failure::Core(e)) => {
            let _ = output::write_quietly(err, &output::error_line(&e));
            exit_codes::exit_code(e.code())
        }
        Err(Failure::Remote { code, detail }) => {
            let _ = output::write_quietly(err, &format!("error[{code}]: {detail}\n"));
            exit_codes::exit_code(&code)
        }
    }
}
