//! `GET /order-history`, a declared screen: the caller's name and 20
//! newest orders, each seller fetched in one batched call.

use bff_testkit::data::user_name;
use bff_testkit::harness::{TestApp, json_body, keys};
use bff_testkit::{Fault, Service};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn history(app: &TestApp, user: &str) -> (StatusCode, Value) {
    let (status, _, body) =
        json_body(app.get("/order-history", Some(&app.token(user, ""))).await).await;
    (status, body)
}

#[tokio::test]
async fn order_history_lists_the_newest_orders_with_their_sellers() {
    let app = TestApp::spawn(bff_web::SPEC).await;
    let (status, body) = history(&app, "u1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(keys(&body), ["degraded", "name", "orders"]);
    assert_eq!(body["name"], user_name("u1").as_str());
    assert_eq!(body["degraded"], json!([]));
    let upstream = app.upstreams.store().orders_of("u1");
    let orders = body["orders"].as_array().expect("orders");
    assert_eq!(orders.len(), upstream.len().min(20));
    for (order, theirs) in orders.iter().zip(&upstream) {
        assert_eq!(
            *order,
            json!({
                "id": theirs.id, "status": theirs.status, "totalCents": theirs.total_cents,
                "createdAt": theirs.created_at,
                "seller": {"id": theirs.seller_id, "name": user_name(&theirs.seller_id)}
            })
        );
    }
    // The profile, then every seller in one batch.
    assert_eq!(app.calls(Service::Users), 2);
    assert_eq!(app.requests_to(Service::Users, "/users?ids=").len(), 1);
}

#[tokio::test]
async fn twenty_sellers_cost_one_call_and_no_orders_cost_none() {
    let app = TestApp::spawn(bff_web::SPEC).await;
    // u4 has 100 orders, each from another seller: the 20 newest are shown.
    let (status, body) = history(&app, "u4").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["orders"].as_array().map(Vec::len), Some(20));
    let batches = app.requests_to(Service::Users, "/users?ids=");
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].split("%2C").count(), 20, "{batches:?}");

    let app = TestApp::spawn(bff_web::SPEC).await;
    let (status, body) = history(&app, "u3").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["orders"], json!([]));
    assert_eq!(app.calls(Service::Users), 1, "no batch for no orders");
}

#[tokio::test]
async fn sellers_failing_leave_the_orders_with_a_null_seller() {
    let app = TestApp::spawn(bff_web::SPEC).await;
    app.fault(
        Service::Users,
        Fault {
            status: Some(StatusCode::SERVICE_UNAVAILABLE),
            target_prefix: Some("/users?".into()),
            ..Fault::default()
        },
    );
    let (status, body) = history(&app, "u1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let orders = body["orders"].as_array().expect("orders");
    assert!(!orders.is_empty());
    assert!(orders.iter().all(|o| o["seller"].is_null()), "{body}");
    assert_eq!(
        body["degraded"],
        json!([{"source": "sellers", "code": "upstream_unavailable"}])
    );
}

#[test]
fn every_shipped_screen_runs_without_the_interpreter() {
    let declared = bff_core::declared::Declared::load(
        &bff_core::config::EndpointsConfig::default(),
        bff_web::ENDPOINTS,
        bff_shop::CONTRACTS,
    )
    .expect("the shipped endpoints compile");
    for plan in declared.plans() {
        assert_eq!(plan.run_by_jaq(), Vec::<String>::new(), "{}", plan.file);
    }
}
