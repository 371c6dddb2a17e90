//! What an operator sees: `/metrics` counts exactly the traffic sent, with
//! bounded labels; `/readyz` reports each upstream; TLS with HTTP/2;
//! compression of large replies only.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use crate::support::{Bff, TestApp};
use bff_testkit::Fault;
use bff_testkit::Service;
use futures_util::StreamExt as _;
use prometheus_parse::{Scrape, Value as Metric};
use reqwest::StatusCode;
use serde_json::json;

/// One scrape of `/metrics`, parsed by a Prometheus text-format parser.
async fn scrape(app: &TestApp) -> Scrape {
    let response = app.get("/metrics", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().expect("ascii");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.expect("body");
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("valid exposition format")
}

/// The value of the counter or gauge `name` with exactly `labels` (the
/// `bff` label aside); for a histogram, its number of observations.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let wanted: HashMap<&str, &str> = labels.iter().copied().collect();
    let mut found = scrape.samples.iter().filter(|s| {
        s.metric == name
            && s.labels.len() == wanted.len() + 1
            && wanted.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
    });
    let Some(sample) = found.next() else {
        return 0.0;
    };
    match &sample.value {
        Metric::Counter(v) | Metric::Gauge(v) | Metric::Untyped(v) => *v,
        Metric::Histogram(buckets) => buckets
            .iter()
            .find(|b| b.less_than.is_infinite())
            .map_or(0.0, |b| b.count),
        Metric::Summary(_) => panic!("{name} is a summary"),
    }
}

/// Every series (name and labels) in a scrape.
fn series(scrape: &Scrape) -> BTreeSet<String> {
    scrape
        .samples
        .iter()
        .map(|s| {
            let mut labels: Vec<String> =
                s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.sort();
            format!("{}{{{}}}", s.metric, labels.join(","))
        })
        .collect()
}

