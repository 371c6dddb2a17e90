//! HTTP plumbing: contract errors for every failure, operations endpoints,
//! graceful shutdown. Body limits are in `attacks.rs`.

use std::time::Duration;

use crate::support::{Bff, TestApp, assert_error_body, json_body};
use bff_testkit::Fault;
use bff_testkit::Service;
use reqwest::StatusCode;

#[tokio::test]
async fn unknown_routes_and_methods_get_contract_errors() {
    let app = TestApp::spawn(Bff::Web).await;
    let (status, headers, body) = json_body(app.get("/nope", None).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers["content-type"], "application/json");
    assert_error_body(&body, "not_found");

    let response = app
        .http
        .delete(format!("{}/user-dashboard", app.base))
        .bearer_auth(app.token("u1", ""))
        .send()
        .await
        .expect("sent");
    let (status, _, body) = json_body(response).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_error_body(&body, "method_not_allowed");
}

#[tokio::test]
async fn health_and_readiness_answer_without_auth() {
    let app = TestApp::spawn(Bff::Mobile).await;
    let (status, _, body) = json_body(app.get("/healthz", None).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    let (status, _, body) = json_body(app.get("/readyz", None).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["bff"], "bff-mobile");

    app.state.start_draining();
    let (status, _, body) = json_body(app.get("/readyz", None).await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_error_body(&body, "not_ready");
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let mut app = TestApp::spawn(Bff::Web).await;
    app.fault(
        Service::Orders,
        Fault {
            delay: Duration::from_millis(400),
            ..Fault::default()
        },
    );
    let request = app
        .http
        .get(format!("{}/user-dashboard", app.base))
        .bearer_auth(app.token("u1", ""))
        .send();
    let in_flight = tokio::spawn(async move { request.await.expect("answered").status() });
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.shut_down().await;
    assert_eq!(in_flight.await.expect("request task"), StatusCode::OK);
    // New connections are refused once the server is down.
    assert!(tokio::net::TcpStream::connect(app.addr()).await.is_err());
}
