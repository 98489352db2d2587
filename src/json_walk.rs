//! A `report.json` read as a stream at the speed of a parse from memory.
//!
//! serde_json reads from a reader a byte at a time, through a call per byte that
//! also keeps its line and column: on a report of 100,000 runs (178 MB) that is
//! most of a one-thread read. The report is too large to hold whole, and lith reads
//! back one run at a time anyway. So [`walk`] takes the text a block at a time,
//! follows the report's own frame (the report's object, `bundles`, its `roots`, each
//! root's `runs`) and hands each value inside that frame to its caller as the bytes
//! of one JSON value, for serde_json to parse from memory: a run, or a field of the
//! report, of `bundles` or of a root. What it holds beyond the block is the value
//! being handed out, at most [`MAX_HELD`] bytes of it: a longer value is handed out
//! as a reader of its text, which serde_json reads as it parses it (slowly, and in
//! the memory of what is parsed), so that no value of the text is ever held whole
//! for its length.
//!
//! The frame is checked as it is read (keys, `:`, `,`, brackets and nothing after
//! the report), and every value is parsed by serde_json: by the caller when it
//! wants it, else by the walk, into nothing. A document serde_json refuses is
//! refused (serde_json's limit on nesting holds for each value rather than for the
//! whole text); an error names the line and column in the whole text.

use std::io::Read;

/// Where a value [`walk`] hands out is in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place<'k> {
    /// A field of the report, other than an object `bundles`.
    Top(&'k str),
    /// A field of `bundles`, other than a list `roots`.
    Bundles(&'k str),
    /// The end of an object `bundles` (handed `null`).
    BundlesEnd,
    /// An element of `roots` that is not an object.
    RootValue,
    /// A field of a bundle root, other than a list `runs`.
    Root(&'k str),
    /// The end of an object in `roots` (handed `null`).
    RootEnd,
    /// An element of a root's `runs`.
    Run,
    /// The end of the report's object (handed `null`).
    End,
}

/// What [`walk`] refused, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub message: String,
    /// 1-based, as serde_json counts them (the column in bytes).
    pub line: u64,
    pub column: u64,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at line {} column {}",
            self.message, self.line, self.column
        )
    }
}

impl std::error::Error for Error {}

/// How much is read at a time.
const BLOCK: usize = 1 << 20;

/// The longest value handed out as its text, 8 MiB (a run of lith's report is
/// a few KB, and at most about a megabyte with its 10,000 listed rows).
pub const MAX_HELD: usize = 8 << 20;

