//! The queue/receipt cross-check (SPEC §4.3): every enqueue and dequeue must have a
//! receipt whose refs hold `task-queue:<op>` and `task:<id>`; task-queue receipts
//! that match no operation are listed too. A crash between appending an event and
//! its receipt shows up here as `receipt_missing`, so it is never silently lost.
//!
//! The check runs as replay accepts each operation ([`Checker`]): it keeps the
//! receipts' references and a cursor per (operation, task), never a record per
//! event, and lists at most [`MAX_LISTED`] of each kind of mismatch.
//!
//! While each operation takes the next receipt in line order, as a writer appends
//! them (the event, then its receipt), the check is in step: one compare an
//! operation. From the first operation that does not, every receipt before it was
//! taken, each the oldest of its pair left, so the operations to come take only
//! the receipts after those: the check looks them up sorted by (operation, task).
//!
//! Past [`HELD_RECEIPTS`] task-queue receipts, memory would follow the receipts
//! log, so the receipts go to an unnamed temporary file instead, in line order,
//! read back one an operation while the check is in step. From the first
//! operation out of step, the receipts left and then the operations go to
//! unnamed temporary files split by (operation, task) into [`PARTITIONS`] parts,
//! and the parts are counted when replay is done, [`PARTS_AT_ONCE`] at a time
//! (each read back one record at a time). Within a part it is the same check by
//! counting: the n-th operation of a pair takes its n-th receipt, so an
//! operation is missing its receipt when the pair has fewer receipts than that,
//! and a receipt is without an operation when the pair has fewer operations.

use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, Write};

use serde::Serialize;

