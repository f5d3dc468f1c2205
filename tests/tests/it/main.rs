//! Velu's integration tests, one binary. Storage tests run on both backends through
//! `backend_tests!` (SQLite always, PostgreSQL when VELU_TEST_DATABASE_URL is set).

mod auth;
mod cli_output;
mod docs;
mod escalation;
mod fleet;
mod generated;
mod hardening;
mod http_errors;
mod jobs;
mod keys;
mod metrics;
mod orgs;
mod parity;
mod parity_queue;
mod parity_schedules;
mod parity_workers;
mod pause;
mod properties;
mod remote_worker;
mod sandbox;
mod schedules;
mod schema;
mod spec;
mod support;
mod worker;
