//! The fleet registry: local workers register, beat and stop; states follow the clock;
//! prune removes old rows; org keys see only their own org's workers; no owner takes
//! another's worker id; odd input is refused.

use std::time::Duration;

use chrono::{DateTime, Utc};
use poem::http::Method;
use serde_json::Value;
use velu_core::fleet::{self, WorkerFilter, WorkerRegistration, WorkerState};
use velu_core::pagination::PageRequest;
use velu_core::time::now;
use velu_core::{Principal, Velu};
use velu_tests::{TestEnv, backend_tests};

use crate::support::{
    bootstrap, eventually, exec, fast_worker, owner_tx, platform_key, race, scalar, spawn_worker,
};

/// A registration of `id` for `org_id` at `at`, beating every 10 s.
fn reg(id: &str, org_id: Option<&str>, at: DateTime<Utc>) -> WorkerRegistration {
    WorkerRegistration {
        id: id.to_owned(),
        org_id: org_id.map(str::to_owned),
        host: format!("{id}.example"),
        version: "0.1.0".into(),
        kinds: vec!["echo".into()],
        remote: org_id.is_some(),
        concurrency: 2,
        heartbeat: Duration::from_secs(10),
        at,
    }
}

/// The state of every worker at `at`, as the operator sees them, by id.
async fn states(velu: &Velu, at: DateTime<Utc>) -> Vec<(String, WorkerState)> {
    let list = fleet::list_workers_at(
        velu,
        &Principal::operator(),
        &WorkerFilter::default(),
        &PageRequest::default(),
        at,
    )
    .await
    .unwrap();
    list.items.into_iter().map(|w| (w.id, w.state)).collect()
}

/// The ids of a `GET /v1/workers...` answer for `key`.
async fn http_ids(env: &TestEnv, path: &str, key: &str) -> Vec<String> {
    let r = env.http(Method::GET, path, Some(key), None).await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    ids(&r.body)
}

fn ids(doc: &Value) -> Vec<String> {
    doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap().to_owned())
        .collect()
}

