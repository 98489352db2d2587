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
    pub common: CommonArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// The flags every command takes.
#[derive(Debug, Args, Clone)]
pub struct CommonArgs {
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print nothing but errors; no progress bar.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Say more on stderr (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// `--manifest`, for the commands that read one.
#[derive(Debug, Args, Clone)]
pub struct ManifestArg {
    /// The manifest to read; relative paths in it resolve against its folder.
    #[arg(long, value_name = "PATH", default_value = "manifest.lith")]
    pub manifest: PathBuf,
}

/// `--jobs`, for the commands that hash or write in parallel.
#[derive(Debug, Args, Clone, Default)]
pub struct JobsArg {
    /// Worker threads for hashing and writing [default: all cores].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
}

/// `--report-memory`, for the commands that read a report back whole.
#[derive(Debug, Args, Clone, Default)]
pub struct ReportMemoryArg {
    /// The most memory one report read back whole may hold (render's, merge's
    /// partial reports together, diff's newer side, the one a rebuild takes unchanged
    /// runs from), as 512M or 2G [default: 224M, which keeps lith under 256 MB; a
    /// report of 100,000 runs of 13 artifacts holds 197 MiB]. A report that holds
    /// more is refused at the line and column where it passed the limit; raising it
    /// lets a larger report in, and lith use about that much more memory.
    #[arg(long, value_name = "SIZE", env = "LITH_REPORT_MEMORY", value_parser = parse_size)]
    pub report_memory: Option<usize>,
}

impl ReportMemoryArg {
    /// The limits of a report read back.
    pub fn limits(&self) -> crate::report::ReadLimits {
        self.report_memory
            .map_or_else(Default::default, crate::report::ReadLimits::holding)
    }
}

/// A size in bytes: a number, with K, M or G (powers of 1024) and an optional
/// `iB` or `B` after it; from 1M to 1024G.
fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let unit_at = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(unit_at);
    let shift = match unit.trim_start() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("{s:?} is not a size: write it as 512M or 2G")),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size: write it as 512M or 2G"))?;
    match n.checked_mul(1 << shift) {
        Some(b) if (1 << 20..=1 << 40).contains(&b) => Ok(b as usize),
        _ => Err(format!("{s:?} is out of range: from 1M to 1024G")),
    }
}

