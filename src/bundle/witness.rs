//! `path_witnesses.json` (SPEC §3.6): the path-witness IR of a run or a bundle root.
//!
//! Accepts the real `{schema_version, world_id, run_id, plan_id?, records: […]}` shape,
//! a bare array, or `{witnesses: […]}`. A record without `normalized_path` is a
//! finding; an empty list is fine.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::beneath::Dir;
use crate::finding::{Code, Finding, Severity};
use crate::fsutil::{self, JsonReadError};
use crate::json_text;

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
            .and_then(|b| read(&b)),
        None => Err(JsonReadError::Io("the run folder could not be opened".into())),
    };
    let parsed = match read {
        Ok(parsed) => parsed,
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
    match parsed {
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

/// Reads `path_witnesses.json` from its bytes without building the document: every
/// record is checked and counted, the first [`MAX_RECORDS`] kept. A document that
/// is not JSON is an error as every JSON input's; one of another shape is
/// `Ok(Err(why))`.
pub fn read(bytes: &[u8]) -> Result<Result<Witnesses, String>, JsonReadError> {
    use std::collections::BTreeMap;
    fsutil::parse_json_with(bytes, |bytes| {
        // Checked as a `Value` would be read (numbers out of range, escapes), with
        // no budget: nothing is built.
        crate::json_budget::count_values(bytes, &std::cell::Cell::new(usize::MAX), usize::MAX)?;
        let top: &RawValue = serde_json::from_slice(bytes)?;
        let text = |raw: Option<&&RawValue>| raw.and_then(|r| json_text::string_of(r));
        let (meta, list) = match top.get().as_bytes().first() {
            Some(b'[') => (None, top),
            Some(b'{') => {
                // Later keys win, as in a `Value`.
                let o: BTreeMap<String, &RawValue> = serde_json::from_str(top.get())?;
                match o.get("records").or_else(|| o.get("witnesses")) {
                    Some(list) if list.get().starts_with('[') => {
                        let list = *list;
                        (Some(o), list)
                    }
                    _ => {
                        return Ok(Err(
                            "expected `records` or `witnesses` to be a list".to_string()
                        ));
                    }
                }
            }
            _ => return Ok(Err("expected an object or a list".into())),
        };
        let items: Vec<&RawValue> = serde_json::from_str(list.get())?;
        let mut records = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if !item.get().starts_with('{') {
                return Ok(Err(format!("record {i} is not an object")));
            }
            if records.len() < MAX_RECORDS {
                let o: BTreeMap<String, &RawValue> = serde_json::from_str(item.get())?;
                records.push(WitnessRecord {
                    requested_path: text(o.get("requested_path")),
                    observed_path: text(o.get("observed_path")),
                    observed_path_nofirmlink: text(o.get("observed_path_nofirmlink")),
                    normalized_path: text(o.get("normalized_path")),
                });
            }
        }
        let meta = meta.as_ref();
        Ok(Ok(Witnesses {
            schema_version: text(meta.and_then(|o| o.get("schema_version"))),
            run_id: text(meta.and_then(|o| o.get("run_id"))),
            plan_id: text(meta.and_then(|o| o.get("plan_id"))),
            total: items.len(),
            records,
        }))
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
            let w = read(v.to_string().as_bytes()).unwrap().unwrap();
            assert_eq!(w.total, 1);
            assert_eq!(w.records[0].normalized_path.as_deref(), Some("/a"));
        }
        let shape = |v: serde_json::Value| read(v.to_string().as_bytes()).unwrap().unwrap_err();
        assert_eq!(
            shape(json!({"records": "no"})),
            "expected `records` or `witnesses` to be a list"
        );
        assert_eq!(shape(json!([{}, 1])), "record 1 is not an object");
        assert_eq!(shape(json!(3)), "expected an object or a list");
        // Refused as a `Value` is, where the raw text alone would pass.
        for bad in [
            &b"[{}"[..],
            b"[1e400]",
            b"[\"\\ud800\"]",
            b"{\"\\ud800\":1}",
        ] {
            let want = fsutil::parse_json(bad).unwrap_err().to_string();
            assert_eq!(read(bad).unwrap_err().to_string(), want);
        }
    }

    /// Read as a `Value`, 400,000 records of four paths (46 MB of objects for an 8
    /// MiB file) are past the budget of values; read record by record they are
    /// counted, the first 5,000 kept. Later keys win, as in a `Value`.
    #[test]
    fn many_records_are_counted_and_the_first_kept() {
        let doc = format!(
            r#"{{"run_id":"a","records":[],"run_id":"r1","records":[{}]}}"#,
            vec![r#"{"normalized_path":"/p","x":{"y":[1]}}"#; 400_000].join(",")
        );
        assert!(fsutil::parse_json(doc.as_bytes()).is_err());
        let w = read(doc.as_bytes()).unwrap().unwrap();
        assert_eq!((w.total, w.records.len()), (400_000, MAX_RECORDS));
        assert_eq!(w.run_id.as_deref(), Some("r1"));
        assert_eq!(w.records[4_999].normalized_path.as_deref(), Some("/p"));
    }
}
