//! `velu-cli retention ...`: history retention per plan (docs/retention.md).

use clap::Subcommand;
use velu_core::jobs::retention::{self, RetentionRun};
use velu_core::orgs::OrgRef;
use velu_core::{CoreResult, Principal};

use crate::context::Global;
use crate::twin::HttpCall;

/// History retention: show what an org's plan keeps and what is due, run the removal.
#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Show an org's retention: the days its plan keeps a finished job, the cutoff, and
    /// how many finished jobs are due for removal (counted up to 10000).
    Show {
        /// Org id or slug [env: VELU_ORG].
        #[arg(long, env = "VELU_ORG", hide_env = true)]
        org: String,
    },
    /// Remove finished jobs past their org's plan retention (with their attempts and
    /// events), in slices of 1000 per transaction; queued and running jobs are never
    /// removed. Prints `more: true` when jobs are still due: run it again (from cron, say).
    Run {
        /// Org id or slug; without it, every org.
        #[arg(long)]
        org: Option<String>,
        /// Most jobs this run removes, 1 to 10000000 [default: 100000].
        #[arg(long)]
        max_jobs: Option<u64>,
    },
}

impl RetentionCommand {
    /// The HTTP twin (remote mode, `--print-http`).
    pub fn http_twin(&self) -> CoreResult<HttpCall> {
        Ok(match self {
            RetentionCommand::Show { org } => {
                HttpCall::get(["v1", "orgs", org.as_str(), "jobs", "retention"])
            }
            RetentionCommand::Run { org, max_jobs } => HttpCall::post(
                ["v1", "retention", "run"],
                Some(serde_json::json!({ "org": org, "max_jobs": max_jobs })),
            ),
        })
    }

    pub async fn run(self, g: &Global) -> CoreResult<String> {
        let velu = g.open_without_tasks().await?;
        let who = Principal::operator();
        match self {
            RetentionCommand::Show { org } => {
                g.render(&retention::retention_state(&velu, &who, &OrgRef::new(org)).await?)
            }
            RetentionCommand::Run { org, max_jobs } => {
                let input = RetentionRun { org, max_jobs };
                g.render(&retention::run_retention(&velu, &who, &input).await?)
            }
        }
    }
}
