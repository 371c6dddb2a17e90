//! `GET /user-dashboard` of the web BFF: its shape, concurrency and the
//! partial-failure policy.

use std::time::{Duration, Instant};

use bff_testkit::harness::{TestApp, assert_error_body, json_body, keys};
use bff_testkit::{Fault, Service, optional_failures};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn web_dashboard_matches_the_contract_shape() {
    let app = TestApp::spawn(bff_web::SPEC).await;
    let (status, _, body) = json_body(app.dashboard(&app.token("u1", "")).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    assert_eq!(
        keys(&body),
        ["degraded", "notifications", "profile", "recentOrders"]
    );
    assert_eq!(
        keys(&body["profile"]),
        ["avatarUrl", "email", "id", "name", "tier"]
    );
    assert_eq!(body["profile"]["id"], "u1");
    assert_eq!(body["degraded"], json!([]));

    // u1 has 12 orders upstream: the 10 newest, newest first, with item counts.
    let orders = body["recentOrders"].as_array().expect("orders array");
    assert_eq!(orders.len(), 10);
    let upstream_orders = app.upstreams.store().orders_of("u1");
    for (order, upstream) in orders.iter().zip(&upstream_orders) {
        assert_eq!(
            keys(order),
            [
                "createdAt",
                "currency",
                "id",
                "itemCount",
                "status",
                "totalCents"
            ]
        );
        assert_eq!(order["id"], upstream.id.as_str());
        let quantities: i64 = upstream.items.iter().map(|i| i.quantity).sum();
        assert_eq!(order["itemCount"], quantities);
    }
    let dates: Vec<&str> = orders
        .iter()
        .map(|o| o["createdAt"].as_str().expect("date"))
        .collect();
    assert!(
        dates.windows(2).all(|w| w[0] >= w[1]),
        "not newest first: {dates:?}"
    );

    // u1 has 15 notifications upstream, 4 unread: 10 items and the count.
    let notifications = &body["notifications"];
    assert_eq!(keys(notifications), ["items", "unreadCount"]);
    assert_eq!(notifications["unreadCount"], 4);
    let items = notifications["items"].as_array().expect("items");
    assert_eq!(items.len(), 10);
    for item in items {
        assert_eq!(keys(item), ["createdAt", "id", "kind", "read", "title"]);
    }
}

#[tokio::test]
async fn a_user_without_orders_gets_an_empty_list() {
    let app = TestApp::spawn(bff_web::SPEC).await;
    let (status, _, body) = json_body(app.dashboard(&app.token("u3", "")).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["recentOrders"], json!([]));
    assert_eq!(body["notifications"]["items"], json!([]));
    assert_eq!(body["degraded"], json!([]));
}

#[tokio::test]
async fn dashboard_calls_its_upstreams_concurrently() {
    let app = TestApp::spawn(bff_web::SPEC).await;
    let slow = Fault {
        delay: Duration::from_millis(200),
        ..Fault::default()
    };
    for service in [Service::Users, Service::Orders, Service::Notifications] {
        app.fault(service, slow.clone());
    }
    let started = Instant::now();
    let (status, _, _) = json_body(app.dashboard(&app.token("u1", "")).await).await;
    let elapsed = started.elapsed();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        app.upstreams.control().max_in_flight(),
        3,
        "the three calls were not in flight at once"
    );
    assert!(
        elapsed < Duration::from_millis(500),
        "three 200 ms calls took {elapsed:?}"
    );
}

#[tokio::test]
async fn web_dashboard_degrades_when_notifications_fail() {
    for (fault, code) in optional_failures() {
        let app = TestApp::builder(bff_web::SPEC)
            .config("[upstreams.notifications]\ntimeout = \"300ms\"")
            .spawn()
            .await;
        app.fault(Service::Notifications, fault);
        let (status, _, body) = json_body(app.dashboard(&app.token("u1", "")).await).await;
        assert_eq!(status, StatusCode::OK, "{code}: {body}");
        assert!(body["notifications"].is_null(), "{code}: {body}");
        assert_eq!(
            body["degraded"],
            json!([{"source": "notifications", "code": code}])
        );
        assert_eq!(body["profile"]["id"], "u1");
        assert_eq!(body["recentOrders"].as_array().map(Vec::len), Some(10));
    }
}

#[tokio::test]
async fn both_optional_parts_can_degrade_at_once() {
    let app = TestApp::spawn(bff_web::SPEC).await;
    let down = Fault {
        status: Some(StatusCode::INTERNAL_SERVER_ERROR),
        ..Fault::default()
    };
    app.fault(Service::Orders, down.clone());
    app.fault(Service::Notifications, down);
    let (status, _, body) = json_body(app.dashboard(&app.token("u1", "")).await).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body["recentOrders"].is_null() && body["notifications"].is_null(),
        "{body}"
    );
    assert_eq!(
        body["degraded"],
        json!([
            {"source": "orders", "code": "upstream_unavailable"},
            {"source": "notifications", "code": "upstream_unavailable"}
        ])
    );
}

#[tokio::test]
async fn dashboard_fails_with_a_contract_error_when_the_profile_fails() {
    let cases = [
        (
            Fault {
                status: Some(StatusCode::SERVICE_UNAVAILABLE),
                ..Fault::default()
            },
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream_unavailable",
        ),
        (
            Fault {
                delay: Duration::from_secs(3),
                ..Fault::default()
            },
            StatusCode::GATEWAY_TIMEOUT,
            "upstream_timeout",
        ),
        (
            Fault {
                malformed_body: true,
                ..Fault::default()
            },
            StatusCode::BAD_GATEWAY,
            "upstream_bad_response",
        ),
    ];
    for (fault, expected_status, code) in cases {
        let app = TestApp::builder(bff_web::SPEC)
            .config("[upstreams.users]\ntimeout = \"300ms\"")
            .spawn()
            .await;
        app.fault(Service::Users, fault);
        let (status, headers, body) = json_body(app.dashboard(&app.token("u1", "")).await).await;
        assert_eq!(status, expected_status, "{body}");
        assert_eq!(headers["content-type"], "application/json");
        let message = assert_error_body(&body, code);
        assert!(
            message.contains("users"),
            "message should name the service: {message}"
        );
        assert!(
            !message.contains("127.0.0.1"),
            "message leaks the upstream address: {message}"
        );
    }
}

#[tokio::test]
async fn an_unknown_user_is_not_found() {
    let app = TestApp::spawn(bff_web::SPEC).await;
    let (status, _, body) = json_body(app.dashboard(&app.token("u999", "")).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error_body(&body, "not_found");
}

#[tokio::test]
async fn a_subject_with_path_characters_stays_one_path_segment() {
    let app = TestApp::spawn(bff_web::SPEC).await;
    let (status, _, _) = json_body(app.dashboard(&app.token("../orders/o1001", "")).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let seen = app.upstreams.control().requests(Service::Users);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].target, "/users/..%2Forders%2Fo1001");
}
