//! Plan tiers: the one place that says what each plan may do and how much.
//!
//! Plans are ordered `base < hero < superhero`. A task kind names its minimum plan (see
//! [`crate::tasks`]); an org may run a kind when its plan is at least that minimum. `base`
//! is read-only: no task kind has `base` as its minimum.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{CoreError, CoreResult};

/// Which task kinds a plan may run: the task catalog answers (`crate::tasks`), so plans
/// need not know the catalog.
pub trait PlanKinds {
    /// Names of the kinds `plan` may run, sorted.
    fn kinds_for(&self, plan: Plan) -> Vec<String>;
}

/// A plan tier, ordered from lowest to highest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    /// Read-only: no task kinds.
    Base,
    /// The standard task kinds.
    Hero,
    /// Every task kind.
    Superhero,
}

/// What a plan allows, per organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PlanLimits {
    /// Authenticated API requests per minute.
    pub requests_per_minute: u32,
    /// Jobs running at the same time.
    pub concurrent_jobs: u32,
    /// Jobs waiting in the queue (`queued`).
    pub queued_jobs: u64,
    /// Largest job payload, in bytes of JSON.
    pub payload_bytes: u64,
    /// Active (not revoked) API keys.
    pub api_keys: u32,
    /// Schedules (paused ones count too); see `crate::schedules`.
    pub schedules: u32,
    /// Days a finished job is kept before retention removes it (`crate::jobs::retention`,
    /// docs/retention.md).
    pub history_days: u32,
}

/// A plan as `plan list` and `plan show` print it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanInfo {
    /// `base`, `hero` or `superhero`.
    pub name: Plan,
    /// Position in the order, from 0 (`base`).
    pub rank: u32,
    /// The plan's limits.
    pub limits: PlanLimits,
    /// Task kinds this plan may run, sorted.
    pub task_kinds: Vec<String>,
}

/// The list of plans, lowest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanList {
    /// Every plan.
    pub items: Vec<PlanInfo>,
}

const KIB: u64 = 1024;

impl Plan {
    /// Every plan, lowest first.
    pub const ALL: [Plan; 3] = [Plan::Base, Plan::Hero, Plan::Superhero];

    /// The name as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Base => "base",
            Plan::Hero => "hero",
            Plan::Superhero => "superhero",
        }
    }

    /// Position in the order, from 0 (`base`).
    pub const fn rank(self) -> u32 {
        self as u32
    }

    /// The plan's limits.
    pub fn limits(self) -> PlanLimits {
        match self {
            Plan::Base => PlanLimits {
                requests_per_minute: 60,
                concurrent_jobs: 0,
                queued_jobs: 0,
                payload_bytes: 16 * KIB,
                api_keys: 5,
                // Base runs no task kind, so it has nothing to schedule.
                schedules: 0,
                history_days: 7,
            },
            Plan::Hero => PlanLimits {
                requests_per_minute: 600,
                concurrent_jobs: 10,
                queued_jobs: 10_000,
                payload_bytes: 256 * KIB,
                api_keys: 50,
                schedules: 20,
                history_days: 30,
            },
            Plan::Superhero => PlanLimits {
                requests_per_minute: 6_000,
                concurrent_jobs: 100,
                queued_jobs: 1_000_000,
                payload_bytes: 1024 * KIB,
                api_keys: 500,
                schedules: 200,
                history_days: 90,
            },
        }
    }

    /// Parses a plan name given for `field`; unknown names are `invalid`, never a default.
    pub fn parse_field(field: &str, text: &str) -> CoreResult<Plan> {
        text.parse().map_err(|_| {
            CoreError::invalid(
                field,
                format!("unknown plan `{text}`; expected base, hero or superhero"),
            )
        })
    }
}

impl Plan {
    /// Parses a plan read from the database. A value outside the closed set is a corrupt
    /// row: an `internal` error (logged), never a silent downgrade to `base`.
    pub fn from_stored(text: &str) -> CoreResult<Plan> {
        text.parse().map_err(|_| {
            tracing::error!(plan = text, "unknown plan stored in the database");
            CoreError::internal(format!("unknown plan `{text}` stored"))
        })
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an unknown plan name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPlan;

impl FromStr for Plan {
    type Err = UnknownPlan;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Plan::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or(UnknownPlan)
    }
}

/// Lists every plan with its limits and the task kinds it may run. Public.
pub fn list_plans(tasks: &impl PlanKinds) -> PlanList {
    PlanList {
        items: Plan::ALL.into_iter().map(|p| info(tasks, p)).collect(),
    }
}

/// Shows one plan by name. Public.
pub fn show_plan(tasks: &impl PlanKinds, name: &str) -> CoreResult<PlanInfo> {
    let plan: Plan = name
        .parse()
        .map_err(|_| CoreError::not_found("plan", name))?;
    Ok(info(tasks, plan))
}

fn info(tasks: &impl PlanKinds, plan: Plan) -> PlanInfo {
    PlanInfo {
        name: plan,
        rank: plan.rank(),
        limits: plan.limits(),
        task_kinds: tasks.kinds_for(plan),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_follow_the_order() {
        let ranks: Vec<u32> = Plan::ALL.into_iter().map(Plan::rank).collect();
        assert_eq!(ranks, [0, 1, 2]);
    }

    #[test]
    fn plans_are_ordered_and_limits_grow() {
        assert!(Plan::Base < Plan::Hero && Plan::Hero < Plan::Superhero);
        for pair in Plan::ALL.windows(2) {
            let (lo, hi) = (pair[0].limits(), pair[1].limits());
            assert!(lo.requests_per_minute < hi.requests_per_minute);
            assert!(lo.concurrent_jobs < hi.concurrent_jobs);
            assert!(lo.queued_jobs < hi.queued_jobs);
            assert!(lo.payload_bytes < hi.payload_bytes);
            assert!(lo.api_keys < hi.api_keys);
            assert!(lo.schedules < hi.schedules);
            assert!(lo.history_days < hi.history_days);
        }
    }

    #[test]
    fn defaults_from_the_issue() {
        let base = Plan::Base.limits();
        assert_eq!(
            (
                base.requests_per_minute,
                base.concurrent_jobs,
                base.queued_jobs
            ),
            (60, 0, 0)
        );
        assert_eq!((base.payload_bytes, base.api_keys), (16 * 1024, 5));
        let hero = Plan::Hero.limits();
        assert_eq!(
            (
                hero.requests_per_minute,
                hero.concurrent_jobs,
                hero.queued_jobs
            ),
            (600, 10, 10_000)
        );
        assert_eq!((hero.payload_bytes, hero.api_keys), (256 * 1024, 50));
        let sup = Plan::Superhero.limits();
        assert_eq!(
            (
                sup.requests_per_minute,
                sup.concurrent_jobs,
                sup.queued_jobs
            ),
            (6_000, 100, 1_000_000)
        );
        assert_eq!((sup.payload_bytes, sup.api_keys), (1024 * 1024, 500));
    }

    #[test]
    fn unknown_plan_is_invalid_never_a_default() {
        let err = Plan::parse_field("plan", "gold").unwrap_err();
        assert_eq!(err.code(), "invalid");
        assert_eq!(Plan::parse_field("plan", "hero").unwrap(), Plan::Hero);
        assert!("Hero".parse::<Plan>().is_err(), "names are exact");
    }
}
