//! The tenancy floor: the one way an operation gets hold of an organization.
//!
//! An org-scoped operation calls [`Principal::enter`] with the org the caller named and the
//! scope it needs, and gets an [`OrgScope`]: the org, found by id or slug, visible to the
//! principal (another tenant's org is `not_found`, with the same words as a missing one),
//! and the scope held (`forbidden` otherwise, naming it). Nothing else in velu-core turns a
//! caller's words into an org row, so "tenancy comes from the principal only" holds by
//! construction: there is no path from a request to another org's data that skips it.
//!
//! Entering happens inside the transaction the operation then uses, and binds it to the
//! org (`db::rls::enter_org`, in the statement that finds it): on PostgreSQL the row-level security policies then show
//! that transaction the org's rows only, so a query that forgot its org filter still sees
//! no other tenant. On SQLite the [`OrgScope`] type is the wall.

use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter};

use crate::db::Db;
use crate::db::rls::{self, ReadOrder};
use crate::entity::organizations;
use crate::ids::is_uuid;
use crate::plans::Plan;
use crate::principal::Principal;
use crate::scopes::Scope;
use crate::{CoreError, CoreResult};

/// How a caller names an org: its id or its slug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgRef(pub String);

impl OrgRef {
    /// Wraps an id or slug.
    pub fn new(text: impl Into<String>) -> OrgRef {
        OrgRef(text.into())
    }
}

/// An org the principal has entered, with the scope it asked for checked.
#[derive(Debug, Clone)]
pub struct OrgScope {
    org: organizations::Model,
}

impl OrgScope {
    /// The org's id.
    pub fn id(&self) -> &str {
        &self.org.id
    }

    /// The org's plan, as stored now.
    pub fn plan(&self) -> CoreResult<Plan> {
        Plan::from_stored(&self.org.plan)
    }

    /// The org's row, by value.
    pub(crate) fn into_row(self) -> organizations::Model {
        self.org
    }
}

/// Could `text` be a slug at all? (Cheap, so malformed text never reaches a query.)
fn slug_shaped(text: &str) -> bool {
    (2..=63).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The column `text` can name an org by: its id when it is a UUID, its slug when it has a
/// slug's shape, none otherwise (no org has such a name).
fn org_column(text: &str) -> Option<organizations::Column> {
    if is_uuid(text) {
        Some(organizations::Column::Id)
    } else if slug_shaped(text) {
        Some(organizations::Column::Slug)
    } else {
        None
    }
}

/// How PostgreSQL's `velu_enter_org` (migration m20261204_000022), or SQLite's lookup
/// subquery, is to find (and on PostgreSQL bind) an org for a principal: the rule of
/// [`Principal::enter`] as the arguments of a statement, for a read that enters and reads
/// in one statement (`jobs/read_one.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OrgLookup<'a> {
    /// `id` or `slug`.
    pub column: &'static str,
    /// The org's id or slug, as the caller named it.
    pub text: &'a str,
    /// The only org id the principal may see, or `None` for every org.
    pub visible_to: Option<&'a str>,
}

impl Principal {
    /// The [`OrgLookup`] of entering `org` with `scope`, when entering could succeed: the
    /// principal holds `scope` and `org` could name an org. `None` otherwise: the caller
    /// then enters the ordinary way, which gives the exact error (`not_found` before
    /// `forbidden`, as [`Principal::enter`] orders them).
    pub(crate) fn org_lookup<'a>(&'a self, org: &'a OrgRef, scope: Scope) -> Option<OrgLookup<'a>> {
        use sea_orm::IdenStatic;
        if !self.scopes.contains(scope) {
            return None;
        }
        let column = org_column(&org.0)?;
        Some(OrgLookup {
            column: column.as_str(),
            text: &org.0,
            visible_to: self.org_id.as_deref(),
        })
    }

    /// The org an org key belongs to, for the routes of the earlier system that name none;
    /// platform keys and the operator have none to imply (`invalid`).
    pub fn own_org(&self) -> CoreResult<OrgRef> {
        self.org_id.clone().map(OrgRef::new).ok_or_else(|| {
            CoreError::invalid(
                "org",
                "platform keys have no org: name one, as in /v1/orgs/{org}/jobs",
            )
        })
    }

    /// Enters org `org` to act with `scope` in transaction `tx`: `not_found` unless the
    /// org exists and the principal may see it (org keys see only their own org), then
    /// `forbidden` unless the principal holds `scope`; then binds `tx` to the org, so the
    /// rest of the operation sees that org's rows only (PostgreSQL row-level security).
    pub async fn enter(
        &self,
        tx: &DatabaseTransaction,
        org: &OrgRef,
        scope: Scope,
    ) -> CoreResult<OrgScope> {
        self.enter_in_order(tx, org, scope, ReadOrder::AsPlanned)
            .await
    }

    /// [`Principal::enter`] for reading a page of a history that grows without bound (an
    /// org's jobs, its audit records): the rest of the transaction reads in index order
    /// on PostgreSQL, so a page costs the same whatever the history and whatever the
    /// server's statistics (`enable_sort` off for the transaction), still in the one
    /// round trip of entering.
    pub async fn enter_to_page(
        &self,
        tx: &DatabaseTransaction,
        org: &OrgRef,
        scope: Scope,
    ) -> CoreResult<OrgScope> {
        self.enter_in_order(tx, org, scope, ReadOrder::Index).await
    }

