//! The `bff-web` binary as an operator runs it: configuration errors name
//! the key, environment variables alone configure it, `--demo` serves a
//! working dashboard and SIGTERM stops it cleanly.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_bff-web");
const SECRET: &str = "binary-test-secret-of-32-bytes-or-more";

/// Kills the child if a test fails before stopping it.
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn temp_config(name: &str, toml: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("bff-web-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, toml).expect("write config");
    path
}

const GOOD_UPSTREAMS: &str = r#"
[upstreams.users]
url = "http://127.0.0.1:9"
[upstreams.orders]
url = "http://127.0.0.1:9"
[upstreams.notifications]
url = "http://127.0.0.1:9"
"#;

/// Runs the binary to completion with `toml` as its config; returns
/// (success, stderr).
fn run_with_config(name: &str, toml: &str, env: &[(&str, &str)]) -> (bool, String) {
    let path = temp_config(name, toml);
    let output = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .envs(env.iter().copied())
        .env("BFF_LISTEN", "127.0.0.1:0")
        .env("BFF_HTTP__DRAIN_DELAY", "0s")
        .output()
        .expect("binary runs");
    let _ = std::fs::remove_file(path);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn bad_config_exits_non_zero_naming_the_key() {
    let secret = format!("[auth]\nhs256_secret = \"{SECRET}\"\n");
    let bad_url = GOOD_UPSTREAMS.replacen("http://127.0.0.1:9", "not a url", 2);
    let cases = [
        (
            "bad-url",
            format!("{bad_url}{secret}"),
            "upstreams.orders.url",
        ),
        (
            "unknown-key",
            format!("{GOOD_UPSTREAMS}{secret}[rate_limit]\nper_secnd = 5\n"),
            "rate_limit.per_secnd",
        ),
        (
            "missing-secret",
            GOOD_UPSTREAMS.to_owned(),
            "auth.hs256_secret",
        ),
        (
            "bad-duration",
            format!("{GOOD_UPSTREAMS}{secret}[upstreams.all]\ntimeout = \"soon\"\n"),
            "upstreams.all.timeout",
        ),
        (
            "zero-burst",
            format!("{GOOD_UPSTREAMS}{secret}[rate_limit]\nburst = 0\n"),
            "rate_limit.burst",
        ),
    ];
    for (name, toml, key) in cases {
        let (ok, stderr) = run_with_config(name, &toml, &[]);
        assert!(!ok, "{name}: started with a bad config");
        assert!(
            stderr.contains(key),
            "{name}: stderr does not name `{key}`:\n{stderr}"
        );
        assert!(!stderr.contains(SECRET), "{name}: the secret was printed");
    }
}

#[test]
fn check_validates_as_start_up_does_and_exits() {
    let check = |name: &str, toml: &str| {
        let path = temp_config(name, toml);
        let output = Command::new(BIN)
            .arg("--check")
            .arg("--config")
            .arg(&path)
            .env("BFF_LISTEN", "127.0.0.1:0")
            .output()
            .expect("binary runs");
        let _ = std::fs::remove_file(path);
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let secret = format!("[auth]\nhs256_secret = \"{SECRET}\"\n");
    let (ok, stdout, stderr) = check("check-good", &format!("{GOOD_UPSTREAMS}{secret}"));
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), "bff-web: configuration OK");
    // Each key alone is fine; the routes need the orders upstream.
    let without_orders =
        GOOD_UPSTREAMS.replace("[upstreams.orders]\nurl = \"http://127.0.0.1:9\"\n", "");
    let (ok, _, stderr) = check("check-no-orders", &format!("{without_orders}{secret}"));
    assert!(!ok);
    assert!(stderr.contains("upstreams.orders"), "{stderr}");
    // A key that cannot be used is found too, not only a mistyped one.
    let (ok, _, stderr) = check(
        "check-bad-key",
        &format!("{GOOD_UPSTREAMS}[auth]\npublic_key_pem = \"not a key\"\n"),
    );
    assert!(!ok);
    assert!(stderr.contains("public_key_pem"), "{stderr}");
}

#[test]
fn an_environment_variable_overrides_the_file_and_is_named_when_bad() {
    let toml = format!("{GOOD_UPSTREAMS}[auth]\nhs256_secret = \"{SECRET}\"\n");
    let (ok, stderr) = run_with_config("env-bad", &toml, &[("BFF_UPSTREAMS__ORDERS__URL", "nope")]);
    assert!(!ok);
    assert!(stderr.contains("upstreams.orders.url"), "{stderr}");
}

#[test]
fn a_missing_config_file_is_an_error() {
    let output = Command::new(BIN)
        .args(["--config", "/nonexistent/bff-web.toml"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/bff-web.toml"));
}

#[test]
fn an_unknown_flag_is_a_usage_error() {
    let output = Command::new(BIN).arg("--bogus").output().expect("runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("usage:"));
}

/// Reads lines from `reader` until `pred` matches one and returns it;
/// fails after a minute rather than hanging the suite. The rest of the
/// output keeps being drained, so the child never blocks on a full pipe.
fn wait_for_line(reader: impl BufRead + Send + 'static, pred: impl Fn(&str) -> bool) -> String {
    next_matching(&read_lines(reader), pred)
}

/// Every line `reader` produces, as they come; drained to the end on a
/// thread of its own, so the child never blocks on a full pipe.
pub(crate) fn read_lines(reader: impl BufRead + Send + 'static) -> Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in reader.lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                // Nobody waits any more: keep draining.
                continue;
            }
        }
    });
    rx
}

