//! `lith verify BUNDLE`: the strict load of one bundle (SPEC §3.5), or with
//! `--unverified` the debug view that never claims completeness.

use anyhow::Context;
use serde::Serialize;

use crate::bundle::layout::{self, Latest};
use crate::bundle::verify::{
    ArtifactStatus, Mode, RunReport, Verification, VerifyOptions, verify_run,
};
use crate::cli::{GlobalArgs, VerifyArgs};
use crate::exit;
use crate::fsutil::slash_path;

#[derive(Debug, Serialize)]
struct StrictOutput<'a> {
    mode: &'static str,
    bundle: String,
    /// The LATEST file used to find the run, when a bundle root was given.
    latest: Option<&'a Latest>,
    verified: bool,
    /// Why the bundle was refused or failed, as a stable code.
    reason: Option<&'static str>,
    exit_code: i32,
    run: Option<&'a RunReport>,
}

#[derive(Debug, Serialize)]
struct UnverifiedOutput<'a> {
    mode: &'static str,
    /// Always false: this view never implies the bundle is complete.
    complete: bool,
    note: &'static str,
    bundle: String,
    latest: Option<&'a Latest>,
    missing: Vec<String>,
    digest_mismatches: Vec<String>,
    unsafe_paths: Vec<String>,
    unindexed: &'a [String],
    exit_code: i32,
    run: &'a RunReport,
}

const UNVERIFIED_NOTE: &str = "unverified debug view: lists what is present and what is wrong; it does not mean the bundle is complete or promotable";

pub fn execute(g: &GlobalArgs, a: &VerifyArgs) -> anyhow::Result<i32> {
    let given = &a.bundle;
    super::bundle_folder(given)?;
    let repo_root = match &a.repo_root {
        Some(r) => {
            Some(std::fs::canonicalize(r).with_context(|| format!("--repo-root {}", r.display()))?)
        }
        None => None,
    };
    let opts = VerifyOptions::new(if a.fast { Mode::Fast } else { Mode::Full }, repo_root);
    let label = slash_path(given);

    // A run folder, or a root resolved through LATEST.
    let (run_dir, latest) = match layout::resolve_bundle(given) {
        layout::BundleTarget::Run { run_dir, latest } => (run_dir, latest),
        layout::BundleTarget::Refused {
            reason,
            message,
            latest,
        } => {
            return refuse(g, &label, latest.as_ref(), reason, &message);
        }
    };
    let run_label = if latest.is_some() {
        format!(
            "{label}/{}",
            run_dir
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        )
    } else {
        label.clone()
    };
    if g.verbose > 0 {
        crate::term::eprint(&format!(
            "lith: verifying {} ({:?} mode)",
            run_dir.display(),
            opts.mode
        ));
    }
    let run = verify_run(&run_dir, &run_label, &opts);

    if a.unverified {
        return unverified(g, &label, latest.as_ref(), &run);
    }

    let (code, reason) = strict_outcome(run.verification);
    if g.json {
        crate::cmd::print_json(&StrictOutput {
            mode: "strict",
            bundle: label,
            latest: latest.as_ref(),
            verified: code == exit::OK,
            reason,
            exit_code: code,
            run: Some(&run),
        })?;
    } else if !g.quiet {
        crate::cmd::print_stdout(&render_text(&run, latest.as_ref(), reason))?;
    }
    Ok(code)
}

/// The exit code of a strict load of a run with this verification, and why it
/// was refused (`lith verify`; `lith attest` exits the same way).
pub(crate) fn strict_outcome(v: Verification) -> (i32, Option<&'static str>) {
    match v {
        Verification::Verified => (exit::OK, None),
        Verification::Error => (exit::RUNTIME_ERROR, Some("corrupt_input")),
        Verification::InProgress => (exit::PARTIAL, Some("bundle_in_progress")),
        Verification::Uncommitted => (exit::PARTIAL, Some("index_missing")),
        Verification::Failed => (exit::PARTIAL, Some("verification_failed")),
    }
}

fn refuse(
    g: &GlobalArgs,
    label: &str,
    latest: Option<&Latest>,
    reason: &'static str,
    why: &str,
) -> anyhow::Result<i32> {
    if g.json {
        crate::cmd::print_json(&StrictOutput {
            mode: "strict",
            bundle: label.to_string(),
            latest,
            verified: false,
            reason: Some(reason),
            exit_code: exit::PARTIAL,
            run: None,
        })?;
    } else {
        crate::cmd::print_stdout(&format!(
            "{}: refused ({reason}): {}\n",
            crate::term::one_line(label),
            crate::term::one_line(why)
        ))?;
    }
    Ok(exit::PARTIAL)
}

