//! `secret rekey`: the platform operator's rotation of the key-encryption key. Every value
//! sealed under the current key (this process's) is opened and sealed again under the new
//! one, in batches, each batch one transaction; values already under the new key are
//! counted and left alone, so an interrupted run is simply run again. Then the operator
//! gives every process the new key. Crosses orgs by nature: only the operator (the CLI,
//! holding both keys) runs it; there is no HTTP route.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

use crate::db::CrossOrg;

use super::seal::{Binding, Sealed, open, seal};
use super::{Kek, RekeyReport};
use crate::entity::org_secrets;
use crate::principal::{ActorType, Principal};
use crate::scopes::Scope;
use crate::{CoreError, CoreResult, Velu};

/// Rows re-sealed per transaction.
const BATCH: u64 = 100;

/// Re-seals every secret from this process's key to `new`. Only the operator (the CLI,
/// `admin:orgs:manage`); `invalid` when `new` is the current key; `internal` (naming the
/// org id and secret name, never the value) when a value under the current key does not
/// open (its row was altered), with the rows before it already re-sealed.
pub async fn rekey_secrets(velu: &Velu, who: &Principal, new: &Kek) -> CoreResult<RekeyReport> {
    who.require(Scope::OrgsManage)?;
    if who.actor.kind != ActorType::Cli {
        return Err(CoreError::forbidden(
            "the platform operator (velu-cli secret rekey)",
        ));
    }
    let old = velu.secrets_kek()?;
    if old.id() == new.id() {
        return Err(CoreError::invalid(
            "new_key",
            "the new key is the key in use; give the key to rotate to",
        ));
    }
    let mut rekeyed = 0;
    // Crosses orgs (the platform's key rotation): no tenancy entry, by design.
    let mut after = String::new();
    loop {
        let tx = velu.db().cross_org_tx(CrossOrg::SecretsRekey).await?;
        let rows = org_secrets::Entity::find()
            .filter(org_secrets::Column::KeyId.eq(old.id()))
            .filter(org_secrets::Column::Id.gt(after.as_str()))
            .order_by_asc(org_secrets::Column::Id)
            .limit(BATCH)
            .all(&tx)
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.id.clone();
        for row in rows {
            let at = Binding {
                org_id: &row.org_id,
                name: &row.name,
                version: row.version,
            };
            let sealed = Sealed {
                nonce: row.nonce.clone(),
                ciphertext: row.ciphertext.clone(),
            };
            let Some(value) = open(old, at, &sealed) else {
                tracing::error!(org_id = %row.org_id, name = %row.name, "a secret does not open under its own key");
                return Err(CoreError::internal(format!(
                    "secret `{}` of org {} does not open under key {}",
                    row.name,
                    row.org_id,
                    old.id()
                )));
            };
            let resealed = seal(new, at, &value)?;
            let mut active = row.into_active_model();
            active.key_id = Set(new.id().to_owned());
            active.nonce = Set(resealed.nonce);
            active.ciphertext = Set(resealed.ciphertext);
            active.update(&tx).await?;
            rekeyed += 1;
        }
        tx.commit().await?;
    }
    let read = velu.db().cross_org_read_tx(CrossOrg::SecretsRekey).await?;
    let conn = &read;
    let under_new = org_secrets::Entity::find()
        .filter(org_secrets::Column::KeyId.eq(new.id()))
        .count(conn)
        .await?;
    let already = under_new.saturating_sub(rekeyed);
    let other_key = org_secrets::Entity::find()
        .filter(org_secrets::Column::KeyId.is_not_in([old.id(), new.id()]))
        .count(conn)
        .await?;
    read.commit().await?;
    let tx = velu.db().cross_org_tx(CrossOrg::Platform).await?;
    crate::audit::record(
        &tx,
        who,
        crate::audit::Record {
            org_id: None,
            action: "secrets.rekey",
            target_type: "secrets_key",
            target_id: new.id(),
            details: serde_json::json!({ "from_key_id": old.id(), "rekeyed": rekeyed }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(RekeyReport {
        from_key_id: old.id().to_owned(),
        to_key_id: new.id().to_owned(),
        rekeyed,
        already,
        other_key,
    })
}
