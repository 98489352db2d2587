//! The file-backed task queue (SPEC §4.1): an append-only JSON Lines event log
//! (`eta-mu.task-queue/v1`) folded by [`replay`] into the FIFO list of pending tasks,
//! the dedupe index, counters and a `state_sha256` that depends on what is queued,
//! not on when. [`writer`] appends under a lock; [`crosscheck`] pairs operations with
//! their receipts.
//!
//! Replay is lenient by default: a bad line is skipped and counted with its line
//! number; a last line cut short by a crashed writer is a `torn_tail`, reported apart
//! from mid-file corruption. The strict mode stops at the first one.

pub mod crosscheck;
pub mod writer;

use std::collections::BTreeMap;

type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use std::io::Read;
use std::path::Path;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::bundle::verify::hex;

pub const VERSION: &str = "eta-mu.task-queue/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    CorruptLine,
    LineTooLong,
    TornTail,
    DuplicateEnqueue,
    OrphanDequeue,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct QueueFinding {
    pub line: usize,
    pub kind: FindingKind,
    pub message: String,
}

str_enum! {
    /// What a queue event does.
    pub enum OpKind {
        Enqueue = "enqueue",
        Dequeue = "dequeue",
    }
}

/// A queue operation that replay accepted, for the receipt cross-check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Op {
    pub line: usize,
    pub op: OpKind,
    pub task_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Counters {
    pub events: usize,
    pub enqueued: usize,
    pub dequeued: usize,
    pub duplicate_enqueue: usize,
    pub orphan_dequeue: usize,
    pub corrupt_line: usize,
    pub line_too_long: usize,
    pub torn_tail: usize,
}

/// A pending task as replay keeps it: its id and dedupe key, and the task object as
/// written (parsed into a map only when someone asks for it).
#[derive(Debug, Clone)]
pub struct PendingTask {
    /// Shared with the index of pending ids: one allocation per task.
    pub id: std::sync::Arc<str>,
    pub dedupe_key: Option<Box<str>>,
    raw: Box<RawValue>,
}

impl PendingTask {
    /// The task object.
    pub fn to_map(&self) -> Map<String, Value> {
        serde_json::from_str(self.raw.get()).unwrap_or_default()
    }
}

/// The fields of an event that replay reads; everything else is skipped unparsed.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    v: Option<Cow<'a, str>>,
    #[serde(borrow)]
    op: Option<Cow<'a, str>>,
    #[serde(borrow)]
    task_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    task: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct TaskHead<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    dedupe_key: Option<Cow<'a, str>>,
}

/// The folded state of a queue log.
#[derive(Debug, Clone, Default)]
pub struct Replay {
    slots: Vec<Option<PendingTask>>,
    /// Pending id → slot. foldhash with a per-process random seed: several times
    /// faster than SipHash here, and its seed keeps crafted collisions impractical.
    live: FastMap<std::sync::Arc<str>, usize>,
    pub counters: Counters,
    pub findings: Vec<QueueFinding>,
    /// Every accepted operation, for the receipt cross-check; left empty by
    /// [`Replay::without_ops`] (a replay nobody cross-checks need not hold a record
    /// per event).
    pub ops: Vec<Op>,
    skip_ops: bool,
    /// Lines consumed so far (for continuing a replay).
    pub lines: usize,
}

/// What `replay` reports.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Summary {
    pub log: String,
    pub pending: Vec<Map<String, Value>>,
    /// dedupe_key → the pending task that holds it.
    pub dedupe_index: BTreeMap<String, String>,
    pub counters: Counters,
    pub state_sha256: String,
    pub findings: Vec<QueueFinding>,
}

impl Replay {
    pub fn new() -> Replay {
        Replay::default()
    }

    /// A replay that keeps no [`Op`] record: memory proportional to the pending
    /// tasks and the findings, not to the events.
    pub fn without_ops() -> Replay {
        Replay {
            skip_ops: true,
            ..Replay::default()
        }
    }

    fn op(&mut self, line: usize, op: OpKind, task_id: &str) {
        if !self.skip_ops {
            self.ops.push(Op {
                line,
                op,
                task_id: task_id.to_string(),
            });
        }
    }

    /// Pending tasks in FIFO order.
    pub fn pending(&self) -> impl Iterator<Item = &PendingTask> {
        self.slots.iter().flatten()
    }

