//! The file-backed task queue (SPEC §4.1): an append-only JSON Lines event log
//! (`eta-mu.task-queue/v1`) folded by [`replay`] into the FIFO list of pending tasks,
//! the dedupe index, counters and a `state_sha256` that depends on what is queued,
//! not on when. [`writer`] appends under a lock; [`crosscheck`] pairs operations with
//! their receipts.
//!
//! Replay is lenient by default: a bad line is skipped and counted with its line
//! number; a last line cut short by a crashed writer is a `torn_tail`, reported apart
//! from mid-file corruption. The strict mode stops at the first one.

pub mod canon;
pub mod crosscheck;
mod scan;
pub mod writer;

use std::collections::BTreeMap;

use std::fs::File;
use std::hash::BuildHasher;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::bundle::verify::hex;
use crosscheck::{Checker, CrossCheck, QueueReceipts};

pub const VERSION: &str = "eta-mu.task-queue/v1";

/// A task of at most this many bytes of JSON is held in memory while the held
/// tasks add up to at most [`HELD_TASKS_BYTES`]; any other task of a log file is held
/// as its place in the log and read back, one at a time, when it is written out.
pub const HELD_TASK_BYTES: usize = 16 * 1024;

/// The most bytes of task JSON held in memory (and written in full into a report).
pub const HELD_TASKS_BYTES: usize = 16 << 20;

/// The longest task id or dedupe key held as written. A longer one is held as
/// `sha256:` and the hex digest of its bytes, which is also how reports name it.
pub const HELD_TEXT_BYTES: usize = 1024;

/// Findings a replay lists (the earliest, and the first of each kind after them);
/// its counters count every one.
pub const MAX_FINDINGS: usize = 10_000;

/// An id or dedupe key as replay holds it: itself when it is at most
/// [`HELD_TEXT_BYTES`] long, else `sha256:<hex>` of its bytes.
pub fn held(text: &str) -> Cow<'_, str> {
    if text.len() <= HELD_TEXT_BYTES {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(format!("sha256:{}", hex(&Sha256::digest(text.as_bytes()))))
    }
}

/// A task id or kind as a receipt names it (in its `refs` and `dod`): as held, when
/// that cannot change how the receipt parses; else `sha256:<hex>` of its bytes. A
/// `,` would split the ref, `|` or a line break the receipt, and readers trim
/// surrounding whitespace. `receipt_ref(held(x)) == receipt_ref(x)`.
pub fn receipt_ref(text: &str) -> Cow<'_, str> {
    let plain = text.len() <= HELD_TEXT_BYTES
        && !text.contains([',', '|'])
        && !text.chars().any(char::is_control)
        && text.trim() == text;
    if plain {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(format!("sha256:{}", hex(&Sha256::digest(text.as_bytes()))))
    }
}

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

/// The most tasks pending at once that replay holds: a log with more is refused at
/// the line that would pend one more (each costs about 80 bytes of memory,
/// whatever its size).
pub const MAX_PENDING: usize = 1 << 20;

/// 128 bits that stand for a text: how replay tells ids, dedupe keys and task texts
/// apart without holding them.
type Digest16 = [u8; 16];

/// SipHash-2-4 with 128 bits of output, under a key drawn at random for each
/// process: a pseudorandom function whose outputs nobody outside the process sees,
/// so no log can be written to make two texts meet (by chance, among a million
/// pending tasks, about once in 2^88 replays). It is a third of the cost of SHA-256
/// on a short id, and replay takes three or four an event. Nothing it gives leaves
/// the process (the receipt cross-check's spilled parts are unnamed temporary files
/// it reads back itself): the state digest and every name in a report are SHA-256.
fn digest16(text: &[u8]) -> Digest16 {
    digest16_of(&[text])
}

/// [`digest16`] of texts one after another.
fn digest16_of(texts: &[&[u8]]) -> Digest16 {
    use siphasher::sip128::Hasher128;
    use std::hash::Hasher;
    static KEY: std::sync::LazyLock<(u64, u64)> = std::sync::LazyLock::new(|| {
        // The standard library seeds each RandomState from the operating system's
        // randomness; two of its outputs are the key.
        let seed = std::collections::hash_map::RandomState::new();
        (seed.hash_one(0u8), seed.hash_one(1u8))
    });
    let mut h = siphasher::sip128::SipHasher24::new_with_keys(KEY.0, KEY.1);
    for text in texts {
        h.write(text);
    }
    h.finish128().as_bytes()
}

/// A pending task as replay keeps it: the digests of its id and dedupe key (as
/// [`held`]), and where its JSON text is: in memory, or in the log with the digest
/// it had when replay read it. The same few bytes whatever the task.
#[derive(Debug, Clone)]
pub struct PendingTask {
    id: Digest16,
    key: Option<Digest16>,
    /// Of the text in the log (not of a text held in memory).
    sha: Digest16,
    /// The text's offset in the log, or in [`Replay`]'s held texts when `in_memory`.
    at: u64,
    /// The line of its enqueue.
    line: u64,
    len: u32,
    in_memory: bool,
}

impl PendingTask {
    /// The length of its JSON text.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether its JSON is empty (never: a task is an object).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A JSON string of a line, borrowed from it when it holds no escape. serde's own
/// `Option<Cow<str>>` always copies the string (a field's `borrow` reaches a `Cow`
/// only when it is the field's own type): through this newtype it does not, which
/// spares replay five allocations an event.
#[derive(Deserialize)]
#[serde(transparent)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// The fields of an event that replay reads; everything else is skipped unparsed.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    v: Option<Text<'a>>,
    #[serde(borrow)]
    op: Option<Text<'a>>,
    #[serde(borrow)]
    task_id: Option<Text<'a>>,
    #[serde(borrow)]
    task: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct TaskHead<'a> {
    #[serde(borrow)]
    id: Option<Text<'a>>,
    #[serde(borrow)]
    dedupe_key: Option<Text<'a>>,
}

const NO_ID: &str = "enqueue whose task has no string `id`";

/// The head of a task's text, which has an id; or why the enqueue is refused.
fn task_head(text: &str) -> Result<TaskHead<'_>, &'static str> {
    let head: TaskHead = serde_json::from_str(text)
        .map_err(|_| "enqueue whose `task` is not an object with string fields")?;
    if head.id.is_none() {
        return Err(NO_ID);
    }
    Ok(head)
}

/// A task's id and dedupe key as replay holds them ([`held`]): the key trimmed, as
/// the producer keys its index, and none when empty.
fn names<'a>(
    id: Option<&'a str>,
    key: Option<&'a str>,
) -> (Option<Cow<'a, str>>, Option<Cow<'a, str>>) {
    (
        id.map(held),
        key.map(str::trim).filter(|k| !k.is_empty()).map(held),
    )
}

/// The folded state of a queue log.
#[derive(Debug, Default)]
pub struct Replay {
    slots: Vec<Option<PendingTask>>,
    /// The slots of the pending tasks, found by the digest of their id. foldhash
    /// with a per-process random seed over the digest: crafted ids cannot pile up
    /// in one bucket.
    live: hashbrown::HashTable<u32>,
    seed: foldhash::fast::RandomState,
    /// The log file being replayed, for reading back the tasks not held.
    source: Option<Arc<File>>,
    /// The texts of the tasks held in memory, one after another (with those of
    /// dequeued tasks until the next compaction).
    held: String,
    /// Bytes of `held` that pending tasks use.
    held_bytes: usize,
    /// Why replay stopped before the end of the log, when it did.
    pub stopped: Option<String>,
    pub counters: Counters,
    /// The first [`MAX_FINDINGS`] findings, and the first of each kind after them.
    pub findings: Vec<QueueFinding>,
    /// Findings that `findings` leaves out; `counters` counts every one.
    pub findings_omitted: usize,
    /// The finding kinds listed, one bit each.
    kinds_listed: u8,
    /// The receipt cross-check, run on each operation as the fold accepts it (a
    /// replay keeps no record per event).
    check: Option<Box<Checker>>,
    /// Lines consumed so far (for continuing a replay).
    pub lines: usize,
}

/// What `replay` reports.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Summary {
    pub log: String,
    /// The pending tasks in FIFO order, each its canonical JSON. A task over
    /// [`HELD_TASK_BYTES`], or once [`HELD_TASKS_BYTES`] of them are written, is a
    /// stand-in: its id, its short fields and `omitted` (its size, digest, line).
    pub pending: Vec<Box<RawValue>>,
    /// Pending tasks past the first [`LISTED_TASKS`] that `pending` leaves out.
    #[serde(default, skip_serializing_if = "crate::wire::zero")]
    pub pending_omitted: usize,
    /// dedupe_key → the pending task that holds it, of the tasks listed.
    pub dedupe_index: BTreeMap<String, String>,
    pub counters: Counters,
    pub state_sha256: String,
    /// The first [`MAX_FINDINGS`] findings, and the first of each kind after them.
    pub findings: Vec<QueueFinding>,
    /// Findings that `findings` leaves out; `counters` counts every one.
    #[serde(default, skip_serializing_if = "crate::wire::zero")]
    pub findings_omitted: usize,
}

