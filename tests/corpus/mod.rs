//! Checks against the real corpus. They need `LITH_CORPUS` and are ignored by
//! default; CI runs them with `cargo test -- --include-ignored`.

use serde_json::Value;

use crate::support::{Workspace, copy_tree, corpus};

fn bundles_workspace() -> Workspace {
    let ws = Workspace::new();
    copy_tree(&corpus().join("sandbox-boostrap"), ws.path());
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\")\n  (bundles (roots [\"book/experiments/*/out\" \"book/experiments/*/out_runtime/*\"])))",
    );
    ws
}

#[test]
#[ignore = "needs LITH_CORPUS"]
fn corpus_runs_verify_as_their_manifest_says() {
    let ws = bundles_workspace();
    let cases = [
        (
            "book/experiments/anchor-filter-map/out/04ebd64f-94a3-466c-a516-aa152e0dd3fb",
            13,
            17,
        ),
        (
            "book/experiments/lifecycle-lockdown/out_runtime/launchd_clean_force/4406014b-65cc-4753-a550-1200d966734d",
            12,
            8,
        ),
        (
            "book/experiments/lifecycle-lockdown/out_runtime/launchd_clean_force/2f48c512-4056-4fc3-b57c-a0e6330e708b",
            12,
            8,
        ),
        (
            "book/experiments/lifecycle-lockdown/out_runtime/launchd_clean_enforce/8d20c8f6-6ed3-4ca6-b0bd-da17599b18a9",
            12,
            8,
        ),
    ];
    for (dir, indexed, unindexed) in cases {
        let r = ws.lith(&["verify", dir, "--json"]);
        assert_eq!(r.code, 0, "{dir}: {r:?}");
        let v = r.json();
        assert_eq!(v["run"]["counts"]["ok"], indexed, "{dir}");
        assert_eq!(v["run"]["counts"]["total"], indexed, "{dir}");
        assert_eq!(
            v["run"]["unindexed"].as_array().unwrap().len(),
            unindexed,
            "{dir}"
        );
    }
    // LATEST of anchor-filter-map names a run folder that is absent.
    let r = ws.lith(&["verify", "book/experiments/anchor-filter-map/out", "--json"]);
    assert_eq!(
        (r.code, r.json()["reason"].as_str()),
        (2, Some("latest_invalid")),
        "{r:?}"
    );
    // LATEST of launchd_clean_force resolves.
    let r = ws.lith(&[
        "verify",
        "book/experiments/lifecycle-lockdown/out_runtime/launchd_clean_force",
        "--json",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.json()["run"]["run_id"],
        "4406014b-65cc-4753-a550-1200d966734d"
    );
}

#[test]
#[ignore = "needs LITH_CORPUS"]
fn corpus_build_reports_every_root() {
    let ws = bundles_workspace();
    let r = ws.lith(&["build"]);
    assert_eq!(r.code, 2, "only the invalid LATEST falls short: {r:?}");
    let rep: Value = serde_json::from_str(&ws.read("site/report.json")).unwrap();
    let t = &rep["bundles"]["totals"];
    assert_eq!(
        (
            t["runs"].as_u64(),
            t["verified"].as_u64(),
            t["artifacts_ok"].as_u64()
        ),
        (Some(4), Some(4), Some(49))
    );
    let roots = rep["bundles"]["roots"].as_array().unwrap();
    let adv = roots
        .iter()
        .find(|r| r["path"] == "book/experiments/runtime-adversarial/out")
        .unwrap();
    assert_eq!(adv["runs"].as_array().unwrap().len(), 0);
    assert_eq!(
        adv["skipped"][0]["name"],
        "2acebfef-65bc-493b-84c4-bd14d379b492"
    );
    let afm = roots
        .iter()
        .find(|r| r["path"] == "book/experiments/anchor-filter-map/out")
        .unwrap();
    assert_eq!(afm["latest"]["valid"], false);
    assert_eq!(
        afm["files"],
        serde_json::json!(["LATEST", "path_witnesses.json", "promotion_packet.json"])
    );
    assert_eq!(afm["witnesses"]["total"], 0);
    let codes: Vec<&str> = roots
        .iter()
        .flat_map(|r| r["findings"].as_array().unwrap())
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["latest_invalid", "root_has_no_runs"]);
}

#[test]
#[ignore = "needs LITH_CORPUS"]
fn every_lith_and_lisp_file_of_the_corpus_reads() {
    let mut n = 0;
    for e in walkdir::WalkDir::new(corpus().join("fork_tales")) {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy();
        if name.ends_with(".lith") || name.ends_with(".lisp") {
            lith::lith::sexpr::read_file(e.path()).unwrap_or_else(|err| panic!("{err}"));
            n += 1;
        }
    }
    assert!(n >= 7, "read {n} files");
    let m = lith::lith::Manifest::load(&corpus().join("fork_tales/manifest.lith")).unwrap();
    let ps = m.proof_schema.unwrap();
    assert_eq!(ps.required_refs.len(), 4);
    assert_eq!(ps.required_hashes, ["sha256:pi_zip", "sha256:manifest"]);
    assert_eq!(ps.host_handle.as_deref(), Some("github:err"));
    assert!(m.warnings.is_empty());
}

#[test]
#[ignore = "needs LITH_CORPUS"]
fn the_corpus_manifest_builds_unchanged() {
    let ws = Workspace::new();
    copy_tree(&corpus().join("fork_tales"), ws.path());
    let r = ws.lith(&["build"]);
    assert_eq!(
        r.code, 2,
        "the push-truth gate is blocked: no Π zip in the corpus: {r:?}"
    );
    let rep: Value = serde_json::from_str(&ws.read("site/report.json")).unwrap();
    assert_eq!(
        rep["gates"]["push_truth"]["reasons"],
        serde_json::json!(["missing-proof-hashes"])
    );
    assert_eq!(rep["manifest"]["v"], "promethean.manifest/v1");
    assert_eq!(rep["manifest"]["truth_unit"], ":pi-package+host");
}

