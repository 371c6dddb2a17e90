//! Typed configuration: TOML file, environment overrides, validation at start.
//!
//! Layers, later wins: the struct defaults below, the BFF's own embedded
//! defaults (its `bff-*.toml`), the file named by `--config`, then every
//! `BFF_`-prefixed environment variable (`BFF_UPSTREAMS__CATALOG__URL` is
//! `upstreams.catalog.url`). Unknown keys are errors, not silently ignored,
//! and every error names the key, so a typo never starts a half-configured
//! gateway.
//!
//! Each subsystem owns its table's type (`listener::config::HttpConfig`,
//! `auth::config::AuthConfig`, `upstream::config`, ...), written in the
//! vocabulary of [`types`]: byte sizes, ratios, URLs and non-zero counts
//! that refuse a bad value as it is read. What is left for
//! [`Config::validate`] are the rules across keys.

use std::net::SocketAddr;
use std::path::Path;

pub mod types;

pub use crate::auth::config::{ApiKeyConfig, ApiKeysConfig, AuthConfig};
pub use crate::cors::CorsConfig;
pub use crate::declared::EndpointsConfig;
pub use crate::graphql::config::{DocumentPolicy, GraphQlConfig};
pub use crate::idempotency::IdempotencyConfig;
pub use crate::listener::config::HttpConfig;
pub use crate::rate_limit::RateLimitConfig;
pub use crate::session::{OidcConfig, SessionConfig};
pub use crate::shared_state::SharedStateConfig;
pub use crate::telemetry::config::{LogFormat, TelemetryConfig};
pub use crate::tls::TlsConfig;
pub use crate::upstream::config::{
    BreakerConfig, BreakerOverrides, MAX_INSTANCES, OutlierConfig, OutlierOverrides, RetryConfig,
    RetryOverrides, UpstreamConfig, UpstreamSettings, UpstreamsConfig,
};
pub use types::{BaseUrl, ByteSize, ConfigError, HttpUrl, Profile, Ratio, Secret};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Serialize};

/// The environment variable prefix for every key.
pub const ENV_PREFIX: &str = "BFF_";

/// One BFF's whole configuration: each table is the config type of the
/// subsystem that reads it, defined next to its code, with its defaults
/// in its `Default`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address and port the BFF listens on.
    pub listen: SocketAddr,
    /// Whether `listen` came from the file or the environment rather than
    /// the built-in defaults: `--demo` keeps an address chosen this way
    /// (`0.0.0.0` in a container) and moves a default one to loopback.
    #[serde(skip)]
    pub listen_is_chosen: bool,
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
    /// Where the declared endpoint files come from.
    pub endpoints: EndpointsConfig,
    /// What the replicas of this BFF share (Redis), if anything.
    pub shared_state: SharedStateConfig,
    /// How long and how many idempotency records are kept.
    pub idempotency: IdempotencyConfig,
    /// Browser sessions: the web BFF as an OAuth token handler.
    pub session: SessionConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            listen_is_chosen: false,
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
            endpoints: EndpointsConfig::default(),
            shared_state: SharedStateConfig::default(),
            idempotency: IdempotencyConfig::default(),
            session: SessionConfig::default(),
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
            name: DEFAULTS_LAYER,
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
        let mut config: Self = figment.extract().map_err(describe_figment_error)?;
        config.listen_is_chosen = figment
            .find_metadata("listen")
            .is_some_and(|layer| layer.name != DEFAULTS_LAYER);
        Ok(config)
    }

    /// Checks the rules that span several keys (what the types alone
    /// cannot: a value wrong on its own was refused as it was read), and
    /// reports every problem at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errors = self.upstream_errors();
        errors.extend(self.auth.validate().err());
        errors.extend(self.cors.validate().err());
        errors.extend(self.tls.validate().err());
        errors.extend(self.shared_state.validate().err());
        errors.extend(self.session.validate().err());
        ConfigError::all(errors)
    }

    /// `all` sets no address; each named upstream sets exactly one of
    /// `url` and `instances`, and a usable number of instances.
    fn upstream_errors(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let all = self.upstreams.all();
        if all.url.is_some() || all.instances.is_some() {
            errors.push(ConfigError::invalid(
                "upstreams.all",
                "url and instances are not allowed here: each upstream sets its own",
            ));
        }
        for (name, upstream) in self.upstreams.named() {
            match (&upstream.url, &upstream.instances) {
                (Some(_), None) => {}
                (None, Some(instances)) => {
                    if instances.is_empty() || instances.len() > MAX_INSTANCES {
                        errors.push(ConfigError::invalid(
                            &format!("upstreams.{name}.instances"),
                            format!("must list 1 to {MAX_INSTANCES} base URLs"),
                        ));
                    }
                }
                (None, None) => errors.push(ConfigError::invalid(
                    &format!("upstreams.{name}.url"),
                    format!("is required (or upstreams.{name}.instances, a list)"),
                )),
                (Some(_), Some(_)) => errors.push(ConfigError::invalid(
                    &format!("upstreams.{name}"),
                    "sets url and instances: set exactly one of the two",
                )),
            }
        }
        errors
    }
}

