//! `velu-cli plan ...`

use clap::Subcommand;
use velu_core::CoreResult;
use velu_core::plans::{list_plans, show_plan};

use crate::context::Global;

/// Plan tiers and their limits.
#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// List the plans with their limits and task kinds.
    List,
    /// Show one plan.
    Show {
        /// base, hero or superhero.
        plan: String,
    },
}

impl PlanCommand {
    pub async fn run(self, g: &Global) -> CoreResult<String> {
        // Plans need no database: only the task catalog.
        let tasks = g.tasks()?;
        match self {
            PlanCommand::List => g.render(&list_plans(&tasks)),
            PlanCommand::Show { plan } => g.render(&show_plan(&tasks, &plan)?),
        }
    }
}
