//! A slow or failing upstream costs its own part of a reply and nothing
//! more: the fault kit against the gateway's bounds.

use std::time::{Duration, Instant};

use crate::support::{Bff, TestApp, assert_error_body, json_body};
use bff_testkit::Fault;
use bff_testkit::Service;
use reqwest::StatusCode;
use serde_json::json;

fn fault(f: impl FnOnce(&mut Fault)) -> Fault {
    let mut fault = Fault::default();
    f(&mut fault);
    fault
}

#[tokio::test]
async fn a_hanging_optional_part_costs_only_its_timeout() {
    let app = TestApp::builder(Bff::Web)
        .config("[upstreams.orders]\ntimeout = \"300ms\"")
        .spawn()
        .await;
    app.fault(Service::Orders, fault(|f| f.hang = true));
    let started = Instant::now();
    let (status, _, body) = json_body(app.dashboard(&app.token("u1", "")).await).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the hang leaked into the reply"
    );
    assert_eq!(
        body["degraded"],
        json!([{"source": "orders", "code": "upstream_timeout"}])
    );
    assert_eq!(body["profile"]["id"], "u1");
    assert_eq!(body["notifications"]["unreadCount"], 4);
}

#[tokio::test]
async fn broken_slow_endless_and_html_replies_degrade_only_their_part() {
    let cases = [
        (
            fault(|f| f.break_after_handling = true),
            "upstream_unavailable",
        ),
        (
            fault(|f| f.slow_body = Some(Duration::from_millis(100))),
            "upstream_timeout",
        ),
        (fault(|f| f.endless_body = true), "upstream_bad_response"),
        (fault(|f| f.malformed_body = true), "upstream_bad_response"),
    ];
    for (fault, code) in cases {
        let app = TestApp::builder(Bff::Web)
            .config("[upstreams.notifications]\ntimeout = \"500ms\"\nmax_response_bytes = 65536")
            .spawn()
            .await;
        app.fault(Service::Notifications, fault.clone());
        let (status, _, body) = json_body(app.dashboard(&app.token("u1", "")).await).await;
        assert_eq!(status, StatusCode::OK, "{fault:?}: {body}");
        assert_eq!(
            body["degraded"],
            json!([{"source": "notifications", "code": code}]),
            "{fault:?}"
        );
        assert_eq!(body["recentOrders"].as_array().map(Vec::len), Some(10));
    }
}

#[tokio::test]
async fn a_refused_connection_is_upstream_unavailable() {
    let mut app = TestApp::spawn(Bff::Mobile).await;
    app.upstreams.stop(Service::Notifications);
    let (status, _, body) = json_body(app.dashboard(&app.token("u1", "")).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["degraded"],
        json!([{"source": "notifications", "code": "upstream_unavailable"}])
    );
}

