//! `velu-cli key ...`

use clap::{Args, Subcommand};
use velu_core::keys::{self, CreateKey, ImportKey, KeyOwner, RotateKey};
use velu_core::orgs::OrgRef;
use velu_core::{CoreResult, Principal};

use super::{PageArgs, split_list};
use crate::context::Global;
use crate::values::{RoleArg, ScopeArg, offer};

/// Whose keys: an org's, or the platform's.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct OwnerArgs {
    /// Org id or slug.
    #[arg(long)]
    org: Option<String>,
    /// Platform keys (no org): may hold admin:orgs:manage and jobs:work.
    #[arg(long)]
    platform: bool,
}

impl OwnerArgs {
    fn owner(&self) -> KeyOwner {
        match &self.org {
            Some(org) => KeyOwner::Org(OrgRef::new(org.clone())),
            None => KeyOwner::Platform,
        }
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
        #[arg(long)]
        hash: String,
    },
}

impl KeyCommand {
    pub async fn run(self, g: &Global) -> CoreResult<String> {
        let velu = g.open().await?;
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
                g.render(&keys::create_key(&velu, &who, &owner.owner(), &input).await?)
            }
            KeyCommand::List { owner, page } => {
                let owner = owner.owner();
                let list = page
                    .collect(|p| {
                        let (velu, who, owner) = (&velu, &who, &owner);
                        async move { keys::list_keys(velu, who, owner, &p).await }
                    })
                    .await?;
                g.render(&list)
            }
            KeyCommand::Show { key, owner } => {
                g.render(&keys::show_key(&velu, &who, &owner.owner(), &key).await?)
            }
            KeyCommand::Revoke { key, owner } => {
                g.render(&keys::revoke_key(&velu, &who, &owner.owner(), &key).await?)
            }
            KeyCommand::Rotate { key, owner, grace } => {
                let input = RotateKey { grace_secs: grace };
                g.render(&keys::rotate_key(&velu, &who, &owner.owner(), &key, &input).await?)
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
                g.render(&keys::import_key(&velu, &who, &owner.owner(), &input).await?)
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
