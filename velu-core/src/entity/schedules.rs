//! `schedules`: per-org periodic jobs (see `crate::schedules`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "schedules")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    pub task: String,
    /// Five-field cron expression, as given.
    pub cron: String,
    /// IANA time zone name the cron is read in.
    pub timezone: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub payload: Json,
    pub paused: bool,
    /// The next tick to handle; `None` once the cron has no further tick.
    pub next_run_at: Option<DateTimeUtc>,
    pub last_enqueued_at: Option<DateTimeUtc>,
    pub last_job_id: Option<String>,
    pub last_error: Option<String>,
    pub created_by_type: String,
    pub created_by_id: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
