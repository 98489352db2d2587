//! See `lith::fuzzing::activity_feed`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lith::fuzzing::activity_feed(data);
});
