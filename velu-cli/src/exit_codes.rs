//! The one table from error code to process exit code (documented in `docs/errors.md`).
//!
//! 0 is success and 2 is a usage error (clap's own convention); every other code comes
//! from [`velu_core::CoreError::code`].

/// `(code, exit status)` for every [`velu_core::CoreError`] code.
pub const EXIT_CODES: &[(&str, u8)] = &[
    ("internal", 1),
    ("not_found", 3),
    ("conflict", 4),
    ("invalid", 5),
    ("unauthorized", 6),
    ("forbidden", 7),
    ("upgrade_required", 8),
    ("rate_limited", 9),
    ("quota_exceeded", 10),
    ("payload_too_large", 11),
    ("schema_mismatch", 12),
    ("bad_signature", 13),
    ("unavailable", 69),
    ("config", 78),
];

/// How `job submit --wait` ended: the job's own ending, or the wait's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitEnd {
    /// The job succeeded (exit 0).
    Succeeded,
    /// The job failed (its last attempt failed and none are left).
    Failed,
    /// The job was cancelled.
    Cancelled,
    /// The job failed because its last attempt ran past the kind's timeout.
    TimedOut,
    /// `--timeout` passed before the job ended (it goes on without the wait).
    WaitTimedOut,
}

/// `(ending, exit status)` of `job submit --wait`, after the document is printed (the
/// job as it last was). Distinct from [`EXIT_CODES`]: the operation worked, the job did
/// not.
pub const WAIT_EXIT_CODES: &[(WaitEnd, &str, u8)] = &[
    (WaitEnd::Succeeded, "succeeded", 0),
    (WaitEnd::Failed, "failed", 20),
    (WaitEnd::Cancelled, "cancelled", 21),
    (WaitEnd::TimedOut, "timed_out", 22),
    (WaitEnd::WaitTimedOut, "wait_timed_out", 23),
];

impl WaitEnd {
    /// The exit status for this ending, from [`WAIT_EXIT_CODES`].
    pub fn exit_code(self) -> u8 {
        WAIT_EXIT_CODES
            .iter()
            .find(|(end, _, _)| *end == self)
            .map_or(1, |(_, _, status)| *status)
    }
}

/// Exit status of a usage error (bad flags), as clap uses it.
pub const USAGE: u8 = 2;

/// The exit status for an error code; unknown codes count as `internal`.
pub fn exit_code(code: &str) -> u8 {
    EXIT_CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or(1, |(_, status)| *status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_core_code_has_a_distinct_exit_code() {
        let codes: Vec<_> = EXIT_CODES.iter().map(|(c, _)| *c).collect();
        for code in velu_core::CoreError::CODES {
            assert!(codes.contains(code), "no exit code for {code}");
        }
        let mut statuses: Vec<_> = EXIT_CODES.iter().map(|(_, s)| *s).collect();
        statuses.sort_unstable();
        statuses.dedup();
        assert_eq!(statuses.len(), EXIT_CODES.len(), "exit codes are distinct");
        assert!(!statuses.contains(&0) && !statuses.contains(&USAGE));
        for (_, name, status) in WAIT_EXIT_CODES {
            if *name != "succeeded" {
                assert!(*status != 0 && *status != USAGE, "{name}");
                assert!(
                    !EXIT_CODES.iter().any(|(_, s)| s == status),
                    "{name} collides"
                );
            }
        }
    }
}
