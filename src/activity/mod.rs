//! The activity feed (SPEC §6): JSON Lines of operational-proof events and
//! heartbeats. [`parse_feed`] reads it (leniently or strictly), [`chain`] judges a
//! phase's started → completed → verified chain and its proof mode, [`drift`] is the
//! idle/heartbeat monitor, and [`run`] wraps a command so that it emits a real
//! `runtime_auto` chain.

pub mod chain;
pub mod drift;
mod fields;
pub mod run;

use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The keys every operational event carries (SPEC §6.1).
pub const TAXONOMY: [&str; 7] = [
    "phase_id",
    "emit_mode",
    "verifier_mode",
    "tool",
    "run_id",
    "ts_epoch_ms",
    "ts_utc",
];
/// The keys whose absence makes a chain event's taxonomy incomplete.
pub const REQUIRED_FOR_PROOF: [&str; 5] = [
    "emit_mode",
    "verifier_mode",
    "ts_epoch_ms",
    "tool",
    "run_id",
];

/// One event of the feed.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Event {
    /// 1-based line in the feed.
    pub line: usize,
    /// The first non-empty of `phase_id` and `phase`, trimmed; else `task_id`.
    pub phase_id: Option<String>,
    /// `task_id`, trimmed: the event also belongs to the phase it names, as the
    /// reference's fallback match has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    pub action: Option<String>,
    pub heartbeat: bool,
    /// Milliseconds since the epoch, from the first readable timestamp field.
    pub ts_ms: Option<i64>,
    pub emit_mode: Option<String>,
    pub verifier_mode: Option<String>,
    pub tool: Option<String>,
    pub run_id: Option<String>,
    pub status: Option<String>,
    pub evidence: Vec<String>,
    /// (path, claimed sha256) pairs.
    pub hashes: Vec<(String, String)>,
    /// Which taxonomy keys are present, one bit each in [`TAXONOMY`] order.
    #[serde(skip)]
    pub keys: u8,
    /// The line's `evidence` or `hashes` held more than one event keeps
    /// ([`fields::MAX_ITEMS`], [`fields::MAX_TEXT_BYTES`]): its phase is never proven
    /// on the part kept (`activity.evidence_omitted`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub evidence_cut: bool,
}

impl Event {
    /// The bytes this event holds, counted as [`MAX_KEPT_BYTES`] counts them: the
    /// struct and the text of its fields, lists and pairs.
    pub fn held_bytes(&self) -> usize {
        let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        std::mem::size_of::<Event>()
            + [
                &self.phase_id,
                &self.task_id,
                &self.action,
                &self.emit_mode,
                &self.verifier_mode,
                &self.tool,
                &self.run_id,
                &self.status,
            ]
            .into_iter()
            .map(text)
            .sum::<usize>()
            + self
                .evidence
                .iter()
                .map(|e| std::mem::size_of::<String>() + e.len())
                .sum::<usize>()
            + self
                .hashes
                .iter()
                .map(|(p, h)| 2 * std::mem::size_of::<String>() + p.len() + h.len())
                .sum::<usize>()
    }

    pub fn has(&self, key: &str) -> bool {
        TAXONOMY
            .iter()
            .position(|k| *k == key)
            .is_some_and(|i| self.keys & (1 << i) != 0)
    }
}

/// A line that is not a JSON object.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct BadLine {
    pub line: usize,
    pub message: String,
}

