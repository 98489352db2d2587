//! `lith reindex --repair` (SPEC §3.8): rewrite a stale index from the files, under
//! the bundle-root lock, and leave `repair_log.json` with every change.
//!
//! Repair recomputes `file_size`, `sha256` and `schema_version` of indexed artifacts
//! that are present and safe, moves indexed-but-absent ones to `missing[]`, and
//! recomputes `status`. It never invents an artifact, never indexes an unindexed file,
//! and never follows an unsafe path: such entries are kept as they are and listed in
//! the log. Fields it does not own (unknown keys included) are preserved.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::value::RawValue;
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
use crate::json_text::{self, JsonText};

pub const REPAIR_LOG_SCHEMA: &str = "lith.repair_log.v1";

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Change {
    pub path: String,
    pub field: String,
    pub old: Value,
    pub new: Value,
}

/// The changes a repair made, written to an unnamed temporary file as they are
/// found, one compact JSON object a line, and read back one at a time: an index of
/// 550,000 entries whose sizes and digests all changed makes 1.1 million, about
/// 300 bytes each as values.
#[derive(Debug)]
pub struct Changes {
    file: std::fs::File,
    len: usize,
}

impl Changes {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Each line of the file, from the start.
    fn lines(&self) -> std::io::Result<impl Iterator<Item = std::io::Result<String>> + '_> {
        use std::io::{BufRead, Seek};
        let mut f = &self.file;
        f.seek(std::io::SeekFrom::Start(0))?;
        Ok(std::io::BufReader::with_capacity(1 << 16, f).lines())
    }

    /// Each change, in the order they were made.
    pub fn iter(&self) -> std::io::Result<impl Iterator<Item = std::io::Result<Change>> + '_> {
        Ok(self
            .lines()?
            .map(|line| serde_json::from_str(&line?).map_err(std::io::Error::other)))
    }
}

/// Written as a list of the changes, each transcoded from its line, so that a
/// pretty log indents it as it would a [`Change`].
impl Serialize for Changes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeSeq};
        struct Line<'a>(&'a str);
        impl Serialize for Line<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                serde_transcode::transcode(&mut serde_json::Deserializer::from_str(self.0), s)
            }
        }
        let mut seq = s.serialize_seq(Some(self.len))?;
        for line in self.lines().map_err(S::Error::custom)? {
            seq.serialize_element(&Line(&line.map_err(S::Error::custom)?))?;
        }
        seq.end()
    }
}

/// [`Changes`] while a repair finds them.
struct Spill {
    out: std::io::BufWriter<std::fs::File>,
    len: usize,
}

impl Spill {
    fn new() -> std::io::Result<Spill> {
        Ok(Spill {
            out: std::io::BufWriter::with_capacity(1 << 16, tempfile::tempfile()?),
            len: 0,
        })
    }

    fn push(&mut self, c: &Change) -> std::io::Result<()> {
        use std::io::Write;
        serde_json::to_writer(&mut self.out, c)?;
        self.out.write_all(b"\n")?;
        self.len += 1;
        Ok(())
    }

    fn done(self) -> std::io::Result<Changes> {
        Ok(Changes {
            file: self.out.into_inner().map_err(|e| e.into_error())?,
            len: self.len,
        })
    }
}

#[derive(Debug, Serialize)]
pub struct RepairLog {
    pub schema_version: &'static str,
    pub run_id: String,
    pub repaired_at: String,
    pub previous_index_sha256: String,
    pub changes: Changes,
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
    // Checked first, entry by entry as verification reads it, so that a bad entry
    // is an error, not a guess. The document is then rewritten from its text: each
    // entry is held as its compact text (a `Value` of 550,000 entries took 595 MiB).
    let invalid =
        |what: String| CommitError::Invalid(format!("{label}/artifact_index.json: {what}"));
    match ArtifactIndex::from_bytes(&old_bytes) {
        Ok(_) => {}
        Err(fsutil::JsonReadError::Syntax { line, column, .. }) => {
            return Err(invalid(format!(
                "{line}:{column}: invalid JSON; repair cannot read it"
            )));
        }
        Err(e) => return Err(invalid(e.to_string())),
    }
    let previous_index_sha256 = hex(&Sha256::digest(&old_bytes));
    let members: BTreeMap<String, &RawValue> =
        serde_json::from_slice(&old_bytes).map_err(|e| invalid(e.to_string()))?;
    let canonical = |raw: &RawValue| JsonText::read(raw.get().as_bytes());
    let value = |raw: &RawValue| crate::json_budget::from_slice(raw.get().as_bytes());
    let list = |key: &str| -> Result<Vec<&RawValue>, CommitError> {
        match members.get(key) {
            Some(raw) if raw.get().starts_with('[') => {
                serde_json::from_str(raw.get()).map_err(|e| invalid(e.to_string()))
            }
            _ => Ok(Vec::new()),
        }
    };
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

