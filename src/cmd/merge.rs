//! `lith merge PARTIAL… --out DIR` and `lith render REPORT --out DIR`: sites from
//! reports that were already gathered, with no manifest and no input read again.

use std::io::Read;

use anyhow::Context;
use std::path::Path;

use crate::cli::{DiffArgs, GlobalArgs, MergeArgs, PreviousArg, RenderArgs};
use crate::exit::Usage;
use crate::pipeline::{self, PartialReport};
use crate::report::{self, ReadLimits, Report};

pub fn execute(g: &GlobalArgs, a: &MergeArgs) -> anyhow::Result<i32> {
    let limits = a.memory.limits();
    // The parts are held together, so they share one count: together they hold at
    // most what one report may.
    let parts = crate::held::within(|| {
        let mut parts = Vec::with_capacity(a.parts.len());
        for path in &a.parts {
            let part: PartialReport =
                read_json(path, "a partial report of `lith build --partition`", limits)?;
            parts.push((crate::fsutil::slash_path(path), part));
        }
        anyhow::Ok(parts)
    })?;
    let past = load_past(g, &a.previous, limits)?;
    let mut report = pipeline::merge(parts)?;
    let changes = apply_past(past, &a.previous, &mut report);
    super::build::publish(g, &mut report, &a.out, &a.outputs, changes)?;
    Ok(super::exit_with(report))
}

/// The file `name` of the site folder `path`, or `path` itself when it is a file
/// (`report.json`, `history.jsonl`).
fn in_site(path: &Path, name: &str) -> std::path::PathBuf {
    if path.is_dir() {
        path.join(name)
    } else {
        path.to_path_buf()
    }
}

/// The report.json at `path`, or in the site folder `path`.
fn report_path(path: &Path) -> std::path::PathBuf {
    in_site(path, "report.json")
}

/// Reads a report.json that lith wrote (or the one in a site folder), refusing
/// another schema version. Another lith's report (`lith.report/vN`) is named as
/// such, not by where its shape first differs, with what to do.
pub fn read_report(path: &Path, limits: ReadLimits) -> anyhow::Result<Report> {
    let path = report_path(path);
    match read_this_lith_report(&path, limits)? {
        Ok(report) => Ok(report),
        Err(version) => Err(other_schema(&path, &version)),
    }
}

/// What errors call a report that lith reads back.
const REPORT: &str = "a report.json that lith wrote";

/// The report at `path` (a report.json), or the schema version it has instead of
/// this lith's ([`this_lith`]).
fn read_this_lith_report(
    path: &Path,
    limits: ReadLimits,
) -> anyhow::Result<Result<Report, String>> {
    let read = read_json::<Report>(path, REPORT, limits);
    let version = match &read {
        Ok(report) => Some(report.schema_version.clone()),
        Err(_) => schema_of(path, limits),
    };
    this_lith(path, version, read)
}

/// The one rule for a report read back with the schema version `version`: what
/// was read when that is this lith's; the version when it is another, if the rest
/// reads, or if it does not and the version is another lith's (`lith.report/vN`);
/// else why it does not read.
fn this_lith<T>(
    path: &Path,
    version: Option<String>,
    read: anyhow::Result<T>,
) -> anyhow::Result<Result<T, String>> {
    match (version, read) {
        (Some(v), Ok(t)) if v == report::SCHEMA_VERSION => Ok(Ok(t)),
        (Some(v), Ok(_)) => Ok(Err(v)),
        (Some(v), Err(_)) if v != report::SCHEMA_VERSION && report_number(&v).is_some() => {
            Ok(Err(v))
        }
        (_, Err(e)) => Err(e),
        (None, Ok(_)) => Err(Usage(format!(
            "{}: not {REPORT}: it has no schema_version",
            path.display()
        ))
        .into()),
    }
}

/// The usage error for a report of schema `version`, with what to do about it.
fn other_schema(path: &Path, version: &str) -> anyhow::Error {
    let what = match report_number(version) {
        Some(_) if older(version) => {
            ": written by an older lith; build again with this one for a report it reads"
        }
        Some(_) => ": written by a newer lith; read it with that one",
        None => "",
    };
    Usage(format!(
        "{}: schema_version is {version:?}; this lith reads {:?}{what}",
        path.display(),
        report::SCHEMA_VERSION
    ))
    .into()
}

/// The `schema_version` of a JSON document, when it has one.
fn schema_of(path: &Path, limits: ReadLimits) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Version {
        schema_version: String,
    }
    read_json::<Version>(path, "a report", limits)
        .ok()
        .map(|v| v.schema_version)
}

