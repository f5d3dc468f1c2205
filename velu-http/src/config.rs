//! Flags shared by `velu-cli serve` and the `velu-http` binary, and the tasks-file loader
//! both front ends use.

use std::path::{Path, PathBuf};

use clap::Args;
use velu_core::tasks::{TaskCatalog, TasksFile};
use velu_core::{CoreError, CoreResult};

/// Flags of a server process.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "VELU_ADDR", default_value = crate::DEFAULT_ADDR)]
    pub addr: String,
    /// Apply pending migrations first (PostgreSQL; under a lock, safe with many nodes).
    #[arg(long)]
    pub migrate: bool,
}

/// Reads a tasks file (YAML) into a catalog; relative programs resolve against its folder.
pub fn load_tasks_file(path: &Path) -> CoreResult<TaskCatalog> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CoreError::Config(format!("tasks file {}: {e}", path.display())))?;
    let file: TasksFile = serde_yaml::from_str(&text)
        .map_err(|e| CoreError::Config(format!("tasks file {}: {e}", path.display())))?;
    let dir = path
        .canonicalize()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    TaskCatalog::with_file(file, &dir)
}
