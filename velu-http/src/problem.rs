//! Errors over HTTP: RFC 9457 `application/problem+json`, with Velu's stable `code`.
//!
//! [`HTTP_STATUS`] is the one table from error code to HTTP status (documented in
//! `docs/errors.md`). Every error leaves the server through here, including those poem
//! raises itself (malformed JSON, unknown routes, wrong methods, bad parameters).

use poem::http::{HeaderValue, StatusCode, header};
use poem::{Error, Response};
use poem_openapi::registry::{
    MetaHeader, MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry,
};
use poem_openapi::types::Type;
use poem_openapi::{ApiResponse, Object};
use serde_json::{Map, Value, json};
use velu_core::CoreError;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// `(code, HTTP status, title)` for every [`CoreError`] code, plus the two codes only the
/// transport produces (`method_not_allowed`, `unsupported_media_type`).
pub const HTTP_STATUS: &[(&str, u16, &str)] = &[
    ("not_found", 404, "Not found"),
    ("conflict", 409, "Conflict"),
    ("invalid", 400, "Invalid request"),
    ("unauthorized", 401, "Unauthorized"),
    ("bad_signature", 401, "Bad signature"),
    ("forbidden", 403, "Forbidden"),
    ("upgrade_required", 403, "Upgrade required"),
    ("rate_limited", 429, "Too many requests"),
    ("quota_exceeded", 429, "Quota exceeded"),
    ("payload_too_large", 413, "Payload too large"),
    ("unavailable", 503, "Service unavailable"),
    ("schema_mismatch", 503, "Database schema mismatch"),
    ("config", 500, "Server misconfigured"),
    ("internal", 500, "Internal error"),
    ("method_not_allowed", 405, "Method not allowed"),
    ("unsupported_media_type", 415, "Unsupported media type"),
];

fn lookup(code: &str) -> (u16, &'static str) {
    HTTP_STATUS
        .iter()
        .find(|(c, _, _)| *c == code)
        .map_or((500, "Internal error"), |(_, s, t)| (*s, *t))
}

/// The HTTP status of an error code.
pub fn status_for(code: &str) -> u16 {
    lookup(code).0
}

/// An RFC 9457 problem document (as documented in the OpenAPI spec).
#[derive(Debug, Clone, Object)]
pub struct Problem {
    /// A URI naming the problem type: `urn:velu:error:<code>`.
    #[oai(rename = "type")]
    pub ty: String,
    /// Short summary, the same for every occurrence of the code.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong this time.
    pub detail: String,
    /// Stable machine code (see docs/errors.md).
    pub code: String,
    /// For `invalid`: the offending field.
    pub field: Option<String>,
    /// For `forbidden`: the missing scope.
    pub scope: Option<String>,
    /// For `upgrade_required`: the plan needed.
    pub plan: Option<String>,
    /// For `rate_limited`: seconds to wait (also in `Retry-After`).
    pub retry_after: Option<u64>,
    /// For quota and size errors: the limit.
    pub limit: Option<u64>,
    /// The request's id, as in the `X-Request-Id` response header: the client's own when
    /// it sent a sane one (1 to 128 printable ASCII characters, no spaces), else a UUIDv7.
    /// Quote it when reporting a problem; the server's log lines of the request carry it.
    pub request_id: String,
}

/// Builds a problem response for `code` with `detail` and extension members.
pub fn problem_response(code: &str, detail: &str, ext: Map<String, Value>) -> Response {
    let (status, title) = lookup(code);
    let mut body = json!({
        "type": format!("urn:velu:error:{code}"),
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    });
    let retry_after = ext.get("retry_after").and_then(Value::as_u64);
    if let Value::Object(map) = &mut body {
        map.extend(ext);
    }
    let mut resp = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, PROBLEM_JSON)
        .body(body.to_string());
    if let Some(secs) = retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// A [`CoreError`] on its way out as a problem response.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ApiError(#[from] pub CoreError);

impl ApiError {
    /// The response for this error.
    pub fn response(&self) -> Response {
        let err = &self.0;
        if matches!(err, CoreError::Internal(_) | CoreError::Config(_)) {
            tracing::error!(error = ?err, "request failed");
        }
        problem_response(err.code(), &public_detail(err), err.extensions())
    }
}

/// What a client reads of an error. A `config` error's own text is for the operator (it
/// names the server's files and key ids, as the CLI prints them on the server's machine):
/// a client reads only that the server is at fault, and the log line above carries the
/// rest under the request's id.
fn public_detail(err: &CoreError) -> String {
    match err {
        CoreError::Config(_) => "the server is misconfigured; its operator can find the cause \
             in the server's log under this request's id"
            .to_owned(),
        other => other.to_string(),
    }
}

impl poem::error::ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        StatusCode::from_u16(status_for(self.0.code())).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn as_response(&self) -> Response {
        self.response()
    }
}

/// Result type of every operation.
pub type ApiResult<T> = Result<T, ApiError>;

/// The challenges of every 401 (RFC 9110 §11.6.1): both ways of presenting a key.
pub const WWW_AUTHENTICATE: [&str; 2] = [
    r#"Bearer realm="velu""#,
    r#"ApiKey realm="velu", header="X-API-Key""#,
];

fn header(name: &str, description: &str, required: bool, ty: &'static str) -> MetaHeader {
    MetaHeader {
        name: name.to_owned(),
        description: Some(description.to_owned()),
        required,
        deprecated: false,
        schema: MetaSchemaRef::Inline(Box::new(MetaSchema::new(ty))),
    }
}

