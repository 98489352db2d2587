//! The bodies of lith's fuzz targets (`fuzz/`), one per parser of untrusted input.
//!
//! They live in the library so that `cargo test` runs the very same code over every
//! input a fuzzer ever found (`fuzz/regressions/`), and a fuzz target is one line.
//! Each body feeds bytes to a parser and checks what must hold whatever the input:
//! no panic, and where the format has one, a property (a queue log replayed in two
//! parts, or a few bytes at a time, equals the whole; what a reader accepts, its
//! writer reproduces).

use std::path::Path;

use crate::activity;
use crate::bundle::{index, witness};
use crate::lith::{Manifest, sexpr};
use crate::queue::{self, Replay};
use crate::receipts::{self, Contract};

/// S-expressions, then the manifest and the receipts contract built from them.
pub fn sexpr(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("fuzz.lith");
    if let Ok(root) = sexpr::read_str(text, file) {
        let _ = Manifest::from_node(&root, file);
        let _ = Contract::from_node(&root, "fuzz.lisp");
    }
}

/// The JSON documents of a bundle: artifact index, run status, path witnesses. The
/// index read entry by entry (as verification reads it) and the index read as a
/// whole document (as repair reads it) agree on every input, and so do a document
/// read as its text (as a run status is) and read as a value.
pub fn bundle_json(data: &[u8]) {
    let streamed = index::ArtifactIndex::read_from(data);
    let as_text = crate::fsutil::parse_json_text(data.to_vec());
    let witnesses = witness::read(data);
    let v = match crate::fsutil::parse_json(data) {
        Ok(v) => v,
        Err(e) => {
            if matches!(e, crate::fsutil::JsonReadError::Syntax { .. }) {
                assert!(witnesses.is_err(), "witnesses read from what is not JSON");
            }
            assert!(
                streamed.is_err(),
                "the streaming reader accepted invalid JSON"
            );
            // Read as text, the document is refused alike, at the same place.
            assert_eq!(
                as_text.err().map(|t| t.to_string()),
                Some(e.to_string()),
                "read as text and as a value, a document is refused apart"
            );
            return;
        }
    };
    match (index::ArtifactIndex::from_value(&v), streamed) {
        (Ok(whole), Ok(streamed)) => assert_eq!(whole, streamed, "the two readers disagree"),
        (Err(_), Err(_)) => {}
        (whole, streamed) => panic!("the two readers disagree: {whole:?} / {streamed:?}"),
    }
    assert!(
        witnesses.is_ok(),
        "a document read as a value is unreadable as witnesses"
    );
    // A document read as its text is the text of the value read from it.
    let text = as_text.expect("read as a value, so as text");
    assert_eq!(
        text,
        crate::json_text::JsonText::of(&v),
        "read as text and as a value, a document differs"
    );
    let _ = index::RunStatus::from_text(text);
}

/// The queue log: replay never panics, and replaying a prefix that ends at a line
/// break and then the rest gives the state of replaying the whole.
pub fn queue_log(data: &[u8]) {
    let mut whole = Replay::new();
    queue::replay_reader(data, &mut whole).expect("reading memory");
    let digest = whole.state_sha256().expect("tasks in memory");
    if let Some(cut) = data.iter().position(|&b| b == b'\n') {
        let mut parts = Replay::new();
        queue::replay_reader(&data[..=cut], &mut parts).expect("reading memory");
        queue::replay_reader(&data[cut + 1..], &mut parts).expect("reading memory");
        assert_eq!(
            parts.state_sha256().expect("tasks in memory"),
            digest,
            "replay in two parts"
        );
        assert_eq!(parts.counters, whole.counters, "counters in two parts");
    }
    // Read a few bytes at a time: every line is gathered across the reader's refills
    // instead of being lent whole from its buffer, and reads the same.
    let step = data.len() % 7 + 1;
    let mut pieces = Replay::new();
    queue::replay_reader(Pieces { bytes: data, step }, &mut pieces).expect("reading memory");
    assert_eq!(
        pieces.state_sha256().expect("tasks in memory"),
        digest,
        "replay read {step} bytes at a time"
    );
    assert_eq!(pieces.counters, whole.counters, "counters read in pieces");
    // Each line reads alike whether the common line is read in one pass or not.
    queue::check_scan(data);
    // A task's canonical form is the same whichever writer writes it.
    if let Ok(text) = std::str::from_utf8(data) {
        let (mut fast, mut serde) = (Vec::new(), Vec::new());
        let a = queue::canon::write_to(text, &["created_at"], &mut fast).map_err(|e| e.to_string());
        let b = queue::canon::write(text, &["created_at"], &mut serde).map_err(|e| e.to_string());
        assert_eq!((a, fast), (b, serde), "the canonical form of a task");
    }
}

