//! Helpers shared by the test modules.

use serde_json::Value;
use velu_tests::TestEnv;

/// An org made by `org bootstrap`, with its three key tokens.
#[derive(Debug, Clone)]
pub struct Boot {
    pub org_id: String,
    pub viewer: String,
    pub builder: String,
    pub admin: String,
    pub doc: Value,
}

/// Bootstraps `slug` on `plan` through the CLI.
pub async fn bootstrap(env: &TestEnv, slug: &str, plan: &str) -> Boot {
    let doc = env
        .cli_ok(&[
            "org",
            "bootstrap",
            "--name",
            &format!("Org {slug}"),
            "--slug",
            slug,
            "--plan",
            plan,
        ])
        .await;
    let token = |role: &str| {
        doc["keys"][role]["token"]
            .as_str()
            .expect("token")
            .to_owned()
    };
    Boot {
        org_id: doc["org"]["id"].as_str().expect("org id").to_owned(),
        viewer: token("viewer"),
        builder: token("builder"),
        admin: token("admin"),
        doc,
    }
}

/// A platform key with `scopes` (comma-separated), made through the CLI.
pub async fn platform_key(env: &TestEnv, name: &str, scopes: &str) -> String {
    let doc = env
        .cli_ok(&[
            "key",
            "create",
            "--platform",
            "--name",
            name,
            "--scopes",
            scopes,
        ])
        .await;
    doc["token"].as_str().expect("token").to_owned()
}

/// Every scope, for a platform key with the operator's rights.
pub const ALL_SCOPES: &str =
    "jobs:read,jobs:submit,admin:api_keys:manage,audit:read,admin:orgs:manage,jobs:work";
