//! The worker's entry in the fleet registry ([`crate::fleet`]), through its
//! [`QueueAccess`](super::QueueAccess): registered at start, a beat with the running count
//! every heartbeat, stopped at the end. Best effort: a registry failure is a warning and
//! never keeps the worker from running jobs.

use super::state::Shared;
use crate::fleet::WorkerRegistration;
use crate::time::now;

/// Registers the worker (its id, host, version, kinds, concurrency, heartbeat period).
pub(super) async fn register(shared: &Shared) {
    let cfg = &shared.cfg;
    let kinds = match &cfg.tasks {
        Some(only) => only.clone(),
        None => shared.tasks.iter().map(|k| k.name.clone()).collect(),
    };
    let reg = WorkerRegistration {
        id: cfg.id.clone(),
        org_id: None,
        host: host_name(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        kinds,
        remote: false,
        concurrency: u32::try_from(cfg.concurrency).unwrap_or(u32::MAX),
        heartbeat: cfg.heartbeat,
        at: now(),
    };
    if let Err(e) = shared.access.register_worker(&reg).await {
        tracing::warn!(error = %e, "registering with the fleet failed; running jobs anyway");
    }
}

/// Beats with the number of running jobs; registers again when the registry lost the
/// worker (its row was pruned while the database was out of reach).
pub(super) async fn beat(shared: &Shared) {
    let running = u32::try_from(shared.running().len()).unwrap_or(u32::MAX);
    match shared.access.worker_beat(&shared.cfg.id, running).await {
        Ok(()) => {}
        Err(e) if e.code() == "not_found" => register(shared).await,
        Err(e) => tracing::warn!(error = %e, "fleet heartbeat failed"),
    }
}

/// Marks the worker stopped (a clean shutdown).
pub(super) async fn stopped(shared: &Shared) {
    if let Err(e) = shared.access.worker_stopped(&shared.cfg.id).await {
        tracing::warn!(error = %e, "marking the worker stopped in the fleet failed");
    }
}

/// This machine's host name (`host` when it has none that is UTF-8).
fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into())
}
