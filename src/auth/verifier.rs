//! Verifying a bearer token against the configured keys.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};

use lru::LruCache;
use sha2::{Digest as _, Sha256};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::config::AuthConfig;
use super::jwks::{JwksKeys, PinnedKey};
use crate::config::types::ConfigError;

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
    InvalidApiKey,
}

impl AuthError {
    pub fn message(self) -> &'static str {
        match self {
            Self::Missing => "the bearer token is missing",
            Self::TooLarge => "the bearer token is too large",
            Self::Expired => "the bearer token has expired",
            Self::NotYetValid => "the bearer token is not valid yet",
            Self::Invalid => "the bearer token is not valid",
            Self::InvalidApiKey => "the API key is not valid",
        }
    }

    /// Whether a token was presented (decides `error="invalid_token"`).
    pub fn token_sent(self) -> bool {
        self != Self::Missing
    }
}

/// What a handler may rely on from a verified token (or API key).
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
    /// Kept for a verified token's cache entry; jsonwebtoken checked them.
    #[serde(default)]
    exp: Option<serde_json::Value>,
    #[serde(default)]
    nbf: Option<serde_json::Value>,
    /// Every other claim, by name only, for the required-claims check.
    #[serde(flatten)]
    others: HashMap<String, IgnoredAny>,
}

/// Where verification keys come from.
#[derive(Debug)]
enum Keys {
    /// One configured key (HMAC secret or PEM public key).
    Static(PinnedKey),
    /// An identity provider's key set, by `kid`.
    Jwks(Arc<JwksKeys>),
}

/// Verifies tokens. The accepted algorithm comes from the key (the static
/// key's type, or each JWK), never from the token's header, so `alg: none`
/// and RS256-to-HS256 confusion are refused by construction; the header's
/// `jku`, `x5u` and `jwk` are never read, and `kid` is only a map key.
#[derive(Debug)]
pub struct JwtVerifier {
    keys: Keys,
    /// One validation per algorithm a key may pin, built once.
    validations: HashMap<Algorithm, Validation>,
    max_token_bytes: usize,
    typ: Option<String>,
    required_claims: Vec<String>,
    /// `auth.leeway` in seconds, for a cached token's `exp` and `nbf`.
    leeway: u64,
    verified: Mutex<LruCache<[u8; 32], Arc<Verified>>>,
}

/// Tokens kept once verified, by their SHA-256 (so a large token costs
/// no more to keep). A client sends the same token with every request
/// until it expires, and checking its signature and claims again each
/// time was a twentieth of a dashboard's CPU.
const VERIFIED_KEPT: NonZeroUsize = NonZeroUsize::new(4096).expect("not zero");

/// A token that passed every check, and what its next use must check
/// again: its time window, and that the key it was verified with is
/// still in the key set.
#[derive(Debug)]
struct Verified {
    claims: Claims,
    exp: u64,
    nbf: Option<u64>,
    kid: Option<String>,
    /// The key set's key (with `auth.jwks_url`); `None` for a static key.
    key: Option<Arc<PinnedKey>>,
}

impl JwtVerifier {
    /// Builds the verifier; with `auth.jwks_url` this starts the key set's
    /// fetching, so it must run inside a Tokio runtime.
    pub fn from_config(config: &AuthConfig) -> Result<Self, ConfigError> {
        let keys = match (
            &config.hs256_secret,
            &config.public_key_pem,
            &config.jwks_url,
        ) {
            (Some(secret), None, None) => Keys::Static(PinnedKey {
                key: DecodingKey::from_secret(secret.expose().as_bytes()),
                algorithm: Algorithm::HS256,
            }),
            (None, Some(pem), None) => Keys::Static(pinned_public_key(pem.expose().as_bytes())?),
            (None, None, Some(url)) => Keys::Jwks(JwksKeys::start((**url).clone(), config)?),
            _ => {
                return Err(ConfigError::Invalid {
                    key: "auth".to_owned(),
                    message: "set exactly one of auth.hs256_secret, auth.public_key_pem and auth.jwks_url"
                        .to_owned(),
                });
            }
        };
        let base = base_validation(config);
        let validations = [
            Algorithm::HS256,
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::EdDSA,
        ]
        .into_iter()
        .map(|alg| {
            let mut validation = base.clone();
            validation.algorithms = vec![alg];
            (alg, validation)
        })
        .collect();
        Ok(Self {
            keys,
            validations,
            max_token_bytes: config.max_token_bytes.get(),
            typ: config.typ.clone(),
            required_claims: config.required_claims.clone(),
            leeway: config.leeway.as_secs(),
            verified: Mutex::new(LruCache::new(VERIFIED_KEPT)),
        })
    }

