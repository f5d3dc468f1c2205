//! The worker protocol (`/v1/worker/...`, scope `jobs:work`): what a remote worker calls
//! instead of opening the database. Not operator commands: their CLI twin is the
//! `velu-cli worker --server` process (docs/parity.md, "One front end only").

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use velu_core::Velu;
use velu_core::worker::protocol;

use super::Tag;
use crate::auth::Auth;
use crate::model::worker::{
    ClaimJobs, Claimed, FinishAttempts, FinishList, Heartbeat, HeartbeatLeases, RegisterWorker,
    ReleaseLeases, Released, WorkerStopped, WorkerTasks,
};
use crate::model::workers::WorkerInfo;
use crate::problem::{ApiResult, BodyResult};

/// The worker protocol.
pub struct WorkerApi;

/// Answer of `worker.stopped`.
#[derive(ApiResponse)]
pub enum Stopped {
    /// Recorded (also when it was already stopped).
    #[oai(status = 204)]
    NoContent,
}

#[OpenApi(tag = "Tag::WorkerProtocol")]
impl WorkerApi {
    /// The task kinds this key may run, with how each runs (command lines included), so a
    /// remote worker needs no tasks file. A platform key gets every kind; an org key the
    /// kinds of its org's plan. Scope: `jobs:work`.
    #[oai(
        path = "/v1/worker/tasks",
        method = "get",
        operation_id = "worker.tasks"
    )]
    async fn tasks(&self, velu: Data<&Velu>, auth: Auth) -> ApiResult<Json<WorkerTasks>> {
        Ok(Json(protocol::worker_tasks(&velu, &auth.0).await?.into()))
    }

    /// Register a remote worker in the fleet (`GET /v1/workers`), owned by the key's org
    /// or the platform. Ids are per owner: another owner's worker of the same id is
    /// another worker, not touched. Scope: `jobs:work`.
    #[oai(
        path = "/v1/worker/register",
        method = "post",
        operation_id = "worker.register"
    )]
    async fn register(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        body: Json<RegisterWorker>,
    ) -> BodyResult<Json<WorkerInfo>> {
        let info = protocol::worker_register(&velu, &auth.0, &body.0.into()).await?;
        Ok(Json(info.into()))
    }

    /// Claim up to `max` jobs under fresh leases: a platform key fairly across every org,
    /// an org key from its own org, each within its plan. With `wait_ms`, waits for a job
    /// when none is ready (a long poll; at most 8 waiting per key). Scope: `jobs:work`.
    #[oai(
        path = "/v1/worker/claim",
        method = "post",
        operation_id = "worker.claim"
    )]
    async fn claim(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        body: Json<ClaimJobs>,
    ) -> BodyResult<Json<Claimed>> {
        let claimed = protocol::worker_claim(&velu, &auth.0, &body.0.into()).await?;
        Ok(Json(claimed.into()))
    }

    /// Renew leases by token; answers those still held and their cancel flags (a job
    /// missing from `held` was lost: stop it, report nothing). Call it every third of the
    /// lease, also with no tokens: it is the worker's beat in the fleet. Scope: `jobs:work`.
    #[oai(
        path = "/v1/worker/heartbeat",
        method = "post",
        operation_id = "worker.heartbeat"
    )]
    async fn heartbeat(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        body: Json<HeartbeatLeases>,
    ) -> BodyResult<Json<Heartbeat>> {
        let held = protocol::worker_heartbeat(&velu, &auth.0, &body.0.into()).await?;
        Ok(Json(held.into()))
    }

    /// Report how attempts ended, each fenced by its lease token: `accepted`, or
    /// `lease_lost` (nothing written). The server applies the retry policy. Scope:
    /// `jobs:work`.
    #[oai(
        path = "/v1/worker/finish",
        method = "post",
        operation_id = "worker.finish"
    )]
    async fn finish(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        body: Json<FinishAttempts>,
    ) -> BodyResult<Json<FinishList>> {
        let done = protocol::worker_finish(&velu, &auth.0, &body.0.into()).await?;
        Ok(Json(done.into()))
    }

    /// Hand leases back at shutdown: the jobs return to the queue without using up an
    /// attempt. Scope: `jobs:work`.
    #[oai(
        path = "/v1/worker/release",
        method = "post",
        operation_id = "worker.release"
    )]
    async fn release(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        body: Json<ReleaseLeases>,
    ) -> BodyResult<Json<Released>> {
        let released = protocol::worker_release(&velu, &auth.0, &body.0.into()).await?;
        Ok(Json(released.into()))
    }

    /// Mark a remote worker stopped in the fleet (a clean shutdown). Scope: `jobs:work`.
    #[oai(
        path = "/v1/worker/stopped",
        method = "post",
        operation_id = "worker.stopped"
    )]
    async fn stopped(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        body: Json<WorkerStopped>,
    ) -> BodyResult<Stopped> {
        protocol::worker_stopped(&velu, &auth.0, &body.0.into()).await?;
        Ok(Stopped::NoContent)
    }
}
