//! Retention of dead keys (docs/retention.md, "Keys"): an org's keys revoked, or expired,
//! longer ago than its plan keeps history are removed by the retention run; live keys,
//! keys dead for less than the plan's days, platform keys and other orgs' keys never are.
//! The key counters follow, a removed key is missing like any other, slices are bounded
//! and two runs at once remove each key once.

use chrono::{DateTime, Duration, Utc};
use poem::http::Method;
use serde_json::{Value, json};
use velu_core::sea_orm::{ConnectionTrait, Statement, Value as DbValue};
use velu_tests::{TestEnv, backend_tests};

use crate::support::{bootstrap, owner_tx, platform_key, scalar};

/// Makes a key of org `slug` (or a platform key) through the CLI; its id and token.
async fn key(env: &TestEnv, org: Option<&str>, name: &str) -> (String, String) {
    let mut args = vec!["key", "create", "--name", name, "--scopes", "jobs:read"];
    match org {
        Some(slug) => args.extend(["--org", slug]),
        None => args.push("--platform"),
    }
    let doc = env.cli_ok(&args).await;
    let id = doc["key"]["id"].as_str().expect("key id").to_owned();
    (id, doc["token"].as_str().expect("token").to_owned())
}

/// Moves key `kid`'s life into the past, behind Velu's back: created `made` days ago,
/// revoked and expired at the days given (none: not revoked, no expiry).
async fn backdate(env: &TestEnv, kid: &str, made: i64, revoked: Option<i64>, expired: Option<i64>) {
    let now = Utc::now();
    let at = |d: Option<i64>| d.map(|d| now - Duration::days(d));
    let tx = owner_tx(env.velu()).await;
    let backend = tx.get_database_backend();
    let sql = if backend == velu_core::sea_orm::DbBackend::Postgres {
        "UPDATE api_keys SET created_at = $1, revoked_at = $2, expires_at = $3 WHERE kid = $4"
    } else {
        "UPDATE api_keys SET created_at = ?1, revoked_at = ?2, expires_at = ?3 WHERE kid = ?4"
    };
    let values: Vec<DbValue> = vec![
        (now - Duration::days(made)).into(),
        at(revoked).into(),
        at(expired).into(),
        kid.into(),
    ];
    let done = tx
        .execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
        .expect("backdated");
    assert_eq!(done.rows_affected(), 1, "{kid}");
    tx.commit().await.expect("commit");
}

/// Copies key `kid` `n` times (ids `<prefix>000001`...), each made `made` and revoked
/// `revoked` (both in the past).
async fn clone_dead(
    env: &TestEnv,
    kid: &str,
    prefix: &str,
    n: usize,
    made: DateTime<Utc>,
    revoked: DateTime<Utc>,
) {
    let tx = owner_tx(env.velu()).await;
    let backend = tx.get_database_backend();
    let pg = backend == velu_core::sea_orm::DbBackend::Postgres;
    let (series, id, p) = if pg {
        (
            format!("generate_series(1, {n}) AS g(i)"),
            "lpad(i::text, 6, '0')",
            ["$1", "$2", "$3", "$4"],
        )
    } else {
        (
            format!(
                "(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) SELECT i FROM s) AS g"
            ),
            "printf('%06d', i)",
            ["?1", "?2", "?3", "?4"],
        )
    };
    let sql = format!(
        "INSERT INTO api_keys (kid, org_id, name, scopes, secret_hash, legacy, created_by_type, \
         created_by_id, created_at, updated_at, revoked_at) \
         SELECT {} || {id}, org_id, name, scopes, secret_hash, legacy, created_by_type, \
         created_by_id, {}, {}, {} FROM api_keys, {series} WHERE kid = {}",
        p[0], p[1], p[1], p[2], p[3]
    );
    let values: Vec<DbValue> = vec![prefix.into(), made.into(), revoked.into(), kid.into()];
    tx.execute_raw(Statement::from_sql_and_values(backend, &sql, values))
        .await
        .expect("cloned keys");
    tx.commit().await.expect("commit");
}

async fn exists(env: &TestEnv, kid: &str) -> bool {
    scalar::<i64>(
        env.velu(),
        &format!("SELECT COUNT(*) FROM api_keys WHERE kid = '{kid}'"),
    )
    .await
        == 1
}