/// What a command's `execute` gets besides its own arguments: the common flags, and
/// the manifest path of the commands that read one.
#[derive(Debug, Clone)]
pub struct GlobalArgs {
    pub manifest: PathBuf,
    pub json: bool,
    pub quiet: bool,
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read manifest.lith, verify every bundle, write report.json and the site.
    ///
    /// One bad bundle is a finding, never an abort: everything is written first, then
    /// lith exits with the code of the worst finding.
    Build(BuildCmdArgs),
    /// Strictly load one bundle (a run folder, or a bundle root through LATEST) and
    /// verify every digest.
    ///
    /// Refuses a run that is in progress (exit 2, bundle_in_progress) or has no
    /// artifact_index.json (exit 2, index_missing); corrupt JSON is exit 4.
    Verify(VerifyArgs),
    /// Write artifact_index.json for a finished run (the commit barrier), then move
    /// LATEST to it, under the bundle-root lock.
    ///
    /// The index is written last and atomically; a crash leaves no index or the whole
    /// new one, and LATEST never names an uncommitted run.
    Commit(CommitArgs),
    /// Check an index against the files (--strict), or rewrite it from them
    /// (--repair) and leave repair_log.json.
    ///
    /// Repair never invents an artifact, never indexes unindexed files and never
    /// follows an unsafe path.
    Reindex(ReindexArgs),
    /// Write a promotion packet (runtime-tools.promotion_packet.v0.2) for a run.
    ///
    /// Promotability is derived from the bundle. Exits 0 whether or not the run is
    /// promotable, unless --require-promotable is given.
    Promote(PromoteArgs),
    /// The file-backed task queue: enqueue, dequeue, replay.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// The receipts log (receipts.v2).
    #[command(subcommand)]
    Receipts(ReceiptsCommand),
    /// Dry-run a gate of the manifest.
    #[command(subcommand)]
    Gate(GateCommand),
    /// Definition-of-Done verdicts per phase (PROVEN / PARTIAL / DESIGNED); writes
    /// dod_report.latest.json and a timestamped copy.
    ///
    /// Exit 3 if any phase is DESIGNED, else 2 if any is PARTIAL, else 0. With
    /// LUKA_REQUIRE_OPERATIONAL_PROOF=1 or --require-operational-proof, synthetic chains
    /// of the operational targets are forced to PARTIAL and the feed is read strictly.
    Dod(DodArgs),
    /// The idle / heartbeat drift monitor: exit 2 when stale, 4 when the feed is
    /// missing or corrupt. Writes idle_drift.latest.json.
    Drift(DriftArgs),
    /// Run a command inside a runtime_auto activity chain (started, heartbeats,
    /// completed with evidence hashes, verified) and return its exit code.
    Run(RunArgs),
    /// Build, then serve the site locally and rebuild it when the inputs change.
    ///
    /// Every poll and every GET /api/catalog is a check: within the manifest's
    /// (promptdb (debounce-ms …)) of the last look the cached snapshot is served;
    /// otherwise a signature of the inputs decides between a cache hit and a rebuild.
    ///
    /// A local preview, bounded against any one client: 16 connections are served at
    /// once (more wait briefly, then get 503), one request per connection, GET and
    /// HEAD only, request heads of at most 16 KiB that arrive within 10 s; request
    /// bodies are never read. Only files inside the output folder are served.
    Serve(ServeArgs),
    /// Join the partial reports of `lith build --partition K/N` into the report and
    /// site an unpartitioned build would have written; reads no manifest.
    ///
    /// Every partition 1..N must be given exactly once; missing, repeated or
    /// mismatched partitions (another manifest, another checkout) are refused naming
    /// them (exit 64). Exits with the merged verdict's code, as `lith build` does.
    Merge(MergeArgs),
    /// Rebuild a site from a report.json alone, byte for byte the site the build
    /// wrote (with the same lith version).
    ///
    /// Exits with the report's verdict code, as `lith build` does.
    Render(RenderArgs),
    /// What changed between two builds: runs, phases and gates newly failing, fixed,
    /// still failing, new or vanished, verdict and promotability transitions, and
    /// the artifacts whose digest changed between two builds of the same run.
    ///
    /// Reads two report.json files (or the site folders that hold them); reads no
    /// manifest and no workspace. Exits 0 when nothing newly fails, 2 when a run,
    /// phase or gate fails that passed in OLD (so CI can gate on regressions), 64
    /// when a path is not a report.
    Diff(DiffArgs),
    /// Attest one run: an in-toto Statement v1 with a SLSA verification summary,
    /// in a DSSE envelope signed with an Ed25519 key, and a SHA256SUMS list; or
    /// `lith attest verify` an envelope offline.
    ///
    /// The statement's subjects are the run's indexed artifacts with their sha256;
    /// its result is PASSED only when the run verified. Everything is written first;
    /// the exit code is then that of `lith verify` on the run (0 verified, 2 failed,
    /// in progress or uncommitted, 4 unreadable).
    Attest(AttestCmd),
    /// Print a shell completion script for lith.
    Completions(CompletionsArgs),
    /// Print lith's man page (roff), or write one page per command into --out.
    Man(ManArgs),
}

#[derive(Debug, Args, Clone)]
#[command(after_help = "Example:\n  lith completions bash > /etc/bash_completion.d/lith")]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args, Clone)]
#[command(after_help = "Example:\n  lith man --out target/man && man -l target/man/lith-build.1")]
pub struct ManArgs {
    /// Write lith.1 and a page per command (lith-build.1, …) into this folder.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
#[command(
    after_help = "Example:\n  lith dod --all --missing-only\n  LUKA_REQUIRE_OPERATIONAL_PROOF=1 lith dod --phase PHASE_NIGHTLY --json"
)]
pub struct DodArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
    /// Evaluate this phase (repeatable) [default: every DOD__<PHASE>.md document].
    #[arg(long, value_name = "ID")]
    pub phase: Vec<String>,
    /// Evaluate every documented phase.
    #[arg(long, conflicts_with = "phase")]
    pub all: bool,
    /// Show only phases with findings.
    #[arg(long)]
    pub missing_only: bool,
    /// Rewrite the phase registry with the verdicts (atomically, keeping `requires`).
    #[arg(long)]
    pub update_status: bool,
    /// Require operational (runtime_auto) proof for the operational targets.
    #[arg(long)]
    pub require_operational_proof: bool,
}

#[derive(Debug, Args, Clone)]
#[command(
    after_help = "Example:\n  lith run --phase PHASE_NIGHTLY --evidence out/report.xml -- make nightly"
)]
pub struct RunArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
    /// The phase the chain proves.
    #[arg(long, value_name = "ID")]
    pub phase: String,
    /// The tool named in the events [default: the command's file name].
    #[arg(long, value_name = "NAME")]
    pub tool: Option<String>,
    /// A file the command produces, hashed into `completed` (repeatable).
    #[arg(long, value_name = "PATH")]
    pub evidence: Vec<String>,
    /// Seconds between heartbeats while the command runs.
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub heartbeat_sec: u64,
    /// The activity feed [default: (activity (feed …)) of the manifest].
    #[arg(long, value_name = "FILE")]
    pub feed: Option<PathBuf>,
    /// The heartbeat file to update [default: (activity (heartbeat-file …))].
    #[arg(long, value_name = "FILE")]
    pub heartbeat_file: Option<PathBuf>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args, Clone)]
