//! Plans and task kinds.

use poem_openapi::Enum;
use velu_core::plans::{self, Plan};
use velu_core::tasks;

use super::mirror::{each, mirror};

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

mirror! {
    /// What a plan allows, per organization.
    pub struct PlanLimits from plans::PlanLimits {
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
        /// Schedules (paused ones count too).
        pub schedules: u32,
        /// Days a finished job is kept before retention removes it.
        pub history_days: u32,
    }
}

mirror! {
    /// A plan with its limits and task kinds.
    pub struct PlanInfo from plans::PlanInfo {
        /// The plan.
        pub name: PlanName,
        /// Position in the order, from 0 (base).
        pub rank: u32,
        /// Its limits.
        pub limits: PlanLimits,
        /// Task kinds it may run.
        pub task_kinds: Vec<String>,
    }
}

mirror! {
    /// Every plan, lowest first.
    pub struct PlanList from plans::PlanList {
        /// The plans.
        pub items: Vec<PlanInfo> = |v| each(v),
    }
}

mirror! {
    /// A task kind.
    pub struct TaskInfo from tasks::TaskInfo {
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
}

mirror! {
    /// The task catalog.
    pub struct TaskList from tasks::TaskList {
        /// Every kind, by name.
        pub items: Vec<TaskInfo> = |v| each(v),
    }
}
