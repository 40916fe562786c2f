//! Data-driven tests: one table per concern, sharing minimal valid objects per kind.

mod defaults;
mod normalize;
mod validate;

use serde_json::{json, Value};

/// A minimal valid object of `kind`, before defaulting.
pub fn base(kind: &str) -> Value {
    let template = json!({
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}
    });
    let meta = json!({"name": "x", "namespace": "default", "uid": "u-1"});
    match kind {
        "Pod" => json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}),
        "Service" => json!({"apiVersion": "v1", "kind": "Service", "metadata": meta,
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
        "Endpoints" => json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": meta,
            "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]}),
        "Secret" => json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta, "data": {"k": "dg=="}}),
        "ConfigMap" => json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}}),
        "Namespace" => json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns1"}}),
        "Node" => json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
            "status": {"capacity": {"cpu": "2", "memory": "4Gi"}}}),
        "Event" => json!({"apiVersion": "v1", "kind": "Event", "metadata": meta,
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"}, "reason": "Started"}),
        "ServiceAccount" => json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}),
        "Deployment" | "ReplicaSet" | "DaemonSet" => json!({"apiVersion": "apps/v1", "kind": kind, "metadata": meta,
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template}}),
        "Job" => {
            let mut t = template;
            if let Some(s) = t.get_mut("spec") {
                s["restartPolicy"] = json!("Never");
            }
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": {"template": t}})
        }
        "CronJob" => {
            let mut t = template;
            if let Some(s) = t.get_mut("spec") {
                s["restartPolicy"] = json!("OnFailure");
            }
            json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta,
                "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": t}}}})
        }
        "EndpointSlice" => json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": meta,
            "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}], "ports": [{"port": 80}]}),
        "Lease" => json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
            "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}),
        _ => Value::Null,
    }
}

/// The base object after normalization and defaulting.
pub fn defaulted(kind: &str) -> Value {
    let mut v = super::normalize(kind, base(kind)).map(|n| n.object).unwrap_or(Value::Null);
    super::apply_defaults(kind, &mut v, &super::DefaultOptions::default());
    v
}

/// Sets the value at a JSON pointer, creating objects on the way; `Value::Null` removes it.
pub fn set(v: &mut Value, pointer: &str, val: Value) {
    let mut parts: Vec<&str> = pointer.split('/').skip(1).collect();
    let Some(last) = parts.pop() else { return };
    let mut cur = v;
    for p in parts {
        cur = match cur {
            Value::Array(a) => match p.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                Some(x) => x,
                None => return,
            },
            Value::Object(m) => m.entry(p.replace("~1", "/")).or_insert(json!({})),
            _ => return,
        };
    }
    let last = last.replace("~1", "/");
    match cur {
        Value::Object(m) => {
            if val.is_null() {
                m.shift_remove(&last);
            } else {
                m.insert(last, val);
            }
        }
        Value::Array(a) => {
            if let Ok(i) = last.parse::<usize>() {
                if i < a.len() {
                    a[i] = val;
                } else {
                    a.push(val);
                }
            }
        }
        _ => {}
    }
}

/// Every JSON pointer inside `v`.
fn pointers(v: &Value, prefix: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = format!("{prefix}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(child, p, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let p = format!("{prefix}/{i}");
                out.push(p.clone());
                pointers(child, p, out);
            }
        }
        _ => {}
    }
}

#[test]
fn junk_at_every_position_never_panics() {
    let junk = [json!(null), json!(-1), json!(1.5), json!("x"), json!(true), json!([]), json!({}), json!([{}, 7])];
    for r in api::RESOURCES {
        let good = defaulted(r.kind);
        let mut ptrs = Vec::new();
        pointers(&good, String::new(), &mut ptrs);
        for p in &ptrs {
            for j in &junk {
                let mut v = good.clone();
                if let Some(slot) = v.pointer_mut(p) {
                    *slot = j.clone();
                }
                let _ = super::validate(r.kind, &v, Some(&good));
                let _ = super::validate(r.kind, &good, Some(&v));
                let mut d = v.clone();
                super::apply_defaults(r.kind, &mut d, &super::DefaultOptions::default());
                let _ = super::validate(r.kind, &d, None);
                if let Err(causes) = super::normalize(r.kind, v) {
                    assert_eq!(causes.len(), 1, "{} {p}", r.kind);
                }
            }
        }
    }
}
