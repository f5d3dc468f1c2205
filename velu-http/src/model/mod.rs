//! Wire documents as the OpenAPI spec describes them: mirrors of velu-core's output
//! structs (which know nothing of poem), converted field by field. The parity test
//! compares their JSON with the CLI's YAML of the core structs, so a drifted mirror fails.

pub mod common;
pub mod jobs;
pub mod keys;
pub mod orgs;
pub mod plans;

pub use common::Page;