use super::{Op, OpKind};
use crate::receipts::Receipt;

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct OrphanReceipt {
    pub line: usize,
    pub op: String,
    pub task_id: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct CrossCheck {
    pub ops: usize,
    pub queue_receipts: usize,
    /// Operations with no receipt (`receipt_missing`), the first [`MAX_LISTED`].
    pub receipt_missing: Vec<Op>,
    /// Operations without a receipt that `receipt_missing` leaves out.
    #[serde(default, skip_serializing_if = "crate::wire::zero")]
    pub receipt_missing_omitted: usize,
    /// Task-queue receipts that match no operation, the first [`MAX_LISTED`].
    pub receipts_without_op: Vec<OrphanReceipt>,
    /// Receipts without an operation that `receipts_without_op` leaves out.
    #[serde(default, skip_serializing_if = "crate::wire::zero")]
    pub receipts_without_op_omitted: usize,
}

/// The mismatches of each kind a [`CrossCheck`] lists (the earliest); the counts
/// stay exact past it.
pub const MAX_LISTED: usize = super::MAX_FINDINGS;

impl CrossCheck {
    pub fn ok(&self) -> bool {
        self.receipt_missing.is_empty() && self.receipts_without_op.is_empty()
    }

    /// Operations without a receipt, listed or not.
    pub fn missing_count(&self) -> usize {
        self.receipt_missing.len() + self.receipt_missing_omitted
    }

    /// Task-queue receipts without an operation, listed or not.
    pub fn orphan_count(&self) -> usize {
        self.receipts_without_op.len() + self.receipts_without_op_omitted
    }
}

/// The task-queue receipts of a log, as the cross-check needs them: each one's line,
/// operation and task id (as receipts name tasks, [`super::receipt_ref`]), the texts
/// one after another in one string. A few dozen bytes a receipt, up to
/// [`HELD_RECEIPTS`] of them; past that every one is spilled to temporary files.
#[derive(Debug, Default)]
pub struct QueueReceipts {
    text: String,
    refs: Vec<Ref>,
    /// Every receipt once more than the held ones were added.
    spill: Option<Box<Spill>>,
    /// Task-queue receipts added, held or spilled.
    count: usize,
    limits: Limits,
}

/// The parts of a spilled check counted at once, each on a thread of its own: two
/// cores' worth, and at most twice the memory of one part's pairs whatever the
/// machine.
const PARTS_AT_ONCE: usize = 2;

/// Task-queue receipts a check holds in memory (about 50 bytes each); past this
/// many it spills them to a temporary file, and out of step the operations too.
pub const HELD_RECEIPTS: usize = 1 << 20;

/// The parts a spilled check is split into, by a seeded hash of (operation, task).
pub const PARTITIONS: usize = 64;

/// The distinct (operation, task) pairs one part of a spilled check may count in
/// memory (24 bytes each, and the hash table's spare room: some 50 MiB a part at
/// most); a receipts log that would put more in one part (some 64 M task-queue
/// receipts) is refused.
pub const PARTITION_PAIRS: usize = 1 << 20;

#[derive(Debug, Clone, Copy)]
struct Limits {
    held: usize,
    partitions: usize,
    pairs: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            held: HELD_RECEIPTS,
            partitions: PARTITIONS,
            pairs: PARTITION_PAIRS,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Ref {
    line: u64,
    /// Where the operation's text starts in `text`; the task id follows it.
    at: u64,
    op_len: u16,
    /// `NO_TASK` when the receipt names no task.
    id_len: u16,
}

const NO_TASK: u16 = u16::MAX;

impl QueueReceipts {
    /// Keeps a receipt when it is a task-queue receipt.
    pub fn add(&mut self, r: &Receipt) {
        // The first `task-queue:` ref and the first `task:` ref, in one pass.
        let (mut op, mut task_id) = (None, None);
        for x in r.each_ref() {
            if let Some(o) = x.strip_prefix("task-queue:") {
                op = op.or(Some(o));
            } else if let Some(t) = x.strip_prefix("task:") {
                task_id = task_id.or(Some(t));
            }
            if op.is_some() && task_id.is_some() {
                break;
            }
        }
        if let Some(op) = op {
            self.push(r.line, op, task_id.map(super::receipt_ref).as_deref());
        }
    }

    /// Keeps a task-queue receipt: its line, operation and task id (as a receipt
    /// names it, [`super::receipt_ref`]).
    pub fn push(&mut self, line: usize, op: &str, task_id: Option<&str>) {
        let op = super::held(op);
        self.count += 1;
        if self.spill.is_none() && self.refs.len() >= self.limits.held {
            self.start_spill();
        }
        if let Some(spill) = &mut self.spill {
            spill.receipt(line, &op, task_id);
            return;
        }
        let at = self.text.len() as u64;
        self.text.push_str(&op);
        let id_len = match task_id {
            Some(id) => {
                self.text.push_str(id);
                id.len() as u16
            }
            None => NO_TASK,
        };
        self.refs.push(Ref {
            line: line as u64,
            at,
            op_len: op.len() as u16,
            id_len,
        });
    }

    /// Moves the held receipts to temporary files; the ones after them follow.
    fn start_spill(&mut self) {
        let mut spill = Box::new(Spill::new(self.limits));
        for i in 0..self.refs.len() {
            let (op, id) = self.key(i as u32);
            let id = (self.refs[i].id_len != NO_TASK).then_some(id);
            spill.receipt(self.refs[i].line as usize, op, id);
        }
        self.text = String::new();
        self.refs = Vec::new();
        self.spill = Some(spill);
    }

    /// Task-queue receipts added, held or spilled.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether the receipts went to temporary files.
    pub fn spilled(&self) -> bool {
        self.spill.is_some()
    }

    /// The operation and task of receipt `i` (the task empty when it names none).
    fn key(&self, i: u32) -> (&str, &str) {
        let r = self.refs[i as usize];
        let op_end = r.at as usize + r.op_len as usize;
        let id_len = if r.id_len == NO_TASK {
            0
        } else {
            r.id_len as usize
        };
        (
            &self.text[r.at as usize..op_end],
            &self.text[op_end..op_end + id_len],
        )
    }

    fn orphan(&self, i: usize) -> OrphanReceipt {
        let (op, id) = self.key(i as u32);
        OrphanReceipt {
            line: self.refs[i].line as usize,
            op: op.to_string(),
            task_id: (self.refs[i].id_len != NO_TASK).then(|| id.to_string()),
        }
    }
}

/// The cross-check in progress: each operation replay accepts takes the oldest
/// receipt of the same operation and task that no earlier operation took.
#[derive(Debug, Default)]
pub struct Checker {
    receipts: QueueReceipts,
    /// While every operation has taken the next receipt in line order: how many
    /// have (all the receipts before this one). Once one did not, the receipts
    /// after those are looked up in `order`, and this stays at where it stopped.
    in_step: usize,
    /// Whether the check is still in step.
    stepping: bool,
    /// The receipts from `in_step` on that name a task, sorted by (operation,
    /// task) and, within one, by line; made when the check falls out of step.
    order: Vec<u32>,
    /// At the first position of each (operation, task) in `order`: how many of its
    /// receipts operations have taken.
    taken: Vec<u32>,
    out: CrossCheck,
}

impl Checker {
    /// A check against these task-queue receipts.
    pub fn new(receipts: QueueReceipts) -> Checker {
        let out = CrossCheck {
            queue_receipts: receipts.len(),
            ..CrossCheck::default()
        };
        Checker {
            stepping: !receipts.spilled(),
            receipts,
            out,
            ..Checker::default()
        }
    }

    /// Sorts the receipts from `in_step` on that name a task by (operation,
    /// task). Those before it were all taken, each the oldest of its pair left
    /// (every receipt before it was taken too), so the operations to come can
    /// only take receipts from there on, the oldest of their pair first, as the
    /// check out of step does from the start.
    fn fall_out_of_step(&mut self) {
        let r = &self.receipts;
        let mut order: Vec<u32> = (self.in_step as u32..r.len() as u32)
            .filter(|&i| r.refs[i as usize].id_len != NO_TASK)
            .collect();
        // Stable: the receipts of one (operation, task) stay in line order.
        order.sort_by(|&a, &b| r.key(a).cmp(&r.key(b)));
        self.taken = vec![0; order.len()];
        self.order = order;
        self.stepping = false;
    }

    /// One operation that replay accepted, at `line` of the queue log.
    pub fn op(&mut self, line: usize, op: OpKind, task_id: &str) {
        self.out.ops += 1;
        let named = super::receipt_ref(task_id);
        if let Some(spill) = &mut self.receipts.spill {
            spill.op(line, op, &named, task_id);
            return;
        }
        let want = (op.as_str(), &*named);
        let r = &self.receipts;
        // A writer appends an operation's receipt after the operation: while each
        // takes the next receipt, that receipt is the oldest left of its pair.
        if self.stepping {
            let next = self.in_step;
            if next < r.len() && r.refs[next].id_len != NO_TASK && r.key(next as u32) == want {
                self.in_step += 1;
                return;
            }
            self.fall_out_of_step();
        }
        let r = &self.receipts;
        let start = self.order.partition_point(|&i| r.key(i) < want);
        let next = start + self.taken.get(start).copied().unwrap_or(0) as usize;
        if next < self.order.len() && r.key(self.order[next]) == want {
            self.taken[start] += 1;
        } else {
            let out = &mut self.out;
            crate::wire::push_capped(
                &mut out.receipt_missing,
                &mut out.receipt_missing_omitted,
                MAX_LISTED,
                || Op {
                    line,
                    op,
                    task_id: task_id.to_string(),
                },
            );
        }
    }

    /// The result: the receipts no operation took, in line order. Fails only when
    /// a spilled check cannot use its temporary files, or a part holds more than
    /// [`PARTITION_PAIRS`] pairs.
    pub fn finish(self) -> io::Result<CrossCheck> {
        let Checker {
            mut receipts,
            in_step,
            order,
            taken,
            mut out,
            ..
        } = self;
        if let Some(spill) = receipts.spill.take() {
            spill.finish(&mut out)?;
            return Ok(out);
        }
        // The receipts taken in step are those before `in_step`. Out of step,
        // only the first place of a pair counts what was taken (every other one
        // holds 0): the receipts taken are the first that many from there.
        let mut matched = vec![false; receipts.len()];
        matched[..in_step].fill(true);
        for (start, &n) in taken.iter().enumerate() {
            for &i in &order[start..start + n as usize] {
                matched[i as usize] = true;
            }
        }
        for (i, _) in matched.iter().enumerate().filter(|(_, m)| !**m) {
            crate::wire::push_capped(
                &mut out.receipts_without_op,
                &mut out.receipts_without_op_omitted,
                MAX_LISTED,
                || receipts.orphan(i),
            );
        }
        Ok(out)
    }
}

/// The first [`MAX_LISTED`] items by line of those offered in any order, and how
/// many were offered.
#[derive(Debug)]
struct Earliest<T> {
    heap: BinaryHeap<ByLine<T>>,
    offered: usize,
}

impl<T> Default for Earliest<T> {
    fn default() -> Self {
        Earliest {
            heap: BinaryHeap::new(),
            offered: 0,
        }
    }
}

#[derive(Debug)]
struct ByLine<T>(usize, T);

impl<T> PartialEq for ByLine<T> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl<T> Eq for ByLine<T> {}
impl<T> PartialOrd for ByLine<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for ByLine<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl<T> Earliest<T> {
    fn offer(&mut self, line: usize, item: impl FnOnce() -> T) {
        let offered: Result<(), std::convert::Infallible> = self.try_offer(line, || Ok(item()));
        offered.unwrap_or_else(|never| match never {})
    }

    /// [`Earliest::offer`] of an item that may fail to be made; it is made only
    /// when it is listed.
    fn try_offer<E>(&mut self, line: usize, item: impl FnOnce() -> Result<T, E>) -> Result<(), E> {
        self.offered += 1;
        if self.heap.len() < MAX_LISTED {
            self.heap.push(ByLine(line, item()?));
        } else if self.heap.peek().is_some_and(|last| line < last.0) {
            let made = item()?;
            self.heap.pop();
            self.heap.push(ByLine(line, made));
        }
        Ok(())
    }

    /// Takes in what another was offered, as if it had been offered here.
    fn absorb(&mut self, other: Earliest<T>) {
        let offered = self.offered + other.offered;
        for ByLine(line, item) in other.heap {
            self.offer(line, || item);
        }
        self.offered = offered;
    }

    /// The listed items in line order, and how many were left out.
    fn listed(self) -> (Vec<T>, usize) {
        let list: Vec<T> = self
            .heap
            .into_sorted_vec()
            .into_iter()
            .map(|i| i.1)
            .collect();
        let omitted = self.offered - list.len();
        (list, omitted)
    }
}

/// A check past [`HELD_RECEIPTS`]: each receipt and then each operation written to
/// the part of its (operation, task), in log order; the parts counted one at a
/// time by [`Spill::finish`].
#[derive(Debug)]
struct Spill {
    limits: Limits,
    /// Over the pair's digest with a per-process random seed: crafted ids cannot
    /// pile up in one part.
    seed: foldhash::fast::RandomState,
    /// Every receipt in line order, while the operations are in step with them.
    steps: Steps,
    /// The parts, made when the check falls out of step.
    parts: Vec<Part>,
    /// The first error writing a part; the check then fails.
    error: Option<io::Error>,
    /// Receipts that name no task: never taken.
    orphans: Earliest<OrphanReceipt>,
}

/// The receipts of a spilled check in line order: written while the receipts log
/// is read, then read back one receipt an operation while each operation takes
/// the next receipt; dropped once one does not, the rest going to the parts.
#[derive(Debug)]
enum Steps {
    Writing(BufWriter<File>),
    /// The receipts read back, and whether the last one read was not taken.
    Reading(Records, bool),
    Done,
}

impl Steps {
    /// The receipts not taken yet, read back from the first of them, and whether
    /// the last one read is among them; none once the check fell out of step.
    fn left(self) -> io::Result<Option<(Records, bool)>> {
        Ok(match self {
            Steps::Writing(w) => Some((Records::new(w)?, false)),
            Steps::Reading(records, untaken) => Some((records, untaken)),
            Steps::Done => None,
        })
    }
}

#[derive(Debug)]
struct Part {
    receipts: BufWriter<File>,
    ops: BufWriter<File>,
}

/// An (operation, task) pair by its keyed 128-bit digest ([`super::digest16`]),
/// which replay's pending tasks are told apart by too: no log can be written to
/// make two pairs meet, and nothing outside the process sees it.
type Pair = super::Digest16;

fn pair(op: &str, task_id: &str) -> Pair {
    let len = (op.len() as u64).to_le_bytes();
    super::digest16_of(&[&len, op.as_bytes(), task_id.as_bytes()])
}

/// Counts of one pair in one part: the receipts it has, and how many of them
/// operations took (counted down again as its receipts are read a second time).
/// 32 bits each keep a pair in 24 bytes with its digest; a pair counted past them
/// fails the check (some 4 billion receipts of one task).
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    receipts: u32,
    /// Receipts operations took: at most `receipts`.
    taken: u32,
}

/// An unnamed file (O_TMPFILE) in the temporary folder: no name to race for.
fn temporary(limits: Limits) -> io::Result<BufWriter<File>> {
    tempfile::tempfile().map(BufWriter::new).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot create a temporary file in {} for the receipts past the first {} ({e}); set TMPDIR to a writable folder",
                std::env::temp_dir().display(),
                limits.held
            ),
        )
    })
}

