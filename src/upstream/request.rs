//! One upstream request, as every layer of the call path sees it, and the
//! reply it gets.
//!
//! The request is one value (method, target, body, idempotency key, the
//! reply's expected shape) passed by reference down the layers: a retry
//! or a hedge sends the same value again, and the body is `Bytes`, so
//! sending it again copies nothing.

use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Method, StatusCode};
use serde::de::DeserializeOwned;

use super::cache::{Fetched, Freshness};

/// Judges a 2xx reply's body before the call counts as a success.
#[derive(Clone)]
pub enum BodyCheck {
    /// The body decodes as a Rust type ([`shape_of`]).
    Decodes(fn(&[u8]) -> Result<(), serde_json::Error>),
    /// Any other rule: a declared call's reply schema. What it parsed on
    /// the way travels with the reply ([`Reply::parsed`]), so the body is
    /// not parsed twice.
    Rule(ReplyRule),
}

/// A rule a 2xx body must pass; it may hand on what it parsed.
pub type ReplyRule = Arc<dyn Fn(&Bytes) -> Result<Option<Parsed>, BadReply> + Send + Sync>;

/// A reply's body as a rule parsed it (a declared call's, a `jaq_json::Val`).
pub type Parsed = Arc<dyn std::any::Any + Send + Sync>;

impl std::fmt::Debug for BodyCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Decodes(_) => "Decodes",
            Self::Rule(_) => "Rule",
        })
    }
}

impl BodyCheck {
    pub(super) fn judge(&self, body: &Bytes) -> Result<Option<Parsed>, BadReply> {
        match self {
            Self::Decodes(decodes) => decodes(body).map(|()| None).map_err(|e| BadReply {
                what: if e.is_data() {
                    "wrong shape"
                } else {
                    "not JSON"
                },
                cause: Arc::new(e),
            }),
            Self::Rule(rule) => rule(body),
        }
    }
}

/// A 2xx body that is not JSON or not of the expected shape, and why.
#[derive(Debug, Clone)]
pub struct BadReply {
    /// `not JSON` or `wrong shape`: what clients' messages say.
    pub what: &'static str,
    /// The decoder's or the schema's own words, for logs.
    pub cause: Arc<dyn std::error::Error + Send + Sync>,
}

/// A [`BodyCheck`]: the body decodes as `T`.
pub fn shape_of<T: DeserializeOwned>(body: &[u8]) -> Result<(), serde_json::Error> {
    serde_json::from_slice::<T>(body).map(drop)
}

/// A body check that accepts any body.
fn any_body(_: &[u8]) -> Result<(), serde_json::Error> {
    Ok(())
}

/// A path and query on an upstream (`/accounts/a1/items?limit=5`), the same
/// on each of its instances: built by
/// [`Endpoint::target`](super::Endpoint::target) from percent-encoded
/// segments, so no identifier can change the path. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target(Arc<str>);

impl Target {
    pub(super) fn new(path_and_query: &str) -> Self {
        Self(path_and_query.into())
    }

    /// The path and query, starting with `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One request to an upstream.
#[derive(Debug, Clone)]
pub struct UpstreamRequest {
    pub(super) method: Method,
    pub(super) target: Target,
    /// A JSON body, sent with `Content-Type: application/json`.
    pub(super) body: Option<Bytes>,
    pub(super) idempotency_key: Option<HeaderValue>,
    pub(super) check: BodyCheck,
}

impl UpstreamRequest {
    /// A request of `method` to `target`, without body; any 2xx body is
    /// accepted until [`Self::expecting`] says otherwise.
    pub fn new(method: Method, target: Target) -> Self {
        Self {
            method,
            target,
            body: None,
            idempotency_key: None,
            check: BodyCheck::Decodes(any_body),
        }
    }

    /// A GET of `target`.
    pub fn get(target: Target) -> Self {
        Self::new(Method::GET, target)
    }

    /// A POST to `target`.
    pub fn post(target: Target) -> Self {
        Self::new(Method::POST, target)
    }

    /// With a JSON body, already encoded.
    pub fn json(mut self, body: Bytes) -> Self {
        self.body = Some(body);
        self
    }

    /// With the client's `Idempotency-Key`, so the service can tell a
    /// repeated request from a new one.
    pub fn idempotency_key(mut self, key: HeaderValue) -> Self {
        self.idempotency_key = Some(key);
        self
    }

    /// A 2xx reply whose body fails `check` is a bad reply, counted against
    /// the service like a 5xx (breaker, outlier detection, readiness).
    pub fn expecting(mut self, check: fn(&[u8]) -> Result<(), serde_json::Error>) -> Self {
        self.check = BodyCheck::Decodes(check);
        self
    }

    /// A 2xx reply whose body fails `check` is a bad reply, as with
    /// [`Self::expecting`].
    pub fn judged_by(mut self, check: BodyCheck) -> Self {
        self.check = check;
        self
    }

    pub fn method(&self) -> &Method {
        &self.method
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    pub(super) fn is_get(&self) -> bool {
        self.method == Method::GET
    }
}

/// A reply's status with its body.
#[derive(Debug, Clone)]
pub struct Reply<T> {
    pub status: StatusCode,
    pub body: T,
    /// The reply's caching headers, when it has `Cache-Control` or
    /// `Expires` and the cache is on.
    pub caching: Option<HeaderMap>,
    /// Fetched now, or served from the cache.
    pub freshness: Freshness,
    /// The body as its check parsed it, when a rule did (not for a reply
    /// served from the cache).
    pub parsed: Option<Parsed>,
}

impl Reply<Bytes> {
    /// A `200` served from the cache.
    pub(super) fn cached(body: Bytes, freshness: Freshness) -> Self {
        Self {
            status: StatusCode::OK,
            body,
            caching: None,
            freshness,
            parsed: None,
        }
    }
}

/// How a finished call is named in metrics, spans and `Server-Timing`.
pub trait Outcome {
    fn outcome(&self) -> &'static str;
}

impl Outcome for Reply<Bytes> {
    fn outcome(&self) -> &'static str {
        if self.status.is_server_error() {
            "error"
        } else {
            self.freshness.outcome()
        }
    }
}

impl<T> Outcome for Fetched<T> {
    fn outcome(&self) -> &'static str {
        self.freshness.outcome()
    }
}
