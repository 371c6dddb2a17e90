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

/// Reads lines from `reader` until `pred` matches one; returns it.
fn wait_for_line(reader: &mut impl BufRead, pred: impl Fn(&str) -> bool) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("read output");
        assert!(n > 0, "the binary exited before printing the expected line");
        if pred(&line) {
            return line.trim().to_owned();
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
    let child = Command::new(BIN)
        .env("BFF_LISTEN", "127.0.0.1:0")
        .env("BFF_UPSTREAMS__USERS__URL", "http://127.0.0.1:9")
        .env("BFF_UPSTREAMS__ORDERS__URL", "http://127.0.0.1:9")
        .env("BFF_UPSTREAMS__NOTIFICATIONS__URL", "http://127.0.0.1:9")
        .env("BFF_AUTH__HS256_SECRET", SECRET)
        .env("BFF_UPSTREAMS__ALL__TIMEOUT", "1500ms")
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let mut running = Running(child);
    let mut stderr = BufReader::new(running.0.stderr.take().expect("stderr"));
    let line = wait_for_line(&mut stderr, |l| l.contains("listening"));
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("local="))
        .expect("address in the listening line");
    let reply = http_get(addr, "/readyz", None);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    terminate(&running.0);
    assert!(running.0.wait().expect("exits").success());
}

#[test]
fn demo_mode_prints_a_working_curl_line_and_stops_on_sigterm() {
    let child = Command::new(BIN)
        .arg("--demo")
        .env("BFF_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let mut running = Running(child);
    let mut stdout = BufReader::new(running.0.stdout.take().expect("stdout"));
    let curl = wait_for_line(&mut stdout, |l| l.starts_with("curl "));
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
