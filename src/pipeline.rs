//! The build pipeline as a library: a loaded manifest → gather every check's
//! results → settle them into one [`Report`]. `lith build`, `lith serve` and (for
//! their settled half) `lith merge` and `lith render` all go through here, so the
//! report of a build, of a merge of its partitions and of a re-render are one and
//! the same value.
//!
//! The pipeline has two halves. [`gather`] reads the inputs: it discovers the bundle
//! roots, verifies the runs a [`Partition`] owns (all of them without one), and —
//! in the whole build or partition 1 — evaluates the workspace-wide sections
//! (queue, receipts, gates, DoD, drift, PromptDB). [`settle`] derives everything that
//! depends on all runs at once: root findings such as `latest_uncommitted`, page
//! names, totals, "nothing was checked", and the verdict. A partition stops after
//! gathering; [`merge`] joins partitions and settles them exactly as a whole build
//! settles itself.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::bundle::layout::{self, RootScan};
use crate::bundle::verify::{Mode, RunReport, VerifyOptions};
use crate::clock::Clock;
use crate::finding::{Code, Finding, Severity};
use crate::lith::Manifest;
use crate::report::{
    self, BundlesSection, ManifestInfo, Report, SiteInfo, Totals, Verdict, VerdictLabel,
};

/// The schema of a partial report (`lith build --partition`).
pub const PARTIAL_SCHEMA: &str = "lith.partial/v2";

/// How a build runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    /// No progress bar.
    pub quiet: bool,
    /// Keep each run's index entries for its attestation (`build --attest`).
    pub attest: bool,
    /// Stamps of the run folders, and the previous build's runs to take unchanged
    /// ones from (`lith build` into a previous site).
    pub reuse: Option<std::sync::Arc<crate::bundle::reuse::Reuse>>,
}

/// Partition `index` of `count` (1-based): the runs whose root and folder name hash
/// to it. The share of a run never depends on which other runs exist, so shards
/// started on the same checkout split it without gaps or overlaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    pub index: u32,
    pub count: u32,
}

impl Partition {
    /// Parses `K/N` with 1 ≤ K ≤ N ≤ 4096.
    pub fn parse(s: &str) -> Result<Partition, String> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not K/N (for example 2/4)"))?;
        let num = |t: &str| {
            t.trim()
                .parse::<u32>()
                .map_err(|_| format!("{s:?} is not K/N with whole numbers (for example 2/4)"))
        };
        let (index, count) = (num(k)?, num(n)?);
        if count == 0 || count > 4096 {
            return Err(format!("{s:?}: N must be between 1 and 4096"));
        }
        if index == 0 || index > count {
            return Err(format!("{s:?}: K must be between 1 and N ({count})"));
        }
        Ok(Partition { index, count })
    }

    /// True when this partition verifies the run folder `name` of root `root`.
    pub fn owns(self, root: &str, name: &std::ffi::OsStr) -> bool {
        use sha2::{Digest, Sha256};
        use std::os::unix::ffi::OsStrExt;
        let mut h = Sha256::new();
        h.update(root.as_bytes());
        h.update([0]);
        h.update(name.as_bytes());
        let d = h.finalize();
        let n = u64::from_be_bytes(d[..8].try_into().expect("8 bytes"));
        (n % u64::from(self.count)) as u32 + 1 == self.index
    }

    /// Whether this partition evaluates the workspace-wide sections.
    fn has_workspace_sections(self) -> bool {
        self.index == 1
    }
}

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What one partition of a build gathered: `lith build --partition K/N` writes it,
/// `lith merge` reads it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartialReport {
    pub schema_version: String,
    pub partition: Partition,
    /// sha256 of the manifest's bytes: partitions of different manifests never merge.
    pub manifest_sha256: String,
    /// Per bundle root (in report order): how many run folders the root listed, and
    /// the listing position of each run this partition verified.
    pub roots: Vec<PartialRoot>,
    /// The gathered, unsettled report: this partition's runs, and the workspace-wide
    /// sections in partition 1 only.
    pub report: Report,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialRoot {
    pub path: String,
    pub listed: usize,
    pub positions: Vec<usize>,
}

