//! Bundle layout (SPEC §3.1): finding bundle roots from globs, the runs inside a root,
//! and `LATEST`.
//!
//! Globs are expanded one path component at a time below the workspace, so a pattern
//! like `book/experiments/*/out` never walks the whole repository. Symbolic links are
//! never followed into a root or a run: a linked folder is listed as skipped.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::paths;
use super::verify::{RunReport, VerifyOptions, verify_run_at};
use super::witness::{self, Witnesses};
use crate::beneath::Dir;
use crate::finding::{Code, Finding, Severity};
use crate::fsutil;

/// The largest `LATEST` file read.
const MAX_LATEST_BYTES: u64 = 4096;

/// Expands a workspace-relative glob (`*`, `**`, `?`, `[…]`) into the folders it
/// matches, as workspace-relative paths, sorted.
pub fn expand_glob(workspace: &Path, pattern: &str) -> Result<Vec<String>, String> {
    expand(workspace, pattern, false)
}

/// Like [`expand_glob`], but the last component matches regular files.
pub fn expand_glob_files(workspace: &Path, pattern: &str) -> Result<Vec<String>, String> {
    expand(workspace, pattern, true)
}

fn expand(workspace: &Path, pattern: &str, files: bool) -> Result<Vec<String>, String> {
    let parts = paths::lexical_components(pattern)
        .map_err(|why| format!("pattern {pattern:?} is not usable: {}", why.describe()))?;
    let last = parts.len().saturating_sub(1);
    let mut current: Vec<Vec<String>> = vec![Vec::new()];
    for (index, part) in parts.into_iter().enumerate() {
        let want_file = files && index == last;
        let wanted = |t: std::fs::FileType| if want_file { t.is_file() } else { t.is_dir() };
        let mut next = Vec::new();
        if part == "**" {
            for base in &current {
                let dir = join(workspace, base);
                for entry in walkdir::WalkDir::new(&dir)
                    .follow_links(false)
                    .sort_by_file_name()
                {
                    let Ok(entry) = entry else { continue };
                    if !wanted(entry.file_type()) {
                        continue;
                    }
                    let Ok(rel) = entry.path().strip_prefix(&dir) else {
                        continue;
                    };
                    let mut p = base.clone();
                    p.extend(
                        rel.components()
                            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
                    );
                    next.push(p);
                }
            }
        } else if is_literal(part) {
            for base in &current {
                let mut p = base.clone();
                p.push(part.to_string());
                if std::fs::symlink_metadata(join(workspace, &p))
                    .is_ok_and(|m| wanted(m.file_type()))
                {
                    next.push(p);
                }
            }
        } else {
            let matcher = globset::GlobBuilder::new(part)
                .literal_separator(true)
                .build()
                .map_err(|e| format!("bundle root pattern {pattern:?}: {e}"))?
                .compile_matcher();
            for base in &current {
                let Ok(rd) = std::fs::read_dir(join(workspace, base)) else {
                    continue;
                };
                let mut names: Vec<String> = rd
                    .filter_map(Result::ok)
                    .filter(|e| e.file_type().is_ok_and(wanted))
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| matcher.is_match(n))
                    .collect();
                names.sort();
                for n in names {
                    let mut p = base.clone();
                    p.push(n);
                    next.push(p);
                }
            }
        }
        next.sort();
        next.dedup();
        current = next;
    }
    Ok(current
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(|p| p.join("/"))
        .collect())
}

fn is_literal(part: &str) -> bool {
    !part.contains(['*', '?', '[', ']', '{', '}'])
}

fn join(workspace: &Path, parts: &[String]) -> PathBuf {
    parts.iter().fold(workspace.to_path_buf(), |p, c| p.join(c))
}

/// The files whose presence makes a folder a run.
const RUN_FILES: [&str; 2] = ["run_status.json", "artifact_index.json"];

/// True when a folder holds `run_status.json` or `artifact_index.json`.
pub fn is_run_dir(dir: &Path) -> bool {
    RUN_FILES
        .iter()
        .any(|f| std::fs::symlink_metadata(dir.join(f)).is_ok())
}

/// What `LATEST` says and whether it can be trusted.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Latest {
    /// The trimmed content (shortened when absurdly long).
    pub value: String,
    /// The run it names, when valid.
    pub run_id: Option<String>,
    pub valid: bool,
    /// Why it is invalid.
    pub reason: Option<String>,
}

/// True when the folder `name` of `root` (not a link) holds `run_status.json` or
/// `artifact_index.json`, each looked up without following a link.
fn holds_a_run(root: &Dir, name: &[u8]) -> bool {
    RUN_FILES
        .iter()
        .any(|f| root.stat_no_links([name, f.as_bytes()]).is_ok())
}

