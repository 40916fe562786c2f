//! Rolling-update arithmetic (upstream `deploymentutil`): maxSurge / maxUnavailable from ints or
//! percentages of the desired replicas (surge rounds up, unavailable rounds down; both zero
//! means one unavailable), and how far the new ReplicaSet may grow.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The default of both fenceposts.
const DEFAULT_FENCEPOST: &str = "25%";

/// `intstr.GetScaledValueFromIntOrPercent`.
pub fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> Result<i32, String> {
    match v {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let Some(pct) = s.strip_suffix('%') else {
                return Err(format!("invalid value for IntOrString: invalid type: string is not a percentage: {s:?}"));
            };
            let pct: i64 = pct.parse().map_err(|_| format!("invalid value {s:?}: not a percentage"))?;
            let scaled = pct * i64::from(total);
            let v = if round_up {
                scaled.div_euclid(100) + i64::from(scaled.rem_euclid(100) != 0)
            } else {
                scaled.div_euclid(100)
            };
            Ok(v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32)
        }
    }
}

/// `ResolveFenceposts`: (surge, unavailable) for `desired` replicas.
pub fn resolve(
    surge: Option<&IntOrString>,
    unavailable: Option<&IntOrString>,
    desired: i32,
) -> Result<(i32, i32), String> {
    let zero = IntOrString::Int(0);
    let surge = scaled_value(surge.unwrap_or(&zero), desired, true)?;
    let mut unavailable = scaled_value(unavailable.unwrap_or(&zero), desired, false)?;
    if surge == 0 && unavailable == 0 {
        // Validation forbids both zero, but rounding down can get there: allow one unavailable.
        unavailable = 1;
    }
    Ok((surge, unavailable))
}

/// `spec.replicas` (default 1).
pub fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// Whether the strategy is RollingUpdate (the default).
pub fn is_rolling_update(d: &Deployment) -> bool {
    strategy_type(d) == "RollingUpdate"
}

/// The strategy type, `RollingUpdate` when unset.
pub fn strategy_type(d: &Deployment) -> &str {
    d.spec.as_ref().and_then(|s| s.strategy.as_ref()).and_then(|s| s.type_.as_deref()).unwrap_or("RollingUpdate")
}

fn fenceposts(d: &Deployment) -> (i32, i32) {
    let default = IntOrString::String(DEFAULT_FENCEPOST.into());
    let ru = d.spec.as_ref().and_then(|s| s.strategy.as_ref()).and_then(|s| s.rolling_update.as_ref());
    let surge = ru.map_or(Some(&default), |r| r.max_surge.as_ref());
    let unavailable = ru.map_or(Some(&default), |r| r.max_unavailable.as_ref());
    // Validation rejects bad values; treat one that slipped through as zero.
    resolve(surge, unavailable, replicas(d)).unwrap_or((0, 1))
}

/// `MaxSurge`: 0 unless rolling.
pub fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling_update(d) {
        return 0;
    }
    fenceposts(d).0
}

/// `MaxUnavailable`: 0 unless rolling or when scaled to zero; never above the replicas.
pub fn max_unavailable(d: &Deployment) -> i32 {
    let desired = replicas(d);
    if !is_rolling_update(d) || desired == 0 {
        return 0;
    }
    fenceposts(d).1.min(desired)
}

/// `NewRSNewReplicas`: the size the new ReplicaSet may grow to now, given the sum of every
/// ReplicaSet's `spec.replicas` (`current_total`) and the new one's.
pub fn new_rs_new_replicas(d: &Deployment, current_total: i32, new_rs_replicas: i32) -> i32 {
    let desired = replicas(d);
    if !is_rolling_update(d) {
        return desired;
    }
    let max_total = desired + max_surge(d);
    if current_total >= max_total {
        return new_rs_replicas;
    }
    let up = (max_total - current_total).min(desired - new_rs_replicas);
    new_rs_replicas + up
}

