//! `worker.register` and `worker.stopped`: a remote worker in the fleet registry.

use std::time::Duration;

use super::served::served;
use super::wire::{RegisterInput, StoppedInput};
use crate::fleet::{self, WorkerInfo, WorkerRegistration};
use crate::principal::Principal;
use crate::time::now;
use crate::{CoreResult, Velu};

/// Registers the calling remote worker in the fleet (`GET /v1/workers`), owned by the
/// key's org (or the platform, for a platform key): never by the worker's own words. Ids
/// are per owner: another owner's worker of the same id is not touched. Scope: `jobs:work`.
pub async fn worker_register(
    velu: &Velu,
    who: &Principal,
    input: &RegisterInput,
) -> CoreResult<WorkerInfo> {
    let served = served(velu, who).await?;
    let reg = WorkerRegistration {
        id: input.worker_id.clone(),
        org_id: served.org_id().map(str::to_owned),
        host: input.host.clone(),
        version: input.version.clone(),
        kinds: input.kinds.clone(),
        remote: true,
        concurrency: input.concurrency,
        heartbeat: Duration::from_secs(input.heartbeat_secs),
        at: now(),
    };
    fleet::register(velu, &reg).await
}

/// Marks the calling remote worker stopped in the fleet (a clean shutdown; idempotent).
/// Another owner's worker id is `not_found`. Scope: `jobs:work`.
pub async fn worker_stopped(velu: &Velu, who: &Principal, input: &StoppedInput) -> CoreResult<()> {
    let served = served(velu, who).await?;
    fleet::stopped(velu, &input.worker_id, served.org_id(), now()).await
}
