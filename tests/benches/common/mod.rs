//! What the benches share: their knobs, medians, and a fresh database to open Velu on.

use velu_core::db::SchemaPolicy;
use velu_core::sea_orm::{ConnectionTrait, Database};
use velu_core::settings::Settings;
use velu_core::tasks::TaskCatalog;
use velu_core::{OpenOptions, Velu};

/// The environment variable `key` parsed, or `default`.
pub fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The median of `xs` (the mean of the middle two for an even count).
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let m = xs.len() / 2;
    if xs.len() % 2 == 1 {
        xs[m]
    } else {
        (xs[m - 1] + xs[m]) / 2.0
    }
}

/// Velu on a fresh database: database `name` (dropped and created through `pg_admin`) on
/// PostgreSQL, home `home` on SQLite; migrations applied, a fixed pepper.
pub async fn fresh_velu(
    backend: &str,
    pg_admin: &str,
    name: &str,
    home: std::path::PathBuf,
) -> Velu {
    let url = match backend {
        "postgres" => {
            let admin = Database::connect(pg_admin)
                .await
                .expect("postgres reachable");
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await
                .unwrap();
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            admin.close().await.ok();
            let (prefix, _) = pg_admin.rsplit_once('/').expect("a database in PGURL");
            Some(format!("{prefix}/{name}"))
        }
        _ => None,
    };
    let settings = Settings::new(Some(home), url)
        .unwrap()
        .with_pepper(Some("bench-pepper-0123456789abcdef".into()));
    let opts = OpenOptions {
        schema: Some(SchemaPolicy::Apply),
        background: true,
        ..OpenOptions::default()
    };
    Velu::open(settings, TaskCatalog::builtin(), opts)
        .await
        .expect("open")
}
