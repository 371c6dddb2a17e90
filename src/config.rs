//! Typed configuration: TOML file, environment overrides, validation at start.
//!
//! Layers, later wins: the struct defaults below, the BFF's own embedded
//! defaults (its `bff-*.toml`), the file named by `--config`, then every
//! `BFF_`-prefixed environment variable (`BFF_UPSTREAMS__ORDERS__URL` is
//! `upstreams.orders.url`). Unknown keys are errors, not silently ignored,
//! and every error names the key, so a typo never starts a half-configured
//! gateway.

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::Path;
use std::time::Duration;

pub use crate::upstream::config::{
    BreakerConfig, BreakerOverrides, MAX_INSTANCES, OutlierConfig, OutlierOverrides, RetryConfig,
    RetryOverrides, UpstreamConfig, UpstreamSettings, UpstreamsConfig,
};
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;
use url::Url;

/// The environment variable prefix for every key.
pub const ENV_PREFIX: &str = "BFF_";

/// A configuration problem, naming the key it is about.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
    #[error("config file {path}: {message}")]
    File { path: String, message: String },
    #[error("{0}")]
    Several(String),
}

impl ConfigError {
    fn invalid(key: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

/// A secret string: usable, but never printed by `Debug` or in an error.
#[derive(Clone, Deserialize, Default)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// One BFF's whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address and port the BFF listens on.
    pub listen: SocketAddr,
    /// The upstream services and how every call to them is bounded.
    pub upstreams: UpstreamsConfig,
    /// How bearer tokens are verified.
    pub auth: AuthConfig,
    /// API keys for machine clients.
    pub api_keys: ApiKeysConfig,
    /// The per-subject quota of this BFF.
    pub rate_limit: RateLimitConfig,
    /// Limits of the BFF's own HTTP server.
    pub http: HttpConfig,
    /// Which browser origins may call this BFF.
    pub cors: CorsConfig,
    /// `production` (the default) or `development`: what the GraphQL
    /// endpoint reveals and accepts (introspection, suggestions, IDE,
    /// untrusted documents).
    pub profile: Profile,
    /// GraphQL limits and persisted documents.
    pub graphql: GraphQlConfig,
    /// Logs and trace export.
    pub telemetry: TelemetryConfig,
    /// TLS termination; off unless both paths are set.
    pub tls: TlsConfig,
}

/// How the BFF reports what it does.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// `json` (one object per line, for collectors) or `text` (for people).
    /// Unset: `json` in production, `text` in development.
    pub log_format: Option<LogFormat>,
    /// A `tracing` filter such as `info` or `info,bff_core=debug`;
    /// `RUST_LOG`, when set, wins.
    pub log_level: String,
    /// OTLP/HTTP collector base URL (e.g. `http://otel-collector:4318`);
    /// spans are exported to `<url>/v1/traces` as JSON. Unset: no export.
    pub otlp_endpoint: Option<Url>,
    /// Share of new traces exported, 0 to 1. A client's sampled flag is
    /// followed for traces it started.
    pub sampling_ratio: f64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: None,
            log_level: "info".to_owned(),
            otlp_endpoint: None,
            sampling_ratio: 1.0,
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Text,
}

/// TLS termination with rustls; HTTP/2 and HTTP/1.1 offered by ALPN.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert_path: Option<std::path::PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_path: Option<std::path::PathBuf>,
}

/// How much the BFF reveals about itself to clients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// No introspection, no "did you mean" suggestions, no IDE, only
    /// trusted documents where `graphql.documents = "trusted"`.
    #[default]
    Production,
    /// Introspection, suggestions and GraphiQL on; any document accepted.
    Development,
}

/// Which GraphQL documents a BFF executes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentPolicy {
    /// Any document, plus Apollo's automatic persisted queries.
    #[default]
    Any,
    /// In production only the BFF's own trusted operations, by hash or id.
    Trusted,
}

