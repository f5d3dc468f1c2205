//! Velu's integration tests, one binary. Storage tests run on both backends through
//! `backend_tests!` (SQLite always, PostgreSQL when VELU_TEST_DATABASE_URL is set).

mod auth;
mod escalation;
mod generated;
mod hardening;
mod http_errors;
mod jobs;
mod keys;
mod orgs;
mod parity;
mod properties;
mod sandbox;
mod schema;
mod spec;
mod support;
mod worker;
