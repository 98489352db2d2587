//! The static site: askama page structs built from the report model, assets with
//! content-hashed names, and the swap that publishes a whole site at once.
//!
//! Every value from the inputs goes through askama's HTML escaping; the only `|safe`
//! output is Markdown that pulldown-cmark rendered and ammonia sanitized. Links between
//! pages are relative and name `index.html` explicitly, so the site works from
//! `file://` as well as from any static host.

mod error;
pub(crate) mod markdown;
mod phases;
mod publish;
mod room;
mod sections;
mod single;
mod sink;

use std::collections::BTreeMap;

use askama::Template;
use rayon::prelude::*;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::bundle::verify::{ArtifactStatus, Mode, RunReport, Verification, hex};
use crate::finding::{Finding, Severity};
use crate::report::{Report, Totals};

pub use error::Error;
pub use publish::{publish, stamps_path, while_locked};
pub use single::render as single_file;
pub use sink::{Sink, Stats};

/// Runs per page of the runs list, at most, and the bytes of their rows: a page of
/// 500 runs whose names and root's path are long made 2.7 MB.
pub const RUNS_PER_PAGE: usize = 500;
const RUNS_ROWS_ROOM: usize = 800_000;
/// How many pages of the runs list are rendered at once (each at most
/// RUNS_ROWS_ROOM bytes of rows) before they are put, last first.
const LIST_PAGES_AT_ONCE: usize = 8;
/// The markup of a row of the runs list besides its values' text, at most.
const RUN_ROW_MARKUP: usize = 768;
/// Findings listed on the overview before "N more", at most, and the bytes they
/// may take (SPEC §11: the overview under 100 KB; 300 findings naming runs of long
/// names made one of 568 KB).
const OVERVIEW_FINDINGS: usize = 200;
const OVERVIEW_FINDINGS_ROOM: usize = 60_000;
/// The bytes the overview's flaky items may take: a nightly where a thousand runs
/// flapped would list them all, 50 marks each.
const OVERVIEW_FLAKY_ROOM: usize = 20_000;
/// Rows of a run's artifact table on one page. A run page lists up to
/// `MAX_LISTED_ARTIFACTS` rows; past this many the table goes on over pages beside
/// the run's own ([`artifact_page_file`]). A row shows at most [`MAX_ROW_CHARS`]
/// characters of its path and of its detail, so that even a page of rows of
/// escaped characters and marked digests (about 2.8 KB each) stays under 1 MB.
pub const ARTIFACT_ROWS_PER_PAGE: usize = 250;
/// Characters of an artifact's path, or of a row's detail, shown in its row (the
/// anchor is made from the whole path; `report.json` has it whole).
const MAX_ROW_CHARS: usize = 200;
/// Items a run page shows of its other lists (unindexed files, entries the index
/// lists as missing, path witnesses), each cut at [`MAX_ROW_CHARS`]; `report.json`
/// (or the run's `path_witnesses.json`) has the rest.
const MAX_PAGE_LIST: usize = 100;

/// The order a run's page lists its artifacts: failing rows first, each group in
/// the report's order (as indexes into `artifacts`).
pub fn artifact_display_order(artifacts: &[crate::bundle::verify::ArtifactCheck]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..artifacts.len()).collect();
    order.sort_by_key(|&i| artifacts[i].status == ArtifactStatus::Ok);
    order
}

/// The anchors of a run's rows in `order`: each row's [`ArtifactCheck::anchor`],
/// and for a path the index repeats, `-2`, `-3`, … after it on its later rows, so
/// that no two rows of a page share an id.
///
/// [`ArtifactCheck::anchor`]: crate::bundle::verify::ArtifactCheck::anchor
pub fn artifact_anchors(
    artifacts: &[crate::bundle::verify::ArtifactCheck],
    order: &[usize],
) -> Vec<String> {
    let mut seen: std::collections::HashMap<String, usize> =
        std::collections::HashMap::with_capacity(order.len());
    order
        .iter()
        .map(|&i| {
            let anchor = artifacts[i].anchor();
            let n = seen.entry(anchor.clone()).or_insert(0);
            *n += 1;
            match *n {
                1 => anchor,
                n => format!("{anchor}-{n}"),
            }
        })
        .collect()
}

/// The file, in a run's folder, holding page `n` of its artifact table:
/// `index.html` (the run's page), then `artifacts-2.html`, ….
pub fn artifact_page_file(n: usize) -> String {
    if n == 1 {
        "index.html".to_string()
    } else {
        format!("artifacts-{n}.html")
    }
}

const STYLE_CSS: &str = include_str!("../../static/style.css");
const APP_JS: &str = include_str!("../../static/app.js");

/// Fields every page's layout needs.
pub struct Shell {
    /// Relative path from the page to the site root (`""`, `"../"`, `"../../"`).
    pub root: &'static str,
    pub site_title: String,
    pub generator: String,
    pub generated_at: String,
    pub css: String,
    pub js: String,
    pub section: &'static str,
    /// The report has changes since a previous build (the nav links its page).
    pub changes: bool,
}

pub struct FindingRow {
    pub severity: &'static str,
    pub code: &'static str,
    pub place: String,
    pub message: String,
    pub href: Option<String>,
}

impl FindingRow {
    pub(crate) fn from(f: &Finding, href: Option<String>) -> FindingRow {
        FindingRow {
            severity: f.severity.as_str(),
            code: f.code.as_str(),
            place: f
                .place()
                .map(|p| crate::bundle::index::truncate(&p, MAX_FACT_CHARS))
                .unwrap_or_default(),
            message: crate::bundle::index::truncate(&f.message, MAX_FACT_CHARS),
            href,
        }
    }
}

pub struct RootRow {
    pub path: String,
    pub runs: usize,
    pub verified: usize,
    pub latest_text: String,
    pub latest_class: &'static str,
    pub latest_href: Option<String>,
    pub other: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
pub struct OverviewPage<'a> {
    pub shell: Shell,
    pub verdict_label: &'static str,
    pub exit_code: i32,
    pub finding_summary: String,
    pub bundles_configured: bool,
    pub totals: &'a Totals,
    pub mode: &'static str,
    pub roots: Vec<RootRow>,
    pub findings: Vec<FindingRow>,
    pub findings_more: usize,
    pub manifest_file: String,
    pub manifest_warnings: &'a [String],
    pub queue_card: Option<QueueCard>,
    /// (blocked, reasons, unresolved questions)
    pub gate_card: Option<(bool, usize, usize)>,
    /// (proven, partial, designed)
    pub phase_card: Option<(usize, usize, usize)>,
    /// (idle ok, heartbeat ok)
    pub drift_card: Option<(bool, bool)>,
    pub receipts_card: Option<ReceiptsCard>,
    /// What changed since `--previous`, shown first.
    pub changes: Option<&'a crate::report::changes::Changes>,
    /// Trend charts over the kept history (two builds or more).
    pub trends: Vec<TrendChart>,
    /// The first flaky items that fit in [`OVERVIEW_FLAKY_ROOM`], of `flaky_total`.
    pub flaky: Vec<FlakyRow>,
    pub flaky_total: usize,
    /// What is worst in each section that fell short, one line each.
    pub banner: Vec<BannerLine>,
    pub history_len: usize,
    /// Findings at warning level or above, one line per code, worst first.
    pub groups: Vec<FindingGroup>,
    /// The runs by verification, as a bar and its table (empty without runs).
    pub split: Vec<SplitPart>,
}

/// Every finding of one code, counted: a test report's "category".
pub struct FindingGroup {
    pub code: &'static str,
    pub severity: &'static str,
    pub count: usize,
    /// Up to three places with a page to open, (text, href).
    pub examples: Vec<(String, String)>,
}

/// One part of the verdict split bar: runs of one verification.
pub struct SplitPart {
    pub label: &'static str,
    pub value: &'static str,
    pub class: &'static str,
    pub count: usize,
    /// Offset and width of its segment on a bar 300 units wide.
    pub x: String,
    pub width: String,
    pub percent: String,
}

/// One line of the verdict banner: a sentence, then up to three names (each kept
/// whole on a line: a run id never wraps at its hyphens) and how many more.
pub struct BannerLine {
    pub class: &'static str,
    pub href: &'static str,
    pub lead: String,
    pub names: Vec<String>,
    pub more: usize,
}

impl BannerLine {
    fn sentence(class: &'static str, href: &'static str, lead: String) -> BannerLine {
        BannerLine {
            class,
            href,
            lead,
            names: Vec::new(),
            more: 0,
        }
    }

