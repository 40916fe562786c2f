//! The one error policy of every controller: what a failed reconcile does next.
//!
//! As upstream's default controller rate limiter (`ItemExponentialFailureRateLimiter`): per object,
//! the delay starts at [`BASE`] and doubles with each consecutive failure up to [`MAX`], and a
//! successful reconcile forgets the object's failures. On top of that:
//! - a conflict (409: the cache was behind a write) is retried fast — its delay is capped at
//!   [`CONFLICT_MAX`] — and logged at debug;
//! - an invalid request (422: the object or what it asks for is rejected as such) is not
//!   hot-looped: it waits at least [`INVALID_MIN`] (a change to the object triggers a reconcile
//!   anyway);
//! - every other failure is logged at warn with the object named.
//!
//! Delays carry up to 10 % jitter so that objects failing together do not retry in lockstep.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::Mutex;
use std::time::Duration;

/// First retry delay (upstream 5 ms).
pub const BASE: Duration = Duration::from_millis(5);
/// Longest retry delay (upstream 1,000 s).
pub const MAX: Duration = Duration::from_secs(1000);
/// Longest delay before a conflict is retried.
pub const CONFLICT_MAX: Duration = Duration::from_secs(1);
/// Shortest delay before an invalid (422) request is retried.
pub const INVALID_MIN: Duration = Duration::from_secs(60);

/// What kind of failure a reconcile error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Conflict,
    Invalid,
    Other,
}

/// The API status code in an error's source chain, if any (a `kube::Error::Api`).
pub fn api_code(err: &(dyn StdError + 'static)) -> Option<u16> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(kube::Error::Api(status)) = e.downcast_ref::<kube::Error>() {
            return Some(status.code);
        }
        cur = e.source();
    }
    None
}

/// A failure a controller knows to be a lost race with another writer though the API did not
/// answer 409 (e.g. a JSON patch whose `test` precondition failed): classified as a conflict.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Conflict(pub String);

/// Classifies an error by the API status (or a [`Conflict`]) in its source chain.
pub fn classify(err: &(dyn StdError + 'static)) -> Class {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.downcast_ref::<Conflict>().is_some() {
            return Class::Conflict;
        }
        cur = e.source();
    }
    match api_code(err) {
        Some(409) => Class::Conflict,
        Some(422) => Class::Invalid,
        _ => Class::Other,
    }
}

/// A failed API call as upstream prints it in Events and conditions (the Status message, not
/// the Rust wrapper).
pub fn status_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if !s.message.is_empty() => s.message.clone(),
        other => other.to_string(),
    }
}

/// Whether a create failed because the namespace is being deleted (then nothing is to be done:
/// retrying cannot succeed).
pub fn namespace_terminating(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => {
            s.details.as_ref().is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating"))
        }
        _ => false,
    }
}

/// Consecutive failures per object key.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, u32>) -> R) -> R {
        f(&mut self.failures.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Forgets the object's failures (after a successful reconcile).
    pub fn reset(&self, key: &str) {
        self.with(|m| m.remove(key));
    }

    /// Records one more failure of `key` and returns the delay before its retry (no jitter).
    pub fn failed(&self, key: &str, class: Class) -> Duration {
        let n = self.with(|m| {
            let n = m.entry(key.to_string()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        });
        delay(n, class)
    }

    /// Failures on record for `key`.
    pub fn failures(&self, key: &str) -> u32 {
        self.with(|m| m.get(key).copied().unwrap_or(0))
    }
}

/// The delay after the `n`-th consecutive failure (n ≥ 1) of the given class.
pub fn delay(n: u32, class: Class) -> Duration {
    let exp = n.saturating_sub(1).min(31);
    let d = BASE.saturating_mul(1u32 << exp).min(MAX);
    match class {
        Class::Conflict => d.min(CONFLICT_MAX),
        Class::Invalid => d.max(INVALID_MIN),
        Class::Other => d,
    }
}

/// `d` plus up to 10 % jitter.
pub fn jittered(d: Duration) -> Duration {
    let extra = rand::random::<f64>() * 0.1;
    d + d.mul_f64(extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_five_ms_to_the_cap_and_reset_on_success() {
        assert_eq!(delay(1, Class::Other), Duration::from_millis(5));
        assert_eq!(delay(2, Class::Other), Duration::from_millis(10));
        assert_eq!(delay(11, Class::Other), Duration::from_millis(5 * 1024));
        assert_eq!(delay(40, Class::Other), MAX);
        assert_eq!(delay(u32::MAX, Class::Other), MAX);
        let b = Backoff::default();
        assert_eq!(b.failed("a", Class::Other), Duration::from_millis(5));
        assert_eq!(b.failed("a", Class::Other), Duration::from_millis(10));
        assert_eq!(b.failed("b", Class::Other), Duration::from_millis(5), "per object");
        b.reset("a");
        assert_eq!(b.failures("a"), 0);
        assert_eq!(b.failed("a", Class::Other), Duration::from_millis(5));
    }

    #[test]
    fn conflicts_stay_fast_and_invalid_objects_wait() {
        assert_eq!(delay(1, Class::Conflict), Duration::from_millis(5));
        assert_eq!(delay(30, Class::Conflict), CONFLICT_MAX);
        assert_eq!(delay(1, Class::Invalid), INVALID_MIN);
        assert_eq!(delay(40, Class::Invalid), MAX);
    }

    #[test]
    fn jitter_adds_at_most_a_tenth() {
        for _ in 0..100 {
            let j = jittered(Duration::from_secs(10));
            assert!(j >= Duration::from_secs(10) && j <= Duration::from_secs(11), "{j:?}");
        }
    }

    #[test]
    fn classes_come_from_the_api_status_in_the_source_chain() {
        #[derive(Debug, thiserror::Error)]
        #[error("update thing: {0}")]
        struct Wrapper(#[source] kube::Error);
        let status =
            |code: u16| kube::Error::Api(Box::new(kube::core::Status { code, ..kube::core::Status::default() }));
        assert_eq!(classify(&Wrapper(status(409))), Class::Conflict);
        assert_eq!(classify(&Wrapper(status(422))), Class::Invalid);
        assert_eq!(classify(&Wrapper(status(500))), Class::Other);
        assert_eq!(classify(&std::io::Error::other("x")), Class::Other);
        #[derive(Debug, thiserror::Error)]
        #[error("patch taints: {0}")]
        struct Raced(#[source] Conflict);
        assert_eq!(classify(&Raced(Conflict("test failed".into()))), Class::Conflict);
    }
}
