//! Runs unchanged since the last build into the same `--out` are taken from that
//! build's `report.json` instead of being read and hashed again (SPEC §9,
//! incremental by design).
//!
//! What "unchanged" means is a **stamp** of the run folder, taken beneath its
//! handle: every entry of the folder tree (links not followed) with its device,
//! inode, type and permissions, size, and modification and change times. Writing a
//! file's bytes, renaming, creating or removing anything in the folder changes the
//! change time of something in the stamp (`ctime` cannot be set back by a user), so
//! a run whose stamp matches was verified with these very files. A stamp is not
//! kept for a run where anything changed within two seconds of the build's start,
//! so that a write landing in the same clock tick as the build's look cannot hide.
//!
//! A run the previous build kept is stamped whole as it is listed, before anything
//! is read, to decide whether to read it. Any other run is read in any case: its
//! files are stamped from the handles its reading opens (their `fstat`, taken
//! before the read), so a cold build looks at each file once ([`Stamping`]).
//!
//! The stamps live in one file beside `--out` (`.<out's name>.lith-verified`),
//! with the sha256 of the `report.json` they go with: a site rebuilt by another
//! command, a different lith, other options or a report edited by hand make them
//! void, and every run is read again. `lith build --rehash` ignores them. They are
//! never part of the site, which stays byte-identical whatever was reused.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::verify::{Mode, PathInterner, RunReport, hex, unhex};
use crate::beneath::{Dir, EntryKind, TreeEntry, Watch};
use crate::report::ReadLimits;

/// A run folder's stamp (128 bits of a sha256 over what `fstat` says of its tree).
pub type Stamp = [u8; 16];

/// The first line of the stamps file; what follows is one `<stamp hex> <JSON
/// string of the run's folder>` line per run.
const MAGIC: &str = "lith-verified/v2";

/// The largest stamps file read (about 50 bytes a run: a million runs fit).
const MAX_STAMPS_BYTES: u64 = 64 << 20;

/// What a build knows about earlier verifications, and the stamps it takes.
pub struct Reuse {
    /// The stamp and record of each run of the previous build, by folder.
    previous: Mutex<Previous>,
    /// The stamps taken by this build.
    taken: Mutex<Vec<(Box<str>, Stamp)>>,
    /// Change times from this instant on (ns since the epoch) are too recent to trust.
    racy_after_ns: i128,
    key: String,
    reused: AtomicUsize,
    /// Shared with the build's verification, so that rows read back and rows
    /// verified share their paths alike.
    paths: PathInterner,
}

impl std::fmt::Debug for Reuse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reuse")
            .field("key", &self.key)
            .field("reused", &self.reused())
            .finish_non_exhaustive()
    }
}

impl Reuse {
    /// Nothing to reuse; stamps are taken for the next build. `mode` and the
    /// decision-stage artifacts are what a run's record depends on besides its folder.
    pub fn fresh(mode: Mode, decision_stage: &[String]) -> Reuse {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        let key = hex(&Sha256::digest(
            format!(
                "lith {} {mode:?} {decision_stage:?}",
                env!("CARGO_PKG_VERSION")
            )
            .as_bytes(),
        ));
        Reuse {
            previous: Mutex::new(Previous::default()),
            taken: Mutex::new(Vec::new()),
            racy_after_ns: now - 2_000_000_000,
            key,
            reused: AtomicUsize::new(0),
            paths: PathInterner::default(),
        }
    }

    /// Loads what the previous build into `out` left. Anything amiss (no stamps, a
    /// report that is not the one they were taken with, other options) leaves
    /// nothing to reuse and says why.
    /// Its report is read back within `limits`.
    pub fn load(&mut self, out: &Path, limits: ReadLimits) -> Result<usize, String> {
        let path = crate::site::stamps_path(out).map_err(|e| e.to_string())?;
        self.load_from(&path, out, limits)
            .map_err(|why| format!("{}: {why}", path.display()))
    }

