//! `velu-cli schedule ...`

use clap::Subcommand;
use serde_json::Value;
use velu_core::orgs::OrgRef;
use velu_core::schedules::{self, CreateSchedule};
use velu_core::{CoreError, CoreResult, Principal};

use super::PageArgs;
use crate::context::Global;
use crate::twin::{HttpCall, Verb};

/// Schedules: per-org periodic jobs.
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Create a schedule: a job of TASK at every tick of a 5-field cron expression, the
    /// first at the first tick after now (as the operator: created_by_type cli).
    Create {
        /// Org id or slug [env: VELU_ORG].
        #[arg(long, env = "VELU_ORG", hide_env = true)]
        org: String,
        /// Task kind (see `velu-cli task list`).
        #[arg(long)]
        task: String,
        /// Five fields: minute hour day-of-month month day-of-week, e.g. '*/5 * * * *'.
        #[arg(long, allow_hyphen_values = true)]
        cron: String,
        /// IANA time zone the cron is read in, e.g. Europe/Paris [default: UTC].
        #[arg(long)]
        timezone: Option<String>,
        /// The payload of every job, a JSON object [default: {}].
        #[arg(long, default_value = "{}")]
        payload: String,
    },
    /// List an org's schedules, oldest first.
    List {
        /// Org id or slug [env: VELU_ORG].
        #[arg(long, env = "VELU_ORG", hide_env = true)]
        org: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show a schedule.
    Show {
        /// Schedule id.
        schedule: String,
        /// Org id or slug [env: VELU_ORG].
        #[arg(long, env = "VELU_ORG", hide_env = true)]
        org: String,
    },
    /// Pause a schedule: it queues nothing until resumed.
    Pause {
        /// Schedule id.
        schedule: String,
        /// Org id or slug [env: VELU_ORG].
        #[arg(long, env = "VELU_ORG", hide_env = true)]
        org: String,
    },
    /// Resume a paused schedule from its next tick after now.
    Resume {
        /// Schedule id.
        schedule: String,
        /// Org id or slug [env: VELU_ORG].
        #[arg(long, env = "VELU_ORG", hide_env = true)]
        org: String,
    },
    /// Delete a schedule (the jobs it queued stay); prints it as it was.
    Delete {
        /// Schedule id.
        schedule: String,
        /// Org id or slug [env: VELU_ORG].
        #[arg(long, env = "VELU_ORG", hide_env = true)]
        org: String,
    },
}

fn parse_payload(text: &str) -> CoreResult<Value> {
    serde_json::from_str(text).map_err(|e| CoreError::invalid("payload", format!("not JSON: {e}")))
}

impl ScheduleCommand {
    /// The HTTP twin (remote mode, `--print-http`).
    pub fn http_twin(&self) -> CoreResult<HttpCall> {
        let all = |org: &str| {
            vec![
                "v1".to_owned(),
                "orgs".into(),
                org.into(),
                "schedules".into(),
            ]
        };
        let one = |org: &str, id: &str, verb: Option<&str>| {
            let mut path = all(org);
            path.push(id.to_owned());
            path.extend(verb.map(str::to_owned));
            path
        };
        Ok(match self {
            ScheduleCommand::Create {
                org,
                task,
                cron,
                timezone,
                payload,
            } => {
                let mut body = serde_json::json!({
                    "task": task,
                    "cron": cron,
                    "payload": parse_payload(payload)?,
                });
                if let Some(tz) = timezone {
                    body["timezone"] = Value::String(tz.clone());
                }
                HttpCall::post(all(org), Some(body))
            }
            ScheduleCommand::List { org, page } => page.twin(HttpCall::get(all(org))),
            ScheduleCommand::Show { schedule, org } => HttpCall::get(one(org, schedule, None)),
            ScheduleCommand::Pause { schedule, org } => {
                HttpCall::post(one(org, schedule, Some("pause")), None)
            }
            ScheduleCommand::Resume { schedule, org } => {
                HttpCall::post(one(org, schedule, Some("resume")), None)
            }
            ScheduleCommand::Delete { schedule, org } => {
                HttpCall::new(Verb::Delete, one(org, schedule, None))
            }
        })
    }

    pub async fn run(self, g: &Global) -> CoreResult<String> {
        let velu = g.open().await?;
        let who = Principal::operator();
        match self {
            ScheduleCommand::Create {
                org,
                task,
                cron,
                timezone,
                payload,
            } => {
                let input = CreateSchedule {
                    task,
                    cron,
                    timezone,
                    payload: parse_payload(&payload)?,
                };
                g.render(&schedules::create_schedule(&velu, &who, &OrgRef::new(org), &input).await?)
            }
            ScheduleCommand::List { org, page } => {
                let org = OrgRef::new(org);
                let list = page
                    .collect(|p| {
                        let (velu, who, org) = (&velu, &who, &org);
                        async move { schedules::list_schedules(velu, who, org, &p).await }
                    })
                    .await?;
                g.render(&list)
            }
            ScheduleCommand::Show { schedule, org } => g.render(
                &schedules::show_schedule(&velu, &who, &OrgRef::new(org), &schedule).await?,
            ),
            ScheduleCommand::Pause { schedule, org } => g.render(
                &schedules::pause_schedule(&velu, &who, &OrgRef::new(org), &schedule).await?,
            ),
            ScheduleCommand::Resume { schedule, org } => g.render(
                &schedules::resume_schedule(&velu, &who, &OrgRef::new(org), &schedule).await?,
            ),
            ScheduleCommand::Delete { schedule, org } => g.render(
                &schedules::delete_schedule(&velu, &who, &OrgRef::new(org), &schedule).await?,
            ),
        }
    }
}
