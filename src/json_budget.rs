//! JSON read into a `serde_json::Value` under a budget of values.
//!
//! A document lith reads may be as large as [`crate::fsutil::MAX_JSON_BYTES`], and a
//! `Value` costs 32 bytes (more inside a map) for every number, `null` or empty
//! string in the text: a 64 MiB file of `0,` would take a GiB. [`ValueSeed`] builds
//! the same `Value` that serde_json would, and stops with an error once a document
//! holds more than [`MAX_VALUES`] values: what lith cannot read in bounded memory
//! it refuses, naming the line and column where it stopped.

use std::cell::Cell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The most values (scalars, lists and objects) read from one document.
pub const MAX_VALUES: usize = 1 << 20;

/// What a [`ValueSeed`] counts beyond the value itself for an object's first
/// member: a B-tree node of eleven members (about 630 bytes, what 20 values take).
/// `[{"a":0},…]` of a 4 MB document would otherwise hold 360 MiB. Later members
/// fill the node (an object of a million members holds about 100 bytes a member).
const FIRST_MEMBER_VALUES: usize = 19;
/// … and for a list's first element, which takes room for four.
const FIRST_ELEMENT_VALUES: usize = 3;

/// Reads one value, counting it and everything in it against `left`.
#[derive(Clone, Copy)]
pub struct ValueSeed<'a> {
    left: &'a Cell<usize>,
}

impl<'a> ValueSeed<'a> {
    /// A seed drawing on `left`, which the caller starts at [`MAX_VALUES`] (one
    /// budget for the whole document).
    pub fn new(left: &'a Cell<usize>) -> ValueSeed<'a> {
        ValueSeed { left }
    }

    fn take<E: serde::de::Error>(&self) -> Result<(), E> {
        take(self.left, MAX_VALUES)
    }
}

/// Counts one value against `left`, which started at `limit`.
pub(crate) fn take<E: serde::de::Error>(left: &Cell<usize>, limit: usize) -> Result<(), E> {
    take_n(left, 1, limit)
}

/// Counts against `left` what an object's first member takes beyond its value, as
/// [`ValueSeed`] counts it: after its key, before its value.
pub(crate) fn take_first_member<E: serde::de::Error>(left: &Cell<usize>) -> Result<(), E> {
    take_n(left, FIRST_MEMBER_VALUES, MAX_VALUES)
}

/// Counts against `left` what a list's first element takes beyond its value, once
/// it is read.
pub(crate) fn take_first_element<E: serde::de::Error>(left: &Cell<usize>) -> Result<(), E> {
    take_n(left, FIRST_ELEMENT_VALUES, MAX_VALUES)
}

/// Counts `n` values against `left`, which started at `limit`.
fn take_n<E: serde::de::Error>(left: &Cell<usize>, n: usize, limit: usize) -> Result<(), E> {
    match left.get().checked_sub(n) {
        None => Err(E::custom(too_many_values(limit))),
        Some(rest) => {
            left.set(rest);
            Ok(())
        }
    }
}

/// Why a document of more than `limit` values is refused, whoever counted them.
pub fn too_many_values(limit: usize) -> String {
    format!(
        "the document holds more than {limit} JSON values (counting what its objects and lists take to hold), more than lith reads from one file"
    )
}

/// Counts the values of a document against a budget without building any of them
/// (a string is seen in serde_json's buffer, never copied): the check before a
/// typed read of a document whose shape alone does not bound its memory.
#[derive(Clone, Copy)]
pub struct CountSeed<'a> {
    left: &'a Cell<usize>,
    limit: usize,
}

impl<'de> DeserializeSeed<'de> for CountSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CountSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        take(self.left, self.limit)
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        take(self.left, self.limit)
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        take(self.left, self.limit)
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        take(self.left, self.limit)
    }
    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        take(self.left, self.limit)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        take(self.left, self.limit)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        take(self.left, self.limit)?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        take(self.left, self.limit)?;
        // Keys read as strings (not skipped), so a key a `Value` refuses, such as
        // one with a lone surrogate escape, is refused here too.
        while map.next_key_seed(KeySeed)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }
}

/// An object's key, read as a string and let go.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
}

/// Counts the values of the JSON document `bytes` against `left`, which started at
/// `limit` (one budget over several documents, such as the lines of a file).
pub fn count_values(bytes: &[u8], left: &Cell<usize>, limit: usize) -> serde_json::Result<()> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    CountSeed { left, limit }.deserialize(&mut de)?;
    de.end()
}

