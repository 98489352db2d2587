//! `lith queue` and `lith receipts check` from the shell: the writer, replay, the
//! receipt cross-check, hostile logs, crashes, full and read-only file systems, and
//! concurrent writers.

use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::support::{Run, Workspace};

/// A manifest with the test log and the test receipts.
const WITH_RECEIPTS: &str = "(manifest (v \"promethean.manifest/v1\") (queue (log \"q.jsonl\")) (receipts (log \"receipts.log\")))";

const EPOCH: (&str, &str) = ("SOURCE_DATE_EPOCH", "1790000000");

fn q(ws: &Workspace, args: &[&str]) -> Run {
    let mut all = vec!["queue"];
    all.extend_from_slice(&args[..1]);
    all.extend_from_slice(&["--log", "q.jsonl"]);
    if args[0] != "replay" {
        all.extend_from_slice(&["--receipts", "receipts.log", "--host", "h1"]);
    }
    all.extend_from_slice(&args[1..]);
    ws.lith_env(&all, &[EPOCH])
}

fn enqueue(ws: &Workspace, key: &str) -> Run {
    q(
        ws,
        &[
            "enqueue",
            "--kind",
            "build",
            "--dedupe-key",
            key,
            "--owner",
            "ci",
            "--json",
        ],
    )
}

/// `lith build` of `ws`, which exits with `code` within `max_mib` of memory: its
/// `report.json`, which is under `max_bytes`.
fn bounded_build(ws: &Workspace, code: i32, max_mib: u64, max_bytes: u64) -> Value {
    let (r, peak) = ws.lith_peak_mib(&["build"]);
    assert_eq!(r.code, code, "{r:?}");
    assert!(peak < max_mib, "the build held {peak} MiB");
    let size = std::fs::metadata(ws.join("site/report.json"))
        .unwrap()
        .len();
    assert!(size < max_bytes, "report.json is {size} bytes");
    serde_json::from_str(&ws.read("site/report.json")).unwrap()
}

/// `lith queue replay --json` of the test log, cross-checked against the test
/// receipts.
fn replay_with_receipts(ws: &Workspace) -> Run {
    replay_receipts(ws, &["--json"])
}

/// `lith queue replay` of the test log, cross-checked against the test receipts,
/// with `more` arguments.
fn replay_receipts(ws: &Workspace, more: &[&str]) -> Run {
    ws.lith(&replay_receipts_args(more))
}

/// The arguments of [`replay_receipts`].
fn replay_receipts_args<'a>(more: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "queue",
        "replay",
        "--log",
        "q.jsonl",
        "--receipts",
        "receipts.log",
    ];
    args.extend_from_slice(more);
    args
}

fn lines(ws: &Workspace, f: &str) -> Vec<String> {
    ws.read_opt(f)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn enqueue_dequeue_and_replay_from_the_shell() {
    let ws = Workspace::new();
    let a = enqueue(&ws, "a");
    assert_eq!(a.code, 0, "{a:?}");
    let a_id = a.json()["task"]["id"].as_str().unwrap().to_string();
    assert!(a_id.starts_with("task-") && a_id.len() == 17, "{a_id}");
    assert_eq!(a.json()["deduped"], false);
    assert_eq!(enqueue(&ws, "b").code, 0);
    // Same dedupe key while pending: the same task back, nothing written.
    let again = enqueue(&ws, "a");
    assert_eq!((again.code, &again.json()["deduped"]), (0, &json!(true)));
    assert_eq!(again.json()["task"]["id"], a_id.as_str());
    assert_eq!(lines(&ws, "q.jsonl").len(), 2);
    assert_eq!(lines(&ws, "receipts.log").len(), 2);
    // FIFO.
    let d = q(&ws, &["dequeue", "--owner", "worker", "--json"]);
    assert_eq!(d.code, 0, "{d:?}");
    assert_eq!(d.json()["task"]["id"], a_id.as_str());
    // The key is free again once dequeued.
    assert_eq!(enqueue(&ws, "a").json()["deduped"], false);
    let r = replay_with_receipts(&ws);
    assert_eq!(r.code, 0, "{r:?}");
    let v = r.json();
    assert_eq!(v["counters"]["events"], 4);
    assert_eq!(v["pending"].as_array().unwrap().len(), 2);
    assert_eq!(v["cross_check"]["receipt_missing"], json!([]));
    assert_eq!(v["cross_check"]["queue_receipts"], 4);
    // Every receipt the writer made passes the contract.
    assert_eq!(ws.lith(&["receipts", "check", "receipts.log"]).code, 0);
    let receipt = &lines(&ws, "receipts.log")[2];
    assert!(
        receipt.contains(&format!("refs=task-queue:dequeue,task:{a_id}")),
        "{receipt}"
    );
    assert!(
        receipt.contains("owner=worker") && receipt.contains("host=h1"),
        "{receipt}"
    );
    // Drain, then an empty queue is exit 2 and writes nothing.
    assert_eq!(q(&ws, &["dequeue"]).code, 0);
    assert_eq!(q(&ws, &["dequeue"]).code, 0);
    let before = (lines(&ws, "q.jsonl"), lines(&ws, "receipts.log"));
    let e = q(&ws, &["dequeue", "--json"]);
    assert_eq!(e.code, 2, "{e:?}");
    assert_eq!(e.json()["error"], "empty_queue");
    assert_eq!((lines(&ws, "q.jsonl"), lines(&ws, "receipts.log")), before);
}

#[test]
fn task_ids_are_deterministic_and_empty_keys_come_from_the_payload() {
    let run = |ws: &Workspace| {
        q(
            ws,
            &[
                "enqueue",
                "--kind",
                "k",
                "--payload",
                "{\"b\":1,\"a\":[2]}",
                "--owner",
                "o",
                "--json",
            ],
        );
        q(
            ws,
            &[
                "enqueue",
                "--kind",
                "k",
                "--dedupe-key",
                "x",
                "--owner",
                "o",
            ],
        );
        q(ws, &["dequeue"]);
        q(
            ws,
            &[
                "enqueue",
                "--kind",
                "k",
                "--dedupe-key",
                "y",
                "--owner",
                "o",
            ],
        );
        ws.read("q.jsonl")
    };
    let (a, b) = (Workspace::new(), Workspace::new());
    assert_eq!(
        run(&a),
        run(&b),
        "the same operations on the same log give the same ids and bytes"
    );
    let first: Value = serde_json::from_str(a.read("q.jsonl").lines().next().unwrap()).unwrap();
    assert_eq!(first["task"]["dedupe_key"], "k:{\"a\": [2], \"b\": 1}");
}

#[test]
fn a_crash_between_event_and_receipt_is_reported_as_receipt_missing() {
    let ws = Workspace::new();
    assert_eq!(enqueue(&ws, "a").code, 0);
    // The receipt append fails after the event was written and fsynced: the receipts
    // log is made read-only, the way a crash would cut the sequence short.
    ws.write("receipts.log", ws.read("receipts.log"));
    let undo = crate::writers::freeze(&ws.join("receipts.log"));
    let r = enqueue(&ws, "b");
    undo();
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("receipts.log"), "{r:?}");
    let rep = replay_with_receipts(&ws);
    assert_eq!(rep.code, 2, "{rep:?}");
    let missing = &rep.json()["cross_check"]["receipt_missing"];
    assert_eq!(missing.as_array().unwrap().len(), 1, "{missing}");
    assert_eq!(missing[0]["line"], 2);
    assert_eq!(missing[0]["op"], "enqueue");
    // A receipt that names an operation the log does not have is listed too.
    ws.write(
        "receipts.log",
        ws.read("receipts.log")
            + "ts=2026-01-01T00:00:00Z | kind=:observation | origin=x | owner=o | dod=d | pi=p | host=h | manifest=m | refs=task-queue:dequeue,task:task-nope\n",
    );
    let rep = replay_with_receipts(&ws);
    assert_eq!(
        rep.json()["cross_check"]["receipts_without_op"][0]["task_id"],
        "task-nope"
    );
}

