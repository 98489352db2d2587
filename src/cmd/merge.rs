//! `lith merge PARTIAL… --out DIR` and `lith render REPORT --out DIR`: sites from
//! reports that were already gathered, with no manifest and no input read again.

use std::io::Read;

use anyhow::Context;
use std::path::Path;

use crate::cli::{DiffArgs, GlobalArgs, MergeArgs, PreviousArg, RenderArgs};
use crate::exit::Usage;
use crate::pipeline::{self, PartialReport};
use crate::report::{self, Report};

/// Largest report or partial report read back (it is held in memory whole).
pub const MAX_REPORT_BYTES: u64 = 4 * 1024 * 1024 * 1024;

pub fn execute(g: &GlobalArgs, a: &MergeArgs) -> anyhow::Result<i32> {
    let mut parts = Vec::with_capacity(a.parts.len());
    for path in &a.parts {
        let part: PartialReport = read_json(path, "a partial report of `lith build --partition`")?;
        parts.push((crate::fsutil::slash_path(path), part));
    }
    let previous = load_previous(g, &a.previous)?;
    let mut report = pipeline::merge(parts)?;
    if let Some(prev) = &previous {
        report.changes = Some(report::changes::compare(prev, &report));
    }
    super::build::publish(g, &report, &a.out, &a.outputs)?;
    Ok(report.verdict.exit_code)
}

/// The report.json at `path`, or in the site folder `path`.
fn report_path(path: &Path) -> std::path::PathBuf {
    if path.is_dir() {
        path.join("report.json")
    } else {
        path.to_path_buf()
    }
}

/// Reads a report.json that lith wrote (or the one in a site folder), refusing
/// another schema version.
pub fn read_report(path: &Path) -> anyhow::Result<Report> {
    let path = report_path(path);
    let report: Report = read_json(&path, "a report.json that lith wrote")?;
    if report.schema_version != report::SCHEMA_VERSION {
        return Err(Usage(format!(
            "{}: schema_version is {:?}; this lith reads {:?}",
            path.display(),
            report.schema_version,
            report::SCHEMA_VERSION
        ))
        .into());
    }
    Ok(report)
}

/// The build `--previous` names, read before anything is written (it may be the
/// site this build replaces). Absent: a warning and no comparison.
pub fn load_previous(g: &GlobalArgs, a: &PreviousArg) -> anyhow::Result<Option<Report>> {
    let Some(path) = &a.previous else {
        return Ok(None);
    };
    if std::fs::symlink_metadata(report_path(path)).is_err() {
        crate::cmd::warn(
            g.quiet,
            &format!(
                "--previous {}: no report.json there; nothing to compare with, so the \
                 report has no changes (expected on a first build)",
                crate::fsutil::slash_path(path)
            ),
        );
        return Ok(None);
    }
    read_report(path)
        .map(Some)
        .with_context(|| format!("--previous {}", crate::fsutil::slash_path(path)))
}

/// `lith diff OLD NEW`.
pub fn diff(g: &GlobalArgs, a: &DiffArgs) -> anyhow::Result<i32> {
    let old = read_report(&a.old)?;
    let new = read_report(&a.new)?;
    let changes = report::changes::compare(&old, &new);
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
    let report = read_report(&path)?;
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
    super::build::publish(g, &report, &a.out, &a.outputs)?;
    Ok(report.verdict.exit_code)
}

/// Reads a JSON document lith wrote: a regular file, at most [`MAX_REPORT_BYTES`],
/// with line and column on a syntax error.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> anyhow::Result<T> {
    let (file, meta) = crate::fsutil::open_regular(path)
        .map_err(|e| Usage(format!("{}: cannot read {what}: {e}", path.display())))?;
    if meta.len() > MAX_REPORT_BYTES {
        anyhow::bail!(
            "{}: {} bytes is more than the {MAX_REPORT_BYTES} bytes lith reads back",
            path.display(),
            meta.len()
        );
    }
    let reader = std::io::BufReader::with_capacity(1 << 20, file.take(MAX_REPORT_BYTES));
    let mut de = serde_json::Deserializer::from_reader(reader);
    let value = T::deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| {
            Usage(format!(
                "{}:{}:{}: not {what}: {}",
                path.display(),
                e.line(),
                e.column(),
                crate::fsutil::strip_position(&e.to_string())
            ))
        })?;
    Ok(value)
}
