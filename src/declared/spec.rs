//! The endpoint file format: what a frontend team writes, one TOML file
//! per endpoint. Every key is documented in the README's "Declared
//! endpoints" reference; unknown keys are errors.

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;

/// One endpoint file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSpec {
    /// The route: `/user-dashboard`, `/orders/{id}` (axum's path syntax).
    pub route: String,
    /// Only `GET`: a composition reads. Mutations are Rust handlers.
    #[serde(default = "get")]
    pub method: String,
    /// One line for the OpenAPI document and the README.
    #[serde(default)]
    pub summary: Option<String>,
    /// Mounted at `/v<version><route>` beside the unversioned routes.
    #[serde(default)]
    pub version: Option<NonZeroU32>,
    /// Who may call it.
    #[serde(default)]
    pub auth: AuthSpec,
    /// Its own per-subject quota, on top of the BFF's.
    #[serde(default)]
    pub rate_limit: Option<QuotaSpec>,
    /// Every upstream call made for one request finishes within this
    /// (default `http.upstream_deadline`).
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// `no-store` (the default) or `private-no-cache`.
    #[serde(default)]
    pub cache: CachePolicy,
    /// Set when the route is on its way out.
    #[serde(default)]
    pub deprecated: Option<DeprecationSpec>,
    /// Which parts of the request the templates may read.
    #[serde(default)]
    pub request: RequestSpec,
    /// The upstream calls, by name; order is the `degraded` order.
    pub calls: IndexMap<String, CallSpec>,
    /// What the client gets.
    pub reply: ReplySpec,
}

/// `[reply]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplySpec {
    /// A jq expression over the calls' results (`$<call>`, `null` for a
    /// failed optional call) giving an object; `degraded` is added to it.
    pub shape: String,
}

fn get() -> String {
    "GET".to_owned()
}

fn yes() -> bool {
    true
}

/// `[auth]`: every declared endpoint needs a token (bearer or API key);
/// these are the scopes it must carry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSpec {
    /// Scopes the token must carry (`403` otherwise).
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// `[rate_limit]`: the route's own quota, counted where the BFF's are.
pub use crate::rate_limit::RouteQuotaSpec as QuotaSpec;

/// What `Cache-Control` a successful reply carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CachePolicy {
    /// Nothing kept anywhere (the default).
    #[default]
    NoStore,
    /// Kept by the browser only, revalidated with its `ETag` every time.
    PrivateNoCache,
}

/// `[deprecated]`: RFC 9745 `Deprecation`, RFC 8594 `Sunset`, and a `Link`
/// to the successor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeprecationSpec {
    /// When it was deprecated: `2026-12-01` or an RFC 3339 time.
    pub since: String,
    /// When it stops answering.
    pub sunset: String,
    /// The route that replaces it, e.g. `/v2/user-dashboard`.
    #[serde(default)]
    pub successor: Option<String>,
}

/// `[request]`: the query parameters and headers templates may read, by
/// name; anything else the client sends is not seen.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    #[serde(default)]
    pub query: Vec<String>,
    #[serde(default)]
    pub headers: Vec<String>,
}

/// `[calls.<name>]`: one upstream call.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallSpec {
    /// A name from the `upstreams` registry.
    pub upstream: String,
    /// `/users/{$auth.sub}/orders`: each `{...}` a jq expression filling
    /// one whole path segment.
    pub path: String,
    /// Query parameters: a literal, or `{...}`; `null` leaves it out.
    #[serde(default)]
    pub query: IndexMap<String, String>,
    /// A failed required call fails the reply; an optional one becomes
    /// `null` and a `degraded` entry.
    #[serde(default = "yes")]
    pub required: bool,
    /// For a call whose templates read the request (`$path`, `$query`,
    /// `$headers`): a jq expression on the reply that is true when the
    /// caller may see it (`.userId == $auth.sub`); otherwise `not_found`.
    #[serde(default)]
    pub visible_if: Option<String>,
    /// Batched lookups of ids found in other replies.
    #[serde(default)]
    pub batch: Option<BatchSpec>,
}

/// `[calls.<name>.batch]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSpec {
    /// A jq expression giving the ids (an array or a stream); they are
    /// de-duplicated and sent `max` at a time as `$ids`.
    pub ids: String,
    /// Ids per call.
    pub max: NonZeroUsize,
    /// Where the items are in each reply: a jq expression giving an array.
    pub items: String,
    /// The field of an item that holds its id.
    pub key: String,
}
