//! Opening untrusted paths beneath a directory handle (SPEC §3.4): the one
//! primitive every reader of a bundle, the workspace's evidence and gate inputs uses.
//!
//! A check by name followed by an open by name is a race: a parent folder swapped
//! for a symlink between the two makes a reader read outside. Here the base folder is
//! opened once, as a handle, and every path below it is resolved by the kernel
//! relative to that handle: with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`
//! where the kernel has it (Linux 5.6+), else component by component with
//! `openat(O_NOFOLLOW)`, reading each symlink met on the way with `readlinkat` and
//! following it only while it stays below the base. Either way the file that is
//! hashed is the one that was opened, and `fstat` on that handle says what it is. A
//! symlink that stays inside the base is followed (SPEC §3.4 judges a path by where
//! it resolves); one that leads outside is [`Refusal::Outside`], never a read.

use std::ffi::CString;
use std::fs::{File, Metadata};
use std::io;
use std::ops::ControlFlow;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

/// Why a path below the base was not opened.
#[derive(Debug)]
pub enum Refusal {
    /// Nothing there (or a symlink inside the base that dangles).
    Missing,
    /// A symlink (of the file or of a folder on the way) leads outside the base.
    Outside,
    /// There is something, but not a regular file (`folder`, `named pipe`, …).
    NotAFile(&'static str),
    /// It could not be opened (permissions, too many links, …).
    Io(io::Error),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Missing => write!(f, "no such file"),
            Refusal::Outside => write!(f, "a symbolic link leads outside the folder"),
            Refusal::NotAFile(kind) => write!(f, "is a {kind}, not a regular file"),
            Refusal::Io(e) => write!(f, "{e}"),
        }
    }
}

/// How a refused open reads where a file's contents were expected.
impl From<Refusal> for crate::fsutil::JsonReadError {
    fn from(r: Refusal) -> Self {
        use crate::fsutil::JsonReadError as E;
        match r {
            Refusal::Missing => E::NotFound,
            Refusal::Outside => E::NotRegularFile("symbolic link leading outside".into()),
            Refusal::NotAFile(kind) => E::NotRegularFile(kind.into()),
            Refusal::Io(e) => E::Io(e.to_string()),
        }
    }
}

/// A folder opened as a handle; paths are opened beneath it.
pub struct Dir {
    fd: OwnedFd,
    /// Told of each regular file opened beneath the handle.
    watch: Option<Arc<dyn Watch>>,
    /// The base's own entries as its listing found them, sorted by name, once the
    /// caller has said it reads the folder as of that listing
    /// ([`Dir::keep_listing`]).
    listed: Option<Box<[Listed]>>,
}

/// An entry of a folder as its listing found it: its name and kind.
pub type Listed = (Box<[u8]>, EntryKind);

impl std::fmt::Debug for Dir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dir")
            .field("fd", &self.fd)
            .field("watched", &self.watch.is_some())
            .field("listed", &self.listed.as_ref().map(|l| l.len()))
            .finish()
    }
}

/// What wants to know of every regular file opened beneath a [`Dir`]: it is told
/// what `fstat` said of the handle, before anything was read from it.
pub trait Watch: Send + Sync {
    fn opened(&self, meta: &Metadata);
}

/// The most symlinks followed while resolving one path (as the kernel's 40).
const MAX_LINKS: usize = 40;

/// Whether `openat2` works here: 0 unknown, 1 yes, 2 no (old kernel or a seccomp
/// filter that refuses it).
static OPENAT2: AtomicU8 = AtomicU8::new(0);

fn cstr(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a path"))
}

fn last_error() -> io::Error {
    io::Error::last_os_error()
}

fn openat(dir: RawFd, name: &[u8], flags: i32) -> io::Result<OwnedFd> {
    openat_mode(dir, name, flags, 0)
}

