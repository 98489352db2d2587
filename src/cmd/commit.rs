//! `lith commit RUN_DIR`: write the commit barrier and move LATEST.

use anyhow::Context;

use crate::bundle::commit::{CommitOptions, commit};
use crate::cli::{CommitArgs, GlobalArgs};
use crate::exit;
use crate::term::one_line;

pub fn execute(g: &GlobalArgs, a: &CommitArgs) -> anyhow::Result<i32> {
    super::bundle_folder(&a.run_dir)?;
    let repo_root = match &a.repo_root {
        Some(r) => {
            Some(std::fs::canonicalize(r).with_context(|| format!("--repo-root {}", r.display()))?)
        }
        None => None,
    };
    let opts = CommitOptions {
        expect: a.expect.clone(),
        repo_root,
        lock: a.lock.mode(),
        update_latest: !a.no_latest,
    };
    match commit(&a.run_dir, &opts) {
        Ok(out) => {
            if g.json {
                crate::cmd::print_json(&out)?;
            } else if !g.quiet {
                let mut s = format!(
                    "committed {}: {} artifact(s), status {}{}\n",
                    one_line(&out.run_id),
                    out.artifacts,
                    out.status,
                    if out.latest_updated {
                        ", LATEST updated"
                    } else {
                        ""
                    }
                );
                for m in &out.missing {
                    s.push_str(&format!("  missing  {}\n", one_line(m)));
                }
                for k in &out.skipped {
                    s.push_str(&format!("  skipped  {}\n", one_line(k)));
                }
                crate::cmd::print_stdout(&s)?;
            }
            Ok(exit::OK)
        }
        Err(e) => {
            crate::cmd::print_error_alone(&e);
            Ok(crate::cmd::writer_exit(&e))
        }
    }
}
