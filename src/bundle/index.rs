//! `run_status.json` and `artifact_index.json` (SPEC §3.2–3.3): typed views over
//! untrusted JSON. A syntax error or a shape that cannot be interpreted is an error
//! that names the file, line and column; unknown fields are kept.

use serde::Serialize;
use serde_json::{Map, Value};

/// The states a run may be in.
pub const STATES: [&str; 3] = ["in_progress", "complete", "failed"];
/// The statuses an index may carry.
pub const INDEX_STATUSES: [&str; 3] = ["ok", "partial", "failed"];

/// `run_status.json`, with every field kept for display.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunStatus {
    pub run_id: Option<String>,
    pub state: Option<String>,
    /// All fields as written (sorted by key), shown on the run page.
    pub fields: Map<String, Value>,
}

impl RunStatus {
    pub fn from_value(v: Value) -> Result<RunStatus, String> {
        let Value::Object(fields) = v else {
            return Err(format!("expected a JSON object, found {}", json_kind(&v)));
        };
        let text = |k: &str| -> Result<Option<String>, String> {
            match fields.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(format!(
                    "`{k}` must be a string, found {}",
                    json_kind(other)
                )),
            }
        };
        Ok(RunStatus {
            run_id: text("run_id")?,
            state: text("state")?,
            fields: fields.clone(),
        })
    }
}

/// One entry of `artifacts[]`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IndexEntry {
    pub path: String,
    pub file_size: u64,
    /// Lower-case hex.
    pub sha256: String,
    pub schema_version: Option<String>,
}

/// `artifact_index.json`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ArtifactIndex {
    pub schema_version: Option<String>,
    pub run_id: Option<String>,
    pub world_id: Option<String>,
    pub artifacts: Vec<IndexEntry>,
    pub missing: Vec<String>,
    pub status: String,
}

impl ArtifactIndex {
    pub fn from_value(v: &Value) -> Result<ArtifactIndex, String> {
        let Value::Object(o) = v else {
            return Err(format!("expected a JSON object, found {}", json_kind(v)));
        };
        let opt_text = |k: &str| -> Result<Option<String>, String> {
            match o.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(format!(
                    "`{k}` must be a string, found {}",
                    json_kind(other)
                )),
            }
        };
        let status = match o.get("status") {
            Some(Value::String(s)) if INDEX_STATUSES.contains(&s.as_str()) => s.clone(),
            Some(Value::String(s)) => {
                return Err(format!(
                    "`status` is {s:?}; expected one of ok, partial, failed"
                ));
            }
            None => return Err("`status` is missing; expected one of ok, partial, failed".into()),
            Some(other) => {
                return Err(format!(
                    "`status` must be a string, found {}",
                    json_kind(other)
                ));
            }
        };
        let artifacts = match o.get("artifacts") {
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, e)| entry(e).map_err(|m| format!("artifacts[{i}]: {m}")))
                .collect::<Result<Vec<_>, _>>()?,
            None => return Err("`artifacts` is missing; expected a list".into()),
            Some(other) => {
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
                    Value::String(s) => Ok(s.clone()),
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
    let path = match o.get("path") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err("`path` must be a string".into()),
    };
    let file_size = match o.get("file_size") {
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| {
            format!("`file_size` of {path:?} must be a non-negative integer, found {n}")
        })?,
        _ => {
            return Err(format!(
                "`file_size` of {path:?} must be a non-negative integer"
            ));
        }
    };
    let sha256 = match o.get("sha256") {
        Some(Value::String(s)) if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
            s.to_ascii_lowercase()
        }
        Some(Value::String(s)) => {
            return Err(format!(
                "`sha256` of {path:?} is {:?}; expected 64 hex digits",
                truncate(s, 80)
            ));
        }
        _ => {
            return Err(format!(
                "`sha256` of {path:?} must be a string of 64 hex digits"
            ));
        }
    };
    let schema_version = match o.get("schema_version") {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    Ok(IndexEntry {
        path,
        file_size,
        sha256,
        schema_version,
    })
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

    #[test]
    fn accepts_upper_case_digests_and_lowers_them() {
        let idx = ArtifactIndex::from_value(&json!({
            "run_id": "r", "status": "ok", "missing": [],
            "artifacts": [{"path": "a", "file_size": 1, "sha256": "AB".repeat(32)}]
        }))
        .unwrap();
        assert_eq!(idx.artifacts[0].sha256, "ab".repeat(32));
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
}