impl Spill {
    fn new(limits: Limits) -> Spill {
        let (steps, error) = match temporary(limits) {
            Ok(w) => (Steps::Writing(w), None),
            Err(e) => (Steps::Done, Some(e)),
        };
        Spill {
            limits,
            seed: foldhash::fast::RandomState::default(),
            steps,
            parts: Vec::new(),
            error,
            orphans: Earliest::default(),
        }
    }

    fn part(&self, p: &Pair) -> usize {
        use std::hash::BuildHasher;
        (self.seed.hash_one(p) % self.limits.partitions as u64) as usize
    }

    /// Writes an operation of `pair` to its part as a [`Spilled`] record.
    fn write_op(&mut self, p: Pair, line: usize, op: &str, task_id: &str) {
        if self.error.is_some() {
            return;
        }
        let i = self.part(&p);
        if let Err(e) = Spilled::write(&mut self.parts[i].ops, p, line, op, Some(task_id)) {
            self.error = Some(e);
        }
    }

    /// A receipt, in line order: written to the receipts in step.
    fn receipt(&mut self, line: usize, op: &str, task_id: Option<&str>) {
        if let (Steps::Writing(w), None) = (&mut self.steps, &self.error) {
            let p = task_id.map_or([0; 16], |id| pair(op, id));
            if let Err(e) = Spilled::write(w, p, line, op, task_id) {
                self.error = Some(e);
            }
        }
    }

