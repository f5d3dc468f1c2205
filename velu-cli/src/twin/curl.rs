//! `--print-http`: a command's HTTP twin as a curl command line a shell can run. The key
//! is `$VELU_API_KEY` (never the secret); the server is the `--server` given, else
//! `$VELU_SERVER`.

use super::call::HttpCall;

/// The curl command line for `call` against `server` (`None`: `$VELU_SERVER`).
pub fn curl_command(call: &HttpCall, server: Option<&str>) -> String {
    let base = match server {
        Some(url) => shell_quote(url.trim_end_matches('/')),
        None => "\"$VELU_SERVER\"".to_owned(),
    };
    let mut words = vec![
        "curl".to_owned(),
        "-sS".to_owned(),
        "--fail-with-body".to_owned(),
        "-X".to_owned(),
        call.verb.as_str().to_owned(),
        "-H".to_owned(),
        "\"Authorization: Bearer $VELU_API_KEY\"".to_owned(),
    ];
    if let Some(body) = &call.body {
        words.push("-H".to_owned());
        words.push(shell_quote("Content-Type: application/json"));
        words.push("--data-binary".to_owned());
        words.push(shell_quote(&body.to_string()));
    }
    // The path and query are percent-encoded: nothing in them is special to a shell.
    words.push(format!("{base}{}", shell_quote(&call.path_and_query())));
    let mut line = words.join(" ");
    if call.all_pages {
        line.push_str("\n# --all: repeat with &cursor=<next_cursor> until next_cursor is null");
    }
    line.push('\n');
    line
}

/// `text` in single quotes, each `'` written as `'\''`.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn bodies_are_quoted_and_the_key_is_a_variable() {
        let call = HttpCall::post(
            ["v1", "orgs", "acme", "jobs"],
            Some(json!({"payload": "it's $(x)"})),
        );
        let line = curl_command(&call, None);
        assert_eq!(
            line,
            "curl -sS --fail-with-body -X POST -H \"Authorization: Bearer $VELU_API_KEY\" \
             -H 'Content-Type: application/json' --data-binary '{\"payload\":\"it'\\''s $(x)\"}' \
             \"$VELU_SERVER\"'/v1/orgs/acme/jobs'\n"
        );
        let explicit = curl_command(&HttpCall::get(["v1", "plans"]), Some("http://h:1/"));
        assert!(
            explicit.ends_with("'http://h:1''/v1/plans'\n"),
            "{explicit}"
        );
    }
}
