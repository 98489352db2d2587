//! An event line read in memory bounded by its size, not by its shape.
//!
//! A line of the feed may be as long as the JSON Lines cap (64 MiB). Parsed into a
//! `serde_json::Value` whole, a line of `0,`s costs 32 bytes for every two of its
//! bytes. [`read`] keeps only the members [`super::event`] reads (the last of
//! duplicate keys wins, as in an object read whole), skips every other member
//! unread, and reads those that can be long item by item: `evidence` keeps its
//! strings, `hashes` its string values, and any other kept member that is a list or
//! an object (none of them is read as one) stands as `null`, so its key still
//! counts as present. What [`super::event`] makes of the result is what it makes of
//! the whole line.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::json_budget::StringOrSkip;
use crate::queue::canon::Key;

/// The members an event is read from.
const KEPT: [&str; 16] = [
    "action",
    "category",
    "emit_mode",
    "evidence",
    "hashes",
    "phase",
    "phase_id",
    "run_id",
    "status",
    "task_id",
    "timestamp",
    "tool",
    "ts",
    "ts_epoch_ms",
    "ts_utc",
    "verifier_mode",
];

/// The most strings kept from one `evidence` list, and values from one `hashes`
/// object. Past it the rest is read and not kept, and the event says its evidence
/// was cut: its phase is never proven on part of it (`activity.evidence_omitted`),
/// as a path left out could hide a missing artifact.
pub const MAX_ITEMS: usize = 65_536;

/// The most bytes of text kept from one `evidence` list, and from one `hashes`
/// object (keys and values), cut as past [`MAX_ITEMS`]: a thousand paths of 4 KiB,
/// what a phase's chain checks at most ([`super::chain::MAX_CHAIN_EVIDENCE`]).
/// Without it a line within the line cap makes every copy of an event's evidence
/// (the feed's, the chain's, drift's latest) 64 MiB.
pub const MAX_TEXT_BYTES: usize = 4 << 20;

/// The members of an event line that [`super::event`] reads, and whether its
/// `evidence` or `hashes` were cut at [`MAX_ITEMS`] or [`MAX_TEXT_BYTES`]; or why the
/// line is a bad one (the message a bad line carries).
pub fn read(raw: &[u8]) -> Result<(Map<String, Value>, bool), String> {
    let first = raw.iter().find(|b| !b.is_ascii_whitespace());
    let kept = match first {
        Some(b'{') => serde_json::from_slice::<Kept>(raw),
        _ => {
            return Err(match serde_json::from_slice::<IgnoredAny>(raw) {
                Ok(_) => "not a JSON object".into(),
                Err(e) => format!("not JSON (column {})", e.column()),
            });
        }
    };
    let kept = kept.map_err(|e| format!("not JSON (column {})", e.column()))?;
    let mut o = Map::new();
    let mut cut = false;
    for (name, raw) in KEPT.iter().zip(kept.0) {
        let Some(raw) = raw else { continue };
        let value = match *name {
            "evidence" => evidence(raw.get(), &mut cut)?,
            "hashes" => hashes(raw.get(), &mut cut)?,
            _ => scalar(raw.get()),
        };
        o.insert(name.to_string(), value);
    }
    Ok((o, cut))
}

/// A member read as itself when it is a string, number, boolean or null; a list or
/// an object stands as `null` (present, and read as nothing).
fn scalar(raw: &str) -> Value {
    match raw.as_bytes().first() {
        Some(b'[' | b'{') => Value::Null,
        _ => serde_json::from_str(raw).unwrap_or(Value::Null),
    }
}

/// `evidence`: a list keeps its strings; an object keeps its `file`, `path` and
/// `report`; anything else is read as itself. `cut` is set when the strings pass
/// what one event keeps.
fn evidence(raw: &str, cut: &mut bool) -> Result<Value, String> {
    match raw.as_bytes().first() {
        Some(b'[') => {
            let strings = serde_json::Deserializer::from_str(raw)
                .deserialize_seq(Strings {
                    room: Room::new(cut),
                })
                .map_err(|e| e.to_string())?;
            Ok(Value::Array(
                strings.into_iter().map(Value::String).collect(),
            ))
        }
        Some(b'{') => {
            let pairs = serde_json::Deserializer::from_str(raw)
                .deserialize_map(StringMembers {
                    only: Some(&["file", "path", "report"]),
                    room: Room::new(cut),
                })
                .map_err(|e| e.to_string())?;
            Ok(Value::Object(pairs))
        }
        _ => Ok(scalar(raw)),
    }
}