    /// Names up to three items and says how many more.
    fn naming(
        class: &'static str,
        href: &'static str,
        lead: String,
        items: &[String],
    ) -> BannerLine {
        BannerLine {
            class,
            href,
            lead,
            names: items.iter().take(3).cloned().collect(),
            more: items.len().saturating_sub(3),
        }
    }
}

/// The runs split by verification, for the overview's bar chart.
fn verdict_split(t: &Totals) -> Vec<SplitPart> {
    if t.runs == 0 {
        return Vec::new();
    }
    let parts = [
        ("verified", "verified", Verification::Verified, t.verified),
        ("failed", "failed", Verification::Failed, t.failed),
        ("unreadable", "error", Verification::Error, t.error),
        (
            "uncommitted",
            "uncommitted",
            Verification::Uncommitted,
            t.uncommitted,
        ),
        (
            "in progress",
            "in_progress",
            Verification::InProgress,
            t.in_progress,
        ),
    ];
    let mut x = 0.0f64;
    parts
        .into_iter()
        .filter(|p| p.3 > 0)
        .map(|(label, value, v, count)| {
            let width = 300.0 * count as f64 / t.runs as f64;
            let part = SplitPart {
                label,
                value,
                class: verification_class(v),
                count,
                x: format!("{x:.2}"),
                width: format!("{width:.2}"),
                percent: format!("{:.1}", 100.0 * count as f64 / t.runs as f64),
            };
            x += width;
            part
        })
        .collect()
}

/// Findings at warning level or above grouped by code, counted as they are met.
#[derive(Default)]
struct FindingGroups(BTreeMap<&'static str, (Severity, FindingGroup)>);

impl FindingGroups {
    /// Counts `f`; its first three places become examples, named `name` (a run's
    /// id) or else by the finding's message. A workspace-level finding has no page
    /// of its own: the overview's list of findings holds it.
    fn add(&mut self, f: &Finding, href: Option<&str>, name: Option<&str>) {
        let (worst, g) = self.0.entry(f.code.as_str()).or_insert_with(|| {
            (
                f.severity,
                FindingGroup {
                    code: f.code.as_str(),
                    severity: f.severity.as_str(),
                    count: 0,
                    examples: Vec::new(),
                },
            )
        });
        g.count += 1;
        if f.severity > *worst {
            *worst = f.severity;
            g.severity = f.severity.as_str();
        }
        if g.examples.len() < 3 {
            let text = name.unwrap_or(&f.message);
            g.examples.push((
                crate::bundle::index::truncate(text, 80),
                href.unwrap_or("#h-findings").to_string(),
            ));
        }
    }

    /// Worst severity first, then the most frequent.
    fn sorted(self) -> Vec<FindingGroup> {
        let mut out: Vec<(Severity, FindingGroup)> = self.0.into_values().collect();
        out.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.count.cmp(&a.1.count)));
        out.into_iter().map(|(_, g)| g).collect()
    }
}

fn banner(report: &Report) -> Vec<BannerLine> {
    let mut out = Vec::new();
    // Named in the runs list's order, so the first names are the newest.
    let runs = |v: &[Verification]| -> Vec<String> {
        let mut runs: Vec<(&str, &RunReport)> = report
            .bundles
            .roots
            .iter()
            .flat_map(|r| r.runs.iter().map(move |run| (r.path.as_str(), run)))
            .filter(|(_, run)| v.contains(&run.verification))
            .collect();
        list_order(&mut runs);
        runs.into_iter()
            .map(|(_, run)| run.run_id.clone())
            .collect()
    };
    let failed = runs(&[Verification::Failed, Verification::Error]);
    if !failed.is_empty() {
        out.push(BannerLine::naming(
            "error",
            "runs/index.html?status=failed",
            format!("{} run(s) failed verification: ", failed.len()),
            &failed,
        ));
    }
    let waiting = runs(&[Verification::InProgress, Verification::Uncommitted]);
    if !waiting.is_empty() {
        out.push(BannerLine::naming(
            "partial",
            "runs/index.html",
            format!("{} run(s) in progress or never committed: ", waiting.len()),
            &waiting,
        ));
    }
    if let Some(g) = report.gates.push_truth.as_ref().filter(|g| g.blocked) {
        out.push(BannerLine::sentence(
            "partial",
            "gates/index.html",
            format!(
                "gate {} is blocked: {}",
                g.id,
                crate::gate::join_reasons(&g.reasons)
            ),
        ));
    }
    let short: Vec<String> = report
        .dod
        .phases
        .iter()
        .filter(|(_, p)| p.verdict != crate::dod::Verdict::Proven && !p.fixture)
        .map(|(id, p)| format!("{id} ({})", p.verdict.as_str()))
        .collect();
    if !short.is_empty() {
        out.push(BannerLine::naming(
            "designed",
            "phases/index.html",
            format!("{} phase(s) not PROVEN: ", short.len()),
            &short,
        ));
    }
    for (href, findings) in [
        ("queue/index.html", &report.queue.findings),
        ("receipts/index.html", &report.receipts.findings),
        ("drift/index.html", &report.drift.findings),
    ] {
        if let Some(f) = findings
            .iter()
            .filter(|f| f.severity >= Severity::Partial)
            .max_by_key(|f| f.severity)
        {
            out.push(BannerLine::sentence(
                f.severity.as_str(),
                href,
                format!(
                    "{}: {}",
                    f.code.as_str(),
                    crate::bundle::index::truncate(&f.message, 160)
                ),
            ));
        }
    }
    out
}

/// One trend: an inline SVG line over the kept builds and the same data as a table.
pub struct TrendChart {
    pub id: &'static str,
    pub title: &'static str,
    /// `x,y` pairs of the polyline, in a 300 × 80 box.
    pub points: String,
    /// (x, y, build, value) of each point.
    pub dots: Vec<(String, String, String, String)>,
    pub min: String,
    pub max: String,
    pub last: String,
}

pub struct FlakyRow {
    pub item: String,
    pub href: Option<String>,
    pub flips: usize,
    pub states: Vec<&'static str>,
}

/// `runs/index.js`: every run as `[run_id, root, verification, href, ok, total]`,
/// for the runs list's search over all pages. A script, not JSON to fetch, so it
/// loads from `file://`; `<`, `>` and `&` are escaped so no value can end the
/// script or start markup.
///
/// Written row by row into one string (at 100,000 runs a list of JSON values would
/// hold five times the script's size).
fn runs_index(all: &[(&str, &RunReport)]) -> String {
    let mut out = String::with_capacity(all.len() * 96 + 32);
    out.push_str("window.LITH_RUNS = [");
    let mut row = Vec::new();
    for (root, run) in all {
        let Some(page) = run.page.as_deref() else {
            continue;
        };
        if !out.ends_with('[') {
            out.push(',');
        }
        row.clear();
        serde_json::to_writer(
            &mut row,
            &(
                &run.run_id,
                root,
                run.verification.as_str(),
                format!("{}index.html", page.trim_start_matches("runs/")),
                run.counts.ok,
                run.counts.total,
            ),
        )
        .expect("strings and numbers serialize");
        for c in String::from_utf8_lossy(&row).chars() {
            match c {
                '<' => out.push_str("\\u003c"),
                '>' => out.push_str("\\u003e"),
                '&' => out.push_str("\\u0026"),
                c => out.push(c),
            }
        }
    }
    out.push_str("];\n");
    out
}