/// Limits checked before a GraphQL document runs, so an abusive document
/// costs no upstream call.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphQlConfig {
    /// Which documents are executed.
    pub documents: DocumentPolicy,
    /// Largest document in bytes.
    pub max_document_bytes: usize,
    /// Most lexical tokens in a document, counted before parsing.
    pub max_tokens: usize,
    /// Deepest selection nesting.
    pub max_depth: usize,
    /// Highest cost: one per field, list fields multiplied by `first`.
    pub max_complexity: usize,
    /// Most aliased fields in a document.
    pub max_aliases: usize,
    /// Most directives on one field.
    pub max_directives: usize,
    /// Deepest recursion the parser and validator may reach.
    pub max_recursive_depth: usize,
    /// Largest `first` a list field accepts.
    pub max_first: u32,
    /// Automatic persisted queries remembered (least recently used dropped).
    pub apq_cache_entries: usize,
}

impl Default for GraphQlConfig {
    fn default() -> Self {
        Self {
            documents: DocumentPolicy::Any,
            max_document_bytes: 8 * 1024,
            max_tokens: 1_000,
            max_depth: 10,
            max_complexity: 2_000,
            max_aliases: 15,
            max_directives: 4,
            max_recursive_depth: 32,
            max_first: 100,
            apq_cache_entries: 1_000,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            upstreams: UpstreamsConfig::default(),
            auth: AuthConfig::default(),
            api_keys: ApiKeysConfig::default(),
            rate_limit: RateLimitConfig::default(),
            http: HttpConfig::default(),
            cors: CorsConfig::default(),
            profile: Profile::default(),
            graphql: GraphQlConfig::default(),
            telemetry: TelemetryConfig::default(),
            tls: TlsConfig::default(),
        }
    }
}

/// Token verification. Exactly one of `hs256_secret`, `public_key_pem` and
/// `jwks_url`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// HMAC secret for HS256 tokens, at least 32 bytes (RFC 7518 §3.2).
    pub hs256_secret: Option<Secret>,
    /// PEM public key; its type pins the algorithm (RSA: RS256, P-256:
    /// ES256, P-384: ES384, Ed25519: EdDSA).
    pub public_key_pem: Option<Secret>,
    /// An identity provider's JWKS: keys by `kid`, each pinned to its algorithm.
    pub jwks_url: Option<Url>,
    /// How often the key set is fetched again.
    #[serde(with = "humantime_serde")]
    pub jwks_ttl: Duration,
    /// At most one extra fetch per this interval, for tokens with an unknown `kid`.
    #[serde(with = "humantime_serde")]
    pub jwks_cooldown: Duration,
    /// Time allowed for one key set fetch.
    #[serde(with = "humantime_serde")]
    pub jwks_timeout: Duration,
    /// When set, the token header's `typ` must be this (e.g. `at+jwt`).
    pub typ: Option<String>,
    /// Claims every token must carry, beyond `exp` and `sub`.
    pub required_claims: Vec<String>,
    /// When set, tokens must carry exactly this `iss`.
    pub issuer: Option<String>,
    /// When set, tokens must carry this `aud`.
    pub audience: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
    /// Tokens longer than this are refused before any decoding.
    pub max_token_bytes: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            hs256_secret: None,
            public_key_pem: None,
            jwks_url: None,
            jwks_ttl: Duration::from_secs(300),
            jwks_cooldown: Duration::from_secs(30),
            jwks_timeout: Duration::from_secs(2),
            typ: None,
            required_claims: Vec::new(),
            issuer: None,
            audience: None,
            leeway: Duration::from_secs(30),
            max_token_bytes: 8 * 1024,
        }
    }
}

