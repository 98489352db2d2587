//! `--annotations`: GitHub Actions workflow commands (`::error file=…::…`) for the
//! findings that name a file, so a pull request shows them on the file itself.
//!
//! Values are escaped as the runner expects (`%`, CR and LF in messages; also `:`
//! and `,` in properties), so no input can end a command early or start a new
//! one. At most [`MAX_ANNOTATIONS`] are printed, errors first; a notice says how
//! many were left out.

use super::Report;
use crate::finding::Severity;

/// GitHub shows at most 50 annotations per job; more are dropped silently.
pub const MAX_ANNOTATIONS: usize = 50;

struct Annotation {
    level: &'static str,
    rank: u8,
    file: String,
    line: Option<(u64, Option<u64>)>,
    title: String,
    message: String,
}

/// The workflow commands for a report, one per line.
pub fn workflow_commands(report: &Report, cap: usize) -> String {
    let mut all: Vec<Annotation> = Vec::new();
    for f in report.all_findings() {
        let Some(file) = f.path.as_deref().filter(|p| !p.is_empty()) else {
            continue;
        };
        let (level, rank) = match f.severity {
            Severity::Error => ("error", 0),
            Severity::Designed | Severity::Partial => ("error", 1),
            Severity::Warning => ("warning", 2),
            Severity::Info => continue,
        };
        all.push(Annotation {
            level,
            rank,
            file: file.to_string(),
            line: f.line.map(|l| (l, f.column)),
            title: f.code.as_str().to_string(),
            message: f.message.clone(),
        });
    }
    // Manifest warnings carry `line:col: message`.
    for w in &report.manifest.warnings {
        let mut it = w.splitn(3, ':');
        let (Some(l), Some(c), Some(msg)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let (Ok(l), Ok(c)) = (l.parse(), c.parse()) else {
            continue;
        };
        all.push(Annotation {
            level: "warning",
            rank: 2,
            file: report.manifest.file.clone(),
            line: Some((l, Some(c))),
            title: "manifest".into(),
            message: msg.trim().to_string(),
        });
    }
    all.sort_by(|a, b| (a.rank, &a.file, a.line).cmp(&(b.rank, &b.file, b.line)));
    let mut out = String::new();
    for a in all.iter().take(cap) {
        out.push_str(&format!("::{} file={}", a.level, property(&a.file)));
        match a.line {
            Some((l, Some(c))) => out.push_str(&format!(",line={l},col={c}")),
            Some((l, None)) => out.push_str(&format!(",line={l}")),
            None => {}
        }
        out.push_str(&format!(
            ",title={}::{}\n",
            property(&a.title),
            data(&a.message)
        ));
    }
    if all.len() > cap {
        out.push_str(&format!(
            "::notice title=lith::{} more finding(s) not shown as annotations; see the report\n",
            all.len() - cap
        ));
    }
    out
}

/// Escapes a command's message.
fn data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a command's property value.
fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_input_can_break_out_of_its_command() {
        let hostile = "x\n::error::forged%0A\r,title=y::z";
        let d = data(hostile);
        assert!(!d.contains('\n') && !d.contains('\r'), "{d}");
        assert!(d.contains("%250A"), "a literal %0A stays literal: {d}");
        let p = property(hostile);
        assert!(!p.contains(',') && !p.contains(':'), "{p}");
    }
}
