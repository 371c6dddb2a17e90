//! `/graphql`: batching, partial data, limits, GraphQL over HTTP, profiles,
//! trusted documents, persisted queries and mutations.

use std::collections::HashSet;

use crate::support::{Bff, TestApp, json_body};
use bff_core::graphql::document_hash;
use bff_testkit::Fault;
use bff_testkit::Service;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn code_of(error: &Value) -> &str {
    error["extensions"]["code"].as_str().unwrap_or_default()
}

/// Ids asked for by one `GET /users?ids=` call.
fn batch_ids(target: &str) -> Vec<String> {
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or_default();
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "ids")
        .map(|(_, v)| v.split(',').map(str::to_owned).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn sellers_are_fetched_in_one_batch_for_1_20_and_100_orders() {
    for (user, first) in [("u5", 1), ("u6", 20), ("u4", 100)] {
        let app = TestApp::spawn(Bff::Web).await;
        let query =
            format!("{{ me {{ orders(first: {first}) {{ nodes {{ seller {{ name }} }} }} }} }}");
        let (status, _, body) = app
            .graphql(&app.token(user, ""), &json!({ "query": query }))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
        let nodes = body["data"]["me"]["orders"]["nodes"]
            .as_array()
            .expect("nodes");
        assert_eq!(nodes.len(), first);
        assert!(
            nodes.iter().all(|n| n["seller"]["name"].is_string()),
            "{body}"
        );

        let batches = app.requests_to(Service::Users, "/users?");
        assert_eq!(batches.len(), 1, "{user}: {batches:?}");
        assert_eq!(app.calls(Service::Orders), 1, "{user}");
        // `me` needs no profile here: the orders call and the batch are all.
        assert_eq!(app.total_calls(), 2, "{user}");
    }
}

#[tokio::test]
async fn the_user_loader_splits_more_than_100_ids_into_batches_of_100() {
    let demo = bff_testkit::DemoUpstreams::start()
        .await
        .expect("demo upstreams");
    let mut config = bff_core::config::Config::default();
    demo.point_config_at_self(&mut config);
    let upstreams = bff_core::upstream::Upstreams::from_config(
        &config.upstreams,
        &std::sync::Arc::new(bff_core::metrics::Metrics::new("test")),
    )
    .expect("clients");
    let ctx = bff_core::request_context::RequestContext::from_headers(&Default::default());
    let caller = bff_core::upstream::Caller::new(
        &ctx,
        "u1".into(),
        Some("Bearer t".parse().expect("header")),
    )
    .expect("caller");
    let shop = bff_shop::ShopClients::from_registry(&upstreams).expect("shop clients");
    let loader = bff_shop::graphql::loader::users_loader(shop.users.clone(), caller);

    let ids: Vec<String> = (1..=150).map(|n| format!("u{n}")).collect();
    let users = loader.load_many(ids.clone()).await.expect("loaded");
    assert_eq!(users.len(), 150);
    let batches: Vec<Vec<String>> = demo
        .control()
        .requests(Service::Users)
        .iter()
        .map(|r| batch_ids(&r.target))
        .collect();
    assert_eq!(batches.len(), 2, "{batches:?}");
    assert!(batches.iter().all(|b| b.len() <= 100));
    let fetched: HashSet<String> = batches.into_iter().flatten().collect();
    assert_eq!(fetched, ids.into_iter().collect());
}

#[tokio::test]
async fn requests_never_share_loaded_users() {
    let app = TestApp::spawn(Bff::Web).await;
    let query = json!({"query": "{ me { orders(first: 1) { nodes { seller { name } } } } }"});
    for _ in 0..2 {
        let (status, _, _) = app.graphql(&app.token("u5", ""), &query).await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(
        app.requests_to(Service::Users, "/users?").len(),
        2,
        "the second request reused the first's data"
    );
}

#[tokio::test]
async fn a_failing_batch_nulls_only_the_actors() {
    let app = TestApp::spawn(Bff::Web).await;
    app.fault(
        Service::Users,
        Fault {
            status: Some(StatusCode::SERVICE_UNAVAILABLE),
            target_prefix: Some("/users?".to_owned()),
            ..Fault::default()
        },
    );
    let query = json!({"query": "{ me { name notifications(first: 2) { unreadCount nodes { title actor { name } } } } }"});
    let (status, _, body) = app.graphql(&app.token("u1", ""), &query).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["me"]["name"], "Ada Lovelace");
    assert_eq!(body["data"]["me"]["notifications"]["unreadCount"], 4);
    let nodes = body["data"]["me"]["notifications"]["nodes"]
        .as_array()
        .expect("nodes");
    assert!(
        nodes
            .iter()
            .all(|n| n["actor"].is_null() && n["title"].is_string()),
        "{body}"
    );
    let errors = body["errors"].as_array().expect("errors");
    assert!(!errors.is_empty());
    for error in errors {
        assert_eq!(code_of(error), "upstream_unavailable", "{error}");
        assert_eq!(error["path"][0], "me");
        assert_eq!(error["path"][4], "actor", "{error}");
    }
    // One batch for the page (tried again twice, as a GET), not one call
    // per notification.
    assert_eq!(app.requests_to(Service::Users, "/users?").len(), 3);
}

#[tokio::test]
async fn a_failing_orders_service_nulls_the_nearest_nullable_parent() {
    let app = TestApp::spawn(Bff::Web).await;
    app.fault(
        Service::Orders,
        Fault {
            status: Some(StatusCode::SERVICE_UNAVAILABLE),
            ..Fault::default()
        },
    );
    let token = app.token("u1", "");

    // `order` is nullable: it alone is null, `me` is all there.
    let query = json!({"query": "{ me { name tier } order(id: \"o1001\") { id } }"});
    let (status, _, body) = app.graphql(&token, &query).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"]["me"],
        json!({"name": "Ada Lovelace", "tier": "plus"})
    );
    assert!(body["data"]["order"].is_null());
    assert_eq!(body["errors"][0]["path"], json!(["order"]));
    assert_eq!(code_of(&body["errors"][0]), "upstream_unavailable");

    // The contract makes `me.orders` non-null up to the root, so the null
    // reaches `data`; the error still points at the field, with its code.
    let query = json!({"query": "{ me { name orders { nodes { id } } } }"});
    let (status, _, body) = app.graphql(&token, &query).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["data"].is_null(), "{body}");
    assert_eq!(body["errors"][0]["path"], json!(["me", "orders"]));
    assert_eq!(code_of(&body["errors"][0]), "upstream_unavailable");
}

