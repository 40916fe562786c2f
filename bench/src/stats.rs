//! Percentiles (nearest rank, by sorting) and a tally of failed requests.

use std::collections::BTreeMap;
use std::time::Duration;

/// Latency summary of one set of samples.
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    pub n: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

/// Nearest-rank percentile of sorted samples (`p` in 0..=100).
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Summarise samples; `None` when there are none.
pub fn summarize(mut samples: Vec<Duration>) -> Option<Summary> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    Some(Summary {
        n: samples.len(),
        p50: percentile(&samples, 50.0),
        p99: percentile(&samples, 99.0),
        max: samples[samples.len() - 1],
    })
}

/// Median of samples (the lower middle for an even count), `None` when empty.
pub fn median(mut samples: Vec<Duration>) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    Some(samples[(samples.len() - 1) / 2])
}

/// A duration in milliseconds with 2 decimals, e.g. `1.23 ms`.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// `p50 X ms, p99 Y ms, max Z ms (n=N)`, or `no samples`.
pub fn describe(s: Option<Summary>) -> String {
    match s {
        Some(s) => format!("p50 {}, p99 {}, max {} (n={})", ms(s.p50), ms(s.p99), ms(s.max), s.n),
        None => "no samples".to_string(),
    }
}

/// Failed requests grouped by kind (`HTTP 409`, `transport`, ...): count and first message.
#[derive(Debug, Default)]
pub struct Errors {
    by_kind: BTreeMap<String, (u64, String)>,
}

impl Errors {
    pub fn add(&mut self, kind: impl Into<String>, message: impl Into<String>) {
        let e = self.by_kind.entry(kind.into()).or_insert_with(|| (0, message.into()));
        e.0 += 1;
    }

    pub fn merge(&mut self, other: Errors) {
        for (k, (n, msg)) in other.by_kind {
            let e = self.by_kind.entry(k).or_insert((0, msg));
            e.0 += n;
        }
    }

    pub fn total(&self) -> u64 {
        self.by_kind.values().map(|(n, _)| n).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_kind.is_empty()
    }

    /// One clause per kind: `HTTP 409 x12 (first: "...")`.
    pub fn describe(&self) -> String {
        self.by_kind.iter().map(|(k, (n, msg))| format!("{k} x{n} (first: {msg:?})")).collect::<Vec<_>>().join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let s = summarize(v).expect("samples");
        assert_eq!(s.n, 100);
        assert_eq!(s.p50, Duration::from_millis(50));
        assert_eq!(s.p99, Duration::from_millis(99));
        assert_eq!(s.max, Duration::from_millis(100));
        let one = summarize(vec![Duration::from_millis(7)]).expect("one sample");
        assert_eq!((one.p50, one.p99), (Duration::from_millis(7), Duration::from_millis(7)));
        assert!(summarize(Vec::new()).is_none());
    }

    #[test]
    fn median_and_errors() {
        let m = median(vec![Duration::from_millis(3), Duration::from_millis(1), Duration::from_millis(2)]);
        assert_eq!(m, Some(Duration::from_millis(2)));
        let mut a = Errors::default();
        a.add("HTTP 409", "conflict");
        let mut b = Errors::default();
        b.add("HTTP 409", "other");
        b.add("transport", "reset");
        a.merge(b);
        assert_eq!(a.total(), 3);
        assert!(a.describe().contains("HTTP 409 x2 (first: \"conflict\")"));
    }
}