    /// An operation, paired with the task as receipts name it, `named`: it takes
    /// the next receipt while it is in step, else goes to its part.
    fn op(&mut self, line: usize, op: OpKind, named: &str, task_id: &str) {
        let p = pair(op.as_str(), named);
        if self.error.is_none() && !matches!(self.steps, Steps::Done) {
            match self.step(&p) {
                Ok(true) => return,
                Ok(false) => self.fall_out_of_step(),
                Err(e) => self.error = Some(e),
            }
        }
        self.write_op(p, line, op.as_str(), task_id);
    }

    /// Whether the next receipt names `p`'s operation and task; it is taken when
    /// it does.
    fn step(&mut self, p: &Pair) -> io::Result<bool> {
        if let Steps::Writing(_) = self.steps
            && let Some((records, untaken)) =
                std::mem::replace(&mut self.steps, Steps::Done).left()?
        {
            self.steps = Steps::Reading(records, untaken);
        }
        let Steps::Reading(records, untaken) = &mut self.steps else {
            return Ok(false);
        };
        let Some(head) = records.next()? else {
            return Ok(false);
        };
        *untaken = !(head.named && head.pair == *p);
        Ok(!*untaken)
    }

    /// Makes the parts and writes to them the receipts not taken in step: the
    /// next one, if read, and those after it. Every receipt before them was taken,
    /// each the oldest of its pair left, so the operations to come take only
    /// these.
    fn fall_out_of_step(&mut self) {
        let steps = std::mem::replace(&mut self.steps, Steps::Done);
        if let Err(e) = self.make_parts(steps) {
            self.error = Some(e);
        }
    }

    /// Makes the parts, and writes to them the receipts `steps` has not taken.
    fn make_parts(&mut self, steps: Steps) -> io::Result<()> {
        self.parts = (0..self.limits.partitions)
            .map(|_| {
                Ok(Part {
                    receipts: temporary(self.limits)?,
                    ops: temporary(self.limits)?,
                })
            })
            .collect::<io::Result<_>>()?;
        match steps.left()? {
            Some((records, untaken)) => self.rest(records, untaken, false),
            None => Ok(()),
        }
    }

    /// The receipts not taken: the last one read when `held`, and those after it,
    /// each written to its part (`orphans` false) or listed as without an
    /// operation (`orphans` true). A receipt that names no task is the latter.
    fn rest(&mut self, mut records: Records, held: bool, orphans: bool) -> io::Result<()> {
        let mut head = held.then(|| records.head.clone());
        loop {
            let Some(h) = head
                .take()
                .map_or_else(|| records.next(), |h| Ok(Some(h)))?
            else {
                return Ok(());
            };
            if h.named && !orphans {
                let (op, task_id) = records.texts()?;
                let i = self.part(&h.pair);
                Spilled::write(&mut self.parts[i].receipts, h.pair, h.line, op, task_id)?;
            } else {
                self.orphans.try_offer(h.line, || records.orphan())?;
            }
        }
    }

