//! File-system primitives with the guarantees the spec asks for: atomic writes
//! (temp file in the same folder, fsync, rename, fsync the folder) and bounded reads
//! of untrusted JSON that report the line and column of a syntax error.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest JSON document lith parses (index, run status, witnesses, …).
pub const MAX_JSON_BYTES: u64 = 64 * 1024 * 1024;

/// An I/O error together with what lith was doing when it happened.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct IoFailure {
    pub what: String,
    #[source]
    pub source: std::io::Error,
}

/// For `.map_err(io_context("…"))`: names what failed; `?` turns it into the
/// caller's error type.
pub fn io_context(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> IoFailure {
    let what = what.into();
    move |source| IoFailure { what, source }
}

/// Options for a file lith creates or appends to beside untrusted data (lock files,
/// logs, `<log>.torn`): a symlink planted at the name is refused (`O_NOFOLLOW`),
/// never followed, and a new file gets the mode any tool's output gets (`0666`
/// less the umask: `0644` under umask 022).
pub fn beside_untrusted() -> std::fs::OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = std::fs::OpenOptions::new();
    o.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .mode(0o666);
    o
}

/// Writes `bytes` to `path` so that readers see either the old file or the new one,
/// never a torn one, even across a crash: [`crate::beneath::Dir::write_atomic`] in
/// the folder `path` names (links on the way to it followed, as for any path the
/// user gives). The temporary file is created exclusively (a planted name is never
/// followed) with mode `0666` less the umask, so the result is readable as any
/// tool's output is, not `0600`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    crate::beneath::Dir::open(&std::fs::canonicalize(parent_dir(path))?)?
        .write_atomic(name.as_bytes(), bytes)
}

/// How the temporary files of [`write_atomic`] for `path` begin (what a write killed
/// midway leaves beside it): `.<name>.`, then a random part and `.tmp`.
pub fn atomic_temp_prefix(path: &Path) -> String {
    format!(
        ".{}.",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("out")
    )
}

pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Why a JSON input could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonReadError {
    /// The file does not exist.
    NotFound,
    /// A symbolic link, a folder, a device: lith reads only regular files here.
    NotRegularFile(String),
    Io(String),
    /// Its size, and the most lith reads of that file.
    TooLarge(u64, u64),
    /// Valid JSON whose shape is wrong (a field of the wrong type, …).
    Shape(String),
    /// Syntax or type error at a 1-based line and column.
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
}

impl JsonReadError {
    /// The 1-based line and column of a syntax error.
    pub fn position(&self) -> Option<(u64, u64)> {
        match self {
            JsonReadError::Syntax { line, column, .. } => Some((*line as u64, *column as u64)),
            _ => None,
        }
    }
}

impl std::fmt::Display for JsonReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JsonReadError::NotFound => write!(f, "file not found"),
            JsonReadError::NotRegularFile(kind) => {
                write!(
                    f,
                    "is a {kind}, not a regular file; lith does not follow it"
                )
            }
            JsonReadError::Io(e) => write!(f, "cannot read: {e}"),
            JsonReadError::Shape(m) => write!(f, "{m}"),
            JsonReadError::TooLarge(n, limit) => write!(
                f,
                "file is {n} bytes, larger than the {limit} bytes lith reads of it"
            ),
            JsonReadError::Syntax {
                line,
                column,
                message,
            } => {
                write!(f, "{line}:{column}: invalid JSON: {message}")
            }
        }
    }
}

/// Describes a file type for messages.
pub fn kind_of(ft: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_symlink() {
        "symbolic link"
    } else if ft.is_dir() {
        "folder"
    } else if ft.is_fifo() {
        "named pipe"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_block_device() || ft.is_char_device() {
        "device"
    } else {
        "file"
    }
}

/// The same words as [`kind_of`], for the mode of a `stat`.
pub fn kind_of_mode(mode: libc::mode_t) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFLNK => "symbolic link",
        libc::S_IFDIR => "folder",
        libc::S_IFIFO => "named pipe",
        libc::S_IFSOCK => "socket",
        libc::S_IFBLK | libc::S_IFCHR => "device",
        _ => "file",
    }
}

