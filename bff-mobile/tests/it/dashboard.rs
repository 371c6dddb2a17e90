//! `GET /user-dashboard` of the mobile BFF: its lean shape and how it
//! degrades.

use bff_testkit::harness::{TestApp, json_body, keys};
use bff_testkit::{Service, optional_failures};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn mobile_dashboard_matches_the_lean_contract_shape() {
    let app = TestApp::spawn(bff_mobile::SPEC).await;
    let (status, _, body) = json_body(app.dashboard(&app.token("u1", "")).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    assert_eq!(
        keys(&body),
        ["degraded", "profile", "recentOrders", "unreadCount"]
    );
    assert_eq!(keys(&body["profile"]), ["avatarUrl", "id", "name"]);
    assert!(
        !body.to_string().contains("@example.com"),
        "mobile must not carry e-mail: {body}"
    );
    let orders = body["recentOrders"].as_array().expect("orders array");
    assert_eq!(orders.len(), 3);
    for order in orders {
        assert_eq!(keys(order), ["id", "status", "totalCents"]);
    }
    let newest = app.upstreams.store().orders_of("u1");
    assert_eq!(orders[0]["id"], newest[0].id.as_str());
    assert_eq!(body["unreadCount"], 4);
    assert_eq!(body["degraded"], json!([]));
}

#[tokio::test]
async fn mobile_dashboard_degrades_when_orders_fail() {
    for (fault, code) in optional_failures() {
        let app = TestApp::builder(bff_mobile::SPEC)
            .config("[upstreams.orders]\ntimeout = \"300ms\"")
            .spawn()
            .await;
        app.fault(Service::Orders, fault);
        let (status, _, body) = json_body(app.dashboard(&app.token("u1", "")).await).await;
        assert_eq!(status, StatusCode::OK, "{code}: {body}");
        assert!(body["recentOrders"].is_null(), "{code}: {body}");
        assert_eq!(
            body["degraded"],
            json!([{"source": "orders", "code": code}])
        );
        assert_eq!(body["unreadCount"], 4);
    }
}

#[test]
fn the_declared_dashboard_runs_without_the_interpreter() {
    let declared = bff_core::declared::Declared::load(
        &bff_core::config::EndpointsConfig::default(),
        bff_mobile::ENDPOINTS,
        bff_shop::CONTRACTS,
    )
    .expect("the shipped endpoints compile");
    for plan in declared.plans() {
        assert_eq!(plan.run_by_jaq(), Vec::<String>::new(), "{}", plan.file);
    }
}
