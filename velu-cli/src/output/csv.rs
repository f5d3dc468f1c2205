//! `-o csv`: a list document's `items` as CSV (RFC 4180 quoting), for spreadsheets and
//! billing imports. One header line of column names (every field of the items, in the
//! first item's order, then any later ones), one line per item, `\n` line ends. Nothing
//! but the items is printed: not `next_cursor`, not a report's totals. Documents without
//! `items` are refused (`invalid`): use YAML or JSON for them.

use serde_json::Value;
use velu_core::CoreError;

/// Renders the `items` of `doc` as CSV.
pub fn render(doc: &Value) -> Result<String, CoreError> {
    let Some(items) = doc.get("items").and_then(Value::as_array) else {
        return Err(CoreError::invalid(
            "output",
            "-o csv prints list documents (those with `items`) only; use -o yaml or -o json",
        ));
    };
    let mut columns: Vec<&str> = Vec::new();
    for item in items {
        for key in item.as_object().into_iter().flat_map(|m| m.keys()) {
            if !columns.contains(&key.as_str()) {
                columns.push(key);
            }
        }
    }
    let mut out = String::new();
    line(&mut out, columns.iter().map(|c| (*c).to_owned()));
    for item in items {
        line(&mut out, columns.iter().map(|c| cell(item.get(*c))));
    }
    Ok(out)
}

fn line(out: &mut String, cells: impl Iterator<Item = String>) {
    let cells: Vec<String> = cells.map(|c| quote(&c)).collect();
    out.push_str(&cells.join(","));
    out.push('\n');
}

/// A value as cell text: strings as they are, `null` and missing as empty, numbers and
/// booleans as JSON writes them, nested values as compact JSON.
fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => defuse(s),
        Some(other) => other.to_string(),
    }
}

/// A text cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab or CR
/// first) gets a leading `'`, so an imported report never executes what a caller wrote.
/// Numbers are never text here, so negative numbers are untouched.
fn defuse(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}

/// RFC 4180: quoted when it holds a comma, a quote or a line break; quotes doubled.
fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn items_become_rows_with_a_header() {
        let doc = json!({"from": "x", "items": [
            {"day": "2026-12-01", "task": null, "n": 3, "f": 1.5, "ok": true},
            {"day": "2026-12-02", "task": "a,\"b\"\nc", "n": -1, "f": 0.0, "extra": {"k": [1]}},
        ], "totals": {"n": 2}});
        assert_eq!(
            render(&doc).unwrap(),
            "day,task,n,f,ok,extra\n\
             2026-12-01,,3,1.5,true,\n\
             2026-12-02,\"a,\"\"b\"\"\nc\",-1,0.0,,\"{\"\"k\"\":[1]}\"\n"
        );
    }

    #[test]
    fn formulas_are_defused_and_non_lists_refused() {
        let doc = json!({"items": [{"a": "=cmd()", "b": "@x", "c": "é-ok"}]});
        assert_eq!(render(&doc).unwrap(), "a,b,c\n'=cmd(),'@x,é-ok\n");
        assert_eq!(render(&json!({"items": []})).unwrap(), "\n");
        assert_eq!(render(&json!({"id": 1})).unwrap_err().code(), "invalid");
    }
}