#[test]
fn values_that_would_change_the_receipt_parse_are_refused_and_nothing_is_written() {
    let ws = Workspace::new();
    for args in [
        vec!["enqueue", "--kind", "k", "--owner", "a | b"],
        vec!["enqueue", "--kind", "k", "--owner", "line\nbreak"],
        vec!["enqueue", "--kind", "k", "--owner", "o", "--ref", "a,b"],
        vec!["enqueue", "--kind", "k | x", "--owner", "o"],
    ] {
        let r = q(&ws, &args);
        assert_eq!(r.code, 4, "{args:?}: {r:?}");
        assert!(r.stderr.contains("refusing"), "{r:?}");
        assert_eq!(lines(&ws, "q.jsonl"), Vec::<String>::new(), "{args:?}");
        assert_eq!(lines(&ws, "receipts.log"), Vec::<String>::new(), "{args:?}");
    }
    let r = q(&ws, &["enqueue", "--kind", "k", "--payload", "{nope"]);
    assert_eq!(r.code, 64, "a usage mistake: {r:?}");
}

#[test]
fn hostile_logs_yield_findings_never_a_panic() {
    let ws = Workspace::new();
    assert_eq!(enqueue(&ws, "a").code, 0);
    let good = ws.read("q.jsonl");
    let mut log = good.clone().into_bytes();
    log.extend_from_slice(b"garbage line\n\xff\xfe invalid utf-8\n[1,2]\n{\"op\":\"dequeue\"}\n");
    log.extend_from_slice(good.as_bytes()); // duplicate enqueue of a pending id
    log.extend_from_slice(
        b"{\"v\":\"eta-mu.task-queue/v1\",\"op\":\"dequeue\",\"task_id\":\"task-ghost\"}\n",
    );
    log.extend_from_slice(&vec![b'x'; 10 * 1024 * 1024]);
    log.extend_from_slice(b"\n{\"v\":\"eta-mu.task-queue/v1\",\"op\":\"enq");
    ws.write("q.jsonl", &log);
    let r = ws.lith(&["queue", "replay", "--log", "q.jsonl", "--json"]);
    assert_eq!(r.code, 2, "{}", &r.stderr);
    let v = r.json();
    let c = &v["counters"];
    assert_eq!(
        (
            c["corrupt_line"].as_u64(),
            c["duplicate_enqueue"].as_u64(),
            c["orphan_dequeue"].as_u64(),
            c["torn_tail"].as_u64()
        ),
        (Some(5), Some(1), Some(1), Some(1))
    );
    let found: Vec<(u64, &str)> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["line"].as_u64().unwrap(), f["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        found,
        [
            (2, "corrupt_line"),
            (3, "corrupt_line"),
            (4, "corrupt_line"),
            (5, "corrupt_line"),
            (6, "duplicate_enqueue"),
            (7, "orphan_dequeue"),
            (8, "corrupt_line"),
            (9, "torn_tail")
        ]
    );
    let strict = ws.lith(&["queue", "replay", "--log", "q.jsonl", "--strict"]);
    assert_eq!(strict.code, 4, "{strict:?}");
    assert!(
        strict.stderr.contains("q.jsonl:2: corrupt_line"),
        "{strict:?}"
    );
}

