//! A group's writes on PostgreSQL in one statement: the accepted jobs' rows, their
//! `queued` events, their audit records, the usage counters and the wake-ups, as
//! data-modifying CTEs over one JSON parameter (issue "Performance", target 3).
//!
//! One statement instead of six is five round trips fewer per group, and its text does not
//! depend on the group's size, so it is parsed and planned once per connection (a
//! multi-row `VALUES` list is a new statement for every size, which the connection's
//! statement cache keeps preparing again). SQLite, with no data-modifying CTEs and no
//! network between Velu and its database, writes the same rows with one statement each
//! (`grouped::write_accepted`).

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend};
use serde::Serialize;

use crate::CoreResult;
use crate::db::notify::{self, Change};
use crate::db::sql::{JsonField, json_param, json_records, stmt};
use crate::db::usage::submit_usage_cte;
use crate::entity::jobs;
use crate::events::EventKind;
use crate::ids::new_id;
use crate::jobs::JobStatus;
use crate::principal::Principal;
use crate::usage::day_of;

/// One accepted job as the statement reads it.
#[derive(Serialize)]
struct Row<'a> {
    id: &'a str,
    org_id: &'a str,
    task: &'a str,
    payload: &'a serde_json::Value,
    priority: i32,
    max_attempts: i32,
    run_at: DateTime<Utc>,
    actor_type: &'a str,
    actor_id: &'a str,
    /// The org of the key that submitted it, for its audit record (`Principal::key_org`).
    actor_org_id: Option<&'a str>,
    audit_id: String,
}

/// The fields of [`Row`], in order, with their SQL types.
const FIELDS: [(&str, JsonField); 11] = [
    ("id", JsonField::Text),
    ("org_id", JsonField::Text),
    ("task", JsonField::Text),
    ("payload", JsonField::Json),
    ("priority", JsonField::Int),
    ("max_attempts", JsonField::Int),
    ("run_at", JsonField::Time),
    ("actor_type", JsonField::Text),
    ("actor_id", JsonField::Text),
    ("actor_org_id", JsonField::Text),
    ("audit_id", JsonField::Text),
];

/// Writes `accepted` (each new job's row, built by the group, with the actor that submitted
/// it) and everything that goes with a submit, in one statement inside `tx`. The rows are
/// written exactly as built: queued, no attempts, created and updated at `at`.
pub(super) async fn write_accepted_pg(
    tx: &DatabaseTransaction,
    accepted: &[(&jobs::Model, &Principal)],
    changes: &[Change],
    at: DateTime<Utc>,
) -> CoreResult<()> {
    let rows: Vec<Row<'_>> = accepted
        .iter()
        .map(|(m, who)| Row {
            id: &m.id,
            org_id: &m.org_id,
            task: &m.task,
            payload: &m.payload,
            priority: m.priority,
            max_attempts: m.max_attempts,
            run_at: m.run_at,
            actor_type: who.actor.kind.as_str(),
            actor_id: &who.actor.id,
            actor_org_id: who.key_org(),
            audit_id: new_id(),
        })
        .collect();
    let source = json_records(DbBackend::Postgres, 1, &FIELDS);
    let sql = format!(
        "WITH s AS ({source}),
         j AS (
           INSERT INTO jobs (id, org_id, task, status, payload, priority, attempts, max_attempts,
             run_at, actor_type, actor_id, cancel_requested, created_at, updated_at)
           SELECT s.id, s.org_id, s.task, '{queued}', s.payload, s.priority, 0, s.max_attempts,
             s.run_at, s.actor_type, s.actor_id, false, $2, $2
           FROM s
         ),
         e AS (
           INSERT INTO job_events (job_id, org_id, kind, at, detail)
           SELECT s.id, s.org_id, '{queued_event}', $2, $3 FROM s
         ),
         a AS (
           INSERT INTO audit_events (id, org_id, actor_type, actor_id, actor_org_id, action,
             target_type, target_id, details, created_at)
           SELECT s.audit_id, s.org_id, s.actor_type, s.actor_id, s.actor_org_id, 'job.submit',
             'job', s.id,
             jsonb_build_object('task', s.task)::json, $2
           FROM s
         ),
         {usage},
         n AS ({notify})
         SELECT count(*) AS sent FROM n",
        queued = JobStatus::Queued.as_str(),
        queued_event = EventKind::Queued.as_str(),
        usage = submit_usage_cte("s", 4),
        notify = notify::send_many_sql(5),
    );
    let pairs = notify::pairs_param(changes)?.unwrap_or_else(|| "[]".to_owned().into());
    tx.query_all_raw(stmt(
        DbBackend::Postgres,
        &sql,
        vec![
            json_param(&rows)?,
            at.into(),
            crate::events::QueuedVia::Submit.as_str().to_owned().into(),
            day_of(at).into(),
            pairs,
        ],
    ))
    .await?;
    Ok(())
}
