//! SPEC §11's hostile inputs, written the same way for the tests that bound their
//! memory and for the benchmark harness that measures it (`benches/quality.rs`
//! includes this file).

use std::io::Write;
use std::path::Path;

/// The run folder `run` (created) with a `run_status.json` and an index of `n`
/// entries, none of whose files exist: about 116 bytes an entry (550,000 entries
/// make 63.8 MB).
pub fn huge_index(run: &Path, n: usize) {
    let sha = "ab".repeat(32);
    write_index(run, n, |f, i| {
        write!(
            f,
            r#"{{"path":"a/f{i:07}.txt","file_size":1,"sha256":"{sha}"}}"#
        )
    });
}

/// Writes a complete run's `run_status.json` at `run` and an index of `n` entries,
/// entry `i` written by `entry`.
fn write_index(
    run: &Path,
    n: usize,
    entry: impl Fn(&mut std::io::BufWriter<std::fs::File>, usize) -> std::io::Result<()>,
) {
    let id = run.file_name().unwrap().to_str().unwrap();
    std::fs::create_dir_all(run).unwrap();
    std::fs::write(
        run.join("run_status.json"),
        format!(r#"{{"run_id":"{id}","state":"complete"}}"#),
    )
    .unwrap();
    let mut f =
        std::io::BufWriter::new(std::fs::File::create(run.join("artifact_index.json")).unwrap());
    write!(
        f,
        r#"{{"run_id":"{id}","status":"ok","missing":[],"artifacts":["#
    )
    .unwrap();
    for i in 0..n {
        if i > 0 {
            f.write_all(b",").unwrap();
        }
        entry(&mut f, i).unwrap();
    }
    f.write_all(b"]}").unwrap();
    f.into_inner().unwrap().sync_all().unwrap();
}

/// A committed-looking run at `run` whose index lists `n` entries naming one path
/// of `path_len` characters, each with a size of its own (every one after the
/// first differs from it).
pub fn repeated_index(run: &Path, n: usize, path_len: usize) {
    let sha = "ab".repeat(32);
    let path = "x".repeat(path_len);
    write_index(run, n, |f, i| {
        write!(f, r#"{{"path":"{path}","file_size":{i},"sha256":"{sha}"}}"#)
    });
}

/// Appends to the activity feed `feed` one event whose line is `mib` MiB long.
pub fn append_huge_line(feed: &Path, mib: usize) {
    let mut f = std::fs::OpenOptions::new().append(true).open(feed).unwrap();
    f.write_all(br#"{"action":"started","phase_id":"PHASE_NIGHTLY","evidence":[""#)
        .unwrap();
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..mib {
        f.write_all(&chunk).unwrap();
    }
    f.write_all(b"\"]}\n").unwrap();
    f.sync_all().unwrap();
}

/// Appends to the activity feed `feed` `lines` runtime events of `PHASE_NIGHTLY`,
/// each naming about `mib` MiB of evidence paths of 4,000 `<` (4,010 characters,
/// within what an event keeps of a field, and what escaping grows most).
pub fn append_evidence_lines(feed: &Path, lines: usize, mib: usize) {
    let mut f =
        std::io::BufWriter::new(std::fs::OpenOptions::new().append(true).open(feed).unwrap());
    let body = "<".repeat(4_000);
    for l in 0..lines {
        write!(
            f,
            r#"{{"action":"dispatch_check","phase_id":"PHASE_NIGHTLY","emit_mode":"runtime_auto","ts_epoch_ms":{},"evidence":["#,
            1_795_308_200_000u64 + l as u64
        )
        .unwrap();
        for i in 0..(mib << 20) / 4_013 {
            let sep = if i == 0 { "" } else { "," };
            write!(f, r#"{sep}"{body}{l:04}{i:06}""#).unwrap();
        }
        f.write_all(b"]}\n").unwrap();
    }
    f.into_inner().unwrap().sync_all().unwrap();
}

/// A task-queue log of `tasks` enqueues, none dequeued, each with a payload of
/// `mib` MiB: every task stays pending.
pub fn queue_of_big_tasks(log: &Path, tasks: usize, mib: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(log).unwrap());
    let blob = "x".repeat(mib << 20);
    for i in 0..tasks {
        writeln!(
            f,
            r#"{{"v":"eta-mu.task-queue/v1","op":"enqueue","task":{{"id":"task-{i:012}","kind":"k","dedupe_key":"k{i}","payload":{{"blob":"{blob}"}}}}}}"#
        )
        .unwrap();
    }
    f.into_inner().unwrap().sync_all().unwrap();
}

/// Writes the queue log `log` with `tasks` small pending tasks (ids `t<i>`, dedupe
/// keys `k<i mod keys>`), then the dequeue of `orphans` tasks that were never
/// enqueued; and, when `receipts` is given, that many task-queue receipts of
/// enqueues that never happened.
pub fn queue_of_small_tasks(
    log: &Path,
    tasks: usize,
    keys: usize,
    orphans: usize,
    receipts: Option<(&Path, usize)>,
) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(log).unwrap());
    for i in 0..tasks {
        writeln!(
            f,
            r#"{{"v":"eta-mu.task-queue/v1","op":"enqueue","task":{{"id":"t{i}","dedupe_key":"k{}"}}}}"#,
            i % keys
        )
        .unwrap();
    }
    for i in 0..orphans {
        writeln!(
            f,
            r#"{{"v":"eta-mu.task-queue/v1","op":"dequeue","task_id":"gone-{i}"}}"#
        )
        .unwrap();
    }
    f.into_inner().unwrap().sync_all().unwrap();
    if let Some((path, n)) = receipts {
        let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
        for i in 0..n {
            writeln!(
                f,
                "ts=2026-01-01T00:00:00Z | kind=:observation | origin=x | owner=o | dod=d | pi=p | host=h | manifest=m | refs=task-queue:enqueue,task:never-{i}"
            )
            .unwrap();
        }
        f.into_inner().unwrap().sync_all().unwrap();
    }
}

/// Appends to the feed `feed` `others` events of phases no document names (one
/// phase per event), then `mine` events of `phase`, each naming the evidence
/// `evidence/<i>.json`, so that they are told apart.
pub fn append_many_events(feed: &Path, others: usize, phase: &str, mine: usize) {
    let mut f =
        std::io::BufWriter::new(std::fs::OpenOptions::new().append(true).open(feed).unwrap());
    let taxonomy = r#""emit_mode":"runtime_auto","verifier_mode":"operational_proof","tool":"t","ts_epoch_ms":1795308098128,"ts_utc":"2026-11-22T00:41:38.128Z""#;
    for i in 0..others {
        writeln!(
            f,
            r#"{{"action":"started","phase_id":"OTHER_{i}","run_id":"r-{i}",{taxonomy}}}"#
        )
        .unwrap();
    }
    for i in 0..mine {
        writeln!(
            f,
            r#"{{"action":"dispatch_x","phase_id":"{phase}","run_id":"m-{i}","evidence":["evidence/{i}.json"],{taxonomy}}}"#
        )
        .unwrap();
    }
    f.into_inner().unwrap().sync_all().unwrap();
}

/// Writes the queue log `log` with `tasks` tasks each enqueued and then dequeued
/// (`t<i>`), and the receipts log `receipts` with a receipt of each operation, but
/// for every 100,000th task from the 7th: its dequeue has no receipt, and its
/// enqueue has two. Returns the queue lines of the missing receipts and the receipt
/// lines of the extra ones.
pub fn queue_with_receipts(log: &Path, receipts: &Path, tasks: usize) -> (Vec<usize>, Vec<usize>) {
    let mut q = std::io::BufWriter::new(std::fs::File::create(log).unwrap());
    let mut r = std::io::BufWriter::new(std::fs::File::create(receipts).unwrap());
    let (mut missing, mut extra) = (Vec::new(), Vec::new());
    let mut receipt_line = 0;
    let mut receipt = |r: &mut std::io::BufWriter<std::fs::File>, op: &str, i: usize| {
        writeln!(
            r,
            "ts=2026-01-01T00:00:00Z | kind=:observation | origin=x | owner=o | dod=d | pi=p | host=h | manifest=m | refs=task-queue:{op},task:t{i}"
        )
        .unwrap();
        receipt_line += 1;
        receipt_line
    };
    for i in 0..tasks {
        writeln!(
            q,
            r#"{{"v":"eta-mu.task-queue/v1","op":"enqueue","task":{{"id":"t{i}"}}}}"#
        )
        .unwrap();
        writeln!(
            q,
            r#"{{"v":"eta-mu.task-queue/v1","op":"dequeue","task_id":"t{i}"}}"#
        )
        .unwrap();
        receipt(&mut r, "enqueue", i);
        if i % 100_000 == 7 {
            missing.push(2 * i + 2);
            extra.push(receipt(&mut r, "enqueue", i));
        } else {
            receipt(&mut r, "dequeue", i);
        }
    }
    q.into_inner().unwrap().sync_all().unwrap();
    r.into_inner().unwrap().sync_all().unwrap();
    (missing, extra)
}

/// Writes the queue log `log` with one pending task whose payload is a list of
/// zeros, `mib` MiB long: the most values a line can hold (a parsed value per two
/// bytes).
pub fn queue_of_one_wide_task(log: &Path, mib: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(log).unwrap());
    f.write_all(
        br#"{"v":"eta-mu.task-queue/v1","op":"enqueue","task":{"id":"task-wide","kind":"k","dedupe_key":"wide","payload":["#,
    )
    .unwrap();
    let zeros = "0,".repeat(1 << 19);
    for _ in 0..mib {
        f.write_all(zeros.as_bytes()).unwrap();
    }
    f.write_all(b"0]}}\n").unwrap();
    f.into_inner().unwrap().sync_all().unwrap();
}

