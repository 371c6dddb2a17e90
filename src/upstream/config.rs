//! The upstreams' configuration: a registry by name.
//!
//! `upstreams.<name>` is any name (`accounts`, `inventory`, `catalog`, ...);
//! `upstreams.all` holds defaults that each named upstream inherits **field
//! by field**, down into its `breaker` and `retry` tables, and the
//! built-in defaults ([`UpstreamSettings::default`]) fill what neither sets.
//! A BFF configures only the upstreams it uses.

use std::collections::BTreeMap;
use std::time::Duration;

use std::num::{NonZeroU32, NonZeroUsize};

use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::types::{BaseUrl, ByteSize, Ratio, positive_duration};

/// Every `upstreams.*` table: `all` and the named upstreams.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(transparent)]
pub struct UpstreamsConfig(BTreeMap<String, UpstreamConfig>);

/// The most instances one upstream may list: calls track the instances
/// they tried in a 64-bit set.
pub const MAX_INSTANCES: usize = 64;

/// The key of the defaults table.
pub const ALL: &str = "all";

impl UpstreamsConfig {
    /// The defaults every named upstream inherits.
    pub fn all(&self) -> UpstreamConfig {
        self.0.get(ALL).cloned().unwrap_or_default()
    }

    /// The named upstreams (every table but `all`), by name.
    pub fn named(&self) -> impl Iterator<Item = (&str, &UpstreamConfig)> {
        self.0
            .iter()
            .filter(|(name, _)| name.as_str() != ALL)
            .map(|(name, config)| (name.as_str(), config))
    }

    /// One named upstream's table, if configured.
    pub fn get(&self, name: &str) -> Option<&UpstreamConfig> {
        (name != ALL).then(|| self.0.get(name)).flatten()
    }

    /// The table of `name` (`all` included), created empty if missing: for
    /// callers that fill in config themselves (the demo's URLs).
    pub fn entry(&mut self, name: &str) -> &mut UpstreamConfig {
        self.0.entry(name.to_owned()).or_default()
    }

    /// `name`'s instances: its `url`, or each of its `instances`.
    pub fn bases(&self, name: &str) -> Vec<Url> {
        match self.get(name) {
            Some(UpstreamConfig { url: Some(url), .. }) => vec![(**url).clone()],
            Some(UpstreamConfig {
                instances: Some(instances),
                ..
            }) => instances.iter().map(|url| (**url).clone()).collect(),
            _ => Vec::new(),
        }
    }

    /// `name`'s settings: its own table, then `all`, then the built-in
    /// defaults, field by field.
    pub fn resolve(&self, name: &str) -> UpstreamSettings {
        let named = self.get(name).cloned().unwrap_or_default();
        named.or(&self.all()).resolve()
    }
}

/// One `upstreams.<name>` table, or `upstreams.all`. Every field is
/// optional: what a named table leaves out comes from `all`, then from the
/// built-in defaults.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    /// Base URL, `http` or `https`, of a service with one address; a
    /// named upstream sets this or `instances`, never both; not allowed in
    /// `all`.
    pub url: Option<BaseUrl>,
    /// Base URLs of the service's instances, each call balanced across
    /// them; instead of `url`.
    pub instances: Option<Vec<BaseUrl>>,
    /// Total time for one call, from sending to the last body byte.
    #[serde(with = "positive_duration::option")]
    pub timeout: Option<Duration>,
    /// Time to establish a TCP (and TLS) connection.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Option<Duration>,
    /// Largest reply body accepted; a larger one is a bad response.
    pub max_response_bytes: Option<ByteSize>,
    /// Idle pooled connections kept per upstream host.
    pub pool_max_idle_per_host: Option<usize>,
    /// How long an idle pooled connection is kept.
    #[serde(with = "humantime_serde")]
    pub pool_idle_timeout: Option<Duration>,
    /// Most calls in flight to this upstream; more fail at once (bulkhead).
    pub max_in_flight: Option<NonZeroUsize>,
    /// When calls stop being attempted for a while.
    pub breaker: BreakerOverrides,
    /// When a failed call is tried again.
    pub retry: RetryOverrides,
    /// When a failing instance is set aside.
    pub outlier: OutlierOverrides,
    /// Bytes of GET replies kept in memory, keys and headers included
    /// (0: no cache); only as RFC 9111 and the service allow.
    pub cache_max_bytes: Option<ByteSize>,
    /// When a call fails, a kept reply at most this far past its
    /// freshness is served instead, and the part is marked `stale`.
    #[serde(with = "humantime_serde")]
    pub stale_if_error: Option<Duration>,
    /// Hedging, off when unset: a GET still unanswered after this long
    /// gets a second request (from the retry budget).
    #[serde(with = "humantime_serde")]
    pub hedge_after: Option<Duration>,
}

