//! Choosing the instance for each attempt: the less loaded of two picked
//! at random (power of two choices over peak-EWMA latency times calls in
//! flight, as linkerd balances), skipping instances set aside by outlier
//! detection or by their open circuit, and the ones this call already
//! tried when another is left.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use bytes::Bytes;

use super::config::OutlierConfig;
use super::guard::{Bulkhead, CallOutcome, CircuitState};
use super::instance::{CallLimits, Instance, InstanceHealth};
use super::request::{Reply, UpstreamRequest};
use super::{Caller, UpstreamError, UpstreamErrorKind};

/// The instances one call (its retries and hedges) has been sent to.
#[derive(Debug, Default)]
pub(super) struct Tried(AtomicU64);

impl Tried {
    fn mark(&self, index: usize) {
        self.0.fetch_or(1 << index, Ordering::Relaxed);
    }

    fn bits(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Balancing as the innermost layer of the call path, with the bulkhead
/// of the whole upstream in front of it.
#[derive(Debug)]
pub(super) struct Balanced {
    limits: CallLimits,
    instances: Box<[Instance]>,
    outliers: Box<[Mutex<Outlier>]>,
    outlier: OutlierConfig,
    /// How many instances may be ejected at once.
    max_ejected: usize,
    bulkhead: Bulkhead,
}

/// Outlier detection's view of one instance.
#[derive(Debug, Default)]
struct Outlier {
    consecutive_failures: u32,
    /// Ejections in a row, for the next one's length.
    ejections: u32,
    ejected_until: Option<Instant>,
    /// Back from an ejection: its next call decides.
    on_probation: bool,
}

impl Outlier {
    fn is_ejected(&self, now: Instant) -> bool {
        self.ejected_until.is_some_and(|until| now < until)
    }
}

/// Upstream-wide health, for `/readyz`: the upstream fails fast only when
/// every instance does.
#[derive(Debug, Clone)]
pub(super) struct BalancedHealth {
    pub circuit: CircuitState,
    pub in_flight: usize,
    pub last_success: Option<String>,
    pub instances: Vec<InstanceHealth>,
}

impl Balanced {
    pub(super) fn new(
        limits: CallLimits,
        instances: Vec<Instance>,
        max_in_flight: usize,
        outlier: OutlierConfig,
    ) -> Self {
        let count = instances.len();
        // Never the last one; at least one of two or more.
        let by_ratio = (count as f64 * outlier.max_ejected_ratio.get()).floor() as usize;
        let max_ejected = by_ratio.max(1).min(count.saturating_sub(1));
        Self {
            limits,
            outliers: (0..count).map(|_| Mutex::default()).collect(),
            instances: instances.into_boxed_slice(),
            outlier,
            max_ejected,
            bulkhead: Bulkhead::new(max_in_flight),
        }
    }

    pub(super) fn limits(&self) -> &CallLimits {
        &self.limits
    }

    fn outlier(&self, index: usize) -> std::sync::MutexGuard<'_, Outlier> {
        self.outliers[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// One attempt, to the instance [`Self::pick`] chooses.
    pub(super) async fn attempt(
        &self,
        caller: &Caller,
        request: &UpstreamRequest,
        tried: &Tried,
    ) -> Result<Reply<Bytes>, UpstreamError> {
        let _slot = self
            .bulkhead
            .try_enter()
            .ok_or_else(|| self.limits.error(UpstreamErrorKind::Overloaded))?;
        let mut refused = 0u64;
        loop {
            let Some(index) = self.pick(tried.bits(), refused) else {
                // Every instance is ejected or its circuit open.
                return Err(self.limits.error(UpstreamErrorKind::CircuitOpen));
            };
            let (result, outcome) = self.instances[index]
                .attempt(caller, request, &self.limits)
                .await;
            match outcome {
                Some(outcome) => {
                    tried.mark(index);
                    self.record(index, outcome);
                    return result;
                }
                // The circuit refused it: try another, if one is left.
                None if result.as_ref().is_err_and(|e| e.kind.is_refused()) => {
                    refused |= 1 << index;
                }
                // Not sent at all (the deadline has passed).
                None => return result,
            }
        }
    }

    /// The instance for the next attempt: among those neither ejected nor
    /// `refused`, preferring ones not yet `tried`, the less loaded of two
    /// picked at random.
    fn pick(&self, tried: u64, refused: u64) -> Option<usize> {
        let now = Instant::now();
        let mut eligible = 0u64;
        for index in 0..self.instances.len() {
            let open = self.instances[index].breaker().state() == CircuitState::Open;
            if refused & (1 << index) == 0 && !open && !self.outlier(index).is_ejected(now) {
                eligible |= 1 << index;
            }
        }
        let fresh = eligible & !tried;
        let pool = if fresh == 0 { eligible } else { fresh };
        let count = pool.count_ones() as usize;
        match count {
            0 => None,
            1 => Some(nth_bit(pool, 0)),
            _ => {
                let a = rand::random_range(0..count);
                let mut b = rand::random_range(0..count - 1);
                if b >= a {
                    b += 1;
                }
                let (a, b) = (nth_bit(pool, a), nth_bit(pool, b));
                let lighter = if self.instances[a].load(now) <= self.instances[b].load(now) {
                    a
                } else {
                    b
                };
                Some(lighter)
            }
        }
    }

    /// Outlier detection: counts an attempt's outcome against its
    /// instance, and ejects it when it keeps failing.
    fn record(&self, index: usize, outcome: CallOutcome) {
        let now = Instant::now();
        let eject = {
            let mut outlier = self.outlier(index);
            match outcome {
                CallOutcome::Success => {
                    *outlier = Outlier::default();
                    return;
                }
                CallOutcome::Failure => {
                    outlier.consecutive_failures += 1;
                    outlier.on_probation
                        || outlier.consecutive_failures >= self.outlier.consecutive_failures.get()
                }
            }
        };
        if !eject || self.ejected(now) >= self.max_ejected {
            return;
        }
        let mut outlier = self.outlier(index);
        outlier.ejections += 1;
        let ejection = self
            .outlier
            .base_ejection
            .saturating_mul(outlier.ejections)
            .min(self.outlier.max_ejection);
        outlier.ejected_until = Some(now + ejection);
        outlier.on_probation = true;
        outlier.consecutive_failures = 0;
        tracing::warn!(
            upstream = %self.limits.name,
            instance = %self.instances[index].label(),
            ejected_for = ?ejection,
            "instance ejected: it keeps failing"
        );
    }

    fn ejected(&self, now: Instant) -> usize {
        (0..self.instances.len())
            .filter(|&index| self.outlier(index).is_ejected(now))
            .count()
    }

    pub(super) fn health(&self) -> BalancedHealth {
        let now = Instant::now();
        let instances: Vec<InstanceHealth> = self
            .instances
            .iter()
            .enumerate()
            .map(|(index, instance)| instance.health(self.outlier(index).is_ejected(now)))
            .collect();
        let serving = |health: &&InstanceHealth| !health.ejected;
        let circuit = if instances
            .iter()
            .filter(serving)
            .any(|h| h.circuit == CircuitState::Closed)
        {
            CircuitState::Closed
        } else if instances
            .iter()
            .filter(serving)
            .any(|h| h.circuit == CircuitState::HalfOpen)
        {
            CircuitState::HalfOpen
        } else {
            CircuitState::Open
        };
        BalancedHealth {
            circuit,
            in_flight: self.bulkhead.in_flight(),
            last_success: instances
                .iter()
                .filter_map(|h| h.last_success.clone())
                .max(),
            instances,
        }
    }
}

/// The index of the `n`th set bit of `bits`.
fn nth_bit(mut bits: u64, n: usize) -> usize {
    for _ in 0..n {
        bits &= bits - 1;
    }
    bits.trailing_zeros() as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::UpstreamName;
    use crate::upstream::config::BreakerConfig;
    use std::time::Duration;

    fn balanced(count: usize) -> Balanced {
        let name = UpstreamName::new("inventory");
        let instances = (0..count)
            .map(|i| {
                let url = url::Url::parse(&format!("http://10.0.0.{i}:80")).expect("url");
                Instance::new(&name, &url, BreakerConfig::default(), Instant::now())
            })
            .collect();
        let limits = CallLimits {
            name,
            http: super::super::client::for_tests(),
            timeout: Duration::from_millis(800),
            max_response_bytes: 1024,
            keep_caching: false,
        };
        Balanced::new(
            limits,
            instances,
            16,
            OutlierConfig {
                consecutive_failures: std::num::NonZeroU32::new(2).expect("not zero"),
                ..OutlierConfig::default()
            },
        )
    }

    #[test]
    fn nth_bit_counts_set_bits_from_the_lowest() {
        assert_eq!(nth_bit(0b10110, 0), 1);
        assert_eq!(nth_bit(0b10110, 1), 2);
        assert_eq!(nth_bit(0b10110, 2), 4);
    }

    #[test]
    fn an_instance_that_keeps_failing_is_ejected_then_probed_back() {
        let b = balanced(2);
        b.record(1, CallOutcome::Failure);
        assert_eq!(b.ejected(Instant::now()), 0, "one failure is not enough");
        b.record(1, CallOutcome::Failure);
        assert!(b.outlier(1).is_ejected(Instant::now()));
        for _ in 0..20 {
            assert_eq!(b.pick(0, 0), Some(0), "the ejected one is skipped");
        }
        // The ejection ends: on probation, one failure ejects it again,
        // for twice as long.
        b.outlier(1).ejected_until = Some(Instant::now());
        b.record(1, CallOutcome::Failure);
        let outlier = b.outlier(1);
        let left = outlier.ejected_until.expect("ejected") - Instant::now();
        assert!(left > Duration::from_secs(59), "{left:?}");
    }

    #[test]
    fn the_last_instance_is_never_ejected_and_retries_avoid_the_tried_one() {
        let b = balanced(2);
        for _ in 0..2 {
            b.record(0, CallOutcome::Failure);
        }
        for _ in 0..4 {
            b.record(1, CallOutcome::Failure);
        }
        assert_eq!(b.ejected(Instant::now()), 1);
        assert_eq!(b.pick(0, 0), Some(1), "only the one left serves");
        let single = balanced(1);
        for _ in 0..10 {
            single.record(0, CallOutcome::Failure);
        }
        assert_eq!(single.ejected(Instant::now()), 0);
        let fresh = balanced(3);
        for _ in 0..20 {
            assert_ne!(fresh.pick(0b001, 0), Some(0), "tried, and others are left");
        }
        assert_eq!(fresh.pick(0b111, 0b110), Some(0), "all tried: any eligible");
    }
}
