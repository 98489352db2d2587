//! `run_status.json` and `artifact_index.json` (SPEC §3.2–3.3): typed views over
//! untrusted JSON. A syntax error or a shape that cannot be interpreted is an error
//! that names the file, line and column; unknown fields are kept.

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::fsutil::{JsonReadError, MAX_JSON_BYTES, strip_position};
use crate::json_text::JsonText;

/// Indexes up to this size are read whole and parsed from memory; larger ones are
/// parsed as they are read, in memory proportional to their entries.
const WHOLE_INDEX_BYTES: u64 = 1 << 20;

/// The states a run may be in.
pub const STATES: [&str; 3] = ["in_progress", "complete", "failed"];
str_enum! {
    /// The statuses an index may carry; an index with any other is refused when
    /// it is read (`index_invalid`), so no other value reaches a verdict.
    pub enum IndexStatus {
        Ok = "ok",
        Partial = "partial",
        Failed = "failed",
    }
}

/// `run_status.json`, with every field kept for display. In a report it is written
/// as the file's own object (its fields sorted by key): `run_id` and `state` are
/// read from it again, never written beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStatus {
    pub run_id: Option<String>,
    pub state: Option<String>,
    /// All fields as written (sorted by key), shown on the run page: kept as compact
    /// JSON text (one allocation, not a map per run), and read from it field by
    /// field when shown.
    pub fields: JsonText,
}

impl Serialize for RunStatus {
    /// Its compact text as it is, pretty printer or not (as `lith verify --json`
    /// has always shown it): a report of 100,000 runs writes it without reading it.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.fields.raw().serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for RunStatus {
    /// Read back from a report as its text, never as values.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RunStatus, D::Error> {
        RunStatus::from_text(JsonText::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl RunStatus {
    /// The status whose fields are `fields` (as [`JsonText::read`] reads
    /// `run_status.json`): `run_id` and `state` are taken from it, each a string or
    /// absent (`null` is absent).
    pub fn from_text(fields: JsonText) -> Result<RunStatus, String> {
        if fields.kind() != "an object" {
            return Err(format!("expected a JSON object, found {}", fields.kind()));
        }
        // Both members in one pass over the text (the last of each, if written twice).
        let (mut run_id, mut state) = (None, None);
        crate::json_text::each_member(fields.raw(), |k, v| match &*k {
            "run_id" => run_id = Some(v),
            "state" => state = Some(v),
            _ => {}
        })
        .map_err(|e| e.to_string())?;
        let text = |k: &str, v: Option<&RawValue>| -> Result<Option<String>, String> {
            match v {
                None => Ok(None),
                Some(v) if v.get() == "null" => Ok(None),
                Some(v) => crate::json_text::string_of(v).map(Some).ok_or_else(|| {
                    format!(
                        "`{k}` must be a string, found {}",
                        crate::json_text::kind_of(v)
                    )
                }),
            }
        };
        let cut = |t: Option<String>| t.map(|t| truncate(&t, MAX_WORD_CHARS));
        Ok(RunStatus {
            run_id: cut(text("run_id", run_id)?),
            state: cut(text("state", state)?),
            fields,
        })
    }

    /// The field `key` as written.
    pub fn field(&self, key: &str) -> Option<&RawValue> {
        crate::json_text::member(self.fields.raw(), key)
    }
}

/// One entry of `artifacts[]`, kept small: an index may hold hundreds of thousands.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    pub path: Box<str>,
    pub file_size: u64,
    pub sha256: [u8; 32],
    pub schema_version: Option<Box<str>>,
}

impl IndexEntry {
    /// The digest in lower-case hex.
    pub fn sha256_hex(&self) -> String {
        crate::bundle::verify::hex(&self.sha256)
    }
}

/// `artifact_index.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct ArtifactIndex {
    pub schema_version: Option<String>,
    pub run_id: Option<String>,
    pub world_id: Option<String>,
    pub artifacts: Vec<IndexEntry>,
    pub missing: Vec<String>,
    pub status: IndexStatus,
}