    /// Counts the parts, [`PARTS_AT_ONCE`] at a time: each part's receipts per
    /// pair, then its operations in log order (the n-th of a pair takes a receipt
    /// while the pair has n), then its receipts again (one is without an operation
    /// once the pair's taken ones are used up). The earliest mismatches of every
    /// part are kept, so the lists are the same whatever order the parts end in.
    fn finish(mut self, out: &mut CrossCheck) -> io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        // Still in step: every receipt not taken is without an operation.
        if let Some((records, untaken)) = std::mem::replace(&mut self.steps, Steps::Done).left()? {
            self.rest(records, untaken, true)?;
        }
        let limits = self.limits;
        let parts = std::sync::Mutex::new(self.parts.into_iter());
        let next = || parts.lock().unwrap_or_else(|e| e.into_inner()).next();
        let counted = std::thread::scope(|s| {
            let workers: Vec<_> = (0..PARTS_AT_ONCE)
                .map(|_| {
                    s.spawn(|| {
                        let mut found = (Earliest::default(), Earliest::default());
                        while let Some(part) = next() {
                            let (missing, orphans) = part.count(limits)?;
                            found.0.absorb(missing);
                            found.1.absorb(orphans);
                        }
                        Ok::<_, io::Error>(found)
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect::<io::Result<Vec<_>>>()
        })?;
        let (mut missing, mut orphans) = (Earliest::default(), self.orphans);
        for (m, o) in counted {
            missing.absorb(m);
            orphans.absorb(o);
        }
        (out.receipt_missing, out.receipt_missing_omitted) = missing.listed();
        (out.receipts_without_op, out.receipts_without_op_omitted) = orphans.listed();
        Ok(())
    }
}

impl Part {
    /// The mismatches of one part ([`Spill::finish`]).
    fn count(self, limits: Limits) -> io::Result<(Earliest<Op>, Earliest<OrphanReceipt>)> {
        let changed = |what| io::Error::new(io::ErrorKind::InvalidData, what);
        let too_many = || {
            io::Error::other(format!(
                "more than {} distinct task-queue receipts in one of the cross-check's {} parts (some {} in all); lith counts at most that many: split the receipts log",
                limits.pairs,
                limits.partitions,
                limits.pairs * limits.partitions
            ))
        };
        let (mut missing, mut orphans) = (Earliest::default(), Earliest::default());
        let mut counts: hashbrown::HashMap<Pair, Counts, foldhash::fast::RandomState> =
            hashbrown::HashMap::default();
        let mut receipts = Records::new(self.receipts)?;
        while let Some(r) = receipts.next()? {
            let c = counts.entry(r.pair).or_default();
            c.receipts = c.receipts.checked_add(1).ok_or_else(too_many)?;
            if counts.len() > limits.pairs {
                return Err(too_many());
            }
        }
        let mut ops = Records::new(self.ops)?;
        while let Some(o) = ops.next()? {
            match counts.get_mut(&o.pair) {
                Some(c) if c.taken < c.receipts => c.taken += 1,
                _ => missing.try_offer(o.line, || {
                    let (op, task_id) = ops.texts()?;
                    Ok::<_, io::Error>(Op {
                        line: o.line,
                        op: OpKind::parse(op)
                            .ok_or_else(|| changed("a spilled operation changed"))?,
                        task_id: task_id.unwrap_or_default().to_string(),
                    })
                })?,
            }
        }
        receipts.rewind()?;
        while let Some(r) = receipts.next()? {
            let c = counts
                .get_mut(&r.pair)
                .ok_or_else(|| changed("a spilled receipt changed"))?;
            if c.taken > 0 {
                c.taken -= 1;
            } else {
                orphans.try_offer(r.line, || receipts.orphan())?;
            }
        }
        Ok((missing, orphans))
    }
}

/// A spilled record: `pair, line, op length, id length, op, id`; the id length
/// is [`NO_ID`] for a receipt that names no task.
struct Spilled;

const NO_ID: u32 = u32::MAX;

impl Spilled {
    fn write(
        out: &mut impl Write,
        p: Pair,
        line: usize,
        op: &str,
        task_id: Option<&str>,
    ) -> io::Result<()> {
        out.write_all(&p)?;
        out.write_all(&(line as u64).to_le_bytes())?;
        out.write_all(&(op.len() as u32).to_le_bytes())?;
        out.write_all(&task_id.map_or(NO_ID, |id| id.len() as u32).to_le_bytes())?;
        out.write_all(op.as_bytes())?;
        out.write_all(task_id.unwrap_or_default().as_bytes())
    }
}

/// A spilled record's pair and line; its texts stay in [`Records`] until asked for.
#[derive(Debug, Clone, Default)]
struct Head {
    pair: Pair,
    line: usize,
    /// Whether it names a task.
    named: bool,
}

/// The records of a file, read back one at a time into one buffer.
#[derive(Debug)]
struct Records {
    r: BufReader<File>,
    /// The last record read, and its texts: its operation, then its task id.
    head: Head,
    text: Vec<u8>,
    op_len: usize,
}

impl Records {
    fn new(w: BufWriter<File>) -> io::Result<Records> {
        let mut f = w.into_inner().map_err(io::IntoInnerError::into_error)?;
        f.rewind()?;
        Ok(Records {
            r: BufReader::with_capacity(64 * 1024, f),
            head: Head::default(),
            text: Vec::new(),
            op_len: 0,
        })
    }

    fn rewind(&mut self) -> io::Result<()> {
        self.r.rewind()
    }

    /// The next record, `None` at the end.
    fn next(&mut self) -> io::Result<Option<Head>> {
        if self.r.fill_buf()?.is_empty() {
            return Ok(None);
        }
        let mut head = [0u8; 32];
        self.r.read_exact(&mut head)?;
        let le32 = |at: usize| u32::from_le_bytes(head[at..at + 4].try_into().expect("4"));
        let id_len = le32(28);
        self.op_len = le32(24) as usize;
        let named = id_len != NO_ID;
        self.text
            .resize(self.op_len + if named { id_len as usize } else { 0 }, 0);
        self.r.read_exact(&mut self.text)?;
        self.head = Head {
            pair: head[..16].try_into().expect("16"),
            line: u64::from_le_bytes(head[16..24].try_into().expect("8")) as usize,
            named,
        };
        Ok(Some(self.head.clone()))
    }

    /// The last record read, as a receipt without an operation.
    fn orphan(&self) -> io::Result<OrphanReceipt> {
        let (op, task_id) = self.texts()?;
        Ok(OrphanReceipt {
            line: self.head.line,
            op: op.to_string(),
            task_id: task_id.map(str::to_string),
        })
    }

    /// The operation and task id of the last record read.
    fn texts(&self) -> io::Result<(&str, Option<&str>)> {
        let text =
            |b| std::str::from_utf8(b).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e));
        let (op, id) = self.text.split_at(self.op_len);
        Ok((
            text(op)?,
            if self.head.named {
                Some(text(id)?)
            } else {
                None
            },
        ))
    }
}

/// The whole cross-check of `ops` (in log order) against `receipts` (line,
/// operation, task).
#[cfg(test)]
fn cross_check(ops: &[Op], receipts: &[(usize, &str, Option<&str>)]) -> CrossCheck {
    cross_check_within(ops, receipts, Limits::default()).unwrap()
}

#[cfg(test)]
fn cross_check_within(
    ops: &[Op],
    receipts: &[(usize, &str, Option<&str>)],
    limits: Limits,
) -> io::Result<CrossCheck> {
    let mut all = QueueReceipts {
        limits,
        ..QueueReceipts::default()
    };
    for &(line, op, id) in receipts {
        all.push(line, op, id);
    }
    let mut c = Checker::new(all);
    for op in ops {
        c.op(op.line, op.op, &op.task_id);
    }
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r<'a>(line: usize, op: &'a str, id: Option<&'a str>) -> (usize, &'a str, Option<&'a str>) {
        (line, op, id)
    }

