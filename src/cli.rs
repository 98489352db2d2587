//! The command line: clap derive, whose doc comments are the `--help` text.
//!
//! [`run`] parses the arguments, remaps clap's usage error (2, which means PARTIAL in
//! lith) to 64, sets up the thread pool and hands over to one command in [`crate::cmd`].

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::exit;

/// Turns the evidence CI jobs leave on disk into verdicts and a static report site.
///
/// Exit codes: 0 verified/ok, 2 partial (a check fell short), 3 designed (no evidence
/// of execution yet), 4 runtime error (an input lith must parse is corrupt, or an
/// output cannot be written), 64 usage error, 75 lock held.
#[derive(Debug, Parser)]
#[command(name = "lith", version, max_term_width = 100, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// The manifest to read; relative paths in it resolve against its folder.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        default_value = "manifest.lith"
    )]
    pub manifest: PathBuf,
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print nothing but errors; no progress bar.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Worker threads for hashing and verification [default: all cores].
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// Say more on stderr (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read manifest.lith, verify every bundle, write report.json and the site.
    ///
    /// One bad bundle is a finding, never an abort: everything is written first, then
    /// lith exits with the code of the worst finding.
    Build(BuildArgs),
    /// Strictly load one bundle (a run folder, or a bundle root through LATEST) and
    /// verify every digest.
    ///
    /// Refuses a run that is in progress (exit 2, bundle_in_progress) or has no
    /// artifact_index.json (exit 2, index_missing); corrupt JSON is exit 4.
    Verify(VerifyArgs),
}

#[derive(Debug, Args, Clone)]
pub struct BuildArgs {
    /// Output folder [default: (site (out …)) from the manifest, else `site`].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Check existence and sizes only; skip digests.
    #[arg(long)]
    pub fast: bool,
}

#[derive(Debug, Args, Clone)]
pub struct VerifyArgs {
    /// A run folder (`out/<run_id>/`) or a bundle root (`out/`, resolved through LATEST).
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    /// Debug view: load whatever is there and list what is wrong. Never claims the
    /// bundle is complete.
    #[arg(long)]
    pub unverified: bool,
    /// Check existence and sizes only; skip digests.
    #[arg(long)]
    pub fast: bool,
    /// Repository root that the index's repository-relative paths start from
    /// [default: inferred from the run folder's own path].
    #[arg(long, value_name = "DIR")]
    pub repo_root: Option<PathBuf>,
}

/// Parses `args` and runs the command. Returns the process exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => exit::OK,
                _ => exit::USAGE,
            };
            let _ = e.print();
            return if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                exit::USAGE
            } else {
                code
            };
        }
    };
    if let Some(n) = cli.global.jobs {
        // Only fails if a pool already exists (tests calling run twice): harmless.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n as usize)
            .build_global();
    }
    let result = match &cli.command {
        Command::Build(a) => crate::cmd::build::execute(&cli.global, a),
        Command::Verify(a) => crate::cmd::verify::execute(&cli.global, a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            crate::cmd::print_error(&e);
            exit::RUNTIME_ERROR
        }
    }
}
