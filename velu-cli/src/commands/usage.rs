//! `velu-cli usage`: what an org (or every org) used over a range of UTC days.

use clap::Args;
use velu_core::orgs::OrgRef;
use velu_core::usage::{UsageQuery, usage};
use velu_core::{CoreResult, Principal};

use crate::context::Global;
use crate::twin::HttpCall;

/// Usage per org, UTC day and task kind: jobs submitted, succeeded, failed, run seconds,
/// and API requests (the figures billing invoices from; docs/usage.md). `-o csv` prints
/// the rows as CSV.
#[derive(Debug, Args)]
pub struct UsageArgs {
    /// Org id or slug; without it, every org (the operator and platform keys) or the
    /// key's own org (org keys).
    #[arg(long)]
    pub org: Option<String>,
    /// First UTC day, YYYY-MM-DD.
    #[arg(long)]
    pub from: String,
    /// Last UTC day, YYYY-MM-DD (included; at most 366 days from --from).
    #[arg(long)]
    pub to: String,
}

impl UsageArgs {
    /// The HTTP twin (remote mode, `--print-http`).
    pub fn http_twin(&self) -> CoreResult<HttpCall> {
        let call = match &self.org {
            Some(org) => HttpCall::get(["v1", "orgs", org.as_str(), "usage"]),
            None => HttpCall::get(["v1", "usage"]),
        };
        Ok(call
            .query("from", Some(self.from.clone()))
            .query("to", Some(self.to.clone())))
    }

    pub async fn run(self, g: &Global) -> CoreResult<String> {
        let velu = g.open_without_tasks().await?;
        let query = UsageQuery {
            org: self.org.map(OrgRef::new),
            from: self.from,
            to: self.to,
        };
        g.render(&usage(&velu, &Principal::operator(), &query).await?)
    }
}
