//! Files and directories only their owner may read: the data directory, the SQLite file,
//! the generated pepper's directory.

use std::path::Path;

use crate::{CoreError, CoreResult};

/// Creates an empty file readable by the owner only, if it does not exist yet (SQLite
/// gives its WAL files the same mode).
pub(crate) fn ensure_private_file(path: &Path) -> CoreResult<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(CoreError::Config(format!(
            "cannot create {}: {e}",
            path.display()
        ))),
    }
}

/// Creates `dir` (and parents) if missing, readable by the owner only.
pub(crate) fn ensure_private_dir(dir: &Path) -> CoreResult<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| CoreError::Config(format!("cannot create {}: {e}", dir.display())))
}
