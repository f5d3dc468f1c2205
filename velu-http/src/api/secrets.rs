//! Org secret routes (`admin:secrets:manage`): set, list, delete; and the worker
//! protocol's `worker.secrets` (`jobs:work`), the values of one leased job's secrets.

use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use velu_core::Velu;
use velu_core::orgs::OrgRef;
use velu_core::secrets;
use velu_core::worker::protocol;

use super::Tag;
use crate::auth::Auth;
use crate::model::secrets::{JobSecrets, JobSecretsRequest, Secret, SecretList, SetSecret};
use crate::problem::{ApiResult, BodyResult};

/// Org secrets.
pub struct SecretsApi;

#[OpenApi(tag = "Tag::Secrets")]
impl SecretsApi {
    /// Set a secret: create it at version 1, or replace its value with the next version.
    /// The value is sealed under the platform's secrets key and never returned; no key
    /// configured is `config`. Refused: a name not matching `^[A-Z_][A-Z0-9_]{0,63}$` or
    /// reserved (`VELU_*`, `LD_*`, `PATH`, ...) and a value with U+0000 (`invalid`), more
    /// than 65536 bytes (`payload_too_large`). Scope: `admin:secrets:manage`.
    #[oai(
        path = "/v1/orgs/:org/secrets/:name",
        method = "put",
        operation_id = "secrets.set"
    )]
    async fn set(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        org: Path<String>,
        name: Path<String>,
        body: Json<SetSecret>,
    ) -> BodyResult<Json<Secret>> {
        let org = OrgRef::new(org.0);
        let value = body.0.value.0;
        let done = secrets::set_secret(&velu, &auth.0, &org, &name, value.as_bytes()).await?;
        Ok(Json(done.into()))
    }

    /// List the org's secrets: names, versions and dates, never a value. Scope:
    /// `admin:secrets:manage`.
    #[oai(
        path = "/v1/orgs/:org/secrets",
        method = "get",
        operation_id = "secrets.list"
    )]
    async fn list(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        org: Path<String>,
    ) -> ApiResult<Json<SecretList>> {
        let list = secrets::list_secrets(&velu, &auth.0, &OrgRef::new(org.0)).await?;
        Ok(Json(list.into()))
    }

    /// Delete a secret; answers it as it was (without its value). Jobs of kinds that list
    /// it fail with `secret_unavailable` from then on. Scope: `admin:secrets:manage`.
    #[oai(
        path = "/v1/orgs/:org/secrets/:name",
        method = "delete",
        operation_id = "secrets.delete"
    )]
    async fn delete(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        org: Path<String>,
        name: Path<String>,
    ) -> ApiResult<Json<Secret>> {
        let org = OrgRef::new(org.0);
        let done = secrets::delete_secret(&velu, &auth.0, &org, &name).await?;
        Ok(Json(done.into()))
    }
}

/// The worker protocol's secrets route.
pub struct WorkerSecretsApi;

#[OpenApi(tag = "Tag::WorkerProtocol")]
impl WorkerSecretsApi {
    /// The org secrets of a job the caller holds under a live lease (its id, worker id and
    /// lease token), as its task kind lists them, for the job's environment. A stale,
    /// wrong or other org's lease is `not_found`; a secret the org has not set is
    /// `not_found` naming it. Scope: `jobs:work`.
    #[oai(
        path = "/v1/worker/secrets",
        method = "post",
        operation_id = "worker.secrets"
    )]
    async fn secrets(
        &self,
        velu: Data<&Velu>,
        auth: Auth,
        body: Json<JobSecretsRequest>,
    ) -> BodyResult<Json<JobSecrets>> {
        let answer = protocol::worker_secrets(&velu, &auth.0, &body.0.into()).await?;
        Ok(Json(answer.into()))
    }
}
