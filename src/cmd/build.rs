//! `lith build`: manifest → discover → verify → one report → JSON and site.
//!
//! A bad input never stops the build: it becomes a finding. Everything is written
//! into a temporary folder beside `--out` and swapped in at the end, so a reader never
//! sees half a site and a failed build leaves the previous one in place. The exit
//! code is that of the worst finding, decided after everything is written.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;

use crate::bundle::layout::{self, RootScan};
use crate::bundle::verify::{Mode, VerifyOptions};
use crate::cli::{BuildCmdArgs, GlobalArgs};
use crate::clock::Clock;
use crate::finding::{Code, Finding, Severity};
use crate::lith::Manifest;
use crate::report::{self, BundlesSection, ManifestInfo, Report, SiteInfo, Totals, Verdict};

pub fn execute(g: &GlobalArgs, cmd: &BuildCmdArgs) -> anyhow::Result<i32> {
    let a = &cmd.build;
    let started = Instant::now();
    let clock = Clock::from_env().map_err(anyhow::Error::msg)?;
    let manifest = Manifest::load(&g.manifest).map_err(|e| {
        anyhow::anyhow!(
            "{e}\n  (the manifest is configuration lith cannot do without; fix it and run again)"
        )
    })?;
    for w in &manifest.warnings {
        crate::cmd::warn(
            g.quiet,
            &format!(
                "{}:{}:{}: {}",
                g.manifest.display(),
                w.pos.line,
                w.pos.col,
                w.message
            ),
        );
    }
    let out = a.out.clone().unwrap_or_else(|| default_out(&manifest));
    let mode = if a.fast { Mode::Fast } else { Mode::Full };
    let mut report = evaluate(&manifest, &clock, mode, g.quiet)?;
    if g.verbose > 1 {
        for root in &report.bundles.roots {
            eprintln!(
                "lith: {}: {} run(s), {} skipped entr(ies), LATEST {}",
                root.path,
                root.runs.len(),
                root.skipped.len(),
                root.latest.as_ref().map_or("absent", |l| if l.valid {
                    "valid"
                } else {
                    "invalid"
                })
            );
        }
    }
    if g.verbose > 0 {
        let t = &report.bundles.totals;
        eprintln!(
            "lith: {} root(s), {} run(s), {} artifact(s) evaluated in {} ms",
            t.roots,
            t.runs,
            t.artifacts,
            started.elapsed().as_millis()
        );
    }
    if !clock.is_fixed() {
        report.duration_ms = Some(started.elapsed().as_millis() as u64);
    }
    crate::site::publish(&report, &out)
        .with_context(|| format!("cannot write the site to {}", out.display()))?;
    if g.verbose > 0 {
        eprintln!(
            "lith: site written, {} ms in all",
            started.elapsed().as_millis()
        );
    }
    if let Some(path) = &cmd.summary {
        let text = report::step_summary::markdown(&report, report::step_summary::MAX_BYTES);
        append(path, text.as_bytes())
            .with_context(|| format!("cannot write the summary to {}", path.display()))?;
    }
    if g.json {
        crate::cmd::print_json(&serde_json::json!({
            "verdict": report.verdict,
            "bundles": report.bundles.totals,
            "out": crate::fsutil::slash_path(&out),
        }))?;
    } else if !g.quiet {
        crate::cmd::print_stdout(&report::text::summary(
            &report,
            &crate::fsutil::slash_path(&out),
        ))?;
    }
    Ok(report.verdict.exit_code)
}

/// Appends to a CI's summary file (created when absent; a symlink is refused).
fn append(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = crate::fsutil::beside_untrusted()
        .append(true)
        .create(true)
        .open(path)?;
    f.write_all(bytes)
}