/// What a feed says, read line by line: the events of the phases asked for, at most
/// [`MAX_KEPT_EVENTS`] of them, and what drift needs of every event.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Feed {
    pub events: Vec<Event>,
    /// The first [`MAX_BAD_LINES`] lines that are not events.
    pub bad_lines: Vec<BadLine>,
    /// Lines that are not events past the listed ones.
    #[serde(default)]
    pub bad_lines_omitted: usize,
    /// `heartbeat.phase_id_forbidden`: heartbeats that carry a phase (of those kept),
    /// by line, in file order.
    pub forbidden_heartbeats: Vec<usize>,
    /// Events of the phases asked for that were not kept, past [`MAX_KEPT_EVENTS`]
    /// or [`MAX_KEPT_BYTES`].
    #[serde(default)]
    pub events_omitted: usize,
    /// The phases those events belong to: their chains are judged on part of them.
    #[serde(default)]
    pub omitted_phases: std::collections::BTreeSet<String>,
    /// Of every event, kept or not: the time of the latest functional one
    /// (`started`, `completed`, `verified`, `dispatch_*`, not a heartbeat)…
    #[serde(default)]
    pub last_activity_ms: Option<i64>,
    /// …of the latest heartbeat…
    #[serde(default)]
    pub last_heartbeat_ms: Option<i64>,
    /// …and the latest `runtime_auto` event with evidence: its time, line and
    /// evidence, and whether that was cut ([`Event::evidence_cut`]).
    #[serde(default)]
    pub latest_evidence: Option<(i64, usize, Vec<String>, bool)>,
    /// What the kept events hold, against [`MAX_KEPT_BYTES`].
    #[serde(skip)]
    kept_bytes: usize,
}

/// The events a feed keeps (a few hundred bytes each); the events of the phases asked
/// for past these are counted, and their phases' chains cannot be proven.
pub const MAX_KEPT_EVENTS: usize = 100_000;

/// The most bytes the kept events hold ([`Event::held_bytes`]): room for
/// [`MAX_KEPT_EVENTS`] events of some 600 bytes each. An event's fields are up to
/// 4,096 characters each and its evidence up to 4 MiB, so events as large as they may
/// be reach it long before the count; those past it are not kept, as past the
/// count.
pub const MAX_KEPT_BYTES: usize = 64 << 20;

/// The lines that are not events a feed lists; the rest are counted.
pub const MAX_BAD_LINES: usize = 1_000;

impl Feed {
    fn bad_line(&mut self, line: usize, message: String) {
        let (list, omitted) = (&mut self.bad_lines, &mut self.bad_lines_omitted);
        crate::wire::push_capped(list, omitted, MAX_BAD_LINES, || BadLine { line, message });
    }

    /// Folds what drift needs of an event.
    fn note(&mut self, e: &Event) {
        let Some(ts) = e.ts_ms else { return };
        let functional = |a: &str| {
            matches!(a, "started" | "completed" | "verified") || a.starts_with("dispatch_")
        };
        if e.heartbeat {
            self.last_heartbeat_ms = Some(self.last_heartbeat_ms.map_or(ts, |h| h.max(ts)));
        } else if e.action.as_deref().is_some_and(functional) {
            self.last_activity_ms = Some(self.last_activity_ms.map_or(ts, |a| a.max(ts)));
        }
        if e.emit_mode.as_deref() == Some("runtime_auto")
            && !e.evidence.is_empty()
            && self
                .latest_evidence
                .as_ref()
                .is_none_or(|(t, l, ..)| (ts, e.line) > (*t, *l))
        {
            self.latest_evidence = Some((ts, e.line, e.evidence.clone(), e.evidence_cut));
        }
    }
}

/// The phases whose events a feed keeps: `None` keeps every event.
pub type Wanted<'a> = Option<&'a std::collections::BTreeSet<String>>;

/// The longest text kept from one field of an event (longer values are cut with
/// `…`: a cut path or digest matches nothing, so a verdict can only get stricter),
/// so that what reports carry stays bounded however large the feed's lines are.
pub const MAX_FIELD_CHARS: usize = 4096;

fn bounded(s: &str) -> String {
    crate::bundle::index::truncate(s, MAX_FIELD_CHARS)
}

fn text(o: &Map<String, Value>, k: &str) -> Option<String> {
    o.get(k).and_then(Value::as_str).map(bounded)
}

/// A phase id as the reference reads one: a non-empty string, or a number's text.
fn phase_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(bounded(s)),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Event {
    /// True when the event belongs to `phase`: by its phase id, or by its `task_id`.
    pub fn belongs_to(&self, phase: &str) -> bool {
        self.phase_id.as_deref() == Some(phase) || self.task_id.as_deref() == Some(phase)
    }
}

