//! The queue/receipt cross-check (SPEC §4.3): every enqueue and dequeue must have a
//! receipt whose refs hold `task-queue:<op>` and `task:<id>`; task-queue receipts
//! that match no operation are listed too. A crash between appending an event and
//! its receipt shows up here as `receipt_missing`, so it is never silently lost.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Op;
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
    /// Operations with no receipt (`receipt_missing`).
    pub receipt_missing: Vec<Op>,
    /// Task-queue receipts that match no operation.
    pub receipts_without_op: Vec<OrphanReceipt>,
}

impl CrossCheck {
    pub fn ok(&self) -> bool {
        self.receipt_missing.is_empty() && self.receipts_without_op.is_empty()
    }
}

/// The queue operation a receipt is about, if any: (`enqueue`|`dequeue`, task id).
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

pub fn cross_check(ops: &[Op], receipts: &[QueueRef]) -> CrossCheck {
    let mut pool: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    let mut out = CrossCheck {
        ops: ops.len(),
        ..CrossCheck::default()
    };
    for r in receipts {
        let QueueRef { line, op, task_id } = r.clone();
        out.queue_receipts += 1;
        match task_id {
            Some(id) => pool.entry((op, id)).or_default().push(line),
            None => out.receipts_without_op.push(OrphanReceipt {
                line,
                op,
                task_id: None,
            }),
        }
    }
    for op in ops {
        let key = (op.op.as_str().to_string(), op.task_id.clone());
        match pool.get_mut(&key) {
            Some(lines) if !lines.is_empty() => {
                lines.remove(0);
            }
            _ => out.receipt_missing.push(op.clone()),
        }
    }
    for ((op, id), lines) in pool {
        for line in lines {
            out.receipts_without_op.push(OrphanReceipt {
                line,
                op: op.clone(),
                task_id: Some(id.clone()),
            });
        }
    }
    out.receipts_without_op.sort_by_key(|o| o.line);
    out
}
