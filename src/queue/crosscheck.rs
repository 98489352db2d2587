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

/// What the cross-check needs of a task-queue receipt: its line, its operation and
/// the task it names (as replay holds task ids: a long one by its digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRef {
    pub line: usize,
    pub op: String,
    pub task_id: Option<String>,
}

/// The queue reference of a receipt, when it is a task-queue receipt.
pub fn queue_ref(r: &Receipt) -> Option<QueueRef> {
    let refs = r.refs();
    let op = refs.iter().find_map(|x| x.strip_prefix("task-queue:"))?;
    let task_id = refs
        .iter()
        .find_map(|x| x.strip_prefix("task:"))
        .map(|id| super::held(id).into_owned());
    Some(QueueRef {
        line: r.line,
        op: op.to_string(),
        task_id,
    })
}

/// The cross-check in progress: each operation replay accepts takes the oldest
/// receipt of the same operation and task that no earlier operation took.
#[derive(Debug, Clone, Default)]
pub struct Checker {
    /// The task-queue receipts, in log order.
    refs: Vec<QueueRef>,
    /// Indexes into `refs` of the receipts that name a task, sorted by (operation,
    /// task) and, within one, by line.
    order: Vec<usize>,
    /// At the first position of each (operation, task) in `order`: how many of its
    /// receipts operations have taken.
    taken: Vec<usize>,
    out: CrossCheck,
}

impl Checker {
    /// A check against these task-queue receipts (in log order).
    pub fn new(refs: Vec<QueueRef>) -> Checker {
        let mut order: Vec<usize> = (0..refs.len())
            .filter(|&i| refs[i].task_id.is_some())
            .collect();
        // Stable: the receipts of one (operation, task) stay in line order.
        order.sort_by(|&a, &b| key(&refs[a]).cmp(&key(&refs[b])));
        Checker {
            taken: vec![0; order.len()],
            out: CrossCheck {
                queue_receipts: refs.len(),
                ..CrossCheck::default()
            },
            order,
            refs,
        }
    }

    /// One operation that replay accepted, at `line` of the queue log.
    pub fn op(&mut self, line: usize, op: OpKind, task_id: &str) {
        self.out.ops += 1;
        let want = (op.as_str(), task_id);
        let start = self.order.partition_point(|&i| key(&self.refs[i]) < want);
        let next = start + self.taken.get(start).copied().unwrap_or(0);
        if next < self.order.len() && key(&self.refs[self.order[next]]) == want {
            self.taken[start] += 1;
        } else if self.out.receipt_missing.len() < MAX_LISTED {
            self.out.receipt_missing.push(Op {
                line,
                op,
                task_id: task_id.to_string(),
            });
        } else {
            self.out.receipt_missing_omitted += 1;
        }
    }

    /// The result: the receipts no operation took, in line order.
    pub fn finish(self) -> CrossCheck {
        let Checker {
            refs,
            order,
            taken,
            mut out,
        } = self;
        let mut matched = vec![false; refs.len()];
        let mut start = 0;
        while start < order.len() {
            let k = key(&refs[order[start]]);
            let end = start + order[start..].partition_point(|&i| key(&refs[i]) == k);
            for &i in &order[start..start + taken[start]] {
                matched[i] = true;
            }
            start = end;
        }
        for (r, _) in refs.into_iter().zip(matched).filter(|(_, m)| !m) {
            if out.receipts_without_op.len() < MAX_LISTED {
                out.receipts_without_op.push(OrphanReceipt {
                    line: r.line,
                    op: r.op,
                    task_id: r.task_id,
                });
            } else {
                out.receipts_without_op_omitted += 1;
            }
        }
        out
    }
}

fn key(r: &QueueRef) -> (&str, &str) {
    (&r.op, r.task_id.as_deref().unwrap_or_default())
}

/// The whole cross-check of `ops` (in log order) against `receipts`.
pub fn cross_check(ops: &[Op], receipts: &[QueueRef]) -> CrossCheck {
    let mut c = Checker::new(receipts.to_vec());
    for op in ops {
        c.op(op.line, op.op, &op.task_id);
    }
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(line: usize, op: &str, id: Option<&str>) -> QueueRef {
        QueueRef {
            line,
            op: op.into(),
            task_id: id.map(Into::into),
        }
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
        let refs: Vec<QueueRef> = (0..n).map(|i| r(i + 1, "enqueue", Some("x"))).collect();
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
        let refs: Vec<QueueRef> = (0..n).map(|i| r(i + 1, "enqueue", Some("x"))).collect();
        let ops: Vec<Op> = (0..n).map(|i| op(i + 1, OpKind::Enqueue, "x")).collect();
        let c = cross_check(&ops, &refs);
        assert!(c.ok(), "{:?}", (c.missing_count(), c.orphan_count()));
        assert_eq!(c.ops, n);
    }
}
