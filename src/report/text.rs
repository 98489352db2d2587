//! The one-screen text summary printed at the end of `lith build`.

use super::Report;
use crate::bundle::verify::Verification;
use crate::finding::Severity;
use crate::term::one_line;

/// The most problem runs listed before "N more".
const MAX_LISTED: usize = 12;

/// What a run that did not verify says first: its worst finding, the artifact
/// counts before other findings of the same severity.
pub fn first_problem(run: &crate::bundle::verify::RunReport) -> &str {
    run.findings
        .iter()
        .filter(|f| f.severity >= Severity::Partial)
        .min_by_key(|f| {
            (
                std::cmp::Reverse(f.severity),
                f.code != crate::finding::Code::ArtifactsNotOk,
            )
        })
        .map(|f| f.message.as_str())
        .unwrap_or("")
}

pub fn summary(report: &Report, out_label: &str) -> String {
    let t = &report.bundles.totals;
    let mut s = String::new();
    s.push_str(&format!(
        "lith build: {} (exit {})\n",
        report.verdict.label, report.verdict.exit_code
    ));
    if report.checked_nothing() {
        s.push_str(
            "  NOTHING WAS CHECKED: no run, phase, gate, queue event or receipt was found to verify
",
        );
    }
    if let Some(c) = &report.changes {
        for line in super::changes::text(c, 10).lines() {
            s.push_str("  ");
            s.push_str(line);
            s.push('\n');
        }
    }
    if report.bundles.configured {
        s.push_str(&format!(
            "  bundles: {} root(s), {} run(s): {} verified, {} failed, {} in progress, {} uncommitted, {} unreadable\n",
            t.roots, t.runs, t.verified, t.failed, t.in_progress, t.uncommitted, t.error
        ));
        s.push_str(&format!(
            "  artifacts: {}/{} ok, {} unindexed file(s)\n",
            t.artifacts_ok, t.artifacts, t.unindexed
        ));
    } else {
        s.push_str("  bundles: not configured (no (bundles …) section in the manifest)\n");
    }
    if let Some(r) = &report.queue.replay {
        s.push_str(&format!(
            "  queue: {} pending, {} event(s), state_sha256 {}\n",
            r.pending_count(),
            r.counters.events,
            &r.state_sha256[..12]
        ));
    }
    if let Some(g) = &report.gates.push_truth {
        s.push_str(&format!(
            "  push-truth gate: {}\n",
            if g.blocked {
                format!("blocked ({})", crate::gate::join_reasons(&g.reasons))
            } else {
                "clear".into()
            }
        ));
    }
    if report.dod.configured {
        let (proven, partial, designed) = report.dod.counts();
        s.push_str(&format!(
            "  phases: {proven} PROVEN, {partial} PARTIAL, {designed} DESIGNED\n"
        ));
    }
    if let Some(c) = &report.receipts.check {
        s.push_str(&format!(
            "  receipts: {} receipt(s), {} line(s) with findings\n",
            c.receipts, c.lines_with_findings
        ));
    }
    let mut problems: Vec<String> = Vec::new();
    for f in report
        .findings
        .iter()
        .chain(&report.queue.findings)
        .chain(&report.receipts.findings)
        .chain(&report.gates.findings)
        .chain(&report.dod.findings)
        .chain(&report.drift.findings)
    {
        if f.severity >= Severity::Warning {
            problems.push(match f.place() {
                Some(p) => format!("{}: {}: {}", one_line(&p), f.code, one_line(&f.message)),
                _ => format!("{}: {}", f.code, one_line(&f.message)),
            });
        }
    }
    for root in &report.bundles.roots {
        for f in root
            .findings
            .iter()
            .filter(|f| f.severity >= Severity::Partial)
        {
            problems.push(format!(
                "{}: {}: {}",
                one_line(&root.path),
                f.code,
                one_line(&f.message)
            ));
        }
        for run in &root.runs {
            if run.verification == Verification::Verified {
                continue;
            }
            problems.push(format!(
                "{}: {}: {}",
                one_line(&run.dir),
                run.verification.as_str(),
                one_line(first_problem(run))
            ));
        }
    }
    for p in problems.iter().take(MAX_LISTED) {
        s.push_str(&format!("  - {p}\n"));
    }
    if problems.len() > MAX_LISTED {
        s.push_str(&format!(
            "  … {} more not shown (see report.json)\n",
            problems.len() - MAX_LISTED
        ));
    }
    s.push_str(&format!(
        "  wrote {out_label}/index.html and {out_label}/report.json\n"
    ));
    s
}
