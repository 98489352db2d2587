//! Agreement with the reference systems on generated variants (COMPATIBILITY.md).
//!
//! Each test holds a model of one reference implementation's rules, written from
//! reading its code (sandbox-boostrap `book/api/runtime/bundles/promotion.py` and
//! `reader.py`, 0luka `tools/ops/dod_checker.py`, fork_tales `TaskQueue` in
//! `world_web/chamber.py` and its receipt parser), with Python's semantics spelled
//! out (truthiness, `.strip()`, `.get` on a non-dict raising). The model answers
//! what the reference would say; every documented deliberate difference is applied
//! to that answer by a named function, so the comparison is exact and each
//! difference is visible here as well as in COMPATIBILITY.md.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};

use lith::bundle::promotion;
use lith::bundle::verify::{Mode, VerifyOptions, verify_run};

use crate::support::sha256_hex;

/// Python's `bool(v)` for a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// `d.get(k)` where `d` must be a dict (else Python raises AttributeError).
fn get(d: &Value, k: &str) -> Result<Value, Crash> {
    match d {
        Value::Object(o) => Ok(o.get(k).cloned().unwrap_or(Value::Null)),
        _ => Err(Crash),
    }
}

/// `a or b`.
fn or(a: Value, b: Value) -> Value {
    if truthy(&a) { a } else { b }
}

/// The reference raised an exception: lith must exit 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Crash;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Index {
    Ok,
    PartialEmptyMissing,
    Failed,
    ListsMissing,
    Absent,
    DigestMismatch,
}

#[derive(Debug, Clone)]
struct Case {
    manifest: Option<Value>,
    status: Option<Value>,
    index: Index,
    decision_stage_present: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    reasons: BTreeSet<String>,
    channel: Value,
    apply_preflight_present: bool,
    apply_ok: Value,
    sandbox_check_self: Value,
}

/// The reference's `assess_promotability`, step by step.
fn reference(c: &Case) -> Result<Outcome, Crash> {
    let mut reasons = BTreeSet::new();
    let mut add = |r: &str| {
        reasons.insert(r.to_string());
    };
    let rm = match &c.manifest {
        None => {
            add("manifest_missing");
            json!({})
        }
        Some(v) => v.clone(),
    };
    match &c.status {
        None => add("run_status_missing"),
        Some(st) => {
            let state = or(get(st, "state")?, json!(""));
            // `.strip()` on anything but a string raises.
            let Value::String(s) = state else {
                return Err(Crash);
            };
            if s.trim() == "in_progress" {
                add("bundle_in_progress");
            }
        }
    }
    let channel = get(&rm, "channel")?;
    if channel != json!("launchd_clean") {
        add("not_clean_channel");
    }
    let ap = or(
        get(&or(get(&rm, "apply_preflight")?, json!({})), "record")?,
        json!({}),
    );
    if !truthy(&ap) {
        add("apply_preflight_missing");
    } else {
        let sandboxed = get(&or(get(&ap, "sandbox_check_self")?, json!({})), "sandboxed")?;
        if sandboxed == json!(true) {
            add("already_sandboxed");
        }
        if get(&ap, "apply_ok")? != json!(true) {
            add("apply_failed");
        }
    }
    // load_bundle_index_strict: in progress (exact, unstripped), no index, a missing
    // file or a digest mismatch raise; the index is then `{}`.
    let strict_ok = match &c.status {
        Some(st) if get(st, "state")? == json!("in_progress") => false,
        _ => !matches!(c.index, Index::Absent | Index::DigestMismatch),
    };
    if !strict_ok {
        add("bundle_integrity_unverified");
    } else {
        if c.index == Index::Failed {
            add("bundle_failed");
        }
        if c.index == Index::ListsMissing {
            add("bundle_incomplete");
        }
    }
    if !c.decision_stage_present {
        add("decision_stage_artifacts_missing");
    }
    let (apply_ok, scs) = if truthy(&ap) {
        (get(&ap, "apply_ok")?, get(&ap, "sandbox_check_self")?)
    } else {
        (Value::Null, Value::Null)
    };
    Ok(Outcome {
        reasons,
        channel,
        apply_preflight_present: truthy(&ap),
        apply_ok,
        sandbox_check_self: scs,
    })
}

