//! `velu-cli task ...`

use clap::Subcommand;
use velu_core::pause::{self, PauseInput};
use velu_core::tasks::list_tasks;
use velu_core::{CoreResult, Principal};

use crate::context::Global;
use crate::twin::HttpCall;

/// The task catalog.
#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// List task kinds with the minimum plan of each.
    List,
    /// Pause a task kind in every org: its queued jobs stay queued and no worker claims
    /// them until a resume; running ones finish.
    Pause {
        /// Task kind (see `velu-cli task list`).
        task: String,
        /// Why (one line, at most 500 characters).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Resume a task kind in every org.
    Resume {
        /// Task kind.
        task: String,
    },
}

impl TaskCommand {
    /// The HTTP twin (remote mode, `--print-http`).
    pub fn http_twin(&self) -> CoreResult<HttpCall> {
        Ok(match self {
            TaskCommand::List => HttpCall::get(["v1", "tasks"]),
            TaskCommand::Pause { task, reason } => HttpCall::post(
                ["v1", "tasks", task, "pause"],
                Some(serde_json::json!({ "reason": reason })),
            ),
            TaskCommand::Resume { task } => HttpCall::post(["v1", "tasks", task, "resume"], None),
        })
    }

    pub async fn run(self, g: &Global) -> CoreResult<String> {
        let who = Principal::operator();
        match self {
            TaskCommand::List => g.render(&list_tasks(&g.tasks()?)),
            TaskCommand::Pause { task, reason } => {
                let velu = g.open().await?;
                let input = PauseInput { reason };
                g.render(&pause::pause_task(&velu, &who, &task, &input).await?)
            }
            TaskCommand::Resume { task } => {
                let velu = g.open().await?;
                g.render(&pause::resume_task(&velu, &who, &task).await?)
            }
        }
    }
}
