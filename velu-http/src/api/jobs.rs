//! Job routes: submit (`jobs:submit`), read (`jobs:read`), steer (`jobs:submit`).

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use velu_core::Velu;
use velu_core::jobs::{self, JobFilter};
use velu_core::orgs::OrgRef;
use velu_core::pagination::PageRequest;

use super::{Created, Tag};
use crate::auth::Auth;
use crate::core_json::CoreJson;
use crate::model::Page;
use crate::model::common::{Cursor, PlainText};
use crate::model::jobs::{
    BatchSubmitted, Job, JobDetail, JobStats, JobStatus, SubmitBatch, SubmitJob, SubmittedJob,
};
use crate::problem::{ApiResult, BodyResult};

/// Jobs.
pub struct JobsApi;

/// Answer of a submit.
#[derive(ApiResponse)]
pub enum Submitted {
    /// Queued (with `queue_paused: true` when a pause holds it).
    #[oai(status = 201)]
    Created(CoreJson<SubmittedJob>),
    /// An earlier job with the same idempotency key.
    #[oai(status = 200)]
    Existing(CoreJson<SubmittedJob>),
}

#[OpenApi(tag = "Tag::Jobs")]
impl JobsApi {
    /// Submit a job. The org and the actor come from the API key, never from the body.
    /// Refused: unknown task (`invalid`), task above the plan (`upgrade_required`),
    /// payload not an object or with `_` keys (`invalid`), payload over the plan's size
    /// (413), queue full for the plan (`quota_exceeded`). A paused queue still accepts the
    /// job and says so (`queue_paused: true`). Scope: `jobs:submit`.
    #[oai(
        path = "/v1/orgs/:org/jobs",
        method = "post",
        operation_id = "jobs.submit"
    )]
    async fn submit(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        org: Path<String>,
        body: Json<SubmitJob>,
    ) -> BodyResult<Submitted> {
        let done = jobs::submit_job(&velu, &auth.0, &OrgRef::new(org.0), &body.0.into()).await?;
        let created = done.created;
        let job = CoreJson::new(&done.document())?;
        Ok(if created {
            Submitted::Created(job)
        } else {
            Submitted::Existing(job)
        })
    }

    /// Submit many jobs in one transaction (all or none). Scope: `jobs:submit`.
    #[oai(
        path = "/v1/orgs/:org/jobs/batch",
        method = "post",
        operation_id = "jobs.submit_batch"
    )]
    async fn submit_batch(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        org: Path<String>,
        body: Json<SubmitBatch>,
    ) -> BodyResult<Created<BatchSubmitted>> {
        let inputs: Vec<jobs::SubmitJob> = body.0.jobs.into_iter().map(Into::into).collect();
        let done = jobs::submit_batch(&velu, &auth.0, &OrgRef::new(org.0), &inputs).await?;
        Ok(Created::Created(Json(done.into())))
    }

    /// List the org's jobs, newest first. Scope: `jobs:read`.
    #[oai(
        path = "/v1/orgs/:org/jobs",
        method = "get",
        operation_id = "jobs.list"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        org: Path<String>,
        /// Only this status.
        status: Query<Option<JobStatus>>,
        /// Only this task kind (no control characters). With `status` too, a page reads
        /// at most 5,000 jobs of that status: it may then hold fewer jobs, or none, and
        /// still have a `next_cursor`.
        #[oai(validator(custom = "crate::model::common::NoControl"))]
        task: Query<Option<PlainText>>,
        /// Page size [default: 50]. A page also stops at 2 MiB of payloads, results and
        /// errors: it may hold fewer jobs and still have a `next_cursor`.
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page (opaque; empty means the first page).
        #[oai(validator(custom = "crate::model::common::CursorPattern"))]
        cursor: Query<Option<Cursor>>,
    ) -> ApiResult<CoreJson<Page<Job>>> {
        let filter = JobFilter {
            status: status
                .0
                .map(|s| jobs::JobStatus::from(s).as_str().to_owned()),
            task: task.0.map(String::from),
        };
        let page = PageRequest {
            limit: limit.0,
            cursor: cursor.0.map(String::from),
        };
        let list = jobs::list_jobs(&velu, &auth.0, &OrgRef::new(org.0), &filter, &page).await?;
        CoreJson::new(&list)
    }

    /// Counts of the org's jobs by status and by task. Scope: `jobs:read`.
    #[oai(
        path = "/v1/orgs/:org/jobs/stats",
        method = "get",
        operation_id = "jobs.stats"
    )]
    async fn stats(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        org: Path<String>,
    ) -> ApiResult<Json<JobStats>> {
        Ok(Json(
            jobs::job_stats(&velu, &auth.0, &OrgRef::new(org.0))
                .await?
                .into(),
        ))
    }

    /// Show a job with its attempts. Scope: `jobs:read`.
    #[oai(
        path = "/v1/orgs/:org/jobs/:job",
        method = "get",
        operation_id = "jobs.show"
    )]
    async fn show(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        org: Path<String>,
        job: Path<String>,
    ) -> ApiResult<CoreJson<JobDetail>> {
        CoreJson::new(&jobs::show_job(&velu, &auth.0, &OrgRef::new(org.0), &job).await?)
    }

    /// Cancel a job: a queued one at once, a running one within a heartbeat. Scope:
    /// `jobs:submit`.
    #[oai(
        path = "/v1/orgs/:org/jobs/:job/cancel",
        method = "post",
        operation_id = "jobs.cancel"
    )]
    async fn cancel(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        org: Path<String>,
        job: Path<String>,
    ) -> ApiResult<CoreJson<JobDetail>> {
        CoreJson::new(&jobs::cancel_job(&velu, &auth.0, &OrgRef::new(org.0), &job).await?)
    }

    /// Put a failed or cancelled job back in the queue. Scope: `jobs:submit`.
    #[oai(
        path = "/v1/orgs/:org/jobs/:job/retry",
        method = "post",
        operation_id = "jobs.retry"
    )]
    async fn retry(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        org: Path<String>,
        job: Path<String>,
    ) -> ApiResult<CoreJson<JobDetail>> {
        CoreJson::new(&jobs::retry_job(&velu, &auth.0, &OrgRef::new(org.0), &job).await?)
    }
}
