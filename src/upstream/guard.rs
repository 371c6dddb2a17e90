//! What stands between a caller and an upstream: a bulkhead (a cap on calls
//! in flight to the upstream) and a circuit breaker (per instance). Both fail fast, so a slow or failing
//! service costs its own part of a reply and is never hammered harder.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::UpstreamName;
use super::config::BreakerConfig;

/// The breaker's state, as `/readyz` and the logs show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    /// Calls flow.
    Closed,
    /// Calls fail fast without reaching the service.
    Open,
    /// A few probe calls test whether the service is back.
    HalfOpen,
}

impl CircuitState {
    /// Every state's name, as metrics label them.
    pub const NAMES: [&'static str; 3] = ["closed", "open", "half_open"];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

/// How a call ended, as far as the breaker cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    Success,
    /// Timeout, broken connection, 5xx or an unusable reply.
    Failure,
}

#[derive(Debug)]
enum Phase {
    Closed,
    Open { until: Instant },
    HalfOpen { probes_in_flight: u32 },
}

#[derive(Debug)]
struct Counters {
    phase: Phase,
    consecutive_failures: u32,
    window_start: Instant,
    window_calls: u32,
    window_failures: u32,
    /// A service that keeps failing reopens the circuit after every
    /// probe: one WARN line per interval says so, not one per reopening.
    open_warning: RepeatedWarning,
}

/// How often the same breaker may log "circuit open" at WARN.
const OPEN_WARNING_EVERY: Duration = Duration::from_secs(60);

/// At most one WARN line per `every` for one repeated event; the lines
/// held back meanwhile are counted in the next one.
#[derive(Debug)]
struct RepeatedWarning {
    every: Duration,
    last: Option<Instant>,
    held_back: u32,
}

impl RepeatedWarning {
    fn new(every: Duration) -> Self {
        Self {
            every,
            last: None,
            held_back: 0,
        }
    }

    /// `Some(lines held back since the last one)` when a line may be
    /// written at `now`; `None` (and one more held back) when not.
    fn allow(&mut self, now: Instant) -> Option<u32> {
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < self.every)
        {
            self.held_back += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held_back))
    }
}

/// A circuit breaker for one instance of an upstream.
#[derive(Debug)]
pub struct CircuitBreaker {
    name: UpstreamName,
    /// The instance's address, for logs.
    instance: std::sync::Arc<str>,
    config: BreakerConfig,
    counters: Mutex<Counters>,
}

/// Admission to call through a breaker. Dropping it unrecorded (the call
/// was cancelled) frees a probe slot without judging the service.
#[derive(Debug)]
pub struct Admission<'a> {
    breaker: &'a CircuitBreaker,
    probe: bool,
    recorded: bool,
}