#[test]
fn a_torn_tail_alone_is_exit_0_and_the_next_writer_moves_it_aside() {
    let ws = Workspace::new();
    assert_eq!(enqueue(&ws, "a").code, 0);
    let torn = "{\"v\":\"eta-mu.task-queue/v1\",\"op\":\"enqueue\",\"task\":{\"id\":\"task-x";
    ws.write("q.jsonl", ws.read("q.jsonl") + torn);
    let r = ws.lith(&["queue", "replay", "--log", "q.jsonl", "--json"]);
    assert_eq!(
        r.code, 0,
        "a torn tail is the normal trace of a crash: {r:?}"
    );
    assert_eq!(r.json()["counters"]["torn_tail"], 1);
    assert_eq!(
        ws.lith(&["queue", "replay", "--log", "q.jsonl", "--strict"])
            .code,
        4
    );
    let w = enqueue(&ws, "b");
    assert_eq!(w.code, 0, "{w:?}");
    assert_eq!(w.json()["torn_tail_moved"], torn.len());
    assert!(ws.read("q.jsonl.torn").contains(torn), "nothing is lost");
    let r = replay_with_receipts(&ws);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["findings"], json!([]));
    assert_eq!(r.json()["pending"].as_array().unwrap().len(), 2);
}

#[test]
fn read_only_and_full_file_systems_are_exit_4_with_nothing_half_written() {
    let ws = Workspace::new();
    assert_eq!(enqueue(&ws, "a").code, 0);
    let before = ws.read("q.jsonl");
    let undo = crate::writers::freeze(&ws.join("q.jsonl"));
    let r = enqueue(&ws, "b");
    undo();
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("q.jsonl"), "{r:?}");
    assert_eq!(ws.read("q.jsonl"), before);

    // A full file system: a tiny tmpfs, where this test may mount one.
    let mnt = ws.join("full");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16k", "tmpfs"])
        .arg(&mnt)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("note: cannot mount a tmpfs here; the full-disk case was not exercised");
        return;
    }
    let log = mnt.join("q.jsonl");
    let receipts = mnt.join("r.log");
    let big = "x".repeat(3000);
    let mut last = 0;
    for i in 0..20 {
        let r = ws.lith(&[
            "queue",
            "enqueue",
            "--log",
            log.to_str().unwrap(),
            "--receipts",
            receipts.to_str().unwrap(),
            "--kind",
            "k",
            "--dedupe-key",
            &format!("k{i}"),
            "--payload",
            &format!("{{\"pad\":\"{big}\"}}"),
            "--owner",
            "o",
        ]);
        last = r.code;
        if r.code != 0 {
            assert_eq!(r.code, 4, "{r:?}");
            assert!(
                r.stderr.contains("cannot append") || r.stderr.contains("No space"),
                "{r:?}"
            );
            break;
        }
    }
    let replay = ws.lith(&["queue", "replay", "--log", log.to_str().unwrap(), "--json"]);
    Command::new("umount").arg(&mnt).status().unwrap();
    assert_eq!(last, 4, "the disk never filled up");
    assert_eq!(replay.code, 0, "no half-written event: {replay:?}");
    assert_eq!(replay.json()["findings"], json!([]));
}

#[test]
fn concurrent_enqueues_write_one_event_and_one_receipt_each() {
    let ws = Workspace::new();
    let n = 12;
    let children: Vec<_> = (0..n)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_lith"))
                .args([
                    "queue",
                    "enqueue",
                    "--log",
                    "q.jsonl",
                    "--receipts",
                    "receipts.log",
                    "--kind",
                    "k",
                    "--owner",
                    "o",
                ])
                .args([
                    "--dedupe-key",
                    &format!("key-{i}"),
                    "--payload",
                    &format!("{{\"i\":{i},\"pad\":\"{}\"}}", "p".repeat(5000)),
                ])
                .args(["--lock", "wait", "--lock-timeout", "60"])
                .current_dir(ws.path())
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert_eq!(c.wait().unwrap().code(), Some(0));
    }
    let events = lines(&ws, "q.jsonl");
    assert_eq!(events.len(), n);
    for e in &events {
        serde_json::from_str::<Value>(e).expect("no interleaved lines");
    }
    assert_eq!(lines(&ws, "receipts.log").len(), n);
    let r = replay_with_receipts(&ws);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["pending"].as_array().unwrap().len(), n);
    assert_eq!(ws.lith(&["receipts", "check", "receipts.log"]).code, 0);
}

/// SPEC §11: a receipt line of millions of fields is read in part, in bounded
/// memory and linear time. The previous lith split every field and checked each
/// key against every key before it: 200,000 distinct keys took 30 s, and a 60 MB
/// line of 10 M repeated keys 2.6 GB (a finding per repeat).
#[test]
fn a_receipt_line_of_millions_of_fields_is_read_in_part() {
    let ws = Workspace::new();
    let head = "ts=2026-02-15T19:32:00+00:00 | kind=:build | origin=o | owner=w | dod=d | pi=p | host=h | manifest=m | refs=a";
    let mut log = String::from(head);
    for _ in 0..5_000_000 {
        log.push_str(" | a=1");
    }
    log.push('\n');
    log.push_str(head);
    for i in 0..200_000 {
        log.push_str(&format!(" | k{i}=1"));
    }
    log.push('\n');
    ws.write("r.log", log);
    let (r, peak) = ws.lith_peak_mib(&["receipts", "check", "r.log", "--json"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(peak < 128, "receipts check held {peak} MiB");
    let v = r.json();
    assert_eq!(v["receipts"], 2);
    assert_eq!(v["lines_with_findings"], 2);
    let messages: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "malformed_field")
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            "the line has 5000009 fields; lith reads the first 1024",
            "the line has 200009 fields; lith reads the first 1024"
        ]
    );
    let repeats = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "duplicate_key")
        .count();
    assert_eq!(repeats, 1024 - 10, "one per repeat read");
}

