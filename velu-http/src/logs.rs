//! Logs of a Velu process: `tracing` to stderr, filtered by `VELU_LOG`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Sends logs to stderr at `default` level (e.g. `info` for `serve` and `worker`) unless
/// `VELU_LOG` says otherwise. Does nothing when a subscriber is already installed.
pub fn init(default: &str) {
    let filter = EnvFilter::try_from_env("VELU_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .try_init();
}
