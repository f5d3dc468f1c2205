//! Org secrets for jobs (docs/secrets.md): named values an org's admin sets
//! (`admin:secrets:manage`) and the jobs of task kinds that list them receive as
//! environment variables. Write-only: no operation returns a value, and none reaches a
//! log, a job document, a result, an audit detail or an error message.
//!
//! * `input.rs`: names (`^[A-Z_][A-Z0-9_]{0,63}$`) and values (1 byte to 64 KiB of UTF-8
//!   without NUL).
//! * `kek.rs`: the key-encryption key, taken like the pepper, and its fingerprint.
//! * `seal.rs`: XChaCha20-Poly1305 with a random nonce per value, the org id, name and
//!   version bound as associated data.
//! * `documents.rs`, `ops.rs`: set, list, delete (tenancy, scope, audit).
//! * `rekey.rs`: the operator's rotation of the key-encryption key.
//! * `deliver.rs`: the values for one job, for the local worker and `worker.secrets`.

mod deliver;
mod documents;
mod input;
mod kek;
mod ops;
mod rekey;
mod seal;

pub use deliver::{MAX_SECRETS_PER_TASK, SecretEnv, secrets_for_org};
pub use documents::{RekeyReport, Secret, SecretList};
pub use input::{MAX_NAME_LEN, MAX_VALUE_LEN, check_name, check_value};
pub use kek::{DEFAULT_KEY_FILE, KEY_ENV, KEY_FILE_ENV, KEY_LEN, Kek};
pub use ops::{delete_secret, list_secrets, set_secret};
pub use rekey::rekey_secrets;

pub(crate) use kek::resolve as resolve_kek;

/// Most secrets one org may hold.
pub const MAX_SECRETS_PER_ORG: u64 = 500;
