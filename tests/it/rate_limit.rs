//! Rate limiting: per subject, with the RateLimit headers on every reply.

use crate::support::{Bff, TestApp, assert_error_body, json_body};
use reqwest::StatusCode;

fn header_u64(headers: &reqwest::header::HeaderMap, name: &str) -> u64 {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .to_str()
        .expect("ascii")
        .parse()
        .expect("a number")
}

#[tokio::test]
async fn burst_plus_one_is_limited_with_retry_after_and_ratelimit_headers() {
    let app = TestApp::builder(Bff::Web)
        .config("[rate_limit]\nper_second = 1\nburst = 3")
        .spawn()
        .await;
    let token = app.token("u1", "");
    for expected_remaining in [2, 1, 0] {
        let response = app.dashboard(&token).await;
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers();
        assert_eq!(header_u64(headers, "ratelimit-limit"), 3);
        assert_eq!(
            header_u64(headers, "ratelimit-remaining"),
            expected_remaining
        );
        assert!(header_u64(headers, "ratelimit-reset") <= 3);
    }
    let calls_before = app.total_calls();
    let (status, headers, body) = json_body(app.dashboard(&token).await).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_error_body(&body, "rate_limited");
    let retry_after = header_u64(&headers, "retry-after");
    assert_eq!(
        retry_after, 1,
        "one request per second comes back within a second"
    );
    assert_eq!(header_u64(&headers, "ratelimit-limit"), 3);
    assert_eq!(header_u64(&headers, "ratelimit-remaining"), 0);
    assert!(header_u64(&headers, "ratelimit-reset") >= retry_after);
    assert_eq!(
        app.total_calls(),
        calls_before,
        "a limited request reached an upstream"
    );

    // Another subject has its own quota.
    assert_eq!(
        app.dashboard(&app.token("u2", "")).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn error_replies_of_limited_routes_carry_the_headers_too() {
    let app = TestApp::spawn(Bff::Web).await;
    let response = app
        .place_order(
            &app.token("u1", "orders:write"),
            None,
            &serde_json::json!({"items": []}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().contains_key("ratelimit-remaining"));
}

#[tokio::test]
async fn operations_endpoints_are_not_limited() {
    let app = TestApp::builder(Bff::Mobile)
        .config("[rate_limit]\nper_second = 1\nburst = 1")
        .spawn()
        .await;
    for _ in 0..5 {
        let response = app.get("/healthz", None).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(!response.headers().contains_key("ratelimit-limit"));
    }
}
