//! Organizations: create, list, show, set plan.

use std::sync::LazyLock;

use regex::Regex;
use sea_orm::sea_query::{Expr, Func, LikeExpr};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait,
    DatabaseTransaction, EntityTrait, ExprTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::Serialize;
use serde_json::json;

use crate::audit::{self, Record};
use crate::db::notify::{self, Change};
use crate::entity::organizations;
use crate::error::is_unique_violation;
use crate::ids::new_id;
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

pub use crate::tenancy::OrgRef;

impl Org {
    /// The document of a row; a plan outside the closed set is an `internal` error.
    pub(crate) fn from_model(m: organizations::Model) -> CoreResult<Org> {
        Ok(Org {
            plan: Plan::from_stored(&m.plan)?,
            id: m.id,
            name: m.name,
            slug: m.slug,
            created_at: m.created_at.into(),
            updated_at: m.updated_at.into(),
        })
    }
}

/// Words a slug may not be: the fixed segments of HTTP routes where an org id or slug
/// also fits (`/v1/orgs/bootstrap` is a route, so an org `bootstrap` could never be shown
/// at `/v1/orgs/{org}`), every other fixed segment of the API, and words routes may use
/// next. Sorted; the HTTP test suite checks that every fixed route segment is here.
pub const RESERVED_SLUGS: &[&str] = &[
    "admin",
    "all",
    "api",
    "audit",
    "batch",
    "billing",
    "bootstrap",
    "cancel",
    "claim",
    "current",
    "default",
    "docs",
    "events",
    "export",
    "finish",
    "health",
    "heartbeat",
    "import",
    "jobs",
    "keys",
    "me",
    "metrics",
    "new",
    "openapi",
    "orgs",
    "pause",
    "plan",
    "plans",
    "platform",
    "queue",
    "ready",
    "register",
    "release",
    "results",
    "resume",
    "retention",
    "retry",
    "revoke",
    "rotate",
    "run",
    "schedules",
    "search",
    "secrets",
    "self",
    "stats",
    "stopped",
    "tasks",
    "usage",
    "v1",
    "v2",
    "watch",
    "whoami",
    "worker",
    "workers",
];

/// Checks a slug against [`SLUG_PATTERN`] and [`RESERVED_SLUGS`].
pub fn validate_slug(slug: &str) -> CoreResult<()> {
    if !SLUG.is_match(slug) {
        return Err(CoreError::invalid(
            "slug",
            format!("`{slug}` must match {SLUG_PATTERN} (lower-case letters, digits, hyphens)"),
        ));
    }
    if RESERVED_SLUGS.contains(&slug) {
        return Err(CoreError::invalid(
            "slug",
            format!("`{slug}` is reserved (a word of the API's routes); choose another slug"),
        ));
    }
    // An org reference shaped like a UUID is taken as an id: such a slug could never be
    // found, and one equal to another org's id would name that org.
    if crate::ids::is_uuid(slug) {
        return Err(CoreError::invalid(
            "slug",
            format!("`{slug}` has the shape of an org id; choose another slug"),
        ));
    }
    Ok(())
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
    let tx = velu
        .db()
        .cross_org_tx(crate::db::CrossOrg::Platform)
        .await?;
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
        who,
        Record {
            org_id: Some(&model.id),
            action: "org.create",
            target_type: "org",
            target_id: &model.id,
            details: json!({ "slug": model.slug, "name": model.name, "plan": model.plan }),
        },
    )
    .await?;
    Org::from_model(model)
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
    if let Some(q) = q_text {
        crate::text::plain("q", q)?;
    }
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
    pq.try_finish(rows, |r| vec![r.id.clone()], Org::from_model)
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
    let tx = velu.db().read_tx().await?;
    let org = who.enter_to_read_org(&tx, org).await?;
    Org::from_model(org.into_row())
}

/// Sets an organization's plan. Needs `admin:orgs:manage`. Takes effect on the next
/// request on every node: cached key verifications of the org are dropped here and,
/// through a notification, on every other node.
pub async fn set_plan(velu: &Velu, who: &Principal, org: &OrgRef, plan: &str) -> CoreResult<Org> {
    // Checked on a read first: a refused caller never takes the write lock.
    who.check_enter(velu.db(), org, Scope::OrgsManage).await?;
    let plan = Plan::parse_field("plan", plan)?;
    let tx = velu.db().write_tx().await?;
    let (org, change) = set_plan_in_tx(&tx, who, org, plan, None).await?;
    tx.commit().await?;
    velu.changed(change);
    Ok(org)
}

/// The plan change of [`set_plan`] inside the caller's transaction `tx`: enters the org
/// (`admin:orgs:manage`), writes the plan, audits `org.set_plan` (with `billing_event`
/// in its details when a billing event caused it) and queues the change notification.
/// The caller commits, then hands the returned [`Change`] to `Velu::changed`.
pub(crate) async fn set_plan_in_tx(
    tx: &DatabaseTransaction,
    who: &Principal,
    org: &OrgRef,
    plan: Plan,
    billing_event: Option<&str>,
) -> CoreResult<(Org, Change)> {
    let model = who.enter(tx, org, Scope::OrgsManage).await?.into_row();
    let from = model.plan.clone();
    let org_id = model.id.clone();
    let mut active = model.into_active_model();
    active.plan = Set(plan.as_str().to_owned());
    active.updated_at = Set(now());
    let model = active.update(tx).await?;
    let mut details = json!({ "from": from, "to": plan });
    if let Some(event) = billing_event {
        details["billing_event"] = json!(event);
    }
    audit::record(
        tx,
        who,
        Record {
            org_id: Some(&org_id),
            action: "org.set_plan",
            target_type: "org",
            target_id: &org_id,
            details,
        },
    )
    .await?;
    let change = Change::Org(org_id);
    notify::send(tx, &change).await?;
    Ok((Org::from_model(model)?, change))
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
    Plan::from_stored(&plan)
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
            "bootstrap",
            "new",
            "batch",
            "0193a3b0-0000-7000-8000-000000000001",
        ] {
            let err = validate_slug(bad).unwrap_err();
            assert_eq!(err.code(), "invalid", "{bad}");
        }
        assert!(
            validate_slug("bootstrap-co").is_ok(),
            "only the whole word is reserved"
        );
        // Near an id's shape, but not one: a slug.
        assert!(validate_slug("0193a3b0-0000-7000-8000-00000000000").is_ok());
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
