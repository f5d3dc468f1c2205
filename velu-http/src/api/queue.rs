//! Pausing the queue: an org's queue (`admin:queue:manage`, or `admin:orgs:manage` for
//! platform keys) and a task kind in every org (`admin:orgs:manage`).

use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use velu_core::Velu;
use velu_core::orgs::OrgRef;
use velu_core::pause;

use super::Tag;
use crate::auth::Auth;
use crate::model::optional::OptionalJson;
use crate::model::queue::{PauseBody, QueueState, TaskPauseState};
use crate::problem::{ApiResult, BodyResult};

/// The queue's pauses.
pub struct QueueApi;

#[OpenApi(tag = "Tag::Queue")]
impl QueueApi {
    /// Show an org's queue: paused or not (since when, by whom, why), the task kinds
    /// paused for everyone, queued and running counts. Scope: `admin:queue:manage` (the
    /// org's admin), or `admin:orgs:manage` for platform keys.
    #[oai(
        path = "/v1/orgs/:org/queue",
        method = "get",
        operation_id = "queue.show"
    )]
    async fn show(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        org: Path<String>,
    ) -> ApiResult<Json<QueueState>> {
        let state = pause::show_queue(&velu, &auth.0, &OrgRef::new(org.0)).await?;
        Ok(Json(state.into()))
    }

    /// Pause an org's queue: queued jobs stay queued and no worker claims them until a
    /// resume; running jobs finish; submits are still accepted (`queue_paused: true`).
    /// Pausing a paused queue changes nothing. The body is optional. Scope:
    /// `admin:queue:manage` (the org's admin), or `admin:orgs:manage` for platform keys.
    #[oai(
        path = "/v1/orgs/:org/queue/pause",
        method = "post",
        operation_id = "queue.pause"
    )]
    async fn pause(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        org: Path<String>,
        body: OptionalJson<PauseBody>,
    ) -> BodyResult<Json<QueueState>> {
        let input = body.0.unwrap_or_default().into();
        let state = pause::pause_queue(&velu, &auth.0, &OrgRef::new(org.0), &input).await?;
        Ok(Json(state.into()))
    }

    /// Resume an org's queue: workers claim its jobs again. Resuming a running queue
    /// changes nothing. Scope: `admin:queue:manage` (the org's admin), or
    /// `admin:orgs:manage` for platform keys.
    #[oai(
        path = "/v1/orgs/:org/queue/resume",
        method = "post",
        operation_id = "queue.resume"
    )]
    async fn resume(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        org: Path<String>,
    ) -> ApiResult<Json<QueueState>> {
        let state = pause::resume_queue(&velu, &auth.0, &OrgRef::new(org.0)).await?;
        Ok(Json(state.into()))
    }

    /// Pause a task kind in every org: no worker claims its jobs until a resume; running
    /// ones finish. An unknown kind is `not_found`. The body is optional. Scope:
    /// `admin:orgs:manage` (platform keys).
    #[oai(
        path = "/v1/tasks/:task/pause",
        method = "post",
        operation_id = "tasks.pause"
    )]
    async fn pause_task(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        task: Path<String>,
        body: OptionalJson<PauseBody>,
    ) -> BodyResult<Json<TaskPauseState>> {
        let input = body.0.unwrap_or_default().into();
        let state = pause::pause_task(&velu, &auth.0, &task.0, &input).await?;
        Ok(Json(state.into()))
    }

    /// Resume a task kind in every org. Scope: `admin:orgs:manage` (platform keys).
    #[oai(
        path = "/v1/tasks/:task/resume",
        method = "post",
        operation_id = "tasks.resume"
    )]
    async fn resume_task(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        task: Path<String>,
    ) -> ApiResult<Json<TaskPauseState>> {
        let state = pause::resume_task(&velu, &auth.0, &task.0).await?;
        Ok(Json(state.into()))
    }
}