#[tokio::test]
async fn metrics_count_a_scripted_mix_of_traffic_exactly() {
    let app = TestApp::builder(Bff::Web)
        .config("[rate_limit]\nper_second = 1\nburst = 1")
        .spawn()
        .await;
    // Two plain dashboards.
    for user in ["u1", "u2"] {
        let token = app.token(user, "");
        assert_eq!(app.dashboard(&token).await.status(), StatusCode::OK);
    }
    // A degraded one: notifications fail on every call, retries included.
    app.fault(
        Service::Notifications,
        Fault {
            status: Some(StatusCode::SERVICE_UNAVAILABLE),
            ..Fault::default()
        },
    );
    let degraded = app.dashboard(&app.token("u3", "")).await;
    assert_eq!(degraded.status(), StatusCode::OK);
    let (_, _, body) = crate::support::json_body(degraded).await;
    assert_eq!(body["degraded"][0]["source"], "notifications", "{body}");
    app.fault(Service::Notifications, Fault::default());
    // No token: 401, no upstream call.
    assert_eq!(
        app.get("/user-dashboard", None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Over the quota: the second request of u4 is refused.
    let u4 = app.token("u4", "");
    assert_eq!(app.dashboard(&u4).await.status(), StatusCode::OK);
    assert_eq!(
        app.dashboard(&u4).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // A GraphQL operation that fails validation.
    let (status, _, body) = app
        .graphql(
            &app.token("u5", ""),
            &json!({"query": "query Broken { me { noSuchField } }"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // And one that succeeds.
    let (status, _, body) = app
        .graphql(
            &app.token("u6", ""),
            &json!({"query": "query Me { me { id name } }"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let m = scrape(&app).await;
    let requests = |route, method, status| {
        value(
            &m,
            "http_requests_total",
            &[("route", route), ("method", method), ("status", status)],
        )
    };
    assert_eq!(requests("/user-dashboard", "GET", "2xx"), 4.0);
    assert_eq!(requests("/user-dashboard", "GET", "4xx"), 2.0);
    assert_eq!(requests("/graphql", "POST", "2xx"), 1.0);
    assert_eq!(requests("/graphql", "POST", "4xx"), 1.0);
    assert_eq!(
        value(
            &m,
            "http_request_duration_seconds",
            &[("route", "/user-dashboard"), ("method", "GET")]
        ),
        6.0
    );
    // The scrape itself is the one request in flight.
    assert_eq!(value(&m, "http_requests_in_flight", &[]), 1.0);
    assert_eq!(
        value(
            &m,
            "bff_rate_limit_rejections_total",
            &[("limiter", "subject")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "bff_rate_limit_rejections_total",
            &[("limiter", "client_ip")]
        ),
        0.0
    );
    assert_eq!(
        value(
            &m,
            "bff_graphql_operations_total",
            &[("operation", "Broken"), ("outcome", "error")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "bff_graphql_operations_total",
            &[("operation", "Me"), ("outcome", "ok")]
        ),
        1.0
    );
    assert_eq!(
        value(&m, "bff_graphql_errors_total", &[("code", "bad_request")]),
        1.0
    );
    // Four dashboards reached the handler; `me { id name }` asks the users
    // service once more.
    let calls = |service, outcome| {
        value(
            &m,
            "bff_upstream_call_duration_seconds",
            &[("service", service), ("outcome", outcome)],
        )
    };
    assert_eq!(calls("users", "ok"), 5.0);
    assert_eq!(calls("orders", "ok"), 4.0);
    assert_eq!(calls("notifications", "ok"), 3.0);
    assert_eq!(calls("notifications", "error"), 1.0);
    for service in ["users", "orders", "notifications"] {
        let state = |s| {
            value(
                &m,
                "bff_upstream_circuit_state",
                &[("service", service), ("state", s)],
            )
        };
        assert_eq!(
            (state("closed"), state("open"), state("half_open")),
            (1.0, 0.0, 0.0)
        );
    }
}

/// The metric families the README's **Metrics** paragraph names.
fn families_in_readme() -> Vec<String> {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("**Metrics**")
        .expect("README has a Metrics paragraph");
    let paragraph = &readme[start..];
    let paragraph = &paragraph[..paragraph.find("\n\n").unwrap_or(paragraph.len())];
    paragraph
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|code| code.split('{').next().unwrap_or(code))
        .filter(|name| name.starts_with("http_") || name.starts_with("bff_"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn every_family_the_readme_lists_is_on_the_first_scrape() {
    let app = TestApp::spawn(Bff::Web).await;
    let families = families_in_readme();
    assert!(families.len() >= 8, "{families:?}");
    let m = scrape(&app).await;
    let present = |name: &str| m.samples.iter().any(|s| s.metric == name);
    let missing: Vec<&String> = families.iter().filter(|f| !present(f)).collect();
    assert!(missing.is_empty(), "not on the first scrape: {missing:?}");
    assert!(m.samples.iter().any(|s| s.metric.starts_with("process_")));
    // At zero, with the label values a dashboard or an alert selects on.
    let has = |name: &str, labels: &[(&str, &str)]| {
        m.samples
            .iter()
            .any(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
    };
    for limiter in ["subject", "client_ip"] {
        assert!(has(
            "bff_rate_limit_rejections_total",
            &[("limiter", limiter)]
        ));
    }
    for code in ["bad_request", "internal", "persisted_query_not_found"] {
        assert!(has("bff_graphql_errors_total", &[("code", code)]), "{code}");
    }
    for service in ["users", "orders", "notifications"] {
        assert!(
            has(
                "bff_upstream_call_duration_seconds",
                &[("service", service), ("outcome", "ok")]
            ),
            "{service}"
        );
    }
    assert_eq!(app.total_calls(), 0, "priming calls no upstream");
}

#[tokio::test]
async fn a_persisted_query_miss_is_apollos_code_and_a_bounded_label() {
    let app = TestApp::spawn(Bff::Web).await;
    let token = app.token("u1", "");
    let hash = bff_core::graphql::document_hash("{ me { id } }");
    for accept in ["application/json", "application/graphql-response+json"] {
        let reply = app
            .http
            .post(format!("{}/graphql", app.base))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .header("accept", accept)
            .body(
                json!({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": hash}}})
                    .to_string(),
            )
            .send()
            .await
            .expect("request");
        let body: serde_json::Value =
            serde_json::from_slice(&reply.bytes().await.expect("body")).expect("JSON body");
        assert_eq!(
            body["errors"][0]["message"], "PersistedQueryNotFound",
            "{accept}"
        );
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND",
            "{accept}"
        );
    }
    let m = scrape(&app).await;
    assert_eq!(
        value(
            &m,
            "bff_graphql_errors_total",
            &[("code", "persisted_query_not_found")]
        ),
        2.0
    );
    assert_eq!(
        value(&m, "bff_graphql_errors_total", &[("code", "internal")]),
        0.0
    );
}

#[tokio::test]
async fn label_sets_stay_fixed_under_distinct_paths_and_users() {
    let app = TestApp::builder(Bff::Web)
        .config("[rate_limit]\nper_ip_per_second = 100000\nper_ip_burst = 100000")
        .spawn()
        .await;
    // One of each kind first, so every label combination exists.
    let warm = app.token("u1", "");
    app.dashboard(&warm).await;
    app.get("/warm/0", None).await;
    app.dashboard(&app.token("no-such-user", "")).await;
    scrape(&app).await;
    let before = series(&scrape(&app).await);

    futures_util::stream::iter(0..10_000)
        .map(|i| {
            let app = &app;
            async move {
                if i % 2 == 0 {
                    app.get(&format!("/nope/{i}/user{i}"), None).await.status()
                } else {
                    app.dashboard(&app.token(&format!("user{i}"), ""))
                        .await
                        .status()
                }
            }
        })
        .buffer_unordered(32)
        .for_each(|status| async move {
            assert!(status == StatusCode::NOT_FOUND, "{status}");
        })
        .await;

    let after = series(&scrape(&app).await);
    assert_eq!(
        after.difference(&before).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "new series appeared"
    );
    assert!(
        after
            .iter()
            .all(|s| !s.contains("user9") && !s.contains("/nope"))
    );
}

#[tokio::test]
async fn readyz_reports_each_upstream_with_its_last_success() {
    let app = TestApp::spawn(Bff::Web).await;
    let (_, _, body) = crate::support::json_body(app.get("/readyz", None).await).await;
    assert_eq!(body["status"], "ready");
    for service in ["users", "orders", "notifications"] {
        assert_eq!(body["upstreams"][service]["circuit"], "closed", "{body}");
        assert_eq!(
            body["upstreams"][service]["lastSuccess"],
            serde_json::Value::Null
        );
    }
    assert_eq!(
        app.dashboard(&app.token("u1", "")).await.status(),
        StatusCode::OK
    );
    let (_, _, body) = crate::support::json_body(app.get("/readyz", None).await).await;
    for service in ["users", "orders", "notifications"] {
        let last = body["upstreams"][service]["lastSuccess"]
            .as_str()
            .unwrap_or_else(|| panic!("{body}"));
        assert!(humantime::parse_rfc3339(last).is_ok(), "{last}");
    }
}

/// A throwaway CA and a `localhost` certificate it signed, as PEM files.
struct TestPki {
    dir: std::path::PathBuf,
    ca_pem: String,
}

impl TestPki {
    fn generate() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca =
            CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("CA");
        let leaf_key = KeyPair::generate().expect("key");
        let leaf = CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .signed_by(&leaf_key, &ca)
            .expect("leaf");
        let dir =
            std::env::temp_dir().join(format!("bff-tls-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("cert.pem"), leaf.pem()).expect("cert");
        std::fs::write(dir.join("key.pem"), leaf_key.serialize_pem()).expect("key");
        Self {
            dir,
            ca_pem: ca.pem(),
        }
    }

    fn config(&self) -> String {
        format!(
            "[tls]\ncert_path = {:?}\nkey_path = {:?}",
            self.dir.join("cert.pem"),
            self.dir.join("key.pem")
        )
    }

    /// A client that trusts only the test CA and reaches `localhost` at `addr`.
    fn client(&self, addr: &str, http1_only: bool) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).expect("CA");
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .tls_certs_only([ca])
            .resolve("localhost", addr.parse().expect("socket address"));
        if http1_only {
            builder = builder.http1_only();
        }
        builder.build().expect("client")
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos().into())
}

#[tokio::test]
async fn a_silent_tls_connection_is_closed_at_the_header_timeout() {
    let pki = TestPki::generate();
    let app = TestApp::builder(Bff::Web)
        .config(&format!(
            "{}\n[http]\nheader_read_timeout = \"500ms\"",
            pki.config()
        ))
        .spawn()
        .await;
    let mut silent = tokio::net::TcpStream::connect(app.addr())
        .await
        .expect("connect");
    assert!(
        crate::support::closed_within(&mut silent, Duration::from_secs(5)).await,
        "a connection that never started its TLS handshake was kept open"
    );
}

#[tokio::test]
async fn tls_offers_http2_by_alpn_and_http1_to_older_clients() {
    let pki = TestPki::generate();
    let app = TestApp::builder(Bff::Web)
        .config(&pki.config())
        .spawn()
        .await;
    assert!(app.base.starts_with("https://"), "{}", app.base);
    let port = app.addr().rsplit(':').next().expect("port");
    let url = format!("https://localhost:{port}/user-dashboard");
    let token = app.token("u1", "");

    let reply = pki
        .client(app.addr(), false)
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .expect("TLS request");
    assert_eq!(reply.version(), reqwest::Version::HTTP_2);
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(
        reply.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    let (_, _, body) = crate::support::json_body(reply).await;
    assert_eq!(body["profile"]["id"], "u1");

    let reply = pki
        .client(app.addr(), true)
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .expect("TLS request");
    assert_eq!(reply.version(), reqwest::Version::HTTP_11);
    assert_eq!(reply.status(), StatusCode::OK);

    // Plain HTTP on the TLS port gets no reply.
    let plain = crate::support::raw_http(
        app.addr(),
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(!plain.contains("200 OK"), "{plain}");
}

#[tokio::test]
async fn tls_with_an_untrusted_certificate_is_refused_by_the_client() {
    let pki = TestPki::generate();
    let other = TestPki::generate();
    let app = TestApp::builder(Bff::Web)
        .config(&pki.config())
        .spawn()
        .await;
    let port = app.addr().rsplit(':').next().expect("port");
    let result = other
        .client(app.addr(), false)
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await;
    assert!(
        result.is_err(),
        "a certificate from another CA was accepted"
    );
}

#[tokio::test]
async fn large_replies_are_compressed_as_the_client_accepts_small_ones_are_not() {
    let app = TestApp::spawn(Bff::Web).await;
    let token = app.token("u1", "");
    let query = json!({"query": "{ me { orders(first: 50) { nodes { id status totalCents currency createdAt items { sku name quantity unitPriceCents } seller { id name } } } } }"});
    let send = |encoding: &'static str| {
        let app = &app;
        let token = &token;
        let query = &query;
        async move {
            app.http
                .post(format!("{}/graphql", app.base))
                .bearer_auth(token)
                .header("content-type", "application/json")
                .header("accept-encoding", encoding)
                .body(query.to_string())
                .send()
                .await
                .expect("request")
        }
    };
    let plain = send("identity").await;
    assert!(plain.headers().get("content-encoding").is_none());
    let plain_len = plain.bytes().await.expect("body").len();
    assert!(
        plain_len > 1024,
        "the reply must be large: {plain_len} bytes"
    );
    for encoding in ["gzip", "br", "zstd"] {
        let reply = send(encoding).await;
        assert_eq!(reply.status(), StatusCode::OK);
        assert_eq!(reply.headers()["content-encoding"], encoding);
        let len = reply.bytes().await.expect("body").len();
        assert!(
            len < plain_len / 2,
            "{encoding}: {len} of {plain_len} bytes"
        );
    }
    // Below the minimum size: sent as is.
    let small = app
        .http
        .get(format!("{}/healthz", app.base))
        .header("accept-encoding", "gzip, br, zstd")
        .send()
        .await
        .expect("request");
    assert_eq!(small.status(), StatusCode::OK);
    assert!(small.headers().get("content-encoding").is_none());
}

#[tokio::test]
async fn on_an_equal_weight_br_or_gzip_wins_over_zstd() {
    // Some Node fetch clients offer zstd beside br and gzip but cannot
    // decode it: a tie goes to br (or gzip); only a strictly higher zstd wins.
    let app = TestApp::spawn(Bff::Web).await;
    let token = app.token("u1", "");
    let query = json!({"query": "{ me { orders(first: 50) { nodes { id status totalCents currency createdAt items { sku name quantity unitPriceCents } seller { id name } } } } }"});
    for (accepted, chosen) in [
        ("gzip, deflate, br, zstd", "br"),
        ("zstd, gzip", "gzip"),
        ("zstd;q=0.9, gzip;q=0.9, br;q=0.5", "gzip"),
        ("zstd, gzip;q=0.5", "zstd"),
        ("zstd", "zstd"),
    ] {
        let reply = app
            .http
            .post(format!("{}/graphql", app.base))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .header("accept-encoding", accepted)
            .body(query.to_string())
            .send()
            .await
            .expect("request");
        assert_eq!(reply.status(), StatusCode::OK, "{accepted}");
        assert_eq!(reply.headers()["content-encoding"], chosen, "{accepted}");
    }
}

#[tokio::test]
async fn a_fourth_upstream_is_added_by_configuration_only() {
    // Nothing calls it yet: configured, built, watched and reported.
    let app = TestApp::builder(Bff::Web)
        .config("[upstreams.catalog]\nurl = \"http://127.0.0.1:9\"\ntimeout = \"300ms\"")
        .spawn()
        .await;
    let (_, _, ready) = crate::support::json_body(app.get("/readyz", None).await).await;
    let names: Vec<&String> = ready["upstreams"]
        .as_object()
        .expect("upstreams")
        .keys()
        .collect();
    assert_eq!(
        names,
        ["catalog", "notifications", "orders", "users"],
        "{ready}"
    );
    assert_eq!(ready["upstreams"]["catalog"]["circuit"], "closed");
    assert_eq!(ready["upstreams"]["catalog"]["inFlight"], 0);
    let m = scrape(&app).await;
    assert_eq!(
        value(
            &m,
            "bff_upstream_circuit_state",
            &[("service", "catalog"), ("state", "closed")]
        ),
        1.0
    );
}

#[tokio::test]
async fn a_bff_whose_routes_call_an_unconfigured_upstream_does_not_start() {
    let mut config = bff_core::config::Config::load_unvalidated(&bff_core::config::ConfigSources {
        defaults_toml: bff_web::DEFAULT_CONFIG,
        overrides_toml: Some(
            "[upstreams.users]\nurl = \"http://127.0.0.1:9\"\n[upstreams.orders]\nurl = \"http://127.0.0.1:9\"",
        ),
        ..Default::default()
    })
    .expect("loads");
    config.auth.hs256_secret = Some(bff_core::config::Secret::new(crate::support::SECRET));
    config
        .validate()
        .expect("every configured upstream is valid");
    let state = bff_core::AppState::new("bff-web", config).expect("state builds");
    let error = bff_web::app(state).expect_err("notifications missing");
    assert!(
        error.to_string().contains("upstreams.notifications.url"),
        "{error}"
    );
}

async fn status(app: &TestApp) -> serde_json::Value {
    let reply = app.get("/status.json", None).await;
    assert_eq!(reply.status(), StatusCode::OK);
    crate::support::json_body(reply).await.2
}

#[tokio::test]
async fn the_status_document_shows_which_upstream_fails() {
    let app = TestApp::builder(Bff::Web)
        .config(
            "[rate_limit]\nper_second = 1\nburst = 1\n\
             [upstreams.notifications.retry]\nmax_retries = 0\n\
             [upstreams.notifications.breaker]\nconsecutive_failures = 3\nopen_for = \"1m\"",
        )
        .spawn()
        .await;
    let before = status(&app).await;
    assert_eq!(before["bff"], "bff-web");
    assert_eq!(before["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(before["configGeneration"], 1);
    assert_eq!(before["sharedState"], "local");
    for name in ["users", "orders", "notifications"] {
        assert_eq!(before["upstreams"][name]["circuit"], "closed", "{before}");
        assert_eq!(before["upstreams"][name]["recent"]["count"], 0, "{before}");
    }

    app.fault(
        Service::Notifications,
        Fault {
            status: Some(StatusCode::SERVICE_UNAVAILABLE),
            ..Fault::default()
        },
    );
    for user in ["u1", "u2", "u3", "u4"] {
        let reply = app.dashboard(&app.token(user, "")).await;
        assert_eq!(reply.status(), StatusCode::OK);
    }
    let limited = app.token("u5", "");
    app.dashboard(&limited).await;
    assert_eq!(
        app.dashboard(&limited).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    let after = status(&app).await;
    let notifications = &after["upstreams"]["notifications"];
    assert_eq!(notifications["circuit"], "open", "{after}");
    assert!(
        notifications["recent"]["errorRate"].as_f64() > Some(0.5),
        "{after}"
    );
    assert!(notifications["lastSuccess"].is_null(), "{after}");
    assert_eq!(after["upstreams"]["users"]["recent"]["errorRate"], 0.0);
    assert!(after["upstreams"]["users"]["recent"]["p50Ms"].is_number());
    assert!(!after["upstreams"]["users"]["lastSuccess"].is_null());
    assert_eq!(after["routes"]["/user-dashboard"]["count"], 6, "{after}");
    assert_eq!(after["rateLimitRejections"]["subject"], 1);
    assert_eq!(after["degraded"]["notifications"], 5, "{after}");

    let page = app.get("/status", None).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    let html = page.text().await.expect("html");
    assert!(html.contains("/status.json"));
    assert!(!html.contains("http://") && !html.contains("https://"));

    let hidden = TestApp::builder(Bff::Web)
        .config("[http]\nstatus_page = false")
        .spawn()
        .await;
    for path in ["/status", "/status.json"] {
        assert_eq!(hidden.get(path, None).await.status(), StatusCode::NOT_FOUND);
    }
}
