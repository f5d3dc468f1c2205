//! The pepper: a server-side secret mixed into every key hash (the argon2 "secret").
//!
//! Taken from `VELU_API_KEY_PEPPER`. On the SQLite default with none set, one is generated
//! on first use into `<home>/pepper` (mode 0600, written atomically, never overwritten).
//! On PostgreSQL a missing pepper is a configuration error: several processes must share
//! it, so Velu refuses to invent one (fail closed).

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::db::Backend;
use crate::settings::Settings;
use crate::{CoreError, CoreResult};

/// File name of the generated pepper in the data directory.
pub const PEPPER_FILE: &str = "pepper";

/// The pepper bytes. `Debug` never shows them.
#[derive(Clone)]
pub struct Pepper(Vec<u8>);

impl std::fmt::Debug for Pepper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pepper(<redacted>)")
    }
}

impl Pepper {
    /// Wraps raw bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Pepper {
        Pepper(bytes.into())
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Resolves the pepper for these settings and backend; `Ok(None)` means "missing on
/// PostgreSQL", reported when a key operation needs it.
pub fn resolve(settings: &Settings, backend: Backend) -> CoreResult<Option<Pepper>> {
    if let Some(p) = &settings.pepper {
        if p.len() < 16 {
            return Err(CoreError::Config(
                "VELU_API_KEY_PEPPER must be at least 16 characters".into(),
            ));
        }
        return Ok(Some(Pepper::new(p.as_bytes())));
    }
    if backend.may_generate_local_secrets() {
        load_or_create(&settings.home.join(PEPPER_FILE)).map(Some)
    } else {
        Ok(None)
    }
}

/// The error for a missing pepper on PostgreSQL.
pub fn missing() -> CoreError {
    CoreError::Config(
        "VELU_API_KEY_PEPPER is not set; on PostgreSQL every process must share one pepper \
         (generate one with `openssl rand -base64 32`)"
            .into(),
    )
}

fn load_or_create(path: &Path) -> CoreResult<Pepper> {
    let io = |e: std::io::Error| CoreError::Config(format!("pepper file {}: {e}", path.display()));
    match std::fs::read_to_string(path) {
        Ok(text) => return Ok(Pepper::new(text.trim().as_bytes())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    crate::private_fs::ensure_private_dir(dir)?;
    let mut bytes = [0u8; 32];
    rand::TryRngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut bytes)
        .map_err(|e| CoreError::Config(format!("OS random generator: {e}")))?;
    let text = URL_SAFE_NO_PAD.encode(bytes);
    // tempfile creates the file 0600; persist_noclobber never replaces a pepper another
    // process wrote first.
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    tmp.write_all(text.as_bytes()).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    match tmp.persist_noclobber(path) {
        Ok(_) => {
            tracing::info!(path = %path.display(), "generated a new API key pepper");
            Ok(Pepper::new(text.into_bytes()))
        }
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(path).map_err(io)?;
            Ok(Pepper::new(text.trim().as_bytes()))
        }
        Err(e) => Err(io(e.error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generated_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::new(Some(dir.path().to_owned()), None).unwrap();
        let a = resolve(&settings, Backend::Sqlite).unwrap().unwrap();
        let b = resolve(&settings, Backend::Sqlite).unwrap().unwrap();
        assert_eq!(a.bytes(), b.bytes(), "second use reads the same pepper");
        let mode = std::fs::metadata(dir.path().join(PEPPER_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn postgres_never_invents_a_pepper() {
        let dir = tempfile::tempdir().unwrap();
        let settings =
            Settings::new(Some(dir.path().to_owned()), Some("postgres://x/y".into())).unwrap();
        assert!(resolve(&settings, Backend::Postgres).unwrap().is_none());
        assert!(!dir.path().join(PEPPER_FILE).exists());
        let short = settings.clone().with_pepper(Some("short".into()));
        assert_eq!(
            resolve(&short, Backend::Postgres).unwrap_err().code(),
            "config"
        );
    }
}
