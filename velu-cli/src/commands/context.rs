//! `velu-cli context ...`: the named contexts of the config file (`contexts.rs`). The
//! CLI's own settings, not an operation of Velu: no HTTP twin.

use std::path::PathBuf;

use clap::Subcommand;
use serde::Serialize;
use velu_core::{CoreError, CoreResult};

use crate::context::Global;
use crate::contexts::{ConfigFile, Context, check_name, config_path};

/// Named contexts: where commands go (a server or a local database) and the default org.
#[derive(Debug, Subcommand)]
pub enum ContextCommand {
    /// List the contexts and which one is current.
    List,
    /// Show a context (the current one by default).
    Show {
        /// Context name.
        name: Option<String>,
    },
    /// Make a context the current one.
    Use {
        /// Context name.
        name: String,
    },
    /// Create or change a context (only the flags given change).
    Set {
        /// Context name: letters, digits, `-`, `_`, `.`.
        name: String,
        /// Remote mode: the server's URL.
        #[arg(id = "to_server", long = "to-server", value_name = "URL")]
        server: Option<String>,
        /// Local mode on PostgreSQL: the database URL (kept in the 0600 config file).
        #[arg(id = "to_database_url", long = "to-database-url", value_name = "URL")]
        database_url: Option<String>,
        /// Local mode's data directory.
        #[arg(id = "to_home", long = "to-home", value_name = "DIR")]
        home: Option<PathBuf>,
        /// The file that holds the API key (the key itself is never stored here).
        #[arg(id = "to_key_file", long = "to-key-file", value_name = "FILE")]
        key_file: Option<PathBuf>,
        /// Remote mode: a PEM file of the private certificate authority that signed the
        /// server's certificate.
        #[arg(id = "to_ca_file", long = "to-ca-file", value_name = "FILE")]
        ca_file: Option<PathBuf>,
        /// The org `--org` defaults to.
        #[arg(id = "to_org", long = "to-org", value_name = "ORG")]
        org: Option<String>,
    },
    /// Delete a context.
    Delete {
        /// Context name.
        name: String,
    },
}

/// One context as printed.
#[derive(Debug, Serialize)]
struct Shown<'a> {
    name: &'a str,
    current: bool,
    #[serde(flatten)]
    context: &'a Context,
}

/// `context list`.
#[derive(Debug, Serialize)]
struct Listed<'a> {
    config: String,
    current: Option<&'a str>,
    items: Vec<Shown<'a>>,
}

impl ContextCommand {
    pub fn run(self, g: &Global) -> CoreResult<String> {
        let path = config_path(g.config_file.as_deref())
            .ok_or_else(|| CoreError::Config("no config directory; pass --config FILE".into()))?;
        let mut file = ConfigFile::load(&path)?;
        let shown = |file: &ConfigFile, name: &str| -> CoreResult<String> {
            let context = file
                .contexts
                .get(name)
                .ok_or_else(|| CoreError::not_found("context", name))?;
            let current = file.current.as_deref() == Some(name);
            g.render(&Shown {
                name,
                current,
                context,
            })
        };
        match self {
            ContextCommand::List => g.render(&Listed {
                config: path.display().to_string(),
                current: file.current.as_deref(),
                items: file
                    .contexts
                    .iter()
                    .map(|(name, context)| Shown {
                        name,
                        current: file.current.as_deref() == Some(name),
                        context,
                    })
                    .collect(),
            }),
            ContextCommand::Show { name } => {
                let name = name
                    .or_else(|| file.current.clone())
                    .ok_or_else(|| CoreError::not_found("context", "(current)"))?;
                shown(&file, &name)
            }
            ContextCommand::Use { name } => {
                if !file.contexts.contains_key(&name) {
                    return Err(CoreError::not_found("context", name));
                }
                file.current = Some(name.clone());
                file.save(&path)?;
                shown(&file, &name)
            }
            ContextCommand::Set {
                name,
                server,
                database_url,
                home,
                key_file,
                ca_file,
                org,
            } => {
                check_name(&name)?;
                let texts = [&server, &database_url, &org].into_iter().flatten();
                if texts.into_iter().any(|t| t.chars().any(char::is_control)) {
                    return Err(CoreError::invalid(
                        "context",
                        "must not contain control characters",
                    ));
                }
                let context = file.contexts.entry(name.clone()).or_default();
                context.server = server.or(context.server.take());
                context.database_url = database_url.or(context.database_url.take());
                context.home = home.or(context.home.take());
                context.key_file = key_file.or(context.key_file.take());
                context.ca_file = ca_file.or(context.ca_file.take());
                context.org = org.or(context.org.take());
                if context.server.is_some() && context.database_url.is_some() {
                    return Err(CoreError::invalid(
                        "context",
                        "a context points at a server or at a database, not both",
                    ));
                }
                if file.current.is_none() {
                    file.current = Some(name.clone());
                }
                file.save(&path)?;
                shown(&file, &name)
            }
            ContextCommand::Delete { name } => {
                if file.contexts.remove(&name).is_none() {
                    return Err(CoreError::not_found("context", name));
                }
                if file.current.as_deref() == Some(name.as_str()) {
                    file.current = None;
                }
                file.save(&path)?;
                g.render(&serde_json::json!({ "deleted": name }))
            }
        }
    }
}