/// The next line from `lines` that matches; fails after a minute rather
/// than hanging the suite.
pub(crate) fn next_matching(lines: &Receiver<String>, pred: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if pred(&line) => return line.trim().to_owned(),
            Ok(_) => {}
            Err(_) => panic!("the binary did not print the expected line within a minute"),
        }
    }
}

/// A plain HTTP/1.1 GET; returns the whole reply.
fn http_get(addr: &str, path: &str, token: Option<&str>) -> String {
    match token {
        Some(token) => http_get_with(addr, path, &[("Authorization", &format!("Bearer {token}"))]),
        None => http_get_with(addr, path, &[]),
    }
}

fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[test]
fn environment_variables_alone_configure_the_binary() {
    let (running, addr) = start_configured_by_env(&[("BFF_UPSTREAMS__ALL__TIMEOUT", "1500ms")]);
    let reply = http_get(&addr, "/readyz", None);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    stop(running);
}

#[test]
fn an_upstreams_instances_are_a_toml_array_in_the_environment() {
    let (running, addr) = start_configured_by_env(&[
        ("BFF_UPSTREAMS__ORDERS__URL", ""),
        (
            "BFF_UPSTREAMS__ORDERS__INSTANCES",
            r#"["http://127.0.0.1:9","http://127.0.0.2:9"]"#,
        ),
    ]);
    let reply = http_get(&addr, "/readyz", None);
    let body = reply.split("\r\n\r\n").nth(1).expect("a body");
    let ready: serde_json::Value = serde_json::from_str(body).expect("JSON");
    let urls: Vec<&str> = ready["upstreams"]["orders"]["instances"]
        .as_array()
        .unwrap_or_else(|| panic!("{ready}"))
        .iter()
        .filter_map(|instance| instance["url"].as_str())
        .collect();
    assert_eq!(urls, ["http://127.0.0.1:9", "http://127.0.0.2:9"]);
    stop(running);
}

/// Starts the binary configured by environment variables alone (plus
/// `extra`), on an ephemeral port; returns it and its address.
fn start_configured_by_env(extra: &[(&str, &str)]) -> (Running, String) {
    let (running, addr, _logs) = start_capturing_logs(extra);
    (running, addr)
}

/// Like [`start_configured_by_env`], also returning every log line. An
/// `extra` variable with an empty value removes the base one.
fn start_capturing_logs(extra: &[(&str, &str)]) -> (Running, String, Receiver<String>) {
    start_with_args(&[], extra)
}

/// Like [`start_capturing_logs`], with command-line `args`.
fn start_with_args(args: &[&str], extra: &[(&str, &str)]) -> (Running, String, Receiver<String>) {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("BFF_LISTEN", "127.0.0.1:0")
        .env("BFF_HTTP__DRAIN_DELAY", "0s")
        .env("BFF_UPSTREAMS__USERS__URL", "http://127.0.0.1:9")
        .env("BFF_UPSTREAMS__ORDERS__URL", "http://127.0.0.1:9")
        .env("BFF_UPSTREAMS__NOTIFICATIONS__URL", "http://127.0.0.1:9")
        .env("BFF_AUTH__HS256_SECRET", SECRET);
    for (key, value) in extra {
        if value.is_empty() {
            command.env_remove(key);
        } else {
            command.env(key, value);
        }
    }
    let child = command.stderr(Stdio::piped()).spawn().expect("starts");
    let mut running = Running(child);
    let logs = read_lines(BufReader::new(running.0.stderr.take().expect("stderr")));
    // Production logs are JSON lines.
    let listening = next_matching(&logs, |l| l.contains("listening"));
    let line: serde_json::Value = serde_json::from_str(&listening).expect("a JSON log line");
    let addr = line["local"]
        .as_str()
        .expect("address in the listening line")
        .to_owned();
    (running, addr, logs)
}