/// COMPATIBILITY.md, promotion 1: a truthy `apply_preflight.record` that is not an
/// object makes the reference raise; lith (SPEC §3.9) counts it as missing.
fn record_not_an_object(c: &Case) -> Option<Case> {
    let record = c.manifest.as_ref()?.get("apply_preflight")?.get("record")?;
    (truthy(record) && !record.is_object()).then(|| {
        let mut c = c.clone();
        c.manifest.as_mut().unwrap()["apply_preflight"]["record"] = Value::Null;
        c
    })
}

/// COMPATIBILITY.md, promotion 2–4: where lith's strict load is stricter.
fn lith_is_stricter(c: &Case, mut o: Outcome) -> Outcome {
    let state = c
        .status
        .as_ref()
        .map(|s| s.get("state").cloned().unwrap_or(Value::Null));
    let state_exact = match &state {
        // No run_status.json: its own reason, and strict load is not refused for it.
        None => true,
        Some(Value::String(s)) => ["complete", "failed", "in_progress"].contains(&s.as_str()),
        Some(_) => false,
    };
    let loaded_index = !matches!(c.index, Index::Absent);
    let in_progress = o.reasons.contains("bundle_in_progress");
    let mut add = |r: &str| {
        o.reasons.insert(r.to_string());
    };
    // 2. A state that is absent, empty, padded or not one of the three is a
    //    verification finding, so the strict load fails; a bundle in progress fails it
    //    however its state is spelled.
    if !state_exact || in_progress {
        add("bundle_integrity_unverified");
    }
    // 3. When the strict load fails, the index that did load still gives its own
    //    reasons.
    if loaded_index && c.index == Index::Failed {
        add("bundle_failed");
    }
    if loaded_index && c.index == Index::ListsMissing {
        add("bundle_incomplete");
    }
    // 4. An index whose status is `partial` is incomplete even with an empty
    //    missing[], as `lith verify` says (it exits 2 on it).
    if c.index == Index::PartialEmptyMissing {
        add("bundle_incomplete");
    }
    o
}

const DECISION_STAGE: [&str; 3] = [
    "runtime_results.json",
    "runtime_events.normalized.json",
    "expected_matrix.json",
];

fn write_case(dir: &Path, c: &Case) {
    std::fs::create_dir_all(dir).unwrap();
    if let Some(m) = &c.manifest {
        std::fs::write(dir.join("run_manifest.json"), m.to_string()).unwrap();
    }
    if let Some(s) = &c.status {
        std::fs::write(dir.join("run_status.json"), s.to_string()).unwrap();
    }
    // Nor the preflight from a separate file: a perfect one sits beside every case.
    let preflight = br#"{"sandbox_check_self": {"sandboxed": false}, "apply_ok": true}"#;
    let mut files: Vec<(&str, &[u8])> =
        vec![("summary.json", b"{}"), ("apply_preflight.json", preflight)];
    for (i, f) in DECISION_STAGE.iter().enumerate() {
        if c.decision_stage_present || i != 1 {
            files.push((f, b"{}"));
        }
    }
    for (f, b) in &files {
        std::fs::write(dir.join(f), b).unwrap();
    }
    let artifacts: Vec<Value> = files
        .iter()
        .map(|(f, b)| {
            let sha = if c.index == Index::DigestMismatch && *f == "summary.json" {
                "0".repeat(64)
            } else {
                sha256_hex(b)
            };
            json!({"path": f, "file_size": b.len(), "sha256": sha})
        })
        .collect();
    let (status, missing) = match c.index {
        Index::PartialEmptyMissing => ("partial", json!([])),
        Index::Failed => ("failed", json!([])),
        Index::ListsMissing => ("partial", json!(["oracle_results.json"])),
        _ => ("ok", json!([])),
    };
    if c.index != Index::Absent {
        let idx =
            json!({"run_id": "r1", "artifacts": artifacts, "missing": missing, "status": status});
        std::fs::write(dir.join("artifact_index.json"), idx.to_string()).unwrap();
    }
}

