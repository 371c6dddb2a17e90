//! Coalescing: identical concurrent GETs to one upstream, made for the same
//! identity, share one call. A burst of the same dashboard (a page that
//! refreshes twice, a retrying app) costs the service one request.
//!
//! The map holds only weak handles: the call lives as long as someone
//! waits for it, so when every waiting client goes away the upstream call
//! is dropped, as it would be without coalescing.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared, WeakShared};

use hyper::header::{AUTHORIZATION, HeaderValue};

use super::request::{Reply, Target, UpstreamRequest};
use super::{Caller, UpstreamError};

/// One call below coalescing, owned, so waiters can share it.
pub type Call = BoxFuture<'static, Result<Reply<Bytes>, UpstreamError>>;

/// Past this many entries, entries whose callers all left are swept.
const SWEEP_ABOVE: usize = 1024;

/// Calls in flight, by what makes two GETs identical.
#[derive(Debug, Default)]
pub struct Coalescer {
    in_flight: Mutex<HashMap<CallKey, WeakShared<Call>>>,
}

/// The target and the identity the call is made for: the user id and the
/// caller's credentials, so one user's reply never reaches another.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallKey {
    pub target: Target,
    pub user_id: std::sync::Arc<str>,
    pub authorization: Option<HeaderValue>,
}

impl Coalescer {
    /// Coalescing as a layer of the call path: a GET joins an identical
    /// one in flight; any other method runs on its own. `start` makes the
    /// call below, owning what it needs, so it outlives any one waiter.
    pub(super) async fn around(
        &self,
        caller: &Caller,
        request: &UpstreamRequest,
        start: impl FnOnce(Caller, UpstreamRequest) -> Call,
    ) -> Result<Reply<Bytes>, UpstreamError> {
        let call = start(caller.clone(), request.clone());
        if !request.is_get() {
            return call.await;
        }
        let key = CallKey {
            target: request.target.clone(),
            user_id: caller.user_id_shared(),
            authorization: caller.headers().get(AUTHORIZATION).cloned(),
        };
        self.run(key, call).await
    }

    /// Joins the identical call in flight, or starts `call` and lets later
    /// identical ones join it.
    pub async fn run(&self, key: CallKey, call: Call) -> Result<Reply<Bytes>, UpstreamError> {
        let shared: Shared<Call> = {
            let mut in_flight = self
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match in_flight.get(&key).and_then(WeakShared::upgrade) {
                Some(shared) => shared,
                None => {
                    if in_flight.len() > SWEEP_ABOVE {
                        in_flight.retain(|_, weak| weak.upgrade().is_some());
                    }
                    let shared = call.shared();
                    if let Some(weak) = shared.downgrade() {
                        in_flight.insert(key.clone(), weak);
                    }
                    shared
                }
            }
        };
        let result = shared.clone().await;
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let finished_here = in_flight
            .get(&key)
            .and_then(WeakShared::upgrade)
            .is_none_or(|current| current.ptr_eq(&shared));
        if finished_here {
            in_flight.remove(&key);
        }
        result
    }
}