/// A reader that counts the JSON values in the text read through it, as
/// [`CountSeed`] counts them (every scalar, list and object; an object's keys are
/// not values), and fails once there are more than `limit`: the count of
/// [`CountSeed`] taken in the same pass as the read it guards, at the speed of
/// a scan rather than of a second parse. It only counts: what is not JSON is for
/// the parser reading through it to refuse. Past [`MAX_COUNTED_DEPTH`] levels it
/// counts an object's keys as values too (serde_json refuses to read a value that
/// deep into what it keeps, and skips one unheld).
pub struct CountingReader<R> {
    inner: R,
    limit: usize,
    counted: usize,
    read: u64,
    scan: Scan,
}

/// Nesting past which [`CountingReader`] no longer tells keys from values: what
/// serde_json reads into a typed value it refuses past 128 levels.
pub const MAX_COUNTED_DEPTH: usize = 256;

#[derive(Default)]
struct Scan {
    /// One entry per open list (`false`) or object (`true`), up to
    /// [`MAX_COUNTED_DEPTH`]...
    open: Vec<bool>,
    /// ... and how many are open past that.
    deep: usize,
    /// The next string in an object is a key.
    key_next: bool,
    in_string: bool,
    escaped: bool,
    /// Inside a number, `true`, `false` or `null`.
    in_word: bool,
}

impl Scan {
    /// The values that begin in `bytes`.
    fn count(&mut self, bytes: &[u8]) -> usize {
        match self.count_within(bytes, usize::MAX) {
            Ok(n) => n,
            // A slice holds fewer than `usize::MAX` values.
            Err(_) => usize::MAX,
        }
    }

    /// The values that begin in `bytes`, or, when more than `room` do, the place in
    /// `bytes` of the first value past `room` (the scan then stops there).
    fn count_within(&mut self, bytes: &[u8], room: usize) -> Result<usize, usize> {
        let mut n = 0usize;
        let mut at = 0;
        // A value begins at `at - 1`: counted, unless it is one past `room`.
        macro_rules! begins {
            () => {
                if n == room {
                    return Err(at - 1);
                }
                n += 1;
            };
        }
        while at < bytes.len() {
            if self.in_string {
                // Most of a report's text is in strings: skip to what may end one.
                if self.escaped {
                    self.escaped = false;
                    at += 1;
                } else if let Some(k) = memchr::memchr2(b'"', b'\\', &bytes[at..]) {
                    self.escaped = bytes[at + k] == b'\\';
                    self.in_string = self.escaped;
                    at += k + 1;
                } else {
                    at = bytes.len();
                }
                continue;
            }
            let b = bytes[at];
            at += 1;
            if self.in_word {
                if b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.') {
                    continue;
                }
                self.in_word = false;
            }
            match b {
                b'"' => {
                    if self.key_next {
                        self.key_next = false;
                    } else {
                        begins!();
                    }
                    self.in_string = true;
                }
                b'{' | b'[' => {
                    begins!();
                    if self.open.len() < MAX_COUNTED_DEPTH {
                        self.open.push(b == b'{');
                        self.key_next = b == b'{';
                    } else {
                        self.deep += 1;
                        self.key_next = false;
                    }
                }
                b'}' | b']' => {
                    if self.deep > 0 {
                        self.deep -= 1;
                    } else {
                        self.open.pop();
                    }
                    self.key_next = false;
                }
                b',' => self.key_next = self.deep == 0 && self.open.last() == Some(&true),
                b':' => self.key_next = false,
                b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                    begins!();
                    self.in_word = true;
                }
                _ => {}
            }
        }
        Ok(n)
    }
}

/// Where [`scan_values`] found a document's values past its limit: the line and
/// column (1-based, the column in bytes) where the first value past it begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PastLimit {
    pub line: u64,
    pub column: u64,
}

