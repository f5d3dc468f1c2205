//! Progress lines as stored: valid UTF-8, no U+0000 or other control characters, at most
//! [`MAX_LINE_BYTES`] bytes.

/// Longest progress line kept, in bytes (longer lines are cut at a character boundary and
/// end with `…`).
pub const MAX_LINE_BYTES: usize = 1024;

/// What replaces an invalid byte, U+0000 or a control character in a progress line.
const REPLACEMENT: char = '\u{FFFD}';

/// `raw` (one line, without its newline) as it is stored: invalid UTF-8, U+0000 and
/// control characters (a tab too: lines are single-line text) replaced by U+FFFD, a
/// trailing `\r` dropped, cut to [`MAX_LINE_BYTES`].
pub fn clean_line(raw: &[u8]) -> String {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    // Never decode more than a few times the cap: the rest is cut anyway.
    let raw = &raw[..raw.len().min(4 * MAX_LINE_BYTES)];
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len().min(MAX_LINE_BYTES));
    for c in text.chars() {
        let c = if c.is_control() { REPLACEMENT } else { c };
        if out.len() + c.len_utf8() > MAX_LINE_BYTES - '…'.len_utf8() {
            out.push('…');
            return out;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_scrubbed_and_capped() {
        assert_eq!(clean_line(b"50% done\r"), "50% done");
        assert_eq!(
            clean_line(b"a\0b\x1b[31mc\td"),
            "a\u{FFFD}b\u{FFFD}[31mc\u{FFFD}d"
        );
        assert_eq!(clean_line(b"caf\xc3\xa9 \xff!"), "café \u{FFFD}!");
        let long = "é".repeat(5000);
        let cut = clean_line(long.as_bytes());
        assert!(
            cut.len() <= MAX_LINE_BYTES && cut.ends_with('…'),
            "{}",
            cut.len()
        );
        assert!(cut.chars().all(|c| c == 'é' || c == '…'));
        assert_eq!(clean_line(b""), "");
    }
}
