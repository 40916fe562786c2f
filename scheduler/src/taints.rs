//! Taints and tolerations (upstream `v1helper.TolerationsTolerateTaint`).

use k8s_openapi::api::core::v1::{Taint, Toleration};

/// The taint the node lifecycle controller puts on cordoned nodes; tolerating it (NoSchedule)
/// lets a pod onto an unschedulable node, as DaemonSet pods do.
pub const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";
/// The taint of nodes that are not Ready; tolerating it (NoSchedule) lets a pod onto them.
pub const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";

/// Whether `toleration` tolerates a taint with `key`, `value` and `effect`.
pub fn tolerates(toleration: &Toleration, key: &str, value: &str, effect: &str) -> bool {
    if let Some(e) = toleration.effect.as_deref().filter(|e| !e.is_empty()) {
        if e != effect {
            return false;
        }
    }
    let operator = toleration.operator.as_deref().unwrap_or("Equal");
    match toleration.key.as_deref().filter(|k| !k.is_empty()) {
        // An empty key with operator Exists matches every key.
        None => operator == "Exists",
        Some(k) if k != key => false,
        Some(_) => match operator {
            "Exists" => true,
            "Equal" | "" => toleration.value.as_deref().unwrap_or("") == value,
            _ => false,
        },
    }
}

/// Whether any of `tolerations` tolerates the taint.
pub fn tolerated(tolerations: &[Toleration], key: &str, value: &str, effect: &str) -> bool {
    tolerations.iter().any(|t| tolerates(t, key, value, effect))
}

/// The first NoSchedule/NoExecute taint of `taints` that `tolerations` do not tolerate.
pub fn untolerated<'a>(taints: &'a [Taint], tolerations: &[Toleration]) -> Option<&'a Taint> {
    taints.iter().find(|t| {
        (t.effect == "NoSchedule" || t.effect == "NoExecute")
            && !tolerated(tolerations, &t.key, t.value.as_deref().unwrap_or(""), &t.effect)
    })
}

/// The number of PreferNoSchedule taints `tolerations` do not tolerate (for scoring).
pub fn untolerated_preferences(taints: &[Taint], tolerations: &[Toleration]) -> i64 {
    taints
        .iter()
        .filter(|t| {
            t.effect == "PreferNoSchedule"
                && !tolerated(tolerations, &t.key, t.value.as_deref().unwrap_or(""), &t.effect)
        })
        .count() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tol(key: &str, op: &str, value: &str, effect: &str) -> Toleration {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        Toleration {
            key: opt(key),
            operator: opt(op),
            value: opt(value),
            effect: opt(effect),
            toleration_seconds: None,
        }
    }

    fn taint(key: &str, value: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            value: (!value.is_empty()).then(|| value.to_string()),
            effect: effect.into(),
            time_added: None,
        }
    }

    #[test]
    fn toleration_matching() {
        // (toleration, taint key, value, effect, tolerated)
        let cases = [
            (tol("k", "Equal", "v", "NoSchedule"), "k", "v", "NoSchedule", true),
            (tol("k", "", "v", "NoSchedule"), "k", "v", "NoSchedule", true),
            (tol("k", "Equal", "v", "NoSchedule"), "k", "w", "NoSchedule", false),
            (tol("k", "Equal", "v", "NoSchedule"), "k", "v", "NoExecute", false),
            (tol("k", "Equal", "v", ""), "k", "v", "NoExecute", true),
            (tol("k", "Exists", "", ""), "k", "anything", "NoSchedule", true),
            (tol("k", "Exists", "", ""), "other", "", "NoSchedule", false),
            (tol("", "Exists", "", ""), "any", "thing", "NoExecute", true),
            (tol("", "Exists", "", "NoSchedule"), "any", "", "NoExecute", false),
            (tol("", "Equal", "", ""), "any", "", "NoSchedule", false),
            (tol("k", "Equal", "", "NoSchedule"), "k", "", "NoSchedule", true),
            (tol("k", "Bogus", "v", ""), "k", "v", "NoSchedule", false),
        ];
        for (i, (t, key, value, effect, want)) in cases.iter().enumerate() {
            assert_eq!(tolerates(t, key, value, effect), *want, "case {i}: {t:?} vs {key}={value}:{effect}");
        }
    }

    #[test]
    fn untolerated_taints() {
        let taints =
            vec![taint("soft", "", "PreferNoSchedule"), taint("a", "1", "NoSchedule"), taint("b", "", "NoExecute")];
        assert_eq!(untolerated(&taints, &[]).map(|t| t.key.as_str()), Some("a"));
        assert_eq!(untolerated(&taints, &[tol("a", "Exists", "", "")]).map(|t| t.key.as_str()), Some("b"));
        assert!(untolerated(&taints, &[tol("", "Exists", "", "")]).is_none());
        assert_eq!(untolerated_preferences(&taints, &[]), 1);
        assert_eq!(untolerated_preferences(&taints, &[tol("soft", "Exists", "", "PreferNoSchedule")]), 0);
    }
}
