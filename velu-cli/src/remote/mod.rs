//! The remote worker: `velu-cli worker --server URL` runs velu-core's worker loop against a
//! Velu server over the worker protocol (docs/workers.md) instead of a database. The key
//! comes from `VELU_API_KEY` (or `--key-file`), never from the command line; no database
//! is opened and no database credential is needed.
//!
//! `client.rs` is the HTTP client (reqwest, rustls), `trust.rs` which servers it sends a
//! key to (`--ca-file`, `--allow-http`), `access.rs` the
//! `velu_core::worker::QueueAccess` the loop runs on, `run.rs` the start (the catalog
//! from the server, the data directory for workspaces), `printable.rs` what of a server's
//! text reaches a terminal.

mod access;
mod client;
mod printable;
mod run;
mod trust;

pub use access::RemoteAccess;
pub use client::Client;
pub use printable::printable;
pub use run::run_worker;
pub use trust::Trust;
