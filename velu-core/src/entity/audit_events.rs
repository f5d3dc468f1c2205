//! `audit_events`: one row per mutation, written in the mutation's transaction.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: Option<String>,
    pub actor_type: String,
    pub actor_id: String,
    /// The org of the key that acted (migration m20261207_000029); `NULL` for the
    /// operator, platform keys, schedules and billing events.
    pub actor_org_id: Option<String>,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub details: Json,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