    fn op(line: usize, op: OpKind, id: &str) -> Op {
        Op {
            line,
            op,
            task_id: id.into(),
        }
    }

    #[test]
    fn each_operation_takes_the_oldest_receipt_left_of_its_kind() {
        let refs = [
            r(1, "enqueue", Some("a")),
            r(2, "enqueue", Some("a")),
            r(3, "dequeue", Some("a")),
            r(4, "enqueue", None),
            r(5, "enqueue", Some("b")),
            r(6, "enqueue", Some("a")),
        ];
        let ops = [
            op(1, OpKind::Enqueue, "a"),
            op(2, OpKind::Dequeue, "a"),
            op(3, OpKind::Enqueue, "a"),
            op(4, OpKind::Dequeue, "a"),
            op(5, OpKind::Enqueue, "c"),
        ];
        let c = cross_check(&ops, &refs);
        assert_eq!((c.ops, c.queue_receipts), (5, 6));
        assert_eq!(
            c.receipt_missing,
            vec![op(4, OpKind::Dequeue, "a"), op(5, OpKind::Enqueue, "c")]
        );
        let orphans: Vec<usize> = c.receipts_without_op.iter().map(|o| o.line).collect();
        assert_eq!(orphans, vec![4, 5, 6]);
        assert!(!c.ok());
    }

    #[test]
    fn mismatches_past_the_listed_ones_are_counted() {
        let n = MAX_LISTED + 7;
        let refs: Vec<_> = (0..n).map(|i| r(i + 1, "enqueue", Some("x"))).collect();
        let ops: Vec<Op> = (0..n)
            .map(|i| op(i + 1, OpKind::Dequeue, &format!("t{i}")))
            .collect();
        let c = cross_check(&ops, &refs);
        assert_eq!(c.receipt_missing.len(), MAX_LISTED);
        assert_eq!(c.receipt_missing_omitted, 7);
        assert_eq!(c.missing_count(), n);
        assert_eq!(c.receipt_missing[0].line, 1);
        assert_eq!(c.receipts_without_op.len(), MAX_LISTED);
        assert_eq!(c.receipts_without_op_omitted, 7);
        assert_eq!(c.orphan_count(), n);
        assert_eq!(c.receipts_without_op[MAX_LISTED - 1].line, MAX_LISTED);
    }

