//! `POST /v1/billing/events`: plan changes signed by the billing system (no API key; the
//! `Velu-Signature` header is the credential). docs/billing.md is the contract.

use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::Header;
use poem_openapi::payload::Json;
use velu_core::Velu;
use velu_core::billing::{self, SignedEvent};

use super::Tag;
use crate::model::billing::{EventReceipt, SignedBody};
use crate::problem::BodyResult;

/// Billing events.
pub struct BillingApi;

#[OpenApi(tag = "Tag::Orgs")]
impl BillingApi {
    /// Apply a plan change signed by the billing system. No API key: the request is
    /// signed with the billing secret, `Velu-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
    /// t + "." + body>` (docs/billing.md). Refused: no secret configured (`config`, 500),
    /// body over 16 KiB (`payload_too_large`), signature missing, malformed, wrong, or `t`
    /// more than 300 s from the server's clock (`bad_signature`, 401), unknown type or
    /// field (`invalid`), unknown org (`not_found`), an event id seen with another body
    /// (`conflict`). A replay of an event already received answers its first receipt
    /// with `replay: true` and changes nothing.
    #[oai(
        path = "/v1/billing/events",
        method = "post",
        operation_id = "billing.events"
    )]
    async fn events(
        &self,
        velu: Data<&Velu>,
        /// `t=<unix seconds>,v1=<64 hex digits>`; a second `v1` during a secret rotation.
        #[oai(name = "Velu-Signature", validator(max_length = 512))]
        signature: Header<Option<String>>,
        body: SignedBody,
    ) -> BodyResult<Json<EventReceipt>> {
        let signed = SignedEvent {
            signature: signature.0,
            body: body.0,
        };
        Ok(Json(billing::apply_event(&velu, &signed).await?.into()))
    }
}
