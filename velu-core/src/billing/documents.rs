//! The document `POST /v1/billing/events` answers with, and the closed set of outcomes.

use serde::Serialize;

use super::event::EventType;
use crate::entity::billing_events;
use crate::plans::Plan;
use crate::time::Timestamp;
use crate::{CoreError, CoreResult};

/// What an event did: a closed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventOutcome {
    /// The org's plan was set to the event's plan (through `orgs::set_plan`'s path, with
    /// its audit event).
    Applied,
    /// Nothing changed: an event of the same org created later was applied already (events
    /// that arrive out of order never undo a newer change).
    Superseded,
}

impl EventOutcome {
    /// `applied` or `superseded`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventOutcome::Applied => "applied",
            EventOutcome::Superseded => "superseded",
        }
    }

    fn from_stored(text: &str) -> CoreResult<EventOutcome> {
        [EventOutcome::Applied, EventOutcome::Superseded]
            .into_iter()
            .find(|o| o.as_str() == text)
            .ok_or_else(|| CoreError::internal(format!("stored billing outcome `{text}`")))
    }
}

/// The receipt of a billing event: the same document for the first delivery and for
/// every replay (`replay` aside).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventReceipt {
    /// The billing system's event id.
    pub event_id: String,
    /// The event's type.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The org's id.
    pub org_id: String,
    /// The plan the event named.
    pub plan: Plan,
    /// The org's plan when the event first arrived.
    pub previous_plan: Plan,
    /// What the event did.
    pub outcome: EventOutcome,
    /// The event's `created`.
    pub event_created_at: Timestamp,
    /// When Velu first received it.
    pub received_at: Timestamp,
    /// `true` when this delivery is a replay of an event already received (nothing was
    /// done again).
    pub replay: bool,
}

impl EventReceipt {
    /// The receipt of a stored row.
    pub(crate) fn from_row(row: billing_events::Model, replay: bool) -> CoreResult<EventReceipt> {
        Ok(EventReceipt {
            kind: EventType::from_stored(&row.event_type)?,
            plan: Plan::from_stored(&row.plan)?,
            previous_plan: Plan::from_stored(&row.from_plan)?,
            outcome: EventOutcome::from_stored(&row.outcome)?,
            event_created_at: row.event_created_at.into(),
            received_at: row.received_at.into(),
            event_id: row.event_id,
            org_id: row.org_id,
            replay,
        })
    }
}