/// The overview's trend charts: runs verified and failing, artifacts verified,
/// promotable runs and build duration, one value per kept build.
fn trends(h: &crate::report::history::History) -> Vec<TrendChart> {
    if h.entries.len() < 2 {
        return Vec::new();
    }
    type Get = fn(&crate::report::history::Entry) -> Option<u64>;
    let series: [(&str, &str, Get); 5] = [
        ("trend-verified", "Runs verified", |e| {
            Some(e.counts.verified as u64)
        }),
        ("trend-not-verified", "Runs not verified", |e| {
            Some(e.counts.not_verified as u64)
        }),
        ("trend-artifacts", "Artifacts verified", |e| {
            Some(e.counts.artifacts_ok as u64)
        }),
        ("trend-promotable", "Promotable runs", |e| {
            Some(e.counts.promotable as u64)
        }),
        ("trend-duration", "Build duration (ms)", |e| e.duration_ms),
    ];
    let n = h.entries.len();
    let mut out = Vec::new();
    for (id, title, get) in series {
        let values: Vec<Option<u64>> = h.entries.iter().map(get).collect();
        let known: Vec<u64> = values.iter().flatten().copied().collect();
        if known.is_empty() {
            continue;
        }
        let (lo, hi) = (*known.iter().min().unwrap(), *known.iter().max().unwrap());
        let span = (hi - lo).max(1) as f64;
        let mut dots = Vec::new();
        let mut points = Vec::new();
        for (i, (e, v)) in h.entries.iter().zip(&values).enumerate() {
            let Some(v) = v else { continue };
            let x = 10.0 + 280.0 * i as f64 / (n - 1) as f64;
            let y = 70.0 - 60.0 * (v - lo) as f64 / span;
            let (x, y) = (format!("{x:.1}"), format!("{y:.1}"));
            points.push(format!("{x},{y}"));
            dots.push((x, y, e.generated_at.clone(), v.to_string()));
        }
        out.push(TrendChart {
            id,
            title,
            points: points.join(" "),
            last: dots.last().map(|d| d.3.clone()).unwrap_or_default(),
            dots,
            min: lo.to_string(),
            max: hi.to_string(),
        });
    }
    out
}

fn flaky_rows(report: &Report) -> Vec<FlakyRow> {
    let Some(h) = report.history.as_ref().filter(|h| !h.flaky.is_empty()) else {
        return Vec::new();
    };
    let pages: BTreeMap<String, &str> = report
        .bundles
        .roots
        .iter()
        .flat_map(|root| {
            root.runs.iter().filter_map(move |run| {
                run.page
                    .as_deref()
                    .map(|p| (crate::report::history::run_key(&root.path, &run.run_id), p))
            })
        })
        .collect();
    h.flaky
        .iter()
        .map(|f| FlakyRow {
            href: if let Some(p) = pages.get(&f.item) {
                Some(format!("{p}index.html"))
            } else if f.item.starts_with("phase:") {
                Some(format!(
                    "phases/{}/index.html",
                    phases::slug(f.item.trim_start_matches("phase:"))
                ))
            } else if f.item.starts_with("gate:") {
                Some("gates/index.html".to_string())
            } else {
                None
            },
            item: f.item.clone(),
            flips: f.flips,
            states: f
                .states
                .split(' ')
                .map(|s| match s {
                    "fail" => "fail",
                    "pass" => "pass",
                    _ => "none",
                })
                .collect(),
        })
        .collect()
}

pub struct RunRow {
    pub root: String,
    pub run_id: String,
    pub href: String,
    pub latest: bool,
    /// Flipped between pass and fail within the kept history.
    pub flaky: bool,
    pub state: String,
    pub index: String,
    pub ok: usize,
    pub total: usize,
    pub verification: &'static str,
    pub verification_class: &'static str,
    pub updated: String,
    /// `yes`, `no` or `n/a`, and the reasons when not promotable.
    pub promotable: &'static str,
    pub promotable_title: String,
}

#[derive(Template)]
#[template(path = "runs.html")]
pub struct RunsPage {
    pub shell: Shell,
    pub rows: Vec<RunRow>,
    pub total: usize,
    pub root_count: usize,
    pub page_no: usize,
    pub page_count: usize,
    pub per_page: usize,
    /// Some page holds fewer than `per_page` runs for want of room.
    pub by_bytes: bool,
    pub prev_href: Option<String>,
    pub next_href: Option<String>,
}

pub struct ArtifactRow<'a> {
    pub anchor: String,
    pub status: &'static str,
    pub status_class: &'static str,
    /// At most [`MAX_ROW_CHARS`] of the path.
    pub path: std::borrow::Cow<'a, str>,
    /// At most [`MAX_ROW_CHARS`] of the detail.
    pub detail: std::borrow::Cow<'a, str>,
    pub mismatch: bool,
    pub expected_size: u64,
    pub actual_size: String,
    pub expected_sha256: crate::bundle::verify::Sha256Digest,
    pub actual_sha256: String,
    /// The file is not there (status `missing`).
    pub absent: bool,
    /// The actual digest in runs of characters that match the expected one or not,
    /// for a digest mismatch (the differing ones are marked on the page).
    pub actual_parts: Vec<(String, bool)>,
}

/// `actual` cut into runs of characters that equal `expected`'s at the same place
/// (`false`) or differ (`true`).
fn digest_parts(expected: &str, actual: &str) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = Vec::new();
    let mut e = expected.chars();
    for c in actual.chars() {
        let differs = e.next() != Some(c);
        match out.last_mut() {
            Some((run, d)) if *d == differs => run.push(c),
            _ => out.push((c.to_string(), differs)),
        }
    }
    out
}

#[derive(Template)]
#[template(path = "run.html")]
pub struct RunPage<'a> {
    pub shell: Shell,
    pub run_id: &'a str,
    pub root: &'a str,
    pub latest: bool,
    /// (flips, states) when the run is flaky within the kept history.
    pub flaky: Option<(usize, String)>,
    pub verification: &'static str,
    pub verification_class: &'static str,
    pub verification_text: &'static str,
    pub dir: &'a str,
    pub state: String,
    pub index_text: String,
    pub ok: usize,
    pub total: usize,
    /// The unindexed files the report lists, and the first of them shown.
    pub unindexed_count: usize,
    pub unindexed: ShownList<'a>,
    pub mode_text: &'static str,
    pub url: Option<&'a str>,
    pub findings: Vec<FindingRow>,
    /// Findings left out for want of room ([`room`]).
    pub findings_more: usize,
    pub artifacts: Vec<ArtifactRow<'a>>,
    /// Where this page's rows sit in the run's artifact table.
    pub pager: ArtifactPager,
    /// Entries counted but not listed (see `MAX_LISTED_ARTIFACTS`).
    pub artifacts_unlisted: usize,
    pub max_listed: usize,
    pub committed: bool,
    pub index_missing: ShownList<'a>,
    pub status_fields: Vec<(String, String)>,
    /// Fields of run_status.json past the first [`MAX_STATUS_FIELDS_SHOWN`].
    pub status_more: usize,
    pub has_witnesses: bool,
    pub witnesses: Vec<(String, String, String, String)>,
    /// Witness records past the first [`MAX_PAGE_LIST`].
    pub witnesses_more: usize,
    pub summary_html: Option<String>,
    /// Bytes of `summary.md` left out for want of room ([`room`]).
    pub summary_cut: Option<usize>,
    pub promotion: Option<PromotionView>,
    pub attestation: Option<AttestationView<'a>>,
}

/// Page `page_no` of a run's artifact table, of `page_count`
/// ([`ARTIFACT_ROWS_PER_PAGE`] rows a page; [`artifact_page_file`] names them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArtifactPager {
    pub page_no: usize,
    pub page_count: usize,
    /// Rows the run's pages list in all.
    pub listed: usize,
    /// The first and last row of this page, counted from 1 (both 0 when none).
    pub first: usize,
    pub last: usize,
}

impl ArtifactPager {
    /// Page `page_no` of a table of `listed` rows (the first when there are none).
    pub fn new(page_no: usize, listed: usize) -> ArtifactPager {
        let page_count = listed.div_ceil(ARTIFACT_ROWS_PER_PAGE).max(1);
        let page_no = page_no.clamp(1, page_count);
        ArtifactPager {
            page_no,
            page_count,
            listed,
            first: ((page_no - 1) * ARTIFACT_ROWS_PER_PAGE + 1).min(listed),
            last: Self::last_row(page_no, listed),
        }
    }

    fn last_row(page_no: usize, listed: usize) -> usize {
        (page_no * ARTIFACT_ROWS_PER_PAGE).min(listed)
    }

    /// The last row of page `n`.
    pub fn last_of(&self, n: usize) -> usize {
        Self::last_row(n, self.listed)
    }

    pub fn numbers(&self) -> std::ops::RangeInclusive<usize> {
        1..=self.page_count
    }

    /// The link from one page of the table to page `n` (they share a folder).
    pub fn href(&self, n: impl std::borrow::Borrow<usize>) -> String {
        artifact_page_file(*n.borrow())
    }
}

/// Page 2 and on of a run's artifact table, beside the run's page (whose facts it
/// repeats at its top).
#[derive(Template)]
#[template(path = "run_artifacts.html")]
pub struct RunArtifactsPage<'p, 'a> {
    pub shell: Shell,
    pub run: &'p RunPage<'a>,
    pub pager: ArtifactPager,
    pub artifacts: Vec<ArtifactRow<'a>>,
}