/// Epoch milliseconds from a number (seconds or milliseconds) or a string (ISO 8601,
/// or digits).
pub fn ts_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => {
            let f = n.as_f64()?;
            if !f.is_finite() || f < 0.0 {
                return None;
            }
            // Numbers past 1e11 are milliseconds (1e11 s is the year 5138).
            Some(if f >= 1e11 {
                f as i64
            } else {
                (f * 1000.0) as i64
            })
        }
        Value::String(s) => {
            let s = s.trim();
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                return ts_of(&Value::Number(s.parse::<u64>().ok()?.into()));
            }
            let t = OffsetDateTime::parse(s, &Rfc3339).ok().or_else(|| {
                // ISO 8601 without an offset is taken as UTC.
                OffsetDateTime::parse(&format!("{s}Z"), &Rfc3339).ok()
            })?;
            Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
        }
        _ => None,
    }
}

/// Reads one event object.
pub fn event(line: usize, o: &Map<String, Value>) -> Event {
    let ts_ms = match o.get("ts_epoch_ms") {
        Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
        _ => None,
    }
    .or_else(|| {
        ["ts", "ts_utc", "timestamp"]
            .iter()
            .find_map(|k| o.get(*k).and_then(ts_of))
    });
    let evidence = match o.get("evidence") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(bounded))
            .collect(),
        Some(Value::String(s)) => vec![bounded(s)],
        Some(Value::Object(m)) => ["file", "path", "report"]
            .iter()
            .filter_map(|k| text(m, k))
            .collect(),
        _ => Vec::new(),
    };
    let hashes = match o.get("hashes") {
        Some(Value::Object(m)) => m
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (bounded(k), bounded(s))))
            .collect(),
        _ => Vec::new(),
    };
    // Actions compare case-insensitively (`STARTED` is `started`), as the reference
    // checker lowers them.
    let action = text(o, "action").map(|a| a.to_lowercase());
    let heartbeat = action.as_deref() == Some("heartbeat")
        || text(o, "category").as_deref() == Some("heartbeat");
    let task_id = phase_text(o.get("task_id"))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty());
    Event {
        line,
        phase_id: phase_text(o.get("phase_id"))
            .or_else(|| phase_text(o.get("phase")))
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .or_else(|| task_id.clone()),
        task_id,
        action,
        heartbeat,
        ts_ms,
        emit_mode: text(o, "emit_mode"),
        verifier_mode: text(o, "verifier_mode"),
        tool: text(o, "tool"),
        run_id: text(o, "run_id"),
        status: text(o, "status"),
        evidence,
        hashes,
        keys: TAXONOMY
            .iter()
            .enumerate()
            .filter(|(_, k)| o.contains_key(**k))
            .fold(0, |bits, (i, _)| bits | 1 << i),
        evidence_cut: false,
    }
}

/// Parses feed text. Blank lines are skipped; a line that is not a JSON object, or
/// is longer than the cap of JSON Lines inputs, is a bad line (strict callers stop
/// at the first).
pub fn parse_feed(bytes: &[u8]) -> Feed {
    read_feed_from(bytes, None).expect("reading from memory does not fail")
}

/// Reads a feed line by line, in memory bounded by the line cap (a huge line is
/// measured and skipped, not held), keeping the events of the `wanted` phases (by
/// phase id or task id), at most [`MAX_KEPT_EVENTS`] holding at most
/// [`MAX_KEPT_BYTES`].
pub fn read_feed_from(r: impl std::io::Read, wanted: Wanted) -> std::io::Result<Feed> {
    let mut feed = Feed::default();
    let mut lines = crate::jsonl::Lines::new(r, 0);
    while let Some((l, raw)) = lines.next_line()? {
        let line = l.number;
        if let Some(len) = l.too_long {
            feed.bad_line(
                line,
                format!(
                    "line_too_long: {len} bytes, over the {} cap; skipped",
                    crate::jsonl::cap_text()
                ),
            );
            continue;
        }
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match fields::read(raw) {
            Ok((o, cut)) => {
                let mut e = event(line, &o);
                e.evidence_cut = cut;
                feed.note(&e);
                let phases = [e.phase_id.as_ref(), e.task_id.as_ref()];
                if wanted.is_some_and(|w| !phases.iter().flatten().any(|p| w.contains(*p))) {
                    continue;
                }
                let held = e.held_bytes();
                if feed.events.len() == MAX_KEPT_EVENTS || feed.kept_bytes + held > MAX_KEPT_BYTES {
                    feed.events_omitted += 1;
                    if let Some(w) = wanted {
                        feed.omitted_phases.extend(
                            phases
                                .into_iter()
                                .flatten()
                                .filter(|p| w.contains(*p))
                                .cloned(),
                        );
                    }
                    continue;
                }
                if e.heartbeat && (o.contains_key("phase_id") || o.contains_key("phase")) {
                    feed.forbidden_heartbeats.push(line);
                }
                feed.kept_bytes += held;
                feed.events.push(e);
            }
            Err(message) => feed.bad_line(line, message),
        }
    }
    Ok(feed)
}