/// A TOML string layer with a name that error messages can show.
/// The name of the lowest layer, a BFF's embedded `bff-*.toml`.
const DEFAULTS_LAYER: &str = "the built-in defaults";

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
    use std::time::Duration;

    const GOOD: &str = r#"
        [upstreams.accounts]
        url = "http://127.0.0.1:9001"
        [upstreams.inventory]
        url = "http://127.0.0.1:9002"
        timeout = "300ms"
        [upstreams.pricing]
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
            config.upstreams.get("inventory").and_then(|o| o.timeout),
            Some(Duration::from_millis(300))
        );
        assert_eq!(
            config.upstreams.resolve("accounts").timeout,
            Duration::from_secs(2)
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let err = load("[upstreams.inventory]\nurll = \"x\"").expect_err("unknown key");
        assert!(
            err.to_string().contains("upstreams.inventory.urll"),
            "{err}"
        );
    }

    #[test]
    fn bad_url_is_named() {
        let err = load("[upstreams.accounts]\nurl = \"not a url\"").expect_err("bad url");
        assert!(err.to_string().contains("upstreams.accounts.url"), "{err}");
        let err = load("[upstreams.accounts]\nurl = \"ftp://x/\"").expect_err("bad scheme");
        assert!(err.to_string().contains("upstreams.accounts.url"), "{err}");
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

    #[test]
    fn every_cross_key_problem_is_reported_at_once() {
        let err = load(
            "[upstreams.catalog]\nurl = \"http://a:1\"\ninstances = [\"http://b:2\"]\n\
             [auth]\njwks_url = \"https://idp.example.com/jwks\"\n\
             [tls]\ncert_path = \"cert.pem\"",
        )
        .expect_err("three problems");
        let text = err.to_string();
        for key in ["upstreams.catalog", "`auth`", "`tls`"] {
            assert!(text.contains(key), "{key} missing from: {text}");
        }
        assert_eq!(text.lines().count(), 3, "{text}");
    }

    #[test]
    fn values_are_checked_as_they_are_read_naming_the_key() {
        let config = load("[http]\nbody_limit = \"64KiB\"\nmax_header_bytes = \"32KiB\"")
            .expect("byte sizes with units");
        assert_eq!(config.http.body_limit.get(), 65_536);
        assert_eq!(config.http.max_header_bytes.get(), 32_768);
        for (toml, key) in [
            ("[http]\nbody_limit = \"64 parsecs\"", "http.body_limit"),
            ("[http]\nbody_limit = 0", "http.body_limit"),
            ("[http]\nmax_connections = 0", "http.max_connections"),
            (
                "[http]\nheader_read_timeout = \"0s\"",
                "http.header_read_timeout",
            ),
            (
                "[telemetry]\nsampling_ratio = 1.5",
                "telemetry.sampling_ratio",
            ),
            (
                "[telemetry]\notlp_endpoint = \"ftp://x\"",
                "telemetry.otlp_endpoint",
            ),
            (
                "[upstreams.all.breaker]\nfailure_ratio = 2.0",
                "upstreams.all.breaker.failure_ratio",
            ),
            (
                "[upstreams.inventory]\nmax_in_flight = 0",
                "upstreams.inventory.max_in_flight",
            ),
            (
                "[upstreams.inventory]\ntimeout = \"0ms\"",
                "upstreams.inventory.timeout",
            ),
        ] {
            let err = load(toml).expect_err(toml);
            assert!(err.to_string().contains(key), "{toml}: {err}");
        }
    }
}
