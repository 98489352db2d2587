//! The common event line read in one pass, without serde: its envelope and its
//! task's head, with the task checked as JSON as serde_json checks a value it
//! skips.
//!
//! Replay reads millions of lines, nearly all alike: an object of a few string
//! fields and a task. [`event`] reads such a line; at anything else (an escape in
//! a field replay reads, a field twice, a `null`, a value of another type, a top
//! level that is not an object, deep nesting) it gives up and the line is read by
//! serde_json, to the same result or the same refusal. What it accepts is JSON by
//! the grammar serde_json applies to a value it skips: any escape of a string that
//! nobody reads, numbers by JSON's grammar, no control character in a string.

/// What an event line says, as replay's `Envelope` and `TaskHead` read it.
#[derive(Debug, PartialEq)]
pub(super) struct Event<'a> {
    pub v: Option<&'a str>,
    pub op: Option<&'a str>,
    pub task_id: Option<&'a str>,
    pub task: Option<Task<'a>>,
}

/// A task, which is an object: its text, and its `id` and `dedupe_key`.
#[derive(Debug, PartialEq)]
pub(super) struct Task<'a> {
    pub text: &'a str,
    pub id: Option<&'a str>,
    pub dedupe_key: Option<&'a str>,
}

/// The deepest nesting read here; deeper lines are serde_json's.
const DEPTH: usize = 32;

/// Reads `line` (one event, without its line break), or `None` where serde_json
/// is to read it.
pub(super) fn event(line: &str) -> Option<Event<'_>> {
    let mut s = Cursor::new(line);
    s.space();
    let mut event = Event {
        v: None,
        op: None,
        task_id: None,
        task: None,
    };
    let mut seen = [false; 4];
    s.object(|s, key| {
        let field = match key {
            b"v" => 0,
            b"op" => 1,
            b"task_id" => 2,
            b"task" => 3,
            _ => return s.value(1),
        };
        if std::mem::replace(&mut seen[field], true) {
            return None;
        }
        match field {
            0 => event.v = Some(s.plain()?),
            1 => event.op = Some(s.plain()?),
            2 => event.task_id = Some(s.plain()?),
            _ => event.task = Some(s.task()?),
        }
        Some(())
    })?;
    s.end()?;
    Some(event)
}

