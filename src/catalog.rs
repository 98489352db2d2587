//! The PromptDB catalog (SPEC §5): every `*.lisp` / `*.lith` packet under
//! `(promptdb (root …))` read with the S-expression reader (`v`, `id`, `kind`,
//! `title`, `tags`; parse errors per file), the runs, and the refresh statistics
//! that `lith serve` keeps live (`lith build` writes one check and one refresh).

use std::path::Path;

use serde::Serialize;

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
    pub error: Option<String>,
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

/// Reads one packet file.
pub fn read_packet(path: &Path, label: &str) -> Packet {
    let mut p = Packet {
        path: label.to_string(),
        form: None,
        v: None,
        id: None,
        kind: None,
        title: None,
        tags: Vec::new(),
        error: None,
    };
    let node = match sexpr::read_file(path) {
        Ok(n) => n,
        Err(e) => {
            p.error = Some(e.to_string().replace(&*path.to_string_lossy(), label));
            return p;
        }
    };
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

/// Every packet under the PromptDB root (no symlinks followed), sorted by path.
pub fn packets(manifest: &Manifest) -> (Option<String>, Vec<Packet>, bool) {
    let Some(cfg) = &manifest.promptdb else {
        return (None, Vec::new(), false);
    };
    let root = manifest.resolve(&cfg.root);
    if !root.is_dir() {
        return (Some(cfg.root.clone()), Vec::new(), true);
    }
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(&root)
        .follow_links(false)
        .sort_by_file_name()
    {
        let Ok(e) = e else { continue };
        let name = e.file_name().to_string_lossy();
        if !e.file_type().is_file() || !(name.ends_with(".lisp") || name.ends_with(".lith")) {
            continue;
        }
        let rel = e
            .path()
            .strip_prefix(&root)
            .map(crate::fsutil::slash_path)
            .unwrap_or_default();
        let label = format!("{}/{rel}", cfg.root.trim_end_matches('/'));
        out.push(read_packet(e.path(), &label));
    }
    (Some(cfg.root.clone()), out, false)
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