    /// Verifies size, header, signature, `exp`, `nbf`, `iss`, `aud`, `typ`,
    /// required claims and the subject's form.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        if token.len() > self.max_token_bytes {
            return Err(AuthError::TooLarge);
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let known = self.lock_verified().get(&digest).cloned();
        if let Some(known) = known
            && let Some(claims) = self.still_valid(&known).await?
        {
            return Ok(claims);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid)?;
        // RFC 7515 §4.1.11: extensions listed as critical must be
        // understood, and this gateway understands none.
        if header.crit.is_some() {
            return Err(AuthError::Invalid);
        }
        if let Some(expected) = &self.typ {
            let typ = header.typ.as_deref().unwrap_or_default();
            let typ = typ.strip_prefix("application/").unwrap_or(typ);
            if !typ.eq_ignore_ascii_case(expected) {
                return Err(AuthError::Invalid);
            }
        }
        let from_set = match &self.keys {
            Keys::Static(_) => None,
            Keys::Jwks(jwks) => Some(
                jwks.key_for(header.kid.as_deref())
                    .await
                    .ok_or(AuthError::Invalid)?,
            ),
        };
        let key = match (&self.keys, &from_set) {
            (_, Some(key)) => &**key,
            (Keys::Static(key), None) => key,
            (Keys::Jwks(_), None) => return Err(AuthError::Invalid),
        };
        if header.alg != key.algorithm {
            return Err(AuthError::Invalid);
        }
        let validation = self
            .validations
            .get(&key.algorithm)
            .ok_or(AuthError::Invalid)?;
        let data = jsonwebtoken::decode::<TokenClaims>(token, &key.key, validation).map_err(
            |e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                _ => AuthError::Invalid,
            },
        )?;
        let TokenClaims {
            sub,
            scope,
            exp,
            nbf,
            others,
        } = data.claims;
        let present = |claim: &str| match claim {
            "exp" => exp.is_some(),
            "nbf" => nbf.is_some(),
            _ => others.contains_key(claim),
        };
        if !self.required_claims.iter().all(|claim| present(claim)) {
            return Err(AuthError::Invalid);
        }
        if !is_valid_subject(&sub) {
            return Err(AuthError::Invalid);
        }
        let claims = Claims {
            subject: sub.into(),
            scope: scope.unwrap_or_default().into_boxed_str(),
        };
        // Kept only with whole-second times (what jsonwebtoken compares).
        let nbf = nbf.map(|n| n.as_u64());
        if let (Some(exp), None | Some(Some(_))) = (exp.and_then(|e| e.as_u64()), nbf) {
            let verified = Verified {
                claims: claims.clone(),
                exp,
                nbf: nbf.flatten(),
                kid: header.kid,
                key: from_set,
            };
            self.lock_verified().put(digest, Arc::new(verified));
        }
        Ok(claims)
    }

    /// The subject of `token` if it was verified before and is still in
    /// its time window: a hint, from the cache alone (no signature, no key
    /// set), for what may be done before [`Self::verify`] decides.
    pub fn known_subject(&self, token: &str) -> Option<Arc<str>> {
        if token.len() > self.max_token_bytes {
            return None;
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let known = self.lock_verified().peek(&digest).cloned()?;
        let now = jsonwebtoken::get_current_timestamp();
        let in_window = known.exp >= now.saturating_sub(self.leeway)
            && known.nbf.is_none_or(|nbf| nbf <= now + self.leeway);
        in_window.then(|| known.claims.subject.clone())
    }

    /// A kept token's claims if it is still good: `Err` when its time is
    /// up (as jsonwebtoken words it), `None` when its key has left the key
    /// set (then it is verified again, and refused).
    async fn still_valid(&self, known: &Verified) -> Result<Option<Claims>, AuthError> {
        let now = jsonwebtoken::get_current_timestamp();
        if known.exp < now.saturating_sub(self.leeway) {
            return Err(AuthError::Expired);
        }
        if known.nbf.is_some_and(|nbf| nbf > now + self.leeway) {
            return Err(AuthError::NotYetValid);
        }
        if let (Keys::Jwks(jwks), Some(key)) = (&self.keys, &known.key) {
            match jwks.key_for(known.kid.as_deref()).await {
                Some(current) if Arc::ptr_eq(&current, key) => {}
                _ => return Ok(None),
            }
        }
        Ok(Some(known.claims.clone()))
    }

    fn lock_verified(&self) -> std::sync::MutexGuard<'_, LruCache<[u8; 32], Arc<Verified>>> {
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A subject becomes `X-User-Id` and an upstream path segment: 1 to 128
/// visible ASCII characters that the identifier rule accepts.
pub fn is_valid_subject(sub: &str) -> bool {
    !sub.is_empty()
        && sub.len() <= MAX_SUBJECT_LEN
        && sub.bytes().all(|b| b.is_ascii_graphic())
        && crate::upstream::segment::check(sub).is_ok()
}

/// `exp` and `sub` always required, `nbf` checked, `iss` and `aud` required
/// when configured, with the configured leeway.
fn base_validation(config: &AuthConfig) -> Validation {
    let mut validation = Validation::new(Algorithm::HS256);
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
    validation
}

/// Reads a PEM public key and the one algorithm its type allows.
fn pinned_public_key(pem: &[u8]) -> Result<PinnedKey, ConfigError> {
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        return Ok(PinnedKey {
            key,
            algorithm: Algorithm::RS256,
        });
    }
    if let Ok(key) = DecodingKey::from_ed_pem(pem) {
        return Ok(PinnedKey {
            key,
            algorithm: Algorithm::EdDSA,
        });
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
            return Ok(PinnedKey { key, algorithm });
        }
    }
    Err(ConfigError::Invalid {
        key: "auth.public_key_pem".to_owned(),
        message: "is not an RSA, P-256, P-384 or Ed25519 public key in PEM form".to_owned(),
    })
}
