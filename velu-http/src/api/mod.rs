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

use std::collections::BTreeSet;

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

/// The spec as served and committed: poem-openapi's document plus what it cannot say
/// itself. Every request body refuses unknown fields (`deny_unknown_fields`), so each
/// object schema a request body uses gets `additionalProperties: false`; every response
/// carries `X-Request-Id` (added by `headers.rs`, outside the operations).
pub fn finished_spec() -> String {
    finish_spec(&service().spec())
}

fn finish_spec(json: &str) -> String {
    use serde_yaml::Value as Y;
    // serde_yaml's mappings keep their order (serde_json's would sort the document).
    let mut doc: Y = serde_yaml::from_str(json).expect("poem-openapi writes a JSON document");
    let mut todo = Vec::new();
    for ops in doc["paths"]
        .as_mapping()
        .into_iter()
        .flat_map(|m| m.values())
    {
        for op in ops.as_mapping().into_iter().flat_map(|m| m.values()) {
            refs_in(&op["requestBody"], &mut todo);
        }
    }
    add_request_id_header(&mut doc);
    let mut seen = BTreeSet::new();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let schema = &mut doc["components"]["schemas"][name.as_str()];
        refs_in(schema, &mut todo);
        if schema["type"].as_str() == Some("object")
            && let Some(map) = schema.as_mapping_mut()
        {
            map.insert("additionalProperties".into(), Y::Bool(false));
        }
    }
    serde_json::to_string_pretty(&doc).expect("a YAML value of JSON serializes as JSON")
}

/// Declares the `X-Request-Id` header on every response of every operation.
fn add_request_id_header(doc: &mut serde_yaml::Value) {
    use serde_yaml::Value as Y;
    let header: Y = serde_yaml::from_str(
        r#"{"description": "The request's id: the client's `X-Request-Id` when it is 1 to 128 printable ASCII characters without spaces, else a generated UUIDv7. Also in problem bodies (`request_id`) and in the server's log lines of the request.", "required": true, "schema": {"type": "string"}}"#,
    )
    .expect("the header is YAML");
    let ops = doc["paths"]
        .as_mapping_mut()
        .into_iter()
        .flat_map(|m| m.values_mut())
        .flat_map(|ops| {
            ops.as_mapping_mut()
                .into_iter()
                .flat_map(|m| m.values_mut())
        });
    for op in ops {
        for response in op["responses"]
            .as_mapping_mut()
            .into_iter()
            .flat_map(|m| m.values_mut())
        {
            let Some(map) = response.as_mapping_mut() else {
                continue;
            };
            let headers = map
                .entry("headers".into())
                .or_insert_with(|| Y::Mapping(Default::default()));
            if let Some(headers) = headers.as_mapping_mut() {
                headers.insert("X-Request-Id".into(), header.clone());
            }
        }
    }
}

/// Names of the component schemas `value` refers to, at any depth.
fn refs_in(value: &serde_yaml::Value, out: &mut Vec<String>) {
    use serde_yaml::Value as Y;
    match value {
        Y::Mapping(map) => {
            for (k, v) in map {
                match (k.as_str(), v.as_str()) {
                    (Some("$ref"), Some(r)) => {
                        if let Some(name) = r.strip_prefix("#/components/schemas/") {
                            out.push(name.to_owned());
                        }
                    }
                    _ => refs_in(v, out),
                }
            }
        }
        Y::Sequence(items) => items.iter().for_each(|v| refs_in(v, out)),
        _ => {}
    }
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
