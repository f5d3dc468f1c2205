//! `GET /v1/orgs/{org}/audit`.

use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use velu_core::Velu;
use velu_core::audit::list_audit;
use velu_core::orgs::OrgRef;
use velu_core::pagination::PageRequest;

use super::Tag;
use crate::auth::Auth;
use crate::model::Page;
use crate::model::audit::AuditEvent;
use crate::model::common::Cursor;
use crate::problem::ApiResult;

/// The audit log.
pub struct AuditApi;

#[OpenApi(tag = "Tag::Audit")]
impl AuditApi {
    /// List the org's audit events, newest first. Scope: `audit:read`.
    #[oai(
        path = "/v1/orgs/:org/audit",
        method = "get",
        operation_id = "audit.list"
    )]
    async fn list(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        org: Path<String>,
        /// Page size [default: 50].
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page (opaque; empty means the first page).
        #[oai(validator(custom = "crate::model::common::CursorPattern"))]
        cursor: Query<Option<Cursor>>,
    ) -> ApiResult<Json<Page<AuditEvent>>> {
        let page = PageRequest {
            limit: limit.0,
            cursor: cursor.0.map(String::from),
        };
        let list = list_audit(&velu, &auth.0, &OrgRef::new(org.0), &page).await?;
        Ok(Json(list.into()))
    }
}