/// N of a `lith.report/vN` schema version.
fn report_number(version: &str) -> Option<u32> {
    version.strip_prefix("lith.report/v")?.parse().ok()
}

/// True for `lith.report/vN` with N below this lith's.
fn older(version: &str) -> bool {
    report_number(version)
        .zip(report_number(report::SCHEMA_VERSION))
        .is_some_and(|(a, b)| a < b)
}

/// What earlier builds left: the report `--previous` names and the lines of the
/// `--history` given, read before anything is written (either may be the very site
/// this build replaces).
pub struct Past {
    previous: Option<PreviousReport>,
    history: report::history::Read,
}

/// A path given to `--previous` or `--history` that does not exist yet: a warning.
fn absent(g: &GlobalArgs, flag: &str, path: &Path, file: &Path, what: &str) -> bool {
    if std::fs::symlink_metadata(file).is_ok() {
        return false;
    }
    let nothing = if file == path {
        "no such file or folder".to_string()
    } else {
        format!(
            "the folder holds no {}",
            file.file_name().unwrap_or_default().to_string_lossy()
        )
    };
    warn_past(
        g,
        flag,
        path,
        &format!("{nothing}; {what} (expected on a first build)"),
    );
    true
}

/// A warning about what `--previous` or `--history` named.
fn warn_past(g: &GlobalArgs, flag: &str, path: &Path, what: &str) {
    crate::cmd::warn(
        g.quiet,
        &format!("{flag} {}: {what}", crate::fsutil::slash_path(path)),
    );
}

/// `--previous PATH`, as errors about it begin.
fn previous_flag(path: &Path) -> String {
    format!("--previous {}", crate::fsutil::slash_path(path))
}

pub fn load_past(g: &GlobalArgs, a: &PreviousArg, limits: ReadLimits) -> anyhow::Result<Past> {
    let previous = match &a.previous {
        Some(path)
            if !absent(
                g,
                "--previous",
                path,
                &report_path(path),
                "nothing to compare with, so the report has no changes",
            ) =>
        {
            let file = report_path(path);
            let context = || previous_flag(path);
            match PreviousReport::open(&file, limits).with_context(context)? {
                Ok(report) => Some(report),
                // The first night after an upgrade: the report is lith's own, in the
                // older shape, so there is nothing this build can compare with.
                Err(version) if older(&version) => {
                    warn_past(
                        g,
                        "--previous",
                        path,
                        &format!(
                            "a report of schema {version:?}, written by an older lith; nothing to compare with, so the report has no changes (the next build compares with this one)"
                        ),
                    );
                    None
                }
                Err(version) => return Err(other_schema(&file, &version).context(context())),
            }
        }
        _ => None,
    };
    let history = match &a.history {
        Some(path) => {
            let file = in_site(path, "history.jsonl");
            if absent(
                g,
                "--history",
                path,
                &file,
                "the history starts with this build",
            ) {
                report::history::Read::default()
            } else {
                report::history::read(&file, a.history_limit)
                    .map_err(|e| Usage(e.to_string()))
                    .with_context(|| format!("--history {}", crate::fsutil::slash_path(path)))?
            }
        }
        None => report::history::Read::default(),
    };
    Ok(Past { previous, history })
}

/// Adds to a settled report what the past says: the history with this build last,
/// and a finding per flaky item (a warning, or partial with `--flaky-is-failure`),
/// then settles the verdict again. Returns the comparison with `--previous`, which
/// the site makes while it writes the run pages ([`crate::site::Changes`]): the
/// changes move no verdict.
pub fn apply_past(
    past: Past,
    a: &PreviousArg,
    report: &mut Report,
) -> crate::site::Changes<'static> {
    use crate::finding::{Code, Finding, Severity};
    let mut history = report::history::extend(report, past.history.entries, a.history_limit);
    history.cut += past.history.cut;
    if history.cut > 0 {
        report.findings.push(Finding::new(
            Code::HistoryCut,
            Severity::Warning,
            format!(
                "history.jsonl: {} line(s) left out, the oldest or one too large, to keep the \
                 history within the {} MiB lith holds of it; flaky items are judged over the {} \
                 kept",
                history.cut,
                report::history::MAX_HELD_BYTES >> 20,
                history.entries.len()
            ),
        ));
    }
    let severity = if a.flaky_is_failure {
        Severity::Partial
    } else {
        Severity::Warning
    };
    for f in &history.flaky {
        report.findings.push(Finding::new(
            Code::HistoryFlaky,
            severity,
            format!(
                "{} is flaky: it changed {} times over the last {} build(s) ({})",
                f.item,
                f.flips,
                history.entries.len(),
                f.states
            ),
        ));
    }
    report.findings.sort();
    report.settle_verdict();
    if let Some(line) = history.entries.last_mut() {
        line.verdict = report.verdict.label;
    }
    report.history = Some(history);
    let (prev, given) = (past.previous?, a.previous.clone()?);
    Some(Box::new(move |report: &Report| {
        prev.compare(report).with_context(|| previous_flag(&given))
    }))
}

