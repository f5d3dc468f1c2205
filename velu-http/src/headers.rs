//! Middleware around every route: request id (header, problem bodies, log span), access
//! log, request metrics, body size cap, security headers, rate-limit headers, `Allow` on 405 and
//! `WWW-Authenticate` on 401. Applied outermost, so errors (401, 404, 405, 413, 429) carry
//! the headers too.

use std::time::Instant;

use poem::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use poem::{Body, Endpoint, IntoResponse, Request, Response};
use serde_json::Value;
use tracing::Instrument;
use velu_core::metrics::Metrics;

use crate::access::{self, CallerSlot};
use crate::auth::RateSlot;
use crate::body_limit::{self, BodyCap};
use crate::problem::{PROBLEM_JSON, WWW_AUTHENTICATE, from_poem_error};

pub use crate::body_limit::MAX_BODY_BYTES;

/// CSP of API responses: nothing may load, nothing may frame.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// The routes of the app: template and methods, for the `Allow` header of a 405 and the
/// route template of the access log.
#[derive(Debug, Clone, Default)]
pub struct Routes(Vec<Route>);

#[derive(Debug, Clone)]
struct Route {
    /// Fixed segments, `None` for a parameter.
    segments: Vec<Option<String>>,
    /// The path as the spec spells it (`/v1/orgs/{org}`).
    template: String,
    methods: Vec<String>,
}

impl Routes {
    /// The routes of an OpenAPI document (`paths`), plus `extra` `(path, method)` pairs.
    pub fn from_spec(spec: &str, extra: &[(&str, &str)]) -> Routes {
        let spec: Value = serde_json::from_str(spec).unwrap_or_default();
        let mut routes = Routes::default();
        if let Some(paths) = spec["paths"].as_object() {
            for (path, ops) in paths {
                for method in ops.as_object().into_iter().flat_map(|o| o.keys()) {
                    routes.add(path, method);
                }
            }
        }
        for (path, method) in extra {
            routes.add(path, method);
        }
        routes
    }

    fn add(&mut self, path: &str, method: &str) {
        let segments: Vec<Option<String>> = path
            .trim_matches('/')
            .split('/')
            .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
            .collect();
        let method = method.to_ascii_uppercase();
        match self.0.iter_mut().find(|r| r.segments == segments) {
            Some(route) => route.methods.push(method),
            None => self.0.push(Route {
                segments,
                template: path.to_owned(),
                methods: vec![method],
            }),
        }
    }

    /// The route `path` takes, as the router picks it (a fixed segment wins over a
    /// parameter).
    fn route(&self, path: &str) -> Option<&Route> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        self.0
            .iter()
            .filter(|r| {
                r.segments.len() == parts.len()
                    && r.segments
                        .iter()
                        .zip(&parts)
                        .all(|(s, p)| s.as_deref().is_none_or(|s| s == *p))
            })
            .max_by_key(|r| r.segments.iter().map(Option::is_some).collect::<Vec<_>>())
    }

    /// The template of the route `path` takes (`/v1/orgs/{org}`); `None` for no route.
    pub fn template(&self, path: &str) -> Option<&str> {
        self.route(path).map(|r| r.template.as_str())
    }

    /// The methods `path` answers; `None` for no route.
    pub fn allowed(&self, path: &str) -> Option<String> {
        let route = self.route(path)?;
        let mut all: Vec<&str> = route.methods.iter().map(String::as_str).collect();
        if all.contains(&"GET") {
            all.push("HEAD");
        }
        all.sort_unstable();
        all.dedup();
        Some(all.join(", "))
    }
}

