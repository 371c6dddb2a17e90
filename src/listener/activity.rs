//! What one connection is doing, and how long it may stay that way.
//!
//! hyper's own `header_read_timeout` starts again as soon as a keep-alive
//! connection goes idle (so an idle connection is cut at the header
//! timeout, long before a load balancer would reuse it), and the
//! HTTP/1-or-HTTP/2 sniff has no timer at all (so a connection that never
//! sends a byte stays open for ever). The gateway keeps its own clock
//! instead, per connection:
//!
//! - from accept until the first request arrives: `header_read_timeout`
//!   (a client that never speaks, a slow TLS handshake, a slowloris first
//!   request);
//! - while a request is being answered: no limit here
//!   (`http.request_timeout` bounds the request itself);
//! - idle between requests: `keep_alive_timeout`;
//! - once an HTTP/1 client starts the next request on an idle connection:
//!   `header_read_timeout` from its first byte.
//!
//! [`Tracked`] reports reads, [`Activity::request_started`] and the
//! returned [`Busy`] guard report requests (the guard lives until the
//! reply's body is finished or dropped), and [`Activity::expired`]
//! resolves when the connection has overstayed, so the accept loop can
//! drop it.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// The first bytes of an HTTP/2 connection preface (RFC 9113 §3.4).
const H2_PREFACE_START: &[u8; 4] = b"PRI ";

/// One connection's clock and request count.
#[derive(Debug)]
pub struct Activity {
    state: Mutex<State>,
    changed: Notify,
    header_read_timeout: Duration,
    keep_alive_timeout: Duration,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    in_flight: u32,
    protocol: Protocol,
    /// Bytes arrived while a request was in flight (a pipelined HTTP/1
    /// request): the next one has already started when this one ends.
    read_while_busy: bool,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Accepted at this instant; no request yet.
    Fresh(Instant),
    /// No request in flight since this instant.
    Idle(Instant),
    /// An HTTP/1 request's first bytes arrived at this instant.
    Head(Instant),
    /// At least one request is being answered.
    Busy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// Fewer than four bytes seen so far (they are kept here).
    Unknown([u8; 4], usize),
    Http1,
    /// Reads on an idle HTTP/2 connection are pings and settings, not a
    /// request starting, so they never start the header clock.
    Http2,
}

impl Activity {
    /// A connection accepted now.
    pub fn new(header_read_timeout: Duration, keep_alive_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                phase: Phase::Fresh(Instant::now()),
                in_flight: 0,
                protocol: Protocol::Unknown([0; 4], 0),
                read_while_busy: false,
            }),
            changed: Notify::new(),
            header_read_timeout,
            keep_alive_timeout,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// When the connection must be closed unless something happens first.
    fn deadline(&self) -> Option<Instant> {
        match self.lock().phase {
            Phase::Fresh(since) | Phase::Head(since) => Some(since + self.header_read_timeout),
            Phase::Idle(since) => Some(since + self.keep_alive_timeout),
            Phase::Busy => None,
        }
    }

    /// Resolves once the connection has stayed past its deadline: never
    /// speaking, idle too long, or too slow sending a request's headers.
    pub async fn expired(&self) {
        loop {
            // `notify_one` keeps a permit, so a change between reading the
            // deadline and waiting is not lost.
            let changed = self.changed.notified();
            match self.deadline() {
                None => changed.await,
                Some(deadline) if Instant::now() >= deadline => return,
                Some(deadline) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline) => {}
                        () = changed => {}
                    }
                }
            }
        }
    }

    /// hyper handed a request to the service: its headers are complete.
    /// The connection counts as busy until the returned guard is dropped.
    pub fn request_started(self: &Arc<Self>) -> Busy {
        {
            let mut state = self.lock();
            state.in_flight += 1;
            state.phase = Phase::Busy;
            state.read_while_busy = false;
        }
        self.changed.notify_one();
        Busy(self.clone())
    }

    fn request_finished(&self) {
        {
            let mut state = self.lock();
            state.in_flight = state.in_flight.saturating_sub(1);
            if state.in_flight == 0 {
                let now = Instant::now();
                state.phase = if state.read_while_busy && state.protocol != Protocol::Http2 {
                    Phase::Head(now)
                } else {
                    Phase::Idle(now)
                };
            }
        }
        self.changed.notify_one();
    }

    fn bytes_read(&self, bytes: &[u8]) {
        let mut state = self.lock();
        if let Protocol::Unknown(mut seen, len) = state.protocol {
            let take = bytes.len().min(seen.len() - len);
            seen[len..len + take].copy_from_slice(&bytes[..take]);
            let len = len + take;
            state.protocol = if seen[..len] != H2_PREFACE_START[..len] {
                Protocol::Http1
            } else if len == seen.len() {
                Protocol::Http2
            } else {
                Protocol::Unknown(seen, len)
            };
        }
        match state.phase {
            Phase::Idle(_) if state.protocol != Protocol::Http2 => {
                state.phase = Phase::Head(Instant::now());
                drop(state);
                self.changed.notify_one();
            }
            Phase::Busy => state.read_while_busy = true,
            Phase::Fresh(_) | Phase::Idle(_) | Phase::Head(_) => {}
        }
    }
}