/// Why a feed could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("{0}: error.log_missing_or_unreadable: {1}")]
    Unreadable(String, String),
    #[error("{0}:{1}: error.log_parse_failure: {2}")]
    Corrupt(String, usize, String),
}

impl FeedError {
    /// The feed's path, the line at fault (when one is) and what is wrong, apart:
    /// for a finding that names its place in fields of its own.
    pub fn parts(&self) -> (&str, Option<u64>, String) {
        match self {
            FeedError::Unreadable(path, why) => (
                path,
                None,
                format!("error.log_missing_or_unreadable: {why}"),
            ),
            FeedError::Corrupt(path, line, why) => (
                path,
                Some(*line as u64),
                format!("error.log_parse_failure: {why}"),
            ),
        }
    }
}

/// Reads the feed file; `strict` turns the first bad line into an error.
pub fn read_feed(
    path: &Path,
    label: &str,
    strict: bool,
    wanted: Wanted,
) -> Result<Feed, FeedError> {
    let unreadable = |e: String| FeedError::Unreadable(label.to_string(), e);
    let (file, _) = crate::fsutil::open_regular(path).map_err(|e| unreadable(e.to_string()))?;
    let feed = read_feed_from(file, wanted).map_err(|e| unreadable(e.to_string()))?;
    if strict && let Some(b) = feed.bad_lines.first() {
        return Err(FeedError::Corrupt(
            label.to_string(),
            b.line,
            b.message.clone(),
        ));
    }
    Ok(feed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_timestamp_form() {
        let cases = [
            (
                json!({"ts_epoch_ms": 1770844013034i64}),
                Some(1770844013034),
            ),
            (json!({"ts": "2026-02-11T21:06:53Z"}), Some(1770844013000)),
            (
                json!({"ts_utc": "2026-02-11T21:06:53.5+00:00"}),
                Some(1770844013500),
            ),
            (
                json!({"timestamp": "2026-02-11T21:06:53"}),
                Some(1770844013000),
            ),
            (json!({"timestamp": 1770844013}), Some(1770844013000)),
            (json!({"timestamp": 1770844013034i64}), Some(1770844013034)),
            (json!({"timestamp": "1770844013"}), Some(1770844013000)),
            (
                json!({"ts_epoch_ms": "soon", "ts": "2026-02-11T21:06:53Z"}),
                Some(1770844013000),
            ),
            (json!({"ts": "yesterday"}), None),
            (json!({}), None),
        ];
        for (v, want) in cases {
            let e = event(1, v.as_object().unwrap());
            assert_eq!(e.ts_ms, want, "{v}");
        }
    }

    #[test]
    fn a_feed_keeps_the_phases_asked_for_and_folds_drift_over_every_event() {
        let feed = concat!(
            "{\"action\":\"started\",\"phase_id\":\"P\",\"ts_epoch_ms\":1000}\n",
            "{\"action\":\"completed\",\"phase_id\":\"Q\",\"ts_epoch_ms\":2000,\"emit_mode\":\"runtime_auto\",\"evidence\":[\"q.json\"]}\n",
            "{\"action\":\"heartbeat\",\"ts_epoch_ms\":3000}\n",
            "{\"action\":\"heartbeat\",\"phase_id\":\"P\",\"ts_epoch_ms\":500}\n",
            "{\"action\":\"verified\",\"task_id\":\"P\",\"ts_epoch_ms\":1500}\n",
            "nope\n",
        );
        let wanted: std::collections::BTreeSet<String> = ["P".to_string()].into();
        let kept = read_feed_from(feed.as_bytes(), Some(&wanted)).unwrap();
        let all = parse_feed(feed.as_bytes());
        let lines = |f: &Feed| f.events.iter().map(|e| e.line).collect::<Vec<_>>();
        assert_eq!(lines(&kept), [1, 4, 5], "P's events, by phase or task id");
        assert_eq!(lines(&all), [1, 2, 3, 4, 5]);
        assert_eq!(kept.forbidden_heartbeats, [4]);
        // Drift's view covers every event, kept or not.
        for f in [&kept, &all] {
            assert_eq!(f.last_activity_ms, Some(2000));
            assert_eq!(f.last_heartbeat_ms, Some(3000));
            assert_eq!(
                f.latest_evidence,
                Some((2000, 2, vec!["q.json".to_string()], false))
            );
            assert_eq!(f.bad_lines.len(), 1);
        }
    }

    #[test]
    fn events_past_the_bytes_kept_are_counted_as_past_the_count() {
        // Events of 4 MiB of evidence each: the kept ones hold at most
        // MAX_KEPT_BYTES, the rest are counted and their phase marked.
        let paths: Vec<String> = (0..1_000)
            .map(|i| format!("\"{i:04}{}\"", "x".repeat(4_000)))
            .collect();
        let line = format!(
            "{{\"action\":\"started\",\"phase_id\":\"P\",\"evidence\":[{}]}}\n",
            paths.join(",")
        );
        let n = MAX_KEPT_BYTES / (4 << 20) + 3;
        let feed = line.repeat(n) + "{\"action\":\"started\",\"phase_id\":\"Q\"}\n";
        let wanted: std::collections::BTreeSet<String> = ["P".into(), "Q".into()].into();
        let f = read_feed_from(feed.as_bytes(), Some(&wanted)).unwrap();
        let held: usize = f.events.iter().map(Event::held_bytes).sum();
        assert!(held <= MAX_KEPT_BYTES, "{held}");
        assert!(f.events.len() < n, "{}", f.events.len());
        assert_eq!(f.events_omitted, n + 1 - f.events.len());
        assert_eq!(f.omitted_phases, ["P".to_string()].into());
        // A small event after them still fits.
        assert_eq!(f.events.last().unwrap().phase_id.as_deref(), Some("Q"));
    }

    #[test]
    fn events_and_bad_lines_past_the_caps_are_counted() {
        let mut feed = String::new();
        for i in 0..MAX_KEPT_EVENTS + 5 {
            feed.push_str(&format!(
                "{{\"action\":\"started\",\"phase_id\":\"P\",\"ts_epoch_ms\":{i}}}\n"
            ));
        }
        feed.push_str("{\"action\":\"started\",\"phase_id\":\"Q\",\"ts_epoch_ms\":1}\n");
        for _ in 0..MAX_BAD_LINES + 3 {
            feed.push_str("nope\n");
        }
        let wanted: std::collections::BTreeSet<String> = ["P".to_string()].into();
        let f = read_feed_from(feed.as_bytes(), Some(&wanted)).unwrap();
        assert_eq!(f.events.len(), MAX_KEPT_EVENTS);
        assert_eq!(f.events_omitted, 5, "Q's event is not asked for");
        assert_eq!(f.omitted_phases, wanted);
        assert_eq!(f.bad_lines.len(), MAX_BAD_LINES);
        assert_eq!(f.bad_lines_omitted, 3);
        assert_eq!(f.last_activity_ms, Some(MAX_KEPT_EVENTS as i64 + 4));
    }

    #[test]
    fn evidence_shapes_and_heartbeats() {
        let e = event(
            1,
            json!({"evidence": {"file": "a", "report": "b"}, "hashes": {"a": "sha256:00"}})
                .as_object()
                .unwrap(),
        );
        assert_eq!(e.evidence, ["a", "b"]);
        assert_eq!(e.hashes, [("a".to_string(), "sha256:00".to_string())]);
        let feed = parse_feed(b"{\"action\":\"heartbeat\",\"phase_id\":\"P\"}\n{\"category\":\"heartbeat\"}\nnope\n[1]\n\n");
        assert_eq!(feed.forbidden_heartbeats, [1]);
        assert!(feed.events[1].heartbeat);
        assert_eq!(
            feed.bad_lines.iter().map(|b| b.line).collect::<Vec<_>>(),
            [3, 4]
        );
    }
}