impl<'a> RunPage<'a> {
    /// Keeps the first page of the artifact table on the run's page and returns the
    /// rows of the others, in order: page 2 first.
    pub fn split_artifact_pages(&mut self) -> Vec<Vec<ArtifactRow<'a>>> {
        let mut rest = self.artifacts.split_off(self.pager.last).into_iter();
        (2..=self.pager.page_count)
            .map(|_| rest.by_ref().take(ARTIFACT_ROWS_PER_PAGE).collect())
            .collect()
    }
}

/// The run's attestation on its page: what it says and whether its files are in
/// the site.
pub struct AttestationView<'a> {
    pub r: &'a crate::attest::AttestationRef,
    /// True when the statement and envelope were copied beside the page.
    pub linked: bool,
}

/// Copies a run's statement and envelope from the attestation folder beside its
/// page, each only if its sha256 is still the one the report recorded (a file
/// changed since, or gone, is not published). Returns whether both were copied.
fn copy_attestation(
    out: &Sink,
    page: &str,
    a: &crate::attest::AttestationRef,
) -> Result<bool, Error> {
    let mut files = Vec::new();
    for (name, want) in [
        (crate::attest::STATEMENT_FILE, &a.statement_sha256),
        (crate::attest::ENVELOPE_FILE, &a.envelope_sha256),
    ] {
        let path = std::path::Path::new(&a.dir).join(name);
        match crate::fsutil::read_regular(&path, crate::attest::MAX_ENVELOPE_BYTES) {
            Ok(bytes) if hex(&Sha256::digest(&bytes)) == *want => files.push((name, bytes)),
            _ => return Ok(false),
        }
    }
    for (name, bytes) in files {
        out.put(&format!("{page}{name}"), bytes)?;
    }
    Ok(true)
}

pub struct PromotionView {
    pub promotable: bool,
    pub reasons: Vec<&'static str>,
    pub channel: String,
    pub apply_preflight_present: bool,
    pub apply_ok: String,
    pub sandbox_check_self: String,
    /// The run's promotion packet (`lith promote` writes the same), shown on the
    /// page rather than as a file of its own: one file per run keeps a large site
    /// small. At most [`MAX_PACKET_SHOWN`] bytes of it.
    pub packet_json: PreText,
    /// How many bytes of the packet the page leaves out, when it is cut.
    pub packet_cut: Option<u64>,
    /// The page had no room for some of what [`MAX_PACKET_SHOWN`] allows ([`room`]).
    pub packet_no_room: bool,
}

/// The most of a promotion packet a run page shows, in bytes and in lines (a usual
/// packet has 30). The gating inputs are the run manifest's values as found, and a
/// large one (a `channel` of a million numbers) would make a page of megabytes, and
/// tens of thousands of lines: past either, the packet is cut at a line's end and
/// the page says how much more there is (`lith promote` writes it whole).
pub const MAX_PACKET_SHOWN: usize = 32 * 1024;
pub const MAX_PACKET_LINES: usize = 200;

/// At most the first [`MAX_PACKET_SHOWN`] bytes and [`MAX_PACKET_LINES`] lines of
/// `packet` pretty-printed, cut at a line's end, and how many bytes were left out.
/// The whole text is never held.
fn packet_text(packet: &impl serde::Serialize) -> (String, Option<u64>) {
    let mut out = Capped::new(MAX_PACKET_SHOWN);
    if serde_json::to_writer_pretty(&mut out, packet).is_err() {
        return (String::new(), None);
    }
    let text = out.text();
    let line_ends = || text.match_indices('\n').map(|(i, _)| i + 1);
    let long = line_ends().nth(MAX_PACKET_LINES - 1);
    if out.total <= out.kept.len() as u64 && long.is_none_or(|end| end >= text.len()) {
        return (text.to_string(), None);
    }
    // Cut after the last whole line kept, or at the last whole character of one
    // long line.
    let end = long
        .or_else(|| text.rfind('\n').map(|i| i + 1))
        .unwrap_or(text.len());
    (text[..end].to_string(), Some(out.total - end as u64))
}

/// Text for the content of a `<pre>` element, escaped for that place only: `&`,
/// `<` and `>` become references, quotes stay as they are. askama's escaper also
/// spells every `"` as `&#34;`, which is needed inside an attribute value but
/// not here: a run's packet has about 60 quotes, 240 bytes a run page.
///
/// Never use it for an attribute value.
pub struct PreText(pub String);

impl std::fmt::Display for PreText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut rest = self.0.as_str();
        while let Some(i) = rest.find(['&', '<', '>']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                _ => "&gt;",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

/// Escaped by its own `Display`, so askama leaves it alone.
impl askama::filters::HtmlSafe for PreText {}

pub fn verification_class(v: Verification) -> &'static str {
    match v {
        Verification::Verified => "ok",
        Verification::Failed | Verification::Error => "error",
        Verification::Uncommitted => "partial",
        Verification::InProgress => "neutral",
    }
}

fn verification_text(v: Verification) -> &'static str {
    match v {
        Verification::Verified => {
            "Every indexed artifact matches its size and digest, and the index is complete."
        }
        Verification::Failed => {
            "The run is committed, but something in it does not match its index."
        }
        Verification::InProgress => {
            "The run is still being written; strict readers refuse it until it completes."
        }
        Verification::Uncommitted => {
            "The run has no artifact_index.json: it never passed its commit barrier."
        }
        Verification::Error => {
            "A file lith must parse (run_status.json or artifact_index.json) is unreadable or corrupt."
        }
    }
}

fn status_class(s: ArtifactStatus) -> &'static str {
    match s {
        ArtifactStatus::Ok => "ok",
        ArtifactStatus::Unreadable => "error",
        _ => "partial",
    }
}

/// The first [`MAX_PAGE_LIST`] items of a list a run page shows (each cut at
/// [`MAX_ROW_CHARS`]), and how many more the report holds.
pub struct ShownList<'a> {
    pub items: Vec<std::borrow::Cow<'a, str>>,
    pub more: usize,
}

impl ShownList<'_> {
    /// Nothing to show and nothing left out.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.more == 0
    }
}

fn shown_list(all: &[String]) -> ShownList<'_> {
    ShownList {
        items: all
            .iter()
            .take(MAX_PAGE_LIST)
            .map(|s| cut_row_text(s))
            .collect(),
        more: all.len().saturating_sub(MAX_PAGE_LIST),
    }
}

/// `text` cut at [`MAX_ROW_CHARS`] characters, for a row or an item of a run page.
fn cut_row_text(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= MAX_ROW_CHARS {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(crate::bundle::index::truncate(text, MAX_ROW_CHARS))
    }
}

/// The file of page `n` of a paged list: `index.html`, `page-2.html`, …
pub(crate) fn page_file(n: usize) -> String {
    if n == 1 {
        "index.html".to_string()
    } else {
        format!("page-{n}.html")
    }
}

pub struct QueueCard {
    pub pending: usize,
    pub events: usize,
    pub findings: usize,
}

pub struct ReceiptsCard {
    pub receipts: usize,
    pub with_findings: usize,
}

/// A content-hashed asset name such as `assets/style.1a2b3c4d.css`.
fn asset_name(stem: &str, ext: &str, content: &str) -> String {
    let h = hex(&Sha256::digest(content.as_bytes()));
    format!("assets/{stem}.{}.{ext}", &h[..10])
}

/// The last update of a run as RFC 3339, from `updated_at_unix` when present.
/// A run's promotability as the runs tables show it: yes, no, or n/a when it was
/// not assessed.
pub(crate) fn promotable_label(run: &RunReport) -> &'static str {
    match &run.promotability {
        Some(p) if p.promotable_decision_stage => "yes",
        Some(_) => "no",
        None => "n/a",
    }
}

fn updated_of(run: &RunReport) -> String {
    updated_secs(run)
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .map(crate::clock::rfc3339)
        .unwrap_or_default()
}

/// `updated_at_unix` of the run's status, when it has one.
fn updated_secs(run: &RunReport) -> Option<i64> {
    let v = run.run_status.as_ref()?.field("updated_at_unix")?;
    match serde_json::from_str::<serde_json::Number>(v.get()) {
        Ok(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f.floor() as i64)),
        _ => None,
    }
}

