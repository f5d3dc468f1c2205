//! `velu-cli plan ...`

use clap::Subcommand;
use velu_core::CoreResult;
use velu_core::plans::{list_plans, show_plan};

use crate::context::Global;
use crate::twin::HttpCall;
use crate::values::{PlanArg, offer};

/// Plan tiers and their limits.
#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// List the plans with their limits and task kinds.
    List,
    /// Show one plan.
    Show {
        /// The plan.
        #[arg(value_parser = offer::<PlanArg>())]
        plan: String,
    },
}

impl PlanCommand {
    /// The HTTP twin (remote mode, `--print-http`).
    pub fn http_twin(&self) -> CoreResult<HttpCall> {
        Ok(match self {
            PlanCommand::List => HttpCall::get(["v1", "plans"]),
            PlanCommand::Show { plan } => HttpCall::get(["v1", "plans", plan]),
        })
    }

    pub async fn run(self, g: &Global) -> CoreResult<String> {
        // Plans need no database: only the task catalog.
        let tasks = g.tasks()?;
        match self {
            PlanCommand::List => g.render(&list_plans(&tasks)),
            PlanCommand::Show { plan } => g.render(&show_plan(&tasks, &plan)?),
        }
    }
}
