//! `lith build`: manifest → [`crate::pipeline`] → one report → JSON and site, or with
//! `--partition K/N` one partition's partial report for `lith merge`.
//!
//! A bad input never stops the build: it becomes a finding. The site is written into
//! a temporary folder beside `--out` and swapped in at the end, so a reader never
//! sees half a site and a failed build leaves the previous one in place. The exit
//! code is that of the worst finding, decided after everything is written.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use rayon::prelude::*;

use crate::bundle::reuse::Reuse;
use crate::bundle::verify::Mode;
use crate::cli::{BuildCmdArgs, GlobalArgs, ReportOutputs};
use crate::clock::Clock;
use crate::lith::Manifest;
use crate::pipeline::{self, Options, Partition};
use crate::report::{self, Report};

pub fn execute(g: &GlobalArgs, cmd: &BuildCmdArgs) -> anyhow::Result<i32> {
    let a = &cmd.build;
    let started = Instant::now();
    let clock = Clock::from_env().map_err(anyhow::Error::msg)?;
    let manifest = Manifest::load(&g.manifest).map_err(crate::cmd::Unusable)?;
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
    let mut opts = Options {
        mode: if a.fast { Mode::Fast } else { Mode::Full },
        quiet: g.quiet,
        attest: cmd.attest.is_some(),
        reuse: None,
    };
    if let Some(p) = cmd.partition {
        return partition(g, &manifest, &clock, &opts, p, a.out.as_deref(), started);
    }
    let out = a.out.clone().unwrap_or_else(|| default_out(&manifest));
    let mut reuse = Reuse::fresh(opts.mode, &pipeline::decision_stage(&manifest));
    // What the previous build left is read on this thread while another reads
    // what `--previous` and `--history` name (in the README's nightly, the very
    // site this build replaces), so neither read waits for the other. The other
    // thread's warnings come first, then the reuse's.
    let (loaded, past) = std::thread::scope(|s| {
        let past = s.spawn(|| super::merge::load_past(g, &cmd.previous, cmd.memory.limits()));
        // An attestation names the index entries that were verified: those runs
        // are read again.
        let loaded =
            (!cmd.rehash && cmd.attest.is_none()).then(|| reuse.load(&out, cmd.memory.limits()));
        let past = past
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (loaded, past)
    });
    let past = past?;
    match loaded {
        Some(Ok(n)) if g.verbose > 0 => crate::term::eprint(&format!(
            "lith: the previous build into {} left {n} run(s) to compare",
            out.display()
        )),
        Some(Err(why)) => crate::cmd::warn(
            g.quiet,
            &format!("{why}; every run is read and hashed again"),
        ),
        _ => {}
    }
    let reuse = std::sync::Arc::new(reuse);
    opts.reuse = Some(reuse.clone());
    let mut report = pipeline::evaluate(&manifest, &clock, &opts)?;
    reuse.release();
    if g.verbose > 1 {
        for root in &report.bundles.roots {
            crate::term::eprint(&format!(
                "lith: {}: {} run(s), {} skipped entr(ies), LATEST {}",
                root.path,
                root.runs.len(),
                root.skipped.len(),
                root.latest.as_ref().map_or("absent", |l| if l.valid {
                    "valid"
                } else {
                    "invalid"
                })
            ));
        }
    }
    if g.verbose > 0 {
        let t = &report.bundles.totals;
        crate::term::eprint(&format!(
            "lith: {} root(s), {} run(s), {} artifact(s) evaluated in {} ms",
            t.roots,
            t.runs,
            t.artifacts,
            started.elapsed().as_millis()
        ));
    }
    if !clock.is_fixed() {
        report.duration_ms = Some(started.elapsed().as_millis() as u64);
    }
    let changes = super::merge::apply_past(past, &cmd.previous, &mut report);
    if let Some(dir) = &cmd.attest {
        attest_build(
            &mut report,
            &manifest,
            &clock,
            dir,
            &out,
            cmd.key.as_deref(),
        )?;
    }
    let site = publish(g, &mut report, &out, &cmd.outputs, changes)?;
    if let Some(sha256) = &site.report_sha256
        && let Err(e) = reuse.save(&out, sha256)
    {
        crate::cmd::warn(
            g.quiet,
            &format!("{e}; the next build reads every run again"),
        );
    }
    if g.verbose > 0 {
        crate::term::eprint(&format!(
            "lith: {} of {} run(s) unchanged since the previous build, taken from its report",
            reuse.reused(),
            report.bundles.totals.runs
        ));
    }
    if g.verbose > 0 {
        crate::term::eprint(&format!(
            "lith: site written ({} file(s) written, {} unchanged, {} removed), {} ms in all",
            site.written,
            site.unchanged,
            site.removed,
            started.elapsed().as_millis()
        ));
    }
    Ok(super::exit_with(report))
}

