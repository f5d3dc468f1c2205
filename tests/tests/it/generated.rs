//! Generated artifacts users rely on are committed; these tests fail when they drift.
//! Regenerate with `just docs` (or VELU_UPDATE_DOCS=1 cargo test -p velu-tests generated).

use std::path::Path;

use velu_tests::workspace_root;

fn check(relative: &str, fresh: &str) {
    let path = workspace_root().join(relative);
    if std::env::var_os("VELU_UPDATE_DOCS").is_some() {
        std::fs::write(&path, fresh).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "{} is stale; regenerate it with `just docs` (VELU_UPDATE_DOCS=1 cargo test -p velu-tests generated)",
        Path::new(relative).display()
    );
}

#[test]
fn openapi_spec_is_committed() {
    check("docs/openapi.json", &(velu_http::openapi_json() + "\n"));
}

#[test]
fn cli_reference_is_committed() {
    use clap::CommandFactory;
    check(
        "docs/cli.md",
        &velu_cli::reference::markdown(&velu_cli::Cli::command()),
    );
}

/// docs/errors.md lists every code with the status and exit code the tables give it.
#[test]
fn error_tables_are_documented() {
    let text = std::fs::read_to_string(workspace_root().join("docs/errors.md")).unwrap();
    for (code, status, _) in velu_http::problem::HTTP_STATUS {
        let exit = velu_cli::exit_codes::EXIT_CODES
            .iter()
            .find(|(c, _)| c == code)
            .map(|(_, e)| e.to_string())
            .unwrap_or_else(|| "-".into());
        let row = format!("| `{code}` | {status} | {exit} |");
        assert!(text.contains(&row), "docs/errors.md lacks the row `{row}`");
    }
}

/// Each secured operation says which scope it needs.
#[test]
fn secured_operations_name_their_scope() {
    let spec: serde_json::Value = serde_json::from_str(&velu_http::openapi_json()).unwrap();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            if op.get("security").is_none() {
                continue;
            }
            let text = format!(
                "{} {}",
                op["summary"].as_str().unwrap_or(""),
                op["description"].as_str().unwrap_or("")
            )
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
            assert!(
                text.contains("Scope: `")
                    || text.contains("Any valid key")
                    || text.contains("needs `"),
                "{method} {path} does not name its scope: {text}"
            );
        }
    }
}