/// A GCRA quota per subject (per client IP where no subject is known),
/// and one per client IP counted before any token is verified.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Sustained requests per second.
    pub per_second: NonZeroU32,
    /// Requests allowed at once above the sustained rate.
    pub burst: NonZeroU32,
    /// Sustained requests per second per client IP, counted before token
    /// verification, so floods of bad tokens are limited too.
    pub per_ip_per_second: NonZeroU32,
    /// Burst of the per-IP quota.
    pub per_ip_burst: NonZeroU32,
    /// How often idle keys are dropped, which bounds the limiter's memory.
    #[serde(with = "humantime_serde")]
    pub prune_interval: Duration,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_second: NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN),
            burst: NonZeroU32::new(20).unwrap_or(NonZeroU32::MIN),
            per_ip_per_second: NonZeroU32::new(100).unwrap_or(NonZeroU32::MIN),
            per_ip_burst: NonZeroU32::new(200).unwrap_or(NonZeroU32::MIN),
            prune_interval: Duration::from_secs(30),
        }
    }
}

/// The BFF's own HTTP server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Largest request body accepted (bytes); larger is `413`.
    pub body_limit: usize,
    /// Whole-request deadline, reading the body included: a body that
    /// trickles in slower than this gets `408`.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// On SIGTERM, how long in-flight requests may take to finish once
    /// the listener is closed.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// On SIGTERM, how long `/readyz` fails while new requests are still
    /// accepted, so load balancers stop sending before the listener closes.
    #[serde(with = "humantime_serde")]
    pub drain_delay: Duration,
    /// Every upstream call made for one request finishes within this time
    /// from the request's arrival: each call's timeout shrinks to the time
    /// left, and an optional part still missing then is dropped.
    #[serde(with = "humantime_serde")]
    pub upstream_deadline: Duration,
    /// Time a client has to send its first request's headers from accept
    /// (a connection that never speaks is closed at this), and each later
    /// request's headers from its first byte (slowloris).
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// How long an idle keep-alive connection is kept. Longer than the
    /// 60 s idle timeout of common cloud load balancers, so the balancer,
    /// not the gateway, closes first (the other way round it sends
    /// requests on connections the gateway is closing: sporadic 502s).
    #[serde(with = "humantime_serde")]
    pub keep_alive_timeout: Duration,
    /// Most request headers; more is `431`.
    pub max_headers: usize,
    /// Largest total size of the request headers in bytes; larger is `431`.
    pub max_header_bytes: usize,
    /// Most connections open at once; further ones are closed on accept.
    pub max_connections: usize,
    /// Most connections open at once from one client address, so one host
    /// cannot hold the whole `max_connections`; addresses in
    /// `trusted_proxies` are exempt.
    pub max_connections_per_ip: usize,
    /// Proxies (addresses or CIDR ranges) whose `Forwarded` /
    /// `X-Forwarded-For` name the client; from anyone else they are ignored.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Replies smaller than this (bytes) are sent uncompressed: below
    /// about a packet, compression costs CPU and saves nothing.
    pub compression_min_bytes: u16,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit: 64 * 1024,
            request_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(20),
            drain_delay: Duration::from_secs(5),
            upstream_deadline: Duration::from_millis(1500),
            header_read_timeout: Duration::from_secs(5),
            keep_alive_timeout: Duration::from_secs(75),
            max_headers: 64,
            max_header_bytes: 16 * 1024,
            max_connections: 4096,
            max_connections_per_ip: 256,
            trusted_proxies: Vec::new(),
            compression_min_bytes: 1024,
        }
    }
}

/// API keys: a second way in, for machine clients.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiKeysConfig {
    /// The header a key is sent in.
    pub header: String,
    /// The accepted keys; none by default.
    pub keys: Vec<ApiKeyConfig>,
}

impl Default for ApiKeysConfig {
    fn default() -> Self {
        Self {
            header: "x-api-key".to_owned(),
            keys: Vec::new(),
        }
    }
}

/// One machine client's key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Shown in logs instead of the key.
    pub name: String,
    /// Hex SHA-256 of the key (`printf %s "$KEY" | sha256sum`); the key
    /// itself is never configured.
    pub sha256: String,
    /// The user id the key acts as upstream.
    pub subject: String,
    /// Space-separated scopes, as in a token.
    #[serde(default)]
    pub scope: String,
    /// This key's own sustained requests per second.
    pub per_second: u32,
    /// This key's own burst.
    pub burst: u32,
}

