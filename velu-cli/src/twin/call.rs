//! The HTTP twin of a command: method, path segments, query, body.

use serde_json::Value;
use velu_core::{CoreError, CoreResult};

/// The methods the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
}

impl Verb {
    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Put => "PUT",
            Verb::Delete => "DELETE",
        }
    }
}

/// One request of the API, as a command describes its twin.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpCall {
    /// The method.
    pub verb: Verb,
    /// Path segments, unencoded (`["v1", "orgs", "acme"]`): each is percent-encoded.
    pub segments: Vec<String>,
    /// Query parameters, unencoded; `None` values are left out.
    pub query: Vec<(&'static str, Option<String>)>,
    /// The JSON body, if any.
    pub body: Option<Value>,
    /// Follow `next_cursor` and merge the pages into one list (`--all`).
    pub all_pages: bool,
}

impl HttpCall {
    /// A call of `verb` on `/` + `segments` joined, with no query or body.
    pub fn new<S: Into<String>>(verb: Verb, segments: impl IntoIterator<Item = S>) -> HttpCall {
        HttpCall {
            verb,
            segments: segments.into_iter().map(Into::into).collect(),
            query: Vec::new(),
            body: None,
            all_pages: false,
        }
    }

    /// A `GET`.
    pub fn get<S: Into<String>>(segments: impl IntoIterator<Item = S>) -> HttpCall {
        HttpCall::new(Verb::Get, segments)
    }

    /// A `POST` with `body` (`None`: no body).
    pub fn post<S: Into<String>>(
        segments: impl IntoIterator<Item = S>,
        body: Option<Value>,
    ) -> HttpCall {
        HttpCall {
            body,
            ..HttpCall::new(Verb::Post, segments)
        }
    }

    /// Adds a query parameter (left out when `None`).
    pub fn query(mut self, name: &'static str, value: Option<String>) -> HttpCall {
        self.query.push((name, value));
        self
    }

    /// Refuses ids no route can carry: empty, `.` or `..` (URL parsers fold the last two
    /// away, even percent-encoded, which would send the request to another route).
    pub fn check(&self) -> CoreResult<()> {
        for segment in &self.segments {
            let dots = segment.to_ascii_lowercase().replace("%2e", ".");
            if segment.is_empty() || dots == "." || dots == ".." {
                return Err(CoreError::invalid(
                    "id",
                    format!("`{segment}` cannot be sent as part of a URL path"),
                ));
            }
        }
        Ok(())
    }

    /// The percent-encoded path and query, e.g. `/v1/orgs/acme/jobs?limit=50`.
    pub fn path_and_query(&self) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            out.push('/');
            out.push_str(&encode(segment));
        }
        let mut sep = '?';
        for (name, value) in &self.query {
            if let Some(value) = value {
                out.push(sep);
                out.push_str(name);
                out.push('=');
                out.push_str(&encode(value));
                sep = '&';
            }
        }
        out
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so a segment or a
/// query value can never add a path level, a parameter, or a shell metacharacter.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_and_values_are_encoded_so_they_cannot_escape() {
        let call = HttpCall::get(["v1", "orgs", "a/../b c", "jobs"])
            .query("status", Some("queued".into()))
            .query("task", None)
            .query("q", Some("x&limit=1$(id)é".into()));
        assert_eq!(
            call.path_and_query(),
            "/v1/orgs/a%2F..%2Fb%20c/jobs?status=queued&q=x%26limit%3D1%24%28id%29%C3%A9"
        );
    }

    #[test]
    fn dot_segments_are_refused() {
        for bad in ["", ".", "..", ".%2E", "%2e%2E"] {
            let call = HttpCall::get(["v1", "orgs", bad]);
            assert_eq!(call.check().unwrap_err().code(), "invalid", "{bad:?}");
        }
        assert!(HttpCall::get(["v1", "orgs", "a..b"]).check().is_ok());
    }
}
