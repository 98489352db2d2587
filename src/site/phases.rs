//! The phases pages (DoD verdicts, chains as timelines, the documents rendered
//! safely) and the drift page.

use askama::Template;

use super::room::{fill, html_len, keep_within};
use super::{FindingRow, Shell};
use crate::bundle::index::truncate;
use crate::bundle::paths::is_safe_file_name;
use crate::bundle::verify::hex;
use crate::dod::Verdict;
use crate::report::Report;

pub struct PhaseRow {
    pub id: String,
    pub href: String,
    pub verdict: &'static str,
    pub class: &'static str,
    pub proof: &'static str,
    /// The first [`MISSING_PER_ROW`] missing items, and how many more there are.
    pub missing: Vec<String>,
    pub missing_more: usize,
}

/// Missing items a row of the phases list names.
const MISSING_PER_ROW: usize = 5;

#[derive(Template)]
#[template(path = "phases.html")]
pub struct PhasesPage {
    pub shell: Shell,
    pub configured: bool,
    pub operational: bool,
    pub git_head: Option<String>,
    pub rows: Vec<PhaseRow>,
    /// Phases the list leaves out for want of room (their pages are written).
    pub rows_more: usize,
}

pub struct StepView {
    pub ts: String,
    pub action: String,
    pub emit_mode: String,
    pub run_id: String,
    pub tool: String,
    pub line: usize,
    pub in_triple: bool,
}

#[derive(Template)]
#[template(path = "phase.html")]
pub struct PhasePage {
    pub shell: Shell,
    pub id: String,
    pub verdict: &'static str,
    pub class: &'static str,
    pub proof: &'static str,
    pub valid: bool,
    pub meta_id: String,
    pub meta_gate: String,
    pub meta_commit: String,
    pub meta_sot: String,
    pub missing: Vec<String>,
    pub missing_more: usize,
    pub timeline: Vec<StepView>,
    /// The phase's earlier events the timeline leaves out.
    pub timeline_omitted: usize,
    pub document_html: Option<String>,
    /// Bytes of the document left out for want of room.
    pub document_cut: Option<usize>,
}

/// The most characters of a timeline step's action, emit mode, run id or tool
/// shown (the feed keeps 4,096), and of a DoD document's metadata values.
const STEP_CHARS: usize = 240;

#[derive(Template)]
#[template(path = "drift.html")]
pub struct DriftPage<'a> {
    pub shell: Shell,
    pub configured: bool,
    pub findings: Vec<FindingRow>,
    pub report: Option<&'a crate::activity::drift::DriftReport>,
    pub idle_last: String,
    pub idle_age: String,
    pub drift_last: String,
    pub drift_age: String,
    pub idle_threshold: String,
    pub drift_threshold: String,
    /// (age shown, scale end, threshold) of a bar against the threshold; the scale
    /// ends at twice the threshold, and an older age fills it.
    pub idle_meter: Option<(i64, i64, i64)>,
    pub drift_meter: Option<(i64, i64, i64)>,
    /// The latest evidence named in the feed that fits in the page's room (a feed
    /// line may name tens of thousands), and how many more there are.
    pub evidence: Vec<&'a String>,
    pub evidence_more: usize,
}

fn class(v: Verdict) -> &'static str {
    match v {
        Verdict::Proven => "ok",
        Verdict::Partial => "partial",
        Verdict::Designed => "neutral",
    }
}

/// The folder of a phase page.
pub(super) fn slug(id: &str) -> String {
    if is_safe_file_name(id)
        && !crate::report::is_reserved_page_name(id)
        && !id.starts_with("phase-")
    {
        id.to_string()
    } else {
        use sha2::{Digest, Sha256};
        format!("phase-{}", &hex(&Sha256::digest(id.as_bytes()))[..12])
    }
}