/// The most pending tasks a report lists (the oldest first).
pub const LISTED_TASKS: usize = 10_000;

impl Summary {
    /// How many tasks are pending, listed or not.
    pub fn pending_count(&self) -> usize {
        self.pending.len() + self.pending_omitted
    }
}

impl Replay {
    pub fn new() -> Replay {
        Replay::default()
    }

    /// A replay that cross-checks each operation it accepts against these
    /// task-queue receipts; [`Replay::cross_check`] tells the result.
    pub fn checked(receipts: QueueReceipts) -> Replay {
        Replay {
            check: Some(Box::new(Checker::new(receipts))),
            ..Replay::default()
        }
    }

    /// The cross-check of a [`Replay::checked`] replay, once: the operations of the
    /// lines folded so far against the receipts. An error when a check spilled to
    /// temporary files cannot read them back, or counts too many receipts.
    pub fn cross_check(&mut self) -> Option<io::Result<CrossCheck>> {
        self.check.take().map(|c| c.finish())
    }

    fn op(&mut self, line: usize, op: OpKind, task_id: &str) {
        if let Some(c) = &mut self.check {
            c.op(line, op, task_id);
        }
    }

    /// Lists a finding while fewer than [`MAX_FINDINGS`] are, or it is the first of
    /// its kind; counts it otherwise.
    fn finding(&mut self, line: usize, kind: FindingKind, message: impl FnOnce() -> String) {
        let bit = 1u8 << kind as u8;
        if self.findings.len() < MAX_FINDINGS || self.kinds_listed & bit == 0 {
            self.kinds_listed |= bit;
            self.findings.push(QueueFinding {
                line,
                kind,
                message: message(),
            });
        } else {
            self.findings_omitted += 1;
        }
    }

    /// Pending tasks in FIFO order.
    pub fn pending(&self) -> impl Iterator<Item = &PendingTask> {
        self.slots.iter().flatten()
    }

    pub fn is_pending(&self, id: &str) -> bool {
        self.slot_of(&digest16(held(id).as_bytes())).is_some()
    }

    /// The slot of the pending task with this id digest.
    fn slot_of(&self, id: &Digest16) -> Option<usize> {
        let slots = &self.slots;
        self.live
            .find(self.seed.hash_one(id), |&s| is_task(slots, s, id))
            .map(|&s| s as usize)
    }

    /// The pending task that holds a dedupe key: the oldest pending task with it.
    ///
    /// The fold keeps no dedupe index (no decision of replay depends on one, and two
    /// hash tables of every pending key cost more than the rest of the fold); a
    /// lookup walks the pending tasks once, as the replay that made them did.
    pub fn pending_by_dedupe(&self, key: &str) -> Option<&PendingTask> {
        let key = Some(digest16(held(key).as_bytes()));
        self.pending().find(|t| t.key == key)
    }

