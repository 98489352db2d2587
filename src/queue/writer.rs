//! The queue writer (SPEC §4.2): `enqueue` and `dequeue` under the queue lock
//! (`<log>.lock`), each an event appended with one `write` and fsynced, then its
//! receipt appended and fsynced.
//!
//! Nothing half-written is left for replay to misread: a failed append is truncated
//! back, and a torn tail left by a crashed writer is moved aside to `<log>.torn`
//! (never deleted) before the next event is appended.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::{Replay, TaskJson, VERSION, replay_open};
use crate::bundle::lock::{self, LockError, LockMode};
use crate::bundle::verify::hex;
use crate::clock::Clock;
use crate::fsutil::io_context as io;
use crate::receipts;

#[derive(Debug, Clone)]
pub struct QueueFiles {
    pub log: PathBuf,
    pub receipts: PathBuf,
    pub lock: LockMode,
    /// Receipt fields that do not come from the operation.
    pub host: String,
    pub manifest: String,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("empty_queue: no task is pending in {0}")]
    EmptyQueue(String),
    #[error(transparent)]
    Refused(#[from] receipts::UnwritableField),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Io(#[from] crate::fsutil::IoFailure),
}

impl WriteError {
    pub fn exit_code(&self) -> i32 {
        match self {
            WriteError::Lock(LockError::Held { .. }) => crate::exit::LOCKED,
            WriteError::EmptyQueue(_) => crate::exit::PARTIAL,
            _ => crate::exit::RUNTIME_ERROR,
        }
    }
}

#[derive(Debug, Clone)]
pub struct EnqueueRequest {
    pub kind: String,
    pub dedupe_key: String,
    pub payload: Value,
    pub owner: String,
    pub refs: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub op: &'static str,
    pub task: TaskJson,
    /// True when an enqueue found its dedupe key pending and wrote nothing.
    pub deduped: bool,
    /// Bytes of a torn tail that were moved to `<log>.torn` first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torn_tail_moved: Option<u64>,
}

/// The dedupe key of an enqueue, byte for byte the producer's: the given one trimmed
/// of surrounding whitespace, or, when that is empty, `KIND:` + the payload as
/// Python's `json.dumps(payload, sort_keys=True, ensure_ascii=False)` spells it — so
/// lith and the producer writing to one log dedupe each other's tasks.
pub fn dedupe_key_for(kind: &str, given: &str, payload: &Value) -> String {
    let given = given.trim();
    if given.is_empty() {
        let mut s = format!("{kind}:");
        python_dumps(payload, &mut s);
        s
    } else {
        given.to_string()
    }
}

/// Python's `json.dumps(v, sort_keys=True, ensure_ascii=False)`: separators `", "`
/// and `": "`, keys in code point order, non-ASCII kept, control characters escaped
/// as `\n`-style or lower-case `\u00XX`, floats as Python's `repr`.
pub fn python_dumps(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if n.is_f64() {
                out.push_str(&python_float_repr(n.as_f64().unwrap_or_default()));
            } else {
                out.push_str(&n.to_string());
            }
        }
        Value::String(s) => python_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                python_dumps(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // serde_json's map is ordered by key bytes, which for UTF-8 is code point
            // order, as Python sorts `str` keys.
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                python_string(k, out);
                out.push_str(": ");
                python_dumps(item, out);
            }
            out.push('}');
        }
    }
}

fn python_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `repr(float)`: the shortest digits that round-trip, in fixed notation
/// when the decimal exponent is in `-4..16` (always with a fraction, `1.0`), else in
/// scientific notation with a signed, at least two-digit exponent (`1e+16`, `1e-05`).
pub fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    // `{:e}` gives the shortest round-trip digits: `-1.2345e-7`.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            let (a, b) = digits.split_at(point as usize);
            format!("{a}.{b}")
        };
        format!("{sign}{body}")
    } else {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{first}{frac}e{esign}{:02}", exp.abs())
    }
}

/// `task-` + 12 hex digits of sha256(dedupe_key | sequence number).
pub fn task_id(dedupe_key: &str, seq: usize) -> String {
    let d = hex(&Sha256::digest(format!("{dedupe_key}|{seq}").as_bytes()));
    format!("task-{}", &d[..12])
}

