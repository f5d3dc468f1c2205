//! Sending a command's HTTP twin to a server and reading its answer back as a document
//! or as the error a local run would have given.

use std::time::Duration;

use serde_json::Value;
use velu_core::{CoreError, CoreResult};

use super::call::{HttpCall, Verb};

/// Longest a request may take (a long list with `--all` takes one per page).
const TIMEOUT: Duration = Duration::from_secs(60);
/// Pages `--all` follows at most (200 items each: 2 million items).
const MAX_PAGES: usize = 10_000;

/// A server and the key to call it with.
pub struct Remote {
    server: String,
    key: String,
    client: reqwest::Client,
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
    /// A client of `server` (an `http://` or `https://` URL) using `key`.
    pub fn new(server: &str, key: String) -> CoreResult<Remote> {
        let server = server.trim_end_matches('/').to_owned();
        if !(server.starts_with("http://") || server.starts_with("https://")) {
            return Err(CoreError::invalid(
                "server",
                format!("`{server}` is not an http:// or https:// URL"),
            ));
        }
        let key = key.trim().to_owned();
        if key.is_empty() {
            return Err(CoreError::Config(
                "remote mode needs an API key: set VELU_API_KEY or --key-file".into(),
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .user_agent(concat!("velu-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(CoreError::internal)?;
        Ok(Remote {
            server,
            key,
            client,
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
        let url = format!("{}{}", self.server, call.path_and_query());
        let method = match call.verb {
            Verb::Get => reqwest::Method::GET,
            Verb::Post => reqwest::Method::POST,
            Verb::Put => reqwest::Method::PUT,
            Verb::Delete => reqwest::Method::DELETE,
        };
        let mut request = self
            .client
            .request(method, &url)
            .bearer_auth(&self.key)
            .header("accept", "application/json");
        if let Some(body) = &call.body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let unreachable = |e: reqwest::Error| {
            CoreError::Unavailable(format!("cannot reach {}: {e}", self.server))
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let text = response.text().await.map_err(unreachable)?;
        let parsed: Option<Value> = serde_json::from_str(&text).ok();
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
                code: code.to_owned(),
                detail: detail.to_owned(),
            }),
            None => Err(CoreError::Unavailable(format!(
                "{url}: HTTP {status} without a problem body (is this a Velu server?)"
            ))
            .into()),
        }
    }
}