    fn load_from(&mut self, path: &Path, out: &Path, limits: ReadLimits) -> Result<usize, String> {
        let bytes = match crate::fsutil::read_regular(path, MAX_STAMPS_BYTES) {
            Ok(b) => b,
            Err(crate::fsutil::JsonReadError::NotFound) => return Ok(0),
            Err(e) => return Err(e.to_string()),
        };
        let text = std::str::from_utf8(&bytes).map_err(|_| "stamps are not UTF-8".to_string())?;
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap_or("").split(' ').collect();
        let [magic, key, report_sha] = header[..] else {
            return Err("the stamps file has no header".into());
        };
        if magic != MAGIC {
            return Err(format!("the stamps file is {magic:?}, not {MAGIC}"));
        }
        if key != self.key {
            return Err("taken by another lith or with other options".into());
        }
        let mut stamps: HashMap<String, Stamp> = HashMap::new();
        for line in lines {
            let (stamp, dir) = line
                .split_once(' ')
                .ok_or_else(|| "a stamp line without a folder".to_string())?;
            let stamp = unhex(stamp).ok_or_else(|| format!("not a stamp: {stamp:?}"))?;
            let dir: String =
                serde_json::from_str(dir).map_err(|e| format!("a stamp's folder: {e}"))?;
            stamps.insert(dir, stamp);
        }
        let mut collector = Collector {
            stamps,
            previous: Previous::default(),
        };
        self.paths.reading(|| {
            read_report(&out.join("report.json"), report_sha, limits, &mut collector)
        })?;
        let previous = collector.previous;
        let n = previous.runs.len();
        *self.previous.get_mut().unwrap_or_else(|p| p.into_inner()) = previous;
        Ok(n)
    }

    /// The previous build's record of the run in `dir` if its folder still has
    /// `stamp`, made ready to be settled again (pages, links and `LATEST` are decided
    /// afresh, attestations written afresh).
    pub fn take(&self, dir: &str, stamp: Stamp) -> Option<RunReport> {
        let mut previous = self.previous.lock().unwrap_or_else(|p| p.into_inner());
        let Previous { at, runs } = &mut *previous;
        let (kept, i) = at.get(&folder_key(dir))?;
        let slot = &mut runs[*i];
        if *kept != stamp || slot.as_ref().is_none_or(|r| r.dir != dir) {
            return None;
        }
        let mut run = slot.take()?;
        drop(previous);
        run.latest = false;
        run.page = None;
        run.url = None;
        if run.extra().attestation.is_some() {
            run.extra_mut().attestation = None;
            run.tidy();
        }
        for a in run.artifacts.iter_mut() {
            a.set_url(None);
        }
        self.reused.fetch_add(1, Ordering::Relaxed);
        Some(run)
    }

    /// Keeps the stamp of a run verified (or reused) by this build.
    pub fn keep(&self, dir: &str, stamp: Stamp) {
        self.taken
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((dir.into(), stamp));
    }

    /// The interner the build's verification should use (see [`VerifyOptions::paths`]).
    ///
    /// [`VerifyOptions::paths`]: super::verify::VerifyOptions::paths
    pub fn paths(&self) -> PathInterner {
        self.paths.clone()
    }

    /// Lets go of what was read of the previous build (once every run is verified):
    /// the records are one block, returned whole.
    pub fn release(&self) {
        *self.previous.lock().unwrap_or_else(|p| p.into_inner()) = Previous::default();
    }

    /// How many runs were taken from the previous build.
    pub fn reused(&self) -> usize {
        self.reused.load(Ordering::Relaxed)
    }

    /// The stamp of a run folder listed with `stamping` (beneath `dir`, its handle),
    /// or `None` when it cannot be trusted: an entry that could not be looked at, or
    /// a change too recent. A waiting file that nothing opened is looked at now.
    pub fn finish(&self, stamping: Stamping, dir: &Dir) -> Option<Stamp> {
        let Stamping {
            h,
            mut files,
            waiting,
            mut newest,
            mut broken,
            ..
        } = stamping;
        if let Some(w) = waiting {
            let seen = w
                .seen
                .map(|s| std::mem::take(&mut *s.stats.lock().unwrap_or_else(|p| p.into_inner())));
            for (at, f) in w.files.iter().enumerate() {
                let stat = match seen.as_ref().and_then(|s| s[at]) {
                    Some(st) => st,
                    None => match dir.stat_no_links(f.raw.split(|b| *b == b'/')) {
                        Ok(st) => Stat::of(&st),
                        Err(_) => {
                            broken = true;
                            break;
                        }
                    },
                };
                feed_stat(&mut files, &mut newest, &stat);
            }
        }
        if broken || newest >= self.racy_after_ns {
            return None;
        }
        let mut whole = h;
        whole.update(files.finalize());
        let mut s = [0u8; 16];
        s.copy_from_slice(&whole.finalize()[..16]);
        Some(s)
    }

