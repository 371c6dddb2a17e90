//! Three `bff-web` processes behind a real `haproxy` (round robin), sharing
//! one real `redis-server`, in front of one set of demo upstreams: what a
//! team running several replicas relies on. One subject's burst holds
//! across the replicas, a persisted query registered on one runs on
//! another, one idempotency key places one order however its requests are
//! spread, per-IP quotas see the client behind the proxy, Redis stopped
//! mid-test fails nothing (local shares, readiness says degraded) and its
//! return brings the shared quotas back, and a replica killed mid-load
//! loses no order.

use std::io::BufReader;
use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bff_core::graphql::documents::document_hash;
use bff_testkit::processes::{Haproxy, RedisServer};
use bff_testkit::token::{DevClaims, hs256};
use bff_testkit::{DemoUpstreams, Service};
use futures_util::StreamExt as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::binary::{BIN, Running, next_matching, read_lines};

const SECRET: &str = "replicas-test-secret-of-32-bytes-or-more";
const BURST: usize = 20;
const PER_SECOND: f64 = 2.0;
const REPLICAS: usize = 3;

/// One `bff-web` process on the shared Redis and upstreams.
struct Replica {
    process: Option<Running>,
    addr: SocketAddr,
}

fn start_replica(upstreams: &DemoUpstreams, redis: &RedisServer) -> Replica {
    let child = Command::new(BIN)
        .env("BFF_LISTEN", "127.0.0.1:0")
        .env("BFF_HTTP__DRAIN_DELAY", "0s")
        .env("BFF_UPSTREAMS__USERS__URL", upstreams.url(Service::Users))
        .env("BFF_UPSTREAMS__ORDERS__URL", upstreams.url(Service::Orders))
        .env(
            "BFF_UPSTREAMS__NOTIFICATIONS__URL",
            upstreams.url(Service::Notifications),
        )
        .env("BFF_AUTH__HS256_SECRET", SECRET)
        .env("BFF_RATE_LIMIT__PER_SECOND", "2")
        .env("BFF_RATE_LIMIT__BURST", BURST.to_string())
        .env("BFF_RATE_LIMIT__PER_IP_PER_SECOND", "1")
        .env("BFF_RATE_LIMIT__PER_IP_BURST", "250")
        // haproxy connects from loopback: its X-Forwarded-For names the client.
        .env("BFF_HTTP__TRUSTED_PROXIES", r#"["127.0.0.1/32"]"#)
        .env("BFF_SHARED_STATE__REDIS_URL", redis.url())
        .env("BFF_SHARED_STATE__REPLICAS_HINT", REPLICAS.to_string())
        // Generous for a loaded CI machine running debug builds.
        .env("BFF_SHARED_STATE__COMMAND_TIMEOUT", "500ms")
        .env("BFF_SHARED_STATE__PROBE_INTERVAL", "100ms")
        .env("BFF_IDEMPOTENCY__IN_FLIGHT_TIMEOUT", "2s")
        .stderr(Stdio::piped())
        .spawn()
        .expect("bff-web starts");
    let mut running = Running(child);
    let logs = read_lines(BufReader::new(running.0.stderr.take().expect("stderr")));
    let listening = next_matching(&logs, |l| l.contains("listening"));
    let line: Value = serde_json::from_str(&listening).expect("a JSON log line");
    let addr = line["local"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .expect("address in the listening line");
    Replica {
        process: Some(running),
        addr,
    }
}

/// A client whose connections come from `source` (any 127.0.0.0/8
/// address), so per-IP quotas can tell test phases apart.
fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(source.parse::<IpAddr>().expect("an address"))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

fn token(sub: &str, scope: &str) -> String {
    hs256(
        SECRET,
        &DevClaims::new(sub, scope, Duration::from_secs(3600)),
    )
}

/// Sends `count` dashboard requests for `sub` through `base`, eight at a
/// time; returns the statuses (each with its `RateLimit-Limit`) and how
/// long they took.
async fn dashboards(
    client: &reqwest::Client,
    base: &str,
    sub: &str,
    count: usize,
) -> (Vec<(StatusCode, Option<String>)>, Duration) {
    let bearer = format!("Bearer {}", token(sub, ""));
    let started = Instant::now();
    let statuses = futures_util::stream::iter(0..count)
        .map(|_| {
            let request = client
                .get(format!("{base}/user-dashboard"))
                .header("authorization", &bearer);
            async move {
                let response = request.send().await.expect("an answer");
                let limit = response
                    .headers()
                    .get("ratelimit-limit")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                (response.status(), limit)
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    (statuses, started.elapsed())
}

fn admitted(statuses: &[(StatusCode, Option<String>)]) -> usize {
    statuses
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .count()
}

/// The most one key may be admitted in `elapsed` by GCRA: the burst plus
/// the rate over the time, plus one for the request at the boundary.
fn gcra_bound(burst: usize, per_second: f64, elapsed: Duration) -> usize {
    burst + (per_second * elapsed.as_secs_f64()).ceil() as usize + 1
}

async fn readiness(client: &reqwest::Client, replica: &Replica) -> Value {
    let response = client
        .get(format!("http://{}/readyz", replica.addr))
        .send()
        .await
        .expect("readyz answers");
    assert_eq!(response.status(), StatusCode::OK);
    json_of(response).await
}

/// Waits (at most 15 s) until every live replica reports `state`.
async fn until_shared_state(client: &reqwest::Client, replicas: &[Replica], state: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    for replica in replicas.iter().filter(|r| r.process.is_some()) {
        while readiness(client, replica).await["sharedState"] != state {
            assert!(Instant::now() < deadline, "{} is not {state}", replica.addr);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn json_of(response: reqwest::Response) -> Value {
    let body = response.bytes().await.expect("a body");
    serde_json::from_slice(&body).expect("JSON")
}

async fn place_order(
    client: &reqwest::Client,
    base: &str,
    bearer: &str,
    key: &str,
) -> Result<reqwest::Response, reqwest::Error> {
    client
        .post(format!("{base}/orders"))
        .header("authorization", bearer)
        .header("idempotency-key", key)
        .header("content-type", "application/json")
        .body(json!({"items": [{"sku": "sku-mug", "quantity": 1}]}).to_string())
        .send()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_behind_haproxy_share_quotas_queries_and_orders_through_redis_failures() {
    let upstreams = DemoUpstreams::start().await.expect("demo upstreams start");
    let mut redis = RedisServer::start().expect("redis-server starts (bash scripts/setup)");
    let mut replicas: Vec<Replica> = (0..REPLICAS)
        .map(|_| start_replica(&upstreams, &redis))
        .collect();
    let addrs: Vec<SocketAddr> = replicas.iter().map(|r| r.addr).collect();
    let proxy = Haproxy::start(&addrs).expect("haproxy starts (bash scripts/setup)");
    let base = proxy.url();
    let probe = client_from("127.0.0.1");
    until_shared_state(&probe, &replicas, "ok").await;

    // One subject, 200 requests, spread round robin: one burst in total.
    let (statuses, elapsed) = dashboards(&client_from("127.0.0.2"), &base, "u11", 200).await;
    let ok = admitted(&statuses);
    assert!(
        (BURST..=gcra_bound(BURST, PER_SECOND, elapsed)).contains(&ok),
        "{ok} of 200 admitted in {elapsed:?}: one quota for all replicas admits {BURST} + {PER_SECOND}/s: {:?}",
        &statuses[..5]
    );
    assert!(statuses.iter().all(|(s, limit)| {
        (*s == StatusCode::OK || *s == StatusCode::TOO_MANY_REQUESTS)
            && limit.as_deref() == Some("20")
    }));
    for replica in &replicas {
        let metrics = probe
            .get(format!("http://{}/metrics", replica.addr))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        assert!(
            metrics.contains(r#"route="/user-dashboard""#),
            "{} served none of them: not round robin",
            replica.addr
        );
    }

    // A persisted query registered on one replica runs on the others.
    let query = "{ me { id name } }";
    let hash = document_hash(query);
    let persisted = json!({"persistedQuery": {"version": 1, "sha256Hash": hash}});
    let bearer = format!("Bearer {}", token("u1", ""));
    let apq = client_from("127.0.0.3");
    let registered = apq
        .post(format!("http://{}/graphql", replicas[0].addr))
        .header("authorization", &bearer)
        .header("content-type", "application/json")
        .body(json!({"query": query, "extensions": persisted}).to_string())
        .send()
        .await
        .expect("registers");
    assert_eq!(registered.status(), StatusCode::OK);
    for replica in &replicas[1..] {
        let response = apq
            .post(format!("http://{}/graphql", replica.addr))
            .header("authorization", &bearer)
            .header("content-type", "application/json")
            .body(json!({"extensions": persisted}).to_string())
            .send()
            .await
            .expect("answers");
        let reply = json_of(response).await;
        assert_eq!(reply["data"]["me"]["name"], "Ada Lovelace", "{reply}");
    }

    // 20 concurrent orders with one key, over all replicas: one order.
    let orders = client_from("127.0.0.4");
    let bearer = format!("Bearer {}", token("one-key-user", "orders:write"));
    let replies = futures_util::future::join_all(
        (0..20).map(|_| place_order(&orders, &base, &bearer, "the-one-key")),
    )
    .await;
    let mut statuses: Vec<StatusCode> = replies
        .into_iter()
        .map(|r| r.expect("an answer").status())
        .collect();
    statuses.sort();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| [StatusCode::CREATED, StatusCode::OK, StatusCode::CONFLICT].contains(s)),
        "{statuses:?}"
    );
    assert_eq!(upstreams.store().orders_of("one-key-user").len(), 1);
    let sent = upstreams.control().requests(Service::Orders);
    assert_eq!(
        sent.iter()
            .filter(|r| r
                .headers
                .get("x-user-id")
                .is_some_and(|v| v == "one-key-user"))
            .count(),
        1,
        "the order service received one request"
    );

    // Per-IP quotas count the client behind haproxy, not haproxy: one
    // address past its burst (bad tokens are counted too) does not limit
    // another.
    let flooder = client_from("127.0.0.5");
    let mut flood_statuses = Vec::new();
    for _ in 0..260 {
        let response = flooder
            .get(format!("{base}/user-dashboard"))
            .header("authorization", "Bearer not-a-token")
            .send()
            .await
            .expect("an answer");
        flood_statuses.push(response.status());
    }
    assert_eq!(flood_statuses[0], StatusCode::UNAUTHORIZED);
    assert_eq!(flood_statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS));
    let other = client_from("127.0.0.6")
        .get(format!("{base}/user-dashboard"))
        .header("authorization", "Bearer not-a-token")
        .send()
        .await
        .expect("an answer");
    assert_eq!(other.status(), StatusCode::UNAUTHORIZED);

    // Redis stopped: nothing fails, each replica limits at its share, and
    // readiness says so while staying ready.
    redis.stop();
    let down = client_from("127.0.0.7");
    let (statuses, elapsed) = dashboards(&down, &base, "u12", 60).await;
    assert!(
        statuses.iter().all(|(s, _)| !s.is_server_error()),
        "{statuses:?}"
    );
    let ok = admitted(&statuses);
    let share = BURST / REPLICAS;
    assert!(
        (share..=REPLICAS * gcra_bound(share, PER_SECOND / REPLICAS as f64, elapsed)).contains(&ok),
        "{ok} of 60 admitted by local shares of {share}"
    );
    until_shared_state(&probe, &replicas, "degraded").await;
    let bearer = format!("Bearer {}", token("redis-down-user", "orders:write"));
    let placed = place_order(&down, &base, &bearer, "while-redis-is-down")
        .await
        .expect("an answer");
    assert_eq!(placed.status(), StatusCode::CREATED);

    // Redis back: shared quotas again.
    redis.restart().expect("redis-server restarts");
    until_shared_state(&probe, &replicas, "ok").await;
    let (statuses, elapsed) = dashboards(&client_from("127.0.0.8"), &base, "u13", 60).await;
    let ok = admitted(&statuses);
    assert!(
        (BURST..=gcra_bound(BURST, PER_SECOND, elapsed)).contains(&ok),
        "{ok} of 60 admitted with Redis back"
    );

    // A replica killed mid-load: haproxy routes around it, and every order
    // is placed exactly once (a client retries with its key until it has
    // an answer, as the contract tells it to).
    let load = client_from("127.0.0.9");
    let bearer = format!("Bearer {}", token("kill-user", "orders:write"));
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let (load, base, bearer) = (load.clone(), base.clone(), bearer.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20 * i)).await;
                let key = format!("kill-{i}");
                for _ in 0..40 {
                    match place_order(&load, &base, &bearer, &key).await {
                        Ok(r) if r.status().is_success() => return r.status(),
                        // In flight on a replica that died, or cut off
                        // mid-reply: the same key again shortly.
                        _ => tokio::time::sleep(Duration::from_millis(250)).await,
                    }
                }
                panic!("order {key} never got an answer");
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(replicas[1].process.take());
    for task in tasks {
        assert!(task.await.expect("the task ran").is_success());
    }
    let placed = upstreams.store().orders_of("kill-user");
    assert_eq!(placed.len(), 30, "each order placed exactly once");
    // haproxy stopped sending to the dead replica: the survivors answer.
    let (statuses, _) = dashboards(&client_from("127.0.0.10"), &base, "u14", 10).await;
    assert!(
        statuses.iter().all(|(s, _)| *s == StatusCode::OK),
        "{statuses:?}"
    );
}
