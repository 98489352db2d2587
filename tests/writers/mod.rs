//! The writer side: `lith commit`, locking, `lith reindex`, `lith promote`, and the
//! crash and concurrency checks that show the commit barrier holds.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Lcg, Workspace, sha256_hex};

fn lith_cmd(ws: &Workspace, args: &[&str]) -> Command {
    let mut c = ws.command(args);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    c
}

fn index_of(ws: &Workspace, run: &str) -> Value {
    serde_json::from_str(&ws.read(&format!("{run}/artifact_index.json"))).unwrap()
}

/// The artifact paths of an index, in index order.
fn indexed_paths(idx: &Value) -> Vec<&str> {
    idx["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["path"].as_str().unwrap())
        .collect()
}

// ---------------------------------------------------------------- commit

#[test]
fn commit_writes_an_index_that_verifies_and_moves_latest() {
    let ws = Workspace::new();
    ws.write(
        "out/r1/run_status.json",
        r#"{"run_id":"r1","state":"complete","world_id":"w"}"#,
    );
    ws.write("out/r1/summary.json", r#"{"schema_version":"s.v1","x":1}"#);
    ws.write(
        "out/r1/events.jsonl",
        "\n{\"schema_version\":\"e.v2\"}\n{}\n",
    );
    ws.write("out/r1/logs/run.log", "hello\n");
    ws.write("out/r1/logs/deeper/x.log", "x\n");
    ws.write("out/r1/logs/.x.log.1234.tmp", "a writer's temporary file");
    std::os::unix::fs::symlink("summary.json", ws.join("out/r1/alias.json")).unwrap();
    let fifo =
        std::ffi::CString::new(ws.join("out/r1/logs/pipe").into_os_string().into_vec()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let odd = ws.join("out/r1").join(std::ffi::OsStr::from_bytes(b"\xff"));
    std::fs::create_dir(&odd).unwrap();
    std::fs::write(odd.join("inner.txt"), "i").unwrap();
    let r = ws.lith(&["commit", "out/r1", "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["artifacts"], 5);
    // In listing order; a folder whose name is not UTF-8 is passed over once, with
    // all it holds.
    assert_eq!(
        r.json()["skipped"],
        json!([
            "alias.json (symbolic link; not indexed)",
            "logs/pipe (named pipe; not indexed)",
            "\u{FFFD} (the file name is not UTF-8; not indexed)"
        ])
    );
    let idx = index_of(&ws, "out/r1");
    assert_eq!(idx["status"], "ok");
    assert_eq!(idx["world_id"], "w");
    let paths = indexed_paths(&idx);
    assert_eq!(
        paths,
        [
            "events.jsonl",
            "logs/deeper/x.log",
            "logs/run.log",
            "run_status.json",
            "summary.json"
        ]
    );
    let by_path: BTreeMap<&str, &Value> = idx["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["path"].as_str().unwrap(), a))
        .collect();
    assert_eq!(by_path["summary.json"]["schema_version"], "s.v1");
    assert_eq!(by_path["events.jsonl"]["schema_version"], "e.v2");
    assert_eq!(by_path["logs/run.log"]["schema_version"], Value::Null);
    assert_eq!(by_path["logs/run.log"]["sha256"], sha256_hex(b"hello\n"));
    assert_eq!(ws.read("out/LATEST"), "r1\n");
    assert_eq!(ws.lith(&["verify", "out"]).code, 0);
    // The lock file names its last holder.
    assert!(ws.read("out/.runtime.lock").starts_with("pid="));
    // A second commit is refused: the index is a barrier, not a cache.
    let again = ws.lith(&["commit", "out/r1"]);
    assert_eq!(again.code, 4, "{again:?}");
    assert!(again.stderr.contains("already committed"), "{again:?}");
}

#[test]
fn commit_records_expected_artifacts_that_are_absent() {
    let ws = Workspace::new();
    ws.write(
        "out/r1/run_status.json",
        r#"{"run_id":"r1","state":"complete"}"#,
    );
    ws.write("out/r1/a.json", "{}");
    let r = ws.lith(&[
        "commit",
        "out/r1",
        "--expect",
        "a.json",
        "--expect",
        "b.json",
        "--expect",
        "./c/d.json",
        "--no-latest",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let idx = index_of(&ws, "out/r1");
    assert_eq!(idx["missing"], json!(["b.json", "c/d.json"]));
    assert_eq!(idx["status"], "partial");
    assert!(!ws.join("out/LATEST").exists());
    assert_eq!(ws.lith(&["verify", "out/r1"]).code, 2);
    let bad = ws.lith(&["commit", "out/r1", "--expect", "../x"]);
    assert_eq!(bad.code, 4, "{bad:?}");
}

#[test]
fn commit_refuses_runs_in_progress_and_marks_failed_ones() {
    let ws = Workspace::new();
    ws.write(
        "out/r1/run_status.json",
        r#"{"run_id":"r1","state":"in_progress"}"#,
    );
    let r = ws.lith(&["commit", "out/r1"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(!ws.join("out/r1/artifact_index.json").exists());
    assert!(!ws.join("out/LATEST").exists());
    ws.write(
        "out/r2/run_status.json",
        r#"{"run_id":"r2","state":"failed"}"#,
    );
    assert_eq!(ws.lith(&["commit", "out/r2"]).code, 0);
    assert_eq!(index_of(&ws, "out/r2")["status"], "failed");
}

#[test]
fn commit_with_repo_root_writes_repository_relative_paths() {
    let ws = Workspace::new();
    ws.write(
        "book/x/out/r1/run_status.json",
        r#"{"run_id":"r1","state":"complete"}"#,
    );
    ws.write("book/x/out/r1/summary.json", "{}");
    let r = ws.lith(&["commit", "book/x/out/r1", "--repo-root", "."]);
    assert_eq!(r.code, 0, "{r:?}");
    let idx = index_of(&ws, "book/x/out/r1");
    assert_eq!(idx["artifacts"][1]["path"], "book/x/out/r1/summary.json");
    assert_eq!(ws.lith(&["verify", "book/x/out"]).code, 0);
}

// ---------------------------------------------------------------- locking

fn hold_lock(ws: &Workspace) -> File {
    std::fs::create_dir_all(ws.join("out")).unwrap();
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(ws.join("out/.runtime.lock"))
        .unwrap();
    f.lock().unwrap();
    std::fs::write(
        ws.join("out/.runtime.lock"),
        "pid=4242 host=test started_unix=0\n",
    )
    .unwrap();
    f
}

#[test]
fn a_held_lock_is_exit_75_at_once_or_after_the_wait() {
    let ws = Workspace::new();
    ws.write(
        "out/r1/run_status.json",
        r#"{"run_id":"r1","state":"complete"}"#,
    );
    let held = hold_lock(&ws);
    let r = ws.lith(&["commit", "out/r1"]);
    assert_eq!(r.code, 75, "{r:?}");
    assert!(
        r.stderr.contains("pid=4242 host=test"),
        "the message names the holder: {r:?}"
    );
    let t = Instant::now();
    let r = ws.lith(&["commit", "out/r1", "--lock", "wait", "--lock-timeout", "1"]);
    assert_eq!(r.code, 75, "{r:?}");
    assert!(t.elapsed() >= Duration::from_secs(1));
    assert_eq!(
        ws.lith(&["reindex", "out/r1", "--repair"]).code,
        75,
        "the lock comes first"
    );
    assert!(!ws.join("out/r1/artifact_index.json").exists());
    drop(held);
    assert_eq!(ws.lith(&["commit", "out/r1"]).code, 0);
    let held = hold_lock(&ws);
    assert_eq!(ws.lith(&["reindex", "out/r1", "--repair"]).code, 75);
    // A waiting writer proceeds as soon as the holder lets go.
    let mut waiter = lith_cmd(
        &ws,
        &[
            "reindex",
            "out/r1",
            "--repair",
            "--lock",
            "wait",
            "--lock-timeout",
            "30",
        ],
    )
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        waiter.try_wait().unwrap().is_none(),
        "the waiter must still be waiting"
    );
    drop(held);
    assert_eq!(waiter.wait().unwrap().code(), Some(0));
}

/// A run big enough that a debug build takes a while to hash it.
fn big_run(ws: &Workspace, run: &str, files: usize) {
    ws.write(
        &format!("{run}/run_status.json"),
        format!(
            "{{\"run_id\":\"{}\",\"state\":\"complete\"}}",
            run.rsplit('/').next().unwrap()
        ),
    );
    let body: Vec<u8> = (0..64 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    for i in 0..files {
        ws.write(&format!("{run}/data/f{i:04}.bin"), &body);
    }
}

#[test]
fn a_writer_killed_with_sigkill_leaves_no_lock_behind() {
    let ws = Workspace::new();
    big_run(&ws, "out/r1", 400);
    let mut child = lith_cmd(&ws, &["commit", "out/r1"]).spawn().unwrap();
    // Wait until it holds the lock, then kill it.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ws
        .read_opt("out/.runtime.lock")
        .is_some_and(|s| s.starts_with("pid="))
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let r = ws.lith(&["commit", "out/r1", "--lock", "fail"]);
    assert!(
        r.code == 0 || r.stderr.contains("already committed"),
        "the next writer is not blocked: {r:?}"
    );
    assert_eq!(ws.lith(&["verify", "out/r1"]).code, 0);
}

fn kill_after(ws: &Workspace, args: &[&str], delay: Duration) {
    let mut child = lith_cmd(ws, args).spawn().unwrap();
    std::thread::sleep(delay);
    let _ = child.kill();
    child.wait().unwrap();
}

#[test]
fn commit_killed_at_random_points_never_tears_the_index_or_latest() {
    let ws = Workspace::new();
    ws.write(
        "out/old/run_status.json",
        r#"{"run_id":"old","state":"complete"}"#,
    );
    ws.write("out/old/a.txt", "a");
    assert_eq!(ws.lith(&["commit", "out/old"]).code, 0);
    big_run(&ws, "out/new", 120);
    // How long does a whole commit take here? Kill times spread over that span.
    let template = ws.path().join("template");
    crate::support::copy_tree(&ws.join("out"), &template);
    let t = Instant::now();
    assert_eq!(ws.lith(&["commit", "out/new"]).code, 0);
    let span = t.elapsed().as_micros() as u64 * 3 / 2;
    let expected = ws.read("out/new/artifact_index.json");
    let mut rng = Lcg(7);
    let mut completed = 0;
    for _ in 0..40 {
        std::fs::remove_dir_all(ws.join("out")).unwrap();
        crate::support::copy_tree(&template, &ws.join("out"));
        kill_after(
            &ws,
            &["commit", "out/new"],
            Duration::from_micros(rng.below(span)),
        );
        match ws.read_opt("out/new/artifact_index.json") {
            None => {}
            Some(text) => {
                assert_eq!(text, expected, "the index is the whole new one or absent");
                completed += 1;
            }
        }
        let latest = ws.read("out/LATEST");
        let latest = latest.trim();
        assert!(latest == "old" || latest == "new", "{latest:?}");
        assert!(
            ws.join(&format!("out/{latest}/artifact_index.json"))
                .exists(),
            "LATEST names an uncommitted run"
        );
    }
    // Kills landed on both sides of the commit point, so both outcomes were seen
    // (every iteration above already checked its state whole).
    assert!(
        (1..40).contains(&completed),
        "{completed} of 40 killed commits had finished: the kill times missed the commit"
    );
}

#[test]
fn repair_killed_at_random_points_leaves_the_old_or_the_new_index() {
    let ws = Workspace::new();
    big_run(&ws, "out/r1", 120);
    assert_eq!(ws.lith(&["commit", "out/r1"]).code, 0);
    // Make it stale: two files changed after the commit.
    ws.write("out/r1/data/f0003.bin", "changed");
    ws.write("out/r1/data/f0100.bin", "changed too");
    let template = ws.path().join("template");
    crate::support::copy_tree(&ws.join("out"), &template);
    let old = ws.read("out/r1/artifact_index.json");
    let t = Instant::now();
    assert_eq!(
        ws.lith_env(
            &["reindex", "out/r1", "--repair"],
            &[("SOURCE_DATE_EPOCH", "1")]
        )
        .code,
        0
    );
    let span = t.elapsed().as_micros() as u64 * 3 / 2;
    let new = ws.read("out/r1/artifact_index.json");
    assert_ne!(old, new);
    let mut rng = Lcg(11);
    for _ in 0..40 {
        std::fs::remove_dir_all(ws.join("out")).unwrap();
        crate::support::copy_tree(&template, &ws.join("out"));
        let mut child = lith_cmd(&ws, &["reindex", "out/r1", "--repair"])
            .env("SOURCE_DATE_EPOCH", "1")
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(rng.below(span)));
        let _ = child.kill();
        child.wait().unwrap();
        let now = ws.read("out/r1/artifact_index.json");
        assert!(now == old || now == new, "torn index:\n{now}");
        if now == new {
            // The log is written before the index, so a new index always has its log.
            assert!(ws.join("out/r1/repair_log.json").exists());
        }
    }
}

#[test]
fn concurrent_writers_serialize() {
    let ws = Workspace::new();
    for i in 0..6 {
        big_run(&ws, &format!("out/r{i}"), 20);
    }
    let children: Vec<_> = (0..6)
        .map(|i| {
            lith_cmd(
                &ws,
                &[
                    "commit",
                    &format!("out/r{i}"),
                    "--lock",
                    "wait",
                    "--lock-timeout",
                    "60",
                ],
            )
            .spawn()
            .unwrap()
        })
        .collect();
    for mut c in children {
        assert_eq!(c.wait().unwrap().code(), Some(0));
    }
    for i in 0..6 {
        assert_eq!(ws.lith(&["verify", &format!("out/r{i}")]).code, 0, "r{i}");
    }
    let latest = ws.read("out/LATEST");
    assert!(
        ws.join(&format!("out/{}/artifact_index.json", latest.trim()))
            .exists()
    );
    // With --lock fail, writers that overlap are turned away with 75, never torn.
    let children: Vec<_> = (0..6)
        .map(|i| {
            lith_cmd(&ws, &["reindex", &format!("out/r{i}"), "--repair"])
                .spawn()
                .unwrap()
        })
        .collect();
    let codes: Vec<i32> = children
        .into_iter()
        .map(|mut c| c.wait().unwrap().code().unwrap())
        .collect();
    assert!(codes.iter().all(|c| *c == 0 || *c == 75), "{codes:?}");
    for i in 0..6 {
        assert_eq!(
            ws.lith(&["reindex", &format!("out/r{i}"), "--strict"]).code,
            0
        );
    }
}

// ---------------------------------------------------------------- reindex

#[test]
fn repair_round_trip() {
    let ws = Workspace::new();
    ws.committed_run(
        "out/r1",
        "complete",
        &[
            ("a.json", "{\"schema_version\":\"v1\"}"),
            ("b.txt", "bee"),
            ("gone.txt", "x"),
        ],
    );
    ws.write("out/LATEST", "r1");
    ws.write("out/r1/a.json", "{\"schema_version\":\"v2\"}");
    std::fs::remove_file(ws.join("out/r1/gone.txt")).unwrap();
    ws.write("out/r1/new-unindexed.txt", "never indexed by repair");
    let before = ws.read("out/r1/artifact_index.json");
    let strict = ws.lith(&["reindex", "out", "--strict"]);
    assert_eq!(strict.code, 2, "{strict:?}");
    assert_eq!(
        ws.read("out/r1/artifact_index.json"),
        before,
        "--strict changes nothing"
    );
    let r = ws.lith_env(
        &["reindex", "out", "--repair", "--json"],
        &[("SOURCE_DATE_EPOCH", "1790000000")],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        ws.lith(&["reindex", "out", "--strict"]).code,
        2,
        "a missing artifact stays a finding"
    );
    let log: Value = serde_json::from_str(&ws.read("out/r1/repair_log.json")).unwrap();
    assert_eq!(log, r.json());
    assert_eq!(log["run_id"], "r1");
    assert_eq!(log["repaired_at"], "2026-09-21T14:13:20Z");
    assert_eq!(log["previous_index_sha256"], sha256_hex(before.as_bytes()));
    assert_eq!(log["moved_to_missing"], json!(["gone.txt"]));
    let fields: Vec<(String, String)> = log["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap().to_string(),
                c["field"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            ("a.json".into(), "sha256".into()),
            ("a.json".into(), "schema_version".into()),
            ("".into(), "status".into())
        ]
    );
    assert_eq!(log["changes"][1]["old"], Value::Null);
    assert_eq!(log["changes"][1]["new"], "v2");
    let idx = index_of(&ws, "out/r1");
    assert_eq!(idx["status"], "partial");
    assert_eq!(idx["missing"], json!(["gone.txt"]));
    let paths = indexed_paths(&idx);
    assert_eq!(
        paths,
        ["a.json", "b.txt"],
        "never invents, never adds unindexed files"
    );
    // Every remaining artifact now verifies; only missing[] keeps the run partial.
    let v = ws.lith(&["verify", "out/r1", "--json"]);
    assert_eq!(v.json()["run"]["counts"]["ok"], 2);
}

/// Repair adds each vanished path to `missing[]` once, after those already listed,
/// whatever the index repeats. It looks each path up (the scan per path it made
/// before took 8 minutes for an index of 550,000 vanished entries; 1.5 s now).
#[test]
fn repair_lists_each_vanished_path_once() {
    let ws = Workspace::new();
    ws.committed_run(
        "out/r1",
        "complete",
        &[("a.txt", "a"), ("b.txt", "b"), ("c.txt", "c")],
    );
    let mut idx = index_of(&ws, "out/r1");
    let entries = idx["artifacts"].as_array().unwrap().clone();
    let mut listed = entries.clone();
    listed.push(entries[0].clone()); // a.txt twice
    idx["artifacts"] = Value::Array(listed);
    idx["missing"] = json!(["b.txt", "elsewhere.txt"]);
    ws.write("out/r1/artifact_index.json", idx.to_string());
    for f in ["a.txt", "b.txt"] {
        std::fs::remove_file(ws.join("out/r1").join(f)).unwrap();
    }
    let r = ws.lith(&["reindex", "out/r1", "--repair", "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.json()["moved_to_missing"],
        json!(["a.txt", "b.txt", "a.txt"]),
        "the log says what was moved, entry by entry"
    );
    let idx = index_of(&ws, "out/r1");
    assert_eq!(idx["missing"], json!(["b.txt", "elsewhere.txt", "a.txt"]));
    assert_eq!(indexed_paths(&idx), ["c.txt"]);
}

/// Repair keeps each change aside as it finds it and writes the log, its output
/// and `--json` one change at a time: 100,000 files whose size and digest both
/// changed are 200,000 changes, which held as values took `--json` to 133 MiB
/// (266 MiB at 200,000). The log, the index and the output say what they said.
#[test]
fn repair_keeps_its_changes_aside_in_bounded_memory() {
    let ws = Workspace::new();
    ws.committed_run("out/r1", "complete", &[("a.txt", "a")]);
    std::fs::remove_file(ws.join("out/r1/a.txt")).unwrap();
    let n = 100_000;
    std::fs::create_dir(ws.join("out/r1/d")).unwrap();
    let mut text = String::from(r#"{"run_id":"r1","status":"ok","missing":[],"artifacts":["#);
    for i in 0..n {
        std::fs::write(ws.join(&format!("out/r1/d/f{i:06}")), "x").unwrap();
        let sep = if i == 0 { "" } else { "," };
        text.push_str(&format!(
            r#"{sep}{{"path":"d/f{i:06}","file_size":2,"sha256":"{i:064x}"}}"#
        ));
    }
    text.push_str("]}");
    ws.write("out/r1/artifact_index.json", &text);
    let (r, peak) = ws.lith_peak_mib(&["--json", "reindex", "out/r1", "--repair"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(peak < 80, "repair --json held {peak} MiB");
    let printed = r.json();
    let log: Value = serde_json::from_str(&ws.read("out/r1/repair_log.json")).unwrap();
    assert_eq!(printed, log);
    let changes = log["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2 * n);
    assert_eq!(
        changes[1],
        json!({"path": "d/f000000", "field": "sha256", "old": format!("{:064x}", 0),
            "new": sha256_hex(b"x")})
    );
    assert_eq!(ws.lith(&["verify", "out/r1"]).code, 0);
    // The text output lists every change, a line each.
    ws.write("out/r1/artifact_index.json", &text);
    let r = ws.lith(&["reindex", "out/r1", "--repair"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 1 + 2 * n);
    assert!(
        r.stdout.starts_with(&format!(
            "repaired out/r1: {} change(s), 0 moved to missing",
            2 * n
        )),
        "{}",
        r.stdout.lines().next().unwrap_or("")
    );
}

/// With nowhere to keep its changes aside, repair writes nothing and says where it
/// looked.
#[test]
fn repair_without_a_writable_tmpdir_writes_nothing() {
    let ws = Workspace::new();
    ws.committed_run("out/r1", "complete", &[("a.txt", "a")]);
    ws.write("out/r1/a.txt", "b");
    let before = ws.read("out/r1/artifact_index.json");
    let r = ws.lith_env(
        &["reindex", "out/r1", "--repair"],
        &[("TMPDIR", "/nonexistent/tmp")],
    );
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stderr
            .contains("cannot keep the changes aside in a temporary file of TMPDIR"),
        "{}",
        r.stderr
    );
    assert_eq!(ws.read("out/r1/artifact_index.json"), before);
    assert!(!ws.join("out/r1/repair_log.json").exists());
}

#[test]
fn repair_with_nothing_to_change_still_logs_and_round_trips_to_verified() {
    let ws = Workspace::new();
    ws.committed_run("out/r1", "complete", &[("a.txt", "a")]);
    ws.write("out/r1/a.txt", "b");
    assert_eq!(ws.lith(&["verify", "out/r1"]).code, 2);
    assert_eq!(ws.lith(&["reindex", "out/r1", "--repair"]).code, 0);
    assert_eq!(
        ws.lith(&["verify", "out/r1"]).code,
        0,
        "corrupt → repair → verified"
    );
    assert_eq!(ws.lith(&["reindex", "out/r1", "--repair"]).code, 0);
    let log: Value = serde_json::from_str(&ws.read("out/r1/repair_log.json")).unwrap();
    assert_eq!(log["changes"], json!([]));
    assert_eq!(log["moved_to_missing"], json!([]));
}

#[test]
fn repair_never_follows_unsafe_paths_and_refuses_corrupt_indexes() {
    let ws = Workspace::new();
    ws.write("secret", "s");
    ws.write(
        "out/r1/run_status.json",
        r#"{"run_id":"r1","state":"complete"}"#,
    );
    std::os::unix::fs::symlink(ws.join("secret"), ws.join("out/r1/link")).unwrap();
    let e = |p: &str| json!({"path": p, "file_size": 9, "sha256": "0".repeat(64)});
    ws.index("out/r1", json!({"run_id": "r1", "status": "ok", "missing": [], "artifacts": [e("../../secret"), e("link")]}));
    let r = ws.lith(&["reindex", "out/r1", "--repair", "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["changes"], json!([]));
    assert_eq!(r.json()["skipped"].as_array().unwrap().len(), 2);
    let idx = index_of(&ws, "out/r1");
    assert_eq!(
        idx["artifacts"][0]["sha256"],
        "0".repeat(64),
        "unsafe entries are kept as they were"
    );
    ws.write("out/r1/artifact_index.json", "{\"artifacts\": [");
    let r = ws.lith(&["reindex", "out/r1", "--repair"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("invalid JSON"), "{r:?}");
}

/// Makes a folder refuse new files: `chattr +i` (which stops root too), else a
/// read-only mode. Returns an undo.
pub fn freeze(dir: &std::path::Path) -> impl FnOnce() + use<> {
    use std::os::unix::fs::PermissionsExt;
    let immutable = Command::new("chattr")
        .arg("+i")
        .arg(dir)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !immutable {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    let dir = dir.to_path_buf();
    move || {
        if immutable {
            Command::new("chattr").arg("-i").arg(&dir).status().unwrap();
        } else {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
}

#[test]
fn writers_on_a_read_only_folder_exit_4_and_change_nothing() {
    let ws = Workspace::new();
    ws.committed_run("out/r1", "complete", &[("a.txt", "a")]);
    ws.write("out/r1/a.txt", "b");
    let before = ws.read("out/r1/artifact_index.json");
    let undo = freeze(&ws.join("out/r1"));
    let r = ws.lith(&["reindex", "out/r1", "--repair"]);
    undo();
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("repair_log.json: cannot write"), "{r:?}");
    assert_eq!(ws.read("out/r1/artifact_index.json"), before);
    ws.write(
        "out/r2/run_status.json",
        r#"{"run_id":"r2","state":"complete"}"#,
    );
    let undo = freeze(&ws.join("out/r2"));
    let r = ws.lith(&["commit", "out/r2"]);
    undo();
    assert_eq!(r.code, 4, "{r:?}");
    assert!(!ws.join("out/r2/artifact_index.json").exists());
    assert!(
        !ws.join("out/LATEST").exists(),
        "LATEST never moves without an index"
    );
    let leftovers = crate::support::files_below(&ws.join("out"));
    assert!(
        leftovers.iter().all(|f| !f.ends_with(".tmp")),
        "{leftovers:?}"
    );
}

// ---------------------------------------------------------------- promote

/// Writes a promotable run, after letting `tweak` change its files; `index_tweak`
/// edits the index before it is written, and `after` changes files after it.
fn promotable_run(
    ws: &Workspace,
    tweak: impl FnOnce(&mut BTreeMap<String, String>),
    index_tweak: impl FnOnce(&mut Value),
) {
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    files.insert(
        "run_status.json".into(),
        json!({"run_id": "r1", "state": "complete", "channel": "launchd_clean"}).to_string(),
    );
    files.insert(
        "run_manifest.json".into(),
        json!({"run_id": "r1", "channel": "launchd_clean", "apply_preflight": {"path": "apply_preflight.json",
               "record": {"sandbox_check_self": {"sandboxed": false}, "apply_ok": true}}})
        .to_string(),
    );
    files.insert(
        "apply_preflight.json".into(),
        json!({"sandbox_check_self": {"sandboxed": false}, "apply_ok": true}).to_string(),
    );
    for f in [
        "runtime_results.json",
        "runtime_events.normalized.json",
        "expected_matrix.json",
        "summary.json",
    ] {
        files.insert(f.into(), "{}".into());
    }
    tweak(&mut files);
    for (name, body) in &files {
        ws.write(&format!("out/r1/{name}"), body);
    }
    let artifacts: Vec<Value> = files
        .iter()
        .map(|(n, b)| json!({"path": n, "file_size": b.len(), "sha256": sha256_hex(b.as_bytes())}))
        .collect();
    let mut idx = json!({"run_id": "r1", "artifacts": artifacts, "missing": [], "status": "ok"});
    index_tweak(&mut idx);
    ws.index("out/r1", idx);
    ws.write("out/LATEST", "r1");
}

fn reasons(ws: &Workspace) -> Vec<String> {
    let r = ws.lith(&["promote", "out", "--json"]);
    assert_eq!(r.code, 0, "promotability is data: {r:?}");
    r.json()["promotability"]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// A decision-stage artifact counts only as a regular file reached without a link:
/// a folder of the run that is a symlink to a folder outside it holds nothing,
/// however the files out there are named.
#[test]
fn a_decision_stage_artifact_behind_a_symlinked_folder_is_missing() {
    let ws = Workspace::new();
    promotable_run(&ws, |_| {}, |_| {});
    ws.write("elsewhere/stage.json", "{}");
    std::os::unix::fs::symlink(ws.join("elsewhere"), ws.join("out/r1/stage")).unwrap();
    let stage = |name: &str| {
        let r = ws.lith(&[
            "promote",
            "out",
            "--json",
            "--decision-stage-artifact",
            name,
        ]);
        assert_eq!(r.code, 0, "{r:?}");
        r.json()["promotability"]["reasons"].clone()
    };
    assert_eq!(
        stage("stage/stage.json"),
        json!(["decision_stage_artifacts_missing"])
    );
    // The same name inside the run, reached without a link, is present.
    std::fs::remove_file(ws.join("out/r1/stage")).unwrap();
    ws.write("out/r1/stage/stage.json", "{}");
    assert_eq!(stage("stage/stage.json"), json!([]));
}

#[test]
fn a_promotable_run_has_no_reasons_and_a_packet_at_the_root() {
    let ws = Workspace::new();
    promotable_run(&ws, |_| {}, |_| {});
    assert_eq!(reasons(&ws), Vec::<String>::new());
    let packet: Value = serde_json::from_str(&ws.read("out/promotion_packet.json")).unwrap();
    assert_eq!(
        packet["schema_version"],
        "runtime-tools.promotion_packet.v0.2"
    );
    assert_eq!(packet["run_manifest"], "out/r1/run_manifest.json");
    assert_eq!(
        packet["promotability"]["gating_inputs"]["channel"],
        "launchd_clean"
    );
    assert_eq!(packet["promotability"]["gating_inputs"]["apply_ok"], true);
    assert!(
        packet.get("path_witnesses").is_none(),
        "optional pointers only when the file exists"
    );
    ws.write("out/r1/path_witnesses.json", "[]");
    ws.lith(&["promote", "out/r1", "-o", "packet.json"]);
    let packet: Value = serde_json::from_str(&ws.read("packet.json")).unwrap();
    assert_eq!(packet["path_witnesses"], "out/r1/path_witnesses.json");
    assert_eq!(ws.lith(&["promote", "out", "--require-promotable"]).code, 0);
}

/// A workspace of one promotable run `out/r1` whose files `tweak` changed, built
/// into `site`; the run's page, which stays under 64 KiB.
fn built_run(tweak: impl FnOnce(&mut BTreeMap<String, String>)) -> (Workspace, String) {
    let ws = Workspace::new();
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"out\"])))",
    );
    promotable_run(&ws, tweak, |_| {});
    let r = ws.lith(&["build", "-q", "--out", "site"]);
    assert!(r.code == 0 || r.code == 3, "{r:?}");
    let page = ws.read("site/runs/r1/index.html");
    assert!(page.len() < 64 * 1024, "the page is {} bytes", page.len());
    (ws, page)
}

#[test]
fn a_run_page_shows_a_large_packet_cut_at_a_line_and_promote_writes_it_whole() {
    // A workspace of one run whose manifest names `channel`, built; its run page.
    let built = |channel: Value| {
        built_run(|files| {
            let mut manifest: Value = serde_json::from_str(&files["run_manifest.json"]).unwrap();
            manifest["channel"] = channel;
            files.insert("run_manifest.json".into(), manifest.to_string());
        })
    };
    // A channel of 200,000 numbers: 1.3 MB in the manifest, 2.6 MB pretty-printed.
    let (ws, page) = built(json!((0..200_000).collect::<Vec<u32>>()));
    let shown = page
        .split_once("<pre class=\"packet\"><code>")
        .and_then(|(_, rest)| rest.split_once("</code></pre>"))
        .map(|(text, _)| text)
        .expect("the packet on the page");
    let cut: u64 = page
        .split_once("<p>… ")
        .and_then(|(_, rest)| rest.split_once(" more bytes of the packet are not shown"))
        .map(|(n, _)| n.parse().unwrap())
        .expect("the page says how much of the packet it leaves out");
    // What the page shows is the start of the packet `lith promote` writes, whole
    // lines of it, and what it says it left out is the rest.
    let r = ws.lith(&["promote", "out/r1", "-o", "packet.json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let whole = ws.read("packet.json");
    let whole = whole.trim_end_matches('\n');
    assert!(
        whole.starts_with(shown),
        "the page shows the packet's start"
    );
    assert!(shown.ends_with('\n'), "{shown}");
    assert_eq!(shown.lines().count(), 200, "at most 200 lines are shown");
    assert_eq!(shown.len() as u64 + cut, whole.len() as u64);
    let packet: Value = serde_json::from_str(whole).unwrap();
    assert_eq!(
        packet["promotability"]["gating_inputs"]["channel"]
            .as_array()
            .map(Vec::len),
        Some(200_000)
    );
    // A channel of one long string: the packet is cut before that line, by bytes.
    let (_, page) = built(json!("é".repeat(50_000)));
    assert!(page.contains("more bytes of the packet are not shown"));

    // A packet of the usual size is shown whole.
    let (_, page) = built(json!("launchd_clean"));
    assert!(
        page.contains("\"launchd_clean\""),
        "the packet is on the page"
    );
    assert!(!page.contains("more bytes of the packet"));
}

/// A run_status.json of 20,000 fields: its page shows the first hundred, in key
/// order, and counts the rest, which report.json keeps. The lith before listed
/// them all (a page of 92 MB for a million).
#[test]
fn a_run_status_of_many_fields_shows_a_hundred_on_the_page_and_counts_the_rest() {
    let (ws, page) = built_run(|files| {
        let mut status: Value = serde_json::from_str(&files["run_status.json"]).unwrap();
        for i in 0..20_000 {
            status[format!("k{i:05}")] = json!(format!("value {i}"));
        }
        // A name of 100,000 characters is cut like a value.
        status[format!("a{}", "n".repeat(100_000))] = json!(1);
        files.insert("run_status.json".into(), status.to_string());
    });
    let report: Value = serde_json::from_str(&ws.read("site/report.json")).unwrap();
    let fields = report["bundles"]["roots"][0]["runs"][0]["run_status"]
        .as_object()
        .unwrap();
    assert!(fields.len() > 20_001, "report.json keeps every field");
    let table = page
        .split_once("<h2 id=\"h-status\">")
        .and_then(|(_, rest)| rest.split_once("</section>"))
        .map(|(t, _)| t)
        .expect("the status table");
    let shown: Vec<&str> = table
        .split("<th scope=\"row\"><code>")
        .skip(1)
        .map(|row| row.split_once("</code>").unwrap().0)
        .collect();
    let want: Vec<String> = fields
        .keys()
        .take(100)
        .map(|k| match k.char_indices().nth(500) {
            Some((at, _)) => format!("{}…", &k[..at]),
            None => k.clone(),
        })
        .collect();
    assert_eq!(shown, want, "the first hundred fields in key order");
    assert!(
        table.contains(&format!(
            "… {} more fields are not shown",
            fields.len() - 100
        )),
        "{table}"
    );
    // A usual status is shown whole, without the note.
    let (_, page) = built_run(|_| {});
    assert!(!page.contains("more fields are not shown"));
}

#[test]
fn every_reason_comes_from_a_fixture_that_fails_only_that_condition_and_what_it_implies() {
    type Tweak = Box<dyn Fn(&mut BTreeMap<String, String>)>;
    type IndexTweak = Box<dyn Fn(&mut Value)>;
    let none = || -> Tweak { Box::new(|_| {}) };
    let no_idx = || -> IndexTweak { Box::new(|_| {}) };
    let set = |name: &'static str, body: Value| -> Tweak {
        Box::new(move |f| {
            f.insert(name.into(), body.to_string());
        })
    };
    let manifest = |record: Value| json!({"run_id": "r1", "channel": "launchd_clean", "apply_preflight": {"record": record}});
    // The reasons each fixture gives, as the reference's `assess_promotability` derives
    // them: without run_manifest.json there is no channel and no preflight either, and
    // a bundle in progress fails the strict load too.
    let implied = |reason: &'static str| -> Vec<&'static str> {
        match reason {
            "manifest_missing" => vec![
                "apply_preflight_missing",
                "manifest_missing",
                "not_clean_channel",
            ],
            "bundle_in_progress" => vec!["bundle_in_progress", "bundle_integrity_unverified"],
            r => vec![r],
        }
    };
    let cases: Vec<(&str, Tweak, IndexTweak, bool)> = vec![
        (
            "manifest_missing",
            Box::new(|f| {
                f.remove("run_manifest.json");
            }),
            no_idx(),
            false,
        ),
        (
            "run_status_missing",
            Box::new(|f| {
                f.remove("run_status.json");
            }),
            no_idx(),
            false,
        ),
        (
            "bundle_in_progress",
            set(
                "run_status.json",
                json!({"run_id": "r1", "state": "in_progress"}),
            ),
            no_idx(),
            false,
        ),
        (
            "not_clean_channel",
            Box::new(|f| {
                f.insert("run_manifest.json".into(), json!({"run_id": "r1", "channel": "dev", "apply_preflight": {"record": {"apply_ok": true}}}).to_string());
            }),
            no_idx(),
            false,
        ),
        (
            "apply_preflight_missing",
            Box::new(|f| {
                f.insert(
                    "run_manifest.json".into(),
                    json!({"run_id": "r1", "channel": "launchd_clean"}).to_string(),
                );
                f.remove("apply_preflight.json");
            }),
            no_idx(),
            false,
        ),
        (
            "already_sandboxed",
            set(
                "run_manifest.json",
                manifest(json!({"sandbox_check_self": {"sandboxed": true}, "apply_ok": true})),
            ),
            no_idx(),
            false,
        ),
        (
            "apply_failed",
            set(
                "run_manifest.json",
                manifest(json!({"sandbox_check_self": {}, "apply_ok": false})),
            ),
            no_idx(),
            false,
        ),
        ("bundle_integrity_unverified", none(), no_idx(), true),
        (
            "bundle_failed",
            none(),
            Box::new(|i| i["status"] = json!("failed")),
            false,
        ),
        (
            "bundle_incomplete",
            none(),
            Box::new(|i| i["missing"] = json!(["oracle_results.json"])),
            false,
        ),
        (
            "decision_stage_artifacts_missing",
            Box::new(|f| {
                f.remove("runtime_events.normalized.json");
            }),
            no_idx(),
            false,
        ),
    ];
    let mut seen = Vec::new();
    for (reason, tweak, index_tweak, corrupt_after) in cases {
        let ws = Workspace::new();
        promotable_run(&ws, |f| tweak(f), |i| index_tweak(i));
        if corrupt_after {
            ws.write("out/r1/summary.json", "{\"changed\":1}");
        }
        assert_eq!(reasons(&ws), implied(reason), "{reason}");
        let r = ws.lith(&["promote", "out", "--require-promotable", "-o", "p.json"]);
        assert_eq!(r.code, 2, "{r:?}");
        assert!(r.stderr.contains(reason), "{r:?}");
        assert!(
            !ws.join("p.json").exists(),
            "--require-promotable writes nothing"
        );
        seen.push(reason);
    }
    seen.sort();
    assert_eq!(seen, lith::bundle::promotion::REASONS);
}

#[test]
fn build_writes_a_packet_per_run_and_shows_promotability() {
    let ws = Workspace::new();
    promotable_run(&ws, |_| {}, |_| {});
    ws.committed_run("out/r2", "complete", &[("a.txt", "a")]);
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"out\"])))",
    );
    assert_eq!(ws.lith(&["build"]).code, 0);
    let p1 = crate::support::packet_on_page(&ws.read("site/runs/r1/index.html"));
    assert_eq!(p1["promotability"]["promotable_decision_stage"], true);
    assert_eq!(p1["schema_version"], "runtime-tools.promotion_packet.v0.2");
    let p2 = crate::support::packet_on_page(&ws.read("site/runs/r2/index.html"));
    assert_eq!(
        p2["promotability"]["reasons"],
        json!([
            "apply_preflight_missing",
            "decision_stage_artifacts_missing",
            "manifest_missing",
            "not_clean_channel"
        ])
    );
    // The runs list says yes for r1 and no, with the reasons, for r2 (row by row:
    // a row is a line, its cells' end tags left out).
    let list = ws.read("site/runs/index.html");
    let row = |id: &str| {
        let start = list.find(&format!(">{id}</code>")).unwrap();
        let end = start + list[start..].find('\n').unwrap();
        list[start..end].to_string()
    };
    assert!(row("r1").contains("<td>yes<td"), "{}", row("r1"));
    assert!(
        row("r2").contains("<td>no <span class=\"muted\">(apply_preflight_missing"),
        "{}",
        row("r2")
    );
    assert!(
        ws.read("site/runs/r2/index.html")
            .contains("not promotable")
    );
    let rep: Value = serde_json::from_str(&ws.read("site/report.json")).unwrap();
    assert_eq!(
        rep["bundles"]["roots"][0]["runs"][0]["promotability"]["promotable_decision_stage"],
        true
    );
}
