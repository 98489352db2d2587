//! How the report is spelled in `report.json` and partial reports: the compact form.
//!
//! The same model types are printed by `lith verify --json`, where a reader wants
//! every field spelled out. Inside [`compact`], serialization leaves out what is
//! empty or derivable (an `ok` artifact row becomes `[path, size, sha256]`, empty
//! lists and absent values are not written); reading accepts both forms, so a
//! report round-trips whichever way it was written.

use std::cell::Cell;

thread_local! {
    static COMPACT: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with the compact form switched on for this thread (serialization is
/// synchronous, so the flag covers exactly the values `f` serializes).
pub fn compact<T>(f: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            COMPACT.with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(COMPACT.with(|c| c.replace(true)));
    f()
}

/// True while serializing inside [`compact`].
pub fn is_compact() -> bool {
    COMPACT.with(|c| c.get())
}

/// `skip_serializing_if` for lists that are left out when empty in the compact form.
pub fn empty<T>(v: &[T]) -> bool {
    is_compact() && v.is_empty()
}

/// `skip_serializing_if` for values left out when absent in the compact form.
pub fn none<T>(v: &Option<T>) -> bool {
    is_compact() && v.is_none()
}

/// `skip_serializing_if` for flags left out when false in the compact form.
pub fn no(v: &bool) -> bool {
    is_compact() && !*v
}

/// `skip_serializing_if` for counts left out when zero, in every form.
pub fn zero(n: &usize) -> bool {
    *n == 0
}

/// Lists `item()` while `list` holds fewer than `cap`; counts it in `omitted`
/// otherwise (the `…_omitted` counts beside capped lists).
pub fn push_capped<T>(
    list: &mut Vec<T>,
    omitted: &mut usize,
    cap: usize,
    item: impl FnOnce() -> T,
) {
    if list.len() < cap {
        list.push(item());
    } else {
        *omitted += 1;
    }
}

/// `skip_serializing_if` for maps left out when empty in the compact form.
pub fn empty_map<K, V>(m: &std::collections::BTreeMap<K, V>) -> bool {
    is_compact() && m.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_is_scoped_and_restored_even_when_nested() {
        assert!(!is_compact());
        compact(|| {
            assert!(is_compact());
            compact(|| assert!(is_compact()));
            assert!(is_compact());
        });
        assert!(!is_compact());
        let caught = std::panic::catch_unwind(|| compact(|| panic!("inside")));
        assert!(caught.is_err());
        assert!(!is_compact(), "a panic inside restores the flag");
    }
}
