//! Sessions and logins in progress: in this process, or in Redis when
//! `shared_state.redis_url` is set, so any replica serves any session.
//!
//! A session is found by the SHA-256 of its cookie's random id, so neither
//! the process nor Redis holds a usable id. In Redis its record is
//! encrypted (AES-256-GCM under `session.encryption_key`, the key's name as
//! associated data), so the tokens are never at rest in clear; each use
//! reads it with `GETEX`, which also restarts its idle clock. It ends at
//! `session.lifetime` after login, `session.idle_timeout` after its last
//! use, or at logout; in process at most `session.max_sessions` are kept.
//!
//! One refresh at a time per session: requests of one replica wait on the
//! session's gate, replicas on a Redis lock (`SET NX PX`), and whoever
//! waited uses the refreshed tokens instead of spending the refresh token
//! again (which a rotating provider takes as a replay). While Redis does not
//! answer, new sessions and logins stay in the process that made them.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use lru::LruCache;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::SessionConfig;
use super::provider::{Provider, ProviderError, Tokens};
use crate::auth::Claims;
use crate::shared_state::{Redis, SharedState};

/// An access token this close to its expiry is refreshed before use.
const REFRESH_AHEAD: Duration = Duration::from_secs(30);
/// How long a login may take at the provider.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(600);
/// Logins in progress kept at most in process.
const MAX_LOGINS: usize = 10_000;
/// How long a replica may hold a session's refresh lock.
const REFRESH_LOCK: Duration = Duration::from_secs(15);

/// A session as stored: JSON, encrypted in Redis.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    subject: String,
    scope: String,
    user: serde_json::Value,
    id_token: String,
    /// Unix milliseconds: the session's end, whatever its use.
    expires_at: u64,
    access_token: String,
    refresh_token: Option<String>,
    /// Unix milliseconds: when the access token must be refreshed.
    refresh_at: Option<u64>,
}

impl Record {
    fn set_tokens(&mut self, tokens: Tokens) {
        self.refresh_at = tokens
            .expires_in
            .map(|lifetime| now_ms() + millis(lifetime.saturating_sub(REFRESH_AHEAD)));
        self.access_token = tokens.access_token;
        if tokens.refresh_token.is_some() {
            self.refresh_token = tokens.refresh_token;
        }
    }

    fn needs_refresh(&self) -> bool {
        self.refresh_at.is_some_and(|at| now_ms() >= at)
    }
}

/// One browser's session, as a request sees it.
#[derive(Debug)]
pub struct Session {
    key: [u8; 32],
    /// The ID token's subject and the token response's scopes.
    pub claims: Claims,
    record: Mutex<Record>,
    /// Where it was read from: Redis, or this process's map.
    in_redis: bool,
    /// Unix milliseconds of its last use (in-process sessions; Redis
    /// keeps the idle clock of its own as the key's expiry).
    last_used: Mutex<u64>,
}

impl Session {
    fn from_record(key: [u8; 32], record: Record, in_redis: bool) -> Self {
        Self {
            key,
            claims: Claims {
                subject: record.subject.as_str().into(),
                scope: record.scope.clone().into_boxed_str(),
            },
            record: Mutex::new(record),
            in_redis,
            last_used: Mutex::new(now_ms()),
        }
    }

    fn last_used(&self) -> std::sync::MutexGuard<'_, u64> {
        self.last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self) -> std::sync::MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The ID token's (and user info's) claims, for `/auth/user`.
    pub fn user(&self) -> serde_json::Value {
        self.record().user.clone()
    }

    /// The raw ID token, for the logout's `id_token_hint`.
    pub fn id_token(&self) -> String {
        self.record().id_token.clone()
    }

    /// The refresh token, for revocation at logout.
    pub fn refresh_token(&self) -> Option<String> {
        self.record().refresh_token.clone()
    }

    /// Unix seconds when the session ends.
    pub fn expires_at(&self) -> u64 {
        self.record().expires_at / 1000
    }
}