#[test]
fn text_logs_print_durations_rounded() {
    let mut command = Command::new(BIN);
    command
        .env("BFF_LISTEN", "127.0.0.1:0")
        .env("BFF_HTTP__DRAIN_DELAY", "0s")
        .env("BFF_TELEMETRY__LOG_FORMAT", "text")
        .env("BFF_UPSTREAMS__USERS__URL", "http://127.0.0.1:9")
        .env("BFF_UPSTREAMS__ORDERS__URL", "http://127.0.0.1:9")
        .env("BFF_UPSTREAMS__NOTIFICATIONS__URL", "http://127.0.0.1:9")
        .env("BFF_AUTH__HS256_SECRET", SECRET);
    let child = command.stderr(Stdio::piped()).spawn().expect("starts");
    let mut running = Running(child);
    let logs = read_lines(BufReader::new(running.0.stderr.take().expect("stderr")));
    let listening = next_matching(&logs, |l| l.contains("listening"));
    let addr = listening
        .split_whitespace()
        .find_map(|field| field.strip_prefix("local="))
        .expect("local= in the listening line")
        .to_owned();
    for path in ["/healthz", "/user-dashboard"] {
        http_get(&addr, path, None);
        let access = next_matching(&logs, |l| l.contains("bff::access"));
        let duration = access
            .split_whitespace()
            .find_map(|field| field.strip_prefix("duration_ms="))
            .unwrap_or_else(|| panic!("duration_ms in {access}"));
        assert!(duration.parse::<f64>().is_ok(), "{access}");
        let decimals = duration.split_once('.').map_or(0, |(_, d)| d.len());
        assert!(decimals <= 2, "not rounded: {access}");
    }
    stop(running);
}

/// `bff-web --demo` listening on `listen`, and its banner's lines.
fn start_demo(listen: &str) -> (Running, Receiver<String>) {
    let child = Command::new(BIN)
        .arg("--demo")
        .env("BFF_LISTEN", listen)
        .env("BFF_HTTP__DRAIN_DELAY", "0s")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let mut running = Running(child);
    let lines = read_lines(BufReader::new(running.0.stdout.take().expect("stdout")));
    (running, lines)
}

/// The bearer token in the banner's `curl` line.
fn curl_token(curl: &str) -> &str {
    curl.split("Bearer ")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("token in the curl line")
}

#[test]
fn the_demo_mints_tokens_for_any_user_and_scope_and_nothing_else_does() {
    let (mut running, lines) = start_demo("127.0.0.1:0");
    let graphql = next_matching(&lines, |l| l.starts_with("GraphQL:"));
    let tokens = next_matching(&lines, |l| l.starts_with("Tokens:"));
    let status = next_matching(&lines, |l| l.starts_with("Status:"));
    assert!(graphql.contains("/graphql"), "{graphql}");
    assert!(status.contains("/status"), "{status}");
    let addr = tokens
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("an address in the banner")
        .to_owned();

    let issued = json_of(&http_get(&addr, "/demo/token?sub=u2&scope=", None));
    assert_eq!(issued["sub"], "u2");
    assert_eq!(issued["scope"], "");
    assert_eq!(issued["tokenType"], "Bearer");
    let token = issued["accessToken"].as_str().expect("a token");
    let dashboard = http_get(&addr, "/user-dashboard", Some(token));
    assert!(dashboard.starts_with("HTTP/1.1 200"), "{dashboard}");
    assert_eq!(json_of(&dashboard)["profile"]["id"], "u2");
    let order = r#"{"items": [{"sku": "sku-mug", "quantity": 1}]}"#;
    let refused = http_post_json(&addr, "/orders", token, "demo-token-1", order);
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    assert_eq!(json_of(&refused)["error"]["code"], "forbidden");

    let default = json_of(&http_get(&addr, "/demo/token", None));
    assert_eq!(
        (&default["sub"], &default["scope"]),
        (&"u1".into(), &"orders:write".into())
    );
    let writer = default["accessToken"].as_str().expect("a token");
    let placed = http_post_json(&addr, "/orders", writer, "demo-token-2", order);
    assert!(placed.starts_with("HTTP/1.1 201"), "{placed}");

    for bad in [
        "/demo/token?sub=..",
        "/demo/token?sub=a%2Fb%0A",
        "/demo/token?scope=a%22b",
        "/demo/token?user=u2",
    ] {
        let reply = http_get(&addr, bad, None);
        assert!(reply.starts_with("HTTP/1.1 400"), "{bad}: {reply}");
        assert_eq!(json_of(&reply)["error"]["code"], "bad_request", "{bad}");
    }
    terminate(&running.0);
    assert!(running.0.wait().expect("exits").success());

    let (running, addr) = start_configured_by_env(&[]);
    let reply = http_get(&addr, "/demo/token?sub=u2", None);
    assert!(
        reply.starts_with("HTTP/1.1 404"),
        "outside the demo: {reply}"
    );
    stop(running);
}

#[test]
fn a_demo_listening_beyond_loopback_serves_but_hands_out_no_tokens() {
    // As in a container: `0.0.0.0` chosen by the environment is kept (a
    // default one would move to loopback), and `/demo/token` is off.
    let (running, lines) = start_demo("0.0.0.0:0");
    let banner = next_matching(&lines, |l| l.contains("running in demo mode"));
    let port = banner
        .split("http://0.0.0.0:")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("listening on 0.0.0.0: {banner}"))
        .to_owned();
    let tokens = next_matching(&lines, |l| l.starts_with("Tokens:"));
    assert!(tokens.contains("off"), "{tokens}");
    let curl = next_matching(&lines, |l| l.starts_with("curl "));
    let token = curl_token(&curl);
    let addr = format!("127.0.0.1:{port}");
    let dashboard = http_get(&addr, "/user-dashboard", Some(token));
    assert!(dashboard.starts_with("HTTP/1.1 200"), "{dashboard}");
    let reply = http_get(&addr, "/demo/token?sub=u2", None);
    assert!(reply.starts_with("HTTP/1.1 404"), "{reply}");
    stop(running);
}