fn iso(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// An age in seconds as a person reads it: `45 s`, `12 min 5 s`, `3 h 20 min`,
/// `2 d 4 h`; the exact seconds stay in report.json.
pub(super) fn human_age(secs: i64) -> String {
    if secs < 0 {
        return format!("{secs} s (in the future: check the clocks)");
    }
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, _) if s == 0 => format!("{m} min"),
        (0, 0, _) => format!("{m} min {s} s"),
        (0, _, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

fn meter(age: Option<i64>, threshold: i64) -> Option<(i64, i64, i64)> {
    let threshold = threshold.max(1);
    age.map(|a| (a.clamp(0, 2 * threshold), 2 * threshold, threshold))
}

pub fn write(
    report: &Report,
    out: &super::Sink,
    shell: impl Fn(&'static str, &'static str) -> Shell,
) -> Result<(), super::Error> {
    let d = &report.dod;
    // A row names its first few missing items (its page has the rest), and the
    // rows fill a room: a registry may name tens of thousands of phases.
    let mut room = super::room::LISTS_ROOM;
    let rows: Vec<PhaseRow> = keep_within(
        d.phases.values().map(|p| PhaseRow {
            id: truncate(&p.phase_id, STEP_CHARS),
            href: format!("{}/index.html", slug(&p.phase_id)),
            verdict: p.verdict.as_str(),
            class: class(p.verdict),
            proof: p.checks.activity_chain.proof_mode.as_str(),
            missing: p
                .missing
                .iter()
                .take(MISSING_PER_ROW)
                .map(|m| truncate(m, STEP_CHARS))
                .collect(),
            missing_more: p.missing.len().saturating_sub(MISSING_PER_ROW),
        }),
        &mut room,
        |r| {
            html_len(&r.id)
                + r.href.len()
                + r.missing.iter().map(|m| html_len(m) + 32).sum::<usize>()
        },
    );
    let rows_more = d.phases.len() - rows.len();
    let page = PhasesPage {
        shell: shell("../", "phases"),
        configured: d.configured,
        operational: d.operational_proof_required,
        git_head: d.git_head.clone(),
        rows,
        rows_more,
    };
    out.page("phases/index.html", &page)?;
    for p in d.phases.values() {
        let ch = &p.checks.activity_chain;
        let in_triple = |line: usize| ch.triple.iter().any(|s| s.line == line);
        // What is missing, the timeline (the judged steps, then the latest) and the
        // document share one room: each may be megabytes (1,000 events of 4,096
        // characters, a 1 MiB document).
        let mut room = super::room::LISTS_ROOM;
        let missing = keep_within(p.missing.iter().cloned(), &mut room, |m| html_len(m));
        let step = |s: &crate::activity::chain::Step| StepView {
            ts: iso(s.ts_ms),
            action: truncate(&s.action, STEP_CHARS),
            emit_mode: truncate(s.emit_mode.as_deref().unwrap_or("no emit_mode"), STEP_CHARS),
            run_id: truncate(s.run_id.as_deref().unwrap_or("none"), STEP_CHARS),
            tool: truncate(s.tool.as_deref().unwrap_or("no tool"), STEP_CHARS),
            line: s.line,
            in_triple: in_triple(s.line),
        };
        let cost = |v: &StepView| {
            [&v.action, &v.emit_mode, &v.run_id, &v.tool]
                .into_iter()
                .map(|s| html_len(s))
                .sum()
        };
        let (judged, rest): (Vec<_>, Vec<_>) = ch.timeline.iter().partition(|s| in_triple(s.line));
        let mut timeline = keep_within(judged.into_iter().map(step), &mut room, cost);
        timeline.extend(keep_within(
            rest.into_iter().rev().map(step),
            &mut room,
            cost,
        ));
        timeline.sort_by_key(|v| v.line);
        let (document_html, document_cut) = match d.documents.get(&p.phase_id) {
            Some(doc) => {
                let (html, shown) =
                    super::room::markdown_within(super::markdown::render(doc), doc, room);
                (html, (shown < doc.len()).then_some(doc.len() - shown))
            }
            None => (None, None),
        };
        let page = PhasePage {
            shell: shell("../../", "phases"),
            id: p.phase_id.clone(),
            verdict: p.verdict.as_str(),
            class: class(p.verdict),
            proof: ch.proof_mode.as_str(),
            valid: ch.valid,
            // The document's metadata values, cut as a step's fields are (a 1 MiB
            // document may make each of them hundreds of KB).
            meta_id: truncate(p.meta.phase_id.as_deref().unwrap_or("missing"), STEP_CHARS),
            meta_gate: truncate(p.meta.gate.as_deref().unwrap_or("missing"), STEP_CHARS),
            meta_commit: truncate(p.meta.commit_sha.as_deref().unwrap_or("none"), STEP_CHARS),
            meta_sot: truncate(p.meta.sot_section.as_deref().unwrap_or("none"), STEP_CHARS),
            missing_more: p.missing.len() - missing.len(),
            missing,
            timeline_omitted: ch.timeline_omitted + ch.timeline.len() - timeline.len(),
            timeline,
            document_html,
            document_cut,
        };
        out.page(&format!("phases/{}/index.html", slug(&p.phase_id)), &page)?;
    }
    if d.configured {
        let body = crate::dod::Report {
            schema_version: crate::dod::SCHEMA.to_string(),
            ts: report.generated_at.clone(),
            git_head: d.git_head.clone(),
            generator: report.generator.clone(),
            operational_proof_required: d.operational_proof_required,
            phases: d.phases.clone(),
        };
        out.json("dod_report.latest.json", &body, true)?;
    }

    let r = report.drift.report.as_ref();
    let age = |a: Option<i64>| a.map_or("never".to_string(), human_age);
    let mut room = super::room::LISTS_ROOM;
    let (evidence, evidence_more) = fill(r.map_or(&[][..], |r| &r.evidence[..]), &mut room, |e| {
        html_len(e)
    });
    let page = DriftPage {
        shell: shell("../", "drift"),
        configured: report.drift.configured,
        findings: report
            .drift
            .findings
            .iter()
            .map(|f| FindingRow::from(f, None))
            .collect(),
        report: r,
        idle_last: r
            .and_then(|r| r.checks.idle.last_activity_ts.clone())
            .unwrap_or_else(|| "never".into()),
        idle_age: age(r.and_then(|r| r.checks.idle.age_sec)),
        drift_last: r
            .and_then(|r| r.checks.drift.last_heartbeat_ts.clone())
            .unwrap_or_else(|| "never".into()),
        drift_age: age(r.and_then(|r| r.checks.drift.age_sec)),
        idle_meter: r.and_then(|r| meter(r.checks.idle.age_sec, r.checks.idle.threshold_sec)),
        drift_meter: r.and_then(|r| meter(r.checks.drift.age_sec, r.checks.drift.threshold_sec)),
        idle_threshold: r.map_or(String::new(), |r| human_age(r.checks.idle.threshold_sec)),
        drift_threshold: r.map_or(String::new(), |r| human_age(r.checks.drift.threshold_sec)),
        evidence,
        evidence_more,
    };
    out.page("drift/index.html", &page)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ages_read_in_the_largest_units_that_fit() {
        let cases = [
            (0, "0 s"),
            (59, "59 s"),
            (60, "1 min"),
            (725, "12 min 5 s"),
            (12_000, "3 h 20 min"),
            (187_200, "2 d 4 h"),
            (-5, "-5 s (in the future: check the clocks)"),
        ];
        for (secs, want) in cases {
            assert_eq!(super::human_age(secs), want, "{secs}");
        }
    }
}
