//! The Salesforce connector's response parsing, compiled natively.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::salesforce_wire(data));
