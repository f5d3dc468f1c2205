//! Organization routes (platform keys with `admin:orgs:manage`).

use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use velu_core::orgs::{self, OrgFilter, OrgRef};
use velu_core::pagination::PageRequest;
use velu_core::{Velu, bootstrap};

use super::{Created, Tag};
use crate::auth::Auth;
use crate::model::Page;
use crate::model::bootstrap::{Bootstrap, BootstrapOrg};
use crate::model::common::{Cursor, PlainText};
use crate::model::orgs::{CreateOrg, Org, SetPlan};
use crate::problem::{ApiResult, BodyResult};

/// Organizations.
pub struct OrgsApi;

#[OpenApi(tag = "Tag::Orgs")]
impl OrgsApi {
    /// Create an organization. Scope: `admin:orgs:manage`.
    #[oai(path = "/v1/orgs", method = "post", operation_id = "orgs.create")]
    async fn create(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        body: Json<CreateOrg>,
    ) -> BodyResult<Created<Org>> {
        let org = orgs::create_org(&velu, &auth.0, &body.0.into()).await?;
        Ok(Created::Created(Json(org.into())))
    }

    /// Create an organization with its viewer, builder and admin keys (secrets shown
    /// once). With `rotate`, re-issue the keys of an existing org. Scope:
    /// `admin:orgs:manage`.
    #[oai(
        path = "/v1/orgs/bootstrap",
        method = "post",
        operation_id = "orgs.bootstrap"
    )]
    async fn bootstrap(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        body: Json<BootstrapOrg>,
    ) -> BodyResult<Created<Bootstrap>> {
        let done = bootstrap::bootstrap_org(&velu, &auth.0, &body.0.into()).await?;
        Ok(Created::Created(Json(done.into())))
    }

    /// List organizations, newest first. Scope: `admin:orgs:manage`.
    #[oai(path = "/v1/orgs", method = "get", operation_id = "orgs.list")]
    async fn list(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        /// Text to find in the name or slug (case-insensitive; trimmed; at most 200
        /// characters, no control characters).
        #[oai(validator(max_length = 200, custom = "crate::model::common::NoControl"))]
        q: Query<Option<PlainText>>,
        /// Page size [default: 50].
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page (opaque; empty means the first page).
        #[oai(validator(custom = "crate::model::common::CursorPattern"))]
        cursor: Query<Option<Cursor>>,
    ) -> ApiResult<Json<Page<Org>>> {
        let page = PageRequest {
            limit: limit.0,
            cursor: cursor.0.map(String::from),
        };
        let list = orgs::list_orgs(
            &velu,
            &auth.0,
            &OrgFilter {
                q: q.0.map(String::from),
            },
            &page,
        )
        .await?;
        Ok(Json(list.into()))
    }

    /// Show an organization by id or slug. An org key may show its own org; anything
    /// else needs `admin:orgs:manage`.
    #[oai(path = "/v1/orgs/:org", method = "get", operation_id = "orgs.show")]
    async fn show(&self, velu: Data<&Velu>, auth: Auth, org: Path<String>) -> ApiResult<Json<Org>> {
        Ok(Json(
            orgs::show_org(&velu, &auth.0, &OrgRef::new(org.0))
                .await?
                .into(),
        ))
    }

    /// Change an organization's plan, effective on the next request. Scope:
    /// `admin:orgs:manage`.
    #[oai(
        path = "/v1/orgs/:org/plan",
        method = "put",
        operation_id = "orgs.set_plan"
    )]
    async fn set_plan(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        org: Path<String>,
        body: Json<SetPlan>,
    ) -> BodyResult<Json<Org>> {
        let org = orgs::set_plan(&velu, &auth.0, &OrgRef::new(org.0), body.0.plan.as_str()).await?;
        Ok(Json(org.into()))
    }
}