/// Appends to the activity feed `feed` one event (of a phase no document names)
/// whose `evidence` is a list of zeros, `mib` MiB long: within the line cap, and
/// the most values a line can hold.
pub fn append_wide_line(feed: &Path, mib: usize) {
    let mut f = std::fs::OpenOptions::new().append(true).open(feed).unwrap();
    f.write_all(br#"{"action":"note","phase_id":"PHASE_ELSEWHERE","evidence":["#)
        .unwrap();
    let zeros = "0,".repeat(1 << 19);
    for _ in 0..mib {
        f.write_all(zeros.as_bytes()).unwrap();
    }
    f.write_all(b"\"the/one/path\"]}\n").unwrap();
    f.sync_all().unwrap();
}

/// Writes a history.jsonl of `lines` lines, each naming as failing `names` runs
/// whose keys are `len` characters long: the same runs on every line when `shared`
/// (a long red streak), else runs of their own. `names` of 1 and `len` in MiB
/// make one item longer than a line lith reads.
pub fn history(path: &Path, lines: usize, names: usize, len: usize, shared: bool) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for l in 0..lines {
        write!(
            f,
            r#"{{"v":"lith.history/v1","generated_at":"2026-12-01T00:{:02}:{:02}Z","verdict":"partial","counts":{{"runs":{names},"verified":0,"not_verified":{names},"artifacts":0,"artifacts_ok":0,"promotable":0,"phases_proven":0,"phases_short":0}},"failing":["#,
            l / 60 % 60,
            l % 60
        )
        .unwrap();
        for i in 0..names {
            let sep = if i == 0 { "" } else { "," };
            let id = (if shared { i } else { l * names + i }).to_string();
            write!(f, r#"{sep}"run:out/"#).unwrap();
            let zeros = vec![b'0'; len.saturating_sub(id.len()).min(1 << 20)];
            let mut pad = len.saturating_sub(id.len());
            while pad > 0 {
                let n = pad.min(zeros.len());
                f.write_all(&zeros[..n]).unwrap();
                pad -= n;
            }
            write!(f, r#"{id}""#).unwrap();
        }
        f.write_all(b"]}\n").unwrap();
    }
    f.into_inner().unwrap().sync_all().unwrap();
}
