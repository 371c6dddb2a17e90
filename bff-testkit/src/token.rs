//! Development tokens for `--demo` and the tests.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{EncodingKey, Header, encode};
use serde::Serialize;

/// The claims a development token carries.
#[derive(Debug, Clone, Serialize)]
pub struct DevClaims {
    pub sub: String,
    pub scope: String,
    pub exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

impl DevClaims {
    /// A token for `sub` with `scope`, valid for `ttl` from now.
    pub fn new(sub: &str, scope: &str, ttl: Duration) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            sub: sub.to_owned(),
            scope: scope.to_owned(),
            exp: (now + ttl).as_secs(),
            iss: None,
            aud: None,
        }
    }
}

/// Signs `claims` with HS256 under `secret`.
pub fn hs256(secret: &str, claims: &DevClaims) -> String {
    encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256 signs any claims of strings and numbers")
}

/// A fresh random secret for one demo run: 32 random bytes, hex-encoded.
pub fn random_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
