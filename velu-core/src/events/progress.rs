//! Progress lines on their way from a worker to the stream: [`ProgressReport`], one job's
//! new lines in a heartbeat (the remote worker protocol carries them too), and the checks
//! and scrubbing the queue applies before storing them, whoever sent them.

use serde::{Deserialize, Serialize};

use super::line::clean_line;
use super::{MAX_LINE_BYTES, MAX_LINES_PER_BEAT, MAX_LINES_PER_HEARTBEAT};
use crate::{CoreError, CoreResult};

/// New progress lines of one job, named by its lease token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgressReport {
    /// The attempt's lease token (lines of a lease no longer held are dropped).
    pub token: String,
    /// The lines, oldest first, without newlines (at most 64; each at most 1024 bytes;
    /// control characters are replaced).
    pub lines: Vec<String>,
}

/// One stored progress line: the record of the heartbeat statement's JSON parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ProgressRecord {
    /// The lease token.
    pub token: String,
    /// Its position among this beat's lines of the job, from 0 (keeps their order and
    /// counts against the job's cap).
    pub n: i32,
    /// The line, clean.
    pub line: String,
}

/// Checks `reports` against the bounds of one heartbeat (`invalid` past them) and turns
/// them into records, each line scrubbed again (a remote worker's word is not trusted).
pub(crate) fn records(reports: &[ProgressReport]) -> CoreResult<Vec<ProgressRecord>> {
    let total: usize = reports.iter().map(|r| r.lines.len()).sum();
    if total > MAX_LINES_PER_HEARTBEAT {
        return Err(CoreError::invalid(
            "progress",
            format!("at most {MAX_LINES_PER_HEARTBEAT} lines per heartbeat"),
        ));
    }
    let mut out = Vec::with_capacity(total);
    // Positions count on across reports of the same token (a final flush sends several).
    let mut next: std::collections::HashMap<&str, i32> = Default::default();
    for report in reports {
        if report.lines.len() > MAX_LINES_PER_BEAT {
            return Err(CoreError::invalid(
                "progress",
                format!("at most {MAX_LINES_PER_BEAT} lines per job per heartbeat"),
            ));
        }
        for line in &report.lines {
            if line.len() > 4 * MAX_LINE_BYTES {
                return Err(CoreError::invalid(
                    "progress",
                    format!("lines are at most {MAX_LINE_BYTES} bytes"),
                ));
            }
            let n = next.entry(report.token.as_str()).or_insert(0);
            *n += 1;
            out.push(ProgressRecord {
                token: report.token.clone(),
                n: *n - 1,
                line: clean_line(line.as_bytes()),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(lines: usize, text: &str) -> ProgressReport {
        ProgressReport {
            token: "t".into(),
            lines: vec![text.to_owned(); lines],
        }
    }

    #[test]
    fn reports_are_bounded_and_scrubbed() {
        let r = records(&[report(2, "a\0b")]).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!((r[1].n, r[1].line.as_str()), (1, "a\u{FFFD}b"));
        assert!(records(&[report(MAX_LINES_PER_BEAT + 1, "x")]).is_err());
        let many: Vec<_> = (0..9).map(|_| report(MAX_LINES_PER_BEAT, "x")).collect();
        assert_eq!(records(&many).unwrap_err().code(), "invalid");
        assert!(records(&[report(1, &"x".repeat(5000))]).is_err());
        let two = records(&[report(2, "a"), report(1, "b")]).unwrap();
        assert_eq!(two.iter().map(|r| r.n).collect::<Vec<_>>(), [0, 1, 2]);
        let long = records(&[report(1, &"y".repeat(2000))]).unwrap();
        assert!(long[0].line.len() <= MAX_LINE_BYTES);
    }
}
