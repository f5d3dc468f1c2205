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
    check(
        "docs/cli.md",
        &velu_cli::reference::markdown(&velu_cli::command()),
    );
}

/// docs/man/ holds exactly the pages clap_mangen makes, one per command; each renders.
#[test]
fn man_pages_are_committed() {
    let pages = velu_cli::reference::man_pages(&velu_cli::command());
    assert!(
        pages
            .iter()
            .any(|(name, _)| name == "velu-cli-org-bootstrap.1")
    );
    let dir = workspace_root().join("docs/man");
    let names: std::collections::BTreeSet<_> = pages.iter().map(|(n, _)| n.clone()).collect();
    if std::env::var_os("VELU_UPDATE_DOCS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".1") && !names.contains(&name) {
                std::fs::remove_file(&path).unwrap();
            }
        }
    }
    for (name, page) in &pages {
        check(&format!("docs/man/{name}"), page);
    }
    let committed: std::collections::BTreeSet<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".1"))
        .collect();
    assert_eq!(
        committed, names,
        "docs/man/ has pages of no command; regenerate with `just docs`"
    );
    let man = std::process::Command::new("man").arg("--version").output();
    if !man.is_ok_and(|o| o.status.success()) {
        eprintln!("note: man is not installed; the pages were not rendered");
        return;
    }
    for name in [
        "velu-cli.1",
        "velu-cli-org-bootstrap.1",
        "velu-cli-key-create.1",
    ] {
        let out = std::process::Command::new("man")
            .arg("-l")
            .arg(dir.join(name))
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && !text.trim().is_empty(),
            "man -l {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
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
    for (_, name, exit) in velu_cli::exit_codes::WAIT_EXIT_CODES {
        let row = format!("| `{name}` | {exit} |");
        assert!(
            text.contains(&row),
            "docs/errors.md lacks the --wait row `{row}`"
        );
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
