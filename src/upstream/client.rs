//! The HTTP client every upstream call goes out on: hyper-util's pooled
//! client, one per upstream, over TCP or TLS.
//!
//! hyper-util directly rather than reqwest: the call path already does
//! what reqwest adds (its own timeout, redirect and proxy policies, a URL
//! parsed per request), and those cost about 40 000 instructions per
//! upstream call, more than the rest of the call path together. What is
//! kept from reqwest's behaviour: no redirect is followed (an upstream's
//! redirect could send the caller's `Authorization` elsewhere), no proxy
//! (upstreams are internal services), `TCP_NODELAY`, the connect timeout
//! and the idle pool bounds, TLS with the platform's verifier, HTTP/2 when
//! a TLS upstream offers it, and a request that was never written on a
//! pooled connection the peer closed is sent again on a fresh one.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::config::UpstreamSettings;

/// One upstream's pooled client. Cloning shares the pool.
#[derive(Debug, Clone)]
pub struct UpstreamClient(Client<HttpsConnector<HttpConnector>, Full<Bytes>>);

/// The TLS setup failed (the platform's root store could not be read).
#[derive(Debug, thiserror::Error)]
#[error("cannot set up TLS for upstream calls")]
pub struct ClientError(#[source] std::io::Error);

impl UpstreamClient {
    /// A client with `settings`' connect timeout and idle pool bounds.
    pub fn new(settings: &UpstreamSettings) -> Result<Self, ClientError> {
        let mut tcp = HttpConnector::new();
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(settings.connect_timeout));
        // The TLS connector below takes `https`; plain `http` passes through.
        tcp.enforce_http(false);
        let provider = tokio_rustls::rustls::crypto::aws_lc_rs::default_provider();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_platform_verifier(provider)
            .map_err(ClientError)?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(tcp);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(settings.pool_idle_timeout)
            .pool_max_idle_per_host(settings.pool_max_idle_per_host)
            .build(connector);
        Ok(Self(client))
    }

    /// Sends `request`; the reply's head once it has arrived.
    pub(super) async fn send(
        &self,
        request: hyper::Request<Full<Bytes>>,
    ) -> Result<hyper::Response<Incoming>, hyper_util::client::legacy::Error> {
        self.0.request(request).await
    }
}

/// A default client, for unit tests of the layers above it.
#[cfg(test)]
pub(super) fn for_tests() -> UpstreamClient {
    UpstreamClient::new(&UpstreamSettings::default()).expect("a client")
}
