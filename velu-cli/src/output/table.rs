//! `-o table`: lists as aligned columns, other documents as `FIELD  VALUE` rows, for
//! people reading a terminal (scripts should read YAML or JSON).

use serde_json::Value;

use super::select::scalar_text;

/// Columns wider than this are cut, with `…`.
const MAX_CELL: usize = 48;
/// A list shows at most this many columns (the first ones with a value to show).
const MAX_COLUMNS: usize = 8;

/// Renders `doc` as a table: the scalar fields of a list's items as columns (in the
/// first item's order), or the scalar fields of a document as rows. Nested objects and
/// lists show as `{…}` / `[n]`.
pub fn render(doc: &Value) -> String {
    if let Some(items) = doc.get("items").and_then(Value::as_array) {
        if items.is_empty() {
            return "(no items)\n".to_owned();
        }
        // The first item's fields, in order, leaving out those that are empty or nested
        // in every row (a table is for scalars; `-o yaml` shows everything).
        let shown = |c: &String| {
            items.iter().any(|item| match item.get(c) {
                None | Some(Value::Null | Value::Object(_) | Value::Array(_)) => false,
                Some(Value::String(s)) => !s.is_empty(),
                Some(_) => true,
            })
        };
        let columns: Vec<String> = items
            .first()
            .and_then(Value::as_object)
            .map(|first| {
                first
                    .keys()
                    .filter(|c| shown(c))
                    .take(MAX_COLUMNS)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let header = columns.iter().map(|c| c.to_uppercase()).collect();
        let rows = items
            .iter()
            .map(|item| columns.iter().map(|c| cell(item.get(c))).collect());
        let mut text = align(std::iter::once(header).chain(rows).collect());
        if let Some(cursor) = doc.get("next_cursor").and_then(Value::as_str) {
            text.push_str(&format!("(more: --cursor {cursor})\n"));
        }
        return text;
    }
    match doc.as_object() {
        Some(map) => align(
            std::iter::once(vec!["FIELD".to_owned(), "VALUE".to_owned()])
                .chain(map.iter().map(|(k, v)| vec![k.clone(), cell(Some(v))]))
                .collect(),
        ),
        None => format!("{}\n", cell(Some(doc))),
    }
}

/// One cell: a scalar's text on one line, cut to [`MAX_CELL`] characters.
fn cell(v: Option<&Value>) -> String {
    let text = match v {
        None => String::new(),
        Some(Value::Array(items)) => format!("[{}]", items.len()),
        Some(Value::Object(_)) => "{…}".to_owned(),
        Some(v) => scalar_text(v).unwrap_or_default(),
    };
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() > MAX_CELL {
        let cut: String = one_line.chars().take(MAX_CELL - 1).collect();
        format!("{cut}…")
    } else {
        one_line
    }
}

/// Pads every column to its widest cell, two spaces apart.
fn align(rows: Vec<Vec<String>>) -> String {
    let width = |i: usize| {
        rows.iter()
            .filter_map(|r| r.get(i))
            .map(|c| c.chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len)).map(width).collect();
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, c) in row.iter().enumerate() {
            line.push_str(c);
            if i + 1 < row.len() {
                line.extend(std::iter::repeat_n(' ', widths[i] - c.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn lists_become_aligned_columns_of_scalars() {
        let doc = json!({"items": [{"id": "a", "status": "queued", "payload": {"x": 1}, "error": null, "n": 1},
                                   {"id": "bbbb", "status": "succeeded", "payload": {}, "error": null, "n": 22}],
                         "next_cursor": "c1"});
        assert_eq!(
            render(&doc),
            "ID    STATUS     N\na     queued     1\nbbbb  succeeded  22\n(more: --cursor c1)\n"
        );
        let wide: serde_json::Map<String, Value> =
            (0..20).map(|i| (format!("c{i:02}"), json!(i))).collect();
        let text = render(&json!({"items": [wide]}));
        assert_eq!(
            text.lines().next().unwrap().split_whitespace().count(),
            MAX_COLUMNS
        );
    }

    #[test]
    fn documents_become_field_rows_and_long_or_multiline_cells_are_tamed() {
        let long = "x".repeat(100);
        let doc = json!({"id": "j", "output": format!("a\nb{long}"), "tags": [1, 2]});
        let text = render(&doc);
        assert!(text.starts_with("FIELD   VALUE\nid      j\n"), "{text}");
        assert!(text.contains("output  a b"), "{text}");
        assert!(text.contains("…\ntags    [2]\n"), "{text}");
        assert_eq!(render(&json!({"items": []})), "(no items)\n");
    }
}