/// The runs list's default order: runs that fail first (unreadable or failed,
/// then never committed, then in progress, then verified), and within each the
/// newest first, by `updated_at_unix` and then by run id (run ids usually begin
/// with their date).
fn list_order(runs: &mut [(&str, &RunReport)]) {
    let rank = |v: Verification| match v {
        Verification::Failed | Verification::Error => 0,
        Verification::Uncommitted => 1,
        Verification::InProgress => 2,
        Verification::Verified => 3,
    };
    // Keys computed once per run: the update time is read from run_status's fields.
    runs.sort_by_cached_key(|(root, run)| {
        (
            rank(run.verification),
            std::cmp::Reverse(updated_secs(run)),
            std::cmp::Reverse(run.run_id.as_str()),
            *root,
        )
    });
}

/// The most fields of a run's `run_status.json` its page shows (a usual one has
/// about ten; one of a million fields made a page of 92 MB).
pub const MAX_STATUS_FIELDS_SHOWN: usize = 100;

/// The most characters of a name or value a run page's facts show.
const MAX_FACT_CHARS: usize = 500;

/// A value shown in a page's facts: a string as itself, anything else as its
/// compact JSON text, cut at [`MAX_FACT_CHARS`].
fn compact_value(v: &RawValue) -> String {
    match crate::json_text::string_of(v) {
        Some(s) => crate::bundle::index::truncate(&s, MAX_FACT_CHARS),
        None => crate::bundle::index::truncate(v.get(), MAX_FACT_CHARS),
    }
}

/// A gating input as shown: `unknown` when it is null.
fn shown_or_unknown(v: &crate::json_text::JsonText) -> String {
    if v.is_null() {
        "unknown".into()
    } else {
        compact_value(v.raw())
    }
}

/// A writer that keeps the first `cap` bytes written to it and counts them all.
struct Capped {
    cap: usize,
    kept: Vec<u8>,
    total: u64,
}

impl Capped {
    fn new(cap: usize) -> Capped {
        Capped {
            cap,
            kept: Vec::new(),
            total: 0,
        }
    }

    /// What was kept, as text: without the character the cap cut in two.
    fn text(&self) -> &str {
        match std::str::from_utf8(&self.kept) {
            Ok(t) => t,
            Err(e) => std::str::from_utf8(&self.kept[..e.valid_up_to()]).unwrap_or_default(),
        }
    }
}

impl std::io::Write for Capped {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.total += b.len() as u64;
        let room = self.cap.saturating_sub(self.kept.len());
        self.kept.extend_from_slice(&b[..b.len().min(room)]);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Puts every page and asset of the site into `out`. Pages go before the pages that
/// link to them (run pages, then the lists, the overview and `report.json` last), so
/// a site updated in place has no broken link at any instant. The changes still to
/// be compared, if any, are compared while the run pages are written and put in the
/// report before anything that shows them. Returns the sha256 of `report.json`.
pub fn write_site(
    report: &mut Report,
    out: &Sink,
    changes: Changes<'_>,
) -> Result<[u8; 32], Error> {
    let css = asset_name("style", "css", STYLE_CSS);
    let js = asset_name("app", "js", APP_JS);
    out.put(&css, STYLE_CSS)?;
    out.put(&js, APP_JS)?;
    let (site_title, generator, generated_at) = (
        report.site.title.clone(),
        report.generator.clone(),
        report.generated_at.clone(),
    );
    let has_changes = report.changes.is_some() || changes.is_some();
    let shell = |root: &'static str, section: &'static str| Shell {
        root,
        site_title: site_title.clone(),
        generator: generator.clone(),
        generated_at: generated_at.clone(),
        css: css.clone(),
        js: js.clone(),
        section,
        changes: has_changes,
    };
    let flaky_runs = flaky_by_item(report);

    // One page per run, rendered and written in parallel, before anything links to
    // them. A run page only links the changes, so they are compared meanwhile on
    // a thread of their own: at 100,000 runs that took a second on one core.
    let compared = {
        let report = &*report;
        let all = all_runs(report);
        std::thread::scope(|s| {
            let side = changes.map(|compare| s.spawn(move || compare(report)));
            let pages = run_pages(out, &all, &shell, &flaky_runs);
            let compared = side.map(|side| {
                side.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                    .map_err(Error::Changes)
            });
            pages.and(compared.transpose())
        })?
    };
    if compared.is_some() {
        report.changes = compared;
    }
    let report = &*report;
    // Then, while another thread writes `report.json` (the largest file) beside
    // its place, the pages that show the changes or link the run pages. The report
    // takes its place last, after the pages it links.
    let report_json = std::thread::scope(|s| {
        let side = s.spawn(|| out.json_aside("report.json", report, false));
        let rest = write_rest(
            report,
            out,
            shell,
            RunsList::of(all_runs(report)),
            &flaky_runs,
        );
        let side = side
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        rest.and(side)
    })?;
    // Compact: the report is read by programs (and `lith render`), not by people.
    report_json.place()
}

/// What a build adds to its report while the site's run pages are written: the
/// changes since `--previous`, compared with the settled report. Nothing written
/// before them shows them; a run page only links their page.
pub type Changes<'a> =
    Option<Box<dyn FnOnce(&Report) -> anyhow::Result<crate::report::changes::Changes> + Send + 'a>>;

/// Every run of the report with its bundle root's path, in the report's order.
fn all_runs(report: &Report) -> Vec<(&str, &RunReport)> {
    report
        .bundles
        .roots
        .iter()
        .flat_map(|r| r.runs.iter().map(move |run| (r.path.as_str(), run)))
        .collect()
}

/// One page per run (and its artifact table's further pages), rendered and written
/// in parallel.
fn run_pages(
    out: &Sink,
    all: &[(&str, &RunReport)],
    shell: &(impl Fn(&'static str, &'static str) -> Shell + Sync),
    flaky_runs: &BTreeMap<String, (usize, String)>,
) -> Result<(), Error> {
    all.par_iter()
        .try_for_each(|(root, run)| -> Result<(), Error> {
            let Some(page) = &run.page else { return Ok(()) };
            let mut view = run_page(run, root, shell("../../", "runs"), flaky_runs);
            if let Some(a) = &run.extra().attestation {
                view.attestation = Some(AttestationView {
                    linked: copy_attestation(out, page, a)?,
                    r: a,
                });
            }
            // The table's last page first and the run's page last: when the table
            // grows, a page the site already links never links one not yet written.
            let more_pages = view.split_artifact_pages();
            for (k, artifacts) in more_pages.into_iter().enumerate().rev() {
                let more = RunArtifactsPage {
                    shell: shell("../../", "runs"),
                    run: &view,
                    pager: ArtifactPager::new(k + 2, view.pager.listed),
                    artifacts,
                };
                let file = artifact_page_file(more.pager.page_no);
                out.page(&format!("{page}{file}"), &more)?;
            }
            let html =
                room::render(&mut view, run.extra().summary_md.as_deref()).map_err(|source| {
                    Error::Render {
                        rel: format!("{page}index.html"),
                        source,
                    }
                })?;
            out.put(&format!("{page}index.html"), html)
        })
}

/// The runs in the list's order, where each of its pages starts, and the index of
/// every run the list's search reads (when the list has more than one page).
struct RunsList<'r> {
    all: Vec<(&'r str, &'r RunReport)>,
    starts: Vec<usize>,
    index: Option<String>,
}

impl<'r> RunsList<'r> {
    /// Failing and newest first, in pages of at most RUNS_PER_PAGE runs and
    /// RUNS_ROWS_ROOM bytes of rows: a row shows its root's path and its run's
    /// name, each up to some kilobytes escaped.
    fn of(mut all: Vec<(&'r str, &'r RunReport)>) -> RunsList<'r> {
        list_order(&mut all);
        let starts = room::page_starts(&all, RUNS_PER_PAGE, RUNS_ROWS_ROOM, |(root, run)| {
            room::html_len(root)
                + 2 * room::html_len(&run.run_id)
                + run
                    .promotability
                    .as_ref()
                    .map_or(0, |p| 40 * p.reasons.len())
                + RUN_ROW_MARKUP
        });
        let index = (starts.len() > 1).then(|| runs_index(&all));
        RunsList { all, starts, index }
    }
}

