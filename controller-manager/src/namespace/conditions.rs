//! The status conditions of a terminating namespace, as upstream reports them
//! (`NamespaceDeletionContentFailure`, `NamespaceContentRemaining`, ...), from one round of
//! deletes.

use k8s_openapi::api::core::v1::NamespaceCondition;

use super::content::Remaining;

fn condition(type_: &str, status: bool, reason: &str, message: String) -> NamespaceCondition {
    NamespaceCondition {
        type_: type_.to_string(),
        status: if status { "True" } else { "False" }.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message),
        last_transition_time: None,
    }
}

/// The five deletion conditions for what `remaining` reports.
pub fn for_remaining(remaining: &Remaining) -> Vec<NamespaceCondition> {
    let mut out = vec![
        condition(
            "NamespaceDeletionDiscoveryFailure",
            false,
            "ResourcesDiscovered",
            "All resources successfully discovered".into(),
        ),
        condition(
            "NamespaceDeletionGroupVersionParsingFailure",
            false,
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed".into(),
        ),
    ];
    out.push(if remaining.failures.is_empty() {
        condition(
            "NamespaceDeletionContentFailure",
            false,
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization".into(),
        )
    } else {
        let message = format!(
            "Failed to delete all resource types, {} remaining: {}",
            remaining.failures.len(),
            remaining.failures.join(", ")
        );
        condition("NamespaceDeletionContentFailure", true, "ContentDeletionFailed", message)
    });
    out.push(if remaining.objects.is_empty() {
        condition("NamespaceContentRemaining", false, "ContentRemoved", "All content successfully removed".into())
    } else {
        let parts: Vec<String> =
            remaining.objects.iter().map(|(r, n)| format!("{r} has {n} resource instances")).collect();
        condition(
            "NamespaceContentRemaining",
            true,
            "SomeResourcesRemain",
            format!("Some resources are remaining: {}", parts.join(", ")),
        )
    });
    out.push(if remaining.finalizers.is_empty() {
        condition(
            "NamespaceFinalizersRemaining",
            false,
            "ContentHasNoFinalizers",
            "All content-preserving finalizers finished".into(),
        )
    } else {
        let parts: Vec<String> =
            remaining.finalizers.iter().map(|(f, n)| format!("{f} in {n} resource instances")).collect();
        let message = format!("Some content in the namespace has finalizers remaining: {}", parts.join(", "));
        condition("NamespaceFinalizersRemaining", true, "SomeFinalizersRemain", message)
    });
    out
}

/// Whether `current` already says what `want` says (transition times aside).
pub fn same(current: &[NamespaceCondition], want: &[NamespaceCondition]) -> bool {
    want.iter().all(|w| {
        current
            .iter()
            .any(|c| c.type_ == w.type_ && c.status == w.status && c.reason == w.reason && c.message == w.message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_content_is_reported() {
        let mut r = Remaining::default();
        r.objects.insert("pods".into(), 2);
        r.finalizers.insert("example.com/hold".into(), 1);
        let c = for_remaining(&r);
        let get = |t: &str| c.iter().find(|c| c.type_ == t).expect("condition");
        assert_eq!(get("NamespaceContentRemaining").status, "True");
        assert_eq!(
            get("NamespaceContentRemaining").message.as_deref(),
            Some("Some resources are remaining: pods has 2 resource instances")
        );
        assert_eq!(get("NamespaceFinalizersRemaining").reason.as_deref(), Some("SomeFinalizersRemain"));
        assert_eq!(get("NamespaceDeletionContentFailure").status, "False");
        let done = for_remaining(&Remaining::default());
        assert!(done.iter().all(|c| c.status == "False"));
        assert!(!same(&done, &c));
        assert!(same(&c, &c));
    }
}
