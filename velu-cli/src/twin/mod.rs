//! Remote mode and `--print-http`. Every parity command names its HTTP twin
//! ([`HttpCall`], built beside the command in `commands/`); with `--server` (or
//! `VELU_SERVER`) the CLI sends it with the key of `VELU_API_KEY` or `--key-file` and
//! prints the document the server returns, in the same format as locally; with
//! `--print-http` it prints the request as a curl command line instead of sending it.
//! Problem bodies become the same `error[<code>]` line and exit code as a local failure.

mod call;
mod curl;
mod send;

pub use call::{HttpCall, Verb};
pub use curl::curl_command;
pub use send::{Remote, RemoteFailure};
