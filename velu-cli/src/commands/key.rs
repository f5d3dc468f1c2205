//! `velu-cli key ...`

use clap::{Args, Subcommand};
use serde_json::json;
use velu_core::keys::{self, CreateKey, ImportKey, KeyOwner, RotateKey};
use velu_core::orgs::OrgRef;
use velu_core::{CoreError, CoreResult, Principal};

use super::{PageArgs, split_list};
use crate::context::Global;
use crate::twin::HttpCall;
use crate::values::{RoleArg, ScopeArg, offer};

/// Whose keys: an org's, or the platform's.
#[derive(Debug, Clone, Args)]
#[group(multiple = false)]
pub struct OwnerArgs {
    /// Org id or slug [default: $VELU_ORG, or the context's org].
    #[arg(long)]
    org: Option<String>,
    /// Platform keys (no org): may hold admin:orgs:manage (and jobs:work, for every org).
    #[arg(long)]
    platform: bool,
}

impl OwnerArgs {
    /// `--org`, else `--platform`, else `VELU_ORG`; one of them is needed.
    fn org(&self) -> CoreResult<Option<String>> {
        if self.platform {
            return Ok(None);
        }
        match self.org.clone().or_else(|| std::env::var("VELU_ORG").ok()) {
            Some(org) if !org.is_empty() => Ok(Some(org)),
            _ => Err(CoreError::invalid(
                "org",
                "whose keys? give --org ORG (or set VELU_ORG) or --platform",
            )),
        }
    }

    fn owner(&self) -> CoreResult<KeyOwner> {
        Ok(match self.org()? {
            Some(org) => KeyOwner::Org(OrgRef::new(org)),
            None => KeyOwner::Platform,
        })
    }
}

