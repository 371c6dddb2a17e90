//! State the replicas of one BFF share, in Redis: rate-limit counts
//! ([`gcra`]), automatic persisted queries and idempotency records.
//!
//! Without `shared_state.redis_url` nothing here talks to anything and every
//! replica keeps its own state, as one process always has. With it, every
//! command goes over one multiplexed connection that reconnects by itself
//! (`redis`'s `ConnectionManager`), bounded by a command timeout of a few
//! milliseconds. Redis is never on the failure path of a request: when a
//! command fails or is slow, this marks the shared state degraded (logged
//! once, in `/readyz` and in `bff_shared_state_degraded`), callers fall back
//! to their in-process state, and a probe puts Redis back in use once it
//! answers again.

pub mod apq;
pub mod gcra;

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, Secret};
use crate::metrics::Metrics;

/// `[shared_state]`: where the replicas of this BFF keep what they share.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SharedStateConfig {
    /// `redis://[:password@]host:port[/db]` or `rediss://` (TLS). Unset:
    /// everything stays in each process.
    pub redis_url: Option<Secret>,
    /// Prefix of every key this BFF writes, so several BFFs can share one
    /// Redis. Default: the BFF's name.
    pub key_prefix: Option<String>,
    /// How long one connection attempt may take.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// How long one command may take before the shared state counts as
    /// degraded and the in-process fallback answers.
    #[serde(with = "humantime_serde")]
    pub command_timeout: Duration,
    /// How often a degraded shared state is tried again.
    #[serde(with = "humantime_serde")]
    pub probe_interval: Duration,
    /// How many replicas share the quotas: while Redis is unreachable each
    /// one admits its quota divided by this.
    pub replicas_hint: NonZeroU32,
    /// How long an automatic persisted query stays in Redis after it was
    /// last registered.
    #[serde(with = "humantime_serde")]
    pub apq_ttl: Duration,
}

impl Default for SharedStateConfig {
    fn default() -> Self {
        Self {
            redis_url: None,
            key_prefix: None,
            connect_timeout: Duration::from_secs(1),
            command_timeout: Duration::from_millis(10),
            probe_interval: Duration::from_secs(1),
            replicas_hint: NonZeroU32::MIN,
            apq_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

impl SharedStateConfig {
    /// A URL Redis accepts, a prefix without spaces, timeouts above zero.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errors = Vec::new();
        if let Some(url) = &self.redis_url
            && let Err(error) = redis::Client::open(url.expose())
        {
            // The URL may hold a password: say what is wrong, not what it is.
            errors.push(ConfigError::invalid(
                "shared_state.redis_url",
                format!("is not a usable Redis URL ({:?})", error.kind()),
            ));
        }
        if let Some(prefix) = &self.key_prefix
            && (prefix.is_empty() || prefix.chars().any(char::is_whitespace))
        {
            errors.push(ConfigError::invalid(
                "shared_state.key_prefix",
                "must be a non-empty word without spaces",
            ));
        }
        for (key, value) in [
            ("shared_state.connect_timeout", self.connect_timeout),
            ("shared_state.command_timeout", self.command_timeout),
            ("shared_state.probe_interval", self.probe_interval),
        ] {
            if value.is_zero() {
                errors.push(ConfigError::invalid(key, "must be more than zero"));
            }
        }
        ConfigError::all(errors)
    }
}

/// The shared state of one BFF: Redis when configured, nothing otherwise.
/// Cheap to clone; every config generation shares the first one (a changed
/// `shared_state` takes a restart).
#[derive(Debug, Clone, Default)]
pub struct SharedState {
    redis: Option<Arc<Redis>>,
}

/// What `/readyz` says about the shared state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SharedStateHealth {
    /// No Redis configured: each replica keeps its own state.
    Local,
    /// Redis answers.
    Ok,
    /// Redis failed or was slow: in-process fallbacks answer for now.
    Degraded,
}

impl SharedState {
    /// Connects lazily: an unreachable Redis at start is a degraded shared
    /// state, not a failed start. Call inside a Tokio runtime (the probe is
    /// a task).
    pub fn connect(
        config: &SharedStateConfig,
        bff: &str,
        metrics: &Arc<Metrics>,
    ) -> Result<Self, ConfigError> {
        let Some(url) = &config.redis_url else {
            return Ok(Self::default());
        };
        let invalid = |error: redis::RedisError| {
            ConfigError::invalid(
                "shared_state.redis_url",
                format!("is not a usable Redis URL ({:?})", error.kind()),
            )
        };
        let client = redis::Client::open(url.expose()).map_err(invalid)?;
        let connection_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.command_timeout))
            .set_number_of_retries(1)
            .set_max_delay(config.probe_interval);
        let connection =
            ConnectionManager::new_lazy_with_config(client, connection_config).map_err(invalid)?;
        let redis = Arc::new(Redis {
            connection,
            prefix: config.key_prefix.clone().unwrap_or_else(|| bff.to_owned()),
            command_timeout: config.command_timeout,
            replicas_hint: config.replicas_hint,
            apq_ttl: config.apq_ttl,
            available: AtomicBool::new(true),
            metrics: metrics.clone(),
        });
        metrics.set_shared_state_degraded(false);
        // Where, never with the password.
        let server = url::Url::parse(url.expose())
            .ok()
            .map(|url| {
                format!(
                    "{}:{}",
                    url.host_str().unwrap_or_default(),
                    url.port().unwrap_or(6379)
                )
            })
            .unwrap_or_default();
        tracing::info!(
            redis = %server,
            key_prefix = %redis.prefix,
            replicas_hint = config.replicas_hint.get(),
            "shared state in Redis"
        );
        Redis::spawn_probe(&redis, config.probe_interval);
        Ok(Self { redis: Some(redis) })
    }

    /// Redis, when configured.
    pub fn redis(&self) -> Option<&Arc<Redis>> {
        self.redis.as_ref()
    }

    /// `local`, `ok` or `degraded`.
    pub fn health(&self) -> SharedStateHealth {
        match &self.redis {
            None => SharedStateHealth::Local,
            Some(redis) if redis.is_available() => SharedStateHealth::Ok,
            Some(_) => SharedStateHealth::Degraded,
        }
    }
}

