//! `velu-cli whoami`

use clap::Args;
use velu_core::keys::whoami;
use velu_core::{CoreResult, Principal, auth};

use crate::context::Global;
use crate::twin::HttpCall;

/// Who am I: the operator, or the key given in VELU_API_KEY.
#[derive(Debug, Args)]
pub struct WhoamiArgs {
    /// Describe this API key instead of the operator. Prefer the VELU_API_KEY variable:
    /// a flag shows in the process list.
    #[arg(long, env = "VELU_API_KEY", hide_env_values = true, value_name = "KEY")]
    key: Option<String>,
}

impl WhoamiArgs {
    /// The HTTP twin (remote mode, `--print-http`): the key remote mode calls with.
    pub fn http_twin(&self) -> CoreResult<HttpCall> {
        Ok(HttpCall::get(["v1", "whoami"]))
    }

    pub async fn run(self, g: &Global) -> CoreResult<String> {
        let velu = g.open_without_tasks().await?;
        let who = match &self.key {
            Some(key) => auth::authenticate(&velu, key, None).await?,
            None => Principal::operator(),
        };
        g.render(&whoami(&velu, &who).await?)
    }
}