impl UpstreamConfig {
    /// This table with what it leaves unset taken from `fallback`.
    fn or(self, fallback: &Self) -> Self {
        Self {
            url: self.url.or_else(|| fallback.url.clone()),
            instances: self.instances.or_else(|| fallback.instances.clone()),
            timeout: self.timeout.or(fallback.timeout),
            connect_timeout: self.connect_timeout.or(fallback.connect_timeout),
            max_response_bytes: self.max_response_bytes.or(fallback.max_response_bytes),
            pool_max_idle_per_host: self
                .pool_max_idle_per_host
                .or(fallback.pool_max_idle_per_host),
            pool_idle_timeout: self.pool_idle_timeout.or(fallback.pool_idle_timeout),
            max_in_flight: self.max_in_flight.or(fallback.max_in_flight),
            breaker: self.breaker.or(&fallback.breaker),
            retry: self.retry.or(&fallback.retry),
            outlier: self.outlier.or(&fallback.outlier),
            cache_max_bytes: self.cache_max_bytes.or(fallback.cache_max_bytes),
            stale_if_error: self.stale_if_error.or(fallback.stale_if_error),
            hedge_after: self.hedge_after.or(fallback.hedge_after),
        }
    }

    /// Every field, the built-in default where still unset.
    fn resolve(self) -> UpstreamSettings {
        let d = UpstreamSettings::default();
        UpstreamSettings {
            timeout: self.timeout.unwrap_or(d.timeout),
            connect_timeout: self.connect_timeout.unwrap_or(d.connect_timeout),
            max_response_bytes: self.max_response_bytes.unwrap_or(d.max_response_bytes),
            pool_max_idle_per_host: self
                .pool_max_idle_per_host
                .unwrap_or(d.pool_max_idle_per_host),
            pool_idle_timeout: self.pool_idle_timeout.unwrap_or(d.pool_idle_timeout),
            max_in_flight: self.max_in_flight.unwrap_or(d.max_in_flight),
            breaker: self.breaker.resolve(d.breaker),
            retry: self.retry.resolve(d.retry),
            outlier: self.outlier.resolve(d.outlier),
            cache_max_bytes: self.cache_max_bytes.unwrap_or(d.cache_max_bytes),
            stale_if_error: self.stale_if_error.unwrap_or(d.stale_if_error),
            hedge_after: self.hedge_after.or(d.hedge_after),
        }
    }
}

/// A `breaker` table: each field optional, inherited field by field.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerOverrides {
    pub consecutive_failures: Option<NonZeroU32>,
    pub failure_ratio: Option<Ratio>,
    pub min_calls: Option<u32>,
    #[serde(with = "humantime_serde")]
    pub window: Option<Duration>,
    #[serde(with = "humantime_serde")]
    pub open_for: Option<Duration>,
    pub half_open_probes: Option<NonZeroU32>,
}

impl BreakerOverrides {
    fn or(self, fallback: &Self) -> Self {
        Self {
            consecutive_failures: self.consecutive_failures.or(fallback.consecutive_failures),
            failure_ratio: self.failure_ratio.or(fallback.failure_ratio),
            min_calls: self.min_calls.or(fallback.min_calls),
            window: self.window.or(fallback.window),
            open_for: self.open_for.or(fallback.open_for),
            half_open_probes: self.half_open_probes.or(fallback.half_open_probes),
        }
    }

    fn resolve(self, d: BreakerConfig) -> BreakerConfig {
        BreakerConfig {
            consecutive_failures: self.consecutive_failures.unwrap_or(d.consecutive_failures),
            failure_ratio: self.failure_ratio.unwrap_or(d.failure_ratio),
            min_calls: self.min_calls.unwrap_or(d.min_calls),
            window: self.window.unwrap_or(d.window),
            open_for: self.open_for.unwrap_or(d.open_for),
            half_open_probes: self.half_open_probes.unwrap_or(d.half_open_probes),
        }
    }
}