/// Reads the text `r` yields to its end and counts the JSON values in it as
/// [`CountingReader`] does (as [`CountSeed`] would, at the speed of a scan): the
/// check before a typed read of a document read back whole, without parsing it
/// twice. `Ok(Err(place))` when more than `limit` values begin in it. Like the
/// counting reader it only counts: what is not JSON is for the parser that reads
/// it next to refuse, and a prefix of the text that parser accepts holds no more
/// values than the scan counted in it.
pub fn scan_values(
    mut r: impl std::io::Read,
    limit: usize,
) -> std::io::Result<Result<(), PastLimit>> {
    let mut buf = crate::fsutil::ReadBuf::new(1 << 20);
    let mut scan = Scan::default();
    let mut counted = 0usize;
    // The line the next chunk starts on, and the bytes before it on that line.
    let (mut line, mut column) = (1u64, 0u64);
    use crate::json_walk::advance;
    loop {
        let n = match r.read(buf.get_mut()) {
            Ok(0) => return Ok(Ok(())),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = &buf.get()[..n];
        match scan.count_within(chunk, limit - counted) {
            Ok(k) => counted += k,
            Err(at) => {
                advance(&chunk[..at], &mut line, &mut column);
                return Ok(Err(PastLimit {
                    line,
                    column: column + 1,
                }));
            }
        }
        advance(chunk, &mut line, &mut column);
    }
}

/// The values [`CountingReader`] counts in `bytes` (for the fuzz target that
/// checks its count against [`CountSeed`]'s).
pub(crate) fn scanned_values(bytes: &[u8]) -> usize {
    Scan::default().count(bytes)
}

impl<R> CountingReader<R> {
    pub fn new(inner: R, limit: usize) -> CountingReader<R> {
        CountingReader {
            inner,
            limit,
            counted: 0,
            read: 0,
            scan: Scan::default(),
        }
    }
}

impl<R: std::io::Read> std::io::Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counted = self.counted.saturating_add(self.scan.count(&buf[..n]));
        self.read += n as u64;
        if self.counted > self.limit {
            return Err(std::io::Error::other(format!(
                "the document holds more than {} JSON values within its first {} bytes, more \
                 than lith reads from one file{}",
                self.limit,
                self.read,
                crate::report::ReadLimits::RAISE
            )));
        }
        Ok(n)
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        self.take()?;
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        self.take()?;
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        self.take()?;
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        self.take()?;
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        self.take()?;
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        self.take()?;
        Ok(Value::String(v))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        self.take()?;
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.take()?;
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(self)? {
            if items.is_empty() {
                take_first_element(self.left)?;
            }
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.take()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.is_empty() {
                take_first_member(self.left)?;
            }
            // Later keys win, as in a `Value` read by serde_json.
            let v = map.next_value_seed(self)?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// Reads a whole document from bytes under one budget.
pub fn from_slice(bytes: &[u8]) -> serde_json::Result<Value> {
    let left = Cell::new(MAX_VALUES);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = ValueSeed::new(&left).deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

/// The top-level string member `key` of a JSON object document, read without
/// building the rest (skipped unread): `None` when the document is not a JSON
/// object, lacks the member, or its last `key` is not a string.
pub fn top_level_string(doc: &[u8], key: &str) -> Option<String> {
    struct Member<'k>(&'k str);
    impl<'de> Visitor<'de> for Member<'_> {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found = None;
            while let Some(k) = map.next_key_seed(crate::queue::canon::Key)? {
                if k == self.0 {
                    // Later keys win; a value that is not a string is none.
                    found = map.next_value_seed(StringOrSkip)?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(doc);
    let v = de.deserialize_map(Member(key)).ok()?;
    de.end().ok()?;
    v
}

/// A string, or `None` for any other value (skipped unread).
pub struct StringOrSkip;

impl<'de> DeserializeSeed<'de> for StringOrSkip {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StringOrSkip {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What one scan counts in `doc` fed to it `piece` bytes at a time.
    fn scanned_in_pieces(doc: &[u8], piece: usize) -> usize {
        let mut scan = Scan::default();
        doc.chunks(piece).map(|c| scan.count(c)).sum()
    }

    /// The scan counts what the parse counts, whatever the text is cut into, and
    /// refuses the value past its limit.
    #[test]
    fn a_counting_reader_counts_what_the_count_seed_counts() {
        let report = serde_json::to_vec(&crate::pipeline::demo_report()).unwrap();
        let docs: Vec<Vec<u8>> = [
            r#"{"b":1,"a":[1.5,"é",null,true,{"z":{},"y":[]}],"c":-3,"d":1e2,"e":18446744073709551616,"b":2}"#,
            "[]",
            "0",
            "  -12.5e+3 ",
            "\"s\\n\"",
            r#"{"k\"ey":"v\\","q\\":"\"{[",",":[",",":"]}"#,
            r#"[{"a":{"b":{"c":[true,false,null,"x",{"":""}]}}},[[],[{}]],"\u00e9"]"#,
        ]
        .iter()
        .map(|d| d.as_bytes().to_vec())
        .chain([report])
        .collect();
        for doc in &docs {
            let counted = |limit| {
                let left = Cell::new(limit);
                count_values(doc, &left, limit).map(|()| limit - left.get())
            };
            let want = counted(usize::MAX).unwrap();
            for piece in [1, 7, 4096] {
                assert_eq!(
                    scanned_in_pieces(doc, piece),
                    want,
                    "{} in pieces of {piece}",
                    String::from_utf8_lossy(doc)
                );
            }
            let through = |limit| {
                let mut r = CountingReader::new(&doc[..], limit);
                std::io::copy(
                    &mut std::io::BufReader::with_capacity(3, &mut r),
                    &mut std::io::sink(),
                )
            };
            assert!(through(want).is_ok());
            let e = through(want - 1).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!(
                    "the document holds more than {} JSON values",
                    want - 1
                )),
                "{e}"
            );
            assert!(e.ends_with(crate::report::ReadLimits::RAISE), "{e}");
        }
        // Nested past what serde_json reads into a value (which it may skip
        // unheld), the scan goes on counting, and after it as before.
        let deep = MAX_COUNTED_DEPTH + 44;
        let doc = format!(
            "[{}{},1,\"a\",{{\"k\":2}}]",
            "[".repeat(deep),
            "]".repeat(deep)
        );
        assert_eq!(scanned_values(doc.as_bytes()), 1 + deep + 4);
        // Keys that deep count as values: more, never fewer.
        let doc = format!("{}0{}", "{\"k\":".repeat(deep), "}".repeat(deep));
        assert!(scanned_values(doc.as_bytes()) > deep + 1);
    }

    proptest::proptest! {
        /// Any document, in any layout, cut anywhere, is counted as the count seed
        /// counts it.
        #[test]
        fn any_document_is_scanned_to_the_count_of_its_values(
            raw in crate::json_text::tests::json_strategy(),
            piece in 1usize..64,
        ) {
            let left = Cell::new(usize::MAX);
            count_values(raw.as_bytes(), &left, usize::MAX).unwrap();
            proptest::prop_assert_eq!(
                scanned_in_pieces(raw.as_bytes(), piece),
                usize::MAX - left.get()
            );
        }
    }

    #[test]
    fn reads_what_serde_json_reads() {
        for raw in [
            r#"{"b":1,"a":[1.5,"é",null,true,{"z":{},"y":[]}],"c":-3,"d":1e2,"e":18446744073709551616,"b":2}"#,
            "[]",
            "0",
            "\"s\\n\"",
        ] {
            assert_eq!(
                from_slice(raw.as_bytes()).unwrap(),
                serde_json::from_str::<Value>(raw).unwrap(),
                "{raw}"
            );
        }
    }

    #[test]
    fn a_top_level_string_is_read_as_a_value_would_give_it() {
        let via_value = |doc: &str| {
            serde_json::from_str::<Value>(doc)
                .ok()
                .and_then(|v| v.get("schema_version")?.as_str().map(str::to_string))
        };
        for doc in [
            r#"{"schema_version":"a.v1","x":[1,{"schema_version":"inner"}]}"#,
            r#"{"schema_version":"a","schema_version":"b"}"#,
            r#"{"schema_version":"a","schema_version":1}"#,
            r#"{"schema_v\u0065rsion":"escaped"}"#,
            r#"["schema_version"]"#,
            r#"{"schema_version":"a"} trailing"#,
            r#"{"schema_version":"a""#,
            r#"{}"#,
            "",
        ] {
            assert_eq!(
                top_level_string(doc.as_bytes(), "schema_version"),
                via_value(doc),
                "{doc}"
            );
        }
    }

    /// An object of one member takes a B-tree node of eleven (about 630 bytes): a
    /// document of 520,000 of them (4 MB) took 360 MiB when each counted as two
    /// values. Each now counts as 21, a list's first element as 4.
    #[test]
    fn small_objects_and_lists_count_what_they_take_to_hold() {
        let doc = |n: usize, item: &str| format!("[{}]", vec![item; n].join(","));
        let per_object = 1 + FIRST_MEMBER_VALUES + 1;
        let fits = MAX_VALUES / per_object - 1;
        assert!(from_slice(doc(fits, r#"{"a":0}"#).as_bytes()).is_ok());
        let e = from_slice(doc(fits + 2, r#"{"a":0}"#).as_bytes()).unwrap_err();
        assert!(
            e.to_string().contains("more than 1048576 JSON values"),
            "{e}"
        );
        // Later members count only their value, and an empty object only itself.
        let wide = |n: usize| {
            let members: Vec<String> = (0..n).map(|i| format!("\"k{i}\":0")).collect();
            format!("{{{}}}", members.join(","))
        };
        assert!(from_slice(wide(MAX_VALUES - 20).as_bytes()).is_ok());
        assert!(from_slice(wide(MAX_VALUES - 19).as_bytes()).is_err());
        // The outer list, its room for four, and the empty objects.
        assert!(from_slice(doc(MAX_VALUES - 4, "{}").as_bytes()).is_ok());
        // [[0],[0],…]: the inner list, its room for four and its element.
        let per_list = 1 + FIRST_ELEMENT_VALUES + 1;
        assert!(from_slice(doc(MAX_VALUES / per_list - 1, "[0]").as_bytes()).is_ok());
        assert!(from_slice(doc(MAX_VALUES / per_list + 1, "[0]").as_bytes()).is_err());
    }

    #[test]
    fn values_are_counted_without_being_built_and_refused_past_the_limit() {
        let doc = br#"{"a": [1, "two", null, {"b": [true, 2.5]}], "c": {}}"#;
        // The object, a's list, 1, "two", null, the inner object, its list, true,
        // 2.5, c's object: 10 values (keys are not values).
        let left = Cell::new(10);
        count_values(doc, &left, 10).unwrap();
        assert_eq!(left.get(), 0);
        let e = count_values(doc, &Cell::new(9), 9).unwrap_err();
        assert!(e.to_string().contains("more than 9 JSON values"), "{e}");
        assert_eq!(
            (e.line(), e.column()),
            (1, 51),
            "at c's object, the tenth value"
        );
        assert!(
            count_values(b"[1] [2]", &Cell::new(10), 10).is_err(),
            "one document"
        );
        assert!(count_values(b"[1,", &Cell::new(10), 10).is_err());
        let left = Cell::new(5);
        count_values(b"[1,2]", &left, 5).unwrap();
        assert_eq!(left.get(), 2);
        assert!(
            count_values(b"[1,2]", &left, 5).is_err(),
            "one budget for both"
        );
    }

    #[test]
    fn a_scan_counts_what_the_count_seed_counts_and_names_where_it_passed_the_limit() {
        use crate::fuzzing::Pieces;
        let doc = br#"{"a": [1, "two", null, {"b": [true, 2.5]}], "c": {}}"#;
        assert_eq!(scan_values(&doc[..], 10).unwrap(), Ok(()));
        assert_eq!(
            scan_values(&doc[..], 9).unwrap(),
            Err(PastLimit {
                line: 1,
                column: 50
            }),
            "where c's object, the tenth value, begins"
        );
        // Over lines, keys with escaped quotes, and read a few bytes at a time: the
        // same count, and the same place, wherever the reads end.
        let doc =
            "{\"k\\\"ey\": [1,\n  \"x\\\"y\", -2.5e3,\n  {\"z\": [null, false]}],\n \"w\": \"\"}\n";
        let values = scanned_values(doc.as_bytes());
        let left = Cell::new(usize::MAX);
        count_values(doc.as_bytes(), &left, usize::MAX).unwrap();
        assert_eq!(values, usize::MAX - left.get());
        assert_eq!(values, 10);
        for step in 1..=doc.len() {
            let read = |limit| {
                scan_values(
                    Pieces {
                        bytes: doc.as_bytes(),
                        step,
                    },
                    limit,
                )
                .unwrap()
            };
            assert_eq!(read(values), Ok(()), "{step}");
            // The tenth value, "w"'s empty string, begins on line 4, column 7; the
            // ninth, `false`, on line 3, column 16.
            assert_eq!(read(9), Err(PastLimit { line: 4, column: 7 }), "{step}");
            assert_eq!(
                read(8),
                Err(PastLimit {
                    line: 3,
                    column: 16
                }),
                "{step}"
            );
        }
    }

    #[test]
    fn stops_past_the_budget_with_a_position() {
        let at = |n: usize| format!("[{}0]", "0,".repeat(n - 2));
        // The list itself, the room for four its first element takes, and its
        // elements: MAX_VALUES values in all.
        assert!(from_slice(at(MAX_VALUES - 3).as_bytes()).is_ok());
        let e = from_slice(at(MAX_VALUES - 2).as_bytes()).unwrap_err();
        assert!(
            e.to_string().contains("more than 1048576 JSON values"),
            "{e}"
        );
        assert_eq!(e.line(), 1);
        assert!(e.column() > 2 * MAX_VALUES - 14, "{}", e.column());
    }
}