/// Reads and validates `<root>/LATEST`. `None` when the file does not exist.
pub fn read_latest(root: &Path) -> Option<Latest> {
    match Dir::open_resolved(root) {
        Ok((dir, _)) => read_latest_in(&dir),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            None
        }
        Err(e) => Some(Latest {
            value: String::new(),
            run_id: None,
            valid: false,
            reason: Some(format!(
                "LATEST cannot be read: the bundle root cannot be opened: {e}"
            )),
        }),
    }
}

/// [`read_latest`] of the bundle root opened as `root`: `LATEST` and the run it
/// names are looked up beneath that handle.
pub fn read_latest_in(root: &Dir) -> Option<Latest> {
    let invalid = |value: String, reason: String| Latest {
        value,
        run_id: None,
        valid: false,
        reason: Some(reason),
    };
    let bytes = match root.read_own(b"LATEST", MAX_LATEST_BYTES) {
        Ok(b) => b,
        Err(fsutil::JsonReadError::NotFound) => return None,
        Err(e) => return Some(invalid(String::new(), format!("LATEST {e}"))),
    };
    let text = String::from_utf8_lossy(&bytes);
    let value = text.trim().to_string();
    let shown = super::index::truncate(&value, 200);
    if value.is_empty() {
        return Some(invalid(shown, "LATEST is empty".into()));
    }
    if value.contains(['/', '\\', '\0']) || value == ".." || value == "." || value.contains("..") {
        return Some(invalid(
            shown,
            "LATEST must hold a bare run id, not a path (no `/`, `\\` or `..`)".into(),
        ));
    }
    if value.starts_with('~') || value.contains(['\n', '\r']) {
        return Some(invalid(shown, "LATEST must hold exactly one run id".into()));
    }
    let is_folder = root
        .stat_no_links([value.as_bytes()])
        .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR);
    if !is_folder {
        return Some(invalid(
            shown,
            format!(
                "LATEST names {value:?}, but no run folder of that name exists in this bundle root"
            ),
        ));
    }
    if !holds_a_run(root, value.as_bytes()) {
        return Some(invalid(
            shown,
            format!(
                "LATEST names {value:?}, a folder with neither run_status.json nor artifact_index.json"
            ),
        ));
    }
    Some(Latest {
        value: shown,
        run_id: Some(value),
        valid: true,
        reason: None,
    })
}

/// A folder or link in a bundle root that is not a run.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Skipped {
    pub name: String,
    pub reason: String,
}

/// One bundle root and everything in it.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RootScan {
    /// Workspace-relative path of the root.
    pub path: String,
    pub latest: Option<Latest>,
    pub runs: Vec<RunReport>,
    /// Folders that are not runs (with why), and links that were not followed.
    pub skipped: Vec<Skipped>,
    /// Files that sit directly in the root (`promotion_packet.json`, …).
    pub files: Vec<String>,
    pub witnesses: Option<Witnesses>,
    pub findings: Vec<Finding>,
}

/// Lists a root's entries without verifying anything yet.
pub struct RootListing {
    /// Run folders: the name as shown (lossy for a name that is not UTF-8) and the
    /// name on disk.
    pub run_dirs: Vec<(String, std::ffi::OsString)>,
    pub skipped: Vec<Skipped>,
    pub files: Vec<String>,
    /// The root's handle, opened once: the root is listed, its folders judged and
    /// its runs opened beneath it, so a folder above the root swapped for a link
    /// mid-build cannot make one build list one tree and read runs of another.
    pub dir: Dir,
    /// The path the root was opened by, every link on the way resolved: how its
    /// runs' files are named to the user, never how they are opened.
    pub real: std::path::PathBuf,
}

/// How many entries of the folder `root` are folders whose name `keep` takes: the
/// runs a root may hold, counted to draw a progress bar before it is listed.
pub fn count_folders(root: &Path, keep: impl Fn(&std::ffi::OsStr) -> bool) -> u64 {
    let Ok(entries) = std::fs::read_dir(root) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()) && keep(&e.file_name()))
        .count() as u64
}

/// Opens the bundle root at `root` (following links to it) and lists it through
/// that handle.
pub fn list_root(root: &Path) -> std::io::Result<RootListing> {
    use crate::beneath::EntryKind;
    use std::os::unix::ffi::OsStringExt;
    let (dir, real) = Dir::open_resolved(root)?;
    let entries = dir.entries()?;
    let mut l = RootListing {
        run_dirs: Vec::new(),
        skipped: Vec::new(),
        files: Vec::new(),
        dir,
        real,
    };
    for (raw, kind, _) in entries {
        let name = String::from_utf8_lossy(&raw).into_owned();
        if kind == EntryKind::Link {
            l.skipped.push(Skipped {
                name,
                reason: "symbolic link; lith does not follow links in a bundle root".into(),
            });
        } else if kind == EntryKind::Folder {
            if holds_a_run(&l.dir, &raw) {
                l.run_dirs.push((name, std::ffi::OsString::from_vec(raw)));
            } else {
                l.skipped.push(Skipped {
                    name,
                    reason: "not a run: no run_status.json and no artifact_index.json".into(),
                });
            }
        } else {
            l.files.push(name);
        }
    }
    Ok(l)
}

