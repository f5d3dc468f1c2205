//! Narrowing a document for scripts: `-q/--quiet` (ids only) and `--field PATH` (one value).

use serde_json::Value;
use velu_core::{CoreError, CoreResult};

/// The ids of a document, one per line: each item's `id` for a list (`items`), else the
/// document's own `id`, else the `id` of each object it holds (`job`, `key`, `org`, ...),
/// and the same inside `keys` maps (bootstrap). Empty for a document without ids.
pub fn ids(doc: &Value) -> Vec<String> {
    let id_of = |v: &Value| v.get("id").and_then(scalar_text);
    if let Some(items) = doc.get("items").and_then(Value::as_array) {
        return items.iter().filter_map(id_of).collect();
    }
    if let Some(id) = id_of(doc) {
        return vec![id];
    }
    let Some(map) = doc.as_object() else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for value in map.values() {
        if let Some(id) = id_of(value) {
            found.push(id);
        } else if let Some(inner) = value.as_object() {
            found.extend(
                inner
                    .values()
                    .filter_map(|v| id_of(v).or_else(|| v.get("key").and_then(id_of))),
            );
        }
    }
    found
}

/// The value at `path`: object fields and array indexes separated by dots, e.g.
/// `job.status`, `items.0.id`, `keys.admin.token`. A missing step is `invalid` on field
/// `field`, naming the fields that exist there.
pub fn field<'a>(doc: &'a Value, path: &str) -> CoreResult<&'a Value> {
    let mut at = doc;
    for step in path.split('.') {
        let next = match at {
            Value::Object(map) => map.get(step),
            Value::Array(items) => step.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        at = next.ok_or_else(|| {
            let there = match at {
                Value::Object(map) => map.keys().cloned().collect::<Vec<_>>().join(", "),
                Value::Array(items) => format!("indexes 0..{}", items.len()),
                _ => "nothing (a plain value)".to_owned(),
            };
            CoreError::invalid(
                "field",
                format!("`{path}`: no `{step}` here; there is {there}"),
            )
        })?;
    }
    Ok(at)
}

/// A scalar as a script wants it: strings bare, numbers and booleans as written, null
/// as an empty string. `None` for arrays and objects.
pub fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => Some(String::new()),
        Value::Bool(_) | Value::Number(_) => Some(v.to_string()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ids_of_lists_documents_and_wrappers() {
        assert_eq!(
            ids(&json!({"items": [{"id": "a"}, {"id": "b"}]})),
            ["a", "b"]
        );
        assert_eq!(ids(&json!({"id": "j1", "status": "queued"})), ["j1"]);
        assert_eq!(ids(&json!({"key": {"id": "k1"}, "token": "t"})), ["k1"]);
        let bootstrap = json!({"org": {"id": "o1"}, "keys": {"admin": {"key": {"id": "k2"}}}});
        assert_eq!(ids(&bootstrap), ["o1", "k2"]);
        assert!(ids(&json!({"plans": 3})).is_empty());
    }

    #[test]
    fn field_walks_objects_and_indexes_and_names_what_exists() {
        let doc = json!({"items": [{"id": "a", "n": 2}], "next_cursor": null});
        assert_eq!(field(&doc, "items.0.n").unwrap(), &json!(2));
        assert_eq!(field(&doc, "next_cursor").unwrap(), &Value::Null);
        let err = field(&doc, "items.0.nope").unwrap_err();
        assert_eq!(err.code(), "invalid");
        assert!(err.to_string().contains("id, n"), "{err}");
        assert!(field(&doc, "items.7").is_err());
        assert!(field(&doc, "items.x").is_err());
        assert_eq!(scalar_text(&json!(null)).unwrap(), "");
        assert_eq!(scalar_text(&json!(true)).unwrap(), "true");
        assert!(scalar_text(&json!([1])).is_none());
    }
}