    /// A pending task's JSON text as written, read back from the log when it is not
    /// held. A task whose bytes changed since replay read them is an error: the log
    /// was rewritten under lith, and what it reported no longer holds.
    pub fn text<'t>(&'t self, t: &PendingTask) -> std::io::Result<Cow<'t, str>> {
        if t.in_memory {
            return Ok(Cow::Borrowed(&self.held[t.at as usize..][..t.len()]));
        }
        let Some(file) = &self.source else {
            return Err(std::io::Error::other("no log to read a task back from"));
        };
        let mut buf = vec![0u8; t.len()];
        std::os::unix::fs::FileExt::read_exact_at(&**file, &mut buf, t.at)?;
        checked(t, &buf)?;
        Ok(Cow::Owned(
            String::from_utf8(buf).expect("checked bytes are the UTF-8 replay read"),
        ))
    }

    /// A pending task's id and dedupe key, as [`held`], from its text.
    pub fn names(&self, t: &PendingTask) -> std::io::Result<(String, Option<String>)> {
        let text = self.text(t)?;
        let head = task_head(&text).map_err(std::io::Error::other)?;
        let (id, key) = names(head.id.as_deref(), head.dedupe_key.as_deref());
        Ok((
            id.unwrap_or_default().into_owned(),
            key.map(Cow::into_owned),
        ))
    }

    /// The pending list, written task by task as canonical JSON (each read back in
    /// turn, so a list larger than memory streams through).
    pub fn pending_json(&self) -> PendingJson<'_> {
        PendingJson(self)
    }

    fn corrupt(&mut self, line: usize, message: String) {
        self.counters.corrupt_line += 1;
        self.finding(line, FindingKind::CorruptLine, || message);
    }

    /// Folds one complete line (without its newline).
    pub fn apply_line(&mut self, line: usize, raw: &[u8]) {
        let mut text = String::new();
        let event = parse_line(raw, None, &mut text);
        self.fold(line, event, &text);
    }

    /// Folds one parsed line, whose texts are in `text`: the state changes, in log
    /// order. Nothing once replay has stopped.
    fn fold(&mut self, line: usize, event: Parsed, text: &str) {
        if self.stopped.is_some() {
            return;
        }
        self.lines = line;
        match event {
            Parsed::Blank => {}
            Parsed::Corrupt(message) => self.corrupt(line, message),
            Parsed::Enqueue { id, key, body } => {
                self.enqueue(line, id.of(text), key.map(|k| k.of(text)), body, text);
            }
            Parsed::EnqueueText { raw, at } => match task_head(raw.of(text)) {
                Ok(head) => {
                    let (id, key) = names(head.id.as_deref(), head.dedupe_key.as_deref());
                    let id = id.expect("an id");
                    let body = ParsedBody::Held { raw, at };
                    self.enqueue(line, &id, key.as_deref(), body, text);
                }
                Err(why) => self.corrupt(line, why.to_string()),
            },
            Parsed::Dequeue { id } => {
                let id = id.of(text);
                let id16 = digest16(id.as_bytes());
                self.counters.events += 1;
                self.op(line, OpKind::Dequeue, id);
                let slots = &self.slots;
                let Ok(entry) = self
                    .live
                    .find_entry(self.seed.hash_one(id16), |&s| is_task(slots, s, &id16))
                else {
                    self.counters.orphan_dequeue += 1;
                    self.finding(line, FindingKind::OrphanDequeue, || {
                        format!("task {id} is not pending")
                    });
                    return;
                };
                let (slot, _) = entry.remove();
                if let Some(t) = self.slots[slot as usize].take()
                    && t.in_memory
                {
                    self.held_bytes -= t.len();
                }
                self.counters.dequeued += 1;
                self.compact();
            }
        }
    }

    /// Folds an enqueue of the task `id` (as [`held`]) with the dedupe key `key`
    /// (as [`names`] holds it), whose text is `body` (a held one in `text`).
    fn enqueue(&mut self, line: usize, id: &str, key: Option<&str>, body: ParsedBody, text: &str) {
        let id16 = digest16(id.as_bytes());
        let key16 = key.map(|k| digest16(k.as_bytes()));
        self.counters.events += 1;
        if self.slot_of(&id16).is_some() {
            self.counters.duplicate_enqueue += 1;
            self.finding(line, FindingKind::DuplicateEnqueue, || {
                format!("task {id} is already pending; this enqueue is ignored")
            });
            self.op(line, OpKind::Enqueue, id);
            return;
        }
        if self.live.len() >= MAX_PENDING {
            self.counters.events -= 1;
            self.stopped = Some(format!(
                "line {line}: more than {MAX_PENDING} tasks would be pending at once; lith holds at most that many: dequeue tasks, or start a new log"
            ));
            return;
        }
        self.op(line, OpKind::Enqueue, id);
        let mut task = PendingTask {
            id: id16,
            key: key16,
            sha: [0; 16],
            at: 0,
            line: line as u64,
            len: 0,
            in_memory: false,
        };
        match body {
            ParsedBody::InLog { at, len, sha } => {
                (task.at, task.len, task.sha) = (at, len, sha);
            }
            ParsedBody::Held { raw, at } => {
                let body = raw.of(text);
                task.len = body.len() as u32;
                match at {
                    Some(at) if self.held_bytes + body.len() > HELD_TASKS_BYTES => {
                        (task.at, task.sha) = (at, digest16(body.as_bytes()));
                    }
                    _ => {
                        task.at = self.held.len() as u64;
                        task.in_memory = true;
                        self.held.push_str(body);
                        self.held_bytes += body.len();
                    }
                }
            }
        }
        self.slots.push(Some(task));
        self.index(self.slots.len() - 1);
        self.counters.enqueued += 1;
    }

    /// Drops dequeued slots once they are most of the vector, and the texts of
    /// dequeued tasks once they are most of the held texts, keeping FIFO order.
    fn compact(&mut self) {
        let slots_spare = self.slots.len() >= 1024 && self.live.len() * 2 <= self.slots.len();
        let held_spare = self.held.len() >= 1 << 20 && self.held_bytes * 2 <= self.held.len();
        if !slots_spare && !held_spare {
            return;
        }
        self.slots.retain(Option::is_some);
        if held_spare {
            let mut held = String::with_capacity(self.held_bytes);
            for t in self.slots.iter_mut().flatten().filter(|t| t.in_memory) {
                let at = held.len() as u64;
                held.push_str(&self.held[t.at as usize..][..t.len()]);
                t.at = at;
            }
            self.held = held;
        }
        self.live.clear();
        for i in 0..self.slots.len() {
            self.index(i);
        }
    }

    /// Makes the pending task in `slot` findable by its id.
    fn index(&mut self, slot: usize) {
        let (slots, seed) = (&self.slots, &self.seed);
        let hash = |s: usize| seed.hash_one(slots[s].as_ref().expect("a live slot").id);
        self.live
            .insert_unique(hash(slot), slot as u32, |&s| hash(s as usize));
    }

    /// A line over the cap of JSON Lines inputs, skipped unread.
    pub fn too_long(&mut self, line: usize, len: u64) {
        self.lines = line;
        self.counters.line_too_long += 1;
        self.finding(line, FindingKind::LineTooLong, || {
            format!(
                "the line is {len} bytes, over the {} cap of a JSON Lines input; skipped",
                crate::jsonl::cap_text()
            )
        });
    }

    /// A last line without a newline that does not parse.
    pub fn torn_tail(&mut self, line: usize, len: u64) {
        self.lines = line;
        self.counters.torn_tail += 1;
        self.finding(line, FindingKind::TornTail, || {
            format!("the last line ({len} bytes, no newline) is cut short: the trace of a crashed writer")
        });
    }

    /// sha256 of the canonical JSON (sorted keys, no whitespace) of the pending list,
    /// each task without `created_at`.
    pub fn state_sha256(&self) -> std::io::Result<String> {
        use rayon::prelude::*;
        // Each task's canonical form is independent of the others: held tasks and
        // small ones read back from the log are encoded in parallel, a window at a
        // time (bounded in tasks and bytes), and hashed in order. A large task is
        // read back and hashed as it is encoded, one at a time.
        const CHUNK: usize = 2048;
        const WINDOW_BYTES: usize = 32 << 20;
        let mut h = HashWriter(Sha256::new());
        let mut first = true;
        let mut start = 0;
        while start < self.slots.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < self.slots.len() && end - start < CHUNK * 32 && bytes < WINDOW_BYTES {
                bytes += self.slots[end]
                    .as_ref()
                    .map_or(0, |t| t.len().min(HELD_TASK_BYTES));
                end += 1;
            }
            let parts = self.slots[start..end]
                .par_chunks(CHUNK)
                .map(|chunk| self.encode(chunk))
                .collect::<std::io::Result<Vec<Vec<Piece>>>>()?;
            for piece in parts.into_iter().flatten() {
                match piece {
                    Piece::Encoded(bytes) if bytes.is_empty() => {}
                    Piece::Encoded(bytes) => {
                        h.0.update(if first { b"[" } else { b"," });
                        h.0.update(&bytes[1..]);
                        first = false;
                    }
                    Piece::Large(t) => {
                        h.0.update(if first { b"[" } else { b"," });
                        first = false;
                        canon::write(&self.text(t)?, STATE_SKIP, &mut h)
                            .map_err(std::io::Error::other)?;
                    }
                }
            }
            start = end;
        }
        if first {
            h.0.update(b"[");
        }
        h.0.update(b"]");
        Ok(hex(&h.0.finalize()))
    }

    /// The canonical forms (without `created_at`) of a run of slots: held tasks and
    /// small tasks of the log encoded, each after a comma; large tasks left to the
    /// caller. The small tasks of the log are read in one piece when they lie close
    /// together, as pending tasks of a busy log do.
    fn encode<'s>(&self, chunk: &'s [Option<PendingTask>]) -> std::io::Result<Vec<Piece<'s>>> {
        let small = |t: &'s PendingTask| (!t.in_memory && t.len() <= HELD_TASK_BYTES).then_some(t);
        let places: Vec<&PendingTask> = chunk.iter().flatten().filter_map(small).collect();
        let span = match (places.first(), places.last()) {
            (Some(a), Some(b)) => Some((a.at, b.at + b.len as u64 - a.at)),
            _ => None,
        };
        let total: usize = places.iter().map(|p| p.len()).sum();
        // One read when the span is mostly these tasks, not what lies between them.
        // At most 8 MiB read at once; tasks beyond are read one at a time.
        let block = match (span, &self.source) {
            (Some((from, len)), Some(file))
                if len <= (4 * total as u64).clamp(1 << 20, BLOCK_BYTES) =>
            {
                let mut buf = vec![0u8; len as usize];
                std::os::unix::fs::FileExt::read_exact_at(&**file, &mut buf, from)?;
                Some((from, buf))
            }
            _ => None,
        };
        let mut pieces = Vec::new();
        let mut out = Vec::with_capacity(chunk.len() * 96);
        for t in chunk.iter().flatten() {
            let text = match (small(t), &block) {
                _ if t.in_memory => self.text(t)?,
                (Some(p), Some((from, buf))) => {
                    let at = (p.at - from) as usize;
                    Cow::Borrowed(checked(p, &buf[at..at + p.len()])?)
                }
                (Some(_), None) => self.text(t)?,
                _ => {
                    pieces.push(Piece::Encoded(std::mem::take(&mut out)));
                    pieces.push(Piece::Large(t));
                    continue;
                }
            };
            out.push(b',');
            canon::write_to(&text, STATE_SKIP, &mut out).map_err(std::io::Error::other)?;
        }
        pieces.push(Piece::Encoded(out));
        Ok(pieces)
    }

    /// dedupe_key → the id of the oldest pending task that holds it (both as
    /// [`held`]).
    pub fn dedupe_index(&self) -> std::io::Result<BTreeMap<String, String>> {
        self.dedupe_index_of(self.pending(), usize::MAX)
            .map(|index| index.expect("no budget"))
    }

    /// dedupe_key → the id of the oldest of `tasks` that holds it; `None` once the
    /// index would take more than `budget` bytes of memory (its keys and ids, and
    /// [`ENTRY_BYTES`] each).
    fn dedupe_index_of<'t>(
        &self,
        tasks: impl Iterator<Item = &'t PendingTask>,
        budget: usize,
    ) -> std::io::Result<Option<BTreeMap<String, String>>> {
        let mut index = BTreeMap::new();
        let mut bytes = 0usize;
        for t in tasks.filter(|t| t.key.is_some()) {
            if let (id, Some(key)) = self.names(t)? {
                bytes = bytes.saturating_add(id.len() + key.len() + ENTRY_BYTES);
                if bytes > budget {
                    return Ok(None);
                }
                index.entry(key).or_insert(id);
            }
        }
        Ok(Some(index))
    }

    /// The dedupe index of every pending task, written as [`DedupeJson`] says (each
    /// task read back in turn).
    pub fn dedupe_json(&self) -> DedupeJson<'_> {
        DedupeJson {
            replay: self,
            budget: SORTED_INDEX_BYTES,
        }
    }

    /// The report's view of the replay: every pending task, in full while it is
    /// small and the tasks written so far stay under [`HELD_TASKS_BYTES`], else as a
    /// stand-in; a task is read back from the log one at a time.
    pub fn summary(&self, log: &str) -> std::io::Result<Summary> {
        let mut written = 0usize;
        let mut pending = Vec::new();
        for t in self.pending().take(LISTED_TASKS) {
            let len = t.len();
            let in_full = len <= HELD_TASK_BYTES && written + len <= HELD_TASKS_BYTES;
            let text = self.text(t)?;
            pending.push(if in_full {
                written += len;
                canon::to_raw(&text).map_err(std::io::Error::other)?
            } else {
                stand_in(t, &text)?
            });
        }
        Ok(Summary {
            log: log.to_string(),
            pending_omitted: self.live.len().saturating_sub(pending.len()),
            pending,
            dedupe_index: self
                .dedupe_index_of(self.pending().take(LISTED_TASKS), usize::MAX)?
                .expect("no budget"),
            counters: self.counters.clone(),
            state_sha256: self.state_sha256()?,
            findings: self.findings.clone(),
            findings_omitted: self.findings_omitted,
        })
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

/// The most bytes of the log read back in one piece for the state digest.
const BLOCK_BYTES: u64 = 8 << 20;

/// The top-level task keys the state digest leaves out.
const STATE_SKIP: &[&str] = &["created_at"];

/// What [`Replay::encode`] hands back for a run of slots.
enum Piece<'a> {
    /// Encoded tasks, each after a comma.
    Encoded(Vec<u8>),
    /// A large task, to read back and encode alone.
    Large(&'a PendingTask),
}

/// Whether slot `s` holds the pending task with this id digest.
fn is_task(slots: &[Option<PendingTask>], s: u32, id: &Digest16) -> bool {
    slots[s as usize].as_ref().is_some_and(|t| t.id == *id)
}

/// The bytes read back for a task, as text, when they are still those replay read.
fn checked<'b>(place: &PendingTask, bytes: &'b [u8]) -> std::io::Result<&'b str> {
    if digest16(bytes) != place.sha {
        return Err(std::io::Error::other(format!(
            "the task at line {} changed after replay read it; the log was rewritten while lith read it: replay again",
            place.line
        )));
    }
    Ok(std::str::from_utf8(bytes).expect("the digest is of the UTF-8 replay read"))
}