#[test]
fn receipts_check_reports_per_line_findings() {
    let ws = Workspace::new();
    ws.write(
        "r.log",
        "ts=2026-02-15T19:32:00+00:00 | kind=:build | origin=o | owner=w | dod=d | pi=p | host=h | manifest=m | refs=a\n\n\
         ts=nope | kind=:party | origin=o | owner=w | dod=x | y | pi=p | host=h | manifest=m | refs=a | owner=again\n",
    );
    let r = ws.lith(&["receipts", "check", "r.log", "--json"]);
    assert_eq!(r.code, 2, "{r:?}");
    let v = r.json();
    assert_eq!(
        (v["receipts"].as_u64(), v["lines_with_findings"].as_u64()),
        (Some(2), Some(1))
    );
    let f: Vec<(u64, &str, Option<&str>)> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["line"].as_u64().unwrap(),
                f["kind"].as_str().unwrap(),
                f["key"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        f,
        [
            (3, "bad_timestamp", Some("ts")),
            (3, "unknown_kind", Some("kind")),
            (3, "malformed_field", None),
            (3, "duplicate_key", Some("owner"))
        ]
    );
    ws.write("bad.lisp", "(contract (kinds [:build)");
    let r = ws.lith(&["receipts", "check", "r.log", "--contract", "bad.lisp"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("bad.lisp:1:"), "{r:?}");
}

#[test]
fn the_build_has_a_queue_and_a_receipts_section() {
    let ws = Workspace::new();
    assert_eq!(enqueue(&ws, "a").code, 0);
    ws.write("manifest.lith", WITH_RECEIPTS);
    let r = ws.lith(&["build"]);
    assert_eq!(r.code, 0, "{r:?}");
    let rep: Value = serde_json::from_str(&ws.read("site/report.json")).unwrap();
    assert_eq!(
        rep["queue"]["replay"]["pending"].as_array().unwrap().len(),
        1
    );
    assert_eq!(rep["queue"]["cross_check"]["receipt_missing"], json!([]));
    assert_eq!(rep["receipts"]["check"]["receipts"], 1);
    assert!(
        ws.read("site/queue/index.html")
            .contains(rep["queue"]["replay"]["pending"][0]["id"].as_str().unwrap())
    );
    assert!(
        ws.read("site/receipts/index.html")
            .contains("task-queue:enqueue")
    );
    // An event without its receipt makes the build partial, and says why.
    ws.write(
        "q.jsonl",
        ws.read("q.jsonl")
            + &ws.read("q.jsonl").replace(
                rep["queue"]["replay"]["pending"][0]["id"].as_str().unwrap(),
                "task-000000000000",
            ),
    );
    let r = ws.lith(&["build"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stdout.contains("queue.receipt_missing"), "{r:?}");
}

/// SPEC §3.4: a symlink planted where lith creates `<log>.lock` or `<log>.torn` is
/// refused, never followed; the file it points at is left untouched.
#[test]
fn planted_symlinks_beside_the_log_are_refused() {
    for planted in ["q.jsonl.lock", "q.jsonl.torn"] {
        let ws = Workspace::new();
        ws.write("victim.txt", "precious");
        std::os::unix::fs::symlink(ws.join("victim.txt"), ws.join(planted)).unwrap();
        if planted.ends_with(".torn") {
            // A torn tail makes the writer move it aside into `<log>.torn`.
            ws.write("q.jsonl", "{\"v\":\"eta-mu.task-queue/v1\",\"op\":\"enq");
        }
        let r = enqueue(&ws, "a");
        assert_eq!(r.code, 4, "{planted}: {r:?}");
        assert_eq!(ws.read("victim.txt"), "precious", "{planted}");
    }
}

/// SPEC §4.2: a log whose last complete event lacks its newline gets one before the
/// next append, so both events survive replay.
#[test]
fn an_append_never_glues_two_events_into_one_line() {
    let ws = Workspace::new();
    assert_eq!(enqueue(&ws, "a").code, 0);
    let log = ws.read("q.jsonl");
    ws.write("q.jsonl", log.trim_end_matches('\n'));
    assert_eq!(enqueue(&ws, "b").code, 0);
    let r = q(&ws, &["replay", "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v = r.json();
    assert_eq!(v["pending"].as_array().unwrap().len(), 2, "{v:#}");
}

/// SPEC §4.1–4.2: a torn tail is a torn tail whatever its length (moved aside before
/// the next append, never glued to it), and a line over the 64 MiB cap is
/// `line_too_long`, read in bounded memory. Both with a line of 80 MiB.
#[test]
fn huge_torn_tails_and_lines_are_bounded_and_never_glued() {
    use std::io::Write;
    let huge = 80usize << 20;
    let ws = Workspace::new();
    assert_eq!(enqueue(&ws, "a").code, 0);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(ws.join("q.jsonl"))
        .unwrap();
    f.write_all(b"{\"op\":\"enqueue\",\"task\":{\"id\":\"")
        .unwrap();
    f.write_all(&vec![b'x'; huge]).unwrap();
    drop(f);
    let (r, peak) = ws.lith_peak_mib(&["queue", "replay", "--log", "q.jsonl", "--json"]);
    assert_eq!(
        r.code, 0,
        "a torn tail alone is the trace of a crash: {r:?}"
    );
    assert_eq!(r.json()["counters"]["torn_tail"], 1);
    assert!(peak < 128, "replay held {peak} MiB");
    assert_eq!(enqueue(&ws, "b").code, 0);
    let torn = std::fs::metadata(ws.join("q.jsonl.torn")).unwrap().len();
    assert!(torn > huge as u64, "the tail was moved aside whole");
    let v = q(&ws, &["replay", "--json"]).json();
    assert_eq!(
        v["pending"].as_array().unwrap().len(),
        2,
        "{}",
        v["findings"]
    );
    assert_eq!(v["counters"]["torn_tail"], 0);
    // The same line, ended by a newline and followed by an event: line_too_long.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(ws.join("q.jsonl"))
        .unwrap();
    f.write_all(&vec![b'x'; huge]).unwrap();
    f.write_all(b"\n").unwrap();
    drop(f);
    assert_eq!(enqueue(&ws, "c").code, 0);
    let (r, peak) = ws.lith_peak_mib(&["queue", "replay", "--log", "q.jsonl", "--json"]);
    assert_eq!(r.code, 2, "{r:?}");
    let v = r.json();
    assert_eq!(v["counters"]["line_too_long"], 1);
    assert_eq!(v["findings"][0]["kind"], "line_too_long");
    assert_eq!(v["pending"].as_array().unwrap().len(), 3);
    assert!(peak < 128, "replay held {peak} MiB");
}

/// SPEC §3.4: what lith writes is readable like any tool's output (0666 less the
/// umask), not the 0600 of a temporary file.
#[test]
fn outputs_get_the_usual_mode() {
    use std::os::unix::fs::PermissionsExt;
    let ws = Workspace::new();
    ws.committed_run("out/r1", "complete", &[("a.txt", "a")]);
    std::fs::remove_file(ws.join("out/r1/artifact_index.json")).unwrap();
    assert_eq!(ws.lith(&["commit", "out/r1"]).code, 0);
    // SAFETY: reading the umask means setting it; it is put back at once.
    let umask = unsafe {
        let old = libc::umask(0o022);
        libc::umask(old);
        old
    } as u32;
    for f in ["out/r1/artifact_index.json", "out/LATEST"] {
        let mode = std::fs::metadata(ws.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666 & !umask, "{f}: {mode:o}");
    }
}

/// The site's files and folders get the mode any tool's get: `0666` and `0777` less
/// the umask. lith gave its pages `0644` and the site's folder `0755` whatever the
/// umask, so a build under `umask 077` published a site others could read.
#[test]
fn site_files_get_the_usual_mode_under_any_umask() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let ws = Workspace::demo();
    for (umask, out) in [(0o077, "private"), (0o002, "shared")] {
        let mut cmd = ws.command(&["build", "-q", "--out", out]);
        // SAFETY: umask is async-signal-safe and touches nothing but the child.
        unsafe {
            cmd.pre_exec(move || {
                libc::umask(umask);
                Ok(())
            });
        }
        let code = cmd.status().unwrap().code();
        assert_eq!(code, Some(3), "umask {umask:o}");
        let mut modes = std::collections::BTreeSet::new();
        for e in walkdir::WalkDir::new(ws.join(out)) {
            let e = e.unwrap();
            let mode = e.metadata().unwrap().permissions().mode() & 0o777;
            let want = if e.file_type().is_dir() { 0o777 } else { 0o666 } & !umask;
            assert_eq!(
                mode,
                want,
                "umask {umask:o}: {}: {mode:o}",
                e.path().display()
            );
            modes.insert(mode);
        }
        assert_eq!(modes.len(), 2, "files and folders: {modes:?}");
    }
}

#[test]
fn a_planted_runtime_lock_symlink_is_refused_by_commit() {
    let ws = Workspace::new();
    ws.committed_run("out/r1", "complete", &[("a.txt", "a")]);
    std::fs::remove_file(ws.join("out/r1/artifact_index.json")).unwrap();
    ws.write("victim.txt", "precious");
    std::os::unix::fs::symlink(ws.join("victim.txt"), ws.join("out/.runtime.lock")).unwrap();
    let r = ws.lith(&["commit", "out/r1"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert_eq!(ws.read("victim.txt"), "precious");
    assert!(!ws.join("out/r1/artifact_index.json").exists());
}

/// SPEC §11: pending tasks with large payloads stay in the log, not in memory. 12
/// tasks of 10 MiB (a 126 MB log) are replayed, printed in full with `--json`, and
/// built into a report, each under 128 MiB; the report holds each as a stand-in
/// that names its size, digest and line. A lith that held the tasks (or their
/// parsed forms) needs twice the log.
#[test]
fn pending_tasks_with_large_payloads_stay_in_the_log() {
    use sha2::{Digest, Sha256};
    let ws = Workspace::new();
    crate::support::hostile::queue_of_big_tasks(&ws.join("q.jsonl"), 12, 10);
    assert_eq!(enqueue(&ws, "small").code, 0);
    // The writer reads the first pending task back from the log to dequeue it.
    let r = q(&ws, &["dequeue", "--owner", "ci", "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["task"]["id"], "task-000000000000");
    assert_eq!(
        r.json()["task"]["payload"]["blob"].as_str().map(str::len),
        Some(10 << 20)
    );

    let (r, peak) = ws.lith_peak_mib(&["queue", "replay", "--log", "q.jsonl", "--json"]);
    assert_eq!(r.code, 0, "{}", &r.stderr);
    assert!(peak < 128, "replay --json held {peak} MiB");
    let v = r.json();
    let pending = v["pending"].as_array().unwrap();
    assert_eq!(pending.len(), 12);
    for (i, t) in pending[..11].iter().enumerate() {
        assert_eq!(t["id"], format!("task-{:012}", i + 1));
        assert_eq!(t["payload"]["blob"].as_str().map(str::len), Some(10 << 20));
    }
    assert_eq!(pending[11]["dedupe_key"], "small");
    // The digest of what was printed, computed apart from lith: the canonical list
    // without `created_at`.
    let list: Vec<Value> = pending
        .iter()
        .map(|t| {
            let mut t = t.as_object().unwrap().clone();
            t.remove("created_at");
            Value::Object(t)
        })
        .collect();
    let whole = serde_json::to_string(&Value::Array(list)).unwrap();
    let digest = format!("{:x}", Sha256::digest(whole.as_bytes()));
    assert_eq!(v["state_sha256"], digest);
    drop(v);

    let (r, peak) = ws.lith_peak_mib(&["queue", "replay", "--log", "q.jsonl"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains(&digest), "{r:?}");
    assert!(peak < 128, "replay held {peak} MiB");

    ws.committed_run("out/r1", "complete", &[("a.txt", "a")]);
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"out\"])) (queue (log \"q.jsonl\")))",
    );
    let report = bounded_build(&ws, 0, 128, 1 << 20);
    let replay = &report["queue"]["replay"];
    assert_eq!(replay["state_sha256"], digest);
    let pending = replay["pending"].as_array().unwrap();
    assert_eq!(pending.len(), 12);
    let first = &pending[0];
    assert_eq!(first["id"], "task-000000000001");
    assert_eq!(first["kind"], "k");
    assert_eq!(first["dedupe_key"], "k1");
    assert!(first.get("payload").is_none(), "{first}");
    let log = std::fs::read(ws.join("q.jsonl")).unwrap();
    let line = log.split(|&b| b == b'\n').nth(1).unwrap();
    let task = &line[line.windows(8).position(|w| w == b"\"task\":{").unwrap() + 7..line.len() - 1];
    assert_eq!(first["omitted"]["bytes"], task.len());
    assert_eq!(
        first["omitted"]["sha256"],
        format!("{:x}", Sha256::digest(task))
    );
    assert_eq!(first["omitted"]["line"], 2);
    // The small task is written in full.
    assert_eq!(pending[11]["payload"], json!({}));
    assert!(pending[11].get("omitted").is_none());
    let page = ws.read("site/queue/index.html");
    assert!(
        page.contains(&format!(
            "(left out: a task of {} bytes, sha256 {}…, line 2 of the log)",
            task.len(),
            &format!("{:x}", Sha256::digest(task))[..12]
        )),
        "{page}"
    );
}

/// SPEC §11: a task is never parsed into memory whole. One pending task whose
/// payload is 12 MiB of `0,` (6 million values; parsed, each costs 32 bytes) is
/// replayed, printed, dequeued and built each under 128 MiB.
#[test]
fn a_task_of_millions_of_values_is_written_without_parsing_it_whole() {
    let ws = Workspace::new();
    crate::support::hostile::queue_of_one_wide_task(&ws.join("q.jsonl"), 12);
    let (r, peak) = ws.lith_peak_mib(&["queue", "replay", "--log", "q.jsonl", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(peak < 128, "replay --json held {peak} MiB");
    // Every value printed, one per line of the pretty output.
    let zeros = r
        .stdout
        .lines()
        .filter(|l| matches!(l.trim(), "0" | "0,"))
        .count();
    assert_eq!(zeros, (12 << 19) + 1);
    assert!(r.stdout.contains("\"id\": \"task-wide\""));
    let (r, peak) = ws.lith_peak_mib(&["queue", "replay", "--log", "q.jsonl"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(peak < 128, "replay held {peak} MiB");
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (bundles (roots [\"out\"])) (queue (log \"q.jsonl\")))",
    );
    ws.committed_run("out/r1", "complete", &[("a.txt", "a")]);
    let (r, peak) = ws.lith_peak_mib(&["build"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(peak < 128, "build held {peak} MiB");
    let (r, peak) = ws.lith_peak_mib(&[
        "queue",
        "dequeue",
        "--log",
        "q.jsonl",
        "--receipts",
        "receipts.log",
        "--host",
        "h1",
        "--json",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(peak < 128, "dequeue held {peak} MiB");
    assert_eq!(r.json()["task"]["id"], "task-wide");
}

/// SPEC §3.4: the receipts log is opened without following a symbolic link, now
/// that it is read line by line from an open handle: `receipts check`, `queue
/// replay --receipts` and a build each refuse a link planted in its place.
#[test]
fn a_receipts_log_that_is_a_symlink_is_refused_everywhere_it_is_read() {
    let ws = Workspace::new();
    assert_eq!(enqueue(&ws, "a").code, 0);
    std::fs::rename(ws.join("receipts.log"), ws.join("real.log")).unwrap();
    std::os::unix::fs::symlink(ws.join("real.log"), ws.join("receipts.log")).unwrap();
    let r = ws.lith(&["receipts", "check", "receipts.log"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("symbolic link"), "{r:?}");
    let r = replay_receipts(&ws, &[]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("symbolic link"), "{r:?}");
    ws.write("manifest.lith", WITH_RECEIPTS);
    let r = ws.lith(&["build"]);
    assert_ne!(r.code, 0, "{r:?}");
    let receipts: Value = serde_json::from_str(&ws.read("site/report.json")).unwrap();
    let findings = receipts["receipts"]["findings"].to_string();
    assert!(findings.contains("receipts.log_unreadable"), "{findings}");
    assert!(findings.contains("symbolic link"), "{findings}");
}

/// A log of many bad lines and operations without receipts, checked against many
/// receipts without operations: the report, the page and the replay list the first
/// of each and count them all. The previous lith kept a record of every event and
/// every finding, and wrote each into `report.json` (tens of MB here).
#[test]
fn mismatches_by_the_hundred_thousand_are_counted_and_the_first_listed() {
    let ws = Workspace::new();
    let n = 150_000;
    crate::support::hostile::queue_of_small_tasks(
        &ws.join("q.jsonl"),
        0,
        1,
        n,
        Some((&ws.join("receipts.log"), n)),
    );
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(ws.join("q.jsonl"))
        .unwrap();
    std::io::Write::write_all(&mut log, b"not json\n").unwrap();
    drop(log);
    let rep = replay_with_receipts(&ws);
    assert_eq!(rep.code, 2, "{}", rep.stderr);
    let v = rep.json();
    assert_eq!(v["counters"]["orphan_dequeue"], n);
    assert_eq!(v["counters"]["corrupt_line"], 1);
    let findings = v["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 10_001);
    assert_eq!(findings[0]["line"], 1);
    assert_eq!(findings[10_000]["kind"], "corrupt_line");
    assert_eq!(v["findings_omitted"], n - 10_000);
    let cc = &v["cross_check"];
    assert_eq!(cc["ops"], n);
    assert_eq!(cc["queue_receipts"], n);
    assert_eq!(cc["receipt_missing"].as_array().unwrap().len(), 10_000);
    assert_eq!(cc["receipt_missing_omitted"], n - 10_000);
    assert_eq!(cc["receipt_missing"][9_999]["task_id"], "gone-9999");
    assert_eq!(cc["receipts_without_op"].as_array().unwrap().len(), 10_000);
    assert_eq!(cc["receipts_without_op_omitted"], n - 10_000);
    assert_eq!(cc["receipts_without_op"][0]["task_id"], "never-0");
    drop(v);
    let text = replay_receipts(&ws, &[]);
    assert!(
        text.stdout.contains(&format!(
            "{n} op(s) without a receipt, {n} receipt(s) without an op"
        )),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains(&format!("… {} more finding(s)", n + 1 - 20)),
        "{}",
        text.stdout
    );

    ws.write("manifest.lith", WITH_RECEIPTS);
    let rep = bounded_build(&ws, 2, 64, 8 << 20);
    let messages: Vec<&str> = rep["queue"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert!(
        messages.contains(&format!("{n} line(s); the first is line 1").as_str()),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with(&format!("{n} queue operation(s) have no receipt"))),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with(&format!("{n} task-queue receipt(s) match no"))),
        "{messages:?}"
    );
    assert_eq!(rep["queue"]["replay"]["findings_omitted"], n - 10_000);
    let page = ws.read("site/queue/index.html");
    assert!(page.contains(&format!(
        "{} more operation(s) without a receipt not shown",
        n - 1000
    )));
    assert!(page.contains(&format!(
        "{} more task-queue receipt(s) without an operation",
        n - 1000
    )));
    assert!(
        page.len() < 1 << 20,
        "the queue page is {} bytes",
        page.len()
    );
}

/// A million small pending tasks are held in a few dozen bytes each, and one more
/// is refused at its line: replay's memory is bounded whatever the log. The previous
/// lith held about 240 bytes a task (an 1,048,577-task log: 250 MiB to replay, 370
/// MiB to print) and had no bound.
#[test]
#[ignore = "about a minute in the test profile: a log of a million tasks (.ci/run runs it with --include-ignored)"]
fn a_million_pending_tasks_are_held_compactly_and_one_more_is_refused() {
    use std::io::Write;
    let ws = Workspace::new();
    let n = 1 << 20;
    crate::support::hostile::queue_of_small_tasks(&ws.join("q.jsonl"), n, 1000, 0, None);
    let (r, peak) = ws.lith_peak_mib(&["queue", "replay", "--log", "q.jsonl"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains(&format!("{n} pending")), "{}", r.stdout);
    assert!(peak < 160, "replay held {peak} MiB");
    let (r, peak) = ws.lith_peak_mib(&["queue", "replay", "--log", "q.jsonl", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(peak < 200, "replay --json held {peak} MiB");
    let v = r.json();
    assert_eq!(v["pending"].as_array().unwrap().len(), n);
    assert_eq!(v["pending"][n - 1]["id"], format!("t{}", n - 1));
    let index = v["dedupe_index"].as_object().unwrap();
    assert_eq!(index.len(), 1000);
    assert_eq!(index["k7"], "t7", "the oldest task that holds the key");
    drop(v);

    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(ws.join("q.jsonl"))
        .unwrap();
    log.write_all(
        b"{\"v\":\"eta-mu.task-queue/v1\",\"op\":\"enqueue\",\"task\":{\"id\":\"one-more\"}}\n",
    )
    .unwrap();
    let r = ws.lith(&["queue", "replay", "--log", "q.jsonl"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "line {}: more than {n} tasks would be pending at once",
            n + 1
        )),
        "{}",
        r.stderr
    );
    // A build says so too, and fails closed.
    ws.write(
        "manifest.lith",
        "(manifest (v \"promethean.manifest/v1\") (queue (log \"q.jsonl\")))",
    );
    let r = ws.lith(&["build"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stdout.contains("queue.log_unreadable"), "{}", r.stdout);
}

/// Millions of task-queue receipts are checked in bounded memory: past a million,
/// the receipts and then the operations go to temporary files, split by
/// (operation, task), and are counted one part at a time. The previous lith held
/// every receipt, some 50 bytes each with no bound: 118 MiB to replay these logs
/// against (45 MiB now, most of it the million held before the spill), 132 MiB to
/// build (64 MiB now).
#[test]
#[ignore = "about a minute in the test profile: logs of millions of lines (.ci/run runs it with --include-ignored)"]
fn millions_of_receipts_are_cross_checked_in_bounded_memory() {
    let ws = Workspace::new();
    let n = 1_200_000;
    let (missing, extra) = crate::support::hostile::queue_with_receipts(
        &ws.join("q.jsonl"),
        &ws.join("receipts.log"),
        n,
    );
    let (r, peak) = ws.lith_peak_mib(&replay_receipts_args(&["--json"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(peak < 64, "replay held {peak} MiB");
    let v = r.json();
    let cc = &v["cross_check"];
    assert_eq!(cc["ops"], 2 * n);
    assert_eq!(cc["queue_receipts"], 2 * n);
    let lines = |list: &Value| -> Vec<usize> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|x| x["line"].as_u64().unwrap() as usize)
            .collect()
    };
    assert_eq!(lines(&cc["receipt_missing"]), missing);
    assert_eq!(cc["receipt_missing"][0]["task_id"], "t7");
    assert_eq!(cc["receipt_missing"][0]["op"], "dequeue");
    assert_eq!(lines(&cc["receipts_without_op"]), extra);
    assert_eq!(cc["receipts_without_op"][0]["task_id"], "t7");

    ws.write("manifest.lith", WITH_RECEIPTS);
    let rep = bounded_build(&ws, 2, 96, 8 << 20);
    let cc = &rep["queue"]["cross_check"];
    assert_eq!(lines(&cc["receipt_missing"]), missing);
    assert_eq!(lines(&cc["receipts_without_op"]), extra);

    // With nowhere to spill, the check fails closed.
    let nowhere = ws.join("no-such-folder");
    let nowhere = nowhere.to_str().unwrap();
    let r = ws.lith_env(&["build"], &[("TMPDIR", nowhere)]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stdout.contains("receipts.log_unreadable") && r.stdout.contains("cross-check"),
        "{}",
        r.stdout
    );
}

/// Tasks from another producer whose id or kind would split a receipt (`,`, `|`,
/// a line break, surrounding spaces) are dequeued, with receipts that name them by
/// digest and that the cross-check matches. The previous lith refused to dequeue a
/// task whose id or kind holds ` | ` (so the queue could not move past it), and
/// wrote `task:a,b` for the task `a,b`, which reads back as the task `a`: its
/// dequeue was `receipt_missing`, with an orphan receipt.
#[test]
fn tasks_whose_ids_would_split_a_receipt_are_dequeued_and_matched() {
    use sha2::{Digest, Sha256};
    let ws = Workspace::new();
    let tasks = [
        ("a,b", "k"),
        ("c | d", "k"),
        ("e\nf", "k"),
        (" g ", "k"),
        ("h", "x | y"),
    ];
    let log: String = tasks
        .iter()
        .map(|(id, kind)| {
            format!(
                "{}\n",
                serde_json::json!({"v": "eta-mu.task-queue/v1", "op": "enqueue", "task": {"id": id, "kind": kind}})
            )
        })
        .collect();
    ws.write("q.jsonl", log);
    for (id, _) in tasks {
        let r = q(&ws, &["dequeue", "--owner", "ci", "--json"]);
        assert_eq!(r.code, 0, "{id:?}: {}", r.stderr);
        assert_eq!(r.json()["task"]["id"], id);
    }
    let receipts = lines(&ws, "receipts.log");
    assert_eq!(receipts.len(), tasks.len(), "{receipts:?}");
    for ((id, _), line) in tasks[..4].iter().zip(&receipts) {
        let named = format!("sha256:{:x}", Sha256::digest(id.as_bytes()));
        assert!(
            line.ends_with(&format!("refs=task-queue:dequeue,task:{named}")),
            "{line}"
        );
    }
    assert!(
        receipts[4].ends_with("refs=task-queue:dequeue,task:h"),
        "{}",
        receipts[4]
    );
    let r = ws.lith(&["receipts", "check", "receipts.log"]);
    assert_eq!(r.code, 0, "every receipt parses: {}", r.stdout);
    // The enqueues came from another producer, without receipts; each dequeue has
    // its own.
    let v = replay_with_receipts(&ws).json();
    let cc = &v["cross_check"];
    let missing: Vec<(&str, &str)> = cc["receipt_missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["op"].as_str().unwrap(), m["task_id"].as_str().unwrap()))
        .collect();
    let enqueues: Vec<(&str, &str)> = tasks.iter().map(|(id, _)| ("enqueue", *id)).collect();
    assert_eq!(missing, enqueues);
    assert_eq!(cc["receipts_without_op"], serde_json::json!([]));
}

/// A task whose id is 40 MiB, written by another producer, is dequeued with a
/// receipt that names it as replay does (`sha256:` and its digest): a short line
/// the cross-check matches. The previous lith wrote the id in full twice, an 80
/// MiB receipt past the line cap that no reader takes, so the dequeue showed up as
/// `receipt_missing`.
#[test]
fn a_task_with_a_huge_id_is_dequeued_with_a_short_receipt() {
    use sha2::{Digest, Sha256};
    let ws = Workspace::new();
    let id = "x".repeat(40 << 20);
    ws.write(
        "q.jsonl",
        format!("{{\"v\":\"eta-mu.task-queue/v1\",\"op\":\"enqueue\",\"task\":{{\"id\":\"{id}\",\"kind\":\"k\"}}}}\n"),
    );
    ws.write(
        "receipts.log",
        format!("ts=2026-01-01T00:00:00Z | kind=:observation | origin=x | owner=o | dod=d | pi=p | host=h | manifest=m | refs=task-queue:enqueue,task:{id}\n"),
    );
    let r = q(&ws, &["dequeue", "--owner", "ci"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let receipts = ws.read("receipts.log");
    let last = receipts.lines().last().unwrap();
    assert!(last.len() < 1024, "the receipt is {} bytes", last.len());
    let held = format!("sha256:{:x}", Sha256::digest(id.as_bytes()));
    assert!(
        last.contains(&format!("refs=task-queue:dequeue,task:{held}")),
        "{last}"
    );
    let rep = replay_with_receipts(&ws);
    assert_eq!(rep.code, 0, "{}", rep.stderr);
    let v = rep.json();
    assert_eq!(v["cross_check"]["ops"], 2);
    assert_eq!(v["cross_check"]["receipt_missing"], json!([]));
    assert_eq!(v["cross_check"]["receipts_without_op"], json!([]));
    assert_eq!(v["pending"], json!([]));
}