#[command(after_help = "Example:\n  lith serve --port 8787")]
pub struct ServeArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8787)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// How often to look at the inputs, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub poll_ms: u64,
}

#[derive(Debug, Subcommand)]
pub enum GateCommand {
    /// Check the push-truth proof schema (required refs, required hashes, host handle),
    /// the receipts, and the gate's open questions. Exit 0 when clear, 2 when blocked.
    ///
    /// When unresolved questions block the gate, the Keeper of Contracts says which
    /// to resolve first.
    #[command(after_help = "Example:\n  lith gate push-truth --json")]
    PushTruth(ManifestArg),
}

#[derive(Debug, Args, Clone)]
#[command(after_help = "Example:\n  lith drift --json")]
pub struct DriftArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
}

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Append an enqueue event and its receipt. If the dedupe key is already pending,
    /// print that task with "deduped": true and write nothing.
    Enqueue(EnqueueArgs),
    /// Append a dequeue event for the oldest pending task, and its receipt. An empty
    /// queue is exit 2 (empty_queue) and writes nothing.
    Dequeue(DequeueArgs),
    /// Fold the log into the pending tasks, dedupe index, counters and state_sha256.
    ///
    /// Lenient by default: exit 0 when the only finding is a torn tail (the trace of a
    /// crashed writer), 2 for other findings. --strict exits 4 at the first bad line.
    Replay(ReplayArgs),
}

#[derive(Debug, Args, Clone)]
pub struct QueueFileArgs {
    /// The manifest named in each receipt's `manifest` field (not read).
    #[arg(long, value_name = "PATH", default_value = "manifest.lith")]
    pub manifest: PathBuf,
    /// The queue event log (JSON Lines).
    #[arg(long, value_name = "FILE")]
    pub log: PathBuf,
    /// The receipts log to append each operation's receipt to.
    #[arg(long, value_name = "FILE")]
    pub receipts: PathBuf,
    /// The receipt's `host` field [default: this machine's host name].
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Args, Clone)]
#[command(
    after_help = "Example:\n  lith queue enqueue --log state/task_queue.jsonl --receipts receipts.log --kind build --payload '{\"ref\":\"main\"}'"
)]
pub struct EnqueueArgs {
    #[command(flatten)]
    pub files: QueueFileArgs,
    /// The task's kind.
    #[arg(long, value_name = "KIND")]
    pub kind: String,
    /// Deduplication key [default: KIND: + the canonical JSON of the payload].
    #[arg(long, value_name = "KEY", default_value = "")]
    pub dedupe_key: String,
    /// The task's payload, as JSON.
    #[arg(long, value_name = "JSON", default_value = "{}")]
    pub payload: String,
    /// Who owns the task (also the receipt's owner) [default: $USER, else lith].
    #[arg(long, value_name = "NAME")]
    pub owner: Option<String>,
    /// An extra ref for the receipt (repeatable).
    #[arg(long = "ref", value_name = "REF")]
    pub refs: Vec<String>,
}

#[derive(Debug, Args, Clone)]
#[command(
    after_help = "Example:\n  lith queue dequeue --log state/task_queue.jsonl --receipts receipts.log --owner ci"
)]
pub struct DequeueArgs {
    #[command(flatten)]
    pub files: QueueFileArgs,
    /// Who takes the task (the receipt's owner) [default: $USER, else lith].
    #[arg(long, value_name = "NAME")]
    pub owner: Option<String>,
}

#[derive(Debug, Args, Clone)]
#[command(
    after_help = "Example:\n  lith queue replay --log state/task_queue.jsonl --receipts receipts.log --json"
)]
pub struct ReplayArgs {
    /// The queue event log (JSON Lines).
    #[arg(long, value_name = "FILE")]
    pub log: PathBuf,
    /// Also cross-check every operation against this receipts log.
    #[arg(long, value_name = "FILE")]
    pub receipts: Option<PathBuf>,
    /// Stop at the first corrupt line or torn tail (exit 4).
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Subcommand)]
pub enum ReceiptsCommand {
    /// Parse a receipts log against the receipts contract; exit 0 when no line has a
    /// finding, else 2.
    Check(ReceiptsCheckArgs),
}

