//! The key counter (`key_counts`, kept by triggers on `api_keys`): it follows every path
//! that writes keys, the key quota reads it below the plan's limit, and its migration
//! counts the keys already there.

use velu_tests::{TestEnv, backend_tests};

use crate::support::{bootstrap, exec, owner_tx, platform_key, scalar};

/// The counter row of `org_id` (0 when it has none).
async fn counter(env: &TestEnv, org_id: &str) -> i64 {
    scalar(
        env.velu(),
        &format!(
            "SELECT COALESCE((SELECT unrevoked FROM key_counts WHERE org_id = '{org_id}'), 0)"
        ),
    )
    .await
}

/// The org's unrevoked keys, counted.
async fn unrevoked(env: &TestEnv, org_id: &str) -> i64 {
    scalar(
        env.velu(),
        &format!("SELECT COUNT(*) FROM api_keys WHERE org_id = '{org_id}' AND revoked_at IS NULL"),
    )
    .await
}

/// Asserts that each org's counter equals its count, and that the count is `want`.
async fn holds(env: &TestEnv, org_id: &str, want: i64, after: &str) {
    assert_eq!(unrevoked(env, org_id).await, want, "the keys after {after}");
    assert_eq!(
        counter(env, org_id).await,
        want,
        "the counter after {after}"
    );
}

fn create(slug: &str, name: &str) -> Vec<String> {
    [
        "key", "create", "--org", slug, "--name", name, "--role", "viewer",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// How many steps `down` takes to undo m20261205_000023 (it and the steps after it).
fn steps_back() -> u32 {
    crate::support::steps_back_to("m20261205_000023_key_counts")
}

backend_tests! {
    async fn the_key_counter_follows_every_key_write(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        holds(&env, &acme.org_id, 3, "bootstrap").await;
        let beta = bootstrap(&env, "beta", "hero").await;
        holds(&env, &beta.org_id, 3, "another org's bootstrap").await;
        holds(&env, &acme.org_id, 3, "another org's bootstrap").await;

        let args = create("acme", "one");
        let one = env.cli_ok(&args.iter().map(String::as_str).collect::<Vec<_>>()).await;
        let one = one["key"]["id"].as_str().unwrap().to_owned();
        holds(&env, &acme.org_id, 4, "a create").await;

        let digest = env.velu().hasher().unwrap().legacy_digest("velu_LegacyKeyCountedLikeAnyOther_0123456789");
        env.cli_ok(&["key", "import", "--org", "acme", "--name", "old", "--scopes", "jobs:read", "--hash", &digest]).await;
        holds(&env, &acme.org_id, 5, "an import").await;

        env.cli_ok(&["key", "rotate", &one, "--org", "acme"]).await;
        holds(&env, &acme.org_id, 5, "a rotation").await;

        env.cli_ok(&["key", "revoke", &one, "--org", "acme"]).await;
        holds(&env, &acme.org_id, 4, "a revoke").await;
        env.cli_ok(&["key", "revoke", &one, "--org", "acme"]).await;
        holds(&env, &acme.org_id, 4, "a second revoke of the same key").await;

        // Platform keys belong to no org and count in none.
        platform_key(&env, "ops", "audit:read").await;
        holds(&env, &acme.org_id, 4, "a platform key").await;
        holds(&env, &beta.org_id, 3, "a platform key").await;

        // An expired key is still unrevoked: the counter bounds the active keys from above.
        exec(env.velu(), &format!(
            "UPDATE api_keys SET expires_at = '2020-01-01T00:00:00Z' WHERE org_id = '{}' AND name = 'old'",
            acme.org_id)).await;
        holds(&env, &acme.org_id, 4, "an expiry").await;

        // Writes that bypass Velu move it too, since the database keeps it.
        exec(env.velu(), &format!("DELETE FROM api_keys WHERE org_id = '{}' AND name = 'old'", acme.org_id)).await;
        holds(&env, &acme.org_id, 3, "a delete").await;
        exec(env.velu(), &format!("UPDATE api_keys SET revoked_at = NULL WHERE kid = '{one}'")).await;
        holds(&env, &acme.org_id, 4, "an unrevoke").await;
        holds(&env, &beta.org_id, 3, "the other org's writes").await;
    }

    async fn below_the_limit_the_key_quota_reads_the_counter_alone(env) {
        let tiny = bootstrap(&env, "tiny", "base").await;
        let run = |name: &str| {
            let args = create("tiny", name);
            let env = &env;
            async move { env.cli(&args.iter().map(String::as_str).collect::<Vec<_>>()).await }
        };
        let ok = |r: velu_tests::CliRun| r.code == 0;
        for name in ["k4", "k5"] {
            assert!(ok(run(name).await), "within the base plan's 5");
        }
        assert_eq!(run("k6").await.error_code(), "quota_exceeded");
        // A counter that says there is room is believed, without counting the keys: this
        // is what makes the check one row (a doctored counter, to see which is read).
        exec(env.velu(), &format!("UPDATE key_counts SET unrevoked = 0 WHERE org_id = '{}'", tiny.org_id)).await;
        assert!(ok(run("k6").await), "admitted on the counter");
        assert_eq!(counter(&env, &tiny.org_id).await, 1, "and the create moved it");
        // A counter at the limit sends the check to the keys themselves, which decide.
        exec(env.velu(), &format!("UPDATE key_counts SET unrevoked = 99 WHERE org_id = '{}'", tiny.org_id)).await;
        assert_eq!(run("k7").await.error_code(), "quota_exceeded", "six active keys");
        exec(env.velu(), &format!(
            "UPDATE api_keys SET revoked_at = created_at WHERE org_id = '{}' AND name IN ('k4', 'k5')",
            tiny.org_id)).await;
        assert!(ok(run("k7").await), "four active keys, whatever the counter says");
    }

    async fn the_migration_counts_the_keys_already_there(env) {
        use migration::MigratorTrait;
        let acme = bootstrap(&env, "acme", "hero").await;
        let beta = bootstrap(&env, "beta", "base").await;
        let args = create("acme", "extra");
        env.cli_ok(&args.iter().map(String::as_str).collect::<Vec<_>>()).await;
        let viewer = env.cli_ok(&["key", "list", "--org", "beta"]).await["items"][0]["id"]
            .as_str().unwrap().to_owned();
        env.cli_ok(&["key", "revoke", &viewer, "--org", "beta"]).await;
        // Back to the schema before the counter, and forward again: the step counts.
        let owner = owner_tx(env.velu()).await;
        migration::Migrator::down(&owner, Some(steps_back())).await.expect("the step's down runs");
        owner.commit().await.unwrap();
        let gone: i64 = scalar(env.velu(),
            "SELECT COUNT(*) FROM api_keys WHERE name = 'extra'").await;
        assert_eq!(gone, 1, "down keeps the keys");
        let owner = owner_tx(env.velu()).await;
        migration::Migrator::up(&owner, None).await.expect("the step runs again");
        owner.commit().await.unwrap();
        holds(&env, &acme.org_id, 4, "the migration").await;
        holds(&env, &beta.org_id, 2, "the migration").await;
    }
}
