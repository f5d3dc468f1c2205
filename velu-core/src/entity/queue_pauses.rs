//! `queue_pauses`: one row per paused org queue or paused task kind.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "queue_pauses")]
pub struct Model {
    /// `org` or `task` (`queue::PauseScope`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub scope: String,
    /// The org id, or the task kind's name.
    #[sea_orm(primary_key, auto_increment = false)]
    pub target: String,
    pub paused_at: DateTimeUtc,
    pub actor_type: String,
    pub actor_id: String,
    /// The org of the key that paused (migration m20261207_000029); `NULL` for the
    /// operator and platform keys.
    pub actor_org_id: Option<String>,
    pub reason: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