#[derive(Debug, Args, Clone)]
#[command(
    after_help = "Example:\n  lith receipts check receipts.log --contract contracts/receipts.v2.contract.lisp"
)]
pub struct ReceiptsCheckArgs {
    /// The receipts log.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The contract (.lisp) [default: the built-in receipts.v2 contract].
    #[arg(long, value_name = "FILE")]
    pub contract: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LockChoice {
    /// Exit 75 at once if another writer holds the lock.
    Fail,
    /// Wait up to --lock-timeout seconds, then exit 75.
    Wait,
}

#[derive(Debug, Args, Clone)]
pub struct LockArgs {
    /// What to do when another writer holds the lock: the bundle root's
    /// `.runtime.lock` for commit and reindex, `<log>.lock` for the queue.
    #[arg(long, value_enum, default_value = "fail")]
    pub lock: LockChoice,
    /// Seconds to wait with --lock wait.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub lock_timeout: u64,
}

impl LockArgs {
    pub fn mode(&self) -> crate::bundle::lock::LockMode {
        match self.lock {
            LockChoice::Fail => crate::bundle::lock::LockMode::Fail,
            LockChoice::Wait => crate::bundle::lock::LockMode::Wait(
                std::time::Duration::from_secs(self.lock_timeout),
            ),
        }
    }
}

#[derive(Debug, Args, Clone)]
#[command(
    after_help = "Example:\n  lith commit out/2026-11-20T0200-a41f --expect summary.json --lock wait"
)]
pub struct CommitArgs {
    #[command(flatten)]
    pub jobs: JobsArg,
    /// The finished run folder (`out/<run_id>/`).
    #[arg(value_name = "RUN_DIR")]
    pub run_dir: PathBuf,
    /// An artifact the run should have produced (bundle-relative); absent ones are
    /// recorded in missing[] and make the index status partial. Repeatable.
    #[arg(long, value_name = "PATH")]
    pub expect: Vec<String>,
    /// Write repository-relative paths, relative to this folder [default: bundle-relative].
    #[arg(long, value_name = "DIR")]
    pub repo_root: Option<PathBuf>,
    /// Leave LATEST alone.
    #[arg(long)]
    pub no_latest: bool,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Args, Clone)]
#[command(
    after_help = "Example:\n  lith reindex out/ --strict\n  lith reindex out/2026-11-19T0200-9c2e --repair"
)]
#[command(group(clap::ArgGroup::new("action").required(true).args(["strict", "repair"])))]
pub struct ReindexArgs {
    #[command(flatten)]
    pub jobs: JobsArg,
    /// A run folder, or a bundle root resolved through LATEST.
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    /// Verify the index against the files; change nothing (exit 0 or 2).
    #[arg(long)]
    pub strict: bool,
    /// Rewrite the index from the files and write repair_log.json (exit 0 when written).
    #[arg(long)]
    pub repair: bool,
    /// Repository root that the index's repository-relative paths start from.
    #[arg(long, value_name = "DIR")]
    pub repo_root: Option<PathBuf>,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Args, Clone)]
#[command(after_help = "Example:\n  lith promote out/ --require-promotable")]
pub struct PromoteArgs {
    #[command(flatten)]
    pub jobs: JobsArg,
    /// A run folder, or a bundle root resolved through LATEST.
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    /// Where to write the packet [default: <bundle root>/promotion_packet.json].
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Write nothing and exit 2, naming the reasons, unless the run is promotable.
    #[arg(long)]
    pub require_promotable: bool,
    /// Make the packet's pointers relative to this folder [default: the current folder].
    #[arg(long, value_name = "DIR")]
    pub repo_root: Option<PathBuf>,
    /// A decision-stage artifact that must be present (repeatable) [default:
    /// runtime_results.json, runtime_events.normalized.json, expected_matrix.json].
    #[arg(long, value_name = "NAME")]
    pub decision_stage_artifact: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct BuildArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
    #[command(flatten)]
    pub jobs: JobsArg,
    /// Output folder [default: (site (out …)) from the manifest, else `site`].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Check existence and sizes only; skip digests.
    #[arg(long)]
    pub fast: bool,
}

