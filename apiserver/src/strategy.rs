//! Per-kind rules the generic write path applies, as upstream's registry strategies do:
//! which kinds keep `status` apart (status subresource), which track `metadata.generation`,
//! and what a create or an update resets.

use serde_json::{json, Map, Value};

use api::ResourceInfo;

/// Kinds whose `status` is written only through the `status` subresource.
pub fn has_status_subresource(res: &ResourceInfo) -> bool {
    res.subresource("status").is_some()
}

/// Kinds whose `metadata.generation` counts spec changes.
pub fn tracks_generation(kind: &str) -> bool {
    matches!(kind, "Deployment" | "ReplicaSet" | "DaemonSet" | "Job" | "CronJob")
}

fn meta_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    obj.get_mut("metadata").and_then(Value::as_object_mut)
}

/// System metadata of a new object: uid, creationTimestamp, generation; client-set system
/// fields dropped. Status reset as upstream's PrepareForCreate.
pub fn prepare_for_create(res: &ResourceInfo, obj: &mut Value, uid: &str, now: &str) {
    if let Some(meta) = meta_mut(obj) {
        meta.insert("uid".into(), json!(uid));
        meta.insert("creationTimestamp".into(), json!(now));
        for f in ["resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"] {
            meta.remove(f);
        }
        if tracks_generation(res.kind) {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
    }
    let Some(o) = obj.as_object_mut() else { return };
    match res.kind {
        "Pod" => {
            let qos = qos_class(o.get("spec"));
            o.insert("status".into(), json!({"phase": "Pending", "qosClass": qos}));
        }
        "Namespace" => {
            o.insert("status".into(), json!({"phase": "Active"}));
        }
        "Service" => {
            o.insert("status".into(), json!({"loadBalancer": {}}));
        }
        "Node" => {}
        _ if has_status_subresource(res) => {
            o.remove("status");
        }
        _ => {}
    }
}

/// Carries over what a main-resource update may not change: system metadata (generation
/// included: [`update_generation`] bumps it once the new object is defaulted) and, for kinds with a
/// status subresource, the status. For a Service also the allocated values the client left out
/// (upstream's `patchAllocatedValues`: clusterIP, clusterIPs) and the old `ipFamilyPolicy` when the
/// new spec has none (upstream's `initIPFamilyFields`), so that defaulting sees what upstream's
/// allocator sees.
pub fn prepare_for_update(res: &ResourceInfo, new: &mut Value, old: &Value) {
    let old_meta = old.get("metadata").cloned().unwrap_or(Value::Null);
    let keeps_status = has_status_subresource(res);
    if let Some(meta) = meta_mut(new) {
        for f in ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"] {
            match old_meta.get(f) {
                Some(v) => {
                    meta.insert(f.into(), v.clone());
                }
                None => {
                    meta.remove(f);
                }
            }
        }
        meta.remove("selfLink");
        if !meta.contains_key("managedFields") {
            if let Some(mf) = old_meta.get("managedFields") {
                meta.insert("managedFields".into(), mf.clone());
            }
        }
    }
    if keeps_status {
        if let Some(o) = new.as_object_mut() {
            match old.get("status") {
                Some(s) => {
                    o.insert("status".into(), s.clone());
                }
                None => {
                    o.remove("status");
                }
            }
        }
    }
    if res.kind == "Service" {
        patch_service_allocated_values(new, old);
    }
}

/// After defaulting, as upstream (which defaults when decoding, before the strategy compares):
/// `metadata.generation` goes up by one when the defaulted spec differs from the stored one,
/// so an update that only drops fields the server defaults changes nothing.
pub fn update_generation(res: &ResourceInfo, new: &mut Value, old: &Value) {
    if !tracks_generation(res.kind) || new.get("spec") == old.get("spec") {
        return;
    }
    let g = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0) + 1;
    if let Some(meta) = meta_mut(new) {
        meta.insert("generation".into(), json!(g));
    }
}

fn is_empty_field(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    }
}

