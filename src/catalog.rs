//! The PromptDB catalog (SPEC §5): every `*.lisp` / `*.lith` packet under
//! `(promptdb (root …))` read with the S-expression reader (`v`, `id`, `kind`,
//! `title`, `tags`; parse errors per file), the runs, and the refresh statistics
//! that `lith serve` keeps live (`lith build` writes one check and one refresh).

use std::ops::ControlFlow;
use std::path::Path;

use serde::Serialize;

use crate::beneath::{Dir, EntryKind, MAX_TREE_DEPTH, Met, Unwalked};
use crate::lith::Manifest;
use crate::lith::sexpr::{self, Node, Value};
use crate::report::Report;

pub const DEFAULT_DEBOUNCE_MS: i64 = 1500;

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Packet {
    /// Workspace-relative path.
    pub path: String,
    /// The head of the form: `packet`, `contract`, …
    pub form: Option<String>,
    pub v: Option<String>,
    pub id: Option<String>,
    pub kind: Option<String>,
    pub title: Option<String>,
    pub tags: Vec<String>,
    /// Why the packet could not be read (its path is `path`).
    pub error: Option<String>,
    /// Where in the file the reader stopped (1-based line, and column in
    /// characters); `None` when the error is about the file as a whole.
    pub line: Option<u64>,
    pub column: Option<u64>,
}