impl ArtifactIndex {
    pub fn from_value(v: &Value) -> Result<ArtifactIndex, String> {
        let Value::Object(o) = v else {
            return Err(format!("expected a JSON object, found {}", json_kind(v)));
        };
        let artifacts = match o.get("artifacts") {
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, e)| entry(e).map_err(|m| format!("artifacts[{i}]: {m}")))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            _ => None,
        };
        ArtifactIndex::assemble(o, artifacts)
    }

    /// Reads an index from a file in memory proportional to its entries, not to its
    /// text: each entry is parsed and checked as it is read, and the document is
    /// never held whole. Errors as [`ArtifactIndex::from_value`] gives them, plus
    /// the line and column of a syntax error.
    pub fn read(file: std::fs::File, len: u64) -> Result<ArtifactIndex, JsonReadError> {
        if len > MAX_JSON_BYTES {
            return Err(JsonReadError::TooLarge(len, MAX_JSON_BYTES));
        }
        if len <= WHOLE_INDEX_BYTES {
            // The usual index: read at once and parsed from memory, several times
            // faster than through a reader (and no 256 KiB buffer per run).
            let bytes = crate::fsutil::read_bounded(file, len, MAX_JSON_BYTES)?;
            return ArtifactIndex::from_bytes(&bytes);
        }
        ArtifactIndex::read_from(file)
    }

    /// [`ArtifactIndex::read`] of an index already in memory.
    pub fn from_bytes(bytes: &[u8]) -> Result<ArtifactIndex, JsonReadError> {
        if bytes.starts_with(b"\xEF\xBB\xBF") {
            return Err(crate::fsutil::parse_json(&bytes[..3]).unwrap_err());
        }
        ArtifactIndex::parse(serde_json::Deserializer::from_slice(bytes))
    }

    /// [`ArtifactIndex::read`] from any reader (at most [`MAX_JSON_BYTES`] are read).
    pub fn read_from(file: impl std::io::Read) -> Result<ArtifactIndex, JsonReadError> {
        let mut head = [0u8; 3];
        let mut file = std::io::BufReader::with_capacity(256 * 1024, file);
        {
            use std::io::BufRead;
            let buf = file
                .fill_buf()
                .map_err(|e| JsonReadError::Io(e.to_string()))?;
            let n = buf.len().min(3);
            head[..n].copy_from_slice(&buf[..n]);
        }
        if head == *b"\xEF\xBB\xBF" {
            // Named as every JSON input names it.
            return Err(crate::fsutil::parse_json(&head).unwrap_err());
        }
        let reader = std::io::Read::take(file, MAX_JSON_BYTES + 1);
        ArtifactIndex::parse(serde_json::Deserializer::from_reader(reader))
    }

    /// The index, entry by entry, from a reader or from memory.
    fn parse<'de, R: serde_json::de::Read<'de>>(
        mut de: serde_json::Deserializer<R>,
    ) -> Result<ArtifactIndex, JsonReadError> {
        let parsed = serde::de::Deserializer::deserialize_any(&mut de, IndexVisitor)
            .and_then(|idx| de.end().map(|()| idx));
        match parsed {
            Ok(Ok(idx)) => Ok(idx),
            Ok(Err(message)) => Err(JsonReadError::Shape(message)),
            Err(e) if e.is_data() => Err(JsonReadError::Shape(strip_position(&e.to_string()))),
            Err(e) if e.is_io() => Err(JsonReadError::Io(e.to_string())),
            Err(e) => Err(JsonReadError::Syntax {
                line: e.line(),
                column: e.column(),
                message: strip_position(&e.to_string()),
            }),
        }
    }

    /// The index from its fields; `artifacts` already read when it is a list.
    fn assemble(
        o: &Map<String, Value>,
        artifacts: Option<Vec<IndexEntry>>,
    ) -> Result<ArtifactIndex, String> {
        let opt_text = |k: &str| -> Result<Option<String>, String> {
            match o.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(truncate(s, MAX_WORD_CHARS))),
                Some(other) => Err(format!(
                    "`{k}` must be a string, found {}",
                    json_kind(other)
                )),
            }
        };
        let status = match o.get("status") {
            Some(Value::String(s)) => match IndexStatus::parse(s) {
                Some(status) => status,
                None => {
                    return Err(format!(
                        "`status` is {s:?}; expected one of ok, partial, failed"
                    ));
                }
            },
            None => return Err("`status` is missing; expected one of ok, partial, failed".into()),
            Some(other) => {
                return Err(format!(
                    "`status` must be a string, found {}",
                    json_kind(other)
                ));
            }
        };
        let artifacts = match (artifacts, o.get("artifacts")) {
            (Some(list), _) => list,
            (None, None) => return Err("`artifacts` is missing; expected a list".into()),
            (None, Some(Value::Array(_))) => unreachable!("a list of artifacts is read first"),
            (None, Some(other)) => {
                return Err(format!(
                    "`artifacts` must be a list, found {}",
                    json_kind(other)
                ));
            }
        };
        let missing = match o.get("missing") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, m)| match m {
                    Value::String(s) => match check_path_len(s) {
                        Ok(()) => Ok(s.clone()),
                        Err(why) => Err(format!("missing[{i}]: {why}")),
                    },
                    other => Err(format!(
                        "missing[{i}] must be a string, found {}",
                        json_kind(other)
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(other) => {
                return Err(format!(
                    "`missing` must be a list, found {}",
                    json_kind(other)
                ));
            }
        };
        Ok(ArtifactIndex {
            schema_version: opt_text("schema_version")?,
            run_id: opt_text("run_id")?,
            world_id: opt_text("world_id")?,
            artifacts,
            missing,
            status,
        })
    }
}

