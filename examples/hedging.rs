//! Benchmark: `GET /user-dashboard` latency when one order-service replica
//! in ten is slow (every tenth call waits 200 ms), with hedging off and on.
//! Prints p50/p90/p99 and order-service calls per request.
//!
//! Run by hand: `cargo run --release --example hedging`

use std::time::{Duration, Instant};

use bff_core::AppState;
use bff_core::config::{Config, ConfigSources, Secret};
use bff_testkit::Service;
use bff_testkit::token::{DevClaims, hs256};
use bff_testkit::{DemoUpstreams, Fault};

const REQUESTS: usize = 2_000;
const CONCURRENCY: usize = 8;
const SECRET: &str = "benchmark-secret-of-at-least-32-bytes";

struct Run {
    latencies: Vec<Duration>,
    calls_per_request: f64,
}

async fn run(hedge_after: Option<&str>) -> Run {
    let upstreams = DemoUpstreams::start().await.expect("demo upstreams");
    upstreams.control().set_fault(
        Service::Orders,
        Fault {
            delay: Duration::from_millis(200),
            delay_every: Some(10),
            ..Fault::default()
        },
    );
    let hedge = hedge_after
        .map(|h| format!("[upstreams.orders]\nhedge_after = \"{h}\"\n"))
        .unwrap_or_default();
    let overrides = format!(
        "[rate_limit]\nper_second = 1000000\nburst = 1000000\nper_ip_per_second = 1000000\nper_ip_burst = 1000000\n{hedge}"
    );
    let mut config = Config::load_unvalidated(&ConfigSources {
        defaults_toml: bff_web::DEFAULT_CONFIG,
        overrides_toml: Some(&overrides),
        ..ConfigSources::default()
    })
    .expect("config");
    config.auth.hs256_secret = Some(Secret::new(SECRET));
    upstreams.point_config_at_self(&mut config);
    config.validate().expect("valid config");
    let http = config.http.clone();
    let state = AppState::new("bff-web", config).expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/user-dashboard",
        listener.local_addr().expect("addr")
    );
    let app = bff_web::app(state).expect("the app builds");
    tokio::spawn(async move {
        bff_core::listener::serve(listener, app, &http, None, std::future::pending()).await
    });

    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|worker| {
            let client = client.clone();
            let url = url.clone();
            // Distinct users, so no request is coalesced with another.
            let token = hs256(
                SECRET,
                &DevClaims::new(&format!("u{}", worker + 1), "", Duration::from_secs(600)),
            );
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(REQUESTS / CONCURRENCY);
                for _ in 0..REQUESTS / CONCURRENCY {
                    let started = Instant::now();
                    let response = client
                        .get(&url)
                        .bearer_auth(&token)
                        .send()
                        .await
                        .expect("sent");
                    assert!(response.status().is_success());
                    response.bytes().await.expect("body");
                    latencies.push(started.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(REQUESTS);
    for worker in workers {
        latencies.extend(worker.await.expect("worker"));
    }
    latencies.sort_unstable();
    Run {
        calls_per_request: upstreams.control().calls(Service::Orders) as f64
            / latencies.len() as f64,
        latencies,
    }
}

fn quantile(sorted: &[Duration], q: f64) -> f64 {
    let index = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    println!(
        "{REQUESTS} dashboard requests, {CONCURRENCY} at a time; every 10th order-service call waits 200 ms\n"
    );
    println!("| hedging | p50 ms | p90 ms | p99 ms | order calls / request |");
    println!("|---|---|---|---|---|");
    let mut p99 = Vec::new();
    for (label, hedge) in [("off", None), ("after 30 ms", Some("30ms"))] {
        let run = run(hedge).await;
        let l = &run.latencies;
        println!(
            "| {label} | {:.1} | {:.1} | {:.1} | {:.3} |",
            quantile(l, 0.5),
            quantile(l, 0.9),
            quantile(l, 0.99),
            run.calls_per_request
        );
        p99.push(quantile(l, 0.99));
    }
    println!("\np99 with hedging / without: {:.2}", p99[1] / p99[0]);
}