#[derive(Debug, Args, Clone)]
#[command(
    after_help = "Example:\n  lith build --out site --previous site --summary \"$GITHUB_STEP_SUMMARY\" --junit junit.xml\n  lith build --partition 2/4 --out partial-2.json"
)]
pub struct BuildCmdArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    /// Verify only partition K of N (1-based) and write its partial report to --out
    /// [default: lith-partial-K-of-N.json] instead of a site. Exits 0 once written:
    /// `lith merge` of all N partial reports decides the verdict. Each run falls in
    /// one partition by a hash of its root and folder name, so N jobs started on the
    /// same checkout cover every run once.
    #[arg(long, value_name = "K/N", value_parser = parse_partition,
          conflicts_with_all = ["summary", "junit", "annotations", "single_file", "previous", "history", "flaky_is_failure"])]
    pub partition: Option<crate::pipeline::Partition>,
    #[command(flatten)]
    pub previous: PreviousArg,
    #[command(flatten)]
    pub outputs: ReportOutputs,
    #[command(flatten)]
    pub memory: ReportMemoryArg,
    /// Also attest every run into this folder (outside --out): per run
    /// runs/<page>/statement.json, envelope.dsse.json and SHA256SUMS, and
    /// build.statement.json with build.dsse.json for the whole build. Each run page
    /// links its envelope and says whether it is signed.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["partition", "fast"])]
    pub attest: Option<PathBuf>,
    /// Sign the attestations with this Ed25519 private key (PKCS#8 PEM).
    #[arg(long, value_name = "PEM", requires = "attest")]
    pub key: Option<PathBuf>,
    /// Read and hash every run. Without it, a run whose folder is exactly as the
    /// previous build into --out saw it (every entry's inode, size, and modification
    /// and change times, kept in .<out>.lith-verified beside --out) is taken from
    /// that build's report.json. Use it when --out comes from another machine or
    /// the storage itself is suspect.
    #[arg(long, conflicts_with = "partition")]
    pub rehash: bool,
}

fn parse_partition(s: &str) -> Result<crate::pipeline::Partition, String> {
    crate::pipeline::Partition::parse(s)
}

/// What a build, merge or render writes for a CI job besides the site.
#[derive(Debug, Args, Clone, Default)]
pub struct ReportOutputs {
    /// Also write a Markdown summary for a CI job page (for GitHub Actions, pass
    /// "$GITHUB_STEP_SUMMARY"): the verdict, a table per section, the runs and phases
    /// that fell short (linked when the manifest sets (site (base-url …))), and the
    /// findings; kept under 1 MiB, saying how many were left out. Appended to, as
    /// CI step summaries are.
    #[arg(long, value_name = "PATH")]
    pub summary: Option<PathBuf>,
    /// Also write a JUnit XML report for a CI's test tab: one testsuite per section
    /// (bundles, queue, receipts, gates, dod, drift, workspace), one testcase per
    /// run, phase or gate; a check that fell short is a <failure> naming its finding,
    /// an unreadable input an <error>.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Also print GitHub Actions workflow commands (::error / ::warning) on stdout
    /// for the findings that name a file, at most 50, saying how many were left out.
    #[arg(long)]
    pub annotations: bool,
    /// Also write the report as one self-contained HTML file (CSS, script and data
    /// inline; it opens from file:// or as a mail attachment): the overview, the
    /// changes, every run in a searchable table, and the details of the runs that
    /// fail or changed.
    #[arg(long, value_name = "PATH")]
    pub single_file: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
#[command(after_help = "Example:\n  lith merge partials/*.json --out site --junit junit.xml")]
pub struct MergeArgs {
    #[command(flatten)]
    pub jobs: JobsArg,
    /// The partial reports that `lith build --partition K/N` wrote, one per partition.
    #[arg(value_name = "PARTIAL", required = true)]
    pub parts: Vec<PathBuf>,
    /// Output folder of the site.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub previous: PreviousArg,
    #[command(flatten)]
    pub outputs: ReportOutputs,
    #[command(flatten)]
    pub memory: ReportMemoryArg,
}

/// `--previous` and `--history`: what earlier builds a build is compared with.
#[derive(Debug, Args, Clone, Default)]
pub struct PreviousArg {
    /// Carry the build history over from a previous history.jsonl, or the site
    /// folder that holds one; this build's line is added and the newest
    /// --history-limit lines are kept in the site's history.jsonl. The overview
    /// charts them, and runs, phases and gates whose state flipped twice within the
    /// kept lines are marked flaky. A path that does not exist is a warning (the
    /// history starts with this build); a line lith cannot read is an error.
    #[arg(long, value_name = "HISTORY|SITE")]
    pub history: Option<PathBuf>,
    /// How many builds history.jsonl keeps, this one included: fewer when their
    /// lines would hold more than 96 MiB (a history.cut warning says so).
    #[arg(long, value_name = "N", default_value_t = crate::report::history::DEFAULT_LIMIT,
          value_parser = clap::builder::TypedValueParser::map(
              clap::value_parser!(u16).range(1..), usize::from))]
    pub history_limit: usize,
    /// Count a flaky run, phase or gate as a failure (exit 2); without it a flaky
    /// item is a warning that does not change the exit code.
    #[arg(long)]
    pub flaky_is_failure: bool,
    /// Compare with a previous build: its report.json, or the site folder that holds
    /// it (any older build, not only the last one; for a nightly job, typically the
    /// site this build is about to replace). report.json gets a `changes` object and
    /// the site a Changes page, shown first on the overview. A path that does not
    /// exist is a warning (the first build has nothing to compare with); a file that
    /// is not a report lith wrote is an error.
    #[arg(long, value_name = "REPORT|SITE")]
    pub previous: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
