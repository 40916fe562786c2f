//! Services: the status one starts with and what an update carries over from the stored one.
//! (ClusterIP and NodePort allocation itself is `handlers/service_alloc.rs`, on the
//! strategy's `allocates_service_addresses`.)

use serde_json::{json, Value};

/// A new Service has an empty load-balancer status.
pub fn initial_status(_: &Value) -> Value {
    json!({"loadBalancer": {}})
}

fn is_empty_field(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    }
}

/// Upstream's `patchAllocatedValues` for the cluster IPs (clusterIP, clusterIPs the client left
/// out are taken from the stored Service), plus the `ipFamilyPolicy` an update without one adopts
/// from the old object (upstream's `initIPFamilyFields`), so that defaulting sees what upstream's
/// allocator sees.
pub fn patch_allocated_values(new: &mut Value, old: &Value) {
    let needs_cluster_ip = |svc: &Value| svc.pointer("/spec/type").and_then(Value::as_str) != Some("ExternalName");
    if !needs_cluster_ip(new) || !needs_cluster_ip(old) {
        return;
    }
    let Some(old_spec) = old.get("spec").and_then(Value::as_object) else { return };
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else { return };
    for f in ["clusterIP", "clusterIPs", "ipFamilyPolicy"] {
        if is_empty_field(spec.get(f)) {
            if let Some(v) = old_spec.get(f).filter(|v| !is_empty_field(Some(v))) {
                spec.insert(f.into(), v.clone());
            }
        }
    }
    // Setting the policy to SingleStack while keeping both families (or addresses) is clear
    // intent: the secondary one is released.
    if spec.get("ipFamilyPolicy").and_then(Value::as_str) == Some("SingleStack") {
        for f in ["clusterIPs", "ipFamilies"] {
            if let Some(list) = spec.get_mut(f).and_then(Value::as_array_mut) {
                if list.len() > 1 && Some(&*list) == old_spec.get(f).and_then(Value::as_array) {
                    list.truncate(1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_update_keeps_allocated_values_and_policy() {
        let Some(res) = api::resources::by_kind("v1", "Service") else { panic!("services") };
        let st = super::super::of(res);
        let old = json!({"metadata":{"name":"s"},"spec":{"type":"ClusterIP","clusterIP":"10.96.0.9",
            "clusterIPs":["10.96.0.9"],"ipFamilyPolicy":"PreferDualStack","ipFamilies":["IPv4"]}});
        let mut new = json!({"metadata":{"name":"s"},"spec":{"clusterIP":"","ipFamilies":null}});
        st.prepare_for_update(&mut new, &old);
        assert_eq!(new["spec"]["clusterIP"], "10.96.0.9");
        assert_eq!(new["spec"]["clusterIPs"], json!(["10.96.0.9"]));
        assert_eq!(new["spec"]["ipFamilyPolicy"], "PreferDualStack");
        // SingleStack with both families kept releases the secondary one.
        let old = json!({"spec":{"clusterIP":"None","clusterIPs":["None"],"ipFamilyPolicy":"RequireDualStack",
            "ipFamilies":["IPv4","IPv6"]}});
        let mut new = old.clone();
        new["spec"]["ipFamilyPolicy"] = json!("SingleStack");
        st.prepare_for_update(&mut new, &old);
        assert_eq!(new["spec"]["ipFamilies"], json!(["IPv4"]));
        // ExternalName takes nothing over.
        let mut new = json!({"spec":{"type":"ExternalName","externalName":"a.example"}});
        st.prepare_for_update(&mut new, &old);
        assert_eq!(new["spec"].get("clusterIP"), None);
    }
}