/// The decision-stage artifacts a build assesses promotability with (the manifest's
/// `bundles` section; none without one).
pub fn decision_stage(manifest: &Manifest) -> Vec<String> {
    manifest
        .bundles
        .as_ref()
        .map(|b| b.decision_stage_artifacts.clone())
        .unwrap_or_default()
}

/// Runs every check the manifest configures and returns the settled report.
pub fn evaluate(manifest: &Manifest, clock: &Clock, opts: &Options) -> Result<Report, Error> {
    let (mut report, _) = gather(manifest, clock, opts, None)?;
    settle(&mut report);
    Ok(report)
}

/// Runs the checks of one partition and returns what it gathered, unsettled.
pub fn evaluate_partition(
    manifest: &Manifest,
    clock: &Clock,
    opts: &Options,
    partition: Partition,
) -> Result<PartialReport, Error> {
    let (report, roots) = gather(manifest, clock, opts, Some(partition))?;
    let sha256 = manifest.sha256.ok_or_else(|| Error::Manifest {
        path: manifest.path.clone(),
        source: std::io::Error::other("the manifest was not read from its file"),
    })?;
    Ok(PartialReport {
        schema_version: PARTIAL_SCHEMA.to_string(),
        partition,
        manifest_sha256: crate::bundle::verify::hex(&sha256),
        roots,
        report,
    })
}

