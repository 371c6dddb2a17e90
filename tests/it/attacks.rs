//! Attacks documented against JWT gateways and HTTP servers: one test per
//! case, each asserting the status, the error code, and that no upstream
//! call was made.

use std::time::Duration;

use crate::support::keys::{self, JwksServer};
use crate::support::{
    Bff, SECRET, TestApp, assert_error_body, json_body, now, raw_http, sign_hs256,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};

const ISSUER: &str = "https://id.example.test";
const AUDIENCE: &str = "bff-web";

/// A web BFF trusting the test HS256 secret, with issuer and audience.
async fn hs256_app() -> TestApp {
    TestApp::builder(Bff::Web)
        .config(&format!(
            "[auth]\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\nleeway = \"30s\""
        ))
        .spawn()
        .await
}

/// A web BFF trusting one RSA public key.
async fn rsa_app() -> TestApp {
    TestApp::builder(Bff::Web)
        .config(&format!(
            "[auth]\npublic_key_pem = \"\"\"\n{}\"\"\"",
            keys::rsa().public_pem
        ))
        .without_hs256()
        .spawn()
        .await
}

/// The JWKS refresh cooldown of most tests; they wait past it with `PAST_COOLDOWN`.
const COOLDOWN: &str = "1s";
const PAST_COOLDOWN: Duration = Duration::from_millis(1100);

