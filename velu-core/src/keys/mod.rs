//! API keys: the format, hashing, the pepper, and the key operations.
//!
//! Org keys are managed by principals holding `admin:api_keys:manage` on that org; platform
//! keys (no org) by principals holding `admin:orgs:manage`, in practice the CLI operator.
//! Least privilege on every key operation: a key never grants a scope its creator lacks,
//! and a principal may show, rotate or revoke a key only when it holds every scope of that
//! key (otherwise `forbidden`), so a key manager cannot take over a stronger key. Secrets
//! are returned once, by create and rotate, and stored only as keyed hashes. A key with an
//! expiry can neither create nor rotate a key that outlives it (`lifetime.rs`).

mod access;
mod checks;
mod create;
mod documents;
pub mod hashing;
mod lifetime;
pub mod pepper;
mod read;
pub(crate) mod retention;
mod steer;
pub mod token;

pub(crate) use access::ensure_holds_all;
pub(crate) use create::{NewKey, insert_key};
pub use create::{create_key, import_key};
pub use documents::*;
pub(crate) use lifetime::refuse_if_expiring;
pub use read::{list_keys, show_key, whoami};
pub(crate) use steer::apply_rotation;
pub use steer::{revoke_key, rotate_key};