/// Runs every check the manifest configures and returns the settled report.
pub fn evaluate(
    manifest: &Manifest,
    clock: &Clock,
    mode: Mode,
    quiet: bool,
) -> anyhow::Result<Report> {
    let workspace = &manifest.workspace;
    let ws_canon = std::fs::canonicalize(workspace)
        .with_context(|| format!("cannot open the workspace {}", workspace.display()))?;
    let mut findings = Vec::new();

    let mut roots: Vec<String> = Vec::new();
    let patterns = manifest
        .bundles
        .as_ref()
        .map(|b| b.roots.clone())
        .unwrap_or_default();
    for pattern in &patterns {
        let matched = match layout::expand_glob(workspace, pattern) {
            Ok(m) => m,
            Err(e) => {
                findings.push(Finding::new(Code::RootPatternInvalid, Severity::Error, e));
                continue;
            }
        };
        if matched.is_empty() {
            findings.push(Finding::new(
                Code::RootPatternMatchedNothing,
                Severity::Warning,
                format!("bundle root pattern {pattern:?} matched no folder"),
            ));
        }
        for rel in matched {
            match std::fs::canonicalize(workspace.join(&rel)) {
                Ok(c) if c.starts_with(&ws_canon) => roots.push(rel),
                _ => findings.push(
                    Finding::new(
                        Code::RootOutsideWorkspace,
                        Severity::Warning,
                        "this bundle root resolves outside the workspace and is not read",
                    )
                    .at(rel),
                ),
            }
        }
    }
    roots.sort();
    roots.dedup();
    for rel in &roots {
        let dir = workspace.join(rel);
        if ["run_status.json", "artifact_index.json"]
            .iter()
            .any(|f| std::fs::symlink_metadata(dir.join(f)).is_ok())
        {
            findings.push(
                Finding::new(
                    Code::BundlesRootIsRun,
                    Severity::Partial,
                    "this bundle root is itself a run folder, so no run was found below it; \
                     list the folder that holds the runs (its parent) in (bundles (roots …))",
                )
                .at(rel.clone()),
            );
        }
    }

    let listings: Vec<_> = roots
        .iter()
        .map(|r| layout::list_root(&workspace.join(r)))
        .collect();
    let total_runs: usize = listings.iter().flatten().map(|l| l.run_dirs.len()).sum();
    let progress = crate::progress::bar(total_runs as u64, "verifying", quiet);
    let opts = VerifyOptions {
        mode,
        repo_root: None,
        progress: progress.clone(),
        decision_stage: Some(
            manifest
                .bundles
                .as_ref()
                .map(|b| b.decision_stage_artifacts.clone())
                .unwrap_or_default(),
        ),
    };
    let mut scans: Vec<RootScan> = roots
        .iter()
        .zip(listings)
        .map(|(r, listing)| layout::scan_root(workspace, r, listing, &opts))
        .collect();
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    let base_url = manifest.site.base_url.as_deref();
    report::assign_pages(&mut scans, base_url);

    let mut sections = Vec::new();
    for (present, name) in [
        (manifest.proof_schema.is_some(), "proof-schema"),
        (!manifest.hash_sources.is_empty(), "hash-sources"),
        (manifest.bundles.is_some(), "bundles"),
        (manifest.queue.is_some(), "queue"),
        (manifest.receipts.is_some(), "receipts"),
        (manifest.activity.is_some(), "activity"),
        (manifest.dod.is_some(), "dod"),
        (!manifest.gates.is_empty(), "gates"),
        (manifest.promptdb.is_some(), "promptdb"),
    ] {
        if present {
            sections.push(name.to_string());
        }
    }
    let totals = Totals::of(&scans);
    if manifest.bundles.is_some() && totals.runs == 0 {
        findings.push(Finding::new(
            Code::BundlesNoneFound,
            Severity::Partial,
            format!(
                "the bundle roots {patterns:?} hold no run (a folder with run_status.json or \
                 artifact_index.json); nothing was verified — check the globs in (bundles (roots …))"
            ),
        ));
    }
    findings.sort();
    let mut report = Report {
        schema_version: report::SCHEMA_VERSION.to_string(),
        generator: format!("lith {}", env!("CARGO_PKG_VERSION")),
        generated_at: clock.now_rfc3339(),
        duration_ms: None,
        verdict: Verdict {
            label: report::VerdictLabel::Ok,
            exit_code: 0,
            findings: Default::default(),
        },
        manifest: ManifestInfo {
            file: manifest_file_name(&manifest.path),
            v: manifest.v.clone(),
            truth_unit: manifest.truth_unit.clone(),
            warnings: manifest
                .warnings
                .iter()
                .map(|w| format!("{}:{}: {}", w.pos.line, w.pos.col, w.message))
                .collect(),
            sections,
        },
        site: SiteInfo {
            title: manifest
                .site
                .title
                .clone()
                .unwrap_or_else(|| "lith evidence report".to_string()),
            base_url: base_url.map(str::to_string),
        },
        bundles: BundlesSection {
            configured: manifest.bundles.is_some(),
            mode,
            patterns,
            totals,
            roots: scans,
        },
        queue: Default::default(),
        receipts: Default::default(),
        gates: Default::default(),
        dod: Default::default(),
        drift: Default::default(),
        catalog: None,
        findings,
    };
    report.receipts = report::sections::evaluate_receipts(manifest);
    report.queue = report::sections::evaluate_queue(manifest, &report.receipts);
    if let Some(g) = crate::gate::push_truth(manifest) {
        report.gates = report::GatesSection {
            configured: true,
            findings: g.findings(),
            push_truth: Some(g),
        };
    }
    report.dod = evaluate_dod(manifest, clock);
    report.drift = evaluate_drift(manifest, clock);
    let at = report.generated_at.clone();
    let catalog = crate::catalog::build(
        &report,
        manifest,
        crate::catalog::single_refresh(manifest, &at),
    );
    for p in catalog.packets.iter().filter(|p| p.error.is_some()) {
        report.findings.push(
            Finding::new(
                Code::CatalogPacketUnreadable,
                Severity::Warning,
                p.error
                    .clone()
                    .unwrap_or_default()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            )
            .at(p.path.clone()),
        );
    }
    if catalog.refresh.last_decision == crate::catalog::RefreshDecision::RootMissing {
        report.findings.push(Finding::new(
            Code::CatalogRootMissing,
            Severity::Warning,
            "the (promptdb (root …)) folder does not exist",
        ));
    }
    if report.checked_nothing() {
        report.findings.push(Finding::new(
            Code::BuildNothingChecked,
            Severity::Partial,
            "nothing was checked: the manifest configures no input that holds a run, \
             a phase, a gate, a queue event or a receipt — a build that checks nothing is not a pass",
        ));
    }
    report.findings.sort();
    report.catalog = Some(catalog);
    report.settle_verdict();
    Ok(report)
}

