//! The REST API: one `#[OpenApi]` impl per noun, each operation five to fifteen lines:
//! extract, call velu-core, convert, respond. Operation ids name the core operation
//! (`orgs.create`), which `docs/parity.md` maps to its CLI command.

mod audit;
mod billing;
mod compat;
mod events;
mod health;
mod jobs;
mod keys;
mod metrics;
mod orgs;
mod plans;
mod queue;
mod retention;
mod schedules;
mod secrets;
mod usage;
mod whoami;
mod worker;
mod workers;

use std::collections::BTreeSet;

use poem_openapi::payload::Json;
use poem_openapi::types::{ParseFromJSON, ToJSON};
use poem_openapi::{ApiResponse, OpenApiService, ServerObject, Tags};

/// Groups of operations in the docs, declared in the order the docs show them (what users
/// do first comes first, the earlier system's routes last; [`Tag::ORDER`]).
#[derive(Tags)]
pub enum Tag {
    /// Jobs: submit one or a batch, list, show, count, cancel and retry (`jobs:submit`,
    /// `jobs:read`).
    Jobs,
    /// An org's API keys: create, list, show, rotate, revoke (`admin:api_keys:manage`); and
    /// `whoami`, what the calling key is.
    Keys,
    /// Organizations: create, bootstrap with their keys, list, show, change plan (platform
    /// keys with `admin:orgs:manage`).
    Orgs,
    /// Plan tiers and the task catalog (public).
    Plans,
    /// Schedules, per-org periodic jobs: create, list, show, pause, resume, delete
    /// (`jobs:submit`, `jobs:read`).
    Schedules,
    /// Org secrets for jobs: set, list, delete; values are write-only
    /// (`admin:secrets:manage`).
    Secrets,
    /// Pausing and resuming an org's queue or a task kind.
    Queue,
    /// The audit log (`audit:read`).
    Audit,
    /// Usage per org and UTC day, the figures billing invoices from (`usage:read`).
    Usage,
    /// The fleet of workers.
    Workers,
    /// The worker protocol: remote workers claim, renew and finish jobs (`jobs:work`).
    WorkerProtocol,
    /// Prometheus metrics (platform keys).
    Metrics,
    /// Liveness and readiness.
    Health,
    /// Routes of the earlier system, kept for its clients.
    Compat,
}

impl Tag {
    /// The order of the tags in the spec, which Swagger UI follows.
    pub const ORDER: [Tag; 14] = [
        Tag::Jobs,
        Tag::Keys,
        Tag::Orgs,
        Tag::Plans,
        Tag::Schedules,
        Tag::Secrets,
        Tag::Queue,
        Tag::Audit,
        Tag::Usage,
        Tag::Workers,
        Tag::WorkerProtocol,
        Tag::Metrics,
        Tag::Health,
        Tag::Compat,
    ];
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
/// carries `X-Request-Id` (added by `headers.rs`, outside the operations); the tags follow
/// [`Tag::ORDER`] (poem-openapi sorts them by name); summaries are plain text
/// ([`plain_summaries`]).
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
    order_tags(&mut doc);
    plain_summaries(&mut doc);
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

/// Sorts the document's tags by [`Tag::ORDER`] (a tag missing there would go last).
fn order_tags(doc: &mut serde_yaml::Value) {
    let rank = |tag: &serde_yaml::Value| {
        Tag::ORDER
            .iter()
            .position(|t| Some(t.name()) == tag["name"].as_str())
            .unwrap_or(usize::MAX)
    };
    if let Some(tags) = doc.get_mut("tags").and_then(|t| t.as_sequence_mut()) {
        tags.sort_by_key(rank);
    }
}

/// Swagger UI shows an operation's summary as plain text (on its collapsed line) and its
/// description as Markdown. poem-openapi makes the first paragraph of a doc comment the
/// summary; this keeps its first sentence there, on one line and without backticks, and
/// moves the rest (all of it, if the first sentence had code spans) to the front of the
/// description, where code spans render.
fn plain_summaries(doc: &mut serde_yaml::Value) {
    use serde_yaml::Value as Y;
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
        let Some(map) = op.as_mapping_mut() else {
            continue;
        };
        let Some(summary) = map.get("summary").and_then(Y::as_str) else {
            continue;
        };
        let summary = summary.split_whitespace().collect::<Vec<_>>().join(" ");
        let (first, rest) = first_sentence(&summary);
        // A first sentence with code spans moves whole too, so they render below.
        let moved = if first.contains('`') { &summary } else { rest };
        let description = [
            moved,
            map.get("description").and_then(Y::as_str).unwrap_or(""),
        ]
        .into_iter()
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
        let first = first.replace('`', "");
        let mut out = serde_yaml::Mapping::new();
        for (k, v) in std::mem::take(map) {
            match k.as_str() {
                Some("summary") => {
                    out.insert(k, Y::from(first.as_str()));
                    if !description.is_empty() {
                        out.insert("description".into(), Y::from(description.as_str()));
                    }
                }
                Some("description") => {}
                _ => {
                    out.insert(k, v);
                }
            }
        }
        *map = out;
    }
}

/// `text` split after its first sentence: at the first `. ` outside a code span that does
/// not end `e.g.` or `i.e.`.
fn first_sentence(text: &str) -> (&str, &str) {
    let mut in_code = false;
    for (i, c) in text.char_indices() {
        match c {
            '`' => in_code = !in_code,
            '.' if !in_code && text[i + 1..].starts_with(' ') => {
                let head = &text[..=i];
                if !(head.ends_with("e.g.") || head.ends_with("i.e.")) {
                    return (head, text[i + 1..].trim_start());
                }
            }
            _ => {}
        }
    }
    (text, "")
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
            // Nested: the tuple impls stop at 16.
            (orgs::OrgsApi, billing::BillingApi),
            keys::KeysApi,
            whoami::WhoamiApi,
            (audit::AuditApi, usage::UsageApi),
            (jobs::JobsApi, events::EventsApi, retention::RetentionApi),
            schedules::SchedulesApi,
            secrets::SecretsApi,
            queue::QueueApi,
            workers::WorkersApi,
            worker::WorkerApi,
            secrets::WorkerSecretsApi,
            compat::CompatApi,
            metrics::MetricsApi,
        ),
        "Velu",
        env!("CARGO_PKG_VERSION"),
    )
    // Relative: "this server", wherever it is served (and the spec stays the same).
    .server(ServerObject::new("/").description("The server that serves this document."))
    .description(
        "Control plane of a multi-tenant job platform. Authenticate with an API key in \
         `X-API-Key` or `Authorization: Bearer`. Errors are `application/problem+json` with a \
         stable `code` (see docs/errors.md). Each secured operation names the scope it needs.",
    )
}

#[cfg(test)]
mod tests {
    use super::first_sentence;

    #[test]
    fn the_first_sentence_ends_outside_code_spans_and_abbreviations() {
        assert_eq!(first_sentence("One. Two. Three."), ("One.", "Two. Three."));
        assert_eq!(first_sentence("No period"), ("No period", ""));
        assert_eq!(first_sentence("Ends here."), ("Ends here.", ""));
        assert_eq!(
            first_sentence("Use `a. b` here. Then."),
            ("Use `a. b` here.", "Then.")
        );
        assert_eq!(
            first_sentence("A kind, e.g. echo. More."),
            ("A kind, e.g. echo.", "More.")
        );
        assert_eq!(
            first_sentence("v1.2 is out. Yes."),
            ("v1.2 is out.", "Yes.")
        );
    }
}
