//! `velu-cli whoami`

use clap::Args;
use velu_core::keys::whoami;
use velu_core::{CoreResult, Principal, auth};

use crate::context::Global;

/// Who am I: the operator, or the key given in VELU_API_KEY.
#[derive(Debug, Args)]
pub struct WhoamiArgs {
    /// Describe this API key instead of the operator. Prefer the VELU_API_KEY variable:
    /// a flag shows in the process list.
    #[arg(long, env = "VELU_API_KEY", hide_env_values = true, value_name = "KEY")]
    key: Option<String>,
}

impl WhoamiArgs {
    pub async fn run(self, g: &Global) -> CoreResult<String> {
        let velu = g.open().await?;
        let who = match &self.key {
            Some(key) => auth::authenticate(&velu, key, None).await?,
            None => Principal::operator(),
        };
        g.render(&whoami(&velu, &who).await?)
    }
}