fn entry(v: &Value) -> Result<IndexEntry, String> {
    let Value::Object(o) = v else {
        return Err(format!("expected an object, found {}", json_kind(v)));
    };
    let path: Box<str> = match o.get("path") {
        Some(Value::String(s)) => {
            check_path_len(s)?;
            s.as_str().into()
        }
        _ => return Err("`path` must be a string".into()),
    };
    // Messages show the start of a path, never all of it.
    let shown = || truncate(&path, SHOWN_PATH_CHARS);
    let file_size = match o.get("file_size") {
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| {
            format!(
                "`file_size` of {:?} must be a non-negative integer, found {n}",
                shown()
            )
        })?,
        _ => {
            return Err(format!(
                "`file_size` of {:?} must be a non-negative integer",
                shown()
            ));
        }
    };
    let sha256 = match o.get("sha256") {
        Some(Value::String(s)) if let Some(d) = digest_of(s) => d,
        Some(Value::String(s)) => {
            return Err(format!(
                "`sha256` of {:?} is {:?}; expected 64 hex digits",
                shown(),
                truncate(s, 80)
            ));
        }
        _ => {
            return Err(format!(
                "`sha256` of {:?} must be a string of 64 hex digits",
                shown()
            ));
        }
    };
    let schema_version = match o.get("schema_version") {
        Some(Value::String(s)) => Some(s.as_str().into()),
        _ => None,
    };
    Ok(IndexEntry {
        path,
        file_size,
        sha256,
        schema_version,
    })
}

/// The longest path an index may name, in bytes: Linux's `PATH_MAX`, past which no
/// file can be opened by its path. A longer one is refused with the index, so that
/// every copy of a path lith makes (a row, a finding's message and place, a page)
/// stays small: two entries of a 30 MB path made a build of 302 MiB and a 30 MB
/// run page.
pub const MAX_PATH_BYTES: usize = 4096;

/// The most characters of a path an error message shows.
const SHOWN_PATH_CHARS: usize = 200;

fn check_path_len(path: &str) -> Result<(), String> {
    if path.len() <= MAX_PATH_BYTES {
        return Ok(());
    }
    Err(format!(
        "the path {:?} is {} bytes long, longer than the {MAX_PATH_BYTES} bytes a path can be; the job that wrote the index named something no file can be",
        truncate(path, SHOWN_PATH_CHARS),
        path.len()
    ))
}

/// 64 hex digits (either case) as bytes.
fn digest_of(s: &str) -> Option<[u8; 32]> {
    crate::bundle::verify::Sha256Digest::parse(s).map(|d| d.0)
}

/// The top level of an index, with `artifacts` read entry by entry.
struct IndexVisitor;

