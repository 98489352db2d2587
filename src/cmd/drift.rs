//! `lith drift`: the idle / heartbeat drift monitor.

use anyhow::Context;

use crate::activity::drift::{self, Paths};
use crate::cli::GlobalArgs;
use crate::clock::Clock;
use crate::lith::Manifest;

pub fn execute(g: &GlobalArgs) -> anyhow::Result<i32> {
    let clock = Clock::from_env().map_err(anyhow::Error::msg)?;
    let m = Manifest::load(&g.manifest)?;
    let report = match drift::run(&m, &clock) {
        Ok(r) => r,
        Err(e) => {
            crate::cmd::print_error_alone(&e);
            return Ok(crate::exit::RUNTIME_ERROR);
        }
    };
    let p = Paths::of(&m);
    let dir = m.resolve(&p.reports);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", p.reports))?;
    let mut bytes = serde_json::to_vec_pretty(&report)?;
    bytes.push(b'\n');
    crate::fsutil::write_atomic(&dir.join("idle_drift.latest.json"), &bytes)
        .with_context(|| format!("writing {}/idle_drift.latest.json", p.reports))?;
    let code = report.exit_code();
    if g.json {
        crate::cmd::print_json(&report)?;
    } else if !g.quiet {
        let c = &report.checks;
        let age = |a: Option<i64>| a.map_or("never".to_string(), |s| format!("{s} s ago"));
        crate::cmd::print_stdout(&format!(
            "idle:      {} (last activity {}, threshold {} s)\nheartbeat: {} (last heartbeat {}, threshold {} s)\n{}wrote {}/idle_drift.latest.json\n",
            if c.idle.ok { "ok" } else { "STALE" },
            age(c.idle.age_sec),
            c.idle.threshold_sec,
            if c.drift.ok { "ok" } else { "STALE" },
            age(c.drift.age_sec),
            c.drift.threshold_sec,
            evidence_line(&report.evidence, report.evidence_cut),
            p.reports
        ))?;
    }
    Ok(code)
}

/// The most evidence paths the text output names; `--json` lists them all.
const EVIDENCE_SHOWN: usize = 20;

/// What the text output says of the event's evidence having been cut.
const CUT: &str = "the event listed more than lith keeps of one event";

/// `evidence: a, b, …` for the text output, or nothing when there is none; `cut`
/// when the event listed more than lith kept of it.
fn evidence_line(evidence: &[String], cut: bool) -> String {
    if evidence.is_empty() {
        return String::new();
    }
    let shown = &evidence[..evidence.len().min(EVIDENCE_SHOWN)];
    let more = evidence.len() - shown.len();
    let rest = match (more, cut) {
        (0, false) => String::new(),
        (0, true) => format!(", … ({CUT})"),
        (_, false) => format!(", … and {more} more (--json lists them all)"),
        (_, true) => format!(", … and {more} more (--json lists them; {CUT})"),
    };
    format!(
        "evidence: {}{rest}\n",
        crate::term::one_line(&shown.join(", "))
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_text_output_names_a_few_evidence_paths_and_counts_the_rest() {
        use super::evidence_line;
        assert_eq!(evidence_line(&[], false), "");
        let two = ["a".to_string(), "b".to_string()];
        assert_eq!(evidence_line(&two, false), "evidence: a, b\n");
        assert_eq!(
            evidence_line(&two, true),
            "evidence: a, b, … (the event listed more than lith keeps of one event)\n"
        );
        let many: Vec<String> = (0..25).map(|i| format!("p{i}")).collect();
        let line = evidence_line(&many, false);
        assert!(line.starts_with("evidence: p0, p1, "), "{line}");
        assert!(
            line.ends_with(", p19, … and 5 more (--json lists them all)\n"),
            "{line}"
        );
        let line = evidence_line(&many, true);
        assert!(
            line.ends_with(
                ", p19, … and 5 more (--json lists them; the event listed more than lith keeps of one event)\n"
            ),
            "{line}"
        );
    }
}
