//! See `lith::fuzzing::receipts`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lith::fuzzing::receipts(data);
});
