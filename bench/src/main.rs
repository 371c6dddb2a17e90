//! `bench/run` drives this: bff-web, a Node BFF and a hyper floor against
//! the same upstreams, same payloads, same load, in one run (plus two
//! comparators of bff-web: its dashboard in Rust, and its quotas in a
//! `redis-server` this starts on the load CPU); prints the table and the
//! ratios `BENCHMARKS.md` records.
//!
//! Usage: `bff-bench --bin-dir DIR [--smoke] [--no-pin] [--rounds N]
//! [--only bff-web,floor] [--workload dashboard|graphql]`. Run it pinned
//! to the load CPU (`taskset -c 1`); it pins each gateway to CPU 0.

mod load;
mod targets;
mod upstreams;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bff_testkit::processes::RedisServer;
use load::{GRAPHQL_QUERY, LoadResult, LoadSpec, Workload};
use targets::{Kind, Launch, Target};
use upstreams::BenchUpstreams;

const SECRET: &str = "benchmark-only-secret-of-32-bytes-or-more";

#[derive(Debug, Clone)]
struct Options {
    bin_dir: PathBuf,
    smoke: bool,
    pin: bool,
    /// Only these gateways (`--only bff-web,floor`), e.g. to profile one.
    only: Option<Vec<String>>,
    /// Only this saturation workload (`--workload dashboard|graphql`), no
    /// fixed-rate scenario: a profile then counts one kind of request.
    workload: Option<String>,
    rounds: usize,
    warmup: Duration,
    duration: Duration,
    saturation_connections: usize,
    rate_connections: usize,
}

impl Options {
    /// Whether the saturation workload `name` runs.
    fn runs(&self, name: &str) -> bool {
        self.workload.as_deref().is_none_or(|only| only == name)
    }