/// Why a shared-state command gave no answer: the caller falls back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// Redis failed recently; not tried until the probe sees it answer.
    #[error("the shared state is degraded")]
    Degraded,
    /// This command failed or timed out (and the state is now degraded).
    #[error("the shared state did not answer")]
    Failed,
}

/// One Redis, its key prefix and whether it is answering.
#[derive(Debug)]
pub struct Redis {
    connection: ConnectionManager,
    prefix: String,
    command_timeout: Duration,
    replicas_hint: NonZeroU32,
    apq_ttl: Duration,
    available: AtomicBool,
    metrics: Arc<Metrics>,
}

impl Redis {
    /// `<prefix>:<kind>:<rest>`: every key this BFF writes.
    pub fn key(&self, kind: &str, rest: &str) -> String {
        let mut key = String::with_capacity(self.prefix.len() + kind.len() + rest.len() + 2);
        key.push_str(&self.prefix);
        key.push(':');
        key.push_str(kind);
        key.push(':');
        key.push_str(rest);
        key
    }

    /// How many replicas share a quota, for the fallback's share of it.
    pub fn replicas_hint(&self) -> NonZeroU32 {
        self.replicas_hint
    }

    /// Whether commands are sent (false while degraded).
    pub fn is_available(&self) -> bool {
        self.available.load(Ordering::Relaxed)
    }

    /// Runs `command` on the shared connection within the command timeout.
    /// While degraded nothing is sent; a failure or timeout degrades.
    pub async fn run<T, F, Fut>(&self, what: &'static str, command: F) -> Result<T, Unavailable>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if !self.is_available() {
            return Err(Unavailable::Degraded);
        }
        match tokio::time::timeout(self.command_timeout, command(self.connection.clone())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                self.degrade(what, &error.to_string());
                Err(Unavailable::Failed)
            }
            Err(_) => {
                self.degrade(what, "timed out");
                Err(Unavailable::Failed)
            }
        }
    }

    /// Sends one command, as [`Self::run`] does.
    pub async fn query<T: redis::FromRedisValue>(
        &self,
        what: &'static str,
        command: &redis::Cmd,
    ) -> Result<T, Unavailable> {
        self.run(what, |mut connection| async move {
            command.query_async(&mut connection).await
        })
        .await
    }

    /// Marks the state degraded; logs only the change.
    fn degrade(&self, what: &str, why: &str) {
        if self.available.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                command = what,
                error = why,
                "shared state degraded: Redis did not answer; in-process limits and records \
                 apply until it does"
            );
            self.metrics.set_shared_state_degraded(true);
        }
    }

    /// Every `interval`, while degraded, sends a `PING`; the first answer
    /// puts Redis back in use. Ends when the state is dropped.
    fn spawn_probe(redis: &Arc<Self>, interval: Duration) {
        let weak: Weak<Self> = Arc::downgrade(redis);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(redis) = weak.upgrade() else { break };
                if redis.is_available() {
                    continue;
                }
                let mut connection = redis.connection.clone();
                // A probe may wait for a reconnection: a connect timeout,
                // not a command's.
                let ping = tokio::time::timeout(
                    interval,
                    redis::cmd("PING").query_async::<String>(&mut connection),
                )
                .await;
                if matches!(ping, Ok(Ok(_))) && !redis.available.swap(true, Ordering::Relaxed) {
                    tracing::info!("shared state back: Redis answers again");
                    redis.metrics.set_shared_state_degraded(false);
                }
            }
        });
    }
}
