//! How a handler's attempt ended, before the retry policy turns it into a
//! [`crate::queue::Finish`].

use serde_json::{Value, json};

use crate::jobs::JobError;

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It worked; the result is a JSON object.
    Succeeded(Value),
    /// The handler failed.
    Failed(JobError),
    /// It ran past the kind's timeout and was stopped.
    TimedOut(JobError),
    /// A cancel was asked and the handler was stopped.
    Cancelled,
}

/// Makes any handler output a JSON object: objects stay, other JSON is `{value: ...}`.
pub(crate) fn as_object(v: Value) -> Value {
    match v {
        Value::Object(_) => v,
        other => json!({ "value": other }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_objects() {
        assert_eq!(as_object(json!({"a": 1})), json!({"a": 1}));
        assert_eq!(as_object(json!([1, 2])), json!({"value": [1, 2]}));
        assert_eq!(as_object(json!("x")), json!({"value": "x"}));
    }
}
