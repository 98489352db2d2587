//! Publishing a site: build it in a temporary folder beside the output, then swap it
//! in, so readers never see half a site and a failed build leaves the old one intact.
//!
//! Crash safety (SPEC §9): the swap is one `renameat2(RENAME_EXCHANGE)`, so at every
//! instant `--out` names either the old site or the new one, even under `kill -9`.
//! Where the filesystem cannot exchange, two renames are used and a kill between them
//! is repaired by the next publish (the old site is moved back before anything
//! else). Builds into one `--out` are serialized by a lock file beside it, and each
//! publish first sweeps the temporary folders that killed builds into that `--out`
//! left behind.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::Error;
use crate::fsutil::parent_dir;
use crate::report::Report;

/// Marks a folder as written by lith, so that `--out` never replaces anything else.
pub const MARKER: &str = ".lith-site";

/// Dotfiles in the old output folder that survive a rebuild (a `.gitignore` that
/// keeps the generated site out of version control, for example).
const KEPT: [&str; 2] = [".gitignore", ".gitkeep"];

/// The names of the helpers beside `out` (all start with `.<out's name>.lith-`, so
/// two outputs in one folder never touch each other's).
struct Beside {
    parent: PathBuf,
    /// `.<name>.lith-new-`: a site being written.
    new_prefix: String,
    /// `.<name>.lith-old-`: the previous site on its way out.
    old_prefix: String,
    /// `.<name>.lith-lock`: held while publishing.
    lock: PathBuf,
    /// `.<name>.lith-verified`: the stamps of the runs the site's report holds
    /// (`bundle::reuse`), written with `fsutil::write_atomic` under the lock.
    verified: PathBuf,
}

impl Beside {
    fn of(out: &Path) -> Result<Beside, Error> {
        let parent = parent_dir(out);
        let name = out
            .file_name()
            .ok_or_else(|| Error::Refused {
                path: out.to_path_buf(),
                reason: "it names no folder; choose another --out".into(),
            })?
            .to_string_lossy()
            .into_owned();
        Ok(Beside {
            lock: parent.join(format!(".{name}.lith-lock")),
            verified: parent.join(format!(".{name}.lith-verified")),
            new_prefix: format!(".{name}.lith-new-"),
            old_prefix: format!(".{name}.lith-old-"),
            parent,
        })
    }

    /// Leftovers of killed publishes into this output: `new` and `old` folders, and
    /// temporary files of the stamps.
    fn leftovers(&self) -> Result<Leftovers, Error> {
        let mut l = Leftovers::default();
        let stamps_temp = crate::fsutil::atomic_temp_prefix(&self.verified);
        let entries =
            std::fs::read_dir(&self.parent).map_err(Error::publish("listing", &self.parent))?;
        for e in entries.filter_map(Result::ok) {
            let name = e.file_name();
            let name = name.to_string_lossy();
            // Only folders and files (never a symlink planted under a matching name).
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() && name.starts_with(&self.new_prefix) {
                l.new.push(e.path());
            } else if t.is_dir() && name.starts_with(&self.old_prefix) {
                l.old.push(e.path());
            } else if t.is_file() && name.starts_with(&stamps_temp) {
                l.files.push(e.path());
            }
        }
        l.new.sort();
        l.old.sort();
        Ok(l)
    }
}

#[derive(Default)]
struct Leftovers {
    new: Vec<PathBuf>,
    old: Vec<PathBuf>,
    files: Vec<PathBuf>,
}

/// Where the stamps of the runs in `out`'s report live (beside `out`).
pub fn stamps_path(out: &Path) -> Result<PathBuf, Error> {
    Ok(Beside::of(out)?.verified)
}

/// Runs `f` holding the lock that builds into `out` take turns with.
pub fn while_locked<T>(out: &Path, f: impl FnOnce() -> T) -> Result<T, Error> {
    let beside = Beside::of(out)?;
    let _lock =
        crate::bundle::lock::acquire(&beside.lock, crate::bundle::lock::LockMode::Wait(LOCK_WAIT))
            .map_err(Error::Lock)?;
    Ok(f())
}

