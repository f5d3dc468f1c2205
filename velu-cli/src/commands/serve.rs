//! `velu-cli serve`: the HTTP API, same as the `velu-http` binary (same flags, same
//! [`velu_http::serve`]).

use velu_core::CoreResult;
use velu_http::ServeOptions;

use crate::context::Global;

/// Runs the server until SIGINT or SIGTERM.
pub async fn run(opts: ServeOptions, g: &Global) -> CoreResult<String> {
    let velu = g.open_with(opts.open_options()).await?;
    velu_http::serve(velu, &opts).await?;
    Ok(String::new())
}