/// A login sent to the provider, found again by its cookie at the callback.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub return_to: String,
    /// Unix milliseconds.
    started: u64,
}

/// Redis and the key records are sealed with.
struct Shared {
    redis: Arc<Redis>,
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

/// Every session and login in progress of one BFF.
#[derive(Debug)]
pub struct Sessions {
    local: Mutex<LruCache<[u8; 32], Arc<Session>>>,
    logins: Mutex<LruCache<[u8; 32], PendingLogin>>,
    /// One refresh at a time per session in this process.
    gates: Mutex<LruCache<[u8; 32], Arc<tokio::sync::Mutex<()>>>>,
    shared: Option<Shared>,
    lifetime: Duration,
    idle_timeout: Duration,
}

/// Why the sessions cannot be built.
#[derive(Debug, thiserror::Error)]
#[error("session.encryption_key must be 32 bytes in base64 (with shared_state.redis_url)")]
pub struct BadEncryptionKey;

impl Sessions {
    /// In Redis when `shared` has it (then `config.encryption_key` is
    /// required), in this process otherwise.
    pub fn new(config: &SessionConfig, shared: &SharedState) -> Result<Self, BadEncryptionKey> {
        let shared = match shared.redis() {
            None => None,
            Some(redis) => {
                let key = config
                    .encryption_key
                    .as_ref()
                    .and_then(|key| {
                        base64::engine::general_purpose::STANDARD
                            .decode(key.expose().trim())
                            .ok()
                    })
                    .filter(|key| key.len() == 32)
                    .ok_or(BadEncryptionKey)?;
                Some(Shared {
                    redis: redis.clone(),
                    cipher: Aes256Gcm::new_from_slice(&key).map_err(|_| BadEncryptionKey)?,
                })
            }
        };
        let capacity = NonZeroUsize::new(config.max_sessions).unwrap_or(NonZeroUsize::MIN);
        Ok(Self {
            local: Mutex::new(LruCache::new(capacity)),
            logins: Mutex::new(LruCache::new(
                NonZeroUsize::new(MAX_LOGINS).expect("not zero"),
            )),
            gates: Mutex::new(LruCache::new(capacity)),
            shared,
            lifetime: config.lifetime,
            idle_timeout: config.idle_timeout,
        })
    }

    /// Keeps a login in progress; returns its cookie's id.
    pub async fn start_login(
        &self,
        state: String,
        nonce: String,
        pkce_verifier: String,
        return_to: String,
    ) -> String {
        let id = random_id();
        let key = digest(&id);
        let login = PendingLogin {
            state,
            nonce,
            pkce_verifier,
            return_to,
            started: now_ms(),
        };
        if let Some(shared) = &self.shared
            && shared
                .put("login", &key, &login, LOGIN_TIMEOUT)
                .await
                .is_ok()
        {
            return id;
        }
        lock(&self.logins).put(key, login);
        id
    }

    /// Takes the login of cookie `id` (once: a replayed callback finds
    /// nothing), if it has not timed out.
    pub async fn take_login(&self, id: &str) -> Option<PendingLogin> {
        let key = digest(id);
        let login = match &self.shared {
            Some(shared) => match shared.take("login", &key).await {
                Some(login) => Some(login),
                None => lock(&self.logins).pop(&key),
            },
            None => lock(&self.logins).pop(&key),
        };
        login.filter(|login| now_ms().saturating_sub(login.started) < millis(LOGIN_TIMEOUT))
    }

    /// Creates a session; returns its cookie's id, new at every login (no
    /// id from before the login survives it: no session fixation).
    pub async fn create(
        &self,
        claims: &Claims,
        user: serde_json::Value,
        id_token: String,
        tokens: Tokens,
    ) -> String {
        let id = random_id();
        let key = digest(&id);
        let mut record = Record {
            subject: claims.subject.to_string(),
            scope: claims.scope.to_string(),
            user,
            id_token,
            expires_at: now_ms() + millis(self.lifetime),
            access_token: String::new(),
            refresh_token: None,
            refresh_at: None,
        };
        record.set_tokens(tokens);
        if let Some(shared) = &self.shared
            && shared
                .put("session", &key, &record, self.idle_timeout)
                .await
                .is_ok()
        {
            return id;
        }
        let session = Session::from_record(key, record, false);
        lock(&self.local).put(key, Arc::new(session));
        id
    }

