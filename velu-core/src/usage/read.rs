//! `usage`: the report of an org (or of every org, for platform principals) over a range
//! of UTC days, read from the rollups (never from job history).

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect};

use super::range::DayRange;
use super::{UsageQuery, UsageReport};
use crate::db::CrossOrg;
use crate::entity::usage_daily::{self, Column};
use crate::principal::Principal;
use crate::scopes::Scope;
use crate::{CoreError, CoreResult, Velu};

/// One (org, day, task) of `usage_daily`, its shards summed.
#[derive(Debug, Clone, FromQueryResult)]
pub(crate) struct UsageSums {
    pub org_id: String,
    pub day: String,
    pub task: String,
    pub jobs_submitted: i64,
    pub jobs_succeeded: i64,
    pub jobs_failed: i64,
    pub run_ms: i64,
    pub api_requests: i64,
}

/// Most rows one report holds. One org over the longest range stays below it unless the
/// catalog has more than a hundred kinds; a platform-wide report of many orgs may not:
/// then it is `invalid`, and a shorter range or one org at a time is the answer.
pub const MAX_ROWS: u64 = 50_000;

/// The usage of `query.org` (or of every org) from `query.from` to `query.to`, both UTC
/// days included. Needs `usage:read`. An org key sees its own org only (another org is
/// `not_found`, like a missing one; naming none means its own); the operator and platform
/// keys see any org, and every org when they name none.
pub async fn usage(velu: &Velu, who: &Principal, query: &UsageQuery) -> CoreResult<UsageReport> {
    let range = DayRange::parse(&query.from, &query.to)?;
    let org = match (&query.org, &who.org_id) {
        (Some(org), _) => Some(org.clone()),
        (None, Some(_)) => Some(who.own_org()?),
        (None, None) => None,
    };
    let (tx, org_id) = match &org {
        Some(org) => {
            let tx = velu.db().read_tx().await?;
            let id = who.enter(&tx, org, Scope::UsageRead).await?.id().to_owned();
            (tx, Some(id))
        }
        None => {
            // Every org: a platform principal only (an org key never gets here).
            who.require(Scope::UsageRead)?;
            (velu.db().cross_org_read_tx(CrossOrg::Platform).await?, None)
        }
    };
    let (from, to) = (range.from_text(), range.to_text());
    // The shards of each row summed (db/usage.rs).
    let sum = |c: &str| Expr::cust(format!("CAST(SUM({c}) AS BIGINT)"));
    let mut select = usage_daily::Entity::find()
        .select_only()
        .columns([Column::OrgId, Column::Day, Column::Task])
        .column_as(sum("jobs_submitted"), "jobs_submitted")
        .column_as(sum("jobs_succeeded"), "jobs_succeeded")
        .column_as(sum("jobs_failed"), "jobs_failed")
        .column_as(sum("run_ms"), "run_ms")
        .column_as(sum("api_requests"), "api_requests")
        .group_by(Column::Day)
        .group_by(Column::OrgId)
        .group_by(Column::Task)
        .filter(Column::Day.gte(from.as_str()))
        .filter(Column::Day.lte(to.as_str()))
        .order_by_asc(Column::Day)
        .order_by_asc(Column::OrgId)
        .order_by_asc(Column::Task)
        .limit(MAX_ROWS + 1);
    if let Some(id) = &org_id {
        select = select.filter(Column::OrgId.eq(id.as_str()));
    }
    let rows = select.into_model::<UsageSums>().all(&tx).await?;
    tx.commit().await?;
    if rows.len() as u64 > MAX_ROWS {
        return Err(CoreError::invalid(
            "to",
            format!(
                "the report would hold more than {MAX_ROWS} rows; ask for fewer days or one org"
            ),
        ));
    }
    Ok(UsageReport::of(org_id, from, to, rows))
}
