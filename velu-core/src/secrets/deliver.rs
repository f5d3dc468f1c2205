//! Delivering secrets to a job: the values of the names its task kind lists, opened for
//! the job's org, as the environment the worker gives the command. Used by the local
//! worker (`LocalAccess`) and the worker protocol's `worker.secrets`; both cross orgs on
//! the worker's side (a platform worker serves every org), so the org comes from the job
//! row the lease proves, never from a caller.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::seal::{Binding, Sealed, open};
use crate::entity::org_secrets;
use crate::{CoreError, CoreResult, Velu};

/// Most secrets one task kind may name.
pub const MAX_SECRETS_PER_TASK: usize = 32;

/// Secret values for one job, by name. `Debug` shows names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretEnv(Vec<(String, String)>);

impl std::fmt::Debug for SecretEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| name))
            .finish()
    }
}

impl SecretEnv {
    /// Wraps name and value pairs (a remote worker's, from `worker.secrets`).
    pub fn new(pairs: Vec<(String, String)>) -> SecretEnv {
        SecretEnv(pairs)
    }

    /// The pairs, as environment variables.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Names, in the order given.
    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// True when there is nothing to deliver.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The pairs, by value.
    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.0
    }
}

/// The values of `names` in org `org_id`, opened with this process's key. A name the org
/// has not set is `not_found` (`secret `X``); no key is `config`; a value sealed under
/// another key is `config` (naming both key ids); one that does not open is `internal`.
/// No error carries a value.
pub async fn secrets_for_org(velu: &Velu, org_id: &str, names: &[String]) -> CoreResult<SecretEnv> {
    if names.is_empty() {
        return Ok(SecretEnv::default());
    }
    let kek = velu.secrets_kek()?;
    // Worker side: the org is the claimed job's, and the transaction sees that org only.
    let tx = velu.db().read_tx().await?;
    crate::db::rls::bind_org(&tx, org_id).await?;
    let rows = org_secrets::Entity::find()
        .filter(org_secrets::Column::OrgId.eq(org_id))
        .filter(org_secrets::Column::Name.is_in(names.iter().map(String::as_str)))
        .all(&tx)
        .await?;
    tx.commit().await?;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let row = rows
            .iter()
            .find(|r| &r.name == name)
            .ok_or_else(|| CoreError::not_found("secret", name.as_str()))?;
        if row.key_id != kek.id() {
            return Err(CoreError::Config(format!(
                "secret `{name}` is sealed under key {} but this process has key {}; \
                 give it the same secrets key, or run `velu-cli secret rekey`",
                row.key_id,
                kek.id()
            )));
        }
        let at = Binding {
            org_id: &row.org_id,
            name: &row.name,
            version: row.version,
        };
        let sealed = Sealed {
            nonce: row.nonce.clone(),
            ciphertext: row.ciphertext.clone(),
        };
        let value = open(kek, at, &sealed).ok_or_else(|| {
            tracing::error!(org_id = %row.org_id, name = %row.name, "a secret does not open");
            CoreError::internal(format!("secret `{name}` does not open"))
        })?;
        let value = String::from_utf8(value)
            .map_err(|_| CoreError::internal(format!("secret `{name}` is not UTF-8")))?;
        out.push((name.clone(), value));
    }
    Ok(SecretEnv(out))
}
