//! `velu-cli secret ...`: an org's secrets for its jobs (docs/secrets.md). A value is read
//! from stdin or `--from-file`, never from the command line (argv is visible to every user
//! of the machine), and never printed.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use velu_core::orgs::OrgRef;
use velu_core::secrets::{self, Kek, MAX_VALUE_LEN};
use velu_core::{CoreError, CoreResult, Principal};

use crate::context::Global;
use crate::twin::{HttpCall, Verb};

/// Secrets: named values jobs of kinds that list them receive as environment variables.
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Set a secret (create it, or replace its value with the next version). The value is
    /// read from stdin (e.g. `printf %s "$TOKEN" | velu-cli secret set ...`) or from
    /// --from-file, exactly as given (a trailing newline is part of it).
    Set {
        /// Secret name: ^[A-Z_][A-Z0-9_]{0,63}$, the environment variable jobs receive.
        name: String,
        /// Org id or slug [env: VELU_ORG].
        #[arg(long, env = "VELU_ORG", hide_env = true)]
        org: String,
        /// Read the value from this file instead of stdin.
        #[arg(long, value_name = "PATH")]
        from_file: Option<PathBuf>,
    },
    /// List an org's secrets: names, versions and dates (values are never shown).
    List {
        /// Org id or slug [env: VELU_ORG].
        #[arg(long, env = "VELU_ORG", hide_env = true)]
        org: String,
    },
    /// Delete a secret; prints it as it was (without its value).
    Delete {
        /// Secret name.
        name: String,
        /// Org id or slug [env: VELU_ORG].
        #[arg(long, env = "VELU_ORG", hide_env = true)]
        org: String,
    },
    /// Re-seal every org's secrets under a new secrets key (the operator's key rotation).
    /// The current key is this process's (VELU_SECRETS_KEY or the key file); the new one
    /// is read from --new-key-file (mode 0600). Then give every process the new key.
    Rekey {
        /// File (mode 0600) holding the new key: 32 random bytes in base64 or hex.
        #[arg(long, value_name = "FILE")]
        new_key_file: PathBuf,
    },
}

/// Reads a value from `file` or stdin: at most one byte past the limit, so a huge input
/// is refused without being read whole.
fn read_value(file: Option<&Path>) -> CoreResult<Vec<u8>> {
    let cap = MAX_VALUE_LEN as u64 + 1;
    let mut buf = Vec::new();
    let result = match file {
        Some(path) => std::fs::File::open(path)
            .and_then(|f| f.take(cap).read_to_end(&mut buf))
            .map_err(|e| CoreError::invalid("from_file", format!("{}: {e}", path.display()))),
        None => std::io::stdin()
            .lock()
            .take(cap)
            .read_to_end(&mut buf)
            .map_err(|e| CoreError::invalid("value", format!("reading stdin: {e}"))),
    };
    result.map(|_| buf)
}

impl SecretCommand {
    /// True for the command whose twin carries a value (`--print-http` would print it).
    pub fn carries_value(&self) -> bool {
        matches!(self, SecretCommand::Set { .. })
    }

    /// The HTTP twin (remote mode, `--print-http`). `set` sends the value in the body,
    /// as a JSON string (so it must be UTF-8, as locally).
    pub fn http_twin(&self) -> CoreResult<HttpCall> {
        let all = |org: &str| vec!["v1".to_owned(), "orgs".into(), org.into(), "secrets".into()];
        let one = |org: &str, name: &str| {
            let mut path = all(org);
            path.push(name.to_owned());
            path
        };
        Ok(match self {
            SecretCommand::Set {
                name,
                org,
                from_file,
            } => {
                let value = read_value(from_file.as_deref())?;
                secrets::check_value(&value)?;
                let text = String::from_utf8(value)
                    .map_err(|_| CoreError::invalid("value", "must be UTF-8 text"))?;
                HttpCall {
                    body: Some(serde_json::json!({ "value": text })),
                    ..HttpCall::new(Verb::Put, one(org, name))
                }
            }
            SecretCommand::List { org } => HttpCall::get(all(org)),
            SecretCommand::Delete { name, org } => HttpCall::new(Verb::Delete, one(org, name)),
            SecretCommand::Rekey { .. } => {
                return Err(super::local_only(
                    "secret rekey",
                    "it needs both secrets keys, which only the operator holds",
                ));
            }
        })
    }

    pub async fn run(self, g: &Global) -> CoreResult<String> {
        let velu = g.open().await?;
        let who = Principal::operator();
        match self {
            SecretCommand::Set {
                name,
                org,
                from_file,
            } => {
                let value = read_value(from_file.as_deref())?;
                let done =
                    secrets::set_secret(&velu, &who, &OrgRef::new(org), &name, &value).await?;
                g.render(&done)
            }
            SecretCommand::List { org } => {
                g.render(&secrets::list_secrets(&velu, &who, &OrgRef::new(org)).await?)
            }
            SecretCommand::Delete { name, org } => {
                g.render(&secrets::delete_secret(&velu, &who, &OrgRef::new(org), &name).await?)
            }
            SecretCommand::Rekey { new_key_file } => {
                let new = Kek::from_file(&new_key_file)?;
                g.render(&secrets::rekey_secrets(&velu, &who, &new).await?)
            }
        }
    }
}