    pub fn is_pending(&self, id: &str) -> bool {
        self.live.contains_key(id)
    }

    /// The pending task that holds a dedupe key: the oldest pending task with it.
    ///
    /// The fold keeps no dedupe index (no decision of replay depends on one, and two
    /// hash tables of every pending key cost more than the rest of the fold); a
    /// lookup walks the pending tasks once, as the replay that made them did.
    pub fn pending_by_dedupe(&self, key: &str) -> Option<&PendingTask> {
        self.pending()
            .find(|t| t.dedupe_key.as_deref() == Some(key))
    }

    fn corrupt(&mut self, line: usize, message: String) {
        self.counters.corrupt_line += 1;
        self.findings.push(QueueFinding {
            line,
            kind: FindingKind::CorruptLine,
            message,
        });
    }

    /// Folds one complete line (without its newline).
    pub fn apply_line(&mut self, line: usize, raw: &[u8]) {
        self.fold(line, parse_line(raw));
    }

    /// Folds one parsed line: the state changes, in log order.
    fn fold(&mut self, line: usize, event: Parsed) {
        self.lines = line;
        match event {
            Parsed::Blank => {}
            Parsed::Corrupt(message) => self.corrupt(line, message),
            Parsed::Enqueue {
                id,
                dedupe_key,
                raw,
            } => {
                self.counters.events += 1;
                let slot = self.slots.len();
                let std::collections::hash_map::Entry::Vacant(vacant) = self.live.entry(id.clone())
                else {
                    self.counters.duplicate_enqueue += 1;
                    self.findings.push(QueueFinding {
                        line,
                        kind: FindingKind::DuplicateEnqueue,
                        message: format!("task {id} is already pending; this enqueue is ignored"),
                    });
                    self.op(line, OpKind::Enqueue, &id);
                    return;
                };
                vacant.insert(slot);
                self.op(line, OpKind::Enqueue, &id);
                self.slots.push(Some(PendingTask {
                    id,
                    dedupe_key,
                    raw,
                }));
                self.counters.enqueued += 1;
            }
            Parsed::Dequeue { id } => {
                self.counters.events += 1;
                self.op(line, OpKind::Dequeue, &id);
                let Some(slot) = self.live.remove(&*id) else {
                    self.counters.orphan_dequeue += 1;
                    self.findings.push(QueueFinding {
                        line,
                        kind: FindingKind::OrphanDequeue,
                        message: format!("task {id} is not pending"),
                    });
                    return;
                };
                self.slots[slot] = None;
                self.counters.dequeued += 1;
                self.compact();
            }
        }
    }

    /// Drops dequeued slots once they are most of the vector, keeping FIFO order.
    fn compact(&mut self) {
        if self.slots.len() < 1024 || self.live.len() * 2 > self.slots.len() {
            return;
        }
        self.slots.retain(Option::is_some);
        for (i, t) in self.slots.iter().enumerate() {
            if let Some(t) = t {
                *self.live.get_mut(&t.id).expect("a pending task is live") = i;
            }
        }
    }

    /// A line over the cap of JSON Lines inputs, skipped unread.
    pub fn too_long(&mut self, line: usize, len: u64) {
        self.lines = line;
        self.counters.line_too_long += 1;
        self.findings.push(QueueFinding {
            line,
            kind: FindingKind::LineTooLong,
            message: format!(
                "the line is {len} bytes, over the {} cap of a JSON Lines input; skipped",
                crate::jsonl::cap_text()
            ),
        });
    }

    /// A last line without a newline that does not parse.
    pub fn torn_tail(&mut self, line: usize, len: u64) {
        self.lines = line;
        self.counters.torn_tail += 1;
        self.findings.push(QueueFinding {
            line,
            kind: FindingKind::TornTail,
            message: format!("the last line ({len} bytes, no newline) is cut short: the trace of a crashed writer"),
        });
    }

