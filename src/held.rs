//! What a thread holds while it reads a document, counted by the allocator.
//!
//! The text of a report does not bound what its typed model holds: a string costs
//! its `String` and a heap block beside its text, so `["ab","ab",…]` takes eleven
//! times its bytes, and one long string is held twice while serde_json copies it
//! out of its scratch buffer. Counting values ([`crate::json_budget`]) cannot tell
//! a digest held as 32 bytes from a name held as a `String`. So lith's allocator
//! counts, per thread, the bytes allocated less the bytes freed while a count is
//! open ([`within`]), and a reader wrapped in [`Metered`] stops reading, with an
//! error, once that count passes its limit. A report is then refused as soon as it
//! holds too much, whatever its shape, and a report lith wrote is read as before.
//!
//! Counting costs a thread-local flag's test on every allocation, and an addition
//! while a count is open.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting for the thread that opened a count.
pub struct Counting;

thread_local! {
    static OPEN: Cell<bool> = const { Cell::new(false) };
    /// Bytes allocated less bytes freed on this thread since the count was opened.
    static NET: Cell<isize> = const { Cell::new(0) };
}

/// What an allocation of `size` bytes takes from the system allocator: glibc's
/// chunk, its size word and the size rounded up to 16 bytes, 32 at least. Counting
/// the size asked for would miss three quarters of a short string's block.
fn block(size: usize) -> isize {
    (size.saturating_add(8 + 15) & !15).max(32) as isize
}

fn note(bytes: isize) {
    // `try_with`: a thread being torn down has no count to keep.
    let _ = OPEN.try_with(|open| {
        if open.get() {
            let _ = NET.try_with(|net| net.set(net.get().saturating_add(bytes)));
        }
    });
}

// SAFETY: every call is passed to `System` unchanged; the counting around it only
// touches thread-locals that are const-initialized and have no destructor, so it
// never allocates or unwinds.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `System`'s.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(block(layout.size()));
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note(block(layout.size()));
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as `alloc`.
        unsafe { System.dealloc(ptr, layout) };
        note(-block(layout.size()));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as `alloc`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note(block(new_size) - block(layout.size()));
        }
        p
    }
}

/// Runs `f` with a count open on this thread (or the one already open, which it
/// then shares): what `f` allocates and does not free is what [`net`] says.
pub fn within<T>(f: impl FnOnce() -> T) -> T {
    struct Close(Option<isize>);
    impl Drop for Close {
        fn drop(&mut self) {
            if let Some(before) = self.0 {
                OPEN.with(|o| o.set(false));
                NET.with(|n| n.set(before));
            }
        }
    }
    let _close = Close(if OPEN.with(|o| o.replace(true)) {
        None
    } else {
        Some(NET.with(|n| n.replace(0)))
    });
    f()
}

/// Counts `bytes` held before the open count began as held within it (a document's
/// text read whole, beside what is read from it).
pub fn charge(bytes: usize) {
    note(bytes.min(isize::MAX as usize) as isize);
}

/// What this thread holds beyond what it held when the open count began (0 with
/// none open). Memory freed that was held before counts against it.
pub fn net() -> isize {
    NET.with(Cell::get)
}

/// A reader that refuses to read on once the thread's open count passes `limit`
/// bytes: wrap the input of a parse run [`within`] a count. serde_json gives the
/// error the line and column it stopped at.
pub struct Metered<R> {
    inner: R,
    limit: usize,
}

impl<R> Metered<R> {
    pub fn new(inner: R, limit: usize) -> Metered<R> {
        Metered { inner, limit }
    }
}

impl<R: std::io::Read> std::io::Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if net() > self.limit as isize {
            return Err(std::io::Error::other(holds_too_much(self.limit)));
        }
        self.inner.read(buf)
    }
}

/// Why a document that holds more than `limit` bytes is refused.
pub fn holds_too_much(limit: usize) -> String {
    format!(
        "it holds more than the {} MiB lith holds of one file it reads back{}",
        limit >> 20,
        crate::report::ReadLimits::RAISE
    )
}

/// The one JSON document `r` holds, read [`within`] a count through a buffered
/// [`Metered`] reader: refused once it holds more than `limit` bytes.
pub fn read_json<T: serde::de::DeserializeOwned>(
    r: impl std::io::Read,
    limit: usize,
) -> serde_json::Result<T> {
    within(|| {
        let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(
            1 << 20,
            Metered::new(r, limit),
        ));
        T::deserialize(&mut de).and_then(|v| de.end().map(|()| v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_sees_what_is_held_and_not_what_is_let_go() {
        within(|| {
            let kept: Vec<u8> = vec![0; 1 << 20];
            assert!(net() >= 1 << 20, "{}", net());
            drop(vec![0u8; 4 << 20]);
            assert!(net() < 2 << 20, "{}", net());
            drop(kept);
            assert!(net() < 4096, "{}", net());
            // Bytes held before, charged to the count.
            charge(3 << 20);
            assert!(net() >= 3 << 20, "{}", net());
        });
        assert_eq!(net(), 0);
    }

    #[test]
    fn a_metered_parse_stops_once_it_holds_past_its_limit() {
        // 200,000 two-letter strings: 1.2 MB of text held as 10 MB of `String`s.
        let text = format!("[{}\"ab\"]", "\"ab\",".repeat(199_999));
        let read = read_json::<Vec<String>>(text.as_bytes(), 4 << 20);
        let e = read.unwrap_err().to_string();
        assert!(
            e.starts_with("it holds more than the 4 MiB lith holds of one file it reads back"),
            "{e}"
        );
        // Within a limit it holds, the same text reads whole.
        let read = read_json::<Vec<String>>(text.as_bytes(), 64 << 20);
        assert_eq!(read.unwrap().len(), 200_000);
    }
}
