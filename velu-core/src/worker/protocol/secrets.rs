//! `worker.secrets`: the org secrets of one job a remote worker holds under a live lease.
//! The worker names the job and its lease token; the server checks that the lease is
//! current and the caller's (another org's job, or a stale or wrong token, is
//! `not_found`, the same as a missing job), takes the secret names from its own catalog
//! (never from the worker) and opens the values of the job's org.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::db::CrossOrg;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::served::{self, bounded_text, served};
use crate::entity::jobs;
use crate::ids::is_uuid;
use crate::jobs::JobStatus;
use crate::principal::Principal;
use crate::secrets::{SecretEnv, secrets_for_org};
use crate::tasks::Runner;
use crate::time::now;
use crate::{CoreError, CoreResult, Velu};

/// Body of `worker.secrets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsInput {
    /// The worker holding the lease.
    pub worker_id: String,
    /// The job.
    pub job_id: String,
    /// The lease token of the job's current attempt.
    pub token: String,
}

/// One secret for a job. `Debug` shows the name only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretValue {
    /// The name, the environment variable the job gets.
    pub name: String,
    /// The value.
    pub value: String,
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretValue({}, <redacted>)", self.name)
    }
}

/// Answer of `worker.secrets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSecrets {
    /// The secrets the job's kind lists, in its order (empty for a kind that lists none).
    pub secrets: Vec<SecretValue>,
}

impl From<JobSecrets> for SecretEnv {
    fn from(j: JobSecrets) -> SecretEnv {
        SecretEnv::new(j.secrets.into_iter().map(|s| (s.name, s.value)).collect())
    }
}

/// The secrets of job `input.job_id` for the worker holding its current lease. A missing
/// secret is `not_found` naming it; no secrets key is `config`. Scope: `jobs:work` (a
/// platform key for any org's job, an org key for its own org's).
pub async fn worker_secrets(
    velu: &Velu,
    who: &Principal,
    input: &SecretsInput,
) -> CoreResult<JobSecrets> {
    let served = served(velu, who).await?;
    served::worker_id(&input.worker_id)?;
    bounded_text("token", &input.token, 128)?;
    let lost = || CoreError::not_found("job lease", input.job_id.as_str());
    if !is_uuid(&input.job_id) {
        return Err(lost());
    }
    // Worker side: an org key is held to its org below; a platform key serves every org.
    let tx = velu.db().cross_org_read_tx(CrossOrg::Queue).await?;
    let job = jobs::Entity::find_by_id(input.job_id.clone())
        .filter(jobs::Column::Status.eq(JobStatus::Running.as_str()))
        .one(&tx)
        .await?;
    tx.commit().await?;
    let job = job.ok_or_else(lost)?;
    let token_ok = job
        .lease_token
        .as_deref()
        .is_some_and(|t| bool::from(t.as_bytes().ct_eq(input.token.as_bytes())));
    let owner_ok = job.lease_owner.as_deref() == Some(input.worker_id.as_str());
    let live = job.lease_expires_at.is_some_and(|t| t > now());
    let org_ok = served.org_id().is_none_or(|org| org == job.org_id);
    if !(token_ok && owner_ok && live && org_ok) {
        return Err(lost());
    }
    let names = match velu.tasks().get(&job.task).map(|k| &k.runner) {
        Some(Runner::Command(spec)) => spec.secrets.clone(),
        _ => Vec::new(),
    };
    let env = secrets_for_org(velu, &job.org_id, &names).await?;
    Ok(JobSecrets {
        secrets: env
            .into_pairs()
            .into_iter()
            .map(|(name, value)| SecretValue { name, value })
            .collect(),
    })
}