    /// sha256 of the canonical JSON (sorted keys, no whitespace) of the pending list,
    /// each task without `created_at`.
    pub fn state_sha256(&self) -> String {
        use rayon::prelude::*;
        // Each task's canonical form is independent of the others: they are encoded
        // in parallel, a window at a time (bounded memory), and hashed in order.
        const CHUNK: usize = 2048;
        let canonical = |chunk: &[Option<PendingTask>]| -> Vec<u8> {
            let mut out = Vec::with_capacity(chunk.len() * 96);
            for t in chunk.iter().flatten() {
                let mut t = t.to_map();
                t.remove("created_at");
                // serde_json's Map is a BTreeMap here: keys serialize sorted.
                serde_json::to_writer(&mut out, &Value::Object(t))
                    .expect("a JSON value encodes into memory");
                out.push(b',');
            }
            out
        };
        let mut h = Sha256::new();
        let mut first = true;
        for window in self.slots.chunks(CHUNK * 32) {
            let parts: Vec<Vec<u8>> = window.par_chunks(CHUNK).map(canonical).collect();
            for part in parts {
                // Every task in a part ends with a comma: the last one is dropped,
                // and parts are joined by one.
                if !part.is_empty() {
                    h.update(if first { b"[" } else { b"," });
                    first = false;
                    h.update(&part[..part.len() - 1]);
                }
            }
        }
        if first {
            h.update(b"[");
        }
        h.update(b"]");
        hex(&h.finalize())
    }

    /// dedupe_key → the id of the oldest pending task that holds it.
    pub fn dedupe_index(&self) -> BTreeMap<String, String> {
        let mut index = BTreeMap::new();
        for t in self.pending() {
            if let Some(key) = &t.dedupe_key {
                index
                    .entry(key.to_string())
                    .or_insert_with(|| t.id.to_string());
            }
        }
        index
    }

    pub fn summary(&self, log: &str) -> Summary {
        Summary {
            log: log.to_string(),
            pending: self.pending().map(PendingTask::to_map).collect(),
            dedupe_index: self.dedupe_index(),
            counters: self.counters.clone(),
            state_sha256: self.state_sha256(),
            findings: self.findings.clone(),
        }
    }

    /// The exit code of a lenient replay: 0 when the only finding is a torn tail.
    pub fn exit_code(&self) -> i32 {
        if self
            .findings
            .iter()
            .any(|f| f.kind != FindingKind::TornTail)
        {
            crate::exit::PARTIAL
        } else {
            crate::exit::OK
        }
    }
}

/// One line of the log, parsed and checked on its own: everything the fold needs,
/// owned, so that lines can be parsed on one thread while another folds them.
enum Parsed {
    Blank,
    Corrupt(String),
    Enqueue {
        id: std::sync::Arc<str>,
        /// Trimmed, as the producer keys its index; an empty key holds nothing.
        dedupe_key: Option<Box<str>>,
        raw: Box<RawValue>,
    },
    Dequeue {
        id: Box<str>,
    },
}

fn parse_line(raw: &[u8]) -> Parsed {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Parsed::Blank;
    }
    let ev: Envelope = match serde_json::from_slice(raw) {
        Ok(ev) => ev,
        Err(e) => {
            let what = if serde_json::from_slice::<serde::de::IgnoredAny>(raw).is_ok() {
                "not an event object"
            } else {
                "not JSON"
            };
            return Parsed::Corrupt(format!(
                "{what} ({} at column {})",
                strip_at(&e.to_string()),
                e.column()
            ));
        }
    };
    if let Some(v) = &ev.v
        && v != VERSION
    {
        return Parsed::Corrupt(format!(
            "unsupported event version {:?}; expected {VERSION:?}",
            crate::bundle::index::truncate(v, 40)
        ));
    }
    match ev.op.as_deref() {
        Some("enqueue") => {
            let Some(raw_task) = ev.task else {
                return Parsed::Corrupt("enqueue without a `task` object".into());
            };
            let Ok(head) = serde_json::from_str::<TaskHead>(raw_task.get()) else {
                return Parsed::Corrupt(
                    "enqueue whose `task` is not an object with string fields".into(),
                );
            };
            let Some(id) = head.id else {
                return Parsed::Corrupt("enqueue whose task has no string `id`".into());
            };
            Parsed::Enqueue {
                id: id.as_ref().into(),
                dedupe_key: head
                    .dedupe_key
                    .as_deref()
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(Into::into),
                raw: raw_task.to_owned(),
            }
        }
        Some("dequeue") => match ev.task_id {
            Some(id) => Parsed::Dequeue { id: id.into() },
            None => Parsed::Corrupt("dequeue without a string `task_id`".into()),
        },
        Some(other) => Parsed::Corrupt(format!(
            "unknown op {:?}",
            crate::bundle::index::truncate(other, 40)
        )),
        None => Parsed::Corrupt("no string `op`".into()),
    }
}

