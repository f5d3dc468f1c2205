//! What a worker may register: every field checked, since a remote worker's words come
//! from outside the platform.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};

use crate::{CoreError, CoreResult};

/// Longest worker id, in bytes (the width of `jobs.lease_owner`).
pub const MAX_ID_LEN: usize = 200;
/// Longest host name, in bytes.
pub const MAX_HOST_LEN: usize = 255;
/// Longest version, in bytes.
pub const MAX_VERSION_LEN: usize = 64;
/// Most task kinds one worker may list.
pub const MAX_KINDS: usize = 256;
/// Longest task kind name, in bytes (the width of `jobs.task`).
pub const MAX_KIND_LEN: usize = 64;
/// Largest concurrency (and running-jobs count) a worker may report.
pub const MAX_CONCURRENCY: u32 = 100_000;
/// Longest heartbeat period, in seconds.
pub const MAX_HEARTBEAT_SECS: u64 = 3600;

/// A worker announcing itself to the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRegistration {
    /// The worker id (`default_worker_id()` or the operator's `--id`).
    pub id: String,
    /// The org it serves: the worker key's org (`Principal::org_id`), never the worker's
    /// own claim; `None` for a platform worker (local workers, platform keys).
    pub org_id: Option<String>,
    /// The host it runs on.
    pub host: String,
    /// Its Velu version.
    pub version: String,
    /// The task kinds it runs (duplicates are dropped; stored sorted).
    pub kinds: Vec<String>,
    /// True for a worker over the worker protocol, false for `velu-cli worker` on the
    /// database.
    pub remote: bool,
    /// Jobs it may run at once.
    pub concurrency: u32,
    /// How often it will beat (rounded up to whole seconds, at most
    /// [`MAX_HEARTBEAT_SECS`]); it is `stale` after `STALE_BEATS` missed beats.
    pub heartbeat: Duration,
    /// When it starts (normally `time::now()`).
    pub at: DateTime<Utc>,
}

/// A registration whose every field passed the checks.
pub(super) struct Valid {
    pub kinds: Vec<String>,
    pub concurrency: i32,
    pub heartbeat_secs: i32,
    pub at: DateTime<Utc>,
}

impl WorkerRegistration {
    /// Checks every field; returns what storage needs in its own types.
    pub(super) fn validate(&self) -> CoreResult<Valid> {
        worker_id(&self.id)?;
        if let Some(org) = &self.org_id {
            bounded("org_id", org, 36)?;
        }
        bounded("host", &self.host, MAX_HOST_LEN)?;
        bounded("version", &self.version, MAX_VERSION_LEN)?;
        if self.kinds.len() > MAX_KINDS {
            return Err(CoreError::invalid(
                "kinds",
                format!("at most {MAX_KINDS} task kinds"),
            ));
        }
        let mut kinds = BTreeSet::new();
        for kind in &self.kinds {
            bounded("kinds", kind, MAX_KIND_LEN)?;
            kinds.insert(kind.clone());
        }
        let concurrency = count("concurrency", self.concurrency)?;
        if concurrency == 0 {
            return Err(CoreError::invalid("concurrency", "must be at least 1"));
        }
        // Whole seconds, rounded up: a worker beating every 300 ms counts as 1 s.
        let secs = self.heartbeat.as_secs() + u64::from(self.heartbeat.subsec_nanos() > 0);
        if !(1..=MAX_HEARTBEAT_SECS).contains(&secs) {
            return Err(CoreError::invalid(
                "heartbeat",
                format!("must be more than 0 and at most {MAX_HEARTBEAT_SECS} seconds"),
            ));
        }
        Ok(Valid {
            kinds: kinds.into_iter().collect(),
            concurrency,
            heartbeat_secs: i32::try_from(secs).expect("bounded above"),
            at: self.at.trunc_subsecs(6),
        })
    }
}

/// Checks a worker id a caller gave: 1 to [`MAX_ID_LEN`] bytes of plain text.
pub(super) fn worker_id(id: &str) -> CoreResult<&str> {
    bounded("id", id, MAX_ID_LEN)
}

/// Checks a job count (`concurrency`, `running_jobs`): at most [`MAX_CONCURRENCY`].
pub(super) fn count(field: &str, n: u32) -> CoreResult<i32> {
    if n > MAX_CONCURRENCY {
        return Err(CoreError::invalid(
            field,
            format!("must be at most {MAX_CONCURRENCY}"),
        ));
    }
    Ok(i32::try_from(n).expect("bounded above"))
}

/// Text of 1 to `max` bytes without control characters (U+0000 included).
fn bounded<'a>(field: &str, text: &'a str, max: usize) -> CoreResult<&'a str> {
    if text.is_empty() || text.len() > max {
        return Err(CoreError::invalid(
            field,
            format!("must be 1 to {max} bytes long"),
        ));
    }
    crate::text::plain(field, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> WorkerRegistration {
        WorkerRegistration {
            id: "host:1:abc".into(),
            org_id: None,
            host: "host".into(),
            version: "0.1.0".into(),
            kinds: vec!["echo".into(), "echo".into(), "add".into()],
            remote: false,
            concurrency: 4,
            heartbeat: Duration::from_secs(10),
            at: crate::time::now(),
        }
    }

    #[test]
    fn a_plain_registration_passes_with_kinds_sorted_and_unique() {
        let v = reg().validate().unwrap();
        assert_eq!(v.kinds, vec!["add", "echo"]);
        assert_eq!((v.concurrency, v.heartbeat_secs), (4, 10));
        let fast = WorkerRegistration {
            heartbeat: Duration::from_millis(300),
            ..reg()
        };
        assert_eq!(fast.validate().unwrap().heartbeat_secs, 1, "rounded up");
    }

    type Spoil = Box<dyn Fn(&mut WorkerRegistration)>;

    #[test]
    fn odd_fields_are_refused() {
        let cases: Vec<(&str, Spoil)> = vec![
            ("id", Box::new(|r| r.id = String::new())),
            ("id", Box::new(|r| r.id = "a\0b".into())),
            ("id", Box::new(|r| r.id = "x".repeat(MAX_ID_LEN + 1))),
            ("host", Box::new(|r| r.host = "h\nost".into())),
            ("host", Box::new(|r| r.host = "h".repeat(MAX_HOST_LEN + 1))),
            ("version", Box::new(|r| r.version = "1\u{7f}".into())),
            ("kinds", Box::new(|r| r.kinds = vec!["e\0cho".into()])),
            ("kinds", Box::new(|r| r.kinds = vec![String::new()])),
            ("kinds", Box::new(|r| r.kinds = vec!["k".repeat(65)])),
            (
                "kinds",
                Box::new(|r| r.kinds = (0..=MAX_KINDS).map(|i| format!("k{i}")).collect()),
            ),
            ("concurrency", Box::new(|r| r.concurrency = 0)),
            ("concurrency", Box::new(|r| r.concurrency = u32::MAX)),
            ("heartbeat", Box::new(|r| r.heartbeat = Duration::ZERO)),
            (
                "heartbeat",
                Box::new(|r| r.heartbeat = Duration::from_secs(86_400)),
            ),
            ("org_id", Box::new(|r| r.org_id = Some("o\0".into()))),
        ];
        for (field, spoil) in cases {
            let mut r = reg();
            spoil(&mut r);
            match r.validate() {
                Err(CoreError::Invalid { field: f, .. }) => assert_eq!(f, field),
                Err(e) => panic!("{field}: {e}"),
                Ok(_) => panic!("{field}: accepted"),
            }
        }
    }
}
