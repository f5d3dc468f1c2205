//! Schedules: per-org periodic jobs. A schedule names a task kind, a payload and a
//! five-field cron expression read in an IANA time zone; at each tick the ticker queues
//! one job, as the schedule (`actor_type: schedule`, `actor_id`: its id), through the same
//! checks as a submit (the org's plan gates and queued-jobs quota, read at the tick).
//!
//! * `cron.rs`: parsing and evaluating cron expressions and time zones (croner,
//!   chrono-tz).
//! * `input.rs`, `documents.rs`: what a client sends and what every front end prints.
//! * `ops.rs`: create, list, show, pause, resume, delete (rights, tenancy, audit).
//! * `ticker.rs`: [`tick_once`], one job per tick however many processes run it, and the
//!   background loop `serve` and `worker` start ([`start_ticker`]).
//!
//! The rules for people are in `docs/schedules.md`.

mod cron;
mod documents;
mod input;
mod ops;
mod page;
mod ticker;

pub use cron::{DEFAULT_TIMEZONE, MAX_CRON_LEN, MAX_TIMEZONE_LEN};
pub use documents::Schedule;
pub use input::CreateSchedule;
pub use ops::{
    create_schedule, delete_schedule, list_schedules, pause_schedule, resume_schedule,
    show_schedule,
};
pub use ticker::{DEFAULT_TICK_EVERY, TICK_BATCH, TickReport, start_ticker, tick_once};
