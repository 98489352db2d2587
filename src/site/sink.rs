//! Where the site's files go. A fresh site is written straight into an empty folder;
//! a rebuild into a previous site updates it in place, file by file: a file whose
//! bytes are unchanged is left alone (its inode and mtime too, so a deploy step
//! that syncs by mtime or checksum ships only what changed), a changed one is
//! written to a temporary name in its folder and renamed over the old one, so a
//! reader sees either the old file or the new one, never a mix. Files the new site
//! no longer has are removed last ([`Sink::sweep`]).
//!
//! Nothing is followed: a symlink found where a folder of the site belongs is
//! refused, and a file is replaced by `rename`, which replaces a symlink itself
//! rather than writing through it.

use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::Error;
use crate::beneath::Dir;

/// Temporary files of an update start with this (and are swept when a build that
/// wrote them was killed).
const TMP_PREFIX: &str = ".lith-tmp-";

pub struct Sink {
    dir: PathBuf,
    update: bool,
    /// The site folder's handle, opened once: every folder and file of the site is
    /// made, looked at, replaced and removed beneath it, one name at a time from
    /// the handle of the folder that holds it, so a folder swapped for a link
    /// after it was looked at is refused rather than written through.
    root: std::sync::OnceLock<Arc<Dir>>,
    /// Every file put, relative to `dir` (what [`Sink::sweep`] keeps). Only an
    /// update sweeps, so only an update remembers.
    put: Mutex<BTreeSet<String>>,
    /// The handles of the folders directly in the site, once opened. A deeper
    /// folder (a run page's) is opened once per file put in it, so keeping the
    /// 100,000 of a large site would only cost descriptors.
    dirs: Mutex<std::collections::HashMap<String, Arc<Dir>>>,
    written: AtomicUsize,
    unchanged: AtomicUsize,
}

/// What an update did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub written: usize,
    pub unchanged: usize,
    pub removed: usize,
    /// The sha256 of the `report.json` the site holds, once it is published.
    pub report_sha256: Option<[u8; 32]>,
}

/// A file written beside where it belongs ([`Sink::stream_aside`]), not yet in
/// its place.
pub(crate) struct Aside<'s> {
    sink: &'s Sink,
    dir: Arc<Dir>,
    /// The temporary name, until the file is placed.
    tmp: Option<Vec<u8>>,
    rel: String,
    sha256: [u8; 32],
}

impl Aside<'_> {
    /// Moves the file into its place, unless the file there holds the same bytes
    /// (then the one aside is removed and the old one left untouched). Returns the
    /// sha256 of its bytes.
    pub(crate) fn place(mut self) -> Result<[u8; 32], Error> {
        let tmp = self.tmp.take().expect("an aside file is placed once");
        let sink = self.sink;
        let name = self.rel.rsplit('/').next().unwrap_or(&self.rel);
        if sink.update && same_files(&self.dir, name.as_bytes(), &tmp) {
            let _ = self.dir.remove(&tmp, false);
            sink.unchanged.fetch_add(1, Ordering::Relaxed);
            return Ok(self.sha256);
        }
        sink.written.fetch_add(1, Ordering::Relaxed);
        self.dir.rename(&tmp, name.as_bytes()).map_err(|source| {
            let _ = self.dir.remove(&tmp, false);
            Error::Write {
                rel: self.rel.clone(),
                source,
            }
        })?;
        Ok(self.sha256)
    }
}

impl Drop for Aside<'_> {
    fn drop(&mut self) {
        if let Some(tmp) = &self.tmp {
            let _ = self.dir.remove(tmp, false);
        }
    }
}

impl Sink {
    /// Writes into `dir`, an empty folder.
    pub fn fresh(dir: &Path) -> Sink {
        Sink::new(dir, false)
    }

    /// Updates the site in `dir` in place.
    pub fn update(dir: &Path) -> Sink {
        Sink::new(dir, true)
    }

    fn new(dir: &Path, update: bool) -> Sink {
        Sink {
            dir: dir.to_path_buf(),
            update,
            root: std::sync::OnceLock::new(),
            put: Mutex::new(BTreeSet::new()),
            dirs: Mutex::new(std::collections::HashMap::new()),
            written: AtomicUsize::new(0),
            unchanged: AtomicUsize::new(0),
        }
    }

