//! `POST /orders`: scope, idempotency key, validation, one order per key.

use crate::support::{Bff, TestApp, assert_error_body, json_body};
use bff_testkit::Service;
use reqwest::StatusCode;
use serde_json::json;

fn one_mug() -> serde_json::Value {
    json!({"items": [{"sku": "sku-mug", "quantity": 2}]})
}

#[tokio::test]
async fn the_same_key_twice_creates_one_order() {
    let app = TestApp::spawn(Bff::Web).await;
    let token = app.token("u5", "orders:write");
    let before = app.upstreams.store().orders_of("u5").len();

    let (first_status, _, first) =
        json_body(app.place_order(&token, Some("key-1"), &one_mug()).await).await;
    assert_eq!(first_status, StatusCode::CREATED, "{first}");
    assert_eq!(first["status"], "pending");
    assert_eq!(first["itemCount"], 2);
    let (second_status, _, second) =
        json_body(app.place_order(&token, Some("key-1"), &one_mug()).await).await;
    assert_eq!(second_status, StatusCode::OK, "{second}");
    assert_eq!(first["id"], second["id"]);

    assert_eq!(app.upstreams.store().orders_of("u5").len(), before + 1);
    // The order service received exactly one request (the retry was
    // answered from the BFF's idempotency record), with a key scoped to the
    // caller (the client's key combined with its identity).
    let sent = app.upstreams.control().requests(Service::Orders);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].headers["idempotency-key"],
        bff_shop::orders::scoped_idempotency_key("u5", "key-1")
    );
    assert_ne!(sent[0].headers["idempotency-key"], "key-1");
    assert!(sent.iter().all(|r| r.headers["x-user-id"] == "u5"));
}

