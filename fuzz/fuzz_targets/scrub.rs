//! The broker's response scrubber: no credential survives, in any form.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::scrub(data));
