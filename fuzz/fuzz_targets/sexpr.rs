//! S-expressions (`.lith`, `.lisp`): the reader, then the manifest and the receipts
//! contract built from what it read.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lith::fuzzing::sexpr(data);
});
