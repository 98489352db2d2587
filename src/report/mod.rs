//! The report model: one serializable value that every writer reads (`report.json`,
//! the site, the text summary). Writers never recompute a verdict.
//!
//! Determinism: lists are sorted (roots by path, runs by id, findings by code), maps
//! are `BTreeMap`s, sizes and counts are integers, and paths are workspace-relative.

pub mod annotations;
pub mod changes;
pub mod history;
pub mod junit;
pub mod sections;
pub mod step_summary;
pub mod text;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use crate::bundle::layout::RootScan;
use crate::bundle::paths::is_safe_file_name;
use crate::bundle::verify::{Mode, Verification, hex};
use crate::finding::{Finding, Severity};

pub const SCHEMA_VERSION: &str = "lith.report/v2";

/// What lith allows one report it reads back whole (`render`, `merge`'s partial
/// reports together, the newer side of `diff`, a rebuild's reuse) to take, all three
/// following the memory it may hold (`--report-memory`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// The most it may hold in memory, as lith's allocator counts it
    /// ([`crate::held`]): a report of 100,000 runs of 13 artifacts holds 197 MiB.
    /// Its text alone does not bound it: ten million short names in one run's
    /// `unindexed` (a 110 MB report) took `lith render` to 868 MiB, and one 200 MB
    /// name to 419 MiB.
    pub held: usize,
    /// The most JSON values it may have, counted before it is read (100,000 runs of
    /// 13 artifacts are some 8.4 million): one per 14 bytes it may hold, as a
    /// document of `0,` or `"",` costs 8 to 16 times its text.
    pub values: usize,
    /// The largest file read back (a report compared with, which is not held, too):
    /// 1 GiB, or four times what may be held when that is more.
    pub bytes: u64,
}

impl ReadLimits {
    /// The default: 224 MiB held, so that a legitimate report of 100,000 runs reads
    /// and any one report keeps lith under SPEC's 256 MB.
    pub const DEFAULT: ReadLimits = ReadLimits::holding(224 << 20);

    /// What a refusal for size adds, to say what to do.
    pub const RAISE: &str = " (--report-memory raises it)";

    /// The limits of a report that may hold `held` bytes.
    pub const fn holding(held: usize) -> ReadLimits {
        let bytes = (held as u64).saturating_mul(4);
        ReadLimits {
            held,
            values: held / 14,
            bytes: if bytes > 1 << 30 { bytes } else { 1 << 30 },
        }
    }
}