    /// [`Principal::enter`], the rest of the transaction reading in `order`.
    async fn enter_in_order(
        &self,
        tx: &DatabaseTransaction,
        org: &OrgRef,
        scope: Scope,
        order: ReadOrder,
    ) -> CoreResult<OrgScope> {
        let entered = self
            .enter_visible_and_bind(tx, org, self.scopes.contains(scope), order)
            .await?;
        self.require(scope)?;
        Ok(entered)
    }

    /// Begins a write transaction and enters org `org` with `scope` in it: the org and the
    /// transaction bound to it, for an operation to run its statements in.
    pub async fn enter_tx(
        &self,
        db: &Db,
        org: &OrgRef,
        scope: Scope,
    ) -> CoreResult<(OrgScope, DatabaseTransaction)> {
        let tx = db.write_tx().await?;
        let entered = self.enter(&tx, org, scope).await?;
        Ok((entered, tx))
    }

    /// Checks that `who` could enter org `org` with `scope`, in a short read transaction
    /// of its own: for operations that refuse a caller before taking a write lock.
    pub(crate) async fn check_enter(&self, db: &Db, org: &OrgRef, scope: Scope) -> CoreResult<()> {
        let tx = db.read_tx().await?;
        self.enter(&tx, org, scope).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Enters org `org` to read its own record: an org key may read its own org whatever
    /// its scopes; the operator and platform keys need `admin:orgs:manage`. Binds `tx` to
    /// the org like [`Principal::enter`].
    pub async fn enter_to_read_org(
        &self,
        tx: &DatabaseTransaction,
        org: &OrgRef,
    ) -> CoreResult<OrgScope> {
        let allowed = self.org_id.is_some() || self.scopes.contains(Scope::OrgsManage);
        let entered = self
            .enter_visible_and_bind(tx, org, allowed, ReadOrder::AsPlanned)
            .await?;
        if self.org_id.is_none() {
            self.require(Scope::OrgsManage)?;
        }
        Ok(entered)
    }

    /// [`Principal::enter`] for many callers at once, for a write that crosses orgs on
    /// purpose (a grouped submit, `CrossOrg::GroupCommit`): each `(principal, org)` gets
    /// exactly the answer `enter` would give it (`not_found` unless it exists and is
    /// visible, then `forbidden` without `scope`), from one query for all of them. Binds
    /// nothing: the caller's transaction already crosses orgs, and it must keep each
    /// item's rows to the org entered here.
    pub(crate) async fn enter_many<C: ConnectionTrait>(
        conn: &C,
        asks: &[(&Principal, &OrgRef)],
        scope: Scope,
    ) -> CoreResult<Vec<CoreResult<OrgScope>>> {
        let ids: Vec<&str> = asks
            .iter()
            .map(|(_, o)| o.0.as_str())
            .filter(|t| is_uuid(t))
            .collect();
        let slugs: Vec<&str> = asks
            .iter()
            .map(|(_, o)| o.0.as_str())
            .filter(|t| !is_uuid(t) && slug_shaped(t))
            .collect();
        let rows = if ids.is_empty() && slugs.is_empty() {
            Vec::new()
        } else {
            organizations::Entity::find()
                .filter(
                    sea_orm::Condition::any()
                        .add(organizations::Column::Id.is_in(ids))
                        .add(organizations::Column::Slug.is_in(slugs)),
                )
                .all(conn)
                .await?
        };
        Ok(asks
            .iter()
            .map(|(who, org)| {
                let text = org.0.as_str();
                let found = if is_uuid(text) {
                    rows.iter().find(|r| r.id == text)
                } else if slug_shaped(text) {
                    rows.iter().find(|r| r.slug == text)
                } else {
                    None
                };
                match found {
                    Some(model) if who.can_see_org(&model.id) => {
                        who.require(scope)?;
                        Ok(OrgScope { org: model.clone() })
                    }
                    _ => Err(CoreError::not_found("organization", text)),
                }
            })
            .collect())
    }

    /// Finds org `org` as the principal may see it and, when `allowed` (the caller's scope
    /// check passed), binds `tx` to it. On PostgreSQL one statement does both (the row-level
    /// binding rides in the lookup: `rls::enter_org`), so entering costs one round trip;
    /// the binding happens only for a row the principal may see. A caller that is not
    /// `allowed` gets the org (to answer `forbidden` rather than `not_found`) and an
    /// unbound transaction.
    async fn enter_visible_and_bind(
        &self,
        tx: &DatabaseTransaction,
        org: &OrgRef,
        allowed: bool,
        order: ReadOrder,
    ) -> CoreResult<OrgScope> {
        let text = org.0.as_str();
        let not_found = || CoreError::not_found("organization", text);
        let column = org_column(text).ok_or_else(not_found)?;
        let model = if tx.get_database_backend() == sea_orm::DbBackend::Postgres {
            use sea_orm::IdenStatic;
            rls::enter_org(
                tx,
                column.as_str(),
                text,
                self.org_id.as_deref(),
                allowed,
                order,
            )
            .await?
        } else {
            organizations::Entity::find()
                .filter(column.eq(text))
                .one(tx)
                .await?
        }
        .ok_or_else(not_found)?;
        // On PostgreSQL the statement matched only a visible org; checked here on both
        // backends, so a change to it can never widen what a principal sees.
        if self.can_see_org(&model.id) {
            Ok(OrgScope { org: model })
        } else {
            Err(not_found())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_slug_shaped_text_is_looked_up() {
        assert!(slug_shaped("acme-2"));
        for bad in ["a", "Acme", "ac me", "ac\0me", "acmé", &"a".repeat(64), ""] {
            assert!(!slug_shaped(bad), "{bad:?}");
        }
    }
}