fn strip_at(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// What the reading thread hands to the folding one.
enum Item {
    Line(usize, Parsed),
    TooLong(usize, u64),
    Torn(usize, u64),
    /// A whitespace-only last line without its newline: counted, nothing else.
    Skip(usize),
}

/// Lines read, parsed and sent per batch: large enough that the channel costs
/// nothing per line, small enough that the batches in flight stay a few MiB.
const BATCH: usize = 2048;

/// Replays a whole log from a reader. Line numbers continue from `state.lines`.
///
/// Lines are read and parsed on a second thread while this one folds them in log
/// order, so the result is exactly that of [`Replay::apply_line`] on each line.
pub fn replay_reader(r: impl Read + Send, state: &mut Replay) -> std::io::Result<()> {
    let first = state.lines;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Item>>(4);
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || -> std::io::Result<()> {
            let mut lines = crate::jsonl::Lines::new(r, first);
            let mut batch = Vec::with_capacity(BATCH);
            while let Some((line, buf)) = lines.next_line()? {
                let n = line.number;
                batch.push(match line.too_long {
                    // Whatever its length, an unterminated last line is a torn tail.
                    Some(len) if !line.terminated => Item::Torn(n, len),
                    Some(len) => Item::TooLong(n, len),
                    None if line.terminated => Item::Line(n, parse_line(buf)),
                    // A complete event whose newline never made it: accept it.
                    None if serde_json::from_slice::<serde::de::IgnoredAny>(buf).is_ok() => {
                        Item::Line(n, parse_line(buf))
                    }
                    None if buf.iter().all(u8::is_ascii_whitespace) => Item::Skip(n),
                    None => Item::Torn(n, buf.len() as u64),
                });
                if batch.len() == BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    if tx.send(full).is_err() {
                        return Ok(());
                    }
                }
            }
            if !batch.is_empty() {
                let _ = tx.send(batch);
            }
            Ok(())
        });
        for batch in rx {
            for item in batch {
                match item {
                    Item::Line(n, p) => state.fold(n, p),
                    Item::TooLong(n, len) => state.too_long(n, len),
                    Item::Torn(n, len) => state.torn_tail(n, len),
                    Item::Skip(n) => state.lines = n,
                }
            }
        }
        reader
            .join()
            .expect("the queue reader thread does not panic")
    })
}

