//! Tailing a job's progress file (`<workspace>/progress`, named to the job by
//! `VELU_PROGRESS_FILE`; docs/events.md): each heartbeat reads the complete lines written
//! since the last one and sends them along ([`crate::events::ProgressReport`]); the end of
//! an attempt flushes what is left before its outcome is written, so the lines come
//! before the end in the stream.
//!
//! The worker runs outside the job's sandbox, so the file is opened without following
//! links and only if it is a regular file (a job cannot make the worker read
//! `/etc/shadow` or block on a FIFO); reads are bounded per call, and a job stops being
//! read once it has sent as many lines as its stream can hold.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use crate::events::{
    MAX_EVENTS_PER_JOB, MAX_LINE_BYTES, MAX_LINES_PER_BEAT, PROGRESS_FILE_NAME, ProgressReport,
    clean_line,
};

/// Most bytes read from one file in one call.
const READ_CHUNK: usize = 64 * 1024;

/// Where a job's progress file is read from, and how far.
#[derive(Debug)]
pub(super) struct ProgressTail {
    path: PathBuf,
    offset: u64,
    /// Lines sent so far (reading stops at the stream's cap).
    sent: i64,
    /// Bytes of a line longer than the cap, being skipped up to its newline.
    skipping: bool,
}

impl ProgressTail {
    /// The tail of the progress file in workspace `dir`.
    pub fn new(dir: PathBuf) -> ProgressTail {
        ProgressTail {
            path: dir.join(PROGRESS_FILE_NAME),
            offset: 0,
            sent: 0,
            skipping: false,
        }
    }

    /// Up to `max` (at most [`MAX_LINES_PER_BEAT`]) complete new lines, cleaned. A line
    /// longer than the cap is kept cut; a last line without its newline waits.
    pub fn read_new(&mut self, max: usize) -> Vec<String> {
        let max = max
            .min(MAX_LINES_PER_BEAT)
            .min(usize::try_from(MAX_EVENTS_PER_JOB - self.sent).unwrap_or(0));
        if max == 0 {
            return Vec::new();
        }
        let Some(buf) = self.read_chunk() else {
            return Vec::new();
        };
        let mut lines = Vec::new();
        let mut consumed = 0;
        while lines.len() < max {
            let rest = &buf[consumed..];
            match rest.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    if !self.skipping {
                        lines.push(clean_line(&rest[..end]));
                    }
                    self.skipping = false;
                    consumed += end + 1;
                }
                // No newline in a chunk's worth: the line is over any cap; keep its start
                // and skip to its end.
                None if consumed == 0 && buf.len() == READ_CHUNK => {
                    if !self.skipping {
                        lines.push(clean_line(&rest[..rest.len().min(MAX_LINE_BYTES * 4)]));
                        self.skipping = true;
                    }
                    consumed = rest.len();
                    break;
                }
                None => break,
            }
        }
        self.offset += consumed as u64;
        self.sent += lines.len() as i64;
        lines
    }

    /// The bytes after `offset`, at most [`READ_CHUNK`]; `None` when there is no regular
    /// file to read.
    fn read_chunk(&self) -> Option<Vec<u8>> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
            .open(&self.path)
            .ok()?;
        let meta = file.metadata().ok()?;
        if !meta.file_type().is_file() || meta.len() <= self.offset {
            return None;
        }
        file.seek(SeekFrom::Start(self.offset)).ok()?;
        let mut buf = Vec::with_capacity(READ_CHUNK.min((meta.len() - self.offset) as usize));
        file.take(READ_CHUNK as u64).read_to_end(&mut buf).ok()?;
        Some(buf)
    }
}

/// A report of `token`'s new lines, if there are any.
pub(super) fn report(tail: &mut ProgressTail, token: &str, max: usize) -> Option<ProgressReport> {
    let lines = tail.read_new(max);
    (!lines.is_empty()).then(|| ProgressReport {
        token: token.to_owned(),
        lines,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn complete_lines_are_read_once_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut tail = ProgressTail::new(dir.path().to_owned());
        assert!(tail.read_new(10).is_empty(), "no file yet");
        let mut f = std::fs::File::create(dir.path().join("progress")).unwrap();
        f.write_all(b"one\ntwo\nthr").unwrap();
        assert_eq!(tail.read_new(10), ["one", "two"]);
        assert!(tail.read_new(10).is_empty(), "a partial line waits");
        f.write_all(b"ee\n\0bad\xff\n").unwrap();
        assert_eq!(tail.read_new(1), ["three"]);
        assert_eq!(tail.read_new(10), ["\u{FFFD}bad\u{FFFD}"]);
    }

    #[test]
    fn a_huge_line_is_cut_and_skipped_and_the_cap_stops_reading() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = std::fs::File::create(dir.path().join("progress")).unwrap();
        f.write_all(&vec![b'x'; 3 * READ_CHUNK]).unwrap();
        f.write_all(b"\nnext\n").unwrap();
        let mut tail = ProgressTail::new(dir.path().to_owned());
        let mut got = Vec::new();
        for _ in 0..10 {
            got.extend(tail.read_new(10));
        }
        assert_eq!(
            got.len(),
            2,
            "{:?}",
            got.iter().map(String::len).collect::<Vec<_>>()
        );
        assert!(got[0].len() <= MAX_LINE_BYTES && got[1] == "next");
        let many = "l\n".repeat(5_000);
        std::fs::write(dir.path().join("progress"), many).unwrap();
        let mut tail = ProgressTail::new(dir.path().to_owned());
        let mut n = 0;
        for _ in 0..200 {
            n += tail.read_new(MAX_LINES_PER_BEAT).len();
        }
        assert_eq!(n as i64, MAX_EVENTS_PER_JOB);
    }

    #[test]
    fn links_and_fifos_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        std::os::unix::fs::symlink(&secret, dir.path().join("progress")).unwrap();
        let mut tail = ProgressTail::new(dir.path().to_owned());
        assert!(tail.read_new(10).is_empty());
        std::fs::remove_file(dir.path().join("progress")).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(dir.path().join("progress"))
            .status()
            .unwrap();
        assert!(made.success());
        assert!(
            tail.read_new(10).is_empty(),
            "a FIFO is never read (nor blocks)"
        );
    }
}
