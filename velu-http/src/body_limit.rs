//! The cap on request bodies: [`MAX_BODY_BYTES`], refused as `413 payload_too_large`.
//!
//! A body that declares its length is refused at once when it declares more. A chunked
//! body has no length: it is counted as the operation reads it, never read ahead. Reading
//! it ahead (as this did before) made the server take up to 2 MiB from anyone, keyed or
//! not, before the key was checked; now a request whose key is refused is answered
//! without its body being read at all.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::StreamExt;
use poem::http::header;
use poem::{Body, Request, Response};
use serde_json::Map;

use crate::problem::problem_response;

/// Largest request body, whatever the plan (plans cap job payloads lower, in velu-core).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Set when a counted body passed [`MAX_BODY_BYTES`] while the operation read it: its
/// answer, whatever the operation made of the failed read, becomes the `413`.
#[derive(Debug, Clone, Default)]
pub struct Tripped(Arc<AtomicBool>);

impl Tripped {
    /// Whether the body passed the cap.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// The `413` problem of a body over the cap.
pub fn too_large() -> Response {
    problem_response(
        "payload_too_large",
        &format!("request body is larger than {MAX_BODY_BYTES} bytes"),
        Map::new(),
    )
}

/// What [`limit_body`] made of a request's body.
#[derive(Debug)]
pub enum BodyCap {
    /// Its declared length is over the cap: answer [`too_large`].
    TooLarge,
    /// It declares a length within the cap, or it is empty: untouched.
    Declared,
    /// It declares none: counted as it is read, over the cap when this is set.
    Counted(Tripped),
}

/// Applies the cap to `req`: a declared length over it is [`BodyCap::TooLarge`]; a body
/// without a declared length is replaced by one counted as it is read. Bodies that
/// declare a length within the cap, and empty ones, pass untouched (hyper holds a body
/// to its declared length).
pub fn limit_body(req: &mut Request) -> BodyCap {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    match declared {
        Some(len) if len > MAX_BODY_BYTES => BodyCap::TooLarge,
        Some(_) => BodyCap::Declared,
        None => {
            let body = req.take_body();
            if body.is_empty() {
                req.set_body(body);
                return BodyCap::Declared;
            }
            let tripped = Tripped::default();
            req.set_body(counted(body, tripped.clone()));
            BodyCap::Counted(tripped)
        }
    }
}

/// `body`, failing the read (and setting `tripped`) once it has passed the cap.
fn counted(body: Body, tripped: Tripped) -> Body {
    let mut seen = 0usize;
    Body::from_bytes_stream(body.into_bytes_stream().map(move |chunk| {
        let chunk = chunk?;
        seen = seen.saturating_add(chunk.len());
        if seen > MAX_BODY_BYTES {
            tripped.0.store(true, Ordering::Release);
            return Err(io::Error::other("request body too large"));
        }
        Ok(chunk)
    }))
}