/// `lith diff OLD NEW`.
pub fn diff(g: &GlobalArgs, a: &DiffArgs) -> anyhow::Result<i32> {
    let limits = a.memory.limits();
    let new = read_report(&a.new, limits)?;
    let path = report_path(&a.old);
    let changes = match PreviousReport::open(&path, limits)? {
        Ok(old) => old.compare(&new)?,
        Err(version) => return Err(other_schema(&path, &version)),
    };
    let regressed = changes.counts.newly_failing > 0;
    if g.json {
        crate::cmd::print_json(&serde_json::to_value(&changes)?)?;
    } else if !g.quiet {
        crate::cmd::print_stdout(&report::changes::text(&changes, usize::MAX))?;
    }
    Ok(if regressed {
        crate::exit::PARTIAL
    } else {
        crate::exit::OK
    })
}

pub fn render(g: &GlobalArgs, a: &RenderArgs) -> anyhow::Result<i32> {
    let path = report_path(&a.report);
    let mut report = read_report(&a.report, a.memory.limits())?;
    let me = format!("lith {}", env!("CARGO_PKG_VERSION"));
    if report.generator != me {
        crate::cmd::warn(
            g.quiet,
            &format!(
                "{} was written by {}; {me} renders it with its own pages, so the site \
                 may differ from the one that build wrote",
                path.display(),
                report.generator
            ),
        );
    }
    super::build::publish(g, &mut report, &a.out, &a.outputs, None)?;
    Ok(super::exit_with(report))
}

/// Reads a JSON document lith wrote: a regular file within `limits` (its bytes, its
/// values, and what it holds), with line and column on a syntax error. Its
/// artifact rows share one copy of each path, as the rows a build verifies do (a
/// report of 100,000 runs of the same 13 files would otherwise hold 1.3 million
/// copies).
fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &str,
    limits: ReadLimits,
) -> anyhow::Result<T> {
    let file = open_counted(path, what, limits)?;
    crate::bundle::verify::PathInterner::default()
        .reading(|| crate::held::read_json((&file).take(limits.bytes), limits.held))
        .map_err(|e| not(path, what, e))
}

/// Opens a JSON document lith wrote and counts its values through the handle, which
/// is left at the start: a regular file, within the bytes and values of `limits`.
/// The count is a scan ([`crate::json_budget::scan_values`]), not a parse: the
/// typed read that follows checks the syntax, and holds no more values than the
/// scan counted in what it accepts. What is read through the handle next is the
/// file counted, even if lith has since replaced it (lith writes by renaming).
fn open_counted(path: &Path, what: &str, limits: ReadLimits) -> anyhow::Result<std::fs::File> {
    let (file, _) = open_sized(path, what, limits)?;
    let scanned = crate::json_budget::scan_values((&file).take(limits.bytes), limits.values)
        .map_err(|e| Usage(format!("{}: cannot read {what}: {e}", path.display())))?;
    if let Err(past) = scanned {
        let why = crate::json_budget::too_many_values(limits.values) + ReadLimits::RAISE;
        return Err(Usage(not_at(path, what, past.line, past.column, &why)).into());
    }
    std::io::Seek::rewind(&mut &file)?;
    Ok(file)
}

/// Opens a regular file of at most `limits.bytes`.
fn open_sized(path: &Path, what: &str, limits: ReadLimits) -> anyhow::Result<(std::fs::File, u64)> {
    let (file, meta) = crate::fsutil::open_regular(path)
        .map_err(|e| Usage(format!("{}: cannot read {what}: {e}", path.display())))?;
    if meta.len() > limits.bytes {
        anyhow::bail!(
            "{}: {} bytes is more than the {} bytes lith reads back{}",
            path.display(),
            meta.len(),
            limits.bytes,
            ReadLimits::RAISE
        );
    }
    Ok((file, meta.len()))
}

/// The usage error for a document that is not `what`, at its line and column.
fn not(path: &Path, what: &str, e: serde_json::Error) -> anyhow::Error {
    Usage(not_message(path, what, &e)).into()
}

/// What [`not`] says.
fn not_message(path: &Path, what: &str, e: &serde_json::Error) -> String {
    let why = crate::fsutil::strip_position(&e.to_string());
    not_at(path, what, e.line() as u64, e.column() as u64, &why)
}

