//! What happened in the last minute, per upstream and per route: the
//! status page's request rate, error rate and p50/p99 latency.
//!
//! Prometheus histograms are cumulative since start, which is what a
//! dashboard wants and not what a person looking at `/status` during an
//! incident wants. Each name keeps its most recent samples (at most
//! [`SAMPLES`], at most [`WINDOW`] old) in a ring; recording is a short
//! lock-protected push, never held across an `.await`. Names are route
//! templates and configured upstreams, so the map stays bounded.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

/// How far back the figures look.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Samples kept per name: enough for stable percentiles, bounded memory
/// (a few KiB per name) whatever the traffic.
pub const SAMPLES: usize = 1024;

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    elapsed: Duration,
    failed: bool,
}

/// The last minute of one name.
#[derive(Debug, Default)]
struct Ring(VecDeque<Sample>);

/// Recent samples by name.
#[derive(Debug, Default)]
pub struct Recent {
    rings: Mutex<BTreeMap<Box<str>, Ring>>,
}

/// The figures of one name over the last [`WINDOW`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Samples in the window (the newest [`SAMPLES`] at most).
    pub count: usize,
    /// Per second, over the window or since the oldest sample kept.
    pub per_second: f64,
    /// Share of samples that failed, 0 to 1.
    pub error_rate: f64,
    /// Milliseconds, `None` without samples.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl Recent {
    /// Records one sample for `name`.
    pub fn record(&self, name: &str, elapsed: Duration, failed: bool) {
        let now = Instant::now();
        let mut rings = self.rings.lock().unwrap_or_else(PoisonError::into_inner);
        let ring = match rings.get_mut(name) {
            Some(ring) => ring,
            None => rings.entry(name.into()).or_default(),
        };
        if ring.0.len() == SAMPLES {
            ring.0.pop_front();
        }
        ring.0.push_back(Sample {
            at: now,
            elapsed,
            failed,
        });
    }

    /// Every name's summary, in name order; `names` adds those that have no
    /// sample yet (configured upstreams not called so far).
    pub fn summaries<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> BTreeMap<String, Summary> {
        let now = Instant::now();
        // Copy out under the lock, sort outside it.
        let windows: Vec<(String, Vec<Sample>)> = {
            let rings = self.rings.lock().unwrap_or_else(PoisonError::into_inner);
            rings
                .iter()
                .map(|(name, ring)| {
                    let recent = ring
                        .0
                        .iter()
                        .filter(|s| now.duration_since(s.at) <= WINDOW)
                        .copied()
                        .collect();
                    (name.to_string(), recent)
                })
                .collect()
        };
        let mut out: BTreeMap<String, Summary> = names
            .into_iter()
            .map(|name| (name.to_owned(), summarize(&[], now)))
            .collect();
        for (name, samples) in windows {
            out.insert(name, summarize(&samples, now));
        }
        out
    }
}

fn summarize(samples: &[Sample], now: Instant) -> Summary {
    let count = samples.len();
    let span = samples
        .first()
        .map_or(WINDOW, |oldest| now.duration_since(oldest.at))
        .clamp(Duration::from_secs(1), WINDOW);
    let mut latencies: Vec<Duration> = samples.iter().map(|s| s.elapsed).collect();
    latencies.sort_unstable();
    let quantile = |q: f64| {
        // Nearest rank: the smallest value with at least q of the samples at or below it.
        let rank = ((q * count as f64).ceil() as usize).clamp(1, count.max(1));
        latencies
            .get(rank - 1)
            .map(|d| (d.as_secs_f64() * 100_000.0).round() / 100.0)
    };
    let failed = samples.iter().filter(|s| s.failed).count();
    Summary {
        count,
        per_second: (count as f64 / span.as_secs_f64() * 100.0).round() / 100.0,
        error_rate: if count == 0 {
            0.0
        } else {
            (failed as f64 / count as f64 * 1000.0).round() / 1000.0
        },
        p50_ms: quantile(0.5),
        p99_ms: quantile(0.99),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_error_rate_of_the_window() {
        let recent = Recent::default();
        for ms in 1..=100 {
            recent.record("users", Duration::from_millis(ms), ms > 90);
        }
        let all = recent.summaries(["orders"]);
        let users = all["users"];
        assert_eq!(users.count, 100);
        assert_eq!(users.p50_ms, Some(50.0));
        assert_eq!(users.p99_ms, Some(99.0));
        assert!((users.error_rate - 0.1).abs() < 1e-9);
        assert_eq!(all["orders"].count, 0);
        assert_eq!(all["orders"].p50_ms, None);
    }

    #[test]
    fn a_ring_keeps_only_the_newest_samples() {
        let recent = Recent::default();
        for _ in 0..SAMPLES + 10 {
            recent.record("r", Duration::from_millis(1), false);
        }
        assert_eq!(recent.summaries([])["r"].count, SAMPLES);
    }
}
