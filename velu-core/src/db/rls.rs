//! Row-level security on PostgreSQL: the two per-transaction settings its policies read,
//! and the database role Velu's connections run as.
//!
//! Every tenant table has a policy (migration `m20261202_000014_row_level_security`) that
//! shows and accepts a row only when its `org_id` equals the transaction's `velu.org_id`
//! or when the transaction set `velu.cross_org` to `on`. With neither set a query sees
//! nothing and writes nothing: the policies fail closed.
//!
//! * `velu.org_id` is set by two functions: [`enter_org`], the tenancy floor's lookup
//!   (`Principal::enter`), which binds in the same statement that finds the org, inside the
//!   transaction the operation then uses; and [`bind_org`], for the worker's read of a
//!   claimed job's org secrets (the org comes from the claimed row, not from a caller).
//! * `velu.cross_org` is on for the paths that cross orgs on purpose, each named by a
//!   [`CrossOrg`] (listed in docs/security.md): they take a connection of the `Db`'s second
//!   pool, whose sessions start with `velu.cross_org = on` (`Db::cross_org_tx`,
//!   `Db::cross_org_read_tx`, `Db::query_all_cross_org`: no extra statement), or, for a
//!   transaction already begun on the main pool, call [`cross_org`].
//!
//! Both are `set_config(..., true)`, the function form of `SET LOCAL`: they end with the
//! transaction, so a pooled connection never carries them to the next caller.
//!
//! Superusers and `BYPASSRLS` roles skip every policy, so each pooled connection runs as
//! the ordinary role [`APP_ROLE`] (a startup parameter, no extra statement), which
//! `migrate up` creates and grants to the connecting user. On SQLite there are no
//! policies and these functions do nothing: the tenancy type is the wall there.

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement};

use crate::CoreResult;

/// The ordinary role (no login, no `BYPASSRLS`) every pooled PostgreSQL connection runs as.
pub const APP_ROLE: &str = "velu_app";

/// A path that reads or writes more than one org's rows on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrossOrg {
    /// Finding an API key by its id before its org is known, and rewriting its hash.
    KeyLookup,
    /// The batched `last_used_at` writes of many orgs' keys.
    LastUsedFlush,
    /// The worker side of the queue: scan, claim, finish, heartbeat, lease reclaim, release.
    Queue,
    /// The fleet registry (workers of every org and of the platform).
    Fleet,
    /// The schedule ticker's scan for due schedules.
    ScheduleTicker,
    /// Platform operations: creating and bootstrapping orgs, platform keys, platform-wide
    /// pauses and their audit events, listings across orgs.
    Platform,
    /// Metrics counted at scrape time across orgs (queue depth, workers).
    Metrics,
    /// Usage rollups written for many orgs at once.
    Usage,
    /// Signed plan changes from the billing system (the org comes from the event).
    Billing,
    /// Org secrets re-encrypted under a new key for every org.
    SecretsRekey,
    /// Concurrent submits of many orgs written in one transaction (group commit), each
    /// entered and checked on its own first.
    GroupCommit,
}

impl CrossOrg {
    /// The path's name, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            CrossOrg::KeyLookup => "key_lookup",
            CrossOrg::LastUsedFlush => "last_used_flush",
            CrossOrg::Queue => "queue",
            CrossOrg::Fleet => "fleet",
            CrossOrg::ScheduleTicker => "schedule_ticker",
            CrossOrg::Platform => "platform",
            CrossOrg::Metrics => "metrics",
            CrossOrg::Usage => "usage",
            CrossOrg::Billing => "billing",
            CrossOrg::SecretsRekey => "secrets_rekey",
            CrossOrg::GroupCommit => "group_commit",
        }
    }
}

/// Lets transaction `tx` see and write every org's rows, for path `why`. The only place
/// that sets `velu.cross_org`. Does nothing on SQLite.
pub async fn cross_org(tx: &DatabaseTransaction, why: CrossOrg) -> CoreResult<()> {
    if tx.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    tracing::trace!(path = why.as_str(), "cross-org transaction");
    tx.execute_raw(Statement::from_string(
        DbBackend::Postgres,
        "SELECT set_config('velu.cross_org', 'on', true)",
    ))
    .await?;
    Ok(())
}

/// Binds transaction `tx` to org `org_id`: from here on the policies show it that org's
/// rows only. Called for a claimed job's org (`secrets::deliver`); callers' orgs are bound
/// by [`enter_org`]. Does nothing on SQLite.
pub(crate) async fn bind_org(tx: &DatabaseTransaction, org_id: &str) -> CoreResult<()> {
    if tx.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    tx.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT set_config('velu.org_id', $1, true)",
        [org_id.into()],
    ))
    .await?;
    Ok(())
}

/// In what order an org-scoped transaction reads its rows (PostgreSQL planning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadOrder {
    /// As the planner finds cheapest from the server's statistics.
    AsPlanned,
    /// A page of a history (jobs, audit records), read newest first off an index in
    /// order, never gathered whole and sorted: `enable_sort` is off for the transaction
    /// (and `jit`, see below).
    /// Without it, a table never analyzed (autovacuum off, or not yet run after a bulk
    /// load) let PostgreSQL guess a few rows per org and fetch all of an org's rows by
    /// bitmap to sort them for a page of twenty: 1.7 ms for an org of 200 jobs against
    /// 0.09 ms off the index, and a list that grew with the history (docs/benchmarks-log.md).
    /// Sorting stays possible where no index gives the order, costed at 10^10: `jit` is
    /// off with it, or such a plan would be compiled first (200 ms, measured).
    Index,
}

