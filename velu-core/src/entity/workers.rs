//! `workers`: the fleet registry, one row per worker process (local or remote), keyed by
//! its owner and its id: each org, and the platform, has ids of its own.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "workers")]
pub struct Model {
    /// The org of an org's worker (as `org_id`), `''` for the platform's.
    #[sea_orm(primary_key, auto_increment = false)]
    pub owner: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: Option<String>,
    pub host: String,
    pub version: String,
    pub kinds: Json,
    pub remote: bool,
    pub concurrency: i32,
    pub heartbeat_secs: i32,
    pub running_jobs: i32,
    pub started_at: DateTimeUtc,
    pub last_seen_at: DateTimeUtc,
    pub stale_at: DateTimeUtc,
    pub stopped_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
