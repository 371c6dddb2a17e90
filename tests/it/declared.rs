//! Declared endpoints: files a frontend team writes, served by the gateway
//! against the demo upstreams. Each test serves its own files
//! (`endpoints.dir`) instead of the BFF's.

use std::time::{Duration, Instant};

use crate::support::{Bff, TestApp, assert_error_body, json_body, raw_http};
use bff_testkit::data::user_name;
use bff_testkit::{Fault, Service};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A web BFF serving `files` (name, text) and nothing else declared.
async fn serving(files: &[(&str, &str)]) -> TestApp {
    TestApp::builder(Bff::Web).endpoints(files).spawn().await
}

async fn get(
    app: &TestApp,
    path: &str,
    token: &str,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    json_body(app.get(path, Some(token)).await).await
}

/// The status line of a raw `GET path` (a client library would normalise
/// a `..` segment away before sending it).
async fn raw_status(app: &TestApp, path: &str, token: &str) -> String {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    let reply = raw_http(app.addr(), request.as_bytes(), Duration::from_secs(5)).await;
    reply.lines().next().unwrap_or_default().to_owned()
}

fn fault(f: impl FnOnce(&mut Fault)) -> Fault {
    let mut fault = Fault::default();
    f(&mut fault);
    fault
}

const CHAIN: &str = r#"
route = "/chain"

[calls.me]
upstream = "users"
path = "/users/{$auth.sub}"

[calls.orders]
upstream = "orders"
path = "/users/{$me.id}/orders"
query = { limit = "1" }

[calls.notes]
upstream = "notifications"
path = "/users/{$auth.sub}/notifications"
query = { limit = "1" }

[reply]
shape = "{me: $me.id, orders: ($orders.orders | length), unread: $notes.unreadCount}"
"#;

#[tokio::test]
async fn a_call_that_reads_another_waits_for_it_and_independent_calls_overlap() {
    let app = serving(&[("chain.toml", CHAIN)]).await;
    let slow = fault(|f| f.delay = Duration::from_millis(300));
    app.fault(Service::Users, slow.clone());
    app.fault(Service::Notifications, slow);
    let started = Instant::now();
    let (status, _, body) = get(&app, "/chain", &app.token("u1", "")).await;
    let elapsed = started.elapsed();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"me": "u1", "orders": 1, "unread": 4, "degraded": []})
    );
    // The profile and the notifications overlapped; the orders call, which
    // needs the profile's id, was never in flight beside both of them.
    assert_eq!(app.upstreams.control().max_in_flight(), 2);
    assert_eq!(
        app.requests_to(Service::Orders, "/users/"),
        ["/users/u1/orders?limit=1"]
    );
    assert!(
        elapsed < Duration::from_millis(550),
        "two 300 ms calls side by side took {elapsed:?}"
    );
}

const PEOPLE: &str = r#"
route = "/people"
request = { query = ["ids"] }

[calls.people]
upstream = "users"
path = "/users"
query = { ids = "{$ids}" }
visible_if = "true"

[calls.people.batch]
ids = "$query.ids | split(\",\")"
max = 100
items = ".users"
key = "id"

[reply]
shape = "{names: [$query.ids | split(\",\")[] as $id | $people[$id].name]}"
"#;