    /// Puts one file of the site, `rel` being its `/`-separated path in the site.
    pub fn put(&self, rel: &str, bytes: impl AsRef<[u8]>) -> Result<(), Error> {
        self.put_bytes(rel, bytes.as_ref())
            .map_err(|source| Error::Write {
                rel: rel.to_string(),
                source,
            })
    }

    /// Renders a page and puts it at `rel`.
    pub fn page(&self, rel: &str, page: &impl askama::Template) -> Result<(), Error> {
        let html = page.render().map_err(|source| Error::Render {
            rel: rel.to_string(),
            source,
        })?;
        self.put(rel, html)
    }

    /// Puts `value` as JSON at `rel`: compact for programs, `pretty` for files
    /// people read too. Ends with a newline. Streamed (see [`Sink::stream`]):
    /// `report.json` is the largest thing a build writes. Returns the sha256 of
    /// its bytes.
    pub fn json(
        &self,
        rel: &str,
        value: &impl serde::Serialize,
        pretty: bool,
    ) -> Result<[u8; 32], Error> {
        self.json_aside(rel, value, pretty)?.place()
    }

    /// [`Sink::json`] written beside its place, to be placed later
    /// ([`Sink::stream_aside`]).
    pub(crate) fn json_aside(
        &self,
        rel: &str,
        value: &impl serde::Serialize,
        pretty: bool,
    ) -> Result<Aside<'_>, Error> {
        self.stream_aside(rel, |w| {
            if pretty {
                serde_json::to_writer_pretty(&mut *w, value)?;
            } else {
                crate::wire::compact(|| serde_json::to_writer(&mut *w, value))?;
            }
            w.write_all(b"\n").map_err(serde_json::Error::io)
        })
    }

    /// Puts at `rel` the bytes `write` writes, never whole in memory: they go
    /// straight into a temporary file beside `rel`, which replaces `rel` unless
    /// the two files hold the same bytes. Returns the sha256 of those bytes.
    pub fn stream(
        &self,
        rel: &str,
        write: impl FnOnce(&mut dyn Write) -> Result<(), serde_json::Error>,
    ) -> Result<[u8; 32], Error> {
        self.stream_aside(rel, write)?.place()
    }

    /// Writes what [`Sink::stream`] puts at `rel` into its temporary file beside
    /// `rel`, and leaves it there until [`Aside::place`]: a large file can be
    /// written while other pages are, and still take its place after them. An
    /// `Aside` dropped unplaced removes its file.
    pub(crate) fn stream_aside(
        &self,
        rel: &str,
        write: impl FnOnce(&mut dyn Write) -> Result<(), serde_json::Error>,
    ) -> Result<Aside<'_>, Error> {
        let write_err = |source| Error::Write {
            rel: rel.to_string(),
            source,
        };
        let (dir, name) = self.parent_of(rel).map_err(write_err)?;
        self.remember(rel);
        let tmp = temp_name(name);
        let encoded = (|| {
            let mut w = std::io::BufWriter::with_capacity(
                256 * 1024,
                Hashing {
                    file: dir.create_file(&tmp).map_err(serde_json::Error::io)?,
                    sha256: Sha256::new(),
                },
            );
            write(&mut w)?;
            let done = w
                .into_inner()
                .map_err(|e| serde_json::Error::io(e.into_error()))?;
            Ok::<[u8; 32], serde_json::Error>(done.sha256.finalize().into())
        })();
        let sha256 = match encoded {
            Ok(sha256) => sha256,
            Err(e) => {
                let _ = dir.remove(&tmp, false);
                return Err(match e.io_error_kind() {
                    Some(kind) => write_err(std::io::Error::new(kind, e)),
                    None => Error::Encode {
                        rel: rel.to_string(),
                        source: e,
                    },
                });
            }
        };
        Ok(Aside {
            sink: self,
            dir,
            tmp: Some(tmp),
            rel: rel.to_string(),
            sha256,
        })
    }

    fn put_bytes(&self, rel: &str, bytes: &[u8]) -> std::io::Result<()> {
        let (dir, name) = self.parent_of(rel)?;
        self.remember(rel);
        if self.update && same_bytes(&dir, name.as_bytes(), bytes) {
            self.unchanged.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        self.written.fetch_add(1, Ordering::Relaxed);
        if !self.update {
            return dir.create_file(name.as_bytes())?.write_all(bytes);
        }
        let tmp = temp_name(name);
        let written = dir.create_file(&tmp)?.write_all(bytes);
        written
            .and_then(|()| dir.rename(&tmp, name.as_bytes()))
            .inspect_err(|_| {
                let _ = dir.remove(&tmp, false);
            })
    }

    /// Notes a file put, for the sweep of an update.
    fn remember(&self, rel: &str) {
        if self.update {
            self.put.lock().unwrap().insert(rel.to_string());
        }
    }

    /// The site folder's handle.
    fn root(&self) -> std::io::Result<Arc<Dir>> {
        if let Some(root) = self.root.get() {
            return Ok(root.clone());
        }
        let opened = Arc::new(Dir::open(&self.dir)?);
        Ok(self.root.get_or_init(|| opened).clone())
    }

    /// The handle of the folder that holds `rel`, its folders made where missing
    /// and refused where anything but a folder stands (never followed), and the
    /// name of `rel` in it.
    fn parent_of<'r>(&self, rel: &'r str) -> std::io::Result<(Arc<Dir>, &'r str)> {
        let (folders, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        let mut dir = self.root()?;
        if folders.is_empty() {
            return Ok((dir, name));
        }
        let mut end = 0;
        for (depth, folder) in folders.split('/').enumerate() {
            // `at` is this folder's path in the site.
            end += folder.len() + usize::from(depth > 0);
            if depth == 0 {
                let cached = self.dirs.lock().unwrap().get(folder).cloned();
                if let Some(top) = cached {
                    dir = top;
                    continue;
                }
            }
            dir = Arc::new(self.folder_in(&dir, folder, &rel[..end])?);
            if depth == 0 {
                self.dirs
                    .lock()
                    .unwrap()
                    .insert(folder.to_string(), dir.clone());
            }
        }
        Ok((dir, name))
    }

    /// The folder `name` of `parent` (`at` in the site), made when missing.
    fn folder_in(&self, parent: &Dir, name: &str, at: &str) -> std::io::Result<Dir> {
        let name = name.as_bytes();
        let not_a_folder = || {
            std::io::Error::other(format!(
                "{} is in the site but is not a folder (a symlink or a file); remove it and build again",
                self.dir.join(at).display()
            ))
        };
        let refused = |e: std::io::Error| match e.raw_os_error() {
            Some(libc::ELOOP) | Some(libc::ENOTDIR) => not_a_folder(),
            _ => e,
        };
        // A rebuild: most folders are there already. A first build into a fresh
        // folder: nothing is there yet.
        if self.update {
            match parent.folder(name) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                opened => return opened.map_err(refused),
            }
        }
        match parent.make_folder(name) {
            Ok(()) => {}
            // There already (or made meanwhile): judged by what it is when opened.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        parent.folder(name).map_err(refused)
    }

    /// What was put so far (nothing removed).
    pub fn stats(&self) -> Stats {
        Stats {
            written: self.written.load(Ordering::Relaxed),
            unchanged: self.unchanged.load(Ordering::Relaxed),
            removed: 0,
            report_sha256: None,
        }
    }

    /// Removes every file and folder of the site that was not put, but `keep`
    /// (names at the top of the site), and temporary files of killed builds. A
    /// fresh sink wrote into an empty folder and remembers nothing it put: there is
    /// nothing to sweep, and it removes nothing.
    pub fn sweep(&self, keep: &[&str]) -> Result<Stats, Error> {
        if !self.update {
            return Ok(self.stats());
        }
        self.sweep_io(keep).map_err(Error::publish(
            "removing what the new site no longer has from",
            &self.dir,
        ))
    }

    fn sweep_io(&self, keep: &[&str]) -> std::io::Result<Stats> {
        use crate::beneath::{EntryKind, Met, Unwalked};
        use std::ops::ControlFlow;
        let put = self.put.lock().unwrap();
        let removed = AtomicUsize::new(0);
        // Each folder is listed through its own handle, opened from its parent's
        // without following a link, and what is not kept is removed beneath the
        // handle of the folder that listed it: a folder swapped for a link mid-sweep
        // is refused, never walked into, so nothing outside the site is removed. A
        // folder nothing put lives beneath goes whole; a kept one is walked for
        // what it holds besides. The folders of a folder are swept in parallel (a
        // rebuild of 100,000 runs lists 100,000 of them).
        let site = self.root()?;
        let walked = site.walk_tree_par(&|met| match met {
            Met::Unwalked(rel, why) => ControlFlow::Break(std::io::Error::other(format!(
                "{rel}: {}",
                match why {
                    Unwalked::Open(e) | Unwalked::List(e) => e.to_string(),
                    Unwalked::TooDeep => "nested too deep".to_string(),
                }
            ))),
            Met::Entry(e) => {
                if e.depth == 1 && keep.iter().any(|k| k.as_bytes() == e.name) {
                    return ControlFlow::Continue(false);
                }
                // A name that is not UTF-8 was never put.
                let rel = std::str::from_utf8(e.raw_rel).ok();
                let gone = if e.kind == EntryKind::Folder {
                    let used = rel.is_some_and(|rel| {
                        let prefix = format!("{rel}/");
                        put.range(prefix.clone()..)
                            .next()
                            .is_some_and(|p| p.starts_with(&prefix))
                    });
                    if used {
                        return ControlFlow::Continue(true);
                    }
                    remove_tree(e.dir, e.name, e.depth)
                } else if rel.is_some_and(|rel| put.contains(rel)) {
                    return ControlFlow::Continue(false);
                } else {
                    e.dir.remove(e.name, false).map(|()| 1)
                };
                match gone {
                    Ok(n) => {
                        removed.fetch_add(n, Ordering::Relaxed);
                        ControlFlow::Continue(false)
                    }
                    Err(err) => ControlFlow::Break(std::io::Error::new(
                        err.kind(),
                        format!("{}: {err}", e.rel),
                    )),
                }
            }
        });
        if let ControlFlow::Break(e) = walked {
            return Err(e);
        }
        Ok(Stats {
            removed: removed.into_inner(),
            ..self.stats()
        })
    }
}

