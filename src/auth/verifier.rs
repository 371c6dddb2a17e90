//! Verifying a bearer token against the one configured key.

use std::collections::HashSet;
use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::config::{AuthConfig, ConfigError};

/// Longest subject accepted: it becomes a path segment and a header upstream.
const MAX_SUBJECT_LEN: usize = 128;

/// Why a token was refused. Messages are safe to show the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub enum AuthError {
    Missing,
    TooLarge,
    Expired,
    NotYetValid,
    Invalid,
}

impl AuthError {
    pub fn message(self) -> &'static str {
        match self {
            Self::Missing => "the bearer token is missing",
            Self::TooLarge => "the bearer token is too large",
            Self::Expired => "the bearer token has expired",
            Self::NotYetValid => "the bearer token is not valid yet",
            Self::Invalid => "the bearer token is not valid",
        }
    }

    /// Whether a token was presented (decides `error="invalid_token"`).
    pub fn token_sent(self) -> bool {
        self != Self::Missing
    }
}

/// What a handler may rely on from a verified token.
#[derive(Debug, Clone)]
pub struct Claims {
    /// The `sub` claim: the user id used upstream.
    pub subject: Arc<str>,
    /// The space-separated `scope` claim.
    pub scope: Box<str>,
}

impl Claims {
    pub fn has_scope(&self, wanted: &str) -> bool {
        self.scope.split(' ').any(|s| s == wanted)
    }
}

#[derive(Deserialize)]
struct TokenClaims {
    sub: String,
    #[serde(default)]
    scope: Option<String>,
}

/// Verifies tokens against the configured key. The accepted algorithm comes
/// from the key, never from the token's header, so `alg: none` and
/// RS256-to-HS256 confusion are refused by construction.
#[derive(Clone)]
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
    max_token_bytes: usize,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

impl JwtVerifier {
    pub fn from_config(config: &AuthConfig) -> Result<Self, ConfigError> {
        let (key, algorithm) = match (&config.hs256_secret, &config.public_key_pem) {
            (Some(secret), None) => (
                DecodingKey::from_secret(secret.expose().as_bytes()),
                Algorithm::HS256,
            ),
            (None, Some(pem)) => pinned_public_key(pem.expose().as_bytes())?,
            _ => {
                return Err(ConfigError::Invalid {
                    key: "auth.hs256_secret".to_owned(),
                    message: "set exactly one of auth.hs256_secret and auth.public_key_pem"
                        .to_owned(),
                });
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = config.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required: HashSet<String> = HashSet::from(["exp".to_owned(), "sub".to_owned()]);
        match &config.issuer {
            Some(issuer) => {
                validation.set_issuer(&[issuer]);
                required.insert("iss".to_owned());
            }
            None => validation.iss = None,
        }
        match &config.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.insert("aud".to_owned());
            }
            None => validation.validate_aud = false,
        }
        validation.required_spec_claims = required;
        Ok(Self {
            key,
            validation,
            max_token_bytes: config.max_token_bytes,
        })
    }

    /// Verifies signature, `exp`, `nbf`, `iss`, `aud`, and the subject's form.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        if token.len() > self.max_token_bytes {
            return Err(AuthError::TooLarge);
        }
        let data = jsonwebtoken::decode::<TokenClaims>(token, &self.key, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                _ => AuthError::Invalid,
            })?;
        let TokenClaims { sub, scope } = data.claims;
        if sub.is_empty()
            || sub.len() > MAX_SUBJECT_LEN
            || !sub.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(AuthError::Invalid);
        }
        Ok(Claims {
            subject: sub.into(),
            scope: scope.unwrap_or_default().into_boxed_str(),
        })
    }
}

/// Reads a PEM public key and the one algorithm its type allows.
fn pinned_public_key(pem: &[u8]) -> Result<(DecodingKey, Algorithm), ConfigError> {
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        return Ok((key, Algorithm::RS256));
    }
    if let Ok(key) = DecodingKey::from_ed_pem(pem) {
        return Ok((key, Algorithm::EdDSA));
    }
    if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        // The key is the curve point: uncompressed, 65 bytes on P-256 and
        // 97 on P-384. The curve decides the algorithm.
        let algorithm = match key.try_get_as_bytes().map(<[u8]>::len) {
            Ok(65) => Some(Algorithm::ES256),
            Ok(97) => Some(Algorithm::ES384),
            _ => None,
        };
        if let Some(algorithm) = algorithm {
            return Ok((key, algorithm));
        }
    }
    Err(ConfigError::Invalid {
        key: "auth.public_key_pem".to_owned(),
        message: "is not an RSA, P-256, P-384 or Ed25519 public key in PEM form".to_owned(),
    })
}
