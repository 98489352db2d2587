//! The canonical form of a task (SPEC §4.1: sorted keys, no whitespace), written
//! straight from its JSON text without building a `serde_json::Value`.
//!
//! A `Value` costs 32 bytes for every number in the text (a 64 MiB line of `0,`
//! would take a GiB); [`Canon`] streams arrays and scalars through as it reads them
//! and holds only each object's keys and the places of their values while it sorts
//! them. What it writes is byte for byte what a `Value` of the same text would
//! serialize to: keys sorted, the last of duplicate keys wins, numbers read as
//! `u64`, `i64` or `f64`. Two limits keep it bounded on hostile input, and
//! [`check`] applies them when a task is read: nesting deeper than
//! [`MAX_DEPTH`] (serde_json's own limit for a `Value`) and more than
//! [`MAX_MEMBERS`] object members held at once.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::Serialize;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Error as _, SerializeMap, SerializeSeq, Serializer};
use serde_json::value::RawValue;

/// The deepest nesting of arrays and objects a task may have: what serde_json
/// reads into a `Value`.
pub const MAX_DEPTH: usize = 127;

/// The most object members held at once while one task is written (each costs 40
/// bytes: its key and the place of its value).
pub const MAX_MEMBERS: usize = 1 << 20;

/// What one task's writing has used of the limits.
#[derive(Default)]
struct Budget {
    depth: Cell<usize>,
    members: Cell<usize>,
    /// The limit that stopped the writing: the reader's own error, which follows
    /// when a value is left half read, would not say why.
    exceeded: Cell<Option<&'static str>>,
    /// Whether the serializer is serde_json's own, which writes a raw value as it
    /// is: a member that is a string without escapes, `true`, `false` or `null` is
    /// then written from its text, which is already its canonical form, instead of
    /// being read again.
    verbatim: bool,
}

impl Budget {
    fn exceed<E: serde::ser::Error>(&self, why: &'static str) -> E {
        self.exceeded.set(Some(why));
        E::custom(why)
    }
}

const TOO_DEEP: &str = "nested deeper than 127 levels";
const TOO_WIDE: &str = "more than 1048576 object members held at once";

/// A JSON text that serializes as its canonical form, leaving out the top-level
/// keys in `skip` (for the state digest, `created_at`).
pub struct Canon<'a> {
    raw: &'a str,
    skip: &'a [&'a str],
    budget: &'a Budget,
}

/// Writes the canonical form of `raw`, without the top-level keys in `skip`, to a
/// serializer.
pub fn serialize<S: Serializer>(raw: &str, skip: &[&str], s: S) -> Result<S::Ok, S::Error> {
    serialize_in(raw, skip, s, Budget::default())
}

/// [`serialize`] within `budget`.
fn serialize_in<S: Serializer>(
    raw: &str,
    skip: &[&str],
    s: S,
    budget: Budget,
) -> Result<S::Ok, S::Error> {
    let written = Canon {
        raw,
        skip,
        budget: &budget,
    }
    .serialize(s);
    match (written, budget.exceeded.get()) {
        (Err(_), Some(why)) => Err(S::Error::custom(why)),
        // The reader's own limit on nesting, met first in nested arrays.
        (Err(e), None) if e.to_string().starts_with("recursion limit exceeded") => {
            Err(S::Error::custom(TOO_DEEP))
        }
        (written, _) => written,
    }
}

/// A JSON text that serializes as its canonical form, whole.
pub struct Canonical<'a>(pub &'a str);

impl Serialize for Canonical<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize(self.0, &[], s)
    }
}

/// Writes the compact canonical form of `raw` to `w`.
pub fn write(raw: &str, skip: &[&str], w: impl std::io::Write) -> serde_json::Result<()> {
    let mut ser = serde_json::Serializer::new(w);
    let budget = Budget {
        verbatim: true,
        ..Budget::default()
    };
    serialize_in(raw, skip, &mut ser, budget)
}