/// Upstream's `patchAllocatedValues` for the cluster IPs, plus the `ipFamilyPolicy` an update
/// without one adopts from the old object.
fn patch_service_allocated_values(new: &mut Value, old: &Value) {
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

/// A status-subresource write: the old object with only `status` taken from `new`.
pub fn prepare_for_status_update(new: &Value, old: &Value) -> Value {
    let mut out = old.clone();
    if let Some(o) = out.as_object_mut() {
        match new.get("status") {
            Some(s) => {
                o.insert("status".into(), s.clone());
            }
            None => {
                o.remove("status");
            }
        }
        if let (Some(meta), Some(new_rv)) =
            (o.get_mut("metadata").and_then(Value::as_object_mut), new.pointer("/metadata/resourceVersion"))
        {
            meta.insert("resourceVersion".into(), new_rv.clone());
        }
    }
    out
}

/// The pod's QoS class from its containers' requests and limits (upstream's GetPodQOS).
pub fn qos_class(spec: Option<&Value>) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| spec.and_then(|s| s.get(*k)).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let requests = c.pointer("/resources/requests").and_then(Value::as_object);
        let limits = c.pointer("/resources/limits").and_then(Value::as_object);
        for r in ["cpu", "memory"] {
            let req = requests.and_then(|m| m.get(r));
            let lim = limits.and_then(|m| m.get(r));
            if req.is_some() || lim.is_some() {
                any = true;
            }
            match (req, lim) {
                (_, None) => guaranteed = false,
                (Some(a), Some(b)) if a != b => guaranteed = false,
                _ => {}
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// Finalizers that keep an object from going away: `metadata.finalizers`, and for a
/// Namespace also `spec.finalizers`.
pub fn has_finalizers(obj: &Value) -> bool {
    let meta = obj.pointer("/metadata/finalizers").and_then(Value::as_array).map(|a| !a.is_empty()).unwrap_or(false);
    let spec = obj.pointer("/spec/finalizers").and_then(Value::as_array).map(|a| !a.is_empty()).unwrap_or(false);
    meta || (obj.get("kind").and_then(Value::as_str) == Some("Namespace") && spec)
}

pub fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp").map(|v| !v.is_null()).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qos_classes() {
        assert_eq!(qos_class(Some(&json!({"containers":[{"name":"a"}]}))), "BestEffort");
        let g = json!({"containers":[{"name":"a","resources":{"limits":{"cpu":"1","memory":"1Gi"}}}]});
        assert_eq!(qos_class(Some(&g)), "Guaranteed");
        let b = json!({"containers":[{"name":"a","resources":{"requests":{"cpu":"1"}}}]});
        assert_eq!(qos_class(Some(&b)), "Burstable");
    }

    #[test]
    fn update_bumps_generation_only_on_spec_change() {
        let Some(res) = api::resources::by_kind("apps/v1", "Deployment") else { panic!("deployments") };
        let old =
            json!({"metadata":{"name":"d","uid":"u","generation":3},"spec":{"replicas":1},"status":{"replicas":1}});
        let mut new = json!({"metadata":{"name":"d","labels":{"a":"b"}},"spec":{"replicas":1},"status":{"replicas":9}});
        prepare_for_update(res, &mut new, &old);
        update_generation(res, &mut new, &old);
        assert_eq!(new["metadata"]["generation"], 3);
        assert_eq!(new["metadata"]["uid"], "u");
        assert_eq!(new["status"]["replicas"], 1, "status comes from the old object");
        let mut new = json!({"metadata":{"name":"d"},"spec":{"replicas":2}});
        prepare_for_update(res, &mut new, &old);
        assert_eq!(new["metadata"]["generation"], 3, "not bumped before defaulting");
        update_generation(res, &mut new, &old);
        assert_eq!(new["metadata"]["generation"], 4);
    }

    #[test]
    fn service_update_keeps_allocated_values_and_policy() {
        let Some(res) = api::resources::by_kind("v1", "Service") else { panic!("services") };
        let old = json!({"metadata":{"name":"s"},"spec":{"type":"ClusterIP","clusterIP":"10.96.0.9",
            "clusterIPs":["10.96.0.9"],"ipFamilyPolicy":"PreferDualStack","ipFamilies":["IPv4"]}});
        let mut new = json!({"metadata":{"name":"s"},"spec":{"clusterIP":"","ipFamilies":null}});
        prepare_for_update(res, &mut new, &old);
        assert_eq!(new["spec"]["clusterIP"], "10.96.0.9");
        assert_eq!(new["spec"]["clusterIPs"], json!(["10.96.0.9"]));
        assert_eq!(new["spec"]["ipFamilyPolicy"], "PreferDualStack");
        // SingleStack with both families kept releases the secondary one.
        let old = json!({"spec":{"clusterIP":"None","clusterIPs":["None"],"ipFamilyPolicy":"RequireDualStack",
            "ipFamilies":["IPv4","IPv6"]}});
        let mut new = old.clone();
        new["spec"]["ipFamilyPolicy"] = json!("SingleStack");
        prepare_for_update(res, &mut new, &old);
        assert_eq!(new["spec"]["ipFamilies"], json!(["IPv4"]));
        // ExternalName takes nothing over.
        let mut new = json!({"spec":{"type":"ExternalName","externalName":"a.example"}});
        prepare_for_update(res, &mut new, &old);
        assert_eq!(new["spec"].get("clusterIP"), None);
    }
}
