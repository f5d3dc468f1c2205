//! U+0000 in job output: PostgreSQL's `jsonb` refuses `\u0000`, so both backends store
//! U+FFFD (the replacement character) instead.

use serde_json::Value;

/// What replaces U+0000 in stored job output.
pub const NUL_REPLACEMENT: char = '\u{FFFD}';

/// `s` with every U+0000 replaced by [`NUL_REPLACEMENT`].
pub(super) fn scrub_str(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

/// Replaces U+0000 in every string of `v` (object keys too) by [`NUL_REPLACEMENT`].
pub fn scrub_nul(v: &mut Value) {
    match v {
        Value::String(s) if s.contains('\0') => *s = scrub_str(s),
        Value::Array(items) => items.iter_mut().for_each(scrub_nul),
        Value::Object(map) => {
            if map.keys().any(|k| k.contains('\0')) {
                let old = std::mem::take(map);
                map.extend(old.into_iter().map(|(k, v)| (scrub_str(&k), v)));
            }
            map.values_mut().for_each(scrub_nul);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_scrubbed_from_keys_and_values() {
        let mut v = serde_json::json!({"a\u{0}": ["x\u{0}y", {"k": "\u{0}"}], "n": 1});
        scrub_nul(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"a\u{FFFD}": ["x\u{FFFD}y", {"k": "\u{FFFD}"}], "n": 1})
        );
    }
}