/// Reads the inputs: discovery, the runs `partition` owns (every run without one),
/// and the workspace-wide sections. Returns the unsettled report and each root's
/// listing positions.
fn gather(
    manifest: &Manifest,
    clock: &Clock,
    opts: &Options,
    partition: Option<Partition>,
) -> Result<(Report, Vec<PartialRoot>), Error> {
    let workspace = &manifest.workspace;
    let ws_canon = std::fs::canonicalize(workspace).map_err(|source| Error::Workspace {
        path: workspace.clone(),
        source,
    })?;
    let mut findings = Vec::new();

    let mut roots: Vec<String> = Vec::new();
    let patterns = manifest
        .bundles
        .as_ref()
        .map(|b| b.roots.clone())
        .unwrap_or_default();
    for pattern in &patterns {
        let matched = match layout::expand_glob(workspace, pattern) {
            Ok(m) => m,
            Err(e) => {
                findings.push(Finding::new(Code::RootPatternInvalid, Severity::Error, e));
                continue;
            }
        };
        if matched.is_empty() {
            findings.push(Finding::new(
                Code::RootPatternMatchedNothing,
                Severity::Warning,
                format!("bundle root pattern {pattern:?} matched no folder"),
            ));
        }
        for rel in matched {
            match std::fs::canonicalize(workspace.join(&rel)) {
                Ok(c) if c.starts_with(&ws_canon) => roots.push(rel),
                _ => findings.push(
                    Finding::new(
                        Code::RootOutsideWorkspace,
                        Severity::Warning,
                        "this bundle root resolves outside the workspace and is not read",
                    )
                    .at(rel),
                ),
            }
        }
    }
    roots.sort();
    roots.dedup();
    for rel in &roots {
        if layout::is_run_dir(&workspace.join(rel)) {
            findings.push(
                Finding::new(
                    Code::BundlesRootIsRun,
                    Severity::Partial,
                    "this bundle root is itself a run folder, so no run was found below it; \
                     list the folder that holds the runs (its parent) in (bundles (roots …))",
                )
                .at(rel.clone()),
            );
        }
    }

    // Each root is listed and scanned in turn through one handle of it, held only
    // while it is scanned: the runs read are the runs listed, and a workspace of
    // many roots holds one root's descriptor at a time. A bar's length is counted
    // first from the folders in each root (to draw it, nothing judged or read),
    // and set right as each root is listed.
    let mut guessed = vec![0u64; roots.len()];
    let progress = if crate::progress::allowed(opts.quiet) {
        for (g, r) in guessed.iter_mut().zip(&roots) {
            *g = layout::count_folders(&workspace.join(r), |name| {
                partition.is_none_or(|p| p.owns(r, name))
            });
        }
        crate::progress::bar(guessed.iter().sum(), "verifying", opts.quiet)
    } else {
        None
    };
    let verify = VerifyOptions {
        mode: opts.mode,
        repo_root: None,
        progress: progress.clone(),
        decision_stage: Some(decision_stage(manifest)),
        keep_subjects: opts.attest,
        paths: opts.reuse.as_ref().map(|r| r.paths()).unwrap_or_default(),
        reuse: opts.reuse.clone(),
    };
    let mut positions = Vec::with_capacity(roots.len());
    let mut scans: Vec<RootScan> = Vec::with_capacity(roots.len());
    for (r, guessed) in roots.iter().zip(guessed) {
        let mut listing = layout::list_root(&workspace.join(r));
        // The root was found inside the workspace by its path; what is read is the
        // folder its handle holds, which must be inside too.
        if listing
            .as_ref()
            .is_ok_and(|l| !l.real.starts_with(&ws_canon))
        {
            listing = Err(std::io::Error::other(
                "when it was opened it resolved outside the workspace (a folder on its \
                 way had been replaced by a link), so it is not read",
            ));
        }
        let mut mine = PartialRoot {
            path: r.clone(),
            listed: 0,
            positions: Vec::new(),
        };
        if let Ok(l) = &mut listing {
            mine.listed = l.run_dirs.len();
            if let Some(p) = partition {
                let mut at = 0;
                l.run_dirs.retain(|(_, on_disk)| {
                    let keep = p.owns(r, on_disk);
                    if keep {
                        mine.positions.push(at);
                    }
                    at += 1;
                    keep
                });
            } else {
                mine.positions = (0..mine.listed).collect();
            }
        }
        if let Some(pb) = &progress {
            let listed = listing.as_ref().map_or(0, |l| l.run_dirs.len() as u64);
            let length = pb.length().unwrap_or(0) + listed;
            pb.set_length(length.saturating_sub(guessed));
        }
        positions.push(mine);
        scans.push(layout::scan_root(workspace, r, listing, &verify));
    }
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }

    let mut sections = Vec::new();
    for (present, name) in [
        (manifest.proof_schema.is_some(), "proof-schema"),
        (!manifest.hash_sources.is_empty(), "hash-sources"),
        (manifest.bundles.is_some(), "bundles"),
        (manifest.queue.is_some(), "queue"),
        (manifest.receipts.is_some(), "receipts"),
        (manifest.activity.is_some(), "activity"),
        (manifest.dod.is_some(), "dod"),
        (!manifest.gates.is_empty(), "gates"),
        (manifest.promptdb.is_some(), "promptdb"),
    ] {
        if present {
            sections.push(name.to_string());
        }
    }
    let mut report = Report {
        schema_version: report::SCHEMA_VERSION.to_string(),
        generator: format!("lith {}", env!("CARGO_PKG_VERSION")),
        generated_at: clock.now_rfc3339(),
        duration_ms: None,
        changes: None,
        history: None,
        verdict: Verdict {
            label: VerdictLabel::Ok,
            exit_code: 0,
            findings: Default::default(),
        },
        manifest: ManifestInfo {
            file: manifest_file_name(&manifest.path),
            v: manifest.v.clone(),
            truth_unit: manifest.truth_unit.clone(),
            warnings: manifest
                .warnings
                .iter()
                .map(|w| format!("{}:{}: {}", w.pos.line, w.pos.col, w.message))
                .collect(),
            sections,
        },
        site: SiteInfo {
            title: manifest
                .site
                .title
                .clone()
                .unwrap_or_else(|| "lith evidence report".to_string()),
            base_url: manifest.site.base_url.clone(),
        },
        bundles: BundlesSection {
            configured: manifest.bundles.is_some(),
            mode: opts.mode,
            patterns,
            totals: Totals::default(),
            roots: scans,
        },
        queue: Default::default(),
        receipts: Default::default(),
        gates: Default::default(),
        dod: Default::default(),
        drift: Default::default(),
        promptdb: None,
        findings,
    };
    if partition.is_none_or(Partition::has_workspace_sections) {
        workspace_sections(&mut report, manifest, clock);
    }
    Ok((report, positions))
}

