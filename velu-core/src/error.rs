//! [`CoreError`]: the one error type of every Velu operation.
//!
//! Each variant is a failure *class* with a stable machine code ([`CoreError::code`]).
//! Front ends never invent errors of their own: the HTTP facade maps the code to a status
//! and the CLI maps it to an exit code, each from one table (see `docs/errors.md`).

use std::time::Duration;

use sea_orm::DbErr;

/// Result alias used across velu-core.
pub type CoreResult<T> = Result<T, CoreError>;

/// Every way a Velu operation can fail.
///
/// Messages are written for the person who sent the request: they never contain secrets,
/// SQL or internal paths. The full cause of an `internal` or `unavailable` error is logged
/// where it happens, not returned.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The resource does not exist, or belongs to another organization (indistinguishable
    /// on purpose).
    #[error("{resource} `{id}` not found")]
    NotFound {
        /// What was looked up: `organization`, `api key`, `job`, ...
        resource: &'static str,
        /// The identifier as the caller gave it.
        id: String,
    },

    /// The request conflicts with the current state (an existing slug, a revoked key, ...).
    #[error("{message}")]
    Conflict {
        /// What conflicts, in words.
        message: String,
    },

    /// A field of the request is malformed or out of range.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The offending field (`slug`, `plan`, `limit`, `payload`, `body`, ...).
        field: String,
        /// Why it was refused.
        reason: String,
    },

    /// No credential, or one that is malformed, unknown, wrong, revoked or expired.
    /// Deliberately carries no detail, so nothing is learned from it.
    #[error("missing or invalid API key")]
    Unauthorized,

    /// A signed request (a billing event) whose signature is missing, malformed, wrong,
    /// or outside the time window; the reason says which.
    #[error("billing signature refused: {reason}")]
    BadSignature {
        /// `missing`, `malformed`, `mismatch`, `stale` or `future`, then details.
        reason: String,
    },

    /// The credential is valid but lacks a scope.
    #[error("this operation needs the `{scope}` scope")]
    Forbidden {
        /// The scope that is missing.
        scope: String,
    },

    /// The organization's plan does not allow this; a higher plan does.
    #[error("{what} needs the `{plan}` plan or higher")]
    UpgradeRequired {
        /// The lowest plan that allows it.
        plan: String,
        /// What was attempted (`task `execute``, ...).
        what: String,
    },

    /// Too many requests; try again after the given delay.
    #[error("rate limit exceeded; retry after {} s", retry_after.as_secs().max(1))]
    RateLimited {
        /// How long to wait before the next attempt.
        retry_after: Duration,
    },

    /// A plan quota (queued jobs, API keys, ...) is used up.
    #[error("{what}: the plan allows {limit}")]
    QuotaExceeded {
        /// Which quota.
        what: String,
        /// The plan's limit.
        limit: u64,
    },

    /// The request body is larger than allowed.
    #[error("payload is {size} bytes; the limit is {limit} bytes")]
    PayloadTooLarge {
        /// Size of what was sent, in bytes.
        size: u64,
        /// The limit, in bytes.
        limit: u64,
    },

    /// The database (or, for the CLI's remote mode, the server) is unreachable or refused
    /// the connection; the text says which.
    #[error("unavailable: {0}")]
    Unavailable(String),

    /// The database schema does not match this binary.
    #[error("{0}")]
    SchemaMismatch(String),

    /// Configuration is missing or wrong (pepper, tasks file, home directory, ...).
    #[error("configuration: {0}")]
    Config(String),

    /// A bug or an unexpected failure; details are in the log, not here.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl CoreError {
    /// The stable machine code of this error, the key of the HTTP and CLI tables.
    pub fn code(&self) -> &'static str {
        match self {
            CoreError::NotFound { .. } => "not_found",
            CoreError::Conflict { .. } => "conflict",
            CoreError::Invalid { .. } => "invalid",
            CoreError::Unauthorized => "unauthorized",
            CoreError::BadSignature { .. } => "bad_signature",
            CoreError::Forbidden { .. } => "forbidden",
            CoreError::UpgradeRequired { .. } => "upgrade_required",
            CoreError::RateLimited { .. } => "rate_limited",
            CoreError::QuotaExceeded { .. } => "quota_exceeded",
            CoreError::PayloadTooLarge { .. } => "payload_too_large",
            CoreError::Unavailable(_) => "unavailable",
            CoreError::SchemaMismatch(_) => "schema_mismatch",
            CoreError::Config(_) => "config",
            CoreError::Internal(_) => "internal",
        }
    }

    /// Every code, in table order; the HTTP and CLI tables are tested against this list.
    pub const CODES: &'static [&'static str] = &[
        "not_found",
        "conflict",
        "invalid",
        "unauthorized",
        "bad_signature",
        "forbidden",
        "upgrade_required",
        "rate_limited",
        "quota_exceeded",
        "payload_too_large",
        "unavailable",
        "schema_mismatch",
        "config",
        "internal",
    ];

    /// `not_found` for `resource` with the caller's identifier.
    pub fn not_found(resource: &'static str, id: impl Into<String>) -> Self {
        CoreError::NotFound {
            resource,
            id: id.into(),
        }
    }

    /// `invalid` for `field` with a reason.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        CoreError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// `conflict` with a message.
    pub fn conflict(message: impl Into<String>) -> Self {
        CoreError::Conflict {
            message: message.into(),
        }
    }

    /// `internal` from any error; the caller should have logged it with context.
    pub fn internal(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        CoreError::Internal(err.into())
    }

    /// `forbidden` naming the missing scope.
    pub fn forbidden(scope: impl std::fmt::Display) -> Self {
        CoreError::Forbidden {
            scope: scope.to_string(),
        }
    }

    /// Extra machine-readable members for an error body (HTTP problem extensions).
    pub fn extensions(&self) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::json;
        let mut map = serde_json::Map::new();
        match self {
            CoreError::Invalid { field, .. } => {
                map.insert("field".into(), json!(field));
            }
            CoreError::Forbidden { scope } => {
                map.insert("scope".into(), json!(scope));
            }
            CoreError::UpgradeRequired { plan, .. } => {
                map.insert("plan".into(), json!(plan));
            }
            CoreError::RateLimited { retry_after } => {
                map.insert("retry_after".into(), json!(retry_after_secs(*retry_after)));
            }
            CoreError::QuotaExceeded { limit, .. } | CoreError::PayloadTooLarge { limit, .. } => {
                map.insert("limit".into(), json!(limit));
            }
            _ => {}
        }
        map
    }
}

