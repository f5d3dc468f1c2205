//! `org_secrets`: each org's sealed secrets (see `crate::secrets`). Never a value in
//! clear: `ciphertext` is XChaCha20-Poly1305 under the key `key_id` names.

use sea_orm::entity::prelude::*;

#[derive(Clone, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "org_secrets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    /// `^[A-Z_][A-Z0-9_]{0,63}$`, unique in the org.
    pub name: String,
    /// 1 at the first set, one more at each set after.
    pub version: i64,
    /// Fingerprint of the key-encryption key that sealed this row.
    pub key_id: String,
    /// The 24-byte XChaCha20 nonce, random per seal.
    #[sea_orm(column_type = "Blob")]
    pub nonce: Vec<u8>,
    /// The sealed value with its 16-byte tag.
    #[sea_orm(column_type = "Blob")]
    pub ciphertext: Vec<u8>,
    pub updated_by_type: String,
    pub updated_by_id: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("org_secrets::Model")
            .field("org_id", &self.org_id)
            .field("name", &self.name)
            .field("version", &self.version)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
