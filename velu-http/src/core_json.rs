//! [`CoreJson`]: a JSON answer written straight from velu-core's document with serde,
//! described in the spec by that document's wire mirror.
//!
//! poem-openapi's `Json<T>` turns a wire document into a tree of `serde_json::Value`s
//! (`ToJSON`: a map and a string per field) and only then into bytes. For a page of 20
//! jobs that tree cost 15% of `serve`'s CPU and its bytes another 6%
//! (docs/benchmarks-log.md, "JSON answers without a value tree"). velu-core's output
//! structs are already `Serialize` (the CLI prints them as YAML), and the parity rule
//! makes their serde form the wire form; so the hot answers are serialized from the
//! core document once, in one pass, while the spec still takes their schema from the
//! mirror (`M: Mirrors<C>`, which `mirror!` writes for each pair). Both ways writing
//! the same JSON is checked for each pair served here (`tests/it/core_json.rs`), beside
//! the parity test's comparison with the CLI.

use std::marker::PhantomData;

use poem::http::StatusCode;
use poem::http::header::CONTENT_TYPE;
use poem::{IntoResponse, Response};
use poem_openapi::ApiResponse;
use poem_openapi::payload::Payload;
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use serde::Serialize;
use velu_core::CoreError;

use crate::model::Mirrors;
use crate::problem::ApiError;

/// The JSON of a velu-core document `C`, served under the schema of its mirror `M`.
pub struct CoreJson<M> {
    body: Vec<u8>,
    mirror: PhantomData<fn() -> M>,
}

impl<M> CoreJson<M> {
    /// Serializes `doc`, a velu-core document that `M` mirrors. Fails `internal` only if
    /// serde refuses it (a map with keys that are not strings: none of the documents).
    pub fn new<C: Serialize>(doc: &C) -> Result<Self, ApiError>
    where
        M: Mirrors<C>,
    {
        let body = serde_json::to_vec(doc).map_err(CoreError::internal)?;
        Ok(CoreJson {
            body,
            mirror: PhantomData,
        })
    }
}

impl<M> std::fmt::Debug for CoreJson<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreJson")
            .field("bytes", &self.body.len())
            .finish()
    }
}

impl<M: Type> Payload for CoreJson<M> {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn schema_ref() -> MetaSchemaRef {
        M::schema_ref()
    }

    fn register(registry: &mut Registry) {
        M::register(registry);
    }
}

impl<M: Send> IntoResponse for CoreJson<M> {
    fn into_response(self) -> Response {
        Response::builder()
            .status(StatusCode::OK)
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .body(self.body)
    }
}

impl<M: Type + Send> ApiResponse for CoreJson<M> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: Self::CONTENT_TYPE,
                    schema: Self::schema_ref(),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        M::register(registry);
    }
}
