//! Conditional GETs: a composed reply's `ETag`, `304` on `If-None-Match`,
//! the weak form once compressed.

use crate::support::{Bff, TestApp};
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_ENCODING, ETAG, IF_NONE_MATCH};

async fn get(app: &TestApp, token: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .get(format!("http://{}/user-dashboard", app.addr()))
        .bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("sent")
}

fn etag(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(ETAG)
        .expect("an ETag")
        .to_str()
        .expect("ascii")
        .to_owned()
}

#[tokio::test]
async fn a_dashboard_the_client_holds_is_a_304_without_a_body() {
    let app = TestApp::spawn(Bff::Mobile).await;
    let token = app.token("u1", "");
    let first = get(&app, &token, &[]).await;
    assert_eq!(first.status(), StatusCode::OK);
    let tag = etag(&first);
    assert!(tag.starts_with('"') && tag.ends_with('"'), "strong: {tag}");
    let body = first.bytes().await.expect("body");
    let again = get(&app, &token, &[]).await;
    assert_eq!(etag(&again), tag, "the same reply, the same tag");

    let calls_before = app.total_calls();
    let not_modified = get(&app, &token, &[("if-none-match", &tag)]).await;
    assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(etag(&not_modified), tag);
    assert_eq!(not_modified.headers()[CACHE_CONTROL], "no-store");
    assert!(not_modified.headers().contains_key("ratelimit-remaining"));
    assert!(not_modified.bytes().await.expect("body").is_empty());
    assert!(
        app.total_calls() > calls_before,
        "the reply is composed to compare it"
    );

    let other = get(&app, &token, &[("if-none-match", "\"something-else\"")]).await;
    assert_eq!(other.status(), StatusCode::OK);
    assert_eq!(other.bytes().await.expect("body"), body);

    let someone_else = get(&app, &app.token("u2", ""), &[("if-none-match", &tag)]).await;
    assert_eq!(
        someone_else.status(),
        StatusCode::OK,
        "u2's reply is not u1's"
    );
    assert_ne!(etag(&someone_else), tag);
}

#[tokio::test]
async fn a_compressed_reply_carries_the_weak_tag_and_either_form_matches() {
    let app = TestApp::spawn(Bff::Web).await;
    let token = app.token("u1", "");
    let plain = get(&app, &token, &[]).await;
    let strong = etag(&plain);
    let gzipped = get(&app, &token, &[("accept-encoding", "gzip")]).await;
    assert_eq!(gzipped.headers()[CONTENT_ENCODING], "gzip");
    let weak = etag(&gzipped);
    assert_eq!(weak, format!("W/{strong}"));
    for held in [&weak, &strong] {
        let reply = get(
            &app,
            &token,
            &[("accept-encoding", "gzip"), (IF_NONE_MATCH.as_str(), held)],
        )
        .await;
        assert_eq!(reply.status(), StatusCode::NOT_MODIFIED, "{held}");
    }
}

#[tokio::test]
async fn errors_and_mutations_carry_no_tag() {
    let app = TestApp::spawn(Bff::Web).await;
    let unauthenticated = app.get("/user-dashboard", None).await;
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    assert!(!unauthenticated.headers().contains_key(ETAG));
    let token = app.token("u1", "orders:write");
    let placed = app
        .place_order(
            &token,
            Some("conditional-1"),
            &serde_json::json!({"items": [{"sku": "sku-mug", "quantity": 1}]}),
        )
        .await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    assert!(!placed.headers().contains_key(ETAG));
}
