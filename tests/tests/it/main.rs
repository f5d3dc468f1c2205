//! Velu's integration tests, one binary. Storage tests run on both backends through
//! `backend_tests!` (SQLite always, PostgreSQL when VELU_TEST_DATABASE_URL is set).

mod auth;
mod billing;
mod cli_output;
mod docs;
mod escalation;
mod events;
mod fleet;
mod generated;
mod group_commit;
mod hardening;
mod http_errors;
mod job_counts;
mod jobs;
mod keys;
mod metrics;
mod orgs;
mod parity;
mod parity_events;
mod parity_queue;
mod parity_schedules;
mod parity_secrets;
mod parity_usage;
mod parity_workers;
mod pause;
mod properties;
mod remote_worker;
mod rls;
mod sandbox;
mod schedules;
mod schema;
mod secrets;
mod spec;
mod support;
mod usage;
mod worker;
