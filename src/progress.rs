//! The progress bar on stderr: shown only on a terminal, never under `CI=true` or
//! `--quiet`, so logs stay clean.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// True when a progress bar may be drawn.
pub fn allowed(quiet: bool) -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    !quiet && !ci && std::io::stderr().is_terminal()
}

/// A bar over `len` items with a message, or `None` when bars are not allowed.
pub fn bar(len: u64, what: &str, quiet: bool) -> Option<ProgressBar> {
    if !allowed(quiet) || len < 2 {
        return None;
    }
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} ({eta})")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    pb.set_style(style);
    pb.set_message(what.to_string());
    Some(pb)
}
