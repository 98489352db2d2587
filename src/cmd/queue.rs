//! `lith queue enqueue | dequeue | replay`.

use anyhow::Context;

use crate::cli::{GlobalArgs, QueueCommand, QueueFileArgs, ReplayArgs};
use crate::clock::Clock;
use crate::exit;
use crate::queue::writer::{self, EnqueueRequest, QueueFiles};
use crate::queue::{self, FindingKind};
use crate::receipts::{self, Contract};

fn files(g: &GlobalArgs, a: &QueueFileArgs) -> QueueFiles {
    QueueFiles {
        log: a.log.clone(),
        receipts: a.receipts.clone(),
        lock: a.lock.mode(),
        host: a.host.clone().unwrap_or_else(crate::bundle::lock::hostname),
        manifest: crate::fsutil::slash_path(&g.manifest),
    }
}

fn default_owner(o: &Option<String>) -> String {
    o.clone()
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "lith".into())
}

pub fn execute(g: &GlobalArgs, q: &QueueCommand) -> anyhow::Result<i32> {
    let clock = Clock::from_env().map_err(anyhow::Error::msg)?;
    let result = match q {
        QueueCommand::Replay(a) => return replay(g, a),
        QueueCommand::Enqueue(a) => {
            let payload: serde_json::Value = serde_json::from_str(&a.payload)
                .map_err(|e| {
                    crate::exit::Usage(format!(
                        "--payload is not JSON: {e}\n  tip: quote it for the shell, e.g. --payload '{{\"ref\":\"main\"}}'"
                    ))
                })?;
            let req = EnqueueRequest {
                kind: a.kind.clone(),
                dedupe_key: a.dedupe_key.clone(),
                payload,
                owner: default_owner(&a.owner),
                refs: a.refs.clone(),
            };
            writer::enqueue(&files(g, &a.files), &clock, &req)
        }
        QueueCommand::Dequeue(a) => {
            writer::dequeue(&files(g, &a.files), &clock, &default_owner(&a.owner))
        }
    };
    match result {
        Ok(out) => {
            if g.json {
                crate::cmd::print_json_streamed(&out)?;
            } else if !g.quiet {
                let id = out.task.field("id").unwrap_or_else(|| "?".into());
                let what = match (out.op, out.deduped) {
                    (_, true) => "already pending (deduped; nothing written)",
                    ("enqueue", _) => "enqueued",
                    _ => "dequeued",
                };
                let mut s = format!("{}: {what}\n", crate::term::one_line(&id));
                if let Some(n) = out.torn_tail_moved {
                    s.push_str(&format!("  a torn tail of {n} bytes left by a crashed writer was moved to the .torn file\n"));
                }
                crate::cmd::print_stdout(&s)?;
            }
            Ok(exit::OK)
        }
        Err(e) => {
            if g.json && matches!(e, writer::WriteError::EmptyQueue(_)) {
                crate::cmd::print_json(&serde_json::json!({"error": "empty_queue"}))?;
            }
            crate::cmd::print_error_alone(&e);
            Ok(e.exit_code())
        }
    }
}

