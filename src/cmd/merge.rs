//! `lith merge PARTIAL… --out DIR` and `lith render REPORT --out DIR`: sites from
//! reports that were already gathered, with no manifest and no input read again.

use std::io::Read;
use std::path::Path;

use crate::cli::{GlobalArgs, MergeArgs, RenderArgs};
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
    let report = pipeline::merge(parts)?;
    super::build::publish(g, &report, &a.out, &a.outputs)?;
    Ok(report.verdict.exit_code)
}

pub fn render(g: &GlobalArgs, a: &RenderArgs) -> anyhow::Result<i32> {
    let path = if a.report.is_dir() {
        a.report.join("report.json")
    } else {
        a.report.clone()
    };
    let report: Report = read_json(&path, "a report.json that lith wrote")?;
    if report.schema_version != report::SCHEMA_VERSION {
        return Err(Usage(format!(
            "{}: schema_version is {:?}; this lith renders {:?}",
            path.display(),
            report.schema_version,
            report::SCHEMA_VERSION
        ))
        .into());
    }
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
