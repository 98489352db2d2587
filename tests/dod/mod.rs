//! `lith run`, `lith dod` and `lith drift`: the round trip from emitter to verifier,
//! every verdict branch, the anti-synthetic rule, the registry, and drift's 0/2/4.

use std::process::Command;

use serde_json::{Value, json};

use crate::support::{Workspace, copy_tree, corpus, sha256_hex};

const MANIFEST: &str = r#"(manifest (v "promethean.manifest/v1")
  (activity (feed "feed.jsonl") (heartbeat-file "state/heartbeat.json") (idle-threshold-sec 900) (drift-threshold-sec 120)
            (operational-targets [PHASE_A]))
  (dod (docs "docs/dod") (phase-status "phase_status.yaml") (reports "reports/dod")))"#;

fn doc(id: &str, extra: &str) -> String {
    format!(
        "# DoD — {id}\n\n## 0. Metadata\n- **Phase / Task ID**: {id}\n- **Gate**: G1\n{extra}\n"
    )
}

fn git(ws: &Workspace, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.email=t@example.org", "-c", "user.name=t"])
        .args(args)
        .current_dir(ws.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn dod(ws: &Workspace, args: &[&str], env: &[(&str, &str)]) -> (i32, Value) {
    let mut all = vec!["dod", "--json"];
    all.extend_from_slice(args);
    let r = ws.lith_env(&all, env);
    assert!(r.code != 64 && r.code != 101, "{r:?}");
    if r.code == 4 {
        return (4, json!({"stderr": r.stderr}));
    }
    (r.code, r.json())
}

const ENFORCE: (&str, &str) = ("LUKA_REQUIRE_OPERATIONAL_PROOF", "1");

fn hand_chain(ws: &Workspace, phase: &str, mode: &str) {
    let mut s = String::new();
    for (i, a) in ["started", "completed", "verified"].iter().enumerate() {
        s.push_str(
            &json!({"phase_id": phase, "action": a, "emit_mode": mode, "verifier_mode": "operational_proof",
                    "tool": "hand", "run_id": "r1", "ts_epoch_ms": 1_790_000_000_000i64 + i as i64 * 1000, "ts_utc": "x"})
            .to_string(),
        );
        s.push('\n');
    }
    ws.write(
        "feed.jsonl",
        ws.read_opt("feed.jsonl").unwrap_or_default() + &s,
    );
}

#[test]
fn lith_run_then_lith_dod_proves_a_phase_in_a_git_repository() {
    let ws = Workspace::new();
    ws.write("manifest.lith", MANIFEST);
    git(&ws, &["init", "-q"]);
    git(&ws, &["commit", "-q", "--allow-empty", "-m", "start"]);
    let sha = git(&ws, &["rev-parse", "HEAD"]);
    ws.write(
        "docs/dod/DOD__PHASE_A.md",
        doc(
            "PHASE_A",
            &format!("- **Commit SHA**: {sha}\n- path: `out/result.json`"),
        ),
    );
    let r = ws.lith(&[
        "run",
        "--phase",
        "PHASE_A",
        "--evidence",
        "out/result.json",
        "--heartbeat-sec",
        "1",
        "--",
        "sh",
        "-c",
        "mkdir -p out && sleep 1.5 && echo '{\"ok\":1}' > out/result.json",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let events: Vec<Value> = ws
        .read("feed.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.first(), Some(&"started"));
    assert!(actions.contains(&"heartbeat"), "{actions:?}");
    assert_eq!(&actions[actions.len() - 2..], ["completed", "verified"]);
    let ms: Vec<i64> = events
        .iter()
        .map(|e| e["ts_epoch_ms"].as_i64().unwrap())
        .collect();
    assert!(
        ms.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing: {ms:?}"
    );
    let run_ids: std::collections::BTreeSet<&str> = events
        .iter()
        .map(|e| e["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(run_ids.len(), 1);
    for e in events.iter().filter(|e| e["action"] == "heartbeat") {
        assert!(
            e.get("phase_id").is_none(),
            "a heartbeat never carries a phase: {e}"
        );
    }
    let completed = &events[events.len() - 2];
    assert_eq!(
        completed["hashes"]["out/result.json"],
        sha256_hex(b"{\"ok\":1}\n")
    );
    assert!(ws.read("state/heartbeat.json").contains("heartbeat"));

    let (code, v) = dod(&ws, &["--phase", "PHASE_A"], &[ENFORCE]);
    assert_eq!(code, 0, "{v:#}");
    let p = &v["phases"]["PHASE_A"];
    assert_eq!(p["verdict"], "PROVEN");
    assert_eq!(p["missing"], json!([]));
    assert_eq!(p["checks"]["activity_chain"]["proof_mode"], "operational");
    assert_eq!(v["schema_version"], "dod_report_v2");
    assert_eq!(v["git_head"], sha.as_str());
    let latest: Value =
        serde_json::from_str(&ws.read("reports/dod/dod_report.latest.json")).unwrap();
    assert_eq!(latest["phases"]["PHASE_A"]["verdict"], "PROVEN");
    let copies = std::fs::read_dir(ws.join("reports/dod")).unwrap().count();
    assert_eq!(copies, 2, "the latest report and a timestamped copy");
}

#[test]
fn a_hand_written_chain_is_partial_only_when_operational_proof_is_required() {
    let ws = Workspace::new();
    ws.write("manifest.lith", MANIFEST);
    ws.write("docs/dod/DOD__PHASE_A.md", doc("PHASE_A", ""));
    ws.write("docs/dod/DOD__PHASE_B.md", doc("PHASE_B", ""));
    hand_chain(&ws, "PHASE_A", "manual_append");
    hand_chain(&ws, "PHASE_B", "manual_append");
    let (code, v) = dod(&ws, &[], &[]);
    assert_eq!(code, 0, "enforcement is opt-in: {v:#}");
    assert_eq!(v["phases"]["PHASE_A"]["verdict"], "PROVEN");
    assert_eq!(v["phases"]["PHASE_A"]["checks"]["synthetic_detected"], true);
    let (code, v) = dod(&ws, &[], &[ENFORCE]);
    assert_eq!(code, 2, "{v:#}");
    assert_eq!(v["phases"]["PHASE_A"]["verdict"], "PARTIAL");
    assert_eq!(
        v["phases"]["PHASE_A"]["missing"],
        json!(["proof.synthetic_not_allowed"])
    );
    // Only the manifest's operational targets are held to it.
    assert_eq!(v["phases"]["PHASE_B"]["verdict"], "PROVEN");
    let (code, _) = dod(&ws, &["--require-operational-proof"], &[]);
    assert_eq!(code, 2, "the flag works like the environment");
    // Under enforcement the feed is parsed strictly.
    ws.write("feed.jsonl", ws.read("feed.jsonl") + "not json\n");
    assert_eq!(dod(&ws, &[], &[ENFORCE]).0, 4);
    assert_eq!(
        dod(&ws, &[], &[]).0,
        0,
        "leniently, the bad line is skipped"
    );
}

#[test]
fn every_verdict_branch() {
    struct Case {
        name: &'static str,
        doc: Option<String>,
        chain: &'static [&'static str],
        registry: &'static str,
        verdict: &'static str,
        missing: &'static [&'static str],
    }
    let ev = |a: &str, i: i64| {
        json!({"phase_id": "P", "action": a, "emit_mode": "runtime_auto", "verifier_mode": "operational_proof", "tool": "t",
               "run_id": "r", "ts_epoch_ms": 1_790_000_000_000i64 + i, "ts_utc": "x"})
        .to_string()
    };
    let cases = [
        Case {
            name: "designed: metadata, no activity",
            doc: Some(doc("P", "")),
            chain: &[],
            registry: "",
            verdict: "DESIGNED",
            missing: &[
                "activity.completed",
                "activity.started",
                "activity.verified",
            ],
        },
        Case {
            name: "partial: no metadata, no activity",
            doc: Some("# nothing\n".into()),
            chain: &[],
            registry: "",
            verdict: "PARTIAL",
            missing: &[
                "activity.completed",
                "activity.started",
                "activity.verified",
                "metadata.gate_missing",
                "metadata.phase_id_missing",
            ],
        },
        Case {
            name: "partial: started only",
            doc: Some(doc("P", "")),
            chain: &["started"],
            registry: "",
            verdict: "PARTIAL",
            missing: &["activity.completed", "activity.verified"],
        },
        Case {
            name: "designed: evidence finding, no started",
            doc: Some(doc("P", "- path: `nope.json`")),
            chain: &[],
            registry: "",
            verdict: "DESIGNED",
            missing: &[
                "activity.completed",
                "activity.started",
                "activity.verified",
                "evidence.path_missing:nope.json",
            ],
        },
        Case {
            name: "partial: commit unreachable",
            doc: Some(doc(
                "P",
                "- **Commit SHA**: 0123456789abcdef0123456789abcdef01234567",
            )),
            chain: &["started", "completed", "verified"],
            registry: "",
            verdict: "PARTIAL",
            missing: &["metadata.commit_sha_unreachable"],
        },
        Case {
            name: "partial: traversal",
            doc: Some(doc("P", "- path: `../../etc/passwd`")),
            chain: &["started", "completed", "verified"],
            registry: "",
            verdict: "PARTIAL",
            missing: &["evidence.path_traversal:../../etc/passwd"],
        },
        Case {
            name: "partial: hash mismatch",
            doc: Some(doc(
                "P",
                &format!("- path: `ev.json` sha256:{}", "0".repeat(64)),
            )),
            chain: &["started", "completed", "verified"],
            registry: "",
            verdict: "PARTIAL",
            missing: &["evidence.hash_mismatch:ev.json"],
        },
        Case {
            name: "partial: hash path missing",
            doc: Some(doc(
                "P",
                &format!("- file: gone.json sha256:{}", "0".repeat(64)),
            )),
            chain: &["started", "completed", "verified"],
            registry: "",
            verdict: "PARTIAL",
            missing: &[
                "evidence.hash_path_missing:gone.json",
                "evidence.path_missing:gone.json",
            ],
        },
        Case {
            name: "partial: one of two claims on a file is wrong",
            doc: Some(doc(
                "P",
                &format!(
                    "- path: `ev.json` sha256:{}\n- path: `ev.json` sha256:{}",
                    sha256_hex(b"{}"),
                    "0".repeat(64)
                ),
            )),
            chain: &["started", "completed", "verified"],
            registry: "",
            verdict: "PARTIAL",
            missing: &["evidence.hash_mismatch:ev.json"],
        },
        Case {
            name: "partial: two claims on a missing file",
            doc: Some(doc(
                "P",
                &format!(
                    "- file: gone.json sha256:{}\n- file: gone.json sha256:{}",
                    "0".repeat(64),
                    "1".repeat(64)
                ),
            )),
            chain: &["started", "completed", "verified"],
            registry: "",
            verdict: "PARTIAL",
            missing: &[
                "evidence.hash_path_missing:gone.json",
                "evidence.path_missing:gone.json",
            ],
        },
        Case {
            name: "partial: gate",
            doc: Some(doc("P", "")),
            chain: &["started", "completed", "verified"],
            registry: "phases:\n  P:\n    requires: [Q]\n  Q:\n    verdict: PARTIAL\n",
            verdict: "PARTIAL",
            missing: &["gate.requires_not_proven:Q"],
        },
        Case {
            name: "partial: registry without artifact",
            doc: Some(doc("P", "")),
            chain: &["started", "completed", "verified"],
            registry: "phases:\n  P:\n    verdict: PROVEN\n    evidence_path: missing.json\n",
            verdict: "PARTIAL",
            missing: &["registry.verdict_without_artifact"],
        },
        Case {
            name: "proven",
            doc: Some(doc(
                "P",
                &format!("- path: `ev.json` sha256:{}", sha256_hex(b"{}")),
            )),
            chain: &["started", "completed", "verified"],
            registry: "phases:\n  P:\n    verdict: PROVEN\n    evidence_path: ev.json\n",
            verdict: "PROVEN",
            missing: &[],
        },
        Case {
            name: "partial: no document",
            doc: None,
            chain: &["started", "completed", "verified"],
            registry: "",
            verdict: "PARTIAL",
            missing: &["metadata.document_missing"],
        },
    ];
    for c in cases {
        let ws = Workspace::new();
        ws.write("manifest.lith", MANIFEST);
        ws.write("ev.json", "{}");
        if let Some(d) = &c.doc {
            ws.write("docs/dod/DOD__P.md", d);
        }
        if !c.registry.is_empty() {
            ws.write("phase_status.yaml", c.registry);
        }
        let feed: String = c
            .chain
            .iter()
            .enumerate()
            .map(|(i, a)| ev(a, i as i64) + "\n")
            .collect();
        ws.write("feed.jsonl", feed);
        let (code, v) = dod(&ws, &["--phase", "P"], &[]);
        let p = &v["phases"]["P"];
        assert_eq!(p["verdict"], c.verdict, "{}: {p:#}", c.name);
        assert_eq!(p["missing"], json!(c.missing), "{}", c.name);
        let want = match c.verdict {
            "DESIGNED" => 3,
            "PARTIAL" => 2,
            _ => 0,
        };
        assert_eq!(code, want, "{}", c.name);
    }
}

/// Bounded in time: a file that many claims of a document name is hashed once
/// (the previous lith hashed it per claim: 500 claims on a 20 MB file took 7.5 s,
/// and a 1 MiB document holds some 10,000).
#[test]
fn a_file_that_many_claims_name_is_hashed_once() {
    let ws = Workspace::new();
    ws.write("manifest.lith", MANIFEST);
    ws.write("big.bin", vec![7u8; 8 << 20]);
    let right = sha256_hex(&vec![7u8; 8 << 20]);
    let mut claims = format!("- path: `big.bin` sha256:{right}\n");
    for i in 0..2_000 {
        claims.push_str(&format!("- path: `big.bin` sha256:{i:064x}\n"));
    }
    ws.write("docs/dod/DOD__P.md", doc("P", &claims));
    let (code, v) = dod(&ws, &["--phase", "P"], &[]);
    assert_eq!(code, 3, "{v:#}");
    assert_eq!(
        v["phases"]["P"]["missing"]
            .to_string()
            .matches("evidence.hash_mismatch:big.bin")
            .count(),
        1
    );
}

#[test]
fn heartbeats_never_count_and_a_phase_on_a_heartbeat_is_a_finding() {
    let ws = Workspace::new();
    ws.write("manifest.lith", MANIFEST);
    ws.write("docs/dod/DOD__PHASE_A.md", doc("PHASE_A", ""));
    let hb = |a: &str, i: i64| {
        json!({"phase_id": "PHASE_A", "action": a, "category": "heartbeat", "ts_epoch_ms": 1_790_000_000_000i64 + i}).to_string() + "\n"
    };
    ws.write("feed.jsonl", hb("heartbeat", 0) + &hb("heartbeat", 1));
    let (_, v) = dod(&ws, &[], &[]);
    let p = &v["phases"]["PHASE_A"];
    assert_eq!(p["checks"]["activity_chain"]["events"], 0);
    assert!(
        p["missing"]
            .as_array()
            .unwrap()
            .contains(&json!("heartbeat.phase_id_forbidden")),
        "{p:#}"
    );
}

#[test]
fn update_status_rewrites_the_registry_and_keeps_requires() {
    let ws = Workspace::new();
    ws.write("manifest.lith", MANIFEST);
    ws.write("docs/dod/DOD__PHASE_A.md", doc("PHASE_A", ""));
    ws.write("docs/dod/DOD__PHASE_B.md", doc("PHASE_B", ""));
    hand_chain(&ws, "PHASE_A", "runtime_auto");
    ws.write("phase_status.yaml", "phases:\n  PHASE_A:\n    verdict: DESIGNED\n    requires:\n  PHASE_B:\n    verdict: DESIGNED\n    requires:\n      - PHASE_A\n    owner: ops\n");
    let r = ws.lith_env(
        &["dod", "--all", "--update-status"],
        &[("SOURCE_DATE_EPOCH", "1790000100")],
    );
    assert_eq!(r.code, 3, "{r:?}");
    let y = ws.read("phase_status.yaml");
    let reg = serde_json::to_value(
        lith::dod::registry::Registry::load(&ws.join("phase_status.yaml"))
            .unwrap()
            .unwrap()
            .doc,
    )
    .unwrap();
    assert_eq!(reg["phases"]["PHASE_A"]["verdict"], "PROVEN", "{y}");
    assert_eq!(
        reg["phases"]["PHASE_A"]["evidence_path"], "reports/dod/20260921T141500Z_dod.json",
        "{y}"
    );
    assert_eq!(reg["phases"]["PHASE_B"]["verdict"], "DESIGNED");
    assert_eq!(
        reg["phases"]["PHASE_B"]["requires"],
        json!(["PHASE_A"]),
        "{y}"
    );
    assert_eq!(
        reg["phases"]["PHASE_B"]["owner"], "ops",
        "unknown fields are kept"
    );
    assert!(ws.join("reports/dod/20260921T141500Z_dod.json").is_file());
    // --missing-only shows just the phases with findings.
    let r = ws.lith(&["dod", "--missing-only", "--json"]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        v.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["PHASE_B"]
    );
}

#[test]
fn drift_returns_0_2_and_4() {
    let ws = Workspace::new();
    ws.write("manifest.lith", MANIFEST);
    let t = 1_790_000_000_000i64;
    let feed = [
        json!({"phase_id": "P", "action": "started", "emit_mode": "runtime_auto", "ts_epoch_ms": t, "evidence": ["out/a.json"]}),
        json!({"action": "heartbeat", "category": "heartbeat", "emit_mode": "runtime_auto", "ts_epoch_ms": t + 60_000}),
    ]
    .iter()
    .map(|e| e.to_string() + "\n")
    .collect::<String>();
    ws.write("feed.jsonl", &feed);
    let at = |secs: i64| {
        (
            "SOURCE_DATE_EPOCH",
            Box::leak(secs.to_string().into_boxed_str()) as &str,
        )
    };
    // 100 s after the heartbeat, 160 s after the activity: fresh.
    let r = ws.lith_env(&["drift", "--json"], &[at(1_790_000_160)]);
    assert_eq!(r.code, 0, "{r:?}");
    let v = r.json();
    assert_eq!(v["schema_version"], "idle_drift_report_v1");
    assert_eq!(v["checks"]["idle"]["age_sec"], 160);
    assert_eq!(v["checks"]["drift"]["age_sec"], 100);
    assert_eq!(v["evidence"], json!(["out/a.json"]));
    let written: Value =
        serde_json::from_str(&ws.read("reports/drift/idle_drift.latest.json")).unwrap();
    assert_eq!(written, v);
    // Heartbeat stale, activity fresh.
    let r = ws.lith_env(&["drift", "--json"], &[at(1_790_000_500)]);
    assert_eq!(
        (r.code, &r.json()["missing"]),
        (2, &json!(["drift.heartbeat.stale"]))
    );
    // A fresher heartbeat file counts, and becomes the evidence.
    ws.write(
        "state/heartbeat.json",
        json!({"ts_epoch_ms": t + 480_000, "action": "heartbeat"}).to_string(),
    );
    let r = ws.lith_env(&["drift", "--json"], &[at(1_790_000_500)]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["evidence"], json!(["state/heartbeat.json"]));
    // Both stale.
    let r = ws.lith_env(&["drift", "--json"], &[at(1_790_010_000)]);
    assert_eq!(
        (r.code, &r.json()["missing"]),
        (2, &json!(["drift.heartbeat.stale", "idle.system.stale"]))
    );
    // Corrupt and missing feeds are runtime errors.
    ws.write("feed.jsonl", feed.clone() + "{broken\n");
    let r = ws.lith(&["drift"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("error.log_parse_failure"), "{r:?}");
    std::fs::remove_file(ws.join("feed.jsonl")).unwrap();
    let r = ws.lith(&["drift"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stderr.contains("error.log_missing_or_unreadable"),
        "{r:?}"
    );
}

#[test]
fn lith_run_returns_the_commands_code_and_fails_open() {
    let ws = Workspace::new();
    ws.write("manifest.lith", MANIFEST);
    let r = ws.lith(&[
        "run",
        "--phase",
        "PHASE_A",
        "--evidence",
        "never.json",
        "--",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(r.code, 3, "{r:?}");
    let events: Vec<Value> = ws
        .read("feed.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["action"], "completed");
    assert_eq!(events[1]["status"], "failed");
    // Evidence that never appeared: completed, but no verified.
    let r = ws.lith(&[
        "run",
        "--phase",
        "PHASE_B",
        "--evidence",
        "never.json",
        "--",
        "true",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!ws.read("feed.jsonl").contains("\"verified\""));
    // A feed that cannot be written: a warning, and the command's code all the same.
    ws.write("blocker", "a file where a folder should be");
    let r = ws.lith(&[
        "run",
        "--phase",
        "P",
        "--feed",
        "blocker/feed.jsonl",
        "--",
        "sh",
        "-c",
        "exit 6",
    ]);
    assert_eq!(r.code, 6, "{r:?}");
    assert!(
        r.stderr.contains("warning: cannot write the activity feed"),
        "{r:?}"
    );
    // lith's own failures before the command starts: 4, or 64 for usage.
    assert_eq!(
        ws.lith(&["run", "--phase", "P", "--", "/no/such/program"])
            .code,
        4
    );
    assert_eq!(ws.lith(&["run", "--phase", "P"]).code, 64);
}

#[test]
fn concurrent_runs_never_interleave_feed_lines() {
    let ws = Workspace::new();
    ws.write("manifest.lith", MANIFEST);
    let children: Vec<_> = (0..8)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_lith"))
                .args([
                    "run",
                    "--phase",
                    &format!("PHASE_{i}"),
                    "--heartbeat-sec",
                    "1",
                    "--",
                    "sleep",
                    "1.2",
                ])
                .current_dir(ws.path())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert_eq!(c.wait().unwrap().code(), Some(0));
    }
    let lines: Vec<String> = ws.read("feed.jsonl").lines().map(str::to_string).collect();
    assert!(lines.len() >= 8 * 3, "{}", lines.len());
    for l in &lines {
        serde_json::from_str::<Value>(l).expect("every line is one whole event");
    }
}

#[test]
#[ignore = "needs LITH_CORPUS"]
fn the_real_feed_and_documents_evaluate_without_errors() {
    let ws = Workspace::new();
    copy_tree(&corpus().join("0luka"), ws.path());
    ws.write(
        "manifest.lith",
        r#"(manifest (v "promethean.manifest/v1") (activity (feed "tests/fixtures/ci_activity_feed.jsonl") (operational-targets [PHASE_15_5_3]))
           (dod (docs "docs/dod") (phase-status "core/governance/phase_status.yaml") (reports "observability/reports/dod_checker")))"#,
    );
    let (code, v) = dod(&ws, &[], &[]);
    assert_eq!(code, 2, "{v:#}");
    let phases = v["phases"].as_object().unwrap();
    assert_eq!(phases.len(), 16);
    for (id, p) in phases {
        // The corpus has none of 0luka's commits: each is reported unreachable.
        if p["meta"]["commit_sha"].is_string() {
            assert!(
                p["missing"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("metadata.commit_sha_unreachable")),
                "{id}"
            );
        }
        assert_eq!(p["verdict"], "PARTIAL", "{id}");
    }
    let p = &phases["PHASE_15_5_3"];
    assert_eq!(p["checks"]["activity_chain"]["proof_mode"], "operational");
    assert_eq!(p["checks"]["activity_chain"]["valid"], true);
    assert!(p["missing"].as_array().unwrap().contains(&json!(
        "evidence.path_missing:tests/fixtures/dummy_evidence.json"
    )));
    // Strict parsing of the real feed succeeds too.
    let (code, v) = dod(&ws, &["--phase", "PHASE_15_5_3"], &[ENFORCE]);
    assert_eq!(code, 2, "{v:#}");
    assert!(
        !v["phases"]["PHASE_15_5_3"]["missing"]
            .as_array()
            .unwrap()
            .contains(&json!("proof.synthetic_not_allowed"))
    );
    // Drift on the real feed: its events are from February, so both checks are stale.
    let r = ws.lith(&["drift", "--json"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(
        r.json()["missing"],
        json!(["drift.heartbeat.stale", "idle.system.stale"])
    );
}

/// SPEC §3.4: DoD evidence is opened beneath the workspace's handle. A thread swaps
/// a parent folder of an evidence file for a symlink to a folder outside whose file
/// matches the document's hash claim; the claim must never be satisfied by it. On
/// the check-then-open-by-name resolver this failed within a few hundred tries.
#[test]
fn swapping_an_evidence_folder_for_a_symlink_never_satisfies_a_claim_from_outside() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let ws = Workspace::new();
    ws.write("evidence/sub/f.json", "inside!");
    ws.write("evil/f.json", "outside");
    let outside_sha = crate::support::sha256_hex(b"outside");
    let doc = format!(
        "# DoD\n\n- **Phase / Task ID**: P\n- **Gate**: G\n\n## Evidence\n- path: `evidence/sub/f.json` sha256:{outside_sha}\n"
    );
    let base = ws.join("evidence");
    std::os::unix::fs::symlink(ws.join("evil"), base.join("link")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = crate::support::swap_folder_and_link(base.clone(), stop.clone());
    let registry = lith::dod::registry::Registry::default();
    let feed = lith::activity::Feed::default();
    let inputs = lith::dod::Inputs {
        workspace: ws.path(),
        registry: &registry,
        feed: &feed,
        require_operational: None,
    };
    for i in 0..3000 {
        let r = lith::dod::evaluate("P", Some(&doc), &inputs);
        assert!(
            r.missing
                .iter()
                .any(|m| m.ends_with(":evidence/sub/f.json")),
            "iteration {i}: the claim was satisfied by the file outside: {:?}",
            r.missing
        );
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
}

/// SPEC §11: the phase registry and DoD documents are files people write, read up
/// to 2 MiB and 1 MiB: a 3 MiB registry of `0,` (parsed, YAML costs fifty times its
/// text) is refused with its size and the cap, and an oversized document is not
/// read, so its phase has no document (`metadata.document_too_large`, never
/// PROVEN); each in under 64 MiB.
#[test]
fn registries_and_documents_past_their_caps_are_not_parsed() {
    let ws = Workspace::new();
    ws.write("manifest.lith", MANIFEST);
    ws.write("docs/dod/DOD__PHASE_A.md", doc("PHASE_A", ""));
    hand_chain(&ws, "PHASE_A", "runtime_auto");
    ws.write(
        "phase_status.yaml",
        format!(
            "phases:\n  PHASE_A:\n    verdict: DESIGNED\njunk: [{}0]\n",
            "0,".repeat(3 << 19)
        ),
    );
    let (r, peak) = ws.lith_peak_mib(&["dod", "--all"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stderr
            .contains("larger than the 2097152 bytes lith reads of it"),
        "{r:?}"
    );
    assert!(peak < 64, "dod held {peak} MiB");

    ws.write(
        "phase_status.yaml",
        "phases:\n  PHASE_A:\n    verdict: DESIGNED\n",
    );
    ws.write(
        "docs/dod/DOD__PHASE_A.md",
        doc("PHASE_A", &"- path: `x`\n".repeat(100_000)),
    );
    let (r, peak) = ws.lith_peak_mib(&["dod", "--all", "--json"]);
    assert!(peak < 64, "dod held {peak} MiB");
    let v = r.json();
    let missing = v["phases"]["PHASE_A"]["missing"].to_string();
    assert!(missing.contains("metadata.document_too_large"), "{missing}");
    assert!(!missing.contains("metadata.document_missing"), "{missing}");
    assert_ne!(v["phases"]["PHASE_A"]["verdict"], "PROVEN");
}

#[test]
fn an_event_naming_more_evidence_than_lith_keeps_leaves_its_phase_unproven() {
    let ws = Workspace::demo();
    let feed = "tests/fixtures/demo/activity/activity_feed.jsonl";
    let nightly = |ws: &Workspace| {
        let (_, v) = dod(ws, &["--phase", "PHASE_NIGHTLY"], &[]);
        v["phases"]["PHASE_NIGHTLY"].clone()
    };
    assert_eq!(nightly(&ws)["verdict"], "PROVEN");
    // A later event of the phase names its one evidence file once more than an
    // event keeps (65,536 strings). Refused as a bad line, it was skipped by a
    // lenient read and the phase stayed proven on its other events; kept in part, the
    // phase is never proven on part of its evidence.
    let path = "tests/fixtures/demo/evidence/nightly_summary.json";
    let event = json!({"phase_id": "PHASE_NIGHTLY", "action": "dispatch_check",
        "emit_mode": "runtime_auto", "ts_epoch_ms": 1_795_308_200_000i64,
        "evidence": vec![path; 65_537]});
    ws.write(feed, ws.read(feed) + &event.to_string() + "\n");
    let phase = nightly(&ws);
    assert_eq!(phase["verdict"], "PARTIAL", "{}", phase["missing"]);
    assert!(
        phase["missing"]
            .as_array()
            .unwrap()
            .contains(&json!("activity.evidence_omitted")),
        "{}",
        phase["missing"]
    );
    // Drift shows the latest evidence within the page's room and counts the rest
    // (65,536 paths of 49 bytes in their markup made a page of 5 MB).
    let r = ws.lith(&["build", "-q"]);
    assert_eq!(r.code, 3, "{r:?}");
    let page = ws.read("site/drift/index.html");
    assert!(page.len() < 1_000_000, "{} bytes", page.len());
    let shown = page
        .matches(&format!("<code class=\"wrap\">{path}</code>"))
        .count();
    let more = page
        .split(" more: this page has no room for them")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("no count of those not shown"));
    assert!(shown > 1_000, "{shown}");
    assert_eq!(shown + more, 65_536);
    // …and says, before the list, that the event listed more than the 65,536 lith
    // kept of it, where it used to say after it that the report lists them all.
    assert!(
        page.contains(
            "The event that names the latest evidence listed more than lith keeps of one event"
        ),
        "{page}"
    );
    assert!(!page.contains("list them all"));
    assert!(page.find("than lith keeps") < page.find("Evidence: "));
    let rep: Value = serde_json::from_str(&ws.read("site/report.json")).unwrap();
    let drift = &rep["drift"]["report"];
    assert_eq!(drift["evidence_cut"], true, "{}", drift["evidence_cut"]);
    assert_eq!(drift["evidence"].as_array().unwrap().len(), 65_536);
    let r = ws.lith(&["drift", "--json"]);
    assert_eq!(r.json()["evidence_cut"], true);
    let r = ws.lith(&["drift"]);
    assert!(
        r.stdout
            .contains("(--json lists them; the event listed more than lith keeps of one event)"),
        "{}",
        r.stdout
    );
    // An event within what lith keeps says nothing of the kind, in any output.
    let event = json!({"phase_id": "PHASE_NIGHTLY", "action": "dispatch_check",
        "emit_mode": "runtime_auto", "ts_epoch_ms": 1_795_308_300_000i64,
        "evidence": [path]});
    ws.write(feed, ws.read(feed) + &event.to_string() + "\n");
    let r = ws.lith(&["drift", "--json"]);
    assert!(r.json().get("evidence_cut").is_none(), "{}", r.stdout);
    let r = ws.lith(&["build", "-q"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(!ws.read("site/drift/index.html").contains("than lith keeps"));
}

/// SPEC §11: a phase page shows a DoD document's metadata values cut at 240
/// characters: a document of two 300 KB values made a page of 1.5 MB.
#[test]
fn a_documents_metadata_values_are_cut_on_its_page() {
    let ws = Workspace::demo();
    let long = "<".repeat(300_000);
    ws.write(
        "tests/fixtures/demo/docs/dod/DOD__PHASE_BIG.md",
        format!(
            "# DoD — PHASE_BIG\n\n## 0. Metadata\n- **Phase / Task ID**: PHASE_BIG\n- **Gate**: {long}\n- **Related SOT Section**: {long}\n"
        ),
    );
    let r = ws.lith(&["build", "-q"]);
    assert_eq!(r.code, 3, "{r:?}");
    let page = ws.read("site/phases/PHASE_BIG/index.html");
    assert!(page.len() < 1_000_000, "{} bytes", page.len());
    let cut = format!("<bdi>{}…</bdi>", "&#60;".repeat(240));
    assert_eq!(page.matches(&cut).count(), 2, "both values, cut");
    let rep: serde_json::Value = serde_json::from_str(&ws.read("site/report.json")).unwrap();
    assert_eq!(
        rep["dod"]["phases"]["PHASE_BIG"]["meta"]["gate"]
            .as_str()
            .unwrap()
            .len(),
        long.len(),
        "the report keeps them whole"
    );
}
