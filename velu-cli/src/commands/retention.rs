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
    /// how many finished jobs and dead keys are due for removal (each counted up to
    /// 10000).
    Show {
        /// Org id or slug [env: VELU_ORG].
        #[arg(long, env = "VELU_ORG", hide_env = true)]
        org: String,
    },
    /// Remove finished jobs past their org's plan retention (with their attempts and
    /// events), in slices of 1000 per transaction; queued and running jobs are never
    /// removed. Keys revoked or expired before the cutoff go too, up to 1000 per org and
    /// run. Without --org, at most 1000 orgs per run. Prints `more: true` when it stopped
    /// before the end: run it again, with --from-org set to its `next_org`.
    Run {
        /// Org id or slug; without it, every org.
        #[arg(long)]
        org: Option<String>,
        /// Most jobs this run removes, 1 to 10000000 [default: 100000].
        #[arg(long)]
        max_jobs: Option<u64>,
        /// Without --org: the org id to start at, the `next_org` of the run before (a run
        /// visits at most 1000 orgs).
        #[arg(long)]
        from_org: Option<String>,
    },
}

impl RetentionCommand {
    /// The HTTP twin (remote mode, `--print-http`).
    pub fn http_twin(&self) -> CoreResult<HttpCall> {
        Ok(match self {
            RetentionCommand::Show { org } => {
                HttpCall::get(["v1", "orgs", org.as_str(), "jobs", "retention"])
            }
            RetentionCommand::Run {
                org,
                max_jobs,
                from_org,
            } => HttpCall::post(
                ["v1", "retention", "run"],
                Some(serde_json::json!({ "org": org, "max_jobs": max_jobs, "from_org": from_org })),
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
            RetentionCommand::Run {
                org,
                max_jobs,
                from_org,
            } => {
                let input = RetentionRun {
                    org,
                    max_jobs,
                    from_org,
                };
                g.render(&retention::run_retention(&velu, &who, &input).await?)
            }
        }
    }
}