    /// The live session of cookie `id`, its idle clock restarted.
    pub async fn find(&self, id: &str) -> Option<Arc<Session>> {
        let key = digest(id);
        if let Some(shared) = &self.shared
            && let Some(record) = shared
                .read::<Record>("session", &key, Some(self.idle_timeout))
                .await
        {
            return (now_ms() < record.expires_at)
                .then(|| Arc::new(Session::from_record(key, record, true)));
        }
        let mut local = lock(&self.local);
        let session = local.get(&key)?.clone();
        let now = now_ms();
        let mut last_used = session.last_used();
        let expired = now >= session.record().expires_at
            || now.saturating_sub(*last_used) >= millis(self.idle_timeout);
        if expired {
            drop(last_used);
            local.pop(&key);
            return None;
        }
        *last_used = now;
        drop(last_used);
        Some(session)
    }

    /// Ends the session of cookie `id`; returns it, if it was live.
    pub async fn remove(&self, id: &str) -> Option<Arc<Session>> {
        let key = digest(id);
        let local = lock(&self.local).pop(&key);
        if let Some(shared) = &self.shared
            && let Some(record) = shared.take::<Record>("session", &key).await
        {
            return Some(Arc::new(Session::from_record(key, record, true)));
        }
        local
    }

    /// The access token to send upstream, refreshed first when it is about
    /// to expire, once per session however many requests ask at once.
    pub async fn access_token(
        &self,
        session: &Session,
        provider: &Provider,
    ) -> Result<String, ProviderError> {
        {
            let record = session.record();
            if !record.needs_refresh() {
                return Ok(record.access_token.clone());
            }
        }
        let gate = lock(&self.gates)
            .get_or_insert(session.key, Arc::default)
            .clone();
        let _refreshing = gate.lock().await;
        match (&self.shared, session.in_redis) {
            (Some(shared), true) => shared.refresh(session, provider).await,
            _ => {
                // Whoever held the gate before may have refreshed it.
                if session.record().needs_refresh() {
                    let refresh = session.refresh_token().ok_or_else(no_refresh_token)?;
                    let tokens = provider.refresh(&refresh).await?;
                    session.record().set_tokens(tokens);
                }
                Ok(session.record().access_token.clone())
            }
        }
    }
}

fn no_refresh_token() -> ProviderError {
    ProviderError::Token("the access token expired and there is no refresh token".into())
}

impl Shared {
    fn name(&self, kind: &str, key: &[u8; 32]) -> String {
        self.redis.key(kind, &hex(key))
    }