/// Cross-origin access for browser apps served from other origins.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    /// Exact origins (`https://app.example.com`) allowed to call the BFF;
    /// empty: no CORS headers at all. `*` only without credentials.
    pub allowed_origins: Vec<String>,
    /// Whether browsers may send cookies and credentials cross-origin.
    pub allow_credentials: bool,
    /// How long browsers may cache a preflight answer.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
}

impl Default for CorsConfig {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            allow_credentials: false,
            max_age: Duration::from_secs(600),
        }
    }
}

/// Where configuration comes from, in the order the layers apply.
#[derive(Debug, Default)]
pub struct ConfigSources<'a> {
    /// The BFF's own defaults (its embedded `bff-*.toml`).
    pub defaults_toml: &'a str,
    /// The file named by `--config`.
    pub file: Option<&'a Path>,
    /// Whether `BFF_*` environment variables apply (off in tests).
    pub env: bool,
    /// Applied last: what `--demo` (or a test) forces.
    pub overrides_toml: Option<&'a str>,
}

impl Config {
    /// Loads and validates. Every error names the key it is about.
    pub fn load(sources: &ConfigSources<'_>) -> Result<Self, ConfigError> {
        let config = Self::load_unvalidated(sources)?;
        config.validate()?;
        Ok(config)
    }

    /// Loads without [`Self::validate`], for callers that fill in keys
    /// themselves (the demo's upstream URLs) before validating.
    pub fn load_unvalidated(sources: &ConfigSources<'_>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new().merge(Named {
            name: "the built-in defaults",
            toml: sources.defaults_toml,
        });
        if let Some(path) = sources.file {
            // figment treats a missing file as empty; an operator who named
            // a file means it.
            std::fs::File::open(path).map_err(|e| ConfigError::File {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            figment = figment.merge(Toml::file_exact(path));
        }
        if sources.env {
            figment = figment.merge(Env::prefixed(ENV_PREFIX).split("__"));
        }
        if let Some(overrides) = sources.overrides_toml {
            figment = figment.merge(Named {
                name: "the overrides",
                toml: overrides,
            });
        }
        figment.extract().map_err(describe_figment_error)
    }

    /// Checks what types alone cannot: required keys and sane values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_upstreams()?;
        self.auth.validate()?;
        self.cors.validate()?;
        if self.http.max_header_bytes < 1024 {
            return Err(ConfigError::invalid(
                "http.max_header_bytes",
                "must be at least 1024",
            ));
        }
        let graphql = &self.graphql;
        for (key, value) in [
            ("http.max_headers", self.http.max_headers),
            ("http.max_connections", self.http.max_connections),
            (
                "http.max_connections_per_ip",
                self.http.max_connections_per_ip,
            ),
            ("graphql.max_document_bytes", graphql.max_document_bytes),
            ("graphql.max_tokens", graphql.max_tokens),
            ("graphql.max_depth", graphql.max_depth),
            ("graphql.max_complexity", graphql.max_complexity),
            ("graphql.max_recursive_depth", graphql.max_recursive_depth),
            ("graphql.max_first", graphql.max_first as usize),
            ("graphql.apq_cache_entries", graphql.apq_cache_entries),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(key, "must be above zero"));
            }
        }
        let ratio = self.telemetry.sampling_ratio;
        if !(0.0..=1.0).contains(&ratio) {
            return Err(ConfigError::invalid(
                "telemetry.sampling_ratio",
                "must be between 0 and 1",
            ));
        }
        if let Some(url) = &self.telemetry.otlp_endpoint
            && !matches!(url.scheme(), "http" | "https")
        {
            return Err(ConfigError::invalid(
                "telemetry.otlp_endpoint",
                "must be an http or https URL",
            ));
        }
        if self.tls.cert_path.is_some() != self.tls.key_path.is_some() {
            return Err(ConfigError::invalid(
                "tls",
                "cert_path and key_path must be set together",
            ));
        }
        for (key, value) in [
            ("http.header_read_timeout", self.http.header_read_timeout),
            ("http.keep_alive_timeout", self.http.keep_alive_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::invalid(key, "must be above zero"));
            }
        }
        if self.http.body_limit == 0 {
            return Err(ConfigError::invalid(
                "http.body_limit",
                "must be above zero",
            ));
        }
        Ok(())
    }
}

