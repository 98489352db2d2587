//! `lith commit`: the writer side of the commit barrier (SPEC §3.3, §3.7).
//!
//! Under the bundle-root lock: list the run's files beneath its handle, hash them in
//! parallel, write `artifact_index.json` atomically (temp file, fsync, rename, fsync
//! the folder), then move `LATEST` the same way. A crash at any point leaves either
//! no index or the complete new one, and `LATEST` never names a run without an
//! index.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::{Value, json};

use super::index::RunStatus;
use super::lock::{self, LockError, LockMode};
use super::paths;
use super::verify::{BOOKKEEPING_FILES, FileFacts, describe_open};
use crate::beneath::{Dir, EntryKind, MAX_TREE_DEPTH, Met, Refusal, Unwalked};
use crate::fsutil;

/// The index schema lith writes; the same one the producers in the field write.
pub const INDEX_SCHEMA: &str = "runtime-tools.artifact_index.v0.1";

#[derive(Debug, Clone)]
pub struct CommitOptions {
    /// Artifacts the run was expected to produce (bundle-relative).
    pub expect: Vec<String>,
    /// Canonical repository root: write repository-relative paths.
    pub repo_root: Option<PathBuf>,
    pub lock: LockMode,
    pub update_latest: bool,
}

#[derive(Debug, serde::Serialize)]
pub struct CommitOutcome {
    pub run_id: String,
    pub artifacts: usize,
    pub missing: Vec<String>,
    pub status: String,
    /// Links and other entries that were not indexed, with why.
    pub skipped: Vec<String>,
    pub latest_updated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(
        "{0}: the run is still in progress (run_status.json state in_progress); mark it complete or failed before committing"
    )]
    InProgress(String),
    #[error(
        "{0}: already committed (artifact_index.json exists); use `lith reindex --repair` to rewrite an index"
    )]
    AlreadyCommitted(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Io(#[from] fsutil::IoFailure),
}

/// Names that lith's own atomic writers use for temporary files.
pub fn is_writer_temp(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

pub fn commit(run_dir: &Path, opts: &CommitOptions) -> Result<CommitOutcome, CommitError> {
    let label = fsutil::slash_path(run_dir);
    let base = std::fs::canonicalize(run_dir).map_err(fsutil::io_context(format!(
        "{label}: cannot open the run folder"
    )))?;
    if !base.is_dir() {
        return Err(CommitError::Invalid(format!("{label}: not a folder")));
    }
    let run_id = base
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| CommitError::Invalid(format!("{label}: has no folder name")))?;
    let root = base
        .parent()
        .ok_or_else(|| CommitError::Invalid(format!("{label}: has no bundle root above it")))?
        .to_path_buf();
    let mut expect = Vec::new();
    for e in &opts.expect {
        let parts = paths::lexical_components(e)
            .map_err(|why| CommitError::Invalid(format!("--expect {e:?}: {}", why.describe())))?;
        expect.push(parts.join("/"));
    }
    let prefix = match &opts.repo_root {
        Some(r) => {
            let rel = base.strip_prefix(r).map_err(|_| {
                CommitError::Invalid(format!("{label} is not inside --repo-root {}", r.display()))
            })?;
            Some(fsutil::slash_path(rel))
        }
        None => None,
    };

    let _guard = lock::acquire(&root.join(".runtime.lock"), opts.lock)?;

    // The bundle root and the run folder as handles, the run opened from the root's:
    // everything below is read and written beneath them, so a folder swapped for a
    // symlink meanwhile can neither put an outside digest in the index nor have the
    // index or `LATEST` written outside.
    let root_dir = Dir::open(&root).map_err(fsutil::io_context(format!(
        "{label}: cannot open the bundle root"
    )))?;
    let dir = base
        .file_name()
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EINVAL))
        .and_then(|name| root_dir.folder(name.as_encoded_bytes()))
        .map_err(fsutil::io_context(format!(
            "{label}: cannot open the run folder"
        )))?;
    if dir.stat_at(b"artifact_index.json").is_ok() {
        return Err(CommitError::AlreadyCommitted(label));
    }
    let status = match dir.read_json_text(&["run_status.json"]) {
        Ok(t) => Some(
            RunStatus::from_text(t)
                .map_err(|m| CommitError::Invalid(format!("{label}/run_status.json: {m}")))?,
        ),
        Err(fsutil::JsonReadError::NotFound) => None,
        Err(e) => {
            return Err(CommitError::Invalid(format!(
                "{label}/run_status.json: {e}"
            )));
        }
    };
    if status.as_ref().and_then(|s| s.state.as_deref()) == Some("in_progress") {
        return Err(CommitError::InProgress(label));
    }

    // The files of the run: regular files only, links are never indexed. Listed
    // beneath the run's handle, each folder opened from its parent's without
    // following a link, so a folder swapped for a symlink meanwhile can't put the
    // names of another folder in the list.
    let listing = list_run(&dir).map_err(|e| match e {
        ListError::Io(rel, e) => fsutil::io_context(format!(
            "{label}/{rel}: cannot list the folder"
        ))(e)
        .into(),
        ListError::TooDeep(rel) => CommitError::Invalid(format!(
            "{label}/{rel}: folders nested deeper than {MAX_TREE_DEPTH} levels are not indexed; flatten the run's layout"
        )),
    })?;
    let Listing { files, skipped } = listing;
    // Each file is opened beneath the run folder's handle and described from that
    // handle: a folder swapped for a symlink after the listing can't make the index
    // record a file outside the run.
    let described: Vec<(String, FileFacts)> = files
        .par_iter()
        .map(|rel| {
            let parts: Vec<&str> = rel.split('/').collect();
            let name = parts.last().copied().unwrap_or_default();
            dir.open_file(&parts)
                .map_err(|r| match r {
                    Refusal::Io(e) => e,
                    other => std::io::Error::other(other.to_string()),
                })
                .and_then(|(f, meta)| describe_open(f, &meta, name))
                .map(|d| (rel.clone(), d))
                .map_err(fsutil::io_context(format!("{label}/{rel}")))
        })
        .collect::<Result<_, _>>()?;

    let with_prefix = |rel: &str| match &prefix {
        Some(p) if !p.is_empty() && p != "." => format!("{p}/{rel}"),
        _ => rel.to_string(),
    };
    let artifacts: Vec<Value> = described
        .iter()
        .map(|(rel, (size, sha, schema))| {
            json!({"path": with_prefix(rel), "file_size": size, "sha256": sha, "schema_version": schema})
        })
        .collect();
    let mut missing: Vec<String> = expect
        .iter()
        .filter(|e| !files.contains(e))
        .map(|e| with_prefix(e))
        .collect();
    missing.sort();
    missing.dedup();
    let status_word = if status.as_ref().and_then(|s| s.state.as_deref()) == Some("failed") {
        "failed"
    } else if !missing.is_empty() {
        "partial"
    } else {
        "ok"
    };
    let world_id = status
        .as_ref()
        .and_then(|s| s.field("world_id"))
        .and_then(|v| serde_json::from_str(v.get()).ok())
        .unwrap_or(Value::Null);
    let index = json!({
        "schema_version": INDEX_SCHEMA,
        "run_id": run_id,
        "world_id": world_id,
        "artifacts": artifacts,
        "missing": missing,
        "status": status_word,
    });
    let mut bytes =
        serde_json::to_vec_pretty(&index).map_err(|e| CommitError::Invalid(e.to_string()))?;
    bytes.push(b'\n');
    dir.write_atomic("artifact_index.json", &bytes)
        .map_err(fsutil::io_context(format!(
            "{label}/artifact_index.json: cannot write"
        )))?;
    if opts.update_latest {
        root_dir
            .write_atomic("LATEST", format!("{run_id}\n").as_bytes())
            .map_err(fsutil::io_context("LATEST: cannot write"))?;
    }
    Ok(CommitOutcome {
        run_id,
        artifacts: described.len(),
        missing,
        status: status_word.to_string(),
        skipped,
        latest_updated: opts.update_latest,
    })
}

