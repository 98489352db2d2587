//! What lith prints on a terminal or into a CI log.
//!
//! Names and messages from the inputs (run folders, artifact paths, finding
//! messages, task ids) reach stdout and stderr, and a CI runner reads those as
//! commands: GitHub Actions takes a line that starts with `::` (after blanks) as a
//! workflow command (`::add-mask::`, `::stop-commands::`, annotations), and `##[`
//! anywhere in a line as one in its older form; a terminal takes escape sequences
//! (ESC, the 8-bit CSI) as orders to move the cursor, retitle the window or set the
//! clipboard; bidirectional controls reorder what a reviewer reads; and invisible
//! characters (zero-width, soft hyphen, variation selectors, tags) are skipped by
//! the runner's linguistic string search, so `#\u{ad}#[` would match `##[`.
//!
//! So everything lith prints goes through one of these filters, and nothing it
//! prints is a command or an escape sequence but the annotations `--annotations`
//! asks for:
//!
//! * [`for_log`]: lith's own text, line by line. Control characters but line breaks
//!   and tabs, and invisible and line-separating characters, are written as
//!   `\u{…}`; the `[` of `##[` is written `\u{5b}`; a line that would start with
//!   `::` starts with `\u{3a}:`. Both rules read only the ASCII characters (what
//!   lies between them does not count), so no character the runner's search skips
//!   can put a command together, whether or not it is one of those escaped.
//! * [`one_line`]: a value from the inputs placed within a line: as `for_log`, and its
//!   line breaks and tabs are written `\n`, `\r`, `\t`, so it cannot start a line of
//!   its own.
//! * [`JsonLog`]: JSON printed as it is serialized: the same characters written as
//!   JSON escapes (`\u00ad`, `##\u005b`), so the document means what it meant.
//! * [`commands`]: the workflow commands of `--annotations`, whose values are
//!   already percent-encoded: as `for_log`, but its lines start with `::`.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};

/// Invisible characters: Unicode's default-ignorable code points (zero-width
/// characters, soft hyphen, bidirectional controls, variation selectors, tags, …),
/// and the line and paragraph separators.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{ad}' | '\u{34f}' | '\u{61c}' | '\u{115f}'..='\u{1160}' | '\u{17b4}'..='\u{17b5}'
        | '\u{180b}'..='\u{180f}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}' | '\u{3164}' | '\u{fe00}'..='\u{fe0f}' | '\u{feff}'
        | '\u{ffa0}' | '\u{fff0}'..='\u{fffb}' | '\u{1bca0}'..='\u{1bca3}'
        | '\u{1d173}'..='\u{1d17a}' | '\u{e0000}'..='\u{e0fff}')
}

/// How a line is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Line {
    /// A value within a line: line breaks and tabs escaped too.
    Value,
    /// A line of lith's own text.
    Text,
    /// A line of lith's own workflow commands.
    Command,
}

fn escaped(c: char, how: Line) -> bool {
    if c == '\t' {
        return how == Line::Value;
    }
    c.is_control() || invisible(c)
}

/// Whether `line` would be written as it is.
fn plain(line: &str, how: Line) -> bool {
    line.bytes()
        .all(|b| (0x20..0x7f).contains(&b) || (b == b'\t' && how != Line::Value))
        && !line.contains("##[")
        && (how != Line::Text || !line.trim_start().starts_with("::"))
}

/// Counts the `#` of the ASCII characters written since the last other ASCII
/// character: a `[` after two of them is escaped. Characters beyond ASCII do not
/// count either way, so no character the runner's search may skip (whatever its
/// tables say) can join `#`, `#` and `[` into `##[`.
#[derive(Default, Clone, Copy)]
struct Hashes(usize);