/// Replays the log at `path` into `state` (a [`Replay::new`] or
/// [`Replay::without_ops`]). A missing log is an empty queue.
pub fn replay_file(path: &Path, mut state: Replay) -> std::io::Result<Replay> {
    match crate::fsutil::open_nofollow(path) {
        Ok(f) => {
            if !f.metadata()?.is_file() {
                return Err(std::io::Error::other("the queue log is not a regular file"));
            }
            replay_reader(f, &mut state)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enq(id: &str, key: &str) -> String {
        format!(
            "{{\"v\":\"{VERSION}\",\"ts\":\"t\",\"op\":\"enqueue\",\"task\":{{\"id\":\"{id}\",\"kind\":\"k\",\"payload\":{{}},\"dedupe_key\":\"{key}\",\"owner\":\"o\",\"status\":\"pending\",\"created_at\":\"{id}-time\"}}}}\n"
        )
    }
    fn deq(id: &str) -> String {
        format!("{{\"v\":\"{VERSION}\",\"ts\":\"t\",\"op\":\"dequeue\",\"task_id\":\"{id}\"}}\n")
    }
    fn run(log: &str) -> Replay {
        let mut r = Replay::new();
        replay_reader(log.as_bytes(), &mut r).unwrap();
        r
    }
    fn ids(r: &Replay) -> Vec<String> {
        r.pending().map(|t| t.id.to_string()).collect()
    }

    #[test]
    fn a_replay_without_ops_folds_to_the_same_state_and_keeps_no_op() {
        let log = [
            enq("a", "ka"),
            enq("a", "ka"),
            deq("zz"),
            enq("b", "kb"),
            deq("a"),
        ]
        .concat();
        let with = run(&log);
        let mut without = Replay::without_ops();
        replay_reader(log.as_bytes(), &mut without).unwrap();
        assert_eq!(with.ops.len(), 5);
        assert!(without.ops.is_empty());
        assert_eq!(ids(&without), ["b"]);
        assert_eq!(without.counters, with.counters);
        assert_eq!(without.findings, with.findings);
        assert_eq!(without.state_sha256(), with.state_sha256());
        assert_eq!(
            without.summary("q").dedupe_index,
            with.summary("q").dedupe_index
        );
    }

    #[test]
    fn fifo_dedupe_and_counters() {
        let log = [
            enq("a", "ka"),
            enq("b", "kb"),
            enq("a", "ka"),
            deq("a"),
            deq("zz"),
            enq("c", "kb"),
            deq("b"),
        ]
        .concat();
        let r = run(&log);
        assert_eq!(ids(&r), ["c"]);
        assert_eq!(r.counters.duplicate_enqueue, 1);
        assert_eq!(r.counters.orphan_dequeue, 1);
        assert_eq!(r.counters.events, 7);
        assert_eq!(
            r.summary("q").dedupe_index,
            BTreeMap::from([("kb".to_string(), "c".to_string())])
        );
        assert_eq!(r.exit_code(), 2);
    }

    #[test]
    fn corrupt_lines_and_torn_tails_are_told_apart() {
        let log = format!(
            "{}not json\n[1]\n{{\"op\":\"explode\"}}\n{{\"v\":\"other/v9\",\"op\":\"dequeue\",\"task_id\":\"a\"}}\n{}{{\"v\":\"eta",
            enq("a", "k"),
            enq("b", "k2")
        );
        let r = run(&log);
        let kinds: Vec<(usize, FindingKind)> =
            r.findings.iter().map(|f| (f.line, f.kind)).collect();
        assert_eq!(
            kinds,
            [
                (2, FindingKind::CorruptLine),
                (3, FindingKind::CorruptLine),
                (4, FindingKind::CorruptLine),
                (5, FindingKind::CorruptLine),
                (7, FindingKind::TornTail)
            ]
        );
        assert_eq!(ids(&r), ["a", "b"]);
        let only_torn = run(&format!("{}{{\"v\":", enq("a", "k")));
        assert_eq!(
            only_torn.exit_code(),
            0,
            "a torn tail alone is the normal trace of a crash"
        );
        let complete_no_newline = run(enq("a", "k").trim_end());
        assert_eq!(ids(&complete_no_newline), ["a"]);
        assert!(complete_no_newline.findings.is_empty());
    }

    #[test]
    fn state_digest_ignores_created_at_and_follows_content() {
        let a = run(&enq("a", "k"));
        let b = run(&enq("a", "k").replace("a-time", "another time"));
        assert_eq!(a.state_sha256(), b.state_sha256());
        assert_ne!(a.state_sha256(), run(&enq("b", "k")).state_sha256());
        assert_eq!(run("").state_sha256(), hex(&Sha256::digest(b"[]")));
    }

    #[test]
    fn the_state_digest_is_the_digest_of_the_whole_list_across_parallel_parts() {
        // More pending tasks than one encoded part, with dequeued holes in the slots:
        // the digest is of `[t1,t2,…]` written in one piece.
        let mut log = String::new();
        for i in 0..9000 {
            log.push_str(&enq(&format!("t{i}"), &format!("k{}", i % 7)));
            if i % 3 == 0 {
                log.push_str(&deq(&format!("t{}", i / 2)));
            }
        }
        let r = run(&log);
        let tasks: Vec<Value> = r
            .pending()
            .map(|t| {
                let mut m = t.to_map();
                m.remove("created_at");
                Value::Object(m)
            })
            .collect();
        assert!(tasks.len() > 2 * 2048, "{}", tasks.len());
        let whole = serde_json::to_string(&Value::Array(tasks)).unwrap();
        assert_eq!(r.state_sha256(), hex(&Sha256::digest(whole.as_bytes())));
    }

    #[test]
    fn overlong_lines_are_too_long_and_an_overlong_tail_is_torn() {
        let mut log = vec![b'x'; crate::jsonl::MAX_LINE_BYTES + 10];
        log.push(b'\n');
        log.extend_from_slice(enq("a", "k").as_bytes());
        let mut r = Replay::new();
        replay_reader(&log[..], &mut r).unwrap();
        assert_eq!(r.findings[0].kind, FindingKind::LineTooLong);
        assert_eq!(r.findings[0].line, 1);
        assert_eq!(r.counters.line_too_long, 1);
        assert_eq!(ids(&r), ["a"]);
        assert_eq!(r.exit_code(), crate::exit::PARTIAL);
        // The same bytes without their newline, last: a torn tail, whatever its size.
        let mut log = enq("a", "k").into_bytes();
        log.extend(std::iter::repeat_n(b'{', crate::jsonl::MAX_LINE_BYTES + 10));
        let mut r = Replay::new();
        replay_reader(&log[..], &mut r).unwrap();
        assert_eq!(r.findings.len(), 1);
        assert_eq!(r.findings[0].kind, FindingKind::TornTail);
        assert_eq!(r.exit_code(), crate::exit::OK);
    }

    #[test]
    fn many_dequeues_keep_fifo_order_through_compaction() {
        let mut log = String::new();
        for i in 0..3000 {
            log.push_str(&enq(&format!("t{i}"), &format!("k{i}")));
        }
        for i in (0..3000).filter(|i| i % 3 != 0) {
            log.push_str(&deq(&format!("t{i}")));
        }
        let r = run(&log);
        let want: Vec<String> = (0..3000)
            .filter(|i| i % 3 == 0)
            .map(|i| format!("t{i}"))
            .collect();
        assert_eq!(ids(&r), want);
        assert!(r.is_pending("t0") && !r.is_pending("t1"));
    }

    #[test]
    fn matches_a_naive_model_through_compactions() {
        // The model: a Vec in FIFO order; the dedupe holder is the oldest pending
        // task with the key.
        let mut state = 0x2545f4914f6cdd1du64;
        let mut rnd = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let mut log = String::new();
        let mut model: Vec<(String, String)> = Vec::new();
        for _ in 0..20_000 {
            if rnd(3) < 2 {
                let id = format!("t{}", rnd(3000));
                let key = format!("k{}", rnd(40));
                log.push_str(&enq(&id, &key));
                if !model.iter().any(|(i, _)| *i == id) {
                    model.push((id, key));
                }
            } else if !model.is_empty() && rnd(5) > 0 {
                let (id, _) = model.remove(rnd(model.len() as u64) as usize);
                log.push_str(&deq(&id));
            } else {
                log.push_str(&deq("t-none"));
            }
        }
        let r = run(&log);
        assert_eq!(
            ids(&r),
            model.iter().map(|(i, _)| i.clone()).collect::<Vec<_>>()
        );
        let mut want: BTreeMap<String, String> = BTreeMap::new();
        for (id, key) in &model {
            want.entry(key.clone()).or_insert_with(|| id.clone());
        }
        assert_eq!(r.summary("q").dedupe_index, want);
        for (key, id) in &want {
            assert_eq!(&*r.pending_by_dedupe(key).unwrap().id, id.as_str());
        }
    }

    fn event_strategy() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            (0u8..6, 0u8..4).prop_map(|(i, k)| enq(&format!("t{i}"), &format!("k{k}"))),
            (0u8..6).prop_map(|i| deq(&format!("t{i}"))),
            Just("garbage\n".to_string()),
        ]
    }

    proptest::proptest! {
        #[test]
        fn replay_is_deterministic_and_prefix_then_rest_equals_whole(
            events in proptest::collection::vec(event_strategy(), 0..60),
            cut in 0usize..60,
        ) {
            let whole = events.concat();
            let a = run(&whole);
            let b = run(&whole);
            proptest::prop_assert_eq!(a.state_sha256(), b.state_sha256());
            let cut = cut.min(events.len());
            let mut split = Replay::new();
            replay_reader(events[..cut].concat().as_bytes(), &mut split).unwrap();
            replay_reader(events[cut..].concat().as_bytes(), &mut split).unwrap();
            proptest::prop_assert_eq!(split.state_sha256(), a.state_sha256());
            proptest::prop_assert_eq!(&split.counters, &a.counters);
            proptest::prop_assert_eq!(split.findings.iter().map(|f| f.line).collect::<Vec<_>>(), a.findings.iter().map(|f| f.line).collect::<Vec<_>>());
        }

        #[test]
        fn never_panics_on_garbage(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..500)) {
            let mut r = Replay::new();
            replay_reader(&bytes[..], &mut r).unwrap();
        }
    }
}