/// A web BFF trusting the keys of `jwks`.
async fn jwks_app(jwks: &JwksServer, cooldown: &str) -> TestApp {
    TestApp::builder(Bff::Web)
        .config(&format!(
            "[auth]\njwks_url = \"{}\"\njwks_cooldown = \"{cooldown}\"\njwks_ttl = \"1h\"",
            jwks.url
        ))
        .without_hs256()
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

fn plain_claims() -> Value {
    json!({"sub": "u1", "scope": "", "exp": now() + 600})
}

/// A token from raw parts, for shapes a JWT library refuses to produce.
fn raw_token(header: &Value, payload: &Value, signature: &str) -> String {
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.{signature}", enc(header), enc(payload))
}

/// A 401 with the contract body and the bearer challenge, and no upstream call.
async fn assert_refused(app: &TestApp, token: &str) {
    let calls = app.total_calls();
    let (status, headers, body) = json_body(app.get("/user-dashboard", Some(token)).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_error_body(&body, "unauthorized");
    assert_eq!(
        headers["www-authenticate"],
        r#"Bearer error="invalid_token""#
    );
    assert_eq!(app.total_calls(), calls, "an upstream was called");
}

async fn assert_accepted(app: &TestApp, token: &str) {
    let response = app.get("/user-dashboard", Some(token)).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn missing_token() {
    let app = hs256_app().await;
    let (status, headers, body) = json_body(app.get("/user-dashboard", None).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error_body(&body, "unauthorized");
    assert_eq!(headers["www-authenticate"], "Bearer");
    assert_eq!(app.total_calls(), 0);
}

#[tokio::test]
async fn truncated_signature_then_the_good_token_still_works() {
    let app = hs256_app().await;
    let good = sign_hs256(SECRET, &claims(json!({})));
    assert_refused(&app, &good[..good.len() - 6]).await;
    assert_accepted(&app, &good).await;
}

async fn alg_none_variant(alg: &str) {
    let app = hs256_app().await;
    assert_refused(
        &app,
        &raw_token(&json!({"alg": alg, "typ": "JWT"}), &claims(json!({})), ""),
    )
    .await;
}

#[tokio::test]
async fn alg_none() {
    alg_none_variant("none").await;
}

#[tokio::test]
async fn alg_none_capitalised() {
    alg_none_variant("None").await;
}

#[tokio::test]
async fn alg_none_upper_case() {
    alg_none_variant("NONE").await;
}

#[tokio::test]
async fn alg_none_mixed_case() {
    alg_none_variant("nOnE").await;
}

#[tokio::test]
async fn null_signature() {
    let app = hs256_app().await;
    let good = sign_hs256(SECRET, &claims(json!({})));
    let unsigned = good.rsplit_once('.').expect("three parts").0;
    assert_refused(&app, &format!("{unsigned}.")).await;
}

#[tokio::test]
async fn hs256_signed_with_a_blank_secret() {
    let app = hs256_app().await;
    assert_refused(&app, &sign_hs256("", &claims(json!({})))).await;
}

#[tokio::test]
async fn rs256_to_hs256_confusion_with_the_public_key() {
    let app = rsa_app().await;
    assert_accepted(&app, &keys::rsa().sign(None, &plain_claims())).await;
    assert_refused(&app, &sign_hs256(&keys::rsa().public_pem, &plain_claims())).await;
}

#[tokio::test]
async fn embedded_jwk_header_is_not_trusted() {
    let app = rsa_app().await;
    let attacker = keys::other_rsa();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.jwk = Some(attacker.jwk("attacker"));
    let token = jsonwebtoken::encode(&header, &plain_claims(), &attacker.encoding).expect("signs");
    assert_refused(&app, &token).await;
}

async fn remote_key_header(field: &str) {
    let legit = JwksServer::start(vec![keys::rsa().jwk("legit")]).await;
    let app = jwks_app(&legit, COOLDOWN).await;
    let attacker = keys::other_rsa();
    let trap = JwksServer::start(vec![attacker.jwk("attacker")]).await;
    let mut header = json!({"alg": "RS256", "kid": "attacker"});
    header[field] = json!(trap.url);
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(plain_claims().to_string())
    );
    let signature = jsonwebtoken::crypto::sign(
        signing_input.as_bytes(),
        &attacker.encoding,
        jsonwebtoken::Algorithm::RS256,
    )
    .expect("signs");
    assert_refused(&app, &format!("{signing_input}.{signature}")).await;
    assert_eq!(trap.fetches(), 0, "the {field} URL was fetched");
}

#[tokio::test]
async fn jku_header_pointing_at_a_local_listener_is_never_fetched() {
    remote_key_header("jku").await;
}

#[tokio::test]
async fn x5u_header_pointing_at_a_local_listener_is_never_fetched() {
    remote_key_header("x5u").await;
}

async fn kid_injection(kid: &str) {
    let jwks = JwksServer::start(vec![keys::rsa().jwk("legit")]).await;
    let app = jwks_app(&jwks, COOLDOWN).await;
    assert_refused(&app, &keys::rsa().sign(Some(kid), &plain_claims())).await;
    // kid is only ever a map key: the HS256 gateway ignores it entirely.
    let hs = hs256_app().await;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    let forged = jsonwebtoken::encode(
        &header,
        &claims(json!({})),
        &jsonwebtoken::EncodingKey::from_secret(b""),
    )
    .expect("signs");
    assert_refused(&hs, &forged).await;
}

#[tokio::test]
async fn kid_path_traversal() {
    kid_injection("../../../../../../dev/null").await;
}

#[tokio::test]
async fn kid_sql_injection() {
    kid_injection("' UNION SELECT 'key' --").await;
}

#[tokio::test]
async fn kid_empty() {
    kid_injection("").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kid_flood_fetches_the_jwks_at_most_once_per_cooldown() {
    let jwks = JwksServer::start(vec![keys::rsa().jwk("legit")]).await;
    // Long enough that both flood rounds fall inside one cooldown.
    let app = jwks_app(&jwks, "2s").await;
    assert_accepted(&app, &keys::rsa().sign(Some("legit"), &plain_claims())).await;
    assert_eq!(jwks.fetches(), 1);
    let tokens: Vec<String> = (0..100)
        .map(|i| keys::rsa().sign(Some(&format!("unknown-{i}")), &plain_claims()))
        .collect();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for round in tokens.chunks(50) {
        let floods: Vec<_> = round
            .iter()
            .map(|token| {
                let request = app
                    .http
                    .get(format!("{}/user-dashboard", app.base))
                    .bearer_auth(token)
                    .send();
                tokio::spawn(async move { request.await.expect("sent").status() })
            })
            .collect();
        for flood in floods {
            assert_eq!(flood.await.expect("task"), StatusCode::UNAUTHORIZED);
        }
    }
    assert_eq!(
        jwks.fetches(),
        2,
        "one refresh for 100 unknown kids within the cooldown"
    );
    assert_eq!(
        app.total_calls(),
        3,
        "only the one accepted request reached upstreams"
    );
}

#[tokio::test]
async fn jwks_rotation_accepts_the_new_key_and_drops_the_removed_one() {
    let jwks = JwksServer::start(vec![keys::rsa().jwk("2026-a")]).await;
    let app = jwks_app(&jwks, COOLDOWN).await;
    let old = keys::rsa().sign(Some("2026-a"), &plain_claims());
    assert_accepted(&app, &old).await;

    jwks.publish(vec![keys::other_rsa().jwk("2026-b")]);
    tokio::time::sleep(PAST_COOLDOWN).await;
    assert_accepted(
        &app,
        &keys::other_rsa().sign(Some("2026-b"), &plain_claims()),
    )
    .await;
    assert_refused(&app, &old).await;
    assert_eq!(jwks.fetches(), 2);
}

#[tokio::test]
async fn jwks_down_keeps_the_last_good_keys() {
    let jwks = JwksServer::start(vec![keys::rsa().jwk("a")]).await;
    let app = jwks_app(&jwks, COOLDOWN).await;
    let token = keys::rsa().sign(Some("a"), &plain_claims());
    assert_accepted(&app, &token).await;
    jwks.set_down(true);
    tokio::time::sleep(PAST_COOLDOWN).await;
    assert_refused(&app, &keys::rsa().sign(Some("b"), &plain_claims())).await;
    assert_eq!(jwks.fetches(), 2, "the unknown kid tried one refresh");
    assert_accepted(&app, &token).await;
}

#[tokio::test]
async fn jwks_serves_rs256_es256_and_eddsa_each_pinned_by_its_key() {
    let jwks = JwksServer::start(vec![
        keys::rsa().jwk("rsa"),
        keys::p256().jwk("ec"),
        keys::ed25519().jwk("ed"),
    ])
    .await;
    let app = jwks_app(&jwks, COOLDOWN).await;
    assert_accepted(&app, &keys::rsa().sign(Some("rsa"), &plain_claims())).await;
    assert_accepted(&app, &keys::p256().sign(Some("ec"), &plain_claims())).await;
    assert_accepted(&app, &keys::ed25519().sign(Some("ed"), &plain_claims())).await;
    // An EdDSA token naming the RSA key's kid does not get verified as RS256.
    assert_refused(&app, &keys::ed25519().sign(Some("rsa"), &plain_claims())).await;
    assert_eq!(jwks.fetches(), 1);
}

#[tokio::test]
async fn exp_just_past_the_leeway() {
    let app = hs256_app().await;
    assert_refused(
        &app,
        &sign_hs256(SECRET, &claims(json!({"exp": now() - 45}))),
    )
    .await;
}

#[tokio::test]
async fn exp_inside_the_leeway_is_accepted() {
    let app = hs256_app().await;
    assert_accepted(
        &app,
        &sign_hs256(SECRET, &claims(json!({"exp": now() - 10}))),
    )
    .await;
}

#[tokio::test]
async fn a_token_accepted_before_is_refused_once_it_expires() {
    // Verified tokens are kept for their next use: that must not outlive `exp`.
    let app = TestApp::builder(Bff::Web)
        .config("[auth]\nleeway = \"0s\"")
        .spawn()
        .await;
    let exp = now() + 2;
    let token = sign_hs256(SECRET, &json!({"sub": "u1", "exp": exp}));
    assert_accepted(&app, &token).await;
    assert_accepted(&app, &token).await;
    while now() <= exp {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_refused(&app, &token).await;
}

#[tokio::test]
async fn missing_exp() {
    let app = hs256_app().await;
    assert_refused(&app, &sign_hs256(SECRET, &claims(json!({"exp": null})))).await;
}

#[tokio::test]
async fn exp_as_a_string() {
    let app = hs256_app().await;
    assert_refused(
        &app,
        &sign_hs256(SECRET, &claims(json!({"exp": (now() + 600).to_string()}))),
    )
    .await;
}

#[tokio::test]
async fn nbf_in_the_future() {
    let app = hs256_app().await;
    assert_refused(
        &app,
        &sign_hs256(SECRET, &claims(json!({"nbf": now() + 300}))),
    )
    .await;
}

#[tokio::test]
async fn wrong_issuer() {
    let app = hs256_app().await;
    assert_refused(
        &app,
        &sign_hs256(SECRET, &claims(json!({"iss": "https://evil.example.test"}))),
    )
    .await;
}

#[tokio::test]
async fn missing_issuer() {
    let app = hs256_app().await;
    assert_refused(&app, &sign_hs256(SECRET, &claims(json!({"iss": null})))).await;
}

#[tokio::test]
async fn wrong_audience() {
    let app = hs256_app().await;
    assert_refused(
        &app,
        &sign_hs256(SECRET, &claims(json!({"aud": "bff-mobile"}))),
    )
    .await;
}

#[tokio::test]
async fn missing_audience() {
    let app = hs256_app().await;
    assert_refused(&app, &sign_hs256(SECRET, &claims(json!({"aud": null})))).await;
}

#[tokio::test]
async fn a_64_kib_token_is_refused_before_decoding() {
    let app = hs256_app().await;
    let huge = format!(
        "{}.{}.sig",
        URL_SAFE_NO_PAD.encode("{\"alg\":\"HS256\"}"),
        "A".repeat(64 * 1024)
    );
    let (status, _, body) = json_body(app.get("/user-dashboard", Some(&huge)).await).await;
    assert_eq!(status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_error_body(&body, "headers_too_large");
    assert_eq!(app.total_calls(), 0);
}

#[tokio::test]
async fn a_token_over_the_size_cap_is_refused_before_decoding() {
    let app = TestApp::builder(Bff::Web)
        .config("[auth]\nmax_token_bytes = 512")
        .spawn()
        .await;
    let token = sign_hs256(
        SECRET,
        &json!({"sub": "u1", "exp": now() + 600, "pad": "x".repeat(600)}),
    );
    assert_refused(&app, &token).await;
}

#[tokio::test]
async fn two_segments() {
    let app = hs256_app().await;
    let good = sign_hs256(SECRET, &claims(json!({})));
    assert_refused(&app, good.rsplit_once('.').expect("parts").0).await;
}

#[tokio::test]
async fn four_segments() {
    let app = hs256_app().await;
    let good = sign_hs256(SECRET, &claims(json!({})));
    assert_refused(
        &app,
        &format!("{good}.{}", good.split('.').nth(1).expect("payload")),
    )
    .await;
}

#[tokio::test]
async fn non_base64url_parts() {
    let app = hs256_app().await;
    assert_refused(&app, "e30=.!!!.@@@").await;
}

#[tokio::test]
async fn a_wrong_typ_is_refused_when_typ_is_required() {
    let app = TestApp::builder(Bff::Web)
        .config("[auth]\ntyp = \"at+jwt\"")
        .spawn()
        .await;
    assert_refused(&app, &sign_hs256(SECRET, &plain_claims())).await;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.typ = Some("at+jwt".to_owned());
    let token = jsonwebtoken::encode(
        &header,
        &plain_claims(),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("signs");
    assert_accepted(&app, &token).await;
}

#[tokio::test]
async fn a_missing_required_claim_is_refused() {
    let app = TestApp::builder(Bff::Web)
        .config("[auth]\nrequired_claims = [\"jti\"]")
        .spawn()
        .await;
    assert_refused(&app, &sign_hs256(SECRET, &plain_claims())).await;
    let mut with_jti = plain_claims();
    with_jti["jti"] = json!("t-1");
    assert_accepted(&app, &sign_hs256(SECRET, &with_jti)).await;
}

async fn oversized_body(chunked: bool) {
    let app = TestApp::builder(Bff::Web)
        .config("[http]\nbody_limit = 1024")
        .spawn()
        .await;
    let token = app.token("u1", "orders:write");
    let body = format!(
        "{{\"items\": [{{\"sku\": \"{}\", \"quantity\": 1}}]}}",
        "a".repeat(1025)
    );
    let framing = if chunked {
        format!(
            "Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        )
    } else {
        format!("Content-Length: {}\r\n\r\n{body}", body.len())
    };
    let request = format!(
        "POST /orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nIdempotency-Key: k\r\n\
         Content-Type: application/json\r\nConnection: close\r\n{framing}"
    );
    let reply = raw_http(app.addr(), request.as_bytes(), Duration::from_secs(5)).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("\"code\":\"payload_too_large\""), "{reply}");
    assert_eq!(app.total_calls(), 0);
}

#[tokio::test]
async fn body_limit_plus_one_sized() {
    oversized_body(false).await;
}

#[tokio::test]
async fn body_limit_plus_one_chunked() {
    oversized_body(true).await;
}

const PARTNER_KEY: &str = "partner-key-0123456789abcdef";

fn api_key_config(per_second: u32, burst: u32) -> String {
    let hash: String = {
        use sha2::Digest;
        sha2::Sha256::digest(PARTNER_KEY.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    format!(
        "[[api_keys.keys]]\nname = \"partner\"\nsha256 = \"{hash}\"\nsubject = \"u2\"\nscope = \"orders:write\"\n\
         per_second = {per_second}\nburst = {burst}\n"
    )
}

async fn with_api_key(app: &TestApp, key: &str) -> reqwest::Response {
    app.http
        .get(format!("{}/user-dashboard", app.base))
        .header("x-api-key", key)
        .send()
        .await
        .expect("sent")
}

#[tokio::test]
async fn a_wrong_api_key_is_refused() {
    let app = TestApp::builder(Bff::Web)
        .config(&api_key_config(5, 5))
        .spawn()
        .await;
    let (status, _, body) = json_body(with_api_key(&app, "guessed-key").await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        assert_error_body(&body, "unauthorized"),
        "the API key is not valid"
    );
    assert_eq!(app.total_calls(), 0);
}

#[tokio::test]
async fn an_api_key_acts_as_its_subject_with_its_own_quota() {
    let app = TestApp::builder(Bff::Web)
        .config(&api_key_config(1, 2))
        .spawn()
        .await;
    for _ in 0..2 {
        let (status, _, body) = json_body(with_api_key(&app, PARTNER_KEY).await).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["profile"]["id"], "u2");
    }
    let seen = app
        .upstreams
        .control()
        .requests(bff_testkit::Service::Users);
    assert_eq!(seen[0].headers["x-user-id"], "u2");
    assert!(
        !seen[0].headers.contains_key("authorization"),
        "no bearer token to forward"
    );
    let limited = with_api_key(&app, PARTNER_KEY).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()["ratelimit-limit"], "2");
    // Token users keep their own quota.
    assert_eq!(
        app.dashboard(&app.token("u1", "")).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_subject_that_would_change_the_upstream_path_is_refused() {
    let app = hs256_app().await;
    for sub in ["..", ".", "%2e%2e", "%2E.", "%252e%252e", "%2e%00"] {
        let token = sign_hs256(SECRET, &claims(json!({ "sub": sub })));
        assert_refused(&app, &token).await;
    }
}

#[tokio::test]
async fn a_token_with_critical_extensions_is_refused() {
    let app = TestApp::spawn(Bff::Web).await;
    let token_with = |crit: Value| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.crit = serde_json::from_value(crit).expect("crit");
        jsonwebtoken::encode(
            &header,
            &plain_claims(),
            &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("token signs")
    };
    assert_refused(&app, &token_with(json!(["exp"]))).await;
    assert_refused(&app, &token_with(json!(["b64"]))).await;
    // The same token without `crit` is fine.
    assert_accepted(&app, &token_with(Value::Null)).await;
}

/// Sends `GET /user-dashboard` with exactly these headers, as raw HTTP/1.1
/// (a client library would merge or refuse some of them).
async fn raw_dashboard(app: &TestApp, headers: &[(&str, &str)]) -> String {
    let mut request = String::from("GET /user-dashboard HTTP/1.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    raw_http(app.addr(), request.as_bytes(), Duration::from_secs(5)).await
}

#[tokio::test]
async fn two_credentials_in_one_request_are_a_bad_request() {
    let app = TestApp::builder(Bff::Web)
        .config(&api_key_config(50, 50))
        .spawn()
        .await;
    let token = format!("Bearer {}", app.token("u1", ""));
    let other = format!("Bearer {}", app.token("u3", ""));
    for headers in [
        vec![
            ("Host", "x"),
            ("Authorization", token.as_str()),
            ("Authorization", other.as_str()),
        ],
        vec![
            ("Host", "x"),
            ("Authorization", token.as_str()),
            ("Authorization", token.as_str()),
        ],
        vec![
            ("Host", "x"),
            ("X-Api-Key", PARTNER_KEY),
            ("X-Api-Key", "guessed-key"),
        ],
        vec![
            ("Host", "x"),
            ("X-Api-Key", PARTNER_KEY),
            ("Authorization", token.as_str()),
        ],
    ] {
        let reply = raw_dashboard(&app, &headers).await;
        assert!(reply.starts_with("HTTP/1.1 400"), "{headers:?}: {reply}");
        assert!(reply.contains("\"code\":\"bad_request\""), "{reply}");
    }
    assert_eq!(app.total_calls(), 0);
    // One of each, alone, is served.
    let reply = raw_dashboard(&app, &[("Host", "x"), ("Authorization", &token)]).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let reply = raw_dashboard(&app, &[("Host", "x"), ("X-Api-Key", PARTNER_KEY)]).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
}

#[tokio::test]
async fn two_idempotency_keys_are_a_bad_request() {
    let app = TestApp::spawn(Bff::Web).await;
    let token = app.token("u1", "orders:write");
    let body = r#"{"items": [{"sku": "sku-mug", "quantity": 1}]}"#;
    let request = format!(
        "POST /orders HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\
         Idempotency-Key: a\r\nIdempotency-Key: b\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let reply = raw_http(app.addr(), request.as_bytes(), Duration::from_secs(5)).await;
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(reply.contains("Idempotency-Key"), "{reply}");
    assert_eq!(app.total_calls(), 0);
}

#[tokio::test]
async fn http11_requests_need_exactly_one_host() {
    let app = TestApp::spawn(Bff::Web).await;
    let token = format!("Bearer {}", app.token("u1", ""));
    let missing = raw_dashboard(&app, &[("Authorization", &token)]).await;
    assert!(missing.starts_with("HTTP/1.1 400"), "{missing}");
    assert!(missing.contains("\"code\":\"bad_request\""), "{missing}");
    let twice = raw_dashboard(
        &app,
        &[("Host", "a"), ("Host", "b"), ("Authorization", &token)],
    )
    .await;
    assert!(twice.starts_with("HTTP/1.1 400"), "{twice}");
    assert_eq!(app.total_calls(), 0);
    // HTTP/1.0 has no Host requirement.
    let old = raw_http(
        app.addr(),
        b"GET /healthz HTTP/1.0\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(old.starts_with("HTTP/1.0 200"), "{old}");
}

// The token handler (`session.oidc`), against a real OpenID provider:
// cross-site requests riding the session cookie, the cookie leaking
// upstream, a session fixed before login, and an open redirect.

mod token_handler {
    use std::time::Duration;

    use bff_testkit::Service;
    use reqwest::StatusCode;
    use serde_json::json;

    use crate::support::assert_error_body;
    use crate::token_handler::{Browser, Flow, SESSION_COOKIE, csrf, headers};

    async fn logged_in(user: &str) -> (Flow, Browser) {
        let flow = Flow::start(Duration::from_secs(3600)).await;
        let browser = Browser::new();
        browser.session(&flow, user).await;
        (flow, browser)
    }

    #[tokio::test]
    async fn a_cross_site_mutation_riding_the_cookie_is_refused_before_any_upstream_call() {
        let (flow, browser) = logged_in("u1").await;
        let order = json!({"items": [{"sku": "sku-mug", "quantity": 1}]});
        let url = format!("{}/orders", flow.base);
        for forged in [
            // A form post or fetch from another site: no custom header.
            vec![
                ("origin", "https://evil.example"),
                ("idempotency-key", "k1"),
            ],
            // The header, but from another origin (a misconfigured CORS).
            vec![
                ("x-csrf", "1"),
                ("origin", "https://evil.example"),
                ("idempotency-key", "k1"),
            ],
            // The header and no Origin or Referer at all.
            vec![("x-csrf", "1"), ("idempotency-key", "k1")],
            // The wrong value.
            vec![("x-csrf", "0"), ("idempotency-key", "k1")],
        ] {
            let refused = browser.post_json(&url, &order, &forged).await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{forged:?}");
            assert_error_body(&refused.json(), "forbidden");
        }
        assert_eq!(flow.app.calls(Service::Orders), 0);
        // From the app's own origin it goes through, once.
        let csrf = csrf(&flow);
        let mut same_site = headers(&csrf);
        same_site.push(("idempotency-key", "k1"));
        let own = browser.post_json(&url, &order, &same_site).await;
        assert_eq!(own.status, StatusCode::CREATED, "{}", own.body);
        assert_eq!(flow.app.calls(Service::Orders), 1);
    }

    #[tokio::test]
    async fn the_session_cookie_never_reaches_an_upstream() {
        let (flow, browser) = logged_in("u2").await;
        let reply = browser
            .get(
                &format!("{}/user-dashboard", flow.base),
                &headers(&csrf(&flow)),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        for service in Service::ALL {
            for request in flow.app.upstreams.control().requests(service) {
                assert!(request.headers.get("cookie").is_none(), "{service:?}");
                let authorization = request.headers["authorization"].to_str().expect("ascii");
                let cookie = browser.cookie(&flow.base, SESSION_COOKIE).expect("kept");
                assert!(!authorization.contains(&cookie));
            }
        }
    }

    #[tokio::test]
    async fn a_session_id_planted_before_login_is_replaced_and_ended() {
        let flow = Flow::start(Duration::from_secs(3600)).await;
        // The attacker logs in and plants their own session id in the
        // victim's browser.
        let attacker = Browser::new();
        let planted = attacker.session(&flow, "u3").await;
        let victim = Browser::new();
        victim.plant(&flow.base, SESSION_COOKIE, &planted);
        let own = victim.session(&flow, "u4").await;
        assert_ne!(own, planted, "the login kept a session id from before it");
        let csrf = csrf(&flow);
        let me = victim
            .get(&format!("{}/auth/user", flow.base), &headers(&csrf))
            .await;
        assert_eq!(me.json()["sub"], "u4");
        // And the planted session is over: the attacker cannot ride it.
        let theirs = attacker
            .get(&format!("{}/auth/user", flow.base), &headers(&csrf))
            .await;
        assert_eq!(theirs.status, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn return_to_only_leads_back_into_the_app() {
        let flow = Flow::start(Duration::from_secs(3600)).await;
        let browser = Browser::new();
        for target in [
            "https://evil.example/",
            "//evil.example/",
            "/%5Cevil.example",
            "%2F%2Fevil.example",
            "/\\evil.example",
            "javascript:alert(1)",
        ] {
            let refused = browser
                .get(&format!("{}/auth/login?returnTo={target}", flow.base), &[])
                .await;
            assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{target}");
            assert!(refused.headers.get("location").is_none(), "{target}");
        }
        // A path in the app goes through, and ends there.
        let landed = browser.log_in(&flow, "u5", "/orders%3Fpage%3D2").await;
        assert_eq!(landed.status, StatusCode::OK);
        assert!(
            landed.body.contains("url=/orders?page=2"),
            "{}",
            landed.body
        );
    }
}

#[test]
fn an_endpoint_file_cannot_read_or_pass_on_the_callers_credentials() {
    let contracts = bff_shop::CONTRACTS;
    for header in [
        "cookie",
        "Authorization",
        "proxy-authorization",
        "x-api-key",
    ] {
        let file = format!(
            "route = \"/leak\"\n[request]\nheaders = [\"{header}\"]\n\
             [calls.me]\nupstream = \"users\"\npath = \"/users/{{$auth.sub}}\"\n\
             [reply]\nshape = \"{{name: $me.name}}\"\n"
        );
        let refused = bff_core::declared::Declared::load(
            &bff_core::config::EndpointsConfig::default(),
            &[("leak.toml", file.as_str())],
            contracts,
        )
        .expect_err("a credential header is refused at load");
        let message = refused.to_string();
        assert!(
            message.contains("request.headers") && message.contains("credentials"),
            "{header}: {message}"
        );
    }
}
