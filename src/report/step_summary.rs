//! `lith build --summary PATH`: the build as Markdown for a CI job's page (GitHub's
//! `$GITHUB_STEP_SUMMARY` and the like).
//!
//! The verdict first, then one table of the sections, then what fell short: runs that
//! did not verify, phases that are not PROVEN, and every finding. It stays under a
//! byte cap (CI systems refuse larger summaries): rows that do not fit are counted
//! and the summary says how many were left out and where to find them.

use super::Report;
use crate::bundle::verify::Verification;
use crate::finding::{Finding, Severity};

/// GitHub refuses step summaries over 1 MiB; stay well below it.
pub const MAX_BYTES: usize = 1000 * 1024;

/// A value from the inputs as Markdown text (a table cell, a list item): one line
/// ([`crate::term::one_line`]: line breaks, control and invisible characters
/// written as escapes), no cell separators, no HTML, no link, image or code span:
/// the characters that make them are escaped and show as themselves. (Emphasis is
/// left alone: it changes no meaning, and escaping every `_` would make the
/// summary's source hard to read.)
fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in crate::term::one_line(s).chars() {
        match c {
            '\\' | '|' | '[' | ']' | '`' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c => out.push(c),
        }
    }
    out
}

/// A value from the inputs within a code span (`` `…` ``), where Markdown reads
/// nothing but the span's end and, in a table, the cell separator: one line, no
/// backtick, the separator escaped.
fn code(s: &str) -> String {
    crate::term::one_line(s)
        .replace('`', "'")
        .replace('|', "\\|")
}

/// Collects rows under a byte budget and remembers how many did not fit.
struct Rows {
    budget: usize,
    text: String,
    left_out: usize,
}

impl Rows {
    fn push(&mut self, row: String) {
        if self.left_out == 0 && self.text.len() + row.len() <= self.budget {
            self.text.push_str(&row);
        } else {
            self.left_out += 1;
        }
    }
}

fn findings_of(report: &Report) -> Vec<(String, &Finding)> {
    let mut all: Vec<(String, &Finding)> = Vec::new();
    let sections = [
        ("build", &report.findings),
        ("queue", &report.queue.findings),
        ("receipts", &report.receipts.findings),
        ("gates", &report.gates.findings),
        ("phases", &report.dod.findings),
        ("drift", &report.drift.findings),
    ];
    for (section, list) in sections {
        all.extend(list.iter().map(|f| (section.to_string(), f)));
    }
    for root in &report.bundles.roots {
        all.extend(root.findings.iter().map(|f| (root.path.clone(), f)));
        for run in &root.runs {
            all.extend(run.findings.iter().map(|f| (run.dir.clone(), f)));
        }
    }
    // Worst first; ties keep their order.
    all.sort_by_key(|(_, f)| std::cmp::Reverse(f.severity));
    all.retain(|(_, f)| f.severity >= Severity::Warning);
    all
}

/// The summary as Markdown, at most `cap` bytes.
/// The changes since `--previous`: the counts, then one row per entry (newly failing
/// first) within `budget` bytes.
fn changes_markdown(report: &Report, c: &super::changes::Changes, budget: usize) -> String {
    let mut s = format!(
        "### Changes since the build of {}\n\n{}\n\n",
        cell(&c.previous.generated_at),
        c.counts.sentence(" · ", " · ")
    );
    let mut rows = Rows {
        budget,
        text: String::new(),
        left_out: 0,
    };
    let link = |base: Option<&str>, page: Option<&str>, label: &str| match (base, page) {
        (Some(b), Some(p)) => format!("[{label}]({}{})", cell(b), cell(p)),
        _ => String::new(),
    };
    let base = report.site.base_url.as_deref();
    let prev_base = c.previous.base_url.as_deref();
    for r in c
        .runs
        .iter()
        .filter(|r| r.kind != super::changes::ChangeKind::StillFailing)
    {
        let mut what = r.transition();
        if let Some(f) = r.promotable {
            what.push_str(&format!("; promotable {} → {}", f.before, f.after));
        }
        if r.digests_changed() > 0 {
            what.push_str(&format!("; {} digest(s) changed", r.digests_changed()));
        }
        let links = [
            link(base, r.page.as_deref(), "now"),
            link(prev_base, r.previous_page.as_deref(), "before"),
        ]
        .into_iter()
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
        rows.push(format!(
            "| {} | run `{}` in `{}` | {what} | {links} |\n",
            r.kind.as_str(),
            code(&r.run_id),
            code(&r.root)
        ));
    }
    for (what, list) in [("phase", &c.phases), ("gate", &c.gates)] {
        for i in list
            .iter()
            .filter(|i| i.kind != super::changes::ChangeKind::StillFailing)
        {
            rows.push(format!(
                "| {} | {what} `{}` | {} | |\n",
                i.kind.as_str(),
                code(&i.id),
                cell(&i.transition())
            ));
        }
    }
    if !rows.text.is_empty() {
        s.push_str("| Change | Item | Transition | Pages |\n|---|---|---|---|\n");
        s.push_str(&rows.text);
    }
    if rows.left_out > 0 {
        s.push_str(&format!(
            "\n{} more not shown (see report.json → changes).\n",
            rows.left_out
        ));
    }
    s.push('\n');
    s
}

