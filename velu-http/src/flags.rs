//! The configuration flags every Velu process takes (data directory, database, tasks
//! file, pepper file), declared once for both binaries: `velu-cli` takes them as global
//! flags, the `velu-http` binary as its own. They live here because the `velu-http` binary
//! cannot reach velu-cli (which depends on this crate) and velu-core knows nothing of
//! clap; what they mean is velu-core's ([`ConfigSources`]).

use std::path::PathBuf;

use clap::Args;
use velu_core::config::ConfigSources;

/// Where configuration comes from: flags, else `VELU_*` variables, else velu-core's
/// defaults.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// Data directory (SQLite file, generated pepper, job workspaces) [default: the
    /// platform's user data directory, e.g. ~/.local/share/velu].
    #[arg(long, env = "VELU_HOME", global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB [default: velu.db in the
    /// data directory].
    #[arg(
        long,
        env = "VELU_DATABASE_URL",
        global = true,
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,

    /// YAML file of operator-defined command task kinds.
    #[arg(long, env = "VELU_TASKS_FILE", global = true, value_name = "FILE")]
    pub tasks_file: Option<PathBuf>,

    /// File holding the API key pepper (when VELU_API_KEY_PEPPER is not set).
    #[arg(
        long,
        env = "VELU_API_KEY_PEPPER_FILE",
        global = true,
        value_name = "FILE"
    )]
    pub pepper_file: Option<PathBuf>,

    /// File (mode 0600) holding the key that seals org secrets, when VELU_SECRETS_KEY is
    /// not set [default: secrets.key in the data directory, if present].
    #[arg(
        long,
        env = "VELU_SECRETS_KEY_FILE",
        global = true,
        value_name = "FILE"
    )]
    pub secrets_key_file: Option<PathBuf>,

    /// The most connections each of this process's database pools opens (PostgreSQL: an
    /// org-scoped and a cross-org pool, plus one listening connection for serve and
    /// worker; SQLite: the readers, besides one writer) [default: 8].
    #[arg(
        long,
        env = "VELU_DB_POOL_SIZE",
        global = true,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=velu_core::db::MAX_POOL_SIZE as i64)
    )]
    pub db_pool_size: Option<u32>,
}

impl ConfigArgs {
    /// The flags as velu-core's configuration sources.
    pub fn sources(&self) -> ConfigSources {
        ConfigSources {
            home: self.home.clone(),
            database_url: self.database_url.clone(),
            tasks_file: self.tasks_file.clone(),
            pepper_file: self.pepper_file.clone(),
            secrets_key_file: self.secrets_key_file.clone(),
            db_pool_size: self.db_pool_size,
            parse_tasks: yaml_tasks,
        }
    }
}

/// Parses a tasks file as YAML (velu-core knows nothing of YAML; the front ends do).
pub fn yaml_tasks(text: &str) -> Result<serde_json::Value, String> {
    serde_yaml::from_str(text).map_err(|e| e.to_string())
}
