//! `usage_daily`: what each org used, per UTC day and task kind (docs/usage.md). Counters
//! only ever grow, by upserts (`INSERT ... ON CONFLICT DO UPDATE SET n = n + x`) made in
//! the same transaction as what they count: a submit, a batch, a job's end. The row whose
//! `task` is `''` (no task kind has an empty name) holds the org's API requests of the day.
//!
//! It also grants the new scope `usage:read` to every key that holds every other scope of
//! the admin role, so admin keys made before keep working as admins.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261125_000001_create_organizations::Organizations;
use crate::m20261201_000007_create_queue_pauses::rewrite_scopes;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum UsageDaily {
    Table,
    OrgId,
    Day,
    Task,
    JobsSubmitted,
    JobsSucceeded,
    JobsFailed,
    RunMs,
    ApiRequests,
}

/// The scope this step adds, and the admin role's scopes before it.
const NEW_SCOPE: &str = "usage:read";
const ADMIN_BEFORE: [&str; 5] = [
    "admin:api_keys:manage",
    "admin:queue:manage",
    "audit:read",
    "jobs:read",
    "jobs:submit",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UsageDaily::Table)
                    .col(string_len(UsageDaily::OrgId, 36))
                    // `YYYY-MM-DD`, the UTC day: text sorts and compares the same on both
                    // backends.
                    .col(string_len(UsageDaily::Day, 10))
                    // A task kind, or `''` for the org-wide row (API requests).
                    .col(string_len(UsageDaily::Task, 64))
                    .col(big_integer(UsageDaily::JobsSubmitted).default(0))
                    .col(big_integer(UsageDaily::JobsSucceeded).default(0))
                    .col(big_integer(UsageDaily::JobsFailed).default(0))
                    // Milliseconds of attempts that ended that day (integers add exactly).
                    .col(big_integer(UsageDaily::RunMs).default(0))
                    .col(big_integer(UsageDaily::ApiRequests).default(0))
                    .primary_key(
                        Index::create()
                            .col(UsageDaily::OrgId)
                            .col(UsageDaily::Day)
                            .col(UsageDaily::Task),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_usage_daily_org")
                            .from(UsageDaily::Table, UsageDaily::OrgId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The platform-wide report: every org's rows of a range of days.
        crate::exec(
            manager,
            "CREATE INDEX ix_usage_daily_day ON usage_daily (day, org_id, task)",
        )
        .await?;
        rewrite_scopes(manager, |scopes| {
            if ADMIN_BEFORE.iter().all(|s| scopes.contains(s)) && !scopes.contains(&NEW_SCOPE) {
                scopes.push(NEW_SCOPE);
            }
        })
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rewrite_scopes(manager, |scopes| scopes.retain(|s| *s != NEW_SCOPE)).await?;
        manager
            .drop_table(Table::drop().table(UsageDaily::Table).to_owned())
            .await
    }
}
