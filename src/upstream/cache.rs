//! A bounded in-memory cache of upstream GET replies, honouring the
//! service's `Cache-Control`, with stale-if-error.
//!
//! Requests to upstreams carry the caller's credentials, so a reply is
//! kept per user unless the service marks it `public` (`private` replies
//! never cross users). `no-store` replies are not kept; `max-age` decides
//! how long a reply is served without asking the service. When a call
//! fails, a kept reply no older than `max-age` + the stale-if-error window
//! is served instead, and the caller is told it is stale.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use lru::LruCache;

/// Where a reply came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Fetched now from the service.
    Upstream,
    /// Served from the cache within its `max-age`.
    CacheHit,
    /// The service failed; served from the cache past its `max-age`.
    Stale,
}

impl Freshness {
    /// The name `Server-Timing` gives it.
    pub fn outcome(self) -> &'static str {
        match self {
            Self::Upstream => "ok",
            Self::CacheHit => "cache-hit",
            Self::Stale => "stale",
        }
    }
}

/// A typed reply and where it came from.
#[derive(Debug, Clone)]
pub struct Fetched<T> {
    pub value: T,
    pub freshness: Freshness,
}

impl<T> Fetched<T> {
    pub fn into_value(self) -> T {
        self.value
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Fetched<U> {
        Fetched {
            value: f(self.value),
            freshness: self.freshness,
        }
    }
}

/// What a service's `Cache-Control` allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    pub store: bool,
    pub shared: bool,
    pub max_age: Duration,
}

impl CachePolicy {
    /// Reads `Cache-Control`; without one, nothing is kept.
    pub fn parse(cache_control: Option<&str>) -> Self {
        let mut policy = Self {
            store: cache_control.is_some(),
            shared: false,
            max_age: Duration::ZERO,
        };
        for directive in cache_control.unwrap_or_default().split(',') {
            let directive = directive.trim().to_ascii_lowercase();
            match directive.as_str() {
                "no-store" => policy.store = false,
                "public" => policy.shared = true,
                "private" | "no-cache" => {}
                other => {
                    if let Some(seconds) =
                        other.strip_prefix("max-age=").and_then(|s| s.parse().ok())
                    {
                        policy.max_age = Duration::from_secs(seconds);
                    }
                }
            }
        }
        policy
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    url: String,
    /// `None` for replies the service marked `public`.
    user: Option<String>,
}

#[derive(Debug, Clone)]
struct Entry {
    body: Bytes,
    stored_at: Instant,
    max_age: Duration,
}

/// The cache of one upstream, bounded in bytes (bodies and keys).
#[derive(Debug)]
pub struct ReplyCache {
    entries: Option<Mutex<Stored>>,
    max_bytes: usize,
    stale_if_error: Duration,
}

#[derive(Debug)]
struct Stored {
    lru: LruCache<Key, Entry>,
    bytes: usize,
}

impl Entry {
    fn cost(&self, key: &Key) -> usize {
        self.body.len() + key.url.len() + key.user.as_ref().map_or(0, String::len) + 64
    }
}

impl ReplyCache {
    /// `max_bytes` 0 turns caching off.
    pub fn new(max_bytes: usize, stale_if_error: Duration) -> Self {
        Self {
            entries: (max_bytes > 0).then(|| {
                Mutex::new(Stored {
                    lru: LruCache::unbounded(),
                    bytes: 0,
                })
            }),
            max_bytes,
            stale_if_error,
        }
    }

    /// A reply still within its `max-age`, for this user or shared.
    pub fn fresh(&self, url: &str, user: &str) -> Option<Bytes> {
        self.find(url, user, Duration::ZERO)
    }

    /// A reply within `max-age` + the stale-if-error window.
    pub fn stale(&self, url: &str, user: &str) -> Option<Bytes> {
        self.find(url, user, self.stale_if_error)
    }

    fn find(&self, url: &str, user: &str, grace: Duration) -> Option<Bytes> {
        let entries = self.entries.as_ref()?;
        let mut stored = entries.lock().unwrap_or_else(PoisonError::into_inner);
        let entries = &mut stored.lru;
        for key in [
            Key {
                url: url.to_owned(),
                user: Some(user.to_owned()),
            },
            Key {
                url: url.to_owned(),
                user: None,
            },
        ] {
            if let Some(entry) = entries.get(&key)
                && entry.stored_at.elapsed() < entry.max_age + grace
            {
                return Some(entry.body.clone());
            }
        }
        None
    }

    /// Keeps a `200` reply as its policy allows.
    pub fn store(&self, url: &str, user: &str, policy: CachePolicy, body: Bytes) {
        let Some(entries) = &self.entries else { return };
        if !policy.store {
            return;
        }
        let key = Key {
            url: url.to_owned(),
            user: (!policy.shared).then(|| user.to_owned()),
        };
        let entry = Entry {
            body,
            stored_at: Instant::now(),
            max_age: policy.max_age,
        };
        let cost = entry.cost(&key);
        if cost > self.max_bytes {
            return;
        }
        let mut stored = entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = stored.lru.peek(&key) {
            let old_cost = old.cost(&key);
            stored.bytes -= old_cost;
        }
        stored.lru.put(key, entry);
        stored.bytes += cost;
        // Least recently used out, until the bytes fit again.
        while stored.bytes > self.max_bytes {
            match stored.lru.pop_lru() {
                Some((key, entry)) => stored.bytes -= entry.cost(&key),
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_is_read() {
        assert_eq!(
            CachePolicy::parse(Some("private, max-age=60")),
            CachePolicy {
                store: true,
                shared: false,
                max_age: Duration::from_secs(60)
            }
        );
        assert!(CachePolicy::parse(Some("public, max-age=5")).shared);
        assert!(!CachePolicy::parse(Some("no-store, max-age=5")).store);
        assert!(!CachePolicy::parse(None).store);
    }

    #[test]
    fn private_replies_never_cross_users_and_public_ones_do() {
        let cache = ReplyCache::new(1024, Duration::ZERO);
        let private = CachePolicy::parse(Some("private, max-age=60"));
        cache.store("/orders/o1", "u1", private, Bytes::from_static(b"mine"));
        assert_eq!(
            cache.fresh("/orders/o1", "u1").as_deref(),
            Some(&b"mine"[..])
        );
        assert_eq!(cache.fresh("/orders/o1", "u2"), None);
        let public = CachePolicy::parse(Some("public, max-age=60"));
        cache.store("/catalog", "u1", public, Bytes::from_static(b"all"));
        assert_eq!(cache.fresh("/catalog", "u2").as_deref(), Some(&b"all"[..]));
    }

    #[test]
    fn the_cache_is_bounded_in_bytes() {
        // Room for two 100-byte replies with their keys, not three.
        let cache = ReplyCache::new(2 * (100 + 2 + 2 + 64), Duration::ZERO);
        let policy = CachePolicy::parse(Some("max-age=60"));
        for url in ["/a", "/b", "/c"] {
            cache.store(url, "u1", policy, Bytes::from(vec![b'x'; 100]));
        }
        assert_eq!(
            cache.fresh("/a", "u1"),
            None,
            "the least recently used entry was dropped"
        );
        assert!(cache.fresh("/c", "u1").is_some());
    }
}