impl CircuitBreaker {
    pub fn new(name: UpstreamName, instance: std::sync::Arc<str>, config: BreakerConfig) -> Self {
        Self {
            name,
            instance,
            config,
            counters: Mutex::new(Counters {
                phase: Phase::Closed,
                consecutive_failures: 0,
                window_start: Instant::now(),
                window_calls: 0,
                window_failures: 0,
                open_warning: RepeatedWarning::new(OPEN_WARNING_EVERY),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lets a call through, or refuses it while the circuit is open.
    pub fn admit(&self) -> Option<Admission<'_>> {
        let mut counters = self.lock();
        let probe = match counters.phase {
            Phase::Closed => false,
            Phase::Open { until } if Instant::now() < until => return None,
            Phase::Open { .. } => {
                counters.phase = Phase::HalfOpen {
                    probes_in_flight: 1,
                };
                tracing::info!(upstream = %self.name, instance = %self.instance, "circuit half-open: probing");
                true
            }
            Phase::HalfOpen {
                ref mut probes_in_flight,
            } => {
                if *probes_in_flight >= self.config.half_open_probes.get() {
                    return None;
                }
                *probes_in_flight += 1;
                true
            }
        };
        Some(Admission {
            breaker: self,
            probe,
            recorded: false,
        })
    }

    /// The current state.
    pub fn state(&self) -> CircuitState {
        match self.lock().phase {
            Phase::Closed => CircuitState::Closed,
            Phase::Open { until } if Instant::now() < until => CircuitState::Open,
            Phase::Open { .. } | Phase::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    fn record(&self, probe: bool, outcome: CallOutcome) {
        let mut c = self.lock();
        let now = Instant::now();
        if now.duration_since(c.window_start) >= self.config.window {
            c.window_start = now;
            c.window_calls = 0;
            c.window_failures = 0;
        }
        c.window_calls += 1;
        match outcome {
            CallOutcome::Success => {
                c.consecutive_failures = 0;
                if probe || matches!(c.phase, Phase::HalfOpen { .. }) {
                    c.phase = Phase::Closed;
                    c.window_calls = 0;
                    c.window_failures = 0;
                    tracing::info!(upstream = %self.name, instance = %self.instance, "circuit closed: the service answers again");
                }
            }
            CallOutcome::Failure => {
                c.consecutive_failures += 1;
                c.window_failures += 1;
                let ratio_tripped = c.window_calls >= self.config.min_calls
                    && f64::from(c.window_failures)
                        >= self.config.failure_ratio.get() * f64::from(c.window_calls);
                let reopen = probe || matches!(c.phase, Phase::HalfOpen { .. });
                let trip = matches!(c.phase, Phase::Closed)
                    && (c.consecutive_failures >= self.config.consecutive_failures.get()
                        || ratio_tripped);
                if reopen || trip {
                    c.phase = Phase::Open {
                        until: now + self.config.open_for,
                    };
                    match c.open_warning.allow(now) {
                        Some(held_back) => tracing::warn!(
                            upstream = %self.name, instance = %self.instance,
                            consecutive_failures = c.consecutive_failures,
                            open_for = ?self.config.open_for,
                            reopened_since_last_warning = held_back,
                            "circuit open: failing fast"
                        ),
                        None => tracing::debug!(
                            upstream = %self.name, instance = %self.instance,
                            "circuit open again: failing fast"
                        ),
                    }
                }
            }
        }
    }

    fn release_probe(&self) {
        if let Phase::HalfOpen { probes_in_flight } = &mut self.lock().phase {
            *probes_in_flight = probes_in_flight.saturating_sub(1);
        }
    }
}

impl Admission<'_> {
    /// Records how the call ended.
    pub fn record(mut self, outcome: CallOutcome) {
        self.recorded = true;
        self.breaker.record(self.probe, outcome);
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if self.probe && !self.recorded {
            self.breaker.release_probe();
        }
    }
}

/// A cap on calls in flight to one upstream; excess calls fail at once.
#[derive(Debug)]
pub struct Bulkhead {
    permits: std::sync::Arc<Semaphore>,
    capacity: usize,
}

impl Bulkhead {
    pub fn new(capacity: usize) -> Self {
        Self {
            permits: std::sync::Arc::new(Semaphore::new(capacity)),
            capacity,
        }
    }

    /// A slot for one call, or `None` when the cap is reached.
    pub fn try_enter(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_owned().ok()
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> usize {
        self.capacity - self.permits.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_warning_is_written_once_per_interval_with_the_count_held_back() {
        let start = Instant::now();
        let mut warning = RepeatedWarning::new(Duration::from_secs(60));
        assert_eq!(warning.allow(start), Some(0));
        for s in 1..=10 {
            assert_eq!(warning.allow(start + Duration::from_secs(s * 5)), None);
        }
        assert_eq!(warning.allow(start + Duration::from_secs(61)), Some(10));
        assert_eq!(warning.allow(start + Duration::from_secs(62)), None);
    }

    fn breaker(open_for: Duration) -> CircuitBreaker {
        CircuitBreaker::new(
            UpstreamName::new("inventory"),
            "http://inventory:80".into(),
            BreakerConfig {
                consecutive_failures: std::num::NonZeroU32::new(3).expect("not zero"),
                failure_ratio: crate::config::Ratio::of(0.5),
                min_calls: 10,
                window: Duration::from_secs(10),
                open_for,
                half_open_probes: std::num::NonZeroU32::MIN,
            },
        )
    }

    fn fail(b: &CircuitBreaker) {
        b.admit().expect("admitted").record(CallOutcome::Failure);
    }

    #[test]
    fn consecutive_failures_open_then_a_probe_closes() {
        let b = breaker(Duration::from_millis(30));
        for _ in 0..3 {
            fail(&b);
        }
        assert_eq!(b.state(), CircuitState::Open);
        assert!(b.admit().is_none());
        std::thread::sleep(Duration::from_millis(40));
        let probe = b.admit().expect("one probe");
        assert!(b.admit().is_none(), "only one probe at a time");
        probe.record(CallOutcome::Success);
        assert_eq!(b.state(), CircuitState::Closed);
    }

    #[test]
    fn a_failed_probe_reopens_and_a_cancelled_one_frees_its_slot() {
        let b = breaker(Duration::from_millis(30));
        for _ in 0..3 {
            fail(&b);
        }
        std::thread::sleep(Duration::from_millis(40));
        drop(b.admit().expect("probe"));
        let probe = b.admit().expect("the slot was freed");
        probe.record(CallOutcome::Failure);
        assert_eq!(b.state(), CircuitState::Open);
    }

    #[test]
    fn a_failure_ratio_over_the_window_opens() {
        let b = breaker(Duration::from_secs(1));
        for i in 0..10 {
            // Success first: the tenth call is the failure that reaches 50%.
            let outcome = if i % 2 == 1 {
                CallOutcome::Failure
            } else {
                CallOutcome::Success
            };
            b.admit().expect("admitted").record(outcome);
        }
        assert_eq!(b.state(), CircuitState::Open);
    }
}
