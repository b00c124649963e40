//! The Salesforce connector's response parsing, compiled natively.
#![no_main]

use libfuzzer_sys::fuzz_target;
use salesforce_leads_contacts::{soap, wire};

fuzz_target!(|data: &[u8]| {
    let expected = data.first().map(|b| (*b % 8) as usize).unwrap_or(0);
    let body = data.get(1..).unwrap_or_default();
    let _ = wire::parse_errors(body);
    if let Ok(results) = wire::parse_collection(body, expected) {
        assert_eq!(results.len(), expected, "one result per record, always");
    }
    if let Ok(page) = wire::parse_query(body) {
        let _ = page.next;
    }
    for status in [200u16, 400, 401, 404, 500, 503] {
        let _ = wire::classify_response(status, body, None);
    }
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = wire::api_usage(text);
        let _ = soap::parse_answer(text);
    }
});
