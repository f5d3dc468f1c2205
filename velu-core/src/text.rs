//! Checks on free text from callers, so nothing reaches storage that it cannot hold:
//! PostgreSQL's `text` and `jsonb` refuse U+0000, which would otherwise surface as a
//! server error instead of a clear `invalid`.

use serde_json::Value;

use crate::{CoreError, CoreResult};

/// Refuses text with control characters (U+0000 included) in a filter or name `field`.
pub(crate) fn plain<'a>(field: &str, text: &'a str) -> CoreResult<&'a str> {
    if text.chars().any(char::is_control) {
        return Err(CoreError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(text)
}

/// Refuses a JSON document with U+0000 in any string or object key.
pub(crate) fn no_nul_in_json(field: &str, value: &Value) -> CoreResult<()> {
    if has_nul(value) {
        return Err(CoreError::invalid(
            field,
            "must not contain the NUL character (\\u0000), which cannot be stored",
        ));
    }
    Ok(())
}

fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nul_is_found_at_any_depth_and_in_keys() {
        assert!(no_nul_in_json("payload", &json!({"a": [1, {"b": "ok"}]})).is_ok());
        for bad in [
            json!({"a": "x\u{0}y"}),
            json!({"a": [{"b": ["\u{0}"]}]}),
            json!({"k\u{0}": 1}),
        ] {
            let err = no_nul_in_json("payload", &bad).unwrap_err();
            assert_eq!(err.code(), "invalid", "{bad}");
        }
    }

    #[test]
    fn plain_text_refuses_control_characters() {
        assert_eq!(plain("task", "echo").unwrap(), "echo");
        assert!(plain("task", "échø ok").is_ok());
        assert!(plain("task", "a\u{0}b").is_err());
        assert!(plain("q", "line\nbreak").is_err());
    }
}
