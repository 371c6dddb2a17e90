//! The `bff-web` binary as an operator runs it: configuration errors name
//! the key, environment variables alone configure it, `--demo` serves a
//! working dashboard and SIGTERM stops it cleanly.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_bff-web");
const SECRET: &str = "binary-test-secret-of-32-bytes-or-more";

/// Kills the child if a test fails before stopping it.
struct Running(Child);

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
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if pred(&line) => return line.trim().to_owned(),
            Ok(_) => {}
            Err(_) => panic!("the binary did not print the expected line within a minute"),
        }
    }
}

/// A plain HTTP/1.1 GET; returns the whole reply.
fn http_get(addr: &str, path: &str, token: Option<&str>) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .expect("write");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("read");
    reply
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

/// Starts the binary configured by environment variables alone (plus
/// `extra`), on an ephemeral port; returns it and its address.
fn start_configured_by_env(extra: &[(&str, &str)]) -> (Running, String) {
    let child = Command::new(BIN)
        .env("BFF_LISTEN", "127.0.0.1:0")
        .env("BFF_HTTP__DRAIN_DELAY", "0s")
        .env("BFF_UPSTREAMS__USERS__URL", "http://127.0.0.1:9")
        .env("BFF_UPSTREAMS__ORDERS__URL", "http://127.0.0.1:9")
        .env("BFF_UPSTREAMS__NOTIFICATIONS__URL", "http://127.0.0.1:9")
        .env("BFF_AUTH__HS256_SECRET", SECRET)
        .envs(extra.iter().copied())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let mut running = Running(child);
    let stderr = BufReader::new(running.0.stderr.take().expect("stderr"));
    let addr = wait_for_line(stderr, |l| l.contains("listening"))
        .split_whitespace()
        .find_map(|w| w.strip_prefix("local=").map(str::to_owned))
        .expect("address in the listening line");
    (running, addr)
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
    let token = curl
        .split("Bearer ")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("token in the curl line");
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
