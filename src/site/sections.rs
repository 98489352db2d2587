//! The queue and receipts pages.

use std::collections::BTreeMap;

use askama::Template;
use serde_json::Value;

use super::room::{fill, html_len, keep_within};
use super::{FindingRow, Shell, page_file};
use crate::bundle::index::truncate;
use crate::receipts::FindingKind;
use crate::report::Report;

/// Receipts per page of the receipts list, at most.
pub const RECEIPTS_PER_PAGE: usize = 500;
/// The bytes of rows a receipts page holds, at most: 500 receipts of long fields
/// made pages of 3.3 MB. A page with fewer rows links the next as usual.
const RECEIPT_ROWS_ROOM: usize = 600_000;
/// The markup of a receipt's row besides its cells' text (its attributes and
/// labels), at most.
const RECEIPT_ROW_MARKUP: usize = 512;

/// A receipt's row, its cells cut.
fn receipt_row(
    r: &crate::receipts::Receipt,
    by_line: &BTreeMap<usize, Vec<(FindingKind, &str)>>,
) -> ReceiptRow {
    let refs = r.refs();
    ReceiptRow {
        line: r.line,
        ts: truncate(r.get("ts").unwrap_or(""), KEY_CHARS),
        kind: truncate(r.get("kind").unwrap_or(""), KEY_CHARS),
        origin: truncate(r.get("origin").unwrap_or(""), KEY_CHARS),
        owner: truncate(r.get("owner").unwrap_or(""), KEY_CHARS),
        dod: truncate(r.get("dod").unwrap_or(""), CELL),
        refs: refs.iter().take(4).map(|x| truncate(x, 80)).collect(),
        refs_more: refs.len().saturating_sub(4),
        findings: by_line
            .get(&r.line)
            .map(|ks| {
                ks.iter()
                    .map(|(k, message)| {
                        (
                            if *k == FindingKind::UnknownKind {
                                "warning"
                            } else {
                                "partial"
                            },
                            k.as_str(),
                            truncate(message, CELL),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The bytes a receipt's row takes on its page, at most: kind, origin and owner
/// are also its filter attributes.
fn receipt_row_cost(r: &ReceiptRow) -> usize {
    html_len(&r.ts)
        + 2 * (html_len(&r.kind) + html_len(&r.origin) + html_len(&r.owner))
        + html_len(&r.dod)
        + r.refs.iter().map(|x| html_len(x) + 16).sum::<usize>()
        + r.findings
            .iter()
            .map(|f| html_len(&f.2) + 128)
            .sum::<usize>()
        + RECEIPT_ROW_MARKUP
}

/// Characters of a receipt's ts, kind, origin and owner shown, and of a filter's
/// option (the same, so that an option matches its rows).
const KEY_CHARS: usize = 60;
/// Lines with findings listed on every receipts page, at most, and their bytes.
const LINE_FINDINGS_LISTED: usize = 200;
const LINE_FINDINGS_ROOM: usize = 100_000;
/// Items the queue page shows of each of its lists (pending tasks, operations
/// without a receipt, receipts without an operation).
const QUEUE_LIST_SHOWN: usize = 1000;
/// Values longer than this are shortened on the pages (report.json has them whole).
const CELL: usize = 240;
/// Options offered per filter.
const OPTIONS: usize = 100;

/// Entries listed on the Changes page per table (report.json has them all).
const CHANGES_SHOWN: usize = 1000;
/// Digest changes shown on a row of the Changes page, and on the page in all: a
/// nightly that rebuilt every artifact made a page of 4 MB with all 13 of each run.
const DIGESTS_SHOWN_PER_ROW: usize = 3;
const DIGESTS_SHOWN: usize = 1000;
/// The markup of a row of the Changes page besides its values' text, at most.
const CHANGE_ROW_MARKUP: usize = 768;

pub struct ChangeRow {
    pub kind: &'static str,
    pub class: &'static str,
    pub what: &'static str,
    pub id: String,
    pub root: String,
    pub before: String,
    pub before_class: &'static str,
    pub after: String,
    pub after_class: &'static str,
    pub promotable: Option<(bool, bool)>,
    /// (path, before, after), digests shortened; the full ones in `title`.
    pub digests: Vec<(String, String, String, String, String)>,
    /// Digests changed beyond those shown.
    pub digests_more: usize,
    pub href: Option<String>,
    pub previous_href: Option<String>,
}

#[derive(Template)]
#[template(path = "changes.html")]
pub struct ChangesPage<'a> {
    pub shell: Shell,
    pub changes: &'a crate::report::changes::Changes,
    pub rows: Vec<ChangeRow>,
    pub items: Vec<ChangeRow>,
    pub rows_more: usize,
    pub items_more: usize,
}

fn kind_class(k: crate::report::changes::ChangeKind) -> &'static str {
    use crate::report::changes::ChangeKind::*;
    match k {
        NewlyFailing | StillFailing => "partial",
        Fixed => "ok",
        New | Changed => "info",
        Vanished => "neutral",
    }
}

/// Writes `changes/index.html` when the report has changes.
pub fn write_changes(report: &Report, out: &super::Sink, shell: Shell) -> Result<(), super::Error> {
    use crate::report::changes::short;
    let Some(c) = &report.changes else {
        return Ok(());
    };
    let prev_base = c.previous.base_url.as_deref();
    let mut digests_left = DIGESTS_SHOWN;
    // Runs, then phases and gates, share one room, each list its share (a run's id
    // and root, a phase's id may be long; a registry may name tens of thousands of
    // phases; a thousand changed runs left no room for a gate that closed).
    let cost = |r: &ChangeRow| {
        html_len(&r.id)
            + html_len(&r.root)
            + r.href.as_deref().map_or(0, html_len)
            + r.previous_href.as_deref().map_or(0, html_len)
            + r.digests
                .iter()
                .map(|d| html_len(&d.0) + 2 * 64 + 96)
                .sum::<usize>()
            + CHANGE_ROW_MARKUP
    };
    let runs = c
        .runs
        .iter()
        .take(CHANGES_SHOWN)
        .map(|r| {
            let shown = r.digests.len().min(DIGESTS_SHOWN_PER_ROW).min(digests_left);
            digests_left -= shown;
            (r, shown)
        })
        .map(|(r, shown)| ChangeRow {
            kind: r.kind.as_str(),
            class: kind_class(r.kind),
            what: "run",
            id: r.run_id.clone(),
            root: r.root.clone(),
            before: r.before_label().to_string(),
            before_class: r.before.map_or("neutral", super::verification_class),
            after: r.after_label().to_string(),
            after_class: r.after.map_or("neutral", super::verification_class),
            promotable: r.promotable.map(|f| (f.before, f.after)),
            digests: r.digests[..shown]
                .iter()
                .map(|d| {
                    (
                        d.path.clone(),
                        short(d.before.as_deref()).to_string(),
                        d.before.clone().unwrap_or_else(|| "absent".into()),
                        short(d.after.as_deref()).to_string(),
                        d.after.clone().unwrap_or_else(|| "absent".into()),
                    )
                })
                .collect(),
            digests_more: r.digests_changed() - shown,
            href: r
                .after
                .and(r.page.as_ref())
                .map(|p| format!("../{p}index.html")),
            previous_href: prev_base
                .zip(r.previous_page.as_ref())
                .map(|(b, p)| format!("{}/{p}index.html", b.trim_end_matches('/'))),
        });
    let runs: Vec<ChangeRow> = runs.collect();
    let label_class = |v: Option<&str>| match v {
        Some("PROVEN" | "clear") => "ok",
        Some("PARTIAL" | "blocked") => "partial",
        Some("DESIGNED") => "designed",
        _ => "neutral",
    };
    let items = [("phase", &c.phases), ("gate", &c.gates)]
        .into_iter()
        .flat_map(|(what, list)| list.iter().map(move |i| (what, i)))
        .map(|(what, i)| ChangeRow {
            kind: i.kind.as_str(),
            class: kind_class(i.kind),
            what,
            id: i.id.clone(),
            root: String::new(),
            before: i.before_label().to_string(),
            before_class: label_class(i.before.as_deref()),
            after: i.after_label().to_string(),
            after_class: label_class(i.after.as_deref()),
            promotable: None,
            digests: Vec::new(),
            digests_more: 0,
            href: i.after.as_ref().map(|_| {
                if what == "phase" {
                    format!("../phases/{}/index.html", super::phases::slug(&i.id))
                } else {
                    "../gates/index.html".to_string()
                }
            }),
            previous_href: None,
        })
        .take(CHANGES_SHOWN)
        .collect::<Vec<ChangeRow>>();
    let mut room = super::room::Shares::new(
        &[
            super::room::wanted(&runs, |r| cost(r)),
            super::room::wanted(&items, |r| cost(r)),
        ],
        super::room::LISTS_ROOM,
    );
    let rows = room.next(|room| keep_within(runs, room, cost));
    let items = room.next(|room| keep_within(items, room, cost));
    let page = ChangesPage {
        shell,
        changes: c,
        rows_more: c.runs.len() - rows.len(),
        rows,
        items_more: c.phases.len() + c.gates.len() - items.len(),
        items,
    };
    out.page("changes/index.html", &page)
}

#[derive(Template)]
#[template(path = "gates.html")]
pub struct GatesPage<'a> {
    pub shell: Shell,
    pub gate: Option<&'a crate::gate::GateReport>,
    /// The Keeper of Contracts' words, cut at [`GATE_TEXT_CHARS`] (they quote a
    /// question's text, which may be as long as its packet).
    pub keeper_text: String,
    /// The proof schema's refs and hashes (each with the files it was found in),
    /// the open questions (unresolved then resolved, each list the first
    /// [`QUESTIONS_SHOWN`]), what to do and the advisories, as many of each as fit
    /// in one [`super::room::LISTS_ROOM`], in that order; with how many each leaves
    /// out. `report.json` lists every one.
    pub refs: Vec<&'a crate::gate::RefCheck>,
    pub refs_more: usize,
    pub hashes: Vec<HashRow<'a>>,
    pub hashes_more: usize,
    pub unresolved: Vec<&'a crate::gate::Question>,
    pub unresolved_more: usize,
    pub resolved: Vec<&'a crate::gate::Question>,
    pub resolved_more: usize,
    pub needs: Vec<&'a String>,
    pub needs_more: usize,
    pub advisories: Vec<&'a String>,
    pub advisories_more: usize,
}

/// A hash of the proof schema and the files shown of those it was found in.
pub struct HashRow<'a> {
    pub check: &'a crate::gate::HashCheck,
    pub files: Vec<&'a crate::gate::HashedFile>,
    pub files_more: usize,
}

/// The open questions of each kind the gates page lists, at most (and as many as
/// fit in [`super::room::LISTS_ROOM`]: 1,200 questions of 1,000 `<` made a page of
/// 5.3 MB).
pub const QUESTIONS_SHOWN: usize = 1000;

/// The most characters of the Keeper of Contracts' words shown.
const GATE_TEXT_CHARS: usize = 500;

pub fn write_gates(report: &Report, out: &super::Sink, shell: Shell) -> Result<(), super::Error> {
    use super::room::{ITEM_MARKUP, Shares, wanted};
    let gate = report.gates.push_truth.as_ref();
    // What blocks the gate comes first: missing refs and hashes before those found.
    let mut all_refs: Vec<&crate::gate::RefCheck> = gate
        .map_or(&[][..], |g| &g.required_refs[..])
        .iter()
        .collect();
    all_refs.sort_by_key(|r| r.satisfied);
    let mut all_hashes: Vec<&crate::gate::HashCheck> = gate
        .map_or(&[][..], |g| &g.required_hashes[..])
        .iter()
        .collect();
    all_hashes.sort_by_key(|h| h.available);
    let questions = gate
        .and_then(|g| g.open_questions.as_ref())
        .map_or(&[][..], |o| &o.questions[..]);
    let asked = |resolved: bool| {
        questions
            .iter()
            .filter(move |q| q.resolved == resolved)
            .take(QUESTIONS_SHOWN)
    };
    let needs_all = gate.map_or(&[][..], |g| &g.needs[..]);
    let advisories_all = gate.map_or(&[][..], |g| &g.advisories[..]);
    let ref_cost = |r: &&crate::gate::RefCheck| html_len(&r.reference);
    let hash_cost = |h: &crate::gate::HashCheck| {
        html_len(&h.spec) + html_len(&h.source) + h.note.as_deref().map_or(0, html_len)
    };
    let file_cost = |f: &crate::gate::HashedFile| html_len(&f.path) + f.sha256.len();
    let question_cost =
        |q: &&crate::gate::Question| html_len(&q.id) + html_len(&q.text) + 8 * q.resolved_by.len();
    // Every list shares one room (a manifest of 30,000 proof refs made a page of
    // 12.9 MB), each its share of it: a list of many refs no longer hides the
    // hashes, the questions and what to do.
    let mut room = Shares::new(
        &[
            wanted(all_refs.iter().copied(), ref_cost),
            wanted(all_hashes.iter().copied(), |h| {
                hash_cost(h) + ITEM_MARKUP + wanted(&h.files, |f| file_cost(f))
            }),
            wanted(asked(false), question_cost),
            wanted(asked(true), question_cost),
            wanted(needs_all, |n| html_len(n)),
            wanted(advisories_all, |a| html_len(a)),
        ],
        super::room::LISTS_ROOM,
    );
    let refs = room.next(|room| keep_within(all_refs.iter().copied(), room, ref_cost));
    let refs_more = all_refs.len() - refs.len();
    let hashes = room.next(|room| {
        let mut hashes = Vec::new();
        for check in all_hashes.iter().copied() {
            if !super::room::take(room, hash_cost(check)) {
                break;
            }
            let (files, files_more) = fill(&check.files, room, file_cost);
            hashes.push(HashRow {
                check,
                files,
                files_more,
            });
        }
        hashes
    });
    let hashes_more = all_hashes.len() - hashes.len();
    let mut shown = |resolved: bool| {
        let kept: Vec<_> = room.next(|room| keep_within(asked(resolved), room, question_cost));
        let total = questions.iter().filter(|q| q.resolved == resolved).count();
        let more = total - kept.len();
        (kept, more)
    };
    let (unresolved, unresolved_more) = shown(false);
    let (resolved, resolved_more) = shown(true);
    let (needs, needs_more) = room.next(|room| fill(needs_all, room, |n| html_len(n)));
    let (advisories, advisories_more) =
        room.next(|room| fill(advisories_all, room, |a| html_len(a)));
    let page = GatesPage {
        shell,
        gate,
        keeper_text: gate
            .and_then(|g| g.keeper_of_contracts.as_ref())
            .map_or(String::new(), |k| {
                truncate(&k.say_intent.text, GATE_TEXT_CHARS)
            }),
        refs,
        refs_more,
        hashes,
        hashes_more,
        unresolved,
        unresolved_more,
        resolved,
        resolved_more,
        needs,
        needs_more,
        advisories,
        advisories_more,
    };
    out.page("gates/index.html", &page)?;
    Ok(())
}

/// Writes `api/catalog.json`, compact: it lists every run (1.9 MB pretty-printed at
/// 10,000 runs, 1.3 MB compact), and it is read by programs.
pub fn write_catalog(report: &Report, out: &super::Sink) -> Result<(), super::Error> {
    if let Some(db) = &report.promptdb {
        out.json(
            "api/catalog.json",
            &crate::catalog::borrowed(report, db),
            false,
        )?;
    }
    Ok(())
}

pub struct TaskRow {
    pub id: String,
    pub kind: String,
    pub owner: String,
    pub dedupe_key: String,
    pub created_at: String,
    pub payload: String,
}

pub struct CrossView {
    pub ops: usize,
    pub queue_receipts: usize,
    pub missing: Vec<(usize, String, String)>,
    /// Operations without a receipt that `missing` leaves out.
    pub missing_more: usize,
    pub orphans: Vec<(usize, String, String)>,
    /// Receipts without an operation that `orphans` leaves out.
    pub orphans_more: usize,
    /// How many of each list `report.json` holds.
    pub listed: usize,
}

#[derive(Template)]
#[template(path = "queue.html")]
pub struct QueuePage {
    pub shell: Shell,
    pub configured: bool,
    pub log: String,
    pub state_sha256: Option<String>,
    pub findings: Vec<FindingRow>,
    /// Findings left out for want of room.
    pub findings_more: usize,
    pub counters: Vec<(&'static str, usize)>,
    pub pending: Vec<TaskRow>,
    /// Every pending task, listed or not.
    pub pending_total: usize,
    pub pending_more: usize,
    pub cross: Option<CrossView>,
}

pub struct ReceiptRow {
    pub line: usize,
    pub ts: String,
    pub kind: String,
    pub origin: String,
    pub owner: String,
    pub dod: String,
    pub refs: Vec<String>,
    pub refs_more: usize,
    /// (badge class, finding kind, message), shown on the receipt's own row.
    pub findings: Vec<(&'static str, &'static str, String)>,
}

#[derive(Template)]
#[template(path = "receipts.html")]
pub struct ReceiptsPage {
    pub shell: Shell,
    pub configured: bool,
    pub log: String,
    pub contract: String,
    pub total: usize,
    /// Older receipts the pages leave out (the report keeps the newest).
    pub omitted: usize,
    pub with_findings: usize,
    pub section_findings: Vec<FindingRow>,
    pub kinds: Vec<String>,
    pub origins: Vec<String>,
    pub owners: Vec<String>,
    pub rows: Vec<ReceiptRow>,
    /// (href, line, kind, message) of the first findings, on every page.
    pub line_findings: Vec<(String, usize, &'static str, String)>,
    pub line_findings_more: usize,
    pub page_no: usize,
    pub page_count: usize,
    pub prev_href: Option<String>,
    pub next_href: Option<String>,
}

/// The payload cell of a task the report holds as a stand-in.
fn omitted(o: &Value) -> String {
    let bytes = o.get("bytes").and_then(Value::as_u64).unwrap_or_default();
    let sha = o.get("sha256").and_then(Value::as_str).unwrap_or_default();
    let mut s = format!(
        "(left out: a task of {} bytes, sha256 {}",
        bytes,
        truncate(sha, 12)
    );
    if let Some(line) = o.get("line").and_then(Value::as_u64) {
        s.push_str(&format!(", line {line} of the log"));
    }
    s.push(')');
    s
}

fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => truncate(s, CELL),
        Some(other) => truncate(&other.to_string(), CELL),
    }
}

pub fn write_queue(report: &Report, out: &super::Sink, shell: Shell) -> Result<(), super::Error> {
    let q = &report.queue;
    let r = q.replay.as_ref();
    let findings: Vec<FindingRow> = q
        .findings
        .iter()
        .map(|f| FindingRow::from(f, None))
        .collect();
    let pending: Vec<TaskRow> = r
        .map(|r| {
            r.pending
                .iter()
                .take(QUEUE_LIST_SHOWN)
                .map(|raw| {
                    // A report's task is small, or a stand-in for a large one.
                    let t: serde_json::Map<String, Value> =
                        serde_json::from_str(raw.get()).unwrap_or_default();
                    TaskRow {
                        id: text(t.get("id")),
                        kind: text(t.get("kind")),
                        owner: text(t.get("owner")),
                        dedupe_key: text(t.get("dedupe_key")),
                        created_at: text(t.get("created_at")),
                        payload: match t.get("omitted") {
                            Some(o) => omitted(o),
                            None => text(t.get("payload")),
                        },
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let pending_total = r.map_or(0, |r| r.pending_count());
    let missing: Vec<(usize, String, String)> = q.cross_check.as_ref().map_or(Vec::new(), |c| {
        c.receipt_missing
            .iter()
            .take(QUEUE_LIST_SHOWN)
            .map(|o| (o.line, o.op.to_string(), truncate(&o.task_id, CELL)))
            .collect()
    });
    let orphans: Vec<(usize, String, String)> = q.cross_check.as_ref().map_or(Vec::new(), |c| {
        c.receipts_without_op
            .iter()
            .take(QUEUE_LIST_SHOWN)
            .map(|o| {
                (
                    o.line,
                    truncate(&o.op, CELL),
                    o.task_id
                        .as_deref()
                        .map_or_else(|| "(no task ref)".into(), |t| truncate(t, CELL)),
                )
            })
            .collect()
    });
    let finding_cost = |f: &FindingRow| html_len(&f.message);
    let task_cost = |t: &TaskRow| {
        [
            &t.id,
            &t.kind,
            &t.owner,
            &t.dedupe_key,
            &t.created_at,
            &t.payload,
        ]
        .into_iter()
        .map(|s| html_len(s))
        .sum()
    };
    let cross_cost = |o: &(usize, String, String)| html_len(&o.1) + html_len(&o.2);
    // The lists share one room, so that a log of long fields keeps the page under
    // 1 MB, each its share of it; each counts what it leaves out.
    let mut room = super::room::Shares::new(
        &[
            super::room::wanted(&findings, |f| finding_cost(f)),
            super::room::wanted(&pending, |t| task_cost(t)),
            super::room::wanted(&missing, |o| cross_cost(o)),
            super::room::wanted(&orphans, |o| cross_cost(o)),
        ],
        super::room::LISTS_ROOM,
    );
    let findings = room.next(|room| keep_within(findings, room, finding_cost));
    let pending = room.next(|room| keep_within(pending, room, task_cost));
    let missing = room.next(|room| keep_within(missing, room, cross_cost));
    let orphans = room.next(|room| keep_within(orphans, room, cross_cost));
    let cross = q.cross_check.as_ref().map(|c| CrossView {
        ops: c.ops,
        queue_receipts: c.queue_receipts,
        missing_more: c.missing_count() - missing.len(),
        missing,
        orphans_more: c.orphan_count() - orphans.len(),
        orphans,
        listed: crate::queue::crosscheck::MAX_LISTED,
    });
    let page = QueuePage {
        shell,
        configured: q.configured,
        log: q.log.clone().unwrap_or_default(),
        state_sha256: r.map(|r| r.state_sha256.clone()),
        findings_more: q.findings.len() - findings.len(),
        findings,
        counters: r
            .map(|r| {
                let c = &r.counters;
                vec![
                    ("events", c.events),
                    ("enqueued", c.enqueued),
                    ("dequeued", c.dequeued),
                    ("duplicate_enqueue", c.duplicate_enqueue),
                    ("orphan_dequeue", c.orphan_dequeue),
                    ("corrupt_line", c.corrupt_line),
                    ("line_too_long", c.line_too_long),
                    ("torn_tail", c.torn_tail),
                ]
            })
            .unwrap_or_default(),
        pending_more: pending_total - pending.len(),
        pending,
        pending_total,
        cross,
    };
    out.page("queue/index.html", &page)?;
    Ok(())
}

fn top_keys(m: Option<&BTreeMap<String, usize>>) -> Vec<String> {
    let Some(m) = m else { return Vec::new() };
    let mut v: Vec<(&String, &usize)> = m.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    // Cut as the rows' cells are, so that an option matches the rows it names.
    let mut keys = std::collections::BTreeSet::new();
    for (k, _) in v {
        if keys.len() == OPTIONS {
            break;
        }
        keys.insert(truncate(k, KEY_CHARS));
    }
    keys.into_iter().collect()
}

pub fn write_receipts(
    report: &Report,
    out: &super::Sink,
    shell: impl Fn() -> Shell,
) -> Result<(), super::Error> {
    let s = &report.receipts;
    let mut by_line: BTreeMap<usize, Vec<(FindingKind, &str)>> = BTreeMap::new();
    if let Some(c) = &s.check {
        for f in &c.findings {
            let v = by_line.entry(f.line).or_default();
            if !v.iter().any(|(k, m)| *k == f.kind && *m == f.message) {
                v.push((f.kind, &f.message));
            }
        }
    }
    let total = s.rows.len() + s.rows_omitted;
    // Pages of at most RECEIPTS_PER_PAGE rows and RECEIPT_ROWS_ROOM bytes of them.
    let mut rows: Vec<ReceiptRow> = s.rows.iter().map(|r| receipt_row(r, &by_line)).collect();
    let starts = super::room::page_starts(
        &rows,
        RECEIPTS_PER_PAGE,
        RECEIPT_ROWS_ROOM,
        receipt_row_cost,
    );
    let page_count = starts.len();
    let page_of = |idx: usize| starts.partition_point(|&s| s <= idx);
    let first_listed = s.rows.first().map_or(usize::MAX, |r| r.line);
    let all_findings = s.check.as_ref().map_or(&[][..], |c| &c.findings[..]);
    let mut findings_room = LINE_FINDINGS_ROOM;
    let listed: Vec<(usize, usize, &'static str, String)> = keep_within(
        all_findings.iter().take(LINE_FINDINGS_LISTED).map(|f| {
            let idx = s.rows.partition_point(|r| r.line < f.line);
            (
                // Page 0: a line older than the receipts the pages list.
                if f.line < first_listed {
                    0
                } else {
                    page_of(idx)
                },
                f.line,
                f.kind.as_str(),
                truncate(&f.message, CELL),
            )
        }),
        &mut findings_room,
        |f| html_len(&f.3),
    );
    // The last page first (see the runs list in `write_site`).
    for page_no in (1..=page_count).rev() {
        let rows = rows.split_off(starts[page_no - 1]);
        let page = ReceiptsPage {
            shell: shell(),
            configured: s.configured,
            log: s.log.clone().unwrap_or_default(),
            contract: s
                .contract
                .clone()
                .unwrap_or_else(|| "built-in receipts.v2 defaults".into()),
            total,
            omitted: s.rows_omitted,
            with_findings: s.check.as_ref().map_or(0, |c| c.lines_with_findings),
            section_findings: s
                .findings
                .iter()
                .map(|f| FindingRow::from(f, None))
                .collect(),
            kinds: top_keys(s.check.as_ref().map(|c| &c.kinds)),
            origins: top_keys(s.check.as_ref().map(|c| &c.origins)),
            owners: top_keys(s.check.as_ref().map(|c| &c.owners)),
            rows,
            line_findings: listed
                .iter()
                .map(|(p, line, kind, msg)| {
                    let href = match *p {
                        0 => String::new(),
                        p if p == page_no => format!("#line-{line}"),
                        p => format!("{}#line-{line}", page_file(p)),
                    };
                    (href, *line, *kind, msg.clone())
                })
                .collect(),
            line_findings_more: all_findings.len() - listed.len()
                + s.check.as_ref().map_or(0, |c| c.findings_omitted),
            page_no,
            page_count,
            prev_href: (page_no > 1).then(|| page_file(page_no - 1)),
            next_href: (page_no < page_count).then(|| page_file(page_no + 1)),
        };
        out.page(&format!("receipts/{}", page_file(page_no)), &page)?;
    }
    Ok(())
}