#[test]
fn the_demo_refuses_a_token_key_it_would_override() {
    let output = Command::new(BIN)
        .arg("--demo")
        .env("BFF_LISTEN", "127.0.0.1:0")
        .env("BFF_AUTH__HS256_SECRET", SECRET)
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("BFF_AUTH__HS256_SECRET"), "{stderr}");
}

/// SIGTERM, then a clean exit.
fn stop(mut running: Running) {
    terminate(&running.0);
    assert!(
        running.0.wait().expect("exits").success(),
        "SIGTERM should stop it cleanly"
    );
}

#[test]
fn demo_mode_prints_a_working_curl_line_and_stops_on_sigterm() {
    let child = Command::new(BIN)
        .arg("--demo")
        .env("BFF_LISTEN", "127.0.0.1:0")
        .env("BFF_HTTP__DRAIN_DELAY", "0s")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let mut running = Running(child);
    let stdout = BufReader::new(running.0.stdout.take().expect("stdout"));
    let curl = wait_for_line(stdout, |l| l.starts_with("curl "));
    let token = curl_token(&curl);
    let url = curl.rsplit(' ').next().expect("url in the curl line");
    let (addr, path) = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split_once('/'))
        .expect("http URL");

    let reply = http_get(addr, &format!("/{path}"), Some(token));
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains(r#""profile":{"id":"u1""#), "{reply}");
    assert!(reply.contains(r#""degraded":[]"#), "{reply}");

    terminate(&running.0);
    assert!(
        running.0.wait().expect("exits").success(),
        "SIGTERM should stop it cleanly"
    );
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Sends `count` requests with distinct random tokens over one keep-alive
/// connection; every one must be refused with 401.
fn flood(addr: &str, count: usize, seed: u64) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // One write per request and no Nagle delay: otherwise each request
    // waits on a delayed ACK and the flood measures TCP, not the gateway.
    stream.set_nodelay(true).expect("nodelay");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut state = seed;
    for _ in 0..count {
        // xorshift: cheap distinct bytes for the payload and signature.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let token = format!(
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1{state:016x}In0.{:016x}{state:016x}",
            state.rotate_left(7)
        );
        let request = format!(
            "GET /user-dashboard HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).expect("write");
        let mut status = String::new();
        reader.read_line(&mut status).expect("status line");
        assert!(status.starts_with("HTTP/1.1 401"), "{status}");
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("header");
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().expect("length");
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("body");
    }
}

#[test]
fn a_flood_of_distinct_bad_tokens_leaves_memory_at_baseline() {
    const CLIENTS: usize = 8;
    const TOTAL: usize = 100_000;
    let (running, addr) = start_configured_by_env(&[
        // Every token is verified, none is stopped early by the IP quota.
        ("BFF_RATE_LIMIT__PER_IP_PER_SECOND", "1000000"),
        ("BFF_RATE_LIMIT__PER_IP_BURST", "1000000"),
        // Refused tokens log at debug; keep the flood's stderr quiet.
        ("RUST_LOG", "warn,bff_core::run=info"),
    ]);
    let pid = running.0.id();

    let run = |total: usize, seed: u64| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let addr = addr.clone();
                std::thread::spawn(move || flood(&addr, total / CLIENTS, seed + i as u64 * 7919))
            })
            .collect();
        for client in clients {
            client.join().expect("client thread");
        }
    };
    run(4_000, 1);
    let baseline = rss_kib(pid);
    run(TOTAL, 1_000_003);
    let after = rss_kib(pid);
    std::thread::sleep(Duration::from_secs(1));
    let settled = rss_kib(pid);
    eprintln!(
        "bff-web RSS: baseline {baseline} KiB, after {TOTAL} bad tokens {after} KiB, 1 s later {settled} KiB"
    );
    assert!(
        settled <= baseline + 8 * 1024,
        "memory grew with distinct tokens: {baseline} KiB -> {settled} KiB"
    );
    stop(running);
}

#[test]
fn sigterm_fails_readiness_first_then_refuses_new_connections() {
    let (mut running, addr) = start_configured_by_env(&[("BFF_HTTP__DRAIN_DELAY", "1s")]);
    assert!(http_get(&addr, "/readyz", None).starts_with("HTTP/1.1 200"));

    terminate(&running.0);
    std::thread::sleep(Duration::from_millis(300));
    // Still accepting, but no longer ready: load balancers drain it.
    let reply = http_get(&addr, "/readyz", None);
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(reply.contains("not_ready"), "{reply}");
    assert!(http_get(&addr, "/healthz", None).starts_with("HTTP/1.1 200"));

    std::thread::sleep(Duration::from_millis(1200));
    assert!(
        TcpStream::connect(&addr).is_err(),
        "new connections are refused after the delay"
    );
    assert!(running.0.wait().expect("exits").success());
}

