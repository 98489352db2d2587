//! `lith dod`: Definition-of-Done verdicts per phase, and `dod_report.latest.json`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use crate::activity;
use crate::cli::{DodArgs, GlobalArgs};
use crate::clock::Clock;
use crate::dod::{self, PhaseResult, registry::Registry};
use crate::lith::Manifest;

pub const DEFAULT_DOCS: &str = "docs/dod";
pub const DEFAULT_REGISTRY: &str = "core/governance/phase_status.yaml";
pub const DEFAULT_REPORTS: &str = "reports/dod";

/// The DoD documents' folder, workspace-relative as the manifest spells it.
pub fn docs_rel(m: &Manifest) -> &str {
    m.dod
        .as_ref()
        .and_then(|d| d.docs.as_deref())
        .unwrap_or(DEFAULT_DOCS)
}

#[derive(Debug, Serialize)]
pub struct DodReport {
    pub schema_version: &'static str,
    pub ts: String,
    pub git_head: Option<String>,
    pub generator: String,
    pub operational_proof_required: bool,
    pub phases: BTreeMap<String, PhaseResult>,
}

/// The phases that have a `DOD__<PHASE>.md` document, sorted.
pub fn documented_phases(docs: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(docs)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.strip_prefix("DOD__")
                        .and_then(|s| s.strip_suffix(".md"))
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// True when operational proof is required by the environment or a flag.
pub fn operational_required(flag: bool) -> bool {
    flag || std::env::var("LUKA_REQUIRE_OPERATIONAL_PROOF").is_ok_and(|v| v == "1")
}

/// Evaluates DoD for `phases` (all documented phases when empty).
pub fn evaluate(
    m: &Manifest,
    phases: &[String],
    require: bool,
    clock: &Clock,
) -> anyhow::Result<(DodReport, Option<Registry>)> {
    let cfg = m.dod.clone().unwrap_or_default();
    let docs = m.resolve(docs_rel(m));
    let reg_rel = cfg
        .phase_status
        .clone()
        .unwrap_or_else(|| DEFAULT_REGISTRY.into());
    let registry =
        Registry::load(&m.resolve(&reg_rel)).map_err(|e| anyhow::anyhow!("{reg_rel}: {e}"))?;
    let empty = Registry::default();
    let paths = activity::drift::Paths::of(m);
    let feed_path = m.resolve(&paths.feed);
    let feed = if require {
        activity::read_feed(&feed_path, &paths.feed, true)?
    } else {
        // Lenient: a missing feed is no activity at all.
        activity::read_feed(&feed_path, &paths.feed, false).unwrap_or_default()
    };
    let targets: Option<Vec<String>> = m
        .activity
        .as_ref()
        .and_then(|a| a.operational_targets.clone());
    let inputs = dod::Inputs {
        workspace: &m.workspace,
        registry: registry.as_ref().unwrap_or(&empty),
        feed: &feed,
        require_operational: require.then_some(targets.as_deref()),
    };
    let list = if phases.is_empty() {
        documented_phases(&docs)
    } else {
        phases.to_vec()
    };
    let mut out = BTreeMap::new();
    for p in list {
        let doc = crate::fsutil::read_regular(
            &docs.join(format!("DOD__{p}.md")),
            crate::fsutil::MAX_JSON_BYTES,
        )
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned());
        out.insert(p.clone(), dod::evaluate(&p, doc.as_deref(), &inputs));
    }
    Ok((
        DodReport {
            schema_version: dod::SCHEMA,
            ts: clock.now_rfc3339(),
            git_head: dod::git_head(&m.workspace),
            generator: format!("lith {}", env!("CARGO_PKG_VERSION")),
            operational_proof_required: require,
            phases: out,
        },
        registry,
    ))
}

pub fn execute(g: &GlobalArgs, a: &DodArgs) -> anyhow::Result<i32> {
    let clock = Clock::from_env().map_err(anyhow::Error::msg)?;
    let m = Manifest::load(&g.manifest).map_err(|e| anyhow::anyhow!("{e}"))?;
    let require = operational_required(a.require_operational_proof);
    let phases = if a.all { Vec::new() } else { a.phase.clone() };
    let (report, registry) = evaluate(&m, &phases, require, &clock)?;
    if report.phases.is_empty() {
        // Never green on nothing.
        let docs = docs_rel(&m);
        eprintln!(
            "error: dod.input_missing: no DOD__<PHASE>.md document in {docs}; nothing was checked \
             (set (dod (docs \"…\")) in the manifest, or pass --phase ID)"
        );
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
    } else if !g.quiet || code != crate::exit::OK {
        let mut s = String::new();
        for p in shown {
            s.push_str(&format!(
                "{:<22} {:<9} proof {:<11}{}\n",
                p.phase_id,
                p.verdict.as_str(),
                p.checks.activity_chain.proof_mode,
                if p.missing.is_empty() {
                    String::new()
                } else {
                    format!(" missing: {}", p.missing.join(", "))
                }
            ));
        }
        s.push_str(&format!("wrote {reports_rel}/dod_report.latest.json\n"));
        crate::cmd::print_stdout(&s)?;
    }
    Ok(code)
}
