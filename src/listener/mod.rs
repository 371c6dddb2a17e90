//! Accepting connections: HTTP/1.1 and HTTP/2 on hyper-util, with the
//! connection-level limits axum's `serve` does not expose.
//!
//! A connection over `http.max_connections`, or over
//! `http.max_connections_per_ip` from one client address, is closed on
//! accept. Each connection keeps its own clock (`activity`): a client gets
//! `http.header_read_timeout` from accept to send its first request
//! (TLS handshake included) and from the first byte of each later one to
//! finish its headers (slowloris), and an idle keep-alive connection is
//! kept `http.keep_alive_timeout`. hyper's own header limits sit well
//! above the configured ones, so that within them the gateway itself
//! answers `431` with the contract's body (`header_limits`); past them
//! hyper closes the connection. On shutdown the listener closes first (new
//! connections are refused), then open connections finish their in-flight
//! requests.

mod activity;
pub mod config;
mod per_ip;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use self::activity::{Activity, BusyBody, Tracked};
use self::per_ip::PerIpConnections;
use config::HttpConfig;

/// How far above the configured header limits hyper's parser limits are.
const BACKSTOP_FACTOR: usize = 8;

/// Serves `app` on `listener` until `shutdown` completes, then waits for
/// open connections to finish their requests.
/// With `tls`, every connection is a TLS one, and its handshake counts
/// against the first request's `http.header_read_timeout`.
pub async fn serve(
    listener: TcpListener,
    app: impl Into<AppHandle>,
    http: &HttpConfig,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app.into();
    let builder = Arc::new(connection_builder(http));
    let connections = Arc::new(Semaphore::new(http.max_connections.get()));
    let per_ip = PerIpConnections::new(http.max_connections_per_ip.get(), &http.trusted_proxies);
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
        let Some(ip_slot) = per_ip.admit(peer.ip()) else {
            tracing::debug!(%peer, "per-address connection limit reached: closing new connection");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let activity = Activity::new(http.header_read_timeout, http.keep_alive_timeout);
        let connection = serve_connection(
            stream,
            peer,
            app.clone(),
            builder.clone(),
            tls.clone(),
            activity.clone(),
            graceful.watcher(),
        );
        tokio::spawn(async move {
            let _slots = (permit, ip_slot);
            tokio::select! {
                () = connection => {}
                () = activity.expired() => {
                    tracing::debug!(%peer, "closing a connection that stayed idle or silent too long");
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The app the listener serves, swapped whole on a config reload: each
/// request takes the current one, so a keep-alive connection moves to the
/// new app with its next request.
#[derive(Debug, Clone)]
pub struct AppHandle(Arc<ArcSwap<Router>>);

impl AppHandle {
    pub fn new(app: Router) -> Self {
        Self(Arc::new(ArcSwap::from_pointee(app)))
    }

    /// The app to serve the next request with.
    pub fn current(&self) -> Router {
        Router::clone(&self.0.load())
    }

    /// Serves `app` from the next request on.
    pub fn swap(&self, app: Router) {
        self.0.store(Arc::new(app));
    }
}

impl From<Router> for AppHandle {
    fn from(app: Router) -> Self {
        Self::new(app)
    }
}

/// One connection from TLS handshake (if any) to its last reply. Every
/// read and every request is reported to `activity`.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: AppHandle,
    builder: Arc<auto::Builder<TokioExecutor>>,
    tls: Option<TlsAcceptor>,
    activity: Arc<Activity>,
    watcher: hyper_util::server::graceful::Watcher,
) {
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            let busy = activity.request_started();
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(peer));
            // The app served now: a request started before a reload
            // finishes on the app it started on.
            let call = app.current().oneshot(request);
            async move {
                let response = call.await?;
                Ok::<_, std::convert::Infallible>(response.map(|body| BusyBody::new(body, busy)))
            }
        })
    };
    let served = match tls {
        None => {
            let io = TokioIo::new(Tracked::new(stream, activity));
            watcher.watch(builder.serve_connection(io, service)).await
        }
        Some(tls) => {
            let stream = match tls.accept(stream).await {
                Ok(stream) => stream,
                Err(error) => {
                    tracing::debug!(%peer, %error, "TLS handshake failed");
                    return;
                }
            };
            let io = TokioIo::new(Tracked::new(stream, activity));
            watcher.watch(builder.serve_connection(io, service)).await
        }
    };
    if let Err(error) = served {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}

fn connection_builder(http: &HttpConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // The connection's own clock (`activity`) bounds header reads:
        // hyper's would also cut idle keep-alive connections.
        .header_read_timeout(None)
        .max_headers(
            http.max_headers
                .get()
                .saturating_mul(BACKSTOP_FACTOR)
                .max(100),
        )
        .max_buf_size(
            http.max_header_bytes
                .get()
                .saturating_mul(BACKSTOP_FACTOR)
                .max(8192),
        );
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(
            u32::try_from(http.max_header_bytes.get().saturating_mul(BACKSTOP_FACTOR))
                .unwrap_or(u32::MAX),
        );
    builder
}
