//! `lith promote BUNDLE`: emit a promotion packet.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::bundle::layout::{self, BundleTarget};
use crate::bundle::manifest_defaults;
use crate::bundle::promotion;
use crate::bundle::verify::{Mode, VerifyOptions, verify_run};
use crate::cli::{GlobalArgs, PromoteArgs};
use crate::exit;
use crate::fsutil::{self, slash_path};

pub fn execute(g: &GlobalArgs, a: &PromoteArgs) -> anyhow::Result<i32> {
    super::bundle_folder(&a.bundle)?;
    let (run_dir, root) = match layout::resolve_bundle(&a.bundle) {
        BundleTarget::Run { run_dir, latest } => {
            let root = if latest.is_some() {
                a.bundle.clone()
            } else {
                fsutil::parent_dir(&run_dir)
            };
            (run_dir, root)
        }
        BundleTarget::Refused {
            reason, message, ..
        } => {
            crate::term::eprint(&format!(
                "{}: refused ({reason}): {message}",
                slash_path(&a.bundle)
            ));
            return Ok(exit::PARTIAL);
        }
    };
    let decision_stage = if a.decision_stage_artifact.is_empty() {
        manifest_defaults()
    } else {
        a.decision_stage_artifact.clone()
    };
    let opts = VerifyOptions::new(Mode::Full, None);
    let run = verify_run(&run_dir, &slash_path(&run_dir), &opts);
    // The folder as verification resolved it (a link to a run folder is followed
    // once, here, as `lith verify` does), then read beneath its handle.
    let dir = std::fs::canonicalize(&run_dir)
        .and_then(|base| crate::beneath::Dir::open(&base))
        .with_context(|| format!("{}: cannot open the run folder", slash_path(&run_dir)))?;
    let promotability = promotion::assess(&dir, &run, &decision_stage).map_err(|e| {
        anyhow::anyhow!(
            "{}/{}: {}; fix or regenerate it, then promote again",
            slash_path(&run_dir),
            e.file,
            e.message
        )
    })?;
    let prefix = pointer_prefix(&run_dir, a.repo_root.as_deref())?;
    let packet = promotion::packet(&prefix, promotability, &promotion::optional_inputs(&dir));
    let p = &packet.promotability;
    if a.require_promotable && !p.promotable_decision_stage {
        crate::term::eprint(&format!(
            "{}: not promotable: {}; no packet written",
            slash_path(&run_dir),
            p.reasons.join(", ")
        ));
        if g.json {
            crate::cmd::print_json(&packet)?;
        }
        return Ok(exit::PARTIAL);
    }
    let mut bytes = serde_json::to_vec_pretty(&packet)?;
    bytes.push(b'\n');
    // The temporary file, the rename and the sync all go through one handle of the
    // folder the packet goes in (`fsutil::write_atomic`).
    let out = a
        .output
        .clone()
        .unwrap_or_else(|| root.join("promotion_packet.json"));
    fsutil::write_atomic(&out, &bytes)
        .with_context(|| format!("cannot write {}", out.display()))?;
    if g.json {
        crate::cmd::print_json(&packet)?;
    } else if !g.quiet {
        let verdict = if p.promotable_decision_stage {
            "promotable".to_string()
        } else {
            format!("not promotable: {}", p.reasons.join(", "))
        };
        crate::cmd::print_stdout(&format!(
            "{}: {verdict}\n  wrote {}\n",
            crate::term::one_line(&slash_path(&run_dir)),
            crate::term::one_line(&slash_path(&out))
        ))?;
    }
    Ok(exit::OK)
}

/// The run folder as the packet's pointers spell it: relative to --repo-root, or to
/// the current folder, never absolute.
fn pointer_prefix(run_dir: &Path, repo_root: Option<&Path>) -> anyhow::Result<String> {
    let run_abs = std::fs::canonicalize(run_dir)?;
    let base: PathBuf = match repo_root {
        Some(r) => {
            std::fs::canonicalize(r).with_context(|| format!("--repo-root {}", r.display()))?
        }
        None => std::fs::canonicalize(".")?,
    };
    match run_abs.strip_prefix(&base) {
        Ok(rel) => Ok(slash_path(rel)),
        Err(_) if repo_root.is_some() => {
            anyhow::bail!(
                "{} is not inside --repo-root {}",
                run_dir.display(),
                base.display()
            )
        }
        Err(_) => Ok(run_abs
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()),
    }
}
