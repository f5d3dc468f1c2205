//! The `Examples:` section of every command's help (and of docs/cli.md and the man
//! pages), kept in one table so a test can check that each command has one and that every
//! example parses.

use clap::Command;

/// `(command path, example command lines)`, one row per leaf command.
pub const EXAMPLES: &[(&str, &[&str])] = &[
    (
        "org create",
        &["velu-cli org create --name \"Acme Corp\" --slug acme --plan hero"],
    ),
    (
        "org bootstrap",
        &[
            "velu-cli org bootstrap --name \"Acme Corp\" --slug acme --plan hero --env-file acme.env",
            "velu-cli org bootstrap --name \"Acme Corp\" --slug acme --rotate -o json",
        ],
    ),
    (
        "org list",
        &[
            "velu-cli org list --q acme -o table",
            "velu-cli org list --all -q",
        ],
    ),
    ("org show", &["velu-cli org show acme --field plan"]),
    ("org set-plan", &["velu-cli org set-plan acme superhero"]),
    (
        "key create",
        &[
            "velu-cli key create --org acme --name ci --role builder --field token",
            "velu-cli key create --platform --name ops --scopes admin:orgs:manage,jobs:work",
        ],
    ),
    (
        "key list",
        &[
            "velu-cli key list --org acme -o table",
            "velu-cli key list --platform",
        ],
    ),
    ("key show", &["velu-cli key show \"$KEY_ID\" --org acme"]),
    (
        "key revoke",
        &["velu-cli key revoke \"$KEY_ID\" --org acme"],
    ),
    (
        "key rotate",
        &["velu-cli key rotate \"$KEY_ID\" --org acme --grace 1h --field token"],
    ),
    (
        "key import",
        &["velu-cli key import --org acme --name legacy --scopes jobs:read --hash \"$OLD_HASH\""],
    ),
    ("plan list", &["velu-cli plan list -o table"]),
    ("plan show", &["velu-cli plan show hero --field limits"]),
    (
        "job submit",
        &[
            "velu-cli job submit --org acme --task echo --payload '{\"hello\": \"world\"}'",
            "velu-cli job submit --org acme --task plan --payload @goal.json --wait --timeout 10m",
        ],
    ),
    (
        "job submit-batch",
        &["velu-cli job submit-batch --org acme --file jobs.jsonl"],
    ),
    (
        "job list",
        &[
            "velu-cli job list --org acme --status failed -o table",
            "velu-cli job list --org acme --task echo --all -q",
        ],
    ),
    (
        "job show",
        &["velu-cli job show \"$JOB_ID\" --org acme --field status"],
    ),
    (
        "job cancel",
        &["velu-cli job cancel \"$JOB_ID\" --org acme"],
    ),
    ("job retry", &["velu-cli job retry \"$JOB_ID\" --org acme"]),
    ("job stats", &["velu-cli job stats --org acme"]),
    (
        "job events",
        &[
            "velu-cli job events 01a2f0c4-7b1e-7c3d-9f00-5a1b2c3d4e5f --org acme",
            "velu-cli job events 01a2f0c4-7b1e-7c3d-9f00-5a1b2c3d4e5f --org acme --after 12 --limit 50 -o json",
        ],
    ),
    (
        "job watch",
        &[
            "velu-cli job watch 01a2f0c4-7b1e-7c3d-9f00-5a1b2c3d4e5f --org acme",
            "velu-cli job watch 01a2f0c4-7b1e-7c3d-9f00-5a1b2c3d4e5f --org acme --timeout 15m -o json",
        ],
    ),
    (
        "schedule create",
        &[
            "velu-cli schedule create --org acme --task echo --cron '*/5 * * * *'",
            "velu-cli schedule create --org acme --task plan --cron '0 9 * * 1-5' --timezone Europe/Paris --payload '{\"goal\": \"standup\"}'",
        ],
    ),
    (
        "schedule list",
        &["velu-cli schedule list --org acme -o table"],
    ),
    (
        "schedule show",
        &["velu-cli schedule show \"$SCHEDULE_ID\" --org acme"],
    ),
    (
        "schedule pause",
        &["velu-cli schedule pause \"$SCHEDULE_ID\" --org acme"],
    ),
    (
        "schedule resume",
        &["velu-cli schedule resume \"$SCHEDULE_ID\" --org acme"],
    ),
    (
        "schedule delete",
        &["velu-cli schedule delete \"$SCHEDULE_ID\" --org acme"],
    ),
    (
        "secret set",
        &[
            "printf %s \"$GITHUB_TOKEN\" | velu-cli secret set GITHUB_TOKEN --org acme",
            "velu-cli secret set DEPLOY_KEY --org acme --from-file ./deploy_key",
        ],
    ),
    ("secret list", &["velu-cli secret list --org acme -o table"]),
    (
        "secret delete",
        &["velu-cli secret delete GITHUB_TOKEN --org acme"],
    ),
    (
        "secret rekey",
        &[
            "VELU_SECRETS_KEY_FILE=/etc/velu/secrets.key velu-cli secret rekey --new-key-file /etc/velu/secrets.key.new",
        ],
    ),
    ("task list", &["velu-cli task list -o table"]),
    (
        "task pause",
        &["velu-cli task pause execute --reason \"sandbox upgrade\""],
    ),
    ("task resume", &["velu-cli task resume execute"]),
    ("queue show", &["velu-cli queue show --org acme"]),
    (
        "queue pause",
        &["velu-cli queue pause --org acme --reason \"runaway jobs\""],
    ),
    ("queue resume", &["velu-cli queue resume --org acme"]),
    ("retention show", &["velu-cli retention show --org acme"]),
    (
        "retention run",
        &[
            "velu-cli retention run --org acme",
            "velu-cli retention run --max-jobs 1000000",
        ],
    ),
    (
        "audit list",
        &["velu-cli audit list --org acme --limit 20 -o table"],
    ),
    (
        "usage",
        &[
            "velu-cli usage --org acme --from 2026-12-01 --to 2026-12-31",
            "velu-cli usage --from 2026-12-01 --to 2026-12-31 -o csv > usage-2026-12.csv",
        ],
    ),
    (
        "whoami",
        &[
            "velu-cli whoami",
            "VELU_API_KEY=\"$VELU_ADMIN_KEY\" velu-cli whoami",
        ],
    ),
    (
        "migrate up",
        &["VELU_DATABASE_URL=postgres://velu@db/velu velu-cli migrate up"],
    ),
    ("migrate status", &["velu-cli migrate status"]),
    (
        "serve",
        &[
            "velu-cli serve",
            "velu-cli serve --addr 0.0.0.0:8001 --metrics-addr 127.0.0.1:9464",
        ],
    ),
    (
        "worker",
        &[
            "velu-cli --tasks-file tasks.yaml worker --concurrency 8",
            "VELU_API_KEY=\"$WORKER_KEY\" velu-cli --server https://velu.example worker",
        ],
    ),
    ("worker list", &["velu-cli worker list -o table"]),
    (
        "billing sign",
        &["velu-cli billing sign --secret-file billing.secret --body event.json --field signature"],
    ),
    (
        "billing verify",
        &[
            "cat event.json | velu-cli billing verify --secret-file billing.secret --signature \"$SIG\"",
        ],
    ),
    ("docs openapi", &["velu-cli docs openapi > openapi.json"]),
    ("docs cli", &["velu-cli docs cli > cli.md"]),
    (
        "completions",
        &["velu-cli completions bash > ~/.local/share/bash-completion/completions/velu-cli"],
    ),
    ("context list", &["velu-cli context list -o table"]),
    ("context show", &["velu-cli context show prod"]),
    ("context use", &["velu-cli context use prod"]),
    (
        "context set",
        &[
            "velu-cli context set prod --to-server https://velu.example --to-key-file ~/.velu/prod.key --to-org acme",
            "velu-cli context set dev --to-home ~/velu-dev --to-org test",
        ],
    ),
    ("context delete", &["velu-cli context delete dev"]),
];

