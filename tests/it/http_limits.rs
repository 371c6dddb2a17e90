//! The HTTP door: header limits, slow clients, connection cap, CORS,
//! security headers, client IPs behind proxies, the per-IP limit.

use std::time::Duration;

use crate::support::{
    Bff, TestApp, assert_error_body, closed_within, exchange, json_body, raw_http,
};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

#[tokio::test]
async fn two_hundred_headers_are_431_before_anything_else() {
    let app = TestApp::spawn(Bff::Web).await;
    let mut request = app
        .http
        .get(format!("{}/user-dashboard", app.base))
        .bearer_auth(app.token("u1", ""));
    for i in 0..200 {
        request = request.header(format!("x-filler-{i}"), "1");
    }
    let (status, _, body) = json_body(request.send().await.expect("sent")).await;
    assert_eq!(status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_error_body(&body, "headers_too_large");
    assert_eq!(app.total_calls(), 0);
}

#[tokio::test]
async fn oversized_headers_are_431() {
    let app = TestApp::spawn(Bff::Mobile).await;
    let response = app
        .http
        .get(format!("{}/user-dashboard", app.base))
        .bearer_auth(app.token("u1", ""))
        .header("cookie", "a".repeat(20 * 1024))
        .send()
        .await
        .expect("sent");
    let (status, _, body) = json_body(response).await;
    assert_eq!(status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_error_body(&body, "headers_too_large");
    assert_eq!(app.total_calls(), 0);
}

/// Opens a connection that sends its request line and then one header
/// byte every `every`, never finishing the headers.
async fn slowloris(addr: String, every: Duration) -> bool {
    let Ok(mut stream) = TcpStream::connect(&addr).await else {
        return true;
    };
    if stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .is_err()
    {
        return true;
    }
    let mut buf = [0u8; 512];
    for _ in 0..50 {
        tokio::select! {
            read = stream.read(&mut buf) => {
                // The server answered or closed: the slow client was cut off.
                return matches!(read, Ok(_) | Err(_));
            }
            () = tokio::time::sleep(every) => {
                if stream.write_all(b"a").await.is_err() {
                    return true;
                }
            }
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_closed_while_normal_clients_get_200s() {
    let app = TestApp::builder(Bff::Web)
        .config("[http]\nheader_read_timeout = \"1s\"")
        .spawn()
        .await;
    let slow: Vec<_> = (0..50)
        .map(|_| tokio::spawn(slowloris(app.addr().to_owned(), Duration::from_millis(200))))
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..20 {
        let response = app.get("/user-dashboard", Some(&app.token("u1", ""))).await;
        assert_eq!(response.status(), StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for handle in slow {
        assert!(
            handle.await.expect("slow client task"),
            "a slowloris connection was kept open"
        );
    }
}

#[tokio::test]
async fn a_body_that_never_arrives_times_out_with_408() {
    let app = TestApp::builder(Bff::Web)
        .config("[http]\nrequest_timeout = \"1s\"")
        .spawn()
        .await;
    let token = app.token("u1", "orders:write");
    let partial = format!(
        "POST /orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nIdempotency-Key: k\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"items\":"
    );
    let reply = raw_http(app.addr(), partial.as_bytes(), Duration::from_secs(5)).await;
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("\"code\":\"request_timeout\""), "{reply}");
    assert_eq!(app.total_calls(), 0);
}

#[tokio::test]
async fn connections_over_the_cap_are_closed() {
    let app = TestApp::builder(Bff::Web)
        .config("[http]\nmax_connections = 2")
        .spawn()
        .await;
    let held: Vec<TcpStream> = futures_util_join(app.addr(), 2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = TcpStream::connect(app.addr())
        .await
        .expect("kernel accepts");
    let _ = extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), extra.read(&mut buf))
        .await
        .expect("closed promptly");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "the connection over the cap was served"
    );
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_never_speak_are_closed_at_the_header_timeout() {
    let app = TestApp::builder(Bff::Web)
        .config("[http]\nheader_read_timeout = \"500ms\"")
        .spawn()
        .await;
    let mut silent = futures_util_join(app.addr(), 20).await;
    // Meanwhile a client that speaks is served.
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
    for stream in &mut silent {
        assert!(
            closed_within(stream, Duration::from_secs(5)).await,
            "a connection that sent no byte was kept open"
        );
    }
}

/// A connection from `source`, a loopback address of the test's choice.
async fn connect_from(source: &str, addr: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{source}:0").parse().expect("source address"))
        .expect("bind source");
    socket
        .connect(addr.parse().expect("server address"))
        .await
        .expect("connect")
}

#[tokio::test]
async fn one_address_cannot_hold_every_connection() {
    let app = TestApp::builder(Bff::Web)
        .config("[http]\nmax_connections = 100\nmax_connections_per_ip = 3")
        .spawn()
        .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from("127.0.0.1", app.addr()).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut fourth = connect_from("127.0.0.1", app.addr()).await;
    let _ = fourth.write_all(HEALTHZ).await;
    assert!(
        closed_within(&mut fourth, Duration::from_secs(3)).await,
        "a fourth connection from one address was served"
    );
    // Another address is served while the first holds its cap.
    let mut other = connect_from("127.0.0.2", app.addr()).await;
    let reply = exchange(&mut other, HEALTHZ, Duration::from_secs(3)).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    // A freed slot is given to the next connection.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut again = connect_from("127.0.0.1", app.addr()).await;
    let reply = exchange(&mut again, HEALTHZ, Duration::from_secs(3)).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
}

#[tokio::test]
async fn trusted_proxies_are_exempt_from_the_per_address_cap() {
    let app = TestApp::builder(Bff::Web)
        .config("[http]\nmax_connections_per_ip = 2\ntrusted_proxies = [\"127.0.0.1/32\"]")
        .spawn()
        .await;
    let mut streams = futures_util_join(app.addr(), 5).await;
    for stream in &mut streams {
        let reply = exchange(stream, HEALTHZ, Duration::from_secs(3)).await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    }
}

#[tokio::test]
async fn idle_keep_alive_connections_outlive_the_header_timeout() {
    let app = TestApp::builder(Bff::Web)
        .config("[http]\nheader_read_timeout = \"300ms\"\nkeep_alive_timeout = \"2s\"")
        .spawn()
        .await;
    let mut stream = TcpStream::connect(app.addr()).await.expect("connect");
    let reply = exchange(&mut stream, HEALTHZ, Duration::from_secs(3)).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    // Idle for three header timeouts: still open, and it serves again.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let reply = exchange(&mut stream, HEALTHZ, Duration::from_secs(3)).await;
    assert!(
        reply.starts_with("HTTP/1.1 200"),
        "an idle keep-alive connection was closed at the header timeout: {reply:?}"
    );
    // Past the keep-alive timeout it is closed.
    assert!(
        closed_within(&mut stream, Duration::from_secs(6)).await,
        "an idle connection was kept past keep_alive_timeout"
    );
}

#[tokio::test]
async fn a_half_sent_request_on_a_kept_alive_connection_is_cut_at_the_header_timeout() {
    let app = TestApp::builder(Bff::Web)
        .config("[http]\nheader_read_timeout = \"300ms\"\nkeep_alive_timeout = \"60s\"")
        .spawn()
        .await;
    let mut stream = TcpStream::connect(app.addr()).await.expect("connect");
    let reply = exchange(&mut stream, HEALTHZ, Duration::from_secs(3)).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .expect("write");
    assert!(
        closed_within(&mut stream, Duration::from_secs(10)).await,
        "a half-sent request was given the keep-alive timeout"
    );
}

#[tokio::test]
async fn both_bffs_keep_idle_connections_longer_than_load_balancers_do() {
    for bff in [Bff::Web, Bff::Mobile] {
        let app = TestApp::spawn(bff).await;
        let http = &app.state.config().http;
        assert!(
            http.keep_alive_timeout >= Duration::from_secs(75),
            "{bff:?}: keep_alive_timeout {:?} is under the balancers' 60 s",
            http.keep_alive_timeout
        );
        assert!(http.max_connections_per_ip < http.max_connections);
    }
}

async fn futures_util_join(addr: &str, n: usize) -> Vec<TcpStream> {
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        streams.push(TcpStream::connect(addr).await.expect("connect"));
    }
    streams
}

#[tokio::test]
async fn cors_allows_exactly_the_configured_origins() {
    let app = TestApp::builder(Bff::Web)
        .config("[cors]\nallowed_origins = [\"https://app.example.com\"]")
        .spawn()
        .await;
    let preflight = |origin: &'static str| {
        app.http
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/user-dashboard", app.base),
            )
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let allowed = preflight("https://app.example.com").await.expect("sent");
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let refused = preflight("https://evil.example.com").await.expect("sent");
    assert!(
        !refused
            .headers()
            .contains_key("access-control-allow-origin")
    );
    assert_eq!(app.total_calls(), 0);

    let response = app
        .http
        .get(format!("{}/user-dashboard", app.base))
        .bearer_auth(app.token("u1", ""))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .expect("sent");
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .expect("ascii");
    assert!(exposed.contains("ratelimit-remaining"), "{exposed}");
}

#[tokio::test]
async fn security_headers_are_on_every_reply() {
    let app = TestApp::spawn(Bff::Web).await;
    let ok = app.dashboard(&app.token("u1", "")).await;
    assert_eq!(ok.headers()["x-content-type-options"], "nosniff");
    assert_eq!(ok.headers()["cache-control"], "no-store");
    let unauthorized = app.get("/user-dashboard", None).await;
    assert_eq!(unauthorized.headers()["x-content-type-options"], "nosniff");
    assert_eq!(unauthorized.headers()["cache-control"], "no-store");
    let health = app.get("/healthz", None).await;
    assert_eq!(health.headers()["x-content-type-options"], "nosniff");
    assert!(!health.headers().contains_key("cache-control"));
    let missing = app.get("/nope", None).await;
    assert_eq!(missing.headers()["x-content-type-options"], "nosniff");
}

async fn get_with_xff(app: &TestApp, xff: &str, token: &str) -> StatusCode {
    app.http
        .get(format!("{}/user-dashboard", app.base))
        .bearer_auth(token)
        .header("x-forwarded-for", xff)
        .send()
        .await
        .expect("sent")
        .status()
}

#[tokio::test]
async fn a_spoofed_x_forwarded_for_does_not_escape_the_ip_limit() {
    let app = TestApp::builder(Bff::Web)
        .config("[rate_limit]\nper_ip_per_second = 1\nper_ip_burst = 3")
        .spawn()
        .await;
    let statuses: Vec<StatusCode> = {
        let mut out = Vec::new();
        for i in 0..4 {
            out.push(
                get_with_xff(
                    &app,
                    &format!("198.51.100.{i}"),
                    &app.token(&format!("u{}", i + 1), ""),
                )
                .await,
            );
        }
        out
    };
    assert_eq!(statuses[..3], [StatusCode::OK; 3]);
    assert_eq!(
        statuses[3],
        StatusCode::TOO_MANY_REQUESTS,
        "the header chose the rate-limit key"
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_quota() {
    let app = TestApp::builder(Bff::Web)
        .config("[http]\ntrusted_proxies = [\"127.0.0.1/32\"]\n[rate_limit]\nper_ip_per_second = 1\nper_ip_burst = 3")
        .spawn()
        .await;
    for i in 0..6 {
        let status = get_with_xff(
            &app,
            &format!("198.51.100.{i}"),
            &app.token(&format!("u{}", i + 1), ""),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "client {i}");
    }
    // One forwarded client is still limited on its own.
    let statuses = [
        get_with_xff(&app, "203.0.113.5", &app.token("u1", "")).await,
        get_with_xff(&app, "203.0.113.5", &app.token("u1", "")).await,
        get_with_xff(&app, "203.0.113.5", &app.token("u1", "")).await,
        get_with_xff(&app, "203.0.113.5", &app.token("u1", "")).await,
    ];
    assert_eq!(statuses[3], StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn bad_tokens_are_limited_per_ip_before_verification() {
    let app = TestApp::builder(Bff::Web)
        .config("[rate_limit]\nper_ip_per_second = 1\nper_ip_burst = 5")
        .spawn()
        .await;
    for i in 0..5 {
        let status = app
            .get("/user-dashboard", Some(&format!("garbage-{i}")))
            .await
            .status();
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, headers, body) =
        json_body(app.get("/user-dashboard", Some("garbage-6")).await).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_error_body(&body, "rate_limited");
    assert!(headers.contains_key("retry-after"));
    assert_eq!(app.total_calls(), 0);
}
