//! Container probes (liveness, readiness, startup) and lifecycle hooks, as upstream's prober
//! runs them: one task per probe of each running container, woken every `periodSeconds` after
//! `initialDelaySeconds`, a result changing only after `successThreshold` / `failureThreshold`
//! equal outcomes in a row.
//!
//! Initial results follow upstream: readiness starts failed, liveness succeeded, and a
//! container with a startup probe is not started until it succeeds; while it is not,
//! liveness and readiness are not run. A failed liveness or startup probe asks the pod worker
//! to kill the container (it is restarted per `restartPolicy`) and holds until then.
//!
//! The checks themselves ([`check`]): exec through the runtime, httpGet (HTTP/1.1, HTTPS
//! without verification, same-host redirects followed), tcpSocket, and gRPC
//! (`grpc.health.v1.Health/Check` over h2c). Lifecycle hooks (`postStart`, `preStop`) reuse them.

pub mod check;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, Probe};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::events::PodEvents;
use crate::runtime::Runtime;
use check::{Outcome, Target};

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Liveness,
    Readiness,
    Startup,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
            Kind::Startup => "Startup",
        }
    }
}

/// The probe results of one container instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Results {
    /// Readiness: true once the readiness probe succeeded (or there is none).
    pub ready: bool,
    /// Startup: true once the startup probe succeeded (or there is none).
    pub started: bool,
    /// A liveness or startup probe failed: the container is to be killed, with this message.
    pub kill: Option<(Kind, String)>,
}

/// Where probes report: the pod worker's wake-up, and `Unhealthy` Events about the container.
#[derive(Clone)]
pub struct Sink {
    pub wake: Arc<Notify>,
    pub events: PodEvents,
    /// The container's field path in the pod, for its Events.
    pub field_path: String,
}

/// The running probes of one container instance; dropping it stops them.
pub struct ContainerProbes {
    pub container_id: String,
    results: Arc<Mutex<Results>>,
    stop: CancellationToken,
    /// The worker acted on `kill` already.
    pub killing: bool,
}

