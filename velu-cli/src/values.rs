//! velu-core's closed sets as clap values, so `--help` lists them and completion offers
//! them, while velu-core still judges what was typed: a bad value fails exactly as over
//! HTTP (`invalid`, exit 5), not with a usage error of the CLI's own (the parity rule).
//!
//! velu-core knows nothing of clap, so each set is a newtype here whose variants are taken
//! from the core type's `ALL` constant; the help text of each value is an exhaustive
//! `match`, so a new core variant fails to compile until it is described.

use std::ffi::OsStr;
use std::marker::PhantomData;

use clap::ValueEnum;
use clap::builder::{PossibleValue, StringValueParser, TypedValueParser};
use velu_core::fleet::WorkerState;
use velu_core::jobs::JobStatus;
use velu_core::plans::Plan;
use velu_core::scopes::{Role, Scope};

/// One line of help for each value of a core set.
trait Described: Copy + 'static {
    fn name(self) -> &'static str;
    fn help(self) -> String;
}

impl Described for Plan {
    fn name(self) -> &'static str {
        self.as_str()
    }
    fn help(self) -> String {
        match self {
            Plan::Base => "read-only: no task kinds".into(),
            Plan::Hero => "the standard task kinds".into(),
            Plan::Superhero => "every task kind".into(),
        }
    }
}

impl Described for Role {
    fn name(self) -> &'static str {
        self.as_str()
    }
    fn help(self) -> String {
        // Exhaustive on purpose: a new role must be looked at here.
        match self {
            Role::Viewer | Role::Builder | Role::Admin | Role::Worker => {
                self.scopes().names().join(", ")
            }
        }
    }
}

impl Described for Scope {
    fn name(self) -> &'static str {
        self.as_str()
    }
    fn help(self) -> String {
        match self {
            Scope::JobsRead => "read the org's jobs",
            Scope::JobsSubmit => "submit, cancel and retry the org's jobs",
            Scope::ApiKeysManage => "manage the org's API keys",
            Scope::AuditRead => "read the org's audit log",
            Scope::OrgsManage => "create orgs and change plans (platform keys only)",
            Scope::JobsWork => "run jobs as a worker (org keys: the org's own jobs only)",
            Scope::QueueManage => "pause, resume and show the org's queue",
            Scope::SecretsManage => "set, list and delete the org's secrets (write-only values)",
            Scope::UsageRead => "read the org's usage report (platform keys: every org's)",
        }
        .into()
    }
}

impl Described for JobStatus {
    fn name(self) -> &'static str {
        self.as_str()
    }
    fn help(self) -> String {
        match self {
            JobStatus::Queued => "waiting for a worker (or for its run_at)",
            JobStatus::Running => "a worker holds its lease",
            JobStatus::Succeeded => "done: the result is stored",
            JobStatus::Failed => "done: the last attempt failed",
            JobStatus::Cancelled => "done: a cancel was asked",
        }
        .into()
    }
}

impl Described for WorkerState {
    fn name(self) -> &'static str {
        self.as_str()
    }
    fn help(self) -> String {
        match self {
            WorkerState::Live => "heartbeating",
            WorkerState::Stale => "missed three heartbeats without saying it stopped",
            WorkerState::Stopped => "shut down cleanly",
        }
        .into()
    }
}

/// Declares a clap value enum wrapping a core type with an `ALL` constant.
macro_rules! value_enum {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name(pub $inner);

        impl $name {
            const VARIANTS: [$name; <$inner>::ALL.len()] = {
                let mut out = [$name(<$inner>::ALL[0]); <$inner>::ALL.len()];
                let mut i = 1;
                while i < out.len() {
                    out[i] = $name(<$inner>::ALL[i]);
                    i += 1;
                }
                out
            };

            /// The name velu-core stores and prints.
            pub fn as_str(self) -> &'static str {
                Described::name(self.0)
            }
        }

        impl ValueEnum for $name {
            fn value_variants<'a>() -> &'a [Self] {
                &Self::VARIANTS
            }

            fn to_possible_value(&self) -> Option<PossibleValue> {
                Some(PossibleValue::new(self.as_str()).help(Described::help(self.0)))
            }
        }
    };
}

value_enum!(
    /// A plan tier (`velu_core::plans::Plan`).
    PlanArg(Plan)
);
value_enum!(
    /// A key role (`velu_core::scopes::Role`).
    RoleArg(Role)
);
value_enum!(
    /// A scope (`velu_core::scopes::Scope`).
    ScopeArg(Scope)
);
value_enum!(
    /// A job status (`velu_core::jobs::JobStatus`).
    StatusArg(JobStatus)
);
value_enum!(
    /// A worker state (`velu_core::fleet::WorkerState`).
    WorkerStateArg(WorkerState)
);

/// A value parser that offers `E`'s values to `--help` and to completion but takes any
/// text, so velu-core decides (and refuses) exactly as for the HTTP twin.
#[derive(Debug)]
pub struct Offer<E>(PhantomData<fn() -> E>);

impl<E> Clone for Offer<E> {
    fn clone(&self) -> Self {
        Offer(PhantomData)
    }
}

/// The parser of an argument whose values are `E`'s (see [`Offer`]).
pub fn offer<E>() -> Offer<E> {
    Offer(PhantomData)
}

impl<E: ValueEnum + 'static> TypedValueParser for Offer<E> {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<String, clap::Error> {
        StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(
            E::value_variants()
                .iter()
                .filter_map(ValueEnum::to_possible_value),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names<T: ValueEnum>() -> Vec<String> {
        T::value_variants()
            .iter()
            .map(|v| v.to_possible_value().unwrap().get_name().to_owned())
            .collect()
    }

    #[test]
    fn every_core_value_is_offered() {
        assert_eq!(names::<PlanArg>(), ["base", "hero", "superhero"]);
        let roles: Vec<_> = Role::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names::<RoleArg>(), roles);
        assert!(roles.contains(&"worker"), "the worker role is offered");
        let statuses: Vec<_> = JobStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names::<StatusArg>(), statuses);
        let states: Vec<_> = WorkerState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names::<WorkerStateArg>(), states);
        let scopes: Vec<_> = Scope::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names::<ScopeArg>(), scopes);
        assert_eq!(
            PlanArg::from_str("hero", false).unwrap(),
            PlanArg(Plan::Hero)
        );
        assert!(PlanArg::from_str("gold", false).is_err());
    }

    #[test]
    fn offered_values_are_listed_but_any_text_reaches_velu_core() {
        let cmd = clap::Command::new("t").arg(
            clap::Arg::new("plan")
                .long("plan")
                .value_parser(offer::<PlanArg>()),
        );
        let arg = cmd.get_arguments().next().unwrap();
        let listed: Vec<_> = arg
            .get_possible_values()
            .iter()
            .map(|v| v.get_name().to_owned())
            .collect();
        assert_eq!(listed, ["base", "hero", "superhero"]);
        let m = cmd.try_get_matches_from(["t", "--plan", "gold"]).unwrap();
        assert_eq!(
            m.get_one::<String>("plan").map(String::as_str),
            Some("gold")
        );
    }
}
