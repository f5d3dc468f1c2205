//! `billing_events`: the billing system's events Velu acted on, one row per event id
//! (docs/billing.md). The primary key is what makes an event apply once, whatever the
//! number of deliveries and servers.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261125_000001_create_organizations::Organizations;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum BillingEvents {
    Table,
    EventId,
    OrgId,
    EventType,
    Plan,
    FromPlan,
    Outcome,
    EventCreatedAt,
    BodySha256,
    ReceivedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(BillingEvents::Table)
                    .col(string_len(BillingEvents::EventId, 128).primary_key())
                    .col(string_len(BillingEvents::OrgId, 36))
                    .col(string_len(BillingEvents::EventType, 32))
                    .col(string_len(BillingEvents::Plan, 16))
                    .col(string_len(BillingEvents::FromPlan, 16))
                    .col(string_len(BillingEvents::Outcome, 16))
                    .col(timestamp_with_time_zone(BillingEvents::EventCreatedAt))
                    .col(string_len(BillingEvents::BodySha256, 64))
                    .col(timestamp_with_time_zone(BillingEvents::ReceivedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_billing_events_org")
                            .from(BillingEvents::Table, BillingEvents::OrgId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // "Was a later event of this org applied already?" (out-of-order deliveries).
        crate::exec(
            manager,
            "CREATE INDEX ix_billing_events_org_created \
             ON billing_events (org_id, event_created_at)",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(BillingEvents::Table).to_owned())
            .await
    }
}