impl Hashes {
    /// Whether `c`, written next, must be escaped.
    fn escape(&mut self, c: char) -> bool {
        if !c.is_ascii() {
            return false;
        }
        let opens = c == '[' && self.0 >= 2;
        self.0 = if c == '#' { self.0 + 1 } else { 0 };
        if opens {
            // What is written instead starts with `\`: no `#` before the next.
            self.0 = 0;
        }
        opens
    }
}

fn push_line(out: &mut String, line: &str, how: Line) {
    let start = out.len();
    let mut hashes = Hashes::default();
    for c in line.chars() {
        if escaped(c, how) {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c => {
                    let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
                }
            }
            hashes.escape('\\');
            continue;
        }
        if hashes.escape(c) {
            out.push_str("\\u{5b}");
        } else {
            out.push(c);
        }
    }
    if how == Line::Text {
        // A line whose first ASCII characters but blanks are `::` starts with
        // `\u{3a}:` instead (characters beyond ASCII skipped, as above).
        let mut ascii = out[start..]
            .char_indices()
            .filter(|(_, c)| c.is_ascii() && !c.is_ascii_whitespace());
        if let (Some((i, ':')), Some((_, ':'))) = (ascii.next(), ascii.next()) {
            out.replace_range(start + i..start + i + 1, "\\u{3a}");
        }
    }
}

fn filter(text: &str, how: Line) -> Cow<'_, str> {
    if text.split('\n').all(|l| plain(l, how)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        push_line(&mut out, line, how);
    }
    Cow::Owned(out)
}

/// lith's own text, to print: see the module's documentation.
pub fn for_log(text: &str) -> Cow<'_, str> {
    filter(text, Line::Text)
}

/// A value from the inputs, to place within a printed line: see the module's
/// documentation.
pub fn one_line(value: &str) -> Cow<'_, str> {
    if plain(value, Line::Value) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 16);
    push_line(&mut out, value, Line::Value);
    Cow::Owned(out)
}

/// The workflow commands lith means to print: see the module's documentation.
pub fn commands(text: &str) -> Cow<'_, str> {
    filter(text, Line::Command)
}

/// Prints lith's own text on stderr, with a line break, through [`for_log`].
pub fn eprint(text: &str) {
    let mut err = io::stderr().lock();
    let _ = err
        .write_all(for_log(text).as_bytes())
        .and_then(|_| err.write_all(b"\n"));
}

/// The bytes of JSON text [`JsonLog`] looks at: `#`, `[`, and all but line
/// breaks and printable ASCII.
static LOOK_AT: [bool; 256] = {
    let mut t = [true; 256];
    let mut b = 0x20;
    while b < 0x7f {
        t[b] = b == b'#' as usize || b == b'[' as usize;
        b += 1;
    }
    t[b'\n' as usize] = false;
    t
};

/// A writer of JSON text that escapes, as JSON escapes, what [`for_log`] would:
/// control characters (serde_json leaves DEL and the C1 controls as they are),
/// invisible characters, and the `[` that would make `##[` (`\u005b`). They can
/// only be within strings, so the document keeps its meaning. Only the bytes of a
/// character cut between two writes are held back.
pub struct JsonLog<W: Write> {
    inner: W,
    held: Vec<u8>,
    out: Vec<u8>,
    hashes: Hashes,
}

impl<W: Write> JsonLog<W> {
    pub fn new(inner: W) -> JsonLog<W> {
        JsonLog {
            inner,
            held: Vec::new(),
            out: Vec::new(),
            hashes: Hashes::default(),
        }
    }

