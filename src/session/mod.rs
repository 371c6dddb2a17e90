//! The web BFF as an OAuth token handler ("OAuth 2.0 for Browser-Based
//! Apps", the BFF pattern): the BFF is a confidential OpenID Connect
//! client, runs the authorization-code flow with PKCE, keeps the tokens,
//! and gives the browser only an `HttpOnly` session cookie.
//!
//! [`provider`] speaks to the identity provider (discovery, PKCE, state,
//! nonce, ID-token validation, refresh, revocation: the `openidconnect`
//! crate), [`store`] keeps sessions and logins in progress, [`cookie`]
//! writes and reads the two cookies, [`routes`] serves `/auth/*`, and
//! [`TokenHandler::authenticate`] turns a session cookie into the caller
//! of an API request (with the CSRF rules) for [`crate::auth::authenticate`].
//! Unset (`session.oidc`), none of it exists and only bearer tokens and API
//! keys are accepted.

pub mod cookie;
pub mod provider;
pub mod routes;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, Method};
use serde::{Deserialize, Serialize};

use crate::auth::{AuthError, Claims};
use crate::config::{ConfigError, HttpUrl, Secret};
use crate::error::ApiError;
use crate::shared_state::SharedState;

pub use provider::Provider;
pub use store::{Session, Sessions};

/// `[session]`: browser sessions of the token handler.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// The OpenID provider and this BFF's client there; unset: no
    /// sessions, bearer tokens only.
    pub oidc: Option<OidcConfig>,
    /// How long a session lasts from login, whatever its use.
    #[serde(with = "humantime_serde")]
    pub lifetime: Duration,
    /// A session unused this long ends.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// The session cookie's name; `__Host-` keeps it to this exact origin.
    pub cookie_name: String,
    /// Sessions kept at most in each process (the least recently used
    /// dropped first).
    pub max_sessions: usize,
    /// With `shared_state.redis_url` (required then): 32 bytes in base64,
    /// the AES-256-GCM key sessions are sealed with in Redis. The same on
    /// every replica; a new key logs everyone out.
    pub encryption_key: Option<Secret>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            oidc: None,
            lifetime: Duration::from_secs(8 * 3600),
            idle_timeout: Duration::from_secs(30 * 60),
            cookie_name: "__Host-bff-session".to_owned(),
            max_sessions: 100_000,
            encryption_key: None,
        }
    }
}

/// `[session.oidc]`: the identity provider and this BFF's client there.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The issuer; its `/.well-known/openid-configuration` is read.
    pub issuer: HttpUrl,
    pub client_id: String,
    pub client_secret: Secret,
    /// This BFF's `/auth/callback`, as registered with the provider; its
    /// origin is the app's origin for the CSRF check.
    pub redirect_url: HttpUrl,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Where the provider sends the browser after logout.
    pub post_logout_redirect_url: Option<HttpUrl>,
}

fn default_scopes() -> Vec<String> {
    ["openid", "profile", "offline_access"]
        .map(str::to_owned)
        .to_vec()
}

impl SessionConfig {
    /// A usable cookie name and an `openid` scope.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errors = Vec::new();
        if self.cookie_name.is_empty()
            || !self
                .cookie_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            errors.push(ConfigError::invalid(
                "session.cookie_name",
                "must be letters, digits, `-`, `_` or `.`",
            ));
        }
        if let Some(oidc) = &self.oidc
            && !oidc.scopes.iter().any(|s| s == "openid")
        {
            errors.push(ConfigError::invalid(
                "session.oidc.scopes",
                "must include `openid`",
            ));
        }
        ConfigError::all(errors)
    }
}

/// The token handler of one BFF: its provider, its sessions, its rules.
#[derive(Debug)]
pub struct TokenHandler {
    pub provider: Provider,
    pub sessions: Sessions,
    pub cookie_name: String,
    /// The login state's cookie: the session cookie's name with `-login`.
    pub login_cookie_name: String,
    /// Origins an unsafe method authenticated by cookie may come from:
    /// the redirect URL's, and `cors.allowed_origins`.
    allowed_origins: Vec<String>,
}

