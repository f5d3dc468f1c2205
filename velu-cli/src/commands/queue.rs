//! `velu-cli queue ...`

use clap::Subcommand;
use velu_core::orgs::OrgRef;
use velu_core::pause::{self, PauseInput};
use velu_core::{CoreResult, Principal};

use crate::context::Global;
use crate::twin::HttpCall;

/// An org's queue: pause, resume, show.
#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Show whether the org's queue is paused (since when, by whom, why), the task kinds
    /// paused for everyone, and its queued and running counts.
    Show {
        /// Org id or slug [env: VELU_ORG].
        #[arg(long, env = "VELU_ORG", hide_env = true)]
        org: String,
    },
    /// Pause the org's queue: queued jobs stay queued and no worker claims them until a
    /// resume; running jobs finish; submits are still accepted.
    Pause {
        /// Org id or slug [env: VELU_ORG].
        #[arg(long, env = "VELU_ORG", hide_env = true)]
        org: String,
        /// Why (one line, at most 500 characters).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Resume the org's queue: workers claim its jobs again.
    Resume {
        /// Org id or slug [env: VELU_ORG].
        #[arg(long, env = "VELU_ORG", hide_env = true)]
        org: String,
    },
}

impl QueueCommand {
    /// The HTTP twin (remote mode, `--print-http`).
    pub fn http_twin(&self) -> CoreResult<HttpCall> {
        let queue = |org: &str| vec!["v1".to_owned(), "orgs".into(), org.into(), "queue".into()];
        Ok(match self {
            QueueCommand::Show { org } => HttpCall::get(queue(org)),
            QueueCommand::Pause { org, reason } => {
                let mut path = queue(org);
                path.push("pause".into());
                HttpCall::post(path, Some(serde_json::json!({ "reason": reason })))
            }
            QueueCommand::Resume { org } => {
                let mut path = queue(org);
                path.push("resume".into());
                HttpCall::post(path, None)
            }
        })
    }

    pub async fn run(self, g: &Global) -> CoreResult<String> {
        let velu = g.open_without_tasks().await?;
        let who = Principal::operator();
        match self {
            QueueCommand::Show { org } => {
                g.render(&pause::show_queue(&velu, &who, &OrgRef::new(org)).await?)
            }
            QueueCommand::Pause { org, reason } => {
                let input = PauseInput { reason };
                g.render(&pause::pause_queue(&velu, &who, &OrgRef::new(org), &input).await?)
            }
            QueueCommand::Resume { org } => {
                g.render(&pause::resume_queue(&velu, &who, &OrgRef::new(org)).await?)
            }
        }
    }
}