#[tokio::test]
async fn batched_lookups_cost_one_call_per_hundred_ids_matched_by_id() {
    let app = serving(&[("people.toml", PEOPLE)]).await;
    // The service answers in reverse: results are matched by id, not position.
    app.fault(Service::Users, fault(|f| f.reversed_lists = true));
    let token = app.token("u1", "");
    for (count, calls) in [(1, 1), (20, 1), (150, 2)] {
        let ids: Vec<String> = (1..=count).map(|n| format!("u{n}")).collect();
        let before = app.calls(Service::Users);
        let (status, _, body) = get(&app, &format!("/people?ids={}", ids.join(",")), &token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(app.calls(Service::Users) - before, calls, "{count} ids");
        let names: Vec<String> = ids.iter().map(|id| user_name(id)).collect();
        assert_eq!(body["names"], json!(names), "{count} ids");
        assert_eq!(body["degraded"], json!([]));
    }
    let batches = app.requests_to(Service::Users, "/users?ids=");
    let sizes: Vec<usize> = batches[2..]
        .iter()
        .map(|t| t.split("%2C").count())
        .collect();
    assert_eq!(sizes, [100, 50], "{batches:?}");
}

#[tokio::test]
async fn batched_ids_are_deduplicated_and_a_missing_one_is_null_and_degraded() {
    let app = serving(&[("people.toml", PEOPLE)]).await;
    let token = app.token("u1", "");
    let (status, _, body) = get(&app, "/people?ids=u2,u2,u999,u3", &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["names"],
        json!([user_name("u2"), user_name("u2"), null, user_name("u3")])
    );
    assert_eq!(
        body["degraded"],
        json!([{"source": "people", "code": "not_found"}])
    );
    assert_eq!(
        app.requests_to(Service::Users, "/users?ids="),
        ["/users?ids=u2%2Cu999%2Cu3"]
    );
}

const TWO_USERS: &str = r#"
route = "/pair/{friend}"

[calls.me]
upstream = "users"
path = "/users/{$auth.sub}"

[calls.friend]
upstream = "users"
path = "/users/{$path.friend}"
required = false
visible_if = "true"

[reply]
shape = "{me: $me.name, friend: ($friend | if . then .name else null end)}"
"#;

#[tokio::test]
async fn each_call_is_required_or_optional_and_named_in_degraded() {
    let app = serving(&[("pair.toml", TWO_USERS)]).await;
    let token = app.token("u1", "");
    let (status, _, body) = get(&app, "/pair/u2", &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["friend"], user_name("u2").as_str());

    // Two calls to one upstream: the optional one fails and is named.
    app.fault(
        Service::Users,
        fault(|f| {
            f.status = Some(StatusCode::SERVICE_UNAVAILABLE);
            f.target_prefix = Some("/users/u2".into());
        }),
    );
    let (status, _, body) = get(&app, "/pair/u2", &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"me": user_name("u1"), "friend": null,
               "degraded": [{"source": "friend", "code": "upstream_unavailable"}]})
    );

    // The required one fails: the contract's error, with its status.
    app.fault(
        Service::Users,
        fault(|f| {
            f.status = Some(StatusCode::SERVICE_UNAVAILABLE);
            f.target_prefix = Some("/users/u1".into());
        }),
    );
    let (status, headers, body) = get(&app, "/pair/u2", &token).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(headers["content-type"], "application/json");
    assert_error_body(&body, "upstream_unavailable");

    // A path value from the client follows the identifier rule: refused
    // before any call.
    app.fault(Service::Users, Fault::default());
    let before = app.calls(Service::Users);
    let status = raw_status(&app, "/pair/%2e%2e", &token).await;
    assert_eq!(status, "HTTP/1.1 200 OK", "an optional call degrades");
    assert_eq!(
        app.calls(Service::Users) - before,
        1,
        "only the caller's profile"
    );
}

const OWN_ORDER: &str = r#"
route = "/my-orders/{id}"

[calls.order]
upstream = "orders"
path = "/orders/{$path.id}"
visible_if = ".userId == $auth.sub"

[reply]
shape = "{id: $order.id, total: $order.totalCents}"
"#;

#[tokio::test]
async fn a_call_on_a_client_id_checks_ownership_and_the_identifier_rule() {
    let app = serving(&[("own.toml", OWN_ORDER)]).await;
    let mine = app.upstreams.store().orders_of("u1")[0].id.clone();
    let theirs = app.upstreams.store().orders_of("u2")[0].id.clone();
    let token = app.token("u1", "");
    let (status, _, body) = get(&app, &format!("/my-orders/{mine}"), &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], mine.as_str());
    let (status, _, body) = get(&app, &format!("/my-orders/{theirs}"), &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_error_body(&body, "not_found");
    let before = app.calls(Service::Orders);
    for id in ["..", "%2e%2e", "."] {
        let status = raw_status(&app, &format!("/my-orders/{id}"), &token).await;
        assert_eq!(status, "HTTP/1.1 400 Bad Request", "{id}");
    }
    assert_eq!(app.calls(Service::Orders), before, "nothing was sent");
}

const SHAPES: &str = r#"
route = "/shapes"

[calls.me]
upstream = "users"
path = "/users/{$auth.sub}"

[calls.orders]
upstream = "orders"
path = "/users/{$auth.sub}/orders"
query = { limit = "100" }

[reply]
shape = '''
{
  who: $me | {id, displayName: .name},
  orders: {
    count: ($orders.orders | length),
    totalCents: ([$orders.orders[].totalCents] | add),
    items: ([$orders.orders[].items[].quantity] | add),
    newest: [$orders.orders[:3][].id]
  },
  nickname: ($me.nickname // "none")
}
'''
"#;

