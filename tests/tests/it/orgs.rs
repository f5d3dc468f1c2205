//! Organizations and plans through the CLI: documents, errors, pagination.

use velu_tests::backend_tests;

backend_tests! {
    async fn create_show_and_set_plan(env) {
        let org = env.cli_ok(&["org", "create", "--name", "Acme Corp", "--slug", "acme"]).await;
        assert_eq!(org["slug"], "acme");
        assert_eq!(org["plan"], "base", "plan defaults to base");
        let id = org["id"].as_str().unwrap().to_owned();
        assert!(org["created_at"].as_str().unwrap().ends_with('Z'));

        assert_eq!(env.cli_ok(&["org", "show", "acme"]).await, org, "show by slug");
        assert_eq!(env.cli_ok(&["org", "show", &id]).await, org, "show by id");

        let upgraded = env.cli_ok(&["org", "set-plan", "acme", "superhero"]).await;
        assert_eq!(upgraded["plan"], "superhero");
        assert_eq!(env.cli_ok(&["org", "show", "acme"]).await["plan"], "superhero");

        let audit = env.cli_ok(&["audit", "list", "--org", "acme"]).await;
        let actions: Vec<_> = audit["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(actions, vec!["org.set_plan", "org.create"], "newest first");
        assert_eq!(audit["items"][0]["actor_type"], "cli");
        assert_eq!(audit["items"][0]["details"]["from"], "base");
    }

    async fn errors_leave_stdout_empty_and_map_exit_codes(env) {
        env.cli_ok(&["org", "create", "--name", "Acme", "--slug", "acme"]).await;
        let cases: [(&[&str], &str, u8); 6] = [
            (&["org", "create", "--name", "Again", "--slug", "acme"], "conflict", 4),
            (&["org", "create", "--name", "Bad", "--slug", "Bad_Slug"], "invalid", 5),
            (&["org", "create", "--name", "Bad", "--slug=-lead"], "invalid", 5),
            (&["org", "create", "--name", "Gold", "--slug", "gold", "--plan", "gold"], "invalid", 5),
            (&["org", "show", "nope"], "not_found", 3),
            (&["org", "set-plan", "acme", "platinum"], "invalid", 5),
        ];
        for (args, code, status) in cases {
            let run = env.cli(args).await;
            assert_eq!(run.error_code(), code, "{args:?}");
            assert_eq!(run.code, status, "{args:?}");
        }
        // An existing slug is never silently returned, and the plan of a typo never lands.
        assert_eq!(env.cli_ok(&["org", "show", "acme"]).await["name"], "Acme");
        assert_eq!(env.cli(&["org", "show", "gold"]).await.error_code(), "not_found");
    }

    async fn empty_list_is_items_brackets(env) {
        let run = env.cli(&["org", "list"]).await;
        assert_eq!(run.code, 0);
        assert_eq!(run.stdout, "items: []\nnext_cursor: null\n");
    }

    async fn pagination_walks_every_org_once(env) {
        for i in 0..7 {
            env.cli_ok(&["org", "create", "--name", &format!("Team {i}"), "--slug", &format!("team-{i}")]).await;
        }
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut args = vec!["org", "list", "--limit", "3"];
            if let Some(c) = &cursor {
                args.extend(["--cursor", c.as_str()]);
            }
            let page = env.cli_ok(&args).await;
            let items = page["items"].as_array().unwrap();
            assert!(items.len() <= 3);
            seen.extend(items.iter().map(|o| o["slug"].as_str().unwrap().to_owned()));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        let expected: Vec<_> = (0..7).rev().map(|i| format!("team-{i}")).collect();
        assert_eq!(seen, expected, "newest first, each once");

        let all = env.cli_ok(&["org", "list", "--limit", "2", "--all"]).await;
        assert_eq!(all["items"].as_array().unwrap().len(), 7);
        assert!(all["next_cursor"].is_null());

        let filtered = env.cli_ok(&["org", "list", "--q", "TEAM 3"]).await;
        assert_eq!(filtered["items"].as_array().unwrap().len(), 1);
        let none = env.cli_ok(&["org", "list", "--q", "%"]).await;
        assert_eq!(none["items"], serde_json::json!([]), "LIKE wildcards are literal");

        let bad = env.cli(&["org", "list", "--limit", "0"]).await;
        assert_eq!(bad.error_code(), "invalid");
        let bad = env.cli(&["org", "list", "--cursor", "garbage!"]).await;
        assert_eq!(bad.error_code(), "invalid");
    }

    async fn json_output_is_the_same_document(env) {
        env.cli_ok(&["org", "create", "--name", "Acme", "--slug", "acme"]).await;
        let yaml = env.cli_ok(&["org", "show", "acme"]).await;
        let run = env.cli(&["-o", "json", "org", "show", "acme"]).await;
        let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(json, yaml);
    }
}

#[tokio::test]
async fn plans_need_no_database() {
    let env = velu_tests::TestEnv::start(velu_tests::Backend::Sqlite)
        .await
        .unwrap();
    let plans = env.cli_ok(&["plan", "list"]).await;
    let names: Vec<_> = plans["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["base", "hero", "superhero"]);
    assert_eq!(
        plans["items"][0]["task_kinds"],
        serde_json::json!([]),
        "base runs nothing"
    );
    let hero = env.cli_ok(&["plan", "show", "hero"]).await;
    assert_eq!(hero["limits"]["requests_per_minute"], 600);
    assert!(
        hero["task_kinds"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k == "plan")
    );
    assert!(
        !hero["task_kinds"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k == "execute"),
        "execute is superhero"
    );
    assert_eq!(
        env.cli(&["plan", "show", "gold"]).await.error_code(),
        "not_found"
    );
    // Plans never open the database: pointed at an SQLite file that opening would create,
    // `plan list` answers and the file is still not there (no port or server involved).
    let probe = env.home().join("never-opened.db");
    let url = format!("sqlite://{}", probe.display());
    let run = velu_cli::run(
        ["velu-cli", "--database-url", url.as_str(), "plan", "list"],
        &mut Vec::new(),
        &mut Vec::new(),
    )
    .await;
    assert_eq!(run, 0);
    assert!(!probe.exists(), "plan list opened the database");
    // The same URL does open (and create) it for a command that needs it.
    let run = velu_cli::run(
        ["velu-cli", "--database-url", url.as_str(), "org", "list"],
        &mut Vec::new(),
        &mut Vec::new(),
    )
    .await;
    assert_eq!(run, 0);
    assert!(probe.exists(), "the probe is a real database URL");
    // Anything that needs it says so at once, with the cause, and exit code 69.
    let started = std::time::Instant::now();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = velu_cli::run(
        [
            "velu-cli",
            "--database-url",
            // A socket folder that does not exist: unreachable without depending on a
            // free TCP port.
            "postgres://nobody@localhost/none?host=/nonexistent/velu-test-socket",
            "org",
            "list",
        ],
        &mut out,
        &mut err,
    )
    .await;
    let err = String::from_utf8(err).unwrap();
    assert_eq!(code, 69);
    assert!(out.is_empty());
    assert!(
        err.starts_with("error[unavailable]") && err.contains("No such file"),
        "{err}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "no silent retrying"
    );
    env.finish().await;
}
