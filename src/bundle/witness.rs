//! `path_witnesses.json` (SPEC §3.6): the path-witness IR of a run or a bundle root.
//!
//! Accepts the real `{schema_version, world_id, run_id, plan_id?, records: […]}` shape,
//! a bare array, or `{witnesses: […]}`. A record without `normalized_path` is a
//! finding; an empty list is fine.

use serde::Serialize;
use serde_json::Value;

use crate::beneath::Dir;
use crate::finding::{Code, Finding, Severity};
use crate::fsutil::{self, JsonReadError};

/// The most records kept for display.
pub const MAX_RECORDS: usize = 5_000;

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Witnesses {
    pub schema_version: Option<String>,
    pub run_id: Option<String>,
    pub plan_id: Option<String>,
    pub total: usize,
    pub records: Vec<WitnessRecord>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct WitnessRecord {
    pub requested_path: Option<String>,
    pub observed_path: Option<String>,
    pub observed_path_nofirmlink: Option<String>,
    pub normalized_path: Option<String>,
}

/// The largest `path_witnesses.json` read: witnesses are a page's table of path
/// records, not bulk data, and a parsed document costs several times its size.
pub const MAX_WITNESS_BYTES: u64 = 8 * 1024 * 1024;

/// Loads `path_witnesses.json` beneath the run folder's handle when it exists.
pub fn load_in(dir: Option<&Dir>, dir_label: &str) -> (Option<Witnesses>, Vec<Finding>) {
    let at = format!("{dir_label}/path_witnesses.json");
    let read = match dir {
        Some(d) => d
            .read(&["path_witnesses.json"], MAX_WITNESS_BYTES)
            .map_err(|e| match e {
                JsonReadError::TooLarge(n, _) => JsonReadError::Shape(format!(
                    "file is {n} bytes, larger than the {MAX_WITNESS_BYTES} bytes lith reads for path witnesses"
                )),
                other => other,
            })
            .and_then(|b| fsutil::parse_json(&b)),
        None => Err(JsonReadError::Io("the run folder could not be opened".into())),
    };
    let v = match read {
        Ok(v) => v,
        Err(JsonReadError::NotFound) => return (None, Vec::new()),
        Err(e) => {
            return (
                None,
                vec![
                    Finding::new(
                        Code::WitnessesUnreadable,
                        Severity::Warning,
                        format!("path_witnesses.json: {e}"),
                    )
                    .at(at),
                ],
            );
        }
    };
    match parse(&v) {
        Ok(w) => {
            let without = w
                .records
                .iter()
                .filter(|r| r.normalized_path.is_none())
                .count();
            let findings = if without > 0 {
                vec![
                    Finding::new(
                        Code::WitnessWithoutNormalizedPath,
                        Severity::Warning,
                        format!("{without} path witness record(s) have no normalized_path"),
                    )
                    .at(at),
                ]
            } else {
                Vec::new()
            };
            (Some(w), findings)
        }
        Err(m) => (
            None,
            vec![
                Finding::new(
                    Code::WitnessesUnreadable,
                    Severity::Warning,
                    format!("path_witnesses.json: {m}"),
                )
                .at(at),
            ],
        ),
    }
}

pub fn parse(v: &Value) -> Result<Witnesses, String> {
    let text = |o: &serde_json::Map<String, Value>, k: &str| {
        o.get(k).and_then(Value::as_str).map(str::to_string)
    };
    let (meta, list) = match v {
        Value::Array(items) => (None, items),
        Value::Object(o) => match o.get("records").or_else(|| o.get("witnesses")) {
            Some(Value::Array(items)) => (Some(o), items),
            _ => return Err("expected `records` or `witnesses` to be a list".into()),
        },
        _ => return Err("expected an object or a list".into()),
    };
    let mut records = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let Value::Object(o) = item else {
            return Err(format!("record {i} is not an object"));
        };
        if records.len() < MAX_RECORDS {
            records.push(WitnessRecord {
                requested_path: text(o, "requested_path"),
                observed_path: text(o, "observed_path"),
                observed_path_nofirmlink: text(o, "observed_path_nofirmlink"),
                normalized_path: text(o, "normalized_path"),
            });
        }
    }
    Ok(Witnesses {
        schema_version: meta.and_then(|o| text(o, "schema_version")),
        run_id: meta.and_then(|o| text(o, "run_id")),
        plan_id: meta.and_then(|o| text(o, "plan_id")),
        total: list.len(),
        records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_three_shapes() {
        let rec = json!({"requested_path": "/a", "normalized_path": "/a"});
        for v in [
            json!({"schema_version": "x", "records": [rec.clone()]}),
            json!([rec.clone()]),
            json!({"witnesses": [rec.clone()]}),
        ] {
            let w = parse(&v).unwrap();
            assert_eq!(w.total, 1);
            assert_eq!(w.records[0].normalized_path.as_deref(), Some("/a"));
        }
        assert!(parse(&json!({"records": "no"})).is_err());
        assert!(parse(&json!([1])).is_err());
    }
}
