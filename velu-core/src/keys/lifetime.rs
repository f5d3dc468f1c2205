//! No key outlives the key that made it: a key with an expiry can neither create a key
//! that lasts longer nor rotate (and so take the secret of) one that does. Without this
//! rule a short-lived key handed to a contractor or a CI job could mint itself a permanent
//! successor with the same scopes.

use chrono::{DateTime, Utc};
use sea_orm::EntityTrait;

use crate::db::CrossOrg;
use crate::entity::api_keys;
use crate::principal::{ActorType, Principal};
use crate::time;
use crate::{CoreError, CoreResult, Velu};

/// When the key `who` acts with expires: `None` when it never does, or when `who` is no
/// key (the operator, a schedule, the billing system).
pub(crate) async fn caller_expiry(
    velu: &Velu,
    who: &Principal,
) -> CoreResult<Option<DateTime<Utc>>> {
    if who.actor.kind != ActorType::ApiKey {
        return Ok(None);
    }
    // The caller's own row, whatever org the operation is about (a platform key's row is
    // in no org).
    let tx = velu.db().cross_org_read_tx(CrossOrg::KeyLookup).await?;
    let row = api_keys::Entity::find_by_id(who.actor.id.clone())
        .one(&tx)
        .await?;
    tx.commit().await?;
    // A key that authenticated has a row; one that is gone since acts no further.
    let row = row.ok_or(CoreError::Unauthorized)?;
    Ok(row.expires_at)
}

/// Refuses `what` (an operation that issues keys that never expire: bootstrap, import)
/// to a caller whose key expires.
pub(crate) async fn refuse_if_expiring(velu: &Velu, who: &Principal, what: &str) -> CoreResult<()> {
    match caller_expiry(velu, who).await? {
        Some(limit) => Err(CoreError::invalid(
            "key",
            format!(
                "a key that expires ({}) cannot {what}: use a key without expiry",
                time::format(&limit)
            ),
        )),
        None => Ok(()),
    }
}

/// Refuses a new key lasting until `wanted` (`None`: forever) from a caller whose key
/// expires at `limit`.
pub(crate) fn check_new_key(
    limit: Option<DateTime<Utc>>,
    wanted: Option<DateTime<Utc>>,
) -> CoreResult<()> {
    match limit {
        Some(limit) if wanted.is_none_or(|w| w > limit) => Err(CoreError::invalid(
            "expires_at",
            format!(
                "must be at or before {}, when the key making it expires: a key cannot make \
                 one that outlives it",
                time::format(&limit)
            ),
        )),
        _ => Ok(()),
    }
}

/// Refuses rotating key `kid`, which lasts until `target` (`None`: forever), for a caller
/// whose key expires at `limit`: the rotation would hand it a longer-lived secret.
pub(crate) fn check_rotation(
    limit: Option<DateTime<Utc>>,
    kid: &str,
    target: Option<DateTime<Utc>>,
) -> CoreResult<()> {
    match limit {
        Some(limit) if target.is_none_or(|t| t > limit) => Err(CoreError::invalid(
            "key",
            format!(
                "key `{kid}` outlives the key rotating it (which expires at {}): rotate it \
                 with a key that lasts as long",
                time::format(&limit)
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_outlives_its_maker() {
        let at = Utc::now();
        let hour = chrono::Duration::hours(1);
        // A key without expiry (or no key) may make anything.
        for wanted in [None, Some(at), Some(at + hour * 24 * 3650)] {
            assert!(check_new_key(None, wanted).is_ok());
            assert!(check_rotation(None, "k", wanted).is_ok());
        }
        let limit = Some(at + hour);
        assert!(check_new_key(limit, Some(at)).is_ok());
        assert!(check_new_key(limit, limit).is_ok(), "as long as its maker");
        assert!(check_rotation(limit, "k", limit).is_ok(), "itself");
        for wanted in [None, Some(at + hour * 2)] {
            assert_eq!(check_new_key(limit, wanted).unwrap_err().code(), "invalid");
            assert_eq!(
                check_rotation(limit, "k", wanted).unwrap_err().code(),
                "invalid"
            );
        }
    }
}
