//! gzip for the answers worth it: text and JSON of at least [`MIN_BYTES`], to clients whose
//! `Accept-Encoding` takes gzip, with `Vary: Accept-Encoding` on every answer that could have
//! been compressed. Problem bodies (small, on error paths) and answers that already carry a
//! `Content-Encoding` pass untouched. The static documents (`/docs`, the spec) are compressed
//! once at startup ([`Precompressed`]); the rest per answer, by flate2's encoder.
//!
//! Only gzip: every HTTP client has it, and brotli or zstd would add C builds or large
//! crates for a few percent on answers that are mostly small JSON. Keys travel in headers,
//! never in ambient credentials (cookies), so a cross-site page cannot make a victim's
//! browser send the requests a compression side channel (BREACH) needs.

use std::io::Write;
use std::sync::Arc;

use flate2::Compression;
use flate2::write::GzEncoder;
use poem::http::{HeaderMap, HeaderValue, StatusCode, header};
use poem::{Body, Endpoint, IntoResponse, Request, Response};

use crate::problem::PROBLEM_JSON;

/// Smallest body worth compressing: below about a packet, gzip's 18 bytes of framing and
/// the CPU buy nothing.
pub const MIN_BYTES: usize = 1024;

/// Bodies larger than this are compressed on tokio's blocking pool, off the request threads.
const BLOCKING_BYTES: usize = 64 * 1024;

/// Whether a request's `Accept-Encoding` accepts gzip (RFC 9110, 12.5.3): `gzip` (or its
/// alias `x-gzip`) with a q-value above 0, or, when gzip is not named, `*` with one.
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    let (mut gzip, mut any) = (None::<bool>, None::<bool>);
    let items = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','));
    for item in items {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or_default().trim();
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            // An unreadable weight (or NaN) is no consent.
            .is_none_or(|(_, v)| v.trim().parse::<f32>().is_ok_and(|q| q > 0.0));
        let slot = if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            &mut gzip
        } else if coding == "*" {
            &mut any
        } else {
            continue;
        };
        // Named twice: any refusal wins.
        *slot = Some(slot.unwrap_or(true) && q);
    }
    gzip.or(any).unwrap_or(false)
}

/// A static document and its gzip, both made once.
#[derive(Debug)]
pub struct Precompressed {
    content_type: &'static str,
    identity: Vec<u8>,
    gzip: Vec<u8>,
}

impl Precompressed {
    /// Compresses `body` (at the best level: it is done once).
    pub fn new(content_type: &'static str, body: impl Into<Vec<u8>>) -> Precompressed {
        let identity = body.into();
        let gzip = gzip(&identity, Compression::best());
        Precompressed {
            content_type,
            identity,
            gzip,
        }
    }

    /// The uncompressed bytes.
    pub fn identity(&self) -> &[u8] {
        &self.identity
    }

    /// The gzip bytes.
    pub fn gzipped(&self) -> &[u8] {
        &self.gzip
    }

    /// The answer to a request with these headers: gzip when accepted, else identity.
    pub fn respond(&'static self, request: &HeaderMap) -> Response {
        let builder = Response::builder()
            .content_type(self.content_type)
            .header(header::VARY, "accept-encoding");
        if accepts_gzip(request) {
            builder
                .header(header::CONTENT_ENCODING, "gzip")
                .body(Body::from(self.gzip.as_slice()))
        } else {
            builder.body(Body::from(self.identity.as_slice()))
        }
    }
}

/// The middleware: compresses what `ep` answers when the request accepts gzip and the
/// answer is worth it. Never fails on its own.
pub async fn around<E: Endpoint>(ep: Arc<E>, req: Request) -> poem::Result<Response> {
    let wants_gzip = accepts_gzip(req.headers());
    let resp = ep.call(req).await?.into_response();
    Ok(encode(resp, wants_gzip).await)
}