/// A place in a JSON text, and the pieces of JSON read from there that this
/// module and the canonical writer share.
pub(super) struct Cursor<'a> {
    line: &'a str,
    text: &'a [u8],
    pub(super) at: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(line: &'a str) -> Cursor<'a> {
        Cursor {
            line,
            text: line.as_bytes(),
            at: 0,
        }
    }

    pub(super) fn space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.text.get(self.at) {
            self.at += 1;
        }
    }

    /// The whole text.
    pub(super) fn text(&self) -> &'a [u8] {
        self.text
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    /// Past `byte`, when it is the next one.
    pub(super) fn eat(&mut self, byte: u8) -> bool {
        let next = self.peek() == Some(byte);
        self.at += usize::from(next);
        next
    }

    /// White space, then the end of the text.
    pub(super) fn end(&mut self) -> Option<()> {
        self.space();
        (self.at == self.text.len()).then_some(())
    }

    /// The line from `start` to here (both at ASCII bytes).
    fn since(&self, start: usize) -> &'a str {
        &self.line[start..self.at]
    }

    /// An object, at `{`: each member's key handed to `member`, which reads its
    /// value.
    fn object(&mut self, mut member: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        self.eat(b'{').then_some(())?;
        self.space();
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            self.space();
            let key = self.plain_bytes()?;
            self.space();
            self.eat(b':').then_some(())?;
            self.space();
            member(self, key)?;
            self.space();
            if self.eat(b'}') {
                return Some(());
            }
            self.eat(b',').then_some(())?;
        }
    }

    /// A string without escapes, at its `"`: what is between the quotes.
    pub(super) fn plain_bytes(&mut self) -> Option<&'a [u8]> {
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.at + 1;
        let len = self.text[start..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if self.text[start + len] != b'"' {
            return None;
        }
        self.at = start + len + 1;
        Some(&self.text[start..start + len])
    }

    fn plain(&mut self) -> Option<&'a str> {
        let start = self.at + 1;
        self.plain_bytes()?;
        let s = self.since(start);
        Some(&s[..s.len() - 1])
    }

    /// The task, which is an object: its text and head.
    fn task(&mut self) -> Option<Task<'a>> {
        let start = self.at;
        let (mut id, mut dedupe_key) = (None, None);
        self.object(|s, key| match key {
            b"id" if id.is_none() => {
                id = Some(s.plain()?);
                Some(())
            }
            b"dedupe_key" if dedupe_key.is_none() => {
                dedupe_key = Some(s.plain()?);
                Some(())
            }
            b"id" | b"dedupe_key" => None,
            _ => s.value(2),
        })?;
        Some(Task {
            text: self.since(start),
            id,
            dedupe_key,
        })
    }

    /// Any value that nobody reads, checked as serde_json checks a value it skips;
    /// `depth` is that of the object or array it is in.
    fn value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'{' if depth < DEPTH => self.object(|s, _| s.value(depth + 1)),
            b'[' if depth < DEPTH => {
                self.eat(b'[');
                self.space();
                if self.eat(b']') {
                    return Some(());
                }
                loop {
                    self.space();
                    self.value(depth + 1)?;
                    self.space();
                    if self.eat(b']') {
                        return Some(());
                    }
                    self.eat(b',').then_some(())?;
                }
            }
            b'"' => self.string(),
            b't' => self.word(b"true").map(drop),
            b'f' => self.word(b"false").map(drop),
            b'n' => self.word(b"null").map(drop),
            b'-' | b'0'..=b'9' => self.number().map(drop),
            _ => None,
        }
    }

    /// `word` (`true`, `false`, `null`).
    pub(super) fn word(&mut self, word: &'static [u8]) -> Option<&'static [u8]> {
        self.text[self.at..].starts_with(word).then_some(())?;
        self.at += word.len();
        Some(word)
    }

    /// A string, escapes and all: `\` and one of `"\/bfnrt`, or `\u` and four hex
    /// digits (which serde_json does not decode when it skips).
    fn string(&mut self) -> Option<()> {
        self.at += 1;
        loop {
            let len = self.text[self.at..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
            self.at += len;
            match self.text[self.at] {
                b'"' => {
                    self.at += 1;
                    return Some(());
                }
                b'\\' => match *self.text.get(self.at + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 2,
                    b'u' => {
                        let hex = self.text.get(self.at + 2..self.at + 6)?;
                        if !hex.iter().all(u8::is_ascii_hexdigit) {
                            return None;
                        }
                        self.at += 6;
                    }
                    _ => return None,
                },
                _ => return None,
            }
        }
    }

    /// A number by JSON's grammar, and its text: `-`, one `0` or digits without a
    /// leading zero, a fraction of one digit or more, an exponent of one digit or
    /// more.
    pub(super) fn number(&mut self) -> Option<&'a [u8]> {
        let start = self.at;
        self.eat(b'-');
        match self.peek()? {
            b'0' => {
                self.at += 1;
                if self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    return None;
                }
            }
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if !self.peek()?.is_ascii_digit() {
                return None;
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if !self.peek()?.is_ascii_digit() {
                return None;
            }
            self.digits();
        }
        Some(&self.text[start..self.at])
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_common_line_is_read_in_one_pass() {
        let line = r#"{"v": "eta-mu.task-queue/v1", "ts": "2026-02-15T19:32:00+00:00", "op": "enqueue", "task": {"id": "task-1", "kind": "build", "payload": {"n": -1.5e3, "s": "caf\u00e9 \"q\" \\ \/ \b\f\n\r\t", "a": [true, false, null, 0, {}], "e": []}, "dedupe_key": " k ", "created_at": "t"}}"#;
        let ev = event(line).expect("read");
        assert_eq!(ev.v, Some("eta-mu.task-queue/v1"));
        assert_eq!(ev.op, Some("enqueue"));
        assert_eq!(ev.task_id, None);
        let task = ev.task.expect("a task");
        assert_eq!(
            task.text,
            &line[line.find(r#"{"id""#).unwrap()..line.len() - 1]
        );
        assert_eq!((task.id, task.dedupe_key), (Some("task-1"), Some(" k ")));
        let ev =
            event("\t{\"op\":\"dequeue\",\"task_id\":\"task-1\",\"x\":{\"task\":1}} \r").unwrap();
        assert_eq!(
            (ev.op, ev.task_id, ev.task),
            (Some("dequeue"), Some("task-1"), None)
        );
        let ev = event(r#"{"op":"enqueue","task":{"kind":"k"}}"#).unwrap();
        assert_eq!(ev.task.map(|t| t.id), Some(None));
        assert_eq!(
            event("{}"),
            Some(Event {
                v: None,
                op: None,
                task_id: None,
                task: None
            })
        );
    }

    #[test]
    fn any_other_line_is_left_to_serde_json() {
        let deep = format!(
            r#"{{"op":"x","p":{}0{}}}"#,
            "[".repeat(DEPTH),
            "]".repeat(DEPTH)
        );
        for line in [
            // What replay reads, with an escape, twice, null or of another type.
            r#"{"op":"enq\u0075eue"}"#,
            r#"{"o\u0070":"enqueue"}"#,
            r#"{"op":"enqueue","op":"dequeue"}"#,
            r#"{"op":null}"#,
            r#"{"op":1}"#,
            r#"{"task":null}"#,
            r#"{"task":[1]}"#,
            r#"{"task":"t"}"#,
            r#"{"task":{"id":"a\nb"}}"#,
            r#"{"task":{"id":null}}"#,
            r#"{"task":{"id":7}}"#,
            r#"{"task":{"id":"a","id":"b"}}"#,
            r#"{"task":{"dedupe_key":"a","dedupe_key":"b"}}"#,
            r#"{"task":{"i\u0064":"a"}}"#,
            // Not an object, or more after it.
            r#"["eta-mu.task-queue/v1","enqueue"]"#,
            "\"s\"",
            "{} {}",
            "{}x",
            // Not JSON.
            "",
            "{",
            r#"{"op":"enqueue""#,
            r#"{"op" "enqueue"}"#,
            r#"{"op":"enqueue",}"#,
            r#"{,"op":"enqueue"}"#,
            r#"{"x":[1,]}"#,
            r#"{"x":[,1]}"#,
            r#"{"x":01}"#,
            r#"{"x":-}"#,
            r#"{"x":1.}"#,
            r#"{"x":.5}"#,
            r#"{"x":1e}"#,
            r#"{"x":1e+}"#,
            r#"{"x":+1}"#,
            r#"{"x":tru}"#,
            r#"{"x":nul}"#,
            r#"{"x":"\x"}"#,
            r#"{"x":"\u12G4"}"#,
            r#"{"x":"\u12"}"#,
            "{\"x\":\"tab\there\"}",
            "{\"x\":\"a",
            &deep,
        ] {
            assert_eq!(event(line), None, "{line}");
        }
        let deep = format!(
            r#"{{"p":{}0{}}}"#,
            "[".repeat(DEPTH - 1),
            "]".repeat(DEPTH - 1)
        );
        assert!(event(&deep).is_some());
    }
}
