//! The web app's screens, as the web team tests them: its own BFF against
//! the demo upstreams, with `cargo test -p bff-web`.

use bff_testkit::harness::{TestApp, json_body, keys};
use bff_testkit::{Fault, Service};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn the_dashboard_has_the_web_shape_and_degrades_a_failing_part() {
    let app = TestApp::spawn(bff_web::SPEC).await;
    let token = app.token("u1", "");
    let (status, _, body) = json_body(app.dashboard(&token).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        keys(&body),
        ["degraded", "notifications", "profile", "recentOrders"]
    );
    assert_eq!(
        keys(&body["profile"]),
        ["avatarUrl", "email", "id", "name", "tier"]
    );
    assert_eq!(body["recentOrders"].as_array().map(Vec::len), Some(10));

    app.fault(
        Service::Notifications,
        Fault {
            status: Some(StatusCode::SERVICE_UNAVAILABLE),
            ..Default::default()
        },
    );
    let (status, _, body) = json_body(app.dashboard(&token).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["notifications"].is_null(), "{body}");
    assert_eq!(
        body["degraded"],
        json!([{"source": "notifications", "code": "upstream_unavailable"}])
    );
}