/// A GET with extra headers over HTTP/1.1; returns the whole reply.
fn http_post_json(addr: &str, path: &str, token: &str, key: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Idempotency-Key: {key}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("read");
    reply
}

/// The JSON body of a raw HTTP reply.
fn json_of(reply: &str) -> serde_json::Value {
    let body = reply.split("\r\n\r\n").nth(1).expect("a body");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {reply}"))
}

fn http_get_with(addr: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n"
    )
    .expect("write");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("read");
    reply
}

/// An HS256 token for `sub`, signed with the binary's test secret.
fn token_for(sub: &str) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 3600;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({"sub": sub, "scope": "", "exp": exp}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("token")
}

#[test]
fn access_logs_are_json_lines_without_tokens_or_secrets() {
    let (running, addr, logs) = start_capturing_logs(&[]);
    let token = token_for("alice");
    let auth = format!("Bearer {token}");
    // Upstreams unreachable: a 503 with the contract body, still logged.
    let reply = http_get_with(&addr, "/user-dashboard", &[("Authorization", &auth)]);
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    let forged = format!("Bearer {}x", token);
    let reply = http_get_with(&addr, "/user-dashboard", &[("Authorization", &forged)]);
    assert!(reply.starts_with("HTTP/1.1 401"), "{reply}");
    let reply = http_get_with(&addr, "/no/such/route/42", &[]);
    assert!(reply.starts_with("HTTP/1.1 404"), "{reply}");
    stop(running);

    let lines: Vec<String> = logs.try_iter().collect();
    let mut access = Vec::new();
    for line in &lines {
        let entry: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(!line.contains(&token), "a log line holds the token: {line}");
        assert!(
            !line.contains(SECRET),
            "a log line holds the secret: {line}"
        );
        if entry["target"] == "bff::access" {
            access.push(entry);
        }
    }
    let summary: Vec<(String, u64, String)> = access
        .iter()
        .map(|e| {
            (
                e["route"].as_str().expect("route").to_owned(),
                e["status"].as_u64().expect("status"),
                e["subject"].as_str().expect("subject").to_owned(),
            )
        })
        .collect();
    let alice = {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(b"alice");
        digest[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(
        summary,
        [
            ("/user-dashboard".to_owned(), 503, alice),
            ("/user-dashboard".to_owned(), 401, String::new()),
            // The raw path never appears: unmatched routes share one label.
            ("unmatched".to_owned(), 404, String::new()),
        ]
    );
    for entry in &access {
        assert_eq!(entry["method"], "GET");
        assert!(entry["duration_ms"].as_f64().is_some(), "{entry}");
        assert_eq!(
            entry["request_id"].as_str().map(str::len),
            Some(32),
            "{entry}"
        );
        assert_eq!(entry["level"], "INFO");
    }
}

/// A local OTLP/HTTP collector: stores every JSON export it receives.
struct Collector {
    addr: std::net::SocketAddr,
    exports: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

impl Collector {
    async fn start() -> Self {
        use axum::routing::post;
        let exports = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let store = exports.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            post(move |body: axum::body::Bytes| {
                let store = store.clone();
                async move {
                    let export: serde_json::Value =
                        serde_json::from_slice(&body).expect("OTLP JSON");
                    store.lock().expect("lock").push(export);
                    "{}"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, exports }
    }

    /// Every exported span.
    fn spans(&self) -> Vec<serde_json::Value> {
        let exports = self.exports.lock().expect("lock");
        let mut spans = Vec::new();
        for export in exports.iter() {
            for resource in export["resourceSpans"].as_array().into_iter().flatten() {
                for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                    spans.extend(scope["spans"].as_array().into_iter().flatten().cloned());
                }
            }
        }
        spans
    }
}

#[test]
fn traces_continue_the_client_and_reach_an_otlp_collector() {
    use bff_testkit::Service;
    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const CLIENT_SPAN: &str = "00f067aa0ba902b7";
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (upstreams, collector) = runtime.block_on(async {
        let upstreams = bff_testkit::DemoUpstreams::start()
            .await
            .expect("upstreams");
        (upstreams, Collector::start().await)
    });
    let endpoint = format!("http://{}", collector.addr);
    let urls = [
        upstreams.url(Service::Users),
        upstreams.url(Service::Orders),
        upstreams.url(Service::Notifications),
    ];
    let (running, addr) = start_configured_by_env(&[
        ("BFF_UPSTREAMS__USERS__URL", &urls[0]),
        ("BFF_UPSTREAMS__ORDERS__URL", &urls[1]),
        ("BFF_UPSTREAMS__NOTIFICATIONS__URL", &urls[2]),
        ("BFF_TELEMETRY__OTLP_ENDPOINT", &endpoint),
    ]);
    let auth = format!("Bearer {}", token_for("u1"));
    let traceparent = format!("00-{TRACE_ID}-{CLIENT_SPAN}-01");
    let reply = http_get_with(
        &addr,
        "/user-dashboard",
        &[("Authorization", &auth), ("traceparent", &traceparent)],
    );
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    // Shutting down flushes the exporter.
    stop(running);

    let spans = collector.spans();
    let server = spans
        .iter()
        .find(|s| s["name"] == "GET /user-dashboard")
        .unwrap_or_else(|| panic!("no request span in {spans:#?}"));
    assert_eq!(server["traceId"], TRACE_ID);
    assert_eq!(server["parentSpanId"], CLIENT_SPAN);
    let server_span = server["spanId"].as_str().expect("span id");
    for service in [Service::Users, Service::Orders, Service::Notifications] {
        let name = format!("call {}", service.as_str());
        let call = spans
            .iter()
            .find(|s| s["name"] == name.as_str())
            .unwrap_or_else(|| panic!("no `{name}` span in {spans:#?}"));
        assert_eq!(call["traceId"], TRACE_ID, "{call}");
        assert_eq!(call["parentSpanId"], server_span, "{call}");
        // The upstream was told this very span is its parent.
        let received = upstreams.control().requests(service);
        let sent = received
            .last()
            .and_then(|r| r.headers.get("traceparent"))
            .and_then(|v| v.to_str().ok())
            .expect("traceparent upstream")
            .to_owned();
        let call_span = call["spanId"].as_str().expect("span id");
        assert_eq!(sent, format!("00-{TRACE_ID}-{call_span}-01"));
    }
    drop(upstreams);
    drop(runtime);
}

#[test]
fn a_degraded_part_is_reported_in_the_access_line_not_as_a_warn_per_request() {
    use bff_testkit::Service;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let upstreams = runtime.block_on(async {
        bff_testkit::DemoUpstreams::start()
            .await
            .expect("upstreams")
    });
    // Notifications unreachable: every dashboard degrades that part.
    let (running, addr, logs) = start_capturing_logs(&[
        ("BFF_UPSTREAMS__USERS__URL", &upstreams.url(Service::Users)),
        (
            "BFF_UPSTREAMS__ORDERS__URL",
            &upstreams.url(Service::Orders),
        ),
        ("BFF_UPSTREAMS__NOTIFICATIONS__RETRY__MAX_RETRIES", "0"),
        ("BFF_RATE_LIMIT__BURST", "100"),
    ]);
    let auth = format!("Bearer {}", token_for("u1"));
    for _ in 0..30 {
        let reply = http_get_with(&addr, "/user-dashboard", &[("Authorization", &auth)]);
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(
            reply.contains(r#""degraded":[{"source":"notifications""#),
            "{reply}"
        );
    }
    stop(running);
    let entries: Vec<serde_json::Value> = logs
        .try_iter()
        .map(|line| serde_json::from_str(&line).expect("a JSON log line"))
        .collect();
    let dashboards: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|e| e["target"] == "bff::access" && e["route"] == "/user-dashboard")
        .collect();
    assert_eq!(dashboards.len(), 30);
    for entry in &dashboards {
        assert_eq!(
            entry["degraded"], "notifications:upstream_unavailable",
            "{entry}"
        );
    }
    let warnings: Vec<&serde_json::Value> =
        entries.iter().filter(|e| e["level"] == "WARN").collect();
    // The circuit opening is worth one line; the 30 degraded replies none.
    assert!(warnings.len() <= 1, "{warnings:#?}");
}

#[test]
fn a_broken_endpoint_file_stops_the_start_naming_file_and_key() {
    const ME: &str = "[calls.me]\nupstream = \"users\"\npath = \"/users/{$auth.sub}\"\n";
    let cases = [
        (
            "cycle",
            "route = \"/loop\"\n[calls.a]\nupstream = \"users\"\npath = \"/users/{$b.id}\"\n\
             [calls.b]\nupstream = \"users\"\npath = \"/users/{$a.id}\"\n\
             [reply]\nshape = \"{}\"\n"
                .to_owned(),
            "calls.a",
            "cycle",
        ),
        (
            "unknown-upstream",
            "route = \"/stock\"\n[calls.stock]\nupstream = \"inventory\"\npath = \"/items\"\n\
             [reply]\nshape = \"{}\"\n"
                .to_owned(),
            "calls.stock.upstream",
            "inventory",
        ),
        (
            "bad-template",
            "route = \"/me\"\n[calls.me]\nupstream = \"users\"\npath = \"/users/u{$auth.sub}\"\n\
             [reply]\nshape = \"{}\"\n"
                .to_owned(),
            "calls.me.path",
            "placeholder",
        ),
        (
            "bad-expression",
            format!("route = \"/me\"\n{ME}[reply]\nshape = \"{{name: $me.name,\"\n"),
            "reply.shape",
            "expression",
        ),
        (
            "not-in-the-contract",
            "route = \"/me\"\n[calls.me]\nupstream = \"users\"\npath = \"/usrs/{$auth.sub}\"\n\
             [reply]\nshape = \"{}\"\n"
                .to_owned(),
            "calls.me.path",
            "OpenAPI",
        ),
    ];
    /// Starts the binary (`--check` or not) on one endpoint file: its exit
    /// code and stderr.
    fn start_on(args: &[&str], file: &str, text: &str) -> (Option<i32>, String) {
        let dir = bff_testkit::harness::endpoint_dir(&[(file, text)]);
        let output = Command::new(BIN)
            .args(args)
            .env("BFF_LISTEN", "127.0.0.1:0")
            .env("BFF_UPSTREAMS__USERS__URL", "http://127.0.0.1:9")
            .env("BFF_UPSTREAMS__ORDERS__URL", "http://127.0.0.1:9")
            .env("BFF_UPSTREAMS__NOTIFICATIONS__URL", "http://127.0.0.1:9")
            .env("BFF_AUTH__HS256_SECRET", SECRET)
            .env("BFF_ENDPOINTS__DIR", &dir)
            .output()
            .expect("binary runs");
        let _ = std::fs::remove_dir_all(dir);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status.code(), stderr)
    }
    for (name, text, key, says) in cases {
        let file = format!("{name}.toml");
        let (code, stderr) = start_on(&[], &file, &text);
        assert_eq!(code, Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains(&file) && stderr.contains(key) && stderr.contains(says),
            "{name}: stderr should name {file}, `{key}` and say `{says}`:\n{stderr}"
        );
    }
    // A route a Rust handler serves: refused, not a crash.
    let text = format!("route = \"/graphql\"\n{ME}[reply]\nshape = \"{{}}\"\n");
    let (code, stderr) = start_on(&["--check"], "graphql.toml", &text);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("routes conflict") && stderr.contains("/graphql"),
        "{stderr}"
    );
}

/// A users service answering every `GET /users/<id>` with a profile after
/// `delay` milliseconds (changeable while it runs), keeping connections
/// alive as the BFF's pool expects.
struct SlowUsers {
    addr: String,
    delay_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl SlowUsers {
    fn start() -> Self {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let delay_ms = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let delay = delay_ms.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                let delay = delay.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                    loop {
                        let mut line = String::new();
                        let mut request_line = String::new();
                        // The request line, then headers up to a blank line.
                        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                            return;
                        }
                        while reader.read_line(&mut line).unwrap_or(0) > 2 {
                            line.clear();
                        }
                        let id = request_line
                            .split_whitespace()
                            .nth(1)
                            .and_then(|path| path.strip_prefix("/users/"))
                            .unwrap_or("u1")
                            .to_owned();
                        std::thread::sleep(Duration::from_millis(delay.load(Ordering::SeqCst)));
                        let body = serde_json::json!({
                            "id": id, "name": "Ada Lovelace", "email": "ada@example.com",
                            "avatarUrl": "https://example.com/ada.png", "tier": "pro",
                            "createdAt": "2024-01-01T00:00:00Z"
                        })
                        .to_string();
                        let reply = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if stream.write_all(reply.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { addr, delay_ms }
    }
}

/// `/readyz`'s `config` object.
fn config_status(addr: &str) -> serde_json::Value {
    let reply = http_get(addr, "/readyz", None);
    json_of(&reply)["config"].clone()
}

/// Waits (at most ten seconds) until `/readyz` says `done`.
fn wait_for_config(addr: &str, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = config_status(addr);
        if done(&status) {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no reload within ten seconds: {status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn header<'a>(reply: &'a str, name: &str) -> Option<&'a str> {
    reply
        .split("\r\n\r\n")
        .next()?
        .lines()
        .find_map(|line| {
            line.split_once(':')
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        })
        .map(|(_, value)| value.trim())
}

#[test]
fn a_reload_applies_changes_keeps_the_old_config_on_errors_and_finishes_requests_in_flight() {
    let users = SlowUsers::start();
    let dir = std::env::temp_dir().join(format!("bff-web-reload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a directory");
    let config = dir.join("bff-web.toml");
    // Slow enough calls may take their time (the in-flight request below).
    let quota = |burst: u32| {
        format!(
            "[rate_limit]\nper_second = 1\nburst = {burst}\n\
             [http]\nupstream_deadline = \"5s\"\n[upstreams.users]\ntimeout = \"5s\"\n"
        )
    };
    std::fs::write(&config, quota(2)).expect("config");
    let endpoints = bff_testkit::harness::endpoint_dir(bff_web::ENDPOINTS);
    let users_url = format!("http://{}", users.addr);
    let (running, addr, _logs) = start_with_args(
        &["--config", &config.display().to_string()],
        &[
            ("BFF_UPSTREAMS__USERS__URL", &users_url),
            ("BFF_ENDPOINTS__DIR", &endpoints.display().to_string()),
        ],
    );
    let pid = running.0.id();
    let token = token_for("u1");
    let dashboard = || http_get(&addr, "/user-dashboard", Some(&token));
    assert_eq!(config_status(&addr)["generation"], 1);

    // The quota from the file: a burst of two.
    for _ in 0..2 {
        let reply = dashboard();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert_eq!(header(&reply, "ratelimit-limit"), Some("2"));
    }
    assert!(dashboard().starts_with("HTTP/1.1 429"));

    // A changed quota applies without a restart: the file is watched.
    std::fs::write(&config, quota(50)).expect("config");
    wait_for_config(&addr, |c| c["generation"] == 2);
    let reply = dashboard();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert_eq!(header(&reply, "ratelimit-limit"), Some("50"));

    // A broken file changes nothing and is reported.
    std::fs::write(&config, "[rate_limit]\nburst = 0\n").expect("config");
    let status = wait_for_config(&addr, |c| !c["lastReloadError"].is_null());
    assert_eq!(status["generation"], 2, "{status}");
    assert!(
        status["lastReloadError"]
            .as_str()
            .is_some_and(|e| e.contains("rate_limit.burst")),
        "{status}"
    );
    let reply = dashboard();
    assert_eq!(header(&reply, "ratelimit-limit"), Some("50"), "{reply}");
    let metrics = http_get(&addr, "/metrics", None);
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("bff_config_reloads_total")
                && l.contains("result=\"error\"")
                && l.ends_with(" 1")),
        "{metrics}"
    );

    // Mended, then a new endpoint file: a new route, without a restart.
    std::fs::write(&config, quota(50)).expect("config");
    wait_for_config(&addr, |c| {
        c["generation"] == 3 && c["lastReloadError"].is_null()
    });
    assert!(http_get(&addr, "/whoami", Some(&token)).starts_with("HTTP/1.1 404"));
    let whoami = "route = \"/whoami\"\n[calls.me]\nupstream = \"users\"\npath = \"/users/{$auth.sub}\"\n\
                  [reply]\nshape = \"{id: $me.id}\"\n";
    std::fs::write(endpoints.join("whoami.toml"), whoami).expect("endpoint file");
    wait_for_config(&addr, |c| c["generation"] == 4);
    let reply = http_get(&addr, "/whoami", Some(&token));
    assert!(reply.ends_with(r#"{"id":"u1","degraded":[]}"#), "{reply}");

    // A request in flight across a reload (SIGHUP) completes.
    users
        .delay_ms
        .store(1200, std::sync::atomic::Ordering::SeqCst);
    let in_flight = {
        let (addr, token) = (addr.clone(), token.clone());
        std::thread::spawn(move || http_get(&addr, "/whoami", Some(&token)))
    };
    std::thread::sleep(Duration::from_millis(300));
    let hangup = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(hangup.success());
    wait_for_config(&addr, |c| c["generation"] == 5);
    assert!(
        !in_flight.is_finished(),
        "the request was still in flight at the swap"
    );
    let reply = in_flight.join().expect("the request thread");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.ends_with(r#"{"id":"u1","degraded":[]}"#), "{reply}");
    assert_eq!(running.0.id(), pid, "the same process served throughout");
    stop(running);
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(endpoints);
}

#[test]
fn the_shared_state_is_logged_at_start_without_its_password_and_redis_down_is_not_fatal() {
    let mut command = Command::new(BIN);
    command
        .env("BFF_LISTEN", "127.0.0.1:0")
        .env("BFF_HTTP__DRAIN_DELAY", "0s")
        .env("BFF_UPSTREAMS__USERS__URL", "http://127.0.0.1:9")
        .env("BFF_UPSTREAMS__ORDERS__URL", "http://127.0.0.1:9")
        .env("BFF_UPSTREAMS__NOTIFICATIONS__URL", "http://127.0.0.1:9")
        .env("BFF_AUTH__HS256_SECRET", SECRET)
        // Nothing listens on port 9: the BFF starts all the same.
        .env(
            "BFF_SHARED_STATE__REDIS_URL",
            "redis://:redis-password-never-logged@127.0.0.1:9",
        );
    let child = command.stderr(Stdio::piped()).spawn().expect("starts");
    let mut running = Running(child);
    let logs = read_lines(BufReader::new(running.0.stderr.take().expect("stderr")));
    let shared = next_matching(&logs, |l| l.contains("shared state in Redis"));
    assert!(shared.contains("127.0.0.1:9"), "{shared}");
    let listening = next_matching(&logs, |l| l.contains("listening"));
    let line: serde_json::Value = serde_json::from_str(&listening).expect("a JSON log line");
    let addr = line["local"].as_str().expect("address").to_owned();
    let reply = http_get(&addr, "/readyz", None);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    stop(running);
    for line in logs.try_iter().chain([shared, listening]) {
        assert!(!line.contains("redis-password-never-logged"), "{line}");
    }
}