#[tokio::test]
async fn the_reply_selects_renames_nests_slices_counts_sums_and_defaults() {
    let app = serving(&[("shapes.toml", SHAPES)]).await;
    let (status, _, body) = get(&app, "/shapes", &app.token("u1", "")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let orders = app.upstreams.store().orders_of("u1");
    let total: i64 = orders.iter().map(|o| o.total_cents).sum();
    let items: i64 = orders
        .iter()
        .flat_map(|o| &o.items)
        .map(|i| i.quantity)
        .sum();
    let newest: Vec<&str> = orders[..3].iter().map(|o| o.id.as_str()).collect();
    assert_eq!(
        body,
        json!({
            "who": {"id": "u1", "displayName": user_name("u1")},
            "orders": {"count": orders.len(), "totalCents": total, "items": items, "newest": newest},
            "nickname": "none",
            "degraded": []
        })
    );
}

#[tokio::test]
async fn a_reply_of_the_wrong_shape_fails_its_call_like_a_broken_service() {
    let app = serving(&[("chain.toml", CHAIN)]).await;
    app.fault(Service::Notifications, fault(|f| f.wrong_shape_body = true));
    let (status, _, body) = get(&app, "/chain", &app.token("u1", "")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_error_body(&body, "upstream_bad_response");
}

const POLICIES: &str = r#"
route = "/summary"
cache = "private-no-cache"
rate_limit = { per_second = 1, burst = 2 }
auth = { scopes = ["orders:read"] }

[deprecated]
since = "2026-11-01"
sunset = "2027-06-30"
successor = "/v2/summary"

[calls.me]
upstream = "users"
path = "/users/{$auth.sub}"

[reply]
shape = "{name: $me.name}"
"#;

const SUMMARY_V2: &str = r#"
route = "/summary"
version = 2

[calls.me]
upstream = "users"
path = "/users/{$auth.sub}"

[reply]
shape = "{id: $me.id, name: $me.name}"
"#;

#[tokio::test]
async fn a_deprecated_route_says_so_and_its_successor_does_not() {
    let app = serving(&[("summary.toml", POLICIES), ("summary-v2.toml", SUMMARY_V2)]).await;
    let token = app.token("u1", "orders:read");
    let (status, headers, _) = get(&app, "/summary", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["deprecation"], "@1793491200");
    assert_eq!(headers["sunset"], "Wed, 30 Jun 2027 00:00:00 GMT");
    assert_eq!(headers["link"], "</v2/summary>; rel=\"successor-version\"");

    let (status, headers, body) = get(&app, "/v2/summary", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"id": "u1", "name": user_name("u1"), "degraded": []})
    );
    assert!(!headers.contains_key("deprecation") && !headers.contains_key("sunset"));

    let scrape = app.get("/metrics", None).await.text().await.expect("text");
    let counted = scrape.lines().find(|line| {
        line.starts_with("bff_deprecated_route_calls_total{") && line.contains("route=\"/summary\"")
    });
    assert!(counted.is_some_and(|line| line.ends_with(" 1")), "{scrape}");
}

#[tokio::test]
async fn a_route_has_its_own_scopes_quota_and_cache_policy() {
    let app = serving(&[("summary.toml", POLICIES), ("summary-v2.toml", SUMMARY_V2)]).await;
    let (status, _, body) = get(&app, "/summary", &app.token("u1", "")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_error_body(&body, "forbidden");

    let token = app.token("u1", "orders:read");
    let (status, headers, _) = get(&app, "/summary", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["cache-control"], "private, no-cache");
    assert_eq!(headers["ratelimit-limit"], "2");
    assert!(headers.contains_key("etag"));
    let (status, _, _) = get(&app, "/summary", &token).await;
    assert_eq!(status, StatusCode::OK);
    let (status, headers, body) = get(&app, "/summary", &token).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(headers.contains_key("retry-after"));
    // The route's quota is its own: the versioned route still answers,
    // under the BFF's quota and with the default `no-store`.
    let (status, headers, _) = get(&app, "/v2/summary", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["cache-control"], "no-store");
    assert_ne!(headers["ratelimit-limit"], "2");
}

#[tokio::test]
async fn a_declared_reply_is_tagged_and_a_held_one_is_a_304() {
    let app = serving(&[("summary-v2.toml", SUMMARY_V2)]).await;
    let token = app.token("u1", "");
    let first = app.get("/v2/summary", Some(&token)).await;
    let tag = first.headers()["etag"].to_str().expect("ascii").to_owned();
    let again = app
        .http
        .get(format!("{}/v2/summary", app.base))
        .bearer_auth(&token)
        .header("if-none-match", &tag)
        .send()
        .await
        .expect("sent");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.bytes().await.expect("body").is_empty());
}