/// How many old replicas a rolling update may scale down now (upstream `reconcileOldReplicaSets`'
/// `maxScaledDown`): keep `replicas - maxUnavailable` available, counting the new ReplicaSet's
/// not-yet-available pods as unavailable.
pub fn max_scaled_down(d: &Deployment, all_total: i32, new_rs_replicas: i32, new_rs_available: i32) -> i32 {
    let min_available = replicas(d) - max_unavailable(d);
    all_total - min_available - (new_rs_replicas - new_rs_available)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(replicas: i32, surge: serde_json::Value, unavailable: serde_json::Value) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "d"},
            "spec": {"replicas": replicas, "selector": {}, "template": {},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}},
        }))
        .unwrap()
    }

    #[test]
    fn fencepost_rounding() {
        // (replicas, maxSurge, maxUnavailable) → (surge, unavailable)
        let cases = [
            (10, "25%", "25%", 3, 2),
            (6, "25%", "25%", 2, 1),
            (4, "25%", "25%", 1, 1),
            (1, "25%", "25%", 1, 0),
            (3, "0%", "10%", 0, 1), // both round to zero → one unavailable
            (5, "50%", "0%", 3, 0),
            (200, "1%", "1%", 2, 2),
            (3, "100%", "100%", 3, 3),
        ];
        for (replicas, s, u, want_s, want_u) in cases {
            let d = deployment(replicas, serde_json::json!(s), serde_json::json!(u));
            assert_eq!((max_surge(&d), max_unavailable(&d)), (want_s, want_u), "{replicas} {s} {u}");
        }
        let d = deployment(3, serde_json::json!(2), serde_json::json!(5));
        assert_eq!((max_surge(&d), max_unavailable(&d)), (2, 3), "ints as given, unavailable capped at replicas");
        let d = deployment(0, serde_json::json!(1), serde_json::json!(1));
        assert_eq!(max_unavailable(&d), 0, "nothing is unavailable at zero replicas");
        assert!(scaled_value(&IntOrString::String("5".into()), 10, true).is_err());
    }

    #[test]
    fn defaults_and_recreate() {
        let d: Deployment =
            serde_json::from_value(serde_json::json!({"spec": {"replicas": 8, "selector": {}, "template": {}}}))
                .unwrap();
        assert_eq!((max_surge(&d), max_unavailable(&d)), (2, 2), "25%/25% when unset");
        let r: Deployment = serde_json::from_value(serde_json::json!({
            "spec": {"replicas": 8, "selector": {}, "template": {}, "strategy": {"type": "Recreate"}}}))
        .unwrap();
        assert_eq!((max_surge(&r), max_unavailable(&r)), (0, 0));
        assert_eq!(new_rs_new_replicas(&r, 8, 0), 8, "recreate scales straight to the desired count");
    }

    #[test]
    fn scale_up_amounts() {
        let d = deployment(6, serde_json::json!("25%"), serde_json::json!("25%")); // surge 2, unavailable 1
                                                                                   // (sum of all spec.replicas, new RS replicas) → new RS size
        let cases = [(6, 0, 2), (8, 2, 2), (7, 2, 3), (6, 4, 6), (5, 5, 6), (3, 0, 5), (9, 1, 1)];
        for (total, new, want) in cases {
            assert_eq!(new_rs_new_replicas(&d, total, new), want, "total {total} new {new}");
        }
    }

    #[test]
    fn scale_down_amounts() {
        let d = deployment(6, serde_json::json!("25%"), serde_json::json!("25%")); // min available 5
                                                                                   // (all spec.replicas, new RS replicas, new RS available) → how many old may go
        let cases = [(8, 2, 0, 1), (8, 2, 2, 3), (7, 1, 0, 1), (6, 0, 0, 1), (6, 6, 3, -2), (8, 2, 1, 2)];
        for (total, new, avail, want) in cases {
            assert_eq!(max_scaled_down(&d, total, new, avail), want, "{total} {new} {avail}");
        }
    }
}
