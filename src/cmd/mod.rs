//! One module per subcommand, each with an `execute()` that returns the exit code.
//! Helpers here print to stdout (a closed pipe is not an error) and stderr.

pub mod build;
pub mod commit;
pub mod dod;
pub mod drift;
pub mod gate;
pub mod merge;
pub mod promote;
pub mod queue;
pub mod receipts;
pub mod reindex;
pub mod run;
pub mod serve;
pub mod verify;

use std::io::Write;

/// Prints `text` on stdout. A reader that went away (`| head`) is not an error.
pub fn print_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(anyhow::anyhow!("cannot write to stdout: {e}")),
    }
}

/// Prints a value as pretty JSON on stdout, with a trailing newline.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut s = serde_json::to_string_pretty(value)?;
    s.push('\n');
    print_stdout(&s)
}

/// Prints an error and its causes on stderr.
pub fn print_error(e: &anyhow::Error) {
    let mut msg = format!("error: {e}");
    for cause in e.chain().skip(1) {
        msg.push_str(&format!("\n  caused by: {cause}"));
    }
    eprintln!("{msg}");
}

/// Prints a warning on stderr unless quiet.
pub fn warn(quiet: bool, msg: &str) {
    if !quiet {
        eprintln!("warning: {msg}");
    }
}

/// The exit code of a writer's error: 75 for a held lock, 2 for a run still in
/// progress, 4 for everything else.
pub fn writer_exit(e: &crate::bundle::commit::CommitError) -> i32 {
    use crate::bundle::commit::CommitError;
    use crate::bundle::lock::LockError;
    match e {
        CommitError::Lock(LockError::Held { .. }) => crate::exit::LOCKED,
        CommitError::InProgress(_) => crate::exit::PARTIAL,
        _ => crate::exit::RUNTIME_ERROR,
    }
}
