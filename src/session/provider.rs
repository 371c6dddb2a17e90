//! The OpenID provider, as this BFF's confidential client sees it, through
//! the `openidconnect` crate: discovery (once, retried until it works),
//! the authorization URL with PKCE (S256), state and nonce, the code
//! exchange with the ID token's validation, refresh, revocation and the
//! end-session URL. Its HTTP goes through the workspace's reqwest (no
//! redirects followed), adapted to the crate's `AsyncHttpClient`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient,
    CoreClientAuthMethod, CoreGrantType, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm, CoreResponseMode, CoreResponseType, CoreRevocableToken,
    CoreSubjectIdentifierType,
};
use openidconnect::{
    AccessTokenHash, AdditionalProviderMetadata, AsyncHttpClient, AuthorizationCode, ClientId,
    ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, HttpClientError,
    HttpRequest, HttpResponse, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, ProviderMetadata, RedirectUrl, RefreshToken, RevocationUrl, Scope,
    TokenResponse as _,
};
use serde::{Deserialize, Serialize};

use super::OidcConfig;
use crate::config::{ConfigError, HttpUrl};

/// What discovery reads beyond the core metadata.
#[derive(Debug, Clone, Deserialize, Serialize)]
struct LogoutAndRevocation {
    revocation_endpoint: Option<String>,
    end_session_endpoint: Option<String>,
}

impl AdditionalProviderMetadata for LogoutAndRevocation {}

type Metadata = ProviderMetadata<
    LogoutAndRevocation,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// The client as discovery builds it: an authorization endpoint, a token
/// and a user-info endpoint when the provider has them.
type DiscoveredClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Why a step with the provider failed. Never holds a token.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("the provider's discovery document could not be read: {0}")]
    Discovery(String),
    #[error("the provider has no token endpoint")]
    NoTokenEndpoint,
    #[error("the token request failed: {0}")]
    Token(String),
    #[error("the ID token is not valid: {0}")]
    IdToken(String),
}

/// The workspace's reqwest, as the crate's HTTP client.
#[derive(Debug, Clone)]
struct Http(reqwest::Client);

impl<'c> AsyncHttpClient<'c> for Http {
    type Error = HttpClientError<reqwest::Error>;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, Self::Error>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request).map_err(Box::new)?;
            let response = self.0.execute(request).await.map_err(Box::new)?;
            let mut builder = axum::http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let body = response.bytes().await.map_err(Box::new)?;
            builder.body(body.to_vec()).map_err(HttpClientError::Http)
        })
    }
}

/// A login sent to the provider, to be finished by its callback.
#[derive(Debug)]
pub struct LoginRequest {
    pub url: url::Url,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// Tokens from a code exchange or a refresh.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// When the access token expires, if the provider said.
    pub expires_in: Option<Duration>,
    /// The scopes granted (`scope` of the token response), space-separated.
    pub scope: Option<String>,
}

/// A finished login: the tokens and what the ID token says.
#[derive(Debug)]
pub struct LoggedIn {
    pub tokens: Tokens,
    pub subject: String,
    /// The ID token's claims for `/auth/user` (name, email, ...).
    pub claims: serde_json::Value,
    /// The raw ID token, kept for the logout's `id_token_hint`.
    pub id_token: String,
}

/// The configured provider; discovered on first use.
#[derive(Debug)]
pub struct Provider {
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: ClientSecret,
    redirect: RedirectUrl,
    scopes: Vec<Scope>,
    post_logout: Option<HttpUrl>,
    http: Http,
    discovered: ArcSwapOption<Discovered>,
}

/// How long a copy of the discovery document (and key set) is used.
const REDISCOVER_AFTER: Duration = Duration::from_secs(3600);

#[derive(Debug)]
struct Discovered {
    client: DiscoveredClient,
    revocation: Option<RevocationUrl>,
    end_session: Option<url::Url>,
    /// When it was read.
    at: Instant,
}

