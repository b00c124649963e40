//! The per-connection cache of contract 0.2: what a connector wants to keep
//! between calls (a discovery document, the store's limits), since each
//! call runs in a fresh instance.
//!
//! It lives in the broker because it has the broker's lifetime and scope:
//! one connection, rebuilt empty whenever the connection's configuration or
//! its plugin changes. Its limits keep a hostile connector from turning it
//! into a memory sink: at most [`MAX_ENTRIES`] entries of
//! [`MAX_VALUE_BYTES`] each, so a connection holds at most about 2 MiB.
//! Nothing secret can reach it: a connector only ever sees redacted answers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 128;
/// The largest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 << 10;
/// Entries per connection; one more evicts the entry that expires first.
pub const MAX_ENTRIES: usize = 32;
/// The longest time to live; a longer one is cut to this.
pub const MAX_TTL: Duration = Duration::from_secs(3600);

/// Why a value was not stored; the connector reads the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    #[error("a cache key is 1 to {MAX_KEY_BYTES} bytes; this one is {0}")]
    Key(usize),
    #[error("a cache value is at most {MAX_VALUE_BYTES} bytes; this one is {0}")]
    Value(usize),
}

#[derive(Debug, Default)]
pub struct ConnectorCache {
    entries: Mutex<HashMap<String, (String, Instant)>>,
}

impl ConnectorCache {
    pub fn get(&self, key: &str) -> Option<String> {
        self.get_at(key, Instant::now())
    }

    fn get_at(&self, key: &str, now: Instant) -> Option<String> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|(_, expires)| *expires > now)
            .map(|(value, _)| value.clone())
    }

    /// Stores `value` under `key` for `ttl`, or says which limit it broke.
    pub fn set(&self, key: String, value: String, ttl: Duration) -> Result<(), CacheError> {
        self.set_at(key, value, ttl, Instant::now())
    }

    fn set_at(
        &self,
        key: String,
        value: String,
        ttl: Duration,
        now: Instant,
    ) -> Result<(), CacheError> {
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Err(CacheError::Key(key.len()));
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(CacheError::Value(value.len()));
        }
        let expires = now + ttl.min(MAX_TTL);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, (_, at)| *at > now);
        if !entries.contains_key(&key)
            && entries.len() >= MAX_ENTRIES
            && let Some(first) = entries
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone())
        {
            entries.remove(&first);
        }
        entries.insert(key, (value, expires));
        Ok(())
    }

    pub fn remove(&self, key: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(key);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn values_last_until_their_time_to_live() {
        let cache = ConnectorCache::default();
        let now = Instant::now();
        cache
            .set_at("config".into(), "{}".into(), MINUTE, now)
            .unwrap();
        assert_eq!(
            cache.get_at("config", now + MINUTE / 2).as_deref(),
            Some("{}")
        );
        assert_eq!(cache.get_at("config", now + MINUTE), None);
        cache.remove("config");
        assert_eq!(cache.get_at("config", now), None);
    }

    #[test]
    fn a_time_to_live_is_cut_to_an_hour() {
        let cache = ConnectorCache::default();
        let now = Instant::now();
        cache
            .set_at(
                "k".into(),
                "v".into(),
                Duration::from_secs(u64::MAX / 4),
                now,
            )
            .unwrap();
        assert!(cache.get_at("k", now + MAX_TTL - MINUTE).is_some());
        assert!(cache.get_at("k", now + MAX_TTL).is_none());
    }

    #[test]
    fn oversized_keys_and_values_are_refused_with_the_limit() {
        let cache = ConnectorCache::default();
        let error = cache
            .set("k".repeat(MAX_KEY_BYTES + 1), "v".into(), MINUTE)
            .unwrap_err();
        assert!(error.to_string().contains("1 to 128 bytes"), "{error}");
        let error = cache
            .set("k".into(), "v".repeat(MAX_VALUE_BYTES + 1), MINUTE)
            .unwrap_err();
        assert!(error.to_string().contains("at most 65536 bytes"), "{error}");
        assert!(cache.set(String::new(), "v".into(), MINUTE).is_err());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn a_full_cache_evicts_what_expires_first_and_never_grows() {
        let cache = ConnectorCache::default();
        let now = Instant::now();
        for i in 0..MAX_ENTRIES {
            let ttl = MINUTE * (i as u32 + 2);
            cache.set_at(format!("k{i}"), "v".into(), ttl, now).unwrap();
        }
        cache
            .set_at("new".into(), "v".into(), MINUTE * 100, now)
            .unwrap();
        assert_eq!(cache.len(), MAX_ENTRIES);
        assert!(
            cache.get_at("k0", now).is_none(),
            "the soonest to expire goes"
        );
        assert!(cache.get_at("k1", now).is_some());
        assert!(cache.get_at("new", now).is_some());
        // Replacing a key does not evict another.
        cache
            .set_at("k1".into(), "w".into(), MINUTE * 5, now)
            .unwrap();
        assert_eq!(cache.len(), MAX_ENTRIES);
        assert_eq!(cache.get_at("k1", now).as_deref(), Some("w"));
    }
}
