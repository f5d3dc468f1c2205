//! The days a usage report covers: `from` and `to` as `YYYY-MM-DD` (UTC days, both
//! included), `from <= to`, at most [`MAX_DAYS`] days.

use chrono::NaiveDate;

use crate::{CoreError, CoreResult};

/// Most days one report covers (a leap year).
pub const MAX_DAYS: i64 = 366;

/// A checked range of UTC days, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRange {
    /// First day.
    pub from: NaiveDate,
    /// Last day.
    pub to: NaiveDate,
}

/// Parses one day: exactly `YYYY-MM-DD`, a real calendar day.
fn parse_day(field: &str, text: &str) -> CoreResult<NaiveDate> {
    let bad = || CoreError::invalid(field, "must be a day as YYYY-MM-DD (UTC), e.g. 2026-12-01");
    let b = text.as_bytes();
    let shaped = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
    if !shaped {
        return Err(bad());
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| bad())
}

impl DayRange {
    /// Checks `from` and `to` as a caller gave them.
    pub fn parse(from: &str, to: &str) -> CoreResult<DayRange> {
        let from = parse_day("from", from)?;
        let to = parse_day("to", to)?;
        if to < from {
            return Err(CoreError::invalid("to", "must not be before `from`"));
        }
        let days = (to - from).num_days() + 1;
        if days > MAX_DAYS {
            return Err(CoreError::invalid(
                "to",
                format!("a report covers at most {MAX_DAYS} days; this range has {days}"),
            ));
        }
        Ok(DayRange { from, to })
    }

    /// The first day as stored.
    pub fn from_text(&self) -> String {
        self.from.format("%Y-%m-%d").to_string()
    }

    /// The last day as stored.
    pub fn to_text(&self) -> String {
        self.to.format("%Y-%m-%d").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_strict_and_ranges_bounded() {
        let r = DayRange::parse("2024-01-01", "2024-12-31").unwrap();
        assert_eq!(
            (r.from_text(), r.to_text()),
            ("2024-01-01".into(), "2024-12-31".into())
        );
        assert!(DayRange::parse("2026-12-01", "2026-12-01").is_ok());
        for (from, to, field) in [
            ("2026-12-02", "2026-12-01", "to"),
            ("2024-01-01", "2025-01-01", "to"),
            ("2026-2-1", "2026-12-01", "from"),
            ("2026-02-30", "2026-12-01", "from"),
            ("2026-12-01", "2026-12-01\0", "to"),
            ("２０２６-12-01", "2026-12-01", "from"),
            ("+2026-12-1", "2026-12-01", "from"),
            ("2026-12-01T00:00:00Z", "2026-12-01", "from"),
            ("", "2026-12-01", "from"),
        ] {
            match DayRange::parse(from, to) {
                Err(CoreError::Invalid { field: f, .. }) => assert_eq!(f, field, "{from:?} {to:?}"),
                other => panic!("{from:?} {to:?}: {other:?}"),
            }
        }
    }
}
