//! Shared wire pieces: pages, timestamps, JSON objects, and the text patterns the spec
//! declares (each mirrors a velu-core rule; `tests/it/spec.rs` keeps them in step).

use std::borrow::Cow;

use poem_openapi::Object;
use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type};
use serde_json::Value;
use velu_core::time::Timestamp;

/// Text without control characters (U+0000 to U+001F, U+007F to U+009F): what velu-core
/// accepts in filters, names and keys. The patterns below are written in the subset that
/// Rust's `regex`, ECMA-262 and Python's `re` read alike.
pub const PLAIN_TEXT_PATTERN: &str = r"^[^\u0000-\u001F\u007F-\u009F]*$";

/// A display name: plain text with at least one character that is not white space (names
/// are trimmed, then must not be empty).
pub const NAME_PATTERN: &str = r"^[^\u0000-\u001F\u007F-\u009F]*[^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\u0000-\u001F\u007F-\u009F]*$";

/// A key name: letters, digits, space, `-`, `_`, `.`, not only spaces.
pub const KEY_NAME_PATTERN: &str = r"^[A-Za-z0-9 ._-]*[A-Za-z0-9._-][A-Za-z0-9 ._-]*$";

/// A task kind name (built-in or from the tasks file).
pub const TASK_PATTERN: &str = r"^[a-z][a-z0-9-]{0,63}$";

/// One page of a list.
#[derive(Debug, Object)]
pub struct Page<T: ParseFromJSON + ToJSON> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

/// A page mirrors a core page when its items mirror the core items.
impl<T: ParseFromJSON + ToJSON + super::Mirrors<U>, U>
    super::Mirrors<velu_core::pagination::Page<U>> for Page<T>
{
}

/// Converts a core page item by item.
impl<T: ParseFromJSON + ToJSON + From<U>, U> From<velu_core::pagination::Page<U>> for Page<T> {
    fn from(page: velu_core::pagination::Page<U>) -> Self {
        Page {
            items: page.items.into_iter().map(T::from).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

/// A timestamp as every document prints it (RFC 3339, UTC, `Z`).
pub fn ts(t: Timestamp) -> String {
    t.to_string()
}

/// An optional timestamp.
pub fn ts_opt(t: Option<Timestamp>) -> Option<String> {
    t.map(ts)
}

/// A JSON object as the spec declares it (`type: object`). What it may hold (no `_` keys
/// at the top, no U+0000, the plan's size) is velu-core's to check, so a refusal names the
/// field; anything that is not an object reaches velu-core too and is refused there.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonObject(pub Value);

impl Default for JsonObject {
    fn default() -> Self {
        JsonObject(Value::Object(Default::default()))
    }
}

impl Type for JsonObject {
    const IS_REQUIRED: bool = true;
    type RawValueType = Value;
    type RawElementValueType = Value;

    fn name() -> Cow<'static, str> {
        "object".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema::new("object")))
    }

    fn as_raw_value(&self) -> Option<&Value> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Value> + 'a> {
        Box::new(std::iter::once(&self.0))
    }
}

impl ParseFromJSON for JsonObject {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        Ok(JsonObject(value.unwrap_or_default()))
    }
}

impl ToJSON for JsonObject {
    fn to_json(&self) -> Option<Value> {
        Some(self.0.clone())
    }
}

/// A JSON string, and only a string: poem's `String` would also take `false` or `7` and
/// turn them into text, which the spec (`type: string`) does not allow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text(pub String);

/// A poem-openapi validator `$validator` that stands in for the `pattern` validator of
/// `$pattern` with the check `$check`: it prints as the `pattern` validator does, so a
/// refusal reads the same.
macro_rules! pattern_check {
    ($validator:ident, $pattern:ident, $check:path) => {
        impl std::fmt::Display for $validator {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "pattern(\"{}\")", $pattern)
            }
        }

        impl<T: AsRef<str>> poem_openapi::validation::Validator<T> for $validator {
            fn check(&self, value: &T) -> bool {
                $check(value.as_ref())
            }
        }
    };
}

/// A wire string type over `String`: `From<$ty> for String`, `AsRef<str>`, `Type` with
/// the inline schema `$schema`, a `ParseFromJSON` that takes a JSON string and nothing
/// else, `ToJSON`, and `ParseFromParameter` (a query or path parameter, taken as is).
///
/// The second form declares the type in the spec as a string matching `$pattern`, and
/// makes the unit struct `$validator` the check of that pattern by `$check` (see
/// `pattern_check!`).
macro_rules! string_type {
    ($ty:ident, pattern $pattern:ident, checked by $validator:ident with $check:path) => {
        string_type!(
            $ty,
            MetaSchema {
                pattern: Some($pattern.to_owned()),
                ..MetaSchema::new("string")
            }
        );
        pattern_check!($validator, $pattern, $check);
    };
    ($ty:ident, $schema:expr) => {
        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<$ty> for String {
            fn from(t: $ty) -> String {
                t.0
            }
        }

        impl Type for $ty {
            const IS_REQUIRED: bool = true;
            type RawValueType = String;
            type RawElementValueType = String;

            fn name() -> Cow<'static, str> {
                "string".into()
            }

            fn schema_ref() -> MetaSchemaRef {
                MetaSchemaRef::Inline(Box::new($schema))
            }

            fn as_raw_value(&self) -> Option<&String> {
                Some(&self.0)
            }

            fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a String> + 'a> {
                Box::new(std::iter::once(&self.0))
            }
        }

        impl ParseFromJSON for $ty {
            fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
                match value.unwrap_or_default() {
                    Value::String(s) => Ok($ty(s)),
                    other => Err(poem_openapi::types::ParseError::expected_type(other)),
                }
            }
        }

        impl ToJSON for $ty {
            fn to_json(&self) -> Option<Value> {
                Some(Value::String(self.0.clone()))
            }
        }

        impl ParseFromParameter for $ty {
            fn parse_from_parameter(value: &str) -> ParseResult<Self> {
                Ok($ty(value.to_owned()))
            }
        }
    };
}