/// API keys.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a key; its secret is printed once.
    Create {
        #[command(flatten)]
        owner: OwnerArgs,
        /// Name, unique among the owner's active keys.
        #[arg(long)]
        name: String,
        /// A role: the set of scopes it stands for.
        #[arg(long, conflicts_with = "scopes", value_parser = offer::<RoleArg>())]
        role: Option<String>,
        /// Comma-separated scopes, e.g. jobs:read,jobs:submit.
        #[arg(long, value_parser = offer::<ScopeArg>())]
        scopes: Option<String>,
        /// Expiry, RFC 3339 (e.g. 2027-01-01T00:00:00Z).
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// List keys (never their secrets).
    List {
        #[command(flatten)]
        owner: OwnerArgs,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show a key.
    Show {
        /// Key id.
        key: String,
        #[command(flatten)]
        owner: OwnerArgs,
    },
    /// Revoke a key (idempotent; refused at once).
    Revoke {
        /// Key id.
        key: String,
        #[command(flatten)]
        owner: OwnerArgs,
    },
    /// Give a key a new secret, same id; printed once.
    Rotate {
        /// Key id.
        key: String,
        #[command(flatten)]
        owner: OwnerArgs,
        /// How long the old secret keeps working: 90s, 15m, 2h, 1d [default: 0, none].
        #[arg(long, value_parser = parse_duration_secs)]
        grace: Option<u64>,
    },
    /// Import a key of the earlier system by its sha256(pepper + key) hash.
    Import {
        #[command(flatten)]
        owner: OwnerArgs,
        /// Name for the imported key.
        #[arg(long)]
        name: String,
        /// Comma-separated scopes.
        #[arg(long, value_parser = offer::<ScopeArg>())]
        scopes: String,
        /// base64url(sha256(pepper + raw key)) as the earlier system stored it.
        // base64url may begin with `-` (one digest in 64): a value, never an option.
        #[arg(long, allow_hyphen_values = true)]
        hash: String,
    },
}

impl KeyCommand {
    /// The HTTP twin (remote mode, `--print-http`). Platform keys and imports are the
    /// operator's alone: no HTTP route can mint platform powers.
    pub fn http_twin(&self) -> CoreResult<HttpCall> {
        let keys = |owner: &OwnerArgs| match owner.org()? {
            Some(org) => Ok(vec!["v1".to_owned(), "orgs".into(), org, "keys".into()]),
            None => Err(super::local_only(
                "key ... --platform",
                "platform keys are made and managed by the operator only",
            )),
        };
        let one = |owner: &OwnerArgs, key: &str, then: Option<&str>| {
            let mut path = keys(owner)?;
            path.push(key.to_owned());
            path.extend(then.map(str::to_owned));
            Ok::<_, velu_core::CoreError>(path)
        };
        Ok(match self {
            KeyCommand::Create {
                owner,
                name,
                role,
                scopes,
                expires_at,
            } => {
                let scopes = scopes.as_deref().map(split_list).unwrap_or_default();
                let mut body = json!({"name": name, "role": role, "expires_at": expires_at});
                if !scopes.is_empty() {
                    body["scopes"] = json!(scopes);
                }
                HttpCall::post(keys(owner)?, Some(body))
            }
            KeyCommand::List { owner, page } => page.twin(HttpCall::get(keys(owner)?)),
            KeyCommand::Show { key, owner } => HttpCall::get(one(owner, key, None)?),
            KeyCommand::Revoke { key, owner } => {
                HttpCall::post(one(owner, key, Some("revoke"))?, None)
            }
            KeyCommand::Rotate { key, owner, grace } => {
                HttpCall::post(one(owner, key, Some("rotate"))?, None)
                    .query("grace_secs", grace.map(|g| g.to_string()))
            }
            KeyCommand::Import { .. } => {
                return Err(super::local_only(
                    "key import",
                    "a one-time migration the operator runs on the database",
                ));
            }
        })
    }

    pub async fn run(self, g: &Global) -> CoreResult<String> {
        let velu = g.open_without_tasks().await?;
        let who = Principal::operator();
        match self {
            KeyCommand::Create {
                owner,
                name,
                role,
                scopes,
                expires_at,
            } => {
                let input = CreateKey {
                    name,
                    role,
                    scopes: scopes.as_deref().map(split_list).unwrap_or_default(),
                    expires_at,
                };
                g.render(&keys::create_key(&velu, &who, &owner.owner()?, &input).await?)
            }
            KeyCommand::List { owner, page } => {
                let owner = owner.owner()?;
                let list = page
                    .collect(|p| {
                        let (velu, who, owner) = (&velu, &who, &owner);
                        async move { keys::list_keys(velu, who, owner, &p).await }
                    })
                    .await?;
                g.render(&list)
            }
            KeyCommand::Show { key, owner } => {
                g.render(&keys::show_key(&velu, &who, &owner.owner()?, &key).await?)
            }
            KeyCommand::Revoke { key, owner } => {
                g.render(&keys::revoke_key(&velu, &who, &owner.owner()?, &key).await?)
            }
            KeyCommand::Rotate { key, owner, grace } => {
                let input = RotateKey { grace_secs: grace };
                g.render(&keys::rotate_key(&velu, &who, &owner.owner()?, &key, &input).await?)
            }
            KeyCommand::Import {
                owner,
                name,
                scopes,
                hash,
            } => {
                let input = ImportKey {
                    name,
                    scopes: split_list(&scopes),
                    hash,
                };
                g.render(&keys::import_key(&velu, &who, &owner.owner()?, &input).await?)
            }
        }
    }
}

/// Parses `90`, `90s`, `15m`, `2h` or `1d` into seconds.
pub fn parse_duration_secs(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 90s, 15m, 2h or 1d"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{text}`: unit must be s, m, h or d")),
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("`{text}` is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_secs("90").unwrap(), 90);
        assert_eq!(parse_duration_secs("15m").unwrap(), 900);
        assert_eq!(parse_duration_secs("2h").unwrap(), 7200);
        assert_eq!(parse_duration_secs("1d").unwrap(), 86_400);
        assert!(parse_duration_secs("1w").is_err());
        assert!(parse_duration_secs("soon").is_err());
    }
}
