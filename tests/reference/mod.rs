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
                decision_stage_present: (k / indexes.len()) % 2 == 0,
            });
            k += 1;
        }
    }
    out
}

#[test]
fn promotion_agrees_with_the_reference_on_generated_bundles() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = VerifyOptions {
        mode: Mode::Full,
        repo_root: None,
        progress: None,
        decision_stage: None,
    };
    let cases = cases();
    assert!(cases.len() > 1500, "{}", cases.len());
    let (mut crashes, mut promotable) = (0, 0);
    for (i, c) in cases.iter().enumerate() {
        let dir = tmp.path().join(format!("{i}")).join("r1");
        write_case(&dir, c);
        let run = verify_run(&dir, "r1", &opts);
        let got = promotion::assess(&dir, &run, &DECISION_STAGE.map(String::from));
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
                let got_reasons: BTreeSet<String> = got.reasons.iter().cloned().collect();
                assert_eq!(got_reasons, want.reasons, "case {i} {c:?}");
                let g = &got.gating_inputs;
                assert_eq!(g.channel, want.channel, "case {i}");
                assert_eq!(
                    g.apply_preflight_present, want.apply_preflight_present,
                    "case {i}"
                );
                assert_eq!(g.apply_ok, want.apply_ok, "case {i}");
                assert_eq!(g.sandbox_check_self, want.sandbox_check_self, "case {i}");
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