    /// Whether the previous build left a record of the run in `dir` to match a
    /// stamp with.
    pub fn has_previous(&self, dir: &str) -> bool {
        let previous = self.previous.lock().unwrap_or_else(|p| p.into_inner());
        previous.at.contains_key(&folder_key(dir))
    }

    /// Writes the stamps taken, with the sha256 of the report they go with (the
    /// `report.json` this build published into `out`).
    pub fn save(&self, out: &Path, report_sha256: &[u8; 32]) -> std::io::Result<()> {
        let mut taken = std::mem::take(&mut *self.taken.lock().unwrap_or_else(|p| p.into_inner()));
        taken.sort_unstable();
        let mut text = format!("{MAGIC} {} {}\n", self.key, hex(report_sha256));
        for (dir, stamp) in &taken {
            text.push_str(&hex(stamp));
            text.push(' ');
            text.push_str(&serde_json::to_string(dir).map_err(std::io::Error::other)?);
            text.push('\n');
        }
        let path = crate::site::stamps_path(out).map_err(std::io::Error::other)?;
        // Under the lock: a publish sweeps what a killed write of the stamps left.
        crate::site::while_locked(out, || crate::fsutil::write_atomic(&path, text.as_bytes()))
            .map_err(std::io::Error::other)?
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }
}

/// Reads the report the stamps were taken with, in one pass that digests the text
/// and counts its values as it walks it ([`crate::json_walk`]): what was read is
/// kept only when the digest is the one stamped. Only its runs are kept, each as it
/// is read, and only those with a stamp (into `into`). A report of more than
/// `limits.values` values, or that holds more than `limits.held`
/// ([`crate::held`]), is refused as soon as it does, and what a refused or
/// unmatched report held is let go with it.
fn read_report(
    path: &Path,
    want_sha: &str,
    limits: ReadLimits,
    into: &mut Collector,
) -> Result<(), String> {
    use crate::json_walk::Place;
    use serde::de::Error as _;
    let at = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let (file, meta) = crate::fsutil::open_regular(path).map_err(|e| at(&e))?;
    let limit = limits.bytes;
    if meta.len() > limit {
        return Err(at(&format_args!(
            "{} bytes is more than the {limit} bytes lith reads back{}",
            meta.len(),
            ReadLimits::RAISE
        )));
    }
    let mut hashed = Hashed {
        inner: crate::json_budget::CountingReader::new(file.take(limit), limits.values),
        sha: Sha256::new(),
    };
    let mut version = None;
    let walked = crate::held::within(|| {
        let text = crate::held::Metered::new(&mut hashed, limits.held);
        crate::json_walk::walk(text, |place, value| match place {
            Place::Top("schema_version") => {
                let v: String = crate::json_walk::parse(value)?;
                if v != crate::report::SCHEMA_VERSION {
                    return Err(serde_json::Error::custom("another schema version"));
                }
                version = Some(v);
                Ok(true)
            }
            Place::Run => {
                into.keep(run_of(value, limits.held)?);
                if crate::held::net() > limits.held as isize {
                    return Err(serde_json::Error::custom(crate::held::holds_too_much(
                        limits.held,
                    )));
                }
                Ok(true)
            }
            _ => Ok(false),
        })
    });
    walked.map_err(|e| at(&e))?;
    // The walk reads to the end of the text (it checks that nothing follows the
    // report), so the digest is of all of it.
    if hex(&hashed.sha.finalize()) != want_sha {
        return Err(at(&"not the report the stamps were taken with"));
    }
    if version.is_none() {
        return Err(at(&"no schema_version"));
    }
    Ok(())
}

/// The longest run text parsed straight from memory, 1 MiB: what it holds before
/// the count is checked again is bounded as it is between two reads of the text.
/// A longer one is parsed through the metered reader.
const FAST_RUN_BYTES: usize = 1 << 20;

/// A run's record from its text, or from the text read on (through the metered
/// reader the walk reads through).
fn run_of(value: crate::json_walk::Value<'_>, held: usize) -> serde_json::Result<RunReport> {
    use crate::json_walk::Value;
    match value {
        Value::Text(text) if text.len() <= FAST_RUN_BYTES => serde_json::from_slice(text),
        Value::Text(text) => crate::held::read_json(text, held),
        stream @ Value::Stream(_) => crate::json_walk::parse(stream),
    }
}

/// A reader that digests what it reads.
struct Hashed<R> {
    inner: R,
    sha: Sha256,
}