/// Publishes the site of `report` into `out`. A first build writes a whole site
/// beside `out` and moves it in with one rename; a rebuild into a previous site
/// updates it in place ([`super::Sink`]): unchanged files are not touched, each
/// changed file is swapped in by a rename, pages before the pages that link to
/// them, and files the new site no longer has go last.
pub fn publish(
    report: &mut Report,
    out: &Path,
    changes: super::Changes<'_>,
) -> Result<super::Stats, Error> {
    let parent = parent_dir(out);
    std::fs::create_dir_all(&parent).map_err(Error::publish("creating", &parent))?;
    let beside = Beside::of(out)?;
    // Builds into one `--out` take turns (the lock dies with its process).
    let _lock =
        crate::bundle::lock::acquire(&beside.lock, crate::bundle::lock::LockMode::Wait(LOCK_WAIT))
            .map_err(Error::Lock)?;
    recover(out, &beside)?;
    check_replaceable(out)?;
    if std::fs::symlink_metadata(out).is_ok() {
        let sink = super::Sink::update(out);
        let report_sha256 = super::write_site(report, &sink, changes)?;
        sink.put(MARKER, MARKER_TEXT)?;
        return Ok(super::Stats {
            report_sha256: Some(report_sha256),
            ..sink.sweep(&KEPT)?
        });
    }
    // A published site is meant to be read: the folder gets `0777` less the umask,
    // as `mkdir` gives any other.
    let tmp = tempfile::Builder::new()
        .prefix(&beside.new_prefix)
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o777))
        .tempdir_in(&parent)
        .map_err(Error::publish("creating a temporary folder in", &parent))?;
    let sink = super::Sink::fresh(tmp.path());
    let report_sha256 = super::write_site(report, &sink, changes)?;
    sink.put(MARKER, MARKER_TEXT)?;
    let stats = super::Stats {
        report_sha256: Some(report_sha256),
        ..sink.stats()
    };
    swap(tmp.keep(), out, &beside)?;
    Ok(stats)
}

const MARKER_TEXT: &str = "written by lith; safe to delete with the site\n";

/// How long a build waits for another build into the same `--out` to publish.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

/// Repairs what a killed publish left: a previous site moved aside but not replaced
/// goes back to `out`; every other leftover folder, and the temporary file of a
/// killed write of the stamps, is removed.
fn recover(out: &Path, beside: &Beside) -> Result<(), Error> {
    let Leftovers {
        new,
        mut old,
        files,
    } = beside.leftovers()?;
    if std::fs::symlink_metadata(out).is_err()
        && let Some(previous) = old.pop()
    {
        std::fs::rename(&previous, out)
            .map_err(Error::publish("restoring the previous site to", out))?;
    }
    for dir in new.iter().chain(&old) {
        std::fs::remove_dir_all(dir).map_err(Error::publish("removing the leftover", dir))?;
    }
    for file in &files {
        std::fs::remove_file(file).map_err(Error::publish("removing the leftover", file))?;
    }
    Ok(())
}

/// Refuses to replace a folder that lith did not write.
fn check_replaceable(out: &Path) -> Result<(), Error> {
    let meta = match std::fs::symlink_metadata(out) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::publish("examining", out)(e)),
    };
    let refused = |reason: String| Error::Refused {
        path: out.to_path_buf(),
        reason,
    };
    if !meta.is_dir() {
        return Err(refused(
            "it exists and is not a folder; choose another --out".into(),
        ));
    }
    if out.join(MARKER).exists() {
        return Ok(());
    }
    let foreign: Vec<String> = std::fs::read_dir(out)
        .map_err(Error::publish("listing", out))?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !KEPT.contains(&n.as_str()))
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    Err(refused(format!(
        "it holds files lith did not write (no {MARKER} marker); \
         choose an empty or new folder for --out"
    )))
}