/// Opens a regular file for reading: never following a symlink in its last
/// component, never blocking on a named pipe, and judged by `fstat` on the handle
/// opened (so a file swapped after a check is still refused).
pub fn open_regular(path: &Path) -> Result<(File, std::fs::Metadata), JsonReadError> {
    regular(open_nofollow(path))
}

/// Judges a file opened without following a symlink in its last component (by
/// path, or by name beneath a folder's handle): a link in its place, a missing file
/// and anything but a regular file are refused, by `fstat` on the handle opened.
pub fn regular(opened: std::io::Result<File>) -> Result<(File, std::fs::Metadata), JsonReadError> {
    let file = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(JsonReadError::NotFound),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(JsonReadError::NotRegularFile("symbolic link".into()));
        }
        Err(e) => return Err(JsonReadError::Io(e.to_string())),
    };
    let meta = file
        .metadata()
        .map_err(|e| JsonReadError::Io(e.to_string()))?;
    if !meta.file_type().is_file() {
        return Err(JsonReadError::NotRegularFile(
            kind_of(meta.file_type()).into(),
        ));
    }
    Ok((file, meta))
}

/// Reads a regular file (never following a symlink) of at most `limit` bytes.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, JsonReadError> {
    let (file, meta) = open_regular(path)?;
    read_bounded(file, meta.len(), limit)
}

/// Reads an opened file of `len` bytes (what `fstat` said) to its end, refusing
/// more than `limit` bytes even when it grows while being read.
pub fn read_bounded(file: impl Read, len: u64, limit: u64) -> Result<Vec<u8>, JsonReadError> {
    if len > limit {
        return Err(JsonReadError::TooLarge(len, limit));
    }
    let mut buf = Vec::with_capacity(len as usize);
    file.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| JsonReadError::Io(e.to_string()))?;
    if buf.len() as u64 > limit {
        return Err(JsonReadError::TooLarge(buf.len() as u64, limit));
    }
    Ok(buf)
}

/// Writes `value` into `w` as pretty JSON and a newline, as it is serialized.
pub fn write_pretty(
    w: &mut dyn std::io::Write,
    value: &impl serde::Serialize,
) -> std::io::Result<()> {
    // `From` keeps an I/O error's kind (a reader gone away is `BrokenPipe`).
    serde_json::to_writer_pretty(&mut *w, value).map_err(std::io::Error::from)?;
    w.write_all(b"\n")
}

/// Reads and parses a JSON document from a regular file.
pub fn read_json(path: &Path) -> Result<serde_json::Value, JsonReadError> {
    parse_json(&read_regular(path, MAX_JSON_BYTES)?)
}

/// Parses a JSON document, with the line and column of a syntax error.
pub fn parse_json(bytes: &[u8]) -> Result<serde_json::Value, JsonReadError> {
    parse_json_with(bytes, crate::json_budget::from_slice)
}

/// Reads a JSON document as its compact text ([`crate::json_text::JsonText::read`]),
/// refused as [`parse_json`] refuses it. The document is let go before its objects
/// are put in order, so that no more than two copies of its text are held at once.
pub fn parse_json_text(bytes: Vec<u8>) -> Result<crate::json_text::JsonText, JsonReadError> {
    let written = parse_json_with(&bytes, crate::json_text::Written::of)?;
    drop(bytes);
    written
        .finish()
        .map_err(|e| JsonReadError::Io(e.to_string()))
}

/// Reads the JSON document `bytes` with `parse`, which reads it under the budget of
/// values: what it refuses is a syntax error or a document too large to read, with
/// the line and column.
pub(crate) fn parse_json_with<T>(
    bytes: &[u8],
    parse: impl FnOnce(&[u8]) -> serde_json::Result<T>,
) -> Result<T, JsonReadError> {
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        return Err(JsonReadError::Syntax {
            line: 1,
            column: 1,
            message: "the file starts with a UTF-8 byte order mark (BOM), which JSON does not allow; save it without one".into(),
        });
    }
    parse(bytes).map_err(|e| {
        if e.is_data() {
            // Valid JSON that lith will not read whole (over the budget of values).
            return JsonReadError::Shape(format!(
                "{}:{}: {}",
                e.line(),
                e.column(),
                strip_position(&e.to_string())
            ));
        }
        JsonReadError::Syntax {
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        }
    })
}

