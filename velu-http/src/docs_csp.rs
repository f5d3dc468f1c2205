//! The Content-Security-Policy of `/docs`: only the exact inline script and style blocks
//! of the Swagger UI page may run (by SHA-256), and it may fetch only from this origin.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

fn inline_blocks<'a>(html: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find(&open) {
        let after_tag = &rest[start..];
        let Some(body_start) = after_tag.find('>') else {
            break;
        };
        let body = &after_tag[body_start + 1..];
        let Some(end) = body.find(&close) else { break };
        out.push(&body[..end]);
        rest = &body[end + close.len()..];
    }
    out
}

fn hashes(blocks: &[&str]) -> String {
    blocks
        .iter()
        .map(|b| format!("'sha256-{}'", STANDARD.encode(Sha256::digest(b.as_bytes()))))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The CSP for a docs page with this HTML.
pub fn for_html(html: &str) -> String {
    format!(
        "default-src 'none'; script-src {}; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        hashes(&inline_blocks(html, "script")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_each_inline_script() {
        let html = "<html><script charset=\"x\">a()</script><p/><script>b()</script></html>";
        assert_eq!(inline_blocks(html, "script"), vec!["a()", "b()"]);
        let csp = for_html(html);
        assert_eq!(csp.matches("'sha256-").count(), 2, "{csp}");
        assert!(!csp.contains("unsafe-eval"));
    }
}