/// Writes the compact canonical form of `raw`, without the top-level keys in
/// `skip`, to the end of `out`: what [`write`] writes, most often without serde.
///
/// A task as producers write it (strings without escapes, integers, nested objects
/// and arrays, keys in any order, any white space) is written by [`Fast`]; one
/// with anything else (an escape, a fraction or an exponent, a repeated key, a
/// large integer, deep nesting, many members) goes through [`write`]. Either way
/// the bytes are the same.
pub fn write_to(raw: &str, skip: &[&str], out: &mut Vec<u8>) -> serde_json::Result<()> {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
    }
    let start = out.len();
    let done = SCRATCH.with_borrow_mut(|scratch| {
        scratch.members.clear();
        Fast {
            cur: super::scan::Cursor::new(raw),
            out: &mut *out,
            scratch,
        }
        .document(skip)
        .is_some()
    });
    if done {
        return Ok(());
    }
    out.truncate(start);
    write(raw, skip, out)
}

/// The nesting and members [`Fast`] writes; past them, [`write`] and its limits.
const FAST_DEPTH: usize = 32;
const FAST_MEMBERS: usize = 1024;

/// A writer of the canonical form of the JSON texts whose every value is its own
/// canonical form but for white space and the order of keys. It gives up (`None`)
/// at anything else, leaving `out` to be cut back by its caller.
struct Fast<'t, 'o> {
    cur: super::scan::Cursor<'t>,
    out: &'o mut Vec<u8>,
    scratch: &'o mut Scratch,
}

/// What [`Fast`] holds while it writes, kept from one task to the next.
#[derive(Default)]
struct Scratch {
    /// The members of the objects being read, innermost last.
    members: Vec<Member>,
    /// An object's members in order of key, written here and copied back.
    sorted: Vec<u8>,
}

/// Where a member's key is in the text, and where its value was written in `out`.
struct Member {
    key: std::ops::Range<usize>,
    value: std::ops::Range<usize>,
}

impl Fast<'_, '_> {
    fn document(&mut self, skip: &[&str]) -> Option<()> {
        self.value(0, skip)?;
        self.cur.end()
    }

    /// Reads one value and writes its canonical form; `skip` applies to the keys of
    /// an object at this depth.
    fn value(&mut self, depth: usize, skip: &[&str]) -> Option<()> {
        self.cur.space();
        let text = match self.cur.peek()? {
            b'{' => return self.object(depth + 1, skip),
            b'[' => return self.array(depth + 1),
            // A string without escapes or control characters is its own canonical
            // form (serde_json escapes nothing else).
            b'"' => {
                let s = self.cur.plain_bytes()?;
                self.out.push(b'"');
                self.out.extend_from_slice(s);
                self.out.push(b'"');
                return Some(());
            }
            b't' => self.cur.word(b"true")?,
            b'f' => self.cur.word(b"false")?,
            b'n' => self.cur.word(b"null")?,
            // `0`, or an integer of at most 18 digits (without a leading zero, as
            // JSON has it), which serde_json reads as a `u64` or an `i64` and writes
            // as it is. `-0`, longer integers, fractions and exponents are left to
            // serde_json.
            _ => {
                let n = self.cur.number()?;
                let digits = n.strip_prefix(b"-").unwrap_or(n);
                if n == b"-0" || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
                    return None;
                }
                n
            }
        };
        self.out.extend_from_slice(text);
        Some(())
    }

    fn array(&mut self, depth: usize) -> Option<()> {
        if depth > FAST_DEPTH {
            return None;
        }
        self.cur.eat(b'[');
        self.out.push(b'[');
        self.cur.space();
        if !self.cur.eat(b']') {
            loop {
                self.value(depth, &[])?;
                self.cur.space();
                if self.cur.eat(b']') {
                    break;
                }
                self.cur.eat(b',').then_some(())?;
                self.out.push(b',');
            }
        }
        self.out.push(b']');
        Some(())
    }

    /// An object: each member's value written where the object starts, in the
    /// order read, then the members copied back in the order of their keys.
    fn object(&mut self, depth: usize, skip: &[&str]) -> Option<()> {
        if depth > FAST_DEPTH {
            return None;
        }
        self.cur.eat(b'{');
        self.cur.space();
        if self.cur.eat(b'}') {
            self.out.extend_from_slice(b"{}");
            return Some(());
        }
        let first = self.scratch.members.len();
        let start = self.out.len();
        loop {
            self.cur.space();
            let at = self.cur.at + 1;
            let key = at..at + self.cur.plain_bytes()?.len();
            self.cur.space();
            self.cur.eat(b':').then_some(())?;
            let from = self.out.len();
            self.value(depth, &[])?;
            if self.scratch.members.len() >= FAST_MEMBERS {
                return None;
            }
            if !skip
                .iter()
                .any(|s| s.as_bytes() == &self.cur.text()[key.clone()])
            {
                let value = from..self.out.len();
                self.scratch.members.push(Member { key, value });
            }
            self.cur.space();
            if self.cur.eat(b'}') {
                break;
            }
            self.cur.eat(b',').then_some(())?;
        }
        let text = self.cur.text();
        let key = |m: &Member| &text[m.key.clone()];
        let Scratch { members, sorted } = &mut *self.scratch;
        let members = &mut members[first..];
        // Keys compare as serde_json's map orders them: by their bytes. A repeated
        // key (the last one wins) is left to serde_json.
        members.sort_unstable_by(|a, b| key(a).cmp(key(b)));
        if members.windows(2).any(|w| key(&w[0]) == key(&w[1])) {
            return None;
        }
        sorted.clear();
        sorted.push(b'{');
        for (i, m) in members.iter().enumerate() {
            if i > 0 {
                sorted.push(b',');
            }
            sorted.push(b'"');
            sorted.extend_from_slice(key(m));
            sorted.extend_from_slice(b"\":");
            sorted.extend_from_slice(&self.out[m.value.clone()]);
        }
        sorted.push(b'}');
        self.scratch.members.truncate(first);
        self.out.truncate(start);
        self.out.extend_from_slice(&self.scratch.sorted);
        Some(())
    }
}

