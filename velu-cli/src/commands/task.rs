//! `velu-cli task ...`

use clap::Subcommand;
use velu_core::CoreResult;
use velu_core::tasks::list_tasks;

use crate::context::Global;

/// The task catalog.
#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// List task kinds with the minimum plan of each.
    List,
}

impl TaskCommand {
    pub async fn run(self, g: &Global) -> CoreResult<String> {
        let tasks = g.tasks()?;
        match self {
            TaskCommand::List => g.render(&list_tasks(&tasks)),
        }
    }
}
