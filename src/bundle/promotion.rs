//! Promotion packets (SPEC §3.9): repository-relative pointers to a run's artifacts and
//! the decision-stage promotability derived from the bundle itself, never from flags.
//!
//! The inputs are exactly the reference system's: the channel and the apply preflight
//! come only from `run_manifest.json` (never from `run_status.json` or a separate
//! file), with the reference's notion of "present" (Python truthiness), and a
//! `run_status.json` or `run_manifest.json` that exists but cannot be read or has a
//! field of the wrong type is an error, never "missing". Integrity is lith's strict
//! load: the index loads and the run verifies, apart from the index's own `status`
//! and `missing[]`, which have reasons of their own. See COMPATIBILITY.md for where
//! lith is deliberately stricter.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::json_text::JsonText;

use super::verify::{RunReport, Verification};
use crate::beneath::Dir;
use crate::finding::{Code, Severity};
use crate::fsutil::JsonReadError;

pub const PACKET_SCHEMA: &str = "runtime-tools.promotion_packet.v0.2";

/// Every reason lith can give, in sorted order.
pub const REASONS: [&str; 11] = [
    "already_sandboxed",
    "apply_failed",
    "apply_preflight_missing",
    "bundle_failed",
    "bundle_in_progress",
    "bundle_incomplete",
    "bundle_integrity_unverified",
    "decision_stage_artifacts_missing",
    "manifest_missing",
    "not_clean_channel",
    "run_status_missing",
];

/// A set of [`REASONS`], one bit each (a large build holds one set per run), listed
/// in sorted order and spelled as a list of names in JSON.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Reasons(u16);

impl Reasons {
    pub fn insert(&mut self, reason: &'static str) {
        let i = REASONS
            .iter()
            .position(|r| *r == reason)
            .expect("a reason lith gives");
        self.0 |= 1 << i;
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    pub fn len(&self) -> usize {
        self.0.count_ones() as usize
    }

    /// The names, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &'static str> + '_ {
        REASONS
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, r)| *r)
    }

    pub fn join(&self, sep: &str) -> String {
        self.iter().collect::<Vec<_>>().join(sep)
    }
}

