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
                proptest::collection::vec(("[a-c]{0,2}", inner), 0..5).prop_map(|v| {
                    let members: Vec<String> = v
                        .into_iter()
                        .map(|(k, v)| format!("\"{k}\" :{v}"))
                        .collect();
                    format!("{{ {} }}", members.join(","))
                }),
            ]
        })
    }

    proptest::proptest! {
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