/// `--attest DIR`: a statement and envelope per run, then one for the build whose
/// subjects are the runs' statements. Each run's report records what was written,
/// so its page can link the envelope and say whether it is signed.
fn attest_build(
    report: &mut Report,
    manifest: &Manifest,
    clock: &Clock,
    dir: &Path,
    out: &Path,
    key: Option<&Path>,
) -> anyhow::Result<()> {
    use crate::attest::{self, Context, Signer};
    let (abs_dir, abs_out) = (std::path::absolute(dir)?, std::path::absolute(out)?);
    if abs_dir.starts_with(&abs_out) || abs_out.starts_with(&abs_dir) {
        return Err(crate::exit::Usage(format!(
            "--attest {} and --out {} overlap: the site replaces what it did not write, so attestations go in a folder of their own",
            dir.display(),
            out.display()
        ))
        .into());
    }
    let signer = key.map(Signer::load).transpose()?;
    let label = crate::fsutil::slash_path(&manifest.path);
    let cx = Context::new(
        clock.now_rfc3339(),
        manifest.sha256.map(|d| (label.clone(), d)),
    );
    let dir_label = crate::fsutil::slash_path(dir);
    let out = attest::Out::open(dir)?;
    // Runs are attested in parallel (statement, signature, three files each); what
    // the build statement lists is gathered afterwards, in the report's order.
    let mut runs: Vec<&mut crate::bundle::verify::RunReport> = report
        .bundles
        .roots
        .iter_mut()
        .flat_map(|r| r.runs.iter_mut())
        .collect();
    let attested = runs
        .par_iter_mut()
        .map(|run| {
            let page = run
                .page
                .clone()
                .unwrap_or_else(|| format!("runs/{}/", run.run_id));
            let rel = page.trim_end_matches('/');
            let Some(files) =
                attest::run_files(run, &cx, signer.as_ref(), &format!("{dir_label}/{rel}"))
            else {
                return Ok(None);
            };
            out.put_run(rel, &files)?;
            let statement = (
                format!("{rel}/{}", attest::STATEMENT_FILE),
                files.reference.statement_sha256.clone(),
            );
            let extra = run.extra_mut();
            extra.attestation = Some(Box::new(files.reference));
            extra.subjects = Vec::new();
            Ok(Some(statement))
        })
        .collect::<Result<Vec<_>, attest::Error>>()?;
    let mut statements: Vec<(String, String)> = Vec::new();
    let (mut passed, mut failed, mut left_out) = (0usize, 0usize, Vec::new());
    for (run, statement) in runs.iter().zip(attested) {
        let Some(statement) = statement else {
            left_out.push(serde_json::json!({"run_id": run.run_id, "dir": run.dir, "verification": run.verification.as_str()}));
            continue;
        };
        if attest::passed(run) {
            passed += 1;
        } else {
            failed += 1;
        }
        statements.push(statement);
    }
    drop(runs);
    if statements.is_empty() {
        crate::cmd::warn(
            false,
            &format!(
                "--attest {dir_label}: no run has an indexed artifact to attest; no build statement written"
            ),
        );
        return Ok(());
    }
    let all_passed = failed == 0 && left_out.is_empty();
    let summary = serde_json::json!({
        "schema": attest::LITH_SCHEMA,
        "verdict": report.verdict.label.as_str(),
        "exit_code": report.verdict.exit_code,
        "runs": {"attested": statements.len(), "passed": passed, "failed": failed},
        "runs_not_attested": left_out,
        "totals": report.bundles.totals,
    });
    let resource = report
        .site
        .base_url
        .clone()
        .unwrap_or_else(|| label.clone());
    let statement = attest::build_statement(&statements, summary, all_passed, &resource, &cx);
    let envelope = attest::envelope(&statement, signer.as_ref());
    out.put("build.statement.json", &statement)?;
    out.put("build.dsse.json", &envelope)?;
    Ok(())
}

