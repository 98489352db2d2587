//! The S-expression reader for `.lith` and `.lisp` files.
//!
//! It owns the syntax of SPEC §2.1 and nothing else: lists `( … )`, vectors
//! `[ … ]`, maps `{ … }` (with JSON's lone `:` between key and value), strings with
//! escapes, keywords, symbols, integers, decimals, booleans and `nil`. Every node keeps
//! its line and column so that the manifest model and the gate can point at the exact
//! spot. Input is untrusted: nesting deeper than [`MAX_DEPTH`] and files larger than
//! [`MAX_FILE_BYTES`] are rejected with an error, never a stack overflow.

use std::fmt;
use std::path::{Path, PathBuf};

/// Deepest nesting accepted (lists, vectors and maps together).
pub const MAX_DEPTH: usize = 256;
/// Largest file accepted, in bytes.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Most forms read from one file: a form costs some 40 bytes, and a 16 MiB file of
/// one-character atoms would hold eight million of them.
pub const MAX_FORMS: usize = 1 << 20;

/// A 1-based line and column (in characters) inside a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

/// One value read from a `.lith` file, with the position where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    List(Vec<Node>),
    Vector(Vec<Node>),
    /// Key/value pairs in source order.
    Map(Vec<(Node, Node)>),
    Str(String),
    /// A keyword without its leading colon.
    Keyword(String),
    Symbol(String),
    Int(i64),
    /// A decimal number, kept as written so that no float ever reaches an output.
    Decimal(String),
    Bool(bool),
    Nil,
}

impl Node {
    /// The head symbol of a list, as in `(manifest …)` → `manifest`.
    pub fn head(&self) -> Option<&str> {
        match &self.value {
            Value::List(items) => match items.first().map(|n| &n.value) {
                Some(Value::Symbol(s)) => Some(s),
                _ => None,
            },
            _ => None,
        }
    }

    /// The items after the head of a list; empty for anything else.
    pub fn args(&self) -> &[Node] {
        match &self.value {
            Value::List(items) if !items.is_empty() => &items[1..],
            _ => &[],
        }
    }

    /// Text of a string, symbol or keyword (keywords keep their colon).
    pub fn as_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) | Value::Symbol(s) => Some(s.clone()),
            Value::Keyword(k) => Some(format!(":{k}")),
            _ => None,
        }
    }

    /// Items of a vector or list.
    pub fn items(&self) -> Option<&[Node]> {
        match &self.value {
            Value::List(items) | Value::Vector(items) => Some(items),
            _ => None,
        }
    }

    /// A short name for the kind of value, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match self.value {
            Value::List(_) => "a list",
            Value::Vector(_) => "a vector",
            Value::Map(_) => "a map",
            Value::Str(_) => "a string",
            Value::Keyword(_) => "a keyword",
            Value::Symbol(_) => "a symbol",
            Value::Int(_) => "an integer",
            Value::Decimal(_) => "a decimal",
            Value::Bool(_) => "a boolean",
            Value::Nil => "nil",
        }
    }
}

/// A syntax error with enough context to fix it: file, position, reason, and the
/// offending line with a caret under the column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    pub file: PathBuf,
    pub pos: Pos,
    pub reason: String,
    /// The source line the error points at (empty when not applicable), clipped to
    /// a window around the column when the line is very long.
    pub line_text: String,
    /// 1-based column of the caret inside `line_text`.
    pub caret_col: u32,
}

impl ReadError {
    /// Where in the file the error is; `None` when it is about the file as a whole
    /// (it could not be opened or read, or is too large).
    pub fn position(&self) -> Option<Pos> {
        (self.pos.line > 0).then_some(self.pos)
    }

    /// The error as lith prints it: written on three lines (the file's line and a
    /// caret under the column), with the file's name and the reason, which may
    /// quote the file, each kept on its own line.
    pub fn for_log(&self) -> String {
        use crate::term::one_line;
        let file = self.file.display().to_string();
        let (file, reason) = (one_line(&file), one_line(&self.reason));
        self.render(&file, &reason)
    }

    fn render(&self, file: &str, reason: &str) -> String {
        if self.position().is_none() {
            return format!("{file}: {reason}");
        }
        let mut s = format!("{file}:{}:{}: {reason}", self.pos.line, self.pos.col);
        if !self.line_text.is_empty() {
            // Keep tabs so that the caret lines up in a terminal.
            let pad: String = self
                .line_text
                .chars()
                .take(self.caret_col.saturating_sub(1) as usize)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            s.push_str(&format!("\n    {}\n    {}^", self.line_text, pad));
        }
        s
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(&self.file.display().to_string(), &self.reason))
    }
}

