//! Worker ids per owner: the fleet registry's key becomes (owner, id), where the owner is
//! the org of an org's remote worker or `''` for the platform's workers (`org_id` NULL).
//!
//! With `id` alone as the key, one namespace served every org and the platform: an org's
//! key could register the id a platform worker (or another org's) would use next, and
//! that worker's registration was then refused as a `conflict`. Now each owner has its
//! own ids, and the same id under two owners is two workers.
//!
//! SQLite cannot change a table's primary key in place, so on both backends the table is
//! made anew under the new key, the rows are copied over, and the old table is dropped;
//! on PostgreSQL the new table gets the same row-level security as the old one.
//! `down` goes back to the one namespace, keeping one row per id (the platform's first).

use sea_orm_migration::sea_orm::DbBackend;
use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261202_000014_row_level_security::protect;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Workers {
    Table,
    Owner,
    Id,
    OrgId,
    Host,
    Version,
    Kinds,
    Remote,
    Concurrency,
    HeartbeatSecs,
    RunningJobs,
    StartedAt,
    LastSeenAt,
    StaleAt,
    StoppedAt,
}

/// The new table is built under this name, then renamed `workers`.
const NEXT: &str = "workers_next";

/// The columns both shapes share, in one order.
const SHARED: &str = "id, org_id, host, version, kinds, remote, concurrency, heartbeat_secs, \
     running_jobs, started_at, last_seen_at, stale_at, stopped_at";

/// The table `workers` in either shape, under the name `name`.
fn table(name: &str, per_owner: bool) -> TableCreateStatement {
    let mut t = Table::create();
    t.table(Alias::new(name));
    if per_owner {
        t.col(string_len(Workers::Owner, 36))
            .col(string_len(Workers::Id, 200))
            .primary_key(Index::create().col(Workers::Owner).col(Workers::Id));
    } else {
        t.col(string_len(Workers::Id, 200).primary_key());
    }
    t.col(string_len_null(Workers::OrgId, 36))
        .col(string_len(Workers::Host, 255))
        .col(string_len(Workers::Version, 64))
        .col(json(Workers::Kinds))
        .col(boolean(Workers::Remote))
        .col(integer(Workers::Concurrency))
        .col(integer(Workers::HeartbeatSecs))
        .col(integer(Workers::RunningJobs).default(0))
        .col(timestamp_with_time_zone(Workers::StartedAt))
        .col(timestamp_with_time_zone(Workers::LastSeenAt))
        .col(timestamp_with_time_zone(Workers::StaleAt))
        .col(timestamp_with_time_zone_null(Workers::StoppedAt));
    if per_owner {
        // The owner is the org, or '' for the platform: never anything else, and an org
        // id is never empty (it would stand among the platform's rows). Every branch is
        // false, never NULL, for a row it does not describe (a NULL passes a CHECK).
        t.check(Expr::cust(
            "(org_id IS NULL AND owner = '') \
             OR (org_id IS NOT NULL AND org_id <> '' AND owner = org_id)",
        ));
    }
    t.to_owned()
}

/// Swaps the table `workers` for `workers_next`, filled by `copy`, and puts back the
/// indexes and the row-level security of `workers`. Per owner, one org's rows are read
/// off the primary key (owner, id), so `ix_workers_org_id` goes; back in one namespace it
/// returns.
async fn swap(manager: &SchemaManager<'_>, per_owner: bool, copy: &str) -> Result<(), DbErr> {
    manager.create_table(table(NEXT, per_owner)).await?;
    crate::exec_across_orgs(manager, &[copy]).await?;
    manager
        .drop_table(Table::drop().table(Workers::Table).to_owned())
        .await?;
    manager
        .rename_table(
            Table::rename()
                .table(Alias::new(NEXT), Workers::Table)
                .to_owned(),
        )
        .await?;
    crate::exec(
        manager,
        "CREATE INDEX ix_workers_last_seen_at ON workers (last_seen_at)",
    )
    .await?;
    if !per_owner {
        crate::exec(
            manager,
            "CREATE INDEX ix_workers_org_id ON workers (org_id, id)",
        )
        .await?;
    }
    if manager.get_database_backend() == DbBackend::Postgres {
        // PostgreSQL named the constraints after the table they were made in.
        crate::exec(
            manager,
            "ALTER TABLE workers RENAME CONSTRAINT workers_next_pkey TO workers_pkey",
        )
        .await?;
        if per_owner {
            crate::exec(
                manager,
                "ALTER TABLE workers RENAME CONSTRAINT workers_next_check TO workers_owner_check",
            )
            .await?;
        }
    }
    protect(manager, "workers").await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let copy = format!(
            "INSERT INTO {NEXT} (owner, {SHARED}) SELECT COALESCE(org_id, ''), {SHARED} FROM workers"
        );
        swap(manager, true, &copy).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One row per id: the one of the lowest owner ('' is the platform's).
        let copy = format!(
            "INSERT INTO {NEXT} ({SHARED}) SELECT {SHARED} FROM workers w \
             WHERE NOT EXISTS (SELECT 1 FROM workers o WHERE o.id = w.id AND o.owner < w.owner)"
        );
        swap(manager, false, &copy).await
    }
}
