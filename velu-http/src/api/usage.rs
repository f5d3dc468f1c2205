//! Usage routes: an org's report, and every org's for platform keys (`usage:read`).

use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use velu_core::Velu;
use velu_core::orgs::OrgRef;
use velu_core::usage::{self, UsageQuery};

use super::Tag;
use crate::auth::Auth;
use crate::model::usage::UsageReport;
use crate::problem::ApiResult;

/// Usage reports.
pub struct UsageApi;

#[OpenApi(tag = "Tag::Usage")]
impl UsageApi {
    /// An org's usage from `from` to `to` (UTC days, both included, at most 366): jobs
    /// submitted, succeeded and failed and run seconds per task kind and day, and API
    /// requests per day. Refused: a day not `YYYY-MM-DD`, `to` before `from` or a longer
    /// range (`invalid`); another org (`not_found`). Scope: `usage:read`.
    #[oai(
        path = "/v1/orgs/:org/usage",
        method = "get",
        operation_id = "usage.org"
    )]
    async fn org(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        org: Path<String>,
        /// First UTC day, `YYYY-MM-DD`.
        #[oai(validator(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))]
        from: Query<String>,
        /// Last UTC day, `YYYY-MM-DD` (included).
        #[oai(validator(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))]
        to: Query<String>,
    ) -> ApiResult<Json<UsageReport>> {
        let query = UsageQuery {
            org: Some(OrgRef::new(org.0)),
            from: from.0,
            to: to.0,
        };
        Ok(Json(usage::usage(&velu, &auth.0, &query).await?.into()))
    }

    /// Every org's usage from `from` to `to` (UTC days, both included, at most 366), for
    /// platform keys; an org key gets its own org's. A report of more than 50000 rows is
    /// `invalid`: ask for fewer days, or one org. Scope: `usage:read`.
    #[oai(path = "/v1/usage", method = "get", operation_id = "usage.all")]
    async fn all(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        /// First UTC day, `YYYY-MM-DD`.
        #[oai(validator(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))]
        from: Query<String>,
        /// Last UTC day, `YYYY-MM-DD` (included).
        #[oai(validator(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))]
        to: Query<String>,
    ) -> ApiResult<Json<UsageReport>> {
        let query = UsageQuery {
            org: None,
            from: from.0,
            to: to.0,
        };
        Ok(Json(usage::usage(&velu, &auth.0, &query).await?.into()))
    }
}