fn unverified(
    g: &GlobalArgs,
    label: &str,
    latest: Option<&Latest>,
    run: &RunReport,
) -> anyhow::Result<i32> {
    let pick = |f: &dyn Fn(ArtifactStatus) -> bool| -> Vec<String> {
        run.artifacts
            .iter()
            .filter(|c| f(c.status))
            .map(|c| c.path.to_string())
            .collect()
    };
    let mut missing = pick(&|s| s == ArtifactStatus::Missing);
    if let Some(idx) = &run.index {
        missing.extend(idx.missing.iter().cloned());
    }
    let digest_mismatches = pick(&|s| {
        matches!(
            s,
            ArtifactStatus::DigestMismatch | ArtifactStatus::SizeMismatch
        )
    });
    let unsafe_paths = pick(&|s| s == ArtifactStatus::UnsafePath);
    let code = run.exit_code();
    if g.json {
        crate::cmd::print_json(&UnverifiedOutput {
            mode: "unverified",
            complete: false,
            note: UNVERIFIED_NOTE,
            bundle: label.to_string(),
            latest,
            missing,
            digest_mismatches,
            unsafe_paths,
            unindexed: &run.extra().unindexed,
            exit_code: code,
            run,
        })?;
    } else {
        let mut s = format!("{}\n{UNVERIFIED_NOTE}\n", crate::term::one_line(&run.dir));
        s.push_str(&render_text(run, latest, None));
        crate::cmd::print_stdout(&s)?;
    }
    Ok(code)
}

/// A short, one-screen text view of a verified run.
pub fn render_text(run: &RunReport, latest: Option<&Latest>, reason: Option<&str>) -> String {
    use crate::term::one_line;
    let mut s = String::new();
    if latest.is_some() {
        s.push_str(&format!(
            "{} (resolved through LATEST)\n",
            one_line(&run.dir)
        ));
    } else {
        s.push_str(&format!("{}\n", one_line(&run.dir)));
    }
    let index = run
        .index
        .as_ref()
        .map_or("no index".to_string(), |i| format!("index {}", i.status));
    let mode = match run.mode {
        Mode::Full => "sizes and digests checked",
        Mode::Fast => "sizes only (--fast)",
    };
    s.push_str(&format!(
        "  state {} · {index} · {}/{} artifacts ok · {} unindexed · {mode}\n",
        one_line(run.state().unwrap_or("unknown")),
        run.counts.ok,
        run.counts.total,
        run.extra().unindexed.len(),
    ));
    for c in run
        .artifacts
        .iter()
        .filter(|c| c.status != ArtifactStatus::Ok)
    {
        s.push_str(&format!(
            "  {:<16} {}",
            c.status.as_str(),
            one_line(&c.path)
        ));
        match c.status {
            ArtifactStatus::SizeMismatch | ArtifactStatus::DigestMismatch => {
                s.push_str(&format!(
                    "\n                   expected {} bytes sha256 {}\n                   actual   {} bytes sha256 {}",
                    c.expected_size,
                    c.expected_sha256,
                    c.actual_size().map_or("?".into(), |n| n.to_string()),
                    c.actual_sha256()
                        .map_or("(not computed)".into(), |d| d.to_string())
                ));
            }
            _ => {
                if let Some(d) = c.detail() {
                    s.push_str(&format!(" ({})", one_line(d)));
                }
            }
        }
        s.push('\n');
    }
    if run.extra().artifacts_unlisted > 0 {
        let listed_failing = run
            .artifacts
            .iter()
            .filter(|c| c.status != ArtifactStatus::Ok)
            .count();
        let failing = run.counts.total - run.counts.ok;
        s.push_str(&format!(
            "  … {} more failing artifact(s) not listed; the counts above cover all {} entries\n",
            failing - listed_failing,
            run.counts.total
        ));
    }
    for f in run
        .findings
        .iter()
        .filter(|f| f.code != crate::finding::Code::ArtifactsNotOk)
    {
        s.push_str(&format!(
            "  {}: {}: {}\n",
            f.severity.as_str(),
            f.code,
            one_line(&f.message)
        ));
    }
    let verdict = match reason {
        None if run.verification == Verification::Verified => "verified".to_string(),
        None => run.verification.as_str().to_string(),
        Some(r) => format!("not verified ({r})"),
    };
    s.push_str(&format!("  {verdict}\n"));
    s
}
