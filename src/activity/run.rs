//! `lith run --phase ID -- CMD…` (SPEC §6.5): run a command and emit a real
//! `runtime_auto` chain — `started`, heartbeats while it runs, then `completed` (with
//! evidence hashes) and `verified` once every evidence file exists and matches.
//!
//! Feed writes are fail-open: a feed error prints a warning and never changes the
//! command's exit code, which is returned as lith's own. Each event is one line
//! appended under an `flock` on the feed, so concurrent writers never interleave.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::bundle::verify::{hash_file, hex};

pub struct RunOptions {
    pub phase: String,
    pub tool: String,
    pub evidence: Vec<String>,
    pub heartbeat_sec: u64,
    pub feed: PathBuf,
    pub heartbeat_file: Option<PathBuf>,
    /// Evidence paths resolve against this folder.
    pub workspace: PathBuf,
}

/// Appends events with strictly increasing `ts_epoch_ms`.
pub struct Emitter {
    feed: PathBuf,
    last_ms: AtomicI64,
    pub run_id: String,
    warned: AtomicBool,
}

impl Emitter {
    pub fn new(feed: PathBuf, run_id: String) -> Emitter {
        Emitter {
            feed,
            last_ms: AtomicI64::new(0),
            run_id,
            warned: AtomicBool::new(false),
        }
    }

    fn next_ms(&self) -> i64 {
        let now = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        let mut prev = self.last_ms.load(Ordering::SeqCst);
        loop {
            let next = now.max(prev + 1);
            match self
                .last_ms
                .compare_exchange(prev, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return next,
                Err(p) => prev = p,
            }
        }
    }

    /// Stamps and appends an event; returns it. Failures only warn (once).
    pub fn emit(&self, mut fields: Map<String, Value>) -> Map<String, Value> {
        let ms = self.next_ms();
        let ts = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default();
        fields.insert("ts_epoch_ms".into(), json!(ms));
        fields.insert("ts_utc".into(), json!(ts));
        fields.insert("run_id".into(), json!(self.run_id));
        fields.insert("emit_mode".into(), json!("runtime_auto"));
        fields.insert("verifier_mode".into(), json!("operational_proof"));
        if let Err(e) = append_locked(&self.feed, &Value::Object(fields.clone()).to_string())
            && !self.warned.swap(true, Ordering::SeqCst)
        {
            crate::term::eprint(&format!(
                "warning: cannot write the activity feed {}: {e} (the command's result is unaffected)",
                self.feed.display()
            ));
        }
        fields
    }
}

/// Appends one line to a file under an exclusive `flock` on that file.
pub fn append_locked(path: &Path, line: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut f = crate::fsutil::beside_untrusted()
        .append(true)
        .create(true)
        .open(path)?;
    f.lock()?;
    let mut buf = line.as_bytes().to_vec();
    buf.push(b'\n');
    f.write_all(&buf)?;
    f.sync_all()
}

fn host_id() -> String {
    format!(
        "sha256:{}",
        hex(&Sha256::digest(crate::bundle::lock::hostname().as_bytes()))
    )
}

/// Runs the command; returns its exit code (128 + signal when killed).
pub fn run(opts: &RunOptions, cmd: &[String]) -> std::io::Result<i32> {
    let (program, args) = cmd
        .split_first()
        .ok_or_else(|| std::io::Error::other("no command given after --"))?;
    let emitter = Arc::new(Emitter::new(
        opts.feed.clone(),
        uuid::Uuid::new_v4().to_string(),
    ));
    let base = |action: &str| {
        let mut m = Map::new();
        m.insert("phase_id".into(), json!(opts.phase));
        m.insert("action".into(), json!(action));
        m.insert("tool".into(), json!(opts.tool));
        m
    };
    let mut child = Command::new(program).args(args).spawn()?;
    emitter.emit(base("started"));

    // Heartbeats while the command runs.
    let done = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let beat = {
        let emitter = Arc::clone(&emitter);
        let done = Arc::clone(&done);
        let every = Duration::from_secs(opts.heartbeat_sec.max(1));
        let hb_file = opts.heartbeat_file.clone();
        let tool = opts.tool.clone();
        let host = host_id();
        std::thread::spawn(move || {
            let (lock, cv) = &*done;
            let mut seq = 0u64;
            loop {
                let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
                // Checks the flag before sleeping, so a stop that came first is seen.
                let (guard, _) = cv
                    .wait_timeout_while(guard, every, |stopped| !*stopped)
                    .unwrap_or_else(|e| e.into_inner());
                if *guard {
                    return;
                }
                drop(guard);
                seq += 1;
                let mut m = Map::new();
                m.insert("action".into(), json!("heartbeat"));
                m.insert("category".into(), json!("heartbeat"));
                m.insert("tool".into(), json!(tool));
                m.insert("host_id".into(), json!(host));
                m.insert("heartbeat_seq".into(), json!(seq));
                let ev = emitter.emit(m);
                if let Some(f) = &hb_file {
                    if let Some(parent) = f.parent().filter(|p| !p.as_os_str().is_empty()) {
                        let _ = std::fs::create_dir_all(parent);
                    }
                    let body = serde_json::to_vec_pretty(&Value::Object(ev)).unwrap_or_default();
                    if let Err(e) = crate::fsutil::write_atomic(f, &body) {
                        crate::term::eprint(&format!(
                            "warning: cannot write the heartbeat file {}: {e}",
                            f.display()
                        ));
                    }
                }
            }
        })
    };
    let status = child.wait()?;
    {
        let (lock, cv) = &*done;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
    }
    let _ = beat.join();
    let code = status.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt;
        128 + status.signal().unwrap_or(0)
    });

    let mut completed = base("completed");
    completed.insert("evidence".into(), json!(opts.evidence));
    if code == 0 {
        let mut hashes = Map::new();
        for e in &opts.evidence {
            if let Ok((_, sha)) = hash_file(&opts.workspace.join(e)) {
                hashes.insert(e.clone(), json!(sha));
            }
        }
        let all = hashes.len() == opts.evidence.len();
        completed.insert("hashes".into(), Value::Object(hashes.clone()));
        completed.insert("status".into(), json!("ok"));
        emitter.emit(completed);
        // verified: every evidence file exists and still matches.
        let matches = all
            && opts.evidence.iter().all(|e| {
                hash_file(&opts.workspace.join(e))
                    .is_ok_and(|(_, s)| hashes.get(e).and_then(Value::as_str) == Some(s.as_str()))
            });
        if matches {
            let mut v = base("verified");
            v.insert("evidence".into(), json!(opts.evidence));
            v.insert("hashes".into(), Value::Object(hashes));
            v.insert("status".into(), json!("verified"));
            emitter.emit(v);
        } else {
            crate::term::eprint(
                "warning: evidence is missing or changed; no `verified` event was written",
            );
        }
    } else {
        completed.insert("status".into(), json!("failed"));
        completed.insert("exit_code".into(), json!(code));
        emitter.emit(completed);
    }
    Ok(code)
}