fn replay(g: &GlobalArgs, a: &ReplayArgs) -> anyhow::Result<i32> {
    // Never green on nothing: a log that is not there is a finding, not an empty queue.
    if let Err(e) = std::fs::symlink_metadata(&a.log)
        && e.kind() == std::io::ErrorKind::NotFound
    {
        crate::term::eprint(&format!(
            "error: {}: queue.input_missing: the queue log does not exist; check the path (nothing was replayed)",
            crate::fsutil::slash_path(&a.log)
        ));
        if g.json {
            crate::cmd::print_json(&serde_json::json!({"error": "queue.input_missing"}))?;
        }
        return Ok(exit::PARTIAL);
    }
    // The task-queue receipts first: replay cross-checks each operation as it
    // accepts it.
    let replay = match &a.receipts {
        Some(r) => {
            let (file, _) = crate::fsutil::open_regular(r)
                .map_err(|e| anyhow::anyhow!("{}: {e}", r.display()))?;
            let mut refs = queue::crosscheck::QueueReceipts::default();
            receipts::check_reader(file, &Contract::default(), |rec| refs.add(&rec))
                .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", r.display()))?;
            queue::Replay::checked(refs)
        }
        None => queue::Replay::new(),
    };
    let mut state = queue::replay_file(&a.log, replay)
        .with_context(|| format!("{}: cannot read the queue log", a.log.display()))?;
    if a.strict
        && let Some(first) = state.findings.iter().find(|f| {
            matches!(
                f.kind,
                FindingKind::CorruptLine | FindingKind::LineTooLong | FindingKind::TornTail
            )
        })
    {
        crate::term::eprint(&format!(
            "error: {}:{}: {}: {}",
            a.log.display(),
            first.line,
            match first.kind {
                FindingKind::TornTail => "torn_tail",
                FindingKind::LineTooLong => "line_too_long",
                _ => "corrupt_line",
            },
            first.message
        ));
        return Ok(exit::RUNTIME_ERROR);
    }
    let cross = state
        .cross_check()
        .transpose()
        .context("cannot complete the receipt cross-check")?;
    let mut code = state.exit_code();
    if cross.as_ref().is_some_and(|c| !c.ok()) {
        code = exit::combine(code, exit::PARTIAL);
    }
    let log = crate::fsutil::slash_path(&a.log);
    let state_sha256 = state
        .state_sha256()
        .with_context(|| format!("{}: cannot read a pending task back", a.log.display()))?;
    if g.json {
        // Keys in order, as a JSON object of the same fields would print them; the
        // pending tasks stream through, each read back in turn.
        #[derive(serde::Serialize)]
        struct Out<'a> {
            counters: serde_json::Value,
            #[serde(skip_serializing_if = "Option::is_none")]
            cross_check: Option<serde_json::Value>,
            dedupe_index: queue::DedupeJson<'a>,
            exit_code: i32,
            findings: serde_json::Value,
            #[serde(skip_serializing_if = "crate::wire::zero")]
            findings_omitted: usize,
            log: &'a str,
            pending: queue::PendingJson<'a>,
            state_sha256: &'a str,
        }
        crate::cmd::print_json_streamed(&Out {
            counters: serde_json::to_value(&state.counters)?,
            cross_check: cross.as_ref().map(serde_json::to_value).transpose()?,
            dedupe_index: state.dedupe_json(),
            exit_code: code,
            findings: serde_json::to_value(&state.findings)?,
            findings_omitted: state.findings_omitted,
            log: &log,
            pending: state.pending_json(),
            state_sha256: &state_sha256,
        })
        .with_context(|| format!("{}: cannot write the replay", a.log.display()))?;
    } else if !g.quiet {
        let c = &state.counters;
        let mut s = format!(
            "{}: {} event(s), {} pending, state_sha256 {}\n  duplicate_enqueue {} · orphan_dequeue {} · corrupt_line {} · line_too_long {} · torn_tail {}\n",
            log,
            c.events,
            state.pending().count(),
            state_sha256,
            c.duplicate_enqueue,
            c.orphan_dequeue,
            c.corrupt_line,
            c.line_too_long,
            c.torn_tail
        );
        for f in state.findings.iter().take(SHOWN) {
            s.push_str(&format!(
                "  line {}: {}\n",
                f.line,
                crate::term::one_line(&f.message)
            ));
        }
        more(
            &mut s,
            state.findings.len() + state.findings_omitted,
            "finding(s)",
        );
        if let Some(c) = &cross {
            s.push_str(&format!(
                "  receipts: {} queue receipt(s) for {} op(s); {} op(s) without a receipt, {} receipt(s) without an op\n",
                c.queue_receipts,
                c.ops,
                c.missing_count(),
                c.orphan_count()
            ));
            for m in c.receipt_missing.iter().take(SHOWN) {
                s.push_str(&format!(
                    "  receipt_missing: line {} {} {}\n",
                    m.line,
                    m.op,
                    crate::term::one_line(&m.task_id)
                ));
            }
            more(&mut s, c.missing_count(), "op(s) without a receipt");
        }
        crate::cmd::print_stdout(&s)?;
    }
    // The process ends with this command: freeing a million pending tasks one by one
    // would cost a tenth of the replay for nothing.
    std::mem::forget(state);
    Ok(code)
}

/// Findings and mismatches the text output of `queue replay` prints of each list.
const SHOWN: usize = 20;

/// "… N more" under a list of `total` items that shows [`SHOWN`].
fn more(s: &mut String, total: usize, what: &str) {
    if total > SHOWN {
        s.push_str(&format!(
            "  … {} more {what}; --json lists the first {}\n",
            total - SHOWN,
            crate::queue::MAX_FINDINGS
        ));
    }
}
