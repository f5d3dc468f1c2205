//! Which servers remote mode will send a key to, and over what: `https://` to any host
//! (verified against the bundled web roots, plus a private authority from `--ca-file`),
//! plain `http://` only to this machine unless `--allow-http` says otherwise. "This
//! machine" is a loopback address, or the name `localhost` pinned to one (never looked
//! up), reached without a proxy (`HTTP_PROXY` would carry the key elsewhere in clear).

use std::net::IpAddr;
use std::path::PathBuf;

use reqwest::Url;
use reqwest::tls::Certificate;
use velu_core::{CoreError, CoreResult};

/// Largest CA file read: a bundle of every public root is about 250 KiB.
const MAX_CA_FILE: u64 = 4 << 20;

/// How the CLI trusts a server (`--ca-file`, `--allow-http`).
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// A PEM file of certificate authorities to trust besides the bundled roots (a
    /// private authority that signed the server's certificate).
    pub ca_file: Option<PathBuf>,
    /// Send the key over plain `http://` to hosts other than this machine too (a network
    /// the operator trusts, a proxy that terminates TLS beside the client).
    pub allow_http: bool,
}

impl Trust {
    /// Refuses a server that is not an `http://` or `https://` URL with a host, and one
    /// over plain `http://` on another machine unless [`Trust::allow_http`]: its key
    /// would cross the network in clear.
    pub fn check_server(&self, server: &str) -> CoreResult<()> {
        let bad = |why: String| CoreError::invalid("server", why);
        let url = Url::parse(server)
            .map_err(|e| bad(format!("`{server}` is not an http:// or https:// URL: {e}")))?;
        match url.scheme() {
            "https" => Ok(()),
            "http" if self.allow_http || is_this_machine(&url) => Ok(()),
            "http" => Err(bad(format!(
                "`{server}` is plain http to another machine, which would send the API key \
                 in clear: use https:// (with --ca-file for a private authority), or pass \
                 --allow-http (VELU_ALLOW_HTTP=true) on a network you trust"
            ))),
            _ => Err(bad(format!("`{server}` is not an http:// or https:// URL"))),
        }
    }

    /// Sets up `builder` for `server` (already checked): a plain-http server on this
    /// machine is reached directly (no proxy from the environment) and `localhost` is
    /// pinned to the loopback addresses instead of being resolved.
    pub fn configure(
        &self,
        server: &str,
        builder: reqwest::ClientBuilder,
    ) -> CoreResult<reqwest::ClientBuilder> {
        let url = Url::parse(server).map_err(|e| CoreError::invalid("server", e.to_string()))?;
        let mut builder = builder;
        if url.scheme() == "http" && is_this_machine(&url) {
            builder = builder.no_proxy();
        }
        if url.host_str() == Some("localhost") {
            let loopback = [
                std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0)),
            ];
            builder = builder.resolve_to_addrs("localhost", &loopback);
        }
        for ca in self.authorities()? {
            builder = builder.add_root_certificate(ca);
        }
        Ok(builder)
    }

    /// The authorities of [`Trust::ca_file`] (none without one). A file that cannot be
    /// read, or holds no certificate, is `config`: remote mode never runs on less trust
    /// than the operator asked for.
    pub fn authorities(&self) -> CoreResult<Vec<Certificate>> {
        let Some(path) = &self.ca_file else {
            return Ok(Vec::new());
        };
        let fail = |why: String| CoreError::Config(format!("CA file {}: {why}", path.display()));
        let len = std::fs::metadata(path)
            .map_err(|e| fail(e.to_string()))?
            .len();
        if len > MAX_CA_FILE {
            return Err(fail(format!("over {} MiB", MAX_CA_FILE >> 20)));
        }
        let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        let certs = Certificate::from_pem_bundle(&pem).map_err(|e| fail(e.to_string()))?;
        if certs.is_empty() {
            return Err(fail("no PEM certificate in it".into()));
        }
        Ok(certs)
    }
}

/// Whether `url` names this machine: a loopback address, or exactly `localhost` (which
/// [`Trust::configure`] pins to the loopback addresses; its subdomains and `localhost.`
/// would be looked up, so they are not taken).
fn is_this_machine(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(IpAddr::V6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => host == "localhost",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(server: &str, allow_http: bool) -> Result<(), String> {
        let trust = Trust {
            ca_file: None,
            allow_http,
        };
        trust.check_server(server).map_err(|e| {
            assert_eq!(e.code(), "invalid", "{e}");
            e.to_string()
        })
    }

    #[test]
    fn plain_http_only_to_this_machine() {
        for ok in [
            "https://velu.example",
            "https://10.0.0.5:8443",
            "http://127.0.0.1:8080",
            "http://127.9.9.9",
            "http://localhost:8080",
            "http://LOCALHOST",
            "http://[::1]:8080",
            "http://2130706433",
            "http://[::ffff:127.0.0.1]",
        ] {
            assert_eq!(checked(ok, false), Ok(()), "{ok}");
        }
        for bad in [
            "http://velu.example",
            "http://10.0.0.5:8080",
            "http://127.0.0.1.evil.example",
            "http://127.0.0.1@evil.example",
            "http://localhost.evil.example",
            "http://localhost.",
            "http://api.localhost",
            "http://[::2]",
            "http://0.0.0.0:8080",
            "http://[::ffff:10.0.0.1]",
        ] {
            let err = checked(bad, false).unwrap_err();
            assert!(err.contains("--allow-http"), "{bad}: {err}");
            assert_eq!(checked(bad, true), Ok(()), "{bad} with --allow-http");
        }
        for bad in [
            "ftp://velu.example",
            "velu.example",
            "",
            "http://",
            "file:///etc",
        ] {
            let err = checked(bad, true).unwrap_err();
            assert!(!err.contains("--allow-http"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        let dir = std::env::temp_dir().join(format!("velu-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let trust = |name: &str| Trust {
            ca_file: Some(dir.join(name)),
            allow_http: false,
        };
        assert!(trust("").authorities().is_err(), "a folder is no CA file");
        assert_eq!(Trust::default().authorities().unwrap().len(), 0);
        let missing = trust("missing.pem").authorities().unwrap_err();
        assert_eq!(missing.code(), "config");
        std::fs::write(dir.join("junk.pem"), "not a certificate\n").unwrap();
        let junk = trust("junk.pem").authorities().unwrap_err();
        assert!(junk.to_string().contains("no PEM certificate"), "{junk}");
        std::fs::write(dir.join("ca.pem"), TEST_CA).unwrap();
        assert_eq!(trust("ca.pem").authorities().unwrap().len(), 1);
        // The authority goes into the client's roots (a certificate rustls would not take
        // fails the build of the client).
        let builder = trust("ca.pem")
            .configure("https://velu.example", reqwest::Client::builder())
            .unwrap();
        assert!(builder.build().is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A self-signed authority made for this test (`openssl req -x509 -newkey ec
    /// -pkeyopt ec_paramgen_curve:P-256 -nodes -days 36500 -subj /CN=velu-test-ca`); its
    /// key was thrown away.
    const TEST_CA: &str = include_str!("../../testdata/test-ca.pem");
}
