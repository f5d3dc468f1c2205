//! Routes of the earlier system (filled in with the jobs work).

use poem_openapi::OpenApi;

/// Compatibility routes.
pub struct CompatApi;

#[OpenApi]
impl CompatApi {}