/// The org's key counter against the unrevoked rows it counts.
async fn counter_and_rows(env: &TestEnv, org_id: &str) -> (i64, i64) {
    let counter = scalar::<i64>(
        env.velu(),
        &format!(
            "SELECT COALESCE((SELECT unrevoked FROM key_counts WHERE org_id = '{org_id}'), 0)"
        ),
    )
    .await;
    let rows = scalar::<i64>(
        env.velu(),
        &format!("SELECT COUNT(*) FROM api_keys WHERE org_id = '{org_id}' AND revoked_at IS NULL"),
    )
    .await;
    (counter, rows)
}

async fn run(env: &TestEnv, args: &[&str]) -> Value {
    let mut all = vec!["retention", "run"];
    all.extend_from_slice(args);
    env.cli_ok(&all).await
}

backend_tests! {
    async fn only_keys_dead_for_longer_than_the_plan_are_removed(env) {
        let acme = bootstrap(&env, "acme", "hero").await; // 30 days
        let beta = bootstrap(&env, "beta", "hero").await;
        let (revoked_long_ago, _) = key(&env, Some("acme"), "revoked long ago").await;
        let (revoked_lately, _) = key(&env, Some("acme"), "revoked lately").await;
        let (expired_long_ago, expired_token) = key(&env, Some("acme"), "expired long ago").await;
        let (expires_later, _) = key(&env, Some("acme"), "expires later").await;
        let (old_live, old_token) = key(&env, Some("acme"), "old and live").await;
        let (beta_dead, _) = key(&env, Some("beta"), "beta dead key").await;
        let (platform_dead, _) = key(&env, None, "platform dead key").await;
        backdate(&env, &revoked_long_ago, 40, Some(31), None).await;
        backdate(&env, &revoked_lately, 400, Some(29), None).await;
        backdate(&env, &expired_long_ago, 40, None, Some(31)).await;
        backdate(&env, &expires_later, 400, None, Some(-1)).await;
        backdate(&env, &old_live, 400, None, None).await;
        backdate(&env, &beta_dead, 400, Some(400), None).await;
        backdate(&env, &platform_dead, 400, Some(400), None).await;
        let acme_admin = acme.doc["keys"]["admin"]["key"]["id"].as_str().expect("admin id").to_owned();
        // An admin key of acme's that paused and resumed acme's queue, retired long ago.
        let retired = env.cli_ok(&["key", "create", "--org", "acme", "--name", "retired admin", "--role", "admin"]).await;
        let retired_admin = retired["key"]["id"].as_str().expect("kid").to_owned();
        let retired_token = retired["token"].as_str().expect("token");
        for step in ["pause", "resume"] {
            let r = env.http(Method::POST, &format!("/v1/orgs/acme/queue/{step}"), Some(retired_token), None).await;
            assert_eq!(r.status, 200, "{}", r.text);
        }
        backdate(&env, &retired_admin, 40, Some(35), None).await;

        // Shown before the run: a viewer of the org reads the same over HTTP.
        let state = env.cli_ok(&["retention", "show", "--org", "acme"]).await;
        assert_eq!((state["due_keys"].clone(), state["due_keys_capped"].clone()), (json!(3), json!(false)), "{state}");
        let r = env.http(Method::GET, "/v1/orgs/acme/jobs/retention", Some(&acme.viewer), None).await;
        assert_eq!((r.status, &r.body["due_keys"]), (200, &json!(3)), "{}", r.text);
        // An expired key authenticates nothing, before the run as after it.
        let r = env.http(Method::GET, "/v1/whoami", Some(&expired_token), None).await;
        assert_eq!(r.status, 401, "{}", r.text);

        let report = run(&env, &["--org", "acme"]).await;
        assert_eq!((report["removed"].clone(), report["keys_removed"].clone()), (json!(0), json!(3)), "{report}");
        assert_eq!(report["more"], false, "{report}");
        assert_eq!(report["orgs"][0]["org_id"], acme.org_id.as_str(), "{report}");
        assert_eq!(report["orgs"][0]["keys_removed"], 3, "{report}");
        for gone in [&revoked_long_ago, &expired_long_ago, &retired_admin] {
            assert!(!exists(&env, gone).await, "{gone} removed");
            let shown = env.cli(&["key", "show", gone, "--org", "acme"]).await;
            assert_eq!(shown.error_code(), "not_found", "{}", shown.stderr);
        }
        for kept in [&revoked_lately, &expires_later, &old_live, &beta_dead, &platform_dead, &acme_admin] {
            assert!(exists(&env, kept).await, "{kept} kept");
        }
        let r = env.http(Method::GET, "/v1/whoami", Some(&expired_token), None).await;
        assert_eq!(r.status, 401, "{}", r.text);
        let r = env.http(Method::GET, "/v1/whoami", Some(&old_token), None).await;
        assert_eq!(r.status, 200, "an old live key still works: {}", r.text);
        let (counter, rows) = counter_and_rows(&env, &acme.org_id).await;
        assert_eq!(counter, rows, "the key counter follows the removal of an unrevoked expired key");
        // What the removed admin key did still reads as that key to the org, not as the
        // platform's (the record keeps the key's org: m20261207_000029).
        let r = env.http(Method::GET, "/v1/orgs/acme/audit?limit=100", Some(&acme.admin), None).await;
        let authors: Vec<(&str, &str)> = r.body["items"].as_array().expect("items").iter()
            .filter(|i| i["action"] == "queue.pause" || i["action"] == "queue.resume")
            .map(|i| (i["actor_type"].as_str().unwrap(), i["actor_id"].as_str().unwrap())).collect();
        assert_eq!(authors, vec![("api_key", retired_admin.as_str()); 2], "{}", r.text);
        // Audited in the org, as one slice of three.
        let audit = env.cli_ok(&["audit", "list", "--org", "acme", "--all"]).await;
        let slices: Vec<&Value> = audit["items"].as_array().expect("items").iter()
            .filter(|i| i["action"] == "keys.retention").collect();
        assert_eq!(slices.len(), 1, "{audit}");
        assert_eq!(slices[0]["details"]["removed"], 3, "{audit}");
        // A run over every org reaches beta's key, never the platform's.
        let report = run(&env, &[]).await;
        assert_eq!(report["keys_removed"], 1, "{report}");
        assert_eq!(report["orgs"][0]["org_id"], beta.org_id.as_str(), "{report}");
        assert!(!exists(&env, &beta_dead).await);
        assert!(exists(&env, &platform_dead).await);
        let again = run(&env, &[]).await;
        assert_eq!((again["keys_removed"].clone(), again["orgs"].clone()), (json!(0), json!([])), "{again}");
    }

    async fn dead_keys_go_in_bounded_slices_each_once(env) {
        let acme = bootstrap(&env, "acme", "base").await; // 7 days
        let (seed, _) = key(&env, Some("acme"), "seed").await;
        let now = Utc::now();
        clone_dead(&env, &seed, "dead", 2_001, now - Duration::days(20), now - Duration::days(10)).await;
        let state = env.cli_ok(&["retention", "show", "--org", "acme"]).await;
        assert_eq!(state["due_keys"], 2_001, "{state}");
        // One run removes one slice and says more is due.
        let first = run(&env, &["--org", "acme"]).await;
        assert_eq!((first["keys_removed"].clone(), first["more"].clone()), (json!(1_000), json!(true)), "{first}");
        // Two runs at once: each key removed and counted once, whatever they split.
        let platform = platform_key(&env, "ops", "admin:orgs:manage").await;
        let body = json!({"org": "acme"});
        let (r1, r2) = tokio::join!(
            run(&env, &["--org", "acme"]),
            env.http(Method::POST, "/v1/retention/run", Some(&platform), Some(body)),
        );
        assert_eq!(r2.status, 200, "{}", r2.text);
        let both = r1["keys_removed"].as_u64().unwrap() + r2.body["keys_removed"].as_u64().unwrap();
        let left = scalar::<i64>(env.velu(), "SELECT COUNT(*) FROM api_keys WHERE kid LIKE 'dead%'").await;
        assert_eq!(both + left as u64, 1_001, "removed {both}, left {left}");
        assert!(both >= 1_000, "two runs remove at least one slice: {both}");
        let last = run(&env, &["--org", "acme"]).await;
        assert_eq!(last["more"], false, "{last}");
        assert_eq!(scalar::<i64>(env.velu(), "SELECT COUNT(*) FROM api_keys WHERE kid LIKE 'dead%'").await, 0);
        // The seed key (live) and the org's own keys stay.
        assert!(exists(&env, &seed).await);
        let r = env.http(Method::GET, "/v1/whoami", Some(&acme.admin), None).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
}
