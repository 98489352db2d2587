//! `lith dod`: Definition-of-Done verdicts per phase, and `dod_report.latest.json`.

use std::collections::BTreeMap;

use anyhow::Context;

use crate::cli::{DodArgs, GlobalArgs};
use crate::clock::Clock;
use crate::dod::{
    self, DEFAULT_REGISTRY, DEFAULT_REPORTS, PhaseResult, docs_rel, operational_required,
};
use crate::lith::Manifest;

pub fn execute(g: &GlobalArgs, a: &DodArgs) -> anyhow::Result<i32> {
    let clock = Clock::from_env().map_err(anyhow::Error::msg)?;
    let m = Manifest::load(&g.manifest)?;
    let require = operational_required(a.require_operational_proof);
    let phases = if a.all { Vec::new() } else { a.phase.clone() };
    let dod::Evaluation {
        report, registry, ..
    } = dod::check_workspace(&m, &phases, require, &clock)?;
    if report.phases.is_empty() {
        // Never green on nothing.
        let docs = docs_rel(&m);
        crate::term::eprint(&format!(
            "error: dod.input_missing: no DOD__<PHASE>.md document in {docs}; nothing was checked \
             (set (dod (docs \"…\")) in the manifest, or pass --phase ID)"
        ));
        if g.json {
            crate::cmd::print_json(&serde_json::json!({"error": "dod.input_missing"}))?;
        }
        return Ok(crate::exit::PARTIAL);
    }
    let cfg = m.dod.clone().unwrap_or_default();
    let reports_rel = cfg
        .reports
        .clone()
        .unwrap_or_else(|| DEFAULT_REPORTS.into());
    let reports = m.resolve(&reports_rel);
    std::fs::create_dir_all(&reports).with_context(|| format!("creating {reports_rel}"))?;
    let mut bytes = serde_json::to_vec_pretty(&report)?;
    bytes.push(b'\n');
    let stamp = report.ts.replace(['-', ':'], "");
    crate::fsutil::write_atomic(&reports.join("dod_report.latest.json"), &bytes)
        .with_context(|| format!("writing {reports_rel}/dod_report.latest.json"))?;
    crate::fsutil::write_atomic(&reports.join(format!("{stamp}_dod.json")), &bytes)
        .with_context(|| format!("writing {reports_rel}/{stamp}_dod.json"))?;
    if a.update_status {
        let reg_rel = cfg
            .phase_status
            .clone()
            .unwrap_or_else(|| DEFAULT_REGISTRY.into());
        let mut reg = registry.unwrap_or_default();
        let evidence = format!("{}/{stamp}_dod.json", reports_rel.trim_end_matches('/'));
        for (id, p) in &report.phases {
            let proven = p.verdict == dod::Verdict::Proven;
            reg.set(
                id,
                p.verdict.as_str(),
                &report.ts,
                proven.then_some(evidence.as_str()),
            );
        }
        let text = reg.render().map_err(anyhow::Error::msg)?;
        crate::fsutil::write_atomic(&m.resolve(&reg_rel), text.as_bytes())
            .with_context(|| format!("rewriting {reg_rel}"))?;
    }
    // Fixture phases count only when asked for by name, as the reference does.
    let code = dod::exit_code(report.phases.values(), phases.is_empty());
    let shown: Vec<&PhaseResult> = report
        .phases
        .values()
        .filter(|p| !a.missing_only || !p.missing.is_empty())
        .collect();
    if g.json {
        if a.missing_only {
            let m: BTreeMap<&String, &Vec<String>> =
                shown.iter().map(|p| (&p.phase_id, &p.missing)).collect();
            crate::cmd::print_json(&m)?;
        } else {
            crate::cmd::print_json(&report)?;
        }
    } else if !g.quiet {
        let mut s = String::new();
        for p in shown {
            s.push_str(&format!(
                "{:<22} {:<9} proof {:<11}{}\n",
                crate::term::one_line(&p.phase_id),
                p.verdict.as_str(),
                p.checks.activity_chain.proof_mode,
                if p.missing.is_empty() {
                    String::new()
                } else {
                    format!(" missing: {}", crate::term::one_line(&p.missing.join(", ")))
                }
            ));
        }
        s.push_str(&format!("wrote {reports_rel}/dod_report.latest.json\n"));
        crate::cmd::print_stdout(&s)?;
    }
    Ok(code)
}
