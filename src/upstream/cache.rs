//! A bounded in-memory cache of upstream GET replies, following RFC 9111,
//! with stale-if-error.
//!
//! Freshness and storability are `http-cache-semantics`' (`max-age`,
//! `s-maxage`, `Expires`, `Age`, `no-cache`, `no-store`, `private`, `Vary`),
//! not rules written here. Requests to upstreams carry the caller's
//! credentials, so a reply is one user's unless the service makes it
//! shareable (`public` or `s-maxage`): shared entries are judged as a
//! shared cache judges them (`s-maxage` applies, `private` is never
//! stored), per-user entries as a private cache does. A reply is only
//! kept when the service says something about caching (`Cache-Control` or
//! `Expires`). `no-cache` means "never serve without revalidation": the
//! gateway does not revalidate, so such a reply is never served from here.
//! When a call fails, a kept reply no more than the stale-if-error window
//! past its freshness is served instead and the caller is told it is
//! stale, unless the service forbade serving it stale (`no-cache`,
//! `must-revalidate`, and `proxy-revalidate` for shared entries).

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use axum::http::Uri;
use bytes::Bytes;
use http_cache_semantics::{BeforeRequest, CacheOptions, CachePolicy, RequestLike, ResponseLike};
use hyper::header::{self, HeaderMap};
use hyper::{Method, StatusCode};
use lru::LruCache;

use super::request::{Reply, UpstreamRequest};
use super::{Caller, UpstreamError};

/// Where a reply came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Fetched now from the service.
    Upstream,
    /// Served from the cache while fresh.
    CacheHit,
    /// The service failed; served from the cache past its freshness.
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

/// The headers of a reply that decide whether and how long it is kept.
const CACHING_HEADERS: [header::HeaderName; 7] = [
    header::CACHE_CONTROL,
    header::EXPIRES,
    header::AGE,
    header::DATE,
    header::VARY,
    header::PRAGMA,
    header::LAST_MODIFIED,
];

/// The caching headers of a reply, or `None` when it has neither
/// `Cache-Control` nor `Expires` (such a reply is not kept).
pub fn caching_headers(headers: &HeaderMap) -> Option<HeaderMap> {
    if !headers.contains_key(header::CACHE_CONTROL) && !headers.contains_key(header::EXPIRES) {
        return None;
    }
    let mut kept = HeaderMap::with_capacity(CACHING_HEADERS.len());
    for name in CACHING_HEADERS {
        for value in headers.get_all(&name) {
            kept.append(name.clone(), value.clone());
        }
    }
    Some(kept)
}

/// The upstream GET a reply answered, as the cache rules see it.
#[derive(Debug)]
struct CachedRequest<'a> {
    uri: Uri,
    /// The headers the request carried (credentials, for `Vary` and for
    /// whether a shared cache may keep it).
    headers: &'a HeaderMap,
}

impl<'a> CachedRequest<'a> {
    fn new(url: &str, headers: &'a HeaderMap) -> Option<Self> {
        Some(Self {
            uri: url.parse().ok()?,
            headers,
        })
    }
}

impl RequestLike for CachedRequest<'_> {
    fn uri(&self) -> Uri {
        self.uri.clone()
    }
    fn is_same_uri(&self, other: &Uri) -> bool {
        &self.uri == other
    }
    fn method(&self) -> &Method {
        &Method::GET
    }
    fn headers(&self) -> &HeaderMap {
        self.headers
    }
}

struct CachedResponse<'a> {
    headers: &'a HeaderMap,
}

impl ResponseLike for CachedResponse<'_> {
    fn status(&self) -> StatusCode {
        StatusCode::OK
    }
    fn headers(&self) -> &HeaderMap {
        self.headers
    }
}

/// The `Cache-Control` directives that decide sharing and stale use; the
/// freshness arithmetic stays the crate's.
#[derive(Debug, Default, Clone, Copy)]
struct Directives {
    shareable: bool,
    no_cache: bool,
    must_revalidate: bool,
    proxy_revalidate: bool,
}

