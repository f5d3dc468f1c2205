//! `velu-cli audit ...`

use clap::Subcommand;
use velu_core::audit::list_audit;
use velu_core::orgs::OrgRef;
use velu_core::{CoreResult, Principal};

use super::PageArgs;
use crate::context::Global;

/// The audit log.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List an org's audit events, newest first.
    List {
        /// Org id or slug.
        #[arg(long)]
        org: String,
        #[command(flatten)]
        page: PageArgs,
    },
}

impl AuditCommand {
    pub async fn run(self, g: &Global) -> CoreResult<String> {
        let velu = g.open().await?;
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
