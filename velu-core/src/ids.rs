//! Identifiers: UUIDv7 strings, so ids sort by creation time on both backends.

/// A new UUIDv7 id, lower-case hyphenated.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// True when `text` is a canonical lower-case hyphenated UUID (what [`new_id`] makes).
pub fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && uuid::Uuid::try_parse(text).is_ok_and(|u| u.hyphenated().to_string() == text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_canonical_and_time_ordered() {
        let a = new_id();
        let b = new_id();
        assert!(is_uuid(&a) && is_uuid(&b));
        assert!(a < b, "{a} < {b}");
        assert!(!is_uuid("not-a-uuid"));
        assert!(!is_uuid(&a.to_uppercase()));
    }
}