impl<'de> serde::de::Visitor<'de> for IndexVisitor {
    /// The index, or why its shape is wrong (as [`ArtifactIndex::from_value`] says).
    type Value = Result<ArtifactIndex, String>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut rest = Map::new();
        let mut artifacts: Option<Result<Vec<IndexEntry>, String>> = None;
        // The members besides `artifacts` share one budget of values.
        let left = std::cell::Cell::new(crate::json_budget::MAX_VALUES);
        while let Some(key) = map.next_key::<String>()? {
            if key == "artifacts" {
                match map.next_value_seed(EntriesSeed)? {
                    Entries::List(list) => {
                        artifacts = Some(list);
                        rest.remove("artifacts");
                    }
                    Entries::Other(v) => {
                        artifacts = None;
                        rest.insert(key, v);
                    }
                }
            } else {
                // Later keys win, as when the document is read whole.
                let v = map.next_value_seed(crate::json_budget::ValueSeed::new(&left))?;
                rest.insert(key, v);
            }
        }
        Ok(match artifacts {
            Some(Err(m)) => Err(m),
            Some(Ok(list)) => ArtifactIndex::assemble(&rest, Some(list)),
            None => ArtifactIndex::assemble(&rest, None),
        })
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Err("expected a JSON object, found a list".into()))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err("expected a JSON object, found a boolean".into()))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err("expected a JSON object, found a number".into()))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err("expected a JSON object, found a number".into()))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err("expected a JSON object, found a number".into()))
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Err("expected a JSON object, found a string".into()))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Err("expected a JSON object, found null".into()))
    }
}

/// `artifacts`: a list read entry by entry, or whatever else was there.
enum Entries {
    List(Result<Vec<IndexEntry>, String>),
    Other(Value),
}

struct EntriesSeed;

impl<'de> serde::de::DeserializeSeed<'de> for EntriesSeed {
    type Value = Entries;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Entries, D::Error> {
        d.deserialize_any(EntriesVisitor)
    }
}

struct EntriesVisitor;

impl<'de> serde::de::Visitor<'de> for EntriesVisitor {
    type Value = Entries;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of artifacts")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Entries, A::Error> {
        let mut list = Vec::new();
        let mut first_error = None;
        let mut i = 0usize;
        // Each entry is a small value, checked and dropped before the next is read,
        // and read under a budget of its own (one entry cannot take the memory).
        let left = std::cell::Cell::new(crate::json_budget::MAX_VALUES);
        while let Some(v) = seq.next_element_seed(crate::json_budget::ValueSeed::new(&left))? {
            left.set(crate::json_budget::MAX_VALUES);
            if first_error.is_none() {
                match entry(&v) {
                    Ok(e) => list.push(e),
                    Err(m) => first_error = Some(format!("artifacts[{i}]: {m}")),
                }
            }
            i += 1;
        }
        list.shrink_to_fit();
        Ok(Entries::List(match first_error {
            Some(m) => Err(m),
            None => Ok(list),
        }))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Entries, A::Error> {
        let left = std::cell::Cell::new(crate::json_budget::MAX_VALUES);
        let v = serde::de::Visitor::visit_map(crate::json_budget::ValueSeed::new(&left), map)?;
        Ok(Entries::Other(v))
    }

