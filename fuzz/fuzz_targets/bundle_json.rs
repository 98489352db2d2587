//! See `lith::fuzzing::bundle_json`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lith::fuzzing::bundle_json(data);
});
