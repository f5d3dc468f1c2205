//! `velu-cli worker`: runs jobs until SIGINT/SIGTERM (or, with `--once`, until nothing is
//! ready), then prints what it did. With `--server URL` (or `VELU_SERVER`) it works that
//! server's queue over the worker protocol with the key of `VELU_API_KEY`, opening no
//! database (`crate::remote`).

use std::time::Duration;

use clap::Args;
use velu_core::db::Backend;
use velu_core::worker::{Worker, WorkerConfig, default_prefetch, default_worker_id};
use velu_core::{CoreResult, OpenOptions};

use super::key::parse_duration_secs;
use super::split_list;
use crate::context::Global;

/// Flags of the worker.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Jobs running at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Most jobs claimed ahead of free handlers, while recent jobs are short (under 50 ms
    /// on average): fewer round trips, and long jobs are never hoarded. A job's run time
    /// starts when a handler takes it [default: three times the concurrency on
    /// PostgreSQL; ten times on SQLite and with --server].
    #[arg(long)]
    prefetch: Option<usize>,
    /// Only these task kinds (comma-separated).
    #[arg(long)]
    tasks: Option<String>,
    /// Worker id in leases and attempts [default: host:pid:random].
    #[arg(long)]
    id: Option<String>,
    /// Lease length; renewed every third of it.
    #[arg(long, default_value = "30s", value_parser = parse_duration_secs)]
    lease: u64,
    /// At shutdown, how long running jobs may take before their leases are handed back.
    #[arg(long, default_value = "10s", value_parser = parse_duration_secs)]
    grace: u64,
    /// Keep job workspaces this long after they were last touched (0: remove at once).
    #[arg(long, default_value = "24h", value_parser = parse_duration_secs)]
    workspace_retention: u64,
    /// Longest wait for new work when no wake-up comes.
    #[arg(long, default_value = "1s", value_parser = parse_duration_secs)]
    poll: u64,
    /// Stop when nothing is ready and nothing runs.
    #[arg(long)]
    once: bool,
    /// How often this process runs the schedule ticker, in seconds (0: never; not with
    /// `--once` or `--server`). Any number of `serve` and `worker` processes may run it:
    /// each tick still queues one job.
    #[arg(
        long,
        env = "VELU_SCHEDULE_TICK",
        value_name = "SECONDS",
        default_value_t = 1
    )]
    schedule_tick: u64,
    /// Serve this process's metrics (`GET /metrics`, no key) on this address, for a
    /// scraper on a private network: anyone who reaches it reads them.
    #[arg(long, env = "VELU_WORKER_METRICS_ADDR", value_name = "ADDR")]
    metrics_addr: Option<String>,
}

impl WorkerArgs {
    pub async fn run(self, g: &Global) -> CoreResult<String> {
        if let Some(server) = g.server.clone() {
            return self.run_remote(g, &server).await;
        }
        let velu = g
            .open_with(OpenOptions {
                background: true,
                ..OpenOptions::default()
            })
            .await?;
        if self.schedule_tick > 0 && !self.once {
            velu_core::schedules::start_ticker(&velu, Duration::from_secs(self.schedule_tick));
        }
        let _metrics = match &self.metrics_addr {
            Some(addr) => Some(velu_http::listen_metrics(velu.clone(), addr).await?),
            None => None,
        };
        let cfg = self.config(Some(velu.db().backend()));
        let report = Worker::new(velu.clone(), cfg)
            .run(velu_core::signals::shutdown())
            .await?;
        velu.shutdown().await;
        g.render(&report)
    }

    /// `worker --server URL`: the same loop over the worker protocol, with the key of
    /// `VELU_API_KEY` (or `--key-file`); no database is opened.
    async fn run_remote(self, g: &Global, server: &str) -> CoreResult<String> {
        // No database here: this process's worker families only (`velu_worker_*`); the
        // server's /metrics covers the queue and the fleet.
        let _metrics = match &self.metrics_addr {
            Some(addr) => Some(velu_http::listen_worker_metrics(addr).await?),
            None => None,
        };
        let client = crate::remote::Client::new(server, &g.remote_key()?, &g.trust())?;
        let home = g.settings()?.home;
        let report = crate::remote::run_worker(
            client,
            &home,
            self.config(None),
            velu_core::signals::shutdown(),
        )
        .await?;
        g.render(&report)
    }

    /// The worker's configuration from the flags, for the queue of `backend` (`None`: a
    /// server's, over the worker protocol).
    fn config(&self, backend: Option<Backend>) -> WorkerConfig {
        let lease = Duration::from_secs(self.lease.max(3));
        WorkerConfig {
            id: self.id.clone().unwrap_or_else(default_worker_id),
            concurrency: self.concurrency.max(1),
            prefetch: self
                .prefetch
                .unwrap_or_else(|| default_prefetch(self.concurrency.max(1), backend)),
            tasks: self.tasks.as_deref().map(split_list),
            lease,
            heartbeat: lease / 3,
            poll: Duration::from_secs(self.poll.max(1)),
            grace: Duration::from_secs(self.grace),
            workspace_retention: Duration::from_secs(self.workspace_retention),
            exit_when_idle: self.once,
        }
    }
}
