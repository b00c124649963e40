//! The per-connection cache the host keeps between calls (contract 0.2):
//! a discovery document, the store's limits. Values are text; the host
//! caps them (128-byte keys, 64 KiB values, 32 entries, an hour) and
//! empties the cache when the connection or plugin changes, so always be
//! ready to fetch again.

use std::time::Duration;

/// The value stored under `key`, unless it expired.
pub fn get(key: &str) -> Option<String> {
    crate::host::with(|host| host.cache_get(key))
}

/// Stores `value` for `ttl`. A value over the host's limits is not
/// stored, and the error says which limit; a connector can usually go on
/// without it (and [`get_or_fetch`] does).
pub fn set(key: &str, value: &str, ttl: Duration) -> Result<(), String> {
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    crate::host::with(|host| host.cache_set(key, value, ttl_ms))
}

/// Forgets `key`, e.g. when the store said the cached fact is stale.
pub fn remove(key: &str) {
    crate::host::with(|host| host.cache_remove(key))
}

/// The cached value under `key`, or `fetch`'s, cached for `ttl`.
pub fn get_or_fetch<E>(
    key: &str,
    ttl: Duration,
    fetch: impl FnOnce() -> Result<String, E>,
) -> Result<String, E> {
    if let Some(value) = get(key) {
        return Ok(value);
    }
    let value = fetch()?;
    if let Err(reason) = set(key, &value, ttl) {
        crate::log::debug(&format!("not cached: {reason}"));
    }
    Ok(value)
}
