//! Where Velu keeps its data and which database it talks to.
//!
//! Front ends fill [`Settings`] from their flags and `VELU_*` variables; velu-core only
//! resolves defaults. `Debug` redacts the database password and the pepper, so settings
//! can be logged.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::{CoreError, CoreResult};

/// Name of the SQLite file in the data directory.
pub const SQLITE_FILE: &str = "velu.db";

/// Resolved configuration shared by every front end.
#[derive(Clone)]
pub struct Settings {
    /// Data directory: the SQLite file, the generated pepper, job workspaces.
    pub home: PathBuf,
    /// `sqlite:...` or `postgres://...`; `None` means the SQLite file in `home`.
    pub database_url: Option<String>,
    /// `VELU_API_KEY_PEPPER`: the argon2 secret mixed into every key hash.
    pub pepper: Option<String>,
    /// `VELU_SECRETS_KEY`: the key-encryption key of org secrets (`crate::secrets`).
    pub secrets_key: Option<String>,
    /// `--secrets-key-file` / `VELU_SECRETS_KEY_FILE`: a 0600 file holding it.
    pub secrets_key_file: Option<PathBuf>,
    /// `VELU_BILLING_SECRET` / `VELU_BILLING_SECRET_FILE`: the key billing events are
    /// signed with (`crate::billing`); `None` refuses every billing event.
    pub billing_secret: Option<crate::billing::BillingSecret>,
    /// `--db-pool-size` / `VELU_DB_POOL_SIZE`: the most connections each of the process's
    /// pools opens; `None` means [`crate::db::DEFAULT_POOL_SIZE`].
    pub db_pool_size: Option<u32>,
}

impl Settings {
    /// Settings for `home` (or the platform's user data directory) and an optional URL.
    pub fn new(home: Option<PathBuf>, database_url: Option<String>) -> CoreResult<Settings> {
        let home = match home {
            Some(h) => h,
            None => default_home()?,
        };
        Ok(Settings {
            home,
            database_url: database_url.filter(|u| !u.trim().is_empty()),
            pepper: None,
            secrets_key: None,
            secrets_key_file: None,
            billing_secret: None,
            db_pool_size: None,
        })
    }

    /// Sets the pepper (empty means unset).
    pub fn with_pepper(mut self, pepper: Option<String>) -> Settings {
        self.pepper = pepper.filter(|p| !p.is_empty());
        self
    }

    /// Takes the pepper from `VELU_API_KEY_PEPPER`, else from the file `pepper_file`
    /// (a mounted secret), else leaves it unset.
    pub fn with_pepper_from(
        self,
        env: Option<String>,
        pepper_file: Option<&Path>,
    ) -> CoreResult<Settings> {
        if env.as_deref().is_some_and(|p| !p.is_empty()) {
            return Ok(self.with_pepper(env));
        }
        match pepper_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    CoreError::Config(format!("pepper file {}: {e}", path.display()))
                })?;
                Ok(self.with_pepper(Some(text.trim().to_owned())))
            }
            None => Ok(self),
        }
    }

    /// Sets where the secrets key comes from: the key text (from `VELU_SECRETS_KEY`; empty
    /// means unset), else a key file.
    pub fn with_secrets_key(mut self, key: Option<String>, file: Option<PathBuf>) -> Settings {
        self.secrets_key = key.filter(|k| !k.trim().is_empty());
        self.secrets_key_file = file;
        self
    }

    /// Sets the billing secret (`None`: billing events are refused).
    pub fn with_billing_secret(
        mut self,
        secret: Option<crate::billing::BillingSecret>,
    ) -> Settings {
        self.billing_secret = secret;
        self
    }

    /// Sets the connections per pool (`None`: the default); 0 or more than
    /// [`crate::db::MAX_POOL_SIZE`] is a configuration error.
    pub fn with_db_pool_size(mut self, size: Option<u32>) -> CoreResult<Settings> {
        if let Some(n) = size
            && !(1..=crate::db::MAX_POOL_SIZE).contains(&n)
        {
            return Err(CoreError::Config(format!(
                "db pool size {n}: give 1 to {} connections per pool",
                crate::db::MAX_POOL_SIZE
            )));
        }
        self.db_pool_size = size;
        Ok(self)
    }

    /// The connections per pool: the configured size, else the default.
    pub fn db_pool_size(&self) -> u32 {
        self.db_pool_size.unwrap_or(crate::db::DEFAULT_POOL_SIZE)
    }

    /// The database URL to connect to, with the SQLite default filled in.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => sqlite_url(&self.home.join(SQLITE_FILE)),
        }
    }

    /// True when the database is the SQLite file in `home` (nothing configured).
    pub fn is_default_database(&self) -> bool {
        self.database_url.is_none()
    }
}

/// `<user data dir>/velu`, e.g. `~/.local/share/velu` on Linux.
pub fn default_home() -> CoreResult<PathBuf> {
    dirs::data_dir()
        .map(|d| d.join("velu"))
        .ok_or_else(|| CoreError::Config("no user data directory; set VELU_HOME or --home".into()))
}

/// The sqlx URL of an SQLite file, created on first use.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// A database URL with its password replaced by `***`, for logs and messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{tail}")
            } else {
                format!("{scheme}://{user}@{host}{tail}")
            }
        }
        None => url.to_owned(),
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("home", &self.home)
            .field("database_url", &redact_url(&self.database_url()))
            .field("pepper", &self.pepper.as_ref().map(|_| "<redacted>"))
            .field(
                "secrets_key",
                &self.secrets_key.as_ref().map(|_| "<redacted>"),
            )
            .field("secrets_key_file", &self.secrets_key_file)
            .field(
                "billing_secret",
                &self.billing_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_sizes_are_bounded() {
        let base = || Settings::new(Some(PathBuf::from("/nowhere")), None).unwrap();
        assert_eq!(base().db_pool_size(), crate::db::DEFAULT_POOL_SIZE);
        for n in [1, 8, crate::db::MAX_POOL_SIZE] {
            assert_eq!(base().with_db_pool_size(Some(n)).unwrap().db_pool_size(), n);
        }
        for n in [0, crate::db::MAX_POOL_SIZE + 1, u32::MAX] {
            let err = base().with_db_pool_size(Some(n)).unwrap_err();
            assert_eq!(err.code(), "config", "{n}");
        }
    }

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("postgres://velu:s3cret@db:5432/velu"),
            "postgres://velu:***@db:5432/velu"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
        assert_eq!(redact_url("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }

    #[test]
    fn debug_never_prints_secrets() {
        let s = Settings::new(Some("/tmp/h".into()), Some("postgres://u:pw@h/d".into()))
            .unwrap()
            .with_pepper(Some("pepper-value".into()));
        let text = format!("{s:?}");
        assert!(
            !text.contains("pw@") && !text.contains("pepper-value"),
            "{text}"
        );
    }

    #[test]
    fn default_database_is_sqlite_in_home() {
        let s = Settings::new(Some("/tmp/h".into()), None).unwrap();
        assert!(s.is_default_database());
        assert_eq!(s.database_url(), "sqlite:///tmp/h/velu.db?mode=rwc");
    }
}
