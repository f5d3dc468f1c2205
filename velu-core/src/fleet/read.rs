//! `workers.list`: the fleet as the principal may see it.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::documents::{WorkerFilter, WorkerInfo, WorkerList, WorkerState};
use crate::entity::workers::{self, Column};
use crate::pagination::PageRequest;
use crate::principal::Principal;
use crate::scopes::Scope;
use crate::time::now;
use crate::{CoreError, CoreResult, Velu};

/// Lists the workers `who` may see, by id, with their state now. The operator and
/// platform keys need `jobs:work` or `admin:orgs:manage` and see every worker (the
/// `org` filter narrows to one org's); org keys need `jobs:read` and see their own org's
/// workers only (naming another org is `not_found`).
pub async fn list_workers(
    velu: &Velu,
    who: &Principal,
    filter: &WorkerFilter,
    page: &PageRequest,
) -> CoreResult<WorkerList> {
    list_workers_at(velu, who, filter, page, now()).await
}

/// [`list_workers`] with states computed at `at` (tests age workers with it).
pub async fn list_workers_at(
    velu: &Velu,
    who: &Principal,
    filter: &WorkerFilter,
    page: &PageRequest,
    at: DateTime<Utc>,
) -> CoreResult<WorkerList> {
    let tx = velu.db().read_tx().await?;
    let conn = &tx;
    // Which org's workers: an org key always its own (naming another is `not_found`),
    // a platform principal every org unless it names one.
    let org_id = match (&who.org_id, &filter.org) {
        (Some(_), named) => {
            let org = match named {
                Some(org) => org.clone(),
                None => who.own_org()?,
            };
            Some(
                who.enter(conn, &org, Scope::JobsRead)
                    .await?
                    .id()
                    .to_owned(),
            )
        }
        (None, Some(org)) => {
            let scope = platform_scope(who)?;
            Some(who.enter(conn, org, scope).await?.id().to_owned())
        }
        (None, None) => {
            platform_scope(who)?;
            crate::db::cross_org(&tx, crate::db::CrossOrg::Platform).await?;
            None
        }
    };
    let state = filter
        .state
        .as_deref()
        .map(|s| WorkerState::parse_field("state", s))
        .transpose()?;
    let q = page.validate(
        "workers",
        &format!(
            "{}|{}",
            org_id.as_deref().unwrap_or(""),
            state.map_or("", WorkerState::as_str)
        ),
    )?;
    // By id, then owner: two owners may each have a worker of the same id.
    let mut select = workers::Entity::find()
        .order_by_asc(Column::Id)
        .order_by_asc(Column::Owner)
        .limit(q.fetch());
    if let Some(org) = &org_id {
        // The primary key (owner, id) serves one org's rows in id order.
        select = select.filter(Column::Owner.eq(org.as_str()));
    }
    select = match state {
        None => select,
        Some(WorkerState::Stopped) => select.filter(Column::StoppedAt.is_not_null()),
        Some(WorkerState::Stale) => select
            .filter(Column::StoppedAt.is_null())
            .filter(Column::StaleAt.lt(at)),
        Some(WorkerState::Live) => select
            .filter(Column::StoppedAt.is_null())
            .filter(Column::StaleAt.gte(at)),
    };
    if let Some(after) = q.after() {
        select = select.filter(match after {
            [id, owner] => Condition::any().add(Column::Id.gt(id)).add(
                Condition::all()
                    .add(Column::Id.eq(id))
                    .add(Column::Owner.gt(owner)),
            ),
            // A cursor of an earlier version, by id alone.
            [id, ..] => Condition::all().add(Column::Id.gt(id)),
            [] => Condition::all(),
        });
    }
    let rows = select.all(conn).await?;
    tx.commit().await?;
    q.try_finish(
        rows,
        |r| vec![r.id.clone(), r.owner.clone()],
        |r| WorkerInfo::from_model(r, at),
    )
}

/// The scope a platform principal lists the whole fleet with: `jobs:work` (the
/// platform's workers and their operators) or `admin:orgs:manage`; `forbidden` naming
/// `jobs:work` otherwise.
fn platform_scope(who: &Principal) -> CoreResult<Scope> {
    [Scope::JobsWork, Scope::OrgsManage]
        .into_iter()
        .find(|s| who.scopes.contains(*s))
        .ok_or_else(|| CoreError::forbidden(Scope::JobsWork))
}