/// `--partition K/N`: verifies this partition's runs and writes its partial report.
fn partition(
    g: &GlobalArgs,
    manifest: &Manifest,
    clock: &Clock,
    opts: &Options,
    p: Partition,
    out: Option<&Path>,
    started: Instant,
) -> anyhow::Result<i32> {
    let mut part = pipeline::evaluate_partition(manifest, clock, opts, p)?;
    if !clock.is_fixed() {
        part.report.duration_ms = Some(started.elapsed().as_millis() as u64);
    }
    let path = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(format!("lith-partial-{}-of-{}.json", p.index, p.count)));
    let mut bytes = crate::wire::compact(|| serde_json::to_vec(&part))?;
    bytes.push(b'\n');
    crate::fsutil::write_atomic(&path, &bytes)
        .with_context(|| format!("cannot write the partial report to {}", path.display()))?;
    let runs: usize = part.roots.iter().map(|r| r.positions.len()).sum();
    let listed: usize = part.roots.iter().map(|r| r.listed).sum();
    if g.json {
        crate::cmd::print_json(&serde_json::json!({
            "partition": p.to_string(),
            "runs": runs,
            "listed": listed,
            "out": crate::fsutil::slash_path(&path),
        }))?;
    } else if !g.quiet {
        crate::cmd::print_stdout(&format!(
            "partition {p}: verified {runs} of {listed} run(s); wrote {}\n\
             (the verdict comes from `lith merge` of every partition)\n",
            crate::fsutil::slash_path(&path)
        ))?;
    }
    Ok(crate::exit::OK)
}

/// Writes a settled report's site and the outputs asked for (step summary, JUnit,
/// annotations), then prints the summary. Shared by `build`, `merge` and `render`.
pub fn publish(
    g: &GlobalArgs,
    report: &mut Report,
    out: &Path,
    outputs: &ReportOutputs,
    changes: crate::site::Changes<'_>,
) -> anyhow::Result<crate::site::Stats> {
    let site = match crate::site::publish(report, out, changes) {
        Err(crate::site::Error::Changes(e)) => return Err(e),
        site => site.with_context(|| format!("cannot write the site to {}", out.display()))?,
    };
    let report = &*report;
    if let Some(path) = &outputs.summary {
        let text = report::step_summary::markdown(report, report::step_summary::MAX_BYTES);
        append(path, text.as_bytes())
            .with_context(|| format!("cannot write the summary to {}", path.display()))?;
    }
    if let Some(path) = &outputs.junit {
        let xml = report::junit::xml(report)?;
        crate::fsutil::write_atomic(path, xml.as_bytes())
            .with_context(|| format!("cannot write the JUnit report to {}", path.display()))?;
    }
    if let Some(path) = &outputs.single_file {
        let html = crate::site::single_file(report)?;
        crate::fsutil::write_atomic(path, html.as_bytes()).with_context(|| {
            format!("cannot write the single-file report to {}", path.display())
        })?;
    }
    if outputs.annotations {
        crate::cmd::print_commands(&report::annotations::workflow_commands(
            report,
            report::annotations::MAX_ANNOTATIONS,
        ))?;
    }
    if g.json {
        crate::cmd::print_json(&serde_json::json!({
            "verdict": report.verdict,
            "bundles": report.bundles.totals,
            "out": crate::fsutil::slash_path(out),
        }))?;
    } else if !g.quiet {
        crate::cmd::print_stdout(&report::text::summary(
            report,
            &crate::fsutil::slash_path(out),
        ))?;
    }
    Ok(site)
}

/// Appends to a CI's summary file (created when absent; a symlink is refused).
fn append(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = crate::fsutil::beside_untrusted()
        .append(true)
        .create(true)
        .open(path)?;
    f.write_all(bytes)
}

/// The default output folder for a manifest.
pub fn default_out(manifest: &Manifest) -> PathBuf {
    manifest.resolve(manifest.site.out.as_deref().unwrap_or("site"))
}