async fn encode(mut resp: Response, wants_gzip: bool) -> Response {
    if !compressible(&resp) {
        return resp;
    }
    add_vary(resp.headers_mut());
    if !wants_gzip {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = match body.into_bytes().await {
        Ok(bytes) => bytes,
        // Our bodies are in memory; a body that cannot be read has nothing to send either.
        Err(e) => return poem::Error::from(e).into_response(),
    };
    if bytes.len() < MIN_BYTES {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let packed = if bytes.len() > BLOCKING_BYTES {
        let input = bytes.clone();
        tokio::task::spawn_blocking(move || gzip(&input, Compression::default()))
            .await
            .ok()
    } else {
        Some(gzip(&bytes, Compression::default()))
    };
    let Some(packed) = packed else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    Response::from_parts(parts, Body::from(packed))
}

/// Whether an answer's kind is worth compressing (its size is checked once read): text
/// or JSON, a status with a body, not a problem, not encoded already.
fn compressible(resp: &Response) -> bool {
    let status = resp.status();
    if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || status == StatusCode::PARTIAL_CONTENT
        || resp.headers().contains_key(header::CONTENT_ENCODING)
    {
        return false;
    }
    let Some(content_type) = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    // An event stream is sent as it happens: reading it whole to pack it would hold every
    // event until the stream ends.
    if essence == PROBLEM_JSON || essence == "text/event-stream" {
        return false;
    }
    essence.starts_with("text/")
        || essence.ends_with("+json")
        || matches!(
            essence.as_str(),
            "application/json"
                | "application/x-yaml"
                | "application/yaml"
                | "application/javascript"
                | "application/openmetrics-text"
        )
}

/// Adds `Accept-Encoding` to `Vary` unless it is there already.
fn add_vary(headers: &mut HeaderMap) {
    let present = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| {
            let v = v.trim();
            v == "*" || v.eq_ignore_ascii_case("accept-encoding")
        });
    if !present {
        headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
}

/// `data` gzipped at `level`.
fn gzip(data: &[u8], level: Compression) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(data.len() / 4 + 64), level);
    // Writing to a Vec cannot fail.
    encoder.write_all(data).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepts(value: &str) -> bool {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).unwrap(),
        );
        accepts_gzip(&h)
    }

    #[test]
    fn accept_encoding_is_read_as_rfc_9110_says() {
        assert!(!accepts_gzip(&HeaderMap::new()), "no header: identity");
        for yes in [
            "gzip",
            "GZip",
            "deflate, gzip;q=1.0, *;q=0.5",
            "br;q=1, gzip;q=0.001",
            "x-gzip",
            "*",
            "identity, *;q=0.1",
            "gzip ; q=0.5",
        ] {
            assert!(accepts(yes), "{yes}");
        }
        for no in [
            "",
            "identity",
            "br, deflate",
            "gzip;q=0",
            "gzip;q=0.000",
            "gzip;q=nope",
            "gzip;q=NaN",
            "*;q=0",
            "gzip;q=0, *",
            "*, gzip;q=0",
            "gzip, gzip;q=0",
            "gzipx",
        ] {
            assert!(!accepts(no), "{no}");
        }
    }

    #[test]
    fn vary_is_added_once() {
        let mut h = HeaderMap::new();
        h.insert(
            header::VARY,
            HeaderValue::from_static("Origin, Accept-Encoding"),
        );
        add_vary(&mut h);
        assert_eq!(h.get_all(header::VARY).iter().count(), 1);
        let mut h = HeaderMap::new();
        add_vary(&mut h);
        add_vary(&mut h);
        assert_eq!(h.get_all(header::VARY).iter().count(), 1);
    }

    #[test]
    fn only_text_and_json_without_an_encoding_qualify() {
        let with = |ct: &str| Response::builder().content_type(ct).body("x");
        assert!(compressible(&with("application/json; charset=utf-8")));
        assert!(compressible(&with("text/html")));
        assert!(compressible(&with(
            "application/openmetrics-text; version=1.0.0"
        )));
        assert!(!compressible(&with(PROBLEM_JSON)));
        assert!(!compressible(&with("image/png")));
        assert!(!compressible(&with("application/octet-stream")));
        let encoded = Response::builder()
            .content_type("text/plain")
            .header(header::CONTENT_ENCODING, "gzip")
            .body("x");
        assert!(!compressible(&encoded));
        let empty = Response::builder()
            .status(StatusCode::NO_CONTENT)
            .content_type("application/json")
            .finish();
        assert!(!compressible(&empty));
    }
}