/// `hashes`: an object keeps its string values; anything else stands as `null`.
/// `cut` is set when they pass what one event keeps.
fn hashes(raw: &str, cut: &mut bool) -> Result<Value, String> {
    match raw.as_bytes().first() {
        Some(b'{') => serde_json::Deserializer::from_str(raw)
            .deserialize_map(StringMembers {
                only: None,
                room: Room::new(cut),
            })
            .map(Value::Object)
            .map_err(|e| e.to_string()),
        _ => Ok(Value::Null),
    }
}

/// What is left of one member's [`MAX_ITEMS`] and [`MAX_TEXT_BYTES`]; once an item
/// does not fit, none after it is kept and the event's `cut` is set.
struct Room<'c> {
    items: usize,
    bytes: usize,
    full: bool,
    cut: &'c mut bool,
}

impl<'c> Room<'c> {
    fn new(cut: &'c mut bool) -> Room<'c> {
        Room {
            items: MAX_ITEMS,
            bytes: MAX_TEXT_BYTES,
            full: false,
            cut,
        }
    }

    /// Takes one item of `len` bytes, if it fits and none was left out before it.
    fn take(&mut self, len: usize) -> bool {
        if !self.full && self.items > 0 && len <= self.bytes {
            self.items -= 1;
            self.bytes -= len;
            return true;
        }
        self.full = true;
        *self.cut = true;
        false
    }
}

/// The kept members of a line, each as its raw JSON (in [`KEPT`] order).
struct Kept<'a>([Option<&'a RawValue>; KEPT.len()]);

impl<'de> serde::Deserialize<'de> for Kept<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(KeptVisitor)
    }
}

struct KeptVisitor;

impl<'de> Visitor<'de> for KeptVisitor {
    type Value = Kept<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut kept = Kept([None; KEPT.len()]);
        while let Some(key) = map.next_key_seed(Key)? {
            match KEPT.iter().position(|k| *k == key) {
                Some(i) => kept.0[i] = Some(map.next_value()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(kept)
    }
}

/// The strings of a list, in order, as many as fit in its room.
struct Strings<'c> {
    room: Room<'c>,
}

impl<'de> Visitor<'de> for Strings<'_> {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element_seed(StringOrSkip)? {
            if let Some(s) = item.as_deref().map(super::bounded)
                && self.room.take(s.len())
            {
                out.push(s);
            }
        }
        Ok(out)
    }
}

/// The string-valued members of an object (of `only` when given), as many as fit
/// in its room; the last of duplicate keys wins.
struct StringMembers<'c> {
    only: Option<&'static [&'static str]>,
    room: Room<'c>,
}

