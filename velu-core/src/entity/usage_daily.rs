//! `usage_daily`: one row of counters per org, UTC day and task kind (`''` for the org's
//! API requests); see `usage/`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_daily")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_id: String,
    /// `YYYY-MM-DD` (UTC).
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: String,
    /// A task kind, or `''` for the org-wide row.
    #[sea_orm(primary_key, auto_increment = false)]
    pub task: String,
    /// Which of the row's shards (concurrent writers add to different ones; a report sums
    /// them): see `db::usage`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub shard: i16,
    pub jobs_submitted: i64,
    pub jobs_succeeded: i64,
    pub jobs_failed: i64,
    pub run_ms: i64,
    pub api_requests: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