/// A `retry` table: each field optional, inherited field by field.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryOverrides {
    pub max_retries: Option<u32>,
    #[serde(with = "humantime_serde")]
    pub backoff: Option<Duration>,
    pub budget_ratio: Option<Ratio>,
    pub budget_floor: Option<u32>,
    #[serde(with = "humantime_serde")]
    pub budget_window: Option<Duration>,
}

impl RetryOverrides {
    fn or(self, fallback: &Self) -> Self {
        Self {
            max_retries: self.max_retries.or(fallback.max_retries),
            backoff: self.backoff.or(fallback.backoff),
            budget_ratio: self.budget_ratio.or(fallback.budget_ratio),
            budget_floor: self.budget_floor.or(fallback.budget_floor),
            budget_window: self.budget_window.or(fallback.budget_window),
        }
    }

    fn resolve(self, d: RetryConfig) -> RetryConfig {
        RetryConfig {
            max_retries: self.max_retries.unwrap_or(d.max_retries),
            backoff: self.backoff.unwrap_or(d.backoff),
            budget_ratio: self.budget_ratio.unwrap_or(d.budget_ratio),
            budget_floor: self.budget_floor.unwrap_or(d.budget_floor),
            budget_window: self.budget_window.unwrap_or(d.budget_window),
        }
    }
}

/// An `outlier` table: each field optional, inherited field by field.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutlierOverrides {
    pub consecutive_failures: Option<NonZeroU32>,
    #[serde(with = "humantime_serde")]
    pub base_ejection: Option<Duration>,
    #[serde(with = "humantime_serde")]
    pub max_ejection: Option<Duration>,
    pub max_ejected_ratio: Option<Ratio>,
}

impl OutlierOverrides {
    fn or(self, fallback: &Self) -> Self {
        Self {
            consecutive_failures: self.consecutive_failures.or(fallback.consecutive_failures),
            base_ejection: self.base_ejection.or(fallback.base_ejection),
            max_ejection: self.max_ejection.or(fallback.max_ejection),
            max_ejected_ratio: self.max_ejected_ratio.or(fallback.max_ejected_ratio),
        }
    }

    fn resolve(self, d: OutlierConfig) -> OutlierConfig {
        OutlierConfig {
            consecutive_failures: self.consecutive_failures.unwrap_or(d.consecutive_failures),
            base_ejection: self.base_ejection.unwrap_or(d.base_ejection),
            max_ejection: self.max_ejection.unwrap_or(d.max_ejection),
            max_ejected_ratio: self.max_ejected_ratio.unwrap_or(d.max_ejected_ratio),
        }
    }
}

/// One upstream's settings once `all` and the built-in defaults are
/// merged in. [`Default`] is the one place the built-in defaults live.
#[derive(Debug, Clone, Serialize)]
pub struct UpstreamSettings {
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub max_response_bytes: ByteSize,
    pub pool_max_idle_per_host: usize,
    pub pool_idle_timeout: Duration,
    pub max_in_flight: NonZeroUsize,
    pub breaker: BreakerConfig,
    pub retry: RetryConfig,
    pub outlier: OutlierConfig,
    pub cache_max_bytes: ByteSize,
    pub stale_if_error: Duration,
    pub hedge_after: Option<Duration>,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_millis(800),
            connect_timeout: Duration::from_millis(250),
            max_response_bytes: ByteSize::mib(1),
            // As many as `max_in_flight` lets be busy at once: under a
            // steady load a call finds an idle connection instead of one
            // being closed as another opens (with 64, about one call in
            // 35 opened a connection at 256 concurrent dashboards).
            pool_max_idle_per_host: 256,
            pool_idle_timeout: Duration::from_secs(60),
            max_in_flight: NonZeroUsize::new(256).expect("not zero"),
            breaker: BreakerConfig::default(),
            retry: RetryConfig::default(),
            outlier: OutlierConfig::default(),
            cache_max_bytes: ByteSize::mib(32),
            stale_if_error: Duration::from_secs(60),
            hedge_after: None,
        }
    }
}