impl std::error::Error for ReadError {}

/// Reads a file of untrusted data that must hold exactly one top-level form: a
/// regular file only (never a symlink, a FIFO or a device, which could hang the
/// read), of at most [`MAX_FILE_BYTES`].
pub fn read_file(path: &Path) -> Result<Node, ReadError> {
    match crate::fsutil::read_regular(path, MAX_FILE_BYTES) {
        Ok(bytes) => read_bytes(bytes, path),
        Err(e) => Err(file_error(path, read_failure(e))),
    }
}

/// Reads a file of untrusted data at `rel` beneath a directory handle (SPEC §3.4),
/// with the limits of [`read_file`]; `label` names it in errors.
pub fn read_beneath(
    dir: &crate::beneath::Dir,
    rel: &[&str],
    label: &Path,
) -> Result<Node, ReadError> {
    match dir.read(rel, MAX_FILE_BYTES) {
        Ok(bytes) => read_bytes(bytes, label),
        Err(e) => Err(file_error(label, read_failure(e))),
    }
}

/// Reads trusted configuration (the manifest): a symlink is followed, but what it
/// names must still be a regular file, so a FIFO never hangs the read. Returns the
/// form and the sha256 of the file's bytes as read (what `sha256sum` says of it).
pub fn read_trusted_file(path: &Path) -> Result<(Node, [u8; 32]), ReadError> {
    let meta =
        std::fs::metadata(path).map_err(|e| file_error(path, format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(file_error(
            path,
            format!(
                "is a {}, not a regular file",
                crate::fsutil::kind_of(meta.file_type())
            ),
        ));
    }
    let file =
        std::fs::File::open(path).map_err(|e| file_error(path, format!("cannot read: {e}")))?;
    match crate::fsutil::read_bounded(file, meta.len(), MAX_FILE_BYTES) {
        Ok(bytes) => {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(&bytes).into();
            read_bytes(bytes, path).map(|node| (node, digest))
        }
        Err(e) => Err(file_error(path, read_failure(e))),
    }
}

fn read_failure(e: crate::fsutil::JsonReadError) -> String {
    use crate::fsutil::JsonReadError as E;
    match e {
        E::TooLarge(n, _) => format!(
            "file is {n} bytes, larger than the {MAX_FILE_BYTES} bytes lith reads; split it or trim it"
        ),
        other => other.to_string(),
    }
}

/// An error about the file as a whole (no line or column).
fn file_error(path: &Path, reason: String) -> ReadError {
    ReadError {
        file: path.to_path_buf(),
        pos: Pos { line: 0, col: 0 },
        reason,
        line_text: String::new(),
        caret_col: 0,
    }
}

/// Reads bytes that a caller has already bounded to [`MAX_FILE_BYTES`] (and
/// [`read_str`] checks the size again).
fn read_bytes(mut bytes: Vec<u8>, path: &Path) -> Result<Node, ReadError> {
    // A byte order mark is not part of the text; editors on some systems add one.
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        bytes.drain(..3);
    }
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let text = String::from_utf8_lossy(valid);
            let line = text.matches('\n').count() as u32 + 1;
            let col = text.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
            return Err(ReadError {
                file: path.to_path_buf(),
                pos: Pos { line, col },
                reason: "invalid UTF-8; .lith files must be UTF-8 text".into(),
                line_text: String::new(),
                caret_col: 0,
            });
        }
    };
    read_str(&text, path)
}

/// Reads text that must hold exactly one top-level form. `file` names it in errors.
pub fn read_str(text: &str, file: &Path) -> Result<Node, ReadError> {
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadError {
            file: file.to_path_buf(),
            pos: Pos::default(),
            reason: format!("input is larger than the {MAX_FILE_BYTES} bytes lith reads"),
            line_text: String::new(),
            caret_col: 0,
        });
    }
    let mut reader = Reader {
        text,
        chars: text.char_indices().peekable(),
        line: 1,
        col: 1,
        file,
        first_multiline_string: None,
        forms: 0,
    };
    reader.skip_space();
    if reader.peek().is_none() {
        return Err(reader.error_at(
            reader.pos(),
            "the file holds no form; expected one top-level form such as (manifest …)",
        ));
    }
    let form = reader.read_form(0)?;
    reader.skip_space();
    if reader.peek().is_some() {
        let pos = reader.pos();
        return Err(reader.error_at(
            pos,
            "a second top-level form; a .lith file holds exactly one form, so wrap them in one list",
        ));
    }
    Ok(form)
}

