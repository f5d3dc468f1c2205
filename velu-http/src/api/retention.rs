//! History retention: an org's retention state (`jobs:read`) and a run that removes what
//! is due (platform keys with `admin:orgs:manage`).

use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use velu_core::Velu;
use velu_core::jobs::retention;
use velu_core::orgs::OrgRef;

use super::Tag;
use crate::auth::Auth;
use crate::model::optional::OptionalJson;
use crate::model::retention::{RetentionReport, RetentionRunBody, RetentionState};
use crate::problem::{ApiResult, BodyResult};

/// History retention.
pub struct RetentionApi;

#[OpenApi(tag = "Tag::Jobs")]
impl RetentionApi {
    /// Show an org's history retention.
    ///
    /// The days its plan keeps a finished job, the cutoff, and how many finished jobs and
    /// dead keys (revoked or expired before the cutoff) are due for removal (each counted
    /// up to 10000). Scope: `jobs:read`.
    #[oai(
        path = "/v1/orgs/:org/jobs/retention",
        method = "get",
        operation_id = "jobs.retention"
    )]
    async fn show(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        org: Path<String>,
    ) -> ApiResult<Json<RetentionState>> {
        let state = retention::retention_state(&velu, &auth.0, &OrgRef::new(org.0)).await?;
        Ok(Json(state.into()))
    }

    /// Remove finished jobs past their org's plan retention.
    ///
    /// With their attempts and events: of one org (`org`) or of every org, at most
    /// `max_jobs` (default 100000), in slices of 1000 per transaction, each audited as
    /// `jobs.retention`. Queued and running jobs are never removed. The org's keys revoked
    /// or expired before the cutoff go too, up to 1000 per org and run (`keys.retention`).
    /// `more: true` says jobs or keys are still due: run it again.
    /// The body is optional. Scope: `admin:orgs:manage` (platform keys).
    #[oai(
        path = "/v1/retention/run",
        method = "post",
        operation_id = "retention.run"
    )]
    async fn run(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        body: OptionalJson<RetentionRunBody>,
    ) -> BodyResult<Json<RetentionReport>> {
        let input = body.0.unwrap_or_default().into();
        let report = retention::run_retention(&velu, &auth.0, &input).await?;
        Ok(Json(report.into()))
    }
}