impl Drop for ContainerProbes {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl ContainerProbes {
    pub fn results(&self) -> Results {
        self.results.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Whether `c` has any probe (else its container is started and ready when running).
pub fn has_probes(c: &Container) -> bool {
    c.liveness_probe.is_some() || c.readiness_probe.is_some() || c.startup_probe.is_some()
}

/// Timings of one probe with upstream's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

impl Timing {
    pub fn of(p: &Probe) -> Timing {
        let secs = |v: Option<i32>, default: u64, min: u64| {
            Duration::from_secs(v.and_then(|v| u64::try_from(v).ok()).unwrap_or(default).max(min))
        };
        let count = |v: Option<i32>, default: u32| v.and_then(|v| u32::try_from(v).ok()).unwrap_or(default).max(1);
        Timing {
            initial_delay: secs(p.initial_delay_seconds, 0, 0),
            period: secs(p.period_seconds, 10, 1),
            timeout: secs(p.timeout_seconds, 1, 1),
            success_threshold: count(p.success_threshold, 1),
            failure_threshold: count(p.failure_threshold, 3),
        }
    }
}

/// Counts equal outcomes in a row and says when the result flips (upstream's `resultRun`).
#[derive(Debug, Clone)]
pub struct Threshold {
    last: Option<bool>,
    run: u32,
}

impl Threshold {
    pub fn new() -> Self {
        Threshold { last: None, run: 0 }
    }

    /// Feeds one outcome; returns the new result once the threshold for it is reached.
    pub fn feed(&mut self, success: bool, t: &Timing) -> Option<bool> {
        if self.last == Some(success) {
            self.run = self.run.saturating_add(1);
        } else {
            self.last = Some(success);
            self.run = 1;
        }
        let needed = if success { t.success_threshold } else { t.failure_threshold };
        (self.run >= needed).then_some(success)
    }

    fn reset(&mut self) {
        self.last = None;
        self.run = 0;
    }
}

impl Default for Threshold {
    fn default() -> Self {
        Self::new()
    }
}

/// Starts the probes of container `c`, running as instance `container_id` since `started_at`.
pub fn start(
    runtime: Arc<dyn Runtime>,
    pod_ip: Option<IpAddr>,
    c: &Container,
    container_id: &str,
    started_at: Option<Timestamp>,
    sink: Sink,
) -> ContainerProbes {
    let results = Arc::new(Mutex::new(Results {
        ready: c.readiness_probe.is_none(),
        started: c.startup_probe.is_none(),
        kill: None,
    }));
    let stop = CancellationToken::new();
    for (kind, probe) in
        [(Kind::Startup, &c.startup_probe), (Kind::Liveness, &c.liveness_probe), (Kind::Readiness, &c.readiness_probe)]
    {
        let Some(probe) = probe.clone() else { continue };
        let task = ProbeTask {
            kind,
            probe,
            container: c.clone(),
            target: Target { runtime: runtime.clone(), container_id: container_id.to_string(), pod_ip },
            started_at: started_at.unwrap_or_else(Timestamp::now),
            results: results.clone(),
            sink: sink.clone(),
        };
        tokio::spawn(task.run(stop.clone()));
    }
    ContainerProbes { container_id: container_id.to_string(), results, stop, killing: false }
}

struct ProbeTask {
    kind: Kind,
    probe: Probe,
    container: Container,
    target: Target,
    started_at: Timestamp,
    results: Arc<Mutex<Results>>,
    sink: Sink,
}

impl ProbeTask {
    fn results(&self) -> std::sync::MutexGuard<'_, Results> {
        self.results.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn run(self, stop: CancellationToken) {
        let timing = Timing::of(&self.probe);
        let mut threshold = Threshold::new();
        let mut tick = tokio::time::interval(timing.period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let (started, killing) = {
                let r = self.results();
                (r.started, r.kill.is_some())
            };
            // Held after a kill request until the container is replaced (a new task set).
            if killing {
                continue;
            }
            match self.kind {
                // Done once started.
                Kind::Startup if started => return,
                Kind::Liveness | Kind::Readiness if !started => {
                    threshold.reset();
                    continue;
                }
                _ => {}
            }
            let since_start = Timestamp::now().duration_since(self.started_at);
            if since_start.as_secs() < i64::try_from(timing.initial_delay.as_secs()).unwrap_or(i64::MAX) {
                continue;
            }
            let outcome = tokio::select! {
                _ = stop.cancelled() => return,
                o = check::probe(&self.probe, &self.container, &self.target, timing.timeout) => o,
            };
            let success = matches!(outcome, Outcome::Success);
            if let Outcome::Failure(output) = &outcome {
                tracing::debug!(container = %self.container.name, probe = self.kind.name(), output, "probe failed");
                let message = format!("{} probe failed: {output}", self.kind.name());
                self.sink.events.warning(Some(self.sink.field_path.clone()), "Unhealthy", message);
            }
            let Some(result) = threshold.feed(success, &timing) else { continue };
            let changed = {
                let mut r = self.results();
                let before = r.clone();
                match (self.kind, result) {
                    (Kind::Readiness, ok) => r.ready = ok,
                    (Kind::Startup, true) => r.started = true,
                    (Kind::Liveness, true) => {}
                    (Kind::Liveness | Kind::Startup, false) => {
                        let output = match outcome {
                            Outcome::Failure(o) => o,
                            Outcome::Success => String::new(),
                        };
                        r.kill = Some((self.kind, output));
                    }
                }
                *r != before
            };
            if changed {
                self.sink.wake.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(success: u32, failure: u32) -> Timing {
        Timing {
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            success_threshold: success,
            failure_threshold: failure,
        }
    }

    #[test]
    fn a_result_flips_after_its_threshold_of_equal_outcomes() {
        let t = timing(2, 3);
        let mut th = Threshold::new();
        assert_eq!(th.feed(false, &t), None);
        assert_eq!(th.feed(false, &t), None);
        assert_eq!(th.feed(false, &t), Some(false));
        // A success breaks the run; two in a row are needed.
        assert_eq!(th.feed(true, &t), None);
        assert_eq!(th.feed(false, &t), None);
        assert_eq!(th.feed(true, &t), None);
        assert_eq!(th.feed(true, &t), Some(true));
        assert_eq!(th.feed(true, &t), Some(true));
    }

    #[test]
    fn timings_default_as_upstream() {
        let t = Timing::of(&Probe::default());
        assert_eq!(
            t,
            Timing {
                initial_delay: Duration::ZERO,
                period: Duration::from_secs(10),
                timeout: Duration::from_secs(1),
                success_threshold: 1,
                failure_threshold: 3,
            }
        );
        let p = Probe { period_seconds: Some(0), failure_threshold: Some(-1), ..Default::default() };
        let t = Timing::of(&p);
        assert_eq!((t.period, t.failure_threshold), (Duration::from_secs(1), 3));
    }
}
