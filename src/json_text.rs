//! JSON values from inputs that lith keeps only to show them (a run's
//! `run_status.json`, the gating inputs of its promotion), held as their compact
//! text: one allocation whatever the value, where a `serde_json::Value` costs 32
//! bytes a value and a map node for every object. A value of a million numbers is
//! 2 MB of text, not 32 MB of values, in the build and in a report read back.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A JSON value as compact text (serde_json's compact form: no whitespace between
/// tokens, numbers as serde_json writes them). Written as the value it is, so a
/// pretty printer indents it like any other value; read back from any layout and
/// compacted. Two are equal when their texts are.
#[derive(Debug, Clone)]
pub struct JsonText(Box<RawValue>);

impl JsonText {
    /// `null`.
    pub fn null() -> JsonText {
        JsonText(RawValue::from_string("null".into()).expect("null is JSON"))
    }

    /// The compact text of `v`.
    pub fn of(v: &serde_json::Value) -> JsonText {
        JsonText(serde_json::value::to_raw_value(v).expect("a JSON value always serializes"))
    }

    /// The compact text of a value as found in a document, in whatever layout.
    pub fn compact(raw: &RawValue) -> serde_json::Result<JsonText> {
        let text = raw.get();
        if !text
            .bytes()
            .any(|b| matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
        {
            return Ok(JsonText(raw.to_owned()));
        }
        let compact = serde_json::to_string(&Transcoded(raw))?;
        RawValue::from_string(compact).map(JsonText)
    }

    /// The text of the JSON document `bytes` as [`JsonText::of`] gives it for the
    /// `Value` [`crate::json_budget::from_slice`] reads from them (each object's
    /// members sorted by key, the last of a repeated key kept, numbers and strings
    /// as serde_json writes them), read under the same budget of values and
    /// refused alike, without building the value: memory follows the text (and the
    /// members of an object written out of order), not the number of values.
    pub fn read(bytes: &[u8]) -> serde_json::Result<JsonText> {
        Written::of(bytes).and_then(Written::finish)
    }

    pub fn raw(&self) -> &RawValue {
        &self.0
    }

    /// The compact text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    pub fn is_null(&self) -> bool {
        self.get() == "null"
    }

    /// The kind of the value, as messages name it ([`kind_of`]).
    pub fn kind(&self) -> &'static str {
        kind_of(&self.0)
    }
}

/// The string `raw` holds, if it is a JSON string.
pub fn string_of(raw: &RawValue) -> Option<String> {
    if raw.get().starts_with('"') {
        serde_json::from_str(raw.get()).ok()
    } else {
        None
    }
}

/// The kind of the JSON value `raw` holds, from its first character, as messages
/// name it (`an object`, `a list`, `a string`, `a boolean`, `null`, `a number`;
/// [`crate::bundle::index::json_kind`] of the value).
pub fn kind_of(raw: &RawValue) -> &'static str {
    match raw.get().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "a list",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// Meets each member of the JSON object `obj` in the order written, its value
/// borrowed from the text (nothing is built but the keys): an error when `obj` is
/// not an object.
pub fn each_member<'a>(
    obj: &'a RawValue,
    mut meet: impl FnMut(std::borrow::Cow<'a, str>, &'a RawValue),
) -> serde_json::Result<()> {
    struct Members<'m, F>(&'m mut F);
    impl<'de, F: FnMut(std::borrow::Cow<'de, str>, &'de RawValue)> serde::de::Visitor<'de>
        for Members<'_, F>
    {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                let value: &'de RawValue = map.next_value()?;
                (self.0)(key, value);
            }
            Ok(())
        }
    }
    let mut de = serde_json::Deserializer::from_str(obj.get());
    serde::Deserializer::deserialize_map(&mut de, Members(&mut meet))
}

/// The member `key` of the JSON object `obj` (the last, if written twice), read
/// without building the others.
pub fn member<'a>(obj: &'a RawValue, key: &str) -> Option<&'a RawValue> {
    let mut found = None;
    each_member(obj, |k, v| {
        if k == key {
            found = Some(v);
        }
    })
    .ok()?;
    found
}

impl PartialEq for JsonText {
    fn eq(&self, other: &JsonText) -> bool {
        self.get() == other.get()
    }
}

impl Serialize for JsonText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Transcoded(&self.0).serialize(s)
    }
}

impl<'de> Deserialize<'de> for JsonText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<JsonText, D::Error> {
        let raw = <Box<RawValue>>::deserialize(d)?;
        JsonText::compact(&raw).map_err(serde::de::Error::custom)
    }
}

/// A value's text written as the value it is, token by token, through whatever
/// serializer writes it (compact or pretty), never held as a `Value`: memory
/// follows its depth, not its size.
pub struct Transcoded<'a>(pub &'a RawValue);