/// [`openat`] with the mode a file it creates gets (less the umask).
fn openat_mode(dir: RawFd, name: &[u8], flags: i32, mode: libc::c_uint) -> io::Result<OwnedFd> {
    let c = cstr(name)?;
    // SAFETY: `c` is a valid C string; the mode is passed as open(2) asks; the
    // returned fd, if any, is owned by us.
    let fd = unsafe { libc::openat(dir, c.as_ptr(), flags | libc::O_CLOEXEC, mode) };
    if fd < 0 {
        Err(last_error())
    } else {
        // SAFETY: a fresh descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

fn readlinkat(dir: RawFd, name: &[u8]) -> io::Result<Vec<u8>> {
    let c = cstr(name)?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: `buf` is writable for its length.
    let n = unsafe {
        libc::readlinkat(
            dir,
            c.as_ptr(),
            buf.as_mut_ptr().cast::<libc::c_char>(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(last_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

const READ_FLAGS: i32 = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY;

impl Dir {
    /// Opens `path` as the base. Its last component must not be a symlink, so a
    /// folder swapped for a link after it was found is refused.
    pub fn open(path: &Path) -> io::Result<Dir> {
        let fd = openat(
            libc::AT_FDCWD,
            path.as_os_str().as_bytes(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        )?;
        Ok(Dir {
            fd,
            watch: None,
            listed: None,
        })
    }

    /// Opens `path` as the base, following links on the way and in its last
    /// component, and returns it with the path it was found at, every link resolved:
    /// the folder the handle holds, whatever happens to the names afterwards.
    pub fn open_resolved(path: &Path) -> io::Result<(Dir, std::path::PathBuf)> {
        let fd = openat(
            libc::AT_FDCWD,
            path.as_os_str().as_bytes(),
            libc::O_RDONLY | libc::O_DIRECTORY,
        )?;
        let real = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .or_else(|_| std::fs::canonicalize(path))?;
        let dir = Dir {
            fd,
            watch: None,
            listed: None,
        };
        Ok((dir, real))
    }

    /// From now on, tells `watch` of every regular file opened beneath the base
    /// (not beneath folders opened from it with [`Dir::folder`]).
    pub fn watch(&mut self, watch: Arc<dyn Watch>) {
        self.watch = Some(watch);
    }

    /// From now on, answers for the base's own entries (a path of one component)
    /// from `entries`, the base's entries as a listing of it found them (each name
    /// once, as [`Dir::entries`] gives them): a name not listed is missing, and
    /// whether a name is a regular file is what the listing said, without asking
    /// the kernel again. A file listed is still opened to be read. For a caller
    /// that already reads the folder as of that listing (a run is listed before it
    /// is read), so a file created after it is not half seen.
    pub fn keep_listing(&mut self, mut entries: Vec<Listed>) {
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        self.listed = Some(entries.into_boxed_slice());
    }

    /// What the kept listing says of `rel`: `None` when there is none or `rel` is
    /// not one of the base's own entries, else the entry's kind if listed.
    fn listed_kind(&self, rel: &[&str]) -> Option<Option<EntryKind>> {
        let listed = self.listed.as_ref()?;
        let [name] = rel else { return None };
        Some(
            listed
                .binary_search_by(|(n, _)| (**n).cmp(name.as_bytes()))
                .ok()
                .map(|i| listed[i].1),
        )
    }

    /// Opens the regular file at `rel` (already lexically safe: no `..`, not
    /// absolute) beneath the base, and returns it with what `fstat` says of it.
    pub fn open_file(&self, rel: &[&str]) -> Result<(File, Metadata), Refusal> {
        let fd = self.open_beneath(rel)?;
        let file = File::from(fd);
        let meta = file.metadata().map_err(Refusal::Io)?;
        if !meta.is_file() {
            return Err(Refusal::NotAFile(crate::fsutil::kind_of(meta.file_type())));
        }
        if let Some(w) = &self.watch {
            w.opened(&meta);
        }
        Ok((file, meta))
    }

    /// Reads a regular file of at most `limit` bytes beneath the base.
    pub fn read(&self, rel: &[&str], limit: u64) -> Result<Vec<u8>, crate::fsutil::JsonReadError> {
        let (f, meta) = self.open_file(rel)?;
        crate::fsutil::read_bounded(f, meta.len(), limit)
    }

    /// Reads the base's own regular file `name` (one component) of at most `limit`
    /// bytes, refusing a symbolic link in its place (as [`crate::fsutil::read_regular`]
    /// does by path).
    pub fn read_own(
        &self,
        name: &[u8],
        limit: u64,
    ) -> Result<Vec<u8>, crate::fsutil::JsonReadError> {
        one_name(name).map_err(|e| crate::fsutil::JsonReadError::Io(e.to_string()))?;
        let opened = openat(self.fd.as_raw_fd(), name, READ_FLAGS | libc::O_NOFOLLOW);
        let (file, meta) = crate::fsutil::regular(opened.map(File::from))?;
        crate::fsutil::read_bounded(file, meta.len(), limit)
    }

    /// Reads and parses a JSON document beneath the base, bounded like every JSON
    /// input ([`crate::fsutil::MAX_JSON_BYTES`]).
    pub fn read_json(
        &self,
        rel: &[&str],
    ) -> Result<serde_json::Value, crate::fsutil::JsonReadError> {
        crate::fsutil::parse_json(&self.read(rel, crate::fsutil::MAX_JSON_BYTES)?)
    }

    /// Reads a JSON document beneath the base as its compact text, bounded and
    /// refused like [`Dir::read_json`] ([`crate::fsutil::parse_json_text`]).
    pub fn read_json_text(
        &self,
        rel: &[&str],
    ) -> Result<crate::json_text::JsonText, crate::fsutil::JsonReadError> {
        crate::fsutil::parse_json_text(self.read(rel, crate::fsutil::MAX_JSON_BYTES)?)
    }

    /// Whether `rel` is a regular file beneath the base reached without any symbolic
    /// link: no folder on the way and not the file itself may be a link (a stricter
    /// test than [`Dir::open_file`], for names whose mere presence decides something).
    pub fn regular_file_no_links(&self, rel: &[&str]) -> bool {
        if !lexically_beneath(rel) {
            return false;
        }
        if let Some(kind) = self.listed_kind(rel) {
            return kind == Some(EntryKind::File);
        }
        self.stat_no_links(rel.iter().map(|c| c.as_bytes()))
            .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG)
    }

    /// What `lstat` says of the entry at `rel` (components as listed) beneath the
    /// base, each folder on the way opened from the one before without following a
    /// link.
    pub fn stat_no_links<'a>(
        &self,
        rel: impl IntoIterator<Item = &'a [u8]>,
    ) -> io::Result<libc::stat> {
        let mut held: Option<OwnedFd> = None;
        let mut last: Option<&[u8]> = None;
        for name in rel {
            one_name(name)?;
            if let Some(folder) = last.replace(name) {
                let cur = held.as_ref().map_or(self.fd.as_raw_fd(), |f| f.as_raw_fd());
                held = Some(openat(
                    cur,
                    folder,
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                )?);
            }
        }
        let name = last.ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        let cur = held.as_ref().map_or(self.fd.as_raw_fd(), |f| f.as_raw_fd());
        fstatat_nofollow(cur, name)
    }

    /// What `fstat` says of the base folder itself.
    pub fn stat(&self) -> io::Result<libc::stat> {
        // SAFETY: an all-zero `stat` is valid plain data, filled by fstat.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: a valid descriptor and a writable struct.
        if unsafe { libc::fstat(self.fd.as_raw_fd(), &mut st) } < 0 {
            return Err(last_error());
        }
        Ok(st)
    }

    /// What `lstat` says of the entry `name` (one component) of the base.
    pub fn stat_at(&self, name: &[u8]) -> io::Result<libc::stat> {
        fstatat_nofollow(self.fd.as_raw_fd(), name)
    }

    /// Writes `bytes` to the entry `name` (one component) of the base so that
    /// readers see the old file or the new one, never a torn one, even across a
    /// crash: a temporary file (`.<name>.<random>.tmp`) is created exclusively in the
    /// base (never following a link), written, synced, renamed over `name` and the
    /// base synced, all through the handle. A folder swapped for a link after the
    /// handle was opened cannot redirect the write. The file's mode is `0666` less
    /// the umask.
    pub fn write_atomic(&self, name: impl AsRef<[u8]>, bytes: &[u8]) -> io::Result<()> {
        self.write_atomic_with(name, |w| w.write_all(bytes))
    }

    /// [`Dir::write_atomic`] of the bytes `write` writes, streamed into the
    /// temporary file rather than held whole.
    pub fn write_atomic_with(
        &self,
        name: impl AsRef<[u8]>,
        write: impl FnOnce(&mut dyn std::io::Write) -> io::Result<()>,
    ) -> io::Result<()> {
        use std::io::Write;
        let name = name.as_ref();
        one_name(name)?;
        let (tmp, file) = self.create_temp(name)?;
        let written = (|| {
            let mut w = std::io::BufWriter::with_capacity(256 * 1024, &file);
            write(&mut w)?;
            w.flush()
        })()
        .and_then(|()| file.sync_all());
        drop(file);
        let renamed = written.and_then(|()| {
            let (from, to) = (cstr(&tmp)?, cstr(name)?);
            let fd = self.fd.as_raw_fd();
            // SAFETY: valid descriptors and C strings.
            if unsafe { libc::renameat(fd, from.as_ptr(), fd, to.as_ptr()) } < 0 {
                return Err(last_error());
            }
            Ok(())
        });
        if let Err(e) = renamed {
            let _ = cstr(&tmp).map(|c| {
                // SAFETY: a valid descriptor and C string.
                unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), 0) }
            });
            return Err(e);
        }
        // SAFETY: a valid descriptor.
        if unsafe { libc::fsync(self.fd.as_raw_fd()) } < 0 {
            return Err(last_error());
        }
        Ok(())
    }

    /// Creates a temporary file for [`Dir::write_atomic`] of `name`.
    fn create_temp(&self, name: &[u8]) -> io::Result<(Vec<u8>, File)> {
        use std::hash::{BuildHasher, Hasher};
        let mut last = io::Error::from_raw_os_error(libc::EEXIST);
        for attempt in 0u32..16 {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u32(attempt);
            h.write_u32(std::process::id());
            let mut tmp = b".".to_vec();
            tmp.extend_from_slice(name);
            tmp.extend_from_slice(format!(".{:016x}.tmp", h.finish()).as_bytes());
            match self.create_file(&tmp) {
                Ok(file) => return Ok((tmp, file)),
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// Opens the folder `name` (one component) beneath the base, refusing a
    /// symbolic link in its place.
    pub fn folder(&self, name: &[u8]) -> io::Result<Dir> {
        one_name(name)?;
        let fd = openat(
            self.fd.as_raw_fd(),
            name,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        )?;
        Ok(Dir {
            fd,
            watch: None,
            listed: None,
        })
    }

    /// Makes the folder `name` (one component) in the base, mode `0777` less the
    /// umask; `mkdirat` never follows a link in the last place.
    pub fn make_folder(&self, name: &[u8]) -> io::Result<()> {
        one_name(name)?;
        let c = cstr(name)?;
        // SAFETY: a valid C string, and a descriptor this `Dir` owns.
        if unsafe { libc::mkdirat(self.fd.as_raw_fd(), c.as_ptr(), 0o777) } < 0 {
            return Err(last_error());
        }
        Ok(())
    }

    /// Creates the file `name` (one component) in the base for writing, mode
    /// `0666` less the umask: never over an existing name, never through a link.
    pub fn create_file(&self, name: &[u8]) -> io::Result<File> {
        one_name(name)?;
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        openat_mode(self.fd.as_raw_fd(), name, flags, 0o666).map(File::from)
    }

    /// Opens the entry `name` (one component) of the base for reading, refusing a
    /// link in its place; what it is (a file or not) is for the caller to ask.
    pub fn open_entry(&self, name: &[u8]) -> io::Result<File> {
        one_name(name)?;
        openat(self.fd.as_raw_fd(), name, READ_FLAGS | libc::O_NOFOLLOW).map(File::from)
    }

    /// Renames the entry `from` of the base to `to`, in the base, replacing what
    /// `to` names (a link there is replaced, never followed).
    pub fn rename(&self, from: &[u8], to: &[u8]) -> io::Result<()> {
        one_name(from)?;
        one_name(to)?;
        let (a, b) = (cstr(from)?, cstr(to)?);
        let fd = self.fd.as_raw_fd();
        // SAFETY: valid C strings, and a descriptor this `Dir` owns.
        if unsafe { libc::renameat(fd, a.as_ptr(), fd, b.as_ptr()) } < 0 {
            return Err(last_error());
        }
        Ok(())
    }

    /// Removes the entry `name` (one component) of the base: a file or a link
    /// itself (never what it points to), or with `folder` an empty folder.
    pub fn remove(&self, name: &[u8], folder: bool) -> io::Result<()> {
        one_name(name)?;
        let c = cstr(name)?;
        let flags = if folder { libc::AT_REMOVEDIR } else { 0 };
        // SAFETY: a valid C string, and a descriptor this `Dir` owns.
        if unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), flags) } < 0 {
            return Err(last_error());
        }
        Ok(())
    }

    /// The base folder's entries (not `.` and `..`), sorted by name, each with its
    /// type as the folder lists it (a link is a link, never what it points to) and
    /// its inode number.
    pub fn entries(&self) -> io::Result<Vec<(Vec<u8>, EntryKind, u64)>> {
        use rustix::fs::FileType;
        // A second handle of the folder, so the listing has an offset of its own
        // (the base's handle may be listed again, or by another thread); read with
        // `getdents64` directly, without a libc stream's checks of the handle.
        let fd = openat(
            self.fd.as_raw_fd(),
            b".",
            libc::O_RDONLY | libc::O_DIRECTORY,
        )?;
        let mut buf = Vec::with_capacity(32 * 1024);
        let mut listing = rustix::fs::RawDir::new(&fd, buf.spare_capacity_mut());
        let mut out = Vec::new();
        while let Some(entry) = listing.next() {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let kind = match entry.file_type() {
                FileType::Directory => EntryKind::Folder,
                FileType::RegularFile => EntryKind::File,
                FileType::Symlink => EntryKind::Link,
                FileType::Unknown => match fstatat_nofollow(self.fd.as_raw_fd(), name) {
                    Ok(st) => EntryKind::of_mode(st.st_mode),
                    Err(_) => EntryKind::Other,
                },
                _ => EntryKind::Other,
            };
            out.push((name.to_vec(), kind, entry.ino()));
        }
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Walks the tree below the base, depth first with each folder's entries in name
    /// order. `visit` meets every entry (a link as a link, never followed) and, for a
    /// folder, answers whether to walk into it. Each folder is opened from its
    /// parent's handle, refusing a link in its place, so a folder swapped for a
    /// symlink mid-walk is refused rather than walked into. A folder that cannot be
    /// opened or listed, or lies deeper than [`MAX_TREE_DEPTH`], is met as
    /// [`Met::Unwalked`]. The walk goes on until `visit` breaks it.
    pub fn walk_tree<S>(
        &self,
        visit: &mut dyn FnMut(Met<'_>) -> ControlFlow<S, bool>,
    ) -> ControlFlow<S> {
        walk_folder(self, &mut String::new(), &mut Vec::new(), 1, visit)
    }

    /// [`Dir::walk_tree`] with the folders of each folder walked in parallel (a
    /// folder's own entries are still met in name order, before its folders are
    /// walked). The walk ends, at the first break, with one of the breaks met.
    pub fn walk_tree_par<S: Send>(
        &self,
        visit: &(dyn Fn(Met<'_>) -> ControlFlow<S, bool> + Sync),
    ) -> ControlFlow<S> {
        walk_folder_par(self, String::new(), Vec::new(), 1, visit)
    }

    fn open_beneath(&self, rel: &[&str]) -> Result<OwnedFd, Refusal> {
        if rel.is_empty() || !lexically_beneath(rel) {
            return Err(Refusal::Outside);
        }
        if let Some(None) = self.listed_kind(rel) {
            return Err(Refusal::Missing);
        }
        if OPENAT2.load(Ordering::Relaxed) != 2 {
            match self.openat2(&rel.join("/")) {
                Ok(fd) => {
                    OPENAT2.store(1, Ordering::Relaxed);
                    return Ok(fd);
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM)) => {
                    OPENAT2.store(2, Ordering::Relaxed);
                }
                Err(e) => return Err(classify(e)),
            }
        }
        self.walk(rel)
    }

    fn openat2(&self, rel: &str) -> io::Result<OwnedFd> {
        let c = cstr(rel.as_bytes())?;
        // SAFETY: open_how is plain data; zeroed then filled.
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = (READ_FLAGS | libc::O_CLOEXEC) as u64;
        how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
        // SAFETY: valid pointers and the struct's own size, as openat2(2) asks.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                self.fd.as_raw_fd(),
                c.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd < 0 {
            Err(last_error())
        } else {
            // SAFETY: a fresh descriptor that nothing else owns.
            Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
        }
    }

    /// The portable path: one component at a time, never following a link by
    /// name; a link is read and its target spliced into what remains.
    fn walk(&self, rel: &[&str]) -> Result<OwnedFd, Refusal> {
        // Folders opened so far, below the base; empty = at the base.
        let mut stack: Vec<OwnedFd> = Vec::new();
        let mut todo: Vec<Vec<u8>> = rel.iter().rev().map(|c| c.as_bytes().to_vec()).collect();
        let mut links = 0usize;
        while let Some(name) = todo.pop() {
            if name.is_empty() || name == b"." {
                continue;
            }
            if name == b".." {
                if stack.pop().is_none() {
                    return Err(Refusal::Outside);
                }
                continue;
            }
            let cur = stack.last().map_or(self.fd.as_raw_fd(), |f| f.as_raw_fd());
            let last = todo.is_empty();
            let flags = if last {
                READ_FLAGS | libc::O_NOFOLLOW
            } else {
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW
            };
            match openat(cur, &name, flags) {
                Ok(fd) if last => return Ok(fd),
                Ok(fd) => stack.push(fd),
                Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR)) => {
                    // A symlink (or, for ENOTDIR, maybe a file on the way).
                    let target = match readlinkat(cur, &name) {
                        Ok(t) => t,
                        Err(e2) if e2.raw_os_error() == Some(libc::EINVAL) => {
                            return Err(classify(e));
                        }
                        Err(e2) => return Err(classify(e2)),
                    };
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(Refusal::Io(io::Error::from_raw_os_error(libc::ELOOP)));
                    }
                    if target.first() == Some(&b'/') {
                        return Err(Refusal::Outside);
                    }
                    for part in target.split(|b| *b == b'/').rev() {
                        todo.push(part.to_vec());
                    }
                }
                Err(e) => return Err(classify(e)),
            }
        }
        // The path named a folder (every component was a directory or `..`).
        Err(Refusal::NotAFile("folder"))
    }
}

/// Folders nested deeper than this below a walk's base are not walked: each level
/// holds a handle while its entries are met.
pub const MAX_TREE_DEPTH: usize = 64;

/// What [`Dir::walk_tree`] meets.
pub enum Met<'a> {
    /// An entry of a folder.
    Entry(&'a TreeEntry<'a>),
    /// A folder at this path (`""` for the base) that is not walked, and why.
    Unwalked(&'a str, Unwalked),
}

/// Why a folder is not walked.
#[derive(Debug)]
pub enum Unwalked {
    /// It could not be opened (beneath its parent's handle, without following a link).
    Open(io::Error),
    /// It was opened but could not be listed.
    List(io::Error),
    /// It lies deeper than [`MAX_TREE_DEPTH`] below the base.
    TooDeep,
}

/// An entry met by [`Dir::walk_tree`].
pub struct TreeEntry<'a> {
    /// The folder that holds it.
    pub dir: &'a Dir,
    /// Its name, as listed.
    pub name: &'a [u8],
    /// Its path below the base, `/`-separated, each name shown as UTF-8 (lossily).
    pub rel: &'a str,
    /// Its path below the base with each name as listed.
    pub raw_rel: &'a [u8],
    /// Its type as listed (a link is a link).
    pub kind: EntryKind,
    pub ino: u64,
    /// 1 for the base's own entries.
    pub depth: usize,
}

/// What a walk calls with each entry it meets (see [`Dir::walk_tree`]).
type Visit<'v, S> = dyn FnMut(Met<'_>) -> ControlFlow<S, bool> + 'v;

/// What walks into a folder a walk met, given its name, its path (shown and as
/// listed) and what to call with each entry.
type Descend<'d, S> =
    dyn FnMut(&[u8], &mut String, &mut Vec<u8>, &mut Visit<'_, S>) -> ControlFlow<S> + 'd;

/// [`Dir::walk_tree`] in the folder `dir`, whose path below the base is `rel` (as
/// shown) and `raw` (as listed); both are restored before it returns.
fn walk_folder<S>(
    dir: &Dir,
    rel: &mut String,
    raw: &mut Vec<u8>,
    depth: usize,
    visit: &mut Visit<'_, S>,
) -> ControlFlow<S> {
    let mut descend = |name: &[u8],
                       rel: &mut String,
                       raw: &mut Vec<u8>,
                       visit: &mut Visit<'_, S>| match dir.folder(name) {
        Ok(sub) => walk_folder(&sub, rel, raw, depth + 1, visit),
        Err(e) => visit(Met::Unwalked(rel, Unwalked::Open(e))).map_continue(|_| ()),
    };
    visit_entries(dir, rel, raw, depth, visit, &mut descend)
}

/// [`Dir::walk_tree_par`] in the folder `dir`, whose path below the base is `rel`
/// (as shown) and `raw` (as listed): its entries are met in name order, then the
/// folders to walk into are walked in parallel.
fn walk_folder_par<S: Send>(
    dir: &Dir,
    mut rel: String,
    mut raw: Vec<u8>,
    depth: usize,
    visit: &(dyn Fn(Met<'_>) -> ControlFlow<S, bool> + Sync),
) -> ControlFlow<S> {
    use rayon::prelude::*;
    let mut into: Vec<(Vec<u8>, String, Vec<u8>)> = Vec::new();
    visit_entries(
        dir,
        &mut rel,
        &mut raw,
        depth,
        &mut |met| visit(met),
        &mut |name, rel, raw, _| {
            into.push((name.to_vec(), rel.clone(), raw.clone()));
            ControlFlow::Continue(())
        },
    )?;
    let walked = into.into_par_iter().try_for_each(|(name, rel, raw)| {
        match dir.folder(&name) {
            Ok(sub) => walk_folder_par(&sub, rel, raw, depth + 1, visit),
            Err(e) => visit(Met::Unwalked(&rel, Unwalked::Open(e))).map_continue(|_| ()),
        }
        .break_value()
        .map_or(Ok(()), Err)
    });
    match walked {
        Ok(()) => ControlFlow::Continue(()),
        Err(s) => ControlFlow::Break(s),
    }
}

/// Meets each entry of `dir` in name order, and hands each folder `visit` asks to
/// walk into to `descend` (with its path in `rel` and `raw`), or meets it as
/// [`Unwalked::TooDeep`] past [`MAX_TREE_DEPTH`]. `rel` and `raw` are restored
/// before it returns.
fn visit_entries<S>(
    dir: &Dir,
    rel: &mut String,
    raw: &mut Vec<u8>,
    depth: usize,
    visit: &mut Visit<'_, S>,
    descend: &mut Descend<'_, S>,
) -> ControlFlow<S> {
    let entries = match dir.entries() {
        Ok(e) => e,
        Err(e) => {
            visit(Met::Unwalked(rel, Unwalked::List(e)))?;
            return ControlFlow::Continue(());
        }
    };
    let (rel_len, raw_len) = (rel.len(), raw.len());
    for (name, kind, ino) in entries {
        if rel_len > 0 {
            rel.push('/');
            raw.push(b'/');
        }
        rel.push_str(&String::from_utf8_lossy(&name));
        raw.extend_from_slice(&name);
        let entry = TreeEntry {
            dir,
            name: &name,
            rel,
            raw_rel: raw,
            kind,
            ino,
            depth,
        };
        let walk_into = visit(Met::Entry(&entry))?;
        if kind == EntryKind::Folder && walk_into {
            if depth >= MAX_TREE_DEPTH {
                visit(Met::Unwalked(rel, Unwalked::TooDeep))?;
            } else {
                descend(&name, rel, raw, visit)?;
            }
        }
        rel.truncate(rel_len);
        raw.truncate(raw_len);
    }
    ControlFlow::Continue(())
}

/// The type of a folder entry, as listed (links are not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Folder,
    Link,
    /// A named pipe, socket or device.
    Other,
}

impl EntryKind {
    fn of_mode(mode: libc::mode_t) -> EntryKind {
        match mode & libc::S_IFMT {
            libc::S_IFREG => EntryKind::File,
            libc::S_IFDIR => EntryKind::Folder,
            libc::S_IFLNK => EntryKind::Link,
            _ => EntryKind::Other,
        }
    }
}

fn fstatat_nofollow(dir: RawFd, name: &[u8]) -> io::Result<libc::stat> {
    let c = cstr(name)?;
    // SAFETY: an all-zero `stat` is valid plain data, filled by fstatat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a writable struct.
    if unsafe { libc::fstatat(dir, c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) } < 0 {
        return Err(last_error());
    }
    Ok(st)
}

/// `name` is one entry's name: not empty, `.` or `..`, and without a slash.
fn one_name(name: &[u8]) -> io::Result<()> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    Ok(())
}

/// No component of `rel` is empty, `.` or `..`: it names something below the base.
fn lexically_beneath(rel: &[&str]) -> bool {
    rel.iter().all(|c| !c.is_empty() && *c != "." && *c != "..")
}

fn classify(e: io::Error) -> Refusal {
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => Refusal::Missing,
        Some(libc::EXDEV) => Refusal::Outside,
        Some(libc::ENXIO) => Refusal::NotAFile("socket"),
        _ => Refusal::Io(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::symlink;

    fn tree() -> (tempfile::TempDir, std::path::PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let base = t.path().join("run");
        std::fs::create_dir_all(base.join("sub/deep")).unwrap();
        std::fs::write(base.join("sub/deep/f.txt"), b"inside").unwrap();
        std::fs::write(t.path().join("secret.txt"), b"outside").unwrap();
        symlink("deep/f.txt", base.join("sub/in_link")).unwrap();
        symlink("../../secret.txt", base.join("sub/out_rel")).unwrap();
        symlink(t.path().join("secret.txt"), base.join("abs_link")).unwrap();
        symlink("..", base.join("up")).unwrap();
        symlink("sub", base.join("sub_link")).unwrap();
        symlink("nowhere", base.join("dangling")).unwrap();
        symlink("loop", base.join("loop")).unwrap();
        (t, base)
    }

    /// What opening a path came to, in one word or two.
    fn describe(opened: Result<File, Refusal>) -> String {
        use std::io::Read;
        match opened {
            Ok(f) => {
                let m = f.metadata().unwrap();
                if !m.is_file() {
                    return format!("not a file: {}", crate::fsutil::kind_of(m.file_type()));
                }
                let mut s = String::new();
                (&f).read_to_string(&mut s).unwrap();
                format!("read {s}")
            }
            Err(Refusal::Missing) => "missing".into(),
            Err(Refusal::Outside) => "outside".into(),
            Err(Refusal::NotAFile(k)) => format!("not a file: {k}"),
            Err(Refusal::Io(e)) => format!("io: {}", e.raw_os_error().unwrap_or(0)),
        }
    }

    const CASES: &[(&str, &str)] = &[
        ("sub/deep/f.txt", "read inside"),
        ("sub/in_link", "read inside"),
        ("sub_link/deep/f.txt", "read inside"),
        ("sub/out_rel", "outside"),
        ("abs_link", "outside"),
        ("up/secret.txt", "outside"),
        ("dangling", "missing"),
        ("nope/f.txt", "missing"),
        ("sub/deep/f.txt/x", "missing"),
        ("sub", "not a file: folder"),
        ("loop", "io: 40"),
    ];

    #[test]
    fn both_resolvers_judge_every_link_alike() {
        let (_t, base) = tree();
        let d = Dir::open(&base).unwrap();
        for (rel, want) in CASES {
            let parts: Vec<&str> = rel.split('/').collect();
            let opened = d.open_file(&parts).map(|(f, _)| f);
            assert_eq!(describe(opened), *want, "openat2 or walk: {rel}");
            assert_eq!(
                describe(d.walk(&parts).map(File::from)),
                *want,
                "walk: {rel}"
            );
        }
    }

    #[test]
    fn an_atomic_write_replaces_the_entry_itself_and_leaves_nothing_behind() {
        let (t, base) = tree();
        let d = Dir::open(&base).unwrap();
        d.write_atomic("new.json", b"one").unwrap();
        d.write_atomic("new.json", b"two").unwrap();
        assert_eq!(std::fs::read(base.join("new.json")).unwrap(), b"two");
        // A link in the entry's place is replaced, never written through.
        d.write_atomic("abs_link", b"mine").unwrap();
        assert_eq!(
            std::fs::read(t.path().join("secret.txt")).unwrap(),
            b"outside"
        );
        assert!(
            !std::fs::symlink_metadata(base.join("abs_link"))
                .unwrap()
                .is_symlink()
        );
        for bad in ["", ".", "..", "sub/x"] {
            assert!(d.write_atomic(bad, b"x").is_err(), "{bad:?}");
        }
        let temps: Vec<_> = std::fs::read_dir(&base)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(temps.is_empty(), "{temps:?}");
    }

    /// Every entry as the walk meets it: `rel kind depth`, walking into every folder
    /// but those named `skip`, and stopping at `stop`.
    fn walked(d: &Dir) -> (Vec<String>, ControlFlow<String>) {
        let mut met = Vec::new();
        let flow = d.walk_tree(&mut |m| match m {
            Met::Entry(e) => {
                assert_eq!(e.rel, String::from_utf8_lossy(e.raw_rel));
                assert!(e.raw_rel.ends_with(e.name));
                assert!(e.dir.stat_at(e.name).is_ok(), "{} is in its folder", e.rel);
                met.push(format!("{} {:?} {}", e.rel, e.kind, e.depth));
                if e.name == b"stop" {
                    return ControlFlow::Break(e.rel.to_string());
                }
                ControlFlow::Continue(e.name != b"skip")
            }
            Met::Unwalked(rel, why) => {
                met.push(format!("{rel} unwalked {why:?}"));
                ControlFlow::Continue(false)
            }
        });
        (met, flow)
    }

    #[test]
    fn a_tree_is_walked_in_name_order_beneath_handles_without_following_links() {
        let (_t, base) = tree();
        std::fs::create_dir_all(base.join("skip/inner")).unwrap();
        let odd = std::ffi::OsStr::from_bytes(b"odd\xff");
        std::fs::create_dir(base.join(odd)).unwrap();
        std::fs::write(base.join(odd).join("x"), b"").unwrap();
        let d = Dir::open(&base).unwrap();
        let (met, flow) = walked(&d);
        assert_eq!(flow, ControlFlow::Continue(()));
        let want = [
            "abs_link Link 1",
            "dangling Link 1",
            "loop Link 1",
            "odd\u{fffd} Folder 1",
            "odd\u{fffd}/x File 2",
            "skip Folder 1",
            "sub Folder 1",
            "sub/deep Folder 2",
            "sub/deep/f.txt File 3",
            "sub/in_link Link 2",
            "sub/out_rel Link 2",
            "sub_link Link 1",
            "up Link 1",
        ];
        assert_eq!(met, want);

        // A break ends the walk where it is.
        std::fs::write(base.join("sub/deep/stop"), b"").unwrap();
        let (met, flow) = walked(&d);
        assert_eq!(flow, ControlFlow::Break("sub/deep/stop".to_string()));
        assert_eq!(met.last().unwrap(), "sub/deep/stop File 3");
        assert_eq!(met.len(), 10);
    }

    /// A handle that keeps its listing answers for the base's own entries from it:
    /// a name not listed is missing even once it exists, a listed file is still
    /// opened to be read, and deeper paths are asked of the kernel.
    #[test]
    fn a_kept_listing_answers_for_the_base_own_entries() {
        let (_t, base) = tree();
        std::fs::write(base.join("listed.json"), b"{}").unwrap();
        let mut d = Dir::open(&base).unwrap();
        let listing: Vec<Listed> = d
            .entries()
            .unwrap()
            .into_iter()
            .map(|(name, kind, _)| (name.into_boxed_slice(), kind))
            .collect();
        d.keep_listing(listing);
        std::fs::write(base.join("late.json"), b"{}").unwrap();
        std::fs::write(base.join("sub/late.json"), b"{}").unwrap();
        let opened = |rel: &[&str]| describe(d.open_file(rel).map(|(f, _)| f));
        assert_eq!(opened(&["late.json"]), "missing");
        assert!(!d.regular_file_no_links(&["late.json"]));
        assert_eq!(opened(&["listed.json"]), "read {}");
        assert!(d.regular_file_no_links(&["listed.json"]));
        assert_eq!(opened(&["sub", "late.json"]), "read {}");
        assert!(d.regular_file_no_links(&["sub", "late.json"]));
        // Links stay links, whatever they point to.
        assert!(!d.regular_file_no_links(&["sub_link"]));
        assert_eq!(opened(&["abs_link"]), "outside");
        // A file listed but gone since is missing, as the kernel says.
        std::fs::remove_file(base.join("listed.json")).unwrap();
        assert_eq!(opened(&["listed.json"]), "missing");
    }

    #[test]
    fn a_folder_too_deep_or_unreadable_is_met_as_unwalked() {
        let t = tempfile::tempdir().unwrap();
        let mut deep = t.path().to_path_buf();
        for _ in 0..MAX_TREE_DEPTH + 1 {
            deep.push("d");
        }
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::create_dir(t.path().join("locked")).unwrap();
        std::fs::set_permissions(
            t.path().join("locked"),
            std::os::unix::fs::PermissionsExt::from_mode(0o000),
        )
        .unwrap();
        let d = Dir::open(t.path()).unwrap();
        let (met, _) = walked(&d);
        let deepest = vec!["d"; MAX_TREE_DEPTH].join("/");
        assert!(
            met.contains(&format!("{deepest} unwalked TooDeep")),
            "{met:?}"
        );
        assert!(!met.iter().any(|m| m.starts_with(&format!("{deepest}/"))));
        // Root can open anything: the refusal is only seen by others.
        if unsafe { libc::geteuid() } != 0 {
            assert!(
                met.iter().any(|m| m.starts_with("locked unwalked")),
                "{met:?}"
            );
        }
        std::fs::set_permissions(
            t.path().join("locked"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
    }

    /// The parallel walk meets what the walk meets, each folder's own entries in
    /// name order, and ends with the break it met.
    #[test]
    fn a_parallel_walk_meets_what_the_walk_meets() {
        let (_t, base) = tree();
        std::fs::create_dir_all(base.join("skip/inner")).unwrap();
        let mut deep = base.join("many");
        for i in 0..40 {
            std::fs::create_dir_all(deep.join(format!("f{i:02}"))).unwrap();
            std::fs::write(deep.join(format!("f{i:02}/page")), b"").unwrap();
        }
        for _ in 0..MAX_TREE_DEPTH {
            deep.push("d");
        }
        std::fs::create_dir_all(&deep).unwrap();
        let d = Dir::open(&base).unwrap();
        let walked_par = |d: &Dir| {
            let met = std::sync::Mutex::new(Vec::new());
            let flow = d.walk_tree_par(&|m| {
                let line = match m {
                    Met::Entry(e) => {
                        assert_eq!(e.rel, String::from_utf8_lossy(e.raw_rel));
                        assert!(e.dir.stat_at(e.name).is_ok(), "{} is in its folder", e.rel);
                        format!("{} {:?} {}", e.rel, e.kind, e.depth)
                    }
                    Met::Unwalked(rel, ref why) => format!("{rel} unwalked {why:?}"),
                };
                met.lock().unwrap().push(line);
                match m {
                    Met::Entry(e) if e.name == b"stop" => ControlFlow::Break(e.rel.to_string()),
                    Met::Entry(e) => ControlFlow::Continue(e.name != b"skip"),
                    Met::Unwalked(..) => ControlFlow::Continue(false),
                }
            });
            (met.into_inner().unwrap(), flow)
        };
        let (mut want, flow) = walked(&d);
        assert_eq!(flow, ControlFlow::Continue(()));
        let (mut met, flow) = walked_par(&d);
        assert_eq!(flow, ControlFlow::Continue(()));
        // A folder's own entries come in name order, whatever is walked beside them.
        let of_many: Vec<&String> = met
            .iter()
            .filter(|m| m.starts_with("many/f") && m.ends_with("Folder 2"))
            .collect();
        assert!(of_many.is_sorted() && of_many.len() == 40, "{of_many:?}");
        assert!(
            met.iter().any(|m| m.ends_with("unwalked TooDeep")),
            "{met:?}"
        );
        want.sort();
        met.sort();
        assert_eq!(met, want);

        // A break ends the walk with it.
        std::fs::write(base.join("many/f17/stop"), b"").unwrap();
        let (_, flow) = walked_par(&d);
        assert_eq!(flow, ControlFlow::Break("many/f17/stop".to_string()));
    }

    #[test]
    fn a_base_that_is_a_symlink_is_refused() {
        let (t, base) = tree();
        symlink(&base, t.path().join("alias")).unwrap();
        assert!(Dir::open(&t.path().join("alias")).is_err());
    }
}
