//! The queue and receipts sections of the report: what `lith build` finds in the
//! manifest's `(queue …)` and `(receipts …)` logs, as findings with severities.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::finding::{Code, Finding, Severity};
use crate::lith::Manifest;
use crate::queue::crosscheck::{CrossCheck, QueueReceipts};
use crate::queue::{self, FindingKind as QueueFindingKind, Summary};
use crate::receipts::{self, Check, Contract, FindingKind, Receipt};

#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct ReceiptsSection {
    pub configured: bool,
    pub log: Option<String>,
    pub contract: Option<String>,
    pub check: Option<Check>,
    pub findings: Vec<Finding>,
    /// The newest receipts (at most [`MAX_ROWS`]), for the receipts page.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<Receipt>,
    /// Older receipts that `rows` leaves out.
    #[serde(default, skip_serializing_if = "crate::wire::zero")]
    pub rows_omitted: usize,
}

/// The receipts a report keeps for its pages: the newest ones.
pub const MAX_ROWS: usize = 10_000;

#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct QueueSection {
    pub configured: bool,
    pub log: Option<String>,
    pub replay: Option<Summary>,
    /// Present when receipts are configured too.
    pub cross_check: Option<CrossCheck>,
    pub findings: Vec<Finding>,
}

/// The severity a receipts finding kind deserves in a build: an unknown kind is
/// contract drift worth a look; anything that breaks the line's shape falls short.
fn receipt_severity(k: FindingKind) -> Severity {
    match k {
        FindingKind::UnknownKind => Severity::Warning,
        _ => Severity::Partial,
    }
}

/// The section of a receipts log that could not be read: an error, nothing checked.
fn unreadable_log(mut s: ReceiptsSection, log: &str, e: impl std::fmt::Display) -> ReceiptsSection {
    s.findings.push(
        Finding::new(
            Code::ReceiptsLogUnreadable,
            Severity::Error,
            format!("cannot read: {e}"),
        )
        .at(log.to_string()),
    );
    s
}

/// And, when the log was read, its task-queue receipts for the queue's cross-check.
pub fn evaluate_receipts(manifest: &Manifest) -> (ReceiptsSection, Option<QueueReceipts>) {
    let mut queue_refs = QueueReceipts::default();
    let s = read_receipts(manifest, &mut queue_refs);
    let refs = s.check.is_some().then_some(queue_refs);
    (s, refs)
}

fn read_receipts(manifest: &Manifest, queue_refs: &mut QueueReceipts) -> ReceiptsSection {
    let Some(cfg) = &manifest.receipts else {
        return ReceiptsSection::default();
    };
    let mut s = ReceiptsSection {
        configured: true,
        log: Some(cfg.log.clone()),
        contract: cfg.contract.clone(),
        ..ReceiptsSection::default()
    };
    let contract = match &cfg.contract {
        Some(c) => match Contract::load(&manifest.resolve(c)) {
            Ok(mut contract) => {
                contract.source = c.clone();
                contract
            }
            Err(e) => {
                s.findings.push(
                    Finding::new(
                        Code::ReceiptsContractUnreadable,
                        Severity::Error,
                        e.to_string(),
                    )
                    .at(c.clone()),
                );
                return s;
            }
        },
        None => Contract::default(),
    };
    let file = match crate::fsutil::open_regular(&manifest.resolve(&cfg.log)) {
        Ok((f, _)) => f,
        Err(crate::fsutil::JsonReadError::NotFound) => {
            s.findings.push(
                Finding::new(
                    Code::ReceiptsInputMissing,
                    Severity::Partial,
                    "the configured receipts log does not exist; nothing was checked",
                )
                .at(cfg.log.clone()),
            );
            return s;
        }
        Err(e) => return unreadable_log(s, &cfg.log, e),
    };
    // Read line by line: the newest receipts kept for the pages, the task-queue
    // ones for the cross-check, the rest counted.
    let mut rows = std::collections::VecDeque::new();
    let read = receipts::check_reader(file, &contract, |r| {
        if rows.len() == MAX_ROWS {
            rows.pop_front();
            s.rows_omitted += 1;
        }
        queue_refs.add(&r);
        rows.push_back(r);
    });
    let check = match read {
        Ok(check) => check,
        Err(e) => return unreadable_log(s, &cfg.log, e),
    };
    for (&kind, &(n, first)) in &check.by_kind {
        s.findings.push(
            Finding::new(
                kind.code(),
                receipt_severity(kind),
                format!("{n} finding(s) of this kind; the first at line {first}"),
            )
            .at(cfg.log.clone())
            .at_line(first as u64, None),
        );
    }
    s.rows = rows.into();
    s.check = Some(check);
    s
}