/// Exchanges two paths atomically (both must exist).
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    let to_c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in a path"))
    };
    let (a, b) = (to_c(a)?, to_c(b)?);
    // SAFETY: two valid C strings; the call only names paths.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn swap(new: PathBuf, out: &Path, beside: &Beside) -> Result<(), Error> {
    if std::fs::symlink_metadata(out).is_err() {
        return std::fs::rename(&new, out).map_err(Error::publish("moving the new site to", out));
    }
    match exchange(&new, out) {
        // `new` now names the previous site.
        Ok(()) => {
            return std::fs::remove_dir_all(&new)
                .map_err(Error::publish("removing the previous site", &new));
        }
        // Filesystems without the exchange (and old kernels) take two renames.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {}
        Err(e) => {
            let _ = std::fs::remove_dir_all(&new);
            return Err(Error::publish("swapping the new site into", out)(e));
        }
    }
    let old = tempfile::Builder::new()
        .prefix(&beside.old_prefix)
        .tempdir_in(&beside.parent)
        .map_err(Error::publish(
            "creating a temporary folder in",
            &beside.parent,
        ))?
        .keep();
    std::fs::remove_dir(&old).map_err(Error::publish("removing", &old))?;
    std::fs::rename(out, &old).map_err(Error::publish("moving the old site out of", out))?;
    // A kill here leaves no `out`: the next publish moves `old` back (`recover`).
    if let Err(e) = std::fs::rename(&new, out) {
        // Put the previous site back: a failed build leaves it intact.
        let _ = std::fs::rename(&old, out);
        let _ = std::fs::remove_dir_all(&new);
        return Err(Error::publish("moving the new site to", out)(e));
    }
    std::fs::remove_dir_all(&old).map_err(Error::publish("removing the old site", &old))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kill_between_the_two_renames_is_repaired_and_leftovers_swept() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("site");
        let beside = Beside::of(&out).unwrap();
        // The state a kill between the fallback's renames leaves: no `site`, the
        // previous site aside, and a half-written new one.
        let old = dir.path().join(format!("{}x1", beside.old_prefix));
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(old.join("index.html"), "previous").unwrap();
        let half = dir.path().join(format!("{}x2", beside.new_prefix));
        std::fs::create_dir_all(&half).unwrap();
        // Another output's helpers and a planted symlink are left alone.
        let other = dir.path().join(".other.lith-new-x3");
        std::fs::create_dir_all(&other).unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(
            elsewhere.path(),
            dir.path().join(format!("{}x4", beside.old_prefix)),
        )
        .unwrap();
        // A write of the stamps killed midway.
        let stamps_temp = dir.path().join(format!(
            "{}x5.tmp",
            crate::fsutil::atomic_temp_prefix(&beside.verified)
        ));
        std::fs::write(&stamps_temp, "half").unwrap();
        recover(&out, &beside).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("index.html")).unwrap(),
            "previous"
        );
        assert!(!old.exists() && !half.exists() && !stamps_temp.exists());
        assert!(other.exists() && elsewhere.path().exists());
    }

    /// The changes are compared while the run pages are written. When that fails,
    /// the build stops with the compare's own error and publishes nothing that
    /// shows changes: a first site is never moved in, and a previous site keeps
    /// its `report.json` and overview, with no file left beside them.
    #[test]
    fn changes_that_cannot_be_compared_publish_nothing_that_shows_them() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("site");
        let failing = || -> super::super::Changes<'static> {
            Some(Box::new(|_| {
                Err(anyhow::anyhow!("report.json changed while it was compared"))
            }))
        };
        let mut report = crate::pipeline::demo_report();
        let e = publish(&mut report, &out, failing()).unwrap_err();
        assert!(matches!(e, Error::Changes(_)), "{e:?}");
        assert_eq!(e.to_string(), "report.json changed while it was compared");
        assert!(!out.exists());
        assert!(report.changes.is_none());
        let leftovers = |d: &Path| {
            let mut names: Vec<String> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        assert_eq!(leftovers(dir.path()), [".site.lith-lock"]);

        publish(&mut report, &out, None).unwrap();
        let before = |name: &str| std::fs::read(out.join(name)).unwrap();
        let (json, overview) = (before("report.json"), before("index.html"));
        let site_files = leftovers(&out);
        let e = publish(&mut report, &out, failing()).unwrap_err();
        assert!(matches!(e, Error::Changes(_)), "{e:?}");
        assert_eq!(before("report.json"), json);
        assert_eq!(before("index.html"), overview);
        assert_eq!(leftovers(&out), site_files);
        // The same compare succeeding puts its changes in the report and the site.
        let mut compared = report.clone();
        let previous = report.clone();
        publish(
            &mut compared,
            &out,
            Some(Box::new(move |new: &Report| {
                let text = serde_json::to_vec(&previous)?;
                Ok(crate::report::changes::compare(&text[..], new)?)
            })),
        )
        .unwrap();
        assert!(compared.changes.is_some());
        let written: serde_json::Value = serde_json::from_slice(&before("report.json")).unwrap();
        assert!(written["changes"].is_object(), "{written}");
        assert!(out.join("changes/index.html").exists());
    }

    #[test]
    fn exchange_swaps_two_folders() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        std::fs::write(a.join("f"), "a").unwrap();
        match exchange(&a, &b) {
            Ok(()) => assert_eq!(std::fs::read_to_string(b.join("f")).unwrap(), "a"),
            // A filesystem without the exchange: the fallback is tested above.
            Err(e) => assert!(matches!(
                e.raw_os_error(),
                Some(libc::EINVAL | libc::ENOSYS)
            )),
        }
    }
}
