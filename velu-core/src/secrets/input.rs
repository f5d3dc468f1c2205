//! What a caller may name a secret and what it may hold.

use crate::tasks::NEVER_PASSED;
use crate::{CoreError, CoreResult};

/// Longest secret name, in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Largest secret value, in bytes.
pub const MAX_VALUE_LEN: usize = 64 * 1024;

/// Names a job already gets from the worker (or that would change how it runs); a secret
/// may not shadow them.
const RESERVED: &[&str] = &["PATH", "HOME", "TMPDIR", "SHELL", "IFS"];

/// Checks a secret name: `^[A-Z_][A-Z0-9_]{0,63}$` (an environment variable name), not
/// `VELU_*`, `LD_*`, a reserved variable or a platform secret's variable.
pub fn check_name(name: &str) -> CoreResult<&str> {
    let shaped = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if !shaped {
        return Err(CoreError::invalid(
            "name",
            "must match ^[A-Z_][A-Z0-9_]{0,63}$ (an environment variable name)",
        ));
    }
    if name.starts_with("VELU_")
        || name.starts_with("LD_")
        || RESERVED.contains(&name)
        || NEVER_PASSED.contains(&name)
    {
        return Err(CoreError::invalid(
            "name",
            format!("`{name}` is reserved (VELU_*, LD_*, PATH, HOME, TMPDIR, SHELL, IFS)"),
        ));
    }
    Ok(name)
}

/// Checks a secret value: 1 to [`MAX_VALUE_LEN`] bytes of UTF-8 without NUL (it becomes an
/// environment variable). The error never quotes the value.
pub fn check_value(value: &[u8]) -> CoreResult<&str> {
    if value.len() > MAX_VALUE_LEN {
        return Err(CoreError::PayloadTooLarge {
            size: value.len() as u64,
            limit: MAX_VALUE_LEN as u64,
        });
    }
    if value.is_empty() {
        return Err(CoreError::invalid("value", "must not be empty"));
    }
    let text = std::str::from_utf8(value)
        .map_err(|_| CoreError::invalid("value", "must be UTF-8 text"))?;
    if text.contains('\0') {
        return Err(CoreError::invalid(
            "value",
            "must not contain the NUL character (it is delivered as an environment variable)",
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_environment_variable_names() {
        for ok in ["GITHUB_TOKEN", "_X", "A", &"A".repeat(64), "X9"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "github_token",
            "9X",
            "A-B",
            "A B",
            "A\0B",
            "TOKÉN",
            &"A".repeat(65),
            "VELU_X",
            "PATH",
            "LD_PRELOAD",
            "VELU_SECRETS_KEY",
            "PGPASSWORD",
        ] {
            assert_eq!(check_name(bad).unwrap_err().code(), "invalid", "{bad:?}");
        }
    }

    #[test]
    fn values_are_bounded_text() {
        assert!(check_value(b"t0k\xc3\xa9n").is_ok());
        assert_eq!(check_value(b"").unwrap_err().code(), "invalid");
        assert_eq!(check_value(b"a\0b").unwrap_err().code(), "invalid");
        assert_eq!(check_value(b"\xff").unwrap_err().code(), "invalid");
        let huge = vec![b'x'; MAX_VALUE_LEN + 1];
        assert_eq!(check_value(&huge).unwrap_err().code(), "payload_too_large");
        assert!(check_value(&huge[1..]).is_ok());
    }
}
