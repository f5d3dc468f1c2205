//! velu-core: every org, key, job and plan operation of Velu, and nothing about how it is
//! presented. The CLI (YAML) and the HTTP facade (JSON) call the same functions with the
//! same inputs and print the same output structs.
//!
//! Operations are plain async functions grouped by noun ([`orgs`], [`keys`], [`jobs`],
//! [`plans`], [`tasks`], [`audit`], [`pause`]); each takes the [`Velu`] handle and the acting
//! [`Principal`] first and checks its rights itself.

mod admission;
pub mod audit;
pub mod auth;
pub mod billing;
pub mod bootstrap;
pub mod config;
pub mod db;
pub mod entity;
pub mod error;
pub mod events;
pub mod fleet;
pub mod ids;
pub mod jobs;
pub mod keys;
pub mod metrics;
pub mod orgs;
pub mod pagination;
pub mod pause;
pub mod plans;
pub mod principal;
mod private_fs;
pub mod queue;
pub mod schedules;
pub mod scopes;
pub mod secrets;
pub mod settings;
pub mod signals;
pub mod tasks;
pub mod tenancy;
mod text;
pub mod time;
pub mod usage;
pub mod worker;

mod velu;
pub mod waiting;

pub use error::{CoreError, CoreResult};
pub use principal::{Actor, ActorType, Principal};
pub use sea_orm;
pub use velu::{OpenOptions, Velu};
