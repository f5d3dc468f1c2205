//! `api_keys`: one row per key; the secret is stored only as a hash.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    /// The public key id (`kid`), also the primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub kid: String,
    /// `None` for platform keys.
    pub org_id: Option<String>,
    pub name: String,
    /// Space-separated scope names.
    pub scopes: String,
    /// argon2id PHC string, or `legacy-sha256$<base64url>` for imported keys.
    pub secret_hash: String,
    /// The hash before the last rotation, valid until `previous_valid_until` (grace).
    pub previous_secret_hash: Option<String>,
    pub previous_valid_until: Option<DateTimeUtc>,
    pub legacy: bool,
    pub created_by_type: String,
    pub created_by_id: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub expires_at: Option<DateTimeUtc>,
    pub revoked_at: Option<DateTimeUtc>,
    pub rotated_at: Option<DateTimeUtc>,
    pub last_used_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
