//! Time as Velu stores and prints it.
//!
//! Stored values are truncated to microseconds (PostgreSQL's precision) so a value read
//! back equals the value written, on both backends. Printed values are RFC 3339 in UTC
//! with a `Z` suffix and microseconds, the same in YAML and JSON.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::{Serialize, Serializer};

/// The current time, truncated to microseconds.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Formats a time the way every Velu document prints it: `2026-11-25T07:51:14.123456Z`.
pub fn format(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A point in time in a wire document; serializes as [`format`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub DateTime<Utc>);

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(&self.0))
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format(&self.0))
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(t: DateTime<Utc>) -> Self {
        Timestamp(t)
    }
}

/// Parses an RFC 3339 time given by a caller (any offset), for `field` in errors.
pub fn parse(field: &str, text: &str) -> crate::CoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc).trunc_subsecs(6))
        .map_err(|_| {
            crate::CoreError::invalid(
                field,
                "expected an RFC 3339 time, e.g. 2026-01-02T03:04:05Z",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_utc_with_z_and_micros() {
        let t = parse("t", "2026-01-02T04:04:05.5+01:00").unwrap();
        assert_eq!(format(&t), "2026-01-02T03:04:05.500000Z");
        assert_eq!(
            serde_json::to_string(&Timestamp(t)).unwrap(),
            "\"2026-01-02T03:04:05.500000Z\""
        );
    }

    #[test]
    fn now_has_no_sub_microsecond_part() {
        assert_eq!(now().timestamp_subsec_nanos() % 1000, 0);
    }

    #[test]
    fn rejects_non_rfc3339() {
        let err = parse("run_at", "tomorrow").unwrap_err();
        assert_eq!(err.code(), "invalid");
        assert!(err.to_string().contains("run_at"));
    }
}
