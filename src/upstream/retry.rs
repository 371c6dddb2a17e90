//! Retries and hedges: sending a call again, when that is safe, to
//! another instance when there is one, within a budget.
//!
//! Both spend from one [`RetryBudget`] per upstream, so a failing service
//! sees at most about `1 + budget_ratio` times its normal load.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::config::RetryConfig;
use super::request::{Reply, UpstreamRequest};
use super::{Caller, UpstreamError, UpstreamErrorKind};

/// Retrying as a layer of the call path: GETs after a broken connection
/// or a 502/503/504, any method when its connection was never
/// established (so it cannot have been handled); full-jitter exponential
/// backoff, within the request's deadline and the budget.
#[derive(Debug)]
pub(super) struct Retried {
    config: RetryConfig,
}

impl Retried {
    pub(super) fn new(config: RetryConfig) -> Self {
        Self { config }
    }

    pub(super) async fn around<F>(
        &self,
        caller: &Caller,
        request: &UpstreamRequest,
        budget: &RetryBudget,
        attempt: impl Fn() -> F,
    ) -> Result<Reply<Bytes>, UpstreamError>
    where
        F: Future<Output = Result<Reply<Bytes>, UpstreamError>>,
    {
        budget.record_call();
        let mut retries = 0;
        loop {
            let result = attempt().await;
            if retries >= self.config.max_retries || !may_retry(request, &result) {
                return result;
            }
            // Full jitter: a random wait up to the doubled backoff.
            let backoff = self
                .config
                .backoff
                .saturating_mul(1 << retries.min(16))
                .mul_f64(rand::random::<f64>());
            let deadline_allows = caller
                .deadline()
                .is_none_or(|deadline| Instant::now() + backoff < deadline);
            if !deadline_allows || !budget.try_spend() {
                return result;
            }
            retries += 1;
            tokio::time::sleep(backoff).await;
        }
    }
}

/// Whether a failed attempt may be sent again.
fn may_retry(request: &UpstreamRequest, result: &Result<Reply<Bytes>, UpstreamError>) -> bool {
    let idempotent = request.is_get();
    match result {
        Ok(reply) => idempotent && matches!(reply.status.as_u16(), 502..=504),
        Err(error) => match error.kind {
            // Never sent: safe for any method.
            UpstreamErrorKind::Unreachable => true,
            UpstreamErrorKind::Transport => idempotent,
            // A reply of any status is `Ok` here (handled above).
            _ => false,
        },
    }
}

/// Hedging as a layer of the call path: a GET still unanswered after
/// `after` gets a second request, to another instance when there is one,
/// if the budget allows. The first good answer wins; the other request is
/// dropped, which cancels it. Off when `after` is unset.
#[derive(Debug)]
pub(super) struct Hedged {
    after: Option<Duration>,
}

impl Hedged {
    pub(super) fn new(after: Option<Duration>) -> Self {
        Self { after }
    }

    /// `send` is one request with its retries; both requests share one
    /// [`Tried`](super::balance::Tried) set, so the second avoids the
    /// first's instance.
    pub(super) async fn around<F>(
        &self,
        request: &UpstreamRequest,
        budget: &RetryBudget,
        send: impl Fn() -> F,
    ) -> Result<Reply<Bytes>, UpstreamError>
    where
        F: Future<Output = Result<Reply<Bytes>, UpstreamError>>,
    {
        let Some(after) = self.after.filter(|_| request.is_get()) else {
            return send().await;
        };
        let first = send();
        tokio::pin!(first);
        tokio::select! {
            result = &mut first => return result,
            () = tokio::time::sleep(after) => {}
        }
        if !budget.try_spend() {
            return first.await;
        }
        let second = send();
        tokio::pin!(second);
        let good = |r: &Result<Reply<Bytes>, UpstreamError>| {
            r.as_ref()
                .is_ok_and(|reply| !reply.status.is_server_error())
        };
        tokio::select! {
            result = &mut first => if good(&result) { result } else { second.await },
            result = &mut second => if good(&result) { result } else { first.await },
        }
    }
}

/// Retries allowed in a window: a share of the calls plus a floor.
#[derive(Debug)]
pub struct RetryBudget {
    ratio: f64,
    floor: u32,
    window: Duration,
    counters: Mutex<(Instant, u32, u32)>,
}

impl RetryBudget {
    pub fn new(ratio: f64, floor: u32, window: Duration) -> Self {
        Self {
            ratio,
            floor,
            window,
            counters: Mutex::new((Instant::now(), 0, 0)),
        }
    }

    fn with_window<R>(&self, f: impl FnOnce(&mut u32, &mut u32) -> R) -> R {
        let mut guard = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let (start, calls, retries) = &mut *guard;
        if start.elapsed() >= self.window {
            *start = Instant::now();
            *calls = 0;
            *retries = 0;
        }
        f(calls, retries)
    }

    /// Counts a call (its first attempt).
    pub fn record_call(&self) {
        self.with_window(|calls, _| *calls += 1);
    }

    /// Takes one retry from the budget, if any is left.
    pub fn try_spend(&self) -> bool {
        self.with_window(|calls, retries| {
            let allowed = f64::from(self.floor) + self.ratio * f64::from(*calls);
            let ok = f64::from(*retries) < allowed;
            if ok {
                *retries += 1;
            }
            ok
        })
    }
}