struct Reader<'a> {
    text: &'a str,
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    line: u32,
    col: u32,
    file: &'a Path,
    /// Where the first string that spans lines opened: when the file ends inside a
    /// string or a bracket, a missing `"` there is the likeliest cause.
    first_multiline_string: Option<Pos>,
    /// Forms read so far (see [`MAX_FORMS`]).
    forms: usize,
}

fn is_delimiter(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | '{' | '}' | '"' | ';' | ',')
}

impl<'a> Reader<'a> {
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.col,
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().map(|&(_, c)| c)
    }

    fn bump(&mut self) -> Option<char> {
        let (_, c) = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn error_at(&self, pos: Pos, reason: impl Into<String>) -> ReadError {
        let line_text = self
            .text
            .lines()
            .nth(pos.line.saturating_sub(1) as usize)
            .unwrap_or("")
            .trim_end_matches('\r');
        // A 10 MB line is no help on a terminal: show a window around the column.
        let (line_text, caret_col) = clip_line(line_text, pos.col);
        ReadError {
            file: self.file.to_path_buf(),
            pos,
            reason: reason.into(),
            line_text,
            caret_col,
        }
    }

    /// The file ended inside the string opened at `open`. When an earlier string ran
    /// over several lines, its opening is where the `"` is most likely missing (every
    /// quote after it pairs up wrongly), so the error points there.
    fn unclosed_string(&self, open: Pos) -> ReadError {
        match self.first_multiline_string {
            Some(first) if first.line < open.line => self.error_at(
                first,
                format!(
                    "this string runs on to line {} and the file then ends inside another string; \
                     a closing `\"` is probably missing here",
                    self.line
                ),
            ),
            _ => self.error_at(open, "this string is never closed; add the closing `\"`"),
        }
    }

    fn skip_space(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() || c == ',' {
                self.bump();
            } else if c == ';' {
                while let Some(c) = self.bump() {
                    if c == '\n' {
                        break;
                    }
                }
            } else {
                break;
            }
        }
    }

    fn read_form(&mut self, depth: usize) -> Result<Node, ReadError> {
        self.skip_space();
        let pos = self.pos();
        self.forms += 1;
        if self.forms > MAX_FORMS {
            return Err(self.error_at(
                pos,
                format!("more than {MAX_FORMS} forms in one file; split it or trim it"),
            ));
        }
        let Some(c) = self.peek() else {
            return Err(self.error_at(pos, "unexpected end of file; a form was expected"));
        };
        match c {
            '(' | '[' | '{' => {
                if depth >= MAX_DEPTH {
                    return Err(self.error_at(
                        pos,
                        format!("nesting deeper than {MAX_DEPTH} levels; flatten the structure"),
                    ));
                }
                self.bump();
                let close = match c {
                    '(' => ')',
                    '[' => ']',
                    _ => '}',
                };
                let items = self.read_seq(close, pos, depth + 1)?;
                let value = match c {
                    '(' => Value::List(items),
                    '[' => Value::Vector(items),
                    _ => self.pair_up(items, pos)?,
                };
                Ok(Node { value, pos })
            }
            ')' | ']' | '}' => Err(self.error_at(
                pos,
                format!("unexpected `{c}` with no matching opening bracket"),
            )),
            '"' => {
                self.bump();
                let s = self.read_string(pos)?;
                Ok(Node {
                    value: Value::Str(s),
                    pos,
                })
            }
            _ => self.read_atom(pos),
        }
    }

    /// Reads items up to `close`. Inside a map, a lone `:` is kept as a marker
    /// (a `Symbol(":")` node) for `pair_up` to check and drop.
    fn read_seq(&mut self, close: char, open: Pos, depth: usize) -> Result<Vec<Node>, ReadError> {
        let mut items = Vec::new();
        loop {
            self.skip_space();
            match self.peek() {
                None => {
                    return Err(self.error_at(
                        open,
                        match self.first_multiline_string {
                            Some(p) => format!(
                                "this bracket is never closed; expected `{close}` before the end of the file \
                                 (the string at {}:{} runs over several lines: is its closing `\"` missing?)",
                                p.line, p.col
                            ),
                            None => format!("this bracket is never closed; expected `{close}` before the end of the file"),
                        },
                    ));
                }
                Some(c) if c == close => {
                    self.bump();
                    return Ok(items);
                }
                Some(c @ (')' | ']' | '}')) => {
                    let pos = self.pos();
                    return Err(self.error_at(
                        pos,
                        format!("mismatched `{c}`; expected `{close}` to close the bracket opened at line {} column {}", open.line, open.col),
                    ));
                }
                Some(':') if close == '}' && self.lone_colon_ahead() => {
                    let pos = self.pos();
                    self.bump();
                    items.push(Node {
                        value: Value::Symbol(":".into()),
                        pos,
                    });
                }
                Some(_) => items.push(self.read_form(depth)?),
            }
        }
    }

    fn lone_colon_ahead(&self) -> bool {
        let mut it = self.chars.clone();
        it.next();
        it.next().is_none_or(|(_, c)| is_delimiter(c))
    }

    fn pair_up(&self, items: Vec<Node>, open: Pos) -> Result<Value, ReadError> {
        let mut pairs = Vec::new();
        let mut it = items.into_iter().peekable();
        while let Some(key) = it.next() {
            if is_colon(&key) {
                return Err(
                    self.error_at(key.pos, "a `:` must sit between a map key and its value")
                );
            }
            if it.peek().is_some_and(is_colon) {
                it.next();
            }
            let Some(value) = it.next() else {
                return Err(self.error_at(
                    open,
                    "this map has an odd number of entries; every key needs a value",
                ));
            };
            if is_colon(&value) {
                return Err(
                    self.error_at(value.pos, "a `:` must sit between a map key and its value")
                );
            }
            pairs.push((key, value));
        }
        Ok(Value::Map(pairs))
    }

    fn read_string(&mut self, open: Pos) -> Result<String, ReadError> {
        let mut out = String::new();
        loop {
            let pos = self.pos();
            match self.bump() {
                None => return Err(self.unclosed_string(open)),
                Some('"') => {
                    if pos.line > open.line && self.first_multiline_string.is_none() {
                        self.first_multiline_string = Some(open);
                    }
                    return Ok(out);
                }
                Some('\\') => {
                    let Some(e) = self.bump() else {
                        return Err(self.unclosed_string(open));
                    };
                    match e {
                        '"' => out.push('"'),
                        '\\' => out.push('\\'),
                        '/' => out.push('/'),
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        'u' => out.push(self.read_unicode_escape(pos)?),
                        other => {
                            return Err(self.error_at(
                                pos,
                                format!("unknown escape `\\{other}`; use \\\" \\\\ \\n \\t \\r or \\u{{…}}"),
                            ));
                        }
                    }
                }
                Some(c) => out.push(c),
            }
        }
    }

    /// `\u{1F600}` (Rust style) or `\u00e9` / surrogate pairs (JSON style).
    fn read_unicode_escape(&mut self, pos: Pos) -> Result<char, ReadError> {
        let bad = |r: &Self| {
            r.error_at(
                pos,
                "invalid \\u escape; write \\u{HEX} with 1 to 6 hex digits",
            )
        };
        if self.peek() == Some('{') {
            self.bump();
            let mut hex = String::new();
            loop {
                match self.bump() {
                    Some('}') => break,
                    Some(c) if c.is_ascii_hexdigit() && hex.len() < 6 => hex.push(c),
                    _ => return Err(bad(self)),
                }
            }
            let code = u32::from_str_radix(&hex, 16).map_err(|_| bad(self))?;
            return char::from_u32(code).ok_or_else(|| bad(self));
        }
        let first = self.read_hex4().ok_or_else(|| bad(self))?;
        if (0xD800..0xDC00).contains(&first) {
            if self.bump() != Some('\\') || self.bump() != Some('u') {
                return Err(bad(self));
            }
            let second = self.read_hex4().ok_or_else(|| bad(self))?;
            if !(0xDC00..0xE000).contains(&second) {
                return Err(bad(self));
            }
            let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
            return char::from_u32(code).ok_or_else(|| bad(self));
        }
        char::from_u32(first).ok_or_else(|| bad(self))
    }

    fn read_hex4(&mut self) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = self.bump()?.to_digit(16)?;
            v = v * 16 + d;
        }
        Some(v)
    }

    fn read_atom(&mut self, pos: Pos) -> Result<Node, ReadError> {
        let mut tok = String::new();
        while let Some(c) = self.peek() {
            if is_delimiter(c) {
                break;
            }
            tok.push(c);
            self.bump();
        }
        let value = if let Some(name) = tok.strip_prefix(':') {
            if name.is_empty() {
                return Err(self.error_at(
                    pos,
                    "a lone `:` is only allowed between a map key and its value",
                ));
            }
            Value::Keyword(name.to_string())
        } else {
            match tok.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "nil" => Value::Nil,
                _ => classify_number(&tok)
                    .transpose()
                    .map_err(|reason| self.error_at(pos, reason))?
                    .unwrap_or(Value::Symbol(tok)),
            }
        };
        Ok(Node { value, pos })
    }
}