/// `cmd` with each command's examples as the end of its help.
pub fn attach(cmd: Command) -> Command {
    attach_at(cmd, "")
}

fn attach_at(mut cmd: Command, path: &str) -> Command {
    if let Some((_, lines)) = EXAMPLES.iter().find(|(p, _)| *p == path) {
        let text: String = lines.iter().map(|l| format!("  {l}\n")).collect();
        cmd = cmd.after_help(format!("Examples:\n{}", text.trim_end()));
    }
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    for name in names {
        let sub_path = if path.is_empty() {
            name.clone()
        } else {
            format!("{path} {name}")
        };
        cmd = cmd.mut_subcommand(name, |sub| attach_at(sub, &sub_path));
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every leaf command's path, e.g. `org bootstrap`.
    fn leaves(cmd: &Command, path: &str, out: &mut Vec<String>) {
        let subs: Vec<_> = cmd
            .get_subcommands()
            .filter(|s| s.get_name() != "help" && !s.is_hide_set())
            .collect();
        if subs.is_empty() || cmd.is_args_conflicts_with_subcommands_set() {
            out.push(path.trim().to_owned());
        }
        for sub in subs {
            leaves(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn every_command_has_examples_and_every_example_parses() {
        let mut paths = Vec::new();
        leaves(&crate::command(), "", &mut paths);
        for path in &paths {
            assert!(
                EXAMPLES.iter().any(|(p, _)| p == path),
                "`velu-cli {path}` has no examples in examples.rs"
            );
        }
        for (path, lines) in EXAMPLES {
            assert!(
                paths.contains(&(*path).to_owned()),
                "examples for unknown `{path}`"
            );
            for line in *lines {
                // Drop leading VAR=value assignments; split like a shell would, roughly.
                let words: Vec<String> = shell_words(line)
                    .into_iter()
                    .skip_while(|w| !w.starts_with("velu-cli"))
                    .collect();
                let parsed = crate::command().try_get_matches_from(&words);
                let mut at = match parsed {
                    Ok(m) => m,
                    Err(e) => panic!("`{line}` does not parse: {e}"),
                };
                let mut ran = Vec::new();
                while let Some((name, sub)) = at.subcommand() {
                    ran.push(name.to_owned());
                    at = sub.clone();
                }
                assert_eq!(ran.join(" "), *path, "`{line}` runs another command");
            }
        }
    }

    /// Splits on spaces outside single or double quotes, and drops the quotes.
    fn shell_words(line: &str) -> Vec<String> {
        let mut words = Vec::new();
        let (mut word, mut quote) = (String::new(), None);
        for c in line.chars() {
            match (quote, c) {
                (None, '\'' | '"') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, ' ') => {
                    if !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                }
                (None, '>') => break,
                _ => word.push(c),
            }
        }
        if !word.is_empty() {
            words.push(word);
        }
        words
    }
}
