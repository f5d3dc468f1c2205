//! The REST API: one `#[OpenApi]` impl per noun, each operation five to fifteen lines:
//! extract, call velu-core, convert, respond. Operation ids name the core operation
//! (`orgs.create`), which `docs/parity.md` maps to its CLI command.

mod audit;
mod compat;
mod health;
mod jobs;
mod keys;
mod orgs;
mod plans;
mod whoami;

use poem_openapi::payload::Json;
use poem_openapi::types::{ParseFromJSON, ToJSON};
use poem_openapi::{ApiResponse, OpenApiService, Tags};

/// Groups of operations in the docs.
#[derive(Tags)]
pub enum Tag {
    /// Liveness and readiness.
    Health,
    /// Plan tiers and the task catalog (public).
    Plans,
    /// Organizations (platform keys with `admin:orgs:manage`).
    Orgs,
    /// An org's API keys (`admin:api_keys:manage`).
    Keys,
    /// Jobs: submit, read and steer.
    Jobs,
    /// The audit log (`audit:read`).
    Audit,
    /// Routes of the earlier system, kept for its clients.
    Compat,
}

/// A `201 Created` answer with the new resource.
#[derive(ApiResponse)]
pub enum Created<T: ParseFromJSON + ToJSON + Send + Sync> {
    /// Created.
    #[oai(status = 201)]
    Created(Json<T>),
}

/// The OpenAPI service (no database needed: the spec is static).
pub fn service() -> OpenApiService<impl poem_openapi::OpenApi, ()> {
    OpenApiService::new(
        (
            health::HealthApi,
            plans::PlansApi,
            orgs::OrgsApi,
            keys::KeysApi,
            whoami::WhoamiApi,
            audit::AuditApi,
            jobs::JobsApi,
            compat::CompatApi,
        ),
        "Velu",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Control plane of a multi-tenant job platform. Authenticate with an API key in \
         `X-API-Key` or `Authorization: Bearer`. Errors are `application/problem+json` with a \
         stable `code` (see docs/errors.md). Each secured operation names the scope it needs.",
    )
}