    let spill_error = |e: std::io::Error| {
        fsutil::io_context(format!(
            "{label}: cannot keep the changes aside in a temporary file of TMPDIR"
        ))(e)
    };
    let mut changes = Spill::new().map_err(&spill_error)?;
    let mut moved = Vec::new();
    let mut skipped = Vec::new();
    // Each entry kept as its compact text: an index may list 600,000 entries.
    let mut kept: Vec<JsonText> = Vec::new();
    for raw in list("artifacts")? {
        let entry = canonical(raw).map_err(|e| invalid(e.to_string()))?;
        let path = json_text::member(entry.raw(), "path")
            .and_then(json_text::string_of)
            .unwrap_or_default();
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
                    // The entry's members, in key order (it was read in order).
                    let mut fields: BTreeMap<String, Box<RawValue>> = BTreeMap::new();
                    json_text::each_member(entry.raw(), |k, v| {
                        fields.insert(k.into_owned(), v.to_owned());
                    })
                    .map_err(|e| invalid(e.to_string()))?;
                    for (field, new) in [
                        ("file_size", json!(size)),
                        ("sha256", json!(sha)),
                        ("schema_version", schema),
                    ] {
                        let old = match fields.get(field) {
                            Some(raw) => value(raw).map_err(|e| invalid(e.to_string()))?,
                            None => Value::Null,
                        };
                        let same = match (field, &old) {
                            ("sha256", Value::String(o)) => {
                                o.eq_ignore_ascii_case(new.as_str().unwrap_or(""))
                            }
                            _ => old == new,
                        };
                        if !same {
                            changes
                                .push(&Change {
                                    path: path.clone(),
                                    field: field.into(),
                                    old,
                                    new: new.clone(),
                                })
                                .map_err(&spill_error)?;
                        }
                        let raw = serde_json::value::to_raw_value(&new)
                            .map_err(|e| invalid(e.to_string()))?;
                        fields.insert(field.to_string(), raw);
                    }
                    let text =
                        serde_json::to_string(&fields).map_err(|e| invalid(e.to_string()))?;
                    kept.push(JsonText::read(text.as_bytes()).map_err(|e| invalid(e.to_string()))?);
                    continue;
                }
                Err(e) => skipped.push(format!("{path} (unreadable: {e})")),
            },
        }
        kept.push(entry);
    }
    let mut missing: Vec<JsonText> = Vec::new();
    for raw in list("missing")? {
        missing.push(canonical(raw).map_err(|e| invalid(e.to_string()))?);
    }
    // Each path moved once, found among those listed by lookup (a scan per path took
    // 8 minutes for 550,000).
    let listed: std::collections::HashSet<String> = missing
        .iter()
        .filter_map(|x| json_text::string_of(x.raw()))
        .collect();
    let mut added = std::collections::HashSet::new();
    for m in &moved {
        if !listed.contains(m.as_str()) && added.insert(m.as_str()) {
            missing.push(JsonText::of(&Value::String(m.clone())));
        }
    }
    drop(listed);
    let old_status = match members.get("status") {
        Some(raw) => value(raw).map_err(|e| invalid(e.to_string()))?,
        None => Value::Null,
    };
    let new_status = if state.as_deref() == Some("failed") {
        "failed"
    } else if !missing.is_empty() {
        "partial"
    } else {
        "ok"
    };
    if old_status != json!(new_status) {
        changes
            .push(&Change {
                path: String::new(),
                field: "status".into(),
                old: old_status,
                new: json!(new_status),
            })
            .map_err(&spill_error)?;
    }
    let changes = changes.done().map_err(&spill_error)?;
    // The document as it will be written: its other members as read, in key order.
    let mut doc: BTreeMap<String, Member> = BTreeMap::new();
    for (k, raw) in &members {
        if !matches!(k.as_str(), "artifacts" | "missing" | "status") {
            doc.insert(
                k.clone(),
                Member::One(canonical(raw).map_err(|e| invalid(e.to_string()))?),
            );
        }
    }
    drop(members);
    drop(old_bytes);
    doc.insert("artifacts".into(), Member::List(kept));
    doc.insert("missing".into(), Member::List(missing));
    doc.insert(
        "status".into(),
        Member::One(JsonText::of(&json!(new_status))),
    );

    let log = RepairLog {
        schema_version: REPAIR_LOG_SCHEMA,
        run_id: base
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        repaired_at: clock.now_rfc3339(),
        previous_index_sha256,
        changes,
        moved_to_missing: moved,
        skipped,
    };
    // The log first: a crash between the two writes leaves the old index with a log
    // whose previous_index_sha256 still matches it, which says the repair did not land.
    // Both streamed into their files: at 200,000 entries each is tens of MB.
    dir.write_atomic_with("repair_log.json", |w| fsutil::write_pretty(w, &log))
        .map_err(fsutil::io_context(format!(
            "{label}/repair_log.json: cannot write"
        )))?;
    dir.write_atomic_with("artifact_index.json", |w| fsutil::write_pretty(w, &doc))
        .map_err(fsutil::io_context(format!(
            "{label}/artifact_index.json: cannot write"
        )))?;
    Ok(log)
}

/// A member of the index as repair writes it: a value, or a list of values (each
/// held as its compact text, written pretty as a `Value` would be).
enum Member {
    One(JsonText),
    List(Vec<JsonText>),
}

impl Serialize for Member {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Member::One(t) => t.serialize(s),
            Member::List(l) => l.serialize(s),
        }
    }
}