    fn visit_bool<E>(self, b: bool) -> Result<Entries, E> {
        Ok(Entries::Other(Value::Bool(b)))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Entries, E> {
        Ok(Entries::Other(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Entries, E> {
        Ok(Entries::Other(n.into()))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Entries, E> {
        Ok(Entries::Other(n.into()))
    }

    fn visit_str<E>(self, s: &str) -> Result<Entries, E> {
        Ok(Entries::Other(Value::String(s.into())))
    }

    fn visit_unit<E>(self) -> Result<Entries, E> {
        Ok(Entries::Other(Value::Null))
    }
}

pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The most characters kept of a word lith decides on or shows beside a run:
/// `run_status.json`'s `run_id` and `state`, the index's `run_id`, `world_id` and
/// `schema_version`. A longer one is cut with `…`, so it still equals no state lith
/// knows and no folder name (at most 255 bytes), as the whole one would not; and
/// every copy of it (a runs list row, a run page, the search index) stays small.
pub const MAX_WORD_CHARS: usize = 4096;

/// Shortens a value for a message, on a character boundary.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A status read back from a report is the status lith wrote, and one that is
    /// not an object, or whose run_id or state is not a string, is refused in the
    /// words it is refused in when read from `run_status.json`.
    #[test]
    fn a_status_read_back_is_the_status_written_or_refused_alike() {
        let parsed = |raw: &str| RunStatus::from_text(JsonText::read(raw.as_bytes()).unwrap());
        let read = |raw: &str| serde_json::from_str::<RunStatus>(raw).map_err(|e| e.to_string());
        let st =
            parsed(r#"{"state":"complete","b":[1, 2.50,{"z":1,"a":null}],"a":"x y"}"#).unwrap();
        let written = serde_json::to_string(&st).unwrap();
        assert_eq!(
            written,
            r#"{"a":"x y","b":[1,2.5,{"a":null,"z":1}],"state":"complete"}"#
        );
        assert_eq!(read(&written).unwrap(), st);
        for raw in ["[1]", "\"x\"", "{\"run_id\":1}", "{\"state\":{}}"] {
            let want = parsed(raw).unwrap_err();
            let got = read(raw).unwrap_err();
            assert!(got.starts_with(&want), "{raw}: {got} / {want}");
        }
    }

    #[test]
    fn accepts_upper_case_digests_and_lowers_them() {
        let idx = ArtifactIndex::from_value(&json!({
            "run_id": "r", "status": "ok", "missing": [],
            "artifacts": [{"path": "a", "file_size": 1, "sha256": "AB".repeat(32)}]
        }))
        .unwrap();
        assert_eq!(idx.artifacts[0].sha256_hex(), "ab".repeat(32));
    }

    #[test]
    fn rejects_bad_shapes_with_a_reason() {
        let cases = [
            (json!([]), "expected a JSON object"),
            (
                json!({"artifacts": [], "status": "weird"}),
                "`status` is \"weird\"",
            ),
            (
                json!({"artifacts": {}, "status": "ok"}),
                "`artifacts` must be a list",
            ),
            (
                json!({"status": "ok", "artifacts": [{"path": "a", "file_size": -1, "sha256": "0".repeat(64)}]}),
                "non-negative integer",
            ),
            (
                json!({"status": "ok", "artifacts": [{"path": "a", "file_size": 1, "sha256": "xyz"}]}),
                "expected 64 hex digits",
            ),
            (
                json!({"status": "ok", "artifacts": [], "missing": [1]}),
                "missing[0] must be a string",
            ),
        ];
        for (v, want) in cases {
            let err = ArtifactIndex::from_value(&v).unwrap_err();
            assert!(err.contains(want), "{v}: {err}");
        }
    }

    #[test]
    fn a_path_longer_than_a_path_can_be_is_refused_and_shown_short() {
        let entry = |path: &str, size: i64| json!({"path": path, "file_size": size, "sha256": "0".repeat(64)});
        let longest = "p".repeat(MAX_PATH_BYTES);
        let too_long = "p".repeat(MAX_PATH_BYTES + 1);
        let index = |artifacts: Vec<Value>, missing: Vec<&str>| {
            let v = json!({"status": "ok", "artifacts": artifacts, "missing": missing});
            let whole = ArtifactIndex::from_value(&v);
            // Read entry by entry, the same answer.
            let read = ArtifactIndex::read_from(v.to_string().as_bytes()).map_err(|e| match e {
                JsonReadError::Shape(m) => m,
                other => panic!("{other:?}"),
            });
            assert_eq!(whole, read);
            whole
        };
        let ok = index(vec![entry(&longest, 1)], vec![&longest]).unwrap();
        assert_eq!(ok.artifacts[0].path.len(), MAX_PATH_BYTES);
        let err = index(vec![entry("a", 1), entry(&too_long, 1)], vec![]).unwrap_err();
        assert!(
            err.starts_with("artifacts[1]: the path \"ppp")
                && err.contains("…\" is 4097 bytes long, longer than the 4096 bytes a path can be"),
            "{err}"
        );
        assert!(err.len() < 500, "the message shows the path's start: {err}");
        let err = index(vec![], vec!["a", &too_long]).unwrap_err();
        assert!(err.starts_with("missing[1]: the path \"ppp"), "{err}");
        assert!(err.len() < 500, "{err}");
        // Other messages about an entry show the start of its path too.
        let err = index(vec![entry(&longest, -1)], vec![]).unwrap_err();
        assert!(
            err.contains("non-negative integer") && err.len() < 500,
            "{err}"
        );
    }
}
