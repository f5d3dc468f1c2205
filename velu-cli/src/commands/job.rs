//! `velu-cli job ...` (filled in with the jobs work).

use clap::Subcommand;
use velu_core::CoreResult;

use crate::context::Global;

/// Jobs.
#[derive(Debug, Subcommand)]
pub enum JobCommand {}

impl JobCommand {
    pub async fn run(self, _g: &Global) -> CoreResult<String> {
        match self {}
    }
}