#[tokio::test]
async fn transient_gateway_errors_are_retried_for_gets() {
    let app = TestApp::spawn(Bff::Web).await;
    app.fault(
        Service::Users,
        fault(|f| {
            f.status = Some(StatusCode::BAD_GATEWAY);
            f.status_for_calls = Some(2);
        }),
    );
    let (status, _, body) = json_body(app.dashboard(&app.token("u1", "")).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(app.calls(Service::Users), 3, "two retries");
}

#[tokio::test]
async fn without_retries_a_service_failing_for_n_calls_fails_n_replies() {
    let app = TestApp::builder(Bff::Web)
        .config("[upstreams.all.retry]\nmax_retries = 0")
        .spawn()
        .await;
    app.fault(
        Service::Users,
        fault(|f| {
            f.status = Some(StatusCode::BAD_GATEWAY);
            f.status_for_calls = Some(2);
        }),
    );
    let token = app.token("u1", "");
    for _ in 0..2 {
        assert_eq!(
            app.dashboard(&token).await.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    assert_eq!(app.dashboard(&token).await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_stay_within_the_budget_against_a_failing_service() {
    // The breaker is out of the way: this measures the retry budget alone.
    let app = TestApp::builder(Bff::Web)
        .config(&format!(
            "{UNLIMITED}[upstreams.orders.breaker]\nconsecutive_failures = 1000000\nmin_calls = 1000000\n\
             [upstreams.orders.retry]\nbackoff = \"1ms\""
        ))
        .spawn()
        .await;
    app.fault(
        Service::Orders,
        fault(|f| f.status = Some(StatusCode::SERVICE_UNAVAILABLE)),
    );
    // One user per worker: requests never overlap, so none is coalesced.
    let workers: Vec<_> = (1..=10)
        .map(|user| {
            let client = app.http.clone();
            let url = format!("{}/user-dashboard", app.base);
            let token = app.token(&format!("u{user}"), "");
            tokio::spawn(async move {
                for _ in 0..100 {
                    let response = client
                        .get(&url)
                        .bearer_auth(&token)
                        .send()
                        .await
                        .expect("sent");
                    assert_eq!(response.status(), StatusCode::OK);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("worker");
    }
    let calls = app.calls(Service::Orders);
    // 1 000 requests; retries at most 20 % of them plus the floor of 10.
    assert!(calls > 1000, "no retry happened: {calls}");
    assert!(
        calls <= 1210,
        "the budget let through {calls} calls for 1000 requests"
    );
}

#[tokio::test]
async fn an_order_whose_reply_broke_is_placed_once_and_safe_to_retry_with_its_key() {
    let app = TestApp::spawn(Bff::Web).await;
    let token = app.token("u5", "orders:write");
    let before = app.upstreams.store().orders_of("u5").len();
    let order = json!({"items": [{"sku": "sku-lamp", "quantity": 1}]});
    app.fault(Service::Orders, fault(|f| f.break_after_handling = true));
    let (status, _, body) =
        json_body(app.place_order(&token, Some("retry-me"), &order).await).await;
    // The connection broke before a reply: the client cannot know the
    // outcome and gets a retryable error.
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_error_body(&body, "upstream_unavailable");
    assert_eq!(
        app.calls(Service::Orders),
        1,
        "a POST is never retried by the gateway"
    );
    assert_eq!(app.upstreams.store().orders_of("u5").len(), before + 1);

    app.fault(Service::Orders, Fault::default());
    let (status, _, body) =
        json_body(app.place_order(&token, Some("retry-me"), &order).await).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the retry with the same key replays the order: {body}"
    );
    assert_eq!(app.upstreams.store().orders_of("u5").len(), before + 1);
}

#[tokio::test]
async fn an_endless_upstream_body_is_cut_at_the_size_cap() {
    let app = TestApp::builder(Bff::Web)
        .config("[upstreams.all]\nmax_response_bytes = 65536\ntimeout = \"5s\"")
        .spawn()
        .await;
    app.fault(Service::Orders, fault(|f| f.endless_body = true));
    let started = Instant::now();
    let (status, _, body) = json_body(app.dashboard(&app.token("u1", "")).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["degraded"],
        json!([{"source": "orders", "code": "upstream_bad_response"}])
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the read did not stop at the cap"
    );
}

#[tokio::test]
async fn when_the_client_goes_away_its_upstream_calls_are_dropped() {
    let app = TestApp::spawn(Bff::Web).await;
    app.fault(Service::Orders, fault(|f| f.delay = Duration::from_secs(5)));
    let request = format!(
        "GET /user-dashboard HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        app.token("u1", "")
    );
    let mut stream = tokio::net::TcpStream::connect(app.addr())
        .await
        .expect("connect");
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.upstreams.control().in_flight(),
        1,
        "the orders call should be waiting"
    );
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(2);
    while app.upstreams.control().in_flight() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        app.upstreams.control().in_flight(),
        0,
        "the upstream call outlived its client"
    );
}

/// A quota that never gets in the way of tests making many calls.
const UNLIMITED: &str = "[rate_limit]\nper_second = 10000\nburst = 10000\nper_ip_per_second = 10000\nper_ip_burst = 10000\n";

fn server_timing(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get("server-timing")
        .expect("Server-Timing header")
        .to_str()
        .expect("ascii")
        .to_owned()
}

async fn circuit(app: &TestApp, service: &str) -> String {
    let (_, _, body) = json_body(app.get("/readyz", None).await).await;
    body["upstreams"][service]["circuit"]
        .as_str()
        .expect("circuit state")
        .to_owned()
}

#[tokio::test]
async fn five_failures_open_the_breaker_then_a_probe_closes_it() {
    let app = TestApp::builder(Bff::Web)
        .config(&format!(
            "{UNLIMITED}[upstreams.orders.retry]\nmax_retries = 0\n[upstreams.orders.breaker]\nconsecutive_failures = 5\nopen_for = \"2s\""
        ))
        .spawn()
        .await;
    let token = app.token("u1", "");
    app.fault(
        Service::Orders,
        fault(|f| f.status = Some(StatusCode::SERVICE_UNAVAILABLE)),
    );
    for _ in 0..5 {
        app.dashboard(&token).await;
    }
    assert_eq!(app.calls(Service::Orders), 5);
    assert_eq!(circuit(&app, "orders").await, "open");

    for _ in 0..100 {
        let (status, headers, body) = json_body(app.dashboard(&token).await).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body["degraded"],
            json!([{"source": "orders", "code": "upstream_unavailable"}])
        );
        assert!(
            server_timing(&headers).contains("orders;dur="),
            "{headers:?}"
        );
        assert!(server_timing(&headers).contains("desc=\"open-circuit\""));
    }
    assert_eq!(
        app.calls(Service::Orders),
        5,
        "an open circuit let calls through"
    );

    app.fault(Service::Orders, Fault::default());
    // Past the open interval (long enough that the 100 calls above fit in it).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (_, _, body) = json_body(app.dashboard(&token).await).await;
    assert_eq!(
        body["degraded"],
        json!([]),
        "the probe should have succeeded"
    );
    assert_eq!(app.calls(Service::Orders), 6, "exactly one probe");
    assert_eq!(circuit(&app, "orders").await, "closed");
    app.dashboard(&token).await;
    assert_eq!(app.calls(Service::Orders), 7);
}

#[tokio::test]
async fn a_failed_probe_keeps_the_breaker_open() {
    let app = TestApp::builder(Bff::Web)
        .config(&format!(
            "{UNLIMITED}[upstreams.orders.retry]\nmax_retries = 0\n[upstreams.orders.breaker]\nconsecutive_failures = 2\nopen_for = \"1s\""
        ))
        .spawn()
        .await;
    let token = app.token("u1", "");
    app.fault(
        Service::Orders,
        fault(|f| f.status = Some(StatusCode::BAD_GATEWAY)),
    );
    for _ in 0..2 {
        app.dashboard(&token).await;
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.dashboard(&token).await;
    assert_eq!(app.calls(Service::Orders), 3, "one probe");
    assert_eq!(circuit(&app, "orders").await, "open");
    app.dashboard(&token).await;
    assert_eq!(app.calls(Service::Orders), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bulkhead_fails_excess_calls_fast() {
    let app = TestApp::builder(Bff::Web)
        .config(&format!("{UNLIMITED}[upstreams.orders]\nmax_in_flight = 2"))
        .spawn()
        .await;
    app.fault(
        Service::Orders,
        fault(|f| f.delay = Duration::from_millis(500)),
    );
    // Five users, so no call is coalesced with another.
    let requests: Vec<_> = (1..=5)
        .map(|user| {
            let token = app.token(&format!("u{user}"), "");
            let request = app
                .http
                .get(format!("{}/user-dashboard", app.base))
                .bearer_auth(&token)
                .send();
            tokio::spawn(async move { json_body(request.await.expect("sent")).await })
        })
        .collect();
    let mut overloaded = 0;
    for request in requests {
        let (status, headers, body) = request.await.expect("task");
        assert_eq!(status, StatusCode::OK);
        if body["degraded"] == json!([{"source": "orders", "code": "upstream_unavailable"}]) {
            overloaded += 1;
            assert!(server_timing(&headers).contains("desc=\"overloaded\""));
        }
    }
    assert_eq!(
        app.calls(Service::Orders),
        2,
        "only two calls may be in flight"
    );
    assert_eq!(overloaded, 3);
}

#[tokio::test]
async fn server_timing_lists_every_part_with_its_outcome() {
    let app = TestApp::builder(Bff::Mobile)
        .config("[upstreams.notifications]\ntimeout = \"200ms\"")
        .spawn()
        .await;
    app.fault(Service::Notifications, fault(|f| f.hang = true));
    let (_, headers, _) = json_body(app.dashboard(&app.token("u1", "")).await).await;
    let timing = server_timing(&headers);
    let parts: Vec<&str> = timing.split(", ").collect();
    assert_eq!(parts.len(), 3, "{timing}");
    assert!(
        parts[0].starts_with("users;dur=") && parts[0].ends_with("desc=\"ok\""),
        "{timing}"
    );
    assert!(
        parts[1].starts_with("orders;dur=") && parts[1].ends_with("desc=\"ok\""),
        "{timing}"
    );
    assert!(
        parts[2].starts_with("notifications;dur=") && parts[2].ends_with("desc=\"timeout\""),
        "{timing}"
    );

    // A failed reply says which part failed.
    app.fault(
        Service::Users,
        fault(|f| f.status = Some(StatusCode::SERVICE_UNAVAILABLE)),
    );
    let (status, headers, _) = json_body(app.dashboard(&app.token("u1", "")).await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(server_timing(&headers).starts_with("users;dur="));
    assert!(server_timing(&headers).contains("desc=\"error\""));
}

#[tokio::test]
async fn the_request_deadline_drops_a_late_optional_part_on_time() {
    let app = TestApp::builder(Bff::Web)
        .config("[upstreams.orders]\ntimeout = \"5s\"\n[http]\nupstream_deadline = \"400ms\"")
        .spawn()
        .await;
    app.fault(Service::Orders, fault(|f| f.hang = true));
    let started = Instant::now();
    let (status, headers, body) = json_body(app.dashboard(&app.token("u1", "")).await).await;
    let elapsed = started.elapsed();
    assert_eq!(status, StatusCode::OK);
    assert!(
        elapsed >= Duration::from_millis(400),
        "answered before the deadline: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(1500),
        "the deadline did not bound the reply: {elapsed:?}"
    );
    assert_eq!(
        body["degraded"],
        json!([{"source": "orders", "code": "upstream_timeout"}])
    );
    assert_eq!(body["profile"]["id"], "u1");
    assert_eq!(body["notifications"]["unreadCount"], 4);
    let timing = server_timing(&headers);
    let orders_ms: f64 = timing
        .split(", ")
        .find_map(|part| part.strip_prefix("orders;dur="))
        .and_then(|rest| rest.split(';').next())
        .and_then(|ms| ms.parse().ok())
        .expect("an orders entry with a duration");
    assert!(
        (350.0..1500.0).contains(&orders_ms),
        "orders took {orders_ms} ms: {timing}"
    );
    assert!(timing.contains("desc=\"timeout\""), "{timing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_identical_concurrent_requests_make_one_upstream_call_each() {
    let app = TestApp::builder(Bff::Web).config(UNLIMITED).spawn().await;
    for service in [Service::Users, Service::Orders, Service::Notifications] {
        app.fault(service, fault(|f| f.delay = Duration::from_millis(300)));
    }
    let token = app.token("u1", "");
    let requests: Vec<_> = (0..50)
        .map(|_| {
            let request = app
                .http
                .get(format!("{}/user-dashboard", app.base))
                .bearer_auth(&token)
                .send();
            tokio::spawn(async move { json_body(request.await.expect("sent")).await })
        })
        .collect();
    for request in requests {
        let (status, _, body) = request.await.expect("task");
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["profile"]["id"], "u1");
        assert_eq!(body["degraded"], json!([]));
    }
    for service in [Service::Users, Service::Orders, Service::Notifications] {
        assert_eq!(app.calls(service), 1, "{service} was called more than once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_of_different_users_are_never_shared() {
    let app = TestApp::builder(Bff::Web).config(UNLIMITED).spawn().await;
    app.fault(
        Service::Users,
        fault(|f| f.delay = Duration::from_millis(300)),
    );
    let requests: Vec<_> = ["u1", "u2", "u1", "u2"]
        .into_iter()
        .map(|user| {
            let request = app
                .http
                .get(format!("{}/user-dashboard", app.base))
                .bearer_auth(app.token(user, ""))
                .send();
            tokio::spawn(async move { (user, json_body(request.await.expect("sent")).await) })
        })
        .collect();
    for request in requests {
        let (user, (_, _, body)) = request.await.expect("task");
        assert_eq!(body["profile"]["id"], user);
    }
    // Same user id and same token coalesce; the two users do not.
    assert_eq!(app.calls(Service::Users), 2);
}

#[tokio::test]
async fn a_fresh_reply_is_served_from_the_cache() {
    let app = TestApp::spawn(Bff::Web).await;
    app.fault(
        Service::Users,
        fault(|f| f.cache_control = Some("private, max-age=60")),
    );
    let token = app.token("u1", "");
    assert_eq!(app.dashboard(&token).await.status(), StatusCode::OK);
    let (status, headers, body) = json_body(app.dashboard(&token).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["profile"]["id"], "u1");
    assert_eq!(
        app.calls(Service::Users),
        1,
        "the second profile came from the cache"
    );
    assert!(server_timing(&headers).contains("users;dur="));
    assert!(
        server_timing(&headers).contains("desc=\"cache-hit\""),
        "{}",
        server_timing(&headers)
    );
}

async fn order_lookups_by_two_users(cache_control: &'static str) -> usize {
    let app = TestApp::spawn(Bff::Web).await;
    app.fault(
        Service::Orders,
        fault(|f| f.cache_control = Some(cache_control)),
    );
    let order = app.upstreams.store().orders_of("u1")[0].id.clone();
    let query = json!({ "query": format!("{{ order(id: \"{order}\") {{ id }} }}") });
    let (_, _, mine) = app.graphql(&app.token("u1", ""), &query).await;
    assert_eq!(mine["data"]["order"]["id"], order.as_str());
    let (_, _, theirs) = app.graphql(&app.token("u2", ""), &query).await;
    assert!(theirs["data"]["order"].is_null(), "{theirs}");
    app.calls(Service::Orders)
}

#[tokio::test]
async fn private_replies_never_cross_users_and_public_ones_are_shared() {
    assert_eq!(order_lookups_by_two_users("private, max-age=60").await, 2);
    assert_eq!(order_lookups_by_two_users("public, max-age=60").await, 1);
}

#[tokio::test]
async fn no_store_replies_are_never_kept() {
    let app = TestApp::spawn(Bff::Web).await;
    app.fault(
        Service::Users,
        fault(|f| f.cache_control = Some("no-store, max-age=60")),
    );
    let token = app.token("u1", "");
    app.dashboard(&token).await;
    app.dashboard(&token).await;
    assert_eq!(app.calls(Service::Users), 2);
}

#[tokio::test]
async fn stale_if_error_serves_a_kept_reply_marked_stale_within_its_window() {
    let app = TestApp::builder(Bff::Web)
        .config("[upstreams.users]\nstale_if_error = \"500ms\"")
        .spawn()
        .await;
    // Kept, but never fresh: every request asks the service.
    app.fault(
        Service::Users,
        fault(|f| f.cache_control = Some("private, max-age=0")),
    );
    let token = app.token("u1", "");
    assert_eq!(app.dashboard(&token).await.status(), StatusCode::OK);

    app.fault(
        Service::Users,
        fault(|f| f.status = Some(StatusCode::SERVICE_UNAVAILABLE)),
    );
    let (status, headers, body) = json_body(app.dashboard(&token).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["profile"]["id"], "u1");
    assert_eq!(
        body["degraded"],
        json!([{"source": "users", "code": "stale"}])
    );
    assert!(
        server_timing(&headers).contains("desc=\"stale\""),
        "{}",
        server_timing(&headers)
    );

    tokio::time::sleep(Duration::from_millis(600)).await;
    let (status, _, body) = json_body(app.dashboard(&token).await).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "past the window the failure shows: {body}"
    );
}

#[tokio::test]
async fn a_hedge_answers_for_a_slow_replica_and_the_loser_is_cancelled() {
    let app = TestApp::builder(Bff::Web)
        .config("[upstreams.orders]\nhedge_after = \"100ms\"\ntimeout = \"5s\"")
        .spawn()
        .await;
    // Calls 1, 3, 5, ... are slow: the first call, not its hedge.
    app.fault(
        Service::Orders,
        fault(|f| {
            f.delay = Duration::from_secs(3);
            f.delay_every = Some(2);
        }),
    );
    let started = Instant::now();
    let (status, headers, body) = json_body(app.dashboard(&app.token("u1", "")).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["degraded"],
        json!([]),
        "the hedge should have answered"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "waited for the slow replica"
    );
    assert_eq!(
        app.calls(Service::Orders),
        2,
        "the first call and one hedge"
    );
    assert!(server_timing(&headers).contains("desc=\"ok\""));
    // The slow loser was dropped, not left running.
    let deadline = Instant::now() + Duration::from_secs(2);
    while app.upstreams.control().in_flight() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.upstreams.control().in_flight(), 0);
}

#[tokio::test]
async fn hedges_come_out_of_the_retry_budget() {
    let app = TestApp::builder(Bff::Web)
        .config(
            "[upstreams.orders]\nhedge_after = \"100ms\"\ntimeout = \"400ms\"\n\
             [upstreams.orders.retry]\nbudget_floor = 0\nbudget_ratio = 0.0",
        )
        .spawn()
        .await;
    app.fault(
        Service::Orders,
        fault(|f| {
            f.delay = Duration::from_secs(3);
            f.delay_every = Some(2);
        }),
    );
    let (_, _, body) = json_body(app.dashboard(&app.token("u1", "")).await).await;
    assert_eq!(app.calls(Service::Orders), 1, "no budget, no hedge");
    assert_eq!(
        body["degraded"],
        json!([{"source": "orders", "code": "upstream_timeout"}])
    );
}

#[tokio::test]
async fn a_service_answering_200_with_unusable_bodies_opens_the_breaker() {
    for bad in [
        fault(|f| f.malformed_body = true),
        fault(|f| f.wrong_shape_body = true),
        fault(|f| f.break_after_handling = true),
    ] {
        let app = TestApp::builder(Bff::Web)
            .config(&format!(
                "{UNLIMITED}[upstreams.orders.retry]\nmax_retries = 0\n[upstreams.orders.breaker]\nconsecutive_failures = 5\nopen_for = \"1m\""
            ))
            .spawn()
            .await;
        let token = app.token("u1", "");
        app.fault(Service::Orders, bad.clone());
        for _ in 0..20 {
            let (status, _, body) = json_body(app.dashboard(&token).await).await;
            assert_eq!(status, StatusCode::OK, "{bad:?}: {body}");
            assert_eq!(body["degraded"][0]["source"], "orders", "{bad:?}: {body}");
        }
        assert_eq!(
            app.calls(Service::Orders),
            5,
            "{bad:?}: a service sending unusable replies kept receiving calls"
        );
        assert_eq!(circuit(&app, "orders").await, "open", "{bad:?}");
        let (_, _, ready) = json_body(app.get("/readyz", None).await).await;
        assert!(
            ready["upstreams"]["orders"]["lastSuccess"].is_null(),
            "{bad:?}: an unusable reply counted as a success: {ready}"
        );
    }
}

/// Profile calls for two dashboards of u1 with this `Cache-Control`.
async fn profile_calls_for_two_dashboards(cache_control: &'static str) -> usize {
    let app = TestApp::spawn(Bff::Web).await;
    app.fault(
        Service::Users,
        fault(|f| f.cache_control = Some(cache_control)),
    );
    let token = app.token("u1", "");
    for _ in 0..2 {
        assert_eq!(app.dashboard(&token).await.status(), StatusCode::OK);
    }
    app.calls(Service::Users)
}

#[tokio::test]
async fn the_reply_cache_follows_rfc_9111() {
    // no-cache: kept only with revalidation, which the gateway does not do.
    assert_eq!(
        profile_calls_for_two_dashboards("no-cache, max-age=60").await,
        2
    );
    assert_eq!(
        profile_calls_for_two_dashboards("private, no-cache, max-age=60").await,
        2
    );
    // private, per user: served again to the same user.
    assert_eq!(
        profile_calls_for_two_dashboards("private, max-age=60").await,
        1
    );
}

#[tokio::test]
async fn s_maxage_governs_shared_entries_and_age_is_counted() {
    // Shared entries follow s-maxage, not max-age.
    assert_eq!(
        order_lookups_by_two_users("public, max-age=60, s-maxage=0").await,
        2
    );
    assert_eq!(
        order_lookups_by_two_users("max-age=0, s-maxage=60").await,
        1
    );
    // A reply that already spent its lifetime upstream is not fresh here.
    let app = TestApp::spawn(Bff::Web).await;
    app.fault(
        Service::Users,
        fault(|f| {
            f.cache_control = Some("private, max-age=60");
            f.age = Some(60);
        }),
    );
    let token = app.token("u1", "");
    app.dashboard(&token).await;
    app.dashboard(&token).await;
    assert_eq!(app.calls(Service::Users), 2, "Age was not counted");
}

#[tokio::test]
async fn stale_if_error_never_serves_what_must_be_revalidated() {
    for cache_control in ["private, max-age=0, must-revalidate", "private, no-cache"] {
        let app = TestApp::builder(Bff::Web)
            .config("[upstreams.users]\nstale_if_error = \"60s\"")
            .spawn()
            .await;
        app.fault(
            Service::Users,
            fault(|f| f.cache_control = Some(cache_control)),
        );
        let token = app.token("u1", "");
        assert_eq!(app.dashboard(&token).await.status(), StatusCode::OK);
        app.fault(
            Service::Users,
            fault(|f| f.status = Some(StatusCode::SERVICE_UNAVAILABLE)),
        );
        let (status, _, body) = json_body(app.dashboard(&token).await).await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{cache_control}: served stale: {body}"
        );
    }
}

#[tokio::test]
async fn a_failed_call_keeps_its_cause_for_the_logs_but_not_for_the_client() {
    let mut demo = bff_testkit::DemoUpstreams::start()
        .await
        .expect("demo upstreams");
    let mut config = bff_core::config::Config::default();
    demo.point_config_at_self(&mut config);
    config.upstreams.entry("orders").retry.max_retries = Some(0);
    let upstreams = bff_core::upstream::Upstreams::from_config(
        &config.upstreams,
        &std::sync::Arc::new(bff_core::metrics::Metrics::new("test")),
    )
    .expect("clients");
    let shop = bff_shop::ShopClients::from_registry(&upstreams).expect("shop clients");
    let ctx = bff_core::request_context::RequestContext::from_headers(&Default::default());
    let caller = bff_core::upstream::Caller::new(&ctx, "u1".into(), None).expect("caller");

    // A body of the wrong shape: the decode error, with its position.
    demo.control()
        .set_fault(Service::Users, fault(|f| f.malformed_body = true));
    let error = shop.users.get(&caller, "u1").await.expect_err("bad body");
    assert_eq!(
        error.to_string(),
        "users sent a reply the gateway could not use (not JSON)"
    );
    assert!(std::error::Error::source(&error).is_some());
    assert!(error.chain().contains("line 1 column"), "{}", error.chain());

    // A refused connection: the transport error under it.
    demo.stop(Service::Orders);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let error = shop
        .orders
        .get_own(&caller, "o1001")
        .await
        .expect_err("refused");
    assert_eq!(error.to_string(), "orders is unreachable");
    let chain = error.chain();
    assert!(chain.len() > error.to_string().len(), "no cause: {chain}");
    assert!(chain.to_lowercase().contains("connect"), "{chain}");
}

/// An instance of a service that answers every request `503`, counting them.
async fn failing_instance() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let calls = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let router = axum::Router::new().fallback(move || {
        counted.fetch_add(1, Ordering::Relaxed);
        async { (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance") }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}"), calls)
}

#[tokio::test]
async fn with_one_of_two_order_instances_failing_the_dashboard_stays_whole() {
    let (failing, failing_calls) = failing_instance().await;
    let app = TestApp::builder(Bff::Web)
        .config(UNLIMITED)
        .instances(Service::Orders, &[&failing])
        .spawn()
        .await;
    // The healthy instance is the slower one: the balancer, led by
    // latency, tries the failing one by the second dashboard at the latest.
    app.fault(
        Service::Orders,
        fault(|f| f.delay = Duration::from_millis(60)),
    );
    let token = app.token("u1", "");
    for _ in 0..20 {
        let (status, _, body) = json_body(app.dashboard(&token).await).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["degraded"], json!([]), "{body}");
        assert_eq!(
            body["recentOrders"].as_array().map(Vec::len),
            Some(10),
            "{body}"
        );
    }
    let failing_calls = failing_calls.load(std::sync::atomic::Ordering::Relaxed);
    // Tried once, retried on the other instance, then avoided: a failure
    // weighs as a call that took the whole timeout, far above 60 ms.
    assert_eq!(failing_calls, 1, "calls to the failing instance");
    let (_, _, ready) = json_body(app.get("/readyz", None).await).await;
    let instances = ready["upstreams"]["orders"]["instances"]
        .as_array()
        .unwrap_or_else(|| panic!("{ready}"));
    assert_eq!(instances.len(), 2, "{ready}");
    assert_eq!(instances[1]["url"], failing, "{ready}");
    assert!(instances[0]["lastSuccess"].is_string(), "{ready}");
    assert_eq!(instances[1]["lastSuccess"], serde_json::Value::Null);
    assert_eq!(ready["upstreams"]["orders"]["circuit"], "closed");
}