/// Feeds a digest through `io::Write` (the canonical form is written into it).
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The fields a stand-in keeps of a task too large to write in full.
#[derive(Deserialize)]
struct StandInFields<'a> {
    #[serde(borrow)]
    id: Option<Text<'a>>,
    #[serde(borrow)]
    dedupe_key: Option<Text<'a>>,
    #[serde(borrow)]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    owner: Option<&'a RawValue>,
    #[serde(borrow)]
    status: Option<&'a RawValue>,
    #[serde(borrow)]
    created_at: Option<&'a RawValue>,
}

/// A task written as its id and dedupe key (as [`held`]), its other short fields,
/// and `omitted`: the size and sha256 of its JSON as written, and its line when it
/// is in the log.
fn stand_in(t: &PendingTask, text: &str) -> std::io::Result<Box<RawValue>> {
    let fields: StandInFields = serde_json::from_str(text).map_err(std::io::Error::other)?;
    let (id, key) = names(fields.id.as_deref(), fields.dedupe_key.as_deref());
    let mut m = Map::new();
    m.insert(
        "id".into(),
        Value::String(id.unwrap_or_default().into_owned()),
    );
    if let Some(key) = key {
        m.insert("dedupe_key".into(), Value::String(key.into_owned()));
    }
    for (name, raw) in [
        ("kind", fields.kind),
        ("owner", fields.owner),
        ("status", fields.status),
        ("created_at", fields.created_at),
    ] {
        if let Some(raw) = raw.filter(|r| r.get().len() <= HELD_TEXT_BYTES) {
            m.insert(name.into(), serde_json::from_str(raw.get())?);
        }
    }
    let sha256 = hex(&Sha256::digest(text.as_bytes()));
    let line = (!t.in_memory).then_some(t.line);
    let mut omitted = Map::new();
    omitted.insert("bytes".into(), text.len().into());
    omitted.insert("sha256".into(), sha256.into());
    if let Some(line) = line {
        omitted.insert("line".into(), line.into());
    }
    m.insert("omitted".into(), Value::Object(omitted));
    Ok(serde_json::value::to_raw_value(&m)?)
}

/// One task as its JSON text: serialized in canonical form (keys sorted) without
/// being parsed into a `Value`, so a task as large as the line cap costs its text.
#[derive(Debug, Clone)]
pub struct TaskJson(String);

impl TaskJson {
    pub fn new(text: String) -> TaskJson {
        TaskJson(text)
    }

    /// A top-level string field.
    pub fn field(&self, name: &str) -> Option<String> {
        crate::json_budget::top_level_string(self.0.as_bytes(), name)
    }
}

impl Serialize for TaskJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        canon::Canonical(&self.0).serialize(s)
    }
}

/// The pending list as a serializable sequence of canonical task objects, read
/// back one at a time ([`Replay::pending_json`]).
pub struct PendingJson<'a>(&'a Replay);

impl Serialize for PendingJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeSeq};
        let mut seq = s.serialize_seq(Some(self.0.live.len()))?;
        for t in self.0.pending() {
            let text = self.0.text(t).map_err(S::Error::custom)?;
            seq.serialize_element(&canon::Canonical(&text))?;
        }
        seq.end()
    }
}

/// The dedupe index of every pending task as a serializable map ([`Replay::dedupe_json`]):
/// key → id of the oldest pending task that holds it. Sorted by key while the sorted
/// index takes at most [`SORTED_INDEX_BYTES`] of memory (its keys and ids, and
/// [`ENTRY_BYTES`] each); past that, written in the order
/// the keys first appear in the pending list, remembering the digest of each key
/// written.
pub struct DedupeJson<'a> {
    replay: &'a Replay,
    budget: usize,
}

/// The most memory the dedupe index is sorted in.
pub const SORTED_INDEX_BYTES: usize = 32 << 20;

/// What an entry of the sorted dedupe index costs besides its text: two `String`s
/// and a share of a B-tree node, rounded up.
const ENTRY_BYTES: usize = 96;

impl Serialize for DedupeJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeMap};
        let replay = self.replay;
        let sorted = replay
            .dedupe_index_of(replay.pending(), self.budget)
            .map_err(S::Error::custom)?;
        if let Some(index) = sorted {
            return index.serialize(s);
        }
        let mut seen = std::collections::HashSet::with_hasher(replay.seed.clone());
        let mut map = s.serialize_map(None)?;
        for t in replay.pending() {
            if let Some(key) = t.key
                && seen.insert(key)
                && let (id, Some(key)) = replay.names(t).map_err(S::Error::custom)?
            {
                map.serialize_entry(&key, &id)?;
            }
        }
        map.end()
    }
}

/// One line of the log, parsed and checked on its own: everything the fold needs,
/// with its texts copied to a buffer of the batch it is in ([`Span`]), so that
/// lines can be parsed on one thread while another folds them, without an
/// allocation of their own.
enum Parsed {
    Blank,
    Corrupt(String),
    /// An enqueue whose task's head was read with its line (by [`scan`], or for a
    /// task too large or deep to hold as it is, by serde_json): the id as [`held`]
    /// (for findings and the cross-check), the dedupe key as [`names`] holds it.
    Enqueue {
        id: Span,
        key: Option<Span>,
        body: ParsedBody,
    },
    /// An enqueue read by serde_json, of a task held as its text, whose head the
    /// fold reads: its envelope took the reading thread longer than a line
    /// [`scan`] reads.
    EnqueueText {
        raw: Span,
        at: Option<u64>,
    },
    Dequeue {
        id: Span,
    },
}

/// A task as the reader hands it over: its JSON, with its offset in the log file
/// when there is one, or (a large task) its place in the log alone.
enum ParsedBody {
    Held { raw: Span, at: Option<u64> },
    InLog { at: u64, len: u32, sha: Digest16 },
}

/// Where a text of a parsed line was copied to, in its batch's buffer.
#[derive(Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
}

impl Span {
    /// Copies `text` to the end of `buf`.
    fn push(buf: &mut String, text: &str) -> Span {
        let start = buf.len();
        buf.push_str(text);
        Span {
            start,
            end: buf.len(),
        }
    }

    fn of(self, buf: &str) -> &str {
        &buf[self.start..self.end]
    }
}

/// Checks that [`scan`] reads each line of `data` as serde_json reads it, and that
/// a replay of `data` line by line folds to the same state either way; panics
/// where they differ. For the tests and the fuzz targets.
pub(crate) fn check_scan(data: &[u8]) {
    for line in data.split(|&b| b == b'\n') {
        let Some(ev) = std::str::from_utf8(line).ok().and_then(scan::event) else {
            continue;
        };
        let serde: Envelope = serde_json::from_slice(line).expect("what scan reads, serde reads");
        let text = |t: Option<Text>| t.map(|t| t.0.into_owned());
        assert_eq!(
            (text(serde.v), text(serde.op), text(serde.task_id)),
            (
                ev.v.map(str::to_string),
                ev.op.map(str::to_string),
                ev.task_id.map(str::to_string)
            ),
            "the fields of {:?}",
            String::from_utf8_lossy(line)
        );
        let task = serde.task.map(RawValue::get);
        assert_eq!(task, ev.task.as_ref().map(|t| t.text), "a task's text");
        if let Some(t) = ev.task {
            let head: TaskHead = serde_json::from_str(t.text).expect("a task's head");
            assert_eq!(
                (text(head.id), text(head.dedupe_key)),
                (t.id.map(str::to_string), t.dedupe_key.map(str::to_string)),
                "a task's head"
            );
        }
    }
    let replay = |scan: bool| {
        let mut r = Replay::new();
        for (i, line) in data.split(|&b| b == b'\n').enumerate() {
            let mut text = String::new();
            let parsed = parse_line_as(line, None, &mut text, scan);
            r.fold(i + 1, parsed, &text);
        }
        r
    };
    let (scanned, serde) = (replay(true), replay(false));
    assert_eq!(scanned.counters, serde.counters, "counters");
    assert_eq!(scanned.findings, serde.findings, "findings");
    assert_eq!(
        scanned.state_sha256().ok(),
        serde.state_sha256().ok(),
        "state"
    );
    assert_eq!(
        scanned.dedupe_index().ok(),
        serde.dedupe_index().ok(),
        "dedupe index"
    );
}

