//! [`OptionalJson`]: a JSON request body a client may leave out entirely.

use poem::{Request, RequestBody};
use poem_openapi::error::ContentTypeError;
use poem_openapi::payload::{Json, Payload};
use poem_openapi::registry::{MetaMediaType, MetaRequest, Registry};
use poem_openapi::types::{ParseFromJSON, ToJSON};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};

/// A JSON body that is optional on the wire: no body at all (and so no `Content-Type`, as
/// `curl -X POST` sends) is `None`, exactly as an empty or `null` JSON body is. A body
/// that is there must be `application/json` and parse as `T`, as for [`Json`]. (poem's
/// `Json<Option<T>>` marks the body optional in the spec but still refuses a request
/// without `Content-Type`.)
#[derive(Debug)]
pub struct OptionalJson<T>(pub Option<T>);

impl<'a, T: ParseFromJSON + ToJSON> ApiExtractor<'a> for OptionalJson<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Json<T> as Payload>::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: <Json<T> as Payload>::CONTENT_TYPE,
                schema: <Json<T> as Payload>::schema_ref(),
            }],
            required: false,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        if request.content_type().is_none() {
            let data = body.take()?.into_bytes().await?;
            return if data.is_empty() {
                Ok(OptionalJson(None))
            } else {
                Err(ContentTypeError::ExpectContentType.into())
            };
        }
        let parsed =
            <Json<Option<T>> as ApiExtractor<'a>>::from_request(request, body, param_opts).await?;
        Ok(OptionalJson(parsed.0))
    }
}
