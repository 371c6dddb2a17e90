//! `auth.*` and `api_keys.*`: how tokens are verified, and the keys of
//! machine clients.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::config::types::{ByteSize, ConfigError, HttpUrl, Secret};

/// A token limit below 64 bytes would refuse every real token.
fn at_least_64_bytes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ByteSize, D::Error> {
    let value = ByteSize::deserialize(deserializer)?;
    if value.get() < 64 {
        return Err(serde::de::Error::custom("must be at least 64"));
    }
    Ok(value)
}

/// Token verification. Exactly one of `hs256_secret`, `public_key_pem` and
/// `jwks_url`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// HMAC secret for HS256 tokens, at least 32 bytes (RFC 7518 §3.2).
    pub hs256_secret: Option<Secret>,
    /// PEM public key; its type pins the algorithm (RSA: RS256, P-256:
    /// ES256, P-384: ES384, Ed25519: EdDSA).
    pub public_key_pem: Option<Secret>,
    /// An identity provider's JWKS: keys by `kid`, each pinned to its algorithm.
    pub jwks_url: Option<HttpUrl>,
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
    #[serde(deserialize_with = "at_least_64_bytes")]
    pub max_token_bytes: ByteSize,
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
            max_token_bytes: ByteSize::kib(8),
        }
    }
}

/// API keys: a second way in, for machine clients.
#[derive(Debug, Clone, Deserialize, Serialize)]
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
#[derive(Debug, Clone, Deserialize, Serialize)]
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

impl AuthConfig {
    /// The rules across keys: exactly one key source; an HS256 secret
    /// long enough (checked here so the error never echoes it).
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
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
        Ok(())
    }
}