/// What replay reads of an event line: its `Envelope`, and the head of its task
/// when that was read with it.
struct Head<'a> {
    v: Option<Cow<'a, str>>,
    op: Option<Cow<'a, str>>,
    task_id: Option<Cow<'a, str>>,
    task: Option<&'a str>,
    /// The task's `id` and `dedupe_key`.
    task_head: Option<(Option<&'a str>, Option<&'a str>)>,
}

/// Parses one line; `at` is its offset in the log file being replayed, if any. The
/// texts the fold needs are copied to the end of `buf`.
fn parse_line(raw: &[u8], at: Option<u64>, buf: &mut String) -> Parsed {
    parse_line_as(raw, at, buf, true)
}

/// [`parse_line`], with the common line read by [`scan`] or, without `scan`, every
/// line by serde_json (which the tests and the fuzz targets compare).
fn parse_line_as(raw: &[u8], at: Option<u64>, buf: &mut String, scan: bool) -> Parsed {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Parsed::Blank;
    }
    let line = std::str::from_utf8(raw);
    let scanned = match line {
        Ok(line) if scan => scan::event(line),
        _ => None,
    };
    let ev = match scanned {
        Some(ev) => Head {
            v: ev.v.map(Cow::Borrowed),
            op: ev.op.map(Cow::Borrowed),
            task_id: ev.task_id.map(Cow::Borrowed),
            task: ev.task.as_ref().map(|t| t.text),
            task_head: ev.task.map(|t| (t.id, t.dedupe_key)),
        },
        None => {
            // A line checked as UTF-8 once is parsed without checking each string
            // again; one that is not reads as before, to the same refusal.
            let parsed = match line {
                Ok(text) => serde_json::from_str(text),
                Err(_) => serde_json::from_slice(raw),
            };
            match parsed {
                Ok(Envelope {
                    v,
                    op,
                    task_id,
                    task,
                }) => Head {
                    v: v.map(|t| t.0),
                    op: op.map(|t| t.0),
                    task_id: task_id.map(|t| t.0),
                    task: task.map(RawValue::get),
                    task_head: None,
                },
                Err(e) => {
                    let what = if serde_json::from_slice::<serde::de::IgnoredAny>(raw).is_ok() {
                        "not an event object"
                    } else {
                        "not JSON"
                    };
                    return Parsed::Corrupt(format!(
                        "{what} ({} at column {})",
                        crate::fsutil::strip_position(&e.to_string()),
                        e.column()
                    ));
                }
            }
        }
    };
    if let Some(v) = ev.v.as_deref()
        && v != VERSION
    {
        return Parsed::Corrupt(format!(
            "unsupported event version {:?}; expected {VERSION:?}",
            crate::bundle::index::truncate(v, 40)
        ));
    }
    match ev.op.as_deref() {
        Some("enqueue") => {
            let Some(text) = ev.task else {
                return Parsed::Corrupt("enqueue without a `task` object".into());
            };
            let offset = at.map(|at| at + (text.as_ptr() as usize - raw.as_ptr() as usize) as u64);
            let brackets = text.bytes().filter(|b| matches!(b, b'[' | b'{')).count();
            if text.len() <= HELD_TASK_BYTES && brackets <= canon::MAX_DEPTH {
                return match ev.task_head {
                    // The common task, whose head was read with its line.
                    Some((Some(id), key)) => {
                        let (id, key) = names(Some(id), key);
                        Parsed::Enqueue {
                            id: Span::push(buf, &id.expect("an id")),
                            key: key.map(|k| Span::push(buf, &k)),
                            body: ParsedBody::Held {
                                raw: Span::push(buf, text),
                                at: offset,
                            },
                        }
                    }
                    Some((None, _)) => Parsed::Corrupt(NO_ID.into()),
                    // The fold reads its head from the text it holds.
                    None => Parsed::EnqueueText {
                        raw: Span::push(buf, text),
                        at: offset,
                    },
                };
            }
            let head = match task_head(text) {
                Ok(head) => head,
                Err(why) => return Parsed::Corrupt(why.into()),
            };
            // A task is written out (and digested) in canonical form: one that could
            // not be, within canon's limits, is refused here, never digested wrong.
            if let Err(why) = canon::check(text) {
                return Parsed::Corrupt(format!(
                    "a task that lith does not read in bounded memory: {why}"
                ));
            }
            let body = match offset {
                Some(at) if text.len() > HELD_TASK_BYTES => ParsedBody::InLog {
                    at,
                    len: text.len() as u32,
                    sha: digest16(text.as_bytes()),
                },
                _ => ParsedBody::Held {
                    raw: Span::push(buf, text),
                    at: offset,
                },
            };
            let (id, key) = names(head.id.as_deref(), head.dedupe_key.as_deref());
            let id = id.expect("an id");
            // Their digests are taken by the fold: the parsing thread has the
            // heavier share of the work.
            Parsed::Enqueue {
                id: Span::push(buf, &id),
                key: key.map(|k| Span::push(buf, &k)),
                body,
            }
        }
        Some("dequeue") => match ev.task_id {
            Some(id) => {
                let id = held(&id);
                Parsed::Dequeue {
                    id: Span::push(buf, &id),
                }
            }
            None => Parsed::Corrupt("dequeue without a string `task_id`".into()),
        },
        Some(other) => Parsed::Corrupt(format!(
            "unknown op {:?}",
            crate::bundle::index::truncate(other, 40)
        )),
        None => Parsed::Corrupt("no string `op`".into()),
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

/// Replays a whole log from a reader, holding every task in memory. Line numbers
/// continue from `state.lines`.
///
/// Lines are read and parsed on a second thread while this one folds them in log
/// order, so the result is exactly that of [`Replay::apply_line`] on each line.
pub fn replay_reader(r: impl Read + Send, state: &mut Replay) -> std::io::Result<()> {
    replay_lines(r, state, false)
}

/// Replays a whole log file from its start into a fresh `state`, holding large
/// tasks as their place in it: the replay keeps the file open to read them back.
pub fn replay_open(file: &File, state: &mut Replay) -> std::io::Result<()> {
    if state.lines != 0 {
        return Err(std::io::Error::other(
            "a log file is replayed from its start",
        ));
    }
    let source = Arc::new(file.try_clone()?);
    state.source = Some(source.clone());
    std::io::Seek::seek(&mut &*source, std::io::SeekFrom::Start(0))?;
    replay_lines(&*source, state, true)
}

fn replay_lines(r: impl Read + Send, state: &mut Replay, in_file: bool) -> std::io::Result<()> {
    let first = state.lines;
    let (tx, rx) = std::sync::mpsc::sync_channel::<(Vec<Item>, String)>(4);
    // Batches go back to the reader once folded, to be filled again: a new one for
    // every 2,048 lines would be mapped from the system and given back each time
    // (it is over malloc's threshold for that), at a page fault a page.
    let (spare_tx, spare_rx) = std::sync::mpsc::channel::<(Vec<Item>, String)>();
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || -> std::io::Result<()> {
            let mut lines = crate::jsonl::Lines::new(r, first);
            let mut batch = Vec::with_capacity(BATCH);
            let mut text = String::new();
            while let Some((line, buf)) = lines.next_line()? {
                let n = line.number;
                let at = in_file.then_some(line.offset);
                batch.push(match line.too_long {
                    // Whatever its length, an unterminated last line is a torn tail.
                    Some(len) if !line.terminated => Item::Torn(n, len),
                    Some(len) => Item::TooLong(n, len),
                    None if line.terminated => Item::Line(n, parse_line(buf, at, &mut text)),
                    // A complete event whose newline never made it: accept it.
                    None if serde_json::from_slice::<serde::de::IgnoredAny>(buf).is_ok() => {
                        Item::Line(n, parse_line(buf, at, &mut text))
                    }
                    None if buf.iter().all(u8::is_ascii_whitespace) => Item::Skip(n),
                    None => Item::Torn(n, buf.len() as u64),
                });
                if batch.len() == BATCH {
                    let (spare, spare_text) = spare_rx.try_recv().unwrap_or_else(|_| {
                        (Vec::with_capacity(BATCH), String::with_capacity(text.len()))
                    });
                    let full = std::mem::replace(&mut batch, spare);
                    let texts = std::mem::replace(&mut text, spare_text);
                    if tx.send((full, texts)).is_err() {
                        return Ok(());
                    }
                }
            }
            if !batch.is_empty() {
                let _ = tx.send((batch, text));
            }
            Ok(())
        });
        'read: for (mut batch, mut text) in rx {
            for item in batch.drain(..) {
                match item {
                    Item::Line(n, p) => state.fold(n, p, &text),
                    Item::TooLong(n, len) => state.too_long(n, len),
                    Item::Torn(n, len) => state.torn_tail(n, len),
                    Item::Skip(n) => state.lines = n,
                }
                if state.stopped.is_some() {
                    // Dropping the channel stops the reader at its next batch.
                    break 'read;
                }
            }
            text.clear();
            // The reader may have read its last line already.
            let _ = spare_tx.send((batch, text));
        }
        reader
            .join()
            .expect("the queue reader thread does not panic")?;
        match &state.stopped {
            Some(why) => Err(std::io::Error::other(why.clone())),
            None => Ok(()),
        }
    })
}