/// Whether a value's text is its own canonical form whatever it holds: a string
/// without escapes (it has no `"`, `\` or control character left to escape), or
/// one of the three words. Numbers are written anew (`1E2` is `100.0`).
fn plain(raw: &str) -> bool {
    match raw.as_bytes() {
        [b'"', ..] => !raw.contains('\\'),
        b"true" | b"false" | b"null" => true,
        _ => false,
    }
}

/// The compact canonical form of `raw` as a JSON text of its own.
pub fn to_raw(raw: &str) -> serde_json::Result<Box<RawValue>> {
    let mut out = Vec::with_capacity(raw.len());
    write_to(raw, &[], &mut out)?;
    RawValue::from_string(String::from_utf8(out).expect("serde_json writes UTF-8"))
}

/// Whether `raw` can be written within the limits: the reason when it cannot.
pub fn check(raw: &str) -> Result<(), String> {
    write(raw, &[], std::io::sink()).map_err(|e| e.to_string())
}

impl Serialize for Canon<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Depth is counted across the readers of nested objects (a reader's own
        // limit counts only what it reads).
        let mut de = serde_json::Deserializer::from_str(self.raw);
        de.deserialize_any(Write {
            s,
            skip: self.skip,
            budget: self.budget,
        })
        .map_err(S::Error::custom)?
    }
}

/// Reads one value and writes it to `s`.
struct Write<'b, S> {
    s: S,
    skip: &'b [&'b str],
    budget: &'b Budget,
}

impl Budget {
    fn enter<E: serde::ser::Error>(&self) -> Result<(), E> {
        let d = self.depth.get() + 1;
        if d > MAX_DEPTH {
            return Err(self.exceed(TOO_DEEP));
        }
        self.depth.set(d);
        Ok(())
    }

    fn leave(&self) {
        self.depth.set(self.depth.get() - 1);
    }
}

