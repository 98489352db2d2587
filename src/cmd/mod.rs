//! One module per subcommand, each with an `execute()` that returns the exit code.
//! Helpers here print to stdout (a closed pipe is not an error) and stderr.

pub mod attest;
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

use crate::lith::manifest::ManifestError;
use std::io::Write;

/// Checks that a BUNDLE argument is a folder: absent is an input error (4), a file
/// is a usage mistake (64) with a tip.
pub fn bundle_folder(given: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    let meta = std::fs::metadata(given).with_context(|| {
        format!(
            "{}: cannot open the bundle; pass a run folder or a bundle root",
            given.display()
        )
    })?;
    if !meta.is_dir() {
        return Err(crate::exit::Usage(format!(
            "{}: is not a folder; pass a run folder (out/<run_id>/) or a bundle root (out/)",
            given.display()
        ))
        .into());
    }
    Ok(())
}

/// What writing to stdout came to: a reader that went away (`| head`) is not an
/// error.
fn written_to_stdout(written: std::io::Result<()>) -> anyhow::Result<()> {
    match written {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(anyhow::anyhow!("cannot write to stdout: {e}")),
    }
}

/// Prints lith's own `text` on stdout, through [`crate::term::for_log`]. A reader
/// that went away (`| head`) is not an error.
pub fn print_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let text = crate::term::for_log(text);
    written_to_stdout(out.write_all(text.as_bytes()).and_then(|_| out.flush()))
}

/// Prints the workflow commands lith means to print (`--annotations`) on stdout,
/// through [`crate::term::commands`].
pub fn print_commands(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let text = crate::term::commands(text);
    written_to_stdout(out.write_all(text.as_bytes()).and_then(|_| out.flush()))
}

/// Prints `lines` on stdout as they come, each with a newline: for output too large
/// to hold. A reader that went away is not an error; a line that cannot be made is.
pub fn print_lines(lines: &mut dyn Iterator<Item = std::io::Result<String>>) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, std::io::stdout().lock());
    for line in lines {
        let line = line.map_err(|e| anyhow::anyhow!("cannot make the output: {e}"))?;
        let written = out
            .write_all(crate::term::for_log(&line).as_bytes())
            .and_then(|_| out.write_all(b"\n"));
        if written.is_err() {
            return written_to_stdout(written);
        }
    }
    written_to_stdout(out.flush())
}

/// Prints a value as pretty JSON on stdout as it is serialized, with a trailing
/// newline: for output too large to hold. A reader that went away is not an error.
/// What could be read as a command is escaped ([`crate::term::JsonLog`]).
pub fn print_json_streamed<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(
        256 * 1024,
        crate::term::JsonLog::new(std::io::stdout().lock()),
    );
    written_to_stdout(
        crate::fsutil::write_pretty(&mut out, value)
            .and_then(|_| out.into_inner().map_err(|e| e.into_error()))
            .and_then(|log| log.finish().map(drop)),
    )
}

/// Prints a value as pretty JSON on stdout, with a trailing newline; what could be
/// read as a command is escaped ([`crate::term::JsonLog`]).
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut s = serde_json::to_string_pretty(value)?;
    s.push('\n');
    let mut out = crate::term::JsonLog::new(std::io::stdout().lock());
    written_to_stdout(
        out.write_all(s.as_bytes())
            .and_then(|_| out.finish().map(drop)),
    )
}

/// Prints an error and its causes on stderr.
pub fn print_error(e: &anyhow::Error) {
    let mut msg = format!("error: {}", log_text(e.as_ref()));
    for cause in e.chain().skip(1) {
        msg.push_str(&format!("\n  caused by: {}", log_text(cause)));
    }
    crate::term::eprint(&msg);
}

/// Prints an error on stderr without its causes, for the writers' errors, whose
/// text already says them.
pub fn print_error_alone(e: &(dyn std::error::Error + 'static)) {
    crate::term::eprint(&format!("error: {}", log_text(e)));
}

/// An error as a line of the log: the text of an error quotes paths and values
/// from the inputs, which are kept on its line (line breaks written `\n`). The
/// errors lith writes on several lines keep their own line breaks and put each
/// value on its line themselves.
pub fn log_text(e: &(dyn std::error::Error + 'static)) -> String {
    use crate::lith::sexpr::ReadError;
    if let Some(Unusable(m)) = e.downcast_ref::<Unusable>() {
        return format!("{}\n  {}", log_text(m), Unusable::WHY);
    }
    if let Some(ManifestError::Syntax(r)) = e.downcast_ref::<ManifestError>() {
        return r.for_log();
    }
    if let Some(r) = e.downcast_ref::<ReadError>() {
        return r.for_log();
    }
    crate::term::one_line(&e.to_string()).into_owned()
}

/// A manifest a build cannot do without could not be used.
#[derive(Debug)]
pub struct Unusable(pub ManifestError);

impl Unusable {
    const WHY: &str =
        "(the manifest is configuration lith cannot do without; fix it and run again)";
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\n  {}", self.0, Self::WHY)
    }
}

impl std::error::Error for Unusable {}

/// The exit code of a settled report, at the end of a command that ends the
/// process: the report is left for the process's end to free (freeing a model of
/// 100,000 runs row by row took a quarter of a second on one core, for nothing).
pub fn exit_with(report: crate::report::Report) -> i32 {
    let code = report.verdict.exit_code;
    std::mem::forget(report);
    code
}

/// Prints a warning on stderr unless quiet.
pub fn warn(quiet: bool, msg: &str) {
    if !quiet {
        crate::term::eprint(&format!("warning: {msg}"));
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
