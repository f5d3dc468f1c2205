//! YAML that reads back the same everywhere: serde_yaml writes YAML 1.2, where
//! `2026-12-01T10:00:00Z`, `yes` or `1:30` are plain strings, but YAML 1.1 readers
//! (PyYAML's `safe_load`, Ruby's Psych) turn such plain scalars into timestamps, booleans
//! or numbers. Like kubectl, Velu quotes them, so every reader gets the JSON document.

use std::sync::LazyLock;

use regex::Regex;

/// Plain scalars a YAML 1.1 reader resolves to something other than a string
/// (PyYAML's implicit resolvers: bool, int, float, null, timestamp, value, merge).
static YAML11_NOT_A_STRING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"^(?:",
        r"yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF",
        r"|~|null|Null|NULL|=|<<",
        r"|[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+",
        r"|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+",
        r"|[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?",
        r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
        r"|[0-9]{4}-[0-9]{2}-[0-9]{2}",
        r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?",
        r"(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?",
        r")$"
    ))
    .expect("valid regex")
});

/// Rewrites serde_yaml output so that every plain scalar a YAML 1.1 reader would not read
/// as the same value is single-quoted. Only scalars serde_yaml itself reads as strings
/// are touched (numbers, booleans and nulls it wrote stay as they are); block scalars
/// (`|`) are left alone, since their lines are text, not scalars.
pub fn quote_for_yaml11(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    // Indentation of the line that opened a block scalar, while inside one.
    let mut block: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let indent = body.len() - body.trim_start_matches(' ').len();
        if let Some(opened_at) = block {
            if body.trim().is_empty() || indent > opened_at {
                out.push_str(line);
                continue;
            }
            block = None;
        }
        let (rewritten, opens_block) = rewrite_line(body);
        if opens_block {
            block = Some(indent);
        }
        out.push_str(&rewritten);
        if line.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// One line of block YAML: indentation, `- ` markers, then an optional `key:` and a
/// value. Returns the line with ambiguous plain scalars quoted, and whether it opens a
/// block scalar.
fn rewrite_line(line: &str) -> (String, bool) {
    let mut out = String::with_capacity(line.len() + 4);
    let mut rest = line;
    let indent = rest.len() - rest.trim_start_matches(' ').len();
    out.push_str(&rest[..indent]);
    rest = &rest[indent..];
    while let Some(after) = rest.strip_prefix("- ") {
        out.push_str("- ");
        rest = after;
    }
    if rest == "-" {
        out.push('-');
        return (out, false);
    }
    // The key, if the line has one: a quoted scalar or a plain one ending at `: `/`:`.
    if let Some(key_len) = key_length(rest) {
        let (key, after) = rest.split_at(key_len);
        out.push_str(&quote_scalar(key));
        out.push(':');
        rest = after[1..].strip_prefix(' ').unwrap_or(&after[1..]);
        if rest.is_empty() {
            return (out, false);
        }
        out.push(' ');
    }
    let opens_block = rest.starts_with('|') || rest.starts_with('>');
    out.push_str(&quote_scalar(rest));
    (out, opens_block)
}

/// The length of the mapping key at the start of `text`, if it is `key: value` or `key:`.
fn key_length(text: &str) -> Option<usize> {
    let end = match text.chars().next()? {
        '\'' => quoted_end(text, '\'')?,
        '"' => quoted_end(text, '"')?,
        _ => {
            let colon = text
                .find(": ")
                .or_else(|| text.strip_suffix(':').map(str::len))?;
            return Some(colon);
        }
    };
    text[end..].starts_with(':').then_some(end)
}

/// The byte just past the closing quote of the quoted scalar opening `text`.
fn quoted_end(text: &str, quote: char) -> Option<usize> {
    let mut chars = text.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        if quote == '"' && c == '\\' {
            chars.next();
        } else if c == quote {
            if quote == '\'' && chars.peek().is_some_and(|&(_, n)| n == '\'') {
                chars.next();
                continue;
            }
            return Some(i + 1);
        }
    }
    None
}

/// `scalar`, single-quoted if it is plain, serde_yaml reads it as a string and a YAML 1.1
/// reader would not.
fn quote_scalar(scalar: &str) -> String {
    let ambiguous = YAML11_NOT_A_STRING.is_match(scalar)
        && matches!(
            serde_yaml::from_str::<serde_yaml::Value>(scalar),
            Ok(serde_yaml::Value::String(_))
        );
    if ambiguous {
        format!("'{scalar}'")
    } else {
        scalar.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn yaml(v: &Value) -> String {
        quote_for_yaml11(&serde_yaml::to_string(v).unwrap())
    }

    #[test]
    fn strings_a_yaml11_reader_would_retype_are_quoted() {
        let doc = json!({
            "created_at": "2026-12-01T22:04:12.123456Z",
            "day": "2026-12-01",
            "spaced": "2026-12-01 10:00:00",
            "answer": "yes", "switch": "off", "sexagesimal": "1:20", "underscored": "1_000",
            "octal": "017", "tilde": "~", "eq": "=", "merge": "<<",
            "2026-01-01": "a timestamp key",
            "list": ["2026-12-01T00:00:00Z", "no", {"at": "2026-12-01T00:00:00+02:00"}],
        });
        let text = yaml(&doc);
        for quoted in [
            "created_at: '2026-12-01T22:04:12.123456Z'",
            "day: '2026-12-01'",
            "spaced: '2026-12-01 10:00:00'",
            "answer: 'yes'",
            "switch: 'off'",
            "sexagesimal: '1:20'",
            "underscored: '1_000'",
            "eq: '='",
            "merge: '<<'",
            "'2026-01-01': a timestamp key",
            "- '2026-12-01T00:00:00Z'",
            "- 'no'",
            "- at: '2026-12-01T00:00:00+02:00'",
        ] {
            assert!(text.contains(quoted), "{quoted} not in:\n{text}");
        }
        let back: Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(back, doc);
    }

    #[test]
    fn real_numbers_booleans_nulls_and_plain_text_stay_plain() {
        let doc = json!({"attempts": 1, "ratio": 0.5, "done": true, "error": null,
                         "status": "queued", "task": "echo", "neg": -3});
        let text = yaml(&doc);
        assert_eq!(text, serde_yaml::to_string(&doc).unwrap());
        assert!(text.contains("attempts: 1\n") && text.contains("error: null\n"));
    }

    #[test]
    fn block_scalars_are_text_not_scalars() {
        let doc = json!({"output": "line one\n2026-12-01\nyes\n", "after": "2026-12-01"});
        let text = yaml(&doc);
        assert!(text.contains("\n  2026-12-01\n  yes\n"), "{text}");
        assert!(text.contains("after: '2026-12-01'"), "{text}");
        let back: Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(back, doc);
    }

    #[test]
    fn keys_and_values_with_colons_and_quotes_survive() {
        let doc = json!({"a: b": "c: d", "it's": "2026-12-01", "\"q\"": ["x: 1:20"],
                         "url": "http://h:80/x", "empty": "", "nested": {"k": {"k2": "on"}}});
        let text = yaml(&doc);
        let back: Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(back, doc, "{text}");
        assert!(text.contains("k2: 'on'"), "{text}");
    }
}
