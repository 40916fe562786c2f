//! The one way tests wait for a condition: poll it at a short fixed interval until it holds,
//! and fail naming what was awaited, for how long, and where the wait was written.

use std::future::Future;
use std::panic::Location;
use std::time::Duration;

/// How often a condition is polled.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Polls `f` every [`POLL_INTERVAL`] until it gives `Some`, and returns that value; panics with
/// `what`, `timeout` and the caller's location once `timeout` has passed. The deadline is on
/// tokio's clock, so a test with paused time advances to it instead of hanging.
///
/// ```ignore
/// let pod = eventually("web Running", secs(20), || async {
///     pods.get("web").await.ok().filter(|p| phase(p) == "Running")
/// })
/// .await;
/// ```
#[track_caller]
pub fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> impl Future<Output = T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let at = Location::caller();
    let what = what.to_owned();
    async move {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(v) = f().await {
                return v;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("timed out after {timeout:?} waiting for {what} (at {at})");
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

/// The blocking form of [`eventually`], for tests that drive blocking clients and processes
/// (kubectl, the Python client): polls `f` every [`POLL_INTERVAL`] on the calling thread.
#[track_caller]
pub fn eventually_blocking<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if std::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_returns_the_first_value() {
        let mut n = 0;
        let v = eventually_blocking("n to reach 3", Duration::from_secs(5), || {
            n += 1;
            (n >= 3).then_some(n)
        });
        assert_eq!(v, 3);
    }

    #[test]
    #[should_panic(expected = "timed out after 200ms waiting for the impossible")]
    fn blocking_panics_with_what_and_the_timeout() {
        eventually_blocking("the impossible", Duration::from_millis(200), || None::<()>);
    }

    #[tokio::test(start_paused = true)]
    async fn async_returns_the_first_value() {
        let mut n = 0;
        let v = eventually("n to reach 3", Duration::from_secs(5), || {
            n += 1;
            let v = n;
            async move { (v >= 3).then_some(v) }
        })
        .await;
        assert_eq!(v, 3);
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "timed out after 1s waiting for the impossible (at testkit/src/eventually.rs")]
    async fn async_panics_with_what_the_timeout_and_the_caller() {
        eventually("the impossible", Duration::from_secs(1), || async { None::<()> }).await;
    }
}
