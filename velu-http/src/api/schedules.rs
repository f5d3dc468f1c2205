//! Schedule routes: create, pause, resume, delete (`jobs:submit`); list, show
//! (`jobs:read`).

use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use velu_core::Velu;
use velu_core::orgs::OrgRef;
use velu_core::pagination::PageRequest;
use velu_core::schedules;

use super::{Created, Tag};
use crate::auth::Auth;
use crate::model::Page;
use crate::model::common::Cursor;
use crate::model::schedules::{CreateSchedule, Schedule};
use crate::problem::{ApiResult, BodyResult};

/// Schedules.
pub struct SchedulesApi;

#[OpenApi(tag = "Tag::Schedules")]
impl SchedulesApi {
    /// Create a schedule: a job of `task` with `payload` at every tick of `cron` in
    /// `timezone`, the first at the first tick after now. Refused: bad cron or time zone
    /// (`invalid`), task above the plan (`upgrade_required`), payload rules as for a submit,
    /// the plan's schedule cap (`quota_exceeded`). Scope: `jobs:submit`.
    #[oai(
        path = "/v1/orgs/:org/schedules",
        method = "post",
        operation_id = "schedules.create"
    )]
    async fn create(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        org: Path<String>,
        body: Json<CreateSchedule>,
    ) -> BodyResult<Created<Schedule>> {
        let input = body.0.into();
        let done = schedules::create_schedule(&velu, &auth.0, &OrgRef::new(org.0), &input).await?;
        Ok(Created::Created(Json(done.into())))
    }

    /// List the org's schedules, oldest first. Scope: `jobs:read`.
    #[oai(
        path = "/v1/orgs/:org/schedules",
        method = "get",
        operation_id = "schedules.list"
    )]
    async fn list(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        org: Path<String>,
        /// Page size [default: 50]. A page also stops at 2 MiB of payloads: it may hold
        /// fewer schedules and still have a `next_cursor`.
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page (opaque; empty means the first page).
        #[oai(validator(custom = "crate::model::common::CursorPattern"))]
        cursor: Query<Option<Cursor>>,
    ) -> ApiResult<Json<Page<Schedule>>> {
        let page = PageRequest {
            limit: limit.0,
            cursor: cursor.0.map(String::from),
        };
        let list = schedules::list_schedules(&velu, &auth.0, &OrgRef::new(org.0), &page).await?;
        Ok(Json(list.into()))
    }

    /// Show a schedule. Scope: `jobs:read`.
    #[oai(
        path = "/v1/orgs/:org/schedules/:schedule",
        method = "get",
        operation_id = "schedules.show"
    )]
    async fn show(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        org: Path<String>,
        schedule: Path<String>,
    ) -> ApiResult<Json<Schedule>> {
        let org = OrgRef::new(org.0);
        Ok(Json(
            schedules::show_schedule(&velu, &auth.0, &org, &schedule)
                .await?
                .into(),
        ))
    }

    /// Pause a schedule: it queues nothing until resumed. Scope: `jobs:submit`.
    #[oai(
        path = "/v1/orgs/:org/schedules/:schedule/pause",
        method = "post",
        operation_id = "schedules.pause"
    )]
    async fn pause(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        org: Path<String>,
        schedule: Path<String>,
    ) -> ApiResult<Json<Schedule>> {
        let org = OrgRef::new(org.0);
        Ok(Json(
            schedules::pause_schedule(&velu, &auth.0, &org, &schedule)
                .await?
                .into(),
        ))
    }

    /// Resume a paused schedule from its next tick after now (ticks missed while paused
    /// are not queued). Scope: `jobs:submit`.
    #[oai(
        path = "/v1/orgs/:org/schedules/:schedule/resume",
        method = "post",
        operation_id = "schedules.resume"
    )]
    async fn resume(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        org: Path<String>,
        schedule: Path<String>,
    ) -> ApiResult<Json<Schedule>> {
        let org = OrgRef::new(org.0);
        Ok(Json(
            schedules::resume_schedule(&velu, &auth.0, &org, &schedule)
                .await?
                .into(),
        ))
    }

    /// Delete a schedule; the jobs it queued stay. Answers the schedule as it was.
    /// Scope: `jobs:submit`.
    #[oai(
        path = "/v1/orgs/:org/schedules/:schedule",
        method = "delete",
        operation_id = "schedules.delete"
    )]
    async fn delete(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        org: Path<String>,
        schedule: Path<String>,
    ) -> ApiResult<Json<Schedule>> {
        let org = OrgRef::new(org.0);
        Ok(Json(
            schedules::delete_schedule(&velu, &auth.0, &org, &schedule)
                .await?
                .into(),
        ))
    }
}