fn manifest_file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "manifest.lith".into())
}

/// The default output folder for a manifest.
pub fn default_out(manifest: &Manifest) -> PathBuf {
    manifest.resolve(manifest.site.out.as_deref().unwrap_or("site"))
}

fn evaluate_dod(manifest: &Manifest, clock: &Clock) -> report::DodSection {
    if manifest.dod.is_none() {
        return report::DodSection::default();
    }
    let require = crate::cmd::dod::operational_required(false);
    let mut s = report::DodSection {
        configured: true,
        operational_proof_required: require,
        ..Default::default()
    };
    let docs = crate::cmd::dod::docs_rel(manifest);
    if !manifest.resolve(docs).is_dir() {
        s.findings.push(
            Finding::new(
                Code::DodInputMissing,
                Severity::Partial,
                "the configured DoD folder does not exist; no phase was checked",
            )
            .at(crate::fsutil::slash_path(Path::new(docs))),
        );
    }
    match crate::cmd::dod::evaluate(manifest, &[], require, clock) {
        Ok((r, _)) => {
            for (id, p) in &r.phases {
                let (sev, word) = match p.verdict {
                    crate::dod::Verdict::Proven => continue,
                    crate::dod::Verdict::Partial => (Severity::Partial, "PARTIAL"),
                    crate::dod::Verdict::Designed => (Severity::Designed, "DESIGNED"),
                };
                if p.fixture {
                    // Reported, but a fixture never decides the build's exit code.
                    s.findings.push(Finding::new(
                        Code::DodFixtureNotProven,
                        Severity::Info,
                        format!(
                            "{id} (a fixture phase, left out of the exit code) is {word}: {}",
                            p.missing.join(", ")
                        ),
                    ));
                    continue;
                }
                s.findings.push(Finding::new(
                    Code::DodPhaseNotProven,
                    sev,
                    format!("{id} is {word}: {}", p.missing.join(", ")),
                ));
            }
            s.git_head = r.git_head;
            s.phases = r.phases;
        }
        Err(e) => s.findings.push(Finding::new(
            Code::DodUnreadable,
            Severity::Error,
            format!("{e:#}"),
        )),
    }
    s
}

fn evaluate_drift(manifest: &Manifest, clock: &Clock) -> report::DriftSection {
    if manifest.activity.is_none() {
        return report::DriftSection::default();
    }
    let mut s = report::DriftSection {
        configured: true,
        ..Default::default()
    };
    match crate::activity::drift::run(manifest, clock) {
        Ok(r) => {
            for m in &r.missing {
                // The monitor's own tokens name the finding, under the section's
                // prefix once.
                let (code, message) = match m.as_str() {
                    "idle.system.stale" => (
                        Code::DriftIdleSystemStale,
                        "no functional activity within the idle threshold",
                    ),
                    _ => (
                        Code::DriftHeartbeatStale,
                        "no heartbeat within the drift threshold",
                    ),
                };
                s.findings
                    .push(Finding::new(code, Severity::Partial, message));
            }
            s.report = Some(r);
        }
        Err(e) => s.findings.push(Finding::new(
            Code::DriftFeedUnreadable,
            Severity::Error,
            e.to_string(),
        )),
    }
    s
}
