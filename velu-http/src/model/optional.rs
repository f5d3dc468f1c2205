//! [`OptionalJson`]: a JSON request body a client may leave out entirely.

use poem::{Request, RequestBody};
use poem_openapi::error::ContentTypeError;
use poem_openapi::payload::{Json, Payload};
use poem_openapi::registry::{MetaMediaType, MetaRequest, Registry};
use poem_openapi::types::{ParseFromJSON, ToJSON};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};

/// A JSON body that is optional on the wire: no body at all (an empty one, with or without
/// `Content-Type`, as `curl -X POST` sends) is `None`. A body that is there must be
/// `application/json` and parse as `T`, exactly as for [`Json`]: the JSON `null` is not a
/// `T`, so it is refused like any other wrong type, as the spec (a non-nullable schema)
/// says. (poem's `Json<Option<T>>` marks the body optional in the spec but still refuses a
/// request without `Content-Type`, and takes `null` for no body.)
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
        let data = body.take()?.into_bytes().await?;
        if data.is_empty() {
            return match request.content_type() {
                Some(ct) if !<Json<T> as Payload>::check_content_type(ct) => {
                    Err(ContentTypeError::NotSupported {
                        content_type: ct.to_owned(),
                    }
                    .into())
                }
                _ => Ok(OptionalJson(None)),
            };
        }
        // Put the bytes back for poem's own extractor: the content type, the JSON and `T`
        // are checked (and refused) exactly as for a required `Json<T>` body.
        *body = RequestBody::new(data.into());
        let parsed = <Json<T> as ApiExtractor<'a>>::from_request(request, body, param_opts).await?;
        Ok(OptionalJson(Some(parsed.0)))
    }
}