fn lock_path(log: &Path) -> PathBuf {
    let mut name = log
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".lock");
    log.with_file_name(name)
}

/// Opens the log for appending, replays it, and moves a torn tail aside.
fn open_and_replay(log: &Path) -> Result<(File, Replay, Option<u64>), WriteError> {
    let label = log.display().to_string();
    if let Some(parent) = log.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(io(format!("{label}: cannot create its folder")))?;
    }
    let mut file = crate::fsutil::beside_untrusted()
        .read(true)
        .append(true)
        .create(true)
        .open(log)
        .map_err(io(format!("{label}: cannot open for appending")))?;
    if !file.metadata().map_err(io(label.clone()))?.is_file() {
        return Err(WriteError::Invalid(format!("{label}: not a regular file")));
    }
    // The writer needs the pending tasks, not the receipt cross-check.
    let mut state = Replay::new();
    replay_open(&file, &mut state).map_err(io(format!("{label}: cannot read")))?;
    let mut moved = None;
    if state.counters.torn_tail > 0 && state.findings.last().is_some_and(|f| f.line == state.lines)
    {
        moved = Some(move_torn_tail(&mut file, log)?);
    } else {
        // A complete last event without its newline (a producer that wrote none):
        // end its line first, so the next append never glues two events together.
        use std::os::unix::fs::FileExt;
        let len = file.metadata().map_err(io(label.clone()))?.len();
        let mut last = [0u8; 1];
        if len > 0 {
            file.read_exact_at(&mut last, len - 1)
                .map_err(io(label.clone()))?;
            if last[0] != b'\n' {
                append_line(&mut file, b"", &label)?;
            }
        }
    }
    Ok((file, state, moved))
}

/// Moves the bytes after the last newline to `<log>.torn`, then truncates the log.
fn move_torn_tail(file: &mut File, log: &Path) -> Result<u64, WriteError> {
    let label = log.display().to_string();
    let len = file.metadata().map_err(io(label.clone()))?.len();
    let mut start = len;
    let mut chunk = vec![0u8; 64 * 1024];
    'scan: while start > 0 {
        let from = start.saturating_sub(chunk.len() as u64);
        let n = (start - from) as usize;
        file.seek(SeekFrom::Start(from))
            .map_err(io(label.clone()))?;
        file.read_exact(&mut chunk[..n])
            .map_err(io(label.clone()))?;
        if let Some(i) = chunk[..n].iter().rposition(|&b| b == b'\n') {
            start = from + i as u64 + 1;
            break 'scan;
        }
        start = from;
    }
    let mut name = log
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".torn");
    let torn_path = log.with_file_name(name);
    let torn_label = torn_path.display().to_string();
    let mut torn = crate::fsutil::beside_untrusted()
        .append(true)
        .create(true)
        .open(&torn_path)
        .map_err(io(format!("{torn_label}: cannot open")))?;
    // The tail is copied through a fixed buffer: a torn tail of any size costs
    // no more memory than a small one.
    let header = format!(
        "# torn tail of {label} at byte {start}, {} bytes:\n",
        len - start
    );
    file.seek(SeekFrom::Start(start))
        .map_err(io(label.clone()))?;
    torn.write_all(header.as_bytes())
        .and_then(|_| std::io::copy(&mut (&mut *file).take(len - start), &mut torn))
        .and_then(|_| torn.write_all(b"\n"))
        .and_then(|_| torn.sync_all())
        .map_err(io(format!("{torn_label}: cannot write")))?;
    file.set_len(start)
        .and_then(|_| file.sync_all())
        .map_err(io(format!("{label}: cannot truncate the torn tail")))?;
    Ok(len - start)
}

/// Appends one line with a single write and fsyncs it; on failure, truncates the
/// file back so that no partial line is left behind.
pub fn append_line(file: &mut File, line: &[u8], what: &str) -> Result<(), WriteError> {
    let before = file.metadata().map_err(io(what.to_string()))?.len();
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line);
    buf.push(b'\n');
    if let Err(e) = file.write_all(&buf).and_then(|_| file.sync_all()) {
        let _ = file.set_len(before);
        let _ = file.sync_all();
        return Err(io(format!("{what}: cannot append"))(e).into());
    }
    Ok(())
}