/// serde_json appends " at line L column C"; lith prints the position first instead.
pub fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Opens a file for reading, refusing to follow a symlink in its last component and
/// never blocking on a named pipe.
pub fn open_nofollow(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

/// Renders a path with `/` separators for outputs.
pub fn slash_path(p: &Path) -> String {
    use std::path::Component;
    let s: Vec<String> = p
        .components()
        .filter(|c| !matches!(c, Component::CurDir | Component::RootDir))
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let root = if p.has_root() { "/" } else { "" };
    if s.is_empty() && root.is_empty() {
        ".".to_string()
    } else {
        format!("{root}{}", s.join("/"))
    }
}

/// A buffer that files are read into, starting on a page. The kernel copies a
/// file into memory up to four times slower when the copy's destination is not
/// aligned to its cache lines: on an AMD EPYC, reading 1 GiB in pieces of 256 KiB
/// took 0.66 s of system time into a buffer 16 bytes past a page (where the heap
/// puts an allocation of that size) and 0.16 s into one on a page.
pub struct ReadBuf {
    bytes: Vec<u8>,
    start: usize,
    len: usize,
}

impl ReadBuf {
    const PAGE: usize = 4096;

    /// A buffer of `len` bytes.
    pub fn new(len: usize) -> ReadBuf {
        let bytes = vec![0u8; len + Self::PAGE];
        let start = bytes.as_ptr().align_offset(Self::PAGE);
        ReadBuf { bytes, start, len }
    }

    pub fn get(&self) -> &[u8] {
        &self.bytes[self.start..self.start + self.len]
    }

    pub fn get_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[self.start..self.start + self.len]
    }
}

/// A buffered reader whose buffer is a [`ReadBuf`].
pub struct PageBufReader<R> {
    inner: R,
    buf: ReadBuf,
    pos: usize,
    filled: usize,
}

impl<R: Read> PageBufReader<R> {
    pub fn with_capacity(capacity: usize, inner: R) -> PageBufReader<R> {
        PageBufReader {
            inner,
            buf: ReadBuf::new(capacity.max(1)),
            pos: 0,
            filled: 0,
        }
    }

    /// The bytes read and not yet consumed.
    pub fn buffer(&self) -> &[u8] {
        &self.buf.get()[self.pos..self.filled]
    }
}

impl<R: Read> Read for PageBufReader<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = {
            let have = std::io::BufRead::fill_buf(self)?;
            let n = have.len().min(out.len());
            out[..n].copy_from_slice(&have[..n]);
            n
        };
        std::io::BufRead::consume(self, n);
        Ok(n)
    }
}

impl<R: Read> std::io::BufRead for PageBufReader<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.pos >= self.filled {
            self.filled = self.inner.read(self.buf.get_mut())?;
            self.pos = 0;
        }
        Ok(self.buffer())
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.filled);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_buffer_starts_on_a_page_and_has_the_length_asked() {
        for len in [1, 4095, 4096, 256 * 1024] {
            let mut b = ReadBuf::new(len);
            assert_eq!(b.get().as_ptr() as usize % 4096, 0, "{len}");
            assert_eq!(b.get_mut().len(), len);
        }
        // Read through it, byte for byte what was there.
        let text: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut r = PageBufReader::with_capacity(333, &text[..]);
        let mut back = Vec::new();
        let mut piece = [0u8; 100];
        loop {
            let n = r.read(&mut piece).unwrap();
            if n == 0 {
                break;
            }
            back.extend_from_slice(&piece[..n]);
        }
        assert_eq!(back, text);
    }

    #[test]
    fn slash_paths_name_absolute_and_relative_paths_once() {
        for (p, want) in [
            ("/tmp/x", "/tmp/x"),
            ("/", "/"),
            ("./a/./b", "a/b"),
            (".", "."),
            ("a", "a"),
        ] {
            assert_eq!(slash_path(Path::new(p)), want, "{p}");
        }
    }
}
