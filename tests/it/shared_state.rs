//! Shared state in a real `redis-server`: the GCRA script on a set clock,
//! quotas and persisted queries shared by two BFFs on one Redis (two
//! replicas), idempotency records across replicas, and what happens while
//! Redis is down: local shares of the quotas, `sharedState: "degraded"` in
//! `/readyz`, the metric, fail-closed routes, and the way back.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bff_core::config::{Secret, SharedStateConfig};
use bff_core::graphql::documents::document_hash;
use bff_core::idempotency::{Claim, IdempotencyConfig, IdempotencyRecords};
use bff_core::metrics::Metrics;
use bff_core::rate_limit::{Decision, LimitKey, RateLimiter, WhenSharedStateFails};
use bff_core::shared_state::gcra::{SharedQuota, Verdict};
use bff_core::shared_state::{SharedState, SharedStateHealth};
use bff_testkit::processes::RedisServer;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{Bff, TestApp, assert_error_body, json_body};

fn redis() -> RedisServer {
    RedisServer::start().expect("redis-server starts (bash scripts/setup installs it)")
}

fn config(redis: &RedisServer, prefix: &str, replicas_hint: u32) -> SharedStateConfig {
    SharedStateConfig {
        redis_url: Some(Secret::new(redis.url())),
        key_prefix: Some(prefix.to_owned()),
        // Generous for a loaded CI machine; the default is 10 ms.
        command_timeout: Duration::from_millis(500),
        probe_interval: Duration::from_millis(50),
        replicas_hint: NonZeroU32::new(replicas_hint).expect("not zero"),
        ..SharedStateConfig::default()
    }
}

fn connect(config: &SharedStateConfig) -> SharedState {
    SharedState::connect(config, "bff-test", &Arc::new(Metrics::new("bff-test"))).expect("connects")
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).expect("not zero")
}

