//! Request id and trace context: kept or started, echoed, sent upstream
//! with the caller's identity.

use crate::support::{Bff, TestApp, assert_error_body, json_body};
use bff_testkit::Service;
use reqwest::StatusCode;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test]
async fn request_id_and_traceparent_reach_every_upstream() {
    let app = TestApp::spawn(Bff::Web).await;
    let token = app.token("u1", "");
    let response = app
        .http
        .get(format!("{}/user-dashboard", app.base))
        .bearer_auth(&token)
        .header("x-request-id", "req-42")
        .header("traceparent", format!("00-{TRACE_ID}-{CLIENT_SPAN}-01"))
        .header("tracestate", "vendor=abc")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-request-id"], "req-42");

    for service in [Service::Users, Service::Orders, Service::Notifications] {
        let seen = app.upstreams.control().requests(service);
        assert_eq!(seen.len(), 1, "{service}");
        let headers = &seen[0].headers;
        assert_eq!(headers["x-request-id"], "req-42", "{service}");
        let traceparent = headers["traceparent"].to_str().expect("ascii");
        let parts: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(parts.len(), 4, "{traceparent}");
        assert_eq!(parts[1], TRACE_ID, "{service}: trace id not continued");
        assert_ne!(
            parts[2], CLIENT_SPAN,
            "{service}: the BFF's own span must be the parent"
        );
        assert_eq!(headers["tracestate"], "vendor=abc");
        assert_eq!(headers["x-user-id"], "u1");
        assert_eq!(headers["authorization"], format!("Bearer {token}").as_str());
    }
}

#[tokio::test]
async fn a_missing_or_insane_request_id_is_replaced_and_the_same_one_sent_upstream() {
    let app = TestApp::spawn(Bff::Mobile).await;
    let response = app
        .http
        .get(format!("{}/user-dashboard", app.base))
        .bearer_auth(app.token("u1", ""))
        .header("x-request-id", "x".repeat(200))
        .send()
        .await
        .expect("sent");
    let echoed = response.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(echoed.len(), 32);
    let seen = app.upstreams.control().requests(Service::Users);
    assert_eq!(seen[0].headers["x-request-id"], echoed.as_str());
    // No traceparent from the client: a fresh one is started.
    let traceparent = seen[0].headers["traceparent"].to_str().expect("ascii");
    assert!(
        traceparent.starts_with("00-") && traceparent.len() == 55,
        "{traceparent}"
    );
}

#[tokio::test]
async fn error_bodies_carry_the_echoed_request_id() {
    let app = TestApp::spawn(Bff::Web).await;
    let response = app
        .http
        .get(format!("{}/user-dashboard", app.base))
        .header("x-request-id", "req-err-1")
        .send()
        .await
        .expect("sent");
    let (status, headers, body) = json_body(response).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["x-request-id"], "req-err-1");
    assert_error_body(&body, "unauthorized");
    assert_eq!(body["error"]["requestId"], "req-err-1");
}

#[tokio::test]
async fn tracestate_is_sent_on_only_when_valid_and_within_the_limits() {
    let app = TestApp::spawn(Bff::Web).await;
    let token = app.token("u1", "");
    let members: Vec<String> = (0..33).map(|i| format!("v{i}=x")).collect();
    let too_many = members.join(",");
    let thirty_two = members[..32].join(",");
    let too_long =
        format!("vendor={}", "a".repeat(250)) + &format!(",other={}", "b".repeat(250)) + ",third=c";
    let cases: [(&str, Option<&str>); 6] = [
        (&thirty_two, Some(&thirty_two)),
        (&too_many, None),
        (&too_long, None),
        ("Vendor=UPPER-KEY", None),
        ("vendor=abc,vendor=def", None),
        ("vendor=a=b", None),
    ];
    for (sent, expected) in cases {
        let response = app
            .http
            .get(format!("{}/user-dashboard", app.base))
            .bearer_auth(&token)
            .header("traceparent", format!("00-{TRACE_ID}-{CLIENT_SPAN}-01"))
            .header("tracestate", sent)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), StatusCode::OK);
        let seen = app.upstreams.control().requests(Service::Users);
        let headers = &seen.last().expect("a profile call").headers;
        assert_eq!(
            headers
                .get("tracestate")
                .map(|v| v.to_str().expect("ascii")),
            expected,
            "{sent}"
        );
        // The trace itself continues either way.
        let traceparent = headers["traceparent"].to_str().expect("ascii");
        assert!(traceparent.contains(TRACE_ID), "{traceparent}");
    }
}
