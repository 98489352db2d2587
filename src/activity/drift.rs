//! The idle / heartbeat drift monitor (SPEC §6.4).
//!
//! `idle.system.stale` when the last functional activity (`started`, `completed`,
//! `verified`, `dispatch_*`) is older than the idle threshold or absent;
//! `drift.heartbeat.stale` when the last heartbeat (feed or heartbeat file) is older
//! than the drift threshold or absent. The feed is parsed strictly: a missing or
//! corrupt feed is a runtime error.

use std::path::Path;

use serde::Serialize;

use super::{Feed, FeedError};
use crate::lith::Manifest;

pub const SCHEMA: &str = "idle_drift_report_v1";
pub const DEFAULT_IDLE_SEC: i64 = 900;
pub const DEFAULT_DRIFT_SEC: i64 = 120;
pub const DEFAULT_FEED: &str = "observability/logs/activity_feed.jsonl";
pub const DEFAULT_REPORTS: &str = "reports/drift";

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct IdleCheck {
    pub ok: bool,
    pub last_activity_ts: Option<String>,
    pub age_sec: Option<i64>,
    pub threshold_sec: i64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct HeartbeatCheck {
    pub ok: bool,
    pub last_heartbeat_ts: Option<String>,
    pub age_sec: Option<i64>,
    pub threshold_sec: i64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Checks {
    pub idle: IdleCheck,
    pub drift: HeartbeatCheck,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct DriftReport {
    pub schema_version: String,
    pub ts: String,
    pub feed: String,
    pub heartbeat_file: Option<String>,
    pub checks: Checks,
    pub missing: Vec<String>,
    /// The artifact the latest heartbeat or runtime_auto event produced or touched.
    pub evidence: Vec<String>,
    /// True when that event listed more evidence than lith keeps of one event
    /// (`activity::fields`): `evidence` is its first part. Written only when true,
    /// so a drift report is otherwise the reference's shape.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub evidence_cut: bool,
}

impl DriftReport {
    pub fn exit_code(&self) -> i32 {
        if self.missing.is_empty() {
            crate::exit::OK
        } else {
            crate::exit::PARTIAL
        }
    }
}

fn iso(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .map(crate::clock::rfc3339)
        .unwrap_or_default()
}

/// Where the feed, heartbeat file and reports are, from the manifest.
pub struct Paths {
    pub feed: String,
    pub heartbeat_file: Option<String>,
    pub reports: String,
    pub idle_sec: i64,
    pub drift_sec: i64,
}

impl Paths {
    pub fn of(m: &Manifest) -> Paths {
        let a = m.activity.clone().unwrap_or_default();
        Paths {
            feed: a.feed.unwrap_or_else(|| DEFAULT_FEED.into()),
            heartbeat_file: a.heartbeat_file,
            reports: a.reports.unwrap_or_else(|| DEFAULT_REPORTS.into()),
            idle_sec: a.idle_threshold_sec.unwrap_or(DEFAULT_IDLE_SEC),
            drift_sec: a.drift_threshold_sec.unwrap_or(DEFAULT_DRIFT_SEC),
        }
    }
}

/// Evaluates drift from a feed that was read strictly.
pub fn evaluate(
    feed: &Feed,
    heartbeat_file: Option<(&str, &Path)>,
    p: &Paths,
    now_ms: i64,
    now: String,
) -> DriftReport {
    let last_activity = feed.last_activity_ms;
    let mut last_heartbeat = feed.last_heartbeat_ms;
    let mut evidence_candidates: Vec<(i64, Vec<String>, bool)> = Vec::new();
    if let Some((label, path)) = heartbeat_file
        && let Ok(serde_json::Value::Object(o)) = crate::fsutil::read_json(path)
    {
        let e = super::event(0, &o);
        if let Some(ts) = e.ts_ms {
            last_heartbeat = Some(last_heartbeat.map_or(ts, |h| h.max(ts)));
            evidence_candidates.push((ts, vec![label.to_string()], false));
        }
    }
    if let Some((ts, _, evidence, cut)) = &feed.latest_evidence {
        evidence_candidates.push((*ts, evidence.clone(), *cut));
    }
    let (evidence, evidence_cut) = evidence_candidates
        .into_iter()
        .max_by_key(|(ts, ..)| *ts)
        .map(|(_, e, cut)| (e, cut))
        .unwrap_or_default();
    let age = |ts: Option<i64>| ts.map(|t| (now_ms - t).max(0) / 1000);
    let idle_ok = age(last_activity).is_some_and(|a| a <= p.idle_sec);
    let drift_ok = age(last_heartbeat).is_some_and(|a| a <= p.drift_sec);
    let mut missing = Vec::new();
    if !idle_ok {
        missing.push("idle.system.stale".to_string());
    }
    if !drift_ok {
        missing.push("drift.heartbeat.stale".to_string());
    }
    missing.sort();
    DriftReport {
        schema_version: SCHEMA.to_string(),
        ts: now,
        feed: p.feed.clone(),
        heartbeat_file: p.heartbeat_file.clone(),
        checks: Checks {
            idle: IdleCheck {
                ok: idle_ok,
                last_activity_ts: last_activity.map(iso),
                age_sec: age(last_activity),
                threshold_sec: p.idle_sec,
            },
            drift: HeartbeatCheck {
                ok: drift_ok,
                last_heartbeat_ts: last_heartbeat.map(iso),
                age_sec: age(last_heartbeat),
                threshold_sec: p.drift_sec,
            },
        },
        missing,
        evidence,
        evidence_cut,
    }
}

/// Reads the manifest's feed strictly and evaluates drift at the clock's time.
pub fn run(m: &Manifest, clock: &crate::clock::Clock) -> Result<DriftReport, FeedError> {
    let p = Paths::of(m);
    // Drift keeps no event: what it needs of each is folded as the feed is read.
    let none = std::collections::BTreeSet::new();
    let feed = super::read_feed(&m.resolve(&p.feed), &p.feed, true, Some(&none))?;
    let hb = p
        .heartbeat_file
        .as_ref()
        .map(|h| (h.as_str(), m.resolve(h)));
    let now = clock.now();
    let now_ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
    Ok(evaluate(
        &feed,
        hb.as_ref().map(|(l, p)| (*l, p.as_path())),
        &p,
        now_ms,
        clock.now_rfc3339(),
    ))
}
