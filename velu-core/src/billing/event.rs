//! The body of a billing event: what the billing system says happened.
//!
//! `{"id": "evt_...", "type": "plan.changed", "org": "<id or slug>", "plan": "hero",
//! "created": <unix seconds>}`. Unknown fields, unknown types and out-of-range values are
//! refused (`invalid`); the body is read only after its signature held.

use serde::{Deserialize, Serialize};

use crate::plans::Plan;
use crate::tenancy::OrgRef;
use crate::{CoreError, CoreResult};

/// Largest body accepted, in bytes (an event is a few hundred).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Longest event id, in bytes.
pub const MAX_EVENT_ID_BYTES: usize = 128;

/// The types of event Velu acts on: a closed set. Any other type is refused (`invalid`),
/// so a billing system sending something new is noticed rather than silently ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EventType {
    /// The org's plan is now `plan`.
    #[serde(rename = "plan.changed")]
    PlanChanged,
}

impl EventType {
    /// Every type, in the order documented.
    pub const ALL: [EventType; 1] = [EventType::PlanChanged];

    /// The wire name, e.g. `plan.changed`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::PlanChanged => "plan.changed",
        }
    }

    /// The type named `text`; anything else is `invalid` (field `type`).
    pub fn parse(text: &str) -> CoreResult<EventType> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == text)
            .ok_or_else(|| {
                let known: Vec<_> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                CoreError::invalid(
                    "type",
                    format!("unknown event type; accepted: {}", known.join(", ")),
                )
            })
    }

    /// The type as stored; anything else is an `internal` error.
    pub(crate) fn from_stored(text: &str) -> CoreResult<EventType> {
        EventType::parse(text)
            .map_err(|_| CoreError::internal(format!("stored billing event type `{text}`")))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    org: String,
    plan: String,
    created: i64,
}

/// A checked event body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingEvent {
    /// The billing system's id for the event (unique; a replay reuses it).
    pub id: String,
    /// What happened.
    pub kind: EventType,
    /// The org, by id or slug.
    pub org: OrgRef,
    /// The plan the org is now on.
    pub plan: Plan,
    /// When the billing system made the event (unix seconds); orders events of an org.
    pub created: i64,
}

/// Is `id` a sane event id: 1 to 128 bytes of ASCII letters, digits, `_`, `-`, `.`, `:`?
fn check_id(id: &str) -> CoreResult<()> {
    let ok = !id.is_empty()
        && id.len() <= MAX_EVENT_ID_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err(CoreError::invalid(
            "id",
            "1 to 128 ASCII letters, digits, `_`, `-`, `.` or `:`",
        ))
    }
}

impl BillingEvent {
    /// Parses and checks a body whose signature held; `latest` is the newest `created`
    /// accepted (the signature's time plus the window).
    pub fn parse(body: &[u8], latest: i64) -> CoreResult<BillingEvent> {
        let wire: Wire = serde_json::from_slice(body)
            .map_err(|e| CoreError::invalid("body", format!("not a billing event: {e}")))?;
        check_id(&wire.id)?;
        let kind = EventType::parse(&wire.kind)?;
        if wire.org.is_empty() || wire.org.len() > 64 {
            return Err(CoreError::invalid("org", "an org id or slug"));
        }
        let plan = Plan::parse_field("plan", &wire.plan)?;
        if wire.created <= 0 || wire.created > latest {
            return Err(CoreError::invalid(
                "created",
                "unix seconds, not after the signature's time",
            ));
        }
        Ok(BillingEvent {
            id: wire.id,
            kind,
            org: OrgRef::new(wire.org),
            plan,
            created: wire.created,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> CoreResult<BillingEvent> {
        BillingEvent::parse(v.to_string().as_bytes(), 2_000)
    }

    fn good() -> serde_json::Value {
        json!({"id": "evt_1", "type": "plan.changed", "org": "acme", "plan": "hero", "created": 1_000})
    }

    #[test]
    fn a_plan_change_parses() {
        let e = parse(good()).unwrap();
        assert_eq!(e.kind, EventType::PlanChanged);
        assert_eq!(e.plan, Plan::Hero);
        assert_eq!(e.org, OrgRef::new("acme"));
    }

    #[test]
    fn odd_bodies_are_refused_naming_the_field() {
        let with = |k: &str, v: serde_json::Value| {
            let mut g = good();
            g[k] = v;
            g
        };
        for (body, field) in [
            (with("type", json!("plan.deleted")), "type"),
            (with("plan", json!("platinum")), "plan"),
            (with("id", json!("")), "id"),
            (with("id", json!("evt\u{0}1")), "id"),
            (with("id", json!("évt")), "id"),
            (with("id", json!("e".repeat(129))), "id"),
            (with("org", json!("")), "org"),
            (with("created", json!(0)), "created"),
            (with("created", json!(2_001)), "created"),
            (with("extra", json!(1)), "body"),
            (with("created", json!("1000")), "body"),
            (json!([1]), "body"),
        ] {
            let e = parse(body.clone()).unwrap_err();
            assert_eq!(e.code(), "invalid", "{body}");
            assert!(
                e.to_string().starts_with(&format!("invalid {field}:")),
                "{e}"
            );
        }
        assert_eq!(
            BillingEvent::parse(b"\xff", 1).unwrap_err().code(),
            "invalid"
        );
    }
}