    /// Seals `value` for the key `name`: nonce, then ciphertext.
    fn seal<T: Serialize>(&self, name: &str, value: &T) -> Option<Vec<u8>> {
        let plain = serde_json::to_vec(value).ok()?;
        let nonce: [u8; 12] = rand::random();
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &plain,
                    aad: name.as_bytes(),
                },
            )
            .ok()?;
        Some([nonce.as_slice(), &sealed].concat())
    }

    fn open<T: for<'de> Deserialize<'de>>(&self, name: &str, sealed: &[u8]) -> Option<T> {
        let (nonce, sealed) = sealed.split_at_checked(12)?;
        let nonce: [u8; 12] = nonce.try_into().ok()?;
        let plain = self
            .cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: name.as_bytes(),
                },
            )
            .ok()?;
        serde_json::from_slice(&plain).ok()
    }

    async fn put<T: Serialize>(
        &self,
        kind: &str,
        key: &[u8; 32],
        value: &T,
        ttl: Duration,
    ) -> Result<(), ()> {
        let name = self.name(kind, key);
        let sealed = self.seal(&name, value).ok_or(())?;
        self.redis
            .query::<()>(
                "session write",
                redis::cmd("SET")
                    .arg(&name)
                    .arg(sealed)
                    .arg("PX")
                    .arg(millis(ttl).max(1)),
            )
            .await
            .map_err(|_| ())
    }

    /// Reads (and with `renew`, restarts the expiry of) a record.
    async fn read<T: for<'de> Deserialize<'de>>(
        &self,
        kind: &str,
        key: &[u8; 32],
        renew: Option<Duration>,
    ) -> Option<T> {
        let name = self.name(kind, key);
        let mut command = redis::cmd("GETEX");
        command.arg(&name);
        if let Some(ttl) = renew {
            command.arg("PX").arg(millis(ttl).max(1));
        }
        let sealed: Option<Vec<u8>> = self.redis.query("session read", &command).await.ok()?;
        self.open(&name, &sealed?)
    }

    /// Reads and deletes a record in one command.
    async fn take<T: for<'de> Deserialize<'de>>(&self, kind: &str, key: &[u8; 32]) -> Option<T> {
        let name = self.name(kind, key);
        let sealed: Option<Vec<u8>> = self
            .redis
            .query("session take", redis::cmd("GETDEL").arg(&name))
            .await
            .ok()?;
        self.open(&name, &sealed?)
    }

    /// The refresh of a session in Redis: under the session's lock, after
    /// checking that no other replica refreshed it meanwhile; a replica
    /// that finds the lock taken waits for the refreshed record.
    async fn refresh(
        &self,
        session: &Session,
        provider: &Provider,
    ) -> Result<String, ProviderError> {
        let lock_name = self.name("session-lock", &session.key);
        let unavailable = || ProviderError::Token("the shared session store did not answer".into());
        for _ in 0..(millis(REFRESH_LOCK) / 50) {
            let latest: Option<Record> = self.read("session", &session.key, None).await;
            let Some(latest) = latest else {
                return Err(unavailable());
            };
            if !latest.needs_refresh() {
                let access = latest.access_token.clone();
                *session.record() = latest;
                return Ok(access);
            }
            let taken: Option<String> = self
                .redis
                .query(
                    "session lock",
                    redis::cmd("SET")
                        .arg(&lock_name)
                        .arg(1)
                        .arg("NX")
                        .arg("PX")
                        .arg(millis(REFRESH_LOCK)),
                )
                .await
                .map_err(|_| unavailable())?;
            if taken.is_none() {
                // Another replica is refreshing: wait for its record.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            let result = self.refresh_locked(session, latest, provider).await;
            let _: Result<(), _> = self
                .redis
                .query("session unlock", redis::cmd("DEL").arg(&lock_name))
                .await;
            return result;
        }
        Err(unavailable())
    }

    async fn refresh_locked(
        &self,
        session: &Session,
        mut latest: Record,
        provider: &Provider,
    ) -> Result<String, ProviderError> {
        let refresh = latest.refresh_token.clone().ok_or_else(no_refresh_token)?;
        latest.set_tokens(provider.refresh(&refresh).await?);
        let name = self.name("session", &session.key);
        let sealed = self
            .seal(&name, &latest)
            .ok_or_else(|| ProviderError::Token("the session could not be sealed".into()))?;
        // KEEPTTL: a refresh does not extend the session's idle clock.
        let written: Result<(), _> = self
            .redis
            .query(
                "session write",
                redis::cmd("SET")
                    .arg(&name)
                    .arg(sealed)
                    .arg("XX")
                    .arg("KEEPTTL"),
            )
            .await;
        if written.is_err() {
            tracing::warn!("a refreshed session could not be stored; other replicas refresh again");
        }
        let access = latest.access_token.clone();
        *session.record() = latest;
        Ok(access)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, millis)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut text, b| {
        let _ = write!(text, "{b:02x}");
        text
    })
}

/// 32 random bytes, base64url: a cookie value nobody can guess.
fn random_id() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}
