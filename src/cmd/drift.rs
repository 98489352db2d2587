//! `lith drift`: the idle / heartbeat drift monitor.

use anyhow::Context;

use crate::activity::drift::{self, Paths};
use crate::cli::GlobalArgs;
use crate::clock::Clock;
use crate::lith::Manifest;

pub fn execute(g: &GlobalArgs) -> anyhow::Result<i32> {
    let clock = Clock::from_env().map_err(anyhow::Error::msg)?;
    let m = Manifest::load(&g.manifest).map_err(|e| anyhow::anyhow!("{e}"))?;
    let report = match drift::run(&m, &clock) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
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
            if report.evidence.is_empty() {
                String::new()
            } else {
                format!("evidence: {}\n", report.evidence.join(", "))
            },
            p.reports
        ))?;
    }
    Ok(code)
}
