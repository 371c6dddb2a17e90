//! Sessions and logins in progress, in this process.
//!
//! A session is found by the SHA-256 of its cookie's random id, so the map
//! never holds a usable id. It ends at `session.lifetime` after login, or
//! `session.idle_timeout` after its last use, or at logout; at most
//! `session.max_sessions` are kept (the least recently used dropped). Its
//! tokens sit behind one async lock, so concurrent requests of one session
//! wait for a single refresh instead of each spending the refresh token
//! (which a rotating provider would take as a replay).

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use lru::LruCache;
use sha2::{Digest, Sha256};

use super::SessionConfig;
use super::provider::{Provider, ProviderError, Tokens};
use crate::auth::Claims;

/// An access token this close to its expiry is refreshed before use.
const REFRESH_AHEAD: Duration = Duration::from_secs(30);
/// How long a login may take at the provider.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(600);
/// Logins in progress kept at most.
const MAX_LOGINS: usize = 10_000;

/// One browser's session.
#[derive(Debug)]
pub struct Session {
    /// The ID token's subject and the token response's scopes.
    pub claims: Claims,
    /// The ID token's claims, for `/auth/user`.
    pub user: serde_json::Value,
    /// For the logout's `id_token_hint`.
    pub id_token: String,
    pub expires: Instant,
    tokens: tokio::sync::Mutex<HeldTokens>,
    last_used: Mutex<Instant>,
}

#[derive(Debug)]
struct HeldTokens {
    tokens: Tokens,
    /// When the access token must be refreshed (`None`: never said).
    refresh_at: Option<Instant>,
}

impl HeldTokens {
    fn new(tokens: Tokens) -> Self {
        let refresh_at = tokens
            .expires_in
            .map(|lifetime| Instant::now() + lifetime.saturating_sub(REFRESH_AHEAD));
        Self { tokens, refresh_at }
    }
}

impl Session {
    /// The access token to send upstream, refreshed first when it is about
    /// to expire: one refresh at a time per session; requests that waited
    /// for it use its result.
    pub async fn access_token(&self, provider: &Provider) -> Result<String, ProviderError> {
        let mut held = self.tokens.lock().await;
        if held.refresh_at.is_some_and(|at| Instant::now() >= at) {
            let refresh = held.tokens.refresh_token.clone().ok_or_else(|| {
                ProviderError::Token(
                    "the access token expired and there is no refresh token".into(),
                )
            })?;
            *held = HeldTokens::new(provider.refresh(&refresh).await?);
        }
        Ok(held.tokens.access_token.clone())
    }

    /// The refresh token, for revocation at logout.
    pub async fn refresh_token(&self) -> Option<String> {
        self.tokens.lock().await.tokens.refresh_token.clone()
    }
}

/// A login sent to the provider, found again by its cookie at the callback.
#[derive(Debug)]
pub struct PendingLogin {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub return_to: String,
    started: Instant,
}

/// Every session and login in progress of one BFF.
#[derive(Debug)]
pub struct Sessions {
    sessions: Mutex<LruCache<[u8; 32], Arc<Session>>>,
    logins: Mutex<LruCache<[u8; 32], PendingLogin>>,
    lifetime: Duration,
    idle_timeout: Duration,
}

impl Sessions {
    pub fn new(config: &SessionConfig) -> Self {
        Self {
            sessions: Mutex::new(LruCache::new(
                NonZeroUsize::new(config.max_sessions).unwrap_or(NonZeroUsize::MIN),
            )),
            logins: Mutex::new(LruCache::new(
                NonZeroUsize::new(MAX_LOGINS).expect("not zero"),
            )),
            lifetime: config.lifetime,
            idle_timeout: config.idle_timeout,
        }
    }

    /// Keeps a login in progress; returns its cookie's id.
    pub fn start_login(
        &self,
        state: String,
        nonce: String,
        pkce_verifier: String,
        return_to: String,
    ) -> String {
        let id = random_id();
        self.logins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .put(
                digest(&id),
                PendingLogin {
                    state,
                    nonce,
                    pkce_verifier,
                    return_to,
                    started: Instant::now(),
                },
            );
        id
    }

    /// Takes the login of cookie `id` (once: a replayed callback finds
    /// nothing), if it has not timed out.
    pub fn take_login(&self, id: &str) -> Option<PendingLogin> {
        self.logins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop(&digest(id))
            .filter(|login| login.started.elapsed() < LOGIN_TIMEOUT)
    }

    /// Creates a session; returns its cookie's id, new at every login (no
    /// id from before the login survives it: no session fixation).
    pub fn create(
        &self,
        claims: Claims,
        user: serde_json::Value,
        id_token: String,
        tokens: Tokens,
    ) -> (String, Arc<Session>) {
        let id = random_id();
        let now = Instant::now();
        let session = Arc::new(Session {
            claims,
            user,
            id_token,
            expires: now + self.lifetime,
            tokens: tokio::sync::Mutex::new(HeldTokens::new(tokens)),
            last_used: Mutex::new(now),
        });
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .put(digest(&id), session.clone());
        (id, session)
    }

    /// The live session of cookie `id`, its idle clock restarted.
    pub fn find(&self, id: &str) -> Option<Arc<Session>> {
        let key = digest(id);
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let session = sessions.get(&key)?.clone();
        let now = Instant::now();
        let mut last_used = session
            .last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if now >= session.expires || now.duration_since(*last_used) >= self.idle_timeout {
            drop(last_used);
            sessions.pop(&key);
            return None;
        }
        *last_used = now;
        drop(last_used);
        Some(session)
    }

    /// Ends the session of cookie `id`; returns it, if it was live.
    pub fn remove(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop(&digest(id))
    }
}

/// 32 random bytes, base64url: a cookie value nobody can guess.
fn random_id() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}
