//! Printing documents: exactly one YAML (or JSON) document on stdout, errors on stderr.
//! `yaml.rs` keeps YAML readable the same by YAML 1.1 readers, `select.rs` narrows a
//! document for scripts (`-q`, `--field`), `table.rs` draws `-o table`, `csv.rs` writes
//! `-o csv` (list documents only).

mod csv;
mod select;
mod table;
mod yaml;

use std::io::{self, Write};

use clap::ValueEnum;
use serde::Serialize;
use velu_core::CoreError;

pub use yaml::quote_for_yaml11;

/// The format of the document on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// YAML (the default).
    #[default]
    Yaml,
    /// JSON, pretty-printed.
    Json,
    /// Aligned columns for people (lists as rows; not for scripts).
    Table,
    /// A list's items as CSV, one header line (list documents only; e.g. `velu-cli usage`).
    Csv,
}

/// What part of a document to print.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Only the ids, one per line (`-q/--quiet`).
    pub quiet: bool,
    /// Only the value at this dotted path (`--field job.status`).
    pub field: Option<String>,
}

/// Renders a document in `format`, ending with a newline.
pub fn render<T: Serialize>(doc: &T, format: Format) -> Result<String, CoreError> {
    render_selected(doc, format, &Selection::default())
}

/// Renders the part of `doc` that `selection` picks, in `format`. Ids and scalar fields
/// print bare, one per line, whatever the format.
pub fn render_selected<T: Serialize>(
    doc: &T,
    format: Format,
    selection: &Selection,
) -> Result<String, CoreError> {
    if selection == &Selection::default() {
        return render_value(doc, format);
    }
    let value = serde_json::to_value(doc).map_err(CoreError::internal)?;
    if selection.quiet {
        return Ok(select::ids(&value)
            .iter()
            .map(|id| format!("{id}\n"))
            .collect());
    }
    let path = selection.field.as_deref().unwrap_or_default();
    let picked = select::field(&value, path)?;
    match select::scalar_text(picked) {
        Some(text) => Ok(format!("{text}\n")),
        None => render_value(picked, format),
    }
}

fn render_value<T: Serialize>(doc: &T, format: Format) -> Result<String, CoreError> {
    let text = match format {
        Format::Yaml => quote_for_yaml11(&serde_yaml::to_string(doc).map_err(CoreError::internal)?),
        Format::Json => {
            let mut s = serde_json::to_string_pretty(doc).map_err(CoreError::internal)?;
            s.push('\n');
            s
        }
        Format::Table => table::render(&serde_json::to_value(doc).map_err(CoreError::internal)?),
        Format::Csv => csv::render(&serde_json::to_value(doc).map_err(CoreError::internal)?)?,
    };
    Ok(text)
}

/// Writes `text` to `out`. A closed pipe (`velu-cli ... | head`) is not an error.
pub fn write_quietly(out: &mut dyn Write, text: &str) -> io::Result<()> {
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// The stderr line for an error: `error[<code>]: <detail>`.
pub fn error_line(err: &CoreError) -> String {
    format!("error[{}]: {err}\n", err.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_list_is_items_brackets() {
        // velu-core's own page type, as every list command prints it.
        let doc = velu_core::pagination::Page::<velu_core::keys::ApiKey> {
            items: vec![],
            next_cursor: None,
        };
        assert_eq!(
            render(&doc, Format::Yaml).unwrap(),
            "items: []\nnext_cursor: null\n"
        );
        let json: serde_json::Value =
            serde_json::from_str(&render(&doc, Format::Json).unwrap()).unwrap();
        assert_eq!(json, serde_json::json!({"items": [], "next_cursor": null}));
    }

    #[test]
    fn error_line_names_the_code() {
        let err = CoreError::not_found("organization", "acme");
        assert_eq!(
            error_line(&err),
            "error[not_found]: organization `acme` not found\n"
        );
    }
}
