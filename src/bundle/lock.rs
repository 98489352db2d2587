//! Writer locks (SPEC §3.7): an exclusive `flock` on a lock file that holds the
//! holder's pid, host and start time for diagnostics.
//!
//! `flock` dies with its process, so a writer killed with SIGKILL never leaves a lock
//! that blocks the next one. The lock file itself is never deleted (deleting it would
//! let two writers lock two different files).

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What to do when someone else holds the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Give up at once (exit 75).
    Fail,
    /// Wait up to this long, then give up (exit 75).
    Wait(Duration),
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{}: the lock is held by another writer ({holder}); try again later or use --lock wait", path.display())]
    Held { path: PathBuf, holder: String },
    #[error("{}: cannot take the lock: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct LockGuard {
    _file: File,
    pub path: PathBuf,
}

/// Takes the exclusive lock on `path`, creating the file if needed.
pub fn acquire(path: &Path, mode: LockMode) -> Result<LockGuard, LockError> {
    let io = |source| LockError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = crate::fsutil::beside_untrusted()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io)?;
    let deadline = match mode {
        LockMode::Fail => None,
        LockMode::Wait(d) => Some(Instant::now() + d),
    };
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) => {
                if deadline.is_some_and(|d| Instant::now() < d) {
                    std::thread::sleep(Duration::from_millis(25));
                    continue;
                }
                return Err(LockError::Held {
                    path: path.to_path_buf(),
                    holder: holder_of(&mut file),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
    }
    let note = format!(
        "pid={} host={} started_unix={}\n",
        std::process::id(),
        hostname(),
        time::OffsetDateTime::now_utc().unix_timestamp()
    );
    file.set_len(0).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    file.write_all(note.as_bytes()).map_err(io)?;
    Ok(LockGuard {
        _file: file,
        path: path.to_path_buf(),
    })
}

/// The holder's note, as one line: the lock file sits beside untrusted data, and
/// whoever can write there can write its note.
fn holder_of(file: &mut File) -> String {
    let mut bytes = Vec::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.take(512).read_to_end(&mut bytes);
    let s = String::from_utf8_lossy(&bytes);
    let s = s.trim();
    if s.is_empty() {
        "holder unknown".to_string()
    } else {
        crate::term::one_line(s).into_owned()
    }
}

pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_taker_fails_then_succeeds_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".runtime.lock");
        let first = acquire(&p, LockMode::Fail).unwrap();
        let content = std::fs::read_to_string(&p).unwrap();
        assert!(
            content.starts_with(&format!("pid={} host=", std::process::id())),
            "{content}"
        );
        match acquire(&p, LockMode::Fail) {
            Err(LockError::Held { holder, .. }) => assert!(holder.contains("pid="), "{holder}"),
            other => panic!("{other:?}"),
        }
        // A note planted by whoever can write beside the data stays on its line.
        std::fs::write(&p, "pid=1\n::error::spoofed \u{1b}[2J").unwrap();
        match acquire(&p, LockMode::Fail) {
            Err(LockError::Held { holder, .. }) => {
                assert_eq!(holder, "pid=1\\n::error::spoofed \\u{1b}[2J")
            }
            other => panic!("{other:?}"),
        }
        let t = Instant::now();
        assert!(acquire(&p, LockMode::Wait(Duration::from_millis(200))).is_err());
        assert!(t.elapsed() >= Duration::from_millis(200));
        drop(first);
        acquire(&p, LockMode::Fail).unwrap();
    }
}