/// Retries: GETs after a broken connection or a 502/503/504, a POST only
/// when its connection was never established. Up to `max_retries` per
/// call with full-jitter exponential backoff from `backoff`, within the
/// request's deadline, and within a budget: retries in a `budget_window`
/// stay under `budget_ratio` of the calls plus `budget_floor`, so a
/// failing service sees at most about 1.2 times its normal load.
#[derive(Debug, Clone, Serialize)]
pub struct RetryConfig {
    pub max_retries: u32,
    pub backoff: Duration,
    pub budget_ratio: Ratio,
    pub budget_floor: u32,
    pub budget_window: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: 2,
            backoff: Duration::from_millis(25),
            budget_ratio: Ratio::of(0.2),
            budget_floor: 10,
            budget_window: Duration::from_secs(10),
        }
    }
}

/// Outlier detection, for an upstream with several instances (Envoy's
/// consecutive-failure detection): an instance whose last
/// `consecutive_failures` calls all failed is ejected (no call is sent to
/// it) for `base_ejection` times the number of times it was ejected in a
/// row, at most `max_ejection`. Then it is probed back: its next call
/// decides, a success returns it, a failure ejects it again, for longer.
/// At most `max_ejected_ratio` of the instances are ejected at once (one,
/// when there are two or three), never the last one: with a single
/// instance only the breaker applies.
#[derive(Debug, Clone, Serialize)]
pub struct OutlierConfig {
    pub consecutive_failures: NonZeroU32,
    pub base_ejection: Duration,
    pub max_ejection: Duration,
    pub max_ejected_ratio: Ratio,
}

impl Default for OutlierConfig {
    fn default() -> Self {
        Self {
            consecutive_failures: NonZeroU32::new(5).expect("not zero"),
            base_ejection: Duration::from_secs(30),
            max_ejection: Duration::from_secs(300),
            max_ejected_ratio: Ratio::of(0.5),
        }
    }
}

/// A circuit breaker: opens after `consecutive_failures` failures in a row,
/// or when `failure_ratio` of at least `min_calls` calls in a `window`
/// failed; stays open for `open_for`, then lets `half_open_probes` calls
/// test the service: a success closes it, a failure opens it again.
/// Failures are timeouts, broken connections, 5xx and unusable replies.
#[derive(Debug, Clone, Serialize)]
pub struct BreakerConfig {
    pub consecutive_failures: NonZeroU32,
    pub failure_ratio: Ratio,
    pub min_calls: u32,
    pub window: Duration,
    pub open_for: Duration,
    pub half_open_probes: NonZeroU32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            consecutive_failures: NonZeroU32::new(5).expect("not zero"),
            failure_ratio: Ratio::of(0.5),
            min_calls: 20,
            window: Duration::from_secs(10),
            open_for: Duration::from_secs(5),
            half_open_probes: NonZeroU32::MIN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> UpstreamsConfig {
        #[derive(Deserialize)]
        struct Wrapper {
            upstreams: UpstreamsConfig,
        }
        let wrapper: Wrapper = figment::Figment::new()
            .merge(<figment::providers::Toml as figment::providers::Format>::string(toml))
            .extract()
            .expect("parses");
        wrapper.upstreams
    }

    #[test]
    fn all_is_merged_field_by_field_down_into_breaker_and_retry() {
        let upstreams = parse(
            r#"
            [upstreams.all]
            timeout = "2s"
            breaker = { open_for = "9s", min_calls = 7 }
            retry = { max_retries = 5 }
            [upstreams.inventory]
            url = "http://inventory:80"
            breaker = { consecutive_failures = 3 }
            [upstreams.catalog]
            url = "http://catalog:80"
            timeout = "300ms"
            "#,
        );
        let inventory = upstreams.resolve("inventory");
        assert_eq!(inventory.timeout, Duration::from_secs(2));
        assert_eq!(inventory.breaker.consecutive_failures.get(), 3);
        assert_eq!(
            inventory.breaker.open_for,
            Duration::from_secs(9),
            "from all"
        );
        assert_eq!(inventory.breaker.min_calls, 7, "from all");
        assert_eq!(inventory.breaker.failure_ratio.get(), 0.5, "built in");
        assert_eq!(inventory.retry.max_retries, 5, "from all");
        let catalog = upstreams.resolve("catalog");
        assert_eq!(catalog.timeout, Duration::from_millis(300));
        assert_eq!(catalog.max_in_flight.get(), 256, "built in");
        let names: Vec<&str> = upstreams.named().map(|(name, _)| name).collect();
        assert_eq!(names, ["catalog", "inventory"]);
    }
}