string_type!(Text, MetaSchema::new("string"));

/// A task kind name, declared in the spec as a string matching [`TASK_PATTERN`] and checked
/// by [`TaskPattern`]. Not `Text` with poem-openapi's `pattern` validator: that validator
/// compiles its regular expression on every check (about 3% of the machine's CPU on the
/// submit route, docs/benchmarks-log.md).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskName(pub String);

string_type!(TaskName, pattern TASK_PATTERN, checked by TaskPattern with is_task_name);

/// The check of [`TASK_PATTERN`] (`^[a-z][a-z0-9-]{0,63}$`) without a regular expression,
/// as a poem-openapi validator (`#[oai(validator(custom = "..."))]`); it prints as the
/// `pattern` validator does, so a refusal reads the same.
pub struct TaskPattern;

/// Does `text` match [`TASK_PATTERN`]?
pub fn is_task_name(text: &str) -> bool {
    let b = text.as_bytes();
    (1..=64).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// The pattern of text fields that take no control characters: C0, DEL and C1.
pub const NO_CONTROL_PATTERN: &str = r"^[^\u0000-\u001F\u007F-\u009F]*$";

/// Text without control characters (ids, tokens, reasons, keys), declared in the spec as
/// a string matching [`NO_CONTROL_PATTERN`] and checked by [`NoControl`]: as with
/// [`TaskName`], poem-openapi's `pattern` validator would compile the expression on every
/// check, once per token of a heartbeat of 1,024 tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlainText(pub String);

string_type!(PlainText, pattern NO_CONTROL_PATTERN, checked by NoControl with is_free_of_controls);

/// The check of [`NO_CONTROL_PATTERN`] without a regular expression, as a poem-openapi
/// validator; it prints as the `pattern` validator does, so a refusal reads the same.
pub struct NoControl;

/// Does `text` match [`NO_CONTROL_PATTERN`] (no character in U+0000..=U+001F or
/// U+007F..=U+009F)?
pub fn is_free_of_controls(text: &str) -> bool {
    // Exactly Unicode's `Cc` category, as velu-core's `text::plain` checks it.
    !text.chars().any(char::is_control)
}

/// The pattern of a page cursor: the unpadded URL-safe base64 that `next_cursor` is.
pub const CURSOR_PATTERN: &str = r"^[A-Za-z0-9_-]*$";

/// A list route's `cursor` parameter, declared in the spec as a string matching
/// [`CURSOR_PATTERN`] and checked by [`CursorPattern`] (no regular expression compiled
/// per request, as for [`TaskName`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor(pub String);

string_type!(Cursor, pattern CURSOR_PATTERN, checked by CursorPattern with is_cursor_text);

/// The check of [`CURSOR_PATTERN`] without a regular expression, as a poem-openapi
/// validator; it prints as the `pattern` validator does, so a refusal reads the same.
pub struct CursorPattern;

/// Does `text` match [`CURSOR_PATTERN`] (ASCII letters, digits, `-` and `_` only)?
pub fn is_cursor_text(text: &str) -> bool {
    text.bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused_as_the_pattern_says() {
        let pattern = regex::Regex::new(NO_CONTROL_PATTERN).unwrap();
        let mut probes: Vec<String> = [
            "",
            "plain",
            "é ü 日本",
            "tab\there",
            "a\u{0}b",
            "\u{7f}",
            "x\u{9f}",
            "\u{a0}",
            "\u{85}",
            "line\n",
            "\u{2028}",
            "🙂",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Every code point around the edges of the ranges, alone and inside text.
        for c in (0u32..0x120)
            .chain([0x2028, 0xfeff, 0x10ffff])
            .filter_map(char::from_u32)
        {
            probes.push(c.to_string());
            probes.push(format!("ok{c}ok"));
        }
        for p in &probes {
            assert_eq!(is_free_of_controls(p), pattern.is_match(p), "{p:?}");
        }
    }

    #[test]
    fn cursors_are_checked_as_the_pattern_says() {
        let pattern = regex::Regex::new(CURSOR_PATTERN).unwrap();
        let mut probes: Vec<String> = ["", "abc", "A-z_09", "a b", "a=", "a+b/", "é", "a\0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for c in (0u32..0x180)
            .chain([0x2028, 0xff10, 0x10ffff])
            .filter_map(char::from_u32)
        {
            probes.push(c.to_string());
            probes.push(format!("ok{c}ok"));
        }
        for p in &probes {
            assert_eq!(is_cursor_text(p), pattern.is_match(p), "{p:?}");
        }
        assert_eq!(
            CursorPattern.to_string(),
            format!("pattern(\"{CURSOR_PATTERN}\")")
        );
    }

    #[test]
    fn task_names_are_checked_as_the_pattern_says() {
        let long = format!("a{}", "b".repeat(63));
        for good in ["a", "echo", "a-1", "x0-", long.as_str()] {
            assert!(is_task_name(good), "{good:?}");
        }
        let too_long = format!("a{}", "b".repeat(64));
        for bad in [
            "",
            "A",
            "1a",
            "-a",
            "a_b",
            "aB",
            "é",
            "aé",
            "a\n",
            "a\0",
            " a",
            too_long.as_str(),
        ] {
            assert!(!is_task_name(bad), "{bad:?}");
        }
        assert_eq!(
            TaskPattern.to_string(),
            format!("pattern(\"{TASK_PATTERN}\")")
        );
    }
}
