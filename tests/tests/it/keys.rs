//! Bootstrap and key management through the CLI and HTTP.

use poem::http::Method;
use serde_json::{Value, json};
use velu_core::sea_orm::{ConnectionTrait, Statement};
use velu_tests::backend_tests;

use crate::support::{bootstrap, platform_key, race};

backend_tests! {
    async fn two_rotations_at_once_never_lose_a_secret(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        let kid = acme.doc["keys"]["viewer"]["key"]["id"].as_str().unwrap().to_owned();
        let path = format!("/v1/orgs/acme/keys/{kid}/rotate?grace_secs=600");
        let mut rotated = 0;
        for round in 0..8 {
            // Both read the key's current secret; on PostgreSQL the second to write used
            // to keep that stale secret as the previous one, losing the first's new one.
            let (a, b) = tokio::join!(
                env.http(Method::POST, &path, Some(&acme.admin), None),
                env.http(Method::POST, &path, Some(&acme.admin), None)
            );
            for r in [a, b] {
                if r.status == 409 {
                    assert_eq!(r.problem_code(), "conflict", "{}", r.text);
                    continue;
                }
                assert_eq!(r.status, 200, "round {round}: {}", r.text);
                rotated += 1;
                // Every secret handed out works: the last as current, the one before it
                // through its grace period.
                let token = r.body["token"].as_str().unwrap();
                let me = env.http(Method::GET, "/v1/whoami", Some(token), None).await;
                assert_eq!(me.status, 200, "round {round}: a rotation's secret was lost: {}", me.text);
            }
        }
        assert!(rotated >= 8, "at least one rotation of each pair went through ({rotated})");
    }

    async fn bootstrap_issues_three_working_keys_once(env) {
        let boot = bootstrap(&env, "acme", "hero").await;
        for (role, token, scope_count) in [("viewer", &boot.viewer, 1), ("builder", &boot.builder, 2), ("admin", &boot.admin, velu_core::scopes::Role::Admin.scopes().names().len())] {
            assert!(token.starts_with("velu_k1_"), "{role}");
            let me = env.http(Method::GET, "/v1/whoami", Some(token), None).await;
            assert_eq!(me.status, 200, "{role}: {}", me.text);
            assert_eq!(me.body["org"]["slug"], "acme");
            assert_eq!(me.body["plan"], "hero");
            assert_eq!(me.body["scopes"].as_array().unwrap().len(), scope_count, "{role}");
            assert_eq!(boot.doc["keys"][role]["key"]["name"], role);
        }
        assert!(!boot.doc["keys"]["admin"]["key"]["scopes"].as_array().unwrap().iter().any(|s| s == "admin:orgs:manage"),
            "org admins never get platform powers");

        // Again: a conflict that changes nothing.
        let again = env.cli(&["org", "bootstrap", "--name", "Other", "--slug", "acme"]).await;
        assert_eq!(again.error_code(), "conflict");
        assert_eq!(env.http(Method::GET, "/v1/whoami", Some(&boot.admin), None).await.status, 200);
        assert_eq!(env.cli_ok(&["key", "list", "--org", "acme"]).await["items"].as_array().unwrap().len(), 3);

        // --rotate re-issues the three keys: same ids, new secrets, old ones refused at once.
        let rotated = env.cli_ok(&["org", "bootstrap", "--name", "Acme", "--slug", "acme", "--rotate"]).await;
        assert_eq!(rotated["rotated"], true);
        assert_eq!(rotated["keys"]["admin"]["key"]["id"], boot.doc["keys"]["admin"]["key"]["id"]);
        let new_admin = rotated["keys"]["admin"]["token"].as_str().unwrap();
        assert_ne!(new_admin, boot.admin);
        // The CLI is another process: a node that never cached the old secret refuses it,
        // and the test's node drops it within the cache TTL.
        let fresh = env.another_node(velu_core::OpenOptions::default()).await;
        assert!(velu_core::auth::authenticate(&fresh, &boot.admin, None).await.is_err());
        assert!(velu_core::auth::authenticate(&fresh, new_admin, None).await.is_ok());
        assert_eq!(env.http(Method::GET, "/v1/whoami", Some(new_admin), None).await.status, 200);
    }

    async fn env_file_is_private_and_complete(env) {
        use std::os::unix::fs::PermissionsExt;
        let path = env.home().join("acme.env");
        let doc = env.cli_ok(&["org", "bootstrap", "--name", "Acme", "--slug", "acme", "--env-file", path.to_str().unwrap()]).await;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        for (var, value) in [
            ("VELU_ORG", "acme"),
            ("VELU_VIEWER_KEY", doc["keys"]["viewer"]["token"].as_str().unwrap()),
            ("VELU_BUILDER_KEY", doc["keys"]["builder"]["token"].as_str().unwrap()),
            ("VELU_ADMIN_KEY", doc["keys"]["admin"]["token"].as_str().unwrap()),
        ] {
            assert!(text.contains(&format!("{var}=\"{value}\"\n")), "{var} missing from {text}");
        }
    }

    async fn raw_keys_are_never_stored(env) {
        let boot = bootstrap(&env, "acme", "hero").await;
        let created = env.cli_ok(&["key", "create", "--org", "acme", "--name", "ci", "--role", "builder"]).await;
        let token = created["token"].as_str().unwrap().to_owned();
        let secret = &token[token.len() - 49..token.len() - 6];
        // As the database's owner: every row of every org, past row-level security.
        let owner = crate::support::owner_tx(env.velu()).await;
        let conn = &owner;
        let backend = conn.get_database_backend();
        for table in ["api_keys", "audit_events", "organizations"] {
            let rows = conn
                .query_all_raw(Statement::from_string(backend, format!("SELECT * FROM {table}")))
                .await
                .unwrap();
            let dump = format!("{rows:?}");
            for t in [&token, &boot.admin] {
                assert!(!dump.contains(t.as_str()), "raw key in {table}");
            }
            assert!(!dump.contains(secret), "secret in {table}");
        }
        let listed = env.cli(&["key", "list", "--org", "acme"]).await;
        assert!(!listed.stdout.contains(secret), "listings never show secrets");
    }

    async fn keys_lifecycle_over_http(env) {
        let boot = bootstrap(&env, "acme", "hero").await;
        let admin = Some(boot.admin.as_str());
        let made = env.http(Method::POST, "/v1/orgs/acme/keys", admin, Some(json!({"name": "deploy", "scopes": ["jobs:submit"]}))).await;
        assert_eq!(made.status, 201, "{}", made.text);
        let kid = made.body["key"]["id"].as_str().unwrap().to_owned();
        let token = made.body["token"].as_str().unwrap().to_owned();
        assert_eq!(env.http(Method::GET, "/v1/whoami", Some(&token), None).await.status, 200);

        let dup = env.http(Method::POST, "/v1/orgs/acme/keys", admin, Some(json!({"name": "deploy", "role": "viewer"}))).await;
        assert_eq!(dup.problem_code(), "conflict");

        let shown = env.http(Method::GET, &format!("/v1/orgs/acme/keys/{kid}"), admin, None).await;
        assert_eq!(shown.body["status"], "active");

        let revoked = env.http(Method::POST, &format!("/v1/orgs/acme/keys/{kid}/revoke"), admin, None).await;
        assert_eq!(revoked.status, 200);
        assert_eq!(revoked.body["status"], "revoked");
        assert_eq!(env.http(Method::GET, "/v1/whoami", Some(&token), None).await.status, 401, "refused at once");
        let again = env.http(Method::POST, &format!("/v1/orgs/acme/keys/{kid}/revoke"), admin, None).await;
        assert_eq!(again.status, 200, "revoke is idempotent");
        assert_eq!(again.body["revoked_at"], revoked.body["revoked_at"]);
        let rotate = env.http(Method::POST, &format!("/v1/orgs/acme/keys/{kid}/rotate"), admin, None).await;
        assert_eq!(rotate.problem_code(), "conflict", "a revoked key is never un-revoked");

        // The name is free again once the old key is revoked.
        let reused = env.http(Method::POST, "/v1/orgs/acme/keys", admin, Some(json!({"name": "deploy", "role": "viewer"}))).await;
        assert_eq!(reused.status, 201);
    }

    async fn rotation_with_and_without_grace(env) {
        let boot = bootstrap(&env, "acme", "hero").await;
        let admin = Some(boot.admin.as_str());
        let made = env.cli_ok(&["key", "create", "--org", "acme", "--name", "svc", "--role", "viewer"]).await;
        let (kid, old) = (made["key"]["id"].as_str().unwrap().to_owned(), made["token"].as_str().unwrap().to_owned());

        let graced = env.http(Method::POST, &format!("/v1/orgs/acme/keys/{kid}/rotate?grace_secs=600"), admin, None).await;
        assert_eq!(graced.status, 200, "{}", graced.text);
        let new = graced.body["token"].as_str().unwrap().to_owned();
        assert_eq!(graced.body["key"]["id"], kid.as_str(), "same key id");
        assert!(graced.body["key"]["grace_until"].is_string());
        assert_eq!(env.http(Method::GET, "/v1/whoami", Some(&old), None).await.status, 200, "old secret works during grace");
        assert_eq!(env.http(Method::GET, "/v1/whoami", Some(&new), None).await.status, 200);

        // Rotated on this node: refused at once (another node's CLI is covered by
        // `revocation_reaches_another_node_within_seconds`).
        let hard = env.http(Method::POST, &format!("/v1/orgs/acme/keys/{kid}/rotate"), admin, None).await;
        let newest = hard.body["token"].as_str().unwrap();
        for stale in [&old, &new] {
            assert_eq!(env.http(Method::GET, "/v1/whoami", Some(stale), None).await.status, 401, "rotated out");
        }
        assert_eq!(env.http(Method::GET, "/v1/whoami", Some(newest), None).await.status, 200);

        let too_long = env.cli(&["key", "rotate", &kid, "--org", "acme", "--grace", "30d"]).await;
        assert_eq!(too_long.error_code(), "invalid");
    }

    async fn expired_keys_are_refused(env) {
        bootstrap(&env, "acme", "hero").await;
        let past = env.cli(&["key", "create", "--org", "acme", "--name", "old", "--role", "viewer", "--expires-at", "2020-01-01T00:00:00Z"]).await;
        assert_eq!(past.error_code(), "invalid", "expiry must be in the future");
        let soon = (chrono_like_now_plus_secs(2)).to_string();
        let made = env.cli_ok(&["key", "create", "--org", "acme", "--name", "brief", "--role", "viewer", "--expires-at", &soon]).await;
        let token = made["token"].as_str().unwrap();
        assert_eq!(env.http(Method::GET, "/v1/whoami", Some(token), None).await.status, 200);
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        assert_eq!(env.http(Method::GET, "/v1/whoami", Some(token), None).await.status, 401, "expired, even from the cache");
        let shown = env.cli_ok(&["key", "show", made["key"]["id"].as_str().unwrap(), "--org", "acme"]).await;
        assert_eq!(shown["status"], "expired");
    }

    async fn a_key_never_grants_more_than_its_creator(env) {
        let boot = bootstrap(&env, "acme", "hero").await;
        let admin = Some(boot.admin.as_str());
        let platform = env.http(Method::POST, "/v1/orgs/acme/keys", admin, Some(json!({"name": "x", "scopes": ["admin:orgs:manage"]}))).await;
        assert_eq!(platform.problem_code(), "invalid", "platform scopes never go on org keys");
        let bogus = env.http(Method::POST, "/v1/orgs/acme/keys", admin, Some(json!({"name": "x", "scopes": ["bogus:scope"]}))).await;
        assert_eq!(bogus.problem_code(), "invalid", "the scope set is closed");

        // A key manager without jobs:submit cannot mint a builder.
        let limited = env.cli_ok(&["key", "create", "--org", "acme", "--name", "keys-only", "--scopes", "admin:api_keys:manage,jobs:read"]).await;
        let limited = limited["token"].as_str().unwrap();
        let up = env.http(Method::POST, "/v1/orgs/acme/keys", Some(limited), Some(json!({"name": "y", "role": "builder"}))).await;
        assert_eq!(up.problem_code(), "forbidden");
        assert_eq!(up.body["scope"], "jobs:submit");
        let ok = env.http(Method::POST, "/v1/orgs/acme/keys", Some(limited), Some(json!({"name": "y", "role": "viewer"}))).await;
        assert_eq!(ok.status, 201);
    }

    async fn base_plan_caps_active_keys(env) {
        bootstrap(&env, "tiny", "base").await;
        env.cli_ok(&["key", "create", "--org", "tiny", "--name", "k4", "--role", "viewer"]).await;
        env.cli_ok(&["key", "create", "--org", "tiny", "--name", "k5", "--role", "viewer"]).await;
        let sixth = env.cli(&["key", "create", "--org", "tiny", "--name", "k6", "--role", "viewer"]).await;
        assert_eq!(sixth.error_code(), "quota_exceeded");
        let id = env.cli_ok(&["key", "list", "--org", "tiny"]).await["items"][4]["id"].as_str().unwrap().to_owned();
        env.cli_ok(&["key", "revoke", &id, "--org", "tiny"]).await;
        env.cli_ok(&["key", "create", "--org", "tiny", "--name", "k6", "--role", "viewer"]).await;
    }

    async fn key_quota_counts_live_keys_only_however_long_the_history(env) {
        let tiny = bootstrap(&env, "tiny", "base").await;
        // A long history of revoked keys, and keys that expired without being revoked.
        for i in 0..30 {
            let k = env.cli_ok(&["key", "create", "--org", "tiny", "--name", &format!("old-{i}"), "--role", "viewer"]).await;
            let id = k["key"]["id"].as_str().unwrap().to_owned();
            env.cli_ok(&["key", "revoke", &id, "--org", "tiny"]).await;
        }
        for i in 0..2 {
            env.cli_ok(&["key", "create", "--org", "tiny", "--name", &format!("short-{i}"), "--role", "viewer"]).await;
        }
        // 3 bootstrap keys + 2 = the base plan's 5.
        let over = env.cli(&["key", "create", "--org", "tiny", "--name", "over", "--role", "viewer"]).await;
        assert_eq!(over.error_code(), "quota_exceeded");
        crate::support::exec(env.velu(), &format!(
            "UPDATE api_keys SET expires_at = '2020-01-01T00:00:00Z' WHERE org_id = '{}' AND name LIKE 'short-%'", tiny.org_id)).await;
        // The two expired keys free their places; no more.
        env.cli_ok(&["key", "create", "--org", "tiny", "--name", "new-1", "--role", "viewer"]).await;
        env.cli_ok(&["key", "create", "--org", "tiny", "--name", "new-2", "--role", "viewer"]).await;
        let over = env.cli(&["key", "create", "--org", "tiny", "--name", "over", "--role", "viewer"]).await;
        assert_eq!(over.error_code(), "quota_exceeded");
    }

    async fn concurrent_creates_never_pass_the_key_quota(env) {
        use velu_core::keys::{CreateKey, KeyOwner, create_key};
        use velu_core::orgs::OrgRef;
        let tiny = bootstrap(&env, "tiny", "base").await;
        // 3 bootstrap keys: the base plan's 5 leave room for 2, however many race for them.
        let tries = (0..12).map(|i| {
            let velu = env.velu().clone();
            async move {
                let input = CreateKey { name: format!("racer-{i}"), role: Some("viewer".into()), ..Default::default() };
                create_key(&velu, &velu_core::Principal::operator(), &KeyOwner::Org(OrgRef::new("tiny")), &input).await
            }
        });
        assert_eq!(race(tries, "quota_exceeded", "racing creates").await, 2, "the races that won");
        let active = crate::support::scalar::<i64>(env.velu(), &format!(
            "SELECT count(*) FROM api_keys WHERE org_id = '{}' AND revoked_at IS NULL", tiny.org_id)).await;
        assert_eq!(active, 5);
    }

    async fn concurrent_creates_of_one_name_make_one_key(env) {
        use velu_core::keys::{CreateKey, KeyOwner, create_key};
        use velu_core::orgs::OrgRef;
        bootstrap(&env, "acme", "hero").await;
        // Per owner (an org's keys, the platform's), eight creates of one name at once, in
        // two rounds (the second finds the pool's connections open): one key each round,
        // the rest a plain `conflict`, never an internal error from the unique index.
        for owner in [KeyOwner::Org(OrgRef::new("acme")), KeyOwner::Platform] {
            for round in ["dup-1", "dup-2"] {
                let tries = (0..8).map(|_| {
                    let (velu, owner) = (env.velu().clone(), owner.clone());
                    let input = CreateKey { name: round.into(), role: Some("viewer".into()), ..Default::default() };
                    let input = if matches!(owner, KeyOwner::Platform) {
                        CreateKey { role: None, scopes: vec!["jobs:read".into()], ..input }
                    } else {
                        input
                    };
                    async move { create_key(&velu, &velu_core::Principal::operator(), &owner, &input).await }
                });
                let what = format!("{owner:?} {round}");
                assert_eq!(race(tries, "conflict", &what).await, 1, "{what}");
            }
        }
    }

    async fn legacy_keys_verify_and_rotate_into_v1(env) {
        bootstrap(&env, "acme", "hero").await;
        let raw = "velu_LegacyRawKeyFromTheEarlierSystem_0123456789ab";
        let digest = env.velu().hasher().unwrap().legacy_digest(raw);
        let imported = env.cli_ok(&["key", "import", "--org", "acme", "--name", "old-client", "--scopes", "jobs:read", "--hash", &digest]).await;
        assert_eq!(imported["legacy"], true);
        let kid = imported["id"].as_str().unwrap().to_owned();
        let me = env.http(Method::GET, "/v1/whoami", Some(raw), None).await;
        assert_eq!(me.status, 200, "{}", me.text);
        assert_eq!(me.body["actor_id"], kid.as_str());
        assert_eq!(env.http(Method::GET, "/v1/whoami", Some("velu_LegacyRawKeyFromTheEarlierSystem_0123456789aX"), None).await.status, 401);
        let dup = env.cli(&["key", "import", "--org", "acme", "--name", "again", "--scopes", "jobs:read", "--hash", &digest]).await;
        assert_eq!(dup.error_code(), "conflict");

        let admin = env.cli_ok(&["key", "create", "--org", "acme", "--name", "keys", "--role", "admin"]).await;
        let admin = admin["token"].as_str().unwrap();
        let rotated = env.http(Method::POST, &format!("/v1/orgs/acme/keys/{kid}/rotate"), Some(admin), None).await;
        assert_eq!(rotated.body["key"]["legacy"], false, "{}", rotated.text);
        assert_eq!(env.http(Method::GET, "/v1/whoami", Some(raw), None).await.status, 401, "legacy secret rotated out");
        assert_eq!(env.http(Method::GET, "/v1/whoami", Some(rotated.body["token"].as_str().unwrap()), None).await.status, 200);
    }

    async fn a_legacy_hash_that_starts_with_a_hyphen_is_a_value(env) {
        // base64url digests begin with `-` one time in 64; the CLI once took such a
        // `--hash` value for an option and refused the import.
        bootstrap(&env, "acme", "hero").await;
        let hasher = env.velu().hasher().unwrap();
        let (raw, digest) = (0..10_000)
            .map(|i| format!("velu_LegacyRawKeyWithAHyphenatedDigest_{i:05}"))
            .map(|raw| { let d = hasher.legacy_digest(&raw); (raw, d) })
            .find(|(_, d)| d.starts_with('-'))
            .expect("a digest starting with '-' among 10,000");
        let imported = env.cli_ok(&["key", "import", "--org", "acme", "--name", "hyphen", "--scopes", "jobs:read", "--hash", &digest]).await;
        assert_eq!(imported["legacy"], true);
        let me = env.http(Method::GET, "/v1/whoami", Some(&raw), None).await;
        assert_eq!(me.status, 200, "{}", me.text);
        assert_eq!(me.body["actor_id"], imported["id"]);
    }

    async fn a_legacy_hash_held_by_two_active_keys_opens_neither(env) {
        bootstrap(&env, "acme", "hero").await;
        let beta = bootstrap(&env, "beta", "hero").await;
        let raw = "velu_LegacyRawKeyFromTheEarlierSystem_twice_0123";
        let digest = env.velu().hasher().unwrap().legacy_digest(raw);
        let imported = env.cli_ok(&["key", "import", "--org", "acme", "--name", "old-client", "--scopes", "jobs:read", "--hash", &digest]).await;
        let kid = imported["id"].as_str().unwrap().to_owned();
        let fresh = || async { env.another_node(velu_core::OpenOptions::default()).await };
        let who = velu_core::auth::authenticate(&fresh().await, raw, None).await.unwrap();
        assert_eq!(who.actor.id, kid);
        // What two imports at once into two orgs could leave (each checked that no active
        // key held the hash): the same hash on a key of beta.
        crate::support::exec(env.velu(), &format!(
            "INSERT INTO api_keys (kid, org_id, name, scopes, secret_hash, legacy, created_by_type, created_by_id, created_at, updated_at)
             SELECT 'dUpL1cAt3dUpL1cA', '{}', name, scopes, secret_hash, legacy, created_by_type, created_by_id, created_at, updated_at
             FROM api_keys WHERE kid = '{kid}'", beta.org_id)).await;
        let refused = velu_core::auth::authenticate(&fresh().await, raw, None).await.unwrap_err();
        assert_eq!(refused.code(), "unauthorized", "neither org may get the text");
        // Revoking one gives the text back to the other.
        env.cli_ok(&["key", "revoke", "dUpL1cAt3dUpL1cA", "--org", "beta"]).await;
        let who = velu_core::auth::authenticate(&fresh().await, raw, None).await.unwrap();
        assert_eq!(who.actor.id, kid);
    }

    async fn platform_keys_manage_orgs_over_http(env) {
        // Bootstrap issues an admin key, so it needs every admin scope besides orgs:manage
        // (tests/it/escalation.rs tries it with less).
        let key = platform_key(&env, "ops", "admin:orgs:manage,admin:api_keys:manage,admin:queue:manage,admin:secrets:manage,audit:read,jobs:read,jobs:submit,usage:read").await;
        let made = env.http(Method::POST, "/v1/orgs/bootstrap", Some(&key), Some(json!({"name": "Beta", "slug": "beta", "plan": "hero"}))).await;
        assert_eq!(made.status, 201, "{}", made.text);
        assert_eq!(made.body["org"]["plan"], "hero");
        let again = env.http(Method::POST, "/v1/orgs/bootstrap", Some(&key), Some(json!({"name": "Beta", "slug": "beta"}))).await;
        assert_eq!(again.problem_code(), "conflict");
        let listed = env.http(Method::GET, "/v1/orgs?q=bet", Some(&key), None).await;
        assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
        let plan = env.http(Method::PUT, "/v1/orgs/beta/plan", Some(&key), Some(json!({"plan": "superhero"}))).await;
        assert_eq!(plan.body["plan"], "superhero");
        // Org admins cannot do any of it.
        let admin = made.body["keys"]["admin"]["token"].as_str().unwrap();
        let denied = env.http(Method::GET, "/v1/orgs", Some(admin), None).await;
        assert_eq!(denied.problem_code(), "forbidden");
        assert_eq!(denied.body["scope"], "admin:orgs:manage");
    }

    async fn audit_log_records_mutations(env) {
        let boot = bootstrap(&env, "acme", "hero").await;
        let made = env.http(Method::POST, "/v1/orgs/acme/keys", Some(&boot.admin), Some(json!({"name": "ci", "role": "viewer"}))).await;
        let kid = made.body["key"]["id"].as_str().unwrap();
        env.http(Method::POST, &format!("/v1/orgs/acme/keys/{kid}/revoke"), Some(&boot.admin), None).await;
        let log = env.http(Method::GET, "/v1/orgs/acme/audit", Some(&boot.admin), None).await;
        assert_eq!(log.status, 200, "{}", log.text);
        let items = log.body["items"].as_array().unwrap();
        let actions: Vec<_> = items.iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(&actions[..2], ["key.revoke", "key.create"]);
        let admin_kid = boot.doc["keys"]["admin"]["key"]["id"].as_str().unwrap();
        assert_eq!(items[0]["actor_type"], "api_key");
        assert_eq!(items[0]["actor_id"], admin_kid);
        assert!(actions.contains(&"org.bootstrap") && actions.contains(&"org.create"));
        assert!(!log.text.contains("velu_k1_"), "no secrets in the audit log");
        let viewer = env.http(Method::GET, "/v1/orgs/acme/audit", Some(&boot.viewer), None).await;
        assert_eq!(viewer.problem_code(), "forbidden");
    }

    async fn an_org_reads_what_the_platform_did_as_the_platform(env) {
        // The operator bootstraps acme (records by its OS user), a platform key changes
        // acme's plan, acme's admin makes a key.
        let boot = bootstrap(&env, "acme", "hero").await;
        let ops = platform_key(&env, "ops", "admin:orgs:manage").await;
        let plan = env.http(Method::PUT, "/v1/orgs/acme/plan", Some(&ops), Some(json!({"plan": "superhero"}))).await;
        assert_eq!(plan.status, 200, "{}", plan.text);
        let made = env.http(Method::POST, "/v1/orgs/acme/keys", Some(&boot.admin), Some(json!({"name": "ci", "role": "viewer"}))).await;
        assert_eq!(made.status, 201, "{}", made.text);
        // The operator reads who did what.
        let truth = env.cli_ok(&["audit", "list", "--org", "acme"]).await;
        let truth = truth["items"].as_array().unwrap().clone();
        let by = |items: &[Value], action: &str| -> (String, String) {
            let e = items.iter().find(|e| e["action"] == action).unwrap_or_else(|| panic!("{action} in {items:?}"));
            (e["actor_type"].as_str().unwrap().to_owned(), e["actor_id"].as_str().unwrap().to_owned())
        };
        let (kind, os_user) = by(&truth, "org.bootstrap");
        assert_eq!(kind, "cli");
        assert_ne!(os_user, "platform");
        let ops_kid = by(&truth, "org.set_plan").1;
        assert_ne!(ops_kid, "platform");
        // Acme's admin reads the platform's actions as the platform's, its own as its own.
        let log = env.http(Method::GET, "/v1/orgs/acme/audit", Some(&boot.admin), None).await;
        assert_eq!(log.status, 200, "{}", log.text);
        let items = log.body["items"].as_array().unwrap().clone();
        for action in ["org.bootstrap", "org.create", "org.set_plan"] {
            assert_eq!(by(&items, action), ("platform".to_owned(), "platform".to_owned()), "{action}");
        }
        let admin_kid = boot.doc["keys"]["admin"]["key"]["id"].as_str().unwrap();
        assert_eq!(by(&items, "key.create"), ("api_key".to_owned(), admin_kid.to_owned()));
        assert_eq!(items.len(), truth.len(), "every record is there");
        assert!(!log.text.contains(&format!("\"{os_user}\"")), "no OS user of the platform");
        assert!(!log.text.contains(&ops_kid), "no platform key id");
    }

    async fn last_used_is_written_in_batches(env) {
        let boot = bootstrap(&env, "acme", "hero").await;
        env.http(Method::GET, "/v1/whoami", Some(&boot.viewer), None).await;
        let kid = boot.doc["keys"]["viewer"]["key"]["id"].as_str().unwrap();
        let before = env.cli_ok(&["key", "show", kid, "--org", "acme"]).await;
        assert!(before["last_used_at"].is_null(), "no write per request");
        let written = velu_core::auth::flush_last_used(env.velu()).await.unwrap();
        assert_eq!(written, 1);
        let after = env.cli_ok(&["key", "show", kid, "--org", "acme"]).await;
        assert!(after["last_used_at"].is_string());
    }
}

/// RFC 3339 time `secs` from now (UTC).
fn chrono_like_now_plus_secs(secs: i64) -> String {
    let t = velu_core::time::now() + chrono::Duration::seconds(secs);
    velu_core::time::format(&t)
}