impl Directives {
    fn of(headers: &HeaderMap) -> Self {
        let mut directives = Self::default();
        for value in headers.get_all(header::CACHE_CONTROL) {
            let Ok(value) = value.to_str() else { continue };
            for directive in value.split(',') {
                let name = directive.split('=').next().unwrap_or_default().trim();
                match name.to_ascii_lowercase().as_str() {
                    "public" | "s-maxage" => directives.shareable = true,
                    "no-cache" => directives.no_cache = true,
                    "must-revalidate" => directives.must_revalidate = true,
                    "proxy-revalidate" => directives.proxy_revalidate = true,
                    _ => {}
                }
            }
        }
        directives
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    url: String,
    /// `None` for replies the service made shareable.
    user: Option<String>,
}

#[derive(Debug)]
struct Entry {
    body: Bytes,
    policy: CachePolicy,
    /// When the reply stops being fresh (its lifetime less its `Age`).
    fresh_until: Instant,
    /// Whether the service allows serving it stale when it fails.
    may_serve_stale: bool,
    /// What the entry holds, keys and headers included.
    cost: usize,
}

/// The cache of one upstream, bounded in bytes (bodies, keys and headers).
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

fn headers_size(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 32)
        .sum()
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

    /// Whether anything is ever kept.
    pub fn is_on(&self) -> bool {
        self.entries.is_some()
    }

    /// A reply that may be served without asking the service, for a GET
    /// of `url` by `user` with these request `headers`, kept for this user
    /// or shared.
    pub fn fresh(&self, url: &str, user: &str, headers: &HeaderMap) -> Option<Bytes> {
        let now = SystemTime::now();
        self.find(url, user, headers, |entry, request| {
            matches!(
                entry.policy.before_request(request, now),
                BeforeRequest::Fresh(_)
            )
        })
    }

    /// A reply at most the stale-if-error window past its freshness, that
    /// the service allows to be served stale.
    pub fn stale(&self, url: &str, user: &str, headers: &HeaderMap) -> Option<Bytes> {
        let now = SystemTime::now();
        let window = self.stale_if_error;
        self.find(url, user, headers, |entry, request| {
            let matches = match entry.policy.before_request(request, now) {
                BeforeRequest::Fresh(_) => true,
                BeforeRequest::Stale { matches, .. } => matches,
            };
            matches && entry.may_serve_stale && Instant::now() < entry.fresh_until + window
        })
    }

    fn find(
        &self,
        url: &str,
        user: &str,
        headers: &HeaderMap,
        usable: impl Fn(&Entry, &CachedRequest<'_>) -> bool,
    ) -> Option<Bytes> {
        let entries = self.entries.as_ref()?;
        let mut stored = entries.lock().unwrap_or_else(PoisonError::into_inner);
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
            if let Some(entry) = stored.lru.get(&key) {
                // Built only on a hit: a miss costs no parsing.
                let request = CachedRequest::new(url, headers)?;
                if usable(entry, &request) {
                    return Some(entry.body.clone());
                }
            }
        }
        None
    }