impl<'de> Visitor<'de> for StringMembers<'_> {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(Key)? {
            if self.only.is_some_and(|only| !only.contains(&&*key)) {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            match map
                .next_value_seed(StringOrSkip)?
                .as_deref()
                .map(super::bounded)
            {
                // A key repeated counts again: what is counted bounds what is
                // held.
                Some(v) => {
                    if self.room.take(key.len() + v.len()) {
                        out.insert(Cow::into_owned(key), Value::String(v));
                    }
                }
                // A later value that is not a string replaces an earlier one.
                None => {
                    out.remove(&*key);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `event` reads of a line parsed whole.
    fn whole(raw: &str) -> super::super::Event {
        let Value::Object(o) = serde_json::from_str(raw).unwrap() else {
            panic!("an object")
        };
        super::super::event(7, &o)
    }

    fn bounded(raw: &str) -> super::super::Event {
        super::super::event(7, &read(raw.as_bytes()).unwrap().0)
    }

    #[test]
    fn an_event_reads_the_same_from_its_kept_members() {
        for raw in [
            r#"{"action":"STARTED","phase_id":"P1","ts":"2026-01-02T03:04:05Z","evidence":["a",1,{"x":[1]},"b"],"hashes":{"a":"h1","b":2,"a":"h2"},"tool":"t","run_id":"r","emit_mode":"runtime_auto","verifier_mode":"v","ts_epoch_ms":5,"ts_utc":"u","extra":{"deep":[[[1]]]}}"#,
            r#"{"category":"heartbeat","phase":7,"task_id":" T ","evidence":{"file":"f","path":["p"],"report":"r","other":"o"},"status":"ok","timestamp":1700000000}"#,
            r#"{"phase_id":"","phase":"Q","tool":["not","text"],"run_id":{"n":1},"evidence":"one","hashes":["x"],"ts_epoch_ms":"12"}"#,
            r#"{"action":"a","action":"completed","evidence":["x"],"evidence":"y","hashes":{"k":"v"},"hashes":{"k":1}}"#,
            r#"{"\u0061ction":"verified","ph\u0061se_id":"P"}"#,
            r#"{}"#,
        ] {
            assert_eq!(bounded(raw), whole(raw), "{raw}");
            let Value::Object(o) = serde_json::from_str(raw).unwrap() else {
                unreachable!()
            };
            let (kept, cut) = read(raw.as_bytes()).unwrap();
            assert!(!cut, "{raw}");
            for k in super::super::TAXONOMY.iter().chain(&["phase"]) {
                assert_eq!(kept.contains_key(*k), o.contains_key(*k), "{k} in {raw}");
            }
        }
    }

    #[test]
    fn every_member_an_event_reads_is_kept() {
        // The keys `event` looks up, found in its source: each must be kept.
        for k in super::super::TAXONOMY {
            assert!(KEPT.contains(&k), "{k}");
        }
        let src = include_str!("mod.rs");
        let body = &src[src.find("pub fn event(").unwrap()..];
        let body = &body[..body.find("\n}\n").unwrap()];
        for key in body.split('"').skip(1).step_by(2) {
            if key.chars().all(|c| c.is_ascii_lowercase() || c == '_') && !key.is_empty() {
                assert!(
                    KEPT.contains(&key) || ["file", "path", "report", "heartbeat"].contains(&key),
                    "`event` reads {key:?}, which `read` does not keep"
                );
            }
        }
    }

    #[test]
    fn bad_lines_say_what_they_are() {
        assert_eq!(read(b"[1]").unwrap_err(), "not a JSON object");
        assert_eq!(read(b"\"s\"").unwrap_err(), "not a JSON object");
        assert_eq!(read(b"{\"a\":").unwrap_err(), "not JSON (column 5)");
        assert_eq!(read(b"nope").unwrap_err(), "not JSON (column 2)");
        assert_eq!(
            serde_json::from_slice::<Value>(b"nope")
                .unwrap_err()
                .column(),
            2
        );
    }

    #[test]
    fn lists_past_the_caps_are_cut_and_the_event_says_so() {
        let read = |raw: &str| {
            let (o, cut) = read(raw.as_bytes()).unwrap();
            (super::super::event(7, &o), cut)
        };
        let list = |n: usize| format!("[{}]", vec!["\"p\""; n].join(","));
        let (e, cut) = read(&format!(r#"{{"evidence":{}}}"#, list(MAX_ITEMS)));
        assert_eq!((e.evidence.len(), cut), (MAX_ITEMS, false));
        let (e, cut) = read(&format!(
            r#"{{"evidence":{},"hashes":{{"a":"h"}}}}"#,
            list(MAX_ITEMS + 1)
        ));
        assert_eq!((e.evidence.len(), cut), (MAX_ITEMS, true));
        // Only the member over its room is cut.
        assert_eq!(e.hashes, [("a".to_string(), "h".to_string())]);
        // Numbers are skipped, not counted.
        let zeros = format!(r#"{{"evidence":[{}"p"]}}"#, "0,".repeat(MAX_ITEMS + 1));
        assert_eq!(read(&zeros), (bounded(&zeros), false));
        assert_eq!(bounded(&zeros).evidence, ["p"]);
        let map: Vec<String> = (0..=MAX_ITEMS).map(|i| format!("\"k{i}\":\"v\"")).collect();
        let (e, cut) = read(&format!(r#"{{"hashes":{{{}}}}}"#, map.join(",")));
        assert_eq!((e.hashes.len(), cut), (MAX_ITEMS, true));
        // Text: whole strings up to 4 MiB, none after the first that does not fit.
        let long = "x".repeat(super::super::MAX_FIELD_CHARS);
        let n = MAX_TEXT_BYTES / long.len();
        let items: Vec<String> = (0..n + 2)
            .map(|i| {
                if i == n + 1 {
                    "\"p\"".into()
                } else {
                    format!("\"{long}\"")
                }
            })
            .collect();
        let (e, cut) = read(&format!(r#"{{"evidence":[{}]}}"#, items.join(",")));
        assert_eq!((e.evidence.len(), cut), (n, true));
        let (e, cut) = read(&format!(r#"{{"hashes":{{"{long}":"{long}"}}}}"#));
        assert_eq!((e.hashes.len(), cut), (1, false));
        // A key's whole length counts, not only what the event keeps of it.
        let key = "k".repeat(MAX_TEXT_BYTES);
        let (e, cut) = read(&format!(r#"{{"hashes":{{"{key}":"h"}}}}"#));
        assert_eq!((e.hashes.len(), cut), (0, true));
    }
}
