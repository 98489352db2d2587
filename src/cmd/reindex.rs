//! `lith reindex BUNDLE --strict | --repair`.

use anyhow::Context;

use crate::bundle::layout::{self, BundleTarget};
use crate::bundle::reindex;
use crate::bundle::verify::{Mode, Verification, VerifyOptions, verify_run};
use crate::cli::{GlobalArgs, ReindexArgs};
use crate::clock::Clock;
use crate::exit;
use crate::fsutil::slash_path;
use crate::term::one_line;

pub fn execute(g: &GlobalArgs, a: &ReindexArgs) -> anyhow::Result<i32> {
    super::bundle_folder(&a.bundle)?;
    let repo_root = match &a.repo_root {
        Some(r) => {
            Some(std::fs::canonicalize(r).with_context(|| format!("--repo-root {}", r.display()))?)
        }
        None => None,
    };
    let run_dir = match layout::resolve_bundle(&a.bundle) {
        BundleTarget::Run { run_dir, .. } => run_dir,
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
    if a.strict {
        let opts = VerifyOptions::new(Mode::Full, repo_root);
        let run = verify_run(&run_dir, &slash_path(&run_dir), &opts);
        let code = match run.verification {
            Verification::Verified => exit::OK,
            Verification::Error => exit::RUNTIME_ERROR,
            _ => exit::PARTIAL,
        };
        if g.json {
            crate::cmd::print_json(
                &serde_json::json!({"mode": "strict", "exit_code": code, "run": run}),
            )?;
        } else if !g.quiet {
            crate::cmd::print_stdout(&crate::cmd::verify::render_text(&run, None, None))?;
        }
        return Ok(code);
    }
    let clock = Clock::from_env().map_err(anyhow::Error::msg)?;
    match reindex::repair(&run_dir, a.lock.mode(), &clock, repo_root.as_deref()) {
        Ok(log) => {
            if g.json {
                crate::cmd::print_json_streamed(&log)?;
            } else if !g.quiet {
                // Line by line: a repair may have made a million changes.
                let mut lines = vec![Ok(format!(
                    "repaired {}: {} change(s), {} moved to missing, {} skipped; see repair_log.json",
                    one_line(&slash_path(&run_dir)),
                    log.changes.len(),
                    log.moved_to_missing.len(),
                    log.skipped.len()
                ))]
                .into_iter()
                .chain(log.changes.iter()?.map(|c| {
                    c.map(|c| {
                        let (path, field) = (one_line(&c.path), one_line(&c.field));
                        format!("  {path} {field}: {} -> {}", c.old, c.new)
                    })
                }))
                .chain(log.moved_to_missing.iter().map(|m| Ok(format!("  moved to missing: {}", one_line(m)))))
                .chain(log.skipped.iter().map(|k| Ok(format!("  skipped: {}", one_line(k)))));
                crate::cmd::print_lines(&mut lines)?;
            }
            Ok(exit::OK)
        }
        Err(e) => {
            crate::cmd::print_error_alone(&e);
            Ok(crate::cmd::writer_exit(&e))
        }
    }
}