/// Every page after the run pages: the overview, the sections, the runs list
/// (with the index its search reads) and the history.
fn write_rest(
    report: &Report,
    out: &Sink,
    shell: impl Fn(&'static str, &'static str) -> Shell + Sync,
    listed: RunsList<'_>,
    flaky_runs: &BTreeMap<String, (usize, String)>,
) -> Result<(), Error> {
    // Overview.
    let roots = report
        .bundles
        .roots
        .iter()
        .map(|r| {
            let (latest_text, latest_class, latest_href) = match &r.latest {
                None => ("none".to_string(), "muted", None),
                Some(l) if l.valid => {
                    let href = r
                        .runs
                        .iter()
                        .find(|run| run.latest)
                        .and_then(|run| run.page.as_ref())
                        .map(|p| format!("{p}index.html"));
                    (l.value.clone(), "", href)
                }
                Some(l) => (format!("invalid: {}", l.value), "badge badge-partial", None),
            };
            let mut other: Vec<String> = r
                .skipped
                .iter()
                .map(|s| format!("{}/ ({})", s.name, s.reason))
                .collect();
            other.extend(r.files.iter().cloned());
            RootRow {
                path: r.path.clone(),
                runs: r.runs.len(),
                verified: r
                    .runs
                    .iter()
                    .filter(|x| x.verification == Verification::Verified)
                    .count(),
                latest_text,
                latest_class,
                latest_href,
                other: other.join(", "),
            }
        })
        .collect();
    let mut findings: Vec<FindingRow> = Vec::new();
    let mut more = 0usize;
    // The first OVERVIEW_FINDINGS that fit in OVERVIEW_FINDINGS_ROOM, in order.
    let mut findings_room = OVERVIEW_FINDINGS_ROOM;
    let mut groups = FindingGroups::default();
    // A run's finding is named by its run id in the groups, not by its message.
    let mut push = |f: &Finding, href: Option<String>, name: Option<&str>| {
        if f.severity < Severity::Warning {
            return;
        }
        groups.add(f, href.as_deref(), name);
        if more == 0 && findings.len() < OVERVIEW_FINDINGS {
            let row = FindingRow::from(f, href);
            let cost = room::html_len(&row.message)
                + room::html_len(&row.place)
                + row.href.as_deref().map_or(0, room::html_len);
            if room::take(&mut findings_room, cost) {
                findings.push(row);
                return;
            }
        }
        more += 1;
    };
    for f in &report.findings {
        push(f, None, None);
    }
    for (href, section) in [
        ("queue/index.html", &report.queue.findings),
        ("receipts/index.html", &report.receipts.findings),
        ("gates/index.html", &report.gates.findings),
        ("phases/index.html", &report.dod.findings),
        ("drift/index.html", &report.drift.findings),
    ] {
        for f in section {
            push(f, Some(href.to_string()), None);
        }
    }
    for r in &report.bundles.roots {
        for f in &r.findings {
            push(f, None, None);
        }
        for run in &r.runs {
            for f in &run.findings {
                let href = run.page.as_ref().map(|p| format!("{p}index.html"));
                let name = href.is_some().then_some(run.run_id.as_str());
                push(f, href, name);
            }
        }
    }
    let counts = &report.verdict.findings;
    let finding_summary = ["error", "designed", "partial", "warning", "info"]
        .iter()
        .map(|k| format!("{} {k}", counts.get(*k).copied().unwrap_or(0)))
        .collect::<Vec<_>>()
        .join(", ");
    let mut flaky_room = OVERVIEW_FLAKY_ROOM;
    let overview = OverviewPage {
        groups: groups.sorted(),
        split: verdict_split(&report.bundles.totals),
        changes: report.changes.as_ref(),
        trends: report.history.as_ref().map(trends).unwrap_or_default(),
        flaky_total: report.history.as_ref().map_or(0, |h| h.flaky.len()),
        flaky: room::keep_within(flaky_rows(report), &mut flaky_room, |f| {
            // Each state is a mark of about 50 bytes.
            room::html_len(&f.item)
                + f.href.as_deref().map_or(0, room::html_len)
                + 50 * f.states.len()
        }),
        banner: banner(report),
        history_len: report.history.as_ref().map_or(0, |h| h.entries.len()),
        shell: shell("", "overview"),
        verdict_label: report.verdict.label.as_str(),
        exit_code: report.verdict.exit_code,
        finding_summary: format!("findings: {finding_summary}"),
        bundles_configured: report.bundles.configured,
        totals: &report.bundles.totals,
        mode: match report.bundles.mode {
            Mode::Full => "sizes and sha256 digests",
            Mode::Fast => "sizes only (--fast)",
        },
        roots,
        findings,
        findings_more: more,
        manifest_file: report.manifest.file.clone(),
        manifest_warnings: &report.manifest.warnings,
        phase_card: report.dod.configured.then(|| report.dod.counts()),
        drift_card: report
            .drift
            .report
            .as_ref()
            .map(|r| (r.checks.idle.ok, r.checks.drift.ok)),
        gate_card: report.gates.push_truth.as_ref().map(|g| {
            let open = g
                .open_questions
                .as_ref()
                .map_or(0, |o| o.questions.iter().filter(|q| !q.resolved).count());
            (g.blocked, g.reasons.len(), open)
        }),
        queue_card: report.queue.configured.then(|| QueueCard {
            pending: report
                .queue
                .replay
                .as_ref()
                .map_or(0, |r| r.pending_count()),
            events: report
                .queue
                .replay
                .as_ref()
                .map_or(0, |r| r.counters.events),
            findings: report.queue.findings.len(),
        }),
        receipts_card: report.receipts.check.as_ref().map(|c| ReceiptsCard {
            receipts: c.receipts,
            with_findings: c.lines_with_findings,
        }),
    };

    sections::write_changes(report, out, shell("../", "changes"))?;
    sections::write_queue(report, out, shell("../", "queue"))?;
    sections::write_receipts(report, out, || shell("../", "receipts"))?;
    sections::write_gates(report, out, shell("../", "gates"))?;
    sections::write_catalog(report, out)?;
    phases::write(report, out, &shell)?;

    // Runs list, paged, and the index of every run its search reads.
    let RunsList { all, starts, index } = listed;
    let by_bytes = starts
        .iter()
        .enumerate()
        .any(|(k, &s)| s != k * RUNS_PER_PAGE);
    let page_count = starts.len();
    if let Some(index) = index {
        out.put("runs/index.js", index)?;
    }
    // The last page first, so that a page already linked from the site (an earlier
    // one, or the list's index.html, written last) never links one not yet written
    // when the list grows. A few pages are rendered at once, in parallel, and put
    // in that order (at 100,000 runs, rendering the 200 pages one by one took a
    // third of a second on one core).
    let render = |page_no: usize| -> Result<(String, String), Error> {
        let end = starts.get(page_no).copied().unwrap_or(all.len());
        let rows = all[starts[page_no - 1]..end]
            .iter()
            .map(|(root, run)| RunRow {
                root: root.to_string(),
                run_id: run.run_id.clone(),
                href: format!(
                    "{}index.html",
                    run.page
                        .as_deref()
                        .unwrap_or_default()
                        .trim_start_matches("runs/")
                ),
                latest: run.latest,
                flaky: flaky_of(flaky_runs, root, run).is_some(),
                state: run.state().unwrap_or("unknown").into(),
                index: run
                    .index
                    .as_ref()
                    .map_or("none".to_string(), |i| i.status.to_string()),
                ok: run.counts.ok,
                total: run.counts.total,
                verification: run.verification.as_str(),
                verification_class: verification_class(run.verification),
                updated: updated_of(run),
                promotable: promotable_label(run),
                promotable_title: run
                    .promotability
                    .as_ref()
                    .map(|p| p.reasons.join(", "))
                    .unwrap_or_default(),
            })
            .collect();
        let page = RunsPage {
            shell: shell("../", "runs"),
            rows,
            total: all.len(),
            root_count: report.bundles.roots.len(),
            page_no,
            page_count,
            per_page: RUNS_PER_PAGE,
            by_bytes,
            prev_href: (page_no > 1).then(|| page_file(page_no - 1)),
            next_href: (page_no < page_count).then(|| page_file(page_no + 1)),
        };
        let rel = format!("runs/{}", page_file(page_no));
        let html = page.render().map_err(|source| Error::Render {
            rel: rel.clone(),
            source,
        })?;
        Ok((rel, html))
    };
    let last_first: Vec<usize> = (1..=page_count).rev().collect();
    for group in last_first.chunks(LIST_PAGES_AT_ONCE) {
        let pages = group
            .par_iter()
            .map(|&page_no| render(page_no))
            .collect::<Result<Vec<_>, Error>>()?;
        for (rel, html) in pages {
            out.put(&rel, html)?;
        }
    }
    if let Some(h) = &report.history {
        out.stream("history.jsonl", |w| {
            crate::report::history::write_jsonl(h, w)
        })?;
    }
    out.page("index.html", &overview)
}