impl Serialize for Transcoded<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut de = serde_json::Deserializer::from_str(self.0.get());
        serde_transcode::transcode(&mut de, s)
    }
}

/// A document read by [`JsonText::read`], its objects written out of order not yet
/// put in order: what is left once the document itself may be let go.
pub struct Written {
    text: Vec<u8>,
    moves: Vec<Reorder>,
}

impl Written {
    /// Reads the JSON document `bytes` (see [`JsonText::read`]).
    pub fn of(bytes: &[u8]) -> serde_json::Result<Written> {
        use serde::de::DeserializeSeed;
        let left = std::cell::Cell::new(crate::json_budget::MAX_VALUES);
        // Its compact text is seldom longer than the document (pages not written to
        // are not memory).
        let mut text = Vec::with_capacity(bytes.len() + 16);
        let mut moves = Vec::new();
        let mut de = serde_json::Deserializer::from_slice(bytes);
        Canonical {
            out: &mut text,
            left: &left,
            moves: &mut moves,
        }
        .deserialize(&mut de)?;
        de.end()?;
        Ok(Written { text, moves })
    }

    /// The document's text, each object's members in order: each byte is copied
    /// once, whatever the depth of the objects put in order.
    pub fn finish(self) -> serde_json::Result<JsonText> {
        let Written {
            mut text,
            mut moves,
        } = self;
        if !moves.is_empty() {
            moves.sort_unstable_by_key(|m| m.start);
            let mut ordered = Vec::with_capacity(text.len());
            put_in_order(&text, &moves, 0..text.len(), &mut ordered);
            text = ordered;
        }
        let text = String::from_utf8(text).map_err(serde::de::Error::custom)?;
        RawValue::from_string(text).map(JsonText)
    }
}

/// Writes the value it reads into `out` in [`JsonText::read`]'s form, but for the
/// members of objects written out of order, which stay where they were written:
/// each such object is noted in `moves`, to be put in order once the whole text is
/// written ([`put_in_order`]). Counts each value against `left`.
struct Canonical<'o> {
    out: &'o mut Vec<u8>,
    left: &'o std::cell::Cell<usize>,
    moves: &'o mut Vec<Reorder>,
}

/// An object whose members were written out of order: between `start` and `end`
/// (its braces excluded), the members to keep, in order, each from where its key
/// starts to where its value ends.
struct Reorder {
    start: u32,
    end: u32,
    members: Box<[(u32, u32)]>,
}

/// Copies `text[range]` to `to`, each object of `moves` that begins after its start
/// (`moves` sorted by where they begin; two either nest or lie apart) with its
/// members in order.
fn put_in_order(text: &[u8], moves: &[Reorder], range: std::ops::Range<usize>, to: &mut Vec<u8>) {
    // A member begins where the object it is in begins; what moves inside it
    // begins after its key.
    let mut at = range.start;
    let mut next = moves.partition_point(|m| m.start as usize <= range.start);
    while let Some(m) = moves.get(next).filter(|m| (m.start as usize) < range.end) {
        to.extend_from_slice(&text[at..m.start as usize]);
        for (n, &(from, until)) in m.members.iter().enumerate() {
            if n > 0 {
                to.push(b',');
            }
            put_in_order(text, moves, from as usize..until as usize, to);
        }
        at = m.end as usize;
        next = moves.partition_point(|o| o.start < m.end);
    }
    to.extend_from_slice(&text[at..range.end]);
}