    /// Keeps a `200` reply to a GET of `url` by `user` (sent with these
    /// request `headers`) as RFC 9111 and its `caching` headers allow.
    pub fn store(
        &self,
        url: &str,
        user: &str,
        headers: &HeaderMap,
        caching: &HeaderMap,
        body: Bytes,
    ) {
        let Some(entries) = &self.entries else { return };
        let Some(request) = CachedRequest::new(url, headers) else {
            return;
        };
        let request = &request;
        let directives = Directives::of(caching);
        let shared = directives.shareable;
        let options = CacheOptions {
            shared,
            ..CacheOptions::default()
        };
        let now = SystemTime::now();
        let policy =
            CachePolicy::new_options(request, &CachedResponse { headers: caching }, now, options);
        if !policy.is_storable() {
            return;
        }
        let may_serve_stale = !(directives.no_cache
            || directives.must_revalidate
            || (shared && directives.proxy_revalidate));
        let time_to_live = policy.time_to_live(now);
        if time_to_live.is_zero() && !may_serve_stale {
            // Never servable from here: not worth its memory.
            return;
        }
        let key = Key {
            url: url.to_owned(),
            user: (!shared).then(|| user.to_owned()),
        };
        let cost = body.len()
            + key.url.len()
            + key.user.as_ref().map_or(0, String::len)
            + headers_size(caching)
            + headers_size(request.headers)
            + 256;
        if cost > self.max_bytes {
            return;
        }
        let entry = Entry {
            body,
            policy,
            fresh_until: Instant::now() + time_to_live,
            may_serve_stale,
            cost,
        };
        let mut stored = entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = stored.lru.put(key, entry) {
            stored.bytes -= old.cost;
        }
        stored.bytes += cost;
        // Least recently used out, until the bytes fit again.
        while stored.bytes > self.max_bytes {
            match stored.lru.pop_lru() {
                Some((_, entry)) => stored.bytes -= entry.cost,
                None => break,
            }
        }
    }
}

/// The cache as a layer of the call path: a fresh GET reply from memory;
/// a `200` the service lets us keep, kept; when the service fails, a
/// stale reply within the stale-if-error window instead.
#[derive(Debug)]
pub(super) struct Cached {
    cache: ReplyCache,
}

impl Cached {
    pub(super) fn new(max_bytes: usize, stale_if_error: Duration) -> Self {
        Self {
            cache: ReplyCache::new(max_bytes, stale_if_error),
        }
    }

    /// Whether replies' caching headers are worth reading.
    pub(super) fn is_on(&self) -> bool {
        self.cache.is_on()
    }

