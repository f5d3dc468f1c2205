//! What a client sends to submit jobs, parsed once here for every front end.

use serde::Deserialize;
use serde_json::Value;

use crate::{CoreError, CoreResult};

/// Input of `job submit`. Anything else a client sends is refused, not trusted: unknown
/// fields, and values of the wrong type or range (a priority of 4294967297 or `"5"`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitJob {
    /// Task kind (see `task list`).
    pub task: String,
    /// A JSON object; top-level keys starting with `_` are reserved [default: `{}`].
    #[serde(default = "empty_object")]
    pub payload: Value,
    /// -100..=100, higher first [default: 0].
    pub priority: Option<i32>,
    /// RFC 3339: not before this time [default: now].
    pub run_at: Option<String>,
    /// 1..=25 [default: the kind's].
    pub max_attempts: Option<u32>,
    /// Submitting the same key again returns the existing job.
    pub idempotency_key: Option<String>,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// Parses a batch of submissions: a JSON array of objects, one object, or JSON objects one
/// per line. Each is a [`SubmitJob`]: unknown fields and values of the wrong type or range
/// are `invalid`, naming the entry (`jobs[3]`), never truncated or dropped.
pub fn parse_batch(text: &str) -> CoreResult<Vec<SubmitJob>> {
    let values: Vec<Value> = match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(items)) => items,
        Ok(one @ Value::Object(_)) => vec![one],
        _ => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str(l)
                    .map_err(|e| CoreError::invalid(format!("jobs[{i}]"), format!("not JSON: {e}")))
            })
            .collect::<CoreResult<_>>()?,
    };
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            serde_json::from_value(v)
                .map_err(|e| CoreError::invalid(format!("jobs[{i}]"), e.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_types_and_ranges_are_refused_not_truncated() {
        for (text, needle) in [
            (
                r#"[{"task": "echo", "priority": 4294967297}]"#,
                "4294967297",
            ),
            (r#"[{"task": "echo", "priority": "5"}]"#, "invalid type"),
            (r#"[{"task": "echo", "max_attempts": -1}]"#, "-1"),
            (r#"[{"task": "echo", "org_id": "other"}]"#, "org_id"),
            (r#"[{"payload": {}}]"#, "task"),
            ("{\"task\": \"echo\"}\nnot json", "jobs[1]"),
        ] {
            let err = parse_batch(text).unwrap_err();
            assert_eq!(err.code(), "invalid", "{text}");
            assert!(err.to_string().contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn arrays_objects_and_lines_are_read() {
        let one = parse_batch(r#"{"task": "echo", "priority": 5}"#).unwrap();
        assert_eq!(one[0].priority, Some(5));
        assert_eq!(one[0].payload, serde_json::json!({}));
        let lines = parse_batch("{\"task\": \"a\"}\n\n{\"task\": \"b\"}\n").unwrap();
        assert_eq!(lines.len(), 2);
        let array = parse_batch(r#"[{"task": "a", "payload": {"x": 1}}]"#).unwrap();
        assert_eq!(array[0].payload["x"], 1);
    }
}