/// A value [`walk`] hands out: its text, or a reader of it when it is longer than
/// [`MAX_HELD`] bytes (read it with [`parse`]).
pub enum Value<'a> {
    Text(&'a [u8]),
    Stream(&'a mut dyn Read),
}

/// The value parsed as a `T`: from memory when it is held, else as it is read
/// (never further than its end).
pub fn parse<T: serde::de::DeserializeOwned>(v: Value<'_>) -> serde_json::Result<T> {
    match v {
        Value::Text(text) => serde_json::from_slice(text),
        Value::Stream(r) => T::deserialize(&mut serde_json::Deserializer::from_reader(r)),
    }
}

/// Walks the report `r` yields, calling `visit` with each value of its frame (see
/// [`Place`]). `visit` returns whether it parsed the value (`Ok(true)`); a value it
/// left, unread, is parsed into nothing, so that every value is checked. A serde_json error
/// of `visit` is placed in the whole text. The text is read to its end.
pub fn walk<R, V>(r: R, mut visit: V) -> Result<(), Error>
where
    R: Read,
    V: FnMut(Place<'_>, Value<'_>) -> serde_json::Result<bool>,
{
    Text::new(r).walk(&mut visit)
}

fn top_field<R: Read, V: Visit>(t: &mut Text<R>, visit: &mut V, key: &str) -> Result<(), Error> {
    if key == "bundles" && t.peek()? == Some(b'{') {
        t.object(visit, bundles_field)?;
        t.call(visit, Place::BundlesEnd)
    } else {
        t.hand(visit, Place::Top(key))
    }
}

fn bundles_field<R: Read, V: Visit>(
    t: &mut Text<R>,
    visit: &mut V,
    key: &str,
) -> Result<(), Error> {
    if key == "roots" && t.peek()? == Some(b'[') {
        t.array(visit, |t, visit| {
            if t.peek()? == Some(b'{') {
                t.object(visit, root_field)?;
                t.call(visit, Place::RootEnd)
            } else {
                t.hand(visit, Place::RootValue)
            }
        })
    } else {
        t.hand(visit, Place::Bundles(key))
    }
}

fn root_field<R: Read, V: Visit>(t: &mut Text<R>, visit: &mut V, key: &str) -> Result<(), Error> {
    if key == "runs" && t.peek()? == Some(b'[') {
        t.array(visit, |t, visit| t.hand(visit, Place::Run))
    } else {
        t.hand(visit, Place::Root(key))
    }
}

/// What [`walk`] calls.
trait Visit: FnMut(Place<'_>, Value<'_>) -> serde_json::Result<bool> {}
impl<V: FnMut(Place<'_>, Value<'_>) -> serde_json::Result<bool>> Visit for V {}

/// The text being walked: `buf[pos..end]` is read and not yet walked past.
struct Text<R> {
    r: R,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    /// The line of `buf[pos]`, and the bytes before it on that line.
    line: u64,
    col: u64,
}

impl<R: Read> Text<R> {
    fn new(r: R) -> Text<R> {
        Text {
            r,
            buf: Vec::new(),
            pos: 0,
            end: 0,
            eof: false,
            line: 1,
            col: 0,
        }
    }

    fn walk<V: Visit>(&mut self, visit: &mut V) -> Result<(), Error> {
        match self.peek()? {
            Some(b'{') => {
                self.object(visit, top_field)?;
                self.call(visit, Place::End)?;
            }
            Some(_) => return Err(self.error("expected the object of a report.json")),
            None => return Err(self.eof_error("EOF while parsing a value")),
        }
        match self.peek()? {
            None => Ok(()),
            Some(_) => Err(self.error("trailing characters")),
        }
    }

    /// Reads another block after what is held, keeping what is not walked past;
    /// `false` at the end of the text.
    fn more(&mut self) -> Result<bool, Error> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.buf.len() - self.end < BLOCK / 2 {
            self.buf.resize(self.end + BLOCK, 0);
        }
        loop {
            match self.r.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.error(&e.to_string())),
            }
        }
    }

    /// Walks past `n` bytes, keeping the line and column.
    fn skip(&mut self, n: usize) {
        advance(
            &self.buf[self.pos..self.pos + n],
            &mut self.line,
            &mut self.col,
        );
        self.pos += n;
    }

    /// The next byte that is not white space (walked past), or `None` at the end.
    fn peek(&mut self) -> Result<Option<u8>, Error> {
        loop {
            let ws = self.buf[self.pos..self.end]
                .iter()
                .take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
                .count();
            self.skip(ws);
            if self.pos < self.end {
                return Ok(Some(self.buf[self.pos]));
            }
            if !self.more()? {
                return Ok(None);
            }
        }
    }

    /// Walks past `want`, the next byte that is not white space.
    fn expect(&mut self, want: u8, what: &str) -> Result<(), Error> {
        if self.peek()? == Some(want) {
            self.skip(1);
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    /// The length of the JSON value that begins at `pos`, read on as far as it
    /// goes, or `None` when it is longer than [`MAX_HELD`] bytes (a string, list or
    /// object). Only its extent is found here: serde_json checks the rest.
    fn value_len(&mut self) -> Result<Option<usize>, Error> {
        let first = match self.peek()? {
            Some(b) => b,
            None => return Err(self.eof_error("EOF while parsing a value")),
        };
        // Offsets are from `pos`, which a read may move.
        let mut at = 1;
        match first {
            b'"' => match self.string_end(at)? {
                Some(Some(end)) => Ok(Some(end)),
                Some(None) => Ok(None),
                None => Err(self.eof_error("EOF while parsing a string")),
            },
            b'{' | b'[' => {
                let mut depth = 1usize;
                loop {
                    while self.pos + at < self.end {
                        match self.buf[self.pos + at] {
                            b'{' | b'[' => depth += 1,
                            b'}' | b']' => {
                                depth -= 1;
                                if depth == 0 {
                                    return Ok(Some(at + 1));
                                }
                            }
                            b'"' => match self.string_end(at + 1)? {
                                Some(Some(end)) => {
                                    at = end;
                                    continue;
                                }
                                Some(None) => return Ok(None),
                                None => return Err(self.eof_error("EOF while parsing a value")),
                            },
                            _ => {}
                        }
                        at += 1;
                    }
                    if at >= MAX_HELD {
                        return Ok(None);
                    }
                    if !self.more()? {
                        return Err(self.eof_error("EOF while parsing a value"));
                    }
                }
            }
            b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => loop {
                while self.pos + at < self.end {
                    if matches!(
                        self.buf[self.pos + at],
                        b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r' | b'{' | b'[' | b'"'
                    ) {
                        return Ok(Some(at));
                    }
                    at += 1;
                }
                if at >= MAX_HELD {
                    return Err(self.error("a number longer than lith reads"));
                }
                if !self.more()? {
                    return Ok(Some(at));
                }
            },
            _ => Err(self.error("expected value")),
        }
    }

    /// The offset past the quote that closes the string whose text begins at
    /// offset `at` from `pos`; `Some(None)` when the value it is in runs past
    /// [`MAX_HELD`] bytes first, `None` when the text ends first.
    fn string_end(&mut self, mut at: usize) -> Result<Option<Option<usize>>, Error> {
        loop {
            let from = self.pos + at;
            if from < self.end {
                match memchr::memchr2(b'"', b'\\', &self.buf[from..self.end]) {
                    Some(k) if self.buf[from + k] == b'"' => return Ok(Some(Some(at + k + 1))),
                    Some(k) => {
                        // An escape: the byte after it is never the string's end.
                        at += k + 2;
                        continue;
                    }
                    None => at = self.end - self.pos,
                }
            }
            if at >= MAX_HELD {
                return Ok(Some(None));
            }
            if !self.more()? {
                return Ok(None);
            }
        }
    }

    /// Hands the value at `pos` to `visit` at `place` (or parses it into nothing)
    /// and walks past it.
    fn hand<V: Visit>(&mut self, visit: &mut V, place: Place<'_>) -> Result<(), Error> {
        let Some(n) = self.value_len()? else {
            return self.hand_stream(visit, place);
        };
        let bytes = &self.buf[self.pos..self.pos + n];
        let taken = visit(place, Value::Text(bytes)).map_err(|e| self.placed(&e))?;
        if !taken {
            serde_json::from_slice::<serde::de::IgnoredAny>(bytes).map_err(|e| self.placed(&e))?;
        }
        self.skip(n);
        Ok(())
    }

    /// [`Text::hand`] of a value longer than [`MAX_HELD`]: handed out as a reader
    /// of what is held of it and then of the rest of the text, which serde_json
    /// reads a byte at a time and no further than the value's end (a string, a
    /// list or an object ends with the byte that closes it).
    fn hand_stream<V: Visit>(&mut self, visit: &mut V, place: Place<'_>) -> Result<(), Error> {
        let mut rest = Rest {
            held: &self.buf[self.pos..self.end],
            used: 0,
            r: &mut self.r,
            lines: 0,
            col: 0,
        };
        let mut read = visit(place, Value::Stream(&mut rest));
        if let Ok(false) = read {
            read = parse::<serde::de::IgnoredAny>(Value::Stream(&mut rest)).map(|_| true);
        }
        let (used, lines, col) = (rest.used, rest.lines, rest.col);
        if let Err(e) = read {
            return Err(self.placed(&e));
        }
        if used < self.end - self.pos {
            self.skip(used);
        } else {
            // All that was held, and more of the text: what follows is read anew.
            self.skip(self.end - self.pos);
            if lines > 0 {
                self.line += lines;
                self.col = col;
            } else {
                self.col += col;
            }
        }
        Ok(())
    }

    /// Calls `visit` at `place`, an end, with the value `null`; an error it
    /// returns is placed just past the end.
    fn call<V: Visit>(&mut self, visit: &mut V, place: Place<'_>) -> Result<(), Error> {
        visit(place, Value::Text(b"null")).map_err(|e| self.placed(&e))?;
        Ok(())
    }

    /// Walks the object at `pos`, calling `field` at each value with its key.
    fn object<V: Visit>(
        &mut self,
        visit: &mut V,
        field: fn(&mut Self, &mut V, &str) -> Result<(), Error>,
    ) -> Result<(), Error> {
        const EOF: &str = "EOF while parsing an object";
        self.expect(b'{', "expected '{'")?;
        if self.peek()? == Some(b'}') {
            self.skip(1);
            return Ok(());
        }
        loop {
            match self.peek()? {
                Some(b'"') => {}
                Some(_) => return Err(self.error("key must be a string")),
                None => return Err(self.eof_error(EOF)),
            }
            let Some(n) = self.value_len()? else {
                return Err(self.error("a key longer than lith reads"));
            };
            let key: String = serde_json::from_slice(&self.buf[self.pos..self.pos + n])
                .map_err(|e| self.placed(&e))?;
            self.skip(n);
            match self.peek()? {
                Some(b':') => self.skip(1),
                Some(_) => return Err(self.error("expected ':'")),
                None => return Err(self.eof_error(EOF)),
            }
            field(self, visit, &key)?;
            match self.peek()? {
                Some(b',') => self.skip(1),
                Some(b'}') => {
                    self.skip(1);
                    return Ok(());
                }
                Some(_) => return Err(self.error("expected ',' or '}'")),
                None => return Err(self.eof_error(EOF)),
            }
        }
    }

    /// Walks the list at `pos`, calling `element` at each element.
    fn array<V: Visit>(
        &mut self,
        visit: &mut V,
        element: fn(&mut Self, &mut V) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.expect(b'[', "expected '['")?;
        if self.peek()? == Some(b']') {
            self.skip(1);
            return Ok(());
        }
        loop {
            element(self, visit)?;
            match self.peek()? {
                Some(b',') => self.skip(1),
                Some(b']') => {
                    self.skip(1);
                    return Ok(());
                }
                Some(_) => return Err(self.error("expected ',' or ']'")),
                None => return Err(self.eof_error("EOF while parsing a list")),
            }
        }
    }

    /// An error at `pos`.
    fn error(&self, message: &str) -> Error {
        Error {
            message: message.to_string(),
            line: self.line,
            column: self.col + 1,
        }
    }

    /// An error at the end of the text (on its last byte, as serde_json places it).
    fn eof_error(&self, message: &str) -> Error {
        let (mut line, mut column) = (self.line, self.col);
        advance(&self.buf[self.pos..self.end], &mut line, &mut column);
        Error {
            message: message.to_string(),
            line,
            column,
        }
    }

    /// serde_json's error about the value at `pos`, placed in the whole text.
    fn placed(&self, e: &serde_json::Error) -> Error {
        let message = crate::fsutil::strip_position(&e.to_string());
        let (line, column) = match e.line() {
            0 => (self.line, self.col + 1),
            1 => (self.line, self.col + e.column() as u64),
            l => (self.line + l as u64 - 1, e.column() as u64),
        };
        Error {
            message,
            line,
            column,
        }
    }
}

/// Moves a place in a text (its line, and the bytes before it on that line) past
/// `bytes`.
pub fn advance(bytes: &[u8], line: &mut u64, column: &mut u64) {
    match memchr::memrchr(b'\n', bytes) {
        Some(last) => {
            *line += memchr::memchr_iter(b'\n', bytes).count() as u64;
            *column = (bytes.len() - last - 1) as u64;
        }
        None => *column += bytes.len() as u64,
    }
}

/// What is held of a long value, then the rest of the text, read a byte at a time
/// by serde_json: what it used of the first, and the lines and column it read of
/// the second.
struct Rest<'a, R> {
    held: &'a [u8],
    used: usize,
    r: &'a mut R,
    /// Line breaks read from `r`, and the bytes after the last one (or all of them).
    lines: u64,
    col: u64,
}

impl<R: Read> Read for Rest<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.used < self.held.len() {
            let n = out.len().min(self.held.len() - self.used);
            out[..n].copy_from_slice(&self.held[self.used..self.used + n]);
            self.used += n;
            return Ok(n);
        }
        let n = self.r.read(out)?;
        advance(&out[..n], &mut self.lines, &mut self.col);
        self.used += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// What a walk hands out, each value parsed, with the places in order.
    fn handed(text: &[u8], piece: usize) -> Result<Vec<(String, Value)>, Error> {
        let mut out = Vec::new();
        walk(
            crate::fuzzing::Pieces {
                bytes: text,
                step: piece,
            },
            |place, v| {
                let v: Value = parse(v)?;
                out.push((format!("{place:?}"), v));
                Ok(true)
            },
        )?;
        Ok(out)
    }

    #[test]
    fn a_walk_hands_out_the_values_of_the_frame_in_order_at_any_read_size() {
        // Keys in the order lith writes them, which `json!` would sort.
        let compact = br#"{"schema_version":"lith.report/v2","bundles":{"configured":true,"roots":[{"path":"a/out","runs":[{"dir":"a/out/1","x":[1,{"y":"]}\"\\"}]},{"dir":"a/out/2"}],"latest":null},{"runs":[]},7],"totals":{"runs":2}},"dod":{"phases":{}}}"#;
        let report: Value = serde_json::from_slice(compact).unwrap();
        let want = vec![
            (
                "Top(\"schema_version\")".to_string(),
                json!("lith.report/v2"),
            ),
            ("Bundles(\"configured\")".into(), json!(true)),
            ("Root(\"path\")".into(), json!("a/out")),
            (
                "Run".into(),
                report["bundles"]["roots"][0]["runs"][0].clone(),
            ),
            ("Run".into(), json!({"dir": "a/out/2"})),
            ("Root(\"latest\")".into(), Value::Null),
            ("RootEnd".into(), Value::Null),
            ("RootEnd".into(), Value::Null),
            ("RootValue".into(), json!(7)),
            ("Bundles(\"totals\")".into(), json!({"runs": 2})),
            ("BundlesEnd".into(), Value::Null),
            ("Top(\"dod\")".into(), json!({"phases": {}})),
            ("End".into(), Value::Null),
        ];
        // The same text with white space everywhere it may be.
        let mut spaced = Vec::new();
        let mut in_string = false;
        let mut escaped = false;
        for &b in compact.iter() {
            spaced.push(b);
            if in_string {
                in_string = escaped || b != b'"';
                escaped = !escaped && b == b'\\';
            } else if b == b'"' {
                in_string = true;
            } else if b"{}[],:".contains(&b) {
                spaced.extend_from_slice(b" \n\t\r ");
            }
        }
        for text in [&compact[..], &spaced[..]] {
            for piece in [1, 2, 3, 7, 64, text.len()] {
                assert_eq!(handed(text, piece).unwrap(), want, "{piece}");
            }
        }
    }

    #[test]
    fn a_walk_refuses_what_serde_json_refuses_where_it_does() {
        let cases: &[(&str, &str, u64, u64)] = &[
            ("", "EOF while parsing a value", 1, 0),
            ("{\"a\":1} x", "trailing characters", 1, 9),
            ("{\"a\":1,}", "key must be a string", 1, 8),
            ("{\"a\" 1}", "expected ':'", 1, 6),
            ("{\"a\":1 \"b\":2}", "expected ',' or '}'", 1, 8),
            // serde_json is given the value alone, and finds it ends early.
            ("{\"a\":tru}", "EOF while parsing a value", 1, 8),
            ("{\"a\":\n  [1,]}", "trailing comma", 2, 6),
            (
                "{\"bundles\":{\"roots\":[{\"runs\":[{\"dir\":}]}]}}",
                "expected value",
                1,
                38,
            ),
            (
                "{\"bundles\":{\"roots\":[1 2]}}",
                "expected ',' or ']'",
                1,
                24,
            ),
            ("{\"a\":\"open", "EOF while parsing a string", 1, 10),
            ("{\"a\":[1, 2", "EOF while parsing a value", 1, 10),
            ("{\"a\":1\n", "EOF while parsing an object", 2, 0),
            ("{\"a\"", "EOF while parsing an object", 1, 4),
            (
                "{\"bundles\":{\"roots\":[{}",
                "EOF while parsing a list",
                1,
                23,
            ),
            ("{\"a\":}", "expected value", 1, 6),
        ];
        for (text, message, line, column) in cases {
            for piece in [1, 3, text.len().max(1)] {
                let e = handed(text.as_bytes(), piece).unwrap_err();
                assert_eq!(
                    (e.message.as_str(), e.line, e.column),
                    (*message, *line, *column),
                    "{text:?} read {piece} at a time"
                );
                // Where serde_json reading the whole text says the same, it says
                // it at the same place.
                let whole = serde_json::from_str::<Value>(text).unwrap_err();
                if crate::fsutil::strip_position(&whole.to_string()) == e.message {
                    assert_eq!(
                        (whole.line() as u64, whole.column() as u64),
                        (e.line, e.column),
                        "{text:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_walk_refuses_a_document_that_is_not_an_object() {
        for text in ["[]", " 1", "\"{}\""] {
            let e = handed(text.as_bytes(), 1).unwrap_err();
            assert_eq!(
                e.message, "expected the object of a report.json",
                "{text:?}"
            );
        }
    }

    /// A value longer than what is held is read as it is parsed, whether the
    /// caller parses it or leaves it, and the walk goes on after it at its place,
    /// having held no more than a block past [`MAX_HELD`].
    #[test]
    fn a_value_longer_than_what_is_held_is_read_as_it_is_parsed() {
        let long = "x".repeat(MAX_HELD + 3 * BLOCK);
        let text = format!(
            "{{\"bundles\":{{\"roots\":[{{\"runs\":[{{\"dir\":\"a\",\n\"name\":\"{long}\"}},\n{{\"dir\":\"b\"}}]}}]}},\n\"dod\":[\"{long}\",\n1],\"last\":\n2}}"
        );
        for taken in [true, false] {
            let mut seen = Vec::new();
            let mut t = Text::new(crate::fuzzing::Pieces {
                bytes: text.as_bytes(),
                step: 1 << 16,
            });
            t.walk(&mut |place: Place<'_>, v: super::Value<'_>| {
                let streamed = matches!(v, super::Value::Stream(_));
                if !taken && place != Place::Top("last") {
                    return Ok(false);
                }
                let v: Value = parse(v)?;
                seen.push((format!("{place:?}"), streamed, v));
                Ok(true)
            })
            .unwrap();
            assert!(t.buf.len() <= MAX_HELD + 2 * BLOCK, "{}", t.buf.len());
            let last = ("Top(\"last\")".to_string(), false, json!(2));
            if taken {
                let runs: Vec<_> = seen.iter().filter(|s| s.0 == "Run").collect();
                assert_eq!(runs.len(), 2);
                assert!(runs[0].1, "the long run is read as a stream");
                assert_eq!(runs[0].2["name"].as_str().map(str::len), Some(long.len()));
                assert_eq!(*runs[1], ("Run".to_string(), false, json!({"dir": "b"})));
                let dod = seen.iter().find(|s| s.0 == "Top(\"dod\")").unwrap();
                assert!(dod.1 && dod.2[1] == json!(1));
            }
            assert!(seen.contains(&last), "taken: {taken}");
        }
        // An error after a long value is placed where it is.
        let bad = format!("{{\"a\":\"{long}\",\n\"b\":[1,]}}");
        let e = walk(bad.as_bytes(), |_, _| Ok(false)).unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.line, e.column),
            ("expected value", 2, 8)
        );
        // And an error inside one, on its line and column.
        let bad = format!("{{\"a\":[\"{long}\",\n tru]}}");
        let e = walk(bad.as_bytes(), |_, _| Ok(false)).unwrap_err();
        let whole = serde_json::from_str::<Value>(&bad).unwrap_err();
        assert_eq!(
            (e.line, e.column),
            (whole.line() as u64, whole.column() as u64),
            "{e}"
        );
    }

    #[test]
    fn a_value_the_caller_leaves_is_still_checked() {
        let text = br#"{"a": [1, 2 3], "b": 1}"#;
        let e = walk(&text[..], |_, _| Ok(false)).unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.line, e.column),
            ("expected `,` or `]`", 1, 13)
        );
        walk(&br#"{"a": [1, 2, 3], "b": 1}"#[..], |_, _| Ok(false)).unwrap();
    }
}