fn cases() -> Vec<Case> {
    let scs = [
        None,
        Some(Value::Null),
        Some(json!({})),
        Some(json!({"sandboxed": true})),
        Some(json!({"sandboxed": "true"})),
        Some(json!(0)),
        Some(json!(5)),
    ];
    let mut records = vec![
        None,
        Some(Value::Null),
        Some(json!({})),
        Some(json!("yes")),
        Some(json!([1])),
    ];
    for s in &scs {
        for ok in [json!(true), json!(false), json!("true"), Value::Null] {
            let mut r = json!({"apply_ok": ok});
            if let Some(s) = s {
                r["sandbox_check_self"] = s.clone();
            }
            records.push(Some(r));
        }
    }
    let mut preflights: Vec<Option<Value>> = vec![
        None,
        Some(Value::Null),
        Some(json!({})),
        Some(json!("p.json")),
        Some(json!(0)),
    ];
    preflights.extend(records.iter().map(|r| {
        Some(match r {
            None => json!({"path": "apply_preflight.json"}),
            Some(r) => json!({"record": r}),
        })
    }));
    let mut manifests: Vec<Option<Value>> = vec![None, Some(json!([])), Some(Value::Null)];
    for ch in [
        None,
        Some(json!("launchd_clean")),
        Some(json!("dev")),
        Some(json!(5)),
    ] {
        for p in &preflights {
            let mut m = json!({"run_id": "r1"});
            if let Some(ch) = &ch {
                m["channel"] = ch.clone();
            }
            if let Some(p) = p {
                m["apply_preflight"] = p.clone();
            }
            manifests.push(Some(m));
        }
    }
    let statuses = [
        None,
        Some(json!({"run_id": "r1", "state": "complete"})),
        // The reference never reads the channel from run_status.json.
        Some(json!({"run_id": "r1", "state": "complete", "channel": "launchd_clean"})),
        Some(json!({"run_id": "r1", "state": "failed"})),
        Some(json!({"run_id": "r1", "state": "in_progress"})),
        Some(json!({"run_id": "r1", "state": " in_progress "})),
        Some(json!({"run_id": "r1", "state": null})),
        Some(json!({"run_id": "r1", "state": 0})),
        Some(json!({"run_id": "r1", "state": 3})),
        Some(json!({"run_id": "r1"})),
        Some(json!([])),
    ];
    let indexes = [
        Index::Ok,
        Index::PartialEmptyMissing,
        Index::Failed,
        Index::ListsMissing,
        Index::Absent,
        Index::DigestMismatch,
    ];
    // The full cross product is large; every manifest meets every status once, and
    // each pair gets one index and one decision-stage setting in rotation, so every
    // value of every axis meets every value of every other axis at least once over
    // the manifests.
    let mut out = Vec::new();
    let mut k = 0usize;
    for m in &manifests {
        for s in &statuses {
            out.push(Case {
                manifest: m.clone(),
                status: s.clone(),
                index: indexes[k % indexes.len()],
                decision_stage_present: (k / indexes.len()).is_multiple_of(2),
            });
            k += 1;
        }
    }
    out
}

#[test]
fn promotion_agrees_with_the_reference_on_generated_bundles() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = VerifyOptions::new(Mode::Full, None);
    let cases = cases();
    assert!(cases.len() > 1500, "{}", cases.len());
    let (mut crashes, mut promotable) = (0, 0);
    for (i, c) in cases.iter().enumerate() {
        let dir = tmp.path().join(format!("{i}")).join("r1");
        write_case(&dir, c);
        let run = verify_run(&dir, "r1", &opts);
        let handle = lith::beneath::Dir::open(&dir).unwrap();
        let got = promotion::assess(&handle, &run, &DECISION_STAGE.map(String::from));
        let effective = record_not_an_object(c).unwrap_or_else(|| c.clone());
        match reference(&effective) {
            Err(Crash) => {
                crashes += 1;
                assert!(
                    got.is_err(),
                    "case {i} {c:?}: the reference raises, lith said {got:?}"
                );
            }
            Ok(want) => {
                let want = lith_is_stricter(c, want);
                let got = got.unwrap_or_else(|e| panic!("case {i} {c:?}: {e}"));
                if want.reasons.is_empty() {
                    promotable += 1;
                }
                assert_eq!(
                    got.promotable_decision_stage,
                    want.reasons.is_empty(),
                    "case {i} {c:?}"
                );
                let got_reasons: BTreeSet<String> =
                    got.reasons.iter().map(|r| r.to_string()).collect();
                assert_eq!(got_reasons, want.reasons, "case {i} {c:?}");
                let g = &got.gating_inputs;
                let value = |t: &lith::json_text::JsonText| -> serde_json::Value {
                    serde_json::from_str(t.get()).unwrap()
                };
                assert_eq!(value(&g.channel), want.channel, "case {i}");
                assert_eq!(
                    g.apply_preflight_present, want.apply_preflight_present,
                    "case {i}"
                );
                assert_eq!(value(&g.apply_ok), want.apply_ok, "case {i}");
                assert_eq!(
                    value(&g.sandbox_check_self),
                    want.sandbox_check_self,
                    "case {i}"
                );
            }
        }
    }
    // The generator reaches every branch: refusals, raises and clean promotions.
    assert!(crashes > 100, "{crashes}");
    assert!(promotable > 0, "{promotable}");
}