#[tokio::test]
async fn other_users_orders_are_not_visible() {
    let app = TestApp::spawn(Bff::Web).await;
    let token = app.token("u1", "");
    let (_, _, body) = app
        .graphql(
            &token,
            &json!({"query": "{ user(id: \"u2\") { name orders { nodes { id } } } }"}),
        )
        .await;
    assert!(body["data"]["user"].is_null(), "{body}");
    assert_eq!(code_of(&body["errors"][0]), "forbidden");
    let u2_order = app.upstreams.store().orders_of("u2")[0].id.clone();
    let query = json!({"query": format!("{{ order(id: \"{u2_order}\") {{ id }} }}")});
    let (_, _, body) = app.graphql(&token, &query).await;
    assert_eq!(body["data"]["order"], Value::Null, "{body}");
}

/// Sends `query` to a web BFF with `config`; asserts a coded request error
/// mentioning `needle` and no upstream call.
async fn assert_refused_by_limit(config: &str, query: &str, needle: &str) {
    let app = TestApp::builder(Bff::Web).config(config).spawn().await;
    let (status, _, body) = app
        .graphql(&app.token("u1", ""), &json!({ "query": query }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{needle}: {body}");
    assert!(
        body.get("data").is_none(),
        "{needle}: request errors carry no data: {body}"
    );
    let error = &body["errors"][0];
    assert_eq!(code_of(error), "bad_request", "{error}");
    let message = error["message"].as_str().expect("message").to_lowercase();
    assert!(
        message.contains(needle),
        "expected `{needle}` in: {message}"
    );
    assert_eq!(app.total_calls(), 0, "{needle}: an upstream was called");
}

#[tokio::test]
async fn each_limit_refuses_before_any_upstream_call() {
    let nested = "{ me { orders { nodes { seller { orders { nodes { seller { name } } } } } } } }";
    assert_refused_by_limit("[graphql]\nmax_depth = 4", nested, "nested too deep").await;

    let aliases: String = (0..16).map(|i| format!("a{i}: me {{ id }} ")).collect();
    assert_refused_by_limit("", &format!("{{ {aliases} }}"), "aliases").await;

    let five = "@include(if: true) ".repeat(5);
    assert_refused_by_limit("", &format!("{{ me {{ id {five} }} }}"), "directives").await;

    let costly = "{ me { orders(first: 100) { nodes { seller { orders(first: 100) { nodes { id } } } } } } }";
    assert_refused_by_limit("", costly, "complex").await;

    let big = format!("{{ me {{ name }} }} # {}", "x".repeat(9000));
    assert_refused_by_limit("", &big, "bytes").await;
    let many_tokens = format!("{{ me {{ {} }} }}", "id ".repeat(1100));
    assert_refused_by_limit("", &many_tokens, "tokens").await;
}

#[tokio::test]
async fn a_flood_of_10000_directives_is_refused_unread() {
    let app = TestApp::spawn(Bff::Web).await;
    let flood = "@include(if: true) ".repeat(10_000);
    let query = json!({ "query": format!("{{ me {{ id {flood} }} }}") });
    let (status, _, body) = app.graphql(&app.token("u1", ""), &query).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");
    // Within the body limit, the document limits refuse it before parsing.
    let app = TestApp::builder(Bff::Web)
        .config("[http]\nbody_limit = 1048576")
        .spawn()
        .await;
    let (status, _, body) = app.graphql(&app.token("u1", ""), &query).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(code_of(&body["errors"][0]), "bad_request");
    assert_eq!(app.total_calls(), 0);
}

#[tokio::test]
async fn first_is_capped_per_field_before_the_upstream_call() {
    let app = TestApp::builder(Bff::Web)
        .config("[graphql]\nmax_first = 5")
        .spawn()
        .await;
    let query = json!({"query": "{ me { orders(first: 6) { nodes { id } } } }"});
    let (status, _, body) = app.graphql(&app.token("u1", ""), &query).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(code_of(&body["errors"][0]), "bad_request");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("between 1 and 5")
    );
    assert_eq!(app.calls(Service::Orders), 0);
}

#[tokio::test]
async fn graphql_over_http_refuses_get_mutations_batches_and_non_json_posts() {
    let app = TestApp::spawn(Bff::Web).await;
    let token = app.token("u1", "orders:write");
    let get = |query: &str| {
        let encoded: String = url::form_urlencoded::byte_serialize(query.as_bytes()).collect();
        app.http
            .get(format!("{}/graphql?query={encoded}", app.base))
            .bearer_auth(&token)
            .send()
    };
    let response = get("{ me { id } }").await.expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    let (status, headers, body) = json_body(
        get("mutation { markNotificationRead(id: \"n501\") { id } }")
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert_eq!(headers["allow"], "POST");

    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let response = app
            .http
            .post(format!("{}/graphql", app.base))
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(r#"{"query": "{ me { id } }"}"#)
            .send()
            .await
            .expect("sent");
        assert_eq!(
            response.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type}"
        );
    }
    let (status, _, body) = app
        .graphql(
            &token,
            &json!([{"query": "{ me { id } }"}, {"query": "{ me { id } }"}]),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "bad_request");
    assert_eq!(app.total_calls(), 0);
}

#[tokio::test]
async fn status_and_media_type_follow_the_accept_header() {
    let app = TestApp::spawn(Bff::Web).await;
    let token = app.token("u1", "");
    let invalid = json!({"query": "{ me { nope } }"});
    let (status, headers, body) = app.graphql(&token, &invalid).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        headers["content-type"],
        "application/graphql-response+json; charset=utf-8"
    );
    assert!(body.get("data").is_none());
    let (status, headers, body) = app
        .graphql_accepting(&token, "application/json", &invalid)
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "legacy application/json answers 200"
    );
    assert_eq!(headers["content-type"], "application/json; charset=utf-8");
    assert_eq!(code_of(&body["errors"][0]), "bad_request");
}

