//! Named contexts: `$XDG_CONFIG_HOME/velu/config.yaml` (or `--config`, `VELU_CONFIG`)
//! holds where each context points (a server or a local database, the key file, a
//! default org) and which one is current. A context only supplies defaults: flags and
//! environment variables win over it. `velu-cli context ...` edits the file.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Command;
use serde::{Deserialize, Serialize};
use velu_core::{CoreError, CoreResult};

/// What a context sets (every field optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    /// Remote mode: the server's URL (`--server`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Local mode on PostgreSQL (`--database-url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// Local mode's data directory (`--home`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<PathBuf>,
    /// The file holding the API key of remote mode (`--key-file`); never the key itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// A PEM file of certificate authorities the server's certificate chains to
    /// (`--ca-file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The org `--org` defaults to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
}

/// The config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The context used when none is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    /// Contexts by name.
    #[serde(default)]
    pub contexts: BTreeMap<String, Context>,
}

/// The config file's path: `explicit` (`--config`, `VELU_CONFIG`), else
/// `$XDG_CONFIG_HOME/velu/config.yaml` (`~/.config/velu/config.yaml`).
pub fn config_path(explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(path) => Some(path.to_owned()),
        None => dirs::config_dir().map(|d| d.join("velu").join("config.yaml")),
    }
}

impl ConfigFile {
    /// Reads the file at `path`; a missing file is an empty config.
    pub fn load(path: &Path) -> CoreResult<ConfigFile> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ConfigFile::default()),
            Err(e) => return Err(config_error(path, e)),
        };
        if text.trim().is_empty() {
            return Ok(ConfigFile::default());
        }
        serde_yaml::from_str(&text).map_err(|e| config_error(path, e))
    }

    /// Writes the file (0600: a database URL may hold a password), replacing it whole.
    pub fn save(&self, path: &Path) -> CoreResult<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| config_error(dir, e))?;
        let text = serde_yaml::to_string(self).map_err(CoreError::internal)?;
        // tempfile creates the file with mode 0600; the rename replaces the old one whole.
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| config_error(dir, e))?;
        tmp.write_all(text.as_bytes())
            .map_err(|e| config_error(path, e))?;
        tmp.persist(path).map_err(|e| config_error(path, e.error))?;
        Ok(())
    }

    /// The context named `name`, else the current one; `None` when neither is set. A
    /// name that is not in the file is `not_found`.
    pub fn pick(&self, name: Option<&str>) -> CoreResult<Option<(&str, &Context)>> {
        let Some(name) = name.or(self.current.as_deref()) else {
            return Ok(None);
        };
        self.contexts
            .get_key_value(name)
            .map(|(n, c)| Some((n.as_str(), c)))
            .ok_or_else(|| CoreError::not_found("context", name))
    }
}

fn config_error(path: &Path, e: impl std::fmt::Display) -> CoreError {
    CoreError::Config(format!("config file {}: {e}", path.display()))
}

/// A context name: letters, digits, `-`, `_`, `.`, 1 to 64 of them.
pub fn check_name(name: &str) -> CoreResult<()> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(CoreError::invalid(
            "name",
            format!("`{name}`: a context name is 1 to 64 letters, digits, `-`, `_` or `.`"),
        ))
    }
}

/// The value of `--<flag> VALUE` or `--<flag>=VALUE` in `args`, read before clap parses
/// them (the context must be known to set clap's defaults).
pub fn flag_value(args: &[OsString], flag: &str) -> Option<OsString> {
    let long = format!("--{flag}");
    let with_eq = format!("--{flag}=");
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let text = arg.to_string_lossy();
        if text == "--" {
            break;
        }
        if text == long {
            return iter.next().cloned();
        }
        if let Some(value) = text.strip_prefix(&with_eq) {
            return Some(value.into());
        }
    }
    None
}

/// `cmd` with the context's values as defaults of `--server`, `--database-url`, `--home`,
/// `--key-file`, `--ca-file` and every `--org` (flags and environment variables still win).
pub fn with_defaults(cmd: Command, ctx: &Context) -> Command {
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| leak(p.display().to_string()));
    let globals = [
        ("server", ctx.server.clone().map(leak)),
        ("database_url", ctx.database_url.clone().map(leak)),
        ("home", path(&ctx.home)),
        ("key_file", path(&ctx.key_file)),
        ("ca_file", path(&ctx.ca_file)),
    ];
    let mut cmd = cmd;
    for (id, value) in globals {
        if let Some(value) = value {
            cmd = cmd.mut_arg(id, |a| a.default_value(value));
        }
    }
    match ctx.org.clone().map(leak) {
        Some(org) => default_org(cmd, org),
        None => cmd,
    }
}

/// Sets `org` as the default of every `--org` flag of `cmd` and its subcommands.
fn default_org(mut cmd: Command, org: &'static str) -> Command {
    let has_org = cmd
        .get_arguments()
        .any(|a| a.get_id() == "org" && a.get_long() == Some("org"));
    if has_org {
        cmd = cmd.mut_arg("org", |a| a.default_value(org).required(false));
    }
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    for name in names {
        cmd = cmd.mut_subcommand(name, |sub| default_org(sub, org));
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_round_trip_and_missing_files_are_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("velu/config.yaml");
        assert_eq!(ConfigFile::load(&path).unwrap(), ConfigFile::default());
        let mut file = ConfigFile::default();
        file.contexts.insert(
            "prod".into(),
            Context {
                server: Some("https://velu.example".into()),
                org: Some("acme".into()),
                ..Context::default()
            },
        );
        file.current = Some("prod".into());
        file.save(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = ConfigFile::load(&path).unwrap();
        assert_eq!(back, file);
        assert_eq!(back.pick(None).unwrap().unwrap().0, "prod");
        assert_eq!(back.pick(Some("nope")).unwrap_err().code(), "not_found");
        std::fs::write(&path, "contexts: {prod: {token: x}}\n").unwrap();
        assert_eq!(ConfigFile::load(&path).unwrap_err().code(), "config");
    }

    #[test]
    fn flags_are_found_before_parsing() {
        let args: Vec<OsString> = ["velu-cli", "--context=prod", "job", "list"]
            .iter()
            .map(Into::into)
            .collect();
        assert_eq!(flag_value(&args, "context").unwrap(), "prod");
        let args: Vec<OsString> = ["velu-cli", "x", "--", "--context", "a"]
            .iter()
            .map(Into::into)
            .collect();
        assert!(flag_value(&args, "context").is_none());
        assert!(check_name("prod-eu.1").is_ok());
        for bad in ["", "a b", "a/b", "é", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