fn append_receipt(files: &QueueFiles, line: &str) -> Result<(), WriteError> {
    let label = files.receipts.display().to_string();
    if let Some(parent) = files
        .receipts
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .map_err(io(format!("{label}: cannot create its folder")))?;
    }
    let mut f = crate::fsutil::beside_untrusted()
        .append(true)
        .create(true)
        .open(&files.receipts)
        .map_err(io(format!("{label}: cannot open for appending")))?;
    // Other writers of the receipts log (other queues, people) append too.
    f.lock().map_err(io(format!("{label}: cannot lock")))?;
    // A receipts log that does not end with a newline would glue our line to the last.
    let len = f.metadata().map_err(io(label.clone()))?.len();
    let mut needs_newline = false;
    if len > 0 {
        let mut r = File::open(&files.receipts).map_err(io(label.clone()))?;
        r.seek(SeekFrom::Start(len - 1))
            .map_err(io(label.clone()))?;
        let mut last = [0u8; 1];
        r.read_exact(&mut last).map_err(io(label.clone()))?;
        needs_newline = last[0] != b'\n';
    }
    let mut bytes = Vec::new();
    if needs_newline {
        bytes.push(b'\n');
    }
    bytes.extend_from_slice(line.as_bytes());
    append_line(&mut f, &bytes, &label)
}

fn receipt(
    files: &QueueFiles,
    clock: &Clock,
    op: &str,
    id: &str,
    kind: &str,
    owner: &str,
    extra_refs: &[String],
) -> Result<String, WriteError> {
    for r in extra_refs {
        if r.contains(',') || r.trim().is_empty() {
            return Err(WriteError::Invalid(format!(
                "refusing --ref {r:?}: a ref may not be empty or contain `,` (refs are comma-separated)"
            )));
        }
    }
    // A task read back from the log may have any id: a long one, or one that would
    // split the receipt or its refs, is named by its digest, so that the receipt
    // stays one short line that parses back to the same refs. (The kind comes
    // named by the caller.)
    let id = super::receipt_ref(id);
    let mut refs = vec![format!("task-queue:{op}"), format!("task:{id}")];
    refs.extend(extra_refs.iter().cloned());
    Ok(receipts::format_line(&[
        ("ts", clock.now_rfc3339()),
        ("kind", ":observation".into()),
        ("origin", "task-queue".into()),
        ("owner", owner.to_string()),
        ("dod", format!("task-queue {op} {id} ({kind})")),
        ("pi", "task-queue".into()),
        ("host", files.host.clone()),
        ("manifest", files.manifest.clone()),
        ("refs", refs.join(",")),
    ])?)
}

/// The write order that makes a crash visible: the event first (fsynced), then its
/// receipt (fsynced). A crash between the two is `receipt_missing` on replay.
fn append_event_then_receipt(
    files: &QueueFiles,
    log: &mut File,
    event: &Value,
    receipt_line: &str,
) -> Result<(), WriteError> {
    append_line(
        log,
        event.to_string().as_bytes(),
        &files.log.display().to_string(),
    )?;
    append_receipt(files, receipt_line)
}

