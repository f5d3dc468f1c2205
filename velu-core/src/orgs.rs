//! Organizations: create, list, show, set plan.

use std::sync::LazyLock;

use regex::Regex;
use sea_orm::sea_query::{Expr, Func, LikeExpr};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait,
    ExprTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;
use serde_json::json;

use crate::audit::{self, Record};
use crate::db::notify::{self, Change};
use crate::entity::organizations;
use crate::error::is_unique_violation;
use crate::ids::{is_uuid, new_id};
use crate::pagination::{Page, PageRequest};
use crate::plans::Plan;
use crate::principal::Principal;
use crate::scopes::Scope;
use crate::time::{Timestamp, now};
use crate::{CoreError, CoreResult, Velu};

/// The slug rule, as documented: lower-case letters, digits and hyphens, 2 to 63 long,
/// not starting with a hyphen. Slugs that break it are refused, never rewritten.
pub const SLUG_PATTERN: &str = "^[a-z0-9][a-z0-9-]{1,62}$";
static SLUG: LazyLock<Regex> = LazyLock::new(|| Regex::new(SLUG_PATTERN).expect("valid regex"));

/// Longest org name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// An organization as every front end prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Org {
    /// UUIDv7.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Unique, URL-safe handle.
    pub slug: String,
    /// Plan tier.
    pub plan: Plan,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// Input of `org create`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOrg {
    /// Display name (1 to 200 characters).
    pub name: String,
    /// Slug matching [`SLUG_PATTERN`].
    pub slug: String,
    /// Plan name; `None` means `base`.
    pub plan: Option<String>,
}

/// Filters of `org list`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrgFilter {
    /// Case-insensitive text to find in the name or the slug.
    pub q: Option<String>,
}

/// How a caller names an org: its id or its slug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgRef(pub String);

impl OrgRef {
    /// Wraps an id or slug.
    pub fn new(text: impl Into<String>) -> OrgRef {
        OrgRef(text.into())
    }
}

impl Org {
    pub(crate) fn from_model(m: organizations::Model) -> Org {
        Org {
            plan: m.plan.parse().unwrap_or(Plan::Base),
            id: m.id,
            name: m.name,
            slug: m.slug,
            created_at: m.created_at.into(),
            updated_at: m.updated_at.into(),
        }
    }
}

/// Checks a slug against [`SLUG_PATTERN`].
pub fn validate_slug(slug: &str) -> CoreResult<()> {
    if SLUG.is_match(slug) {
        Ok(())
    } else {
        Err(CoreError::invalid(
            "slug",
            format!("`{slug}` must match {SLUG_PATTERN} (lower-case letters, digits, hyphens)"),
        ))
    }
}

