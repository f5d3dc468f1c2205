//! Request ids and the access log.
//!
//! Every request gets an id: the client's `X-Request-Id` when it is sane (1 to 128
//! printable ASCII characters, no spaces), else a fresh UUIDv7. [`crate::headers`] echoes
//! it in the `X-Request-Id` header of every response and in the `request_id` member of
//! every problem body, and runs the request inside a `request` span carrying it, so every
//! log line of the request names it. When the request is answered, [`log_access`] writes
//! one line at `info`: method, route template, status, duration, and the org and key ids
//! of an authenticated caller (never the key text).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use poem::Request;
use velu_core::Principal;
use velu_core::principal::ActorType;

/// The header a request id travels in, both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Longest request id accepted from a client.
pub const MAX_REQUEST_ID: usize = 128;

/// Longest raw path logged for a request that matched no route.
pub const MAX_LOGGED_PATH: usize = 96;

/// The request's id: the client's `X-Request-Id` if [`sane_request_id`], else a new
/// UUIDv7.
pub fn request_id(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| sane_request_id(v.as_bytes()))
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// `raw` as a request id if it is 1 to [`MAX_REQUEST_ID`] printable ASCII characters
/// without spaces; `None` otherwise (the caller then generates one).
pub fn sane_request_id(raw: &[u8]) -> Option<String> {
    let sane = !raw.is_empty()
        && raw.len() <= MAX_REQUEST_ID
        && raw.iter().all(|b| (0x21..=0x7e).contains(b));
    sane.then(|| String::from_utf8_lossy(raw).into_owned())
}

/// Who a request authenticated as, in loggable form (ids only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// The key's org; `None` for platform keys.
    pub org_id: Option<String>,
    /// The key's id.
    pub key_id: Option<String>,
}

impl Caller {
    /// The ids of `principal`.
    pub fn of(principal: &Principal) -> Caller {
        Caller {
            org_id: principal.org_id.clone(),
            key_id: (principal.actor.kind == ActorType::ApiKey).then(|| principal.actor.id.clone()),
        }
    }
}

/// Where the auth step leaves the caller for the access log.
#[derive(Debug, Clone, Default)]
pub struct CallerSlot(pub Arc<Mutex<Option<Caller>>>);

impl CallerSlot {
    /// Records the caller.
    pub fn set(&self, caller: Caller) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(caller);
    }

    /// The caller recorded, if any.
    pub fn get(&self) -> Option<Caller> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// What the access log says about one request.
#[derive(Debug, Clone)]
pub struct Access<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The route template (`/v1/orgs/{org}/jobs`), or the truncated raw path of a request
    /// that matched no route.
    pub route: &'a str,
    /// The response status.
    pub status: u16,
    /// Time from the request's arrival to its response.
    pub duration: Duration,
    /// The authenticated caller, if any.
    pub caller: Option<&'a Caller>,
}

/// The route to log for `path`: its template when it matched one, else the raw path cut
/// to [`MAX_LOGGED_PATH`] bytes (a path is ASCII; the cut respects characters anyway).
pub fn route_label(template: Option<&str>, path: &str) -> String {
    if let Some(t) = template {
        return t.to_owned();
    }
    if path.len() <= MAX_LOGGED_PATH {
        return path.to_owned();
    }
    let mut end = MAX_LOGGED_PATH;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &path[..end])
}

/// Writes the access line of one request (inside its `request` span, which carries the
/// request id). Every field is a value, never a `Debug` rendering.
pub fn log_access(a: &Access<'_>) {
    let duration_ms = a.duration.as_micros() as f64 / 1000.0;
    tracing::info!(
        target: "velu_http::access",
        method = a.method,
        route = a.route,
        status = a.status,
        duration_ms,
        org_id = a.caller.and_then(|c| c.org_id.as_deref()),
        key_id = a.caller.and_then(|c| c.key_id.as_deref()),
        "request"
    );
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn sane_ids_pass_and_others_are_refused() {
        assert_eq!(
            sane_request_id(b"abc-123_X.y:z").as_deref(),
            Some("abc-123_X.y:z")
        );
        assert_eq!(
            sane_request_id(&[b'a'; MAX_REQUEST_ID]).map(|s| s.len()),
            Some(MAX_REQUEST_ID)
        );
        for bad in [
            &b""[..],
            &[b'a'; MAX_REQUEST_ID + 1][..],
            b"has space",
            b"tab\there",
            "caf\u{e9}".as_bytes(),
            b"nul\0",
            b"del\x7f",
        ] {
            assert_eq!(sane_request_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn unmatched_paths_are_cut() {
        assert_eq!(
            route_label(Some("/v1/orgs/{org}"), "/v1/orgs/acme"),
            "/v1/orgs/{org}"
        );
        assert_eq!(route_label(None, "/nothing"), "/nothing");
        let long = format!("/{}", "x".repeat(500));
        let label = route_label(None, &long);
        assert_eq!(label.len(), MAX_LOGGED_PATH + 3);
        assert!(label.ends_with("..."));
    }

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The JSON line of an access log written inside a request span.
    #[test]
    fn access_line_is_json_fields() {
        let buf = Buffer::default();
        let writer = buf.clone();
        let subscriber = crate::logs::subscriber(
            crate::logs::LogFormat::Json,
            tracing_subscriber::EnvFilter::new("info"),
            false,
            move || writer.clone(),
        );
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::error_span!("request", request_id = "rid-1");
            let _in = span.enter();
            let caller = Caller {
                org_id: Some("org-1".into()),
                key_id: Some("key-1".into()),
            };
            log_access(&Access {
                method: "GET",
                route: "/v1/orgs/{org}/jobs",
                status: 200,
                duration: Duration::from_micros(1500),
                caller: Some(&caller),
            });
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["level"], "INFO", "{text}");
        assert_eq!(line["message"], "request");
        assert_eq!(line["method"], "GET");
        assert_eq!(line["route"], "/v1/orgs/{org}/jobs");
        assert_eq!(line["status"], 200, "a number, not a string");
        assert_eq!(line["duration_ms"], 1.5);
        assert_eq!(line["org_id"], "org-1");
        assert_eq!(line["key_id"], "key-1");
        assert_eq!(line["span"]["request_id"], "rid-1");
    }
}