/// `X-CSRF`: the custom header every cookie-authenticated request carries.
/// A cross-site page cannot send it without a CORS preflight the BFF
/// refuses.
pub const CSRF_HEADER: &str = "x-csrf";

impl TokenHandler {
    /// The handler for `config`, or `None` when `session.oidc` is unset.
    pub fn from_config(
        config: &SessionConfig,
        cors_origins: &[String],
        shared: &SharedState,
    ) -> Result<Option<Arc<Self>>, ConfigError> {
        let Some(oidc) = &config.oidc else {
            return Ok(None);
        };
        let app_origin = oidc.redirect_url.origin().ascii_serialization();
        let allowed_origins = std::iter::once(app_origin)
            .chain(cors_origins.iter().filter(|o| *o != "*").cloned())
            .collect();
        let login_cookie_name = match config.cookie_name.strip_suffix("-session") {
            Some(stem) => format!("{stem}-login"),
            None => format!("{}-login", config.cookie_name),
        };
        Ok(Some(Arc::new(Self {
            provider: Provider::new(oidc)?,
            sessions: Sessions::new(config, shared).map_err(|error| {
                ConfigError::invalid("session.encryption_key", error.to_string())
            })?,
            cookie_name: config.cookie_name.clone(),
            login_cookie_name,
            allowed_origins,
        })))
    }

    /// The caller of an API request that came with the session cookie and
    /// no other credential: `Ok(None)` without the cookie (then a bearer
    /// token is required as before). The request must carry `X-CSRF: 1`,
    /// and an unsafe method an allowed `Origin` (or `Referer`): `403`
    /// otherwise. An unknown, expired or unrefreshable session is `401`.
    pub async fn authenticate(
        &self,
        method: &Method,
        headers: &HeaderMap,
    ) -> Result<Option<(Claims, HeaderValue)>, ApiError> {
        let Some(id) = cookie::find(headers, &self.cookie_name) else {
            return Ok(None);
        };
        self.check_csrf(method, headers)?;
        let Some(session) = self.sessions.find(id).await else {
            return Err(AuthError::Expired.into());
        };
        let access = match self.sessions.access_token(&session, &self.provider).await {
            Ok(access) => access,
            Err(error) => {
                tracing::info!(%error, "session ended: its token could not be refreshed");
                self.sessions.remove(id).await;
                return Err(AuthError::Expired.into());
            }
        };
        let authorization = HeaderValue::from_str(&format!("Bearer {access}"))
            .map_err(|_| ApiError::from(AuthError::Invalid))?;
        Ok(Some((session.claims.clone(), authorization)))
    }

    /// `X-CSRF: 1`, and for an unsafe method an allowed `Origin` (or
    /// `Referer`): `403 forbidden` otherwise. For `/auth/*` and the API
    /// alike.
    pub fn check_csrf(&self, method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
        if headers.get(CSRF_HEADER).map(HeaderValue::as_bytes) != Some(b"1") {
            return Err(ApiError::CsrfRefused(
                "a request authenticated by cookie needs the `X-CSRF: 1` header",
            ));
        }
        if !method.is_safe() && !self.same_origin(headers) {
            return Err(ApiError::CsrfRefused(
                "a request authenticated by cookie must come from the app's origin",
            ));
        }
        Ok(())
    }

    /// `Origin` (or, without it, `Referer`) is one of the allowed origins.
    fn same_origin(&self, headers: &HeaderMap) -> bool {
        let origin = match headers.get(axum::http::header::ORIGIN) {
            Some(origin) => origin.to_str().ok().map(str::to_owned),
            None => headers
                .get(axum::http::header::REFERER)
                .and_then(|r| r.to_str().ok())
                .and_then(|r| url::Url::parse(r).ok())
                .map(|url| url.origin().ascii_serialization()),
        };
        origin.is_some_and(|origin| self.allowed_origins.contains(&origin))
    }
}