impl Canonical<'_> {
    fn take<E: serde::de::Error>(&self) -> Result<(), E> {
        crate::json_budget::take(self.left, crate::json_budget::MAX_VALUES)
    }

    fn write<T: Serialize + ?Sized, E: serde::de::Error>(self, v: &T) -> Result<(), E> {
        self.take()?;
        serde_json::to_writer(self.out, v).map_err(E::custom)
    }

    fn nested(&mut self) -> Canonical<'_> {
        Canonical {
            out: self.out,
            left: self.left,
            moves: self.moves,
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Canonical<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Canonical<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<(), E> {
        self.write(&v)
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        self.write(&v)
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        self.write(&v)
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        // As a `Value` holds it: a number, or null where it cannot be one.
        self.write(&serde_json::Number::from_f64(v))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.write(v)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.write(&())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.take()?;
        self.out.push(b'[');
        let mut first = true;
        loop {
            let mark = self.out.len();
            if !first {
                self.out.push(b',');
            }
            if seq.next_element_seed(self.nested())?.is_none() {
                self.out.truncate(mark);
                break;
            }
            if first {
                // Refused where a `Value` is (see `json_budget`).
                crate::json_budget::take_first_element(self.left)?;
            }
            first = false;
        }
        self.out.push(b']');
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        use std::borrow::Cow;
        self.take()?;
        self.out.push(b'{');
        let body = self.out.len();
        // Each member as written: where its key starts, where its value starts and
        // where it ends (a document lith reads is well under 4 GiB). Members written
        // in order (each key above the one before) are left where they are;
        // otherwise they are put in order at the end.
        let mut members: Vec<(u32, u32, u32)> = Vec::new();
        let at = |n: usize| u32::try_from(n).map_err(serde::de::Error::custom);
        let mut in_order = true;
        let mut last_key: Option<Cow<'de, str>> = None;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if members.is_empty() {
                crate::json_budget::take_first_member(self.left)?;
            }
            if !members.is_empty() {
                self.out.push(b',');
            }
            let start = at(self.out.len())?;
            serde_json::to_writer(&mut *self.out, &*key).map_err(serde::de::Error::custom)?;
            self.out.push(b':');
            let value = at(self.out.len())?;
            map.next_value_seed(self.nested())?;
            members.push((start, value, at(self.out.len())?));
            if in_order && last_key.as_ref().is_some_and(|last| *key <= **last) {
                in_order = false;
            }
            last_key = Some(key);
        }
        if !in_order {
            let text = &self.out[..];
            let key_of = |&(start, value, _): &(u32, u32, u32)| -> Cow<'_, str> {
                let key = &text[start as usize..value as usize - 1];
                serde_json::from_slice::<&str>(key)
                    .map(Cow::Borrowed)
                    .or_else(|_| serde_json::from_slice::<String>(key).map(Cow::Owned))
                    .expect("a key lith wrote reads back")
            };
            let mut order: Vec<(Cow<'_, str>, usize)> = members
                .iter()
                .enumerate()
                .map(|(i, m)| (key_of(m), i))
                .collect();
            // By key, and among members of one key in the order written: the last
            // is kept.
            order.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
            let kept = order
                .iter()
                .enumerate()
                .filter(|(n, (key, _))| order.get(n + 1).is_none_or(|next| next.0 != *key))
                .map(|(_, &(_, i))| (members[i].0, members[i].2))
                .collect();
            let end = at(self.out.len())?;
            self.moves.push(Reorder {
                start: at(body)?,
                end,
                members: kept,
            });
        }
        self.out.push(b'}');
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// The text is what serde_json writes for the value, compact or pretty, and
    /// reads back to the same text from any layout.
    #[test]
    fn a_value_is_written_as_a_value_and_read_back_compact() {
        let v = json!({"b": [1, 2.5, -3, 1e300, "x\ny"], "a": {"sandboxed": false}, "c": null});
        let t = JsonText::of(&v);
        assert_eq!(t.get(), serde_json::to_string(&v).unwrap());
        assert_eq!(
            serde_json::to_string_pretty(&t).unwrap(),
            serde_json::to_string_pretty(&v).unwrap()
        );
        let pretty = serde_json::to_string_pretty(&v).unwrap();
        let back: JsonText = serde_json::from_str(&pretty).unwrap();
        assert_eq!(back, t);
        // Numbers as serde_json writes them, as a `Value` read from the same text.
        let found: JsonText = serde_json::from_str("[ 1.50, 1E2, -0 ]").unwrap();
        let as_value: serde_json::Value = serde_json::from_str("[ 1.50, 1E2, -0 ]").unwrap();
        assert_eq!(found.get(), serde_json::to_string(&as_value).unwrap());
        // Spaces inside a string are kept as they are.
        let s: JsonText = serde_json::from_str(r#""a b""#).unwrap();
        assert_eq!(s.get(), r#""a b""#);
        assert_eq!(string_of(s.raw()).as_deref(), Some("a b"));
        assert_eq!(s.kind(), "a string");
        assert!(JsonText::null().is_null());
        assert_eq!(JsonText::of(&json!(true)).kind(), "a boolean");
        assert_eq!(JsonText::of(&json!(-1)).kind(), "a number");
        assert_eq!(JsonText::of(&json!([])).kind(), "a list");
        assert_eq!(JsonText::of(&json!({})).kind(), "an object");
        assert_eq!(string_of(JsonText::of(&json!([])).raw()), None);
    }

    /// JSON documents of every kind of value, nested, with spaces around tokens,
    /// exponents and repeated keys.
    pub(crate) fn json_strategy() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just("null".to_string()),
            any::<bool>().prop_map(|b| b.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| format!("{f:e}")),
            "[a-c\u{e9}\"\\\\]{0,3}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        ];
        leaf.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5)
                    .prop_map(|v| format!("[{}]", v.join(" , "))),
                // Keys that sort differently escaped and unescaped (`"`, `\`, a
                // line break, a wide character).
                proptest::collection::vec(("[a-c\u{e9}\"\\\\\n]{0,2}", inner), 0..5).prop_map(
                    |v| {
                        let members: Vec<String> = v
                            .into_iter()
                            .map(|(k, v)| format!("{} :{v}", serde_json::to_string(&k).unwrap()))
                            .collect();
                        format!("{{ {} }}", members.join(","))
                    }
                ),
            ]
        })
    }

    /// A document read as its text is the text of the value read from it: members
    /// sorted at every depth, the last of a repeated key kept, keys with escapes
    /// sorted by what they say; and a document over the budget of values is
    /// refused at the same place, in the same words.
    #[test]
    fn a_document_read_as_text_is_the_text_of_its_value() {
        let as_value =
            |raw: &str| JsonText::of(&crate::json_budget::from_slice(raw.as_bytes()).unwrap());
        for raw in [
            r#"{"b":1,"a":{"z":[{"y":1,"x":2}],"a":null},"b":2}"#,
            r#"{"\u0062":1,"a\"":2,"a":3,"\n":4,"é":5,"e":6}"#,
            r#"[ {"b": 1.50, "a": 1E2}, -0, 12345678901234567890, "\u00e9" ]"#,
            r#"{"a":1,"a":{"c":1,"b":2},"a":[3]}"#,
            r#"{}"#,
            r#"[]"#,
            r#""x""#,
        ] {
            let read = JsonText::read(raw.as_bytes()).unwrap();
            assert_eq!(read, as_value(raw), "{raw}");
        }
        assert_eq!(
            JsonText::read(br#"{"b":1,"a":{"z":2,"y":1},"b":{"d":0,"c":3}}"#)
                .unwrap()
                .get(),
            r#"{"a":{"y":1,"z":2},"b":{"c":3,"d":0}}"#
        );
        // Objects out of order inside objects out of order, 40 deep (120 levels
        // with the lists between), and a repeated key at each.
        let deep = format!(
            "{}\"x\"{}",
            "{\"b\":[{\"d\":1,\"c\":".repeat(40),
            "}],\"a\":0,\"b\":2}".repeat(40)
        );
        assert_eq!(JsonText::read(deep.as_bytes()).unwrap(), as_value(&deep));
        let max = crate::json_budget::MAX_VALUES;
        let over = format!("[{}0]", "0,".repeat(max));
        let want = crate::json_budget::from_slice(over.as_bytes()).unwrap_err();
        let got = JsonText::read(over.as_bytes()).unwrap_err();
        assert_eq!(got.to_string(), want.to_string());
        assert!(
            got.to_string().contains("more than 1048576 JSON values"),
            "{got}"
        );
        let at = format!("[{}0]", "0,".repeat(max - 5));
        assert_eq!(JsonText::read(at.as_bytes()).unwrap(), as_value(&at));
        for bad in ["{\"a\":}", "[1,]", "{\"a\":1} x", "\"\\q\"", "{1:2}"] {
            let want = crate::json_budget::from_slice(bad.as_bytes()).unwrap_err();
            let got = JsonText::read(bad.as_bytes()).unwrap_err();
            assert_eq!(got.to_string(), want.to_string(), "{bad}");
        }
    }

    proptest::proptest! {
        /// Any document, in any layout and with repeated keys, read as its text is
        /// the text of the value read from it.
        #[test]
        fn any_document_read_as_text_is_the_text_of_its_value(raw in json_strategy()) {
            let v = crate::json_budget::from_slice(raw.as_bytes()).unwrap();
            proptest::prop_assert_eq!(JsonText::read(raw.as_bytes()).unwrap(), JsonText::of(&v));
        }

        /// A value's text is what serde_json writes for it, compact or pretty, and a
        /// report written pretty reads back to the same text.
        #[test]
        fn any_value_is_written_as_itself_and_read_back_to_its_text(raw in json_strategy()) {
            let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
            let t = JsonText::of(&v);
            proptest::prop_assert_eq!(t.get(), serde_json::to_string(&v).unwrap());
            let pretty = serde_json::to_string_pretty(&v).unwrap();
            proptest::prop_assert_eq!(serde_json::to_string_pretty(&t).unwrap(), pretty.clone());
            let back: JsonText = serde_json::from_str(&pretty).unwrap();
            proptest::prop_assert_eq!(back, t);
            // Read from its own layout, whatever it is, the text is compact and
            // means the same value.
            let found: JsonText = serde_json::from_str(&raw).unwrap();
            let again: serde_json::Value = serde_json::from_str(found.get()).unwrap();
            proptest::prop_assert_eq!(again, v);
            proptest::prop_assert!(!found.get().contains(" :"), "{}", found.get());
        }
    }
}
