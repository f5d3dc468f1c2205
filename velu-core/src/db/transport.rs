//! How Velu's PostgreSQL connections travel: in plain text on a loopback address unless
//! the operator chose a TLS mode.
//!
//! sqlx's default, like libpq's, is `sslmode=prefer`: TLS when the server offers it,
//! without checking its certificate. On a loopback address that protects nothing: with
//! no certificate checked it authenticates no one, and reading loopback traffic takes
//! root on the host, who can read the processes' memory anyway. It costs every reply a
//! TLS record's decryption, and a job page is larger than its request: side by side over
//! HTTP, the same build read job pages 1.32x faster in plain text (docs/benchmarks-log.md,
//! "Plain text on loopback"). So when the URL's host is a loopback address (`localhost`,
//! `127.0.0.0/8`, `::1`) and neither the URL (`sslmode`, `ssl-mode`) nor `PGSSLMODE`
//! names a mode, Velu connects with `sslmode=allow`: plain text first, TLS only if the
//! server refuses plain connections. Any mode the operator names is kept as it is
//! (`?sslmode=require` or `verify-full` for TLS on loopback too), and other hosts keep
//! sqlx's default.

use std::ffi::OsStr;
use std::net::IpAddr;

use sea_orm::sqlx::postgres::{PgConnectOptions, PgSslMode};

/// The TLS mode Velu sets for a PostgreSQL `url`, or `None` to keep what the URL (or the
/// environment) says. `env_mode` is `PGSSLMODE`, passed in so tests need not set it.
pub(crate) fn chosen_mode(url: &str, env_mode: Option<&OsStr>) -> Option<PgSslMode> {
    if env_mode.is_some() || names_a_mode(url) {
        return None;
    }
    let opts: PgConnectOptions = url.parse().ok()?;
    is_loopback(opts.get_host()).then_some(PgSslMode::Allow)
}

/// [`chosen_mode`] with this process's `PGSSLMODE`.
pub(crate) fn mode_for(url: &str) -> Option<PgSslMode> {
    chosen_mode(url, std::env::var_os("PGSSLMODE").as_deref())
}

/// `options` with the mode of [`mode_for`], when there is one.
pub(crate) fn apply(options: PgConnectOptions, mode: Option<PgSslMode>) -> PgConnectOptions {
    match mode {
        Some(mode) => options.ssl_mode(mode),
        None => options,
    }
}

/// Does the URL's query name a TLS mode (either spelling sqlx reads)?
fn names_a_mode(url: &str) -> bool {
    let Some((_, query)) = url.split_once('?') else {
        return false;
    };
    query.split('&').any(|pair| {
        let key = pair.split('=').next().unwrap_or_default();
        key.eq_ignore_ascii_case("sslmode") || key.eq_ignore_ascii_case("ssl-mode")
    })
}

/// `localhost` or a loopback IP address (brackets of an IPv6 host allowed).
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_without_a_mode_goes_plain_first() {
        for url in [
            "postgres://postgres@127.0.0.1:5432/test",
            "postgres://postgres@127.1.2.3/test",
            "postgres://postgres@localhost/test",
            "postgres://postgres@LOCALHOST:5433/test?application_name=velu",
            "postgres://postgres@[::1]:5432/test",
            "postgresql://u:p@127.0.0.1/db",
        ] {
            assert!(
                matches!(chosen_mode(url, None), Some(PgSslMode::Allow)),
                "{url}"
            );
        }
    }

    #[test]
    fn a_named_mode_and_other_hosts_are_kept() {
        for url in [
            "postgres://postgres@127.0.0.1/test?sslmode=prefer",
            "postgres://postgres@127.0.0.1/test?sslmode=require",
            "postgres://postgres@localhost/test?application_name=x&SSLMODE=verify-full",
            "postgres://postgres@127.0.0.1/test?ssl-mode=disable",
            "postgres://postgres@db.internal:5432/test",
            "postgres://postgres@10.0.0.5/test",
            "postgres://postgres@localhost.example.com/test",
            "postgres://postgres@128.0.0.1/test",
            "not a url",
        ] {
            assert!(chosen_mode(url, None).is_none(), "{url}");
        }
        let env = OsStr::new("prefer");
        assert!(
            chosen_mode("postgres://postgres@127.0.0.1/test", Some(env)).is_none(),
            "PGSSLMODE is the operator's choice"
        );
    }
}
