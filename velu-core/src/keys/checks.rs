//! Checks on a new key: its name, expiry, name clash and the plan's key quota.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};

use super::access::*;
use super::documents::*;
use crate::admission::{self, Quota};
use crate::entity::{api_keys, organizations};
use crate::orgs::current_plan;
use crate::time::{self};
use crate::{CoreError, CoreResult};

/// Validates and trims a key name.
pub(super) fn validate_key_name(name: &str) -> CoreResult<String> {
    let name = name.trim();
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' ');
    if name.is_empty() || name.chars().count() > MAX_KEY_NAME || !name.chars().all(ok_char) {
        return Err(CoreError::invalid(
            "name",
            format!("1 to {MAX_KEY_NAME} characters: letters, digits, space, '-', '_', '.'"),
        ));
    }
    Ok(name.to_owned())
}

pub(super) fn parse_expiry(
    text: Option<&str>,
    at: DateTime<Utc>,
) -> CoreResult<Option<DateTime<Utc>>> {
    let Some(text) = text else { return Ok(None) };
    let t = time::parse_within("expires_at", text, at, time::KEY_EXPIRY_HORIZON)?;
    if t <= at {
        return Err(CoreError::invalid("expires_at", "must be in the future"));
    }
    Ok(Some(t))
}

pub(super) async fn ensure_name_free<C: ConnectionTrait>(
    conn: &C,
    org: &Option<organizations::Model>,
    name: &str,
) -> CoreResult<()> {
    let taken = api_keys::Entity::find()
        .filter(owner_filter(org))
        .filter(api_keys::Column::Name.eq(name))
        .filter(api_keys::Column::RevokedAt.is_null())
        .count(conn)
        .await?;
    if taken > 0 {
        return Err(name_taken(name));
    }
    Ok(())
}

/// The `conflict` of a name an active key of the same owner holds.
pub(super) fn name_taken(name: &str) -> CoreError {
    CoreError::conflict(format!("an active key named `{name}` already exists"))
}

pub(super) async fn ensure_key_quota<C: ConnectionTrait>(
    conn: &C,
    org: &organizations::Model,
    at: DateTime<Utc>,
) -> CoreResult<()> {
    // Creates and imports for this org take turns from here to their commit: two cannot
    // both take the last place (admission.rs).
    admission::hold(conn, Quota::ApiKeys, &[org.id.as_str()]).await?;
    let plan = current_plan(conn, &org.id).await?;
    let limit = u64::from(plan.limits().api_keys);
    // The org's unrevoked keys (one counter row, kept by triggers) bound its active ones:
    // below the limit, nothing is counted.
    if unrevoked_keys(conn, &org.id).await? < limit {
        return Ok(());
    }
    // At the limit, some of them may have expired: count the active ones, at most `limit`
    // index entries (ix_api_keys_org_active: revoked and expired keys are outside the
    // ranges read, and counting stops at the limit).
    let active = active_keys_up_to(conn, &org.id, at, limit).await?;
    if active >= limit {
        return Err(CoreError::QuotaExceeded {
            what: format!("active API keys on the {plan} plan"),
            limit,
        });
    }
    Ok(())
}

/// How many of `org_id`'s keys are not revoked (expired ones included), from its counter
/// row in `key_counts` (migration m20261205_000023).
async fn unrevoked_keys<C: ConnectionTrait>(conn: &C, org_id: &str) -> CoreResult<u64> {
    let backend = conn.get_database_backend();
    let row = conn
        .query_one_raw(crate::db::sql::stmt(
            backend,
            "SELECT unrevoked FROM key_counts WHERE org_id = $1",
            vec![org_id.to_owned().into()],
        ))
        .await?;
    let n: i64 = match row {
        Some(r) => r.try_get("", "unrevoked")?,
        None => 0,
    };
    Ok(n.max(0) as u64)
}

/// How many of `org_id`'s keys are active at `at`, counting no further than `cap`.
async fn active_keys_up_to<C: ConnectionTrait>(
    conn: &C,
    org_id: &str,
    at: DateTime<Utc>,
    cap: u64,
) -> CoreResult<u64> {
    let backend = conn.get_database_backend();
    let sql = "SELECT CAST(count(*) AS BIGINT) AS n FROM (
                 SELECT 1 FROM api_keys
                 WHERE org_id = $1 AND revoked_at IS NULL
                   AND (expires_at IS NULL OR expires_at > $2)
                 LIMIT $3) AS active";
    let cap = i64::try_from(cap).unwrap_or(i64::MAX);
    let row = conn
        .query_one_raw(crate::db::sql::stmt(
            backend,
            sql,
            vec![org_id.to_owned().into(), at.into(), cap.into()],
        ))
        .await?;
    let n: i64 = match row {
        Some(r) => r.try_get("", "n")?,
        None => 0,
    };
    Ok(n.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_are_checked() {
        assert_eq!(validate_key_name(" ci deploy ").unwrap(), "ci deploy");
        assert!(validate_key_name("").is_err());
        assert!(validate_key_name("bad/name").is_err());
        assert!(validate_key_name(&"x".repeat(101)).is_err());
    }
}
