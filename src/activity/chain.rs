//! A phase's activity chain and its proof mode (SPEC §6.2).
//!
//! Only the phase's events with a readable timestamp count, and heartbeats never do.
//! Presence and order use the latest `started`, `completed` and `verified`; proof is
//! judged on one triple (the last `started` that has a `completed` after it and a
//! `verified` after that), which is `operational` only when all three are
//! `runtime_auto` / `operational_proof`, carry every taxonomy key, and share one
//! run_id.

use serde::Serialize;

use super::{Event, REQUIRED_FOR_PROOF, TAXONOMY};

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Step {
    pub line: usize,
    pub action: String,
    pub ts_ms: i64,
    pub run_id: Option<String>,
    pub emit_mode: Option<String>,
    pub tool: Option<String>,
}

str_enum! {
    /// Whether a phase's proof came from the runtime itself.
    pub enum ProofMode {
        /// A full triple, emitted by the runtime with every taxonomy key, one run.
        Operational = "operational",
        /// Events exist, but not an operational triple.
        Synthetic = "synthetic",
        /// No event of the phase.
        None = "none",
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Chain {
    pub phase_id: String,
    /// Events of this phase with a readable timestamp.
    pub events: usize,
    pub has_started: bool,
    /// All three present and strictly ordered.
    pub valid: bool,
    pub proof_mode: ProofMode,
    /// The triple proof was judged on, in order.
    pub triple: Vec<Step>,
    /// The phase's events in time order (for the timeline): the latest
    /// [`MAX_TIMELINE`], and those of the triple.
    pub timeline: Vec<Step>,
    /// Events of the phase that `timeline` leaves out (the earliest).
    #[serde(default, skip_serializing_if = "crate::wire::zero")]
    pub timeline_omitted: usize,
    /// `activity.*` and `taxonomy.*` findings, sorted.
    pub missing: Vec<String>,
    /// The triple is full and each of its events carries every taxonomy key
    /// (`phase_id, emit_mode, verifier_mode, tool, run_id, ts_epoch_ms, ts_utc`);
    /// under enforcement a phase without it gets `taxonomy.incomplete_event`.
    pub taxonomy_complete: bool,
    /// Evidence paths and hash claims of the phase's events, at most
    /// [`MAX_CHAIN_EVIDENCE`] of each (past that, or when an event's were cut as it
    /// was read, `activity.evidence_omitted`: the phase is never proven on part of
    /// its evidence).
    pub evidence: Vec<String>,
    pub hashes: Vec<(String, String)>,
}

/// The events of a phase its timeline lists: the latest ones (and the triple).
pub const MAX_TIMELINE: usize = 1_000;

/// The distinct evidence paths, and hash claims, a chain checks.
pub const MAX_CHAIN_EVIDENCE: usize = 1_000;

fn step(e: &Event) -> Step {
    Step {
        line: e.line,
        action: e.action.clone().unwrap_or_default(),
        ts_ms: e.ts_ms.unwrap_or_default(),
        run_id: e.run_id.clone(),
        emit_mode: e.emit_mode.clone(),
        tool: e.tool.clone(),
    }
}

/// Builds the chain of `phase` from all events of a feed.
pub fn chain(phase: &str, events: &[Event]) -> Chain {
    let mut mine: Vec<&Event> = events
        .iter()
        .filter(|e| !e.heartbeat && e.belongs_to(phase) && e.ts_ms.is_some())
        .collect();
    // Stable: events with the same time keep file order.
    mine.sort_by_key(|e| (e.ts_ms, e.line));
    let of = |a: &str| -> Vec<&Event> {
        mine.iter()
            .copied()
            .filter(|e| e.action.as_deref() == Some(a))
            .collect()
    };
    let (started, completed, verified) = (of("started"), of("completed"), of("verified"));
    let mut missing: Vec<String> = Vec::new();
    for (list, name) in [
        (&started, "started"),
        (&completed, "completed"),
        (&verified, "verified"),
    ] {
        if list.is_empty() {
            missing.push(format!("activity.{name}"));
        }
    }
    let latest = |l: &[&Event]| l.last().and_then(|e| e.ts_ms);
    let valid = match (latest(&started), latest(&completed), latest(&verified)) {
        (Some(s), Some(c), Some(v)) => {
            let ordered = s < c && c < v;
            if !ordered {
                missing.push("activity.order_invalid".into());
            }
            ordered
        }
        _ => false,
    };

    // The triple. Each list is in time order: the first event after a time is found
    // by bisection.
    fn first_after<'e>(list: &[&'e Event], ts: Option<i64>) -> Option<&'e Event> {
        list.get(list.partition_point(|e| e.ts_ms <= ts)).copied()
    }
    let mut best_full: Option<Vec<&Event>> = None;
    let mut best_pair: Option<Vec<&Event>> = None;
    for s in &started {
        let c = first_after(&completed, s.ts_ms);
        let v = c.and_then(|c| first_after(&verified, c.ts_ms));
        match (c, v) {
            (Some(c), Some(v)) => best_full = Some(vec![s, c, v]),
            (Some(c), None) => best_pair = Some(vec![s, c]),
            _ => {}
        }
    }
    let triple: Vec<&Event> = best_full
        .clone()
        .or(best_pair)
        .or_else(|| started.first().map(|s| vec![*s]))
        .unwrap_or_default();

    let taxonomy_complete =
        best_full.is_some() && triple.iter().all(|e| TAXONOMY.iter().all(|k| e.has(k)));
    let mut proof_mode = if mine.is_empty() {
        ProofMode::None
    } else {
        ProofMode::Synthetic
    };
    if best_full.is_some() {
        let incomplete = triple
            .iter()
            .any(|e| REQUIRED_FOR_PROOF.iter().any(|k| !e.has(k)));
        if incomplete {
            missing.push("taxonomy.incomplete_event".into());
        }
        let auto = triple.iter().all(|e| {
            e.emit_mode.as_deref() == Some("runtime_auto")
                && e.verifier_mode.as_deref() == Some("operational_proof")
                && TAXONOMY.iter().all(|k| e.has(k))
        });
        let mut runs: Vec<&Option<String>> = triple.iter().map(|e| &e.run_id).collect();
        runs.dedup();
        let one_run = runs.len() == 1 && runs[0].is_some();
        if auto && !one_run {
            missing.push("taxonomy.run_id_mismatch".into());
        }
        if auto && one_run {
            proof_mode = ProofMode::Operational;
        }
    } else if !triple.is_empty()
        && triple
            .iter()
            .any(|e| REQUIRED_FOR_PROOF.iter().any(|k| !e.has(k)))
    {
        missing.push("taxonomy.incomplete_event".into());
    }
    let mut evidence: Vec<String> = mine
        .iter()
        .flat_map(|e| e.evidence.iter().cloned())
        .collect();
    evidence.sort();
    evidence.dedup();
    let mut hashes: Vec<(String, String)> =
        mine.iter().flat_map(|e| e.hashes.iter().cloned()).collect();
    hashes.sort();
    hashes.dedup();
    if evidence.len() > MAX_CHAIN_EVIDENCE
        || hashes.len() > MAX_CHAIN_EVIDENCE
        || mine.iter().any(|e| e.evidence_cut)
    {
        evidence.truncate(MAX_CHAIN_EVIDENCE);
        hashes.truncate(MAX_CHAIN_EVIDENCE);
        missing.push("activity.evidence_omitted".into());
    }
    missing.sort();
    missing.dedup();
    let first_listed = mine.len().saturating_sub(MAX_TIMELINE);
    let in_triple = |e: &&Event| triple.iter().any(|t| t.line == e.line);
    let timeline: Vec<Step> = mine
        .iter()
        .enumerate()
        .filter(|(i, e)| *i >= first_listed || in_triple(e))
        .map(|(_, e)| step(e))
        .collect();
    Chain {
        phase_id: phase.to_string(),
        events: mine.len(),
        has_started: !started.is_empty(),
        valid,
        proof_mode,
        triple: triple.iter().map(|e| step(e)).collect(),
        timeline_omitted: mine.len() - timeline.len(),
        timeline,
        missing,
        taxonomy_complete,
        evidence,
        hashes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::parse_feed;

    fn ev(action: &str, ms: i64, run: &str, extra: &str) -> String {
        format!(
            "{{\"phase_id\":\"P\",\"action\":\"{action}\",\"emit_mode\":\"runtime_auto\",\"verifier_mode\":\"operational_proof\",\"tool\":\"t\",\"run_id\":\"{run}\",\"ts_epoch_ms\":{ms},\"ts_utc\":\"x\"{extra}}}\n"
        )
    }

    #[test]
    fn the_timeline_lists_the_latest_events_and_the_triple_and_evidence_is_capped() {
        let mut lines = vec![
            ev("started", 1, "r", ""),
            ev("completed", 2, "r", ""),
            ev("verified", 3, "r", ""),
        ];
        let n = MAX_TIMELINE.max(MAX_CHAIN_EVIDENCE) + 5;
        for i in 0..n {
            lines.push(ev(
                "dispatch_x",
                10 + i as i64,
                "r",
                &format!(",\"evidence\":[\"e{i:05}\"]"),
            ));
        }
        let c = judge(&lines);
        assert_eq!(c.events, n + 3);
        let listed: Vec<usize> = c.timeline.iter().map(|s| s.line).collect();
        let mut want = vec![1, 2, 3];
        want.extend(n + 4 - MAX_TIMELINE..=n + 3);
        assert_eq!(listed, want);
        assert_eq!(c.timeline_omitted, n - MAX_TIMELINE);
        assert_eq!(c.evidence.len(), MAX_CHAIN_EVIDENCE);
        assert!(
            c.missing.contains(&"activity.evidence_omitted".to_string()),
            "{:?}",
            c.missing
        );
        assert_eq!(
            c.proof_mode,
            ProofMode::Operational,
            "judged on every event"
        );
    }

    /// Bounded in time: each `started` finds the first `completed` after it by
    /// bisection (the previous search compared every pair: 49,000 of each took 5 s).
    #[test]
    fn many_starts_and_completions_are_paired_by_bisection() {
        let n = 49_000;
        let mut lines: Vec<String> = (0..n).map(|_| ev("completed", 1000, "r", "")).collect();
        lines.extend((0..n).map(|_| ev("started", 2000, "r", "")));
        lines.push(ev("completed", 3000, "r", ""));
        lines.push(ev("verified", 4000, "r", ""));
        let c = judge(&lines);
        let triple: Vec<usize> = c.triple.iter().map(|s| s.line).collect();
        assert_eq!(
            triple,
            [2 * n, 2 * n + 1, 2 * n + 2],
            "the last started, then the first after it"
        );
        assert_eq!(c.proof_mode, ProofMode::Operational);
    }

    fn judge(lines: &[String]) -> Chain {
        chain("P", &parse_feed(lines.concat().as_bytes()).events)
    }

    #[test]
    fn an_event_whose_evidence_was_cut_leaves_its_chain_unproven() {
        let triple = [
            ev("started", 1, "r", ""),
            ev("completed", 2, "r", ",\"evidence\":[\"a\"]"),
            ev("verified", 3, "r", ""),
        ];
        assert!(judge(&triple).missing.is_empty());
        // A later event names more than one event keeps: some 600 paths, each
        // twice, of which those after the first 4 MiB are not kept (one of them
        // could be missing), while those kept are fewer than a chain checks.
        let many: Vec<String> = (0..1_200)
            .map(|i| format!("\"{:04}{}\"", i % 600, "x".repeat(4_000)))
            .collect();
        let mut lines = triple.to_vec();
        lines.push(ev(
            "dispatch_x",
            4,
            "r",
            &format!(",\"evidence\":[{}]", many.join(",")),
        ));
        let c = judge(&lines);
        assert!(
            c.evidence.len() < MAX_CHAIN_EVIDENCE,
            "{}",
            c.evidence.len()
        );
        assert_eq!(c.missing, ["activity.evidence_omitted"]);
    }

    #[test]
    fn a_runtime_auto_triple_is_operational() {
        let c = judge(&[
            ev("started", 1, "r", ""),
            ev("completed", 2, "r", ""),
            ev("verified", 3, "r", ""),
        ]);
        assert!(c.valid);
        assert_eq!(c.proof_mode, ProofMode::Operational);
        assert!(c.missing.is_empty(), "{:?}", c.missing);
    }

    #[test]
    fn findings_for_each_branch() {
        let cases: Vec<(Vec<String>, &str, &[&str])> = vec![
            (
                vec![],
                "none",
                &[
                    "activity.completed",
                    "activity.started",
                    "activity.verified",
                ],
            ),
            (
                vec![ev("started", 1, "r", "")],
                "synthetic",
                &["activity.completed", "activity.verified"],
            ),
            (
                vec![
                    ev("started", 3, "r", ""),
                    ev("completed", 2, "r", ""),
                    ev("verified", 1, "r", ""),
                ],
                "synthetic",
                &["activity.order_invalid"],
            ),
            (
                vec![
                    ev("started", 1, "a", ""),
                    ev("completed", 2, "b", ""),
                    ev("verified", 3, "a", ""),
                ],
                "synthetic",
                &["taxonomy.run_id_mismatch"],
            ),
            (
                vec![
                    ev("started", 1, "r", ""),
                    ev("completed", 2, "r", "").replace(
                        "\"emit_mode\":\"runtime_auto\",",
                        "\"emit_mode\":\"manual_append\",",
                    ),
                    ev("verified", 3, "r", ""),
                ],
                "synthetic",
                &[],
            ),
            (
                vec![
                    ev("started", 1, "r", ""),
                    ev("completed", 2, "r", "").replace("\"tool\":\"t\",", ""),
                    ev("verified", 3, "r", ""),
                ],
                "synthetic",
                &["taxonomy.incomplete_event"],
            ),
        ];
        for (lines, mode, want) in cases {
            let c = judge(&lines);
            assert_eq!(c.proof_mode.as_str(), mode, "{lines:?}");
            assert_eq!(c.missing, want, "{lines:?}");
        }
    }

    #[test]
    fn the_last_started_with_a_full_triple_wins_and_heartbeats_never_count() {
        let c = judge(&[
            ev("started", 1, "a", ""),
            ev("completed", 2, "a", ""),
            ev("verified", 3, "a", ""),
            ev("started", 10, "b", ""),
            ev("completed", 11, "b", ""),
            "{\"phase_id\":\"P\",\"action\":\"heartbeat\",\"ts_epoch_ms\":12}\n".into(),
        ]);
        assert_eq!(
            c.triple
                .iter()
                .map(|s| s.run_id.clone().unwrap())
                .collect::<Vec<_>>(),
            ["a", "a", "a"]
        );
        // The latest started (10) is after the latest verified (3): order is invalid.
        assert!(!c.valid);
        assert_eq!(c.events, 5);
    }
}