#[tokio::test]
async fn a_failed_placement_is_not_retried() {
    let app = TestApp::spawn(Bff::Web).await;
    app.fault(
        Service::Orders,
        bff_testkit::Fault {
            status: Some(StatusCode::SERVICE_UNAVAILABLE),
            ..Default::default()
        },
    );
    let (status, _, body) = json_body(
        app.place_order(&app.token("u1", "orders:write"), Some("k"), &one_mug())
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_error_body(&body, "upstream_unavailable");
    assert_eq!(app.calls(Service::Orders), 1);
}

#[tokio::test]
async fn a_missing_idempotency_key_is_a_bad_request_without_upstream_calls() {
    let app = TestApp::spawn(Bff::Mobile).await;
    let (status, _, body) = json_body(
        app.place_order(&app.token("u1", "orders:write"), None, &one_mug())
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = assert_error_body(&body, "bad_request");
    assert!(message.contains("Idempotency-Key"), "{message}");
    assert_eq!(app.total_calls(), 0);
}

#[tokio::test]
async fn reusing_a_key_for_another_order_is_a_conflict() {
    let app = TestApp::spawn(Bff::Web).await;
    let token = app.token("u1", "orders:write");
    assert_eq!(
        app.place_order(&token, Some("k-9"), &one_mug())
            .await
            .status(),
        StatusCode::CREATED
    );
    let other = json!({"items": [{"sku": "sku-lamp", "quantity": 1}]});
    let (status, _, body) = json_body(app.place_order(&token, Some("k-9"), &other).await).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_error_body(&body, "conflict");
    // Refused by the BFF's own record: the order service saw only the first.
    assert_eq!(app.calls(Service::Orders), 1);
}

#[tokio::test]
async fn a_duplicate_while_the_first_is_in_flight_is_a_conflict_and_never_sent() {
    let app = TestApp::spawn(Bff::Web).await;
    app.fault(
        Service::Orders,
        bff_testkit::Fault {
            delay: std::time::Duration::from_millis(300),
            ..Default::default()
        },
    );
    let token = app.token("u1", "orders:write");
    let mug = one_mug();
    let replies = futures_util::future::join_all(
        (0..5).map(|_| app.place_order(&token, Some("k-busy"), &mug)),
    )
    .await;
    let mut statuses: Vec<StatusCode> = replies.iter().map(|r| r.status()).collect();
    statuses.sort();
    assert_eq!(
        statuses,
        [
            StatusCode::CREATED,
            StatusCode::CONFLICT,
            StatusCode::CONFLICT,
            StatusCode::CONFLICT,
            StatusCode::CONFLICT
        ]
    );
    assert_eq!(app.calls(Service::Orders), 1);
    // Once the first has its answer, the same request replays it.
    let (status, _, replay) =
        json_body(app.place_order(&token, Some("k-busy"), &one_mug()).await).await;
    assert_eq!(status, StatusCode::OK, "{replay}");
    assert_eq!(app.calls(Service::Orders), 1);
}

#[tokio::test]
async fn a_failed_placement_releases_its_key_for_the_retry() {
    let app = TestApp::spawn(Bff::Web).await;
    app.fault(
        Service::Orders,
        bff_testkit::Fault {
            status: Some(StatusCode::SERVICE_UNAVAILABLE),
            status_for_calls: Some(1),
            ..Default::default()
        },
    );
    let token = app.token("u1", "orders:write");
    let first = app.place_order(&token, Some("k-retry"), &one_mug()).await;
    assert_eq!(first.status(), StatusCode::SERVICE_UNAVAILABLE);
    let (status, _, retry) =
        json_body(app.place_order(&token, Some("k-retry"), &one_mug()).await).await;
    assert_eq!(status, StatusCode::CREATED, "{retry}");
    assert_eq!(app.calls(Service::Orders), 2);
}

#[tokio::test]
async fn invalid_orders_are_refused_before_any_upstream_call() {
    let app = TestApp::spawn(Bff::Web).await;
    let token = app.token("u1", "orders:write");
    for body in [
        json!({"items": []}),
        json!({"items": [{"sku": "sku-mug", "quantity": 0}]}),
        json!({"items": [{"sku": "", "quantity": 1}]}),
        json!({"items": [{"sku": "sku-mug"}]}),
        json!({"items": [{"sku": "sku-mug", "quantity": "two"}]}),
        json!({"item": []}),
        json!([1, 2]),
    ] {
        let (status, _, reply) = json_body(app.place_order(&token, Some("k"), &body).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {reply}");
        assert_error_body(&reply, "bad_request");
    }
    assert_eq!(app.total_calls(), 0);
}

#[tokio::test]
async fn malformed_and_non_json_bodies_get_the_contract_error() {
    let app = TestApp::spawn(Bff::Web).await;
    let token = app.token("u1", "orders:write");
    let send = |content_type: &'static str, body: &'static str| {
        app.http
            .post(format!("{}/orders", app.base))
            .bearer_auth(&token)
            .header("idempotency-key", "k")
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let (status, _, reply) = json_body(
        send("application/json", "{\"items\": [{")
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert_error_body(&reply, "bad_request");
    for (content_type, body) in [
        ("text/plain", "{\"items\": []}"),
        ("application/x-www-form-urlencoded", "items=1"),
    ] {
        let (status, _, reply) = json_body(send(content_type, body).await.expect("sent")).await;
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type}: {reply}"
        );
        assert_error_body(&reply, "unsupported_media_type");
    }
    assert_eq!(app.total_calls(), 0);
}

#[tokio::test]
async fn a_body_without_a_content_type_is_unsupported() {
    let app = TestApp::spawn(Bff::Web).await;
    let response = app
        .http
        .post(format!("{}/orders", app.base))
        .bearer_auth(app.token("u1", "orders:write"))
        .header("idempotency-key", "k")
        .body(one_mug().to_string())
        .send()
        .await
        .expect("sent");
    let (status, _, reply) = json_body(response).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{reply}");
    assert_error_body(&reply, "unsupported_media_type");
    assert_eq!(app.total_calls(), 0);
}

#[tokio::test]
async fn idempotency_keys_are_scoped_per_caller() {
    let app = TestApp::spawn(Bff::Web).await;
    let alice = app.token("u5", "orders:write");
    let bob = app.token("u6", "orders:write");
    let lamp = json!({"items": [{"sku": "sku-lamp", "quantity": 1}]});
    let (status, _, first) = json_body(
        app.place_order(&alice, Some("shared-key"), &one_mug())
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    // Another caller with the same key and another body: a new order of
    // their own, not a conflict (so a key cannot block anyone else) ...
    let (status, _, second) =
        json_body(app.place_order(&bob, Some("shared-key"), &lamp).await).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_ne!(first["id"], second["id"]);
    // ... and the same body neither replays nor reveals the first order.
    let (status, _, third) = json_body(
        app.place_order(
            &app.token("u7", "orders:write"),
            Some("shared-key"),
            &one_mug(),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{third}");
    assert_ne!(third["id"], first["id"]);
    assert_eq!(
        app.upstreams
            .store()
            .orders_of("u6")
            .iter()
            .filter(|o| o.id == second["id"])
            .count(),
        1
    );
    // The first caller still replays their own.
    let (status, _, replay) = json_body(
        app.place_order(&alice, Some("shared-key"), &one_mug())
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{replay}");
    assert_eq!(replay["id"], first["id"]);
}

#[tokio::test]
async fn a_placed_order_takes_names_and_prices_from_the_catalog() {
    let app = TestApp::spawn(Bff::Web).await;
    let token = app.token("u1", "orders:write");
    let body =
        json!({"items": [{"sku": "sku-mug", "quantity": 2}, {"sku": "sku-lamp", "quantity": 1}]});
    let (status, _, order) =
        json_body(app.place_order(&token, Some("catalog-1"), &body).await).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    // Coffee mug 12.00 twice, desk lamp 34.00: as the seeded catalog says.
    assert_eq!(order["totalCents"], 2 * 1200 + 3400, "{order}");
    assert_eq!(order["itemCount"], 3, "{order}");
}

#[tokio::test]
async fn an_unknown_sku_is_the_order_services_400_passed_on_as_bad_request() {
    let app = TestApp::spawn(Bff::Web).await;
    let token = app.token("u1", "orders:write");
    let body = json!({"items": [{"sku": "sku-unicorn", "quantity": 1}]});
    let (status, _, reply) =
        json_body(app.place_order(&token, Some("catalog-2"), &body).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert_error_body(&reply, "bad_request");
    assert_eq!(app.calls(Service::Orders), 1, "the service decided, once");
    assert!(
        app.upstreams
            .store()
            .orders_of("u1")
            .iter()
            .all(|o| o.items.iter().all(|i| i.sku != "sku-unicorn"))
    );
}