/// Checks and trims an org name.
pub fn validate_name(name: &str) -> CoreResult<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(CoreError::invalid("name", "must not be empty"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(CoreError::invalid(
            "name",
            format!("must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(CoreError::invalid(
            "name",
            "must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

/// Creates an organization. Needs `admin:orgs:manage`. An existing slug is a `conflict`.
pub async fn create_org(velu: &Velu, who: &Principal, input: &CreateOrg) -> CoreResult<Org> {
    who.require(Scope::OrgsManage)?;
    let tx = velu.db().write_tx().await?;
    let org = insert_org(&tx, who, input).await?;
    tx.commit().await?;
    Ok(org)
}

/// Validates and inserts an org inside `conn` (a transaction), with its audit event.
pub(crate) async fn insert_org<C: ConnectionTrait>(
    conn: &C,
    who: &Principal,
    input: &CreateOrg,
) -> CoreResult<Org> {
    let name = validate_name(&input.name)?;
    validate_slug(&input.slug)?;
    let plan = match &input.plan {
        Some(p) => Plan::parse_field("plan", p)?,
        None => Plan::Base,
    };
    let at = now();
    let model = organizations::ActiveModel {
        id: Set(new_id()),
        name: Set(name),
        slug: Set(input.slug.clone()),
        plan: Set(plan.as_str().to_owned()),
        created_at: Set(at),
        updated_at: Set(at),
    };
    let model = model.insert(conn).await.map_err(|e| {
        if is_unique_violation(&e) {
            slug_taken(&input.slug)
        } else {
            e.into()
        }
    })?;
    audit::record(
        conn,
        &who.actor,
        Record {
            org_id: Some(&model.id),
            action: "org.create",
            target_type: "org",
            target_id: &model.id,
            details: json!({ "slug": model.slug, "name": model.name, "plan": model.plan }),
        },
    )
    .await?;
    Ok(Org::from_model(model))
}

pub(crate) fn slug_taken(slug: &str) -> CoreError {
    CoreError::conflict(format!("an organization with slug `{slug}` already exists"))
}

/// Lists organizations, newest first, optionally matching `q`. Needs `admin:orgs:manage`.
pub async fn list_orgs(
    velu: &Velu,
    who: &Principal,
    filter: &OrgFilter,
    page: &PageRequest,
) -> CoreResult<Page<Org>> {
    who.require(Scope::OrgsManage)?;
    let q_text = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if q_text.is_some_and(|q| q.chars().count() > 200) {
        return Err(CoreError::invalid("q", "must be at most 200 characters"));
    }
    let pq = page.validate("orgs", &format!("q={}", q_text.unwrap_or("")))?;
    let mut select = organizations::Entity::find()
        .order_by_desc(organizations::Column::Id)
        .limit(pq.fetch());
    if let Some(q) = q_text {
        let pattern = format!("%{}%", escape_like(&q.to_lowercase()));
        let like = || LikeExpr::new(pattern.clone()).escape('\\');
        select = select.filter(
            Condition::any()
                .add(Expr::expr(Func::lower(Expr::col(organizations::Column::Name))).like(like()))
                .add(Expr::col(organizations::Column::Slug).like(like())),
        );
    }
    if let Some(after) = pq.after_one() {
        select = select.filter(organizations::Column::Id.lt(after));
    }
    let rows = select.all(velu.db().conn()).await?;
    Ok(pq.finish(rows, |r| vec![r.id.clone()], Org::from_model))
}

fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Shows one organization by id or slug. Org keys may show their own org; anything else
/// needs `admin:orgs:manage`.
pub async fn show_org(velu: &Velu, who: &Principal, org: &OrgRef) -> CoreResult<Org> {
    let model = resolve_org(velu.db().conn(), who, org).await?;
    if who.org_id.is_none() {
        who.require(Scope::OrgsManage)?;
    }
    Ok(Org::from_model(model))
}

/// Sets an organization's plan. Needs `admin:orgs:manage`. Takes effect on the next
/// request on every node: cached key verifications of the org are dropped here and,
/// through a notification, on every other node.
pub async fn set_plan(velu: &Velu, who: &Principal, org: &OrgRef, plan: &str) -> CoreResult<Org> {
    who.require(Scope::OrgsManage)?;
    let plan = Plan::parse_field("plan", plan)?;
    let tx = velu.db().write_tx().await?;
    let model = resolve_org(&tx, who, org).await?;
    let from = model.plan.clone();
    let org_id = model.id.clone();
    let mut active = model.into_active_model();
    active.plan = Set(plan.as_str().to_owned());
    active.updated_at = Set(now());
    let model = active.update(&tx).await?;
    audit::record(
        &tx,
        &who.actor,
        Record {
            org_id: Some(&org_id),
            action: "org.set_plan",
            target_type: "org",
            target_id: &org_id,
            details: json!({ "from": from, "to": plan }),
        },
    )
    .await?;
    let change = Change::Org(org_id);
    notify::send(&tx, &change).await?;
    tx.commit().await?;
    velu.changed(change);
    Ok(Org::from_model(model))
}

/// Finds the org a caller names, or `not_found`, also when it exists but belongs to
/// another tenant (a foreign org is indistinguishable from a missing one).
pub(crate) async fn resolve_org<C: ConnectionTrait>(
    conn: &C,
    who: &Principal,
    org: &OrgRef,
) -> CoreResult<organizations::Model> {
    let text = org.0.as_str();
    let not_found = || CoreError::not_found("organization", text);
    let column = if is_uuid(text) {
        organizations::Column::Id
    } else if SLUG.is_match(text) {
        organizations::Column::Slug
    } else {
        return Err(not_found());
    };
    let model = organizations::Entity::find()
        .filter(column.eq(text))
        .one(conn)
        .await?
        .ok_or_else(not_found)?;
    if who.can_see_org(&model.id) {
        Ok(model)
    } else {
        Err(not_found())
    }
}

/// Reads an org's current plan from the database (never from a cache).
pub(crate) async fn current_plan<C: ConnectionTrait>(conn: &C, org_id: &str) -> CoreResult<Plan> {
    let plan: Option<String> = organizations::Entity::find_by_id(org_id.to_owned())
        .select_only()
        .column(organizations::Column::Plan)
        .into_tuple()
        .one(conn)
        .await?;
    let plan = plan.ok_or_else(|| CoreError::not_found("organization", org_id))?;
    Ok(plan.parse().unwrap_or(Plan::Base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_checked_never_rewritten() {
        for ok in ["acme", "a1", "acme-corp", "0rg", &"a".repeat(63)] {
            assert!(validate_slug(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "-acme",
            "Acme",
            "acme_corp",
            "acme corp",
            &"a".repeat(64),
            "ünï",
        ] {
            let err = validate_slug(bad).unwrap_err();
            assert_eq!(err.code(), "invalid", "{bad}");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(validate_name("  Acme  ").unwrap(), "Acme");
        assert!(validate_name("   ").is_err());
        assert!(validate_name(&"x".repeat(201)).is_err());
        assert!(validate_name("a\u{7}b").is_err());
    }

    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(escape_like("50%_off\\"), "50\\%\\_off\\\\");
    }
}
