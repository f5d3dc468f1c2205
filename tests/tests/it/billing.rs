//! Plan changes from billing (docs/billing.md): a signed event applies once, replays do
//! nothing, every unsigned, forged, stale, future, tampered, huge or odd delivery is
//! refused with the plan untouched, concurrent deliveries apply once, events arriving out
//! of order never undo a newer change, no secret fails closed, and the CLI's sign/verify
//! agree with the server.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use poem::http::Method;
use poem::{Body, Endpoint, IntoResponse, Request};
use serde_json::{Value, json};
use velu_core::billing::{BillingSecret, sign};
use velu_core::{OpenOptions, Velu};
use velu_tests::{HttpReply, TestEnv, backend_tests, test_tasks};

use crate::support::bootstrap;

const SECRET: &str = "billing-test-secret-0123456789abcdef-XYZ";

fn secret() -> BillingSecret {
    BillingSecret::new(SECRET).unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A second handle on the test's database that has the billing secret (the test's own
/// handle has none, like a server without `VELU_BILLING_SECRET`).
async fn billing_velu(env: &TestEnv) -> Velu {
    let settings = env.settings().with_billing_secret(Some(secret()));
    Velu::open(settings, test_tasks(), OpenOptions::default())
        .await
        .expect("open velu with a billing secret")
}

/// Posts `body` to `/v1/billing/events` on `velu`'s app with `signature` as the header.
async fn post(velu: &Velu, signature: Option<&str>, body: &[u8]) -> HttpReply {
    post_as(velu, signature, body, "application/json").await
}

async fn post_as(velu: &Velu, signature: Option<&str>, body: &[u8], ctype: &str) -> HttpReply {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri("/v1/billing/events".parse().unwrap())
        .header("content-type", ctype);
    if let Some(s) = signature {
        req = req.header("velu-signature", s);
    }
    let app = velu_http::app(velu.clone());
    let resp = match app.call(req.body(Body::from(body.to_vec()))).await {
        Ok(r) => r.into_response(),
        Err(e) => e.into_response(),
    };
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.into_body().into_string().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    HttpReply {
        status,
        headers,
        body,
        text,
    }
}

/// Signs `body` now with the test secret and posts it.
async fn deliver(velu: &Velu, body: &Value) -> HttpReply {
    let bytes = body.to_string().into_bytes();
    let sig = sign(&secret(), now(), &bytes).signature;
    post(velu, Some(&sig), &bytes).await
}

fn event(id: &str, org: &str, plan: &str) -> Value {
    json!({"id": id, "type": "plan.changed", "org": org, "plan": plan, "created": now() - 5})
}

async fn plan_of(env: &TestEnv, org: &str) -> String {
    env.cli_ok(&["org", "show", org]).await["plan"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The org's `org.set_plan` audit events, newest first.
async fn plan_audits(env: &TestEnv, org: &str) -> Vec<Value> {
    let audit = env
        .cli_ok(&["audit", "list", "--org", org, "--limit", "200"])
        .await;
    audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "org.set_plan")
        .cloned()
        .collect()
}

fn assert_refused(r: &HttpReply, status: u16, code: &str, words: &str) {
    assert_eq!(
        (r.status, r.problem_code()),
        (status, code.to_owned()),
        "{}",
        r.text
    );
    assert!(
        r.body["detail"].as_str().unwrap_or("").contains(words),
        "`{words}` in {}",
        r.text
    );
    assert!(!r.text.contains(SECRET), "the secret never leaves");
}

backend_tests! {
    async fn a_signed_plan_change_applies_once(env) {
        let acme = bootstrap(&env, "acme", "base").await;
        let velu = billing_velu(&env).await;
        let body = event("evt_1", "acme", "hero");
        let first = deliver(&velu, &body).await;
        assert_eq!(first.status, 200, "{}", first.text);
        assert_eq!(first.body["event_id"], "evt_1");
        assert_eq!(first.body["type"], "plan.changed");
        assert_eq!(first.body["org_id"], acme.org_id.as_str());
        assert_eq!(first.body["plan"], "hero");
        assert_eq!(first.body["previous_plan"], "base");
        assert_eq!(first.body["outcome"], "applied");
        assert_eq!(first.body["replay"], false);
        assert_eq!(plan_of(&env, "acme").await, "hero");
        let audits = plan_audits(&env, "acme").await;
        assert_eq!(audits.len(), 1, "{audits:?}");
        assert_eq!(audits[0]["actor_type"], "billing");
        assert_eq!(audits[0]["actor_id"], "evt_1");
        assert_eq!(audits[0]["details"]["billing_event"], "evt_1");
        assert_eq!(audits[0]["details"]["from"], "base");
        assert_eq!(audits[0]["details"]["to"], "hero");

        // The same event again (a fresh signature, as a retrying sender makes): the first
        // receipt, nothing done; not even over a later operator change.
        env.cli_ok(&["org", "set-plan", "acme", "superhero"]).await;
        let again = deliver(&velu, &body).await;
        assert_eq!(again.status, 200, "{}", again.text);
        assert_eq!(again.body["replay"], true);
        let mut a = again.body.clone();
        a["replay"] = json!(false);
        assert_eq!(a, first.body, "a replay answers the first receipt");
        assert_eq!(plan_of(&env, "acme").await, "superhero");
        assert_eq!(plan_audits(&env, "acme").await.len(), 2, "the operator's change only");

        // The same id with another body is not a replay.
        let mut other = body.clone();
        other["plan"] = json!("base");
        let reused = deliver(&velu, &other).await;
        assert_refused(&reused, 409, "conflict", "different body");
        let mut elsewhere = body.clone();
        bootstrap(&env, "globex", "base").await;
        elsewhere["org"] = json!("globex");
        let reused = deliver(&velu, &elsewhere).await;
        assert_refused(&reused, 409, "conflict", "different body");
        assert_eq!(plan_of(&env, "acme").await, "superhero");
        assert_eq!(plan_of(&env, "globex").await, "base");

        // By id works as by slug; a second event applies.
        let by_id = deliver(&velu, &event("evt_2", &acme.org_id, "base")).await;
        assert_eq!((by_id.status, by_id.body["outcome"].clone()), (200, json!("applied")), "{}", by_id.text);
        assert_eq!(plan_of(&env, "acme").await, "base");
        velu.db().clone().close().await;
    }

    async fn refused_deliveries_leave_the_plan_alone(env) {
        bootstrap(&env, "acme", "base").await;
        let velu = billing_velu(&env).await;
        let body = event("evt_r", "acme", "superhero");
        let bytes = body.to_string().into_bytes();
        let t = now();
        let good = sign(&secret(), t, &bytes).signature;

        assert_refused(&post(&velu, None, &bytes).await, 401, "bad_signature", "missing");
        let forged = sign(&BillingSecret::new(&"f".repeat(40)).unwrap(), t, &bytes).signature;
        assert_refused(&post(&velu, Some(&forged), &bytes).await, 401, "bad_signature", "mismatch");
        let tampered = body.to_string().replace("superhero", "hero").into_bytes();
        assert_refused(&post(&velu, Some(&good), &tampered).await, 401, "bad_signature", "mismatch");
        let mut spaced = bytes.clone();
        spaced.push(b'\n');
        assert_refused(&post(&velu, Some(&good), &spaced).await, 401, "bad_signature", "mismatch");
        let moved = good.replace(&format!("t={t}"), &format!("t={}", t + 1));
        assert_refused(&post(&velu, Some(&moved), &bytes).await, 401, "bad_signature", "mismatch");
        let stale = sign(&secret(), t - 301, &bytes).signature;
        assert_refused(&post(&velu, Some(&stale), &bytes).await, 401, "bad_signature", "stale");
        let future = sign(&secret(), t + 400, &bytes).signature;
        assert_refused(&post(&velu, Some(&future), &bytes).await, 401, "bad_signature", "future");
        for bad in ["t=1", "garbage", "v1=00", "t=1,v1=00", &format!("t={t}\t,v1=00")] {
            let r = post(&velu, Some(bad), &bytes).await;
            assert_refused(&r, 401, "bad_signature", "malformed");
        }
        // Not text at all: refused before velu-core (poem's header parsing).
        let r = post(&velu, Some(&format!("t={t},v1={}", "é".repeat(32))), &bytes).await;
        assert!(matches!(r.status, 400 | 401), "{}", r.text);
        // Over the header's bound: the spec's maxLength (400).
        let long = format!("{good},x={}", "y".repeat(600));
        assert_eq!(post(&velu, Some(&long), &bytes).await.status, 400);

        // Huge bodies are refused before any HMAC, signed or not.
        let mut huge = body.clone();
        huge["pad"] = json!("x".repeat(20 * 1024));
        let huge = huge.to_string().into_bytes();
        let sig = sign(&secret(), t, &huge).signature;
        assert_refused(&post(&velu, Some(&sig), &huge).await, 413, "payload_too_large", "16384");
        // Not JSON by content type.
        assert_eq!(post_as(&velu, Some(&good), &bytes, "text/plain").await.status, 415);

        // Signed but odd: refused as `invalid` naming the field.
        for (odd, field) in [
            (json!({"id": "evt_x", "type": "plan.deleted", "org": "acme", "plan": "hero", "created": t}), "type"),
            (json!({"id": "evt_x", "type": "plan.changed", "org": "acme", "plan": "gold", "created": t}), "plan"),
            (json!({"id": "evt\u{0}x", "type": "plan.changed", "org": "acme", "plan": "hero", "created": t}), "id"),
            (json!({"id": "évènement", "type": "plan.changed", "org": "acme", "plan": "hero", "created": t}), "id"),
            (json!({"id": "evt_x", "type": "plan.changed", "org": "acme", "plan": "hero", "created": t + 3600}), "created"),
            (json!({"id": "evt_x", "type": "plan.changed", "org": "acme", "plan": "hero", "created": t, "actor": "x"}), "body"),
        ] {
            let r = deliver(&velu, &odd).await;
            assert_eq!((r.status, r.problem_code()), (400, "invalid".into()), "{odd}: {}", r.text);
            assert_eq!(r.body["field"], field, "{}", r.text);
        }
        let r = post(&velu, Some(&sign(&secret(), t, b"{not json").signature), b"{not json").await;
        assert_eq!(r.problem_code(), "invalid");

        // Unknown orgs: `not_found` in the words of any missing org, whatever the text.
        for ghost in ["ghost", "00000000-0000-7000-8000-000000000000", "Acme", "ac\u{0}me", "ünï"] {
            let r = deliver(&velu, &event("evt_g", ghost, "hero")).await;
            assert_refused(&r, 404, "not_found", &format!("organization `{ghost}` not found"));
        }
        // A refused event is not remembered: once it is right, it applies.
        let r = deliver(&velu, &event("evt_g", "acme", "hero")).await;
        assert_eq!((r.status, r.body["replay"].clone()), (200, json!(false)), "{}", r.text);

        assert_eq!(plan_of(&env, "acme").await, "hero");
        assert_eq!(plan_audits(&env, "acme").await.len(), 1, "only the last one applied");
        velu.db().clone().close().await;
    }

    async fn without_a_secret_every_event_is_refused(env) {
        bootstrap(&env, "acme", "base").await;
        // The test's own handle has no billing secret.
        let r = deliver(env.velu(), &event("evt_n", "acme", "hero")).await;
        // The sender learns that the server is at fault, not how it is configured: the
        // missing setting's name is for the server's log.
        assert_refused(&r, 500, "config", "misconfigured");
        assert!(!r.text.contains("VELU_BILLING_SECRET"), "{}", r.text);
        let r = post(env.velu(), None, b"{}").await;
        assert_eq!(r.problem_code(), "config");
        assert_eq!(plan_of(&env, "acme").await, "base");
    }

    async fn concurrent_deliveries_of_one_event_apply_once(env) {
        bootstrap(&env, "acme", "base").await;
        let nodes = [billing_velu(&env).await, billing_velu(&env).await];
        let body = event("evt_c", "acme", "hero");
        let bytes = body.to_string().into_bytes();
        let sig = sign(&secret(), now(), &bytes).signature;
        let mut tasks = Vec::new();
        for i in 0..10 {
            let velu = nodes[i % 2].clone();
            let (sig, bytes) = (sig.clone(), bytes.clone());
            tasks.push(tokio::spawn(async move { post(&velu, Some(&sig), &bytes).await }));
        }
        let mut firsts = 0;
        for t in tasks {
            let r = t.await.unwrap();
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.body["outcome"], "applied");
            if r.body["replay"] == false {
                firsts += 1;
            }
        }
        assert_eq!(firsts, 1, "exactly one delivery applied it");
        assert_eq!(plan_of(&env, "acme").await, "hero");
        assert_eq!(plan_audits(&env, "acme").await.len(), 1);
        for v in nodes {
            v.db().clone().close().await;
        }
    }

    async fn events_out_of_order_never_undo_a_newer_change(env) {
        bootstrap(&env, "acme", "base").await;
        let velu = billing_velu(&env).await;
        let mut newer = event("evt_new", "acme", "superhero");
        newer["created"] = json!(now() - 10);
        let mut older = event("evt_old", "acme", "hero");
        older["created"] = json!(now() - 100);
        assert_eq!(deliver(&velu, &newer).await.body["outcome"], "applied");
        let late = deliver(&velu, &older).await;
        assert_eq!(late.status, 200, "{}", late.text);
        assert_eq!(late.body["outcome"], "superseded");
        assert_eq!(late.body["previous_plan"], "superhero");
        assert_eq!(plan_of(&env, "acme").await, "superhero");
        assert_eq!(plan_audits(&env, "acme").await.len(), 1);
        // Its replay says the same.
        let again = deliver(&velu, &older).await;
        assert_eq!((again.body["outcome"].clone(), again.body["replay"].clone()), (json!("superseded"), json!(true)));
        // Another org's events are another order.
        bootstrap(&env, "globex", "base").await;
        let mut g = event("evt_g_old", "globex", "hero");
        g["created"] = json!(now() - 1000);
        assert_eq!(deliver(&velu, &g).await.body["outcome"], "applied");
        assert_eq!(plan_of(&env, "globex").await, "hero");
        velu.db().clone().close().await;
    }
}

fn private_file(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

backend_tests! {
    async fn cli_sign_and_verify_agree_with_the_server(env) {
        bootstrap(&env, "acme", "base").await;
        let dir = env.home().join("billing");
        std::fs::create_dir_all(&dir).unwrap();
        let secret_file = private_file(&dir, "billing.secret", &format!("{SECRET}\n"), 0o600);
        let body_text = event("evt_cli", "acme", "hero").to_string();
        let body_file = private_file(&dir, "event.json", &body_text, 0o644);
        let (sf, bf) = (secret_file.display().to_string(), body_file.display().to_string());

        let t = now().to_string();
        let signed = env
            .cli_ok(&["billing", "sign", "--secret-file", &sf, "--body", &bf, "--timestamp", &t])
            .await;
        let sig = signed["signature"].as_str().unwrap().to_owned();
        assert_eq!(sig, sign(&secret(), now_from(&t), body_text.as_bytes()).signature);
        assert_eq!(signed["timestamp"].as_i64(), Some(now_from(&t)));

        let ok = env
            .cli_ok(&["billing", "verify", "--secret-file", &sf, "--signature", &sig, "--body", &bf])
            .await;
        assert_eq!(ok["valid"], true);
        assert_eq!(ok["timestamp"].as_i64(), Some(now_from(&t)));

        // Tampered body, wrong time, garbage: refused with the reason, exit 13.
        let tampered = private_file(&dir, "tampered.json", &body_text.replace("hero", "superhero"), 0o644);
        let tf = tampered.display().to_string();
        let r = env.cli(&["billing", "verify", "--secret-file", &sf, "--signature", &sig, "--body", &tf]).await;
        assert_eq!((r.error_code(), r.code), ("bad_signature".into(), 13));
        assert!(r.stderr.contains("mismatch"), "{}", r.stderr);
        let later = (now_from(&t) + 301).to_string();
        let r = env
            .cli(&["billing", "verify", "--secret-file", &sf, "--signature", &sig, "--body", &bf, "--at", &later])
            .await;
        assert_eq!(r.error_code(), "bad_signature");
        assert!(r.stderr.contains("stale"), "{}", r.stderr);
        let r = env.cli(&["billing", "verify", "--secret-file", &sf, "--signature", "t=x", "--body", &bf]).await;
        assert!(r.stderr.contains("malformed"), "{}", r.stderr);

        // A secret file others can read is refused; so is a short secret.
        let open = private_file(&dir, "open.secret", SECRET, 0o644);
        let r = env.cli(&["billing", "sign", "--secret-file", &open.display().to_string(), "--body", &bf]).await;
        assert_eq!(r.error_code(), "config");
        assert!(!r.stderr.contains(SECRET));
        let short = private_file(&dir, "short.secret", "short", 0o600);
        let r = env.cli(&["billing", "sign", "--secret-file", &short.display().to_string(), "--body", &bf]).await;
        assert_eq!(r.error_code(), "config");
        // A body over the server's limit is refused before signing.
        let huge = private_file(&dir, "huge.json", &"x".repeat(16 * 1024 + 1), 0o644);
        let r = env.cli(&["billing", "sign", "--secret-file", &sf, "--body", &huge.display().to_string()]).await;
        assert_eq!(r.error_code(), "payload_too_large");

        // What the CLI signed, the server applies.
        let velu = billing_velu(&env).await;
        let r = post(&velu, Some(&sig), body_text.as_bytes()).await;
        assert_eq!((r.status, r.body["outcome"].clone()), (200, json!("applied")), "{}", r.text);
        assert_eq!(plan_of(&env, "acme").await, "hero");
        velu.db().clone().close().await;
    }
}

fn now_from(t: &str) -> i64 {
    t.parse().unwrap()
}
