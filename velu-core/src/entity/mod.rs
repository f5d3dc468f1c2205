//! sea-orm entities, one per table. Rows, not wire documents: services turn them into the
//! documents the front ends print.

pub mod api_keys;
pub mod audit_events;
pub mod billing_events;
pub mod job_attempts;
pub mod job_counts;
pub mod job_events;
pub mod jobs;
pub mod org_secrets;
pub mod organizations;
pub mod queue_pauses;
pub mod schedule_ticks;
pub mod schedules;
pub mod usage_daily;
pub mod workers;