#[test]
#[ignore = "needs LITH_CORPUS"]
fn corpus_runs_are_promotable_as_their_data_implies() {
    let ws = bundles_workspace();
    for dir in [
        "book/experiments/anchor-filter-map/out/04ebd64f-94a3-466c-a516-aa152e0dd3fb",
        "book/experiments/lifecycle-lockdown/out_runtime/launchd_clean_force",
        "book/experiments/lifecycle-lockdown/out_runtime/launchd_clean_force/2f48c512-4056-4fc3-b57c-a0e6330e708b",
        "book/experiments/lifecycle-lockdown/out_runtime/launchd_clean_enforce/8d20c8f6-6ed3-4ca6-b0bd-da17599b18a9",
    ] {
        let r = ws.lith(&[
            "promote",
            dir,
            "--require-promotable",
            "--json",
            "-o",
            "packet.json",
        ]);
        assert_eq!(r.code, 0, "{dir}: {r:?}");
        let p = r.json();
        assert_eq!(
            p["promotability"]["reasons"],
            serde_json::json!([]),
            "{dir}"
        );
        assert_eq!(
            p["promotability"]["gating_inputs"]["channel"],
            "launchd_clean"
        );
        assert_eq!(p["promotability"]["gating_inputs"]["apply_ok"], true);
        assert!(
            p["run_manifest"]
                .as_str()
                .unwrap()
                .starts_with("book/experiments/"),
            "{dir}"
        );
    }
    // The root whose LATEST names a pruned run refuses, as strict loading does.
    let r = ws.lith(&["promote", "book/experiments/anchor-filter-map/out"]);
    assert_eq!(r.code, 2, "{r:?}");
    // The packet lith writes agrees with the one the producer left at that root.
    let r = ws.lith(&[
        "promote",
        "book/experiments/anchor-filter-map/out/04ebd64f-94a3-466c-a516-aa152e0dd3fb",
        "--json",
        "-o",
        "p.json",
    ]);
    let ours = r.json();
    let theirs: Value = serde_json::from_str(
        &ws.read("book/experiments/anchor-filter-map/out/promotion_packet.json"),
    )
    .unwrap();
    assert_eq!(
        ours["promotability"]["gating_inputs"],
        theirs["promotability"]["gating_inputs"]
    );
    assert_eq!(
        ours["promotability"]["promotable_decision_stage"],
        theirs["promotability"]["promotable_decision_stage"]
    );
}

#[test]
#[ignore = "needs LITH_CORPUS"]
fn corpus_repair_of_an_intact_run_changes_nothing() {
    let ws = bundles_workspace();
    let dir = "book/experiments/lifecycle-lockdown/out_runtime/launchd_clean_enforce/8d20c8f6-6ed3-4ca6-b0bd-da17599b18a9";
    assert_eq!(ws.lith(&["reindex", dir, "--strict"]).code, 0);
    let r = ws.lith(&["reindex", dir, "--repair", "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.json()["changes"],
        serde_json::json!([]),
        "schema versions of .json and .jsonl agree with the producer's"
    );
    assert_eq!(ws.lith(&["verify", dir]).code, 0);
}

#[test]
#[ignore = "needs LITH_CORPUS"]
fn the_real_receipts_log_parses_to_the_end_with_exactly_the_contract_breaking_lines() {
    let dir = corpus().join("fork_tales");
    let log = dir.join("receipts.log");
    let contract = dir.join(".opencode/promptdb/contracts/receipts.v2.contract.lisp");
    let ws = Workspace::new();
    let r = ws.lith(&[
        "receipts",
        "check",
        log.to_str().unwrap(),
        "--contract",
        contract.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let v = r.json();
    // 1206 lines, 334 of them blank: 872 receipts, every one read.
    assert_eq!(v["receipts"], 872);
    assert_eq!(v["lines_with_findings"], 657);
    assert_eq!(
        v["lines_by_finding"],
        serde_json::json!({"malformed_field": 93, "missing_key": 545, "unknown_kind": 562})
    );
    let on = |line: u64| -> Vec<(String, Option<String>)> {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["line"] == line)
            .map(|f| {
                (
                    f["kind"].as_str().unwrap().to_string(),
                    f["key"].as_str().map(str::to_string),
                )
            })
            .collect()
    };
    let s = |k: &str, key: Option<&str>| (k.to_string(), key.map(str::to_string));
    // The first lines follow the contract (Greek and CJK text included).
    for line in 1..=357 {
        assert_eq!(on(line), [], "line {line}");
    }
    // A kind the contract does not list.
    assert_eq!(on(358), [s("unknown_kind", Some("kind"))]);
    // A JSON document pasted into the log: each of its lines is malformed.
    assert_eq!(on(614)[0], s("malformed_field", None));
    // A receipt without pi, host and manifest.
    assert_eq!(
        on(654),
        [
            s("missing_key", Some("pi")),
            s("missing_key", Some("host")),
            s("missing_key", Some("manifest"))
        ]
    );
    // A line number pasted before the key: `889: ts=…` has no `ts`.
    assert!(on(889).contains(&s("missing_key", Some("ts"))));
    assert_eq!(
        v["extra_keys"]["changes"], 33,
        "keys outside the contract are information, not findings"
    );
    // Without the contract file, the built-in defaults give the same answer.
    let d = ws
        .lith(&["receipts", "check", log.to_str().unwrap(), "--json"])
        .json();
    assert_eq!(d["lines_by_finding"], v["lines_by_finding"]);
}
