//! Who acted, as an org reads it, once the key is gone: an org's audit log and queue
//! pause name its own keys by id and the platform (the operator, platform keys) as
//! `platform`, from the org kept with each record (`actor_org_id`, migration
//! m20261207_000029), never from a lookup of the key's row. A key row removed (the
//! retention run's dead keys) leaves what it did attributed to it, and the platform's
//! records stay the platform's.

use poem::http::Method;
use serde_json::{Value, json};
use velu_tests::{TestEnv, backend_tests};

use crate::support::{Boot, bootstrap, exec, owner_tx, platform_key, scalar};

/// How many steps `down` takes to undo m20261207_000029 (it and the steps after it).
fn steps_back() -> u32 {
    crate::support::steps_back_to("m20261207_000029_actor_org")
}

/// The ids a scenario's records were made by.
struct Actors {
    /// An admin key of acme's own, made for the scenario (its row is removed later).
    own_kid: String,
    own_token: String,
    /// A platform key that acts in acme.
    platform_token: String,
}

/// An admin key of acme's that pauses acme's queue and submits a job; a platform key and
/// the operator each submit a job into acme.
async fn act(env: &TestEnv) -> Actors {
    let made = env
        .cli_ok(&[
            "key",
            "create",
            "--org",
            "acme",
            "--name",
            "temp admin",
            "--role",
            "admin",
        ])
        .await;
    let own_kid = made["key"]["id"].as_str().expect("kid").to_owned();
    let own_token = made["token"].as_str().expect("token").to_owned();
    let paused = env
        .http(
            Method::POST,
            "/v1/orgs/acme/queue/pause",
            Some(&own_token),
            None,
        )
        .await;
    assert_eq!(paused.status, 200, "{}", paused.text);
    // A submit of the org's own key (on PostgreSQL written by the group commit's one
    // statement, grouped_pg.rs).
    let job = json!({"task": "echo", "payload": {"own": true}});
    let r = env
        .http(
            Method::POST,
            "/v1/orgs/acme/jobs",
            Some(&own_token),
            Some(job),
        )
        .await;
    assert!(r.status < 300, "{}", r.text);
    let platform_token = platform_key(env, "ops", "jobs:submit").await;
    let job = json!({"task": "echo", "payload": {}});
    let r = env
        .http(
            Method::POST,
            "/v1/orgs/acme/jobs",
            Some(&platform_token),
            Some(job),
        )
        .await;
    assert!(r.status < 300, "{}", r.text);
    env.cli_ok(&[
        "job",
        "submit",
        "--org",
        "acme",
        "--task",
        "echo",
        "--payload",
        "{}",
    ])
    .await;
    Actors {
        own_kid,
        own_token,
        platform_token,
    }
}

