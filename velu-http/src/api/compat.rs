//! Routes of the earlier system, for its clients: same paths and answers, Velu's rules
//! (the org is the key's, `_` keys are refused, missing and foreign jobs are 404).

use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use velu_core::{CoreError, Velu, jobs};

use super::Tag;
use crate::auth::Auth;
use crate::model::jobs::{LegacyAccepted, LegacyResult, LegacyTask};
use crate::problem::{ApiResult, BodyResult};

/// Compatibility routes (deprecated).
pub struct CompatApi;

#[OpenApi(tag = "Tag::Compat")]
impl CompatApi {
    /// Submit a job to the key's org (earlier system's route). Use `POST
    /// /v1/orgs/{org}/jobs`. Scope: `jobs:submit`.
    #[oai(
        path = "/tasks",
        method = "post",
        operation_id = "compat.tasks_submit",
        deprecated
    )]
    async fn submit(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        body: Json<LegacyTask>,
    ) -> BodyResult<Json<LegacyAccepted>> {
        let org = auth.0.own_org()?;
        let input = jobs::SubmitJob {
            task: body.0.task.0,
            payload: body.0.payload.0,
            ..Default::default()
        };
        let done = jobs::submit_job(&velu, &auth.0, &org, &input).await?;
        Ok(Json(LegacyAccepted {
            ok: true,
            job_id: done.job.id,
        }))
    }

    /// A job of the key's org (earlier system's route); 404 for missing or another org's.
    /// Use `GET /v1/orgs/{org}/jobs/{job}`. Scope: `jobs:read`.
    #[oai(
        path = "/results/:job_id",
        method = "get",
        operation_id = "compat.results_show",
        deprecated
    )]
    async fn result(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        job_id: Path<String>,
    ) -> ApiResult<Json<LegacyResult>> {
        let Ok(org) = auth.0.own_org() else {
            return Err(CoreError::not_found("job", job_id.0).into());
        };
        let detail = jobs::show_job(&velu, &auth.0, &org, &job_id).await?;
        Ok(Json(LegacyResult {
            ok: true,
            item: detail.job.into(),
        }))
    }
}
