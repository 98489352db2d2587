//! `lith reindex --repair` (SPEC §3.8): rewrite a stale index from the files, under
//! the bundle-root lock, and leave `repair_log.json` with every change.
//!
//! Repair recomputes `file_size`, `sha256` and `schema_version` of indexed artifacts
//! that are present and safe, moves indexed-but-absent ones to `missing[]`, and
//! recomputes `status`. It never invents an artifact, never indexes an unindexed file,
//! and never follows an unsafe path: such entries are kept as they are and listed in
//! the log. Fields it does not own (unknown keys included) are preserved.

use std::path::Path;

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::commit::CommitError;
use super::index::{ArtifactIndex, RunStatus};
use super::lock::{self, LockMode};
use super::paths;
use super::verify::{describe_open, hex};
use crate::beneath::{Dir, Refusal};
use crate::clock::Clock;
use crate::fsutil;

pub const REPAIR_LOG_SCHEMA: &str = "lith.repair_log.v1";

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Change {
    pub path: String,
    pub field: &'static str,
    pub old: Value,
    pub new: Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct RepairLog {
    pub schema_version: &'static str,
    pub run_id: String,
    pub repaired_at: String,
    pub previous_index_sha256: String,
    pub changes: Vec<Change>,
    pub moved_to_missing: Vec<String>,
    /// Entries left untouched because they are unsafe or not readable files.
    pub skipped: Vec<String>,
}

/// Repairs the index of `run_dir`. Errors: lock held, unreadable or corrupt index, or
/// a write that failed.
pub fn repair(
    run_dir: &Path,
    lock_mode: LockMode,
    clock: &Clock,
    repo_root: Option<&Path>,
) -> Result<RepairLog, CommitError> {
    let label = fsutil::slash_path(run_dir);
    let base = std::fs::canonicalize(run_dir).map_err(fsutil::io_context(format!(
        "{label}: cannot open the run folder"
    )))?;
    let root = base
        .parent()
        .ok_or_else(|| CommitError::Invalid(format!("{label}: has no bundle root above it")))?
        .to_path_buf();
    let _guard = lock::acquire(&root.join(".runtime.lock"), lock_mode)?;

    // Everything is read and written beneath this handle of the run folder, so a
    // folder swapped for a symlink meanwhile can neither put an outside digest in the
    // index nor have the index or the log written outside.
    let dir = Dir::open(&base).map_err(fsutil::io_context(format!(
        "{label}: cannot open the run folder"
    )))?;
    let old_bytes = dir
        .read(&["artifact_index.json"], fsutil::MAX_JSON_BYTES)
        .map_err(|e| CommitError::Invalid(format!("{label}/artifact_index.json: {e}; nothing to repair from (repair never invents artifacts)")))?;
    let mut doc: Value = serde_json::from_slice(&old_bytes).map_err(|e| {
        CommitError::Invalid(format!(
            "{label}/artifact_index.json: {}:{}: invalid JSON; repair cannot read it",
            e.line(),
            e.column()
        ))
    })?;
    // Validate the shape first so that a bad entry is an error, not a guess.
    ArtifactIndex::from_value(&doc)
        .map_err(|m| CommitError::Invalid(format!("{label}/artifact_index.json: {m}")))?;
    let state = match dir.read_json_text(&["run_status.json"]) {
        Ok(t) => RunStatus::from_text(t).ok().and_then(|s| s.state),
        Err(_) => None,
    };
    let repo_prefix: Option<Vec<String>> = repo_root.and_then(|r| {
        base.strip_prefix(r).ok().map(|p| {
            p.components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect()
        })
    });
    let abs_run_dir = std::path::absolute(run_dir).unwrap_or_else(|_| base.clone());

    let mut changes = Vec::new();
    let mut moved = Vec::new();
    let mut skipped = Vec::new();
    // Taken out of the document, not copied: an index may list 600,000 entries.
    let entries = match doc.get_mut("artifacts").map(Value::take) {
        Some(Value::Array(entries)) => entries,
        _ => Vec::new(),
    };
    let mut kept = Vec::new();
    for mut entry in entries {
        let path = entry["path"].as_str().unwrap_or_default().to_string();
        let parts = match paths::lexical_components(&path) {
            Ok(p) => p,
            Err(why) => {
                skipped.push(format!("{path} (unsafe: {})", why.describe()));
                kept.push(entry);
                continue;
            }
        };
        let rel = paths::bundle_relative(&parts, &abs_run_dir, repo_prefix.as_deref());
        match dir.open_file(&rel) {
            Err(Refusal::Missing) => {
                moved.push(path);
                continue;
            }
            Err(Refusal::Outside) => {
                skipped.push(format!(
                    "{path} (unsafe: a symbolic link leads outside the run folder)"
                ));
            }
            Err(Refusal::Io(e)) => skipped.push(format!("{path} (unreadable: {e})")),
            Err(Refusal::NotAFile(kind)) => {
                skipped.push(format!("{path} (not a file: {kind})"));
            }
            Ok((f, meta)) => match describe_open(f, &meta, rel.last().copied().unwrap_or("")) {
                Ok((size, sha, schema)) => {
                    let schema = schema.map_or(Value::Null, Value::String);
                    for (field, new) in [
                        ("file_size", json!(size)),
                        ("sha256", json!(sha)),
                        ("schema_version", schema),
                    ] {
                        let old = entry.get(field).cloned().unwrap_or(Value::Null);
                        let same = match (field, &old) {
                            ("sha256", Value::String(o)) => {
                                o.eq_ignore_ascii_case(new.as_str().unwrap_or(""))
                            }
                            _ => old == new,
                        };
                        if !same {
                            changes.push(Change {
                                path: path.clone(),
                                field,
                                old,
                                new: new.clone(),
                            });
                        }
                        entry[field] = new;
                    }
                }
                Err(e) => skipped.push(format!("{path} (unreadable: {e})")),
            },
        }
        kept.push(entry);
    }
    doc["artifacts"] = Value::Array(kept);
    let mut missing = match doc.get_mut("missing").map(Value::take) {
        Some(Value::Array(missing)) => missing,
        _ => Vec::new(),
    };
    // Each path moved once, found among those listed by lookup (a scan per path took
    // 8 minutes for 550,000).
    let listed: std::collections::HashSet<String> = missing
        .iter()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect();
    let mut added = std::collections::HashSet::new();
    for m in &moved {
        if !listed.contains(m.as_str()) && added.insert(m.as_str()) {
            missing.push(Value::String(m.clone()));
        }
    }
    drop(listed);
    let old_status = doc["status"].clone();
    let new_status = if state.as_deref() == Some("failed") {
        "failed"
    } else if !missing.is_empty() {
        "partial"
    } else {
        "ok"
    };
    if old_status != json!(new_status) {
        changes.push(Change {
            path: String::new(),
            field: "status",
            old: old_status,
            new: json!(new_status),
        });
    }
    doc["missing"] = Value::Array(missing);
    doc["status"] = json!(new_status);

    let log = RepairLog {
        schema_version: REPAIR_LOG_SCHEMA,
        run_id: base
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        repaired_at: clock.now_rfc3339(),
        previous_index_sha256: hex(&Sha256::digest(&old_bytes)),
        changes,
        moved_to_missing: moved,
        skipped,
    };
    // The log first: a crash between the two writes leaves the old index with a log
    // whose previous_index_sha256 still matches it, which says the repair did not land.
    let mut log_bytes =
        serde_json::to_vec_pretty(&log).map_err(|e| CommitError::Invalid(e.to_string()))?;
    log_bytes.push(b'\n');
    dir.write_atomic("repair_log.json", &log_bytes)
        .map_err(fsutil::io_context(format!(
            "{label}/repair_log.json: cannot write"
        )))?;
    let mut bytes =
        serde_json::to_vec_pretty(&doc).map_err(|e| CommitError::Invalid(e.to_string()))?;
    bytes.push(b'\n');
    dir.write_atomic("artifact_index.json", &bytes)
        .map_err(fsutil::io_context(format!(
            "{label}/artifact_index.json: cannot write"
        )))?;
    Ok(log)
}