/// Flaky items by key, with their flips and states.
fn flaky_by_item(report: &Report) -> BTreeMap<String, (usize, String)> {
    report
        .history
        .iter()
        .flat_map(|h| &h.flaky)
        .map(|f| (f.item.clone(), (f.flips, f.states.clone())))
        .collect()
}

/// A run's entry in [`flaky_by_item`], without building its key when nothing is
/// flaky (the usual case, on every run).
fn flaky_of<'m>(
    flaky: &'m BTreeMap<String, (usize, String)>,
    root: &str,
    run: &RunReport,
) -> Option<&'m (usize, String)> {
    if flaky.is_empty() {
        return None;
    }
    flaky.get(&crate::report::history::run_key(root, &run.run_id))
}

fn run_page<'a>(
    run: &'a RunReport,
    root: &'a str,
    shell: Shell,
    flaky: &BTreeMap<String, (usize, String)>,
) -> RunPage<'a> {
    // Failing rows first, each group in the report's order.
    let order = artifact_display_order(&run.artifacts);
    let anchors = artifact_anchors(&run.artifacts, &order);
    let artifacts: Vec<ArtifactRow> = order
        .into_iter()
        .zip(anchors)
        .map(|(i, anchor)| {
            let a = &run.artifacts[i];
            let mismatch = matches!(
                a.status,
                ArtifactStatus::SizeMismatch | ArtifactStatus::DigestMismatch
            );
            ArtifactRow {
                anchor,
                status: a.status.as_str(),
                status_class: status_class(a.status),
                path: cut_row_text(&a.path),
                detail: cut_row_text(a.detail().unwrap_or_default()),
                mismatch,
                expected_size: a.expected_size,
                // Only a failing row shows what was found.
                actual_size: match (mismatch, a.actual_size()) {
                    (false, _) => String::new(),
                    (true, None) => "unknown".into(),
                    (true, Some(n)) => n.to_string(),
                },
                expected_sha256: a.expected_sha256,
                actual_sha256: match (mismatch, a.actual_sha256()) {
                    (false, _) => String::new(),
                    (true, None) => "not computed (--fast)".into(),
                    (true, Some(d)) => d.hex(),
                },
                absent: a.status == ArtifactStatus::Missing,
                actual_parts: match (&a.status, a.actual_sha256()) {
                    (ArtifactStatus::DigestMismatch, Some(actual)) => {
                        digest_parts(&a.expected_sha256.hex(), &actual.hex())
                    }
                    _ => Vec::new(),
                },
            }
        })
        .collect::<Vec<_>>();
    // run_status.json's fields, unless it says nothing the facts above do not: its
    // run_id is the folder's and its state the one shown. At most
    // MAX_STATUS_FIELDS_SHOWN, each name and value cut at 500 characters;
    // report.json has them all.
    let mut status_fields = Vec::new();
    let mut status_more = 0usize;
    let mut only_facts = true;
    if let Some(st) = &run.run_status {
        let _ = crate::json_text::each_member(st.fields.raw(), |k, v| {
            only_facts &= match &*k {
                "run_id" => crate::json_text::string_of(v).as_deref() == Some(&run.run_id),
                "state" => {
                    run.state().is_some()
                        && crate::json_text::string_of(v).as_deref() == run.state()
                }
                _ => false,
            };
            crate::wire::push_capped(
                &mut status_fields,
                &mut status_more,
                MAX_STATUS_FIELDS_SHOWN,
                || {
                    (
                        crate::bundle::index::truncate(&k, MAX_FACT_CHARS),
                        compact_value(v),
                    )
                },
            );
        });
    }
    if only_facts {
        status_fields.clear();
        status_more = 0;
    }
    let mut witnesses_more = 0;
    let witnesses = run
        .extra()
        .witnesses
        .as_ref()
        .map(|w| {
            witnesses_more = w.records.len().saturating_sub(MAX_PAGE_LIST);
            w.records
                .iter()
                .take(MAX_PAGE_LIST)
                .map(|r| {
                    let t = |s: &Option<String>| {
                        cut_row_text(s.as_deref().unwrap_or_default()).into_owned()
                    };
                    (
                        t(&r.requested_path),
                        t(&r.observed_path),
                        t(&r.observed_path_nofirmlink),
                        t(&r.normalized_path),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    RunPage {
        shell,
        run_id: &run.run_id,
        root,
        latest: run.latest,
        flaky: flaky_of(flaky, root, run).cloned(),
        verification: run.verification.as_str(),
        verification_class: verification_class(run.verification),
        verification_text: verification_text(run.verification),
        dir: &run.dir,
        state: run.state().unwrap_or("unknown").into(),
        index_text: run
            .index
            .as_ref()
            .map_or("none (uncommitted)".to_string(), |i| {
                format!(
                    "status {}, {} entries, {} listed missing",
                    i.status,
                    i.entries,
                    i.missing.len()
                )
            }),
        ok: run.counts.ok,
        total: run.counts.total,
        pager: ArtifactPager::new(1, artifacts.len()),
        artifacts_unlisted: run.extra().artifacts_unlisted,
        max_listed: crate::bundle::verify::MAX_LISTED_ARTIFACTS,
        unindexed_count: run.extra().unindexed.len(),
        unindexed: shown_list(&run.extra().unindexed),
        mode_text: match run.mode {
            Mode::Full => "sizes and sha256 digests",
            Mode::Fast => "sizes only (--fast)",
        },
        url: run.url.as_deref(),
        findings: run
            .findings
            .iter()
            .map(|f| FindingRow::from(f, None))
            .collect(),
        findings_more: 0,
        artifacts,
        committed: run.committed,
        index_missing: shown_list(run.index.as_ref().map_or(&[][..], |i| &i.missing[..])),
        status_fields,
        status_more,
        has_witnesses: run.extra().witnesses.is_some(),
        witnesses,
        witnesses_more,
        summary_html: run.extra().summary_md.as_deref().map(markdown::render),
        summary_cut: None,
        attestation: None,
        promotion: run.promotability.as_ref().map(|p| {
            let (packet_json, packet_cut) = packet_text(&crate::bundle::promotion::packet(
                &run.dir,
                (**p).clone(),
                &run.extra().promotion_optional,
            ));
            PromotionView {
                promotable: p.promotable_decision_stage,
                reasons: p.reasons.iter().collect(),
                channel: shown_or_unknown(&p.gating_inputs.channel),
                apply_preflight_present: p.gating_inputs.apply_preflight_present,
                apply_ok: shown_or_unknown(&p.gating_inputs.apply_ok),
                sandbox_check_self: compact_value(p.gating_inputs.sandbox_check_self.raw()),
                packet_json: PreText(packet_json),
                packet_cut,
                packet_no_room: false,
            }
        }),
    }
}

#[cfg(test)]
mod pre_text_tests {
    use askama::Template;

    #[derive(Template)]
    #[template(source = "<pre><code>{{ text }}</code></pre>", ext = "html")]
    struct Pre {
        text: super::PreText,
    }

    #[test]
    fn pre_text_escapes_markup_once_and_leaves_quotes() {
        let hostile = r#"{"dir": "</code></pre><script>alert('x')</script> & &amp;"}"#;
        let html = Pre {
            text: super::PreText(hostile.to_string()),
        }
        .render()
        .unwrap();
        assert_eq!(
            html,
            "<pre><code>{\"dir\": \"&lt;/code&gt;&lt;/pre&gt;&lt;script&gt;alert('x')&lt;/script&gt; &amp; &amp;amp;\"}</code></pre>"
        );
        assert!(!html.contains("<script"));
    }

    #[test]
    fn a_value_shown_in_the_facts_is_cut_at_500_characters_whatever_its_kind() {
        use serde_json::json;
        let cut =
            |v: serde_json::Value| super::compact_value(crate::json_text::JsonText::of(&v).raw());
        assert_eq!(cut(json!({"sandboxed": false})), r#"{"sandboxed":false}"#);
        assert_eq!(cut(json!("launchd_clean")), "launchd_clean");
        // A million numbers and a long string alike: 500 characters and an ellipsis.
        let numbers = cut(json!(vec![0; 1_000_000]));
        assert_eq!(numbers.chars().count(), 501);
        assert!(numbers.starts_with("[0,0,") && numbers.ends_with('…'));
        let wide = cut(json!(["é".repeat(1_000)]));
        assert_eq!(wide.chars().count(), 501, "{wide}");
        assert!(wide.starts_with("[\"ééé") && wide.ends_with('…'));
        assert_eq!(cut(json!("é".repeat(1_000))).chars().count(), 501);
        // At the limit, nothing is cut.
        let exact = "x".repeat(500);
        assert_eq!(cut(json!(exact)), exact);
    }
}

#[cfg(test)]
mod digest_tests {
    #[test]
    fn the_differing_characters_of_a_digest_are_cut_out_to_be_marked() {
        let parts = super::digest_parts("abcdef", "abXdYY");
        let want: Vec<(String, bool)> = [("ab", false), ("X", true), ("d", false), ("YY", true)]
            .iter()
            .map(|(s, d)| (s.to_string(), *d))
            .collect();
        assert_eq!(parts, want);
        assert_eq!(super::digest_parts("ab", "ab"), [("ab".to_string(), false)]);
    }
}

#[cfg(test)]
mod palette {
    //! The one palette of the site (`static/style.css`): every colour pair used for
    //! text keeps a contrast ratio of at least 4.5:1 in both themes, and every
    //! segment of a chart at least 3:1 against the page (WCAG 2.2, 1.4.3 and 1.4.11).

    use std::collections::BTreeMap;

    /// The custom properties of the first `:root { … }` block at or after `from`.
    fn theme(css: &str, from: usize) -> BTreeMap<String, String> {
        let start = from + css[from..].find(":root {").expect("a :root block");
        let end = start + css[start..].find('}').expect("a closed :root block");
        css[start + 7..end]
            .split(';')
            .filter_map(|decl| {
                let (k, v) = decl.split_once(':')?;
                Some((k.trim().to_string(), v.trim().to_string()))
            })
            .filter(|(k, _)| k.starts_with("--"))
            .collect()
    }

    fn luminance(hex: &str) -> f64 {
        let hex = hex.strip_prefix('#').expect("a #rrggbb colour");
        assert_eq!(hex.len(), 6, "{hex} is not #rrggbb");
        let channel = |i: usize| {
            let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap()) / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4)
    }

    fn contrast(a: &str, b: &str) -> f64 {
        let (la, lb) = (luminance(a), luminance(b));
        (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
    }

    /// (foreground, background, minimum ratio) of every pair the stylesheet uses.
    const PAIRS: &[(&str, &str, f64)] = &[
        ("--fg", "--bg", 4.5),
        ("--fg", "--panel", 4.5),
        ("--muted", "--bg", 4.5),
        ("--muted", "--panel", 4.5),
        ("--link", "--bg", 4.5),
        ("--link", "--panel", 4.5),
        ("--ok-fg", "--ok-bg", 4.5),
        ("--partial-fg", "--partial-bg", 4.5),
        ("--error-fg", "--error-bg", 4.5),
        ("--info-fg", "--info-bg", 4.5),
        ("--ok-fg", "--panel", 4.5),
        ("--error-fg", "--panel", 4.5),
        ("--partial-fg", "--panel", 4.5),
        // Chart segments and the focus ring: non-text contrast.
        ("--ok-fg", "--bg", 3.0),
        ("--partial-fg", "--bg", 3.0),
        ("--error-fg", "--bg", 3.0),
        ("--info-fg", "--bg", 3.0),
        ("--focus", "--bg", 3.0),
        ("--focus", "--panel", 3.0),
    ];

    #[test]
    fn every_pair_meets_its_contrast_in_both_themes() {
        let css = super::STYLE_CSS;
        let light = theme(css, 0);
        let dark_at = css
            .find("prefers-color-scheme: dark")
            .expect("a dark theme");
        let dark = theme(css, dark_at);
        let mut short = Vec::new();
        for (name, vars) in [("light", &light), ("dark", &dark)] {
            for (fg, bg, min) in PAIRS {
                let ratio = contrast(&vars[*fg], &vars[*bg]);
                if ratio < *min {
                    short.push(format!(
                        "{name}: {fg} on {bg} is {ratio:.2}:1, below {min}:1"
                    ));
                }
            }
        }
        assert!(short.is_empty(), "{short:#?}");
    }

    #[test]
    fn both_themes_define_every_colour_the_stylesheet_uses() {
        let css = super::STYLE_CSS;
        let light = theme(css, 0);
        let dark = theme(css, css.find("prefers-color-scheme: dark").unwrap());
        assert_eq!(
            light.keys().collect::<Vec<_>>(),
            dark.keys().collect::<Vec<_>>()
        );
        for used in css.split("var(").skip(1) {
            let name = &used[..used.find(')').unwrap()];
            assert!(light.contains_key(name), "{name} is used but not defined");
        }
        // No colour outside the palette: a literal colour would escape the audit.
        let dark_at = css.find("prefers-color-scheme: dark").unwrap();
        let after_themes = dark_at + css[dark_at..].find("}\n}").unwrap();
        let literal = css[after_themes..]
            .split('#')
            .skip(1)
            .find(|rest| rest.len() >= 6 && rest[..6].chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(literal, None, "a literal colour outside the palette");
    }

    #[test]
    fn the_contrast_formula_matches_known_values() {
        assert!((contrast("#000000", "#ffffff") - 21.0).abs() < 1e-9);
        assert!((contrast("#777777", "#ffffff") - 4.48).abs() < 0.01);
    }
}

#[cfg(test)]
mod artifact_pager_tests {
    use super::{ARTIFACT_ROWS_PER_PAGE as N, ArtifactPager, Shell};

    fn shell() -> Shell {
        Shell {
            root: "../../",
            site_title: "lith evidence report".into(),
            generator: "lith".into(),
            generated_at: "2026-01-01T00:00:00Z".into(),
            css: "assets/style.css".into(),
            js: "assets/app.js".into(),
            section: "runs",
            changes: false,
        }
    }

    #[test]
    fn a_table_is_cut_into_pages_of_rows_counted_from_one() {
        let p = ArtifactPager::new(1, 0);
        assert_eq!(
            (p.page_count, p.first, p.last),
            (1, 0, 0),
            "no rows: one page"
        );
        let p = ArtifactPager::new(1, N);
        assert_eq!((p.page_count, p.first, p.last), (1, 1, N));
        let p = ArtifactPager::new(2, N + 1);
        assert_eq!((p.page_count, p.first, p.last), (2, N + 1, N + 1));
        let p = ArtifactPager::new(3, 10_000);
        assert_eq!((p.page_count, p.first, p.last), (40, 2 * N + 1, 3 * N));
        assert_eq!(p.last_of(40), 10_000);
        assert_eq!(p.href(1), "index.html");
        assert_eq!(p.href(40), "artifacts-40.html");
    }

    /// The worst rows a page can hold keep it under 1 MB: a path and a detail of
    /// characters escaped at five bytes each, cut at MAX_ROW_CHARS, and digests
    /// differing at every other character; its other lists as long as a report
    /// holds them, of the same characters.
    #[test]
    fn a_page_of_the_largest_rows_stays_under_a_megabyte() {
        use crate::bundle::verify::{ArtifactCheck, ArtifactStatus, Sha256Digest};
        let quotes = "\"".repeat(5_000);
        let mut a = ArtifactCheck::plain(quotes.as_str(), 1, Sha256Digest([0; 32]));
        a.set_rel(Some(&quotes));
        a.set_actual(Some(2), Some(Sha256Digest([0x0f; 32])));
        a.set_detail(Some(&quotes));
        a.set_status(ArtifactStatus::DigestMismatch);
        let mut run = crate::bundle::verify::RunReport::new(
            "r".into(),
            "out/r".into(),
            crate::bundle::verify::Mode::Full,
        );
        run.artifacts = vec![a; N];
        // The page's other lists at their largest too: the report's 10,000
        // unindexed files, and an index listing 100,000 entries as missing.
        run.extra_mut().unindexed = vec![quotes.clone(); 10_000];
        run.index = Some(Box::new(crate::bundle::verify::IndexSummary {
            schema_version: None,
            run_id: None,
            world_id: None,
            status: crate::bundle::index::IndexStatus::Ok,
            missing: vec![quotes.clone(); 100_000],
            entries: N,
        }));
        let mut page = super::run_page(&run, "out", shell(), &Default::default());
        let rest = page.split_artifact_pages();
        assert!(rest.is_empty());
        let html = askama::Template::render(&page).unwrap();
        assert!(html.len() < 1 << 20, "{} bytes", html.len());
        assert!(
            html.len() > 500_000,
            "the rows are the large ones: {} bytes",
            html.len()
        );
    }
}
