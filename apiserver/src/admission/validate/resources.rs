//! Resource lists and requirements: resource names, quantity syntax and sign, integer resources,
//! requests ≤ limits (hugepages and extended resources: requests = limits).

use crate::admission::errs::{self, child, key};
use crate::admission::labels::qualified_name;
use api::quantity::{self, Quantity};
use api::Cause;
use serde_json::Value;

fn is_hugepages(name: &str) -> bool {
    name.starts_with("hugepages-")
}

fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// Extended resources: fully qualified, not in the `kubernetes.io` domain, not `requests.` prefixed.
fn is_extended(name: &str) -> bool {
    !is_native(name) && !name.starts_with("requests.")
}

const STANDARD_CONTAINER: &[&str] = &["cpu", "memory", "ephemeral-storage"];

/// A quantity as JSON: normally a string, tolerated as a number.
fn quantity_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Parses the quantity at `path`, reporting syntax errors and negative values.
pub fn parse_nonnegative(out: &mut Vec<Cause>, path: &str, v: &Value) -> Option<Quantity> {
    let text = quantity_text(v).unwrap_or_default();
    match quantity::parse(&text) {
        Err(_) => {
            out.push(errs::invalid(path, v, quantity::FORMAT_MSG));
            None
        }
        Ok(q) => {
            if q.is_negative() {
                out.push(errs::invalid_str(path, &text, "must be greater than or equal to 0"));
            }
            Some(q)
        }
    }
}

/// A container/pod resource list (`requests` or `limits`): names and values.
fn container_list(out: &mut Vec<Cause>, list: Option<&Value>, path: &str) -> Vec<(String, Quantity, String)> {
    let mut parsed = Vec::new();
    let Some(m) = list.and_then(Value::as_object) else { return parsed };
    for (name, v) in m {
        let p = key(path, name);
        for msg in qualified_name(name) {
            out.push(errs::invalid_str(&p, name, &msg));
        }
        if !name.contains('/') {
            if !STANDARD_CONTAINER.contains(&name.as_str()) && !is_hugepages(name) {
                out.push(errs::invalid_str(&p, name, "must be a standard resource for containers"));
            }
        } else if !is_native(name) && !is_extended(name) {
            out.push(errs::invalid_str(&p, name, "doesn't follow extended resource name standard"));
        }
        if let Some(q) = parse_nonnegative(out, &p, v) {
            if is_extended(name) && !q.is_integer() {
                out.push(errs::invalid(&p, v, "must be an integer"));
            }
            parsed.push((name.clone(), q, quantity_text(v).unwrap_or_default()));
        }
    }
    parsed
}

/// `ValidateContainerResourceRequirements` / pod-level `resources`.
pub fn requirements(out: &mut Vec<Cause>, res: Option<&Value>, path: &str) {
    let Some(res) = res else { return };
    let limits = container_list(out, res.get("limits"), &child(path, "limits"));
    let requests = container_list(out, res.get("requests"), &child(path, "requests"));
    for (name, req, text) in &requests {
        let p = key(&child(path, "requests"), name);
        match limits.iter().find(|(n, _, _)| n == name) {
            Some((_, lim, lim_text)) => {
                if is_hugepages(name) && req != lim {
                    out.push(errs::invalid_str(&p, text, &format!("must be equal to {name} limit of {lim_text}")));
                } else if is_extended(name) && req != lim {
                    out.push(errs::invalid_str(&p, text, &format!("must be equal to {name} limit")));
                } else if req > lim {
                    out.push(errs::invalid_str(
                        &p,
                        text,
                        &format!("must be less than or equal to {name} limit of {lim_text}"),
                    ));
                }
            }
            None => {
                if is_extended(name) {
                    out.push(errs::forbidden(&p, "Limit must be set for non overcommitable resources"));
                }
            }
        }
    }
}

/// A node's `capacity` / `allocatable` or a pod's `overhead`: qualified names, valid non-negative quantities.
pub fn plain_list(out: &mut Vec<Cause>, list: Option<&Value>, path: &str) {
    let Some(m) = list.and_then(Value::as_object) else { return };
    for (name, v) in m {
        let p = key(path, name);
        for msg in qualified_name(name) {
            out.push(errs::invalid_str(&p, name, &msg));
        }
        parse_nonnegative(out, &p, v);
    }
}
