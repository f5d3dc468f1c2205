//! Time as Velu stores and prints it.
//!
//! Stored values are truncated to microseconds (PostgreSQL's precision) so a value read
//! back equals the value written, on both backends. Printed values are RFC 3339 in UTC
//! with a `Z` suffix and microseconds, the same in YAML and JSON.

use chrono::{DateTime, Datelike, SecondsFormat, SubsecRound, Utc};
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

/// Earliest year accepted in any caller-supplied time.
pub const MIN_YEAR: i32 = 1970;
/// Latest year accepted in any caller-supplied time: RFC 3339 has four-digit years, and
/// stored times must compare correctly as text (SQLite).
pub const MAX_YEAR: i32 = 9999;
/// How far in the future a key's expiry may lie.
pub const KEY_EXPIRY_HORIZON: chrono::Duration = chrono::Duration::days(3653);
/// How far in the future a job may be scheduled.
pub const RUN_AT_HORIZON: chrono::Duration = chrono::Duration::days(366);

/// Parses an RFC 3339 time given by a caller (any offset), for `field` in errors. Years
/// outside 1970..=9999 are refused.
pub fn parse(field: &str, text: &str) -> crate::CoreResult<DateTime<Utc>> {
    let t = DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc).trunc_subsecs(6))
        .map_err(|_| {
            crate::CoreError::invalid(
                field,
                "expected an RFC 3339 time, e.g. 2026-01-02T03:04:05Z",
            )
        })?;
    if !(MIN_YEAR..=MAX_YEAR).contains(&t.year()) {
        return Err(crate::CoreError::invalid(
            field,
            format!("the year must be between {MIN_YEAR} and {MAX_YEAR}"),
        ));
    }
    Ok(t)
}

/// Parses a caller's time that may lie at most `horizon` after `at`.
pub fn parse_within(
    field: &str,
    text: &str,
    at: DateTime<Utc>,
    horizon: chrono::Duration,
) -> crate::CoreResult<DateTime<Utc>> {
    let t = parse(field, text)?;
    if t > at + horizon {
        return Err(crate::CoreError::invalid(
            field,
            format!("must be at most {} days from now", horizon.num_days()),
        ));
    }
    Ok(t)
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
    fn years_are_bounded_and_horizons_hold() {
        for text in [
            "+10000-01-01T00:00:00Z",
            "0001-01-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
        ] {
            let err = parse("t", text).unwrap_err();
            assert_eq!(err.code(), "invalid", "{text}");
        }
        assert!(parse("t", "9999-12-31T23:59:59Z").is_ok());
        let at = parse("t", "2026-12-01T00:00:00Z").unwrap();
        let ok = parse_within("run_at", "2027-06-01T00:00:00Z", at, RUN_AT_HORIZON);
        assert!(ok.is_ok());
        let far = parse_within("run_at", "2028-01-01T00:00:00Z", at, RUN_AT_HORIZON);
        assert!(far.unwrap_err().to_string().contains("366 days"));
        let ten = parse_within("expires_at", "2036-11-30T00:00:00Z", at, KEY_EXPIRY_HORIZON);
        assert!(ten.is_ok());
        let eleven = parse_within("expires_at", "2037-12-02T00:00:00Z", at, KEY_EXPIRY_HORIZON);
        assert_eq!(eleven.unwrap_err().code(), "invalid");
    }

    #[test]
    fn rejects_non_rfc3339() {
        let err = parse("run_at", "tomorrow").unwrap_err();
        assert_eq!(err.code(), "invalid");
        assert!(err.to_string().contains("run_at"));
    }
}