/// A reader that hands out its bytes at most `step` at a time, as a pipe or a slow
/// disk may (the fuzz targets' and the tests' way to read across refills).
pub struct Pieces<'a> {
    pub bytes: &'a [u8],
    pub step: usize,
}

impl std::io::Read for Pieces<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(out.len()).min(self.bytes.len());
        out[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}

/// How deep lists and objects nest in `data` at most, strings left out.
fn nesting(data: &[u8]) -> usize {
    let (mut depth, mut most, mut in_string, mut escaped) = (0usize, 0, false, false);
    for &b in data {
        if in_string {
            in_string = escaped || b != b'"';
            escaped = !escaped && b == b'\\';
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                most = most.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    most
}

/// Receipt lines under the default contract; a line the writer formats is read back
/// as the same fields.
pub fn receipts(data: &[u8]) {
    let contract = Contract::default();
    let (parsed, _) = receipts::check(data, &contract);
    for r in parsed.iter().take(16) {
        let fields: Vec<(&str, String)> = r.fields().map(|(k, v)| (k, v.to_string())).collect();
        if let Ok(line) = receipts::format_line(&fields) {
            let back = receipts::split_line(&line, " | ");
            let read: Vec<(String, String)> = fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            assert_eq!(back, read, "format_line then split_line");
        }
    }
}

/// The activity feed, and the chain of every phase it names.
pub fn activity_feed(data: &[u8]) {
    let feed = activity::parse_feed(data);
    let mut phases: Vec<&str> = feed
        .events
        .iter()
        .filter_map(|e| e.phase_id.as_deref())
        .collect();
    phases.sort_unstable();
    phases.dedup();
    for p in phases.into_iter().take(8) {
        let _ = activity::chain::chain(p, &feed.events);
    }
}

/// DoD documents (metadata and Markdown rendering) and the phase registry in YAML
/// and JSON.
pub fn dod_documents(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = crate::dod::read_meta(text);
    let html = crate::site::markdown::render(text);
    assert!(
        !html.to_ascii_lowercase().contains("<script"),
        "rendered Markdown carries a script"
    );
    let _ = crate::dod::registry::Registry::parse(text, false);
    let _ = crate::dod::registry::Registry::parse(text, true);
}

/// Reports read back: the walk a previous report (`--previous`, the older side of
/// `lith diff`) and a rebuild's reuse read through takes every JSON document whose
/// value is an object that serde_json reads, and none it refuses (short of
/// serde_json's nesting limit, which the walk keeps per value); a previous report is
/// checked alike whatever size the reads of its text are, the same refusal at the
/// same line and column; and the scan that counts a report's values as it is read back whole counts what
/// the count seed counts, on every JSON document.
pub fn reports(data: &[u8]) {
    // serde_json checks that strings are UTF-8 when it keeps them, not when it
    // skips them, and the walk keeps keys: it takes what serde_json reads into a
    // `Value`, and no more than what it skips.
    let walked = crate::json_walk::walk(
        Pieces {
            bytes: data,
            step: 7,
        },
        |_, _| Ok(false),
    );
    let skipped = serde_json::from_slice::<serde::de::IgnoredAny>(data);
    let kept = serde_json::from_slice::<serde_json::Value>(data);
    let object = data
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        == Some(&b'{');
    if nesting(data) < 100 {
        if kept.is_ok() && object {
            assert!(
                walked.is_ok(),
                "the walk says {walked:?} of what serde_json reads"
            );
        }
        if walked.is_ok() {
            assert!(
                skipped.is_ok() && object,
                "the walk takes what serde_json refuses: {skipped:?}"
            );
        }
    }
    let (version, read) = crate::report::changes::check(data);
    let (version_in_pieces, read_in_pieces) = crate::report::changes::check(Pieces {
        bytes: data,
        step: 3,
    });
    assert_eq!(
        version, version_in_pieces,
        "the schema version read differs"
    );
    assert_eq!(read, read_in_pieces, "read whole and a few bytes at a time");
    let left = std::cell::Cell::new(usize::MAX);
    if crate::json_budget::count_values(data, &left, usize::MAX).is_ok() {
        assert_eq!(
            crate::json_budget::scanned_values(data),
            usize::MAX - left.get(),
            "the scan counts other values than the count seed"
        );
    }
}

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// The fuzz targets by name, as `fuzz/` and `fuzz/regressions/` name them.
pub const TARGETS: [(&str, Target); 7] = [
    ("sexpr", sexpr),
    ("bundle_json", bundle_json),
    ("queue_log", queue_log),
    ("receipts", receipts),
    ("activity_feed", activity_feed),
    ("dod_documents", dod_documents),
    ("reports", reports),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every input a fuzzer found (kept in `fuzz/regressions/<target>/`) and every
    /// hand-made hostile case below go through their target again.
    #[test]
    fn regressions_and_hostile_inputs_replay_cleanly() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
        let mut replayed = 0;
        for (name, body) in TARGETS {
            let dir = root.join(name);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.filter_map(Result::ok) {
                let bytes = std::fs::read(e.path()).unwrap();
                body(&bytes);
                replayed += 1;
            }
        }
        let hostile: [&[u8]; 8] = [
            b"",
            b"\n\n\n",
            b"((((((((((((((((((((",
            b"{\"op\":\"enqueue\",\"task\":{\"id\":\"a\"}}\n{\"op\":\"dequeue\",\"task_id\":\"a\"}\n{",
            b"\xEF\xBB\xBF{\"artifacts\":[]}",
            b"ts=1 | kind=:x | | = | a=b\n\xff\xfe | x=y\n",
            b"> > > > > > > > > > > > > > > > > > > > > > x\n<script>alert(1)</script>",
            b"{\"phases\": {\"P\": {\"verdict\": [1, {\"a\": null}]}}}",
        ];
        for input in hostile {
            for (_, body) in TARGETS {
                body(input);
            }
        }
        // The demo workspace's files are the fuzzers' seeds: each goes through the
        // targets that read its kind, so every property is checked on real inputs.
        let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/demo");
        let mut seeded: Vec<&str> = Vec::new();
        for e in walkdir::WalkDir::new(&demo)
            .into_iter()
            .filter_map(Result::ok)
        {
            let name = e.file_name().to_string_lossy().into_owned();
            let targets: &[(&str, Target)] = match name.rsplit_once('.').map(|(_, x)| x) {
                Some("json") => &[("bundle_json", bundle_json), ("reports", reports)],
                Some("jsonl") => &[("queue_log", queue_log), ("activity_feed", activity_feed)],
                Some("lisp" | "lith") => &[("sexpr", sexpr)],
                Some("md" | "yaml") => &[("dod_documents", dod_documents)],
                Some("log") => &[("receipts", receipts)],
                _ => &[],
            };
            if targets.is_empty() || !e.file_type().is_file() {
                continue;
            }
            let bytes = std::fs::read(e.path()).unwrap();
            for (name, body) in targets {
                body(&bytes);
                seeded.push(name);
            }
        }
        seeded.sort_unstable();
        seeded.dedup();
        assert_eq!(
            seeded.len(),
            TARGETS.len(),
            "every target has a demo seed: {seeded:?}"
        );
        crate::term::eprint(&format!("{replayed} regression input(s) replayed"));
    }
}