impl<R: Read> Read for Hashed<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        Ok(n)
    }
}

/// The stamps being matched with the runs of a report as it is read.
struct Collector {
    stamps: HashMap<String, Stamp>,
    previous: Previous,
}

impl Collector {
    /// Keeps `run` (trimmed) when it has a stamp.
    fn keep(&mut self, mut run: RunReport) {
        if let Some(stamp) = self.stamps.remove(&run.dir) {
            run.artifacts.shrink_to_fit();
            let at = (stamp, self.previous.runs.len());
            self.previous.at.insert(folder_key(&run.dir), at);
            self.previous.runs.push(Some(run));
        }
    }
}

/// The previous build's stamped runs: in one list (one block of memory, returned
/// whole once the build is done with it rather than left as holes between the
/// records of the new report), found by a hash of their folder (checked against
/// the record's own folder: two folders that hash alike are simply read again).
#[derive(Default)]
struct Previous {
    at: HashMap<u64, (Stamp, usize)>,
    runs: Vec<Option<RunReport>>,
}

fn folder_key(dir: &str) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0).hash_one(dir)
}

/// The most regular files of a run whose stat waits for the handle they are read
/// through; files past these, folders, links and the rest are looked at as the
/// listing meets them.
const MAX_WAITING: usize = 4096;

/// A stamp being taken of a run folder: the folder itself, then each entry as the
/// listing meets it. Its first [`MAX_WAITING`] regular files go to a second digest,
/// in listing order, so that their stats may be taken either as they are listed
/// ([`Stamping::begin`]) or, when the run is read anyway, from the handles its
/// reading opens ([`Stamping::waiting`]), with no second `stat` of each file. Both
/// ways give the same stamp of the same tree.
///
/// Taking a file's stat after the listing is as safe as taking it before: every
/// stat the stamp records is a true one, each taken from a handle before it is read
/// from, and a change after the build began is either newer than the build (so the
/// run is not stamped at all, [`Reuse::finish`]) or after the stat that was kept
/// (so the next build's stamp differs).
pub struct Stamping {
    /// The folder, every entry's name, and the stats of all but the waiting files.
    h: Sha256,
    /// The stats of the first regular files, in listing order (their names are in
    /// `h`, where they were met).
    files: Sha256,
    /// How many regular files the listing met.
    listed_files: usize,
    /// Files whose stat is taken from the handle verification opens them by.
    waiting: Option<Waiting>,
    /// The run folder's device: a file of the same inode elsewhere is another file.
    dev: u64,
    newest: i128,
    broken: bool,
}

/// The files of a [`Stamping::waiting`] stamp, in listing order.
#[derive(Default)]
struct Waiting {
    files: Vec<WaitingFile>,
    /// Filled by the run folder's handle as files are opened beneath it.
    seen: Option<Arc<Seen>>,
}

struct WaitingFile {
    /// The path as listed, folder by folder, for a file that was never opened.
    raw: Box<[u8]>,
    ino: u64,
}

/// The stats of waiting files, found by inode as their handles are opened.
struct Seen {
    dev: u64,
    /// (inode, position in listing order), sorted.
    by_ino: Vec<(u64, u32)>,
    stats: Mutex<Vec<Option<Stat>>>,
}

impl Watch for Seen {
    fn opened(&self, meta: &std::fs::Metadata) {
        use std::os::unix::fs::MetadataExt;
        if meta.dev() != self.dev {
            return;
        }
        let from = self.by_ino.partition_point(|(ino, _)| *ino < meta.ino());
        let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        for (_, at) in self.by_ino[from..]
            .iter()
            .take_while(|(ino, _)| *ino == meta.ino())
        {
            // The first handle's stat is kept: it was taken before any of them was read.
            // (Once the stamp is finished there is nothing left to fill.)
            if let Some(slot) = stats.get_mut(*at as usize) {
                slot.get_or_insert_with(|| Stat::of_meta(meta));
            }
        }
    }
}

/// What a stamp records of one entry.
#[derive(Clone, Copy)]
struct Stat {
    dev: u64,
    ino: u64,
    mode: u64,
    size: u64,
    nlink: u64,
    mtime: i128,
    ctime: i128,
}

