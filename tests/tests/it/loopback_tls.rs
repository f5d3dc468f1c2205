//! PostgreSQL connections to a server on this host travel in plain text unless the URL
//! names a TLS setting (velu-core `db/transport.rs`): a named mode is kept as it is.
//!
//! The first half can only fail where the test server offers TLS (`SHOW ssl` on, as on
//! the development machine, where it failed without the change: 4 of 4 connections on
//! TLS); the second half checks that a named mode is kept on any server.

use velu_core::db::Db;
use velu_core::sea_orm::ConnectionTrait;
use velu_tests::{Backend, TestEnv, backend_tests};

use crate::support::{owner_tx, scalar};

/// Connections to this test's database: (on TLS, all), seen by the server as its owner
/// (an ordinary role sees no other session's details, not even its own session user's).
async fn connections(env: &TestEnv) -> (i64, i64) {
    let tx = owner_tx(env.velu()).await;
    let row = tx
        .query_one_raw(velu_core::sea_orm::Statement::from_string(
            tx.get_database_backend(),
            "SELECT COUNT(*) FILTER (WHERE s.ssl), COUNT(*) FROM pg_stat_ssl s \
             JOIN pg_stat_activity a USING (pid) WHERE a.datname = current_database()",
        ))
        .await
        .expect("pg_stat_ssl")
        .expect("a row");
    let counts = (
        row.try_get_by_index(0).expect("count"),
        row.try_get_by_index(1).expect("count"),
    );
    tx.commit().await.expect("commit");
    counts
}

/// `url` with one more query parameter.
fn with_param(url: &str, param: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}")
}

backend_tests! {
    async fn loopback_connections_are_plain_unless_a_mode_is_named(env) {
        if env.backend() != Backend::Postgres {
            return; // SQLite has no connections to carry
        }
        let url = env.settings().database_url();
        assert!(
            url.contains("@127.0.0.1") || url.contains("@localhost") || url.contains("@[::1]"),
            "this test needs the test server on a loopback address: {}",
            velu_core::settings::redact_url(&url)
        );
        if std::env::var_os("PGSSLMODE").is_some() {
            return; // the operator's PGSSLMODE decides, and is kept (unit tests)
        }
        // Velu's own pools, and a fresh one on the same URL: plain text, every connection.
        let default = Db::connect(&url).await.expect("connect");
        default.conn().execute_unprepared("SELECT 1").await.expect("a connection");
        let (tls, all) = connections(&env).await;
        assert!(all >= 2, "Velu's connections and the fresh pool's: {all}");
        assert_eq!(tls, 0, "{tls} of {all} connections on loopback took TLS");
        default.close().await;
        // A named mode is kept: `prefer` takes TLS whenever the server offers it.
        let offers: String = scalar(env.velu(), "SHOW ssl").await;
        let prefer = Db::connect(&with_param(&url, "sslmode=prefer")).await.expect("connect");
        prefer.conn().execute_unprepared("SELECT 1").await.expect("a connection");
        let (tls, all) = connections(&env).await;
        assert_eq!(tls > 0, offers == "on", "sslmode=prefer named: {tls} of {all} on TLS, server ssl {offers}");
        prefer.close().await;
    }
}