#[tokio::test]
async fn production_hides_the_schema_and_suggestions_and_serves_no_ide() {
    let app = TestApp::spawn(Bff::Web).await;
    let token = app.token("u1", "");
    let (status, _, body) = app
        .graphql(&token, &json!({"query": "{ __schema { types { name } } }"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.get("data").is_none(), "{body}");
    assert_eq!(body["errors"][0]["message"], "introspection is disabled");
    // A type lookup reveals nothing either.
    let query = json!({"query": "{ __type(name: \"User\") { fields { name } } }"});
    let (_, _, body) = app.graphql(&token, &query).await;
    assert_eq!(body["data"]["__type"], Value::Null, "{body}");
    let (_, _, body) = app
        .graphql(&token, &json!({"query": "{ me { nme } }"}))
        .await;
    let message = body["errors"][0]["message"].as_str().expect("message");
    assert!(!message.contains("Did you mean"), "{message}");
    let response = app
        .http
        .get(format!("{}/graphql", app.base))
        .header("accept", "text/html")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

/// `GET /graphql` as a browser asks for it; asserts it is served.
async fn graphiql_page(app: &TestApp) -> reqwest::Response {
    let page = app
        .http
        .get(format!("{}/graphql", app.base))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .expect("sent");
    assert_eq!(page.status(), StatusCode::OK);
    page
}

#[tokio::test]
async fn development_serves_graphiql_introspection_and_suggestions() {
    let app = TestApp::builder(Bff::Web)
        .config("profile = \"development\"")
        .spawn()
        .await;
    let response = graphiql_page(&app).await;
    assert!(response.text().await.expect("html").contains("graphiql"));
    let token = app.token("u1", "");
    let (_, _, body) = app
        .graphql(
            &token,
            &json!({"query": "{ __schema { queryType { name } } }"}),
        )
        .await;
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
    let (_, _, body) = app
        .graphql(&token, &json!({"query": "{ me { nme } }"}))
        .await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Did you mean")
    );
}

#[tokio::test]
async fn graphiql_is_served_from_the_binary_with_no_request_leaving_it() {
    let app = TestApp::builder(Bff::Web)
        .config("profile = \"development\"")
        .spawn()
        .await;
    let page = graphiql_page(&app).await;
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(policy.contains("default-src 'none'") && policy.contains("connect-src 'self'"));
    let html = page.text().await.expect("html");
    let assets: Vec<&str> = html
        .split(['"', '\''])
        .filter(|part| part.starts_with("/graphiql/"))
        .collect();
    assert_eq!(assets.len(), 5, "{html}");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    // reqwest here asks for no encoding: each file comes inflated.
    for asset in &assets {
        let reply = app.get(asset, None).await;
        assert_eq!(reply.status(), StatusCode::OK, "{asset}");
        let kind = reply.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(
            kind.starts_with("text/javascript") || kind.starts_with("text/css"),
            "{asset}: {kind}"
        );
        assert!(reply.headers().get("content-encoding").is_none(), "{asset}");
        assert!(!reply.bytes().await.expect("body").is_empty(), "{asset}");
    }
    let script = app
        .http
        .get(format!("{}/graphiql/graphiql.min.js", app.base))
        .header("accept-encoding", "gzip, br")
        .send()
        .await
        .expect("sent");
    assert_eq!(script.headers()["content-encoding"], "gzip");
    let zipped = script.bytes().await.expect("body");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&zipped[..]), &mut text)
        .expect("gzip");
    assert!(text.contains("GraphiQL") && text.len() > 1_000_000);
    assert_eq!(
        app.get("/graphiql/nope.js", None).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.total_calls(), 0);

    let production = TestApp::spawn(Bff::Web).await;
    assert_eq!(
        production.get("/graphiql/init.js", None).await.status(),
        StatusCode::NOT_FOUND
    );
}