/// The sections that read the workspace as a whole rather than its runs.
fn workspace_sections(report: &mut Report, manifest: &Manifest, clock: &Clock) {
    let queue_refs;
    (report.receipts, queue_refs) = report::sections::evaluate_receipts(manifest);
    report.queue = report::sections::evaluate_queue(manifest, &report.receipts, queue_refs);
    if let Some(g) = crate::gate::push_truth(manifest) {
        report.gates = report::GatesSection {
            configured: true,
            findings: g.findings(),
            push_truth: Some(g),
        };
    }
    report.dod = evaluate_dod(manifest, clock);
    report.drift = evaluate_drift(manifest, clock);
    let at = report.generated_at.clone();
    let db = crate::catalog::scan(manifest, crate::catalog::single_refresh(manifest, &at));
    for p in &db.packets {
        if let Some(error) = &p.error {
            report.findings.push(
                Finding::new(Code::CatalogPacketUnreadable, Severity::Warning, error)
                    .at(p.path.clone())
                    .at_position(p.line.zip(p.column)),
            );
        }
    }
    if db.refresh.last_decision == crate::catalog::RefreshDecision::RootMissing {
        report.findings.push(Finding::new(
            Code::CatalogRootMissing,
            Severity::Warning,
            "the (promptdb (root …)) folder does not exist",
        ));
    }
    report.promptdb = Some(db);
}

/// Derives what depends on every run at once, and the verdict. Idempotent on a
/// gathered report: a merge of partitions settles exactly as a whole build does.
pub fn settle(report: &mut Report) {
    for scan in report.bundles.roots.iter_mut() {
        layout::settle_root(scan);
    }
    report::assign_pages(&mut report.bundles.roots, report.site.base_url.as_deref());
    report.bundles.totals = Totals::of(&report.bundles.roots);
    if report.bundles.configured && report.bundles.totals.runs == 0 {
        report.findings.push(Finding::new(
            Code::BundlesNoneFound,
            Severity::Partial,
            format!(
                "the bundle roots {:?} hold no run (a folder with run_status.json or \
                 artifact_index.json); nothing was verified — check the globs in (bundles (roots …))",
                report.bundles.patterns
            ),
        ));
    }
    if report.checked_nothing() {
        report.findings.push(Finding::new(
            Code::BuildNothingChecked,
            Severity::Partial,
            "nothing was checked: the manifest configures no input that holds a run, \
             a phase, a gate, a queue event or a receipt — a build that checks nothing is not a pass",
        ));
    }
    report.findings.sort();
    report.settle_verdict();
}

/// Why the pipeline stopped: an input every check needs could not be read, or
/// partitions cannot be merged. Each names the files or partitions concerned. What a
/// check could not read is a finding in the report, never an error here.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open the workspace {}", path.display())]
    Workspace {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the manifest {}", path.display())]
    Manifest {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no partial report given")]
    Empty,
    #[error("{file}: {reason}")]
    Unusable { file: String, reason: String },
    #[error(
        "the partial reports are of different builds: {first} says {a}, {second} says {b}; \
         merge the partitions of one build, run on one checkout with one manifest"
    )]
    Mismatch {
        first: String,
        second: String,
        a: String,
        b: String,
    },
    #[error("partition {partition} is given twice: {first} and {second}")]
    Repeated {
        partition: Partition,
        first: String,
        second: String,
    },
    #[error(
        "partition(s) {missing} of {count} missing; every partition's partial report must be given"
    )]
    Missing { missing: String, count: u32 },
}

impl Error {
    /// A mistake in what `lith merge` was given (no part, parts of two builds, a
    /// partition twice or missing), rather than an input it could not read.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::Empty | Error::Mismatch { .. } | Error::Repeated { .. } | Error::Missing { .. }
        )
    }
}

