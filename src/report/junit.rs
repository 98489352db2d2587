//! `--junit PATH`: the report as JUnit XML for a CI's test tab.
//!
//! One testsuite per configured section, one testcase per thing a reviewer would
//! name: a run, a bundle root, a phase, a gate, the queue replay, the receipts
//! check, the drift monitor's two clocks, and the workspace itself. A check that fell
//! short is a `<failure>` whose message names its worst finding; an input lith could
//! not read is an `<error>`; only warnings and information pass. Deterministic: no
//! timestamp, no host name, and a time only when the report has a duration.

use std::borrow::Cow;
use std::collections::BTreeMap;

use quick_junit::{NonSuccessKind, Report as Junit, TestCase, TestCaseStatus, TestSuite};

use super::Report;
use crate::bundle::verify::Verification;
use crate::finding::{Code, Finding, Severity};

/// The JUnit XML could not be produced (quick-junit refused the document).
#[derive(Debug, thiserror::Error)]
#[error("cannot write the report as JUnit XML")]
pub struct Error(#[from] quick_junit::SerializeError);

/// The JUnit XML of a settled report.
pub fn xml(report: &Report) -> Result<String, Error> {
    let mut junit = Junit::new(report.site.title.as_str());
    if let Some(ms) = report.duration_ms {
        junit.set_time(std::time::Duration::from_millis(ms));
    }
    // What changed for each run and phase since `--previous`, as its testcase's
    // output (CI test tabs show it beside the result).
    let run_changes: BTreeMap<(&str, &str), String> = report
        .changes
        .iter()
        .flat_map(|c| &c.runs)
        .filter(|r| r.after.is_some())
        .map(|r| {
            let mut text = format!(
                "{} since the previous build: {}",
                r.kind.as_str(),
                r.transition()
            );
            if r.digests_changed() > 0 {
                text.push_str(&format!(
                    "; {} artifact digest(s) changed",
                    r.digests_changed()
                ));
            }
            ((r.root.as_str(), r.run_id.as_str()), text)
        })
        .collect();
    let phase_changes: BTreeMap<&str, String> = report
        .changes
        .iter()
        .flat_map(|c| &c.phases)
        .map(|i| {
            (
                i.id.as_str(),
                format!(
                    "{} since the previous build: {}",
                    i.kind.as_str(),
                    i.transition()
                ),
            )
        })
        .collect();
    if report.bundles.configured {
        let mut suite = TestSuite::new("bundles");
        for root in &report.bundles.roots {
            if !root.findings.is_empty() {
                suite.add_test_case(case(
                    &format!("root {}", name(&root.path)),
                    &name(&root.path),
                    root.findings.iter(),
                ));
            }
            for run in &root.runs {
                let mut c = case(&name(&run.run_id), &name(&root.path), run.findings.iter());
                if run.verification != Verification::Verified && is_success(&c) {
                    // A run that is not verified never passes, even without a finding
                    // of its own (an uncommitted run's reason is its state).
                    c = with_status(
                        c,
                        NonSuccessKind::Failure,
                        run.verification.as_str(),
                        &format!("the run is {}", run.verification.as_str()),
                    );
                }
                if let Some(change) = run_changes.get(&(root.path.as_str(), run.run_id.as_str())) {
                    c.set_system_out(change.as_str());
                }
                suite.add_test_case(c);
            }
        }
        if let Some(ch) = &report.changes {
            let n = &ch.counts;
            for (name, v) in [
                ("lith.changes.since", ch.previous.generated_at.clone()),
                ("lith.changes.newly_failing", n.newly_failing.to_string()),
                ("lith.changes.fixed", n.fixed.to_string()),
                ("lith.changes.still_failing", n.still_failing.to_string()),
                ("lith.changes.new", n.new.to_string()),
                ("lith.changes.vanished", n.vanished.to_string()),
                (
                    "lith.changes.digests_changed",
                    n.digests_changed.to_string(),
                ),
            ] {
                suite.add_property((name, v.as_str()));
            }
        }
        junit.add_test_suite(suite);
    }
    if report.queue.configured {
        let mut suite = TestSuite::new("queue");
        suite.add_test_case(case("replay", "queue", report.queue.findings.iter()));
        junit.add_test_suite(suite);
    }
    if report.receipts.configured {
        let mut suite = TestSuite::new("receipts");
        suite.add_test_case(case("check", "receipts", report.receipts.findings.iter()));
        junit.add_test_suite(suite);
    }
    if report.gates.configured {
        let mut suite = TestSuite::new("gates");
        let name = report
            .gates
            .push_truth
            .as_ref()
            .map_or(crate::gate::GATE_ID, |g| g.id.as_str());
        suite.add_test_case(case(name, "gates", report.gates.findings.iter()));
        junit.add_test_suite(suite);
    }
    if report.dod.configured {
        let mut suite = TestSuite::new("dod");
        let section_level: Vec<&Finding> = report
            .dod
            .findings
            .iter()
            .filter(|f| !matches!(f.code, Code::DodPhaseNotProven | Code::DodFixtureNotProven))
            .collect();
        if !section_level.is_empty() {
            suite.add_test_case(case("documents", "dod", section_level.into_iter()));
        }
        for (id, p) in &report.dod.phases {
            use crate::dod::Verdict;
            let status = match p.verdict {
                Verdict::Proven => TestCaseStatus::success(),
                _ if p.fixture => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(format!(
                        "a fixture phase, left out of the exit code: {}",
                        p.verdict.as_str()
                    ));
                    s
                }
                v => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_type(v.as_str());
                    s.set_message(format!(
                        "{} is {}: {}",
                        name(id),
                        v.as_str(),
                        p.missing.join(", ")
                    ));
                    s
                }
            };
            let mut c = TestCase::new(name(id).as_ref(), status);
            c.set_classname("dod");
            if let Some(change) = phase_changes.get(id.as_str()) {
                c.set_system_out(change.as_str());
            }
            suite.add_test_case(c);
        }
        junit.add_test_suite(suite);
    }
    if report.drift.configured {
        let mut suite = TestSuite::new("drift");
        let unreadable: Vec<&Finding> = report
            .drift
            .findings
            .iter()
            .filter(|f| f.code == Code::DriftFeedUnreadable)
            .collect();
        for (name, code) in [
            ("heartbeat", Code::DriftHeartbeatStale),
            ("idle", Code::DriftIdleSystemStale),
        ] {
            let mine = report.drift.findings.iter().filter(|f| f.code == code);
            suite.add_test_case(case(name, "drift", mine.chain(unreadable.iter().copied())));
        }
        junit.add_test_suite(suite);
    }
    let mut suite = TestSuite::new("workspace");
    suite.add_test_case(case("workspace", "workspace", report.findings.iter()));
    junit.add_test_suite(suite);
    let mut xml = without_root_skipped(junit.to_string()?);
    if !xml.ends_with('\n') {
        xml.push('\n');
    }
    Ok(xml)
}

