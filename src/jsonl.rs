//! JSON Lines inputs (the queue log, the activity feed): lines read in bounded memory
//! (SPEC §4.1).
//!
//! One cap for every JSON Lines input: a line longer than [`MAX_LINE_BYTES`] is
//! reported as too long and skipped without being held (only its length is
//! counted), so one huge line costs a fixed buffer, not its size. A last line
//! without a newline is reported as unterminated whatever its length: for a log that
//! is the trace of a crashed writer.

use std::io::{self, BufRead, Read};

use crate::fsutil::PageBufReader;

/// The longest line read into memory (64 MiB).
pub const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// One line as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number.
    pub number: usize,
    /// Whether a newline ended it (false only for the last line).
    pub terminated: bool,
    /// Its length in bytes when that is over the cap (its bytes were not kept).
    pub too_long: Option<u64>,
    /// Where it starts: bytes from the reader's start.
    pub offset: u64,
}

/// Reads lines of at most `cap` bytes from a reader.
pub struct Lines<R> {
    reader: PageBufReader<R>,
    buf: Vec<u8>,
    number: usize,
    cap: usize,
    /// Bytes consumed so far.
    pos: u64,
    /// Bytes of the reader's buffer that the line last returned still borrows:
    /// consumed at the next call.
    lent: usize,
}

impl<R: Read> Lines<R> {
    /// Lines numbered from `first_line` + 1.
    pub fn new(r: R, first_line: usize) -> Lines<R> {
        Lines::with_cap(r, first_line, MAX_LINE_BYTES)
    }

    pub fn with_cap(r: R, first_line: usize, cap: usize) -> Lines<R> {
        Lines {
            reader: PageBufReader::with_capacity(256 * 1024, r),
            buf: Vec::new(),
            number: first_line,
            cap,
            pos: 0,
            lent: 0,
        }
    }

    /// The next line and its bytes (without the newline; empty when too long), or
    /// `None` at the end.
    pub fn next_line(&mut self) -> io::Result<Option<(Line, &[u8])>> {
        self.reader.consume(std::mem::take(&mut self.lent));
        // The common line lies whole in the reader's buffer: it is lent from there,
        // not copied.
        let newline = loop {
            match self.reader.fill_buf() {
                Ok(chunk) => break memchr::memchr(b'\n', chunk),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if let Some(i) = newline.filter(|&i| i <= self.cap) {
            self.lent = i + 1;
            let line = self.next_number(true, i as u64, true);
            return Ok(Some((line, &self.reader.buffer()[..i])));
        }
        self.buf.clear();
        let mut len: u64 = 0;
        let mut kept = true;
        loop {
            let chunk = match self.reader.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                if len == 0 {
                    return Ok(None);
                }
                return Ok(Some(self.finish(false, len, kept)));
            }
            let (take, done) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (i, true),
                None => (chunk.len(), false),
            };
            len += take as u64;
            if kept {
                if self.buf.len() + take > self.cap {
                    kept = false;
                    self.buf = Vec::new();
                } else {
                    self.buf.extend_from_slice(&chunk[..take]);
                }
            }
            self.reader.consume(if done { take + 1 } else { take });
            if done {
                return Ok(Some(self.finish(true, len, kept)));
            }
        }
    }

    fn finish(&mut self, terminated: bool, len: u64, kept: bool) -> (Line, &[u8]) {
        let line = self.next_number(terminated, len, kept);
        (line, &self.buf)
    }

    /// Numbers the line of `len` bytes that starts at the current position.
    fn next_number(&mut self, terminated: bool, len: u64, kept: bool) -> Line {
        self.number += 1;
        let line = Line {
            number: self.number,
            terminated,
            too_long: (!kept).then_some(len),
            offset: self.pos,
        };
        self.pos += len + u64::from(terminated);
        line
    }
}

/// "longer than the 64 MiB cap" for messages.
pub fn cap_text() -> String {
    format!("{} MiB", MAX_LINE_BYTES >> 20)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzzing::Pieces;
    use proptest::prelude::*;

    proptest! {
        /// Lines lent from the reader's buffer and lines gathered across its refills
        /// read alike: each is the text between two newlines, numbered and placed.
        #[test]
        fn lines_read_alike_however_the_reader_hands_them_out(
            input in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'x'), any::<u8>()], 0..600),
            step in 1usize..40,
            buffer in 1usize..64,
            cap in 0usize..24,
        ) {
            let mut lines = Lines::with_cap(Pieces { bytes: &input, step }, 7, cap);
            lines.reader = PageBufReader::with_capacity(buffer, Pieces { bytes: &input, step });
            let mut got = Vec::new();
            while let Some((l, b)) = lines.next_line().unwrap() {
                got.push((l, b.to_vec()));
            }
            let mut want = Vec::new();
            let mut offset = 0u64;
            let mut parts: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
            let last = parts.pop().unwrap_or_default();
            let terminated = parts.len();
            for (i, text) in parts.into_iter().chain([last]).enumerate() {
                let terminated = i < terminated;
                if !terminated && text.is_empty() {
                    break;
                }
                let kept = text.len() <= cap;
                want.push((
                    Line {
                        number: 8 + i,
                        terminated,
                        too_long: (!kept).then_some(text.len() as u64),
                        offset,
                    },
                    if kept { text.to_vec() } else { Vec::new() },
                ));
                offset += text.len() as u64 + u64::from(terminated);
            }
            prop_assert_eq!(got, want);
        }
    }

    fn all(input: &[u8], cap: usize) -> Vec<(Line, Vec<u8>)> {
        let mut lines = Lines::with_cap(input, 0, cap);
        let mut out = Vec::new();
        while let Some((l, b)) = lines.next_line().unwrap() {
            out.push((l, b.to_vec()));
        }
        out
    }

    #[test]
    fn long_lines_are_measured_not_kept() {
        let got = all(b"ab\n0123456789\n\nxyz", 4);
        let view: Vec<_> = got
            .iter()
            .map(|(l, b)| (l.number, l.offset, l.terminated, l.too_long, b.as_slice()))
            .collect();
        assert_eq!(
            view,
            [
                (1, 0, true, None, &b"ab"[..]),
                (2, 3, true, Some(10), &b""[..]),
                (3, 14, true, None, &b""[..]),
                (4, 15, false, None, &b"xyz"[..]),
            ]
        );
        // An unterminated last line over the cap is still the last line.
        let got = all(b"ok\n0123456789", 4);
        assert_eq!(got[1].0.too_long, Some(10));
        assert!(!got[1].0.terminated);
        assert!(all(b"", 4).is_empty());
    }
}
