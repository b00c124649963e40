//! The store's request allowance, as the store states it (contract 0.2).
//!
//! Only a connector knows where its store says how much of its allowance
//! is used: Salesforce in `Sforce-Limit-Info`, others in `X-RateLimit-*`.
//! Report it from each answer that says; the host shows the latest in
//! status and `/metrics`. Built for contract 0.1, a report goes nowhere.

/// `used` of `max` requests in the store's current window.
pub fn report(used: u64, max: u64) {
    crate::host::with(|host| host.report_quota(used, max))
}