impl Default for ReadLimits {
    fn default() -> ReadLimits {
        ReadLimits::DEFAULT
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Report {
    pub schema_version: String,
    pub generator: String,
    pub generated_at: String,
    /// Wall-clock build time; left out under `SOURCE_DATE_EPOCH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    pub verdict: Verdict,
    pub manifest: ManifestInfo,
    pub site: SiteInfo,
    pub bundles: BundlesSection,
    pub queue: sections::QueueSection,
    pub receipts: sections::ReceiptsSection,
    pub gates: GatesSection,
    pub dod: DodSection,
    pub drift: DriftSection,
    /// The PromptDB packets and refresh statistics; with the runs they make
    /// `api/catalog.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promptdb: Option<crate::catalog::PromptDb>,
    /// Findings about the workspace itself (patterns that matched nothing, …).
    pub findings: Vec<Finding>,
    /// What changed since the build given to `--previous`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<changes::Changes>,
    /// The kept build history, this build last (`history.jsonl`), and what it
    /// shows to be flaky.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<history::History>,
}

#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct GatesSection {
    /// False when the manifest has neither a proof schema nor a push-truth gate.
    pub configured: bool,
    pub push_truth: Option<crate::gate::GateReport>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct DodSection {
    pub configured: bool,
    pub operational_proof_required: bool,
    pub git_head: Option<String>,
    pub phases: BTreeMap<String, crate::dod::PhaseResult>,
    /// Each phase's DoD document (Markdown), shown on its page.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub documents: BTreeMap<String, String>,
    pub findings: Vec<Finding>,
}

impl DodSection {
    /// How many phases are (PROVEN, PARTIAL, DESIGNED).
    pub fn counts(&self) -> (usize, usize, usize) {
        let n = |v| self.phases.values().filter(|p| p.verdict == v).count();
        use crate::dod::Verdict::*;
        (n(Proven), n(Partial), n(Designed))
    }
}

#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct DriftSection {
    pub configured: bool,
    pub report: Option<crate::activity::drift::DriftReport>,
    pub findings: Vec<Finding>,
}

str_enum! {
    /// A build's overall verdict: its worst finding's severity, or `ok`.
    pub enum VerdictLabel {
        Ok = "ok",
        Partial = "partial",
        Designed = "designed",
        Error = "error",
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Verdict {
    /// The worst severity of any finding, or `ok`.
    pub label: VerdictLabel,
    pub exit_code: i32,
    /// Number of findings per severity, over the whole report.
    pub findings: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ManifestInfo {
    /// The manifest's file name (the workspace is its folder).
    pub file: String,
    pub v: String,
    pub truth_unit: Option<String>,
    pub warnings: Vec<String>,
    /// Which optional sections are configured.
    pub sections: Vec<String>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SiteInfo {
    pub title: String,
    pub base_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct BundlesSection {
    /// False when the manifest has no `(bundles …)` section.
    pub configured: bool,
    pub mode: Mode,
    pub patterns: Vec<String>,
    pub totals: Totals,
    pub roots: Vec<RootScan>,
}

#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Totals {
    pub roots: usize,
    pub runs: usize,
    pub verified: usize,
    pub failed: usize,
    pub in_progress: usize,
    pub uncommitted: usize,
    pub error: usize,
    pub artifacts: usize,
    pub artifacts_ok: usize,
    pub unindexed: usize,
}

impl Report {
    /// Every finding in the report, workspace-level first.
    pub fn all_findings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .chain(self.bundles.roots.iter().flat_map(|r| {
                r.findings
                    .iter()
                    .chain(r.runs.iter().flat_map(|run| run.findings.iter()))
            }))
            .chain(self.queue.findings.iter())
            .chain(self.receipts.findings.iter())
            .chain(self.gates.findings.iter())
            .chain(self.dod.findings.iter())
            .chain(self.drift.findings.iter())
    }

    /// True when the build found nothing at all to check: no run, no replayed queue
    /// log, no receipt, no gate, no phase and no drift report. Such a build is never
    /// green (SPEC §1).
    pub fn checked_nothing(&self) -> bool {
        let queue_checked = self.queue.replay.is_some()
            && !self
                .queue
                .findings
                .iter()
                .any(|f| f.code == crate::finding::Code::QueueInputMissing);
        self.bundles.totals.runs == 0
            && !queue_checked
            && self.receipts.check.is_none()
            && self.gates.push_truth.is_none()
            && self.dod.phases.is_empty()
            && self.drift.report.is_none()
    }

    /// Fills in the verdict from the findings. Call once the model is complete.
    pub fn settle_verdict(&mut self) {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        let mut worst = Severity::Info;
        for f in self.all_findings() {
            *counts.entry(f.severity.as_str().to_string()).or_default() += 1;
            worst = worst.max(f.severity);
        }
        let exit_code = worst.exit_code();
        self.verdict = Verdict {
            label: match worst {
                Severity::Error => VerdictLabel::Error,
                Severity::Designed => VerdictLabel::Designed,
                Severity::Partial => VerdictLabel::Partial,
                _ => VerdictLabel::Ok,
            },
            exit_code,
            findings: counts,
        };
    }
}

impl Totals {
    pub fn of(roots: &[RootScan]) -> Totals {
        let mut t = Totals {
            roots: roots.len(),
            ..Totals::default()
        };
        for run in roots.iter().flat_map(|r| r.runs.iter()) {
            t.runs += 1;
            match run.verification {
                Verification::Verified => t.verified += 1,
                Verification::Failed => t.failed += 1,
                Verification::InProgress => t.in_progress += 1,
                Verification::Uncommitted => t.uncommitted += 1,
                Verification::Error => t.error += 1,
            }
            t.artifacts += run.counts.total;
            t.artifacts_ok += run.counts.ok;
            t.unindexed += run.extra().unindexed.len();
        }
        t
    }
}

/// Assigns each run a stable page: `runs/<run_id>/` when the id is a safe file name
/// used by one root only, else a slug plus a short hash of root and id. With a base
/// URL, runs and artifacts also get absolute URLs.
pub fn assign_pages(scans: &mut [RootScan], base_url: Option<&str>) {
    // Page names are decided before any page is written: a run whose id is a safe,
    // unique, unreserved file name keeps it; every other run gets a slug with a hash
    // of its root and id, lengthened until it collides with nothing. The result does
    // not depend on the order runs are met in. The names are found first, borrowing
    // the ids (at 100,000 runs, ordered maps of cloned ids took a quarter of a second
    // after verification, on one core), then given to the runs.
    let slugs: Vec<Option<String>> = {
        let runs = || {
            scans
                .iter()
                .flat_map(|s| s.runs.iter().map(move |r| (&s.path, r)))
        };
        let mut uses: HashMap<&str, u32> = HashMap::new();
        for (_, run) in runs() {
            *uses.entry(run.run_id.as_str()).or_default() += 1;
        }
        // Whether each run keeps its id, decided once.
        let plain: Vec<bool> = runs()
            .map(|(_, r)| {
                let id = r.run_id.as_str();
                is_safe_file_name(id) && !is_reserved_page_name(id) && uses[id] == 1
            })
            .collect();
        let mut taken: HashSet<Cow<'_, str>> = runs()
            .zip(&plain)
            .filter(|(_, plain)| **plain)
            .map(|((_, r), _)| Cow::Borrowed(r.run_id.as_str()))
            .collect();
        runs()
            .zip(&plain)
            .map(|((root, run), plain)| {
                if *plain {
                    return None;
                }
                let mut n = 10;
                Some(loop {
                    let s = slug_with_hash(root, &run.run_id, n);
                    if n >= 64 || taken.insert(Cow::Owned(s.clone())) {
                        break s;
                    }
                    n += 10;
                })
            })
            .collect()
    };
    let mut slugs = slugs.into_iter();
    for scan in scans.iter_mut() {
        let latest_id = scan.latest.as_ref().and_then(|l| l.run_id.clone());
        for run in scan.runs.iter_mut() {
            let slug = slugs.next().flatten();
            let page = format!("runs/{}/", slug.as_deref().unwrap_or(&run.run_id));
            run.url = base_url.map(|b| join_url(b, &page));
            if let Some(url) = &run.url {
                // A row links to the page of the run's artifact table that lists it.
                let order = crate::site::artifact_display_order(&run.artifacts);
                let anchors = crate::site::artifact_anchors(&run.artifacts, &order);
                for (row, (i, anchor)) in order.into_iter().zip(anchors).enumerate() {
                    let page_no = row / crate::site::ARTIFACT_ROWS_PER_PAGE + 1;
                    let file = match page_no {
                        1 => String::new(),
                        n => crate::site::artifact_page_file(n),
                    };
                    let a = &mut run.artifacts[i];
                    a.set_url(Some(&format!("{url}{file}#{anchor}")));
                }
            }
            run.page = Some(page);
            run.latest = latest_id.as_deref() == Some(run.run_id.as_str());
        }
    }
}

/// Names the site itself uses beside run folders and phase folders.
pub fn is_reserved_page_name(name: &str) -> bool {
    // Compared byte by byte, ignoring ASCII case, without a lowercase copy.
    let ends_with = |suffix: &str| {
        name.len() >= suffix.len()
            && name.as_bytes()[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
    };
    name.eq_ignore_ascii_case("assets")
        || [".html", ".js", ".json", ".css"].into_iter().any(ends_with)
}

fn slug_with_hash(root: &str, run_id: &str, hex_digits: usize) -> String {
    use sha2::{Digest, Sha256};
    let mut slug: String = run_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    slug = slug.trim_matches('-').to_string();
    let h = hex(&Sha256::digest(format!("{root}\0{run_id}").as_bytes()));
    let n = hex_digits.min(h.len());
    if slug.is_empty() {
        format!("run-{}", &h[..n])
    } else {
        format!("{slug}-{}", &h[..n])
    }
}

/// Joins a base URL and a site-relative path with exactly one `/`.
pub fn join_url(base: &str, rel: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        rel.trim_start_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_run_ids_get_a_slug_and_hash() {
        let s = slug_with_hash("out", "<script>alert(1)</script>", 10);
        assert!(s.starts_with("script-alert-1---script-"), "{s}");
        assert!(is_safe_file_name(&s), "{s}");
        assert_eq!(s, slug_with_hash("out", "<script>alert(1)</script>", 10));
        assert_ne!(s, slug_with_hash("other", "<script>alert(1)</script>", 10));
        assert!(slug_with_hash("out", "../..", 10).starts_with("run-"));
    }

    #[test]
    fn reserved_names_are_known_whatever_their_case() {
        for name in [
            "index.html",
            "INDEX.HTML",
            "assets",
            "Assets",
            "page-2.html",
            "a.JSON",
            "x.Js",
            "s.css",
            "é.html",
        ] {
            assert!(is_reserved_page_name(name), "{name}");
        }
        for name in [
            "plain", "html", "assets2", "json", "a.jsonl", "a.csv", "é", ".htm",
        ] {
            assert!(!is_reserved_page_name(name), "{name}");
        }
    }

    /// A run keeps its id as its page name when the id is a safe, unique, unreserved
    /// file name; a repeated, reserved or unsafe id gets a slug, lengthened when it
    /// would take a name another run has.
    #[test]
    fn page_names_are_distinct_and_plain_ids_are_kept() {
        use crate::bundle::layout::RootScan;
        use crate::bundle::verify::RunReport;
        let hostile = "<b>x</b>";
        // A plain run named as the hostile run's ten-digit slug would be.
        let squatter = slug_with_hash("b", hostile, 10);
        let root = |path: &str, ids: &[&str]| RootScan {
            path: path.to_string(),
            latest: None,
            runs: ids
                .iter()
                .map(|id| RunReport::new(id.to_string(), format!("{path}/{id}"), Mode::Full))
                .collect(),
            skipped: Vec::new(),
            files: Vec::new(),
            witnesses: None,
            findings: Vec::new(),
        };
        let mut scans = vec![
            root("a", &["plain", "twice", "index.html"]),
            root("b", &["twice", hostile, &squatter]),
        ];
        assign_pages(&mut scans, Some("https://ci.example/site"));
        let pages: Vec<&str> = scans
            .iter()
            .flat_map(|s| s.runs.iter().map(|r| r.page.as_deref().unwrap()))
            .collect();
        assert_eq!(pages[0], "runs/plain/");
        assert_eq!(pages[5], format!("runs/{squatter}/"));
        let twice_a = slug_with_hash("a", "twice", 10);
        let twice_b = slug_with_hash("b", "twice", 10);
        assert_eq!(pages[1], format!("runs/{twice_a}/"));
        assert_eq!(pages[3], format!("runs/{twice_b}/"));
        assert_eq!(
            pages[2],
            format!("runs/{}/", slug_with_hash("a", "index.html", 10))
        );
        // The hostile run's ten-digit slug is taken: it gets twenty digits.
        assert_eq!(
            pages[4],
            format!("runs/{}/", slug_with_hash("b", hostile, 20))
        );
        let distinct: std::collections::HashSet<&&str> = pages.iter().collect();
        assert_eq!(distinct.len(), pages.len(), "{pages:?}");
        assert_eq!(
            scans[0].runs[0].url.as_deref(),
            Some("https://ci.example/site/runs/plain/")
        );
    }

    #[test]
    fn urls_join_with_one_slash() {
        assert_eq!(join_url("https://x/e/", "runs/a/"), "https://x/e/runs/a/");
        assert_eq!(join_url("https://x/e", "runs/a/"), "https://x/e/runs/a/");
    }
}
