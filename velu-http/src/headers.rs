//! Middleware around every route: body size cap, security headers, rate-limit headers.
//! Applied outermost, so errors (401, 404, 413, 429) carry the headers too.

use poem::http::{HeaderMap, HeaderName, HeaderValue, header};
use poem::{Endpoint, IntoResponse, Request, Response};
use serde_json::Map;

use crate::auth::RateSlot;
use crate::problem::{from_poem_error, problem_response};

/// Largest request body, whatever the plan (plans cap job payloads lower, in velu-core).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// CSP of API responses: nothing may load, nothing may frame.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// Runs `ep` with every cross-cutting concern: it never returns `Err`.
pub async fn around<E: Endpoint>(
    ep: std::sync::Arc<E>,
    mut req: Request,
    docs_csp: &str,
) -> poem::Result<Response> {
    let is_docs = req.uri().path().starts_with("/docs");
    let slot = RateSlot::default();
    req.extensions_mut().insert(slot.clone());

    let mut resp = match limit_body(&mut req).await {
        Err(resp) => resp,
        Ok(()) => match ep.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => from_poem_error(e),
        },
    };
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
