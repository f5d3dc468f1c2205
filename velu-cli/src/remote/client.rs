//! The CLI's one HTTP client of a Velu server, the key as a bearer token: the transport
//! ([`Client::request`], which remote mode's `twin/` also sends through) and the worker
//! protocol's typed calls, every failure turned into the `CoreError` a local worker would
//! have met (an unreachable or overloaded server is `unavailable`, which the loop retries).

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use velu_core::{CoreError, CoreResult};

use super::{Trust, printable};

/// Longest an ordinary protocol call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer read from a server: far above the API's largest page, far below what
/// would take the machine's memory.
const MAX_ANSWER: usize = 64 << 20;

/// `error` and its causes, outermost first (reqwest's own text names the URL, not why:
/// a refused certificate, a refused connection), with a hint where a certificate was
/// refused. Never holds the key: no cause carries a request's headers.
fn causes(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        let said = inner.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = inner.source();
    }
    if text.contains("certificate") {
        text.push_str(
            " (a server whose certificate a private authority signed needs that authority \
             in --ca-file; the name in the URL must be one the certificate names)",
        );
    }
    printable(&text)
}

/// A Velu server and the worker key to call it with.
pub struct Client {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl Client {
    /// A client of `server` (an `http://` or `https://` URL) with `key`, trusting servers
    /// as `trust` says (plain `http://` only to this machine unless it allows more).
    pub fn new(server: &str, key: &str, trust: &Trust) -> CoreResult<Client> {
        let base = server.trim_end_matches('/').to_owned();
        trust.check_server(&base)?;
        let key = key.trim();
        if key.is_empty() {
            return Err(CoreError::Config(
                "remote mode needs an API key: set VELU_API_KEY or --key-file".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            // A redirect is answered, never followed: followed, it would carry the key (to
            // the same host over plain http, say) and the body somewhere not asked for.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("velu-cli/", env!("CARGO_PKG_VERSION")));
        let http = trust
            .configure(&base, http)?
            .build()
            .map_err(CoreError::internal)?;
        Ok(Client {
            base,
            key: key.to_owned(),
            http,
        })
    }

    /// The server's address.
    pub fn server(&self) -> &str {
        &self.base
    }

    /// Sends `method path` (path and query already encoded) with `body` as JSON, the key
    /// and `Accept: application/json`, within `timeout`; returns the status and the body
    /// (at most [`MAX_ANSWER`] bytes: a longer one is `internal`). A server that cannot be
    /// reached, or breaks off, is `unavailable`.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> CoreResult<(reqwest::StatusCode, Vec<u8>)> {
        let unreachable = |e: reqwest::Error| {
            CoreError::Unavailable(format!("cannot reach {}: {}", self.base, causes(&e)))
        };
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .header("accept", "application/json")
            .timeout(timeout);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let mut response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let mut answer = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if answer.len() + chunk.len() > MAX_ANSWER {
                return Err(CoreError::internal(format!(
                    "{}: an answer over {} MiB (is this a Velu server?)",
                    self.base,
                    MAX_ANSWER >> 20
                )));
            }
            answer.extend_from_slice(&chunk);
        }
        Ok((status, answer))
    }

    /// `GET path`.
    pub async fn get<O: DeserializeOwned>(&self, path: &str) -> CoreResult<O> {
        let body = self
            .answer(reqwest::Method::GET, path, None, CALL_TIMEOUT)
            .await?;
        self.decode(&body)
    }

    /// `POST path` with `body` as JSON, allowed `extra` time beyond the usual timeout (a
    /// long poll).
    pub async fn post<I: Serialize, O: DeserializeOwned>(
        &self,
        path: &str,
        body: &I,
        extra: Duration,
    ) -> CoreResult<O> {
        let json = serde_json::to_vec(body).map_err(CoreError::internal)?;
        let timeout = CALL_TIMEOUT + extra;
        let answer = self
            .answer(reqwest::Method::POST, path, Some(json), timeout)
            .await?;
        self.decode(&answer)
    }

    /// `POST path` with `body`, for routes answering `204 No Content`.
    pub async fn post_empty<I: Serialize>(&self, path: &str, body: &I) -> CoreResult<()> {
        let json = serde_json::to_vec(body).map_err(CoreError::internal)?;
        self.answer(reqwest::Method::POST, path, Some(json), CALL_TIMEOUT)
            .await
            .map(drop)
    }

    fn decode<O: DeserializeOwned>(&self, body: &[u8]) -> CoreResult<O> {
        serde_json::from_slice(body).map_err(|e| {
            CoreError::internal(format!(
                "{}: the answer does not fit the protocol: {e}",
                self.base
            ))
        })
    }

    /// Sends a protocol call; the body of a success, or the error a problem body names.
    async fn answer(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> CoreResult<Vec<u8>> {
        let (status, body) = self.request(method, path, body, timeout).await?;
        if status.is_success() {
            return Ok(body);
        }
        Err(problem_error(status.as_u16(), &body, &self.base))
    }
}

/// The error a problem answer stands for, keyed by its stable `code` (docs/errors.md).
/// Whatever says "try later" (`unavailable`, `rate_limited`, a proxy's 5xx without a
/// problem body) is `unavailable`: the worker loop retries those.
fn problem_error(status: u16, body: &[u8], server: &str) -> CoreError {
    let problem: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    // The server's words reach the worker's log and terminal: plain and bounded.
    let detail = printable(problem["detail"].as_str().unwrap_or("no detail"));
    match problem["code"].as_str().map(printable).as_deref() {
        Some("unauthorized") => CoreError::Unauthorized,
        Some("forbidden") => CoreError::Forbidden { scope: detail },
        Some("invalid") => CoreError::Invalid {
            field: "body".into(),
            reason: detail,
        },
        Some("conflict") => CoreError::Conflict { message: detail },
        Some("not_found") => CoreError::NotFound {
            resource: "worker",
            id: detail,
        },
        Some("payload_too_large") => CoreError::Invalid {
            field: "results".into(),
            reason: detail,
        },
        Some("unavailable" | "rate_limited") => {
            CoreError::Unavailable(format!("server {server}: {detail}"))
        }
        Some(code) => CoreError::internal(format!("server {server}: {code}: {detail}")),
        None if status >= 500 || status == 429 => {
            CoreError::Unavailable(format!("server {server}: HTTP {status}"))
        }
        None => CoreError::internal(format!(
            "server {server}: HTTP {status} without a problem body (is this a Velu server?)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn try_later_answers_are_unavailable() {
        let body = br#"{"code": "rate_limited", "detail": "slow down"}"#;
        assert_eq!(problem_error(429, body, "s").code(), "unavailable");
        assert_eq!(problem_error(502, b"<html>", "s").code(), "unavailable");
        assert_eq!(problem_error(404, b"", "s").code(), "internal");
        let body = br#"{"code": "forbidden", "detail": "needs jobs:work"}"#;
        assert_eq!(problem_error(403, body, "s").code(), "forbidden");
    }

    /// A hostile server (or whoever answers in its place) writes into the worker's log and
    /// terminal only plain text of bounded length, whatever its problem says.
    #[test]
    fn a_server_problem_reaches_the_log_as_plain_bounded_text() {
        let escape = "\u{1b}]0;owned\u{7}\u{1b}[2J\n";
        let long = "x".repeat(100_000);
        for (code, detail) in [
            ("unavailable", escape),
            ("conflict", escape),
            ("invalid", long.as_str()),
            (escape, "odd code"),
            ("teapot", long.as_str()),
        ] {
            let body = serde_json::json!({"code": code, "detail": detail});
            let error = problem_error(409, body.to_string().as_bytes(), "s").to_string();
            assert!(!error.chars().any(char::is_control), "{code}: {error:?}");
            assert!(error.len() < 10_000, "{code}: {} bytes", error.len());
        }
    }
}