/// Joins the partitions of one build (each with the file it came from) into the
/// report an unpartitioned build of the same inputs settles to.
pub fn merge(parts: Vec<(String, PartialReport)>) -> Result<Report, Error> {
    let Some((first_file, first)) = parts.first() else {
        return Err(Error::Empty);
    };
    let count = first.partition.count;
    let mut seen: Vec<Option<&str>> = vec![None; count as usize];
    let shape = |p: &PartialReport| {
        let roots: Vec<(&str, usize)> = p
            .roots
            .iter()
            .map(|r| (r.path.as_str(), r.listed))
            .collect();
        format!(
            "{} partitions, manifest sha256 {}, {}, {:?} mode, roots {roots:?}",
            p.partition.count, p.manifest_sha256, p.report.generator, p.report.bundles.mode
        )
    };
    let want = shape(first);
    for (file, p) in &parts {
        if p.schema_version != PARTIAL_SCHEMA {
            return Err(Error::Unusable {
                file: file.clone(),
                reason: format!(
                    "schema_version is {:?}, not {PARTIAL_SCHEMA:?}",
                    p.schema_version
                ),
            });
        }
        let got = shape(p);
        if got != want {
            return Err(Error::Mismatch {
                first: first_file.clone(),
                second: file.clone(),
                a: want,
                b: got,
            });
        }
        let slot = &mut seen[(p.partition.index - 1) as usize];
        if let Some(prev) = slot {
            return Err(Error::Repeated {
                partition: p.partition,
                first: prev.to_string(),
                second: file.clone(),
            });
        }
        *slot = Some(file);
    }
    let missing: Vec<String> = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_none())
        .map(|(i, _)| (i + 1).to_string())
        .collect();
    if !missing.is_empty() {
        return Err(Error::Missing {
            missing: missing.join(", "),
            count,
        });
    }

    let mut parts = parts;
    parts.sort_by_key(|(_, p)| p.partition.index);
    let durations: Option<Vec<u64>> = parts.iter().map(|(_, p)| p.report.duration_ms).collect();
    let layout_of = parts[0].1.roots.clone();
    let mut slots: Vec<Vec<Option<RunReport>>> =
        layout_of.iter().map(|r| vec![None; r.listed]).collect();
    let mut base: Option<Report> = None;
    for (file, p) in parts {
        let mut report = p.report;
        if report.bundles.roots.len() != p.roots.len() {
            return Err(Error::Unusable {
                file,
                reason: "its roots and its report's roots differ".into(),
            });
        }
        for (i, (scan, at)) in report.bundles.roots.iter_mut().zip(&p.roots).enumerate() {
            let runs = std::mem::take(&mut scan.runs);
            if runs.len() != at.positions.len() {
                return Err(Error::Unusable {
                    file,
                    reason: format!(
                        "root {} lists {} positions for {} runs",
                        at.path,
                        at.positions.len(),
                        runs.len()
                    ),
                });
            }
            for (run, &pos) in runs.into_iter().zip(&at.positions) {
                match slots[i].get_mut(pos) {
                    Some(slot @ None) => *slot = Some(run),
                    _ => {
                        return Err(Error::Unusable {
                            file,
                            reason: format!(
                                "root {}: run position {pos} is out of range or given twice",
                                at.path
                            ),
                        });
                    }
                }
            }
        }
        if base.is_none() {
            base = Some(report);
        }
    }
    let mut report = base.expect("at least one partition");
    for ((scan, slot), at) in report.bundles.roots.iter_mut().zip(slots).zip(&layout_of) {
        let runs: Option<Vec<RunReport>> = slot.into_iter().collect();
        scan.runs = runs.ok_or_else(|| Error::Unusable {
            file: "the partial reports".into(),
            reason: format!(
                "no partition verified some run of root {} (the partitions saw different listings)",
                at.path
            ),
        })?;
    }
    report.duration_ms = durations.and_then(|d| d.into_iter().max());
    settle(&mut report);
    Ok(report)
}

fn manifest_file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "manifest.lith".into())
}

