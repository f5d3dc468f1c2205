//! The `velu-http` binary: the HTTP API alone (same as `velu-cli serve`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use velu_core::db::SchemaPolicy;
use velu_core::settings::Settings;
use velu_core::tasks::TaskCatalog;
use velu_core::{OpenOptions, Velu};
use velu_http::config::{ServeArgs, load_tasks_file};

/// Serve Velu's HTTP API (docs at /docs).
#[derive(Debug, Parser)]
#[command(name = "velu-http", version)]
struct Args {
    #[command(flatten)]
    serve: ServeArgs,
    /// Data directory [default: the platform's user data directory].
    #[arg(long, env = "VELU_HOME")]
    home: Option<PathBuf>,
    /// Database URL [default: velu.db in the data directory].
    #[arg(long, env = "VELU_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// File holding the API key pepper (when VELU_API_KEY_PEPPER is not set).
    #[arg(long, env = "VELU_API_KEY_PEPPER_FILE")]
    pepper_file: Option<PathBuf>,
    /// YAML file of command task kinds.
    #[arg(long, env = "VELU_TASKS_FILE")]
    tasks_file: Option<PathBuf>,
    /// Failed authentications allowed per client address per minute before `429`. Raise it
    /// only for a fuzzer that probes every operation with a wrong key from one address
    /// (scripts/schemathesis.sh).
    #[arg(long, env = "VELU_AUTH_FAILURES_PER_MINUTE", default_value_t = velu_core::auth::AuthConfig::default().client_failures_per_minute)]
    auth_failures_per_minute: u32,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VELU_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let settings = Settings::new(args.home, args.database_url)?.with_pepper_from(
        std::env::var("VELU_API_KEY_PEPPER").ok(),
        args.pepper_file.as_deref(),
    )?;
    let tasks = match &args.tasks_file {
        Some(path) => load_tasks_file(path)?,
        None => TaskCatalog::builtin(),
    };
    let opts = OpenOptions {
        schema: args.serve.migrate.then_some(SchemaPolicy::Apply),
        background: true,
        auth: velu_core::auth::AuthConfig {
            client_failures_per_minute: args.auth_failures_per_minute,
            ..Default::default()
        },
    };
    let velu = Velu::open(settings, tasks, opts).await?;
    velu.hasher()?;
    velu_http::serve(
        velu.clone(),
        &args.serve.addr,
        velu_http::signals::shutdown(),
    )
    .await
    .with_context(|| format!("serving on {}", args.serve.addr))?;
    velu.shutdown().await;
    Ok(())
}
