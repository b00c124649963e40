//! SCIM filters and PATCH paths: text straight from an HTTP request.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::scim_filter(data));
