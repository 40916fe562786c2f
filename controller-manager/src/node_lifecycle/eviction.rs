//! When a pod on a node with NoExecute taints must go (upstream taint eviction controller,
//! `pkg/controller/tainteviction`): at once when some taint is not tolerated, else when the
//! shortest `tolerationSeconds` of the tolerations used runs out, never when every toleration
//! used is unbounded.
//!
//! Each taint's clock starts at its `timeAdded`, or at the pod's creation when the pod came to
//! the tainted node later (upstream counts from when it first saw the pod on the tainted node).

use k8s_openapi::api::core::v1::{Pod, Taint};

use super::taints::{tolerates, NO_EXECUTE};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eviction {
    Never,
    Now,
    At(jiff::Timestamp),
}

/// When `pod` is to be evicted because of the NoExecute taints among `taints`.
pub fn eviction_time(taints: &[Taint], pod: &Pod) -> Eviction {
    let tolerations = pod.spec.as_ref().and_then(|s| s.tolerations.as_deref()).unwrap_or_default();
    let created = pod.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let mut earliest: Option<jiff::Timestamp> = None;
    for taint in taints.iter().filter(|t| t.effect == NO_EXECUTE) {
        // The first toleration that matches is the one used, as upstream.
        let Some(used) = tolerations.iter().find(|t| tolerates(t, taint)) else { return Eviction::Now };
        let Some(seconds) = used.toleration_seconds else { continue };
        let start = match (taint.time_added.as_ref().map(|t| t.0), created) {
            (Some(added), Some(created)) => added.max(created),
            (Some(t), None) | (None, Some(t)) => t,
            (None, None) => return Eviction::Now,
        };
        let at = start.checked_add(jiff::SignedDuration::from_secs(seconds.max(0))).unwrap_or(start);
        earliest = Some(earliest.map_or(at, |e| e.min(at)));
    }
    earliest.map_or(Eviction::Never, Eviction::At)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_lifecycle::taints::{NOT_READY, UNREACHABLE};
    use k8s_openapi::api::core::v1::{PodSpec, Toleration};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn ts(secs: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    fn taint(key: &str, effect: &str, added: i64) -> Taint {
        Taint { key: key.into(), effect: effect.into(), value: None, time_added: Some(Time(ts(added))) }
    }

    fn tol(key: &str, seconds: Option<i64>) -> Toleration {
        Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some(NO_EXECUTE.into()),
            toleration_seconds: seconds,
            value: None,
        }
    }

    fn pod(created: i64, tolerations: Vec<Toleration>) -> Pod {
        Pod {
            metadata: ObjectMeta { creation_timestamp: Some(Time(ts(created))), ..Default::default() },
            spec: Some(PodSpec { tolerations: Some(tolerations), ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn eviction_times() {
        let unreachable = taint(UNREACHABLE, NO_EXECUTE, 100);
        let not_ready = taint(NOT_READY, NO_EXECUTE, 50);
        let cases = [
            ("no NoExecute taints", vec![taint(UNREACHABLE, "NoSchedule", 100)], pod(0, vec![]), Eviction::Never),
            ("not tolerated", vec![unreachable.clone()], pod(0, vec![tol(NOT_READY, None)]), Eviction::Now),
            ("tolerated forever", vec![unreachable.clone()], pod(0, vec![tol(UNREACHABLE, None)]), Eviction::Never),
            (
                "seconds from timeAdded",
                vec![unreachable.clone()],
                pod(0, vec![tol(UNREACHABLE, Some(2))]),
                Eviction::At(ts(102)),
            ),
            (
                "pod came later",
                vec![unreachable.clone()],
                pod(130, vec![tol(UNREACHABLE, Some(2))]),
                Eviction::At(ts(132)),
            ),
            (
                "negative seconds",
                vec![unreachable.clone()],
                pod(0, vec![tol(UNREACHABLE, Some(-5))]),
                Eviction::At(ts(100)),
            ),
            (
                "shortest of two taints",
                vec![unreachable.clone(), not_ready.clone()],
                pod(0, vec![tol(UNREACHABLE, Some(300)), tol(NOT_READY, Some(10))]),
                Eviction::At(ts(60)),
            ),
            (
                "one of two not tolerated",
                vec![unreachable.clone(), not_ready],
                pod(0, vec![tol(UNREACHABLE, Some(300))]),
                Eviction::Now,
            ),
            (
                "first matching toleration is used",
                vec![unreachable],
                pod(0, vec![tol(UNREACHABLE, Some(5)), tol(UNREACHABLE, None)]),
                Eviction::At(ts(105)),
            ),
        ];
        for (name, taints, pod, want) in cases {
            assert_eq!(eviction_time(&taints, &pod), want, "{name}");
        }
    }
}