const INTROSPECTION_QUERY: &str = include_str!("support/introspection.graphql");

#[tokio::test]
async fn the_standard_introspection_query_works_in_development_only() {
    for bff in [Bff::Web, Bff::Mobile] {
        let development = TestApp::builder(bff)
            .config("profile = \"development\"")
            .spawn()
            .await;
        let token = development.token("u1", "");
        let request = json!({"query": INTROSPECTION_QUERY, "operationName": "IntrospectionQuery"});
        let (status, _, body) = development.graphql(&token, &request).await;
        assert_eq!(status, StatusCode::OK, "{bff:?}: {body}");
        assert!(body["errors"].is_null(), "{bff:?}: {body}");
        assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
        let types: Vec<&str> = body["data"]["__schema"]["types"]
            .as_array()
            .expect("types")
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert!(
            types.contains(&"User") && types.contains(&"Order"),
            "{types:?}"
        );
        assert_eq!(
            development.total_calls(),
            0,
            "introspection calls no upstream"
        );
        // Data queries keep the depth limit (10 by default).
        let deep = "{ me { orders(first: 1) { nodes { seller { orders(first: 1) { nodes { seller { orders(first: 1) { nodes { seller { name } } } } } } } } } } }";
        let (_, _, body) = development.graphql(&token, &json!({ "query": deep })).await;
        assert_eq!(
            body["errors"][0]["message"], "Query is nested too deep.",
            "{bff:?}: {body}"
        );
        assert_eq!(development.total_calls(), 0);

        let production = TestApp::spawn(bff).await;
        let token = production.token("u1", "");
        let (_, _, body) = production.graphql(&token, &request).await;
        // Web refuses introspection; mobile runs only its trusted documents.
        let refusal = match bff {
            Bff::Web => "bad_request",
            Bff::Mobile => "forbidden",
        };
        assert_eq!(code_of(&body["errors"][0]), refusal, "{bff:?}: {body}");
        assert!(body["data"].is_null(), "{bff:?}: {body}");
    }
}