    #[test]
    fn many_receipts_of_one_task_are_matched_in_linear_time() {
        // The previous pool removed the first of a vector per match: quadratic.
        let n = 200_000;
        let refs: Vec<_> = (0..n).map(|i| r(i + 1, "enqueue", Some("x"))).collect();
        let ops: Vec<Op> = (0..n).map(|i| op(i + 1, OpKind::Enqueue, "x")).collect();
        let c = cross_check(&ops, &refs);
        assert!(c.ok(), "{:?}", (c.missing_count(), c.orphan_count()));
        assert_eq!(c.ops, n);
    }

    /// The check as a pool of receipts per (operation, task), each operation taking
    /// the oldest left: slow and plain.
    fn model(ops: &[Op], receipts: &[(usize, &str, Option<&str>)]) -> (Vec<usize>, Vec<usize>) {
        let mut pool: Vec<(usize, &str, Option<&str>, bool)> =
            receipts.iter().map(|&(l, o, i)| (l, o, i, false)).collect();
        let mut missing = Vec::new();
        for op in ops {
            let take = pool
                .iter_mut()
                .find(|r| !r.3 && r.1 == op.op.as_str() && r.2 == Some(op.task_id.as_str()));
            match take {
                Some(r) => r.3 = true,
                None => missing.push(op.line),
            }
        }
        let orphans = pool.iter().filter(|r| !r.3).map(|r| r.0).collect();
        (missing, orphans)
    }

    /// The check of `ops` against `receipts` lists what [`model`] finds, and so
    /// does the check spilled within `limits`.
    fn agrees_with_the_plain_pool(
        ops: &[Op],
        receipts: &[ReceiptRef],
        limits: Limits,
    ) -> Result<(), proptest::test_runner::TestCaseError> {
        let c = cross_check(ops, receipts);
        let (missing, orphans) = model(ops, receipts);
        let got: Vec<usize> = c.receipt_missing.iter().map(|o| o.line).collect();
        proptest::prop_assert_eq!(got, missing);
        let got: Vec<usize> = c.receipts_without_op.iter().map(|o| o.line).collect();
        proptest::prop_assert_eq!(got, orphans);
        proptest::prop_assert_eq!((c.ops, c.queue_receipts), (ops.len(), receipts.len()));
        let spilled = cross_check_within(ops, receipts, limits).unwrap();
        proptest::prop_assert_eq!(spilled, c);
        Ok(())
    }

    /// Spills past `held` receipts into `partitions` parts.
    fn spilling(held: usize, partitions: usize) -> Limits {
        Limits {
            held,
            partitions,
            pairs: PARTITION_PAIRS,
        }
    }

    #[test]
    fn a_spilled_check_lists_the_earliest_mismatches_of_every_part() {
        let n = MAX_LISTED + 7;
        let refs: Vec<_> = (0..n)
            .map(|i| r(i + 1, "enqueue", Some(["x", "y", "z"][i % 3])))
            .collect();
        let ops: Vec<Op> = (0..n)
            .map(|i| op(i + 1, OpKind::Dequeue, &format!("t{i}")))
            .collect();
        let held = cross_check(&ops, &refs);
        // Seven parts: each offers its mismatches in its own line order.
        let spilled = cross_check_within(&ops, &refs, spilling(100, 7)).unwrap();
        assert!(
            spilled == held,
            "the spilled check differs from the held one"
        );
        assert_eq!(spilled.receipt_missing_omitted, 7);
        assert_eq!(spilled.receipts_without_op_omitted, 7);
        let lines: Vec<usize> = spilled.receipts_without_op.iter().map(|o| o.line).collect();
        assert_eq!(lines, (1..=MAX_LISTED).collect::<Vec<_>>());
    }

    #[test]
    fn a_spilled_part_with_too_many_pairs_fails_the_check() {
        let refs: Vec<_> = ["a", "b", "c", "d"]
            .iter()
            .enumerate()
            .map(|(i, id)| r(i + 1, "enqueue", Some(*id)))
            .collect();
        let limits = Limits {
            held: 1,
            partitions: 1,
            pairs: 3,
        };
        // The first operation names none of them: the check falls out of step,
        // and its one part counts four pairs.
        let ops = [op(1, OpKind::Enqueue, "z")];
        let err = cross_check_within(&ops, &refs, limits).unwrap_err();
        assert!(err.to_string().contains("split the receipts log"), "{err}");
        let c = cross_check_within(&ops, &refs, Limits { pairs: 4, ..limits }).unwrap();
        assert_eq!((c.orphan_count(), c.missing_count()), (4, 1));
        // In step to the end, nothing is counted: the receipts left are listed.
        let ops = [op(1, OpKind::Enqueue, "a")];
        let c = cross_check_within(&ops, &refs, limits).unwrap();
        assert_eq!((c.orphan_count(), c.missing_count()), (3, 0));
    }

    /// A spilled check in step takes each receipt as it comes and counts none; out
    /// of step from its first operation, it counts every one: the same result.
    #[test]
    fn a_spilled_check_in_step_or_not_agrees() {
        let refs: Vec<_> = (0..40)
            .map(|i| {
                r(
                    i + 1,
                    ["enqueue", "dequeue"][i % 2],
                    Some(["a", "b", "c"][i / 2 % 3]),
                )
            })
            .collect();
        let ops: Vec<Op> = refs
            .iter()
            .map(|&(line, o, id)| op(line, OpKind::parse(o).unwrap(), id.unwrap()))
            .collect();
        for cut in [0, 1, 17, 39, 40] {
            // A receipt dropped at `cut`: in step up to it.
            let mut edited = refs.clone();
            if cut < edited.len() {
                edited.remove(cut);
            }
            let held = cross_check(&ops, &edited);
            let spilled = cross_check_within(&ops, &edited, spilling(0, 3)).unwrap();
            assert_eq!(spilled, held, "a receipt dropped at {cut}");
            assert_eq!(held.missing_count(), usize::from(cut < 40), "{cut}");
        }
    }

