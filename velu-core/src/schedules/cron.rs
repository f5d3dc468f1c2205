//! Cron expressions and time zones, read by `croner` and `chrono-tz` (never by hand).
//!
//! Velu takes the five standard fields (minute, hour, day of month, month, day of week,
//! with croner's `L`, `W`, `#` and the `@hourly`-style nicknames), read in an IANA time
//! zone. Without a seconds field nothing fires more often than once a minute; a sixth
//! (seconds) or seventh (year) field is refused rather than guessed at.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::{CoreError, CoreResult};

/// Longest cron expression accepted.
pub const MAX_CRON_LEN: usize = 200;
/// Longest time zone name accepted (the longest IANA name is 32 bytes).
pub const MAX_TIMEZONE_LEN: usize = 64;
/// The time zone of a schedule that names none.
pub const DEFAULT_TIMEZONE: &str = "UTC";

/// A parsed cron expression with the time zone it is read in.
#[derive(Debug, Clone)]
pub(crate) struct CronSpec {
    cron: Cron,
    tz: Tz,
}

impl CronSpec {
    /// Parses `cron` and `timezone`; each refusal is `invalid` on field `cron` or
    /// `timezone`, with the reason.
    pub(crate) fn parse(cron: &str, timezone: &str) -> CoreResult<CronSpec> {
        Ok(CronSpec {
            cron: parse_cron(cron)?,
            tz: parse_timezone(timezone)?,
        })
    }

    /// The time zone's canonical IANA name.
    pub(crate) fn timezone_name(&self) -> &'static str {
        self.tz.name()
    }

    /// The first tick strictly after `t`; `None` when there is none croner can reach (its
    /// calendar ends in the year 5000).
    pub(crate) fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&t.with_timezone(&self.tz), false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The last tick at or before `t`, if any.
    pub(crate) fn latest_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_previous_occurrence(&t.with_timezone(&self.tz), true)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }
}

fn parse_cron(text: &str) -> CoreResult<Cron> {
    let invalid = |reason: String| CoreError::invalid("cron", reason);
    crate::text::plain("cron", text)?;
    let text = text.trim();
    if text.is_empty() || text.len() > MAX_CRON_LEN {
        return Err(invalid(format!(
            "1 to {MAX_CRON_LEN} characters, e.g. `*/5 * * * *`"
        )));
    }
    match text.split_whitespace().count() {
        6 => {
            return Err(invalid(
                "6 fields: a seconds field would fire more often than once a minute; give \
                 the 5 standard fields (minute hour day-of-month month day-of-week)"
                    .into(),
            ));
        }
        n if n > 5 => {
            return Err(invalid(format!(
                "{n} fields; give the 5 standard fields (minute hour day-of-month month \
                 day-of-week)"
            )));
        }
        _ => {}
    }
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(text)
        .map_err(|e| {
            invalid(format!(
                "not a 5-field cron expression ({e}); e.g. `*/5 * * * *` or `0 9 * * MON-FRI`"
            ))
        })
}

