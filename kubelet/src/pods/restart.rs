//! restartPolicy decisions for one container, from the latest instance the runtime has of it.
//!
//! Backoff follows the kubelet: the first restart is immediate, then the container waits 10 s,
//! 20 s, 40 s … (at most 300 s) after it exited before it starts again (`CrashLoopBackOff`). A
//! container that ran for 10 minutes (twice the cap, upstream's "stable") restarts at once again.

use std::time::Duration;

use jiff::Timestamp;

use crate::runtime::{ContainerState, ContainerStatus};

const INITIAL_BACKOFF: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// A run this long resets the backoff (upstream's `hasExpired`: twice the cap).
const STABLE_RUN: jiff::SignedDuration = jiff::SignedDuration::from_secs(600);

/// What to do about one spec container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// No instance yet: create attempt 0.
    Start,
    /// Created or running: nothing to do.
    Keep,
    /// Exited and to be restarted now as attempt `attempt`.
    Restart { attempt: u32 },
    /// Exited, to be restarted at `at` (in backoff).
    BackOff { at: Timestamp },
    /// Exited for good.
    Done,
}

/// Whether a container that exited with `exit_code` is restarted under `policy`
/// (`Always`, the default, `OnFailure` or `Never`).
pub fn should_restart(policy: &str, exit_code: i32) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

/// How long after the exit of a container that was already restarted `restarts` times the next
/// start waits.
pub fn backoff(restarts: u32) -> Duration {
    if restarts == 0 {
        return Duration::ZERO;
    }
    let doublings = (restarts - 1).min(16);
    INITIAL_BACKOFF.saturating_mul(1 << doublings).min(MAX_BACKOFF)
}

/// The next step for a container whose latest instance is `latest`.
pub fn next(policy: &str, latest: Option<&ContainerStatus>, now: Timestamp) -> Next {
    let Some(c) = latest else { return Next::Start };
    match c.state {
        ContainerState::Created | ContainerState::Running => Next::Keep,
        ContainerState::Exited | ContainerState::Unknown => {
            let code = c.exit_code.unwrap_or(-1);
            if !should_restart(policy, code) {
                return Next::Done;
            }
            let finished = c.finished_at.unwrap_or(now);
            if c.started_at.is_some_and(|s| finished.duration_since(s) > STABLE_RUN) {
                return Next::Restart { attempt: c.restart_count.saturating_add(1) };
            }
            let delay = jiff::SignedDuration::try_from(backoff(c.restart_count)).unwrap_or(jiff::SignedDuration::MAX);
            match finished.checked_add(delay) {
                Ok(at) if at > now => Next::BackOff { at },
                _ => Next::Restart { attempt: c.restart_count.saturating_add(1) },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exited(code: i32, restarts: u32, finished: Timestamp) -> ContainerStatus {
        ContainerStatus {
            id: "c".into(),
            sandbox_id: "s".into(),
            name: "app".into(),
            restart_count: restarts,
            state: ContainerState::Exited,
            created_at: finished,
            started_at: Some(finished),
            finished_at: Some(finished),
            exit_code: Some(code),
            reason: None,
            message: None,
            image: "busybox".into(),
            image_ref: "docker.io/library/busybox@sha256:0".into(),
            labels: Default::default(),
        }
    }

    #[test]
    fn policy_table() {
        let cases = [
            ("Always", 0, true),
            ("Always", 1, true),
            ("", 0, true),
            ("OnFailure", 0, false),
            ("OnFailure", 2, true),
            ("Never", 0, false),
            ("Never", 137, false),
        ];
        for (policy, code, want) in cases {
            assert_eq!(should_restart(policy, code), want, "{policy} {code}");
        }
    }

    #[test]
    fn backoff_doubles_to_the_cap() {
        let secs: Vec<u64> = [0, 1, 2, 3, 5, 6, 100, u32::MAX].iter().map(|r| backoff(*r).as_secs()).collect();
        assert_eq!(secs, vec![0, 10, 20, 40, 160, 300, 300, 300]);
    }

    #[test]
    fn next_steps() {
        let t0 = Timestamp::from_second(1_700_000_000).expect("time");
        let at = |s: i64| t0.checked_add(jiff::SignedDuration::from_secs(s)).expect("time");
        let mut running = exited(0, 0, t0);
        running.state = ContainerState::Running;
        // Deep in backoff, but it ran 11 minutes before it failed: restarted at once.
        let mut long_run = exited(1, 5, at(670));
        long_run.started_at = Some(at(10));
        let cases: Vec<(&str, Option<ContainerStatus>, Timestamp, Next)> = vec![
            ("Always", None, t0, Next::Start),
            ("Always", Some(running), t0, Next::Keep),
            ("Always", Some(exited(0, 0, t0)), t0, Next::Restart { attempt: 1 }),
            ("Always", Some(exited(1, 1, t0)), at(5), Next::BackOff { at: at(10) }),
            ("Always", Some(exited(1, 1, t0)), at(10), Next::Restart { attempt: 2 }),
            ("OnFailure", Some(exited(0, 0, t0)), t0, Next::Done),
            ("OnFailure", Some(exited(3, 2, t0)), at(1), Next::BackOff { at: at(20) }),
            ("Never", Some(exited(3, 0, t0)), t0, Next::Done),
            ("Always", Some(long_run), at(700), Next::Restart { attempt: 6 }),
        ];
        for (policy, latest, now, want) in cases {
            assert_eq!(next(policy, latest.as_ref(), now), want, "{policy} {latest:?}");
        }
    }
}
