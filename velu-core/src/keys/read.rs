//! Reading keys and the caller: list, show, whoami.

use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::access::*;
use super::documents::*;
use crate::entity::{api_keys, organizations};
use crate::orgs::Org;
use crate::pagination::{Page, PageRequest};
use crate::principal::Principal;
use crate::time::{self, now};
use crate::{CoreResult, Velu};

/// Lists keys, oldest first. Never returns secrets.
pub async fn list_keys(
    velu: &Velu,
    who: &Principal,
    owner: &KeyOwner,
    page: &PageRequest,
) -> CoreResult<Page<ApiKey>> {
    let tx = velu.db().read_tx().await?;
    let conn = &tx;
    let org = authorize(conn, who, owner).await?;
    let owner_text = org.as_ref().map_or("platform", |o| o.id.as_str());
    let q = page.validate("keys", owner_text)?;
    let mut select = api_keys::Entity::find()
        .filter(owner_filter(&org))
        .order_by_asc(api_keys::Column::CreatedAt)
        .order_by_asc(api_keys::Column::Kid)
        .limit(q.fetch());
    if let Some([at, kid]) = q.after.as_deref() {
        let at = time::parse("cursor", at)?;
        select = select.filter(
            Condition::any()
                .add(api_keys::Column::CreatedAt.gt(at))
                .add(
                    Condition::all()
                        .add(api_keys::Column::CreatedAt.eq(at))
                        .add(api_keys::Column::Kid.gt(kid.as_str())),
                ),
        );
    }
    let rows = select.all(conn).await?;
    let at = now();
    Ok(q.finish(
        rows,
        |r| vec![time::format(&r.created_at), r.kid.clone()],
        |m| ApiKey::from_model(m, at),
    ))
}

/// Shows one key by id.
pub async fn show_key(
    velu: &Velu,
    who: &Principal,
    owner: &KeyOwner,
    kid: &str,
) -> CoreResult<ApiKey> {
    let tx = velu.db().read_tx().await?;
    let conn = &tx;
    let org = authorize(conn, who, owner).await?;
    let model = find_key(conn, who, &org, kid).await?;
    Ok(ApiKey::from_model(model, now()))
}

/// Describes the calling principal: its org, plan (read fresh) and scopes.
pub async fn whoami(velu: &Velu, who: &Principal) -> CoreResult<Whoami> {
    let org = match &who.org_id {
        Some(id) => organizations::Entity::find_by_id(id.clone())
            .one(velu.db().conn())
            .await?
            .map(Org::from_model)
            .transpose()?,
        None => None,
    };
    Ok(Whoami {
        actor_type: who.actor.kind.as_str().to_owned(),
        actor_id: who.actor.id.clone(),
        plan: org.as_ref().map(|o| o.plan),
        org,
        scopes: who.scopes.clone(),
    })
}