fn describe(status: u16, description: &'static str) -> MetaResponse {
    let headers = match status {
        401 => vec![header(
            "WWW-Authenticate",
            "The accepted schemes: `Bearer` (`Authorization: Bearer <key>`) and `ApiKey` \
             (`X-API-Key: <key>`).",
            true,
            "string",
        )],
        429 => vec![header(
            "Retry-After",
            "Seconds to wait (`rate_limited`).",
            false,
            "integer",
        )],
        _ => vec![],
    };
    MetaResponse {
        description,
        status: Some(status),
        status_range: None,
        content: vec![MetaMediaType {
            content_type: PROBLEM_JSON,
            schema: Problem::schema_ref(),
        }],
        headers,
    }
}

/// The errors any operation may answer.
fn error_responses() -> Vec<MetaResponse> {
    vec![
        describe(400, "Invalid request (`invalid`)."),
        describe(401, "Missing or invalid API key (`unauthorized`)."),
        describe(
            403,
            "Missing scope (`forbidden`) or plan too low (`upgrade_required`).",
        ),
        describe(404, "Not found, or not yours (`not_found`)."),
        describe(409, "Conflicts with the current state (`conflict`)."),
        describe(
            413,
            "Body over 2 MiB or payload over the plan's limit (`payload_too_large`).",
        ),
        describe(
            429,
            "Rate limit or quota (`rate_limited`, `quota_exceeded`); see `Retry-After`.",
        ),
        describe(500, "Internal error (`internal`, `config`)."),
        describe(
            503,
            "Database unavailable or schema behind (`unavailable`, `schema_mismatch`).",
        ),
    ]
}

impl ApiResponse for ApiError {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: error_responses(),
        }
    }

    fn register(registry: &mut Registry) {
        Problem::register(registry);
    }
}

/// The error of an operation that takes a JSON body: an [`ApiError`], and also `415` for
/// a body that is not `application/json`.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct BodyError(#[from] pub ApiError);

impl From<CoreError> for BodyError {
    fn from(e: CoreError) -> Self {
        BodyError(ApiError(e))
    }
}

impl poem::error::ResponseError for BodyError {
    fn status(&self) -> StatusCode {
        self.0.status()
    }

    fn as_response(&self) -> Response {
        self.0.response()
    }
}

impl ApiResponse for BodyError {
    fn meta() -> MetaResponses {
        let mut responses = error_responses();
        responses.push(describe(
            415,
            "The body is not `application/json` (`unsupported_media_type`).",
        ));
        responses.sort_by_key(|r| r.status);
        MetaResponses { responses }
    }

    fn register(registry: &mut Registry) {
        Problem::register(registry);
    }
}

/// Result type of an operation with a JSON body.
pub type BodyResult<T> = Result<T, BodyError>;

/// The field a body parse error is about: the unknown or failing field poem names, else
/// `body`.
fn payload_field(reason: &str) -> String {
    let named = |marker: &str| {
        let start = reason.rfind(marker)? + marker.len();
        let end = reason[start..].find('`')?;
        Some(reason[start..start + end].to_owned())
    };
    named("unknown field `")
        .or_else(|| named("field `"))
        .unwrap_or_else(|| "body".to_owned())
}

/// Turns any error poem or poem-openapi raised into a problem response. Errors that are
/// already problems pass through untouched.
pub fn from_poem_error(err: Error) -> Response {
    if err.is::<ApiError>() || err.is::<BodyError>() {
        return err.into_response();
    }
    let status = err.status();
    let message = err.to_string();
    let field = |name: &str| {
        let mut m = Map::new();
        m.insert("field".into(), json!(name));
        m
    };
    use poem_openapi::error::{
        ContentTypeError, ParseParamError, ParsePathError, ParseRequestPayloadError,
    };
    if let Some(e) = err.downcast_ref::<ParseParamError>() {
        return problem_response("invalid", &e.to_string(), field(e.name));
    }
    if let Some(e) = err.downcast_ref::<ParsePathError>() {
        return problem_response("invalid", &e.to_string(), field(e.name));
    }
    if let Some(e) = err.downcast_ref::<ParseRequestPayloadError>() {
        return problem_response("invalid", &e.to_string(), field(&payload_field(&e.reason)));
    }
    if let Some(e) = err.downcast_ref::<ContentTypeError>() {
        return problem_response(
            "unsupported_media_type",
            &format!("{e}; send application/json"),
            field("body"),
        );
    }
    match status {
        StatusCode::NOT_FOUND => problem_response("not_found", "no such route", Map::new()),
        StatusCode::METHOD_NOT_ALLOWED => problem_response(
            "method_not_allowed",
            "this route does not accept that method",
            Map::new(),
        ),
        StatusCode::UNAUTHORIZED => problem_response(
            "unauthorized",
            &CoreError::Unauthorized.to_string(),
            Map::new(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => {
            problem_response("payload_too_large", "request body too large", Map::new())
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            problem_response("unsupported_media_type", &message, field("body"))
        }
        s if s.is_client_error() => problem_response("invalid", &message, Map::new()),
        _ => {
            tracing::error!(error = %message, status = %status, "unhandled server error");
            problem_response("internal", "internal error", Map::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_core_code_has_a_status() {
        for code in CoreError::CODES {
            assert!(
                HTTP_STATUS.iter().any(|(c, _, _)| c == code),
                "no HTTP status for {code}"
            );
        }
        assert_eq!(status_for("not_found"), 404);
        assert_eq!(status_for("upgrade_required"), 403);
        assert_eq!(status_for("quota_exceeded"), 429);
    }

    #[test]
    fn body_errors_name_their_field() {
        assert_eq!(
            payload_field(r#"failed to parse "LegacyTask": unknown field `org_id`."#),
            "org_id"
        );
        assert_eq!(
            payload_field(
                r#"failed to parse "CreateOrg": field `slug` verification failed. pattern"#
            ),
            "slug"
        );
        assert_eq!(payload_field("expected object"), "body");
    }
}