impl<'de, S: Serializer> Visitor<'de> for Write<'_, S> {
    type Value = Result<S::Ok, S::Error>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(self.s.serialize_bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(self.s.serialize_i64(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(self.s.serialize_u64(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(self.s.serialize_f64(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.s.serialize_str(v))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(self.s.serialize_unit())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let budget = self.budget;
        if let Err(e) = budget.enter() {
            return Ok(Err(e));
        }
        let mut out = match self.s.serialize_seq(None) {
            Ok(out) => out,
            Err(e) => return Ok(Err(e)),
        };
        // Each element is written as it is read: an array holds nothing.
        while let Some(done) = seq.next_element_seed(Element {
            out: &mut out,
            budget,
        })? {
            if let Err(e) = done {
                return Ok(Err(e));
            }
        }
        budget.leave();
        Ok(out.end())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let budget = self.budget;
        if let Err(e) = budget.enter() {
            return Ok(Err(e));
        }
        let mut members: Vec<(Cow<'de, str>, &'de RawValue)> = Vec::new();
        let held = budget.members.get();
        while let Some(key) = map.next_key_seed(Key)? {
            let value: &'de RawValue = map.next_value()?;
            if held + members.len() >= MAX_MEMBERS {
                return Ok(Err(budget.exceed(TOO_WIDE)));
            }
            if !self.skip.contains(&&*key) {
                members.push((key, value));
            }
        }
        // Sorted by key; of equal keys the last one read wins (a stable sort keeps
        // them in the order read).
        members.sort_by(|a, b| a.0.cmp(&b.0));
        let mut kept = Vec::with_capacity(members.len());
        for (i, m) in members.iter().enumerate() {
            if members.get(i + 1).is_none_or(|next| next.0 != m.0) {
                kept.push(m);
            }
        }
        budget.members.set(held + members.len());
        let s = self.s;
        let result = (|| {
            let mut out = s.serialize_map(Some(kept.len()))?;
            for (key, value) in kept {
                if budget.verbatim && plain(value.get()) {
                    out.serialize_entry(key, value)?;
                    continue;
                }
                out.serialize_entry(
                    key,
                    &Canon {
                        raw: value.get(),
                        skip: &[],
                        budget,
                    },
                )?;
            }
            out.end()
        })();
        budget.members.set(held);
        budget.leave();
        Ok(result)
    }
}

/// An object key, borrowed from the text when it has no escapes.
pub(crate) struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
}

/// Reads one array element and writes it to the array being serialized.
struct Element<'o, 'b, T> {
    out: &'o mut T,
    budget: &'b Budget,
}

impl<'de, T: SerializeSeq> DeserializeSeed<'de> for Element<'_, '_, T> {
    type Value = Result<(), T::Error>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let reader = std::cell::RefCell::new(Some(d));
        let failed: std::cell::RefCell<Option<D::Error>> = std::cell::RefCell::new(None);
        let done = self.out.serialize_element(&Inner {
            reader: &reader,
            failed: &failed,
            budget: self.budget,
        });
        match failed.into_inner() {
            Some(e) => Err(e),
            None => Ok(done),
        }
    }
}

/// A reader positioned at one value, serialized by reading it.
struct Inner<'r, 'b, D, E> {
    reader: &'r std::cell::RefCell<Option<D>>,
    failed: &'r std::cell::RefCell<Option<E>>,
    budget: &'b Budget,
}

impl<'de, D: Deserializer<'de>> Serialize for Inner<'_, '_, D, D::Error> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let d = self
            .reader
            .borrow_mut()
            .take()
            .expect("an element is serialized once");
        match d.deserialize_any(Write {
            s,
            skip: &[],
            budget: self.budget,
        }) {
            Ok(done) => done,
            Err(e) => {
                let msg = e.to_string();
                *self.failed.borrow_mut() = Some(e);
                Err(S::Error::custom(msg))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// What a `Value` of the same text serializes to.
    fn via_value(raw: &str) -> String {
        serde_json::to_string(&serde_json::from_str::<Value>(raw).unwrap()).unwrap()
    }

    fn canon(raw: &str) -> String {
        let mut out = Vec::new();
        write(raw, &[], &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn writes_what_a_value_would() {
        for raw in [
            r#"{"b":1,"a":[1.5,"é",null,true,{"z":{},"y":[]}],"c":-3,"d":1e2,"e":18446744073709551616}"#,
            r#"{"k":1,"k":2,"a":{"x":[{"q":1,"p":2}],"x":0}}"#,
            r#" [ 1 , { "b" : "\u0041\n" , "a\"" : 0 } , [ ] , "" ] "#,
            r#"{"\u00e9":1,"e":2,"é":3}"#,
            "{\"s\" : \"plain é \u{7f}\" ,\"t\":true,\"n\" : null,\"f\":false,\"q\":\"a\\\"b\",\"u\":\"\\u00e9\",\"x\":-0,\"y\":1.50}",
            "0",
            "\"s\"",
        ] {
            assert_eq!(canon(raw), via_value(raw), "{raw}");
        }
    }

    #[test]
    fn leaves_out_the_skipped_top_level_keys_only() {
        let raw = r#"{"created_at":"t","a":{"created_at":"inner"},"b":1}"#;
        let mut out = Vec::new();
        write(raw, &["created_at"], &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":{"created_at":"inner"},"b":1}"#
        );
    }

    #[test]
    fn refuses_nesting_past_the_limit_and_accepts_it_at_the_limit() {
        let nest = |n: usize, open: &str, close: &str, leaf: &str| {
            format!("{}{leaf}{}", open.repeat(n), close.repeat(n))
        };
        assert!(check(&nest(MAX_DEPTH, "[", "]", "0")).is_ok());
        assert!(serde_json::from_str::<Value>(&nest(MAX_DEPTH, "[", "]", "0")).is_ok());
        assert!(serde_json::from_str::<Value>(&nest(MAX_DEPTH + 1, "[", "]", "0")).is_err());
        assert_eq!(
            check(&nest(MAX_DEPTH + 1, "[", "]", "0")).unwrap_err(),
            TOO_DEEP
        );
        assert!(check(&nest(MAX_DEPTH, "{\"a\":", "}", "0")).is_ok());
        let deep = check(&nest(MAX_DEPTH + 1, "{\"a\":", "}", "0")).unwrap_err();
        assert_eq!(deep, TOO_DEEP);
        let deep = check(&nest(100_000, "[{\"a\":", "}]", "0")).unwrap_err();
        assert_eq!(deep, TOO_DEEP);
        assert_eq!(MAX_DEPTH, 127, "TOO_DEEP names the limit");
        assert_eq!(MAX_MEMBERS, 1_048_576, "TOO_WIDE names the limit");
    }

    #[test]
    fn refuses_more_members_than_it_holds() {
        let mut raw = String::from("{");
        for i in 0..=MAX_MEMBERS {
            raw.push_str(&format!("\"{i}\":0,"));
        }
        raw.pop();
        raw.push('}');
        let e = check(&raw).unwrap_err();
        assert_eq!(e, TOO_WIDE);
        // Duplicates count as read: a flood of one key is refused the same way.
        let flood = format!("{{{}\"k\":1}}", "\"k\":0,".repeat(MAX_MEMBERS + 1));
        assert!(check(&flood).is_err());
    }

    /// What [`Fast`] writes of `raw`, or `None` where it leaves `raw` to serde_json.
    fn fast(raw: &str, skip: &[&str]) -> Option<String> {
        let mut out = b"before".to_vec();
        Fast {
            cur: crate::queue::scan::Cursor::new(raw),
            out: &mut out,
            scratch: &mut Scratch::default(),
        }
        .document(skip)?;
        assert_eq!(&out[..6], b"before", "what was in `out` is kept");
        Some(String::from_utf8(out[6..].to_vec()).unwrap())
    }

    /// What [`write_to`] and [`write`] write of `raw`, which must be the same.
    fn both(raw: &str, skip: &[&str]) -> Result<String, String> {
        let mut serde = Vec::new();
        let serde = write(raw, skip, &mut serde)
            .map(|()| String::from_utf8(serde).unwrap())
            .map_err(|e| e.to_string());
        let mut out = b",".to_vec();
        let to = write_to(raw, skip, &mut out)
            .map(|()| String::from_utf8(out[1..].to_vec()).unwrap())
            .map_err(|e| e.to_string());
        assert_eq!(to, serde, "{raw}");
        serde
    }

    #[test]
    fn tasks_as_producers_write_them_are_written_without_serde_and_alike() {
        for (raw, want) in [
            (
                r#"{"id": "task-1", "kind": "build", "payload": {"ref": "main", "n": 7, "tags": ["a", "b"], "x": null, "ok": true, "no": false}, "dedupe_key": "k", "created_at": "2026-02-15T19:32:00+00:00"}"#,
                r#"{"dedupe_key":"k","id":"task-1","kind":"build","payload":{"n":7,"no":false,"ok":true,"ref":"main","tags":["a","b"],"x":null}}"#,
            ),
            (
                "{\"id\":\"t\",\"payload\":{}}",
                "{\"id\":\"t\",\"payload\":{}}",
            ),
            (
                " {\r\n\t\"é\" : [ ] , \"e\" : [ 0 , -12 , 123456789012345678 , { } ] , \"\u{7f}\" : \"plain \u{2028} ☃\" } ",
                "{\"e\":[0,-12,123456789012345678,{}],\"\u{7f}\":\"plain \u{2028} ☃\",\"é\":[]}",
            ),
            // Skipped at the top only, and every key but it kept.
            (
                r#"{"created_at":1,"b":{"created_at":2},"a":[{"created_at":3}]}"#,
                r#"{"a":[{"created_at":3}],"b":{"created_at":2}}"#,
            ),
            (r#"{"created_at":1}"#, "{}"),
            ("[1,[2,[3]]]", "[1,[2,[3]]]"),
            ("\"s\"", "\"s\""),
            ("-7", "-7"),
        ] {
            assert_eq!(fast(raw, &["created_at"]).as_deref(), Some(want), "{raw}");
            assert_eq!(both(raw, &["created_at"]).as_deref(), Ok(want), "{raw}");
        }
    }

    #[test]
    fn what_only_serde_json_writes_alike_is_left_to_it() {
        let deep = |n: usize| format!("{}0{}", "[".repeat(n), "]".repeat(n));
        let wide = |n: usize| {
            let members: Vec<String> = (0..n).map(|i| format!("\"{i}\":{i}")).collect();
            format!("{{{}}}", members.join(","))
        };
        for raw in [
            // Escapes, in keys and in strings.
            r#"{"a\u0062":1}"#.to_string(),
            r#"{"a":"\u00e9"}"#.to_string(),
            r#"["\n"]"#.to_string(),
            // Numbers that serde_json writes anew.
            "[1.5]".into(),
            "[1e2]".into(),
            "[1E2]".into(),
            "[-0]".into(),
            "[1234567890123456789]".into(),
            "[18446744073709551616]".into(),
            "[-9223372036854775809]".into(),
            // A repeated key: the last one wins.
            r#"{"k":1,"k":2}"#.into(),
            r#"{"a":{"k":[1],"k":[2]}}"#.into(),
            // Past the nesting and the members the fast writer holds.
            deep(FAST_DEPTH + 1),
            wide(FAST_MEMBERS + 1),
            // Not JSON: serde_json's refusal, in its words.
            "".into(),
            "{".into(),
            "[1,]".into(),
            r#"{"a":1,}"#.into(),
            r#"{"a" 1}"#.into(),
            "[01]".into(),
            "[-]".into(),
            "[1x]".into(),
            "[tru]".into(),
            "[1] 2".into(),
            "[\"a\u{1}\"]".into(),
            "{\"a\u{1}\":0}".into(),
            "[\"open".into(),
        ] {
            assert_eq!(fast(&raw, &[]), None, "{raw}");
            both(&raw, &[]).ok();
        }
        // At the limits it holds, the fast writer writes.
        assert!(fast(&deep(FAST_DEPTH), &[]).is_some());
        assert!(fast(&wide(FAST_MEMBERS), &[]).is_some());
        assert_eq!(both(&deep(FAST_DEPTH), &[]), Ok(deep(FAST_DEPTH)));
        // Escapes stay serde_json's to write (`\u0062` is `b`: the last `ab` wins).
        assert_eq!(
            both(r#"{"a\u0062":1,"ab":0}"#, &[]),
            Ok(r#"{"ab":0}"#.into())
        );
        assert_eq!(both("[1.50,1e2,-0]", &[]), Ok("[1.5,100.0,-0.0]".into()));
    }

    /// JSON whose every value the fast writer takes: keys and strings without
    /// escapes, integers that fit, members in any order, white space anywhere.
    fn plain_strategy() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just("null".to_string()),
            any::<bool>().prop_map(|b| b.to_string()),
            (-999_999_999_999_999_999i64..=999_999_999_999_999_999).prop_map(|n| n.to_string()),
            "[a-c\u{e9} ]{0,3}".prop_map(|s| format!("\"{s}\"")),
        ];
        leaf.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5)
                    .prop_map(|v| format!("[ {}]", v.join(" ,\n"))),
                proptest::collection::btree_map("[a-c\u{e9}]{0,2}|created_at", inner, 0..5)
                    .prop_map(|m| {
                        let members: Vec<String> = m
                            .into_iter()
                            .rev()
                            .map(|(k, v)| format!("\"{k}\"\t:{v}"))
                            .collect();
                        format!("{{ {} }}", members.join(","))
                    }),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn any_json_is_written_as_a_value_would_be(raw in crate::json_text::tests::json_strategy()) {
            proptest::prop_assert_eq!(canon(&raw), via_value(&raw));
            proptest::prop_assert_eq!(both(&raw, &[]), Ok(via_value(&raw)));
        }

        #[test]
        fn plain_json_is_written_fast_as_serde_json_writes_it(raw in plain_strategy()) {
            let written = fast(&raw, &["created_at"]);
            proptest::prop_assert!(written.is_some(), "{}", raw);
            proptest::prop_assert_eq!(written.map(Ok), Some(both(&raw, &["created_at"])));
        }
    }
}