impl std::fmt::Debug for Reasons {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for Reasons {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// Reasons read back from a report or packet, each one of [`REASONS`].
impl<'de> serde::Deserialize<'de> for Reasons {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Reasons, D::Error> {
        let names = <Vec<String> as serde::Deserialize>::deserialize(d)?;
        let mut set = Reasons::default();
        for n in &names {
            let known = REASONS.iter().find(|r| *r == n).ok_or_else(|| {
                serde::de::Error::invalid_value(
                    serde::de::Unexpected::Str(n),
                    &"a promotability reason lith gives",
                )
            })?;
            set.insert(known);
        }
        Ok(set)
    }
}

/// The raw values promotability was decided on, as the reference shows them. They
/// are decided on as they are read and kept only to be shown, as compact text.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct GatingInputs {
    /// `run_manifest.channel` as found (any JSON value; null when absent).
    pub channel: JsonText,
    pub apply_preflight_present: bool,
    /// `apply_preflight.record.apply_ok` as found; null without a record.
    pub apply_ok: JsonText,
    /// `apply_preflight.record.sandbox_check_self` as found; null without a record.
    pub sandbox_check_self: JsonText,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Promotability {
    pub promotable_decision_stage: bool,
    /// Sorted, unique.
    pub reasons: Reasons,
    pub gating_inputs: GatingInputs,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct PromotionPacket {
    pub schema_version: String,
    pub run_manifest: String,
    pub expected_matrix: String,
    pub runtime_results: String,
    pub runtime_events: String,
    pub baseline_results: String,
    pub oracle_results: String,
    pub mismatch_packets: String,
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_witnesses: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixtures: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact_map: Option<String>,
    pub promotability: Promotability,
}

/// A promotion input that exists but cannot be used: the command exits 4.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct InputError {
    /// `run_manifest.json` or `run_status.json`.
    pub file: &'static str,
    pub message: String,
}

/// A name whose presence decides something counts only as a regular file reached
/// without a symbolic link, beneath the run folder's handle (COMPATIBILITY.md).
fn regular_file(dir: &Dir, name: &str) -> bool {
    let parts: Vec<&str> = name.split('/').filter(|c| !c.is_empty()).collect();
    dir.regular_file_no_links(&parts)
}

/// Python's truthiness of a JSON value: null, false, 0, "", [] and {} are false.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Reads an input document: `Ok(None)` when absent, an error when it exists but is
/// not a readable JSON object.
fn read_input(dir: &Dir, file: &'static str) -> Result<Option<Map<String, Value>>, InputError> {
    match dir.read_json(&[file]) {
        Ok(Value::Object(o)) => Ok(Some(o)),
        Ok(other) => Err(InputError {
            file,
            message: format!("expected a JSON object, found {}", json_kind(&other)),
        }),
        Err(JsonReadError::NotFound) => Ok(None),
        Err(e) => Err(InputError {
            file,
            message: e.to_string(),
        }),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `obj.get(key) or {}` where the value must be an object when truthy.
fn object_or_empty<'a>(
    obj: Option<&'a Map<String, Value>>,
    key: &str,
    file: &'static str,
    field: &str,
) -> Result<Option<&'a Map<String, Value>>, InputError> {
    match obj.and_then(|o| o.get(key)) {
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(v) if truthy(v) => Err(InputError {
            file,
            message: format!("`{field}` must be an object, found {}", json_kind(v)),
        }),
        _ => Ok(None),
    }
}

/// Decides promotability from a verified (full mode) run and its folder; `dir` is
/// the run folder's handle, beneath which its inputs are read.
pub fn assess(
    dir: &Dir,
    run: &RunReport,
    decision_stage: &[String],
) -> Result<Promotability, InputError> {
    let mut reasons = Reasons::default();
    let manifest = read_input(dir, "run_manifest.json")?;
    if manifest.is_none() {
        reasons.insert("manifest_missing");
    }
    // The status verification read is the one judged (its `state` is a string or
    // absent); only a status it could not read is read again, to say why: missing,
    // or the error that makes the command exit 4.
    let in_progress = match &run.run_status {
        Some(st) => st
            .state
            .as_deref()
            .is_some_and(|s| s.trim() == "in_progress"),
        None => match read_input(dir, "run_status.json")? {
            None => {
                reasons.insert("run_status_missing");
                false
            }
            Some(status) => match status.get("state") {
                Some(Value::String(s)) => s.trim() == "in_progress",
                // `(state or "").strip()`: a false-y value of any type is no state.
                None => false,
                Some(v) if !truthy(v) => false,
                Some(v) => {
                    return Err(InputError {
                        file: "run_status.json",
                        message: format!("`state` must be a string, found {}", json_kind(v)),
                    });
                }
            },
        },
    };
    if in_progress {
        reasons.insert("bundle_in_progress");
    }
    let channel = manifest.as_ref().and_then(|m| m.get("channel"));
    if channel.and_then(Value::as_str) != Some("launchd_clean") {
        reasons.insert("not_clean_channel");
    }
    let channel = channel.map_or_else(JsonText::null, JsonText::of);
    let preflight = object_or_empty(
        manifest.as_ref(),
        "apply_preflight",
        "run_manifest.json",
        "apply_preflight",
    )?;
    // A record that is null, not an object, or empty is missing.
    let record = preflight
        .and_then(|p| p.get("record"))
        .and_then(Value::as_object)
        .filter(|r| !r.is_empty());
    let (apply_ok, sandbox_check_self) = match record {
        None => {
            reasons.insert("apply_preflight_missing");
            (JsonText::null(), JsonText::null())
        }
        Some(r) => {
            let sandbox = object_or_empty(
                Some(r),
                "sandbox_check_self",
                "run_manifest.json",
                "apply_preflight.record.sandbox_check_self",
            )?;
            if sandbox.and_then(|s| s.get("sandboxed")) == Some(&Value::Bool(true)) {
                reasons.insert("already_sandboxed");
            }
            let apply_ok = r.get("apply_ok");
            if apply_ok != Some(&Value::Bool(true)) {
                reasons.insert("apply_failed");
            }
            let text = |v: Option<&Value>| v.map_or_else(JsonText::null, JsonText::of);
            (text(apply_ok), text(r.get("sandbox_check_self")))
        }
    };
    // Strict load and digest verification: the same judgement as `lith verify`, with
    // the index's own status and missing[] left to their own reasons below.
    let integrity = run.index.is_some()
        && !in_progress
        && run.verification != Verification::Error
        && !run.findings.iter().any(|f| {
            f.severity >= Severity::Partial
                && !matches!(f.code, Code::IndexStatusNotOk | Code::IndexListsMissing)
        });
    if !integrity {
        reasons.insert("bundle_integrity_unverified");
    }
    if let Some(idx) = &run.index {
        use crate::bundle::index::IndexStatus;
        if idx.status == IndexStatus::Failed {
            reasons.insert("bundle_failed");
        } else if idx.status != IndexStatus::Ok {
            // lith's strict load refuses any index whose status is not `ok`, so a
            // `partial` index with an empty missing[] is incomplete, as `lith verify`
            // says (COMPATIBILITY.md).
            reasons.insert("bundle_incomplete");
        }
        if !idx.missing.is_empty() {
            reasons.insert("bundle_incomplete");
        }
    }
    if decision_stage.iter().any(|a| !regular_file(dir, a)) {
        reasons.insert("decision_stage_artifacts_missing");
    }
    Ok(Promotability {
        promotable_decision_stage: reasons.is_empty(),
        reasons,
        gating_inputs: GatingInputs {
            channel,
            apply_preflight_present: record.is_some(),
            apply_ok,
            sandbox_check_self,
        },
    })
}

/// The optional promotion inputs that exist as regular files in a run folder.
pub fn optional_inputs(dir: &Dir) -> Vec<String> {
    OPTIONAL_INPUTS
        .iter()
        .filter(|name| regular_file(dir, name))
        .map(|name| name.to_string())
        .collect()
}

const OPTIONAL_INPUTS: [&str; 3] = ["path_witnesses.json", "fixtures.json", "impact_map.json"];

/// The promotion packet of a run. `prefix` is the run folder as the pointers should
/// spell it (repository- or workspace-relative, without a trailing slash); the
/// optional inputs are named only when `optional` (from [`optional_inputs`]) lists
/// them.
pub fn packet(prefix: &str, promotability: Promotability, optional: &[String]) -> PromotionPacket {
    let p = |name: &str| {
        if prefix.is_empty() || prefix == "." {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        }
    };
    let optional = |name: &str| optional.iter().any(|o| o == name).then(|| p(name));
    PromotionPacket {
        schema_version: PACKET_SCHEMA.to_string(),
        run_manifest: p("run_manifest.json"),
        expected_matrix: p("expected_matrix.json"),
        runtime_results: p("runtime_results.json"),
        runtime_events: p("runtime_events.normalized.json"),
        baseline_results: p("baseline_results.json"),
        oracle_results: p("oracle_results.json"),
        mismatch_packets: p("mismatch_packets.jsonl"),
        summary: p("summary.json"),
        path_witnesses: optional("path_witnesses.json"),
        fixtures: optional("fixtures.json"),
        impact_map: optional("impact_map.json"),
        promotability,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_a_sorted_set_of_known_names() {
        let mut r = Reasons::default();
        assert!(r.is_empty());
        for name in ["not_clean_channel", "apply_failed", "not_clean_channel"] {
            r.insert(name);
        }
        assert_eq!(r.len(), 2);
        assert_eq!(r.join(", "), "apply_failed, not_clean_channel");
        let v = serde_json::to_value(r).unwrap();
        assert_eq!(v, serde_json::json!(["apply_failed", "not_clean_channel"]));
        assert_eq!(serde_json::from_value::<Reasons>(v).unwrap(), r);
        let mut all = Reasons::default();
        REASONS.iter().for_each(|n| all.insert(n));
        assert_eq!(all.iter().collect::<Vec<_>>(), REASONS);
        let err = serde_json::from_value::<Reasons>(serde_json::json!(["not_a_reason"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not_a_reason"), "{err}");
    }
}
