//! API keys for machine clients: a second way in, beside bearer tokens.
//!
//! The config holds only each key's SHA-256, never the key. A key stands
//! for a fixed subject and scope and has its own rate-limit quota.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::http::HeaderName;
use sha2::{Digest, Sha256};

use super::Claims;
use super::config::ApiKeysConfig;
use crate::config::types::ConfigError;
use crate::rate_limit::{RateLimiter, WhenSharedStateFails};
use crate::shared_state::SharedState;

/// One configured key.
#[derive(Debug)]
pub struct ApiKey {
    /// For logs and metrics; never the key itself.
    pub name: Arc<str>,
    pub claims: Claims,
    /// This key's own quota.
    pub limiter: RateLimiter,
}

/// The configured keys, by hash.
#[derive(Debug)]
pub struct ApiKeys {
    header: HeaderName,
    by_hash: HashMap<[u8; 32], Arc<ApiKey>>,
}

impl ApiKeys {
    /// The keys of `config`, each with its own quota, counted in `shared`
    /// when it has Redis.
    pub fn from_config(config: &ApiKeysConfig, shared: &SharedState) -> Result<Self, ConfigError> {
        let invalid = |key: String, message: &str| ConfigError::Invalid {
            key,
            message: message.to_owned(),
        };
        let header = HeaderName::try_from(config.header.as_str())
            .map_err(|_| invalid("api_keys.header".to_owned(), "is not a valid header name"))?;
        let mut by_hash = HashMap::new();
        for (i, key) in config.keys.iter().enumerate() {
            let at = |field: &str| format!("api_keys.keys[{i}].{field}");
            let hash = decode_hash(&key.sha256).ok_or_else(|| {
                invalid(
                    at("sha256"),
                    "must be 64 hex digits (the SHA-256 of the key)",
                )
            })?;
            if !super::is_valid_subject(&key.subject) {
                return Err(invalid(
                    at("subject"),
                    "must be 1 to 128 visible ASCII characters, and not `.` or `..` (even percent-encoded)",
                ));
            }
            let per_second = NonZeroU32::new(key.per_second)
                .ok_or_else(|| invalid(at("per_second"), "must be above zero"))?;
            let burst = NonZeroU32::new(key.burst)
                .ok_or_else(|| invalid(at("burst"), "must be above zero"))?;
            let entry = ApiKey {
                name: key.name.as_str().into(),
                claims: Claims {
                    subject: key.subject.as_str().into(),
                    scope: key.scope.clone().into_boxed_str(),
                },
                limiter: RateLimiter::shared(
                    per_second,
                    burst,
                    "api-key",
                    shared,
                    WhenSharedStateFails::FallBack,
                ),
            };
            if by_hash.insert(hash, Arc::new(entry)).is_some() {
                return Err(invalid(at("sha256"), "is listed twice"));
            }
        }
        Ok(Self { header, by_hash })
    }

    /// The header machine clients send their key in.
    pub fn header(&self) -> &HeaderName {
        &self.header
    }

    /// The key whose hash matches what the client presented.
    pub fn find(&self, presented: &[u8]) -> Option<Arc<ApiKey>> {
        let hash: [u8; 32] = Sha256::digest(presented).into();
        self.by_hash.get(&hash).cloned()
    }
}

fn decode_hash(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}
