//! Node selection by labels and fields: `nodeSelector`, required and preferred node affinity
//! (upstream `component-helpers/scheduling/corev1/nodeaffinity`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeSelector, NodeSelectorRequirement, NodeSelectorTerm};

/// Whether `labels` carry every key/value of `selector` (a pod's `nodeSelector`).
pub fn matches_node_selector(selector: &[(String, String)], labels: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Whether a node with `name` and `labels` matches any term of a required node selector.
pub fn matches_required(selector: &NodeSelector, name: &str, labels: &BTreeMap<String, String>) -> bool {
    selector.node_selector_terms.iter().any(|t| matches_term(t, name, labels))
}

/// Whether a node matches one term: all its expressions and fields. A term with neither
/// matches nothing.
pub fn matches_term(term: &NodeSelectorTerm, name: &str, labels: &BTreeMap<String, String>) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs.iter().all(|r| matches_expression(r, labels.get(&r.key).map(String::as_str)))
        && fields.iter().all(|r| matches_field(r, name))
}

/// A label requirement against the node's value of its key (`None`: the label is absent).
fn matches_expression(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| values.iter().all(|x| x != v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), [bound]) = (value, values) else { return false };
            let (Ok(v), Ok(bound)) = (v.parse::<i64>(), bound.parse::<i64>()) else { return false };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// A field requirement; only `metadata.name` is a node field selectors may use.
fn matches_field(r: &NodeSelectorRequirement, name: &str) -> bool {
    if r.key != "metadata.name" {
        return false;
    }
    let values = r.values.as_deref().unwrap_or_default();
    match r.operator.as_str() {
        "In" => values.iter().any(|v| v == name),
        "NotIn" => values.iter().all(|v| v != name),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(key: &str, op: &str, values: &[&str]) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        }
    }

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn expressions() {
        let node = labels(&[("zone", "a"), ("cores", "8")]);
        let cases = [
            (req("zone", "In", &["a", "b"]), true),
            (req("zone", "In", &["b"]), false),
            (req("missing", "In", &["a"]), false),
            (req("zone", "NotIn", &["b"]), true),
            (req("zone", "NotIn", &["a"]), false),
            (req("missing", "NotIn", &["a"]), true),
            (req("zone", "Exists", &[]), true),
            (req("missing", "Exists", &[]), false),
            (req("missing", "DoesNotExist", &[]), true),
            (req("zone", "DoesNotExist", &[]), false),
            (req("cores", "Gt", &["4"]), true),
            (req("cores", "Gt", &["8"]), false),
            (req("cores", "Lt", &["16"]), true),
            (req("cores", "Lt", &["x"]), false),
            (req("zone", "Gt", &["1"]), false),
            (req("missing", "Lt", &["1"]), false),
            (req("cores", "Gt", &["1", "2"]), false),
            (req("zone", "Bogus", &["a"]), false),
        ];
        for (r, want) in cases {
            let term = NodeSelectorTerm { match_expressions: Some(vec![r.clone()]), match_fields: None };
            assert_eq!(matches_term(&term, "n1", &node), want, "{r:?}");
        }
    }

    #[test]
    fn fields_and_terms() {
        let node = labels(&[("zone", "a")]);
        let field = |op: &str, v: &[&str]| NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![req("metadata.name", op, v)]),
        };
        assert!(matches_term(&field("In", &["n1"]), "n1", &node));
        assert!(!matches_term(&field("In", &["n2"]), "n1", &node));
        assert!(matches_term(&field("NotIn", &["n2"]), "n1", &node));
        let bad_key =
            NodeSelectorTerm { match_expressions: None, match_fields: Some(vec![req("spec.x", "In", &["n1"])]) };
        assert!(!matches_term(&bad_key, "n1", &node));
        // An empty term matches nothing; terms are ORed; within a term requirements are ANDed.
        let empty = NodeSelectorTerm::default();
        assert!(!matches_term(&empty, "n1", &node));
        let both = NodeSelectorTerm {
            match_expressions: Some(vec![req("zone", "In", &["a"])]),
            match_fields: Some(vec![req("metadata.name", "In", &["n2"])]),
        };
        assert!(!matches_term(&both, "n1", &node));
        let sel = NodeSelector { node_selector_terms: vec![empty, both, field("In", &["n1"])] };
        assert!(matches_required(&sel, "n1", &node));
        assert!(!matches_required(&NodeSelector { node_selector_terms: vec![] }, "n1", &node));
    }

    #[test]
    fn node_selector() {
        let node = labels(&[("disk", "ssd"), ("zone", "a")]);
        let sel = |kv: &[(&str, &str)]| kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        assert!(matches_node_selector(&sel(&[]), &node));
        assert!(matches_node_selector(&sel(&[("disk", "ssd")]), &node));
        assert!(!matches_node_selector(&sel(&[("disk", "ssd"), ("zone", "b")]), &node));
        assert!(!matches_node_selector(&sel(&[("gpu", "true")]), &node));
    }
}