impl Config {
    /// Each named upstream has a usable URL; `all` has none; every
    /// upstream's merged settings are sane. Errors name the key that was set.
    fn validate_upstreams(&self) -> Result<(), ConfigError> {
        let all = self.upstreams.all();
        if all.url.is_some() || all.instances.is_some() {
            return Err(ConfigError::invalid(
                "upstreams.all",
                "url and instances are not allowed here: each upstream sets its own",
            ));
        }
        for (name, upstream) in self.upstreams.named() {
            let bases = match (&upstream.url, &upstream.instances) {
                (Some(url), None) => vec![(format!("upstreams.{name}.url"), url)],
                (None, Some(instances)) => {
                    let key = format!("upstreams.{name}.instances");
                    if instances.is_empty() || instances.len() > MAX_INSTANCES {
                        return Err(ConfigError::invalid(
                            &key,
                            format!("must list 1 to {MAX_INSTANCES} base URLs"),
                        ));
                    }
                    instances.iter().map(|url| (key.clone(), url)).collect()
                }
                (None, None) => {
                    return Err(ConfigError::invalid(
                        &format!("upstreams.{name}.url"),
                        "is required (or upstreams.{name}.instances, a list)",
                    ));
                }
                (Some(_), Some(_)) => {
                    return Err(ConfigError::invalid(
                        &format!("upstreams.{name}"),
                        "sets url and instances: set exactly one of the two",
                    ));
                }
            };
            for (key, url) in bases {
                let usable = matches!(url.scheme(), "http" | "https")
                    && !url.cannot_be_a_base()
                    && url.query().is_none()
                    && url.fragment().is_none();
                if !usable {
                    return Err(ConfigError::invalid(
                        &key,
                        format!("`{url}` must be an http or https base URL, without query"),
                    ));
                }
            }
            // The key a merged value came from: the upstream's own, or `all`'s.
            let origin = |field: &str, own: bool| {
                let table = if own { name } else { "all" };
                format!("upstreams.{table}.{field}")
            };
            let settings = self.upstreams.resolve(name);
            if settings.timeout.is_zero() {
                return Err(ConfigError::invalid(
                    &origin(
                        "timeout",
                        upstream.timeout.is_some() || all.timeout.is_none(),
                    ),
                    "must be above zero",
                ));
            }
            let breaker = &settings.breaker;
            if breaker.consecutive_failures == 0 || breaker.half_open_probes == 0 {
                return Err(ConfigError::invalid(
                    &origin(
                        "breaker",
                        upstream.breaker.consecutive_failures.is_some()
                            || upstream.breaker.half_open_probes.is_some(),
                    ),
                    "consecutive_failures and half_open_probes must be above zero",
                ));
            }
            if !(breaker.failure_ratio > 0.0 && breaker.failure_ratio <= 1.0) {
                return Err(ConfigError::invalid(
                    &origin("breaker", upstream.breaker.failure_ratio.is_some()),
                    "failure_ratio must be in (0, 1]",
                ));
            }
            let outlier = &settings.outlier;
            if outlier.consecutive_failures == 0
                || !(0.0..=1.0).contains(&outlier.max_ejected_ratio)
            {
                return Err(ConfigError::invalid(
                    &origin(
                        "outlier",
                        upstream.outlier.consecutive_failures.is_some()
                            || upstream.outlier.max_ejected_ratio.is_some(),
                    ),
                    "consecutive_failures must be above zero, max_ejected_ratio in [0, 1]",
                ));
            }
            if settings.max_in_flight == 0 {
                return Err(ConfigError::invalid(
                    &origin("max_in_flight", upstream.max_in_flight.is_some()),
                    "must be above zero",
                ));
            }
        }
        Ok(())
    }
}

