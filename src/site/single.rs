//! `--single-file PATH`: the report as one self-contained HTML file to mail or
//! attach — CSS, script and data inline, no link to another file, so it opens
//! the same from `file://`, an e-mail client's preview or a CI artifact viewer.
//!
//! It holds the overview, the changes since `--previous`, the flaky items, every
//! run in one searchable, sortable table, and the details (artifacts that are not
//! ok, findings) of the runs that fail or changed — not of every run, so that 10,000
//! runs stay a few megabytes. The file says what it leaves out.

use askama::Template;

use super::{APP_JS, Error, STYLE_CSS, status_class, verification_class};
use crate::bundle::verify::{ArtifactStatus, RunReport, Verification};
use crate::report::Report;

/// Runs whose details the file includes, at most.
pub const MAX_DETAILED_RUNS: usize = 2000;
/// Artifact rows shown per detailed run, at most.
const ROWS_PER_RUN: usize = 50;
/// Artifact rows over all detailed runs, at most (about 400 bytes each): with the
/// runs table, 10,000 runs stay well under 10 MB however many fail.
const MAX_DETAIL_ROWS: usize = 12_000;
/// Findings listed, at most.
const FINDINGS: usize = 200;

pub struct Row {
    pub root: String,
    pub run_id: String,
    pub verification: &'static str,
    pub class: &'static str,
    pub ok: usize,
    pub total: usize,
    pub promotable: &'static str,
    /// `#…` of its details, when included.
    pub details: Option<String>,
}

pub struct Detail {
    pub anchor: String,
    pub root: String,
    pub run_id: String,
    pub verification: &'static str,
    pub class: &'static str,
    pub change: Option<&'static str>,
    /// (status, class, path, expected size, actual size, expected digest, actual digest)
    pub artifacts: Vec<(
        &'static str,
        &'static str,
        String,
        u64,
        String,
        String,
        String,
    )>,
    pub left_out: usize,
    pub findings: Vec<String>,
}

/// The single file's Content-Security-Policy: as the site's pages have it (no
/// script or style but its own, nothing fetched, no form, no base), but with no
/// image at all, and its own script and style being the elements inside it,
/// allowed by their sha256 digests.
fn single_file_policy() -> String {
    use base64ct::Encoding as _;
    use sha2::Digest as _;
    let digest = |text: &str| base64ct::Base64::encode_string(&sha2::Sha256::digest(text));
    format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; base-uri 'none'; form-action 'none'",
        digest(APP_JS),
        digest(STYLE_CSS)
    )
}

#[derive(Template)]
#[template(path = "single.html")]
pub struct SinglePage<'a> {
    pub report: &'a Report,
    pub css: &'static str,
    pub js: &'static str,
    /// The page's Content-Security-Policy: nothing runs or styles it but its own
    /// script and style elements, named by their digests.
    pub csp: String,
    pub verdict: &'static str,
    pub rows: Vec<Row>,
    pub details: Vec<Detail>,
    pub details_left_out: usize,
    pub findings: Vec<super::FindingRow>,
    pub findings_more: usize,
}

fn run_anchor(root: &str, run_id: &str) -> String {
    let h = crate::bundle::verify::hex(&<sha2::Sha256 as sha2::Digest>::digest(
        format!("{root}\0{run_id}").as_bytes(),
    ));
    format!("run-{}", &h[..12])
}

/// The whole file.
pub fn render(report: &Report) -> Result<String, Error> {
    let changed: std::collections::BTreeMap<(&str, &str), &'static str> = report
        .changes
        .iter()
        .flat_map(|c| &c.runs)
        .map(|r| ((r.root.as_str(), r.run_id.as_str()), r.kind.as_str()))
        .collect();
    let mut rows = Vec::new();
    let mut details = Vec::new();
    let mut details_left_out = 0;
    let mut detail_rows = 0;
    for root in &report.bundles.roots {
        for run in &root.runs {
            let change = changed
                .get(&(root.path.as_str(), run.run_id.as_str()))
                .copied();
            let wanted = run.verification != Verification::Verified || change.is_some();
            let anchor = run_anchor(&root.path, &run.run_id);
            let rows_needed = run
                .artifacts
                .iter()
                .filter(|a| a.status != ArtifactStatus::Ok)
                .count()
                .min(ROWS_PER_RUN);
            let detailed = wanted
                && details.len() < MAX_DETAILED_RUNS
                && detail_rows + rows_needed <= MAX_DETAIL_ROWS;
            if detailed {
                detail_rows += rows_needed;
            }
            if wanted && !detailed {
                details_left_out += 1;
            }
            if detailed {
                details.push(detail(&root.path, run, &anchor, change));
            }
            rows.push(Row {
                root: root.path.clone(),
                run_id: run.run_id.clone(),
                verification: run.verification.as_str(),
                class: verification_class(run.verification),
                ok: run.counts.ok,
                total: run.counts.total,
                promotable: super::promotable_label(run),
                details: detailed.then(|| format!("#{anchor}")),
            });
        }
    }
    let all: Vec<_> = report.all_findings().collect();
    let page = SinglePage {
        report,
        css: STYLE_CSS,
        js: APP_JS,
        csp: single_file_policy(),
        verdict: report.verdict.label.as_str(),
        rows,
        details,
        details_left_out,
        findings: all
            .iter()
            .take(FINDINGS)
            .map(|f| super::FindingRow::from(f, None))
            .collect(),
        findings_more: all.len().saturating_sub(FINDINGS),
    };
    page.render().map_err(|source| Error::Render {
        rel: "--single-file".into(),
        source,
    })
}

fn detail(root: &str, run: &RunReport, anchor: &str, change: Option<&'static str>) -> Detail {
    let not_ok: Vec<_> = run
        .artifacts
        .iter()
        .filter(|a| a.status != ArtifactStatus::Ok)
        .collect();
    let ok = run.artifacts.len() - not_ok.len();
    let shown: Vec<_> = not_ok.iter().copied().take(ROWS_PER_RUN).collect();
    let absent = |a: &crate::bundle::verify::ArtifactCheck, found: Option<String>| {
        if a.status == ArtifactStatus::Missing {
            "absent".to_string()
        } else {
            found.unwrap_or_else(|| "not computed".into())
        }
    };
    let shown_len = shown.len();
    Detail {
        anchor: anchor.to_string(),
        root: root.to_string(),
        run_id: run.run_id.clone(),
        verification: run.verification.as_str(),
        class: verification_class(run.verification),
        change,
        artifacts: shown
            .into_iter()
            .map(|a| {
                (
                    a.status.as_str(),
                    status_class(a.status),
                    a.path.to_string(),
                    a.expected_size,
                    absent(a, a.actual_size().map(|n| n.to_string())),
                    a.expected_sha256.hex(),
                    absent(a, a.actual_sha256().map(|d| d.hex())),
                )
            })
            .collect(),
        left_out: ok + (not_ok.len() - shown_len) + run.extra().artifacts_unlisted,
        findings: run
            .findings
            .iter()
            .map(|f| format!("{} {}: {}", f.severity.as_str(), f.code.as_str(), f.message))
            .collect(),
    }
}
