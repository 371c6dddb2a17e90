//! Authentication: every bad token is a `401` (never a `500`), refused before
//! any upstream call; a missing scope is a `403`.

mod support;

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Bff, SECRET, TestApp, assert_error_body, json_body, now, sign_hs256};

const ISSUER: &str = "https://id.example.test";
const AUDIENCE: &str = "bff-web";

async fn app_with_issuer_and_audience() -> TestApp {
    TestApp::builder(Bff::Web)
        .config(&format!(
            "[auth]\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\nleeway = \"30s\""
        ))
        .spawn()
        .await
}

fn claims(extra: Value) -> Value {
    let mut claims = json!({"sub": "u1", "scope": "orders:write", "exp": now() + 600, "iss": ISSUER, "aud": AUDIENCE});
    for (k, v) in extra.as_object().expect("object") {
        if v.is_null() {
            claims.as_object_mut().expect("object").remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

/// A token from raw parts, for shapes a JWT library refuses to produce.
fn raw_token(header: &Value, payload: &Value, signature: &str) -> String {
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.{signature}", enc(header), enc(payload))
}

/// Asserts a 401 with the contract body, the right challenge, and that no
/// upstream saw the request.
async fn assert_refused(app: &TestApp, token: Option<&str>, case: &str) {
    let calls_before = app.total_calls();
    let response = app.get("/user-dashboard", token).await;
    let (status, headers, body) = json_body(response).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}: {body}");
    assert_error_body(&body, "unauthorized");
    let challenge = headers["www-authenticate"].to_str().expect("ascii");
    if token.is_some() {
        assert_eq!(challenge, r#"Bearer error="invalid_token""#, "{case}");
    } else {
        assert_eq!(challenge, "Bearer", "{case}");
    }
    assert_eq!(
        app.total_calls(),
        calls_before,
        "{case}: an upstream was called"
    );
}

#[tokio::test]
async fn a_valid_token_is_accepted() {
    let app = app_with_issuer_and_audience().await;
    let token = sign_hs256(SECRET, &claims(json!({})));
    assert_eq!(app.dashboard(&token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_missing_token_is_refused_without_invalid_token() {
    let app = app_with_issuer_and_audience().await;
    assert_refused(&app, None, "no header").await;
    let response = app
        .http
        .get(format!("{}/user-dashboard", app.base))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
}

#[tokio::test]
async fn expiry_is_required_and_checked_with_leeway() {
    let app = app_with_issuer_and_audience().await;
    let expired = sign_hs256(SECRET, &claims(json!({"exp": now() - 120})));
    assert_refused(&app, Some(&expired), "expired past leeway").await;
    let missing = sign_hs256(SECRET, &claims(json!({"exp": null})));
    assert_refused(&app, Some(&missing), "no exp").await;
    let as_string = sign_hs256(SECRET, &claims(json!({"exp": (now() + 600).to_string()})));
    assert_refused(&app, Some(&as_string), "exp as a string").await;

    let inside_leeway = sign_hs256(SECRET, &claims(json!({"exp": now() - 5})));
    assert_eq!(app.dashboard(&inside_leeway).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_token_not_valid_yet_is_refused() {
    let app = app_with_issuer_and_audience().await;
    let token = sign_hs256(SECRET, &claims(json!({"nbf": now() + 300})));
    assert_refused(&app, Some(&token), "nbf in the future").await;
}

#[tokio::test]
async fn issuer_and_audience_are_required_when_configured() {
    let app = app_with_issuer_and_audience().await;
    for (case, extra) in [
        ("wrong iss", json!({"iss": "https://evil.example.test"})),
        ("missing iss", json!({"iss": null})),
        ("wrong aud", json!({"aud": "bff-mobile"})),
        ("missing aud", json!({"aud": null})),
    ] {
        let token = sign_hs256(SECRET, &claims(extra));
        assert_refused(&app, Some(&token), case).await;
    }
}

#[tokio::test]
async fn forged_and_malformed_tokens_are_refused() {
    let app = app_with_issuer_and_audience().await;
    let good = sign_hs256(SECRET, &claims(json!({})));
    let other_secret = sign_hs256("another-secret-of-at-least-32-bytes!!", &claims(json!({})));
    let (head, rest) = good.split_once('.').expect("three parts");
    let (payload, _) = rest.split_once('.').expect("three parts");
    let cases = [
        ("bad signature", other_secret),
        ("truncated signature", good[..good.len() - 5].to_owned()),
        (
            "alg none",
            raw_token(
                &json!({"alg": "none", "typ": "JWT"}),
                &claims(json!({})),
                "",
            ),
        ),
        (
            "alg None",
            raw_token(&json!({"alg": "None"}), &claims(json!({})), ""),
        ),
        ("null signature", format!("{head}.{payload}.")),
        ("garbage", "not-a-token".to_owned()),
        ("two segments", format!("{head}.{payload}")),
        ("four segments", format!("{good}.{payload}")),
        ("non-base64url parts", "!!!.@@@.###".to_owned()),
        ("too large", format!("{head}.{}.sig", "A".repeat(9 * 1024))),
    ];
    for (case, token) in cases {
        assert_refused(&app, Some(&token), case).await;
    }
    // The good token still works after all that.
    assert_eq!(app.dashboard(&good).await.status(), StatusCode::OK);
}

struct RsaKeys {
    private_pem: String,
    public_pem: String,
}

fn rsa_keys() -> &'static RsaKeys {
    static KEYS: OnceLock<RsaKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
        let private = rsa::RsaPrivateKey::new(&mut rand08::thread_rng(), 2048).expect("rsa key");
        RsaKeys {
            private_pem: private
                .to_pkcs8_pem(LineEnding::LF)
                .expect("pem")
                .to_string(),
            public_pem: private
                .to_public_key()
                .to_public_key_pem(LineEnding::LF)
                .expect("pem"),
        }
    })
}

async fn app_with_public_key(pem: &str) -> TestApp {
    TestApp::builder(Bff::Web)
        .config(&format!("[auth]\npublic_key_pem = \"\"\"\n{pem}\"\"\""))
        .without_hs256()
        .spawn()
        .await
}

fn plain_claims() -> Value {
    json!({"sub": "u1", "scope": "", "exp": now() + 600})
}

#[tokio::test]
async fn rsa_key_accepts_rs256_and_refuses_hs256_signed_with_the_public_key() {
    let keys = rsa_keys();
    let app = app_with_public_key(&keys.public_pem).await;

    let rs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &plain_claims(),
        &EncodingKey::from_rsa_pem(keys.private_pem.as_bytes()).expect("rsa key"),
    )
    .expect("signs");
    assert_eq!(app.dashboard(&rs256).await.status(), StatusCode::OK);

    // The classic confusion: HMAC keyed with the public key the server holds.
    let confused = sign_hs256(&keys.public_pem, &plain_claims());
    assert_refused(
        &app,
        Some(&confused),
        "HS256 signed with the RSA public key",
    )
    .await;
    let none = raw_token(&json!({"alg": "none"}), &plain_claims(), "");
    assert_refused(&app, Some(&none), "alg none against RSA").await;
}

#[tokio::test]
async fn p256_key_pins_es256() {
    use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let secret = p256::SecretKey::random(&mut rand08::thread_rng());
    let private_pem = secret.to_pkcs8_pem(LineEnding::LF).expect("pem");
    let public_pem = secret
        .public_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("pem");
    let app = app_with_public_key(&public_pem).await;

    let es256 = jsonwebtoken::encode(
        &Header::new(Algorithm::ES256),
        &plain_claims(),
        &EncodingKey::from_ec_pem(private_pem.as_bytes()).expect("ec key"),
    )
    .expect("signs");
    assert_eq!(app.dashboard(&es256).await.status(), StatusCode::OK);
    let confused = sign_hs256(&public_pem, &plain_claims());
    assert_refused(&app, Some(&confused), "HS256 signed with the EC public key").await;
}

#[tokio::test]
async fn a_missing_scope_is_forbidden_before_any_upstream_call() {
    let app = TestApp::spawn(Bff::Web).await;
    let token = app.token("u1", "profile:read");
    let response = app
        .place_order(
            &token,
            Some("k-1"),
            &json!({"items": [{"sku": "sku-mug", "quantity": 1}]}),
        )
        .await;
    let (status, _, body) = json_body(response).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let message = assert_error_body(&body, "forbidden");
    assert!(message.contains("orders:write"), "{message}");
    assert_eq!(app.total_calls(), 0);
}