fn secs(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

backend_tests! {
    async fn a_local_worker_registers_beats_and_says_it_stopped(env) {
        let cfg = velu_core::worker::WorkerConfig {
            tasks: Some(vec!["echo".into(), "add".into()]),
            ..fast_worker("fleet-local")
        };
        let w = spawn_worker(env.velu(), cfg);
        let first = eventually(10, || {
            let env = env.clone();
            async move {
                let list = env.cli_ok(&["worker", "list"]).await;
                list["items"].as_array().unwrap().iter().find(|w| w["id"] == "fleet-local").cloned()
            }
        })
        .await;
        assert_eq!(first["location"], "local");
        assert_eq!(first["state"], "live");
        assert!(first["org_id"].is_null(), "a local worker serves the platform");
        assert_eq!(first["kinds"], serde_json::json!(["add", "echo"]));
        assert_eq!(first["concurrency"], 4);
        assert_eq!(first["heartbeat_secs"], 1, "300 ms rounds up to 1 s");
        assert_eq!(first["version"], env!("CARGO_PKG_VERSION"));
        assert!(first["stopped_at"].is_null());
        // Its heartbeats move last_seen_at.
        let seen = first["last_seen_at"].clone();
        eventually(10, || {
            let (env, seen) = (env.clone(), seen.clone());
            async move {
                let list = env.cli_ok(&["worker", "list", "--state", "live"]).await;
                list["items"].as_array().unwrap().iter()
                    .find(|w| w["id"] == "fleet-local" && w["last_seen_at"] != seen)
                    .map(|_| ())
            }
        })
        .await;
        w.stop().await;
        let list = env.cli_ok(&["worker", "list", "--state", "stopped"]).await;
        assert_eq!(ids(&list), ["fleet-local"]);
        let stopped = &list["items"][0];
        assert!(stopped["stopped_at"].is_string());
        assert_eq!(stopped["running_jobs"], 0);
        assert!(ids(&env.cli_ok(&["worker", "list", "--state", "live"]).await).is_empty());
        // A platform key with `jobs:work` sees the same over HTTP.
        let key = platform_key(&env, "fleet", "jobs:work").await;
        assert_eq!(http_ids(&env, "/v1/workers?state=stopped", &key).await, ["fleet-local"]);
    }

    async fn states_follow_the_clock_and_prune_removes_old_rows(env) {
        let velu = env.velu();
        let t0 = now();
        fleet::register(velu, &reg("quiet", None, t0)).await.unwrap();
        fleet::register(velu, &reg("busy", None, t0)).await.unwrap();
        // Stale after three missed 10 s heartbeats, not before.
        assert_eq!(states(velu, t0 + secs(30)).await, [("busy".into(), WorkerState::Live), ("quiet".into(), WorkerState::Live)]);
        assert_eq!(states(velu, t0 + secs(31)).await, [("busy".into(), WorkerState::Stale), ("quiet".into(), WorkerState::Stale)]);
        // A beat makes it live again and records the running count.
        fleet::beat(velu, "busy", None, 2, t0 + secs(40)).await.unwrap();
        let at = t0 + secs(41);
        assert_eq!(states(velu, at).await, [("busy".into(), WorkerState::Live), ("quiet".into(), WorkerState::Stale)]);
        let only = |state: &str| WorkerFilter { org: None, state: Some(state.into()) };
        let who = Principal::operator();
        let stale = fleet::list_workers_at(velu, &who, &only("stale"), &PageRequest::default(), at).await.unwrap();
        assert_eq!(stale.items.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(), ["quiet"]);
        let live = fleet::list_workers_at(velu, &who, &only("live"), &PageRequest::default(), at).await.unwrap();
        assert_eq!(live.items.len(), 1);
        assert_eq!((live.items[0].id.as_str(), live.items[0].running_jobs), ("busy", 2));
        // Stopped: final for this registration (a late beat does not revive it).
        fleet::stopped(velu, "busy", None, t0 + secs(50)).await.unwrap();
        fleet::stopped(velu, "busy", None, t0 + secs(51)).await.expect("stopping twice is fine");
        let late = fleet::beat(velu, "busy", None, 1, t0 + secs(52)).await.unwrap_err();
        assert_eq!(late.code(), "not_found");
        assert_eq!(states(velu, t0 + secs(60)).await[0], ("busy".into(), WorkerState::Stopped));
        // Prune: stopped rows after an hour, unseen rows after a day.
        assert_eq!(fleet::prune(velu, t0 + secs(50) + chrono::Duration::minutes(59)).await.unwrap(), 0);
        assert_eq!(fleet::prune(velu, t0 + secs(50) + chrono::Duration::minutes(61)).await.unwrap(), 1);
        assert_eq!(states(velu, t0 + secs(3700)).await, [("quiet".into(), WorkerState::Stale)]);
        assert_eq!(fleet::prune(velu, t0 + chrono::Duration::hours(23)).await.unwrap(), 0);
        assert_eq!(fleet::prune(velu, t0 + chrono::Duration::hours(25)).await.unwrap(), 1);
        assert!(states(velu, t0 + chrono::Duration::hours(25)).await.is_empty());
        // A pruned worker beating is told to register again.
        let gone = fleet::beat(velu, "quiet", None, 0, t0 + chrono::Duration::hours(25)).await.unwrap_err();
        assert_eq!(gone.code(), "not_found");
    }

    async fn org_keys_see_only_their_own_orgs_workers(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        let globex = bootstrap(&env, "globex", "hero").await;
        let velu = env.velu();
        let t = now();
        fleet::register(velu, &reg("plat-1", None, t)).await.unwrap();
        fleet::register(velu, &reg("acme-1", Some(&acme.org_id), t)).await.unwrap();
        fleet::register(velu, &reg("globex-1", Some(&globex.org_id), t)).await.unwrap();

        // Org keys (any role: viewer included) see their own org's workers only.
        for key in [&acme.viewer, &acme.builder, &acme.admin] {
            assert_eq!(http_ids(&env, "/v1/workers", key).await, ["acme-1"]);
            assert_eq!(http_ids(&env, "/v1/workers?org=acme", key).await, ["acme-1"]);
            assert_eq!(http_ids(&env, &format!("/v1/workers?org={}", acme.org_id), key).await, ["acme-1"]);
        }
        let doc = env.http(Method::GET, "/v1/workers", Some(&acme.viewer), None).await.body;
        assert_eq!(doc["items"][0]["location"], "remote");
        assert_eq!(doc["items"][0]["org_id"], acme.org_id.as_str());
        assert_eq!(http_ids(&env, "/v1/workers", &globex.viewer).await, ["globex-1"]);
        // Naming another org is not_found, by slug or by id, with the same words as a
        // missing org.
        for path in ["/v1/workers?org=globex".to_owned(), format!("/v1/workers?org={}", globex.org_id), "/v1/workers?org=nope".to_owned()] {
            let r = env.http(Method::GET, &path, Some(&acme.viewer), None).await;
            assert_eq!((r.status, r.problem_code()), (404, "not_found".to_owned()), "{path}");
        }
        // An org key without jobs:read is forbidden.
        let audit_only = env.cli_ok(&["key", "create", "--org", "acme", "--name", "audit-only", "--scopes", "audit:read"]).await;
        let r = env.http(Method::GET, "/v1/workers", audit_only["token"].as_str(), None).await;
        assert_eq!((r.status, r.problem_code()), (403, "forbidden".to_owned()));
        // Platform keys: jobs:work or admin:orgs:manage see everything; jobs:read alone does not.
        for scopes in ["jobs:work", "admin:orgs:manage"] {
            let key = platform_key(&env, &scopes.replace(':', "-"), scopes).await;
            assert_eq!(http_ids(&env, "/v1/workers", &key).await, ["acme-1", "globex-1", "plat-1"]);
            assert_eq!(http_ids(&env, "/v1/workers?org=globex", &key).await, ["globex-1"]);
        }
        let reader = platform_key(&env, "reader", "jobs:read,jobs:submit,audit:read").await;
        let r = env.http(Method::GET, "/v1/workers", Some(&reader), None).await;
        assert_eq!((r.status, r.problem_code()), (403, "forbidden".to_owned()));
        // No key at all.
        let r = env.http(Method::GET, "/v1/workers", None, None).await;
        assert_eq!(r.status, 401);
        // The operator sees everything, and filters.
        assert_eq!(ids(&env.cli_ok(&["worker", "list"]).await), ["acme-1", "globex-1", "plat-1"]);
        assert_eq!(ids(&env.cli_ok(&["worker", "list", "--org", "acme"]).await), ["acme-1"]);
        // Pages: bounded, and a cursor bound to its filters.
        let page = env.cli_ok(&["worker", "list", "--limit", "2"]).await;
        assert_eq!(ids(&page), ["acme-1", "globex-1"]);
        let cursor = page["next_cursor"].as_str().unwrap().to_owned();
        assert_eq!(ids(&env.cli_ok(&["worker", "list", "--limit", "2", "--cursor", &cursor]).await), ["plat-1"]);
        assert_eq!(env.cli(&["worker", "list", "--org", "acme", "--cursor", &cursor]).await.error_code(), "invalid");
        assert_eq!(ids(&env.cli_ok(&["worker", "list", "--limit", "1", "--all"]).await).len(), 3);
        let r = env.http(Method::GET, "/v1/workers?limit=201", Some(&acme.viewer), None).await;
        assert_eq!(r.status, 400);
    }

    async fn each_owner_has_worker_ids_of_its_own(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        let globex = bootstrap(&env, "globex", "hero").await;
        let velu = env.velu();
        let t = now();
        let (a, g) = (Some(acme.org_id.as_str()), Some(globex.org_id.as_str()));
        fleet::register(velu, &reg("acme-1", a, t)).await.unwrap();
        // An org registers first the id a platform worker will use: the platform's
        // registration is its own all the same (before, the org's row made it a conflict).
        fleet::register(velu, &reg("plat-1", a, t)).await.unwrap();
        let plat = fleet::register(velu, &reg("plat-1", None, t)).await.unwrap();
        assert_eq!((plat.org_id.as_deref(), plat.host.as_str()), (None, "plat-1.example"));
        // Another org, or the platform, registering acme's id makes a worker of its own,
        // and acme's row is untouched, whatever the registration says.
        for owner in [g, None] {
            let mut evil = reg("acme-1", owner, t + secs(1));
            evil.host = "evil.example".into();
            let own = fleet::register(velu, &evil).await.unwrap();
            assert_eq!(own.org_id.as_deref(), owner);
        }
        // Beating or stopping "acme-1" as globex or the platform touches their own rows.
        fleet::beat(velu, "acme-1", g, 9, t + secs(2)).await.unwrap();
        fleet::stopped(velu, "acme-1", None, t + secs(2)).await.unwrap();
        let r = env.http(Method::GET, "/v1/workers", Some(&acme.viewer), None).await;
        let mine = r.body["items"].as_array().expect("acme lists its workers").clone();
        assert_eq!(mine.len(), 2, "{}", r.text);
        for w in &mine {
            assert_eq!(w["org_id"].as_str(), a, "{w}");
            assert_ne!(w["host"], "evil.example");
            assert_eq!((w["running_jobs"].as_u64(), w["state"].as_str()), (Some(0), Some("live")), "{w}");
        }
        // The whole fleet: five workers, sorted by id then owner, each page after the last.
        let all = fleet::list_workers_at(velu, &Principal::operator(), &WorkerFilter::default(), &PageRequest::default(), t + secs(3)).await.unwrap();
        let owners: Vec<(String, Option<String>)> = all.items.iter().map(|w| (w.id.clone(), w.org_id.clone())).collect();
        assert_eq!(owners.len(), 5, "{owners:?}");
        let mut sorted = owners.clone();
        sorted.sort_by_key(|(id, org)| (id.clone(), org.clone().unwrap_or_default()));
        assert_eq!(owners, sorted);
        let mut paged = Vec::new();
        let mut cursor = None;
        loop {
            let page = PageRequest { limit: Some(1), cursor: cursor.clone() };
            let got = fleet::list_workers_at(velu, &Principal::operator(), &WorkerFilter::default(), &page, t + secs(3)).await.unwrap();
            paged.extend(got.items.iter().map(|w| (w.id.clone(), w.org_id.clone())));
            match got.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
            assert!(paged.len() <= 5, "pages repeat: {paged:?}");
        }
        assert_eq!(paged, owners, "one page each, none twice");
        // An empty org id never stands for the platform's rows.
        for e in [fleet::beat(velu, "plat-1", Some(""), 1, t + secs(4)).await, fleet::stopped(velu, "plat-1", Some(""), t + secs(4)).await] {
            assert_eq!(e.unwrap_err().code(), "invalid");
        }
        // Its owner re-registers it (a restart) at will; pruning goes by each row's age.
        let again = fleet::register(velu, &reg("acme-1", a, t + secs(5))).await.unwrap();
        assert_eq!((again.started_at.0, again.org_id.as_deref()), (t + secs(5), a));
        fleet::prune(velu, t + chrono::Duration::hours(1) + secs(3)).await.unwrap();
        let left = fleet::list_workers_at(velu, &Principal::operator(), &WorkerFilter::default(), &PageRequest::default(), t + secs(6)).await.unwrap();
        let left: Vec<(String, Option<String>)> = left.items.iter().map(|w| (w.id.clone(), w.org_id.clone())).collect();
        assert!(!left.contains(&("acme-1".to_owned(), None)), "the platform's stopped acme-1 is pruned: {left:?}");
        assert_eq!(left.len(), 4, "{left:?}");
    }

    async fn the_migration_carries_the_registry_over(env) {
        use migration::MigratorTrait;
        use velu_core::sea_orm::{ConnectionTrait, Statement};
        let acme = bootstrap(&env, "acme", "hero").await;
        let velu = env.velu();
        let t = now();
        let a = Some(acme.org_id.as_str());
        fleet::register(velu, &reg("acme-1", a, t)).await.unwrap();
        fleet::register(velu, &reg("plat-1", None, t)).await.unwrap();
        fleet::register(velu, &reg("both", a, t)).await.unwrap();
        fleet::register(velu, &reg("both", None, t)).await.unwrap();
        // Back to one namespace: one row per id, the platform's where two owners had it.
        let steps = crate::support::steps_back_to("m20261206_000024_workers_per_owner");
        let owner = owner_tx(velu).await;
        migration::Migrator::down(&owner, Some(steps)).await.expect("the step's down runs");
        owner.commit().await.unwrap();
        assert_eq!(scalar::<i64>(velu, "SELECT COUNT(*) FROM workers").await, 3);
        assert_eq!(scalar::<i64>(velu, "SELECT COUNT(*) FROM workers WHERE id = 'both' AND org_id IS NULL").await, 1);
        // And forward: every row under its owner.
        let owner = owner_tx(velu).await;
        migration::Migrator::up(&owner, None).await.expect("the step runs again");
        owner.commit().await.unwrap();
        let sql = format!(
            "SELECT COUNT(*) FROM workers WHERE (id = 'acme-1' AND owner = '{org}' AND org_id = '{org}') \
             OR (id IN ('plat-1', 'both') AND owner = '' AND org_id IS NULL)",
            org = acme.org_id
        );
        assert_eq!(scalar::<i64>(velu, &sql).await, 3);
        let list = fleet::list_workers_at(velu, &Principal::operator(), &WorkerFilter::default(), &PageRequest::default(), t + secs(1)).await.unwrap();
        assert_eq!(list.items.len(), 3);
        // The table refuses a row whose owner is not its org (or '' for none), and an
        // empty org id (it would stand among the platform's rows).
        for (owner, org) in [("''", "''"), ("'x'", "NULL"), ("''", &*format!("'{}'", acme.org_id))] {
            let tx = owner_tx(velu).await;
            let insert = format!(
                "INSERT INTO workers (owner, id, org_id, host, version, kinds, remote, concurrency, \
                 heartbeat_secs, running_jobs, started_at, last_seen_at, stale_at) \
                 SELECT {owner}, 'odd', {org}, host, version, kinds, remote, concurrency, heartbeat_secs, \
                 running_jobs, started_at, last_seen_at, stale_at FROM workers WHERE id = 'plat-1'"
            );
            let r = tx.execute_raw(Statement::from_string(tx.get_database_backend(), insert)).await;
            assert!(r.is_err(), "owner {owner} with org_id {org} was stored");
            drop(tx);
        }
        // The same insert with a matching owner goes in (the refusals above are the CHECK's).
        let org = format!("'{}'", acme.org_id);
        exec(velu, &format!(
            "INSERT INTO workers (owner, id, org_id, host, version, kinds, remote, concurrency, \
             heartbeat_secs, running_jobs, started_at, last_seen_at, stale_at) \
             SELECT {org}, 'odd', {org}, host, version, kinds, remote, concurrency, heartbeat_secs, \
             running_jobs, started_at, last_seen_at, stale_at FROM workers WHERE id = 'plat-1'"
        )).await;
    }

    async fn odd_registrations_and_filters_are_refused(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        let velu = env.velu();
        let t = now();
        let spoiled: Vec<(&str, WorkerRegistration)> = vec![
            ("host", WorkerRegistration { host: "a\0b".into(), ..reg("w", None, t) }),
            ("host", WorkerRegistration { host: "h".repeat(100_000), ..reg("w", None, t) }),
            ("kinds", WorkerRegistration { kinds: vec!["ec\0ho".into()], ..reg("w", None, t) }),
            ("kinds", WorkerRegistration { kinds: (0..10_000).map(|i| format!("k{i}")).collect(), ..reg("w", None, t) }),
            ("kinds", WorkerRegistration { kinds: vec!["k".repeat(10_000)], ..reg("w", None, t) }),
            ("id", WorkerRegistration { id: "w\0".into(), ..reg("w", None, t) }),
            ("id", WorkerRegistration { id: "w".repeat(201), ..reg("w", None, t) }),
            ("version", WorkerRegistration { version: "1\n2".into(), ..reg("w", None, t) }),
            ("concurrency", WorkerRegistration { concurrency: u32::MAX, ..reg("w", None, t) }),
        ];
        for (field, r) in spoiled {
            let err = fleet::register(velu, &r).await.unwrap_err();
            assert_eq!(err.code(), "invalid", "{field}");
            assert!(err.to_string().contains(field), "{err}");
        }
        assert!(states(velu, t).await.is_empty(), "nothing was stored");
        // NUL in the id or owner of a beat or stop: invalid, never a server error.
        assert_eq!(fleet::beat(velu, "w\0", None, 0, t).await.unwrap_err().code(), "invalid");
        assert_eq!(fleet::beat(velu, "w", Some("o\0"), 0, t).await.unwrap_err().code(), "invalid");
        assert_eq!(fleet::beat(velu, "w", None, u32::MAX, t).await.unwrap_err().code(), "invalid");
        assert_eq!(fleet::stopped(velu, "w\0", None, t).await.unwrap_err().code(), "invalid");
        // Odd filters over HTTP.
        for (path, status, code) in [
            ("/v1/workers?state=dead", 400, "invalid"),
            ("/v1/workers?org=%00", 404, "not_found"),
            ("/v1/workers?cursor=%00", 400, "invalid"),
        ] {
            let r = env.http(Method::GET, path, Some(&acme.viewer), None).await;
            assert_eq!((r.status, r.problem_code()), (status, code.to_owned()), "{path}");
        }
        // And on the CLI, the same verdicts from velu-core.
        assert_eq!(env.cli(&["worker", "list", "--state", "dead"]).await.error_code(), "invalid");
        assert_eq!(env.cli(&["worker", "list", "--org", "nope"]).await.error_code(), "not_found");
    }

    async fn an_org_holds_a_bounded_number_of_worker_rows(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        let velu = env.velu();
        let t = now();
        for i in 0..fleet::MAX_WORKERS_PER_ORG - 2 {
            fleet::register(velu, &reg(&format!("acme-{i:04}"), Some(&acme.org_id), t)).await.unwrap();
        }
        // Ten new ids race for the last two places: two win, however the races interleave.
        // (A first round re-registers ten held ids at once, so the race below finds its
        // connections open rather than queued behind their opening.)
        let registrations = |ids: Vec<String>| {
            ids.into_iter().map(|id| {
                let (velu, r) = (velu.clone(), reg(&id, Some(&acme.org_id), t));
                async move { fleet::register(&velu, &r).await }
            })
        };
        let held = registrations((0..10).map(|i| format!("acme-{i:04}")).collect());
        assert_eq!(race(held, "quota_exceeded", "re-registrations").await, 10, "re-registrations");
        let new = registrations((0..10).map(|i| format!("racer-{i}")).collect());
        assert_eq!(race(new, "quota_exceeded", "new ids").await, 2, "new ids");
        let err = fleet::register(velu, &reg("acme-one-more", Some(&acme.org_id), t)).await.unwrap_err();
        assert_eq!(err.code(), "quota_exceeded");
        // Re-registering one it holds still works; platform workers are not counted.
        fleet::register(velu, &reg("acme-0000", Some(&acme.org_id), t)).await.unwrap();
        fleet::register(velu, &reg("plat-1", None, t)).await.unwrap();
    }

    async fn worker_keeps_its_flags_and_list_its_own(env) {
        // `velu-cli worker [flags]` still runs a worker; a subcommand takes no run flags.
        let report = env.cli_ok(&["worker", "--once", "--id", "cli-once", "--concurrency", "2"]).await;
        assert_eq!(report["worker_id"], "cli-once");
        let list = env.cli_ok(&["worker", "list"]).await;
        assert_eq!(ids(&list), ["cli-once"]);
        assert_eq!(list["items"][0]["state"], "stopped");
        let mixed = env.cli(&["worker", "list", "--concurrency", "4"]).await;
        assert_eq!(mixed.code, velu_cli::exit_codes::USAGE);
    }
}
