//! Prometheus metrics of a Velu process: one [`Metrics`] per [`Velu`] handle, so every
//! process (`serve`, `worker`) has its own, and [`scrape`] renders it. The worker
//! families are per process instead ([`worker`]: a remote worker has no `Velu` handle);
//! every [`Metrics`] registry shows them. Queue depth and the fleet registry are counted
//! at scrape time, at most once a second.
//!
//! Every label set is bounded by construction, never one series per job, key or org:
//! HTTP requests are labelled by method (a closed set), route *template* (from the spec;
//! anything else is `unmatched`) and status; queue depth by status and plan (closed sets);
//! worker series by task kind (the tasks file's kinds; anything else is `other`) and
//! attempt outcome (a closed set). The families, their labels and their meaning are listed
//! in `docs/metrics.md`.
//!
//! The exposition is OpenMetrics text ([`CONTENT_TYPE`]), which Prometheus reads.

mod auth;
mod fleet;
mod http;
mod labels;
mod queue;
mod worker;

use prometheus_client::registry::Registry;

use crate::scopes::Scope;
use crate::{CoreError, CoreResult, Principal, Velu};

pub use auth::{AuthFailure, AuthMetrics, RateLimit};
pub use fleet::FleetCounts;
pub use http::{HttpMethod, HttpMetrics, UNMATCHED};
pub use labels::OTHER;
pub use queue::{DEPTH_TTL, QueueDepth};
pub use worker::{ClaimTimer, LiveGuard, RunningGuard, WorkerMetrics, worker};

/// The media type of the exposition (OpenMetrics 1.0 text).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The metric families of one process and the registry that renders them.
pub struct Metrics {
    registry: Registry,
    http: HttpMetrics,
    auth: AuthMetrics,
    queue: QueueDepth,
    fleet: FleetCounts,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Fresh families at zero, plus this process's worker families ([`worker`]).
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("velu");
        let http = HttpMetrics::register(&mut registry);
        let auth = AuthMetrics::register(&mut registry);
        let queue = QueueDepth::register(&mut registry);
        let fleet = FleetCounts::register(&mut registry);
        worker().register(&mut registry);
        Metrics {
            registry,
            http,
            auth,
            queue,
            fleet,
        }
    }

    /// HTTP requests (recorded by the HTTP facade's middleware).
    pub fn http(&self) -> &HttpMetrics {
        &self.http
    }

    /// Authentication failures and rate-limit refusals.
    pub fn auth(&self) -> &AuthMetrics {
        &self.auth
    }

    /// Queue depth, refreshed at scrape time.
    pub fn queue(&self) -> &QueueDepth {
        &self.queue
    }

    /// The fleet registry's workers, refreshed at scrape time.
    pub fn fleet(&self) -> &FleetCounts {
        &self.fleet
    }

    /// The families as they stand, in OpenMetrics text (queue depth as last refreshed).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The metrics of this process, in OpenMetrics text, queue depth refreshed (at most once a
/// second, see [`QueueDepth::refresh`]). Needs `admin:orgs:manage`: the queue of every org
/// and plan is platform data, so only a platform key may read it (an org key never holds
/// that scope). A listener on a private address scrapes as the operator.
pub async fn scrape(velu: &Velu, who: &Principal) -> CoreResult<String> {
    who.require(Scope::OrgsManage)?;
    if who.org_id.is_some() {
        // Unreachable by the key rules (platform scopes never go on org keys); kept so
        // the rule does not rest on them alone.
        return Err(CoreError::forbidden(Scope::OrgsManage));
    }
    let metrics = velu.metrics();
    metrics.queue.refresh(velu.db()).await;
    metrics.fleet.refresh(velu.db()).await;
    Ok(metrics.encode())
}
