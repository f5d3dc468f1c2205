//! Checks on a new key: its name, expiry, name clash and the plan's key quota.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};

use super::access::*;
use super::documents::*;
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
        return Err(CoreError::conflict(format!(
            "an active key named `{name}` already exists"
        )));
    }
    Ok(())
}

pub(super) async fn ensure_key_quota<C: ConnectionTrait>(
    conn: &C,
    org: &organizations::Model,
    at: DateTime<Utc>,
) -> CoreResult<()> {
    let plan = current_plan(conn, &org.id).await?;
    let limit = plan.limits().api_keys;
    let active = api_keys::Entity::find()
        .filter(api_keys::Column::OrgId.eq(org.id.as_str()))
        .filter(api_keys::Column::RevokedAt.is_null())
        .filter(
            Condition::any()
                .add(api_keys::Column::ExpiresAt.is_null())
                .add(api_keys::Column::ExpiresAt.gt(at)),
        )
        .count(conn)
        .await?;
    if active >= u64::from(limit) {
        return Err(CoreError::QuotaExceeded {
            what: format!("active API keys on the {plan} plan"),
            limit: u64::from(limit),
        });
    }
    Ok(())
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