/// Shortens a very long line to a window around `col`; returns the text and the
/// column of the same character inside that text.
fn clip_line(line: &str, col: u32) -> (String, u32) {
    const WINDOW: usize = 60;
    let n = line.chars().count();
    if n <= 2 * WINDOW + 20 {
        return (line.to_string(), col);
    }
    let c = col.saturating_sub(1) as usize;
    let start = c.saturating_sub(WINDOW);
    let end = (c + WINDOW).min(n);
    let mut s = String::new();
    let mut new_col = c - start + 1;
    if start > 0 {
        s.push('…');
        new_col += 1;
    }
    s.extend(line.chars().skip(start).take(end - start));
    if end < n {
        s.push('…');
    }
    (s, new_col as u32)
}

fn is_colon(n: &Node) -> bool {
    matches!(&n.value, Value::Symbol(s) if s == ":")
}

/// `Some(Ok(..))` for a number, `None` for a symbol, `Some(Err(..))` for an integer
/// out of range.
fn classify_number(tok: &str) -> Option<Result<Value, String>> {
    let body = tok.strip_prefix(['+', '-']).unwrap_or(tok);
    if body.is_empty() {
        return None;
    }
    if body.bytes().all(|b| b.is_ascii_digit()) {
        return Some(
            tok.parse::<i64>()
                .map(Value::Int)
                .map_err(|_| format!("integer `{tok}` does not fit in 64 bits")),
        );
    }
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    // `12.5`, `12.`, `.5`, and with an exponent also `12e3`.
    let mant_ok = match mantissa.split_once('.') {
        Some((int, frac)) => digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty()),
        None => exp.is_some() && !mantissa.is_empty() && digits(mantissa),
    };
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    (mant_ok && exp_ok).then(|| Ok(Value::Decimal(tok.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(s: &str) -> Result<Node, ReadError> {
        read_str(s, Path::new("t.lith"))
    }

    fn strip(n: &Node) -> String {
        match &n.value {
            Value::List(v) => format!("({})", v.iter().map(strip).collect::<Vec<_>>().join(" ")),
            Value::Vector(v) => format!("[{}]", v.iter().map(strip).collect::<Vec<_>>().join(" ")),
            Value::Map(kv) => format!(
                "{{{}}}",
                kv.iter()
                    .map(|(k, v)| format!("{} {}", strip(k), strip(v)))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Value::Str(s) => format!("{s:?}"),
            Value::Keyword(k) => format!(":{k}"),
            Value::Symbol(s) => format!("sym:{s}"),
            Value::Int(i) => format!("int:{i}"),
            Value::Decimal(d) => format!("dec:{d}"),
            Value::Bool(b) => format!("{b}"),
            Value::Nil => "nil".into(),
        }
    }

    #[test]
    fn reads_every_kind_of_atom() {
        let cases = [
            ("(a)", "(sym:a)"),
            ("[1 -2 +3]", "[int:1 int:-2 int:3]"),
            (
                "[1.5 -.5 2. 1e3 1.5E-2]",
                "[dec:1.5 dec:-.5 dec:2. dec:1e3 dec:1.5E-2]",
            ),
            ("[true false nil]", "[true false nil]"),
            ("[:pi-package+host :ημ]", "[:pi-package+host :ημ]"),
            (
                "[q.task-queue Π_v2 = -> append-only? - +]",
                "[sym:q.task-queue sym:Π_v2 sym:= sym:-> sym:append-only? sym:- sym:+]",
            ),
            ("[1a 1.2.3 e5]", "[sym:1a sym:1.2.3 sym:e5]"),
            (
                r#""a\"b\\c\n\t\r\u{1F600}\u00e9\ud83d\ude00""#,
                "\"a\\\"b\\\\c\\n\\t\\r😀é😀\"",
            ),
            ("\"spans\nlines\"", "\"spans\\nlines\""),
            ("(a, b ,c) ; trailing comment", "(sym:a sym:b sym:c)"),
            (
                r#"(json {"presence_id":"MageOfReceipts" "text":"validate state -> say"})"#,
                r#"(sym:json {"presence_id" "MageOfReceipts" "text" "validate state -> say"})"#,
            ),
            (r#"{"a": 1, "b" : [2]}"#, r#"{"a" int:1 "b" [int:2]}"#),
            ("{:k :v a:b 1}", "{:k :v sym:a:b int:1}"),
        ];
        for (src, want) in cases {
            let n = read(src).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(strip(&n), want, "{src}");
        }
    }

    #[test]
    fn positions_are_one_based_lines_and_character_columns() {
        let n = read("(a\n  (bé \"x\"))").unwrap();
        let Value::List(items) = &n.value else {
            panic!()
        };
        assert_eq!(items[1].pos, Pos { line: 2, col: 3 });
        let Value::List(inner) = &items[1].value else {
            panic!()
        };
        assert_eq!(inner[1].pos, Pos { line: 2, col: 7 });
    }

    #[test]
    fn errors_point_at_the_problem() {
        let cases: &[(&str, (u32, u32), &str)] = &[
            ("", (1, 1), "holds no form"),
            ("  ; only a comment\n", (2, 1), "holds no form"),
            ("(a\n  \"open", (2, 3), "string is never closed"),
            (
                "(m\n (v \"x)\n (b [\"out\"])\n (s (t \"y\")))\n",
                (2, 5),
                "a closing `\"` is probably missing here",
            ),
            ("(a (b)", (1, 1), "never closed"),
            ("(a]", (1, 3), "mismatched `]`"),
            (")", (1, 1), "no matching opening"),
            ("(a) (b)", (1, 5), "second top-level form"),
            ("{\"a\" 1 \"b\"}", (1, 1), "odd number of entries"),
            ("{: 1}", (1, 2), "must sit between"),
            ("(a : b)", (1, 4), "lone `:`"),
            ("(\"\\q\")", (1, 3), "unknown escape"),
            ("(\"\\u{110000}\")", (1, 3), "invalid \\u escape"),
            ("(99999999999999999999)", (1, 2), "does not fit in 64 bits"),
        ];
        for (src, (line, col), want) in cases {
            let e = read(src).unwrap_err();
            assert_eq!((e.pos.line, e.pos.col), (*line, *col), "{src:?}: {e}");
            assert!(e.reason.contains(want), "{src:?}: {e}");
        }
    }

    #[test]
    fn error_display_has_file_line_col_and_caret() {
        let e = read("(manifest\n  (v \"x\" ]))").unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("t.lith:2:10: mismatched `]`"), "{s}");
        assert!(s.contains("\n      (v \"x\" ]))\n             ^"), "{s:?}");
    }

    #[test]
    fn long_lines_are_clipped_around_the_column() {
        let src = format!("({} \"", "a".repeat(10_000_000));
        let e = read(&src).unwrap_err();
        assert!(e.line_text.chars().count() < 200);
        assert_eq!(e.line_text.chars().nth(e.caret_col as usize - 1), Some('"'));
    }

    #[test]
    fn the_forms_of_one_file_are_bounded() {
        let at = |n: usize| format!("({})", "0 ".repeat(n - 1));
        assert!(read_str(&at(MAX_FORMS), Path::new("m.lith")).is_ok());
        let e = read_str(&at(MAX_FORMS + 1), Path::new("m.lith")).unwrap_err();
        assert!(e.reason.contains("more than 1048576 forms"), "{e}");
        assert_eq!((e.pos.line, e.pos.col), (1, 2 * MAX_FORMS as u32));
    }

    #[test]
    fn depth_limit_is_an_error_not_a_stack_overflow() {
        let ok = format!("{}{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(read(&ok).is_ok());
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let e = read(&deep).unwrap_err();
        assert!(e.reason.contains("nesting deeper than 256"), "{e}");
    }

    #[test]
    fn size_limit() {
        let big = format!("\"{}\"", "x".repeat(MAX_FILE_BYTES as usize));
        assert!(read(&big).unwrap_err().reason.contains("larger than"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_garbage(s in "\\PC{0,200}") {
            let _ = read(&s);
        }

        #[test]
        fn never_panics_on_bracket_soup(s in "[()\\[\\]{}\":;\\\\ a1.\n-]{0,300}") {
            let _ = read(&s);
        }
    }
}