/// A corrupt run_manifest.json or run_status.json is exit 4 in `lith promote` and
/// in `lith build`, never a packet that says "missing".
#[test]
fn corrupt_promotion_inputs_are_runtime_errors() {
    for (file, body) in [
        ("run_manifest.json", "{\"channel\": "),
        ("run_manifest.json", "[]"),
        ("run_manifest.json", "{\"apply_preflight\": \"yes\"}"),
        ("run_status.json", "{\"run_id\": \"r1\", \"state\": 3}"),
    ] {
        let ws = crate::support::Workspace::new();
        ws.committed_run("out/r1", "complete", &[("a.txt", "a")]);
        ws.write(&format!("out/r1/{file}"), body);
        let r = ws.lith(&["promote", "out/r1", "--json"]);
        assert_eq!(r.code, 4, "{file} {body}: {r:?}");
        assert!(r.stderr.contains(file), "{r:?}");
        ws.write(
            "manifest.lith",
            "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"out\"])))",
        );
        let b = ws.lith(&["build"]);
        assert_eq!(b.code, 4, "{file} {body}: {b:?}");
    }
}

// ---- DoD: 0luka `tools/ops/dod_checker.py` -------------------------------------

const DOD_MANIFEST: &str = r#"(manifest (v "promethean.manifest/v1")
  (activity (feed "feed.jsonl") (operational-targets [PHASE_A]))
  (dod (docs "docs/dod") (phase-status "phase_status.yaml") (reports "reports/dod")))"#;

fn dod_doc(id: &str) -> String {
    format!("# DoD — {id}\n\n- **Phase / Task ID**: {id}\n- **Gate**: G1\n")
}

fn dod_json(ws: &crate::support::Workspace, args: &[&str], env: &[(&str, &str)]) -> (i32, Value) {
    let mut all = vec!["dod", "--json"];
    all.extend_from_slice(args);
    let r = ws.lith_env(&all, env);
    assert!(r.code != 4 && r.code != 64, "{r:?}");
    (r.code, r.json())
}

fn event(phase: &str, action: &str, ms: i64, drop: &[&str]) -> String {
    let mut e = json!({"phase_id": phase, "action": action, "emit_mode": "runtime_auto",
        "verifier_mode": "operational_proof", "tool": "t", "run_id": "r1",
        "ts_epoch_ms": ms, "ts_utc": "2026-11-01T00:00:00Z"});
    for k in drop {
        e.as_object_mut().unwrap().remove(*k);
    }
    e.to_string() + "\n"
}