    /// A receipt as [`cross_check`] takes it: line, operation, task.
    type ReceiptRef = (usize, &'static str, Option<&'static str>);

    /// Operations and receipts from generated (kind, task) pairs: three operation
    /// names (one no operation has) and four tasks.
    fn generated(ops: &[(u8, u8)], receipts: &[(u8, Option<u8>)]) -> (Vec<Op>, Vec<ReceiptRef>) {
        const NAMES: [&str; 3] = ["enqueue", "dequeue", "other"];
        const IDS: [&str; 4] = ["a", "b", "c", "d"];
        let ops = ops
            .iter()
            .enumerate()
            .map(|(i, &(k, id))| {
                let kind = if k == 0 {
                    OpKind::Enqueue
                } else {
                    OpKind::Dequeue
                };
                op(i + 1, kind, IDS[id as usize])
            })
            .collect();
        let receipts = receipts
            .iter()
            .enumerate()
            .map(|(i, &(k, id))| (i + 1, NAMES[k as usize], id.map(|id| IDS[id as usize])))
            .collect();
        (ops, receipts)
    }

    proptest::proptest! {
        /// A receipt's operation is its first `task-queue:` ref and its task its
        /// first `task:` ref, as [`Receipt::refs`] lists them, in any order.
        #[test]
        fn a_receipt_is_kept_as_its_first_refs_name_it(
            parts in proptest::collection::vec(0..10usize, 0..8),
        ) {
            const REFS: [&str; 10] = [
                "task-queue:enqueue", " task-queue:dequeue ", "task:a", "task:b ",
                "", "  ", "x:y", "task-queue:", "task:", "tasks:c",
            ];
            let refs = parts.iter().map(|&i| REFS[i]).collect::<Vec<_>>().join(",");
            let r = Receipt::new(7, [("kind", ":observation"), ("refs", refs.as_str())], false);
            let listed = r.refs();
            let op = listed.iter().find_map(|x| x.strip_prefix("task-queue:"));
            let task = listed.iter().find_map(|x| x.strip_prefix("task:"));
            let mut kept = QueueReceipts::default();
            kept.add(&r);
            proptest::prop_assert_eq!(kept.len(), usize::from(op.is_some()));
            if let Some(op) = op {
                proptest::prop_assert_eq!(kept.key(0), (op, task.unwrap_or("")));
                proptest::prop_assert_eq!(kept.refs[0].id_len == NO_TASK, task.is_none());
            }
        }

        /// Receipts written after their operations, as writers do, then edited
        /// in a few places (one dropped, one added, two swapped, one naming no
        /// task): the check in step, falling out of it, agrees with the plain pool.
        #[test]
        fn agrees_with_the_plain_pool_when_receipts_follow_their_operations(
            ops in proptest::collection::vec((0..2u8, 0..5u8), 0..40),
            edits in proptest::collection::vec(
                (0..48usize, 0..4u8, 0..3u8, proptest::option::of(0..5u8)),
                0..4,
            ),
            held in 0..64usize,
            partitions in 1..5usize,
        ) {
            const NAMES: [&str; 3] = ["enqueue", "dequeue", "other"];
            const IDS: [&str; 5] = ["a", "b", "c", "d", ""];
            let kind = |k: u8| if k == 0 { OpKind::Enqueue } else { OpKind::Dequeue };
            let mut written: Vec<(&str, Option<&str>)> = ops
                .iter()
                .map(|&(k, id)| (kind(k).as_str(), Some(IDS[id as usize])))
                .collect();
            let ops: Vec<Op> = ops
                .iter()
                .enumerate()
                .map(|(i, &(k, id))| op(i + 1, kind(k), IDS[id as usize]))
                .collect();
            for &(at, edit, name, id) in &edits {
                let at = at % (written.len() + 1);
                match edit {
                    0 if at < written.len() => {
                        written.remove(at);
                    }
                    1 => written.insert(at, (NAMES[name as usize], id.map(|i| IDS[i as usize]))),
                    2 if at + 1 < written.len() => written.swap(at, at + 1),
                    3 if at < written.len() => written[at].1 = None,
                    _ => {}
                }
            }
            let receipts: Vec<ReceiptRef> = written
                .iter()
                .enumerate()
                .map(|(i, &(o, id))| (i + 1, o, id))
                .collect();
            agrees_with_the_plain_pool(&ops, &receipts, spilling(held, partitions))?;
        }

        #[test]
        fn agrees_with_the_plain_pool_held_or_spilled(
            ops in proptest::collection::vec((0..2u8, 0..4u8), 0..40),
            receipts in proptest::collection::vec((0..3u8, proptest::option::of(0..4u8)), 0..40),
            held in 0..8usize,
            partitions in 1..5usize,
        ) {
            let (ops, receipts) = generated(&ops, &receipts);
            agrees_with_the_plain_pool(&ops, &receipts, spilling(held, partitions))?;
        }
    }
}
