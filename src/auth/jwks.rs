//! Keys from a JWKS endpoint (an identity provider's published keys).
//!
//! Fetched at start and every `auth.jwks_ttl`; a token whose `kid` is
//! unknown triggers one refresh, at most once per `auth.jwks_cooldown`, and
//! concurrent misses wait for that one fetch instead of starting their own.
//! When the endpoint is down the last good keys keep working; a key removed
//! from the set stops working after the next refresh. Redirects are not
//! followed. Each key is pinned to one algorithm, from its `alg` or else
//! its key type and curve; symmetric (`oct`) keys are never accepted from a
//! public key set.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use url::Url;

use super::config::AuthConfig;
use crate::config::types::ConfigError;

/// Largest key set accepted.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// A verification key with the one algorithm it may verify.
#[derive(Clone)]
pub struct PinnedKey {
    pub key: DecodingKey,
    pub algorithm: Algorithm,
}

impl std::fmt::Debug for PinnedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// `kid` → key. Keys published without a `kid` are stored under "".
type KeyMap = HashMap<String, Arc<PinnedKey>>;

/// The cached key set of one JWKS endpoint.
#[derive(Debug)]
pub struct JwksKeys {
    url: Url,
    http: reqwest::Client,
    cooldown: Duration,
    keys: RwLock<Arc<KeyMap>>,
    last_attempt: std::sync::Mutex<Option<Instant>>,
    /// Held while a fetch is in flight: concurrent misses wait on it.
    refreshing: tokio::sync::Mutex<()>,
}

impl JwksKeys {
    /// Starts fetching in the background (so start-up does not wait on the
    /// identity provider) and refreshing every `ttl`. Must run inside a
    /// Tokio runtime.
    pub fn start(url: Url, config: &AuthConfig) -> Result<Arc<Self>, ConfigError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(config.jwks_timeout)
            .build()
            .map_err(|e| ConfigError::Invalid {
                key: "auth.jwks_url".to_owned(),
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        let jwks = Arc::new(Self {
            url,
            http,
            cooldown: config.jwks_cooldown,
            keys: RwLock::new(Arc::new(KeyMap::new())),
            last_attempt: std::sync::Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        });
        spawn_refresher(Arc::downgrade(&jwks), config.jwks_ttl);
        Ok(jwks)
    }

    /// The key for a token's `kid`, refreshing once if it is unknown. A
    /// token without `kid` matches only a set with a single key.
    pub async fn key_for(&self, kid: Option<&str>) -> Option<Arc<PinnedKey>> {
        if let Some(key) = self.lookup(kid) {
            return Some(key);
        }
        self.refresh_if_allowed().await;
        self.lookup(kid)
    }

    fn lookup(&self, kid: Option<&str>) -> Option<Arc<PinnedKey>> {
        let keys = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match kid {
            Some(kid) => keys.get(kid).cloned(),
            None if keys.len() == 1 => keys.values().next().cloned(),
            None => None,
        }
    }

    /// Refreshes unless one was attempted within the cooldown; when a fetch
    /// is already in flight, waits for it instead.
    async fn refresh_if_allowed(&self) {
        match self.refreshing.try_lock() {
            Ok(_guard) => {
                if self.cooldown_passed() {
                    self.fetch().await;
                }
            }
            Err(_) => {
                let _in_flight_done = self.refreshing.lock().await;
            }
        }
    }

    fn cooldown_passed(&self) -> bool {
        let last = *self
            .last_attempt
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        last.is_none_or(|at| at.elapsed() >= self.cooldown)
    }

    /// Fetches the set; on any failure keeps the keys it had.
    async fn fetch(&self) {
        *self
            .last_attempt
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        match self.download().await {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "JWKS refreshed");
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
            }
            Err(error) => tracing::warn!(%error, "JWKS refresh failed; keeping the last good keys"),
        }
    }

    async fn download(&self) -> Result<KeyMap, String> {
        let mut response = self
            .http
            .get(self.url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("status {}", response.status().as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("body: {e}"))? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err("key set too large".to_owned());
            }
            body.extend_from_slice(&chunk);
        }
        let set: JwkSet =
            serde_json::from_slice(&body).map_err(|e| format!("not a JWK set: {e}"))?;
        Ok(set
            .keys
            .iter()
            .filter_map(|jwk| {
                let pinned = pin(jwk)?;
                Some((
                    jwk.common.key_id.clone().unwrap_or_default(),
                    Arc::new(pinned),
                ))
            })
            .collect())
    }

    async fn refresh_now(&self) {
        let _guard = self.refreshing.lock().await;
        self.fetch().await;
    }
}

/// The key and its one algorithm, or `None` for keys we never accept.
fn pin(jwk: &Jwk) -> Option<PinnedKey> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    let by_type = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        _ => return None,
    };
    let algorithm = match jwk.common.key_algorithm {
        Some(declared) => Algorithm::try_from(declared).ok()?,
        None => by_type,
    };
    // A declared algorithm must belong to the key's type (no HS256 on an RSA key).
    let same_family = match by_type {
        Algorithm::RS256 => matches!(
            algorithm,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ),
        other => algorithm == other,
    };
    if !same_family {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(PinnedKey { key, algorithm })
}

fn spawn_refresher(jwks: Weak<JwksKeys>, ttl: Duration) {
    tokio::spawn(async move {
        // The first fetch goes through the cooldown logic, so a request
        // arriving at the same moment shares it.
        if let Some(keys) = jwks.upgrade() {
            keys.refresh_if_allowed().await;
        }
        let mut ticker = tokio::time::interval(ttl);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            match jwks.upgrade() {
                Some(keys) => keys.refresh_now().await,
                None => break,
            }
        }
    });
}
