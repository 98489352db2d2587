//! `history.jsonl`: one line per build, carried from build to build (`--history
//! PREV`), newest last, at most `--history-limit` lines. It feeds the overview's
//! trend charts and the **flaky** markers.
//!
//! Each line records the build's counts and which runs, phases and gates failed. To
//! stay small at 100,000 runs, a line names passing items only when they matter:
//! those that failed in a kept line. An item is **flaky** when, over the kept
//! lines, its recorded state changes at least twice (fail → pass → fail, or pass →
//! fail → pass once a failure is on record): a flip is never hidden by the latest
//! state, and CI can count flaky items as failures (`--flaky-is-failure`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;

use serde::Serialize;

use super::changes::{gate_standing, phase_standing, run_fails};
use super::{Report, VerdictLabel};

pub const HISTORY_VERSION: &str = "lith.history/v1";
/// `--history-limit` unless given.
pub const DEFAULT_LIMIT: usize = 50;
/// Longest history.jsonl read back, and longest line.
pub const MAX_HISTORY_BYTES: u64 = 256 * 1024 * 1024;

/// The counts a trend chart plots.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Counts {
    pub runs: usize,
    pub verified: usize,
    /// Runs failed, in progress, uncommitted or unreadable.
    pub not_verified: usize,
    pub artifacts: usize,
    pub artifacts_ok: usize,
    pub promotable: usize,
    pub phases_proven: usize,
    pub phases_short: usize,
}

/// One build, as one line of history.jsonl.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Entry {
    pub v: String,
    pub generated_at: String,
    pub verdict: VerdictLabel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    pub counts: Counts,
    /// Items that failed in this build: `run:<root>/<run_id>`, `phase:<id>`,
    /// `gate:<id>`.
    pub failing: BTreeSet<String>,
    /// Items that passed in this build and failed in a line kept when it was written.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub passing: BTreeSet<String>,
}

/// A run, phase or gate whose state flipped within the kept history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Flaky {
    pub item: String,
    /// How many times its recorded state changed.
    pub flips: usize,
    /// Its state in each kept build, oldest first: `fail`, `pass` or `-` (not on
    /// record).
    pub states: String,
}

/// The kept history (this build last) and what it says is flaky.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct History {
    pub limit: usize,
    pub entries: Vec<Entry>,
    pub flaky: Vec<Flaky>,
}

/// The key of a run in the history.
pub fn run_key(root: &str, run_id: &str) -> String {
    format!("run:{root}/{run_id}")
}

/// Every item of `r` with whether it fails, judged as the changes judge it.
fn items(r: &Report) -> BTreeMap<String, bool> {
    let mut out = BTreeMap::new();
    for root in &r.bundles.roots {
        for run in &root.runs {
            out.insert(run_key(&root.path, &run.run_id), run_fails(run));
        }
    }
    for (id, p) in &r.dod.phases {
        out.insert(format!("phase:{id}"), phase_standing(p).1);
    }
    if let Some(g) = &r.gates.push_truth {
        out.insert(format!("gate:{}", g.id), gate_standing(g).1);
    }
    out
}

/// This build's line, given the lines kept before it.
pub fn entry(r: &Report, kept: &[Entry]) -> Entry {
    let items = items(r);
    let ever_failed: BTreeSet<&String> = kept.iter().flat_map(|e| &e.failing).collect();
    let t = &r.bundles.totals;
    let (proven, partial, designed) = r.dod.counts();
    Entry {
        v: HISTORY_VERSION.to_string(),
        generated_at: r.generated_at.clone(),
        verdict: r.verdict.label,
        duration_ms: r.duration_ms,
        counts: Counts {
            runs: t.runs,
            verified: t.verified,
            not_verified: t.runs - t.verified,
            artifacts: t.artifacts,
            artifacts_ok: t.artifacts_ok,
            promotable: r
                .bundles
                .roots
                .iter()
                .flat_map(|root| &root.runs)
                .filter(|run| {
                    run.promotability
                        .as_ref()
                        .is_some_and(|p| p.promotable_decision_stage)
                })
                .count(),
            phases_proven: proven,
            phases_short: partial + designed,
        },
        failing: items
            .iter()
            .filter(|(_, fails)| **fails)
            .map(|(k, _)| k.clone())
            .collect(),
        passing: items
            .iter()
            .filter(|(k, fails)| !**fails && ever_failed.contains(k))
            .map(|(k, _)| k.clone())
            .collect(),
    }
}

/// The items whose recorded state changed at least twice over `entries`.
pub fn flaky(entries: &[Entry]) -> Vec<Flaky> {
    let mut all: BTreeSet<&String> = BTreeSet::new();
    for e in entries {
        all.extend(&e.failing);
        all.extend(&e.passing);
    }
    let mut out = Vec::new();
    for item in all {
        let states: Vec<Option<bool>> = entries
            .iter()
            .map(|e| {
                if e.failing.contains(item) {
                    Some(true)
                } else if e.passing.contains(item) {
                    Some(false)
                } else {
                    None
                }
            })
            .collect();
        let recorded: Vec<bool> = states.iter().flatten().copied().collect();
        let flips = recorded.windows(2).filter(|w| w[0] != w[1]).count();
        if flips >= 2 {
            out.push(Flaky {
                item: item.clone(),
                flips,
                states: states
                    .iter()
                    .map(|s| match s {
                        Some(true) => "fail",
                        Some(false) => "pass",
                        None => "-",
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
            });
        }
    }
    out
}

/// Why a previous history cannot be read. Each names the file and line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: cannot read the history: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}:{line}:{column}: not a line of history.jsonl ({reason}); remove the line or start a new history without --history"
    )]
    Line {
        path: String,
        line: usize,
        column: usize,
        reason: String,
    },
}

