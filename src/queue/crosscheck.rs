//! The queue/receipt cross-check (SPEC §4.3): every enqueue and dequeue must have a
//! receipt whose refs hold `task-queue:<op>` and `task:<id>`; task-queue receipts
//! that match no operation are listed too. A crash between appending an event and
//! its receipt shows up here as `receipt_missing`, so it is never silently lost.
//!
//! The check runs as replay accepts each operation ([`Checker`]): it keeps the
//! receipts' references and a cursor per (operation, task), never a record per
//! event, and lists at most [`MAX_LISTED`] of each kind of mismatch.

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
/// operation and task id (as replay holds task ids: a long one by its digest), the
/// texts one after another in one string. A few dozen bytes a receipt.
#[derive(Debug, Clone, Default)]
pub struct QueueReceipts {
    text: String,
    refs: Vec<Ref>,
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
        let refs = r.refs();
        if let Some(op) = refs.iter().find_map(|x| x.strip_prefix("task-queue:")) {
            let task_id = refs.iter().find_map(|x| x.strip_prefix("task:"));
            self.push(r.line, op, task_id.map(super::held).as_deref());
        }
    }

    /// Keeps a task-queue receipt: its line, operation and task id (as held).
    pub fn push(&mut self, line: usize, op: &str, task_id: Option<&str>) {
        let op = super::held(op);
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

    pub fn len(&self) -> usize {
        self.refs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.refs.is_empty()
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
#[derive(Debug, Clone, Default)]
pub struct Checker {
    receipts: QueueReceipts,
    /// The receipts that name a task, sorted by (operation, task) and, within one,
    /// by line.
    order: Vec<u32>,
    /// At the first position of each (operation, task) in `order`: how many of its
    /// receipts operations have taken.
    taken: Vec<u32>,
    out: CrossCheck,
}

impl Checker {
    /// A check against these task-queue receipts.
    pub fn new(receipts: QueueReceipts) -> Checker {
        let mut order: Vec<u32> = (0..receipts.len() as u32)
            .filter(|&i| receipts.refs[i as usize].id_len != NO_TASK)
            .collect();
        // Stable: the receipts of one (operation, task) stay in line order.
        order.sort_by(|&a, &b| receipts.key(a).cmp(&receipts.key(b)));
        Checker {
            taken: vec![0; order.len()],
            out: CrossCheck {
                queue_receipts: receipts.len(),
                ..CrossCheck::default()
            },
            order,
            receipts,
        }
    }

    /// One operation that replay accepted, at `line` of the queue log.
    pub fn op(&mut self, line: usize, op: OpKind, task_id: &str) {
        self.out.ops += 1;
        let want = (op.as_str(), task_id);
        let r = &self.receipts;
        let start = self.order.partition_point(|&i| r.key(i) < want);
        let next = start + self.taken.get(start).copied().unwrap_or(0) as usize;
        if next < self.order.len() && r.key(self.order[next]) == want {
            self.taken[start] += 1;
        } else {
            let out = &mut self.out;
            listed(
                &mut out.receipt_missing,
                &mut out.receipt_missing_omitted,
                || Op {
                    line,
                    op,
                    task_id: task_id.to_string(),
                },
            );
        }
    }

    /// The result: the receipts no operation took, in line order.
    pub fn finish(self) -> CrossCheck {
        let Checker {
            receipts,
            order,
            taken,
            mut out,
        } = self;
        let mut matched = vec![false; receipts.len()];
        let mut start = 0;
        while start < order.len() {
            let k = receipts.key(order[start]);
            let end = start + order[start..].partition_point(|&i| receipts.key(i) == k);
            for &i in &order[start..start + taken[start] as usize] {
                matched[i as usize] = true;
            }
            start = end;
        }
        for (i, _) in matched.iter().enumerate().filter(|(_, m)| !**m) {
            listed(
                &mut out.receipts_without_op,
                &mut out.receipts_without_op_omitted,
                || receipts.orphan(i),
            );
        }
        out
    }
}

/// Lists `item()` while fewer than [`MAX_LISTED`] are listed; counts it in
/// `omitted` otherwise.
fn listed<T>(list: &mut Vec<T>, omitted: &mut usize, item: impl FnOnce() -> T) {
    if list.len() < MAX_LISTED {
        list.push(item());
    } else {
        *omitted += 1;
    }
}

/// The whole cross-check of `ops` (in log order) against `receipts` (line,
/// operation, task).
#[cfg(test)]
fn cross_check(ops: &[Op], receipts: &[(usize, &str, Option<&str>)]) -> CrossCheck {
    let mut all = QueueReceipts::default();
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

    proptest::proptest! {
        #[test]
        fn agrees_with_the_plain_pool(
            ops in proptest::collection::vec((0..2u8, 0..4u8), 0..40),
            receipts in proptest::collection::vec((0..3u8, proptest::option::of(0..4u8)), 0..40),
        ) {
            let names = ["enqueue", "dequeue", "other"];
            let ids = ["a", "b", "c", "d"];
            let ops: Vec<Op> = ops
                .iter()
                .enumerate()
                .map(|(i, &(k, id))| {
                    op(i + 1, if k == 0 { OpKind::Enqueue } else { OpKind::Dequeue }, ids[id as usize])
                })
                .collect();
            let receipts: Vec<(usize, &str, Option<&str>)> = receipts
                .iter()
                .enumerate()
                .map(|(i, &(k, id))| (i + 1, names[k as usize], id.map(|id| ids[id as usize])))
                .collect();
            let c = cross_check(&ops, &receipts);
            let (missing, orphans) = model(&ops, &receipts);
            let got: Vec<usize> = c.receipt_missing.iter().map(|o| o.line).collect();
            proptest::prop_assert_eq!(got, missing);
            let got: Vec<usize> = c.receipts_without_op.iter().map(|o| o.line).collect();
            proptest::prop_assert_eq!(got, orphans);
            proptest::prop_assert_eq!((c.ops, c.queue_receipts), (ops.len(), receipts.len()));
        }
    }
}