#[command(
    after_help = "Example:\n  lith diff last-night/report.json site/\n  lith diff old-site new-site --json | jq '.counts'"
)]
pub struct DiffArgs {
    /// The older build: a report.json or a site folder.
    #[arg(value_name = "OLD")]
    pub old: PathBuf,
    /// The newer build: a report.json or a site folder.
    #[arg(value_name = "NEW")]
    pub new: PathBuf,
    #[command(flatten)]
    pub memory: ReportMemoryArg,
}

#[derive(Debug, Args, Clone)]
#[command(after_help = "Example:\n  lith render site/report.json --out review-site")]
pub struct RenderArgs {
    #[command(flatten)]
    pub jobs: JobsArg,
    /// A report.json that lith wrote, or the site folder that holds it.
    #[arg(value_name = "REPORT")]
    pub report: PathBuf,
    /// Output folder of the site.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub outputs: ReportOutputs,
    #[command(flatten)]
    pub memory: ReportMemoryArg,
}

#[derive(Debug, Args, Clone)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Example:\n  lith attest out/2026-11-20T0200-a41f --key signing.pem --out attestation\n  lith attest verify attestation/envelope.dsse.json --pubkey signing.pub.pem --bundle out/2026-11-20T0200-a41f"
)]
pub struct AttestCmd {
    #[command(subcommand)]
    pub verify: Option<AttestCommand>,
    #[command(flatten)]
    pub attest: AttestArgs,
}

#[derive(Debug, Subcommand, Clone)]
pub enum AttestCommand {
    /// Check an envelope offline: its Ed25519 signature over the DSSE encoding and,
    /// with --bundle, every subject's sha256 against the files.
    ///
    /// Exits 0 when the signature (and every subject) matches, 2 when the
    /// signature or a subject does not (or the envelope is unsigned), 4 when the
    /// envelope, the key or the bundle cannot be read.
    Verify(AttestVerifyArgs),
}

#[derive(Debug, Args, Clone)]
pub struct AttestArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
    #[command(flatten)]
    pub jobs: JobsArg,
    /// A run folder (`out/<run_id>/`) or a bundle root (`out/`, resolved through LATEST).
    #[arg(value_name = "BUNDLE", required = true)]
    pub bundle: Option<PathBuf>,
    /// Write statement.json, envelope.dsse.json and SHA256SUMS into this folder.
    #[arg(long, value_name = "DIR", default_value = "attestation")]
    pub out: PathBuf,
    /// Sign with this Ed25519 private key (PKCS#8 PEM, as `openssl genpkey
    /// -algorithm ed25519` writes); without it the envelope has no signature.
    #[arg(long, value_name = "PEM")]
    pub key: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
#[command(
    after_help = "Example:\n  lith attest verify attestation/envelope.dsse.json --pubkey signing.pub.pem\n  lith attest verify envelope.dsse.json --pubkey signing.pub.pem --bundle out/2026-11-20T0200-a41f --require-passed"
)]
pub struct AttestVerifyArgs {
    /// The DSSE envelope (JSON) to check.
    #[arg(value_name = "ENVELOPE")]
    pub envelope: PathBuf,
    /// The Ed25519 public key (PEM, `-----BEGIN PUBLIC KEY-----`).
    #[arg(long, value_name = "PEM")]
    pub pubkey: PathBuf,
    /// Also re-hash every subject in this run folder, each file opened beneath it.
    #[arg(long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// Exit 2 unless the statement's verificationResult is PASSED.
    #[arg(long)]
    pub require_passed: bool,
}

#[derive(Debug, Args, Clone)]
#[command(
    after_help = "Example:\n  lith verify out/            (the run LATEST names)\n  lith verify out/2026-11-20T0200-a41f --json"
)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub jobs: JobsArg,
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