/// Scans one root: verifies every run (in parallel) and checks `LATEST`.
///
/// `listing` is the root's [`list_root`], taken once by the caller (which may have
/// counted the runs in it first).
pub fn scan_root(
    workspace: &Path,
    rel: &str,
    listing: std::io::Result<RootListing>,
    opts: &VerifyOptions,
) -> RootScan {
    use rayon::prelude::*;
    let root = workspace.join(rel);
    let mut scan = RootScan {
        path: rel.to_string(),
        latest: None,
        runs: Vec::new(),
        skipped: Vec::new(),
        files: Vec::new(),
        witnesses: None,
        findings: Vec::new(),
    };
    let listing = match listing {
        Ok(l) => l,
        Err(e) => {
            scan.findings.push(
                Finding::new(
                    Code::RootUnreadable,
                    Severity::Error,
                    format!("cannot list the bundle root: {e}"),
                )
                .at(rel),
            );
            return scan;
        }
    };
    // The root was opened once when it was listed; each run folder, its `LATEST`
    // and its witnesses are opened by name beneath that handle, refusing a link in
    // a run folder's place.
    let root_abs = std::path::absolute(&root).unwrap_or_else(|_| root.clone());
    scan.runs = listing
        .run_dirs
        .par_iter()
        .map(|(name, on_disk)| {
            verify_run_at(
                &root_abs.join(on_disk),
                Some(listing.real.join(on_disk)),
                Some(&listing.dir),
                &format!("{rel}/{name}"),
                opts,
            )
        })
        .collect();
    scan.skipped = listing.skipped;
    scan.files = listing.files;
    scan.latest = read_latest_in(&listing.dir);
    let (w, wf) = witness::load_in(Some(&listing.dir), rel);
    scan.witnesses = w;
    scan.findings.extend(wf);
    scan.findings.sort();
    scan
}

/// Adds the root's findings that depend on its runs (`latest_uncommitted`,
/// `root_has_no_runs`). Called once every run of the root is known: after a whole
/// build's scan, or after a merge of partitions.
pub fn settle_root(scan: &mut RootScan) {
    let rel = scan.path.clone();
    if let Some(l) = &scan.latest {
        if let Some(reason) = &l.reason {
            scan.findings.push(
                Finding::new(Code::LatestInvalid, Severity::Partial, reason.clone())
                    .at(format!("{rel}/LATEST")),
            );
        } else if let Some(run) = scan
            .runs
            .iter()
            .find(|r| Some(&r.run_id) == l.run_id.as_ref())
            && !run.committed
        {
            scan.findings.push(
                Finding::new(
                    Code::LatestUncommitted,
                    Severity::Partial,
                    format!("LATEST points at {:?}, which has no artifact_index.json; LATEST must only move after the commit", run.run_id),
                )
                .at(format!("{rel}/LATEST")),
            );
        }
    }
    let unreadable = scan.findings.iter().any(|f| f.code == Code::RootUnreadable);
    if scan.runs.is_empty() && !unreadable {
        scan.findings.push(
            Finding::new(
                Code::RootHasNoRuns,
                Severity::Warning,
                "this bundle root holds no run folders",
            )
            .at(rel),
        );
    }
    scan.findings.sort();
}

/// What a `BUNDLE` argument (a run folder, or a bundle root) names.
#[derive(Debug, Clone)]
pub enum BundleTarget {
    /// A run folder, found directly or through `LATEST`.
    Run {
        run_dir: PathBuf,
        latest: Option<Latest>,
    },
    /// A bundle root whose `LATEST` is absent or invalid: strict readers stop here.
    Refused {
        reason: &'static str,
        message: String,
        latest: Option<Latest>,
    },
}

/// Resolves a `BUNDLE` argument the way strict loading does (SPEC §3.1).
pub fn resolve_bundle(given: &Path) -> BundleTarget {
    if is_run_dir(given) {
        return BundleTarget::Run {
            run_dir: given.to_path_buf(),
            latest: None,
        };
    }
    match read_latest(given) {
        Some(l) if l.valid => BundleTarget::Run {
            run_dir: given.join(l.run_id.as_deref().unwrap_or_default()),
            latest: Some(l),
        },
        Some(l) => BundleTarget::Refused {
            reason: "latest_invalid",
            message: l.reason.clone().unwrap_or_default(),
            latest: Some(l),
        },
        None => BundleTarget::Refused {
            reason: "latest_missing",
            message: "this folder is not a run (no run_status.json or artifact_index.json) and has no LATEST; pass a run folder".into(),
            latest: None,
        },
    }
}
