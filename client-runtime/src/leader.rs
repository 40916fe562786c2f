//! Leader election through a `coordination.k8s.io/v1` Lease (upstream `client-go/tools/leaderelection`
//! with its `LeaseLock`): among the processes that run the same component, exactly one holds the
//! Lease and acts; the others wait and take over within a lease duration when it stops renewing.
//!
//! The rules are upstream's:
//! - A candidate acquires the Lease when nobody holds it, or when the record it last observed has
//!   not changed for `lease_duration` — measured on the candidate's own clock from when it saw
//!   the change, never by comparing timestamps written by another host (clock skew).
//! - The holder renews every `retry_period`; if it cannot renew for `renew_deadline` it stops
//!   leading (its work is cancelled) before anyone else may take over (`renew_deadline` <
//!   `lease_duration`).
//! - Every write is a compare-and-swap on the Lease's resourceVersion, so two candidates never
//!   both succeed.
//! - A holder that stops gracefully releases the Lease (holder cleared, duration 1 s), so a
//!   successor does not wait out the full duration (`ReleaseOnCancel`).

use std::future::Future;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::Client;
use tokio_util::sync::CancellationToken;

/// Upstream defaults (kube-controller-manager, kube-scheduler).
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);
pub const RETRY_PERIOD: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct Config {
    pub namespace: String,
    pub name: String,
    /// This candidate's identity (upstream: hostname plus a unique suffix).
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Config {
    /// A Lease `namespace/name` for `identity`, with upstream's durations.
    pub fn new(namespace: &str, name: &str, identity: &str) -> Self {
        Config {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: LEASE_DURATION,
            renew_deadline: RENEW_DEADLINE,
            retry_period: RETRY_PERIOD,
        }
    }
}

/// Why a try to acquire or renew did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("lease {lease} is held by {holder}")]
    Held { lease: String, holder: String },
    #[error("{action} lease {lease}: {source}")]
    Api {
        action: &'static str,
        lease: String,
        #[source]
        source: kube::Error,
    },
}

/// One candidate.
pub struct Elector {
    api: Api<Lease>,
    cfg: Config,
    /// The spec last read and when this candidate saw it change.
    observed: Option<(LeaseSpec, Instant)>,
}

impl Elector {
    pub fn new(client: Client, cfg: Config) -> Self {
        Elector { api: Api::namespaced(client, &cfg.namespace), cfg, observed: None }
    }

    fn lease(&self) -> String {
        format!("{}/{}", self.cfg.namespace, self.cfg.name)
    }

    fn api_err(&self, action: &'static str, source: kube::Error) -> Error {
        Error::Api { action, lease: self.lease(), source }
    }

    /// Runs `lead` while this candidate holds the Lease; returns when `stop` is cancelled (after
    /// releasing the Lease if held) or when leadership is lost (after cancelling `lead`'s token
    /// and waiting for it to return). As upstream, a component that loses its lease should exit.
    pub async fn run<F, Fut>(mut self, stop: CancellationToken, lead: F) -> Result<(), Error>
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(()) => break,
                Err(e) => tracing::debug!(error = %e, "lease not acquired"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.retry_period) => {}
                _ = stop.cancelled() => return Ok(()),
            }
        }
        tracing::info!(lease = %self.lease(), identity = %self.cfg.identity, "became leader");
        let token = stop.child_token();
        let work = tokio::spawn(lead(token.clone()));
        let mut last_renew = Instant::now();
        let lost = loop {
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.retry_period) => {}
                _ = stop.cancelled() => break None,
            }
            match self.try_acquire_or_renew().await {
                Ok(()) => last_renew = Instant::now(),
                Err(e) if last_renew.elapsed() >= self.cfg.renew_deadline => break Some(e),
                Err(e) => tracing::warn!(error = %e, "lease renewal failed; retrying"),
            }
        };
        token.cancel();
        let _ = work.await;
        match lost {
            Some(e) => {
                tracing::error!(lease = %self.lease(), error = %e, "leadership lost");
                Err(e)
            }
            None => {
                self.release().await;
                Ok(())
            }
        }
    }

    /// One attempt (upstream `tryAcquireOrRenew`).
    pub async fn try_acquire_or_renew(&mut self) -> Result<(), Error> {
        let now = MicroTime(Timestamp::now());
        let me = self.cfg.identity.clone();
        let duration_s = i32::try_from(self.cfg.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let current = match self.api.get_opt(&self.cfg.name).await {
            Ok(l) => l,
            Err(e) => return Err(self.api_err("get", e)),
        };
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(self.cfg.name.clone()), ..Default::default() },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me),
                    lease_duration_seconds: Some(duration_s),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            let created =
                self.api.create(&PostParams::default(), &lease).await.map_err(|e| self.api_err("create", e))?;
            self.observed = Some((created.spec.unwrap_or_default(), Instant::now()));
            return Ok(());
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let changed = self.observed.as_ref().is_none_or(|(seen, _)| *seen != spec);
        if changed {
            self.observed = Some((spec.clone(), Instant::now()));
        }
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let held_by_me = holder == self.cfg.identity;
        let observed_at = self.observed.as_ref().map(|(_, at)| *at).unwrap_or_else(Instant::now);
        let duration = Duration::from_secs(u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0));
        if !holder.is_empty() && !held_by_me && observed_at.elapsed() < duration {
            return Err(Error::Held { lease: self.lease(), holder });
        }
        let mut next = spec.clone();
        if !held_by_me {
            next.acquire_time = Some(now.clone());
            next.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + i32::from(!holder.is_empty()));
        }
        next.holder_identity = Some(self.cfg.identity.clone());
        next.lease_duration_seconds = Some(duration_s);
        next.renew_time = Some(now);
        lease.spec = Some(next);
        // `replace` carries the resourceVersion read above: a compare-and-swap.
        let updated = self
            .api
            .replace(&self.cfg.name, &PostParams::default(), &lease)
            .await
            .map_err(|e| self.api_err("update", e))?;
        self.observed = Some((updated.spec.unwrap_or_default(), Instant::now()));
        Ok(())
    }

    /// Gives the Lease up (holder cleared, 1 s duration) if this candidate still holds it.
    async fn release(&mut self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.cfg.name).await else { return };
        let Some(spec) = lease.spec.as_mut() else { return };
        if spec.holder_identity.as_deref() != Some(self.cfg.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        match self.api.replace(&self.cfg.name, &PostParams::default(), &lease).await {
            Ok(_) => tracing::info!(lease = %self.lease(), "lease released"),
            Err(e) => tracing::warn!(lease = %self.lease(), error = %e, "releasing the lease failed"),
        }
    }
}
