//! `velu-cli serve`: the HTTP API, same as the `velu-http` binary.

use velu_core::db::SchemaPolicy;
use velu_core::{CoreError, CoreResult, OpenOptions};
use velu_http::config::ServeArgs;

use crate::context::Global;

/// Runs the server until SIGINT or SIGTERM.
pub async fn run(args: ServeArgs, g: &Global) -> CoreResult<String> {
    let velu = g
        .open_with(OpenOptions {
            schema: args.migrate.then_some(SchemaPolicy::Apply),
            background: true,
            ..OpenOptions::default()
        })
        .await?;
    // Fail closed at startup, not on the first request.
    velu.hasher()?;
    velu_http::serve(velu.clone(), &args.addr, velu_http::signals::shutdown())
        .await
        .map_err(|e| CoreError::Config(format!("cannot serve on {}: {e}", args.addr)))?;
    velu.shutdown().await;
    Ok(String::new())
}
