//! A server's text as the CLI prints it: whatever a server (or whoever answers in its
//! place) says reaches the operator's terminal and logs only as plain, bounded text.

/// `text` with control characters (escape sequences among them) replaced by U+FFFD, at
/// most 4,096 characters.
pub fn printable(text: &str) -> String {
    text.chars()
        .take(4096)
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_length_never_pass() {
        assert_eq!(
            printable("bad\u{1b}[2J\u{7}input\n"),
            "bad\u{FFFD}[2J\u{FFFD}input\u{FFFD}"
        );
        assert_eq!(printable(&"é".repeat(10_000)).chars().count(), 4096);
        assert_eq!(printable("plain: ok"), "plain: ok");
    }
}