    fn parse() -> Result<Self, String> {
        let mut bin_dir = None;
        let mut smoke = false;
        let mut pin = true;
        let mut only = None;
        let mut workload = None;
        let mut rounds = None;
        let mut connections = None;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--bin-dir" => bin_dir = args.next().map(PathBuf::from),
                "--smoke" => smoke = true,
                "--no-pin" => pin = false,
                "--rounds" => rounds = args.next().and_then(|n| n.parse().ok()),
                "--connections" => connections = args.next().and_then(|n| n.parse().ok()),
                "--workload" => match args.next().as_deref() {
                    Some(name @ ("dashboard" | "graphql")) => workload = Some(name.to_owned()),
                    _ => return Err("--workload takes dashboard or graphql".to_owned()),
                },
                "--only" => {
                    only = args
                        .next()
                        .map(|list| list.split(',').map(str::to_owned).collect());
                }
                other => return Err(format!("unknown argument {other}")),
            }
        }
        let bin_dir = bin_dir.ok_or("--bin-dir DIR is required")?;
        let options = if smoke {
            Self {
                bin_dir,
                smoke,
                pin,
                only,
                workload: workload.clone(),
                rounds: 1,
                warmup: Duration::from_millis(500),
                duration: Duration::from_millis(1500),
                saturation_connections: 8,
                rate_connections: 8,
            }
        } else {
            Self {
                bin_dir,
                smoke,
                pin,
                only,
                workload: workload.clone(),
                rounds: 3,
                warmup: Duration::from_secs(2),
                duration: Duration::from_secs(8),
                saturation_connections: 256,
                rate_connections: 64,
            }
        };
        Ok(Self {
            rounds: rounds.unwrap_or(options.rounds),
            saturation_connections: connections.unwrap_or(options.saturation_connections),
            ..options
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Scenario {
    DashboardSaturation,
    GraphQlSaturation,
    DashboardFixedRate,
}

impl Scenario {
    fn label(self) -> &'static str {
        match self {
            Self::DashboardSaturation => "dashboard, saturation",
            Self::GraphQlSaturation => "GraphQL, saturation",
            Self::DashboardFixedRate => "dashboard, fixed rate, 5/10/20 ms upstreams",
        }
    }
}

/// One measured run.
#[derive(Debug, Clone)]
struct Measure {
    load: LoadResult,
    cpu_micros_per_request: f64,
    cpu_share: f64,
    /// Share of its CPU the load side (load generator and upstreams) used:
    /// near 100 %, the gateway may not be the bottleneck.
    load_share: f64,
    calls_per_request: f64,
}

type Results = BTreeMap<(Scenario, &'static str), Vec<Measure>>;

#[tokio::main]
async fn main() -> ExitCode {
    let options = match Options::parse() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("bff-bench: {message}");
            return ExitCode::from(2);
        }
    };
    match run(options).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("bff-bench: some runs are void (errors or wrong replies): see above");
            ExitCode::FAILURE
        }
        Err(message) => {
            eprintln!("bff-bench: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<bool, String> {
    let upstreams = BenchUpstreams::start()
        .await
        .map_err(|e| format!("upstreams: {e}"))?;
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .ok_or("no repository root")?;
    let launch = Launch {
        bin_dir: &options.bin_dir,
        repo: &repo,
        pin_cpu: options.pin.then_some(0),
        secret: SECRET,
        upstreams: [upstreams.url(0), upstreams.url(1), upstreams.url(2)],
        redis_url: None,
    };
    let kinds: Vec<Kind> = [
        Kind::BffWeb,
        Kind::BffWebRust,
        Kind::BffWebRedis,
        Kind::Node,
        Kind::Floor,
    ]
    .into_iter()
    .filter(|kind| {
        options
            .only
            .as_ref()
            .is_none_or(|only| only.iter().any(|name| name == kind.name()))
    })
    .collect();
    // Redis runs where the load generator and the upstreams do (this
    // process's CPU), not on the gateways' CPU.
    let redis = match kinds.contains(&Kind::BffWebRedis) {
        true => Some(RedisServer::start().map_err(|e| format!("redis-server: {e}"))?),
        false => None,
    };
    let launch = Launch {
        redis_url: redis.as_ref().map(RedisServer::url),
        ..launch
    };
    let mut targets = Vec::new();
    for kind in kinds {
        targets.push(Target::start(kind, &launch).map_err(|e| format!("{}: {e}", kind.name()))?);
    }
    if !options.smoke {
        print_machine(&options);
    }

    // Warm-up: connections, JIT, upstream reply maps.
    for target in &targets {
        let mut workloads = vec![Workload::Dashboard];
        if target.kind.serves_everything() {
            workloads.push(graphql());
        }
        for workload in workloads.into_iter().filter(|w| options.runs(w.name())) {
            let spec = spec(
                &options,
                target,
                workload,
                options.saturation_connections,
                None,
            );
            let warm = load::run(
                LoadSpec {
                    warmup: Duration::ZERO,
                    duration: options.warmup.max(Duration::from_secs(1)),
                    ..spec
                },
                SECRET,
            )
            .await;
            if warm.is_void() {
                return Err(format!(
                    "{} fails during warm-up: {}",
                    target.kind.name(),
                    warm.first_problem.unwrap_or_default()
                ));
            }
        }
    }

    let mut results = Results::new();
    for round in 1..=options.rounds {
        if !options.smoke {
            eprintln!("round {round}/{}: saturation", options.rounds);
        }
        for target in &targets {
            if options.runs("dashboard") {
                let m = measure(&options, &upstreams, target, Workload::Dashboard, None).await;
                results
                    .entry((Scenario::DashboardSaturation, target.kind.name()))
                    .or_default()
                    .push(m);
            }
            if target.kind.serves_everything() && options.runs("graphql") {
                let m = measure(&options, &upstreams, target, graphql(), None).await;
                results
                    .entry((Scenario::GraphQlSaturation, target.kind.name()))
                    .or_default()
                    .push(m);
            }
        }
    }
    if options.workload.is_some() {
        // A profiling run: what was served, nothing compared.
        let mut all_valid = true;
        for ((scenario, target), runs) in &results {
            for m in runs {
                all_valid &= !m.load.is_void();
                println!(
                    "{}, {target}: {} good replies, {:.0} req/s, {:.0} CPU µs/req",
                    scenario.label(),
                    m.load.ok,
                    m.load.rps(),
                    m.cpu_micros_per_request
                );
            }
        }
        for target in &targets {
            println!(
                "peak RSS, {}: {:.1} MiB",
                target.kind.name(),
                target.peak_rss_kib() as f64 / 1024.0
            );
        }
        return Ok(all_valid);
    }
    let peak_rss: Vec<(&str, u64)> = targets
        .iter()
        .map(|t| (t.kind.name(), t.peak_rss_kib()))
        .collect();

    // Fixed arrival rate at half the slowest gateway's saturation.
    let slowest = targets
        .iter()
        .map(|t| {
            median(
                &results[&(Scenario::DashboardSaturation, t.kind.name())],
                |m| m.load.rps(),
            )
        })
        .fold(f64::INFINITY, f64::min);
    let rate = (slowest * 0.5).max(1.0);
    upstreams.set_delays([5, 10, 20].map(Duration::from_millis));
    let mut baseline = Vec::new();
    for round in 1..=options.rounds {
        if !options.smoke {
            eprintln!("round {round}/{}: fixed rate {rate:.0}/s", options.rounds);
        }
        let direct = LoadSpec {
            target: upstreams.addr(2),
            workload: Workload::FanOut {
                calls: vec![
                    (upstreams.addr(0), "/users/{user}".into()),
                    (upstreams.addr(1), "/users/{user}/orders?limit=10".into()),
                    (
                        upstreams.addr(2),
                        "/users/{user}/notifications?limit=10&unreadOnly=false".into(),
                    ),
                ],
            },
            connections: options.rate_connections,
            warmup: options.warmup,
            duration: options.duration,
            rate: Some(rate),
        };
        baseline.push(load::run(direct, SECRET).await);
        for target in targets.iter().filter(|t| t.kind != Kind::BffWebRust) {
            let m = measure(
                &options,
                &upstreams,
                target,
                Workload::Dashboard,
                Some(rate),
            )
            .await;
            results
                .entry((Scenario::DashboardFixedRate, target.kind.name()))
                .or_default()
                .push(m);
        }
    }
    upstreams.set_delays([Duration::ZERO; 3]);

    let calls = graphql_calls(&targets, &upstreams).await;
    if options.smoke {
        return Ok(smoke_summary(&results, &baseline, &calls));
    }
    Ok(report(
        &options, &results, &baseline, &peak_rss, &calls, rate,
    ))
}

/// The smoke run's whole output: one line saying every target served
/// valid replies in every scenario, or a `VOID:` line per problem. Its
/// figures would mean nothing (a debug build, seconds of load), so none
/// is printed.
fn smoke_summary(
    results: &Results,
    baseline: &[LoadResult],
    calls: &[(&str, Vec<(usize, u64)>)],
) -> bool {
    let mut problems = Vec::new();
    for ((scenario, target), measures) in results {
        for m in measures.iter().filter(|m| m.load.is_void()) {
            problems.push(format!(
                "{} / {target}: {} errors, {} wrong replies, first: {}",
                scenario.label(),
                m.load.errors,
                m.load.invalid,
                m.load.first_problem.clone().unwrap_or_default()
            ));
        }
    }
    for b in baseline.iter().filter(|b| b.is_void()) {
        problems.push(format!(
            "baseline: {}",
            b.first_problem.clone().unwrap_or_default()
        ));
    }
    for (target, counts) in calls {
        for (orders, calls) in counts {
            if *calls == u64::MAX {
                problems.push(format!(
                    "{target}: GraphQL with {orders} orders: wrong reply"
                ));
            }
        }
    }
    for problem in &problems {
        println!("VOID: {problem}");
    }
    if problems.is_empty() {
        let targets: std::collections::BTreeSet<&str> =
            results.keys().map(|(_, target)| *target).collect();
        let replies: u64 = results.values().flatten().map(|m| m.load.ok).sum();
        println!(
            "bench smoke: ran; {} served {replies} validated replies in {} scenarios \
             (a check that the benchmark works, not a measurement: `bash bench/run` measures)",
            targets.into_iter().collect::<Vec<_>>().join(", "),
            results
                .keys()
                .map(|(scenario, _)| *scenario)
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
        );
    }
    problems.is_empty()
}

fn graphql() -> Workload {
    Workload::GraphQl {
        query: GRAPHQL_QUERY.to_owned(),
    }
}

fn spec(
    options: &Options,
    target: &Target,
    workload: Workload,
    connections: usize,
    rate: Option<f64>,
) -> LoadSpec {
    LoadSpec {
        target: target.addr,
        workload,
        connections,
        warmup: options.warmup,
        duration: options.duration,
        rate,
    }
}

/// One run against `target`, with its CPU time and upstream calls over
/// the measured window.
async fn measure(
    options: &Options,
    upstreams: &BenchUpstreams,
    target: &Target,
    workload: Workload,
    rate: Option<f64>,
) -> Measure {
    let connections = if rate.is_some() {
        options.rate_connections
    } else {
        options.saturation_connections
    };
    let spec = spec(options, target, workload, connections, rate);
    let running = tokio::spawn(load::run(spec, SECRET));
    tokio::time::sleep(options.warmup).await;
    let cpu_before = target.cpu_time();
    let load_before = targets::own_cpu_time();
    let calls_before: u64 = upstreams.calls().iter().sum();
    tokio::time::sleep(options.duration).await;
    let cpu = target.cpu_time().saturating_sub(cpu_before);
    let load_cpu = targets::own_cpu_time().saturating_sub(load_before);
    let calls = upstreams.calls().iter().sum::<u64>() - calls_before;
    let load = running.await.unwrap_or_default();
    let requests = load.ok.max(1) as f64;
    Measure {
        cpu_micros_per_request: cpu.as_secs_f64() * 1e6 / requests,
        cpu_share: cpu.as_secs_f64() / options.duration.as_secs_f64(),
        load_share: load_cpu.as_secs_f64() / options.duration.as_secs_f64(),
        calls_per_request: calls as f64 / requests,
        load,
    }
}

/// Upstream calls of one GraphQL request for pages of 1 to 100 orders.
async fn graphql_calls(
    targets: &[Target],
    upstreams: &BenchUpstreams,
) -> Vec<(&'static str, Vec<(usize, u64)>)> {
    // u5 has 1 order, u1 12, u6 20, u4 100 (each from its own seller).
    let users = [(5, 1), (1, 12), (6, 20), (4, 100)];
    let mut out = Vec::new();
    for target in targets.iter().filter(|t| t.kind.serves_everything()) {
        let mut counts = Vec::new();
        for (user, orders) in users {
            let (_, token) = load::identity(user - 1, SECRET);
            let client = reqwest::Client::new();
            let before: u64 = upstreams.calls().iter().sum();
            let reply = client
                .post(format!("http://{}/graphql", target.addr))
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(
                    serde_json::json!({
                        "query": "{ me { orders(first: 100) { nodes { id seller { name } } } } }"
                    })
                    .to_string(),
                )
                .send()
                .await;
            let ok = match reply {
                Ok(r) if r.status().is_success() => {
                    r.bytes()
                        .await
                        .ok()
                        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                        .and_then(|v| v["data"]["me"]["orders"]["nodes"].as_array().map(Vec::len))
                        == Some(orders)
                }
                _ => false,
            };
            let calls = upstreams.calls().iter().sum::<u64>() - before;
            counts.push((orders, if ok { calls } else { u64::MAX }));
        }
        out.push((target.kind.name(), counts));
    }
    out
}

fn median(measures: &[Measure], f: impl Fn(&Measure) -> f64) -> f64 {
    median_of(&measures.iter().map(f).collect::<Vec<_>>())
}

fn median_of(values: &[f64]) -> f64 {
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn print_machine(options: &Options) {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::process::Command::new("nproc")
        .arg("--all")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_default();
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_default();
    println!(
        "machine: {model}, {} CPUs; node {}",
        cpus.trim(),
        node.trim()
    );
    println!(
        "method: gateways {}; load generator and upstreams on the other CPU; {} round(s), interleaved; \
         {:?} warm-up + {:?} measured per run; saturation: {} connections, closed loop; \
         fixed rate: {} connections, latency from each request's due time",
        if options.pin {
            "pinned to CPU 0 (taskset)"
        } else {
            "not pinned"
        },
        options.rounds,
        options.warmup,
        options.duration,
        options.saturation_connections,
        options.rate_connections,
    );
}

fn report(
    options: &Options,
    results: &Results,
    baseline: &[LoadResult],
    peak_rss: &[(&str, u64)],
    calls: &[(&str, Vec<(usize, u64)>)],
    rate: f64,
) -> bool {
    let mut all_valid = true;
    println!();
    println!(
        "| scenario | target | req/s | p50 ms | p90 ms | p99 ms | CPU µs/req | target CPU busy | load CPU busy | upstream calls/req |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for ((scenario, target), measures) in results {
        for m in measures {
            if m.load.is_void() {
                all_valid = false;
                println!(
                    "VOID: {} / {target}: {} errors, {} wrong replies, first: {}",
                    scenario.label(),
                    m.load.errors,
                    m.load.invalid,
                    m.load.first_problem.clone().unwrap_or_default()
                );
            }
        }
        println!(
            "| {} | {target} | {:.0} | {:.2} | {:.2} | {:.2} | {:.0} | {:.0}% | {:.0}% | {:.2} |",
            scenario.label(),
            median(measures, |m| m.load.rps()),
            median(measures, |m| m.load.quantile(0.5)) / 1000.0,
            median(measures, |m| m.load.quantile(0.9)) / 1000.0,
            median(measures, |m| m.load.quantile(0.99)) / 1000.0,
            median(measures, |m| m.cpu_micros_per_request),
            median(measures, |m| m.cpu_share) * 100.0,
            median(measures, |m| m.load_share) * 100.0,
            median(measures, |m| m.calls_per_request),
        );
    }
    for b in baseline {
        if b.is_void() {
            all_valid = false;
            println!(
                "VOID: baseline: {}",
                b.first_problem.clone().unwrap_or_default()
            );
        }
    }
    let slowest_p50 = median_of(&baseline.iter().map(|b| b.quantile(0.5)).collect::<Vec<_>>());
    println!(
        "| {} | the three upstreams called at once by the client (baseline) | {:.0} | {:.2} | {:.2} | {:.2} | | | | |",
        Scenario::DashboardFixedRate.label(),
        median_of(&baseline.iter().map(LoadResult::rps).collect::<Vec<_>>()),
        slowest_p50 / 1000.0,
        median_of(&baseline.iter().map(|b| b.quantile(0.9)).collect::<Vec<_>>()) / 1000.0,
        median_of(
            &baseline
                .iter()
                .map(|b| b.quantile(0.99))
                .collect::<Vec<_>>()
        ) / 1000.0,
    );
    println!();
    println!(
        "fixed rate: {rate:.0} requests/s (half the slowest gateway's dashboard saturation); p50 added is measured against the client doing the same fan-out itself"
    );
    for (target, kib) in peak_rss {
        println!(
            "peak RSS after saturation at {} connections, {target}: {:.1} MiB",
            options.saturation_connections,
            *kib as f64 / 1024.0
        );
    }
    let mut exact = true;
    for (target, counts) in calls {
        let text: Vec<String> = counts
            .iter()
            .map(|(orders, calls)| {
                if *calls == u64::MAX {
                    exact = false;
                    format!("{orders} orders: wrong reply")
                } else {
                    format!("{orders} orders: {calls}")
                }
            })
            .collect();
        println!(
            "upstream calls per GraphQL request, {target}: {}",
            text.join(", ")
        );
    }
    let web_calls_exact = calls
        .iter()
        .filter(|(t, _)| *t == "bff-web")
        .all(|(_, c)| c.iter().all(|(_, calls)| *calls == 2));

    let get = |scenario, target: &str, f: &dyn Fn(&Measure) -> f64| {
        results
            .get(&(scenario, target))
            .map_or(f64::NAN, |m| median(m, f))
    };
    let rps = |m: &Measure| m.load.rps();
    let cpu = |m: &Measure| m.cpu_micros_per_request;
    let p50 = |m: &Measure| m.load.quantile(0.5);
    let web_rss = peak_rss
        .iter()
        .find(|(t, _)| *t == "bff-web")
        .map_or(0, |(_, k)| *k) as f64
        / 1024.0;
    let floor_rss = peak_rss
        .iter()
        .find(|(t, _)| *t == "floor")
        .map_or(0, |(_, k)| *k) as f64
        / 1024.0;
    let floor_added = get(Scenario::DashboardFixedRate, "floor", &p50) - slowest_p50;
    println!();
    println!("| measure | measured | goal | met | moonshot | met |");
    println!("|---|---:|---|---|---|---|");
    let mark = |met: bool| if met { "yes" } else { "**no**" };
    // A lower-is-better measure with its goal and moonshot bounds.
    let at_most = |name: &str, value: f64, goal: f64, moon: f64, unit: &str| {
        println!(
            "| {name} | {value:.2}{unit} | ≤ {goal:.2}{unit} | {} | ≤ {moon:.2}{unit} | {} |",
            mark(value <= goal),
            mark(value <= moon)
        );
    };
    let at_least = |name: &str, value: f64, goal: f64, moon: f64| {
        println!(
            "| {name} | {value:.2}× | ≥ {goal}× | {} | ≥ {moon}× | {} |",
            mark(value >= goal),
            mark(value >= moon)
        );
    };
    let dash = Scenario::DashboardSaturation;
    at_most(
        "dashboard CPU µs per request, bff-web / floor",
        get(dash, "bff-web", &cpu) / get(dash, "floor", &cpu),
        1.8,
        1.2,
        "×",
    );
    at_least(
        "dashboard req/s, bff-web / floor",
        get(dash, "bff-web", &rps) / get(dash, "floor", &rps),
        0.55,
        0.85,
    );
    at_least(
        "dashboard req/s, bff-web / node-bff",
        get(dash, "bff-web", &rps) / get(dash, "node-bff", &rps),
        6.0,
        10.0,
    );
    let graphql = Scenario::GraphQlSaturation;
    at_least(
        "GraphQL req/s, bff-web / node-bff",
        get(graphql, "bff-web", &rps) / get(graphql, "node-bff", &rps),
        6.0,
        8.0,
    );
    let added = get(Scenario::DashboardFixedRate, "bff-web", &p50) - slowest_p50;
    at_most(
        "p50 added over the slowest upstream at half saturation, bff-web (µs)",
        added,
        150.0,
        1.5 * floor_added,
        "",
    );
    at_most(
        "peak RSS at 256 connections, bff-web (MiB)",
        web_rss,
        40.0,
        1.2 * floor_rss,
        "",
    );
    at_most(
        "dashboard CPU per request, declared (bff-web) / Rust (bff-web-rust)",
        get(dash, "bff-web", &cpu) / get(dash, "bff-web-rust", &cpu),
        1.15,
        1.0,
        "×",
    );
    for other in ["bff-web-redis", "node-bff", "floor"] {
        let added = get(Scenario::DashboardFixedRate, other, &p50) - slowest_p50;
        println!(
            "| p50 added over the slowest upstream, {other} (µs) | {added:.0} | for comparison | | | |"
        );
    }
    println!(
        "| dashboard CPU per request, quotas in Redis (bff-web-redis) / in process (bff-web) | {:.2}× | for comparison | | | |",
        get(dash, "bff-web-redis", &cpu) / get(dash, "bff-web", &cpu)
    );
    println!(
        "| upstream calls per GraphQL request, 1..100 orders, bff-web | 2 | exactly 2 | {} | | |",
        mark(web_calls_exact && exact)
    );
    all_valid && exact
}