/// A document that is not `what`, for `why`, at its line and column.
fn not_at(path: &Path, what: &str, line: u64, column: u64, why: &str) -> String {
    format!("{}:{line}:{column}: not {what}: {why}", path.display())
}

/// A report.json to compare with (`--previous`, the older side of `lith diff`). It
/// is read through when it is opened, before anything is built or written, and
/// read again through the same handle to compare once the new build is known, run
/// by run: it is never held whole ([`report::changes::compare`]), so its values are
/// not counted first; what the changes keep of it is capped instead.
pub struct PreviousReport {
    file: std::fs::File,
    path: std::path::PathBuf,
    limits: ReadLimits,
}

impl PreviousReport {
    /// The report at `path` (a report.json), or the schema version it has instead
    /// of this lith's: any version when the rest of it reads, only another lith's
    /// (`lith.report/vN`) when it does not.
    fn open(path: &Path, limits: ReadLimits) -> anyhow::Result<Result<PreviousReport, String>> {
        let (file, _) = open_sized(path, REPORT, limits)?;
        let this = PreviousReport {
            file,
            path: path.to_path_buf(),
            limits,
        };
        let (version, read) = report::changes::check(this.rewound()?);
        let read = read.map_err(|e| walk_not(path, REPORT, &e));
        Ok(this_lith(path, version, read)?.map(|()| this))
    }

    /// What changed from this report to `new`.
    fn compare(&self, new: &Report) -> anyhow::Result<report::changes::Changes> {
        report::changes::compare(self.rewound()?, new).map_err(|e| walk_not(&self.path, REPORT, &e))
    }

    /// The report's text from its start, through the handle it was opened by.
    fn rewound(&self) -> anyhow::Result<impl Read + '_> {
        std::io::Seek::rewind(&mut &self.file)
            .map_err(|e| anyhow::anyhow!("{}: {e}", self.path.display()))?;
        Ok((&self.file).take(self.limits.bytes))
    }
}

/// The usage error for a document walked ([`crate::json_walk`]) that is not
/// `what`, at its line and column.
fn walk_not(path: &Path, what: &str, e: &crate::json_walk::Error) -> anyhow::Error {
    Usage(not_at(path, what, e.line, e.column, &e.message)).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::verify::ArtifactCheck;

    /// A previous report gives the same changes each time it is read through its
    /// handle, and what is not a report is refused at its line and column.
    #[test]
    fn a_previous_report_compares_alike_each_time_and_is_refused_where_it_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        let new = crate::pipeline::demo_report();
        let mut old = new.clone();
        let run = &mut old.bundles.roots[0].runs[0];
        run.verification = crate::bundle::verify::Verification::Failed;
        let moved = run.run_id.clone();
        std::fs::write(&path, serde_json::to_vec_pretty(&old).unwrap()).unwrap();
        let previous = PreviousReport::open(&path, ReadLimits::DEFAULT)
            .unwrap()
            .unwrap();
        // Read twice through the one handle, as `lith build` does.
        let first = serde_json::to_value(previous.compare(&new).unwrap()).unwrap();
        assert_eq!(
            serde_json::to_value(previous.compare(&new).unwrap()).unwrap(),
            first
        );
        assert!(first["runs"].to_string().contains(&moved), "{first}");
        // A run whose verification is not one lith writes, on its line and at the
        // column serde_json gives reading the whole text.
        let text = std::fs::read_to_string(&path).unwrap();
        let bad = text.replacen("\"verification\": \"", "\"verification\": \"x", 1);
        std::fs::write(&path, &bad).unwrap();
        let line = bad[..bad.find("\"x").unwrap()].lines().count();
        let e = PreviousReport::open(&path, ReadLimits::DEFAULT)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(&format!("report.json:{line}:")), "{e}");
        assert!(e.contains("unknown variant `xfailed`"), "{e}");
    }

    #[test]
    fn rows_read_back_share_one_copy_of_each_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rows.json");
        let sha = "0".repeat(64);
        std::fs::write(
            &file,
            format!(r#"[["a.txt", 1, "{sha}"], ["b.txt", 2, "{sha}"], ["a.txt", 3, "{sha}"]]"#),
        )
        .unwrap();
        let rows: Vec<ArtifactCheck> = read_json(&file, "rows", ReadLimits::DEFAULT).unwrap();
        assert!(std::sync::Arc::ptr_eq(&rows[0].path, &rows[2].path));
        assert!(!std::sync::Arc::ptr_eq(&rows[0].path, &rows[1].path));
        assert_eq!((&*rows[2].path, rows[2].expected_size), ("a.txt", 3));
    }
}