/// Sends one command to `server` on a connection of its own.
async fn ask<T: redis::FromRedisValue>(server: &RedisServer, command: &redis::Cmd) -> T {
    let mut connection = redis::Client::open(server.url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    command
        .query_async(&mut connection)
        .await
        .expect("Redis answers")
}

/// Waits (at most 10 s) until `state` reports `health`.
async fn until_health(state: &SharedState, health: SharedStateHealth) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while state.health() != health {
        assert!(Instant::now() < deadline, "still {:?}", state.health());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_gcra_script_admits_the_burst_then_the_rate_on_a_set_clock() {
    let server = redis();
    let state = connect(&config(&server, "gcra-clock", 1));
    let redis = state.redis().expect("configured");
    let quota = SharedQuota {
        interval: Duration::from_millis(100),
        burst: 3,
    };
    let t0 = 1_000_000_000_000u64;
    let ms = |n: u64| Duration::from_millis(n);
    let at = |micros: u64| async move {
        let verdicts = redis
            .gcra_in_order(&[("gcra-clock:k", quota)], Some(micros))
            .await?;
        Ok::<_, bff_core::shared_state::Unavailable>(verdicts[0])
    };
    // The burst at once: remaining counts down, reset grows by one interval.
    assert_eq!(
        at(t0).await,
        Ok(Verdict::Admitted {
            remaining: 2,
            reset: ms(100)
        })
    );
    assert_eq!(
        at(t0).await,
        Ok(Verdict::Admitted {
            remaining: 1,
            reset: ms(200)
        })
    );
    assert_eq!(
        at(t0).await,
        Ok(Verdict::Admitted {
            remaining: 0,
            reset: ms(300)
        })
    );
    // Over: the next fits one interval later, and a refusal costs nothing.
    assert_eq!(
        at(t0).await,
        Ok(Verdict::Refused {
            retry_after: ms(100)
        })
    );
    assert_eq!(
        at(t0 + 40_000).await,
        Ok(Verdict::Refused {
            retry_after: ms(60)
        })
    );
    assert_eq!(
        at(t0 + 100_000).await,
        Ok(Verdict::Admitted {
            remaining: 0,
            reset: ms(300)
        })
    );
    // After the whole burst's time, the whole burst again.
    assert_eq!(
        at(t0 + 1_000_000).await,
        Ok(Verdict::Admitted {
            remaining: 2,
            reset: ms(100)
        })
    );
    // The key expires once its quota is whole again.
    let ttl: i64 = ask(&server, redis::cmd("PTTL").arg("gcra-clock:k")).await;
    assert!((1..=100).contains(&ttl), "PTTL {ttl}");
}

#[tokio::test]
async fn one_round_trip_counts_two_quotas_in_order_and_a_refusal_stops_it() {
    let server = redis();
    let state = connect(&config(&server, "gcra-pair", 1));
    let redis = state.redis().expect("configured");
    let ip = SharedQuota {
        interval: Duration::from_millis(100),
        burst: 2,
    };
    let caller = SharedQuota {
        interval: Duration::from_millis(100),
        burst: 5,
    };
    let t0 = 2_000_000_000_000u64;
    let keys = [("gcra-pair:ip", ip), ("gcra-pair:caller", caller)];
    let both = |now| redis.gcra_in_order(&keys, Some(now));
    let ms = Duration::from_millis;
    assert_eq!(
        both(t0).await,
        Ok(vec![
            Verdict::Admitted {
                remaining: 1,
                reset: ms(100)
            },
            Verdict::Admitted {
                remaining: 4,
                reset: ms(100)
            },
        ])
    );
    assert_eq!(both(t0).await.map(|v| v.len()), Ok(2));
    // The IP's quota refuses: the caller's is not counted.
    assert_eq!(
        both(t0).await,
        Ok(vec![Verdict::Refused {
            retry_after: ms(100)
        }])
    );
    let caller_only = redis
        .gcra_in_order(&[("gcra-pair:caller", caller)], Some(t0))
        .await;
    assert_eq!(
        caller_only,
        Ok(vec![Verdict::Admitted {
            remaining: 2,
            reset: ms(300)
        }])
    );
}

#[tokio::test]
async fn limiters_of_two_replicas_draw_on_one_quota_and_say_so_in_their_headers() {
    let server = redis();
    // Two replicas: two connections, one prefix.
    let a = connect(&config(&server, "bff-web", 2));
    let b = connect(&config(&server, "bff-web", 2));
    let limiter = |state: &SharedState| {
        RateLimiter::shared(
            nz(1),
            nz(6),
            "subject",
            state,
            WhenSharedStateFails::FallBack,
        )
    };
    let (on_a, on_b) = (limiter(&a), limiter(&b));
    let key = LimitKey::Subject("u1".into());
    let mut remaining = Vec::new();
    let started = Instant::now();
    for i in 0..20 {
        let limiter = if i % 2 == 0 { &on_a } else { &on_b };
        if let Decision::Allowed {
            remaining: left, ..
        } = limiter.check(&key).await
        {
            remaining.push(left);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    // One quota of 6 for both (each alone would admit its 6, or 3 as a
    // fallback share), counted down across them.
    assert!(
        remaining.len() <= 6 + seconds.ceil() as usize,
        "{remaining:?}"
    );
    assert_eq!(remaining[..6], [5, 4, 3, 2, 1, 0], "{remaining:?}");
    assert_eq!(a.health(), SharedStateHealth::Ok);
    // Another BFF on the same Redis (another prefix) has its own quota.
    let other = connect(&config(&server, "bff-mobile", 1));
    assert!(matches!(
        limiter(&other).check(&key).await,
        Decision::Allowed { remaining: 5, .. }
    ));
}

#[tokio::test]
async fn without_redis_each_replica_admits_its_share_and_comes_back_when_it_answers() {
    let mut server = redis();
    let state = connect(&config(&server, "fallback", 2));
    let limiter = RateLimiter::shared(
        nz(1),
        nz(10),
        "subject",
        &state,
        WhenSharedStateFails::FallBack,
    );
    let closed = RateLimiter::shared(nz(1), nz(10), "route", &state, WhenSharedStateFails::Refuse);
    let key = LimitKey::Subject("u1".into());
    assert!(matches!(
        limiter.check(&key).await,
        Decision::Allowed { remaining: 9, .. }
    ));

    server.stop();
    let mut admitted = 0;
    for _ in 0..12 {
        if let Decision::Allowed { .. } = limiter.check(&key).await {
            admitted += 1;
        }
    }
    // Half the burst of 10 (replicas_hint 2), plus at most one for time.
    assert!((5..=6).contains(&admitted), "{admitted} admitted");
    assert_eq!(state.health(), SharedStateHealth::Degraded);
    // A route that fails closed refuses rather than guess.
    assert_eq!(closed.check(&key).await, Decision::Unavailable);

    server.restart().expect("redis-server restarts");
    until_health(&state, SharedStateHealth::Ok).await;
    // Counted in Redis again: its quota, empty after the restart, is whole.
    assert!(matches!(
        limiter.check(&key).await,
        Decision::Allowed { remaining: 9, .. }
    ));
    assert!(matches!(closed.check(&key).await, Decision::Allowed { .. }));
}

#[tokio::test]
async fn idempotency_records_hold_across_replicas() {
    let server = redis();
    let records =
        |state: &SharedState| IdempotencyRecords::new(&IdempotencyConfig::default(), state);
    let (a, b) = (
        records(&connect(&config(&server, "idem", 1))),
        records(&connect(&config(&server, "idem", 1))),
    );
    let Claim::First(pending) = a.claim("caller-key", [7; 32]).await else {
        panic!("the first claim is the request's own");
    };
    assert!(matches!(
        b.claim("caller-key", [7; 32]).await,
        Claim::InFlight
    ));
    assert!(matches!(
        b.claim("caller-key", [8; 32]).await,
        Claim::Mismatch
    ));
    pending
        .complete(bytes::Bytes::from_static(b"{\"id\":\"o1\"}"))
        .await;
    match b.claim("caller-key", [7; 32]).await {
        Claim::Replay(reply) => assert_eq!(reply, "{\"id\":\"o1\"}"),
        other => panic!("expected the replay, got {other:?}"),
    }
    assert!(matches!(
        a.claim("caller-key", [8; 32]).await,
        Claim::Mismatch
    ));
    // A failed request releases its claim on every replica.
    let Claim::First(failed) = a.claim("other-key", [1; 32]).await else {
        panic!("a new key");
    };
    drop(failed);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match b.claim("other-key", [1; 32]).await {
            Claim::First(_) => break,
            Claim::InFlight if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            other => panic!("the released key is still held: {other:?}"),
        }
    }
    assert_eq!(a.local_len() + b.local_len(), 0, "nothing kept in process");
}

/// A BFF on `redis` with this extra TOML.
async fn replica(redis: &RedisServer, extra: &str) -> TestApp {
    TestApp::builder(Bff::Web)
        .config(&format!(
            "[shared_state]\nredis_url = \"{}\"\ncommand_timeout = \"500ms\"\n\
             probe_interval = \"50ms\"\nreplicas_hint = 2\n{extra}",
            redis.url()
        ))
        .spawn()
        .await
}

async fn ready(app: &TestApp) -> serde_json::Value {
    let (status, _, body) = json_body(app.get("/readyz", None).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn a_persisted_query_registered_on_one_replica_runs_on_another() {
    let server = redis();
    let (a, b) = (replica(&server, "").await, replica(&server, "").await);
    let token = a.token("u1", "");
    let query = "{ me { id name } }";
    let hash = document_hash(query);
    let by_hash = json!({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": hash}}});
    let (_, _, miss) = b.graphql(&token, &by_hash).await;
    assert_eq!(
        miss["errors"][0]["message"], "PersistedQueryNotFound",
        "{miss}"
    );
    let register = json!({"query": query, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": hash}}});
    let (status, _, body) = a.graphql(&token, &register).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = b.graphql(&token, &by_hash).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["me"]["name"], "Ada Lovelace");
    assert_eq!(ready(&b).await["sharedState"], "ok");
}

const FAIL_CLOSED: &str = r#"
route = "/closed"
rate_limit = { per_second = 5, burst = 5, when_shared_state_fails = "refuse" }

[calls.me]
upstream = "users"
path = "/users/{$auth.sub}"

[reply]
shape = "{name: $me.name}"
"#;

const OPEN: &str = r#"
route = "/open"

[calls.me]
upstream = "users"
path = "/users/{$auth.sub}"

[reply]
shape = "{name: $me.name}"
"#;

#[tokio::test]
async fn with_redis_down_nothing_fails_but_a_fail_closed_route_and_readiness_says_degraded() {
    let mut server = redis();
    let app = TestApp::builder(Bff::Web)
        .config(&format!(
            "[shared_state]\nredis_url = \"{}\"\ncommand_timeout = \"500ms\"\n\
             probe_interval = \"50ms\"\nreplicas_hint = 2\n\
             [rate_limit]\nper_second = 1\nburst = 8",
            server.url()
        ))
        .endpoints(&[("closed.toml", FAIL_CLOSED), ("open.toml", OPEN)])
        .spawn()
        .await;
    let token = app.token("u1", "");
    let response = app.get("/closed", Some(&token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["ratelimit-limit"], "5");
    assert_eq!(ready(&app).await["sharedState"], "ok");

    server.stop();
    // The BFF-wide quota falls back to this replica's half of 8; nothing
    // else fails because Redis did.
    let other = app.token("u2", "");
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(app.get("/closed", Some(&other)).await.status());
    }
    let (status, _, body) = json_body(app.get("/closed", Some(&token)).await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_error_body(&body, "shared_state_unavailable");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::SERVICE_UNAVAILABLE || *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    // A route without its own quota serves on, within the local share.
    let third = app.token("u3", "");
    let mut admitted = 0;
    for _ in 0..6 {
        let response = app.get("/open", Some(&third)).await;
        match response.status() {
            StatusCode::OK => admitted += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(response.headers()["ratelimit-limit"], "4");
            }
            other => panic!("{other} with Redis down"),
        }
    }
    assert!(
        (4..=5).contains(&admitted),
        "{admitted} admitted of a local share of 4"
    );
    let readiness = ready(&app).await;
    assert_eq!(readiness["status"], "ready");
    assert_eq!(readiness["sharedState"], "degraded");
    let (_, _, status) = json_body(app.get("/status.json", None).await).await;
    assert_eq!(status["sharedState"], "degraded", "{status}");
    let metrics = app.get("/metrics", None).await.text().await.expect("text");
    assert!(
        metrics.contains("bff_shared_state_degraded{bff=\"bff-web\"} 1"),
        "{metrics}"
    );

    server.restart().expect("redis-server restarts");
    until_health(app.state.shared_state(), SharedStateHealth::Ok).await;
    let response = app.get("/closed", Some(&token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["ratelimit-limit"], "5");
    assert_eq!(ready(&app).await["sharedState"], "ok");
}

/// `calls` of a command in Redis's `INFO commandstats`.
async fn command_calls(redis: &RedisServer, command: &str) -> u64 {
    let info: String = ask(redis, redis::cmd("INFO").arg("commandstats")).await;
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().expect("a count"))
}

#[tokio::test]
async fn a_known_caller_costs_one_redis_round_trip_per_request() {
    let server = redis();
    let app = replica(&server, "").await;
    let token = app.token("u1", "");
    // The first request verifies the token: the per-IP quota before, the
    // subject's after, two round trips.
    assert_eq!(app.dashboard(&token).await.status(), StatusCode::OK);
    let before = command_calls(&server, "evalsha").await;
    assert!(before >= 2, "{before} EVALSHA for the first request");
    for _ in 0..10 {
        let response = app.dashboard(&token).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["ratelimit-limit"], "40");
    }
    // Then the token is known: both quotas in one script call each.
    assert_eq!(command_calls(&server, "evalsha").await - before, 10);
}
