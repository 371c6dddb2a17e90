//! Authentication as a client sees it when things are right; the refused
//! cases are in `attacks.rs`, one test each.

use crate::support::keys;
use crate::support::{Bff, SECRET, TestApp, assert_error_body, json_body, now, sign_hs256};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_valid_token_with_issuer_and_audience_is_accepted() {
    let app = TestApp::builder(Bff::Web)
        .config("[auth]\nissuer = \"https://id.example.test\"\naudience = \"bff-web\"")
        .spawn()
        .await;
    let token = sign_hs256(
        SECRET,
        &json!({"sub": "u1", "exp": now() + 600, "iss": "https://id.example.test", "aud": ["bff-web", "other"]}),
    );
    assert_eq!(app.dashboard(&token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn non_bearer_credentials_get_a_plain_bearer_challenge() {
    let app = TestApp::spawn(Bff::Web).await;
    let response = app
        .http
        .get(format!("{}/user-dashboard", app.base))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .expect("sent");
    let (status, headers, body) = json_body(response).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "Bearer");
    assert_error_body(&body, "unauthorized");
    assert_eq!(app.total_calls(), 0);
}

async fn app_with_public_key(pem: &str) -> TestApp {
    TestApp::builder(Bff::Web)
        .config(&format!("[auth]\npublic_key_pem = \"\"\"\n{pem}\"\"\""))
        .without_hs256()
        .spawn()
        .await
}

#[tokio::test]
async fn each_public_key_type_pins_its_algorithm() {
    let claims = json!({"sub": "u1", "exp": now() + 600});
    for key in [keys::rsa(), keys::p256(), keys::ed25519()] {
        let app = app_with_public_key(&key.public_pem).await;
        assert_eq!(
            app.dashboard(&key.sign(None, &claims)).await.status(),
            StatusCode::OK,
            "{:?}",
            key.algorithm
        );
        // A token signed by a key of another type is refused.
        let other = if key.algorithm == jsonwebtoken::Algorithm::RS256 {
            keys::p256()
        } else {
            keys::rsa()
        };
        assert_eq!(
            app.dashboard(&other.sign(None, &claims)).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test]
async fn a_missing_scope_is_forbidden_before_any_upstream_call() {
    let app = TestApp::spawn(Bff::Web).await;
    let token = app.token("u1", "profile:read");
    let body = json!({"items": [{"sku": "sku-mug", "quantity": 1}]});
    let (status, _, reply) = json_body(app.place_order(&token, Some("k-1"), &body).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let message = assert_error_body(&reply, "forbidden");
    assert!(message.contains("orders:write"), "{message}");
    assert_eq!(app.total_calls(), 0);
}
