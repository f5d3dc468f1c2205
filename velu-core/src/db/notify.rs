//! Change notifications between processes sharing one PostgreSQL database.
//!
//! A mutation that other nodes must see at once (a key revoked or rotated, a plan changed,
//! new jobs queued) sends a [`Change`] with `pg_notify` inside its transaction, so it is
//! delivered exactly when the change commits. Every node runs one listener that turns
//! notifications back into [`Change`]s. When the listener loses its connection it reports
//! [`Change::Resync`]: notifications may have been missed, so caches must be dropped.
//!
//! SQLite has no notifications; there, caches rely on their short TTL and workers poll.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::postgres::{PgListener, PgPoolOptions};
use sea_orm::{ConnectionTrait, Statement};

use super::{Backend, Db};
use crate::CoreResult;

const AUTH_CHANNEL: &str = "velu_auth";
const JOBS_CHANNEL: &str = "velu_jobs";

/// Something that changed and that other processes may have cached or be waiting for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// An API key (by kid) was revoked, rotated or otherwise changed.
    Key(String),
    /// An organization (by id) changed plan.
    Org(String),
    /// Jobs became ready to run for an organization (by id).
    Jobs(String),
    /// Notifications may have been lost: forget everything cached.
    Resync,
}

impl Change {
    fn channel_and_payload(&self) -> Option<(&'static str, String)> {
        match self {
            Change::Key(kid) => Some((AUTH_CHANNEL, format!("key:{kid}"))),
            Change::Org(id) => Some((AUTH_CHANNEL, format!("org:{id}"))),
            Change::Jobs(org) => Some((JOBS_CHANNEL, org.clone())),
            Change::Resync => None,
        }
    }

    fn parse(channel: &str, payload: &str) -> Option<Change> {
        match channel {
            AUTH_CHANNEL => match payload.split_once(':') {
                Some(("key", kid)) => Some(Change::Key(kid.to_owned())),
                Some(("org", id)) => Some(Change::Org(id.to_owned())),
                _ => None,
            },
            JOBS_CHANNEL => Some(Change::Jobs(payload.to_owned())),
            _ => None,
        }
    }
}

/// Queues `change` for delivery to every listening node when the surrounding transaction
/// commits. Does nothing on SQLite.
pub async fn send<C: ConnectionTrait>(conn: &C, change: &Change) -> CoreResult<()> {
    if conn.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(());
    }
    let Some((channel, payload)) = change.channel_and_payload() else {
        return Ok(());
    };
    conn.execute_raw(Statement::from_sql_and_values(
        sea_orm::DbBackend::Postgres,
        "SELECT pg_notify($1, $2)",
        [channel.into(), payload.into()],
    ))
    .await?;
    Ok(())
}

/// [`send`] of several changes in one statement (PostgreSQL; nothing on SQLite).
pub async fn send_many<C: ConnectionTrait>(conn: &C, changes: &[Change]) -> CoreResult<()> {
    if conn.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(());
    }
    let Some(pairs) = pairs_param(changes)? else {
        return Ok(());
    };
    conn.execute_raw(Statement::from_sql_and_values(
        sea_orm::DbBackend::Postgres,
        send_many_sql(1),
        [pairs],
    ))
    .await?;
    Ok(())
}

/// `changes` as the parameter of [`send_many_sql`] (a JSON array of `[channel, payload]`),
/// or `None` when none of them is sent.
pub(crate) fn pairs_param(changes: &[Change]) -> CoreResult<Option<sea_orm::Value>> {
    let pairs: Vec<(&str, String)> = changes
        .iter()
        .filter_map(Change::channel_and_payload)
        .collect();
    if pairs.is_empty() {
        return Ok(None);
    }
    Ok(Some(crate::db::sql::json_param(&pairs)?))
}

/// PostgreSQL: the `SELECT` that sends the notifications of parameter `$param` (see
/// [`pairs_param`]), one row per notification; a statement must read its rows for them to
/// be sent (a CTE nobody reads is not run).
pub(crate) fn send_many_sql(param: usize) -> String {
    format!("SELECT pg_notify(x ->> 0, x ->> 1) FROM jsonb_array_elements(${param}::jsonb) AS x")
}

/// A callback that receives every change seen by the listener.
pub type ChangeHandler = Arc<dyn Fn(Change) + Send + Sync>;

/// Starts the listener task on PostgreSQL; returns `None` on SQLite.
pub fn spawn_listener(db: &Db, handler: ChangeHandler) -> Option<tokio::task::JoinHandle<()>> {
    if db.backend() != Backend::Postgres {
        return None;
    }
    // A pool of its own, of one connection, with the same options (role included): a
    // listener keeps its connection for good, and taken from the org-scoped pool it would
    // leave `--db-pool-size 1` nothing to answer requests with.
    let options = db.conn().get_postgres_connection_pool().connect_options();
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_lazy_with((*options).clone());
    Some(tokio::spawn(async move {
        loop {
            match PgListener::connect_with(&pool).await {
                Ok(mut listener) => {
                    if let Err(e) = listener.listen_all([AUTH_CHANNEL, JOBS_CHANNEL]).await {
                        tracing::warn!(error = %e, "LISTEN failed; retrying");
                    } else {
                        // Anything could have happened while we were not listening.
                        handler(Change::Resync);
                        pump(&mut listener, &handler).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "notification listener cannot connect"),
            }
            handler(Change::Resync);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }))
}

/// Delivers notifications until the connection is lost.
async fn pump(listener: &mut PgListener, handler: &ChangeHandler) {
    loop {
        match listener.try_recv().await {
            Ok(Some(n)) => {
                if let Some(change) = Change::parse(n.channel(), n.payload()) {
                    handler(change);
                }
            }
            Ok(None) => {
                tracing::warn!("notification connection lost; resyncing");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "notification listener failed");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip_through_channel_payloads() {
        for change in [
            Change::Key("abc".into()),
            Change::Org("0190-x".into()),
            Change::Jobs("0190-y".into()),
        ] {
            let (channel, payload) = change.channel_and_payload().unwrap();
            assert_eq!(Change::parse(channel, &payload), Some(change));
        }
        assert_eq!(Change::parse("velu_auth", "nonsense"), None);
        assert!(Change::Resync.channel_and_payload().is_none());
    }
}
