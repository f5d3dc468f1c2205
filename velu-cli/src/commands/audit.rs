//! `velu-cli audit ...`

use clap::Subcommand;
use velu_core::audit::list_audit;
use velu_core::orgs::OrgRef;
use velu_core::{CoreResult, Principal};

use super::PageArgs;
use crate::context::Global;
use crate::twin::HttpCall;

/// The audit log.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List an org's audit events, newest first.
    List {
        /// Org id or slug [env: VELU_ORG].
        #[arg(long, env = "VELU_ORG", hide_env = true)]
        org: String,
        #[command(flatten)]
        page: PageArgs,
    },
}

impl AuditCommand {
    /// The HTTP twin (remote mode, `--print-http`).
    pub fn http_twin(&self) -> CoreResult<HttpCall> {
        match self {
            AuditCommand::List { org, page } => {
                Ok(page.twin(HttpCall::get(["v1", "orgs", org, "audit"])))
            }
        }
    }

    pub async fn run(self, g: &Global) -> CoreResult<String> {
        let velu = g.open_without_tasks().await?;
        let who = Principal::operator();
        match self {
            AuditCommand::List { org, page } => {
                let org = OrgRef::new(org);
                let list = page
                    .collect(|p| {
                        let (velu, who, org) = (&velu, &who, &org);
                        async move { list_audit(velu, who, org, &p).await }
                    })
                    .await?;
                g.render(&list)
            }
        }
    }
}
