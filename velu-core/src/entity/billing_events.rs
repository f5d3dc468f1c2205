//! `billing_events`: every billing event Velu acted on, by the billing system's event id
//! (the primary key, so a replay finds the first outcome and one event applies once).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "billing_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_id: String,
    pub org_id: String,
    /// `plan.changed` (`billing::EventType`).
    pub event_type: String,
    /// The plan the event named.
    pub plan: String,
    /// The org's plan when the event arrived.
    pub from_plan: String,
    /// `applied` or `superseded` (`billing::EventOutcome`).
    pub outcome: String,
    /// The event's own `created`.
    pub event_created_at: DateTimeUtc,
    /// Lower-case hex SHA-256 of the body, to tell a replay from a reuse of the id.
    pub body_sha256: String,
    pub received_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
