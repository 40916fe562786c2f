use super::super::*;
use super::{defaulted, set};
use serde_json::{json, Value};

/// One rule: mutate the valid defaulted object at `pointer` (null removes) and expect a cause at
/// `field` (or no cause at all for `None`).
struct Case(&'static str, &'static str, Value, Option<&'static str>);

fn check(cases: Vec<Case>) {
    for Case(kind, pointer, val, want) in cases {
        let mut v = defaulted(kind);
        set(&mut v, pointer, val.clone());
        let causes = validate(kind, &v, None);
        match want {
            None => assert_eq!(causes, vec![], "{kind} {pointer}={val} should be valid"),
            Some(f) => assert!(
                causes.iter().any(|c| c.field == f),
                "{kind} {pointer}={val}: expected a cause at {f}, got {causes:?}"
            ),
        }
    }
}

#[test]
fn metadata_rules() {
    check(vec![
        Case("ConfigMap", "/metadata/name", Value::Null, Some("metadata.name")),
        Case("ConfigMap", "/metadata/generateName", json!("gen-"), None),
        Case("ConfigMap", "/metadata/name", json!("Upper"), Some("metadata.name")),
        Case("ConfigMap", "/metadata/name", json!("a.b-c"), None),
        Case("Pod", "/metadata/name", json!("a_b"), Some("metadata.name")),
        Case("Namespace", "/metadata/name", json!("a.b"), Some("metadata.name")),
        Case("Service", "/metadata/name", json!("1abc"), Some("metadata.name")),
        Case("Service", "/metadata/name", json!("abc1"), None),
        Case("CronJob", "/metadata/name", json!("a".repeat(53)), Some("metadata.name")),
        Case("CronJob", "/metadata/name", json!("a".repeat(52)), None),
        Case("ConfigMap", "/metadata/namespace", Value::Null, Some("metadata.namespace")),
        Case("ConfigMap", "/metadata/namespace", json!("Bad_ns"), Some("metadata.namespace")),
        Case("Node", "/metadata/namespace", json!("default"), Some("metadata.namespace")),
        Case("ConfigMap", "/metadata/labels", json!({"-bad": "v"}), Some("metadata.labels")),
        Case("ConfigMap", "/metadata/labels", json!({"k": "bad value"}), Some("metadata.labels")),
        Case("ConfigMap", "/metadata/labels", json!({"k": "a".repeat(64)}), Some("metadata.labels")),
        Case("ConfigMap", "/metadata/labels", json!({"example.com/k": "", "a.b_c-d": "V.1"}), None),
        Case("ConfigMap", "/metadata/labels", json!({"a/b/c": "v"}), Some("metadata.labels")),
        Case("ConfigMap", "/metadata/annotations", json!({"k": "x".repeat(256 * 1024)}), Some("metadata.annotations")),
        Case("ConfigMap", "/metadata/annotations", json!({"k": "x".repeat(1000), "Example.com/Key": "y"}), None),
        Case("ConfigMap", "/metadata/finalizers", json!(["custom"]), Some("metadata.finalizers")),
        Case("ConfigMap", "/metadata/finalizers", json!(["example.com/f", "kubernetes"]), None),
        Case(
            "ConfigMap",
            "/metadata/ownerReferences",
            json!([{"apiVersion": "v1", "kind": "K", "name": "n"}]),
            Some("metadata.ownerReferences.uid"),
        ),
        Case("ConfigMap", "/metadata/generation", json!(-1), Some("metadata.generation")),
    ]);
}

#[test]
fn pod_rules() {
    check(vec![
        Case("Pod", "/spec/containers", json!([]), Some("spec.containers")),
        Case("Pod", "/spec/containers/0/name", json!(""), Some("spec.containers[0].name")),
        Case("Pod", "/spec/containers/0/name", json!("Bad"), Some("spec.containers[0].name")),
        Case(
            "Pod",
            "/spec/containers/1",
            json!({"name": "c", "image": "i", "imagePullPolicy": "Always", "terminationMessagePolicy": "File"}),
            Some("spec.containers[1].name"),
        ),
        Case(
            "Pod",
            "/spec/containers/1",
            json!({"name": "d", "image": "i", "imagePullPolicy": "Always", "terminationMessagePolicy": "File"}),
            None,
        ),
        Case("Pod", "/spec/containers/0/image", json!(""), Some("spec.containers[0].image")),
        Case(
            "Pod",
            "/spec/containers/0/imagePullPolicy",
            json!("Sometimes"),
            Some("spec.containers[0].imagePullPolicy"),
        ),
        Case(
            "Pod",
            "/spec/containers/0/ports",
            json!([{"containerPort": 0, "protocol": "TCP"}]),
            Some("spec.containers[0].ports[0].containerPort"),
        ),
        Case(
            "Pod",
            "/spec/containers/0/ports",
            json!([{"containerPort": 70000, "protocol": "TCP"}]),
            Some("spec.containers[0].ports[0].containerPort"),
        ),
        Case(
            "Pod",
            "/spec/containers/0/ports",
            json!([{"containerPort": 80, "protocol": "HTTP"}]),
            Some("spec.containers[0].ports[0].protocol"),
        ),
        Case(
            "Pod",
            "/spec/containers/0/ports",
            json!([{"containerPort": 80, "protocol": "SCTP", "name": "web"}, {"containerPort": 81, "protocol": "UDP", "name": "dns"}]),
            None,
        ),
        Case(
            "Pod",
            "/spec/containers/0/ports",
            json!([{"containerPort": 80, "protocol": "TCP", "name": "web"}, {"containerPort": 81, "protocol": "TCP", "name": "web"}]),
            Some("spec.containers[0].ports[1].name"),
        ),
        Case(
            "Pod",
            "/spec/containers/0/ports",
            json!([{"containerPort": 80, "protocol": "TCP", "name": "a--b"}]),
            Some("spec.containers[0].ports[0].name"),
        ),
        Case(
            "Pod",
            "/spec/containers/0/resources",
            json!({"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}),
            Some("spec.containers[0].resources.requests[cpu]"),
        ),
        Case(
            "Pod",
            "/spec/containers/0/resources",
            json!({"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "0.5", "memory": "1024Mi"}}),
            None,
        ),
        Case(
            "Pod",
            "/spec/containers/0/resources",
            json!({"requests": {"memory": "1 Gi"}}),
            Some("spec.containers[0].resources.requests[memory]"),
        ),
        Case(
            "Pod",
            "/spec/containers/0/resources",
            json!({"requests": {"memory": "-1"}}),
            Some("spec.containers[0].resources.requests[memory]"),
        ),
        Case(
            "Pod",
            "/spec/containers/0/resources",
            json!({"limits": {"gpu": "1"}}),
            Some("spec.containers[0].resources.limits[gpu]"),
        ),
        Case(
            "Pod",
            "/spec/containers/0/resources",
            json!({"requests": {"example.com/dev": "1"}, "limits": {"example.com/dev": "1"}}),
            None,
        ),
        Case(
            "Pod",
            "/spec/containers/0/resources",
            json!({"requests": {"example.com/dev": "1"}}),
            Some("spec.containers[0].resources.requests[example.com/dev]"),
        ),
        Case("Pod", "/spec/restartPolicy", json!("Sometimes"), Some("spec.restartPolicy")),
        Case("Pod", "/spec/restartPolicy", json!("OnFailure"), None),
        Case("Pod", "/spec/dnsPolicy", json!("None"), Some("spec.dnsConfig")),
        Case("Pod", "/spec/activeDeadlineSeconds", json!(0), Some("spec.activeDeadlineSeconds")),
        Case("Pod", "/spec/nodeSelector", json!({"disk": "ssd fast"}), Some("spec.nodeSelector")),
        Case(
            "Pod",
            "/spec/tolerations/2",
            json!({"operator": "Equal", "value": "x"}),
            Some("spec.tolerations[2].operator"),
        ),
        Case(
            "Pod",
            "/spec/tolerations/2",
            json!({"key": "k", "operator": "Exists", "value": "x"}),
            Some("spec.tolerations[2].operator"),
        ),
        Case(
            "Pod",
            "/spec/tolerations/2",
            json!({"key": "k", "effect": "NoSchedule", "tolerationSeconds": 3}),
            Some("spec.tolerations[2].effect"),
        ),
        Case(
            "Pod",
            "/spec/tolerations/2",
            json!({"key": "k", "operator": "Equal", "value": "v", "effect": "Sometimes"}),
            Some("spec.tolerations[2].effect"),
        ),
        Case(
            "Pod",
            "/spec/tolerations/2",
            json!({"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}),
            None,
        ),
        Case(
            "Pod",
            "/spec/volumes",
            json!([{"name": "v", "emptyDir": {}, "hostPath": {"path": "/"}}]),
            Some("spec.volumes[0].emptyDir"),
        ),
        Case(
            "Pod",
            "/spec/volumes",
            json!([{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}]),
            Some("spec.volumes[1].name"),
        ),
        Case(
            "Pod",
            "/spec/volumes",
            json!([{"name": "v", "secret": {"secretName": "s", "defaultMode": 1000}}]),
            Some("spec.volumes[0].secret.defaultMode"),
        ),
        Case("Pod", "/spec/volumes", json!([{"name": "v", "emptyDir": {"sizeLimit": "1Gi"}}]), None),
        Case(
            "Pod",
            "/spec/containers/0/volumeMounts",
            json!([{"name": "nope", "mountPath": "/x"}]),
            Some("spec.containers[0].volumeMounts[0].name"),
        ),
        Case(
            "Pod",
            "/spec/containers/0/env",
            json!([{"name": "A=B", "value": "x"}]),
            Some("spec.containers[0].env[0].name"),
        ),
        Case(
            "Pod",
            "/spec/containers/0/env",
            json!([{"name": "A", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.bogus"}}}]),
            Some("spec.containers[0].env[0].valueFrom.fieldRef.fieldPath"),
        ),
        Case(
            "Pod",
            "/spec/containers/0/env",
            json!([{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]),
            None,
        ),
        Case(
            "Pod",
            "/spec/containers/0/livenessProbe",
            json!({"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}),
            Some("spec.containers[0].livenessProbe"),
        ),
        Case(
            "Pod",
            "/spec/containers/0/livenessProbe",
            json!({"tcpSocket": {"port": 80}, "successThreshold": 2}),
            Some("spec.containers[0].livenessProbe.successThreshold"),
        ),
        Case(
            "Pod",
            "/spec/containers/0/readinessProbe",
            json!({"httpGet": {"port": "http"}, "successThreshold": 2, "periodSeconds": 5}),
            None,
        ),
        Case(
            "Pod",
            "/spec/containers/0/readinessProbe",
            json!({"httpGet": {"port": 0}}),
            Some("spec.containers[0].readinessProbe.httpGet.port"),
        ),
        Case(
            "Pod",
            "/spec/initContainers",
            json!([{"name": "i", "image": "i", "imagePullPolicy": "Always", "terminationMessagePolicy": "File", "restartPolicy": "OnFailure"}]),
            Some("spec.initContainers[0].restartPolicy"),
        ),
        Case(
            "Pod",
            "/spec/initContainers",
            json!([{"name": "i", "image": "i", "imagePullPolicy": "Always", "terminationMessagePolicy": "File", "restartPolicy": "Always", "readinessProbe": {"exec": {"command": ["true"]}}}]),
            None,
        ),
        Case(
            "Pod",
            "/spec/ephemeralContainers",
            json!([{"name": "e", "image": "i"}]),
            Some("spec.ephemeralContainers"),
        ),
        Case("Pod", "/spec/containers/0/restartPolicy", json!("Always"), Some("spec.containers[0].restartPolicy")),
    ]);
}

#[test]
fn workload_rules() {
    check(vec![
        Case("Deployment", "/spec/replicas", json!(-1), Some("spec.replicas")),
        Case("Deployment", "/spec/replicas", json!(0), None),
        Case("Deployment", "/spec/selector", Value::Null, Some("spec.selector")),
        Case("Deployment", "/spec/selector", json!({}), Some("spec.selector")),
        Case(
            "Deployment",
            "/spec/selector",
            json!({"matchLabels": {"app": "other"}}),
            Some("spec.template.metadata.labels"),
        ),
        Case(
            "Deployment",
            "/spec/selector",
            json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]}),
            None,
        ),
        Case(
            "Deployment",
            "/spec/selector",
            json!({"matchExpressions": [{"key": "app", "operator": "In"}]}),
            Some("spec.selector.matchExpressions[0].values"),
        ),
        Case(
            "Deployment",
            "/spec/template/spec/restartPolicy",
            json!("Never"),
            Some("spec.template.spec.restartPolicy"),
        ),
        Case("Deployment", "/spec/strategy/type", json!("BlueGreen"), Some("spec.strategy.type")),
        Case(
            "Deployment",
            "/spec/strategy",
            json!({"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}),
            Some("spec.strategy.rollingUpdate"),
        ),
        Case("Deployment", "/spec/strategy", json!({"type": "Recreate"}), None),
        Case(
            "Deployment",
            "/spec/strategy/rollingUpdate",
            json!({"maxSurge": 0, "maxUnavailable": "0%"}),
            Some("spec.strategy.rollingUpdate.maxUnavailable"),
        ),
        Case(
            "Deployment",
            "/spec/strategy/rollingUpdate",
            json!({"maxSurge": "x", "maxUnavailable": 1}),
            Some("spec.strategy.rollingUpdate.maxSurge"),
        ),
        Case(
            "Deployment",
            "/spec/strategy/rollingUpdate",
            json!({"maxSurge": 1, "maxUnavailable": "120%"}),
            Some("spec.strategy.rollingUpdate.maxUnavailable"),
        ),
        Case("Deployment", "/spec/progressDeadlineSeconds", json!(0), Some("spec.progressDeadlineSeconds")),
        Case(
            "Deployment",
            "/spec/template/spec/containers/0/image",
            json!(""),
            Some("spec.template.spec.containers[0].image"),
        ),
        Case("ReplicaSet", "/spec/replicas", json!(-5), Some("spec.replicas")),
        Case(
            "ReplicaSet",
            "/spec/template/metadata/labels",
            json!({"app": "nope"}),
            Some("spec.template.metadata.labels"),
        ),
        Case("DaemonSet", "/spec/updateStrategy/type", json!("Sometimes"), Some("spec.updateStrategy.type")),
        Case("DaemonSet", "/spec/updateStrategy", json!({"type": "OnDelete"}), None),
        Case(
            "DaemonSet",
            "/spec/updateStrategy/rollingUpdate",
            json!({"maxUnavailable": 0, "maxSurge": 0}),
            Some("spec.updateStrategy.rollingUpdate.maxUnavailable"),
        ),
        Case(
            "DaemonSet",
            "/spec/template/spec/restartPolicy",
            json!("OnFailure"),
            Some("spec.template.spec.restartPolicy"),
        ),
        Case("Job", "/spec/template/spec/restartPolicy", json!("Always"), Some("spec.template.spec.restartPolicy")),
        Case("Job", "/spec/template/spec/restartPolicy", json!("OnFailure"), None),
        Case("Job", "/spec/completions", json!(-1), Some("spec.completions")),
        Case("Job", "/spec/parallelism", json!(-1), Some("spec.parallelism")),
        Case("Job", "/spec/backoffLimit", json!(-1), Some("spec.backoffLimit")),
        Case("Job", "/spec/completionMode", json!("Sorted"), Some("spec.completionMode")),
        Case(
            "Job",
            "/spec/selector/matchLabels/batch.kubernetes.io~1controller-uid",
            json!("other"),
            Some("spec.selector"),
        ),
        Case("Job", "/metadata/uid", Value::Null, Some("metadata.uid")),
        Case("CronJob", "/spec/schedule", json!(""), Some("spec.schedule")),
        Case("CronJob", "/spec/schedule", json!("* * * *"), Some("spec.schedule")),
        Case("CronJob", "/spec/schedule", json!("61 * * * *"), Some("spec.schedule")),
        Case("CronJob", "/spec/schedule", json!("TZ=UTC * * * * *"), Some("spec.schedule")),
        Case("CronJob", "/spec/schedule", json!("@hourly"), None),
        Case("CronJob", "/spec/schedule", json!("@often"), Some("spec.schedule")),
        Case("CronJob", "/spec/schedule", json!("0 9-17/2 * JAN-MAR mon,fri"), None),
        Case("CronJob", "/spec/concurrencyPolicy", json!("Sometimes"), Some("spec.concurrencyPolicy")),
        Case("CronJob", "/spec/concurrencyPolicy", json!("Forbid"), None),
        Case("CronJob", "/spec/successfulJobsHistoryLimit", json!(-1), Some("spec.successfulJobsHistoryLimit")),
        Case(
            "CronJob",
            "/spec/jobTemplate/spec/template/spec/restartPolicy",
            json!("Always"),
            Some("spec.jobTemplate.spec.template.spec.restartPolicy"),
        ),
    ]);
}

#[test]
fn service_and_network_rules() {
    check(vec![
        Case("Service", "/spec/type", json!("Magic"), Some("spec.type")),
        Case("Service", "/spec/ports", json!([]), Some("spec.ports")),
        Case("Service", "/spec/ports/0/port", json!(0), Some("spec.ports[0].port")),
        Case("Service", "/spec/ports/0/protocol", json!("ICMP"), Some("spec.ports[0].protocol")),
        Case(
            "Service",
            "/spec/ports/1",
            json!({"port": 81, "protocol": "TCP", "targetPort": 81}),
            Some("spec.ports[0].name"),
        ),
        Case(
            "Service",
            "/spec/ports",
            json!([{"name": "a", "port": 80, "protocol": "TCP", "targetPort": 80}, {"name": "a", "port": 81, "protocol": "TCP", "targetPort": 81}]),
            Some("spec.ports[1].name"),
        ),
        Case(
            "Service",
            "/spec/ports",
            json!([{"name": "a", "port": 80, "protocol": "TCP", "targetPort": "web"}, {"name": "b", "port": 80, "protocol": "UDP", "targetPort": 53}]),
            None,
        ),
        Case("Service", "/spec/ports/0/targetPort", json!("80"), Some("spec.ports[0].targetPort")),
        Case("Service", "/spec/clusterIP", json!("10.0.0.999"), Some("spec.clusterIP")),
        Case("Service", "/spec/clusterIP", json!("None"), None),
        Case("Service", "/spec/sessionAffinity", json!("Sticky"), Some("spec.sessionAffinity")),
        Case("Service", "/spec/externalTrafficPolicy", json!("Local"), Some("spec.externalTrafficPolicy")),
        Case("Service", "/spec/ports/0/nodePort", json!(30000), Some("spec.ports[0].nodePort")),
        Case("Service", "/spec/ipFamilies", json!(["IPv4", "IPv6"]), Some("spec.ipFamilyPolicy")),
        Case("Service", "/spec/ipFamilies", json!(["IPv6"]), Some("spec.ipFamilies[0]")),
        Case("Service", "/spec/ipFamilyPolicy", json!("RequireDualStack"), Some("spec.ipFamilyPolicy")),
        Case("Service", "/spec/ipFamilyPolicy", json!("PreferDualStack"), None),
        Case("Service", "/spec/clusterIPs", json!(["fd00::1"]), Some("spec.clusterIPs[0]")),
        Case("Endpoints", "/subsets/0/addresses/0/ip", json!("nope"), Some("subsets[0].addresses[0].ip")),
        Case("Endpoints", "/subsets/0/addresses/0/ip", json!("127.0.0.1"), Some("subsets[0].addresses[0].ip")),
        Case("Endpoints", "/subsets/0/ports/0/port", json!(0), Some("subsets[0].ports[0].port")),
        Case("EndpointSlice", "/addressType", json!("IPX"), Some("addressType")),
        Case("EndpointSlice", "/endpoints/0/addresses", json!(["fd00::1"]), Some("endpoints[0].addresses[0]")),
        Case("EndpointSlice", "/endpoints/0/addresses", json!([]), Some("endpoints[0].addresses")),
        Case("EndpointSlice", "/ports/0/protocol", json!("ICMP"), Some("ports[0].protocol")),
    ]);
}

#[test]
fn config_and_cluster_rules() {
    check(vec![
        Case("Secret", "/data", json!({"bad key": "dg=="}), Some("data[bad key]")),
        Case("Secret", "/data", json!({"big": "A".repeat(1_500_000)}), Some("data")),
        Case("Secret", "/data", json!({".dot-ok_1": "dg=="}), None),
        Case("Secret", "/type", json!("kubernetes.io/tls"), Some("data[tls.crt]")),
        Case(
            "Secret",
            "/type",
            json!("kubernetes.io/service-account-token"),
            Some("metadata.annotations[kubernetes.io/service-account.name]"),
        ),
        Case("Secret", "/type", json!("example.com/custom"), None),
        Case("ConfigMap", "/data", json!({"..": "x"}), Some("data[..]")),
        Case("ConfigMap", "/data", json!({"big": "x".repeat(1_100_000)}), Some("")),
        Case("ConfigMap", "/binaryData", json!({"k": "dg=="}), Some("binaryData[k]")),
        Case("Namespace", "/spec/finalizers", json!(["bogus"]), Some("spec.finalizers")),
        Case("Node", "/spec/podCIDR", json!("10.0.0.0/33"), Some("spec.podCIDR")),
        Case(
            "Node",
            "/spec/taints",
            json!([{"key": "k", "effect": "NoSchedule"}, {"key": "k", "effect": "NoSchedule"}]),
            Some("spec.taints[1]"),
        ),
        Case("Node", "/spec/taints", json!([{"key": "k", "effect": "Never"}]), Some("spec.taints[0].effect")),
        Case("Node", "/status/capacity", json!({"cpu": "two"}), Some("status.capacity[cpu]")),
        Case("Event", "/involvedObject/namespace", json!("other"), Some("involvedObject.namespace")),
        Case("Event", "/involvedObject/namespace", Value::Null, None),
        Case("Lease", "/spec/leaseDurationSeconds", json!(0), Some("spec.leaseDurationSeconds")),
        Case("Lease", "/spec/leaseTransitions", json!(-1), Some("spec.leaseTransitions")),
        Case("Lease", "/spec/preferredHolder", json!("b"), Some("spec.preferredHolder")),
    ]);
}

/// `old` is the defaulted base object; `new` is `old` with the mutation.
fn check_update(cases: Vec<Case>) {
    for Case(kind, pointer, val, want) in cases {
        let old = defaulted(kind);
        let mut new = old.clone();
        set(&mut new, pointer, val.clone());
        let causes = validate(kind, &new, Some(&old));
        match want {
            None => assert_eq!(causes, vec![], "{kind} update {pointer}={val} should be valid"),
            Some(f) => {
                assert!(causes.iter().any(|c| c.field == f), "{kind} update {pointer}={val}: want {f}, got {causes:?}")
            }
        }
    }
}

#[test]
fn update_rules() {
    check_update(vec![
        Case("Deployment", "/spec/selector/matchLabels/tier", json!("x"), Some("spec.selector")),
        Case("Deployment", "/spec/replicas", json!(5), None),
        Case("ReplicaSet", "/spec/selector", json!({"matchLabels": {"app": "web", "b": "c"}}), Some("spec.selector")),
        Case("DaemonSet", "/spec/selector/matchLabels/tier", json!("x"), Some("spec.selector")),
        Case("Job", "/spec/template/spec/containers/0/image", json!("other:1"), Some("spec.template")),
        Case("Job", "/spec/suspend", json!(true), None),
        Case("Service", "/spec/clusterIP", json!("10.0.0.5"), None),
        Case("Pod", "/spec/containers/0/image", json!("busybox:1.37"), None),
        Case("Pod", "/spec/activeDeadlineSeconds", json!(30), None),
        Case("Pod", "/spec/tolerations/2", json!({"key": "k", "operator": "Exists"}), None),
        Case("Pod", "/spec/tolerations/0/tolerationSeconds", json!(5), None),
        Case("Pod", "/spec/tolerations/0/key", json!("other"), Some("spec.tolerations")),
        Case("Pod", "/spec/containers/0/name", json!("renamed"), Some("spec")),
        Case("Pod", "/spec/restartPolicy", json!("Never"), Some("spec")),
        Case("Pod", "/metadata/labels", json!({"new": "label"}), None),
        Case("Pod", "/metadata/name", json!("other"), Some("metadata.name")),
        Case("Secret", "/data/k", json!("eA=="), None),
        Case("Secret", "/type", json!("example.com/other"), Some("type")),
    ]);
    // Service clusterIP and Secret/ConfigMap `immutable` need an old object with the field set.
    let mut old = defaulted("Service");
    set(&mut old, "/spec/clusterIP", json!("10.0.0.5"));
    let mut new = old.clone();
    set(&mut new, "/spec/clusterIP", json!("10.0.0.6"));
    assert!(validate("Service", &new, Some(&old)).iter().any(|c| c.field == "spec.clusterIP"));
    for kind in ["Secret", "ConfigMap"] {
        let mut old = defaulted(kind);
        set(&mut old, "/immutable", json!(true));
        let mut new = old.clone();
        set(&mut new, "/data/k", json!("eHg="));
        assert!(validate(kind, &new, Some(&old)).iter().any(|c| c.field == "data"), "{kind}");
        let mut new = old.clone();
        set(&mut new, "/immutable", json!(false));
        assert!(validate(kind, &new, Some(&old)).iter().any(|c| c.field == "immutable"), "{kind}");
        let mut new = old.clone();
        set(&mut new, "/metadata/labels", json!({"a": "b"}));
        assert_eq!(validate(kind, &new, Some(&old)), vec![], "{kind}");
    }
    let mut old = defaulted("Pod");
    set(&mut old, "/spec/activeDeadlineSeconds", json!(30));
    let mut new = old.clone();
    set(&mut new, "/spec/activeDeadlineSeconds", json!(60));
    assert!(validate("Pod", &new, Some(&old)).iter().any(|c| c.field == "spec.activeDeadlineSeconds"));
}

#[test]
fn messages_match_upstream() {
    let mut v = defaulted("Deployment");
    set(&mut v, "/spec/replicas", json!(-1));
    set(&mut v, "/spec/template/spec/restartPolicy", json!("Never"));
    let causes = validate("Deployment", &v, None);
    let msg = |f: &str| causes.iter().find(|c| c.field == f).map(|c| c.message.clone()).unwrap_or_default();
    assert_eq!(msg("spec.replicas"), "Invalid value: -1: must be greater than or equal to 0");
    assert_eq!(msg("spec.template.spec.restartPolicy"), "Unsupported value: \"Never\": supported values: \"Always\"");
    assert_eq!(
        validate_name("Pod", "Bad_Name"),
        vec!["a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]
    );
    assert_eq!(
        validate_name("Namespace", "a.b"),
        vec!["a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]
    );
    assert_eq!(
        validate_name("Pod", &"a".repeat(254)).first().map(String::as_str),
        Some("must be no more than 253 characters")
    );
    assert!(validate_name("Service", "web-1").is_empty());
    let mut c = defaulted("ConfigMap");
    set(&mut c, "/metadata/name", Value::Null);
    assert_eq!(validate("ConfigMap", &c, None)[0].message, "Required value: name or generateName is required");
}

#[test]
fn single_stack_cluster_rejects_other_families_with_upstream_messages() {
    let with = |spec: Value| {
        let mut v = defaulted("Service");
        if let (Some(dst), Some(src)) = (v["spec"].as_object_mut(), spec.as_object()) {
            for (k, val) in src {
                dst.insert(k.clone(), val.clone());
            }
        }
        let causes = validate("Service", &v, None);
        causes.iter().map(|c| format!("{}: {}", c.field, c.message)).collect::<Vec<_>>()
    };
    assert_eq!(
        with(json!({"ipFamilies": ["IPv6"]})),
        vec![r#"spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster"#]
    );
    assert_eq!(
        with(json!({"ipFamilyPolicy": "PreferDualStack", "ipFamilies": ["IPv6", "IPv4"]})),
        vec![r#"spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster"#]
    );
    assert_eq!(
        with(json!({"ipFamilyPolicy": "RequireDualStack", "ipFamilies": ["IPv4", "IPv6"]})),
        vec![
            r#"spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services"#,
            r#"spec.ipFamilies[1]: Invalid value: "IPv6": not configured on this cluster"#,
        ]
    );
    assert_eq!(
        with(json!({"ipFamilies": [], "clusterIP": "fd00::10", "clusterIPs": ["fd00::10"]})),
        vec![r#"spec.clusterIPs[0]: Invalid value: []string{"fd00::10"}: IPv6 is not configured on this cluster"#]
    );
    assert_eq!(
        with(json!({"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "ipFamilies": ["IPv6"]})),
        vec![
            r#"spec.clusterIPs[0]: Invalid value: "10.96.0.10": expected an IPv6 value as indicated by `ipFamilies[0]`"#
        ]
    );
    // Headless with a selector follows the usual rules; without a selector both families are allowed.
    assert_eq!(
        with(json!({"clusterIP": "None", "ipFamilyPolicy": "RequireDualStack"})).len(),
        1,
        "headless with selector"
    );
    assert_eq!(
        with(json!({"clusterIP": "None", "selector": null, "ipFamilyPolicy": "RequireDualStack",
            "ipFamilies": ["IPv4", "IPv6"]})),
        Vec::<String>::new()
    );
    assert_eq!(with(json!({"ipFamilyPolicy": "PreferDualStack"})), Vec::<String>::new());
}