impl CorsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        for origin in &self.allowed_origins {
            if origin == "*" {
                if self.allow_credentials {
                    return Err(ConfigError::invalid(
                        "cors.allowed_origins",
                        "`*` cannot be combined with cors.allow_credentials; list the exact origins",
                    ));
                }
                continue;
            }
            let exact = Url::parse(origin).ok().is_some_and(|url| {
                matches!(url.scheme(), "http" | "https")
                    && url.host().is_some()
                    && url.path() == "/"
                    && url.query().is_none()
                    && !origin.ends_with('/')
            });
            if !exact {
                return Err(ConfigError::invalid(
                    "cors.allowed_origins",
                    format!("`{origin}` is not an exact origin like https://app.example.com"),
                ));
            }
        }
        Ok(())
    }
}

impl AuthConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let sources = [
            self.hs256_secret.is_some(),
            self.public_key_pem.is_some(),
            self.jwks_url.is_some(),
        ];
        match sources.iter().filter(|set| **set).count() {
            0 => {
                return Err(ConfigError::invalid(
                    "auth.hs256_secret",
                    "is required (or set auth.public_key_pem or auth.jwks_url instead)",
                ));
            }
            1 => {}
            _ => {
                return Err(ConfigError::invalid(
                    "auth",
                    "set only one of auth.hs256_secret, auth.public_key_pem and auth.jwks_url",
                ));
            }
        }
        if self
            .hs256_secret
            .as_ref()
            .is_some_and(|s| s.expose().len() < 32)
        {
            return Err(ConfigError::invalid(
                "auth.hs256_secret",
                "must be at least 32 bytes (RFC 7518 section 3.2)",
            ));
        }
        if let Some(url) = &self.jwks_url
            && !matches!(url.scheme(), "http" | "https")
        {
            return Err(ConfigError::invalid(
                "auth.jwks_url",
                "must be an http or https URL",
            ));
        }
        if self.max_token_bytes < 64 {
            return Err(ConfigError::invalid(
                "auth.max_token_bytes",
                "must be at least 64",
            ));
        }
        Ok(())
    }
}

/// A TOML string layer with a name that error messages can show.
struct Named<'a> {
    name: &'static str,
    toml: &'a str,
}

impl figment::Provider for Named<'_> {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named(self.name)
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        Toml::string(self.toml).data()
    }
}