impl Provider {
    pub fn new(config: &OidcConfig) -> Result<Self, ConfigError> {
        let invalid = |key: &str, error: &dyn std::fmt::Display| {
            ConfigError::invalid(
                &format!("session.oidc.{key}"),
                format!("is not usable: {error}"),
            )
        };
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| invalid("issuer", &e))?;
        Ok(Self {
            issuer: IssuerUrl::new(config.issuer.as_str().trim_end_matches('/').to_owned())
                .map_err(|e| invalid("issuer", &e))?,
            client_id: ClientId::new(config.client_id.clone()),
            client_secret: ClientSecret::new(config.client_secret.expose().to_owned()),
            redirect: RedirectUrl::new(config.redirect_url.to_string())
                .map_err(|e| invalid("redirect_url", &e))?,
            scopes: config
                .scopes
                .iter()
                .filter(|s| *s != "openid")
                .map(|s| Scope::new(s.clone()))
                .collect(),
            post_logout: config.post_logout_redirect_url.clone(),
            http: Http(http),
            discovered: ArcSwapOption::empty(),
        })
    }

    /// The provider's metadata and the client built from it, read again
    /// after [`REDISCOVER_AFTER`] (its keys rotate); while the provider
    /// cannot be read, the last good copy serves.
    async fn discovered(&self) -> Result<Arc<Discovered>, ProviderError> {
        if let Some(known) = self.discovered.load_full()
            && known.at.elapsed() < REDISCOVER_AFTER
        {
            return Ok(known);
        }
        match self.discover().await {
            Ok(fresh) => Ok(fresh),
            Err(error) => self.discovered.load_full().ok_or(error),
        }
    }

    /// Reads the discovery document (and its key set) now.
    async fn discover(&self) -> Result<Arc<Discovered>, ProviderError> {
        let metadata = Metadata::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|e| ProviderError::Discovery(error_chain(&e)))?;
        let extra = metadata.additional_metadata().clone();
        let client = CoreClient::from_provider_metadata(
            metadata,
            self.client_id.clone(),
            Some(self.client_secret.clone()),
        )
        .set_redirect_uri(self.redirect.clone());
        let discovered = Arc::new(Discovered {
            client,
            revocation: extra
                .revocation_endpoint
                .and_then(|u| RevocationUrl::new(u).ok()),
            end_session: extra
                .end_session_endpoint
                .and_then(|u| url::Url::parse(&u).ok()),
            at: Instant::now(),
        });
        self.discovered.store(Some(discovered.clone()));
        Ok(discovered)
    }

    /// Where to send the browser to log in: PKCE S256, a fresh state and
    /// nonce, the configured scopes.
    pub async fn login(&self) -> Result<LoginRequest, ProviderError> {
        let discovered = self.discovered().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = discovered
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scopes(self.scopes.iter().cloned())
            .set_pkce_challenge(challenge)
            .url();
        Ok(LoginRequest {
            url,
            state: state.into_secret(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.into_secret(),
        })
    }

    /// Exchanges the callback's code (with the login's PKCE verifier) and
    /// validates the ID token (signature, issuer, audience, expiry, nonce,
    /// and the access token's hash when it has one).
    pub async fn finish_login(
        &self,
        code: String,
        pkce_verifier: String,
        nonce: &str,
    ) -> Result<LoggedIn, ProviderError> {
        let discovered = self.discovered().await?;
        let response = discovered
            .client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|_| ProviderError::NoTokenEndpoint)?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| ProviderError::Token(error_chain(&e)))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| ProviderError::IdToken("the token response has none".into()))?;
        let nonce = Nonce::new(nonce.to_owned());
        // A token signed with a key newer than the copy of the key set: read
        // the provider again, once, and check with its current keys.
        let checks = id_token
            .claims(&discovered.client.id_token_verifier(), &nonce)
            .is_ok();
        let discovered = match checks {
            true => discovered,
            false => self.discover().await.unwrap_or(discovered),
        };
        let verifier = discovered.client.id_token_verifier();
        let claims = id_token
            .claims(&verifier, &nonce)
            .map_err(|e| ProviderError::IdToken(error_chain(&e)))?;
        if let Some(expected) = claims.access_token_hash() {
            let signing = id_token
                .signing_alg()
                .map_err(|e| ProviderError::IdToken(error_chain(&e)))?;
            let key = id_token
                .signing_key(&verifier)
                .map_err(|e| ProviderError::IdToken(error_chain(&e)))?;
            let actual = AccessTokenHash::from_token(response.access_token(), signing, key)
                .map_err(|e| ProviderError::IdToken(error_chain(&e)))?;
            if actual != *expected {
                return Err(ProviderError::IdToken(
                    "the access token does not match its hash".into(),
                ));
            }
        }
        let subject = claims.subject().as_str().to_owned();
        let mut public_claims =
            serde_json::to_value(claims).map_err(|e| ProviderError::IdToken(e.to_string()))?;
        self.add_user_info(&discovered, &response, claims.subject(), &mut public_claims)
            .await;
        let mut tokens = tokens_of(&response);
        // RFC 6749 §5.1: a response without `scope` granted what was asked.
        tokens.scope.get_or_insert_with(|| {
            std::iter::once("openid")
                .chain(self.scopes.iter().map(|s| s.as_str()))
                .collect::<Vec<_>>()
                .join(" ")
        });
        Ok(LoggedIn {
            tokens,
            subject,
            claims: public_claims,
            id_token: id_token.to_string(),
        })
    }

    /// The user-info endpoint's claims over the ID token's (many providers
    /// put the profile only there), checked to be about the same subject.
    /// Without the endpoint, or when it fails, the ID token's claims stay.
    async fn add_user_info(
        &self,
        discovered: &Discovered,
        response: &openidconnect::core::CoreTokenResponse,
        subject: &openidconnect::SubjectIdentifier,
        claims: &mut serde_json::Value,
    ) {
        let Ok(request) = discovered
            .client
            .user_info(response.access_token().clone(), Some(subject.clone()))
        else {
            return;
        };
        let user_info: Result<openidconnect::core::CoreUserInfoClaims, _> =
            request.request_async(&self.http).await;
        match user_info.map(serde_json::to_value) {
            Ok(Ok(serde_json::Value::Object(info))) => {
                if let serde_json::Value::Object(claims) = claims {
                    claims.extend(info);
                }
            }
            Ok(_) => {}
            Err(error) => tracing::info!(error = %error_chain(&error), "user info not read"),
        }
    }

    /// A new access token (and, with rotation, refresh token).
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, ProviderError> {
        let discovered = self.discovered().await?;
        let token = RefreshToken::new(refresh_token.to_owned());
        let response = discovered
            .client
            .exchange_refresh_token(&token)
            .map_err(|_| ProviderError::NoTokenEndpoint)?
            .request_async(&self.http)
            .await
            .map_err(|e| ProviderError::Token(error_chain(&e)))?;
        let mut tokens = tokens_of(&response);
        // A provider that does not rotate keeps the old refresh token.
        tokens
            .refresh_token
            .get_or_insert_with(|| refresh_token.to_owned());
        Ok(tokens)
    }

    /// Revokes `refresh_token` where the provider supports revocation;
    /// a failure is logged, never shown (the session is gone either way).
    pub async fn revoke(&self, refresh_token: &str) {
        let Ok(discovered) = self.discovered().await else {
            return;
        };
        let Some(url) = &discovered.revocation else {
            return;
        };
        let token: CoreRevocableToken = RefreshToken::new(refresh_token.to_owned()).into();
        let request = discovered.client.clone().set_revocation_url(url.clone());
        let revoked = match request.revoke_token(token) {
            Ok(revocation) => revocation
                .request_async(&self.http)
                .await
                .map_err(|e| error_chain(&e)),
            Err(e) => Err(error_chain(&e)),
        };
        if let Err(error) = revoked {
            tracing::warn!(%error, "refresh token not revoked");
        }
    }

    /// The provider's end-session URL for a logout, with the ID token as
    /// the hint and the configured post-logout redirect; `None` when the
    /// provider has no end-session endpoint.
    pub async fn end_session_url(&self, id_token: &str) -> Option<url::Url> {
        let discovered = self.discovered().await.ok()?;
        let mut url = discovered.end_session.clone()?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("id_token_hint", id_token);
            query.append_pair("client_id", self.client_id.as_str());
            if let Some(after) = &self.post_logout {
                query.append_pair("post_logout_redirect_uri", after.as_str());
            }
        }
        Some(url)
    }
}

fn tokens_of<T>(response: &T) -> Tokens
where
    T: OAuth2TokenResponse,
{
    Tokens {
        access_token: response.access_token().secret().clone(),
        refresh_token: response.refresh_token().map(|t| t.secret().clone()),
        expires_in: response.expires_in(),
        scope: response.scopes().map(|scopes| {
            scopes
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        }),
    }
}

/// An error and its causes on one line (no token is in any of them).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    text
}
