//! `schedule_ticks`: the ticks of each schedule that were handled; its primary key
//! (`schedule_id`, `tick_at`) lets one process only handle a tick.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "schedule_ticks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub schedule_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub tick_at: DateTimeUtc,
    /// The job queued for the tick; `None` when the enqueue was refused.
    pub job_id: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