impl Command {
    /// The manifest a command reads (the default when it reads none) and its
    /// `--jobs`.
    fn manifest_and_jobs(&self) -> (PathBuf, Option<u16>) {
        let none = || PathBuf::from("manifest.lith");
        match self {
            Command::Build(a) => (a.build.manifest.manifest.clone(), a.build.jobs.jobs),
            Command::Serve(a) => (a.build.manifest.manifest.clone(), a.build.jobs.jobs),
            Command::Verify(a) => (none(), a.jobs.jobs),
            Command::Commit(a) => (none(), a.jobs.jobs),
            Command::Reindex(a) => (none(), a.jobs.jobs),
            Command::Promote(a) => (none(), a.jobs.jobs),
            Command::Merge(a) => (none(), a.jobs.jobs),
            Command::Render(a) => (none(), a.jobs.jobs),
            Command::Queue(QueueCommand::Enqueue(a)) => (a.files.manifest.clone(), None),
            Command::Queue(QueueCommand::Dequeue(a)) => (a.files.manifest.clone(), None),
            Command::Queue(QueueCommand::Replay(_)) => (none(), None),
            Command::Receipts(_) => (none(), None),
            Command::Gate(GateCommand::PushTruth(m)) => (m.manifest.clone(), None),
            Command::Dod(a) => (a.manifest.manifest.clone(), None),
            Command::Drift(a) => (a.manifest.manifest.clone(), None),
            Command::Run(a) => (a.manifest.manifest.clone(), None),
            Command::Attest(a) => (a.attest.manifest.manifest.clone(), a.attest.jobs.jobs),
            Command::Completions(_) | Command::Man(_) | Command::Diff(_) => (none(), None),
        }
    }
}

fn completions(shell: clap_complete::Shell) -> anyhow::Result<i32> {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "lith", &mut out);
    crate::cmd::print_stdout(&String::from_utf8_lossy(&out))?;
    Ok(exit::OK)
}

