//! Remote mode over `https://`: Velu behind a TLS front (as an operator would put a proxy
//! that terminates TLS before `velu-cli serve`), its certificate signed by a private
//! authority. The CLI trusts that authority only through `--ca-file`, checks the name, and
//! sends no key to a server it does not trust (the front counts the TLS sessions a client
//! completed: a refused certificate completes none, so no request, and no key, crossed).
//! A remote worker given the authority with `--ca-file` drains its queue through it.
//!
//! The certificates are in `tests/fixtures/tls/` (made with openssl; the authority's key
//! was thrown away, the servers' keys are for these tests only).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use velu_tests::{TestEnv, backend_tests};

use crate::support::{bootstrap, platform_key, submit};

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/tls")
        .join(name)
        .display()
        .to_string()
}

/// A TLS front on 127.0.0.1 presenting `cert` (`<cert>.pem` and `<cert>.key` of the
/// fixtures) and copying each session's bytes to and from `backend` (a plain-http
/// address). Returns its port and the count of sessions whose handshake completed.
async fn tls_front(backend: String, cert: &str) -> (u16, Arc<AtomicUsize>) {
    let chain = CertificateDer::pem_file_iter(fixture(&format!("{cert}.pem")))
        .expect("certificate file")
        .collect::<Result<Vec<_>, _>>()
        .expect("certificates");
    let key = PrivateKeyDer::from_pem_file(fixture(&format!("{cert}.key"))).expect("key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server certificate");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let sessions = Arc::new(AtomicUsize::new(0));
    let counted = sessions.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, backend, counted) = (acceptor.clone(), backend.clone(), counted.clone());
            tokio::spawn(async move {
                // A client that refuses the certificate aborts the handshake here.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                counted.fetch_add(1, Ordering::SeqCst);
                let Ok(mut plain) = tokio::net::TcpStream::connect(&backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (port, sessions)
}

fn key_file(env: &TestEnv, key: &str) -> String {
    let path = env.home().join("tls-admin.key");
    std::fs::write(&path, format!("{key}\n")).unwrap();
    path.display().to_string()
}

backend_tests! {
    async fn https_with_a_private_authority_needs_its_ca_file_and_the_right_name(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        let server = env.serve_tcp().await;
        let backend = server.url.trim_start_matches("http://").to_owned();
        let admin = key_file(&env, &acme.admin);
        let ca = fixture("ca.pem");
        let (port, sessions) = tls_front(backend.clone(), "localhost").await;
        let whoami = |url: String, ca: Option<String>| {
            let (env, admin) = (env.clone(), admin.clone());
            async move {
                let mut args = vec!["--server".to_owned(), url, "--key-file".into(), admin];
                if let Some(ca) = ca {
                    args.extend(["--ca-file".into(), ca]);
                }
                args.extend(["whoami".into(), "-o".into(), "json".into()]);
                let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                env.cli(&refs).await
            }
        };

        // Trusted through --ca-file, by name and by address: the key's own org answers.
        for url in [format!("https://localhost:{port}"), format!("https://127.0.0.1:{port}")] {
            let me = whoami(url.clone(), Some(ca.clone())).await;
            assert_eq!(me.code, 0, "{url}: {}", me.stderr);
            let doc: Value = serde_json::from_str(&me.stdout).unwrap();
            assert_eq!(doc["org"]["id"], acme.org_id.as_str(), "{url}: {doc}");
            assert_eq!(doc["actor_type"], "api_key");
        }
        let trusted = sessions.load(Ordering::SeqCst);
        assert!(trusted >= 2, "{trusted} sessions");

        // Refused, each before a session exists (no request, no key sent), and saying why:
        // no --ca-file (the bundled web roots do not hold a private authority), and the
        // CA file of another authority.
        let other_ca = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../velu-cli/testdata/test-ca.pem")
            .display()
            .to_string();
        for ca in [None, Some(other_ca)] {
            let refused = whoami(format!("https://localhost:{port}"), ca.clone()).await;
            assert_eq!(refused.error_code(), "unavailable", "{ca:?}: {}", refused.stderr);
            assert!(refused.stderr.contains("certificate"), "{ca:?}: {}", refused.stderr);
            assert!(refused.stderr.contains("--ca-file"), "{ca:?}: {}", refused.stderr);
            assert!(!refused.stderr.contains(&acme.admin), "the key is never printed");
        }
        assert_eq!(sessions.load(Ordering::SeqCst), trusted, "a refused server completed a session");

        // A certificate the trusted authority signed for another name (velu.example) is
        // refused too: the authority vouches for a name, not for whoever shows its mark.
        let (elsewhere, elsewhere_sessions) = tls_front(backend, "elsewhere").await;
        for url in [format!("https://localhost:{elsewhere}"), format!("https://127.0.0.1:{elsewhere}")] {
            let wrong_name = whoami(url.clone(), Some(ca.clone())).await;
            assert_eq!(wrong_name.error_code(), "unavailable", "{url}: {}", wrong_name.stderr);
            assert!(wrong_name.stderr.contains("certificate"), "{url}: {}", wrong_name.stderr);
        }
        assert_eq!(elsewhere_sessions.load(Ordering::SeqCst), 0);

        // Plain http to the TLS front is not TLS: it fails, and nothing falls back.
        let plain = whoami(format!("http://127.0.0.1:{port}"), Some(ca.clone())).await;
        assert_ne!(plain.code, 0, "{}", plain.stdout);
        server.stop().await;
    }

    async fn a_remote_worker_drains_over_https_with_its_ca_file(env) {
        bootstrap(&env, "acme", "hero").await;
        let mut ids = Vec::new();
        for n in 0..3 {
            ids.push(submit(&env, "acme", "echo", serde_json::json!({"n": n})).await);
        }
        let server = env.serve_tcp().await;
        let (port, sessions) = tls_front(server.url.trim_start_matches("http://").to_owned(), "localhost").await;
        let key = key_file(&env, &platform_key(&env, "fleet", "jobs:work").await);
        let url = format!("https://localhost:{port}");
        // --ca-file reaches the worker's client: it drains the queue over TLS. (Without the
        // authority its calls are refused as the CLI's are above, and it retries them as
        // `unavailable`, as it does a server that is down: not waited for here.)
        let ca = fixture("ca.pem");
        let args = ["--server", &url, "--key-file", &key, "--ca-file", &ca, "worker", "--id", "tls-1", "--once"];
        let drained = tokio::time::timeout(std::time::Duration::from_secs(120), env.cli(&args))
            .await
            .expect("the worker drains the queue and stops (a worker without the authority would retry)");
        assert_eq!(drained.code, 0, "{}", drained.stderr);
        assert!(sessions.load(Ordering::SeqCst) > 0);
        for id in &ids {
            let job = env.cli_ok(&["job", "show", id, "--org", "acme"]).await;
            assert_eq!(job["status"], "succeeded", "{job}");
            assert_eq!(job["history"][0]["worker_id"], "tls-1", "{job}");
        }
        server.stop().await;
    }
}
