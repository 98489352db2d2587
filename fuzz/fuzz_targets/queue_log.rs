//! See `lith::fuzzing::queue_log`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lith::fuzzing::queue_log(data);
});