    /// Writes what is held and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.pass(true)?;
        self.inner.flush()?;
        Ok(self.inner)
    }

    /// Escapes and writes what is held, but (unless `all`) a character cut short.
    fn pass(&mut self, all: bool) -> io::Result<()> {
        let mut end = self.held.len();
        if !all
            && let Some(lead) = self.held.iter().rposition(|&b| b & 0xc0 != 0x80)
            && self.held[lead] >= 0xc0
            && std::str::from_utf8(&self.held[lead..]).is_err()
        {
            end = lead;
        }
        let bytes = &self.held[..end];
        self.out.clear();
        let mut i = 0;
        while i < bytes.len() {
            // Runs of printable ASCII but `#` and `[` are copied as they are.
            let run = bytes[i..]
                .iter()
                .position(|&b| LOOK_AT[usize::from(b)])
                .map_or(bytes.len(), |p| i + p);
            if run > i {
                self.out.extend_from_slice(&bytes[i..run]);
                self.hashes = Hashes::default();
                i = run;
            }
            if i == bytes.len() {
                break;
            }
            let width = match bytes[i] {
                b if b < 0x80 => 1,
                b if b >= 0xf0 => 4,
                b if b >= 0xe0 => 3,
                _ => 2,
            };
            let piece = &bytes[i..(i + width).min(bytes.len())];
            i += piece.len();
            let Some(c) = std::str::from_utf8(piece)
                .ok()
                .and_then(|t| t.chars().next())
            else {
                // Not UTF-8 (serde_json writes none): as it is.
                self.out.extend_from_slice(piece);
                continue;
            };
            if c.is_control() || invisible(c) {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(self.out, "\\u{u:04x}");
                }
                self.hashes.escape('\\');
            } else if self.hashes.escape(c) {
                self.out.extend_from_slice(b"\\u005b");
            } else {
                self.out.extend_from_slice(piece);
            }
        }
        self.inner.write_all(&self.out)?;
        self.held.drain(..end);
        Ok(())
    }
}