fn parse_timezone(text: &str) -> CoreResult<Tz> {
    crate::text::plain("timezone", text)?;
    if text.is_empty() || text.len() > MAX_TIMEZONE_LEN {
        return Err(CoreError::invalid(
            "timezone",
            format!("1 to {MAX_TIMEZONE_LEN} characters, an IANA name such as Europe/Paris"),
        ));
    }
    Tz::from_str(text).map_err(|_| {
        CoreError::invalid(
            "timezone",
            format!("unknown time zone `{text}`; use an IANA name such as Europe/Paris or UTC"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn five_fields_parse_and_tick() {
        let spec = CronSpec::parse("*/5 * * * *", "UTC").unwrap();
        assert_eq!(
            spec.next_after(t("2026-12-01T10:02:30Z")),
            Some(t("2026-12-01T10:05:00Z"))
        );
        assert_eq!(
            spec.next_after(t("2026-12-01T10:05:00Z")),
            Some(t("2026-12-01T10:10:00Z")),
            "strictly after"
        );
        assert_eq!(
            spec.latest_at_or_before(t("2026-12-01T10:05:00Z")),
            Some(t("2026-12-01T10:05:00Z")),
            "at or before"
        );
        let daily = CronSpec::parse("@daily", "UTC").unwrap();
        assert_eq!(
            daily.next_after(t("2026-12-01T10:00:00Z")),
            Some(t("2026-12-02T00:00:00Z"))
        );
    }

    #[test]
    fn bad_expressions_are_invalid_on_cron() {
        for bad in [
            "",
            "   ",
            "* * * *",
            "61 * * * *",
            "* 24 * * *",
            "* * 32 * *",
            "* * * 13 *",
            "* * * * 8",
            "*/0 * * * *",
            "a b c d e",
            "@reboot",
            "* * * * * *",
            "*/5 * * * * * *",
            "* * * * * * * *",
            "*\0 * * * *",
            &"1,".repeat(150),
        ] {
            let err = CronSpec::parse(bad, "UTC").unwrap_err();
            assert_eq!(err.code(), "invalid", "{bad:?}");
            assert!(
                err.to_string().starts_with("invalid cron"),
                "{bad:?}: {err}"
            );
        }
        let err = CronSpec::parse("*/10 * * * * *", "UTC").unwrap_err();
        assert!(err.to_string().contains("once a minute"), "{err}");
    }

    #[test]
    fn time_zones_are_iana_names() {
        for bad in [
            "Mars/Olympus",
            "utc ",
            "",
            "Europe/Paris\0",
            &"A".repeat(65),
        ] {
            let err = CronSpec::parse("* * * * *", bad).unwrap_err();
            assert_eq!(err.code(), "invalid", "{bad:?}");
            assert!(
                err.to_string().starts_with("invalid timezone"),
                "{bad:?}: {err}"
            );
        }
        let paris = CronSpec::parse("0 9 * * *", "Europe/Paris").unwrap();
        assert_eq!(paris.timezone_name(), "Europe/Paris");
        // 09:00 in Paris is 08:00 UTC in winter, 07:00 UTC in summer.
        assert_eq!(
            paris.next_after(t("2026-12-01T00:00:00Z")),
            Some(t("2026-12-01T08:00:00Z"))
        );
        assert_eq!(
            paris.next_after(t("2026-07-01T00:00:00Z")),
            Some(t("2026-07-01T07:00:00Z"))
        );
    }

    #[test]
    fn dst_days_tick_once_for_fixed_times() {
        // 02:30 does not exist in Paris on 2026-03-29 and happens twice on 2026-10-25.
        let spec = CronSpec::parse("30 2 * * *", "Europe/Paris").unwrap();
        let count = |from: &str, to: &str| {
            let (mut at, end, mut n) = (t(from), t(to), 0);
            while let Some(next) = spec.next_after(at) {
                if next > end {
                    break;
                }
                n += 1;
                at = next;
            }
            n
        };
        assert_eq!(count("2026-03-28T22:00:00Z", "2026-03-29T21:59:59Z"), 1);
        // In the gap: the first instant after it (03:00 CEST); in the fold: the first
        // 02:30 (CEST), as docs/schedules.md says.
        assert_eq!(
            spec.next_after(t("2026-03-28T22:00:00Z")),
            Some(t("2026-03-29T01:00:00Z"))
        );
        assert_eq!(
            spec.next_after(t("2026-10-24T22:00:00Z")),
            Some(t("2026-10-25T00:30:00Z"))
        );
        assert_eq!(count("2026-10-24T22:00:00Z", "2026-10-25T22:59:59Z"), 1);
    }

    #[test]
    fn the_far_future_ends_without_panicking() {
        let spec = CronSpec::parse("* * * * *", "UTC").unwrap();
        assert_eq!(spec.next_after(t("9999-12-31T23:59:00Z")), None);
        assert!(
            spec.latest_at_or_before(t("9999-12-31T23:59:00Z"))
                .is_none_or(|x| x.timestamp() > 0)
        );
        let never = CronSpec::parse("0 0 30 2 *", "UTC").unwrap();
        assert_eq!(never.next_after(t("2026-12-01T00:00:00Z")), None);
    }
}