/// What listing a run found: its regular files (run-relative, `/`-separated, in
/// name order with a folder's files where its name falls) and the entries passed
/// over, each with why.
#[derive(Default)]
struct Listing {
    files: Vec<String>,
    skipped: Vec<String>,
}

enum ListError {
    Io(String, std::io::Error),
    TooDeep(String),
}

fn list_run(dir: &Dir) -> Result<Listing, ListError> {
    let mut out = Listing::default();
    let walked = dir.walk_tree(&mut |met| {
        let e = match met {
            Met::Entry(e) => e,
            Met::Unwalked(rel, Unwalked::TooDeep) => {
                return ControlFlow::Break(ListError::TooDeep(rel.to_string()));
            }
            Met::Unwalked(rel, Unwalked::Open(e) | Unwalked::List(e)) => {
                let here = if rel.is_empty() { "." } else { rel };
                return ControlFlow::Break(ListError::Io(here.to_string(), e));
            }
        };
        let Ok(name) = std::str::from_utf8(e.name) else {
            // An index holds UTF-8 text: a name that is not UTF-8 can't be recorded
            // faithfully, so it is reported (a folder once, with all it holds)
            // rather than indexed under a mangled name.
            out.skipped.push(format!(
                "{} (the file name is not UTF-8; not indexed)",
                e.rel
            ));
            return ControlFlow::Continue(false);
        };
        match e.kind {
            EntryKind::Folder => return ControlFlow::Continue(true),
            _ if (e.depth == 1 && BOOKKEEPING_FILES[..2].contains(&name))
                || is_writer_temp(name) => {}
            EntryKind::File => out.files.push(e.rel.to_string()),
            EntryKind::Link => out
                .skipped
                .push(format!("{} (symbolic link; not indexed)", e.rel)),
            EntryKind::Other => {
                let what = e
                    .dir
                    .stat_at(e.name)
                    .map(|st| fsutil::kind_of_mode(st.st_mode))
                    .unwrap_or("special file");
                out.skipped.push(format!("{} ({what}; not indexed)", e.rel));
            }
        }
        ControlFlow::Continue(false)
    });
    match walked {
        ControlFlow::Continue(()) => Ok(out),
        ControlFlow::Break(e) => Err(e),
    }
}