pub fn enqueue(
    files: &QueueFiles,
    clock: &Clock,
    req: &EnqueueRequest,
) -> Result<Outcome, WriteError> {
    let _guard = lock::acquire(&lock_path(&files.log), files.lock)?;
    let (mut log, state, moved) = open_and_replay(&files.log)?;
    let key = dedupe_key_for(&req.kind, &req.dedupe_key, &req.payload);
    let owner = req.owner.trim();
    if let Some(task) = state.pending_by_dedupe(&key) {
        return Ok(Outcome {
            op: "enqueue",
            task: TaskJson::new(
                state
                    .text(task)
                    .map_err(io(format!(
                        "{}: cannot read the pending task",
                        files.log.display()
                    )))?
                    .into_owned(),
            ),
            deduped: true,
            torn_tail_moved: moved,
        });
    }
    let id = task_id(&key, state.counters.events + 1);
    let mut task = Map::new();
    task.insert("id".into(), json!(id));
    task.insert("kind".into(), json!(req.kind));
    task.insert("payload".into(), req.payload.clone());
    task.insert("dedupe_key".into(), json!(key));
    task.insert("owner".into(), json!(owner));
    task.insert("status".into(), json!("pending"));
    task.insert("created_at".into(), json!(clock.now_rfc3339()));
    // Build the receipt before writing anything, so a refused value writes nothing.
    // The caller's kind as given (a long one as held): a value that would split the
    // receipt is refused.
    let kind = super::held(&req.kind);
    let receipt_line = receipt(files, clock, "enqueue", &id, &kind, owner, &req.refs)?;
    let task = Value::Object(task);
    let event = json!({"v": VERSION, "ts": clock.now_rfc3339(), "op": "enqueue", "task": &task});
    append_event_then_receipt(files, &mut log, &event, &receipt_line)?;
    Ok(Outcome {
        op: "enqueue",
        task: TaskJson::new(task.to_string()),
        deduped: false,
        torn_tail_moved: moved,
    })
}

pub fn dequeue(files: &QueueFiles, clock: &Clock, owner: &str) -> Result<Outcome, WriteError> {
    let _guard = lock::acquire(&lock_path(&files.log), files.lock)?;
    let (mut log, state, moved) = open_and_replay(&files.log)?;
    let Some(first) = state.pending().next() else {
        return Err(WriteError::EmptyQueue(files.log.display().to_string()));
    };
    let task = TaskJson::new(
        state
            .text(first)
            .map_err(io(format!(
                "{}: cannot read the pending task",
                files.log.display()
            )))?
            .into_owned(),
    );
    let id = task.field("id").unwrap_or_default();
    let kind = task.field("kind").unwrap_or_default();
    // Another producer's kind is named like an id: refusing it would leave the task
    // at the head of the queue for good.
    let kind = super::receipt_ref(&kind);
    let receipt_line = receipt(files, clock, "dequeue", &id, &kind, owner.trim(), &[])?;
    let event = json!({"v": VERSION, "ts": clock.now_rfc3339(), "op": "dequeue", "task_id": id});
    append_event_then_receipt(files, &mut log, &event, &receipt_line)?;
    Ok(Outcome {
        op: "dequeue",
        task,
        deduped: false,
        torn_tail_moved: moved,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected strings are what CPython 3.11 prints for
    /// `json.dumps(v, sort_keys=True, ensure_ascii=False)` of the same values.
    #[test]
    fn default_dedupe_keys_are_the_producers_bytes() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"b": 1, "a": [1.5, "é", null, true, {"z": {}, "y": []}]}"#,
                r#"{"a": [1.5, "é", null, true, {"y": [], "z": {}}], "b": 1}"#,
            ),
            (
                "[1e16, 1e15, 0.0001, 1e-05, 123.456, -0.0, 1.5e-7, 2.5e300, 100.0, 0.30000000000000004, -12345678901234567.0]",
                "[1e+16, 1000000000000000.0, 0.0001, 1e-05, 123.456, -0.0, 1.5e-07, 2.5e+300, 100.0, 0.30000000000000004, -1.2345678901234568e+16]",
            ),
            (
                "\"\\u0001\\n\\t\\\"\\\\\u{7f}\u{2028}\u{1F600}\"",
                "\"\\u0001\\n\\t\\\"\\\\\u{7f}\u{2028}\u{1F600}\"",
            ),
            (
                "{\"é\":1,\"e\":2,\"Z\":3,\"\u{1F600}\":4,\"\u{ffff}\":5}",
                "{\"Z\": 3, \"e\": 2, \"é\": 1, \"\u{ffff}\": 5, \"\u{1F600}\": 4}",
            ),
        ];
        for (input, want) in cases {
            let v: Value = serde_json::from_str(input).unwrap();
            assert_eq!(dedupe_key_for("k", "", &v), format!("k:{want}"), "{input}");
            assert_eq!(dedupe_key_for("k", "  \t ", &v), format!("k:{want}"));
        }
        assert_eq!(dedupe_key_for("k", " a ", &Value::Null), "a");
    }
}
