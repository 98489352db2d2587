//! `lith verify` on fixture bundles: one test per status, refusal and exit code.

use serde_json::{Value, json};

use crate::support::{Workspace, sha256_hex};

const R: &str = "out/run-1";

fn good(ws: &Workspace) {
    ws.committed_run(
        R,
        "complete",
        &[
            ("summary.json", "{\"ok\":true}\n"),
            ("logs/a.log", "line\n"),
        ],
    );
}

fn statuses(v: &Value) -> Vec<(String, String)> {
    v["run"]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["path"].as_str().unwrap().to_string(),
                a["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_verified_run_exits_0() {
    let ws = Workspace::new();
    good(&ws);
    let r = ws.lith(&["verify", R, "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v = r.json();
    assert_eq!(v["verified"], true);
    assert_eq!(v["run"]["verification"], "verified");
    assert_eq!(v["run"]["counts"]["ok"], 2);
    let text = ws.lith(&["verify", R]);
    assert_eq!(text.code, 0);
    assert!(text.stdout.contains("2/2 artifacts ok"), "{text:?}");
    assert!(text.stdout.trim_end().ends_with("verified"), "{text:?}");
}

#[test]
fn a_bundle_root_resolves_through_latest() {
    let ws = Workspace::new();
    good(&ws);
    ws.write("out/LATEST", "  run-1\n");
    let r = ws.lith(&["verify", "out", "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["latest"]["run_id"], "run-1");
}

#[test]
fn invalid_latest_values_are_refused() {
    for value in ["../run-1", "/etc", "run-2", "", "run-1/..", "a\\b"] {
        let ws = Workspace::new();
        good(&ws);
        ws.write("out/LATEST", value);
        let r = ws.lith(&["verify", "out", "--json"]);
        assert_eq!(r.code, 2, "{value:?}: {r:?}");
        assert_eq!(r.json()["reason"], "latest_invalid", "{value:?}");
    }
    let ws = Workspace::new();
    good(&ws);
    let r = ws.lith(&["verify", "out"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stdout.contains("latest_missing"), "{r:?}");
}

#[test]
fn digest_mismatch_keeps_expected_and_actual() {
    let ws = Workspace::new();
    good(&ws);
    ws.write(&format!("{R}/summary.json"), "{\"ok\":fals}\n");
    let r = ws.lith(&["verify", R, "--json"]);
    assert_eq!(r.code, 2, "{r:?}");
    let v = r.json();
    let a = &v["run"]["artifacts"][0];
    assert_eq!(a["status"], "digest_mismatch");
    assert_eq!(a["expected_sha256"], sha256_hex(b"{\"ok\":true}\n"));
    assert_eq!(a["actual_sha256"], sha256_hex(b"{\"ok\":fals}\n"));
    assert_eq!(a["expected_size"], a["actual_size"]);
    // --fast checks sizes only, so a same-size change goes unnoticed by design.
    assert_eq!(ws.lith(&["verify", R, "--fast"]).code, 0);
}

#[test]
fn size_mismatch_and_missing() {
    let ws = Workspace::new();
    good(&ws);
    ws.write(&format!("{R}/summary.json"), "{}\n");
    std::fs::remove_file(ws.join(&format!("{R}/logs/a.log"))).unwrap();
    let r = ws.lith(&["verify", R, "--json", "--fast"]);
    assert_eq!(r.code, 2, "{r:?}");
    let v = r.json();
    assert_eq!(
        statuses(&v),
        [
            ("summary.json".into(), "size_mismatch".into()),
            ("logs/a.log".into(), "missing".into())
        ]
    );
    assert_eq!(v["run"]["artifacts"][0]["actual_size"], 3);
}

#[test]
fn unsafe_paths_are_never_opened_even_with_a_correct_digest() {
    let ws = Workspace::new();
    let secret = "top secret\n";
    ws.write("outside", secret);
    ws.write(
        &format!("{R}/run_status.json"),
        r#"{"run_id":"run-1","state":"complete"}"#,
    );
    let entry = |p: &str| json!({"path": p, "file_size": secret.len(), "sha256": sha256_hex(secret.as_bytes())});
    ws.index(
        R,
        json!({"run_id": "run-1", "status": "ok", "missing": [], "artifacts": [
            entry("../../outside"), entry("/etc/hostname"), entry("~/outside"), entry("C:\\outside"),
            entry("\\\\?\\C:\\outside"), entry("a/../../../outside")
        ]}),
    );
    let r = ws.lith(&["verify", R, "--json"]);
    assert_eq!(r.code, 2, "{r:?}");
    let v = r.json();
    for (path, status) in statuses(&v) {
        assert_eq!(status, "unsafe_path", "{path}");
    }
    for a in v["run"]["artifacts"].as_array().unwrap() {
        assert!(a["actual_sha256"].is_null(), "{a}");
    }
}

#[test]
fn symlinks_leaving_the_run_are_unsafe_inside_ones_are_fine() {
    let ws = Workspace::new();
    let secret = "top secret\n";
    ws.write("outside/secret.txt", secret);
    ws.write(&format!("{R}/real.txt"), secret);
    ws.write(
        &format!("{R}/run_status.json"),
        r#"{"run_id":"run-1","state":"complete"}"#,
    );
    let run = ws.join(R);
    std::os::unix::fs::symlink(ws.join("outside/secret.txt"), run.join("link.txt")).unwrap();
    std::os::unix::fs::symlink(ws.join("outside"), run.join("dirlink")).unwrap();
    std::os::unix::fs::symlink("real.txt", run.join("inside.txt")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/elsewhere", run.join("dangling.txt")).unwrap();
    let e = |p: &str| json!({"path": p, "file_size": secret.len(), "sha256": sha256_hex(secret.as_bytes())});
    ws.index(
        R,
        json!({"run_id": "run-1", "status": "ok", "missing": [], "artifacts": [
            e("link.txt"), e("dirlink/secret.txt"), e("dirlink/absent.txt"), e("inside.txt"), e("dangling.txt")
        ]}),
    );
    let r = ws.lith(&["verify", R, "--json"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(
        statuses(&r.json()),
        [
            ("link.txt".into(), "unsafe_path".into()),
            ("dirlink/secret.txt".into(), "unsafe_path".into()),
            ("dirlink/absent.txt".into(), "unsafe_path".into()),
            ("inside.txt".into(), "ok".into()),
            ("dangling.txt".into(), "unsafe_path".into()),
        ]
    );
}

#[test]
fn folders_pipes_and_link_loops_are_not_files() {
    let ws = Workspace::new();
    ws.write(
        &format!("{R}/run_status.json"),
        r#"{"run_id":"run-1","state":"complete"}"#,
    );
    ws.write(&format!("{R}/sub/x"), "x");
    let run = ws.join(R);
    let fifo = run.join("pipe");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    std::os::unix::fs::symlink("loop", run.join("loop")).unwrap();
    let e = |p: &str| json!({"path": p, "file_size": 0, "sha256": "0".repeat(64)});
    ws.index(
        R,
        json!({"run_id": "run-1", "status": "ok", "artifacts": [e("sub"), e("pipe"), e("loop")]}),
    );
    let r = ws.lith(&["verify", R, "--json"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(
        statuses(&r.json()),
        [
            ("sub".into(), "not_a_file".into()),
            ("pipe".into(), "not_a_file".into()),
            ("loop".into(), "unreadable".into()),
        ]
    );
}

#[test]
fn duplicate_entries_fail_only_when_they_disagree() {
    let ws = Workspace::new();
    ws.committed_run(R, "complete", &[("a.txt", "a")]);
    let a = json!({"path": "a.txt", "file_size": 1, "sha256": sha256_hex(b"a")});
    ws.index(
        R,
        json!({"run_id": "run-1", "status": "ok", "artifacts": [a.clone(), a.clone()]}),
    );
    let r = ws.lith(&["verify", R, "--json"]);
    assert_eq!(r.code, 0, "same digest twice is a warning: {r:?}");
    assert!(r.stdout.contains("duplicate_entry"));
    let b = json!({"path": "./a.txt", "file_size": 1, "sha256": sha256_hex(b"b")});
    ws.index(
        R,
        json!({"run_id": "run-1", "status": "ok", "artifacts": [a, b]}),
    );
    let r = ws.lith(&["verify", R, "--json"]);
    assert_eq!(r.code, 2, "{r:?}");
    let v = r.json();
    let f: Vec<&Value> = v["run"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "duplicate_entry")
        .collect();
    assert_eq!(f[0]["severity"], "partial");
}

#[test]
fn repeated_entries_are_listed_up_to_a_hundred_of_each_kind_and_counted() {
    let ws = Workspace::new();
    ws.committed_run(R, "complete", &[("a.txt", "a")]);
    let a = json!({"path": "a.txt", "file_size": 1, "sha256": sha256_hex(b"a")});
    let differing = |n: u64| json!({"path": "a.txt", "file_size": n, "sha256": sha256_hex(b"a")});
    let findings = |artifacts: Vec<Value>| {
        ws.index(
            R,
            json!({"run_id": "run-1", "status": "ok", "artifacts": artifacts}),
        );
        let r = ws.lith(&["verify", R, "--json"]);
        let v = r.json();
        let f: Vec<(String, String)> = v["run"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["code"] == "duplicate_entry")
            .map(|f| {
                (
                    f["severity"].as_str().unwrap().to_string(),
                    f["message"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        (r.code, f)
    };
    let of = |f: &[(String, String)], severity: &str, says: &str| {
        f.iter()
            .filter(|(s, m)| s == severity && m.contains(says))
            .count()
    };
    // 150 repeats of the same entry: 100 listed and one that counts them all; a
    // warning, so the run still passes.
    let (code, f) = findings(std::iter::repeat_n(a.clone(), 151).collect());
    assert_eq!(code, 0, "{f:?}");
    assert_eq!(of(&f, "warning", "is indexed more than once"), 100);
    assert_eq!(f.len(), 101, "{f:?}");
    let count = |f: &[(String, String)]| {
        let counts: Vec<&(String, String)> = f
            .iter()
            .filter(|(_, m)| m.contains("entries repeat a path"))
            .collect();
        assert_eq!(counts.len(), 1, "{f:?}");
        counts[0].clone()
    };
    let (severity, says) = count(&f);
    assert_eq!(severity, "warning");
    assert!(
        says.starts_with("150 entries repeat a path indexed before, 0 of them"),
        "{says}"
    );
    // 150 repeats and 250 that differ: 100 of each listed, and the count, which
    // fails the run whichever are listed.
    let mut list = vec![a.clone()];
    list.extend(std::iter::repeat_n(a, 150));
    list.extend((2..252).map(differing));
    let (code, f) = findings(list);
    assert_eq!(code, 2, "{f:?}");
    assert_eq!(of(&f, "warning", "is indexed more than once"), 100);
    assert_eq!(of(&f, "partial", "with different sizes or digests"), 100);
    assert_eq!(f.len(), 201, "{f:?}");
    let (severity, says) = count(&f);
    assert_eq!(severity, "partial");
    assert!(
        says.starts_with(
            "400 entries repeat a path indexed before, 250 of them with a different size or digest"
        ),
        "{says}"
    );
}

#[test]
fn repository_relative_paths_resolve_from_any_working_directory() {
    let ws = Workspace::new();
    let dir = "book/experiments/x/out/run-1";
    ws.write(
        &format!("{dir}/run_status.json"),
        r#"{"run_id":"run-1","state":"complete"}"#,
    );
    ws.write(&format!("{dir}/summary.json"), "{}");
    ws.index(
        dir,
        json!({"run_id": "run-1", "status": "ok", "artifacts": [
            {"path": format!("{dir}/summary.json"), "file_size": 2, "sha256": sha256_hex(b"{}")}
        ]}),
    );
    let r = ws.lith(&["verify", dir, "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["run"]["artifacts"][0]["rel"], "summary.json");
    assert_eq!(r.json()["run"]["unindexed"], json!([]));
    // An explicit --repo-root gives the same answer.
    let r = ws.lith(&["verify", dir, "--repo-root", ".", "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn unindexed_files_are_listed_but_bookkeeping_is_not() {
    let ws = Workspace::new();
    good(&ws);
    ws.write(&format!("{R}/extra/notes.txt"), "n");
    ws.write(&format!("{R}/repair_log.json"), "{}");
    let r = ws.lith(&["verify", R, "--json"]);
    assert_eq!(r.code, 0, "unindexed files are information: {r:?}");
    assert_eq!(r.json()["run"]["unindexed"], json!(["extra/notes.txt"]));
}

/// Listing never goes through a link: a symlinked folder is one unindexed entry,
/// and the names in the folder it points to (outside the run) are not listed.
/// Nested folders are listed in name order, depth first.
#[test]
fn unindexed_listing_names_a_symlinked_folder_without_entering_it() {
    let ws = Workspace::new();
    good(&ws);
    ws.write("outside/secret-name.txt", "s");
    std::os::unix::fs::symlink(ws.join("outside"), ws.join(&format!("{R}/b_link"))).unwrap();
    ws.write(&format!("{R}/a/z.txt"), "z");
    ws.write(&format!("{R}/a/b/c.txt"), "c");
    ws.write(&format!("{R}/c.txt"), "c");
    let r = ws.lith(&["verify", R, "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.json()["run"]["unindexed"],
        json!(["a/b/c.txt", "a/z.txt", "b_link", "c.txt"])
    );
}

#[test]
fn in_progress_and_uncommitted_runs_are_refused() {
    let ws = Workspace::new();
    ws.write(
        "out/live/run_status.json",
        r#"{"run_id":"live","state":"in_progress"}"#,
    );
    let r = ws.lith(&["verify", "out/live", "--json"]);
    assert_eq!(
        (r.code, r.json()["reason"].as_str()),
        (2, Some("bundle_in_progress")),
        "{r:?}"
    );
    ws.write(
        "out/dead/run_status.json",
        r#"{"run_id":"dead","state":"failed"}"#,
    );
    let r = ws.lith(&["verify", "out/dead", "--json"]);
    assert_eq!(
        (r.code, r.json()["reason"].as_str()),
        (2, Some("index_missing")),
        "{r:?}"
    );
}

#[test]
fn index_status_missing_list_and_odd_states_fail() {
    let ws = Workspace::new();
    good(&ws);
    let mut idx: Value =
        serde_json::from_str(&ws.read(&format!("{R}/artifact_index.json"))).unwrap();
    idx["missing"] = json!(["baseline.json"]);
    idx["status"] = json!("partial");
    ws.index(R, idx);
    let r = ws.lith(&["verify", R, "--json"]);
    assert_eq!(r.code, 2, "{r:?}");
    let codes: Vec<String> = r.json()["run"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes, ["index_lists_missing", "index_status_not_ok"]);

    let ws = Workspace::new();
    good(&ws);
    ws.write(
        &format!("{R}/run_status.json"),
        r#"{"run_id":"run-9","state":"exploded","extra":1}"#,
    );
    let r = ws.lith(&["verify", R, "--json"]);
    assert_eq!(r.code, 2, "{r:?}");
    let v = r.json();
    let codes: Vec<&str> = v["run"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["run_id_mismatch", "state_invalid"]);
    assert_eq!(
        v["run"]["run_status"],
        json!({"extra": 1, "run_id": "run-9", "state": "exploded"}),
        "run_status is the file's own object, unknown fields kept"
    );
    assert!(
        v["run"].get("state").is_none(),
        "the state is written once, in run_status"
    );
}

#[test]
fn corrupt_json_is_a_runtime_error_with_line_and_column() {
    let ws = Workspace::new();
    good(&ws);
    ws.write(
        &format!("{R}/artifact_index.json"),
        "{\n  \"artifacts\": [\n    {\"path\": }\n",
    );
    let r = ws.lith(&["verify", R]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stdout.contains("artifact_index.json: 3:14: invalid JSON"),
        "{r:?}"
    );

    let ws = Workspace::new();
    good(&ws);
    ws.write(&format!("{R}/run_status.json"), "[1,2");
    assert_eq!(ws.lith(&["verify", R]).code, 4);

    let ws = Workspace::new();
    good(&ws);
    ws.index(R, json!({"run_id": "run-1", "status": "ok", "artifacts": [{"path": "a", "file_size": 1, "sha256": "nothex"}]}));
    let r = ws.lith(&["verify", R]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stdout
            .contains("artifacts[0]: `sha256` of \"a\" is \"nothex\"; expected 64 hex digits"),
        "{r:?}"
    );
}

#[test]
fn a_10_mb_line_is_handled() {
    let ws = Workspace::new();
    good(&ws);
    let mut garbage = String::from("{\"artifacts\": [\"");
    garbage.push_str(&"x".repeat(10 * 1024 * 1024));
    ws.write(&format!("{R}/artifact_index.json"), &garbage);
    let r = ws.lith(&["verify", R]);
    assert_eq!(r.code, 4, "{}", &r.stdout[..r.stdout.len().min(500)]);
    assert!(
        r.stdout.len() < 10_000,
        "the error message must not echo the line"
    );
    // A huge but valid value in run_status.json is kept, not a crash.
    let ws = Workspace::new();
    good(&ws);
    let big = format!(
        "{{\"run_id\":\"run-1\",\"state\":\"complete\",\"note\":\"{}\"}}",
        "y".repeat(10 * 1024 * 1024)
    );
    ws.write(&format!("{R}/run_status.json"), &big);
    let r = ws.lith(&["verify", R]);
    assert_eq!(
        r.code,
        0,
        "a long value is kept, not a crash: {}",
        &r.stdout[..r.stdout.len().min(500)]
    );
}

#[test]
fn run_status_as_a_symlink_is_not_followed() {
    let ws = Workspace::new();
    good(&ws);
    ws.write("elsewhere.json", r#"{"run_id":"run-1","state":"complete"}"#);
    std::fs::remove_file(ws.join(&format!("{R}/run_status.json"))).unwrap();
    std::os::unix::fs::symlink(
        ws.join("elsewhere.json"),
        ws.join(&format!("{R}/run_status.json")),
    )
    .unwrap();
    let r = ws.lith(&["verify", R]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stdout.contains("symbolic link"), "{r:?}");
}

#[test]
fn unverified_view_never_claims_completeness() {
    let ws = Workspace::new();
    good(&ws);
    ws.write(&format!("{R}/summary.json"), "changed!!!!!\n");
    std::fs::remove_file(ws.join(&format!("{R}/logs/a.log"))).unwrap();
    ws.write(&format!("{R}/stray.txt"), "s");
    let r = ws.lith(&["verify", R, "--unverified", "--json"]);
    assert_eq!(r.code, 2, "{r:?}");
    let v = r.json();
    assert_eq!(v["complete"], false);
    assert_eq!(v["mode"], "unverified");
    assert_eq!(v["missing"], json!(["logs/a.log"]));
    assert_eq!(v["digest_mismatches"], json!(["summary.json"]));
    assert_eq!(v["unindexed"], json!(["stray.txt"]));
    // Even a clean bundle is not called complete.
    let ws = Workspace::new();
    good(&ws);
    let r = ws.lith(&["verify", R, "--unverified", "--json"]);
    assert_eq!((r.code, &r.json()["complete"]), (0, &json!(false)));
    // And it opens an in-progress run that strict mode refuses.
    ws.write(
        "out/live/run_status.json",
        r#"{"run_id":"live","state":"in_progress"}"#,
    );
    ws.write("out/live/partial.txt", "p");
    let r = ws.lith(&["verify", "out/live", "--unverified", "--json"]);
    assert_eq!(r.json()["unindexed"], json!(["partial.txt"]), "{r:?}");
}

#[test]
fn usage_errors_exit_64_and_help_exits_0() {
    let ws = Workspace::new();
    assert_eq!(ws.lith(&["verify"]).code, 64);
    assert_eq!(ws.lith(&["verify", "x", "--no-such-flag"]).code, 64);
    assert_eq!(ws.lith(&["frobnicate"]).code, 64);
    assert_eq!(ws.lith(&[]).code, 64);
    assert_eq!(ws.lith(&["--jobs", "0", "build"]).code, 64);
    let h = ws.lith(&["--help"]);
    assert_eq!(h.code, 0);
    assert!(h.stdout.contains("Exit codes"), "{h:?}");
    assert_eq!(ws.lith(&["--version"]).code, 0);
}

#[test]
fn a_bundle_that_does_not_exist_is_a_runtime_error() {
    let ws = Workspace::new();
    let r = ws.lith(&["verify", "nowhere"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stderr.contains("nowhere: cannot open the bundle"),
        "{r:?}"
    );
}

/// SPEC §3.4: `lith commit` and `lith reindex --repair` write the index, the repair
/// log and `LATEST` beneath the handles they read through. Written by name (as they
/// were), the run folder swapped for a link to another folder while the run was
/// hashed put the index in that folder.
#[test]
fn swapping_the_run_folder_for_a_symlink_never_makes_a_writer_write_outside_it() {
    use lith::bundle::commit::{CommitOptions, commit};
    use lith::bundle::lock::LockMode;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let ws = Workspace::new();
    for i in 0..40 {
        ws.write(&format!("out/sub/f{i:02}.txt"), "x".repeat(4096));
    }
    ws.write(
        "out/sub/run_status.json",
        r#"{"run_id":"sub","state":"complete"}"#,
    );
    // The folder the link leads to holds a run still in progress: committing it for
    // itself is refused, and it has no index to repair, so an index or a log there
    // can only be a write meant for `sub`.
    ws.write(
        "victim/run_status.json",
        r#"{"run_id":"victim","state":"in_progress"}"#,
    );
    std::os::unix::fs::symlink(ws.join("victim"), ws.join("out/link")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // On a busy machine most rounds find the folder mid-swap: the swaps and the
    // rounds are bounded high enough for the ones that land to add up.
    const ROUNDS: u32 = 1_000_000;
    let swapper = crate::support::swap_folder_and_link_up_to(ws.join("out"), stop.clone(), ROUNDS);
    let opts = CommitOptions {
        expect: Vec::new(),
        repo_root: None,
        lock: LockMode::Fail,
        update_latest: true,
    };
    let clock = lith::clock::Clock::from_env().unwrap();
    // Most rounds find the folder mid-swap and give up; enough of them land.
    let (mut committed, mut repaired) = (0, 0);
    for i in 0..ROUNDS {
        if committed >= 40 && repaired >= 10 {
            break;
        }
        committed += usize::from(commit(&ws.join("out/sub"), &opts).is_ok());
        repaired += usize::from(
            lith::bundle::reindex::repair(&ws.join("out/sub"), LockMode::Fail, &clock, None)
                .is_ok(),
        );
        for name in ["artifact_index.json", "repair_log.json", "LATEST"] {
            assert!(
                !ws.join("victim").join(name).exists(),
                "iteration {i}: {name} was written outside the run"
            );
        }
        // Uncommitted again for the next round, wherever the folder is now.
        for at in ["out/sub", "out/sub.real"] {
            let _ = std::fs::remove_file(ws.join(at).join("artifact_index.json"));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(
        swaps > 100 && committed >= 40 && repaired >= 10,
        "swaps {swaps}, commits {committed}, repairs {repaired}"
    );
}

/// SPEC §3.4: `lith commit` lists the run beneath the run folder's handle. Listed
/// by name (as it was), a folder swapped for a link to another folder while it was
/// walked put that folder's names in the list, and the commit then failed on, or
/// reported, a file that was never in the run.
#[test]
fn swapping_a_folder_for_a_symlink_never_puts_an_outside_name_in_a_commit() {
    use lith::bundle::commit::{CommitOptions, commit};
    use lith::bundle::lock::LockMode;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let ws = Workspace::new();
    for i in 0..20 {
        ws.write(&format!("out/r1/sub/f{i:02}.txt"), "inside");
        ws.write(&format!("evil/only-outside-{i:02}.txt"), "outside");
    }
    ws.write(
        "out/r1/run_status.json",
        r#"{"run_id":"r1","state":"complete"}"#,
    );
    let run = ws.join("out/r1");
    std::os::unix::fs::symlink(ws.join("evil"), run.join("link")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = crate::support::swap_folder_and_link(run.clone(), stop.clone());
    let opts = CommitOptions {
        expect: Vec::new(),
        repo_root: None,
        lock: LockMode::Fail,
        update_latest: false,
    };
    let mut committed = 0;
    for i in 0..3000 {
        let said = match commit(&run, &opts) {
            Ok(outcome) => {
                committed += 1;
                let index = std::fs::read_to_string(run.join("artifact_index.json")).unwrap();
                std::fs::remove_file(run.join("artifact_index.json")).unwrap();
                format!("{index}{:?}", outcome.skipped)
            }
            Err(e) => e.to_string(),
        };
        assert!(
            !said.contains("only-outside"),
            "iteration {i}: the commit listed a file outside the run: {said}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(
        swaps > 100 && committed > 10,
        "swaps {swaps}, commits {committed}"
    );
}

/// SPEC §3.4, race-free reads: while another thread keeps swapping a folder of the
/// run for a symlink to a folder outside it, verification never hashes the outside
/// file (whose digest the index claims), its listing of unindexed files never names
/// what is outside, and `reindex --repair` never writes that digest into the index.
/// The swap runs a bounded number of times.
#[test]
fn swapping_a_parent_folder_for_a_symlink_never_reads_outside() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let ws = Workspace::new();
    ws.write("out/r1/sub/f.txt", "inside!");
    ws.write("evil/f.txt", "outside");
    ws.write("evil/only-outside.txt", "a name only outside the run");
    ws.write(
        "out/r1/run_status.json",
        r#"{"run_id":"r1","state":"complete"}"#,
    );
    let outside_sha = crate::support::sha256_hex(b"outside");
    ws.index(
        "out/r1",
        serde_json::json!({"run_id": "r1", "status": "ok", "missing": [],
            "artifacts": [{"path": "sub/f.txt", "file_size": 7, "sha256": outside_sha}]}),
    );
    let run = ws.join("out/r1");
    std::os::unix::fs::symlink(ws.join("evil"), run.join("link")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = crate::support::swap_folder_and_link(run.clone(), stop.clone());
    let opts = lith::bundle::verify::VerifyOptions::new(lith::bundle::verify::Mode::Full, None);
    let clock = lith::clock::Clock::from_env().unwrap();
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..3000 {
        let r = lith::bundle::verify::verify_run(&run, "out/r1", &opts);
        let a = &r.artifacts[0];
        *statuses.entry(a.status.as_str()).or_insert(0) += 1;
        assert_ne!(
            a.actual_sha256().map(|d| d.hex()).as_deref(),
            Some(outside_sha.as_str()),
            "iteration {i}: verification hashed the file outside the run"
        );
        assert!(
            !r.extra()
                .unindexed
                .iter()
                .any(|u| u.contains("only-outside")),
            "iteration {i}: the run's listing went through the link: {:?}",
            r.extra().unindexed
        );
        if i % 10 == 0
            && let Ok(log) = lith::bundle::reindex::repair(
                &run,
                lith::bundle::lock::LockMode::Fail,
                &clock,
                None,
            )
        {
            assert!(
                log.changes
                    .iter()
                    .unwrap()
                    .all(|c| c.unwrap().new != serde_json::json!(outside_sha)),
                "iteration {i}: repair wrote the outside digest"
            );
            // Put the claim back for the next round.
            ws.index(
                "out/r1",
                serde_json::json!({"run_id": "r1", "status": "ok", "missing": [],
                    "artifacts": [{"path": "sub/f.txt", "file_size": 7, "sha256": outside_sha}]}),
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(
        swaps > 100,
        "the attacker must really have raced: {swaps} swaps"
    );
    assert!(!statuses.contains_key("ok"), "{statuses:?}");
}

/// SPEC §11: a JSON document is read under a budget of values, so one file within
/// the 64 MiB cap cannot take a GiB (a parsed `0` costs 32 bytes): 12 MiB of `0,`
/// (6 million values) in `run_status.json`, in an index member, in one index entry,
/// each refused in under 128 MiB with the place it stopped; and `lith commit` reads
/// a JSON artifact's `schema_version` without parsing the rest.
#[test]
fn a_document_of_millions_of_values_is_refused_in_bounded_memory() {
    let zeros = format!("[{}0]", "0,".repeat(6 << 20));
    let ws = Workspace::new();
    ws.committed_run("out/r1", "complete", &[("a.txt", "a")]);
    let verify = |what: &str| {
        let (r, peak) = ws.lith_peak_mib(&["verify", "out/r1"]);
        assert_eq!(r.code, 4, "{what}: {r:?}");
        assert!(
            r.stdout.contains("holds more than 1048576 JSON values"),
            "{what}: {r:?}"
        );
        assert!(peak < 128, "{what}: verify held {peak} MiB");
    };
    ws.write(
        "out/r1/run_status.json",
        format!(r#"{{"run_id":"r1","state":"complete","junk":{zeros}}}"#),
    );
    verify("run_status.json");
    ws.committed_run("out/r1", "complete", &[("a.txt", "a")]);
    let sha = sha256_hex(b"a");
    ws.write(
        "out/r1/artifact_index.json",
        format!(
            r#"{{"run_id":"r1","status":"ok","missing":[],"junk":{zeros},"artifacts":[{{"path":"a.txt","file_size":1,"sha256":"{sha}"}}]}}"#
        ),
    );
    verify("an index member");
    ws.write(
        "out/r1/artifact_index.json",
        format!(
            r#"{{"run_id":"r1","status":"ok","missing":[],"artifacts":[{{"path":"a.txt","file_size":1,"sha256":"{sha}","junk":{zeros}}}]}}"#
        ),
    );
    verify("an index entry");

    // lith commit of a run with a large JSON artifact.
    ws.write(
        "out/r2/run_status.json",
        r#"{"run_id":"r2","state":"complete"}"#,
    );
    ws.write(
        "out/r2/big.json",
        format!(r#"{{"schema_version":"big.v1","rows":{zeros}}}"#),
    );
    let (r, peak) = ws.lith_peak_mib(&["commit", "out/r2"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(peak < 128, "commit held {peak} MiB");
    let index: Value = serde_json::from_str(&ws.read("out/r2/artifact_index.json")).unwrap();
    let big = index["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["path"] == "big.json")
        .unwrap();
    assert_eq!(big["schema_version"], "big.v1");
}

/// SPEC §3.4 above the run: a folder above a bundle root swapped for a link to
/// another tree while the root is scanned. The root is listed, its folders judged
/// and its runs opened beneath one handle of it, so a scan reads one tree or the
/// other, never runs of both. Opened by path from the root's resolved name, as
/// they were, the runs of one scan came from both trees.
#[test]
fn a_root_whose_parent_is_swapped_for_a_link_is_read_from_one_tree() {
    use lith::bundle::layout::{list_root, scan_root};
    use lith::bundle::verify::{Mode, VerifyOptions};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let ws = Workspace::new();
    for i in 0..8 {
        ws.write(
            &format!("sub/out/r{i}/run_status.json"),
            format!(r#"{{"run_id":"r{i}","state":"complete"}}"#),
        );
        ws.write(
            &format!("evil/out/r{i}/run_status.json"),
            format!(r#"{{"run_id":"evil-{i}","state":"complete"}}"#),
        );
    }
    std::os::unix::fs::symlink(ws.join("evil"), ws.join("link")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = crate::support::swap_folder_and_link(ws.path().to_path_buf(), stop.clone());
    let opts = VerifyOptions::new(Mode::Full, None);
    let (mut real, mut evil) = (0, 0);
    // Until each tree was scanned whole 20 times (a loaded machine takes longer).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    for i in 0.. {
        if (real >= 20 && evil >= 20) || std::time::Instant::now() > deadline {
            break;
        }
        let Ok(listing) = list_root(&ws.join("sub/out")) else {
            continue;
        };
        let scan = scan_root(ws.path(), "sub/out", Ok(listing), &opts);
        let ids: Vec<&str> = scan
            .runs
            .iter()
            .filter_map(|r| r.run_status.as_ref()?.run_id.as_deref())
            .collect();
        let from_evil = ids.iter().filter(|id| id.starts_with("evil-")).count();
        assert!(
            from_evil == 0 || from_evil == ids.len(),
            "scan {i} read runs of both trees: {ids:?}"
        );
        if ids.len() == 8 {
            if from_evil == 8 {
                evil += 1;
            } else {
                real += 1;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(
        swaps > 100 && real >= 20 && evil >= 20,
        "swaps {swaps}, scans of the real tree {real}, of the other {evil}"
    );
}

/// A bundle root is judged inside the workspace when it is found, by its path; a
/// folder on its way replaced by a link to a tree outside before the root is opened
/// would have it read from outside. The root is judged again by the folder its
/// handle holds, so no build reads a run outside the workspace.
#[test]
fn a_root_swapped_for_a_link_outside_after_it_was_found_is_not_read() {
    use lith::bundle::verify::Mode;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let ws = Workspace::new();
    let outside = tempfile::tempdir().unwrap();
    for i in 0..4 {
        ws.write(
            &format!("sub/out/r{i}/run_status.json"),
            format!(r#"{{"run_id":"r{i}","state":"complete"}}"#),
        );
        let evil = outside.path().join(format!("out/evil-{i}"));
        std::fs::create_dir_all(&evil).unwrap();
        std::fs::write(
            evil.join("run_status.json"),
            format!(r#"{{"run_id":"evil-{i}","state":"complete"}}"#),
        )
        .unwrap();
    }
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"sub/out\"])))",
    );
    std::os::unix::fs::symlink(outside.path(), ws.join("link")).unwrap();
    let manifest = lith::lith::Manifest::load(&ws.join("manifest.lith")).unwrap();
    let clock = lith::clock::Clock::from_env().unwrap();
    let opts = lith::pipeline::Options {
        mode: Mode::Full,
        quiet: true,
        attest: false,
        reuse: None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    // Swapped for as long as the builds run (up to 120 s, where 200,000 swaps may
    // be over in a few).
    let swapper = crate::support::swap_folder_and_link_up_to(
        ws.path().to_path_buf(),
        stop.clone(),
        50_000_000,
    );
    let (mut read, mut refused) = (0, 0);
    // Until the race was met a few times: a build that found the root as a folder
    // and opened it through the link (about one build in a hundred or more when
    // the machine is idle; on a loaded one the swapper waits for a core, and three
    // meetings took longer than 30 s, so the loop may run for two minutes).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    for i in 0.. {
        if (read >= 20 && refused >= 3) || std::time::Instant::now() > deadline {
            break;
        }
        let report = lith::pipeline::evaluate(&manifest, &clock, &opts).unwrap();
        let Some(root) = report.bundles.roots.first() else {
            continue;
        };
        let ids: Vec<&str> = root
            .runs
            .iter()
            .filter_map(|r| r.run_status.as_ref()?.run_id.as_deref())
            .collect();
        assert!(
            ids.iter().all(|id| !id.starts_with("evil-")),
            "build {i} read runs outside the workspace: {ids:?}"
        );
        if ids.len() == 4 {
            read += 1;
        }
        if root.findings.iter().any(|f| {
            f.message
                .contains("when it was opened it resolved outside the workspace")
        }) {
            refused += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(
        swaps > 100 && read >= 20 && refused >= 1,
        "swaps {swaps}, builds that read the root {read}, that refused it when opened {refused}"
    );
}

/// A rebuild into a previous site removes what the new site no longer has. It did
/// so by path: a folder of the site listed as a folder and swapped for a link
/// before its files were removed had the link's target lose files of the same
/// names. Each folder is now listed, and its files removed, beneath its own handle.
#[test]
fn swapping_a_site_folder_for_a_symlink_never_makes_the_sweep_remove_outside_it() {
    use std::os::fd::AsRawFd;

    let ws = Workspace::new();
    let names: Vec<String> = (0..20).map(|i| format!("f{i:02}.html")).collect();
    for n in &names {
        ws.write(&format!("victim/{n}"), "outside");
        ws.write(&format!("site/sub/{n}"), "stray");
    }
    let (site, victim) = (ws.join("site"), ws.join("victim"));
    // The folder's own handle: its files are put back through it each round,
    // wherever it is named then, never through the link.
    let real = std::fs::File::open(site.join("sub")).unwrap();
    let real = std::path::PathBuf::from(format!("/proc/self/fd/{}", real.as_raw_fd()));
    // A round did its work when its sweep removed strays; some sweeps meet the
    // link and refuse.
    crate::support::race_with_new_links(&site, &victim, |i| {
        for n in &names {
            let _ = std::fs::write(real.join(n), "stray");
        }
        let sink = lith::site::Sink::update(&site);
        // `sub` holds something the new site has, so it is walked, not removed
        // whole (a put that met the link instead is refused, and the round skipped).
        if sink.put("sub/index.html", "kept").is_err() {
            return Ok(false);
        }
        let swept = sink.sweep(&["sub.real"]);
        for n in &names {
            assert!(
                victim.join(n).exists(),
                "round {i}: the sweep removed {n} outside the site"
            );
        }
        swept.map(|stats| stats.removed > 0)
    });
}

/// A rebuild into a previous site writes each changed file to a temporary name
/// in its folder and renames it in. It did so by path, after looking at the
/// folder: a folder swapped for a link after that look had the file written, and
/// renamed, into the link's target. Each folder is now opened from its parent's
/// handle without following a link, and files are made and renamed beneath it.
#[test]
fn swapping_a_site_folder_for_a_symlink_never_makes_a_rebuild_write_outside_it() {
    let ws = Workspace::new();
    ws.write("site/sub/page.html", "old");
    ws.write("victim/keep.txt", "outside");
    let (site, victim) = (ws.join("site"), ws.join("victim"));
    // A round did its work when its page was written; some puts meet the link and
    // refuse.
    crate::support::race_with_new_links(&site, &victim, |i| {
        let put = lith::site::Sink::update(&site).put("sub/page.html", format!("round {i}"));
        let outside: Vec<String> = std::fs::read_dir(&victim)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "keep.txt")
            .collect();
        assert!(
            outside.is_empty(),
            "round {i}: the rebuild wrote {outside:?} outside the site"
        );
        put.map(|()| true)
    });
}
