//! Serving: the flags of a server process and the one function `velu-cli serve` and the
//! `velu-http` binary both call.

use std::time::Duration;

use clap::Args;
use poem::Server;
use poem::listener::TcpListener;
use velu_core::auth::AuthConfig;
use velu_core::db::SchemaPolicy;
use velu_core::{CoreError, CoreResult, OpenOptions, Velu};

/// Default listen address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8001";

/// How long requests in flight may take to finish after the shutdown signal.
const DRAIN: Duration = Duration::from_secs(10);

/// Flags of a server process (`velu-cli serve`, `velu-http`).
#[derive(Debug, Clone, Args)]
pub struct ServeOptions {
    /// Address to listen on.
    #[arg(long, env = "VELU_ADDR", default_value = DEFAULT_ADDR)]
    pub addr: String,
    /// Apply pending migrations first (PostgreSQL; under a lock, safe with many nodes).
    #[arg(long)]
    pub migrate: bool,
    /// Failed authentications allowed per client address per minute before `429`. Raise it
    /// only for a fuzzer that probes every operation with a wrong key from one address
    /// (scripts/schemathesis.sh).
    #[arg(
        long,
        env = "VELU_AUTH_FAILURES_PER_MINUTE",
        value_name = "N",
        default_value_t = AuthConfig::default().client_failures_per_minute
    )]
    pub auth_failures_per_minute: u32,
    /// Also serve `GET /metrics` on this address, without a key (for a scraper on a
    /// private network: anyone who reaches it reads the metrics). Off by default; the API
    /// serves `/metrics` to platform keys either way.
    #[arg(long, env = "VELU_METRICS_ADDR", value_name = "ADDR")]
    pub metrics_addr: Option<String>,
    /// How often this process runs the schedule ticker, in seconds (0: never). Any number
    /// of `serve` and `worker` processes may run it: each tick still queues one job.
    #[arg(
        long,
        env = "VELU_SCHEDULE_TICK",
        value_name = "SECONDS",
        default_value_t = 1
    )]
    pub schedule_tick: u64,
}

impl ServeOptions {
    /// How to open [`Velu`] for serving: background tasks on, migrations applied first with
    /// `--migrate`, the failure budget of `--auth-failures-per-minute`.
    pub fn open_options(&self) -> OpenOptions {
        OpenOptions {
            schema: self.migrate.then_some(SchemaPolicy::Apply),
            background: true,
            auth: AuthConfig {
                client_failures_per_minute: self.auth_failures_per_minute,
                ..AuthConfig::default()
            },
        }
    }
}

/// Serves `velu` (opened with [`ServeOptions::open_options`]) on `opts.addr` (and its
/// metrics on `opts.metrics_addr`, when set) until SIGINT or SIGTERM, drains requests in
/// flight for up to 10 s, then shuts `velu` down.
pub async fn serve(velu: Velu, opts: &ServeOptions) -> CoreResult<()> {
    // Fail closed at startup, not on the first request.
    velu.hasher()?;
    let _metrics = match &opts.metrics_addr {
        Some(addr) => Some(crate::listen_metrics(velu.clone(), addr).await?),
        None => None,
    };
    if opts.schedule_tick > 0 {
        velu_core::schedules::start_ticker(&velu, Duration::from_secs(opts.schedule_tick));
    }
    tracing::info!(addr = %opts.addr, "serving; docs at /docs");
    Server::new(TcpListener::bind(opts.addr.as_str()))
        .run_with_graceful_shutdown(
            crate::app(velu.clone()),
            velu_core::signals::shutdown(),
            Some(DRAIN),
        )
        .await
        .map_err(|e| CoreError::Config(format!("cannot serve on {}: {e}", opts.addr)))?;
    velu.shutdown().await;
    Ok(())
}