impl Stat {
    fn of(st: &libc::stat) -> Stat {
        Stat {
            dev: st.st_dev,
            ino: st.st_ino,
            mode: st.st_mode as u64,
            size: st.st_size as u64,
            nlink: st.st_nlink,
            mtime: st.st_mtime as i128 * 1_000_000_000 + st.st_mtime_nsec as i128,
            ctime: st.st_ctime as i128 * 1_000_000_000 + st.st_ctime_nsec as i128,
        }
    }

    fn of_meta(m: &std::fs::Metadata) -> Stat {
        use std::os::unix::fs::MetadataExt;
        Stat {
            dev: m.dev(),
            ino: m.ino(),
            mode: m.mode() as u64,
            size: m.size(),
            nlink: m.nlink(),
            mtime: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
            ctime: m.ctime() as i128 * 1_000_000_000 + m.ctime_nsec() as i128,
        }
    }
}

impl Stamping {
    /// A stamp whose every entry is looked at as the listing meets it, as a run
    /// that may be taken from the previous build needs before anything is read.
    pub fn begin(dir: &Dir) -> Stamping {
        let mut s = Stamping {
            h: Sha256::new(),
            files: Sha256::new(),
            listed_files: 0,
            waiting: None,
            dev: 0,
            newest: i128::MIN,
            broken: false,
        };
        match dir.stat() {
            Ok(st) => {
                s.dev = st.st_dev;
                feed(&mut s.h, &mut s.newest, b".", &Stat::of(&st));
            }
            Err(_) => s.broken = true,
        }
        s
    }

    /// A stamp of a run that will be read in any case: its regular files are looked
    /// at through the handles its reading opens (see [`Stamping::watch`]).
    pub fn waiting(dir: &Dir) -> Stamping {
        Stamping {
            waiting: Some(Waiting::default()),
            ..Stamping::begin(dir)
        }
    }

    /// An entry of the run folder's tree, as its listing met it.
    pub fn entry(&mut self, e: &TreeEntry<'_>) {
        self.h.update((e.rel.len() as u64).to_le_bytes());
        self.h.update(e.rel.as_bytes());
        let file = e.kind == EntryKind::File && self.listed_files < MAX_WAITING;
        if file {
            self.listed_files += 1;
            if let Some(w) = &mut self.waiting {
                w.files.push(WaitingFile {
                    raw: e.raw_rel.into(),
                    ino: e.ino,
                });
                return;
            }
        }
        match e.dir.stat_at(e.name) {
            Ok(st) => {
                let h = if file { &mut self.files } else { &mut self.h };
                feed_stat(h, &mut self.newest, &Stat::of(&st));
            }
            Err(_) => self.broken = true,
        }
    }

    /// What the run folder's handle should tell of the files it opens, once the
    /// folder is listed (`None` when every entry was looked at as listed).
    pub fn watch(&mut self) -> Option<Arc<dyn Watch>> {
        let w = self.waiting.as_mut()?;
        let mut by_ino: Vec<(u64, u32)> = w
            .files
            .iter()
            .enumerate()
            .map(|(at, f)| (f.ino, at as u32))
            .collect();
        by_ino.sort_unstable();
        let seen = Arc::new(Seen {
            dev: self.dev,
            by_ino,
            stats: Mutex::new(vec![None; w.files.len()]),
        });
        w.seen = Some(seen.clone());
        Some(seen)
    }

    /// Part of the folder could not be listed: no stamp.
    pub fn broken(&mut self) {
        self.broken = true;
    }
}

fn feed(h: &mut Sha256, newest: &mut i128, rel: &[u8], st: &Stat) {
    h.update((rel.len() as u64).to_le_bytes());
    h.update(rel);
    feed_stat(h, newest, st);
}

