//! Job routes (filled in with the jobs work).

use poem_openapi::OpenApi;

/// Jobs.
pub struct JobsApi;

#[OpenApi]
impl JobsApi {}