/// A request in flight on its connection.
#[derive(Debug)]
pub struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// A connection's stream, reporting every read to its [`Activity`].
#[derive(Debug)]
pub struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Tracked<S> {
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read(&buf.filled()[before..]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A reply body that keeps its connection busy until it is sent (or
/// dropped), so the idle clock starts when the reply is really done.
#[derive(Debug)]
pub struct BusyBody {
    inner: axum::body::Body,
    _busy: Busy,
}

impl BusyBody {
    pub fn new(inner: axum::body::Body, busy: Busy) -> Self {
        Self { inner, _busy: busy }
    }
}

impl Body for BusyBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_clock_follows_the_connection() {
        let activity = Activity::new(Duration::from_secs(5), Duration::from_secs(75));
        let accepted = Instant::now();
        assert_eq!(activity.deadline(), Some(accepted + Duration::from_secs(5)));
        activity.bytes_read(b"GET / HTTP/1.1\r\n");
        // Still the first request: measured from accept, not from the byte.
        assert_eq!(activity.deadline(), Some(accepted + Duration::from_secs(5)));
        let busy = activity.request_started();
        assert_eq!(activity.deadline(), None);
        tokio::time::advance(Duration::from_secs(30)).await;
        drop(busy);
        let idle = Instant::now();
        assert_eq!(activity.deadline(), Some(idle + Duration::from_secs(75)));
        tokio::time::advance(Duration::from_secs(60)).await;
        activity.bytes_read(b"G");
        let head = Instant::now();
        assert_eq!(activity.deadline(), Some(head + Duration::from_secs(5)));
    }

    #[tokio::test(start_paused = true)]
    async fn http2_control_frames_do_not_start_the_header_clock() {
        let activity = Activity::new(Duration::from_secs(5), Duration::from_secs(75));
        activity.bytes_read(b"PR");
        activity.bytes_read(b"I * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        drop(activity.request_started());
        let idle = Instant::now();
        activity.bytes_read(&[0, 0, 8, 6, 0]);
        assert_eq!(activity.deadline(), Some(idle + Duration::from_secs(75)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pipelined_request_keeps_the_header_clock() {
        let activity = Activity::new(Duration::from_secs(5), Duration::from_secs(75));
        let busy = activity.request_started();
        activity.bytes_read(b"GET /next");
        drop(busy);
        let done = Instant::now();
        assert_eq!(activity.deadline(), Some(done + Duration::from_secs(5)));
    }

    #[tokio::test(start_paused = true)]
    async fn expired_resolves_at_the_deadline_and_not_while_busy() {
        let activity = Activity::new(Duration::from_secs(5), Duration::from_secs(75));
        let busy = activity.request_started();
        let waited = tokio::time::timeout(Duration::from_secs(600), activity.expired()).await;
        assert!(waited.is_err(), "a busy connection never expires");
        drop(busy);
        let idle = Instant::now();
        activity.expired().await;
        assert_eq!(Instant::now(), idle + Duration::from_secs(75));
    }
}
