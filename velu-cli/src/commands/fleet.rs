//! `velu-cli worker`: the worker noun. With no subcommand it runs a worker process (the
//! flags of [`WorkerArgs`]: `velu-cli worker --concurrency 4`, as ever); `worker list`
//! prints the fleet registry (`workers.list`). clap's `args_conflicts_with_subcommands`
//! keeps the two apart: `worker list --concurrency 4` is a usage error.

use clap::{Args, Subcommand};
use velu_core::fleet::{WorkerFilter, list_workers};
use velu_core::orgs::OrgRef;
use velu_core::{CoreResult, Principal};

use super::PageArgs;
use super::worker::WorkerArgs;
use crate::context::Global;
use crate::twin::HttpCall;
use crate::values::{WorkerStateArg, offer};

/// Run a worker (the default), or list the fleet.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct WorkerCommand {
    #[command(subcommand)]
    command: Option<FleetCommand>,
    #[command(flatten)]
    run: WorkerArgs,
}

/// What `velu-cli worker` does besides running jobs.
#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// List the workers (local and remote), each live, stale or stopped.
    List {
        /// Only this org's workers (id or slug).
        #[arg(long)]
        org: Option<String>,
        /// Only workers in this state.
        #[arg(long, value_parser = offer::<WorkerStateArg>())]
        state: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
}

impl WorkerCommand {
    /// True when this runs a worker process (not a one-shot subcommand).
    pub fn runs_worker(&self) -> bool {
        self.command.is_none()
    }

    /// The HTTP twin of `worker list` (remote mode, `--print-http`); running a worker
    /// has none (it handles `--server` itself).
    pub fn http_twin(&self) -> Option<CoreResult<HttpCall>> {
        self.command
            .as_ref()
            .map(|FleetCommand::List { org, state, page }| {
                Ok(page.twin(
                    HttpCall::get(["v1", "workers"])
                        .query("org", org.clone())
                        .query("state", state.clone()),
                ))
            })
    }

    pub async fn run(self, g: &Global) -> CoreResult<String> {
        match self.command {
            None => self.run.run(g).await,
            Some(FleetCommand::List { org, state, page }) => {
                let velu = g.open().await?;
                let who = Principal::operator();
                let filter = WorkerFilter {
                    org: org.map(OrgRef::new),
                    state,
                };
                let list = page
                    .collect(|p| {
                        let (velu, who, filter) = (&velu, &who, &filter);
                        async move { list_workers(velu, who, filter, &p).await }
                    })
                    .await?;
                g.render(&list)
            }
        }
    }
}