/// A name or classname as a CI test tab can show it and tell apart from every other:
/// ids come from folder names and documents, where a line break, a control character
/// or a bidirectional control is allowed, and XML attributes drop or fold the first
/// two (`two\nlines` would be listed as `twolines`, beside a run of that name). Such
/// characters are written as Rust writes them in a string (`\n`, `\u{1}`,
/// `\u{202e}`), and a backslash as `\\`, so that two ids never share a name. A name
/// without any of them, the common case, is kept as it is.
fn name(id: &str) -> Cow<'_, str> {
    let escaped = |c: char| c == '\\' || c.is_control() || is_bidi_control(c) || is_nonchar(c);
    if !id.chars().any(escaped) {
        return Cow::Borrowed(id);
    }
    let mut out = String::with_capacity(id.len() + 8);
    for c in id.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if escaped(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The explicit bidirectional formatting characters (Unicode's Bidi_Control), which
/// reorder what a reader sees around them.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The two characters of the Basic Multilingual Plane that XML 1.0 does not allow.
fn is_nonchar(c: char) -> bool {
    matches!(c, '\u{fffe}' | '\u{ffff}')
}

/// A testcase judged by its findings: an `error` for an unreadable input, a
/// `failure` for a check that fell short, else a pass. The message names the worst
/// finding; every finding of partial severity or worse is listed in the body.
fn case<'a>(name: &str, classname: &str, findings: impl Iterator<Item = &'a Finding>) -> TestCase {
    let mut bad: Vec<&Finding> = findings
        .filter(|f| f.severity >= Severity::Partial)
        .collect();
    bad.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let mut c = TestCase::new(name, TestCaseStatus::success());
    c.set_classname(classname);
    let Some(worst) = bad.first() else {
        return c;
    };
    let kind = if worst.severity == Severity::Error {
        NonSuccessKind::Error
    } else {
        NonSuccessKind::Failure
    };
    let message = match worst.place() {
        Some(p) => format!("{}: {}: {}", worst.code, p, worst.message),
        None => format!("{}: {}", worst.code, worst.message),
    };
    let mut c = with_status(c, kind, worst.code.as_str(), &message);
    if bad.len() > 1
        && let TestCaseStatus::NonSuccess { description, .. } = &mut c.status
    {
        let lines: Vec<String> = bad
            .iter()
            .map(|f| match f.place() {
                Some(p) => format!("{} {}: {}: {}", f.severity.as_str(), f.code, p, f.message),
                None => format!("{} {}: {}", f.severity.as_str(), f.code, f.message),
            })
            .collect();
        *description = Some(lines.join("\n").into());
    }
    c
}

/// The common JUnit schema (Jenkins' junit-10.xsd, which CI test tabs follow) allows
/// `skipped` on `<testsuite>` but not on the root `<testsuites>`, where quick-junit
/// writes it; the per-suite counts carry it.
fn without_root_skipped(xml: String) -> String {
    let Some(start) = xml.find("<testsuites ") else {
        return xml;
    };
    let end = start + xml[start..].find('>').unwrap_or(0);
    let tag = &xml[start..end];
    let Some(at) = tag.find(" skipped=\"") else {
        return xml;
    };
    let close = tag[at + 10..]
        .find('"')
        .map_or(tag.len(), |i| at + 10 + i + 1);
    format!(
        "{}{}{}",
        &xml[..start + at],
        &xml[start + close..end],
        &xml[end..]
    )
}

fn with_status(mut c: TestCase, kind: NonSuccessKind, ty: &str, message: &str) -> TestCase {
    let mut s = TestCaseStatus::non_success(kind);
    s.set_type(ty);
    s.set_message(message);
    c.status = s;
    c
}

fn is_success(c: &TestCase) -> bool {
    matches!(c.status, TestCaseStatus::Success { .. })
}