/// `compute_exit_code` over the phases that `_is_fixture_phase` does not mark, under
/// `--all`; a phase asked for by name counts whatever it is.
#[test]
fn fixture_phases_are_left_out_of_the_all_exit_code() {
    let ws = crate::support::Workspace::new();
    ws.write("manifest.lith", DOD_MANIFEST);
    ws.write("docs/dod/DOD__PHASE_A.md", dod_doc("PHASE_A"));
    ws.write("docs/dod/DOD__PHASE_FIX.md", dod_doc("PHASE_FIX"));
    // PHASE_A is PARTIAL (a started event and nothing else); PHASE_FIX is DESIGNED.
    ws.write("feed.jsonl", event("PHASE_A", "started", 1_000, &[]));
    ws.write(
        "phase_status.yaml",
        "phases:\n  PHASE_A:\n    verdict: DESIGNED\n  PHASE_FIX:\n    verdict: DESIGNED\n    kind: fixture\n",
    );
    let (code, v) = dod_json(&ws, &["--all"], &[]);
    assert_eq!(v["phases"]["PHASE_FIX"]["verdict"], "DESIGNED");
    assert_eq!(v["phases"]["PHASE_FIX"]["fixture"], true);
    assert_eq!(v["phases"]["PHASE_A"]["verdict"], "PARTIAL");
    assert_eq!(code, 2, "the DESIGNED fixture does not make --all exit 3");
    let (code, _) = dod_json(&ws, &["--phase", "PHASE_FIX"], &[]);
    assert_eq!(code, 3, "asked for by name, the fixture counts");
    // Without the fixture marking, the same registry exits 3 as before.
    ws.write(
        "phase_status.yaml",
        "phases:\n  PHASE_A:\n    verdict: DESIGNED\n  PHASE_FIX:\n    verdict: DESIGNED\n    is_fixture: 'no'\n",
    );
    assert_eq!(dod_json(&ws, &["--all"], &[]).0, 3);
    // lith build follows --all.
    ws.write(
        "phase_status.yaml",
        "phases:\n  PHASE_A:\n    verdict: DESIGNED\n  PHASE_FIX:\n    verdict: DESIGNED\n    is_fixture: true\n",
    );
    assert_eq!(ws.lith(&["build"]).code, 2);
}

/// `str(evt.get("action")).lower()` and `str(phase_id).strip()`: `STARTED` for a
/// phase spelled ` PHASE_A ` is PHASE_A's started.
#[test]
fn actions_compare_without_case_and_phase_ids_are_trimmed() {
    let ws = crate::support::Workspace::new();
    ws.write("manifest.lith", DOD_MANIFEST);
    ws.write("docs/dod/DOD__PHASE_A.md", dod_doc("PHASE_A"));
    ws.write(
        "feed.jsonl",
        event(" PHASE_A ", "STARTED", 1_000, &[])
            + &event("PHASE_A\t", "Completed", 2_000, &[])
            + &event("PHASE_A", "verified", 3_000, &[]),
    );
    let (code, v) = dod_json(&ws, &["--phase", "PHASE_A"], &[]);
    let p = &v["phases"]["PHASE_A"];
    assert_eq!(p["checks"]["activity_chain"]["valid"], true, "{p:#}");
    assert_eq!(p["checks"]["activity_chain"]["proof_mode"], "operational");
    assert_eq!(p["verdict"], "PROVEN", "{p:#}");
    assert_eq!(code, 0);
}