const DASHBOARD: &str = include_str!("../../bff-mobile/operations/Dashboard.graphql");

#[tokio::test]
async fn mobile_production_runs_only_trusted_operations() {
    let app = TestApp::spawn(Bff::Mobile).await;
    let token = app.token("u1", "");
    let hash = document_hash(DASHBOARD);

    let by_hash = json!({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": hash}}});
    let (status, _, body) = app.graphql(&token, &by_hash).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["me"]["name"], "Ada Lovelace");
    assert_eq!(
        body["data"]["me"]["orders"]["nodes"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );

    let by_id = json!({"documentId": format!("sha256:{hash}")});
    let (status, _, body) = app.graphql(&token, &by_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let calls = app.total_calls();
    let (status, _, body) = app
        .graphql(&token, &json!({"query": "{ me { id name } }"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(code_of(&body["errors"][0]), "forbidden");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("trusted")
    );
    let unknown = json!({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": document_hash("{ me { id } }")}}});
    let (status, _, _) = app.graphql(&token, &unknown).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.total_calls(),
        calls,
        "a refused document reached an upstream"
    );
}

#[tokio::test]
async fn the_mobile_schema_is_lean() {
    let app = TestApp::builder(Bff::Mobile)
        .config("profile = \"development\"")
        .spawn()
        .await;
    let token = app.token("u1", "");
    for query in ["{ me { email } }", "{ user(id: \"u2\") { name } }"] {
        let (status, _, body) = app.graphql(&token, &json!({ "query": query })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
    }
}

#[tokio::test]
async fn web_supports_automatic_persisted_queries() {
    let app = TestApp::spawn(Bff::Web).await;
    let token = app.token("u1", "");
    let query = "{ me { name } }";
    let hash = document_hash(query);
    let extensions = json!({"persistedQuery": {"version": 1, "sha256Hash": hash}});

    let (_, _, body) = app
        .graphql(&token, &json!({ "extensions": extensions }))
        .await;
    assert_eq!(body["errors"][0]["message"], "PersistedQueryNotFound");
    let (status, _, body) = app
        .graphql(&token, &json!({ "query": query, "extensions": extensions }))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["me"]["name"], "Ada Lovelace");
    let (status, _, body) = app
        .graphql(&token, &json!({ "extensions": extensions }))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["me"]["name"], "Ada Lovelace");
    let wrong = json!({"query": "{ me { id } }", "extensions": extensions});
    let (status, _, _) = app.graphql(&token, &wrong).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a query must match its hash"
    );
}

const PLACE_ORDER: &str = "mutation($key: String!) { placeOrder(items: [{sku: \"sku-mug\", quantity: 2}], idempotencyKey: $key) { id status items { quantity } } }";

#[tokio::test]
async fn place_order_with_one_key_creates_one_order() {
    let app = TestApp::spawn(Bff::Web).await;
    let token = app.token("u5", "orders:write");
    let before = app.upstreams.store().orders_of("u5").len();
    let request = json!({"query": PLACE_ORDER, "variables": {"key": "gql-key-1"}});
    let (status, _, first) = app.graphql(&token, &request).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (_, _, second) = app.graphql(&token, &request).await;
    assert_eq!(
        first["data"]["placeOrder"]["id"],
        second["data"]["placeOrder"]["id"]
    );
    assert_eq!(app.upstreams.store().orders_of("u5").len(), before + 1);
    let sent = app.upstreams.control().requests(Service::Orders);
    assert_eq!(
        sent.len(),
        1,
        "the repeat is answered from the idempotency record"
    );
    // With the key scoped to the caller (not the client's own).
    assert_eq!(
        sent[0].headers["idempotency-key"],
        bff_shop::orders::scoped_idempotency_key("u5", "gql-key-1")
    );
    assert_ne!(sent[0].headers["idempotency-key"], "gql-key-1");
}

#[tokio::test]
async fn place_order_needs_the_scope_and_is_never_retried() {
    let app = TestApp::spawn(Bff::Web).await;
    let request = json!({"query": PLACE_ORDER, "variables": {"key": "k"}});
    let (status, _, body) = app.graphql(&app.token("u1", ""), &request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(code_of(&body["errors"][0]), "forbidden");
    assert_eq!(app.total_calls(), 0);

    app.fault(
        Service::Orders,
        Fault {
            status: Some(StatusCode::BAD_GATEWAY),
            ..Fault::default()
        },
    );
    let (_, _, body) = app
        .graphql(&app.token("u1", "orders:write"), &request)
        .await;
    assert_eq!(
        code_of(&body["errors"][0]),
        "upstream_unavailable",
        "{body}"
    );
    assert_eq!(app.calls(Service::Orders), 1);
}

#[tokio::test]
async fn the_same_mutation_aliased_twice_is_refused() {
    let app = TestApp::spawn(Bff::Web).await;
    let query = "mutation { a: placeOrder(items: [{sku: \"x\", quantity: 1}], idempotencyKey: \"k1\") { id } b: placeOrder(items: [{sku: \"x\", quantity: 1}], idempotencyKey: \"k2\") { id } }";
    let (status, _, body) = app
        .graphql(&app.token("u1", "orders:write"), &json!({ "query": query }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("placeOrder")
    );
    assert_eq!(app.total_calls(), 0);
}

#[tokio::test]
async fn mark_notification_read_marks_it() {
    let app = TestApp::spawn(Bff::Web).await;
    let token = app.token("u1", "");
    let query = json!({"query": "mutation { markNotificationRead(id: \"n501\") { id read } }"});
    let (status, _, body) = app.graphql(&token, &query).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"]["markNotificationRead"],
        json!({"id": "n501", "read": true})
    );
    let (_, _, body) = app
        .graphql(
            &token,
            &json!({"query": "{ me { notifications { unreadCount } } }"}),
        )
        .await;
    assert_eq!(body["data"]["me"]["notifications"]["unreadCount"], 3);
}

#[tokio::test]
async fn graphql_replies_report_each_upstream_call_in_server_timing_and_extensions() {
    let app = TestApp::spawn(Bff::Web).await;
    let query = json!({"query": "{ me { name orders(first: 3) { nodes { seller { name } } } } }"});
    let (status, headers, body) = app.graphql(&app.token("u1", ""), &query).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let timing = body["extensions"]["serverTiming"]
        .as_array()
        .expect("serverTiming");
    let mut sources: Vec<&str> = timing
        .iter()
        .map(|t| t["source"].as_str().expect("source"))
        .collect();
    sources.sort_unstable();
    assert_eq!(
        sources,
        ["orders", "users", "users"],
        "profile, orders, the seller batch: {body}"
    );
    assert!(
        timing
            .iter()
            .all(|t| t["desc"] == "ok" && t["dur"].is_number())
    );
    let header = headers["server-timing"].to_str().expect("ascii");
    assert_eq!(header.matches(";dur=").count(), 3, "{header}");
}

/// Both BFFs, each accepting ad-hoc documents (mobile in its development
/// profile: its production profile runs only trusted operations).
async fn both_bffs() -> [(Bff, TestApp); 2] {
    [
        (Bff::Web, TestApp::spawn(Bff::Web).await),
        (
            Bff::Mobile,
            TestApp::builder(Bff::Mobile)
                .config("profile = \"development\"")
                .spawn()
                .await,
        ),
    ]
}

#[tokio::test]
async fn another_users_notification_cannot_be_marked_read_or_seen() {
    for (bff, app) in both_bffs().await {
        let token = app.token("u1", "");
        let theirs = app
            .upstreams
            .store()
            .notifications_of("u2")
            .into_iter()
            .find(|n| !n.read)
            .expect("u2 has an unread notification");
        let mark = |id: &str| json!({"query": format!("mutation {{ markNotificationRead(id: \"{id}\") {{ id title body }} }}")});
        let (_, _, body) = app.graphql(&token, &mark(&theirs.id)).await;
        assert_eq!(code_of(&body["errors"][0]), "not_found", "{bff:?}: {body}");
        assert!(body["data"].is_null(), "{bff:?}: {body}");
        assert!(
            !body.to_string().contains(&theirs.body),
            "{bff:?}: another user's notification leaked: {body}"
        );
        // Exactly the answer for an id that does not exist.
        let (_, _, missing) = app.graphql(&token, &mark("n999999")).await;
        assert_eq!(
            missing["errors"][0]["message"],
            body["errors"][0]["message"]
        );
        assert_eq!(code_of(&missing["errors"][0]), "not_found");
        // No mutating call was made, and theirs is still unread.
        assert!(
            app.requests_to(Service::Notifications, "/notifications/")
                .is_empty(),
            "{bff:?}: a mutating call was sent"
        );
        let still = app.upstreams.store().notifications_of("u2");
        assert!(!still.iter().find(|n| n.id == theirs.id).expect("kept").read);
        // The caller's own is marked, with one ownership read before it.
        let mine = app.upstreams.store().notifications_of("u1")[0].id.clone();
        let (_, _, body) = app.graphql(&token, &mark(&mine)).await;
        assert_eq!(
            body["data"]["markNotificationRead"]["id"],
            mine.as_str(),
            "{bff:?}: {body}"
        );
        assert_eq!(
            app.requests_to(Service::Notifications, "/notifications/"),
            vec![format!("/notifications/{mine}/read")]
        );
    }
}

#[tokio::test]
async fn another_users_order_reads_as_one_that_does_not_exist() {
    for (bff, app) in both_bffs().await {
        let token = app.token("u1", "");
        let theirs = app.upstreams.store().orders_of("u2")[0].id.clone();
        let order =
            |id: &str| json!({"query": format!("{{ order(id: \"{id}\") {{ id totalCents }} }}")});
        let (_, theirs_headers, body) = app.graphql(&token, &order(&theirs)).await;
        let (_, missing_headers, missing) = app.graphql(&token, &order("o999999")).await;
        assert_eq!(body["data"], json!({"order": null}), "{bff:?}");
        assert_eq!(body["data"], missing["data"], "{bff:?}");
        assert!(body.get("errors").is_none() && missing.get("errors").is_none());
        // Not even the timings tell them apart: both are `not-found`.
        let outcome = |body: &Value| body["extensions"]["serverTiming"][0]["desc"].clone();
        assert_eq!(outcome(&body), "not-found", "{bff:?}: {body}");
        assert_eq!(outcome(&missing), "not-found", "{bff:?}: {missing}");
        let desc = |headers: &reqwest::header::HeaderMap| {
            let value = headers["server-timing"].to_str().expect("ascii").to_owned();
            value
                .split(';')
                .filter(|p| p.starts_with("desc="))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(desc(&theirs_headers), desc(&missing_headers), "{bff:?}");
    }
}

#[tokio::test]
async fn another_users_email_reads_as_null() {
    let app = TestApp::spawn(Bff::Web).await;
    let token = app.token("u1", "");
    let query = json!({"query": "{ me { email } user(id: \"u2\") { id name email } }"});
    let (status, _, body) = app.graphql(&token, &query).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    assert!(body["data"]["me"]["email"].is_string(), "{body}");
    assert_eq!(
        body["data"]["user"]["name"].as_str().map(str::is_empty),
        Some(false)
    );
    assert_eq!(body["data"]["user"]["email"], Value::Null, "{body}");
    let query = json!({"query": "{ me { orders(first: 5) { nodes { seller { id email } } } } }"});
    let (_, _, body) = app.graphql(&token, &query).await;
    let nodes = body["data"]["me"]["orders"]["nodes"]
        .as_array()
        .expect("nodes");
    assert!(!nodes.is_empty());
    assert!(
        nodes.iter().all(|n| n["seller"]["email"].is_null()),
        "{body}"
    );
}

#[tokio::test]
async fn ids_that_would_change_the_upstream_path_are_refused_before_any_call() {
    for (bff, app) in both_bffs().await {
        let token = app.token("u1", "");
        for id in ["..", ".", "%2e%2e", ".%2E", "%252E%252E", "", "%0a"] {
            for query in [
                format!("{{ order(id: \"{id}\") {{ id }} }}"),
                format!("mutation {{ markNotificationRead(id: \"{id}\") {{ id }} }}"),
            ] {
                let (_, _, body) = app.graphql(&token, &json!({"query": query})).await;
                assert_eq!(
                    code_of(&body["errors"][0]),
                    "bad_request",
                    "{bff:?} {query}: {body}"
                );
            }
        }
        assert_eq!(app.total_calls(), 0, "{bff:?}");
    }
}

#[tokio::test]
async fn missing_or_mistyped_variables_are_request_errors() {
    let app = TestApp::spawn(Bff::Web).await;
    let token = app.token("u1", "");
    let query = "query Order($id: ID!) { order(id: $id) { id } }";
    for variables in [
        json!({}),
        json!({"id": null}),
        json!({"id": {"nested": true}}),
    ] {
        let (status, headers, body) = app
            .graphql(&token, &json!({"query": query, "variables": variables}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{variables}: {body}");
        assert!(
            headers["content-type"]
                .to_str()
                .is_ok_and(|t| t.starts_with("application/graphql-response+json"))
        );
        assert!(body.get("data").is_none(), "{body}");
        assert_eq!(code_of(&body["errors"][0]), "bad_request", "{body}");
    }
    let (status, _, body) = app
        .graphql(&token, &json!({"query": "query F($n: Int) { me { orders(first: $n) { nodes { id } } } }", "variables": {"n": "ten"}}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(code_of(&body["errors"][0]), "bad_request", "{body}");
    assert_eq!(app.total_calls(), 0);
}

#[tokio::test]
async fn an_upstream_400_stays_a_bad_request() {
    let app = TestApp::spawn(Bff::Web).await;
    let token = app.token("u1", "");
    let query = json!({"query": "{ me { orders(after: \"False\") { nodes { id } } } }"});
    let (_, _, body) = app.graphql(&token, &query).await;
    assert_eq!(code_of(&body["errors"][0]), "bad_request", "{body}");
    assert_eq!(body["errors"][0]["path"], json!(["me", "orders"]));
}

#[tokio::test]
async fn a_failing_nullable_root_field_nulls_only_itself() {
    let app = TestApp::spawn(Bff::Web).await;
    app.fault(
        Service::Orders,
        Fault {
            status: Some(StatusCode::SERVICE_UNAVAILABLE),
            ..Default::default()
        },
    );
    let token = app.token("u1", "");
    let (status, _, body) = app
        .graphql(&token, &json!({"query": "{ order(id: \"o1001\") { id } }"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"], json!({"order": null}), "{body}");
    assert_eq!(body["errors"][0]["path"], json!(["order"]));
    assert_eq!(code_of(&body["errors"][0]), "upstream_unavailable");
    // Beside a field that works, that one is kept.
    let (_, _, body) = app
        .graphql(
            &token,
            &json!({"query": "{ me { name } order(id: \"o1001\") { id } }"}),
        )
        .await;
    assert_eq!(body["data"]["order"], Value::Null, "{body}");
    assert!(body["data"]["me"]["name"].is_string(), "{body}");
}
