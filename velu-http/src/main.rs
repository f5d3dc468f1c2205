//! The `velu-http` binary: `velu-cli serve` under its own name, with the same flags and
//! the same [`velu_http::serve`].

use std::process::ExitCode;

use clap::Parser;
use velu_http::ServeOptions;
use velu_http::flags::ConfigArgs;

/// Serve Velu's HTTP API (docs at /docs).
#[derive(Debug, Parser)]
#[command(name = "velu-http", version, max_term_width = 100)]
struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    serve: ServeOptions,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    velu_http::logs::init("info");
    let served = match args.config.sources().open(args.serve.open_options()).await {
        Ok(velu) => velu_http::serve(velu, &args.serve).await,
        Err(e) => Err(e),
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