fn man(out: Option<&std::path::Path>) -> anyhow::Result<i32> {
    use clap::CommandFactory;
    let cmd = Cli::command();
    match out {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            clap_mangen::generate_to(cmd, dir)?;
        }
        None => {
            let mut buf = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut buf)?;
            crate::cmd::print_stdout(&String::from_utf8_lossy(&buf))?;
        }
    }
    Ok(exit::OK)
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
    let (manifest, jobs) = cli.command.manifest_and_jobs();
    let global = GlobalArgs {
        manifest,
        json: cli.common.json,
        quiet: cli.common.quiet,
        verbose: cli.common.verbose,
    };
    if let Some(n) = jobs {
        // Only fails if a pool already exists (tests calling run twice): harmless.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n as usize)
            .build_global();
    }
    let result = match &cli.command {
        Command::Build(a) => crate::cmd::build::execute(&global, a),
        Command::Verify(a) => crate::cmd::verify::execute(&global, a),
        Command::Commit(a) => crate::cmd::commit::execute(&global, a),
        Command::Reindex(a) => crate::cmd::reindex::execute(&global, a),
        Command::Promote(a) => crate::cmd::promote::execute(&global, a),
        Command::Queue(q) => crate::cmd::queue::execute(&global, q),
        Command::Receipts(ReceiptsCommand::Check(a)) => crate::cmd::receipts::execute(&global, a),
        Command::Gate(GateCommand::PushTruth(_)) => crate::cmd::gate::execute(&global),
        Command::Serve(a) => crate::cmd::serve::execute(&global, a),
        Command::Dod(a) => crate::cmd::dod::execute(&global, a),
        Command::Drift(_) => crate::cmd::drift::execute(&global),
        Command::Completions(a) => completions(a.shell),
        Command::Man(a) => man(a.out.as_deref()),
        Command::Run(a) => crate::cmd::run::execute(&global, a),
        Command::Merge(a) => crate::cmd::merge::execute(&global, a),
        Command::Render(a) => crate::cmd::merge::render(&global, a),
        Command::Diff(a) => crate::cmd::merge::diff(&global, a),
        Command::Attest(a) => crate::cmd::attest::execute(&global, a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            crate::cmd::print_error(&e);
            exit::of_error(&e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_powers_of_1024_within_their_range() {
        for (given, bytes) in [
            ("512M", 512 << 20),
            ("2G", 2 << 30),
            ("2GiB", 2 << 30),
            ("300 mb", 300 << 20),
            ("1048576", 1 << 20),
            ("4096k", 4 << 20),
            ("1024G", 1 << 40),
        ] {
            assert_eq!(parse_size(given), Ok(bytes), "{given}");
        }
        for given in ["", "M", "lots", "1.5G", "-1G", "2T", "2 G B"] {
            let e = parse_size(given).unwrap_err();
            assert!(e.contains("512M or 2G"), "{given}: {e}");
        }
        for given in ["0", "1K", "1023K", "1025G", "99999999999999999999G"] {
            let e = parse_size(given).unwrap_err();
            assert!(
                e.contains("from 1M to 1024G") || e.contains("512M or 2G"),
                "{given}: {e}"
            );
        }
    }

    /// The README's usage block, a line per command: a stranger reads the flags
    /// there first, so it names every flag each command takes and no other.
    #[test]
    fn the_readme_usage_names_every_flag_of_every_command() {
        use clap::CommandFactory;
        use std::collections::{BTreeMap, BTreeSet};
        let readme = include_str!("../README.md");
        let block = readme
            .split_once("## Usage\n\n```\n")
            .and_then(|(_, rest)| rest.split_once("```"))
            .expect("README.md has a usage block")
            .0;
        // Each command's path (`attest verify`) and the long flags its lines name.
        let mut documented: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for line in block.lines() {
            let words: Vec<&str> = line
                .strip_prefix("lith ")
                .expect("every line of the usage block is a lith command")
                .split_whitespace()
                .collect();
            let path = words
                .iter()
                .take_while(|w| w.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'))
                .filter(|w| !w.starts_with('-'))
                .copied()
                .collect::<Vec<_>>()
                .join(" ");
            let flags = documented.entry(path).or_default();
            // `--name` wherever it stands in a word (`[--out`, `-o|--output`); a
            // bare `--` (before a command to run) names no flag.
            for (_, after) in line.match_indices("--").map(|(i, _)| line.split_at(i + 2)) {
                let end = after
                    .find(|c: char| !(c.is_ascii_lowercase() || c == '-'))
                    .unwrap_or(after.len());
                if end > 0 {
                    flags.insert(after[..end].to_string());
                }
            }
        }
        // What clap accepts: each command's own long flags, and whether it runs on
        // its own (not only as the group of `queue enqueue`, …); the global flags
        // (`--json`, `--quiet`, `--verbose`) may be named anywhere.
        fn walk(
            c: &clap::Command,
            path: &str,
            out: &mut BTreeMap<String, (BTreeSet<String>, bool)>,
        ) {
            let own: BTreeSet<String> = c
                .get_arguments()
                .filter(|a| !a.is_global_set() && !a.is_hide_set())
                .filter_map(|a| a.get_long().map(str::to_string))
                .filter(|l| l != "help" && l != "version")
                .collect();
            let leaf = c.get_subcommands().next().is_none();
            if !path.is_empty() {
                out.insert(
                    path.to_string(),
                    (own, leaf || c.get_positionals().next().is_some()),
                );
            }
            for s in c.get_subcommands().filter(|s| s.get_name() != "help") {
                let p = if path.is_empty() {
                    s.get_name().to_string()
                } else {
                    format!("{path} {}", s.get_name())
                };
                walk(s, &p, out);
            }
        }
        let mut accepted = BTreeMap::new();
        walk(&Cli::command(), "", &mut accepted);
        let globals: BTreeSet<String> = Cli::command()
            .get_arguments()
            .filter(|a| a.is_global_set())
            .filter_map(|a| a.get_long().map(str::to_string))
            .collect();
        let mut wrong = Vec::new();
        for (path, flags) in &documented {
            let Some((own, _)) = accepted.get(path) else {
                wrong.push(format!("`lith {path}` is not a command"));
                continue;
            };
            for f in flags
                .iter()
                .filter(|f| !own.contains(*f) && !globals.contains(*f))
            {
                wrong.push(format!("`lith {path}` takes no --{f}"));
            }
        }
        for (path, (own, runs_alone)) in &accepted {
            match documented.get(path) {
                None if *runs_alone => wrong.push(format!("`lith {path}` has no line")),
                None => {}
                Some(flags) => {
                    for f in own.iter().filter(|f| !flags.contains(*f)) {
                        wrong.push(format!("`lith {path}`'s line does not name --{f}"));
                    }
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "README.md's usage block:\n{}",
            wrong.join("\n")
        );
    }

    #[test]
    fn the_default_limits_are_the_ones_lith_always_had() {
        let d = crate::report::ReadLimits::DEFAULT;
        assert_eq!((d.held, d.values, d.bytes), (224 << 20, 1 << 24, 1 << 30));
        let big = crate::report::ReadLimits::holding(2 << 30);
        assert_eq!((big.values, big.bytes), ((2 << 30) / 14, 8 << 30));
        assert_eq!(ReportMemoryArg::default().limits(), d);
    }
}
