//! `GET /v1/workers`: the fleet.

use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use velu_core::Velu;
use velu_core::fleet::{self, WorkerFilter};
use velu_core::orgs::OrgRef;
use velu_core::pagination::PageRequest;

use super::Tag;
use crate::auth::Auth;
use crate::model::Page;
use crate::model::common::Cursor;
use crate::model::workers::{WorkerInfo, WorkerState};
use crate::problem::ApiResult;

/// The fleet of workers.
pub struct WorkersApi;

#[OpenApi(tag = "Tag::Workers")]
impl WorkersApi {
    /// List the workers, by id then owner, each `live`, `stale` or `stopped`. Scope: `jobs:work` or
    /// `admin:orgs:manage` for a platform key (every worker), `jobs:read` for an org key
    /// (its own org's workers only).
    #[oai(path = "/v1/workers", method = "get", operation_id = "workers.list")]
    async fn list(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        /// Only this org's workers (id or slug).
        org: Query<Option<String>>,
        /// Only workers in this state.
        state: Query<Option<WorkerState>>,
        /// Page size [default: 50].
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page (opaque; empty means the first page).
        #[oai(validator(custom = "crate::model::common::CursorPattern"))]
        cursor: Query<Option<Cursor>>,
    ) -> ApiResult<Json<Page<WorkerInfo>>> {
        let filter = WorkerFilter {
            org: org.0.map(OrgRef::new),
            state: state
                .0
                .map(|s| fleet::WorkerState::from(s).as_str().to_owned()),
        };
        let page = PageRequest {
            limit: limit.0,
            cursor: cursor.0.map(String::from),
        };
        let list = fleet::list_workers(&velu, &auth.0, &filter, &page).await?;
        Ok(Json(list.into()))
    }
}
