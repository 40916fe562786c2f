//! The pod-template-hash (upstream `controller.ComputeHash`): FNV-32a over the pod template,
//! then the collision count as 4 little-endian bytes, the 32-bit sum printed in decimal and each
//! digit mapped through `rand.SafeEncodeString`'s alphabet (so hashes look like `5d4f8d6c9b`).
//! Upstream feeds the Go struct dump to the hasher; we feed the template's canonical JSON, so the
//! value differs from upstream's for the same template while keeping its shape and properties.
//! Also template equality ignoring that label (`EqualIgnoreHash`).

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::Value;

/// The label (and selector key) that tells a Deployment's ReplicaSets apart.
pub const LABEL: &str = "pod-template-hash";

const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// FNV-1a, 32 bits.
struct Fnv32a(u32);

impl Fnv32a {
    fn new() -> Self {
        Fnv32a(0x811c_9dc5)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u32::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0193);
        }
    }
}

/// `rand.SafeEncodeString`: every byte mapped into an alphabet without vowels (no bad words) and
/// without easily confused characters.
pub fn safe_encode(s: &str) -> String {
    s.bytes().map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char).collect()
}

/// The hash naming a Deployment's ReplicaSet for `template`.
pub fn compute(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut h = Fnv32a::new();
    h.write(&serde_json::to_vec(&canonical(template)).unwrap_or_default());
    if let Some(c) = collision_count {
        h.write(&(c as u32).to_le_bytes());
    }
    safe_encode(&h.0.to_string())
}

/// Whether two templates are the same apart from the `pod-template-hash` label. Like upstream's
/// semantic equality, an empty map or list equals an absent one.
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    canonical(a) == canonical(b)
}

/// The template as JSON without the hash label and without null / empty values.
fn canonical(t: &PodTemplateSpec) -> Value {
    let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
    if let Some(labels) = v.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
        labels.remove(LABEL);
    }
    prune(&mut v);
    v
}

fn prune(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for x in m.values_mut() {
                prune(x);
            }
            m.retain(|_, x| !is_empty(x));
        }
        Value::Array(a) => a.iter_mut().for_each(prune),
        _ => {}
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(v: Value) -> PodTemplateSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn fnv32a_known_values() {
        // Reference values of the FNV-1a 32-bit test suite.
        for (input, want) in [("", 0x811c9dc5u32), ("a", 0xe40c292c), ("foobar", 0xbf9cf968)] {
            let mut h = Fnv32a::new();
            h.write(input.as_bytes());
            assert_eq!(h.0, want, "{input:?}");
        }
    }

    #[test]
    fn safe_encoding_maps_digits_as_upstream() {
        // '0'..'9' are bytes 48..57: 48 % 27 = 21 → '4', ..., 54 % 27 = 0 → 'b'.
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
    }

    #[test]
    fn hash_shape_stability_and_collisions() {
        let t = template(serde_json::json!({"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}));
        let h = compute(&t, None);
        assert!(!h.is_empty() && h.len() <= 10 && h.bytes().all(|b| ALPHANUMS.contains(&b)), "{h}");
        assert_eq!(h, compute(&t.clone(), None), "deterministic");
        assert_ne!(h, compute(&t, Some(1)), "a collision count changes the hash");
        assert_ne!(compute(&t, Some(1)), compute(&t, Some(2)));
        let mut labelled = t.clone();
        labelled.metadata.as_mut().unwrap().labels.as_mut().unwrap().insert(LABEL.into(), h.clone());
        assert_eq!(compute(&labelled, None), h, "the hash label itself does not change the hash");
        let other = template(serde_json::json!({"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx:1.26"}]}}));
        assert_ne!(compute(&other, None), h);
    }

    #[test]
    fn equality_ignores_hash_label_and_empties() {
        let a = template(serde_json::json!({"metadata": {"labels": {"app": "web", LABEL: "abc"}},
            "spec": {"containers": [{"name": "c", "image": "i", "resources": {}}]}}));
        let b = template(serde_json::json!({"metadata": {"labels": {"app": "web"}, "annotations": {}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}}));
        assert!(equal_ignore_hash(&a, &b));
        let c = template(serde_json::json!({"metadata": {"labels": {"app": "web"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "now"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}}));
        assert!(!equal_ignore_hash(&b, &c), "rollout restart makes a new template");
    }
}