/// [`ReadOrder::Index`] for the rest of a transaction, as statements (one round trip).
const IN_INDEX_ORDER: &str = "SET LOCAL enable_sort = off; SET LOCAL jit = off";

/// Finds the org whose `column` (`id` or `slug`) is `text`, only if `visible_to` is
/// `None` (the operator, platform keys) or its id, and, when `bind` is true, binds
/// transaction `tx` to it in the same statement (PostgreSQL only: the one round trip of
/// the tenancy floor, `Principal::enter`). `set_config` runs only for the row found, so a
/// missing or invisible org binds nothing. With [`ReadOrder::Index`] the same statement
/// also tells the planner to read the rest of the transaction in index order (see there).
pub(crate) async fn enter_org(
    tx: &DatabaseTransaction,
    column: &'static str,
    text: &str,
    visible_to: Option<&str>,
    bind: bool,
    order: ReadOrder,
) -> CoreResult<Option<crate::entity::organizations::Model>> {
    use sea_orm::FromQueryResult;
    debug_assert!(matches!(column, "id" | "slug"));
    let sql = format!(
        "SELECT o.id, o.name, o.slug, o.plan, o.created_at, o.updated_at,
           CASE WHEN $3 THEN set_config('velu.org_id', o.id, true) END AS bound,
           CASE WHEN $4 THEN set_config('enable_sort', 'off', true)
             || set_config('jit', 'off', true) END AS in_index_order
         FROM organizations o
         WHERE o.{column} = $1 AND ($2::text IS NULL OR o.id = $2::text)"
    );
    let row = tx
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [
                text.into(),
                visible_to.map(str::to_owned).into(),
                bind.into(),
                (order == ReadOrder::Index).into(),
            ],
        ))
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    if bind {
        // Fail closed: a row came back, so its binding must have happened.
        let bound: Option<String> = row.try_get("", "bound")?;
        if bound.as_deref() != Some(row.try_get::<String>("", "id")?.as_str()) {
            return Err(crate::CoreError::internal("the org binding did not take"));
        }
    }
    Ok(Some(
        crate::entity::organizations::Model::from_query_result(&row, "")?,
    ))
}

/// Does the connecting user of `conn` (a direct connection, before the pool exists) have
/// [`APP_ROLE`] to run as? False before `migrate up` created it.
pub(crate) async fn app_role_ready(conn: &mut sea_orm::sqlx::PgConnection) -> CoreResult<bool> {
    let ready: bool = sea_orm::sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1 \
         AND pg_has_role(session_user, oid, 'MEMBER'))",
    )
    .bind(APP_ROLE)
    .fetch_one(conn)
    .await
    .map_err(|e| crate::CoreError::Unavailable(e.to_string()))?;
    Ok(ready)
}

/// Runs the rest of transaction `tx` as the connecting user rather than [`APP_ROLE`]: for
/// migrations only, which create tables and policies the app role may not.
pub(crate) async fn as_connecting_user(tx: &DatabaseTransaction) -> CoreResult<()> {
    if tx.get_database_backend() == DbBackend::Postgres {
        tx.execute_unprepared("SET LOCAL ROLE NONE").await?;
    }
    Ok(())
}

impl super::Db {
    /// Runs one statement in a transaction of its own that crosses orgs for path `why`
    /// (on SQLite, simply the statement).
    pub async fn query_all_cross_org(
        &self,
        why: CrossOrg,
        stmt: Statement,
    ) -> CoreResult<Vec<sea_orm::QueryResult>> {
        if self.backend() != super::Backend::Postgres {
            return Ok(self.conn().query_all_raw(stmt).await?);
        }
        if let Some(cross) = &self.cross {
            // The cross-org pool: one statement, one round trip.
            tracing::trace!(path = why.as_str(), "cross-org statement");
            return Ok(cross.query_all_raw(stmt).await?);
        }
        let tx = self.cross_org_read_tx(why).await?;
        let rows = tx.query_all_raw(stmt).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// [`Db::query_all_cross_org`] for a statement that must read its indexes in order
    /// (`enable_sort` off for its transaction on PostgreSQL, as for a page), such as
    /// the queue's scan of ready orgs: each of its steps takes the next org off
    /// `ix_jobs_claim`, where a table never analyzed let PostgreSQL fetch every queued job
    /// after the cursor by bitmap and sort them for the first (tens of milliseconds per
    /// scan under a backlog of 15,000, docs/benchmarks-log.md). The transaction costs three
    /// statements more, once per scan rather than per job.
    pub async fn query_all_cross_org_in_index_order(
        &self,
        why: CrossOrg,
        stmt: Statement,
    ) -> CoreResult<Vec<sea_orm::QueryResult>> {
        if self.backend() != super::Backend::Postgres {
            return Ok(self.conn().query_all_raw(stmt).await?);
        }
        let tx = self.cross_org_read_tx(why).await?;
        tx.execute_unprepared(IN_INDEX_ORDER).await?;
        let rows = tx.query_all_raw(stmt).await?;
        tx.commit().await?;
        Ok(rows)
    }
}
