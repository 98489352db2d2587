//! Promotion packets (SPEC §3.9): repository-relative pointers to a run's artifacts and
//! the decision-stage promotability derived from the bundle itself, never from flags.
//!
//! Each failed condition adds exactly its own reason, so a bundle that falls short in
//! one way gets one reason: the channel and the apply preflight are read from
//! `run_manifest.json` and, when it lacks them, from `run_status.json` and
//! `apply_preflight.json`; integrity means the index loads and every artifact
//! verifies, apart from the index's own `status` and `missing[]` which have reasons
//! of their own.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::verify::{ArtifactStatus, RunReport};
use crate::fsutil;

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

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GatingInputs {
    pub channel: Option<String>,
    pub apply_preflight_present: bool,
    pub apply_ok: Option<bool>,
    pub sandbox_check_self: Value,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Promotability {
    pub promotable_decision_stage: bool,
    /// Sorted, unique.
    pub reasons: Vec<String>,
    pub gating_inputs: GatingInputs,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PromotionPacket {
    pub schema_version: &'static str,
    pub run_manifest: String,
    pub expected_matrix: String,
    pub runtime_results: String,
    pub runtime_events: String,
    pub baseline_results: String,
    pub oracle_results: String,
    pub mismatch_packets: String,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_witnesses: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixtures: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impact_map: Option<String>,
    pub promotability: Promotability,
}

fn regular_file(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file())
}

fn read_object(p: &Path) -> Option<serde_json::Map<String, Value>> {
    match fsutil::read_json(p) {
        Ok(Value::Object(o)) => Some(o),
        _ => None,
    }
}

/// Decides promotability from a verified (full mode) run and its folder.
pub fn assess(run_dir: &Path, run: &RunReport, decision_stage: &[String]) -> Promotability {
    let mut reasons: Vec<&'static str> = Vec::new();
    let manifest = read_object(&run_dir.join("run_manifest.json"));
    if manifest.is_none() {
        reasons.push("manifest_missing");
    }
    if run.run_status.is_none() {
        reasons.push("run_status_missing");
    }
    if run.state.as_deref() == Some("in_progress") {
        reasons.push("bundle_in_progress");
    }
    let text = |o: Option<&serde_json::Map<String, Value>>, k: &str| {
        o.and_then(|o| o.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let channel = text(manifest.as_ref(), "channel")
        .or_else(|| text(run.run_status.as_ref().map(|s| &s.fields), "channel"));
    if channel.as_deref() != Some("launchd_clean") {
        reasons.push("not_clean_channel");
    }
    let record: Option<serde_json::Map<String, Value>> = manifest
        .as_ref()
        .and_then(|m| m.get("apply_preflight"))
        .and_then(|a| a.get("record"))
        .and_then(Value::as_object)
        .cloned()
        .or_else(|| read_object(&run_dir.join("apply_preflight.json")));
    let sandbox_check_self = record
        .as_ref()
        .and_then(|r| r.get("sandbox_check_self"))
        .cloned()
        .unwrap_or(Value::Null);
    let apply_ok = record
        .as_ref()
        .and_then(|r| r.get("apply_ok"))
        .and_then(Value::as_bool);
    match &record {
        None => reasons.push("apply_preflight_missing"),
        Some(_) => {
            if sandbox_check_self.get("sandboxed") == Some(&Value::Bool(true)) {
                reasons.push("already_sandboxed");
            }
            if apply_ok != Some(true) {
                reasons.push("apply_failed");
            }
        }
    }
    let integrity = run.index.is_some()
        && run.artifacts.iter().all(|a| a.status == ArtifactStatus::Ok)
        && !run.findings.iter().any(|f| {
            matches!(
                f.code.as_str(),
                "run_status_corrupt"
                    | "index_corrupt"
                    | "run_id_mismatch"
                    | "index_run_id_mismatch"
                    | "state_invalid"
            ) || (f.code == "duplicate_entry" && f.severity >= crate::finding::Severity::Partial)
        });
    if !integrity {
        reasons.push("bundle_integrity_unverified");
    }
    if let Some(idx) = &run.index {
        if idx.status == "failed" {
            reasons.push("bundle_failed");
        }
        if !idx.missing.is_empty() {
            reasons.push("bundle_incomplete");
        }
    }
    if decision_stage
        .iter()
        .any(|a| !regular_file(&run_dir.join(a)))
    {
        reasons.push("decision_stage_artifacts_missing");
    }
    reasons.sort_unstable();
    reasons.dedup();
    Promotability {
        promotable_decision_stage: reasons.is_empty(),
        reasons: reasons.into_iter().map(str::to_string).collect(),
        gating_inputs: GatingInputs {
            channel,
            apply_preflight_present: record.is_some(),
            apply_ok,
            sandbox_check_self,
        },
    }
}

/// Builds the packet; `prefix` is the run folder as the pointers should spell it
/// (repository- or workspace-relative, without a trailing slash).
pub fn packet(run_dir: &Path, prefix: &str, promotability: Promotability) -> PromotionPacket {
    let p = |name: &str| {
        if prefix.is_empty() || prefix == "." {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        }
    };
    let optional = |name: &str| regular_file(&run_dir.join(name)).then(|| p(name));
    let optional_dir = |name: &str| {
        std::fs::symlink_metadata(run_dir.join(name))
            .is_ok_and(|m| m.is_dir() || m.is_file())
            .then(|| p(name))
    };
    PromotionPacket {
        schema_version: PACKET_SCHEMA,
        run_manifest: p("run_manifest.json"),
        expected_matrix: p("expected_matrix.json"),
        runtime_results: p("runtime_results.json"),
        runtime_events: p("runtime_events.normalized.json"),
        baseline_results: p("baseline_results.json"),
        oracle_results: p("oracle_results.json"),
        mismatch_packets: p("mismatch_packets.jsonl"),
        summary: p("summary.json"),
        path_witnesses: optional("path_witnesses.json"),
        fixtures: optional_dir("fixtures"),
        impact_map: optional("impact_map.json"),
        promotability,
    }
}