/// Reads a history.jsonl (every line must be one lith wrote), keeping its newest
/// `keep` lines: a long history costs the lines kept, not the lines read.
pub fn read(path: &std::path::Path, keep: usize) -> Result<Vec<Entry>, Error> {
    let label = crate::fsutil::slash_path(path);
    let io = |source| Error::Io {
        path: label.clone(),
        source,
    };
    let (file, meta) =
        crate::fsutil::open_regular(path).map_err(|e| io(std::io::Error::other(e.to_string())))?;
    if meta.len() > MAX_HISTORY_BYTES {
        return Err(io(std::io::Error::other(format!(
            "{} bytes is more than the {MAX_HISTORY_BYTES} bytes lith reads back",
            meta.len()
        ))));
    }
    let mut out = std::collections::VecDeque::new();
    // One budget of values for every line, counted before each is read.
    let limit = crate::cmd::merge::MAX_REPORT_VALUES;
    let left = std::cell::Cell::new(limit);
    let reader = std::io::BufReader::new(std::io::Read::take(file, MAX_HISTORY_BYTES));
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        let not = |e: serde_json::Error| Error::Line {
            path: label.clone(),
            line: i + 1,
            column: e.column(),
            reason: crate::fsutil::strip_position(&e.to_string()),
        };
        crate::json_budget::count_values(line.as_bytes(), &left, limit).map_err(not)?;
        let entry: Entry = serde_json::from_str(&line).map_err(not)?;
        if entry.v != HISTORY_VERSION {
            return Err(Error::Line {
                path: label.clone(),
                line: i + 1,
                column: 1,
                reason: format!("version {:?}, this lith reads {HISTORY_VERSION:?}", entry.v),
            });
        }
        if out.len() == keep {
            out.pop_front();
        }
        if keep > 0 {
            out.push_back(entry);
        }
    }
    Ok(out.into())
}

/// The history after this build: the previous lines, this build's, the newest
/// `limit` kept.
pub fn extend(r: &Report, previous: Vec<Entry>, limit: usize) -> History {
    let limit = limit.max(1);
    let mut entries = previous;
    // The new line is written against the lines that will be kept with it.
    let keep_before = limit - 1;
    if entries.len() > keep_before {
        entries.drain(..entries.len() - keep_before);
    }
    let line = entry(r, &entries);
    entries.push(line);
    let flaky = flaky(&entries);
    History {
        limit,
        entries,
        flaky,
    }
}

/// history.jsonl as written into the site.
pub fn jsonl(h: &History) -> String {
    let mut s = String::new();
    for e in &h.entries {
        s.push_str(&serde_json::to_string(e).expect("a history line serializes"));
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_keeps_the_newest_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let text: String = (0..5)
            .map(|i| {
                let mut e = line(&[], &[]);
                e.generated_at = format!("t{i}");
                serde_json::to_string(&e).unwrap() + "\n"
            })
            .collect();
        std::fs::write(&path, text).unwrap();
        let times = |keep| -> Vec<String> {
            read(&path, keep)
                .unwrap()
                .into_iter()
                .map(|e| e.generated_at)
                .collect()
        };
        assert_eq!(times(2), ["t3", "t4"]);
        assert_eq!(times(9).len(), 5);
        assert!(times(0).is_empty());
    }

    fn line(failing: &[&str], passing: &[&str]) -> Entry {
        Entry {
            v: HISTORY_VERSION.into(),
            generated_at: "t".into(),
            verdict: VerdictLabel::Ok,
            duration_ms: None,
            counts: Counts::default(),
            failing: failing.iter().map(|s| s.to_string()).collect(),
            passing: passing.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn an_item_that_flips_twice_is_flaky_whatever_its_latest_state() {
        let h = [
            line(&["run:out/a", "run:out/b", "run:out/c"], &[]),
            line(&["run:out/b", "run:out/c"], &["run:out/a"]),
            line(&["run:out/a", "run:out/c"], &["run:out/b"]),
            line(&["run:out/c"], &["run:out/a", "run:out/b"]),
        ];
        let got: Vec<(String, usize, String)> = flaky(&h)
            .into_iter()
            .map(|f| (f.item, f.flips, f.states))
            .collect();
        assert_eq!(
            got,
            [(
                "run:out/a".to_string(),
                3,
                "fail pass fail pass".to_string()
            )],
            "b was fixed once (one flip), c never passed: neither is flaky"
        );
        // Unrecorded builds are skipped, not counted as passes.
        let gaps = [
            line(&["phase:P"], &[]),
            line(&[], &[]),
            line(&[], &["phase:P"]),
            line(&["phase:P"], &[]),
        ];
        assert_eq!(flaky(&gaps)[0].states, "fail - pass fail");
    }
}
