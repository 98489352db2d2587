//! See `lith::fuzzing::dod_documents`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lith::fuzzing::dod_documents(data);
});