fn feed_stat(h: &mut Sha256, newest: &mut i128, st: &Stat) {
    for n in [st.dev, st.ino, st.mode, st.size, st.nlink] {
        h.update(n.to_le_bytes());
    }
    h.update(st.mtime.to_le_bytes());
    h.update(st.ctime.to_le_bytes());
    *newest = (*newest).max(st.mtime).max(st.ctime);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    fn stamp(r: &Reuse, run: &Path) -> Option<Stamp> {
        let dir = Dir::open(run).unwrap();
        let mut stamping = Stamping::begin(&dir);
        super::super::verify::list_run(&dir, Some(&mut stamping));
        r.finish(stamping, &dir)
    }

    fn settled() -> Reuse {
        let mut r = Reuse::fresh(Mode::Full, &[]);
        r.racy_after_ns = i128::MAX;
        r
    }

    /// A run of the previous report, as lith writes it.
    fn run_record(
        dir: &str,
        artifacts: &[serde_json::Value],
        unindexed: &[&str],
    ) -> serde_json::Value {
        serde_json::json!({
            "run_id": "r", "dir": dir, "latest": false, "mode": "full",
            "verification": "verified", "state": null, "committed": true,
            "run_status": null, "index": null,
            "counts": {"total": artifacts.len(), "ok": artifacts.len(), "by_status": {}},
            "artifacts": artifacts, "unindexed": unindexed, "witnesses": null, "findings": []
        })
    }

    /// [`read_report`] of `path` with the stamps of `stamped`: the folders and
    /// artifact counts of the runs kept.
    fn read_stamped(
        path: &Path,
        stamped: &[&str],
        sha: &str,
        limits: ReadLimits,
    ) -> Result<Vec<(String, usize)>, String> {
        let mut c = Collector {
            stamps: stamped.iter().map(|d| (d.to_string(), [7; 16])).collect(),
            previous: Previous::default(),
        };
        read_report(path, sha, limits, &mut c)?;
        Ok(c.previous
            .runs
            .iter()
            .flatten()
            .map(|r| (r.dir.clone(), r.artifacts.len()))
            .collect())
    }

    /// A report read back is taken only when its text is the one the stamps were
    /// taken with, whole, and while it holds and counts no more than it may.
    #[test]
    fn a_report_read_back_is_taken_only_when_it_is_the_one_stamped() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("report.json");
        // A stamped run of 40,000 artifacts (5 MB of text), and one not stamped.
        let sha = "ab".repeat(32);
        let rows: Vec<_> = (0..40_000)
            .map(|i| serde_json::json!([format!("artifact_{i:05}.json"), i, sha]))
            .collect();
        let run = |dir: &str, artifacts: &[serde_json::Value]| run_record(dir, artifacts, &[]);
        let text = serde_json::to_vec(&serde_json::json!({
            "schema_version": crate::report::SCHEMA_VERSION,
            "bundles": {"roots": [{"runs": [run("out/r", &rows), run("out/s", &[])]}]},
        }))
        .unwrap();
        std::fs::write(&path, &text).unwrap();
        let digest = hex(&Sha256::digest(&text));
        let read = |sha: &str, limits| read_stamped(&path, &["out/r"], sha, limits);
        assert_eq!(
            read(&digest, ReadLimits::DEFAULT),
            Ok(vec![("out/r".to_string(), 40_000)])
        );
        let e = read(&"0".repeat(64), ReadLimits::DEFAULT).unwrap_err();
        assert!(
            e.contains("not the report the stamps were taken with"),
            "{e}"
        );
        let e = read(&digest, ReadLimits::holding(2 << 20)).unwrap_err();
        assert!(
            e.contains("it holds more than the 2 MiB lith holds of one file it reads back"),
            "{e}"
        );
        assert!(e.contains(ReadLimits::RAISE), "{e}");
        let few = ReadLimits {
            values: 1000,
            ..ReadLimits::DEFAULT
        };
        let e = read(&digest, few).unwrap_err();
        assert!(e.contains("more than 1000 JSON values"), "{e}");
        assert!(e.contains(ReadLimits::RAISE), "{e}");
        // The same limit takes a report whose stamped run is smaller.
        let small = serde_json::to_vec(&serde_json::json!({
            "schema_version": crate::report::SCHEMA_VERSION,
            "bundles": {"roots": [{"runs": [run("out/r", &rows[..100])]}]},
        }))
        .unwrap();
        std::fs::write(&path, &small).unwrap();
        assert_eq!(
            read(&hex(&Sha256::digest(&small)), ReadLimits::holding(2 << 20)),
            Ok(vec![("out/r".to_string(), 100)])
        );
        // Not JSON after its first value: refused.
        let mut bad = text.clone();
        bad.extend_from_slice(b" ]");
        std::fs::write(&path, &bad).unwrap();
        let e = read(&hex(&Sha256::digest(&bad)), ReadLimits::DEFAULT).unwrap_err();
        assert!(e.contains("trailing characters"), "{e}");
    }

    /// Runs that each hold little, and all of them together more than the report may
    /// hold, are refused as they are read; the same runs within the limit are all
    /// kept.
    #[test]
    fn runs_that_together_hold_too_much_are_refused_as_they_are_read() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("report.json");
        // 100 stamped runs of 5,000 two-letter names each: 2.5 MB of text, held as
        // some 28 MB of `String`s, and read in three reads.
        let names = vec!["ab"; 5_000];
        let dirs: Vec<String> = (0..100).map(|i| format!("out/r{i:03}")).collect();
        let runs: Vec<_> = dirs.iter().map(|d| run_record(d, &[], &names)).collect();
        let text = serde_json::to_vec(&serde_json::json!({
            "schema_version": crate::report::SCHEMA_VERSION,
            "bundles": {"roots": [{"runs": runs}]},
        }))
        .unwrap();
        std::fs::write(&path, &text).unwrap();
        let sha = hex(&Sha256::digest(&text));
        let stamped: Vec<&str> = dirs.iter().map(String::as_str).collect();
        let e = read_stamped(&path, &stamped, &sha, ReadLimits::holding(16 << 20)).unwrap_err();
        assert!(
            e.contains("it holds more than the 16 MiB lith holds of one file it reads back"),
            "{e}"
        );
        // Refused at the run that passed the limit, well before the end.
        let column: usize = e
            .rsplit_once("at line 1 column ")
            .unwrap()
            .1
            .parse()
            .unwrap();
        assert!(column < text.len() * 3 / 4, "{e}");
        let kept = read_stamped(&path, &stamped, &sha, ReadLimits::holding(64 << 20)).unwrap();
        assert_eq!(kept.len(), 100);
        // A report of another schema version is not read on.
        let other = String::from_utf8(text)
            .unwrap()
            .replace(crate::report::SCHEMA_VERSION, "lith.report/v1");
        std::fs::write(&path, &other).unwrap();
        let sha = hex(&Sha256::digest(other.as_bytes()));
        let e = read_stamped(&path, &stamped, &sha, ReadLimits::DEFAULT).unwrap_err();
        assert!(e.contains("another schema version"), "{e}");
    }

    #[test]
    fn a_stamp_changes_with_anything_in_the_tree_and_only_then() {
        let t = tempfile::tempdir().unwrap();
        let run = t.path().join("run");
        std::fs::create_dir_all(run.join("sub/deep")).unwrap();
        std::fs::write(run.join("a.txt"), "alpha").unwrap();
        std::fs::write(run.join("sub/deep/b.txt"), "bravo").unwrap();
        std::os::unix::fs::symlink("a.txt", run.join("link")).unwrap();
        let r = settled();
        let stamp = || stamp(&r, &run).unwrap();
        let mut last = stamp();
        assert_eq!(stamp(), last, "nothing changed");
        type Change<'a> = (&'static str, Box<dyn Fn() + 'a>);
        let changes: [Change; 5] = [
            (
                "a byte in place",
                Box::new(|| std::fs::write(run.join("a.txt"), "alphA").unwrap()),
            ),
            (
                "a deep file",
                Box::new(|| std::fs::write(run.join("sub/deep/b.txt"), "bravO").unwrap()),
            ),
            (
                "a new file deep down",
                Box::new(|| std::fs::write(run.join("sub/deep/c.txt"), "").unwrap()),
            ),
            (
                "a link retargeted",
                Box::new(|| {
                    std::fs::remove_file(run.join("link")).unwrap();
                    std::os::unix::fs::symlink("sub", run.join("link")).unwrap();
                }),
            ),
            (
                "permissions",
                Box::new(|| {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(
                        run.join("a.txt"),
                        std::fs::Permissions::from_mode(0o600),
                    )
                    .unwrap();
                }),
            ),
        ];
        for (what, change) in changes {
            // Past the file system clock's tick, as the two seconds a build waits are.
            std::thread::sleep(std::time::Duration::from_millis(30));
            change();
            let now = stamp();
            assert_ne!(now, last, "{what}");
            last = now;
        }
    }

    /// The stamp of `run` taken the way a run that is read anyway is stamped: its
    /// files looked at through the handles that `read` opens.
    fn stamp_read(r: &Reuse, run: &Path, read: impl FnOnce(&Dir)) -> Option<Stamp> {
        let mut dir = Dir::open(run).unwrap();
        let mut stamping = Stamping::waiting(&dir);
        super::super::verify::list_run(&dir, Some(&mut stamping));
        dir.watch(stamping.watch().expect("files wait for their handles"));
        read(&dir);
        r.finish(stamping, &dir)
    }

    fn open(dir: &Dir, rel: &str) {
        let parts: Vec<&str> = rel.split('/').collect();
        let (mut f, _) = dir.open_file(&parts).unwrap();
        std::io::copy(&mut f, &mut std::io::sink()).unwrap();
    }

    #[test]
    fn a_stamp_taken_through_the_handles_that_read_the_files_is_the_stamp_taken_by_looking() {
        let t = tempfile::tempdir().unwrap();
        let run = t.path().join("run");
        std::fs::create_dir_all(run.join("sub/deep")).unwrap();
        for (name, text) in [
            ("a.txt", "alpha"),
            ("b.txt", "bravo"),
            ("sub/deep/c.txt", "charlie"),
            ("unread.txt", "never opened"),
        ] {
            std::fs::write(run.join(name), text).unwrap();
        }
        std::fs::hard_link(run.join("a.txt"), run.join("sub/a-again.txt")).unwrap();
        std::os::unix::fs::symlink("sub/deep/c.txt", run.join("to-c")).unwrap();
        std::fs::write(
            run.join(std::ffi::OsStr::from_bytes(b"sub/not-utf8-\xff.txt")),
            "x",
        )
        .unwrap();
        let r = settled();
        let looked = stamp(&r, &run).unwrap();
        // Some read directly, one through a link, one by another hard link, some
        // never opened: all the same stamp.
        let reads: [&[&str]; 4] = [
            &[],
            &["a.txt", "b.txt", "sub/deep/c.txt", "unread.txt"],
            &["to-c", "sub/a-again.txt"],
            &["b.txt", "b.txt", "sub/deep/c.txt"],
        ];
        for read in reads {
            let through = stamp_read(&r, &run, |d| {
                for rel in read {
                    open(d, rel);
                }
            });
            assert_eq!(through, Some(looked), "reading {read:?}");
        }
        // More files than wait for their handles: the rest are looked at as listed.
        for i in 0..MAX_WAITING + 3 {
            std::fs::write(run.join(format!("many-{i:05}")), "").unwrap();
        }
        let looked = stamp(&r, &run).unwrap();
        let through = stamp_read(&r, &run, |d| open(d, "many-00002")).unwrap();
        assert_eq!(through, looked);
        // A waiting file that goes away before its stat is taken: no stamp.
        let gone = stamp_read(&r, &run, |_| {
            std::fs::remove_file(run.join("b.txt")).unwrap();
        });
        assert_eq!(gone, None);
    }

    #[test]
    fn a_file_changed_after_it_was_read_leaves_a_stamp_the_next_build_does_not_match() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("a.txt"), "alpha").unwrap();
        std::fs::write(t.path().join("b.txt"), "bravo").unwrap();
        // Nothing counts as too recent here: only the stats taken can tell.
        let r = settled();
        let taken = stamp_read(&r, t.path(), |d| {
            open(d, "a.txt");
            std::thread::sleep(std::time::Duration::from_millis(30));
            std::fs::write(t.path().join("a.txt"), "alphA").unwrap();
        })
        .unwrap();
        // The stamp is of the file as it was read, not as it is now.
        assert_ne!(Some(taken), stamp(&r, t.path()));
    }

    #[test]
    fn a_folder_changed_just_now_is_not_stamped() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("a.txt"), "alpha").unwrap();
        let r = Reuse::fresh(Mode::Full, &[]);
        assert_eq!(stamp(&r, t.path()), None);
        assert!(stamp(&settled(), t.path()).is_some());
    }

    #[test]
    fn stamps_of_other_options_are_void() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("site");
        std::fs::create_dir(&out).unwrap();
        // Written by a full build, read by a fast one: void, and the reason says so.
        let full = Reuse::fresh(Mode::Full, &[]);
        std::fs::write(
            crate::site::stamps_path(&out).unwrap(),
            format!("{MAGIC} {} {}\n", full.key, "0".repeat(64)),
        )
        .unwrap();
        let mut fast = Reuse::fresh(Mode::Fast, &[]);
        let err = fast.load(&out, ReadLimits::DEFAULT).unwrap_err();
        assert!(err.contains("other options"), "{err}");
        let mut full = Reuse::fresh(Mode::Full, &[]);
        let err = full.load(&out, ReadLimits::DEFAULT).unwrap_err();
        assert!(err.contains("report.json"), "{err}");
        std::fs::write(crate::site::stamps_path(&out).unwrap(), "garbage\n").unwrap();
        assert!(full.load(&out, ReadLimits::DEFAULT).is_err());
    }
}