str_enum! {
    /// What the last catalog refresh decided.
    pub enum RefreshDecision {
        Refreshed = "refreshed",
        CacheHit = "cache-hit",
        DebouncedCache = "debounced-cache",
        RootMissing = "root-missing",
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Refresh {
    pub strategy: String,
    pub debounce_ms: i64,
    pub checks: u64,
    pub refreshes: u64,
    pub cache_hits: u64,
    pub last_checked_at: Option<String>,
    pub last_refreshed_at: Option<String>,
    pub last_decision: RefreshDecision,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct CatalogRun {
    pub root: String,
    pub run_id: String,
    pub page: Option<String>,
    pub url: Option<String>,
    pub verification: crate::bundle::verify::Verification,
    pub promotable: Option<bool>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Catalog {
    pub generated_at: String,
    pub promptdb_root: Option<String>,
    pub packets: Vec<Packet>,
    pub errors: usize,
    pub runs: Vec<CatalogRun>,
    pub refresh: Refresh,
}

/// A packet that could not be read, with why.
fn unreadable(label: &str, error: String) -> Packet {
    Packet {
        error: Some(error),
        ..packet(label)
    }
}

/// A packet of the syntax error `e`, at its position.
fn misread(label: &str, e: sexpr::ReadError) -> Packet {
    let at = e.position();
    Packet {
        line: at.map(|p| u64::from(p.line)),
        column: at.map(|p| u64::from(p.col)),
        ..unreadable(label, e.reason)
    }
}

/// A packet at `label` that says nothing yet.
fn packet(label: &str) -> Packet {
    Packet {
        path: label.to_string(),
        form: None,
        v: None,
        id: None,
        kind: None,
        title: None,
        tags: Vec::new(),
        error: None,
        line: None,
        column: None,
    }
}

/// What a packet's form says.
fn packet_of(node: &Node, label: &str) -> Packet {
    let mut p = packet(label);
    p.form = node.head().map(str::to_string);
    let field = |name: &str| -> Option<&Node> {
        node.args()
            .iter()
            .find(|f| f.head() == Some(name))
            .and_then(|f| f.args().first())
    };
    p.v = field("v").and_then(Node::as_text).or_else(|| {
        // `(contract "promethean.receipts/v2" …)` carries its version first.
        node.args().first().and_then(|n| match &n.value {
            Value::Str(s) => Some(s.clone()),
            _ => None,
        })
    });
    p.id = field("id").and_then(Node::as_text);
    p.kind = field("kind").and_then(Node::as_text);
    p.title = field("title").and_then(Node::as_text);
    p.tags = field("tags")
        .and_then(Node::items)
        .map(|items| items.iter().filter_map(Node::as_text).collect())
        .unwrap_or_default();
    p
}

/// Every packet under the PromptDB root, sorted by path. The tree is listed and
/// each packet read beneath folder handles, each folder opened from its parent's
/// handle and never through a link (SPEC §3.4), so a folder swapped for a symlink
/// while the catalog is read is never read through. A folder or file that cannot
/// be read is a packet with an error, never a packet left out.
pub fn packets(manifest: &Manifest) -> (Option<String>, Vec<Packet>, bool) {
    let Some(cfg) = &manifest.promptdb else {
        return (None, Vec::new(), false);
    };
    let root = manifest.resolve(&cfg.root);
    if !root.is_dir() {
        return (Some(cfg.root.clone()), Vec::new(), true);
    }
    let at = cfg.root.trim_end_matches('/');
    let mut out = Vec::new();
    // The root is the manifest's to name (a link to it is followed, once); below it,
    // nothing is.
    match std::fs::canonicalize(&root).and_then(|c| Dir::open(&c)) {
        Ok(dir) => read_tree(&dir, at, &mut out),
        Err(e) => out.push(unreadable(at, format!("cannot open the folder: {e}"))),
    }
    (Some(cfg.root.clone()), out, false)
}

/// Reads the packets of the folder `dir` (named `at`) and of the folders below it,
/// depth first in name order.
fn read_tree(dir: &Dir, at: &str, out: &mut Vec<Packet>) {
    let label = |rel: &str| {
        if rel.is_empty() {
            at.to_string()
        } else {
            format!("{at}/{rel}")
        }
    };
    let _ = dir.walk_tree::<std::convert::Infallible>(&mut |met| {
        let e = match met {
            Met::Entry(e) => e,
            Met::Unwalked(rel, why) => {
                let label = label(rel);
                let message = match why {
                    Unwalked::TooDeep => {
                        format!("folders nested deeper than {MAX_TREE_DEPTH} levels are not read")
                    }
                    Unwalked::Open(e) => format!("cannot open the folder: {e}"),
                    Unwalked::List(e) => format!("cannot list the folder: {e}"),
                };
                out.push(unreadable(&label, message));
                return ControlFlow::Continue(false);
            }
        };
        let is_packet = e.name.ends_with(b".lisp") || e.name.ends_with(b".lith");
        let folder = e.kind == EntryKind::Folder;
        if !folder && !is_packet {
            return ControlFlow::Continue(false);
        }
        let label = label(e.rel);
        let Ok(name) = std::str::from_utf8(e.name) else {
            out.push(unreadable(
                &label,
                "the name is not valid UTF-8; rename it so that the catalog can name it".into(),
            ));
            return ControlFlow::Continue(false);
        };
        if e.kind == EntryKind::File {
            out.push(
                match sexpr::read_beneath(e.dir, &[name], Path::new(&label)) {
                    Ok(node) => packet_of(&node, &label),
                    Err(err) => misread(&label, err),
                },
            );
        }
        ControlFlow::Continue(folder)
    });
}

/// What a build read from the PromptDB root, kept in the report; the catalog adds
/// the report's runs to it (see [`Catalog::of`]).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct PromptDb {
    pub root: Option<String>,
    pub packets: Vec<Packet>,
    pub refresh: Refresh,
}

/// Reads every packet, with the refresh statistics given.
pub fn scan(manifest: &Manifest, refresh: Refresh) -> PromptDb {
    let (root, packets, _) = packets(manifest);
    PromptDb {
        root,
        packets,
        refresh,
    }
}

impl Catalog {
    /// The catalog of a finished report: its PromptDB part and its runs.
    pub fn of(report: &Report, db: &PromptDb) -> Catalog {
        Catalog {
            generated_at: report.generated_at.clone(),
            promptdb_root: db.root.clone(),
            errors: db.packets.iter().filter(|p| p.error.is_some()).count(),
            packets: db.packets.clone(),
            runs: runs_of(report),
            refresh: db.refresh.clone(),
        }
    }
}

/// [`Catalog::of`] as `api/catalog.json` spells it, borrowed from the report: the
/// runs are serialized as they are met, never gathered into a list (at 100,000 runs
/// that list was the build's largest allocation while the site was written).
pub fn borrowed<'a>(report: &'a Report, db: &'a PromptDb) -> impl Serialize + 'a {
    #[derive(Serialize)]
    struct CatalogRef<'a> {
        generated_at: &'a str,
        promptdb_root: &'a Option<String>,
        packets: &'a [Packet],
        errors: usize,
        runs: RunsRef<'a>,
        refresh: &'a Refresh,
    }
    struct RunsRef<'a>(&'a Report);
    impl Serialize for RunsRef<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(run_refs(self.0))
        }
    }
    CatalogRef {
        generated_at: &report.generated_at,
        promptdb_root: &db.root,
        packets: &db.packets,
        errors: db.packets.iter().filter(|p| p.error.is_some()).count(),
        runs: RunsRef(report),
        refresh: &db.refresh,
    }
}

/// A [`CatalogRun`] borrowed from the report.
#[derive(Serialize)]
struct RunRef<'a> {
    root: &'a str,
    run_id: &'a str,
    page: &'a Option<String>,
    url: &'a Option<String>,
    verification: crate::bundle::verify::Verification,
    promotable: Option<bool>,
}

