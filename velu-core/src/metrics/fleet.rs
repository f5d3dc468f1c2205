//! Live workers: the fleet registry (`crate::fleet`, the `workers` table) counted by state
//! and location at scrape time, cached like the queue depth.

use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use super::queue::DEPTH_TTL;
use crate::CoreResult;
use crate::db::Db;
use crate::entity::workers::{self, Column};
use crate::fleet::{WorkerLocation, WorkerState};
use crate::time::now;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct FleetLabels {
    state: WorkerState,
    location: WorkerLocation,
}

/// The fleet gauges and when they were last counted.
pub struct FleetCounts {
    workers: Family<FleetLabels, Gauge>,
    counted: tokio::sync::Mutex<Option<Instant>>,
}

impl FleetCounts {
    pub(super) fn register(registry: &mut Registry) -> FleetCounts {
        let workers = Family::<FleetLabels, Gauge>::default();
        registry.register(
            "fleet_workers",
            "Workers in the fleet registry by state (live, stale, stopped) and location \
             (local, remote), counted at scrape time",
            workers.clone(),
        );
        FleetCounts {
            workers,
            counted: tokio::sync::Mutex::new(None),
        }
    }

    /// Counts again unless the last count is under a second old; on failure the series
    /// are removed and the failure logged (as for the queue depth).
    pub async fn refresh(&self, db: &Db) {
        let mut counted = self.counted.lock().await;
        if counted.is_some_and(|at| at.elapsed() < DEPTH_TTL) {
            return;
        }
        match count(db).await {
            Ok(rows) => {
                for (state, location, n) in rows {
                    self.workers
                        .get_or_create(&FleetLabels { state, location })
                        .set(i64::try_from(n).unwrap_or(i64::MAX));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot count the fleet for metrics");
                self.workers.clear();
            }
        }
        *counted = Some(Instant::now());
    }
}

/// Workers per (state, location), every pair included. The registry is small (rows are
/// pruned a day after their worker was last seen), so six counts cost little.
async fn count(db: &Db) -> CoreResult<Vec<(WorkerState, WorkerLocation, u64)>> {
    let at = now();
    let tx = db.cross_org_read_tx(crate::db::CrossOrg::Metrics).await?;
    let mut out = Vec::new();
    for state in WorkerState::ALL {
        for location in [WorkerLocation::Local, WorkerLocation::Remote] {
            let mut q = workers::Entity::find()
                .filter(Column::Remote.eq(location == WorkerLocation::Remote));
            q = match state {
                WorkerState::Stopped => q.filter(Column::StoppedAt.is_not_null()),
                WorkerState::Stale => q
                    .filter(Column::StoppedAt.is_null())
                    .filter(Column::StaleAt.lt(at)),
                WorkerState::Live => q
                    .filter(Column::StoppedAt.is_null())
                    .filter(Column::StaleAt.gte(at)),
            };
            out.push((state, location, q.count(&tx).await?));
        }
    }
    tx.commit().await?;
    Ok(out)
}