/// Runs `ep` with every cross-cutting concern: it never returns `Err`. The whole request
/// runs inside a `request` span carrying its id, and ends with its access line and its
/// count in `metrics` (by route template: a path that matched none is `unmatched`).
pub async fn around<E: Endpoint>(
    ep: std::sync::Arc<E>,
    req: Request,
    docs_csp: &str,
    routes: &Routes,
    metrics: &Metrics,
) -> poem::Result<Response> {
    let started = Instant::now();
    let id = access::request_id(&req);
    // At `error` level so that the span, and the id with it, is on every line the filter
    // lets through, even with `VELU_LOG=warn`.
    let span = tracing::error_span!("request", request_id = id.as_str());
    async move {
        let method = req.method().as_str().to_owned();
        let path = req.uri().path().to_owned();
        let caller = CallerSlot::default();
        let resp = handle(ep, req, docs_csp, routes, &caller, &id).await;
        let template = routes.template(&path);
        let route = access::route_label(template, &path);
        let (status, duration) = (resp.status().as_u16(), started.elapsed());
        metrics.http().observe(&method, template, status, duration);
        access::log_access(&access::Access {
            method: &method,
            route: &route,
            status,
            duration,
            caller: caller.get().as_ref(),
        });
        Ok(resp)
    }
    .instrument(span)
    .await
}

async fn handle<E: Endpoint>(
    ep: std::sync::Arc<E>,
    mut req: Request,
    docs_csp: &str,
    routes: &Routes,
    caller: &CallerSlot,
    request_id: &str,
) -> Response {
    let is_docs = req.uri().path().starts_with("/docs");
    let path = req.uri().path().to_owned();
    let slot = RateSlot::default();
    req.extensions_mut().insert(slot.clone());
    req.extensions_mut().insert(caller.clone());

    let cap = body_limit::limit_body(&mut req);
    let mut resp = if matches!(cap, BodyCap::TooLarge) {
        body_limit::too_large()
    } else {
        let resp = match ep.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => from_poem_error(e),
        };
        match cap {
            // The operation's read failed at the cap, whatever it answered of it.
            BodyCap::Counted(tripped) if tripped.is_set() => body_limit::too_large(),
            _ => resp,
        }
    };
    match resp.status() {
        StatusCode::METHOD_NOT_ALLOWED => {
            if let Some(v) = routes
                .allowed(&path)
                .and_then(|a| HeaderValue::from_str(&a).ok())
            {
                resp.headers_mut().insert(header::ALLOW, v);
            }
        }
        StatusCode::UNAUTHORIZED => {
            for challenge in WWW_AUTHENTICATE {
                resp.headers_mut().append(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                );
            }
        }
        _ => {}
    }
    let mut resp = stamp_problem(resp, request_id).await;
    let headers = resp.headers_mut();
    // A sane id is visible ASCII, which a header value always accepts.
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert(HeaderName::from_static(access::REQUEST_ID_HEADER), v);
    }
    security_headers(headers, is_docs, docs_csp);
    if let Some(status) = *slot.0.lock().unwrap_or_else(|p| p.into_inner()) {
        let set = |h: &mut HeaderMap, name: &'static str, v: u64| {
            h.insert(HeaderName::from_static(name), HeaderValue::from(v));
        };
        set(headers, "ratelimit-limit", u64::from(status.limit));
        set(headers, "ratelimit-remaining", u64::from(status.remaining));
        set(headers, "ratelimit-reset", status.reset_secs);
    }
    resp
}

/// Adds `request_id` to a problem body, whoever wrote it (an operation, poem, this
/// file). Problem bodies are small JSON objects; anything else passes untouched.
async fn stamp_problem(resp: Response, request_id: &str) -> Response {
    let is_problem = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(PROBLEM_JSON));
    if !is_problem {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = body.into_bytes().await.unwrap_or_default();
    let body = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(mut map)) => {
            map.insert("request_id".into(), Value::from(request_id));
            parts.headers.remove(header::CONTENT_LENGTH);
            Body::from(Value::Object(map).to_string())
        }
        _ => Body::from(bytes),
    };
    Response::from_parts(parts, body)
}

fn security_headers(h: &mut HeaderMap, is_docs: bool, docs_csp: &str) {
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    let csp = if is_docs { docs_csp } else { API_CSP };
    if !is_docs {
        // API answers carry keys and tenant data: never cache them.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Ok(v) = HeaderValue::from_str(csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
}
