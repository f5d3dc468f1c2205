//! Plans and task kinds.

use poem_openapi::{Enum, Object};
use velu_core::plans::{self, Plan};
use velu_core::tasks;

/// A plan tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase", rename = "Plan")]
pub enum PlanName {
    /// Read-only: no task kinds.
    Base,
    /// The standard task kinds.
    Hero,
    /// Every task kind.
    Superhero,
}

impl From<Plan> for PlanName {
    fn from(p: Plan) -> Self {
        match p {
            Plan::Base => PlanName::Base,
            Plan::Hero => PlanName::Hero,
            Plan::Superhero => PlanName::Superhero,
        }
    }
}

impl PlanName {
    /// The name as core parses it.
    pub fn as_str(self) -> &'static str {
        Plan::from(self).as_str()
    }
}

impl From<PlanName> for Plan {
    fn from(p: PlanName) -> Self {
        match p {
            PlanName::Base => Plan::Base,
            PlanName::Hero => Plan::Hero,
            PlanName::Superhero => Plan::Superhero,
        }
    }
}

/// What a plan allows, per organization.
#[derive(Debug, Object)]
pub struct PlanLimits {
    /// Authenticated API requests per minute.
    pub requests_per_minute: u32,
    /// Jobs running at the same time.
    pub concurrent_jobs: u32,
    /// Jobs waiting in the queue.
    pub queued_jobs: u64,
    /// Largest job payload, in bytes of JSON.
    pub payload_bytes: u64,
    /// Active API keys.
    pub api_keys: u32,
}

/// A plan with its limits and task kinds.
#[derive(Debug, Object)]
pub struct PlanInfo {
    /// The plan.
    pub name: PlanName,
    /// Position in the order, from 0 (base).
    pub rank: u32,
    /// Its limits.
    pub limits: PlanLimits,
    /// Task kinds it may run.
    pub task_kinds: Vec<String>,
}

/// Every plan, lowest first.
#[derive(Debug, Object)]
pub struct PlanList {
    /// The plans.
    pub items: Vec<PlanInfo>,
}

impl From<plans::PlanInfo> for PlanInfo {
    fn from(p: plans::PlanInfo) -> Self {
        let l = p.limits;
        PlanInfo {
            name: p.name.into(),
            rank: p.rank,
            limits: PlanLimits {
                requests_per_minute: l.requests_per_minute,
                concurrent_jobs: l.concurrent_jobs,
                queued_jobs: l.queued_jobs,
                payload_bytes: l.payload_bytes,
                api_keys: l.api_keys,
            },
            task_kinds: p.task_kinds,
        }
    }
}

impl From<plans::PlanList> for PlanList {
    fn from(p: plans::PlanList) -> Self {
        PlanList {
            items: p.items.into_iter().map(Into::into).collect(),
        }
    }
}

/// A task kind.
#[derive(Debug, Object)]
pub struct TaskInfo {
    /// Kind name.
    pub name: String,
    /// `builtin` or `command`.
    pub kind: String,
    /// Lowest plan that may run it.
    pub min_plan: PlanName,
    /// Per-attempt timeout, seconds.
    pub timeout_secs: u64,
    /// Default attempts.
    pub max_attempts: u32,
    /// What it does.
    pub description: String,
}

/// The task catalog.
#[derive(Debug, Object)]
pub struct TaskList {
    /// Every kind, by name.
    pub items: Vec<TaskInfo>,
}

impl From<tasks::TaskList> for TaskList {
    fn from(t: tasks::TaskList) -> Self {
        TaskList {
            items: t
                .items
                .into_iter()
                .map(|k| TaskInfo {
                    name: k.name,
                    kind: k.kind,
                    min_plan: k.min_plan.into(),
                    timeout_secs: k.timeout_secs,
                    max_attempts: k.max_attempts,
                    description: k.description,
                })
                .collect(),
        }
    }
}