/// Removes the folder `name` of `parent` and everything in it, each entry beneath
/// the handle of the folder that holds it (a link is removed, never followed), at
/// most [`crate::beneath::MAX_TREE_DEPTH`] below the site. Returns how many
/// entries were removed.
fn remove_tree(parent: &crate::beneath::Dir, name: &[u8], depth: usize) -> std::io::Result<usize> {
    use crate::beneath::EntryKind;
    if depth > crate::beneath::MAX_TREE_DEPTH {
        return Err(std::io::Error::other("nested too deep"));
    }
    let dir = parent.folder(name)?;
    let mut removed = 0;
    for (entry, kind, _) in dir.entries()? {
        removed += if kind == EntryKind::Folder {
            remove_tree(&dir, &entry, depth + 1)?
        } else {
            dir.remove(&entry, false)?;
            1
        };
    }
    drop(dir);
    parent.remove(name, true)?;
    Ok(removed + 1)
}

/// True when the entry `name` of `dir` is a regular file (not a symlink) holding
/// exactly `bytes`.
fn same_bytes(dir: &Dir, name: &[u8], bytes: &[u8]) -> bool {
    let Ok(mut f) = dir.open_entry(name) else {
        return false;
    };
    match f.metadata() {
        Ok(m) if m.is_file() && m.len() == bytes.len() as u64 => {}
        _ => return false,
    }
    let mut old = Vec::with_capacity(bytes.len());
    Read::by_ref(&mut f)
        .take(bytes.len() as u64 + 1)
        .read_to_end(&mut old)
        .is_ok()
        && old == bytes
}