/// Revokes key `kid` of acme (by acme's admin, on the node that serves the reads), then
/// removes its row behind Velu's back, as the retention run removes a dead key.
async fn remove_key(env: &TestEnv, acme: &Boot, kid: &str) {
    let path = format!("/v1/orgs/acme/keys/{kid}/revoke");
    let r = env.http(Method::POST, &path, Some(&acme.admin), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    exec(
        env.velu(),
        &format!("DELETE FROM api_keys WHERE kid = '{kid}'"),
    )
    .await;
    let left: i64 = scalar(
        env.velu(),
        &format!("SELECT COUNT(*) FROM api_keys WHERE kid = '{kid}'"),
    )
    .await;
    assert_eq!(left, 0, "the key's row is gone");
}

/// `(actor_type, actor_id)` of acme's audit records of `action`, as acme's admin reads them.
async fn audited(env: &TestEnv, acme: &Boot, action: &str) -> Vec<(String, String)> {
    let r = env
        .http(
            Method::GET,
            "/v1/orgs/acme/audit?limit=100",
            Some(&acme.admin),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["action"] == action)
        .map(|e| {
            let s = |k: &str| e[k].as_str().expect(k).to_owned();
            (s("actor_type"), s("actor_id"))
        })
        .collect()
}

/// Acme's queue pause's author as acme's admin reads it.
async fn pause_author(env: &TestEnv, acme: &Boot) -> Value {
    let r = env
        .http(Method::GET, "/v1/orgs/acme/queue", Some(&acme.admin), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    json!([r.body["pause"]["actor_type"], r.body["pause"]["actor_id"]])
}

/// What every scenario reads once the own key's row is gone.
async fn reads_as_made(env: &TestEnv, acme: &Boot, actors: &Actors) {
    let own = ("api_key".to_owned(), actors.own_kid.clone());
    let platform = ("platform".to_owned(), "platform".to_owned());
    assert_eq!(
        audited(env, acme, "queue.pause").await,
        vec![own.clone()],
        "the own key's pause"
    );
    let mut submits = audited(env, acme, "job.submit").await;
    submits.sort();
    assert_eq!(
        submits,
        vec![own, platform.clone(), platform],
        "the own key's, the platform key's and the operator's submits"
    );
    assert_eq!(
        pause_author(env, acme).await,
        json!(["api_key", actors.own_kid]),
        "the pause the own key made"
    );
    // The removed key itself is gone: its token is refused.
    let r = env
        .http(Method::GET, "/v1/whoami", Some(&actors.own_token), None)
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    // The platform key still acts, and still reads as the platform.
    assert!(!actors.platform_token.is_empty());
}

backend_tests! {
    async fn an_orgs_records_keep_their_author_when_the_keys_row_is_gone(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        bootstrap(&env, "beta", "hero").await;
        let actors = act(&env).await;
        remove_key(&env, &acme, &actors.own_kid).await;
        reads_as_made(&env, &acme, &actors).await;
        // The operator reads every author as it is.
        let all = env.cli_ok(&["audit", "list", "--org", "acme", "--limit", "100"]).await;
        let types: Vec<&str> = all["items"].as_array().unwrap().iter()
            .filter(|e| e["action"] == "job.submit")
            .map(|e| e["actor_type"].as_str().unwrap()).collect();
        assert!(types.contains(&"cli") && types.contains(&"api_key"), "{types:?}");
    }

    async fn a_key_of_another_org_never_reads_as_the_orgs_own(env) {
        // A record whose key names another org (none can be made through Velu: a key acts
        // in its own org only) reads as the platform's: the org is compared, not trusted.
        let acme = bootstrap(&env, "acme", "hero").await;
        let beta = bootstrap(&env, "beta", "hero").await;
        let actors = act(&env).await;
        exec(env.velu(), &format!(
            "UPDATE audit_events SET actor_org_id = '{}' WHERE actor_id = '{}'",
            beta.org_id, actors.own_kid)).await;
        exec(env.velu(), &format!(
            "UPDATE queue_pauses SET actor_org_id = NULL WHERE target = '{}'", acme.org_id)).await;
        let platform = ("platform".to_owned(), "platform".to_owned());
        assert_eq!(audited(&env, &acme, "queue.pause").await, vec![platform]);
        assert_eq!(pause_author(&env, &acme).await, json!(["platform", "platform"]), "no org: the platform's");
    }

    async fn the_migration_keeps_the_author_of_records_made_before_it(env) {
        use migration::MigratorTrait;
        let acme = bootstrap(&env, "acme", "hero").await;
        bootstrap(&env, "beta", "hero").await;
        let actors = act(&env).await;
        // Back to the schema before the column, and forward again: the step fills it
        // from the key rows still there.
        let owner = owner_tx(env.velu()).await;
        migration::Migrator::down(&owner, Some(steps_back())).await.expect("the step's down runs");
        owner.commit().await.unwrap();
        let owner = owner_tx(env.velu()).await;
        migration::Migrator::up(&owner, None).await.expect("the step runs again");
        owner.commit().await.unwrap();
        let filled: i64 = scalar(env.velu(), &format!(
            "SELECT COUNT(*) FROM audit_events WHERE actor_org_id = '{}'", acme.org_id)).await;
        assert_eq!(filled, 2, "the own key's pause and submit name acme (the rest are the operator's and a platform key's)");
        let platform_rows: i64 = scalar(env.velu(),
            "SELECT COUNT(*) FROM audit_events WHERE actor_type <> 'api_key' AND actor_org_id IS NOT NULL").await;
        assert_eq!(platform_rows, 0, "only key records name an org");
        remove_key(&env, &acme, &actors.own_kid).await;
        reads_as_made(&env, &acme, &actors).await;
    }
}
