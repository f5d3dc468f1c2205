//! `velu-cli billing sign|verify`: the billing contract (docs/billing.md) for operators
//! testing it. Local helpers: no database, no server; they run velu-core's own
//! `billing::sign` and `billing::verify`, so they agree with `POST /v1/billing/events`.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use velu_core::billing::{self, BillingSecret, MAX_BODY_BYTES};
use velu_core::{CoreError, CoreResult};

use crate::context::Global;

/// Sign or verify billing events as the billing system and the server do.
#[derive(Debug, Subcommand)]
pub enum BillingCommand {
    /// Sign an event body (the exact bytes of --body, stdin by default): prints the
    /// `Velu-Signature` value to send with it.
    Sign {
        /// The billing secret's file (mode 0600), as the server's VELU_BILLING_SECRET_FILE.
        #[arg(long, value_name = "FILE")]
        secret_file: PathBuf,
        /// The `t` to sign at, unix seconds [default: now].
        #[arg(long, allow_hyphen_values = true)]
        timestamp: Option<i64>,
        /// The body's file, `-` for stdin. Signed byte for byte (a trailing newline too).
        #[arg(long, value_name = "FILE", default_value = "-")]
        body: String,
    },
    /// Verify a `Velu-Signature` value against an event body as the server would: prints
    /// the verdict, or fails with `bad_signature` saying why (missing, malformed,
    /// mismatch, stale, future).
    Verify {
        /// The billing secret's file (mode 0600).
        #[arg(long, value_name = "FILE")]
        secret_file: PathBuf,
        /// The header value, `t=<unix>,v1=<hex>`.
        #[arg(long, allow_hyphen_values = true)]
        signature: String,
        /// The body's file, `-` for stdin.
        #[arg(long, value_name = "FILE", default_value = "-")]
        body: String,
        /// Judge the window at this time, unix seconds [default: now].
        #[arg(long, allow_hyphen_values = true)]
        at: Option<i64>,
    },
}

/// The body's bytes, at most [`MAX_BODY_BYTES`] (the server's limit).
fn read_body(source: &str) -> CoreResult<Vec<u8>> {
    let mut bytes = Vec::new();
    let limit = MAX_BODY_BYTES as u64 + 1;
    let read = if source == "-" {
        std::io::stdin().take(limit).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(Path::new(source)).and_then(|f| f.take(limit).read_to_end(&mut bytes))
    };
    read.map_err(|e| CoreError::invalid("body", format!("cannot read {source}: {e}")))?;
    if bytes.len() > MAX_BODY_BYTES {
        return Err(CoreError::PayloadTooLarge {
            size: bytes.len() as u64,
            limit: MAX_BODY_BYTES as u64,
        });
    }
    Ok(bytes)
}

fn unix_now() -> i64 {
    velu_core::time::now().timestamp()
}

impl BillingCommand {
    /// Runs the helper (the same locally and with `--server`: nothing is sent).
    pub fn run(self, g: &Global) -> CoreResult<String> {
        match self {
            BillingCommand::Sign {
                secret_file,
                timestamp,
                body,
            } => {
                let secret = BillingSecret::from_file(&secret_file)?;
                let body = read_body(&body)?;
                g.render(&billing::sign(
                    &secret,
                    timestamp.unwrap_or_else(unix_now),
                    &body,
                ))
            }
            BillingCommand::Verify {
                secret_file,
                signature,
                body,
                at,
            } => {
                let secret = BillingSecret::from_file(&secret_file)?;
                let body = read_body(&body)?;
                let verdict = billing::verify(
                    &secret,
                    Some(&signature),
                    &body,
                    at.unwrap_or_else(unix_now),
                )?;
                g.render(&verdict)
            }
        }
    }
}