/// The queue section; the receipts section hands over its task-queue receipts for
/// the cross-check.
pub fn evaluate_queue(
    manifest: &Manifest,
    receipts: &ReceiptsSection,
    queue_refs: Option<QueueReceipts>,
) -> QueueSection {
    let Some(cfg) = &manifest.queue else {
        return QueueSection::default();
    };
    let mut s = QueueSection {
        configured: true,
        log: Some(cfg.log.clone()),
        ..QueueSection::default()
    };
    let path = manifest.resolve(&cfg.log);
    if std::fs::symlink_metadata(&path).is_err() {
        s.findings.push(
            Finding::new(
                Code::QueueInputMissing,
                Severity::Partial,
                "the configured queue log does not exist; nothing was replayed",
            )
            .at(cfg.log.clone()),
        );
    }
    let replay = match queue_refs {
        Some(refs) => queue::Replay::checked(refs),
        None => queue::Replay::new(),
    };
    let mut state = match queue::replay_file(&path, replay) {
        Ok(st) => st,
        Err(e) => {
            s.findings.push(
                Finding::new(
                    Code::QueueLogUnreadable,
                    Severity::Error,
                    format!("cannot read: {e}"),
                )
                .at(cfg.log.clone()),
            );
            return s;
        }
    };
    // One finding per kind: its count (the counters count findings past the listed
    // ones too) and its first line (the first of each kind is always listed).
    let mut tally: BTreeMap<Code, (usize, usize, Severity)> = BTreeMap::new();
    let c = &state.counters;
    for f in &state.findings {
        let (code, sev, n) = match f.kind {
            QueueFindingKind::CorruptLine => {
                (Code::QueueCorruptLine, Severity::Partial, c.corrupt_line)
            }
            QueueFindingKind::LineTooLong => {
                (Code::QueueLineTooLong, Severity::Partial, c.line_too_long)
            }
            QueueFindingKind::TornTail => (Code::QueueTornTail, Severity::Warning, c.torn_tail),
            QueueFindingKind::DuplicateEnqueue => (
                Code::QueueDuplicateEnqueue,
                Severity::Partial,
                c.duplicate_enqueue,
            ),
            QueueFindingKind::OrphanDequeue => (
                Code::QueueOrphanDequeue,
                Severity::Partial,
                c.orphan_dequeue,
            ),
        };
        tally.entry(code).or_insert((n, f.line, sev));
    }
    for (code, (n, first, sev)) in tally {
        s.findings.push(
            Finding::new(code, sev, format!("{n} line(s); the first is line {first}"))
                .at(cfg.log.clone())
                .at_line(first as u64, None),
        );
    }
    match state.cross_check() {
        Some(Ok(cc)) => cross_checked(&mut s, cc, cfg, receipts),
        Some(Err(e)) => s.findings.push(
            Finding::new(
                Code::ReceiptsLogUnreadable,
                Severity::Error,
                format!("cannot complete the queue's receipt cross-check: {e}"),
            )
            .at(receipts.log.clone().unwrap_or_default()),
        ),
        None => {}
    }
    match state.summary(&cfg.log) {
        Ok(summary) => s.replay = Some(summary),
        Err(e) => s.findings.push(
            Finding::new(
                Code::QueueLogUnreadable,
                Severity::Error,
                format!("cannot read a pending task back: {e}"),
            )
            .at(cfg.log.clone()),
        ),
    }
    s
}

/// The cross-check's findings: one per kind of mismatch, with its count and first.
fn cross_checked(
    s: &mut QueueSection,
    cc: CrossCheck,
    cfg: &crate::lith::manifest::QueueConfig,
    receipts: &ReceiptsSection,
) {
    {
        if !cc.receipt_missing.is_empty() {
            let first = &cc.receipt_missing[0];
            s.findings.push(
                Finding::new(
                    Code::QueueReceiptMissing,
                    Severity::Partial,
                    format!(
                        "{} queue operation(s) have no receipt; the first is the {} of {} at line {}",
                        cc.missing_count(),
                        first.op,
                        first.task_id,
                        first.line
                    ),
                )
                .at(cfg.log.clone())
                .at_line(first.line as u64, None),
            );
        }
        if !cc.receipts_without_op.is_empty() {
            s.findings.push(
                Finding::new(
                    Code::QueueReceiptWithoutOp,
                    Severity::Partial,
                    format!(
                        "{} task-queue receipt(s) match no queue operation; the first is at line {}",
                        cc.orphan_count(),
                        cc.receipts_without_op[0].line
                    ),
                )
                .at(receipts.log.clone().unwrap_or_default())
                .at_line(cc.receipts_without_op[0].line as u64, None),
            );
        }
        s.cross_check = Some(cc);
    }
}