    pub(super) async fn around(
        &self,
        caller: &Caller,
        request: &UpstreamRequest,
        fetch: impl AsyncFnOnce() -> Result<Reply<Bytes>, UpstreamError>,
    ) -> Result<Reply<Bytes>, UpstreamError> {
        if !request.is_get() || !self.cache.is_on() {
            return fetch().await;
        }
        let (target, user, headers) = (request.target.as_str(), caller.user_id(), caller.headers());
        if let Some(body) = self.cache.fresh(target, user, headers) {
            return Ok(Reply::cached(body, Freshness::CacheHit));
        }
        let result = fetch().await;
        let failed = match &result {
            Ok(reply) if reply.status == StatusCode::OK => {
                if let Some(caching) = &reply.caching {
                    self.cache
                        .store(target, user, headers, caching, reply.body.clone());
                }
                false
            }
            Ok(reply) => reply.status.is_server_error(),
            Err(error) => error.kind.is_service_failure() || error.kind.is_refused(),
        };
        if failed && let Some(body) = self.cache.stale(target, user, headers) {
            return Ok(Reply::cached(body, Freshness::Stale));
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use hyper::header::HeaderValue;

    fn caching(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        caching_headers(&headers).expect("has caching headers")
    }

    fn with_token(token: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static(token));
        headers
    }

    const URL: &str = "http://inventory.internal/items/i1";

    #[test]
    fn replies_without_caching_headers_are_not_kept() {
        assert!(caching_headers(&HeaderMap::new()).is_none());
    }

    #[test]
    fn private_replies_never_cross_users_and_public_ones_do() {
        let cache = ReplyCache::new(64 * 1024, Duration::ZERO);
        let (alice, bob) = (with_token("Bearer a"), with_token("Bearer b"));
        let private = caching(&[("cache-control", "private, max-age=60")]);
        cache.store(URL, "u1", &alice, &private, Bytes::from_static(b"mine"));
        assert_eq!(
            cache.fresh(URL, "u1", &alice).as_deref(),
            Some(&b"mine"[..])
        );
        assert_eq!(cache.fresh(URL, "u2", &bob), None);
        let catalog = "http://inventory.internal/catalog";
        let public = caching(&[("cache-control", "public, max-age=60")]);
        cache.store(catalog, "u1", &alice, &public, Bytes::from_static(b"all"));
        assert_eq!(
            cache.fresh(catalog, "u2", &bob).as_deref(),
            Some(&b"all"[..])
        );
    }

    #[test]
    fn no_store_is_never_kept_and_no_cache_is_never_served() {
        let cache = ReplyCache::new(64 * 1024, Duration::from_secs(60));
        let token = with_token("Bearer a");
        let req = &token;
        cache.store(
            URL,
            "u1",
            req,
            &caching(&[("cache-control", "no-store, max-age=60")]),
            Bytes::from_static(b"x"),
        );
        assert_eq!(cache.stale(URL, "u1", req), None);
        cache.store(
            URL,
            "u1",
            req,
            &caching(&[("cache-control", "no-cache, max-age=60")]),
            Bytes::from_static(b"x"),
        );
        assert_eq!(cache.fresh(URL, "u1", req), None, "no-cache served fresh");
        assert_eq!(cache.stale(URL, "u1", req), None, "no-cache served stale");
    }

    #[test]
    fn s_maxage_applies_to_shared_entries_and_age_counts() {
        let cache = ReplyCache::new(64 * 1024, Duration::ZERO);
        let token = with_token("Bearer a");
        let req = &token;
        // Shared: s-maxage=0 wins over max-age=60.
        cache.store(
            URL,
            "u1",
            req,
            &caching(&[("cache-control", "public, max-age=60, s-maxage=0")]),
            Bytes::from_static(b"x"),
        );
        assert_eq!(cache.fresh(URL, "u1", req), None);
        // Already 60 s old upstream: no freshness left.
        cache.store(
            URL,
            "u1",
            req,
            &caching(&[("cache-control", "private, max-age=60"), ("age", "60")]),
            Bytes::from_static(b"y"),
        );
        assert_eq!(cache.fresh(URL, "u1", req), None);
        cache.store(
            URL,
            "u1",
            req,
            &caching(&[("cache-control", "private, max-age=60"), ("age", "30")]),
            Bytes::from_static(b"z"),
        );
        assert_eq!(cache.fresh(URL, "u1", req).as_deref(), Some(&b"z"[..]));
    }

    #[test]
    fn must_revalidate_is_never_served_stale() {
        let cache = ReplyCache::new(64 * 1024, Duration::from_secs(60));
        let token = with_token("Bearer a");
        let req = &token;
        cache.store(
            URL,
            "u1",
            req,
            &caching(&[("cache-control", "private, max-age=0, must-revalidate")]),
            Bytes::from_static(b"x"),
        );
        assert_eq!(cache.stale(URL, "u1", req), None);
        cache.store(
            URL,
            "u1",
            req,
            &caching(&[("cache-control", "private, max-age=0")]),
            Bytes::from_static(b"y"),
        );
        assert_eq!(cache.stale(URL, "u1", req).as_deref(), Some(&b"y"[..]));
    }

    #[test]
    fn the_cache_is_bounded_in_bytes() {
        let token = with_token("Bearer a");
        let policy = caching(&[("cache-control", "max-age=60")]);
        let one = {
            let probe = ReplyCache::new(1 << 20, Duration::ZERO);
            probe.store("/a", "u1", &token, &policy, Bytes::from(vec![b'x'; 100]));
            probe
                .entries
                .as_ref()
                .map(|e| e.lock().expect("lock").bytes)
                .expect("on")
        };
        // Room for two entries, not three.
        let cache = ReplyCache::new(2 * one + one / 2, Duration::ZERO);
        for url in ["/a", "/b", "/c"] {
            cache.store(url, "u1", &token, &policy, Bytes::from(vec![b'x'; 100]));
        }
        assert_eq!(
            cache.fresh("/a", "u1", &token),
            None,
            "the least recently used entry was dropped"
        );
        assert!(cache.fresh("/c", "u1", &token).is_some());
    }
}
