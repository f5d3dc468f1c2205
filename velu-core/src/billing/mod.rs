//! Plan changes from the billing system (docs/billing.md).
//!
//! The billing system posts signed events to `POST /v1/billing/events`; [`apply_event`]
//! verifies and applies them once each. [`signature`] is the contract (pure functions that
//! `velu-cli billing sign`/`verify` also call), [`secret`] where the shared secret comes
//! from, [`event`] the body, [`documents`] the receipt.

mod apply;
pub mod documents;
pub mod event;
pub mod secret;
pub mod signature;

pub use apply::{SignedEvent, apply_event, billing_principal};
pub use documents::{EventOutcome, EventReceipt};
pub use event::{BillingEvent, EventType, MAX_BODY_BYTES};
pub use secret::BillingSecret;
pub use signature::{
    SIGNATURE_HEADER, SignatureFault, Signed, TOLERANCE_SECS, Verified, sign, verify,
};
