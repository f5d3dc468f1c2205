//! Wire documents as the OpenAPI spec describes them: mirrors of velu-core's output
//! structs (which know nothing of poem), each declared once with `mirror!` (`mirror.rs`), and
//! the request bodies. The parity test compares their JSON with the CLI's YAML of the core
//! structs, so a field left off a mirror fails there; the answers served from the core
//! document itself (`crate::core_json`) are checked against their mirror by
//! `tests/it/core_json.rs`.

pub mod audit;
pub mod billing;
pub mod bootstrap;
pub mod common;
pub mod events;
pub mod jobs;
pub mod keys;
mod mirror;
pub mod optional;
pub mod orgs;
pub mod plans;
pub mod queue;
pub mod retention;
pub mod schedules;
pub mod secrets;
pub mod usage;
pub mod worker;
pub mod workers;

pub use common::Page;
pub use mirror::Mirrors;
