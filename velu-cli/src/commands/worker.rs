//! `velu-cli worker` (filled in with the jobs work).

use clap::Args;
use velu_core::CoreResult;

use crate::context::Global;

/// Flags of the worker.
#[derive(Debug, Args)]
pub struct WorkerArgs {}

impl WorkerArgs {
    pub async fn run(self, _g: &Global) -> CoreResult<String> {
        Ok(String::new())
    }
}