/// Replays the log at `path` into `state` (a [`Replay::new`] or
/// [`Replay::checked`]). A missing log is an empty queue.
pub fn replay_file(path: &Path, mut state: Replay) -> std::io::Result<Replay> {
    match crate::fsutil::open_nofollow(path) {
        Ok(f) => {
            if !f.metadata()?.is_file() {
                return Err(std::io::Error::other("the queue log is not a regular file"));
            }
            replay_open(&f, &mut state)?;
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
    /// `n` enqueues under seven dedupe keys, with a dequeue of an earlier task after
    /// every third: dequeued holes among pending tasks.
    fn enqueues_and_dequeues(n: usize) -> String {
        let mut log = String::new();
        for i in 0..n {
            log.push_str(&enq(&format!("t{i}"), &format!("k{}", i % 7)));
            if i % 3 == 0 {
                log.push_str(&deq(&format!("t{}", i / 2)));
            }
        }
        log
    }
    fn run(log: &str) -> Replay {
        let mut r = Replay::new();
        replay_reader(log.as_bytes(), &mut r).unwrap();
        r
    }
    /// A pending task as a JSON object.
    fn task_map(r: &Replay, t: &PendingTask) -> Map<String, Value> {
        serde_json::from_str(&r.text(t).unwrap()).unwrap()
    }

    fn ids(r: &Replay) -> Vec<String> {
        r.pending().map(|t| r.names(t).unwrap().0).collect()
    }

    #[test]
    fn an_events_strings_are_borrowed_from_its_line_unless_escaped() {
        let line = format!(r#"{{"v":"{VERSION}","op":"dequeue","task_id":"a\u0041"}}"#);
        let ev: Envelope = serde_json::from_str(&line).unwrap();
        assert!(matches!(
            ev.v.as_ref().map(|t| &t.0),
            Some(Cow::Borrowed(VERSION))
        ));
        assert!(matches!(
            ev.op.as_ref().map(|t| &t.0),
            Some(Cow::Borrowed("dequeue"))
        ));
        assert!(matches!(ev.task_id.as_ref().map(|t| &t.0), Some(Cow::Owned(id)) if id == "aA"));
        let head = task_head(r#"{"id":"t","dedupe_key":"k\n","kind":1}"#).unwrap();
        assert!(matches!(
            head.id.as_ref().map(|t| &t.0),
            Some(Cow::Borrowed("t"))
        ));
        assert!(
            matches!(head.dedupe_key.as_ref().map(|t| &t.0), Some(Cow::Owned(k)) if k == "k\n")
        );
        // Absent, null and other types read as before.
        let ev: Envelope = serde_json::from_str(r#"{"op":null}"#).unwrap();
        assert!(ev.op.is_none() && ev.v.is_none() && ev.task_id.is_none());
        assert!(serde_json::from_str::<Envelope>(r#"{"op":1}"#).is_err());
    }

    #[test]
    fn a_checked_replay_folds_to_the_same_state_and_checks_every_operation() {
        let log = [
            enq("a", "ka"),
            enq("a", "ka"),
            deq("zz"),
            enq("b", "kb"),
            deq("a"),
        ]
        .concat();
        let without = run(&log);
        let mut receipts = QueueReceipts::default();
        receipts.push(1, "enqueue", Some("a"));
        receipts.push(2, "dequeue", Some("b"));
        let mut with = Replay::checked(receipts);
        replay_reader(log.as_bytes(), &mut with).unwrap();
        let cc = with.cross_check().unwrap().unwrap();
        assert_eq!(cc.ops, 5);
        let missing: Vec<(usize, &str)> = cc
            .receipt_missing
            .iter()
            .map(|o| (o.line, o.task_id.as_str()))
            .collect();
        assert_eq!(missing, [(2, "a"), (3, "zz"), (4, "b"), (5, "a")]);
        assert_eq!(cc.receipts_without_op[0].line, 2);
        assert!(with.cross_check().is_none(), "told once");
        assert_eq!(ids(&without), ["b"]);
        assert_eq!(without.counters, with.counters);
        assert_eq!(without.findings, with.findings);
        assert_eq!(
            without.state_sha256().unwrap(),
            with.state_sha256().unwrap()
        );
        assert_eq!(
            without.summary("q").unwrap().dedupe_index,
            with.summary("q").unwrap().dedupe_index
        );
    }

    #[test]
    fn findings_past_the_listed_ones_are_counted_and_the_first_of_each_kind_listed() {
        let mut log: String = (0..MAX_FINDINGS + 5)
            .map(|i| deq(&format!("x{i}")))
            .collect();
        log.push_str(&enq("a", "k"));
        log.push_str(&enq("a", "k"));
        log.push_str("not json\n");
        let r = run(&log);
        assert_eq!(r.counters.orphan_dequeue, MAX_FINDINGS + 5);
        assert_eq!(r.findings.len(), MAX_FINDINGS + 2);
        assert_eq!(r.findings_omitted, 5);
        let tail: Vec<(usize, FindingKind)> = r.findings[MAX_FINDINGS..]
            .iter()
            .map(|f| (f.line, f.kind))
            .collect();
        let n = MAX_FINDINGS + 5;
        assert_eq!(
            tail,
            [
                (n + 2, FindingKind::DuplicateEnqueue),
                (n + 3, FindingKind::CorruptLine)
            ]
        );
        let s = r.summary("q").unwrap();
        assert_eq!(
            (s.findings.len(), s.findings_omitted),
            (MAX_FINDINGS + 2, 5)
        );
    }

    #[test]
    fn the_dedupe_index_is_sorted_within_its_budget_and_in_pending_order_past_it() {
        let log = [
            enq("a", "kz"),
            enq("b", "ka"),
            enq("c", "kz"),
            enq("d", ""),
            enq("e", "km"),
        ]
        .concat();
        let r = run(&log);
        let json = |budget| serde_json::to_string(&DedupeJson { replay: &r, budget }).unwrap();
        assert_eq!(json(SORTED_INDEX_BYTES), r#"{"ka":"b","km":"e","kz":"a"}"#);
        assert_eq!(
            json(2 * (ENTRY_BYTES + 3)),
            r#"{"kz":"a","ka":"b","km":"e"}"#
        );
        let sorted: BTreeMap<String, String> = serde_json::from_str(&json(0)).unwrap();
        assert_eq!(sorted, r.dedupe_index().unwrap());
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
            r.summary("q").unwrap().dedupe_index,
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

    /// A task's id and key are read by the fold for most tasks, and with the line
    /// for a large or deeply nested one: either way, a task without a string id is
    /// a corrupt line, told the same, from a reader or from a log file.
    #[test]
    fn an_enqueue_without_a_string_id_is_a_corrupt_line_wherever_its_head_is_read() {
        let ev =
            |task: &str| format!("{{\"v\":\"{VERSION}\",\"op\":\"enqueue\",\"task\":{task}}}\n");
        let big = format!(
            "{{\"kind\":\"k\",\"payload\":\"{}\"}}",
            "x".repeat(HELD_TASK_BYTES)
        );
        let deep = format!(
            "{{\"kind\":\"k\",\"payload\":{}0{}}}",
            "[".repeat(canon::MAX_DEPTH),
            "]".repeat(canon::MAX_DEPTH)
        );
        let log = [
            ev("{\"kind\":\"k\"}"),
            ev("{\"id\":5}"),
            ev("[1]"),
            ev(&big),
            ev(&deep),
            enq("a", "k"),
        ]
        .concat();
        let no_id = "enqueue whose task has no string `id`";
        let not_object = "enqueue whose `task` is not an object with string fields";
        let want = [
            (1, no_id),
            (2, not_object),
            (3, not_object),
            (4, no_id),
            (5, no_id),
        ];
        let t = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(t.path(), &log).unwrap();
        let from_file = replay_file(t.path(), Replay::new()).unwrap();
        for r in [run(&log), from_file] {
            let got: Vec<(usize, &str)> = r
                .findings
                .iter()
                .map(|f| (f.line, f.message.as_str()))
                .collect();
            assert_eq!(got, want);
            assert_eq!(r.counters.corrupt_line, 5);
            assert_eq!(r.counters.events, 1);
            assert_eq!(ids(&r), ["a"]);
        }
    }

    #[test]
    fn state_digest_ignores_created_at_and_follows_content() {
        let a = run(&enq("a", "k"));
        let b = run(&enq("a", "k").replace("a-time", "another time"));
        assert_eq!(a.state_sha256().unwrap(), b.state_sha256().unwrap());
        assert_ne!(
            a.state_sha256().unwrap(),
            run(&enq("b", "k")).state_sha256().unwrap()
        );
        assert_eq!(run("").state_sha256().unwrap(), hex(&Sha256::digest(b"[]")));
    }

    #[test]
    fn the_state_digest_is_the_digest_of_the_whole_list_across_parallel_parts() {
        // More pending tasks than one encoded part, with dequeued holes in the slots:
        // the digest is of `[t1,t2,…]` written in one piece.
        let log = enqueues_and_dequeues(9000);
        let r = run(&log);
        let tasks: Vec<Value> = r
            .pending()
            .map(|t| {
                let mut m = task_map(&r, t);
                m.remove("created_at");
                Value::Object(m)
            })
            .collect();
        assert!(tasks.len() > 2 * 2048, "{}", tasks.len());
        let whole = serde_json::to_string(&Value::Array(tasks)).unwrap();
        assert_eq!(
            r.state_sha256().unwrap(),
            hex(&Sha256::digest(whole.as_bytes()))
        );
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
    fn the_texts_of_dequeued_tasks_are_dropped_and_the_rest_kept_whole() {
        // 400 tasks of some 10 KB held in memory; three in four dequeued: the held
        // texts are compacted, and what stays pending reads back as written.
        let n = 400;
        let all: Vec<String> = (0..n)
            .map(|i| big(&format!("t{i}"), &format!("k{i}"), 10_000))
            .collect();
        let mut log = all.concat();
        for i in (0..n).filter(|i| i % 4 != 0) {
            log.push_str(&deq(&format!("t{i}")));
        }
        let r = run(&log);
        let kept: String = (0..n)
            .filter(|i| i % 4 == 0)
            .map(|i| all[i].clone())
            .collect();
        let want = run(&kept);
        assert_eq!(ids(&r), ids(&want));
        assert_eq!(r.state_sha256().unwrap(), want.state_sha256().unwrap());
        for (a, b) in r.pending().zip(want.pending()) {
            assert_eq!(r.text(a).unwrap(), want.text(b).unwrap());
        }
        assert_eq!(r.held_bytes, want.held_bytes);
        assert!(
            r.held.len() < 2 * r.held_bytes + (1 << 20),
            "{} bytes held for {} pending",
            r.held.len(),
            r.held_bytes
        );
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
        assert_eq!(r.summary("q").unwrap().dedupe_index, want);
        for (key, id) in &want {
            assert_eq!(&r.names(r.pending_by_dedupe(key).unwrap()).unwrap().0, id);
        }
    }

    /// An enqueue whose payload is a string of `n` bytes.
    fn big(id: &str, key: &str, n: usize) -> String {
        enq(id, key).replace(
            "\"payload\":{}",
            &format!("\"payload\":{{\"blob\":\"{}\"}}", "x".repeat(n)),
        )
    }

    fn log_file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.jsonl");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn a_log_file_holds_large_tasks_as_their_place_and_reads_them_back() {
        let log = [
            enq("a", "ka"),
            big("b", "kb", 100_000),
            big("c", "kc", HELD_TASK_BYTES),
            enq("d", "kd"),
            deq("a"),
        ]
        .concat();
        let (_dir, path) = log_file(&log);
        let file = replay_file(&path, Replay::new()).unwrap();
        let memory = run(&log);
        let held: Vec<bool> = file.pending().map(|t| t.in_memory).collect();
        assert_eq!(held, [false, false, true]);
        assert_eq!(file.held_bytes, file.pending().nth(2).unwrap().len());
        assert_eq!(file.state_sha256().unwrap(), memory.state_sha256().unwrap());
        for (f, m) in file.pending().zip(memory.pending()) {
            assert_eq!(file.text(f).unwrap(), memory.text(m).unwrap());
        }
        let printed = serde_json::to_string(&file.pending_json()).unwrap();
        let tasks: Vec<Value> = memory
            .pending()
            .map(|t| Value::Object(task_map(&memory, t)))
            .collect();
        assert_eq!(printed, serde_json::to_string(&tasks).unwrap());
        // The report writes the large tasks as stand-ins, the others in full.
        let summary = file.summary("q").unwrap();
        let b: Value = serde_json::from_str(summary.pending[0].get()).unwrap();
        let text = file
            .text(file.pending().next().unwrap())
            .unwrap()
            .into_owned();
        assert_eq!(
            b,
            serde_json::json!({"id": "b", "kind": "k", "dedupe_key": "kb", "owner": "o",
                "status": "pending", "created_at": "b-time",
                "omitted": {"bytes": text.len(), "line": 2,
                    "sha256": hex(&Sha256::digest(text.as_bytes()))}})
        );
        assert!(summary.pending[1].get().contains("\"omitted\""));
        assert_eq!(
            summary.pending[2].get(),
            serde_json::to_string(&tasks[2]).unwrap()
        );
        // A replay of memory has no line to name.
        let stand_in: Value =
            serde_json::from_str(memory.summary("q").unwrap().pending[0].get()).unwrap();
        assert!(stand_in["omitted"].get("line").is_none(), "{stand_in}");
        assert_eq!(stand_in["omitted"]["bytes"], text.len());
    }

    #[test]
    fn a_log_rewritten_after_replay_is_an_error_not_another_task() {
        let log = [big("b", "kb", 50_000), enq("d", "kd")].concat();
        let (_dir, path) = log_file(&log);
        let r = replay_file(&path, Replay::new()).unwrap();
        // Same length, other bytes, in place (the handle replay holds sees them).
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        use std::io::{Seek, Write};
        f.seek(std::io::SeekFrom::Start(200)).unwrap();
        f.write_all(b"yyyy").unwrap();
        drop(f);
        let e = r.state_sha256().unwrap_err().to_string();
        assert!(
            e.contains("the task at line 1 changed after replay read it"),
            "{e}"
        );
        assert!(r.summary("q").is_err());
        assert!(serde_json::to_string(&r.pending_json()).is_err());
    }

    #[test]
    fn small_tasks_past_the_budget_are_held_as_their_place() {
        let n = HELD_TASKS_BYTES / 10_000 + 50;
        let log: String = (0..n).map(|i| big(&format!("t{i}"), "k", 10_000)).collect();
        let (_dir, path) = log_file(&log);
        let r = replay_file(&path, Replay::new()).unwrap();
        assert!(r.held_bytes <= HELD_TASKS_BYTES, "{}", r.held_bytes);
        let in_log = r.pending().filter(|t| !t.in_memory).count();
        // The model: a task is held while the held ones and it fit the budget.
        let mut sum = 0;
        let model = r
            .pending()
            .filter(|t| {
                let fits = sum + t.len() <= HELD_TASKS_BYTES;
                sum += if fits { t.len() } else { 0 };
                !fits
            })
            .count();
        assert!(model > 0);
        assert_eq!(in_log, model, "{in_log} of {n} in the log");
        assert_eq!(r.state_sha256().unwrap(), run(&log).state_sha256().unwrap());
        // The report writes what fits its budget in full, the rest as stand-ins.
        let summary = r.summary("q").unwrap();
        let standins = summary
            .pending
            .iter()
            .filter(|t| t.get().contains("\"omitted\""))
            .count();
        assert_eq!(standins, in_log);
        // A byte of the last task rewritten in place: it is read back with its
        // neighbours in one piece, and still refused.
        let len = std::fs::metadata(&path).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, b"y", len - 200).unwrap();
        let e = r.state_sha256().unwrap_err().to_string();
        assert!(e.contains(&format!("the task at line {n} changed")), "{e}");
    }

    #[test]
    fn a_report_lists_the_oldest_pending_tasks_and_counts_the_rest() {
        let log: String = (0..LISTED_TASKS + 50)
            .map(|i| enq(&format!("t{i:05}"), &format!("k{i:05}")))
            .collect();
        let r = run(&log);
        let summary = r.summary("q").unwrap();
        assert_eq!(summary.pending.len(), LISTED_TASKS);
        assert_eq!(summary.pending_omitted, 50);
        assert_eq!(summary.pending_count(), LISTED_TASKS + 50);
        assert!(summary.pending[0].get().contains("\"t00000\""));
        assert_eq!(summary.dedupe_index.len(), LISTED_TASKS);
        assert!(
            !summary
                .dedupe_index
                .contains_key(&format!("k{LISTED_TASKS:05}"))
        );
        // The digest and --json still cover every task.
        assert_eq!(r.dedupe_index().unwrap().len(), LISTED_TASKS + 50);
        let printed: Vec<Value> =
            serde_json::from_str(&serde_json::to_string(&r.pending_json()).unwrap()).unwrap();
        assert_eq!(printed.len(), LISTED_TASKS + 50);
    }

    #[test]
    fn long_ids_and_keys_are_held_as_their_digest() {
        let long_id = "i".repeat(HELD_TEXT_BYTES + 1);
        let long_key = "k".repeat(5000);
        let r = run(&[
            enq(&long_id, &long_key),
            enq(&long_id, "other"),
            enq("short", &long_key),
        ]
        .concat());
        let id = format!("sha256:{}", hex(&Sha256::digest(long_id.as_bytes())));
        let key = format!("sha256:{}", hex(&Sha256::digest(long_key.as_bytes())));
        assert_eq!(r.counters.duplicate_enqueue, 1, "{:?}", r.findings);
        assert!(r.is_pending(&id));
        assert_eq!(
            r.names(r.pending_by_dedupe(&long_key).unwrap()).unwrap().0,
            id
        );
        assert_eq!(
            r.dedupe_index().unwrap(),
            BTreeMap::from([(key, id.clone())])
        );
        assert!(r.findings[0].message.contains(&id));
        // The task itself is written as it was.
        assert_eq!(
            task_map(&r, r.pending().next().unwrap())["id"],
            long_id.as_str()
        );
        let r = run(&[enq(&long_id, "k"), deq(&long_id)].concat());
        assert_eq!(r.pending().count(), 0);
        assert_eq!(held(&"x".repeat(HELD_TEXT_BYTES)).len(), HELD_TEXT_BYTES);
    }

    #[test]
    fn a_receipt_names_a_task_as_held_unless_that_would_change_how_it_parses() {
        let long = "x".repeat(HELD_TEXT_BYTES + 1);
        for text in [
            "t-1", "a,b", "c | d", "c|d", "e\nf", " g", "g ", "\u{7}", &long,
        ] {
            let named = receipt_ref(text);
            assert_eq!(named, receipt_ref(&held(text)), "{text:?}");
            let plain = !text.contains([',', '|']) && text.trim() == text && text.len() < 64;
            let plain = plain && !text.contains('\u{7}') && !text.contains('\n');
            if plain {
                assert_eq!(named, text);
            } else {
                assert_eq!(
                    named,
                    format!("sha256:{}", hex(&Sha256::digest(text.as_bytes())))
                );
            }
        }
    }

    #[test]
    fn a_task_past_the_limits_of_canonical_form_is_a_corrupt_line_not_an_empty_one() {
        let deep = format!("{}0{}", "[".repeat(200), "]".repeat(200));
        let r = run(&[
            enq("a", "k").replace("\"payload\":{}", &format!("\"payload\":{deep}")),
            enq("b", "k"),
        ]
        .concat());
        assert_eq!(r.counters.corrupt_line, 1);
        assert_eq!(r.findings[0].line, 1);
        assert!(
            r.findings[0]
                .message
                .contains("nested deeper than 127 levels"),
            "{:?}",
            r.findings
        );
        assert_eq!(ids(&r), ["b"]);
        // 127 levels is a task like any other.
        let deep = format!("{}0{}", "[".repeat(126), "]".repeat(126));
        let r = run(&enq("a", "k").replace("\"payload\":{}", &format!("\"payload\":{deep}")));
        assert!(r.findings.is_empty(), "{:?}", r.findings);
        assert_eq!(ids(&r), ["a"]);
    }

    /// Lines are parsed in batches whose ids and task texts share one buffer: a log
    /// of several batches folds as it does line by line, each line with its own.
    /// An event line as producers write it, and lines around it: fields in any
    /// order, repeated, null or of another type, escapes, unknown fields holding any
    /// JSON, and lines cut short or with a byte changed.
    fn line_strategy() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let string = prop_oneof![
            "[a-c\u{e9} ]{0,4}".prop_map(|s| format!("\"{s}\"")),
            Just(r#""es\u0063aped\n""#.to_string()),
            Just("null".to_string()),
            Just("7".to_string()),
        ];
        let head = proptest::collection::vec(
            (
                prop_oneof![
                    Just("id"),
                    Just("dedupe_key"),
                    Just("kind"),
                    Just("i\\u0064")
                ],
                string.clone(),
            ),
            0..4,
        );
        let task = (head, crate::json_text::tests::json_strategy()).prop_map(|(head, payload)| {
            let mut members: Vec<String> =
                head.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
            members.push(format!("\"payload\":{payload}"));
            format!("{{{}}}", members.join(", "))
        });
        let field = prop_oneof![
            string.clone().prop_map(|v| ("v".to_string(), v)),
            prop_oneof![
                Just("\"enqueue\"".to_string()),
                Just("\"dequeue\"".to_string()),
                string.clone()
            ]
            .prop_map(|v| ("op".to_string(), v)),
            string.prop_map(|v| ("task_id".to_string(), v)),
            task.prop_map(|v| ("task".to_string(), v)),
            crate::json_text::tests::json_strategy().prop_map(|v| ("ts".to_string(), v)),
        ];
        let line = proptest::collection::vec(field, 0..6).prop_map(|fields| {
            let members: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            format!("{{{}}}", members.join(","))
        });
        (line, any::<u8>(), any::<prop::sample::Index>(), 0..4u8).prop_map(
            |(line, byte, at, how)| {
                let mut bytes = line.into_bytes();
                let i = at.index(bytes.len() + 1);
                match how {
                    0 => bytes.truncate(i),
                    1 if i < bytes.len() => bytes[i] = byte,
                    _ => {}
                }
                String::from_utf8_lossy(&bytes).into_owned()
            },
        )
    }

    proptest::proptest! {
        #[test]
        fn a_line_read_in_one_pass_reads_as_serde_json_reads_it(
            lines in proptest::collection::vec(line_strategy(), 1..8),
        ) {
            let log = lines.join("\n");
            check_scan(log.as_bytes());
        }
    }

    #[test]
    fn the_common_lines_are_read_in_one_pass_and_fold_alike() {
        let mut log = enqueues_and_dequeues(50);
        log.push_str("{\"op\":\"enqueue\",\"task\":{\"kind\":\"no id\"}}\n");
        for line in log.lines() {
            assert!(scan::event(line).is_some(), "{line}");
        }
        check_scan(log.as_bytes());
    }

    #[test]
    fn a_log_of_many_batches_folds_as_it_does_line_by_line() {
        let mut log = String::new();
        for i in 0..3 * BATCH + 17 {
            // Ids of every length up to 40, so that no two lines' texts line up.
            let id = format!("t{i}-{}", "x".repeat(i % 40));
            log.push_str(&enq(&id, &format!("k{}", i % 700)));
            match i % 5 {
                0 => log.push_str(&deq(&id)),
                1 => log.push_str(&enq(&id, "again")),
                2 => log.push_str(&deq(&format!("nobody-{i}"))),
                3 => log.push_str("not json\n"),
                _ => {}
            }
        }
        let batched = run(&log);
        let mut single = Replay::new();
        for (n, line) in log.lines().enumerate() {
            single.apply_line(n + 1, line.as_bytes());
        }
        assert!(batched.counters.events > 2 * BATCH);
        assert_eq!(batched.counters, single.counters);
        assert_eq!(
            batched.state_sha256().unwrap(),
            single.state_sha256().unwrap()
        );
        assert_eq!(ids(&batched), ids(&single));
        let findings = |r: &Replay| {
            r.findings
                .iter()
                .map(|f| format!("{} {}", f.line, f.message))
                .collect::<Vec<_>>()
        };
        assert_eq!(findings(&batched), findings(&single));
        let last = 3 * BATCH + 15;
        assert!(
            ids(&batched).contains(&format!("t{last}-{}", "x".repeat(last % 40))),
            "a task of the last batch is pending, with its own text"
        );
        assert_eq!(
            serde_json::to_string(&batched.pending_json()).unwrap(),
            serde_json::to_string(&single.pending_json()).unwrap()
        );
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
            proptest::prop_assert_eq!(a.state_sha256().unwrap(), b.state_sha256().unwrap());
            let cut = cut.min(events.len());
            let mut split = Replay::new();
            replay_reader(events[..cut].concat().as_bytes(), &mut split).unwrap();
            replay_reader(events[cut..].concat().as_bytes(), &mut split).unwrap();
            proptest::prop_assert_eq!(split.state_sha256().unwrap(), a.state_sha256().unwrap());
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