/// Under enforcement (`LUKA_REQUIRE_OPERATIONAL_PROOF=1`, a targeted phase), the
/// reference adds `taxonomy.incomplete_event` when an event of the chain lacks any
/// of the seven taxonomy keys (`ts_utc` and `phase_id` included, which the
/// unenforced check does not ask for), or when the chain has no event at all.
#[test]
fn taxonomy_incomplete_event_under_enforcement_as_the_reference_adds_it() {
    const ENFORCE: (&str, &str) = ("LUKA_REQUIRE_OPERATIONAL_PROOF", "1");
    let chain = |drop: &[&str]| {
        event("PHASE_A", "started", 1_000, &[])
            + &event("PHASE_A", "completed", 2_000, drop)
            + &event("PHASE_A", "verified", 3_000, &[])
    };
    // (feed, enforced?, taxonomy.incomplete_event expected)
    let cases: Vec<(String, bool, bool)> = vec![
        (chain(&[]), true, false),
        (chain(&["ts_utc"]), true, true),
        (chain(&["ts_utc"]), false, false),
        // Without phase_id the event still belongs to the phase through `task_id`.
        (
            chain(&["phase_id"]).replace(
                "\"action\":\"completed\"",
                "\"action\":\"completed\",\"task_id\":\"PHASE_A\"",
            ),
            true,
            true,
        ),
        (String::new(), true, true),
        (String::new(), false, false),
    ];
    for (feed, enforced, want) in cases {
        let ws = crate::support::Workspace::new();
        ws.write("manifest.lith", DOD_MANIFEST);
        ws.write("docs/dod/DOD__PHASE_A.md", dod_doc("PHASE_A"));
        ws.write("feed.jsonl", &feed);
        let env: &[(&str, &str)] = if enforced { &[ENFORCE] } else { &[] };
        let (_, v) = dod_json(&ws, &["--phase", "PHASE_A"], env);
        let missing = v["phases"]["PHASE_A"]["missing"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(
            missing.contains(&json!("taxonomy.incomplete_event")),
            want,
            "enforced {enforced}, feed {feed:?}: {missing:?}"
        );
        if want {
            assert!(missing.contains(&json!("proof.synthetic_not_allowed")));
            assert_eq!(v["phases"]["PHASE_A"]["verdict"], "PARTIAL");
        }
    }
}

// ---- Queue and receipts: fork_tales `TaskQueue` and `_parse_receipt_line` -----------

/// `str(task.get("dedupe_key", "")).strip()` on replay, and on enqueue the given key
/// stripped or `KIND:` + `json.dumps(payload, sort_keys=True, ensure_ascii=False)`:
/// a task the producer wrote dedupes lith's enqueue of the same work.
#[test]
fn lith_and_the_producer_dedupe_each_others_tasks() {
    let ws = crate::support::Workspace::new();
    // As the producer writes them: one keyed " a " (stripped to "a" in its index),
    // one with the default key of {"b": 1, "a": "é"}.
    let producer = [
        json!({"v": "eta-mu.task-queue/v1", "ts": "2026-02-15T19:32:00+00:00", "op": "enqueue",
               "task": {"id": "task-aaaaaaaaaaaa", "kind": "k", "payload": {}, "dedupe_key": " a ",
                        "owner": "o", "status": "pending", "created_at": "2026-02-15T19:32:00+00:00"}}),
        json!({"v": "eta-mu.task-queue/v1", "ts": "2026-02-15T19:32:01+00:00", "op": "enqueue",
               "task": {"id": "task-bbbbbbbbbbbb", "kind": "k", "payload": {"b": 1, "a": "é"},
                        "dedupe_key": "k:{\"a\": \"é\", \"b\": 1}",
                        "owner": "o", "status": "pending", "created_at": "2026-02-15T19:32:01+00:00"}}),
    ];
    ws.write(
        "q.jsonl",
        producer
            .iter()
            .map(|e| e.to_string() + "\n")
            .collect::<String>(),
    );
    let enqueue = |key: &str, payload: &str| {
        let r = ws.lith(&[
            "queue",
            "enqueue",
            "--log",
            "q.jsonl",
            "--receipts",
            "r.log",
            "--kind",
            "k",
            "--dedupe-key",
            key,
            "--payload",
            payload,
            "--owner",
            "o",
            "--json",
        ]);
        assert_eq!(r.code, 0, "{r:?}");
        r.json()
    };
    let a = enqueue("a", "{}");
    assert_eq!(a["deduped"], true, "{a:#}");
    assert_eq!(a["task"]["id"], "task-aaaaaaaaaaaa");
    let spaced = enqueue("  a\t", "{}");
    assert_eq!(spaced["deduped"], true, "{spaced:#}");
    let b = enqueue("   ", r#"{"a":"é","b":1}"#);
    assert_eq!(
        b["deduped"], true,
        "an all-space key falls back to the default: {b:#}"
    );
    assert_eq!(b["task"]["id"], "task-bbbbbbbbbbbb");
    let before = ws.read("q.jsonl");
    assert_eq!(before.lines().count(), 2, "nothing was appended");
}

#[test]
fn dod_with_no_documents_checks_nothing_and_says_so() {
    let ws = crate::support::Workspace::new();
    ws.write("manifest.lith", DOD_MANIFEST);
    let r = ws.lith(&["dod", "--all"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("dod.input_missing"), "{r:?}");
    assert!(r.stderr.contains("docs/dod"), "{r:?}");
}
