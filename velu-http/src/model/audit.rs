//! The audit log.

use poem_openapi::types::Any;
use velu_core::audit;

use super::common::ts;
use super::mirror::mirror;

mirror! {
    /// One audited action.
    pub struct AuditEvent from audit::AuditEvent {
        /// Event id (UUIDv7).
        pub id: String,
        /// The org concerned.
        #[oai(nullable)]
        pub org_id: Option<String>,
        /// `cli`, `api_key`, `schedule` or `billing`; `platform` for what the platform did
        /// (the operator, a platform key), as an org's key reads it.
        pub actor_type: String,
        /// OS user, key id, schedule id or billing event id; `platform` as above.
        pub actor_id: String,
        /// What happened, e.g. `key.revoke`.
        pub action: String,
        /// `org`, `api_key` or `job`.
        pub target_type: String,
        /// Its id.
        pub target_id: String,
        /// Non-secret details.
        pub details: Any<serde_json::Value> = |d| Any(d),
        /// RFC 3339 UTC.
        pub created_at: String = |t| ts(t),
    }
}