impl<W: Write> Write for JsonLog<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.held.extend_from_slice(buf);
        if self.held.len() >= 8 * 1024 {
            self.pass(false)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.pass(false)?;
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_from_the_inputs_becomes_a_command_or_an_escape_sequence() {
        let cases = [
            ("plain text, tabs\tkept", "plain text, tabs\tkept"),
            ("::error file=x::spoofed", "\\u{3a}:error file=x::spoofed"),
            (
                "  \u{a0}::add-mask::secret",
                "  \u{a0}\\u{3a}:add-mask::secret",
            ),
            (
                "a ##[set-output name=v;]passed",
                "a ##\\u{5b}set-output name=v;]passed",
            ),
            ("###[x] ##[", "###\\u{5b}x] ##\\u{5b}"),
            // What lies beyond ASCII does not count: whatever the runner skips.
            (
                "#é#[ #\u{1f600}\u{301}#[",
                "#é#\\u{5b} #\u{1f600}\u{301}#\\u{5b}",
            ),
            ("é ::x", "é \\u{3a}:x"),
            ("#\u{ad}#[", "#\\u{ad}#["),
            ("\u{200b}::x", "\\u{200b}::x"),
            (
                "red \u{1b}[31m \u{9b}2J \u{1b}]52;c;AAAA\u{7}",
                "red \\u{1b}[31m \\u{9b}2J \\u{1b}]52;c;AAAA\\u{7}",
            ),
            ("abc\u{202e}fed", "abc\\u{202e}fed"),
            ("cr\rend", "cr\\rend"),
            ("emoji ❤\u{fe0f} and é", "emoji ❤\\u{fe0f} and é"),
        ];
        for (input, want) in cases {
            assert_eq!(for_log(input), want, "{input:?}");
        }
        // Line by line: lith's own line breaks stay; each line is guarded.
        assert_eq!(
            for_log("lith build: passed\n::error::x\n  - ok"),
            "lith build: passed\n\\u{3a}:error::x\n  - ok"
        );
        assert!(matches!(for_log("a\n  - b: c"), Cow::Borrowed(_)));
        // A value cannot start a line of its own.
        assert_eq!(
            one_line("run\n::error::x\r\n\tz"),
            "run\\n::error::x\\r\\n\\tz"
        );
        // lith's own commands keep their `::`; what they carry is still escaped.
        assert_eq!(
            commands("::error file=a%0Ab::x ##[y] \u{1b}"),
            "::error file=a%0Ab::x ##\\u{5b}y] \\u{1b}"
        );
    }

    /// Characters that make commands and escapes, and others around them.
    fn text_strategy() -> impl proptest::strategy::Strategy<Value = String> {
        let pieces = [
            "#",
            "[",
            ":",
            " ",
            "\t",
            "\n",
            "\r",
            "a",
            "é",
            "\u{ad}",
            "\u{1b}",
            "\u{85}",
            "\u{9b}",
            "\u{7f}",
            "\u{202e}",
            "\u{200b}",
            "\u{1f600}",
            "\u{301}",
            "\u{3000}",
            "\u{e0041}",
            "\\",
            "\"",
            "%",
        ];
        proptest::collection::vec(proptest::sample::select(pieces.to_vec()), 0..40)
            .prop_map(|v| v.concat())
    }

    /// What a runner or a terminal would act on in a printed line.
    fn acted_on(line: &str, commands_allowed: bool) -> bool {
        let ascii: String = line.chars().filter(char::is_ascii).collect();
        (!commands_allowed && ascii.trim_start().starts_with("::"))
            || ascii.contains("##[")
            || line
                .chars()
                .any(|c| (c.is_control() && c != '\t') || invisible(c))
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        #[test]
        fn no_text_prints_as_a_command_or_an_escape(
            text in text_strategy(),
            piece in 1usize..16,
        ) {
            for line in for_log(&text).split('\n') {
                proptest::prop_assert!(!acted_on(line, false), "{line:?}");
            }
            proptest::prop_assert_eq!(for_log(&text).matches('\n').count(), text.matches('\n').count());
            let value = one_line(&text);
            proptest::prop_assert!(!value.contains(['\n', '\t']));
            proptest::prop_assert!(!acted_on(&value, true), "{value:?}");
            for line in commands(&text).split('\n') {
                proptest::prop_assert!(!acted_on(line, true), "{line:?}");
            }
            // As a JSON string, cut anywhere: the same value, nothing acted on.
            let json = serde_json::to_string_pretty(&serde_json::json!({ "v": [&text] })).unwrap();
            let mut w = JsonLog::new(Vec::new());
            for chunk in json.as_bytes().chunks(piece) {
                w.write_all(chunk).unwrap();
            }
            let out = String::from_utf8(w.finish().unwrap()).unwrap();
            let back: serde_json::Value = serde_json::from_str(&out).unwrap();
            proptest::prop_assert_eq!(&back["v"][0], &serde_json::Value::from(text.as_str()));
            for line in out.split('\n') {
                proptest::prop_assert!(!acted_on(line, false), "{line:?}");
            }
        }
    }

    #[test]
    fn json_keeps_its_meaning_through_any_cut() {
        let value = serde_json::json!({
            "run": "evil\n::error::x ##[set-output name=v;]passed #\u{ad}#[ #é#[ \u{1b}[2J \u{9b} \u{85}",
            "ok": ["plain", "é ❤\u{fe0f} 𝄞", "\u{e0041}tag", "trailing ##"],
            "##": "#",
        });
        let text = serde_json::to_string_pretty(&value).unwrap();
        for piece in [1, 2, 3, 5, 7, 64, text.len()] {
            let mut w = JsonLog::new(Vec::new());
            for chunk in text.as_bytes().chunks(piece) {
                w.write_all(chunk).unwrap();
                if piece == 7 {
                    w.flush().unwrap();
                }
            }
            let out = String::from_utf8(w.finish().unwrap()).unwrap();
            let back: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(back, value, "pieces of {piece}");
            let ascii: String = out.chars().filter(char::is_ascii).collect();
            assert!(!ascii.contains("##["), "{out}");
            assert!(
                !out.chars()
                    .any(|c| (c.is_control() && c != '\n') || invisible(c)),
                "{out}"
            );
            assert!(out.lines().all(|l| !l.trim_start().starts_with("::")));
        }
    }
}