/// The catalog's view of every run of the report, in report order.
fn run_refs(report: &Report) -> impl Iterator<Item = RunRef<'_>> {
    report.bundles.roots.iter().flat_map(|r| {
        r.runs.iter().map(move |run| RunRef {
            root: &r.path,
            run_id: &run.run_id,
            page: &run.page,
            url: &run.url,
            verification: run.verification,
            promotable: run
                .promotability
                .as_ref()
                .map(|p| p.promotable_decision_stage),
        })
    })
}

fn runs_of(report: &Report) -> Vec<CatalogRun> {
    run_refs(report)
        .map(|r| CatalogRun {
            root: r.root.to_string(),
            run_id: r.run_id.to_string(),
            page: r.page.clone(),
            url: r.url.clone(),
            verification: r.verification,
            promotable: r.promotable,
        })
        .collect()
}

/// The statistics of a single build: one check, one refresh.
pub fn single_refresh(manifest: &Manifest, at: &str) -> Refresh {
    let missing = manifest
        .promptdb
        .as_ref()
        .is_some_and(|p| !manifest.resolve(&p.root).is_dir());
    Refresh {
        strategy: "polling+debounce".into(),
        debounce_ms: debounce_ms(manifest),
        checks: 1,
        refreshes: 1,
        cache_hits: 0,
        last_checked_at: Some(at.to_string()),
        last_refreshed_at: Some(at.to_string()),
        last_decision: if missing {
            RefreshDecision::RootMissing
        } else {
            RefreshDecision::Refreshed
        },
    }
}

pub fn debounce_ms(manifest: &Manifest) -> i64 {
    manifest
        .promptdb
        .as_ref()
        .and_then(|p| p.debounce_ms)
        .unwrap_or(DEFAULT_DEBOUNCE_MS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn read(root: &Path) -> Vec<Packet> {
        let mut out = Vec::new();
        read_tree(&Dir::open(root).unwrap(), "db", &mut out);
        out
    }

    #[test]
    fn packets_are_read_in_path_order_and_what_cannot_be_read_says_so() {
        use std::os::unix::ffi::OsStrExt;
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("db");
        std::fs::create_dir_all(root.join("b/deeper")).unwrap();
        std::fs::write(
            root.join("a.lisp"),
            r#"(packet (v "1") (id "a") (tags ("x" "y")))"#,
        )
        .unwrap();
        std::fs::write(
            root.join("b/deeper/c.lith"),
            r#"(contract "c/v2" (id "c"))"#,
        )
        .unwrap();
        std::fs::write(root.join("b/broken.lisp"), "(packet (id").unwrap();
        std::fs::write(root.join("notes.txt"), "not a packet").unwrap();
        std::fs::write(
            root.join(std::ffi::OsStr::from_bytes(b"bad-\xff.lisp")),
            "(p)",
        )
        .unwrap();
        std::os::unix::fs::symlink("a.lisp", root.join("z-link.lisp")).unwrap();
        let got: Vec<(String, Option<String>, bool)> = read(&root)
            .into_iter()
            .map(|p| (p.path, p.id, p.error.is_some()))
            .collect();
        assert_eq!(
            got,
            [
                ("db/a.lisp".to_string(), Some("a".to_string()), false),
                ("db/b/broken.lisp".to_string(), None, true),
                (
                    "db/b/deeper/c.lith".to_string(),
                    Some("c".to_string()),
                    false
                ),
                ("db/bad-\u{fffd}.lisp".to_string(), None, true),
            ]
        );
    }

    /// SPEC §3.4: a packet is read beneath its folder's handle. Read by name (as a
    /// walk of paths did), a folder swapped for a link to one outside the root
    /// between the listing and the read gave the outside packet within ten tries.
    #[test]
    fn swapping_a_folder_for_a_symlink_never_reads_a_packet_outside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("db");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(t.path().join("evil")).unwrap();
        std::fs::write(root.join("sub/p.lisp"), r#"(packet (id "inside"))"#).unwrap();
        std::fs::write(t.path().join("evil/p.lisp"), r#"(packet (id "outside"))"#).unwrap();
        std::os::unix::fs::symlink(t.path().join("evil"), root.join("link")).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let swapper = {
            let (root, stop) = (root.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = std::fs::rename(root.join("sub"), root.join("sub.real"));
                    let _ = std::fs::rename(root.join("link"), root.join("sub"));
                    let _ = std::fs::rename(root.join("sub"), root.join("link"));
                    let _ = std::fs::rename(root.join("sub.real"), root.join("sub"));
                }
            })
        };
        let mut inside = 0;
        for i in 0..3000 {
            for p in read(&root) {
                assert_ne!(p.id.as_deref(), Some("outside"), "iteration {i}: {p:?}");
                inside += usize::from(p.id.as_deref() == Some("inside"));
            }
        }
        stop.store(true, Ordering::Relaxed);
        swapper.join().unwrap();
        assert!(inside > 0, "the packet inside was never read");
    }
}