fn evaluate_dod(manifest: &Manifest, clock: &Clock) -> report::DodSection {
    if manifest.dod.is_none() {
        return report::DodSection::default();
    }
    let require = crate::dod::operational_required(false);
    let mut s = report::DodSection {
        configured: true,
        operational_proof_required: require,
        ..Default::default()
    };
    let docs = crate::dod::docs_rel(manifest);
    if !manifest.resolve(docs).is_dir() {
        s.findings.push(
            Finding::new(
                Code::DodInputMissing,
                Severity::Partial,
                "the configured DoD folder does not exist; no phase was checked",
            )
            .at(crate::fsutil::slash_path(Path::new(docs))),
        );
    }
    match crate::dod::check_workspace(manifest, &[], require, clock) {
        Ok(crate::dod::Evaluation {
            report: r,
            documents,
            ..
        }) => {
            for (id, p) in &r.phases {
                let (sev, word) = match p.verdict {
                    crate::dod::Verdict::Proven => continue,
                    crate::dod::Verdict::Partial => (Severity::Partial, "PARTIAL"),
                    crate::dod::Verdict::Designed => (Severity::Designed, "DESIGNED"),
                };
                if p.fixture {
                    // Reported, but a fixture never decides the build's exit code.
                    s.findings.push(Finding::new(
                        Code::DodFixtureNotProven,
                        Severity::Info,
                        format!(
                            "{id} (a fixture phase, left out of the exit code) is {word}: {}",
                            p.missing.join(", ")
                        ),
                    ));
                    continue;
                }
                s.findings.push(Finding::new(
                    Code::DodPhaseNotProven,
                    sev,
                    format!("{id} is {word}: {}", p.missing.join(", ")),
                ));
            }
            s.git_head = r.git_head;
            s.phases = r.phases;
            s.documents = documents;
        }
        Err(crate::dod::Error::Feed(e)) => {
            s.findings.push(feed_finding(Code::DodUnreadable, &e));
        }
        Err(crate::dod::Error::Registry { path, error }) => {
            s.findings.push(
                Finding::new(
                    Code::DodUnreadable,
                    Severity::Error,
                    format!("the phase registry cannot be read: {}", error.reason),
                )
                .at(path)
                .at_position(error.position),
            );
        }
    }
    s
}

fn evaluate_drift(manifest: &Manifest, clock: &Clock) -> report::DriftSection {
    if manifest.activity.is_none() {
        return report::DriftSection::default();
    }
    let mut s = report::DriftSection {
        configured: true,
        ..Default::default()
    };
    match crate::activity::drift::run(manifest, clock) {
        Ok(r) => {
            for m in &r.missing {
                // The monitor's own tokens name the finding, under the section's
                // prefix once.
                let (code, message) = match m.as_str() {
                    "idle.system.stale" => (
                        Code::DriftIdleSystemStale,
                        "no functional activity within the idle threshold",
                    ),
                    _ => (
                        Code::DriftHeartbeatStale,
                        "no heartbeat within the drift threshold",
                    ),
                };
                s.findings
                    .push(Finding::new(code, Severity::Partial, message));
            }
            s.report = Some(r);
        }
        Err(e) => s.findings.push(feed_finding(Code::DriftFeedUnreadable, &e)),
    }
    s
}

/// An unreadable or corrupt activity feed as a finding at the feed (and its line).
fn feed_finding(code: Code, e: &crate::activity::FeedError) -> Finding {
    let (path, line, message) = e.parts();
    let f = Finding::new(code, Severity::Error, message).at(path);
    match line {
        Some(line) => f.at_line(line, None),
        None => f,
    }
}

/// The demo workspace's report (the repository's `manifest.lith`), evaluated as
/// `lith build` does at the Unix epoch, before its past is applied.
#[cfg(test)]
pub(crate) fn demo_report() -> Report {
    let manifest =
        Manifest::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("manifest.lith")).unwrap();
    let clock = Clock::fixed_at(time::OffsetDateTime::UNIX_EPOCH);
    let opts = Options {
        mode: Mode::Full,
        quiet: true,
        attest: false,
        reuse: None,
    };
    evaluate(&manifest, &clock, &opts).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_parse_and_split_every_name_exactly_once() {
        assert_eq!(
            Partition::parse("2/4"),
            Ok(Partition { index: 2, count: 4 })
        );
        for bad in ["0/4", "5/4", "1/0", "2", "a/b", "1/5000", ""] {
            assert!(Partition::parse(bad).is_err(), "{bad}");
        }
        let names: Vec<String> = (0..400).map(|i| format!("run-{i}")).collect();
        let mut per = [0usize; 4];
        for n in &names {
            let owners: Vec<u32> = (1..=4)
                .filter(|&k| Partition { index: k, count: 4 }.owns("out", n.as_ref()))
                .collect();
            assert_eq!(owners.len(), 1, "{n}: {owners:?}");
            per[owners[0] as usize - 1] += 1;
        }
        // A hash split is balanced enough for a CI matrix.
        assert!(per.iter().all(|&c| (60..=140).contains(&c)), "{per:?}");
    }
}