/// A file that hashes what is written to it.
struct Hashing {
    file: std::fs::File,
    sha256: Sha256,
}

impl Write for Hashing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.sha256.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// A fresh temporary name beside `name` (swept if the build is killed).
fn temp_name(name: &str) -> Vec<u8> {
    format!("{TMP_PREFIX}{name}-{}", uuid::Uuid::new_v4().simple()).into_bytes()
}

/// True when the entry `old` of `dir` is a regular file (not a symlink) with the
/// same bytes as its entry `new`, compared a block at a time.
fn same_files(dir: &Dir, old: &[u8], new: &[u8]) -> bool {
    let open = |name: &[u8]| dir.open_entry(name);
    let (Ok(a), Ok(b)) = (open(old), open(new)) else {
        return false;
    };
    match (a.metadata(), b.metadata()) {
        (Ok(ma), Ok(mb)) if ma.is_file() && ma.len() == mb.len() => {}
        _ => return false,
    }
    let (mut a, mut b) = (
        std::io::BufReader::with_capacity(64 * 1024, a),
        std::io::BufReader::with_capacity(64 * 1024, b),
    );
    loop {
        let (Ok(x), Ok(y)) = (a.fill_buf(), b.fill_buf()) else {
            return false;
        };
        let n = x.len().min(y.len());
        if n == 0 {
            return x.is_empty() && y.is_empty();
        }
        if x[..n] != y[..n] {
            return false;
        }
        a.consume(n);
        b.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_sink_sweeps_nothing_it_put() {
        let dir = tempfile::tempdir().unwrap();
        let s = Sink::fresh(dir.path());
        s.put("runs/x/index.html", b"x").unwrap();
        s.put("index.html", b"i").unwrap();
        assert_eq!(s.sweep(&[]).unwrap().removed, 0);
        assert!(dir.path().join("runs/x/index.html").exists());
        assert!(dir.path().join("index.html").exists());
    }

    #[test]
    fn an_update_writes_only_what_changed_and_sweeps_what_vanished() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let s = Sink::fresh(d);
        for (rel, body) in [
            ("a.html", "a"),
            ("runs/x/index.html", "x"),
            ("runs/y/index.html", "y"),
        ] {
            s.put(rel, body.as_bytes()).unwrap();
        }
        std::fs::write(d.join(".gitignore"), "*").unwrap();
        let ino = |rel: &str| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(d.join(rel)).unwrap().ino()
        };
        let before = (ino("a.html"), ino("runs/x/index.html"));
        // A killed build's temporary file is swept too.
        std::fs::write(d.join("runs/.lith-tmp-index.html-1"), "half").unwrap();
        let u = Sink::update(d);
        u.put("a.html", b"a").unwrap();
        u.put("runs/x/index.html", b"x2").unwrap();
        let stats = u.sweep(&[".gitignore"]).unwrap();
        assert_eq!(
            stats,
            Stats {
                written: 1,
                unchanged: 1,
                removed: 3,
                report_sha256: None,
            }
        );
        assert_eq!(
            ino("a.html"),
            before.0,
            "an unchanged file is not rewritten"
        );
        assert_ne!(ino("runs/x/index.html"), before.1);
        assert_eq!(
            std::fs::read_to_string(d.join("runs/x/index.html")).unwrap(),
            "x2"
        );
        assert!(!d.join("runs/y").exists() && !d.join("runs/.lith-tmp-index.html-1").exists());
        assert!(d.join(".gitignore").exists());
    }

    #[test]
    fn json_is_streamed_through_a_temporary_file_and_left_alone_when_unchanged() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let d = dir.path();
        let value = serde_json::json!({"a": [1, 2, 3], "b": "x"});
        let written = Sink::fresh(d).json("report.json", &value, false).unwrap();
        assert_eq!(
            std::fs::read_to_string(d.join("report.json")).unwrap(),
            "{\"a\":[1,2,3],\"b\":\"x\"}\n"
        );
        let digest: [u8; 32] = Sha256::digest(std::fs::read(d.join("report.json")).unwrap()).into();
        assert_eq!(written, digest, "the sha256 of the bytes in the file");
        let inode = std::fs::metadata(d.join("report.json")).unwrap().ino();
        let u = Sink::update(d);
        assert_eq!(u.json("report.json", &value, false).unwrap(), digest);
        assert_eq!(
            std::fs::metadata(d.join("report.json")).unwrap().ino(),
            inode,
            "same bytes: untouched"
        );
        assert_eq!((u.stats().written, u.stats().unchanged), (0, 1));
        // Same length, other bytes: replaced.
        u.json(
            "report.json",
            &serde_json::json!({"a": [1, 2, 4], "b": "x"}),
            false,
        )
        .unwrap();
        assert!(
            std::fs::read_to_string(d.join("report.json"))
                .unwrap()
                .contains("[1,2,4]")
        );
        // A symlink where the file belongs is replaced, its target left alone.
        std::os::unix::fs::symlink(elsewhere.path().join("t"), d.join("other.json")).unwrap();
        std::fs::write(elsewhere.path().join("t"), "{}\n").unwrap();
        u.json("other.json", &serde_json::json!({}), true).unwrap();
        assert!(
            std::fs::symlink_metadata(d.join("other.json"))
                .unwrap()
                .is_file()
        );
        assert_eq!(
            std::fs::read_to_string(elsewhere.path().join("t")).unwrap(),
            "{}\n"
        );
        let names: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names.iter().any(|n| n.starts_with(TMP_PREFIX)),
            "{names:?}"
        );
    }

    /// A file written aside stays out of its place until placed: the old file
    /// is whole until then; one dropped unplaced (its build failed) leaves
    /// nothing behind.
    #[test]
    fn a_file_written_aside_takes_its_place_only_when_placed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("report.json"), "old\n").unwrap();
        let temps = || -> Vec<String> {
            std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(TMP_PREFIX))
                .collect()
        };
        let u = Sink::update(d);
        let aside = u.json_aside("report.json", &[1, 2], false).unwrap();
        assert_eq!(
            std::fs::read_to_string(d.join("report.json")).unwrap(),
            "old\n"
        );
        assert_eq!(temps().len(), 1);
        drop(aside);
        assert_eq!(
            std::fs::read_to_string(d.join("report.json")).unwrap(),
            "old\n"
        );
        assert_eq!(temps(), Vec::<String>::new());
        assert_eq!(u.stats().written, 0);

        let aside = u.json_aside("report.json", &[1, 2], false).unwrap();
        u.put("index.html", "page").unwrap();
        let sha256 = aside.place().unwrap();
        let bytes = std::fs::read(d.join("report.json")).unwrap();
        assert_eq!(bytes, b"[1,2]\n");
        assert_eq!(sha256, <[u8; 32]>::from(Sha256::digest(&bytes)));
        assert_eq!(temps(), Vec::<String>::new());
        assert_eq!(u.stats().written, 2);
        // Placed again with the same bytes: the file is left as it is.
        u.json_aside("report.json", &[1, 2], false)
            .unwrap()
            .place()
            .unwrap();
        assert_eq!(u.stats().unchanged, 1);
        assert_eq!(temps(), Vec::<String>::new());
    }

    #[test]
    fn a_symlink_in_the_site_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::os::unix::fs::symlink(elsewhere.path(), d.join("runs")).unwrap();
        std::os::unix::fs::symlink(elsewhere.path().join("t"), d.join("index.html")).unwrap();
        let u = Sink::update(d);
        assert!(u.put("runs/x/index.html", b"x").is_err());
        u.put("index.html", b"new").unwrap();
        assert!(
            std::fs::symlink_metadata(d.join("index.html"))
                .unwrap()
                .is_file()
        );
        assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    }

    /// A first build makes folders with `mkdir` before looking: a symlink planted
    /// where a folder belongs makes `mkdir` fail, and is then refused, not followed.
    #[test]
    fn a_fresh_site_refuses_a_symlink_planted_where_a_folder_belongs() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::os::unix::fs::symlink(elsewhere.path(), d.join("runs")).unwrap();
        let f = Sink::fresh(d);
        let err = f.put("runs/x/index.html", b"x").unwrap_err().to_string();
        assert!(err.contains("runs/x/index.html"), "{err}");
        assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
        f.put("assets/a.css", b"a").unwrap();
        assert_eq!(std::fs::read(d.join("assets/a.css")).unwrap(), b"a");
    }
}
