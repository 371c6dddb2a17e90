//! Signing keys generated at test time (none is committed), a JWKS server
//! that counts its fetches, and token minting.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

/// A private key, its algorithm and its public JWK.
pub struct SigningKey {
    pub algorithm: Algorithm,
    pub encoding: EncodingKey,
    pub public_pem: String,
    /// Ed25519's raw public key: jsonwebtoken cannot derive its JWK.
    ed25519_public: Option<[u8; 32]>,
}

impl SigningKey {
    /// The public JWK under `kid`.
    pub fn jwk(&self, kid: &str) -> Jwk {
        if let Some(public) = self.ed25519_public {
            use base64::Engine;
            let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public);
            let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA"});
            return serde_json::from_value(jwk).expect("ed25519 jwk");
        }
        let mut jwk = Jwk::from_encoding_key(&self.encoding, self.algorithm).expect("public jwk");
        jwk.common.key_id = Some(kid.to_owned());
        jwk
    }

    /// Signs `claims` with `kid` in the header.
    pub fn sign(&self, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signs")
    }
}

fn generate_rsa() -> SigningKey {
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let private = rsa::RsaPrivateKey::new(&mut rand08::thread_rng(), 2048).expect("rsa key");
    let private_pem = private
        .to_pkcs8_pem(LineEnding::LF)
        .expect("pem")
        .to_string();
    SigningKey {
        algorithm: Algorithm::RS256,
        encoding: EncodingKey::from_rsa_pem(private_pem.as_bytes()).expect("rsa"),
        public_pem: private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("pem"),
        ed25519_public: None,
    }
}

pub fn rsa() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(generate_rsa)
}

/// A second RSA key: the attacker's, or the next one after a rotation.
pub fn other_rsa() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(generate_rsa)
}

pub fn p256() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| {
        use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
        let secret = p256::SecretKey::random(&mut rand08::thread_rng());
        let private_pem = secret
            .to_pkcs8_pem(LineEnding::LF)
            .expect("pem")
            .to_string();
        SigningKey {
            algorithm: Algorithm::ES256,
            encoding: EncodingKey::from_ec_pem(private_pem.as_bytes()).expect("ec"),
            public_pem: secret
                .public_key()
                .to_public_key_pem(LineEnding::LF)
                .expect("pem"),
            ed25519_public: None,
        }
    })
}

pub fn ed25519() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| {
        use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey, spki::der::pem::LineEnding};
        let signing = ed25519_dalek::SigningKey::generate(&mut rand08::rngs::OsRng);
        let private_pem = signing
            .to_pkcs8_pem(LineEnding::LF)
            .expect("pem")
            .to_string();
        SigningKey {
            algorithm: Algorithm::EdDSA,
            encoding: EncodingKey::from_ed_pem(private_pem.as_bytes()).expect("ed"),
            public_pem: signing
                .verifying_key()
                .to_public_key_pem(LineEnding::LF)
                .expect("pem"),
            ed25519_public: Some(signing.verifying_key().to_bytes()),
        }
    })
}

/// A JWKS endpoint on loopback whose set can change or go down, counting
/// every request it receives (whatever the path).
pub struct JwksServer {
    pub url: String,
    state: Arc<JwksState>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct JwksState {
    set: Mutex<String>,
    down: AtomicBool,
    fetches: AtomicUsize,
}

impl JwksServer {
    pub async fn start(keys: Vec<Jwk>) -> Self {
        let state = Arc::new(JwksState::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().expect("addr")
        );
        let app = Router::new().fallback(serve_jwks).with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let server = Self { url, state, task };
        server.publish(keys);
        server
    }

    pub fn publish(&self, keys: Vec<Jwk>) {
        *self.state.set.lock().expect("lock") =
            serde_json::to_string(&JwkSet { keys }).expect("json");
    }

    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    pub fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_jwks(State(state): State<Arc<JwksState>>) -> Response {
    state.fetches.fetch_add(1, Ordering::SeqCst);
    if state.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let body = state.set.lock().expect("lock").clone();
    ([("content-type", "application/json")], body).into_response()
}
