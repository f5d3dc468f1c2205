//! `job_events`: each job's bounded event stream (`events`, docs/events.md).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "job_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub seq: i64,
    pub job_id: String,
    pub org_id: String,
    pub kind: String,
    pub at: DateTimeUtc,
    pub attempt: Option<i32>,
    pub worker_id: Option<String>,
    pub status: Option<String>,
    pub error_code: Option<String>,
    pub run_at: Option<DateTimeUtc>,
    pub detail: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
