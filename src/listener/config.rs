//! `http.*`: the BFF's own HTTP server, from accept to the last byte of
//! a reply.

use std::num::NonZeroUsize;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::config::types::{ByteSize, positive_bytes, positive_duration};

/// Below 1 KiB of headers, ordinary browsers' requests would be refused.
fn at_least_1_kib<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ByteSize, D::Error> {
    let value = ByteSize::deserialize(deserializer)?;
    if value.get() < 1024 {
        return Err(serde::de::Error::custom("must be at least 1024"));
    }
    Ok(value)
}

/// The BFF's own HTTP server.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Largest request body accepted (bytes); larger is `413`.
    #[serde(with = "positive_bytes")]
    pub body_limit: ByteSize,
    /// Whole-request deadline, reading the body included: a body that
    /// trickles in slower than this gets `408`.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// On SIGTERM, how long in-flight requests may take to finish once
    /// the listener is closed.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// On SIGTERM, how long `/readyz` fails while new requests are still
    /// accepted, so load balancers stop sending before the listener closes.
    #[serde(with = "humantime_serde")]
    pub drain_delay: Duration,
    /// Every upstream call made for one request finishes within this time
    /// from the request's arrival: each call's timeout shrinks to the time
    /// left, and an optional part still missing then is dropped.
    #[serde(with = "humantime_serde")]
    pub upstream_deadline: Duration,
    /// Time a client has to send its first request's headers from accept
    /// (a connection that never speaks is closed at this), and each later
    /// request's headers from its first byte (slowloris).
    #[serde(with = "positive_duration")]
    pub header_read_timeout: Duration,
    /// How long an idle keep-alive connection is kept. Longer than the
    /// 60 s idle timeout of common cloud load balancers, so the balancer,
    /// not the gateway, closes first (the other way round it sends
    /// requests on connections the gateway is closing: sporadic 502s).
    #[serde(with = "positive_duration")]
    pub keep_alive_timeout: Duration,
    /// Most request headers; more is `431`.
    pub max_headers: NonZeroUsize,
    /// Largest total size of the request headers in bytes; larger is `431`.
    #[serde(deserialize_with = "at_least_1_kib")]
    pub max_header_bytes: ByteSize,
    /// Most connections open at once; further ones are closed on accept.
    pub max_connections: NonZeroUsize,
    /// Most connections open at once from one client address, so one host
    /// cannot hold the whole `max_connections`; addresses in
    /// `trusted_proxies` are exempt.
    pub max_connections_per_ip: NonZeroUsize,
    /// Proxies (addresses or CIDR ranges) whose `Forwarded` /
    /// `X-Forwarded-For` name the client; from anyone else they are ignored.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Replies smaller than this (bytes) are sent uncompressed: below
    /// about a packet, compression costs CPU and saves nothing.
    pub compression_min_bytes: ByteSize,
    /// Serves `GET /status` (a live page) and `GET /status.json`, exposed
    /// like `/readyz`; off hides both (`404`).
    pub status_page: bool,
    /// Serves `GET /openapi.json` (no token: it holds no data); off: `404`.
    pub openapi: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit: ByteSize::kib(64),
            request_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(20),
            drain_delay: Duration::from_secs(5),
            upstream_deadline: Duration::from_millis(1500),
            header_read_timeout: Duration::from_secs(5),
            keep_alive_timeout: Duration::from_secs(75),
            max_headers: NonZeroUsize::new(64).expect("not zero"),
            max_header_bytes: ByteSize::kib(16),
            max_connections: NonZeroUsize::new(4096).expect("not zero"),
            max_connections_per_ip: NonZeroUsize::new(256).expect("not zero"),
            trusted_proxies: Vec::new(),
            compression_min_bytes: ByteSize::kib(1),
            status_page: true,
            openapi: true,
        }
    }
}
