//! Sending a command's HTTP twin to a server and reading its answer back as a document
//! or as the error a local run would have given.

use std::time::Duration;

use serde_json::Value;
use velu_core::{CoreError, CoreResult};

use super::call::{HttpCall, Verb};
use crate::remote::{Client, printable};

/// Longest a request may take (a long list with `--all` takes one per page).
const TIMEOUT: Duration = Duration::from_secs(60);
/// Pages `--all` follows at most (200 items each: 2 million items).
const MAX_PAGES: usize = 10_000;

/// A server and the key to call it with (the CLI's one HTTP client, `remote::Client`).
pub struct Remote {
    client: Client,
}

/// What a remote call can end with besides a document: the server's problem (its code and
/// detail, printed exactly like the local error), or a failure of our own.
#[derive(Debug)]
pub enum RemoteFailure {
    /// The server answered with a problem body.
    Problem {
        /// Its stable `code`.
        code: String,
        /// Its `detail`.
        detail: String,
    },
    /// The request could not be made or its answer read.
    Core(CoreError),
}

impl From<CoreError> for RemoteFailure {
    fn from(e: CoreError) -> Self {
        RemoteFailure::Core(e)
    }
}

impl Remote {
    /// A client of `server` (an `http://` or `https://` URL) using `key`, trusting servers
    /// as `trust` says.
    pub fn new(server: &str, key: String, trust: &crate::remote::Trust) -> CoreResult<Remote> {
        Ok(Remote {
            client: Client::new(server, &key, trust)?,
        })
    }

    /// Sends `call` and returns the document, merging pages for `--all`.
    pub async fn send(&self, call: &HttpCall) -> Result<Value, RemoteFailure> {
        call.check()?;
        if !call.all_pages {
            return self.once(call).await;
        }
        let mut items = Vec::new();
        let mut page = call.clone();
        for _ in 0..MAX_PAGES {
            let doc = self.once(&page).await?;
            items.extend(doc["items"].as_array().cloned().unwrap_or_default());
            match doc["next_cursor"].as_str() {
                Some(next) => {
                    page.query.retain(|(name, _)| *name != "cursor");
                    page.query.push(("cursor", Some(next.to_owned())));
                }
                None => return Ok(serde_json::json!({"items": items, "next_cursor": null})),
            }
        }
        Err(CoreError::internal(format!("more than {MAX_PAGES} pages")).into())
    }

    async fn once(&self, call: &HttpCall) -> Result<Value, RemoteFailure> {
        let path = call.path_and_query();
        let url = format!("{}{path}", self.client.server());
        let method = match call.verb {
            Verb::Get => reqwest::Method::GET,
            Verb::Post => reqwest::Method::POST,
            Verb::Put => reqwest::Method::PUT,
            Verb::Delete => reqwest::Method::DELETE,
        };
        let body = call.body.as_ref().map(|b| b.to_string().into_bytes());
        let (status, text) = self.client.request(method, &path, body, TIMEOUT).await?;
        let parsed: Option<Value> = serde_json::from_slice(&text).ok();
        if status.is_success() {
            return parsed.ok_or_else(|| {
                CoreError::internal(format!("{url}: the answer is not JSON")).into()
            });
        }
        match parsed
            .as_ref()
            .and_then(|p| Some((p["code"].as_str()?, p["detail"].as_str()?)))
        {
            Some((code, detail)) => Err(RemoteFailure::Problem {
                code: problem_code(code),
                detail: printable(detail),
            }),
            None => Err(CoreError::Unavailable(format!(
                "{url}: HTTP {status} without a problem body (is this a Velu server?)"
            ))
            .into()),
        }
    }
}

/// A problem's `code` as the CLI reports it (its exit status derives from it): a server's
/// code of the documented shape, anything else `internal`.
fn problem_code(code: &str) -> String {
    let shaped =
        (1..=64).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    if shaped { code } else { "internal" }.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_code_of_another_shape_is_internal() {
        assert_eq!(problem_code("not_found"), "not_found");
        for odd in ["", "NOT_FOUND", "x\u{1b}", "a-b", &"a".repeat(65)] {
            assert_eq!(problem_code(odd), "internal", "{odd:?}");
        }
    }
}
