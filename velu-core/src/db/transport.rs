//! How Velu's PostgreSQL connections travel: in plain text to a server on the same host,
//! unless the operator named a TLS setting; as the URL says otherwise.
//!
//! sqlx's default, like libpq's, is `sslmode=prefer`: TLS when the server offers it,
//! without checking its certificate. To a server on the same host that protects nothing
//! the host does not (reading loopback traffic takes `CAP_NET_RAW` in the same network
//! namespace, root or a pod's sidecar, and no certificate is checked), and it costs every
//! reply a decryption: side by side over HTTP, job pages were read 1.32x faster in plain
//! text (docs/benchmarks-log.md, "Plain text on loopback"). So Velu's pools connect in
//! plain text (`sslmode=disable`) when all of these hold, and keep the URL's mode
//! otherwise:
//!
//! 1. The URL's host is a loopback address (`localhost`, `127.0.0.0/8`, `::1`), and
//!    neither the URL (any `ssl…` parameter: `sslmode`, `sslrootcert`, `sslcert`, …; a
//!    percent-escaped parameter name counts as one) nor `PGSSLMODE` names a TLS setting.
//! 2. The server, asked over a first connection in the URL's own mode, received it on
//!    one of its own loopback addresses (`inet_server_addr()`). A loopback port that
//!    forwards to another machine (a TCP proxy, a tunnel) reaches a server that sees its
//!    network address: there TLS is kept, end to end as before.
//! 3. A plain connection is accepted: a server that takes TLS only keeps it. (sqlx's
//!    `sslmode=allow` does not fall back to TLS, so Velu tries plain text once at start.)

use std::ffi::OsStr;
use std::net::IpAddr;

use sea_orm::sqlx::postgres::{PgConnectOptions, PgSslMode};

/// Condition 1: may Velu try plain text with `url`? `env_mode` is `PGSSLMODE`, passed in
/// so tests need not set it.
pub(crate) fn may_go_plain(url: &str, env_mode: Option<&OsStr>) -> bool {
    if env_mode.is_some() || names_tls(url) {
        return false;
    }
    url.parse::<PgConnectOptions>()
        .is_ok_and(|opts| is_loopback_host(opts.get_host()))
}

/// [`may_go_plain`] with this process's `PGSSLMODE`.
pub(crate) fn may_go_plain_here(url: &str) -> bool {
    may_go_plain(url, std::env::var_os("PGSSLMODE").as_deref())
}

/// Condition 2: is the address the server received a connection on (`host(inet_server_addr())`,
/// none for a Unix socket) one of its loopback addresses?
pub(crate) fn server_address_is_loopback(addr: Option<&str>) -> bool {
    addr.and_then(|a| a.parse::<IpAddr>().ok())
        .is_some_and(|ip| ip.to_canonical().is_loopback())
}

/// `options` in plain text when `plain`, as they are otherwise.
pub(crate) fn apply(options: PgConnectOptions, plain: bool) -> PgConnectOptions {
    if plain {
        options.ssl_mode(PgSslMode::Disable)
    } else {
        options
    }
}

/// Does the URL's query name a TLS setting? Any parameter whose name begins with `ssl`
/// in any case, or whose name is percent-escaped (read as naming one: failing closed).
fn names_tls(url: &str) -> bool {
    let url = url.split('#').next().unwrap_or_default();
    let Some((_, query)) = url.split_once('?') else {
        return false;
    };
    query.split('&').any(|pair| {
        let key = pair.split('=').next().unwrap_or_default();
        key.contains('%') || key.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("ssl"))
    })
}

/// `localhost` or a loopback IP address (brackets of an IPv6 host allowed).
fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls_without_a_tls_setting_may_go_plain() {
        for url in [
            "postgres://postgres@127.0.0.1:5432/test",
            "postgres://postgres@127.1.2.3/test",
            "postgres://postgres@localhost/test",
            "postgres://postgres@LOCALHOST:5433/test?application_name=velu",
            "postgres://postgres@[::1]:5432/test",
            "postgresql://u:p@127.0.0.1/db",
        ] {
            assert!(may_go_plain(url, None), "{url}");
        }
    }

    #[test]
    fn a_named_tls_setting_and_other_hosts_keep_the_url_mode() {
        for url in [
            "postgres://postgres@127.0.0.1/test?sslmode=prefer",
            "postgres://postgres@127.0.0.1/test?sslmode=require",
            "postgres://postgres@localhost/test?application_name=x&SSLMODE=verify-full",
            "postgres://postgres@127.0.0.1/test?ssl-mode=disable",
            "postgres://postgres@127.0.0.1/test?sslrootcert=/etc/ca.pem",
            "postgres://postgres@127.0.0.1/test?sslcert=/c.pem&sslkey=/k.pem",
            "postgres://postgres@127.0.0.1/test?ssl%6Dode=require",
            "postgres://postgres@db.internal:5432/test",
            "postgres://postgres@10.0.0.5/test",
            "postgres://postgres@localhost.example.com/test",
            "postgres://postgres@127.0.0.1.example.com/test",
            "postgres://postgres@128.0.0.1/test",
            "not a url",
        ] {
            assert!(!may_go_plain(url, None), "{url}");
        }
        let env = OsStr::new("prefer");
        assert!(
            !may_go_plain("postgres://postgres@127.0.0.1/test", Some(env)),
            "PGSSLMODE is the operator's choice"
        );
    }

    #[test]
    fn only_a_loopback_server_address_is_local() {
        for local in ["127.0.0.1", "127.0.0.53", "::1", "::ffff:127.0.0.1"] {
            assert!(server_address_is_loopback(Some(local)), "{local}");
        }
        for far in [
            "10.0.0.5",
            "192.168.1.2",
            "::ffff:10.0.0.5",
            "fe80::1",
            "garbage",
            "",
        ] {
            assert!(!server_address_is_loopback(Some(far)), "{far}");
        }
        assert!(
            !server_address_is_loopback(None),
            "a Unix socket has no address"
        );
    }
}
