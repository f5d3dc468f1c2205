//! Middleware around every route: body size cap, security headers, rate-limit headers,
//! `Allow` on 405 and `WWW-Authenticate` on 401. Applied outermost, so errors (401, 404,
//! 405, 413, 429) carry the headers too.

use poem::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response};
use serde_json::{Map, Value};

use crate::auth::RateSlot;
use crate::problem::{WWW_AUTHENTICATE, from_poem_error, problem_response};

/// Largest request body, whatever the plan (plans cap job payloads lower, in velu-core).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// CSP of API responses: nothing may load, nothing may frame.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// The methods of every route, for the `Allow` header of a 405.
#[derive(Debug, Clone, Default)]
pub struct Routes(Vec<(Vec<Option<String>>, Vec<String>)>);

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
        match self.0.iter_mut().find(|(s, _)| *s == segments) {
            Some((_, methods)) => methods.push(method),
            None => self.0.push((segments, vec![method])),
        }
    }

    /// The methods `path` answers, as the router picks its route (a fixed segment wins
    /// over a parameter); `None` for no route.
    pub fn allowed(&self, path: &str) -> Option<String> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (_, methods) = self
            .0
            .iter()
            .filter(|(segs, _)| {
                segs.len() == parts.len()
                    && segs
                        .iter()
                        .zip(&parts)
                        .all(|(s, p)| s.as_deref().is_none_or(|s| s == *p))
            })
            .max_by_key(|(segs, _)| segs.iter().map(Option::is_some).collect::<Vec<_>>())?;
        let mut all: Vec<&str> = methods.iter().map(String::as_str).collect();
        if all.contains(&"GET") {
            all.push("HEAD");
        }
        all.sort_unstable();
        all.dedup();
        Some(all.join(", "))
    }
}

/// Runs `ep` with every cross-cutting concern: it never returns `Err`.
pub async fn around<E: Endpoint>(
    ep: std::sync::Arc<E>,
    mut req: Request,
    docs_csp: &str,
    routes: &Routes,
) -> poem::Result<Response> {
    let is_docs = req.uri().path().starts_with("/docs");
    let path = req.uri().path().to_owned();
    let slot = RateSlot::default();
    req.extensions_mut().insert(slot.clone());

    let mut resp = match limit_body(&mut req).await {
        Err(resp) => resp,
        Ok(()) => match ep.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => from_poem_error(e),
        },
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
    let headers = resp.headers_mut();
    security_headers(headers, is_docs, docs_csp);
    if let Some(status) = *slot.0.lock().unwrap_or_else(|p| p.into_inner()) {
        let set = |h: &mut HeaderMap, name: &'static str, v: u64| {
            h.insert(HeaderName::from_static(name), HeaderValue::from(v));
        };
        set(headers, "ratelimit-limit", u64::from(status.limit));
        set(headers, "ratelimit-remaining", u64::from(status.remaining));
        set(headers, "ratelimit-reset", status.reset_secs);
    }
    Ok(resp)
}

/// Refuses bodies over [`MAX_BODY_BYTES`] by `Content-Length`, or while reading them
/// (chunked bodies have no length). GETs without a body pass untouched.
async fn limit_body(req: &mut Request) -> Result<(), Response> {
    let too_large = || {
        problem_response(
            "payload_too_large",
            &format!("request body is larger than {MAX_BODY_BYTES} bytes"),
            Map::new(),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    match declared {
        Some(len) if len > MAX_BODY_BYTES => Err(too_large()),
        Some(_) => Ok(()),
        None => {
            let body = req.take_body();
            match body.into_bytes_limit(MAX_BODY_BYTES).await {
                Ok(bytes) => {
                    req.set_body(bytes);
                    Ok(())
                }
                Err(_) => Err(too_large()),
            }
        }
    }
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
