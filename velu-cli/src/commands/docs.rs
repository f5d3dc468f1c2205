//! `velu-cli docs ...`: the generated references that are committed under docs/.

use clap::Subcommand;
use velu_core::CoreResult;

/// Generated references (committed; a test fails when they drift).
#[derive(Debug, Subcommand)]
pub enum DocsCommand {
    /// Print the OpenAPI spec (docs/openapi.json).
    Openapi,
    /// Print the CLI reference in Markdown (docs/cli.md).
    Cli,
}

impl DocsCommand {
    pub fn run(self) -> CoreResult<String> {
        Ok(match self {
            DocsCommand::Openapi => velu_http::openapi_json() + "\n",
            DocsCommand::Cli => crate::reference::markdown(&crate::command()),
        })
    }
}