/// Turns figment's errors into lines that each name the full key and where
/// the value came from. Values are not echoed: a mistyped secret stays secret.
fn describe_figment_error(error: figment::Error) -> ConfigError {
    let lines: Vec<String> = error
        .into_iter()
        .map(|e| {
            let mut path = e.path.clone();
            let what = match &e.kind {
                figment::error::Kind::UnknownField(field, _) => {
                    if path.last() != Some(field) {
                        path.push(field.clone());
                    }
                    "is not a known key".to_owned()
                }
                figment::error::Kind::MissingField(field) => {
                    path.push(field.to_string());
                    "is required".to_owned()
                }
                figment::error::Kind::InvalidType(_, expected) => {
                    format!("has the wrong type; expected {expected}")
                }
                figment::error::Kind::InvalidValue(_, expected) => {
                    format!("has an invalid value; expected {expected}")
                }
                other => other.to_string(),
            };
            let origin = e
                .metadata
                .as_ref()
                .map(|md| match &md.source {
                    Some(source) => format!(" (in {source})"),
                    None if md.name.contains("environment") => {
                        format!(" (in {ENV_PREFIX}{})", path.join("__").to_uppercase())
                    }
                    None => format!(" (in {})", md.name),
                })
                .unwrap_or_default();
            format!("config key `{}`: {what}{origin}", path.join("."))
        })
        .collect();
    ConfigError::Several(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [upstreams.users]
        url = "http://127.0.0.1:9001"
        [upstreams.orders]
        url = "http://127.0.0.1:9002"
        timeout = "300ms"
        [upstreams.notifications]
        url = "http://127.0.0.1:9003"
        [auth]
        hs256_secret = "0123456789abcdef0123456789abcdef"
    "#;

    fn load(extra: &str) -> Result<Config, ConfigError> {
        Config::load(&ConfigSources {
            defaults_toml: GOOD,
            overrides_toml: Some(extra),
            ..ConfigSources::default()
        })
    }

    #[test]
    fn human_durations_and_overrides_apply() {
        let config = load("[upstreams.all]\ntimeout = \"2s\"").expect("valid config");
        assert_eq!(config.upstreams.all().timeout, Some(Duration::from_secs(2)));
        assert_eq!(
            config.upstreams.get("orders").and_then(|o| o.timeout),
            Some(Duration::from_millis(300))
        );
        assert_eq!(
            config.upstreams.resolve("users").timeout,
            Duration::from_secs(2)
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let err = load("[upstreams.orders]\nurll = \"x\"").expect_err("unknown key");
        assert!(err.to_string().contains("upstreams.orders.urll"), "{err}");
    }

    #[test]
    fn bad_url_is_named() {
        let err = load("[upstreams.users]\nurl = \"not a url\"").expect_err("bad url");
        assert!(err.to_string().contains("upstreams.users.url"), "{err}");
        let err = load("[upstreams.users]\nurl = \"ftp://x/\"").expect_err("bad scheme");
        assert!(err.to_string().contains("upstreams.users.url"), "{err}");
    }

    #[test]
    fn short_secret_is_refused_without_echoing_it() {
        let err = load("[auth]\nhs256_secret = \"hunter2\"").expect_err("short secret");
        let text = err.to_string();
        assert!(text.contains("auth.hs256_secret"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn zero_limits_and_loose_cors_are_refused() {
        let err = load("[graphql]\nmax_depth = 0").expect_err("zero depth");
        assert!(err.to_string().contains("graphql.max_depth"), "{err}");
        let err = load("[cors]\nallowed_origins = [\"*\"]\nallow_credentials = true")
            .expect_err("wildcard");
        assert!(err.to_string().contains("cors.allowed_origins"), "{err}");
        let err = load("[cors]\nallowed_origins = [\"https://app.example.com/path\"]")
            .expect_err("not exact");
        assert!(err.to_string().contains("cors.allowed_origins"), "{err}");
        load("[cors]\nallowed_origins = [\"https://app.example.com\", \"http://localhost:3000\"]")
            .expect("exact origins");
    }

    #[test]
    fn secrets_do_not_debug_print() {
        let config = load("").expect("valid config");
        assert!(!format!("{config:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn an_upstream_sets_exactly_one_of_url_and_instances() {
        let both = "[upstreams.catalog]\nurl = \"http://a:1\"\ninstances = [\"http://b:2\"]";
        let err = load(both).expect_err("both");
        assert!(err.to_string().contains("upstreams.catalog"), "{err}");
        assert!(err.to_string().contains("exactly one"), "{err}");
        let err = load("[upstreams.catalog]\ntimeout = \"1s\"").expect_err("neither");
        assert!(err.to_string().contains("upstreams.catalog.url"), "{err}");
        let err = load("[upstreams.catalog]\ninstances = []").expect_err("empty");
        assert!(
            err.to_string().contains("upstreams.catalog.instances"),
            "{err}"
        );
        let err = load("[upstreams.catalog]\ninstances = [\"http://a:1?x=1\"]").expect_err("query");
        assert!(
            err.to_string().contains("upstreams.catalog.instances"),
            "{err}"
        );
    }
}
