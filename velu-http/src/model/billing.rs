//! Billing events: the body the billing system signs (described for the spec; the route
//! reads the raw bytes, since the signature covers them exactly) and the receipt.

use poem::{FromRequest, Request, RequestBody};
use poem_openapi::payload::{Json, ParsePayload, Payload};
use poem_openapi::registry::{MetaMediaType, MetaRequest, MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiExtractor, ApiExtractorType, Enum, ExtractParamOptions, Object};
use velu_core::billing;

use super::common::{Text, ts};
use super::mirror::mirror;
use super::plans::PlanName;

/// The type of a billing event (a closed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename = "BillingEventType")]
pub enum EventTypeName {
    /// The org's plan is now `plan`.
    #[oai(rename = "plan.changed")]
    PlanChanged,
}

impl From<billing::EventType> for EventTypeName {
    fn from(t: billing::EventType) -> Self {
        match t {
            billing::EventType::PlanChanged => EventTypeName::PlanChanged,
        }
    }
}

/// What a billing event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase", rename = "BillingEventOutcome")]
pub enum EventOutcomeName {
    /// The org's plan was set to the event's plan.
    Applied,
    /// Nothing changed: a later event of the same org was applied already.
    Superseded,
}

impl From<billing::EventOutcome> for EventOutcomeName {
    fn from(o: billing::EventOutcome) -> Self {
        match o {
            billing::EventOutcome::Applied => EventOutcomeName::Applied,
            billing::EventOutcome::Superseded => EventOutcomeName::Superseded,
        }
    }
}

mirror! {
    /// The receipt of a billing event: the same for the first delivery and every replay
    /// (`replay` aside).
    pub struct EventReceipt from billing::EventReceipt {
        /// The billing system's event id.
        pub event_id: String,
        /// The event's type.
        #[oai(rename = "type")]
        pub kind: EventTypeName,
        /// The org's id.
        pub org_id: String,
        /// The plan the event named.
        pub plan: PlanName,
        /// The org's plan when the event first arrived.
        pub previous_plan: PlanName,
        /// What the event did.
        pub outcome: EventOutcomeName,
        /// The event's `created`, RFC 3339 UTC.
        pub event_created_at: String = |t| ts(t),
        /// When Velu first received it, RFC 3339 UTC.
        pub received_at: String = |t| ts(t),
        /// `true` when this delivery repeats an event already received (nothing was done
        /// again).
        pub replay: bool,
    }
}

/// Body of `POST /v1/billing/events`, as the billing system signs it (at most 16 KiB).
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct BillingEventBody {
    /// The event's unique id: 1 to 128 ASCII letters, digits, `_`, `-`, `.` or `:`.
    #[oai(validator(pattern = r"^[A-Za-z0-9_.:-]{1,128}$"))]
    pub id: Text,
    /// The event's type.
    #[oai(rename = "type")]
    pub kind: EventTypeName,
    /// The org, by id or slug.
    #[oai(validator(min_length = 1, max_length = 64))]
    pub org: Text,
    /// The org's plan from now on.
    pub plan: PlanName,
    /// When the billing system made the event, unix seconds (not after the signature's
    /// `t` plus 300 s); orders the events of an org.
    #[oai(validator(minimum(value = "1")))]
    pub created: i64,
}

/// The raw bytes of a billing event's body (JSON, described by [`BillingEventBody`]).
pub struct SignedBody(pub Vec<u8>);

impl Payload for SignedBody {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn check_content_type(content_type: &str) -> bool {
        <Json<BillingEventBody> as Payload>::check_content_type(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        BillingEventBody::schema_ref()
    }

    fn register(registry: &mut Registry) {
        BillingEventBody::register(registry);
    }
}

impl ParsePayload for SignedBody {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        Ok(SignedBody(
            <Vec<u8> as FromRequest>::from_request(request, body).await?,
        ))
    }
}

impl<'a> ApiExtractor<'a> for SignedBody {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Self as Payload>::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: <Self as Payload>::CONTENT_TYPE,
                schema: <Self as Payload>::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        match request.content_type() {
            Some(ct) if Self::check_content_type(ct) => {
                <Self as ParsePayload>::from_request(request, body).await
            }
            Some(ct) => Err(poem_openapi::error::ContentTypeError::NotSupported {
                content_type: ct.to_owned(),
            }
            .into()),
            None => Err(poem_openapi::error::ContentTypeError::ExpectContentType.into()),
        }
    }
}