/// Whole seconds to wait, rounded up and at least one (the `Retry-After` value).
pub fn retry_after_secs(d: Duration) -> u64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.max(1)
}

impl From<DbErr> for CoreError {
    fn from(err: DbErr) -> Self {
        classify_db_error(err)
    }
}

/// Sorts a database error into `unavailable` (the server cannot be reached or is busy)
/// or `internal` (anything else; logged here with its full text).
fn classify_db_error(err: DbErr) -> CoreError {
    let text = err.to_string();
    let unreachable = matches!(err, DbErr::ConnectionAcquire(_) | DbErr::Conn(_))
        || text.contains("Connection refused")
        || text.contains("connection closed")
        || text.contains("database is locked")
        || text.contains("PoolTimedOut")
        || text.contains("pool timed out");
    if unreachable {
        tracing::warn!(error = %text, "database unavailable");
        CoreError::Unavailable("the database cannot be reached; try again shortly".into())
    } else {
        tracing::error!(error = %text, "database error");
        CoreError::Internal(Box::new(err))
    }
}

/// True when the database error is a unique-constraint violation (on either backend).
pub(crate) fn is_unique_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_list_matches_variants() {
        let samples = [
            CoreError::not_found("job", "x"),
            CoreError::conflict("c"),
            CoreError::invalid("f", "r"),
            CoreError::Unauthorized,
            CoreError::BadSignature {
                reason: "stale".into(),
            },
            CoreError::forbidden("jobs:read"),
            CoreError::UpgradeRequired {
                plan: "hero".into(),
                what: "task `echo`".into(),
            },
            CoreError::RateLimited {
                retry_after: Duration::from_millis(1500),
            },
            CoreError::QuotaExceeded {
                what: "queued jobs".into(),
                limit: 10,
            },
            CoreError::PayloadTooLarge { size: 2, limit: 1 },
            CoreError::Unavailable("down".into()),
            CoreError::SchemaMismatch("behind".into()),
            CoreError::Config("pepper".into()),
            CoreError::internal("boom"),
        ];
        let codes: Vec<_> = samples.iter().map(CoreError::code).collect();
        assert_eq!(codes, CoreError::CODES);
        // Exhaustive: a new variant does not compile until it has an ordinal here, and
        // then fails until it has a sample above and a code in `CODES`.
        fn ordinal(e: &CoreError) -> usize {
            match e {
                CoreError::NotFound { .. } => 0,
                CoreError::Conflict { .. } => 1,
                CoreError::Invalid { .. } => 2,
                CoreError::Unauthorized => 3,
                CoreError::BadSignature { .. } => 4,
                CoreError::Forbidden { .. } => 5,
                CoreError::UpgradeRequired { .. } => 6,
                CoreError::RateLimited { .. } => 7,
                CoreError::QuotaExceeded { .. } => 8,
                CoreError::PayloadTooLarge { .. } => 9,
                CoreError::Unavailable(_) => 10,
                CoreError::SchemaMismatch(_) => 11,
                CoreError::Config(_) => 12,
                CoreError::Internal(_) => 13,
            }
        }
        const VARIANTS: usize = 14;
        let ordinals: Vec<_> = samples.iter().map(ordinal).collect();
        assert_eq!(
            ordinals,
            (0..VARIANTS).collect::<Vec<_>>(),
            "one sample per variant"
        );
        assert_eq!(CoreError::CODES.len(), VARIANTS, "one code per variant");
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }

    #[test]
    fn messages_name_the_field_and_scope() {
        assert_eq!(
            CoreError::invalid("slug", "must match ^[a-z0-9][a-z0-9-]{1,62}$").to_string(),
            "invalid slug: must match ^[a-z0-9][a-z0-9-]{1,62}$"
        );
        assert_eq!(
            CoreError::forbidden("jobs:submit").to_string(),
            "this operation needs the `jobs:submit` scope"
        );
    }
}