pub fn markdown(report: &Report, cap: usize) -> String {
    let mut head = format!(
        "## lith build: {} (exit {})\n\n",
        report.verdict.label, report.verdict.exit_code
    );
    if report.checked_nothing() {
        head.push_str("> **Nothing was checked**: no run, phase, gate, queue event or receipt was found to verify.\n\n");
    }
    let t = &report.bundles.totals;
    head.push_str("| Section | Result |\n|---|---|\n");
    if report.bundles.configured {
        head.push_str(&format!(
            "| Bundles | {} run(s): {} verified, {} failed, {} in progress, {} uncommitted, {} unreadable; {}/{} artifacts ok |\n",
            t.runs, t.verified, t.failed, t.in_progress, t.uncommitted, t.error, t.artifacts_ok, t.artifacts
        ));
    }
    if let Some(r) = &report.queue.replay {
        head.push_str(&format!(
            "| Queue | {} pending, {} event(s), {} finding(s) |\n",
            r.pending_count(),
            r.counters.events,
            report.queue.findings.len()
        ));
    }
    if let Some(c) = &report.receipts.check {
        head.push_str(&format!(
            "| Receipts | {} receipt(s), {} line(s) with findings |\n",
            c.receipts, c.lines_with_findings
        ));
    }
    if let Some(g) = &report.gates.push_truth {
        head.push_str(&format!(
            "| Gate push-truth | {} |\n",
            if g.blocked {
                format!("blocked: {}", cell(&crate::gate::join_reasons(&g.reasons)))
            } else {
                "clear".to_string()
            }
        ));
    }
    if report.dod.configured {
        let (proven, partial, designed) = report.dod.counts();
        head.push_str(&format!(
            "| Phases | {proven} PROVEN, {partial} PARTIAL, {designed} DESIGNED |\n"
        ));
    }
    if report.drift.configured {
        head.push_str(&format!(
            "| Drift | {} |\n",
            if report.drift.findings.is_empty() {
                "fresh".to_string()
            } else {
                let codes: Vec<&str> = report
                    .drift
                    .findings
                    .iter()
                    .map(|f| f.code.as_str())
                    .collect();
                cell(&codes.join(", "))
            }
        ));
    }
    head.push('\n');
    if let Some(c) = &report.changes {
        head.push_str(&changes_markdown(report, c, cap / 8));
    }

    // What fell short, each list under its share of what is left of the cap.
    let footer_room = 1024;
    let room = cap.saturating_sub(head.len() + footer_room);
    let mut runs = Rows {
        budget: room / 3,
        text: String::new(),
        left_out: 0,
    };
    let mut failing_runs = 0;
    for root in &report.bundles.roots {
        for run in root
            .runs
            .iter()
            .filter(|r| r.verification != Verification::Verified)
        {
            failing_runs += 1;
            let id = match &run.url {
                Some(url) => format!("[`{}`]({})", code(&run.run_id), cell(url)),
                None => format!("`{}`", code(&run.run_id)),
            };
            runs.push(format!(
                "| {id} | `{}` | {} | {} |\n",
                code(&root.path),
                run.verification.as_str(),
                cell(super::text::first_problem(run))
            ));
        }
    }
    let mut phases = Rows {
        budget: room / 3,
        text: String::new(),
        left_out: 0,
    };
    let mut short_phases = 0;
    for (id, p) in &report.dod.phases {
        if p.verdict == crate::dod::Verdict::Proven {
            continue;
        }
        short_phases += 1;
        phases.push(format!(
            "| `{}` | {} | {} |\n",
            code(id),
            p.verdict.as_str(),
            cell(&p.missing.join(", "))
        ));
    }
    let all = findings_of(report);
    let mut findings = Rows {
        budget: room - runs.text.len() - phases.text.len(),
        text: String::new(),
        left_out: 0,
    };
    for (place, f) in &all {
        findings.push(format!(
            "- **{}** `{}` {}: {}\n",
            f.severity.as_str(),
            code(f.code.as_str()),
            cell(&f.place().unwrap_or_else(|| place.to_string())),
            cell(&f.message)
        ));
    }

    let mut s = head;
    let more = |n: usize| {
        if n > 0 {
            format!("\n{n} more not shown; see report.json.\n")
        } else {
            String::new()
        }
    };
    if failing_runs > 0 {
        s.push_str(&format!(
            "### Runs that did not verify ({failing_runs})\n\n| Run | Root | Verification | First problem |\n|---|---|---|---|\n{}{}\n",
            runs.text,
            more(runs.left_out)
        ));
    }
    if short_phases > 0 {
        s.push_str(&format!(
            "### Phases not PROVEN ({short_phases})\n\n| Phase | Verdict | Missing |\n|---|---|---|\n{}{}\n",
            phases.text,
            more(phases.left_out)
        ));
    }
    if !all.is_empty() {
        s.push_str(&format!(
            "### Findings ({})\n\n{}{}\n",
            all.len(),
            findings.text,
            more(findings.left_out)
        ));
    }
    s
}
