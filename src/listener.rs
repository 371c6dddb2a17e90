//! Accepting connections: HTTP/1.1 and HTTP/2 on hyper-util, with the
//! connection-level limits axum's `serve` does not expose.
//!
//! A connection over `http.max_connections` is closed on accept. A client
//! gets `http.header_read_timeout` to send its headers (slowloris). hyper's
//! own header limits sit well above the configured ones, so that within
//! them the gateway itself answers `431` with the contract's body
//! (`header_limits`); past them hyper closes the connection. On shutdown
//! the listener closes first (new connections are refused), then open
//! connections finish their in-flight requests.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::config::HttpConfig;

/// How far above the configured header limits hyper's parser limits are.
const BACKSTOP_FACTOR: usize = 8;

/// Serves `app` on `listener` until `shutdown` completes, then waits for
/// open connections to finish their requests.
/// With `tls`, every connection is a TLS one, and its handshake must
/// finish within `http.header_read_timeout`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    http: &HttpConfig,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let builder = Arc::new(connection_builder(http));
    let connections = Arc::new(Semaphore::new(http.max_connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off briefly.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection limit reached: closing new connection");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let app = app.clone();
        let tls = tls.clone();
        let handshake_timeout = http.header_read_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            let service =
                hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                    request
                        .extensions_mut()
                        .insert(ConnectInfo::<SocketAddr>(peer));
                    app.clone().oneshot(request)
                });
            let served = match tls {
                None => {
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(connection).await
                }
                Some(tls) => {
                    let stream =
                        match tokio::time::timeout(handshake_timeout, tls.accept(stream)).await {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(error)) => {
                                tracing::debug!(%peer, %error, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(connection).await
                }
            };
            if let Err(error) = served {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

fn connection_builder(http: &HttpConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(http.header_read_timeout)
        .max_headers(http.max_headers.saturating_mul(BACKSTOP_FACTOR).max(100))
        .max_buf_size(
            http.max_header_bytes
                .saturating_mul(BACKSTOP_FACTOR)
                .max(8192),
        );
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(
            u32::try_from(http.max_header_bytes.saturating_mul(BACKSTOP_FACTOR))
                .unwrap_or(u32::MAX),
        );
    builder
}
