use super::super::*;
use super::{base, defaulted, set};
use serde_json::{json, Value};

fn at<'a>(v: &'a Value, pointer: &str) -> &'a Value {
    v.pointer(pointer).unwrap_or(&Value::Null)
}

#[test]
fn defaults_table() {
    let t = "/spec/template/spec";
    let cases: Vec<(&str, String, Value)> = vec![
        ("Deployment", "/spec/replicas".into(), json!(1)),
        ("Deployment", "/spec/strategy/type".into(), json!("RollingUpdate")),
        ("Deployment", "/spec/strategy/rollingUpdate/maxSurge".into(), json!("25%")),
        ("Deployment", "/spec/strategy/rollingUpdate/maxUnavailable".into(), json!("25%")),
        ("Deployment", "/spec/revisionHistoryLimit".into(), json!(10)),
        ("Deployment", "/spec/progressDeadlineSeconds".into(), json!(600)),
        ("Deployment", format!("{t}/restartPolicy"), json!("Always")),
        ("Deployment", format!("{t}/dnsPolicy"), json!("ClusterFirst")),
        ("Deployment", format!("{t}/schedulerName"), json!("default-scheduler")),
        ("Deployment", format!("{t}/securityContext"), json!({})),
        ("Deployment", format!("{t}/terminationGracePeriodSeconds"), json!(30)),
        ("Deployment", format!("{t}/containers/0/imagePullPolicy"), json!("IfNotPresent")),
        ("Deployment", format!("{t}/containers/0/terminationMessagePath"), json!("/dev/termination-log")),
        ("Deployment", format!("{t}/containers/0/terminationMessagePolicy"), json!("File")),
        ("Deployment", format!("{t}/enableServiceLinks"), Value::Null),
        ("Deployment", format!("{t}/serviceAccountName"), Value::Null),
        ("Deployment", format!("{t}/tolerations"), Value::Null),
        ("ReplicaSet", "/spec/replicas".into(), json!(1)),
        ("DaemonSet", "/spec/updateStrategy/type".into(), json!("RollingUpdate")),
        ("DaemonSet", "/spec/updateStrategy/rollingUpdate/maxUnavailable".into(), json!(1)),
        ("DaemonSet", "/spec/updateStrategy/rollingUpdate/maxSurge".into(), json!(0)),
        ("DaemonSet", "/spec/revisionHistoryLimit".into(), json!(10)),
        ("Job", "/spec/completions".into(), json!(1)),
        ("Job", "/spec/parallelism".into(), json!(1)),
        ("Job", "/spec/backoffLimit".into(), json!(6)),
        ("Job", "/spec/completionMode".into(), json!("NonIndexed")),
        ("Job", "/spec/suspend".into(), json!(false)),
        ("Job", "/spec/podReplacementPolicy".into(), json!("TerminatingOrFailed")),
        ("Job", "/spec/selector/matchLabels/batch.kubernetes.io~1controller-uid".into(), json!("u-1")),
        ("Job", "/spec/template/metadata/labels/controller-uid".into(), json!("u-1")),
        ("Job", "/spec/template/metadata/labels/batch.kubernetes.io~1controller-uid".into(), json!("u-1")),
        ("Job", "/spec/template/metadata/labels/job-name".into(), json!("x")),
        ("Job", "/spec/template/metadata/labels/batch.kubernetes.io~1job-name".into(), json!("x")),
        ("Job", "/spec/template/metadata/labels/app".into(), json!("web")),
        ("Job", "/metadata/labels/job-name".into(), json!("x")),
        ("Job", "/spec/template/spec/restartPolicy".into(), json!("Never")),
        ("CronJob", "/spec/concurrencyPolicy".into(), json!("Allow")),
        ("CronJob", "/spec/suspend".into(), json!(false)),
        ("CronJob", "/spec/successfulJobsHistoryLimit".into(), json!(3)),
        ("CronJob", "/spec/failedJobsHistoryLimit".into(), json!(1)),
        ("CronJob", "/spec/jobTemplate/spec/template/spec/dnsPolicy".into(), json!("ClusterFirst")),
        ("CronJob", "/spec/jobTemplate/spec/completions".into(), Value::Null),
        ("Pod", "/spec/restartPolicy".into(), json!("Always")),
        ("Pod", "/spec/enableServiceLinks".into(), json!(true)),
        ("Pod", "/spec/serviceAccountName".into(), json!("default")),
        ("Pod", "/spec/serviceAccount".into(), json!("default")),
        ("Pod", "/spec/priority".into(), json!(0)),
        ("Pod", "/spec/preemptionPolicy".into(), json!("PreemptLowerPriority")),
        (
            "Pod",
            "/spec/tolerations/0".into(),
            json!({"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}),
        ),
        ("Pod", "/spec/tolerations/1/key".into(), json!("node.kubernetes.io/unreachable")),
        ("Service", "/spec/type".into(), json!("ClusterIP")),
        ("Service", "/spec/sessionAffinity".into(), json!("None")),
        ("Service", "/spec/ports/0/protocol".into(), json!("TCP")),
        ("Service", "/spec/ports/0/targetPort".into(), json!(80)),
        ("Service", "/spec/ipFamilies".into(), json!(["IPv4"])),
        ("Service", "/spec/ipFamilyPolicy".into(), json!("SingleStack")),
        ("Service", "/spec/internalTrafficPolicy".into(), json!("Cluster")),
        ("Service", "/spec/externalTrafficPolicy".into(), Value::Null),
        ("Service", "/spec/clusterIP".into(), Value::Null),
        ("Endpoints", "/subsets/0/ports/0/protocol".into(), json!("TCP")),
        ("EndpointSlice", "/ports/0/protocol".into(), json!("TCP")),
        ("Secret", "/type".into(), json!("Opaque")),
        ("Namespace", "/spec/finalizers".into(), json!(["kubernetes"])),
        ("Namespace", "/status/phase".into(), json!("Active")),
        ("Namespace", "/metadata/labels/kubernetes.io~1metadata.name".into(), json!("ns1")),
        ("Node", "/status/allocatable".into(), json!({"cpu": "2", "memory": "4Gi"})),
        ("Node", "/spec".into(), json!({})),
    ];
    for (kind, pointer, want) in cases {
        let v = defaulted(kind);
        assert_eq!(at(&v, &pointer), &want, "{kind} {pointer}");
    }
}

#[test]
fn defaulted_base_objects_are_valid_and_defaulting_is_idempotent() {
    for r in api::RESOURCES {
        let v = defaulted(r.kind);
        assert_eq!(validate(r.kind, &v, None), vec![], "{}", r.kind);
        let mut again = v.clone();
        apply_defaults(r.kind, &mut again, &DefaultOptions::default());
        assert_eq!(again, v, "{}", r.kind);
        let renormalized = normalize(r.kind, v.clone()).map(|n| n.object);
        assert_eq!(renormalized.as_ref().ok(), Some(&v), "{} survives a second normalization", r.kind);
    }
}

fn pod_with(container: Value) -> Value {
    let mut p = base("Pod");
    set(&mut p, "/spec/containers/0", container);
    apply_defaults("Pod", &mut p, &DefaultOptions::default());
    p
}

#[test]
fn image_pull_policy_by_tag() {
    for (image, want) in [
        ("busybox", "Always"),
        ("busybox:latest", "Always"),
        ("busybox:1.36", "IfNotPresent"),
        ("localhost:5000/busybox", "Always"),
        ("localhost:5000/busybox:1", "IfNotPresent"),
        ("busybox@sha256:abc", "IfNotPresent"),
    ] {
        let p = pod_with(json!({"name": "c", "image": image}));
        assert_eq!(at(&p, "/spec/containers/0/imagePullPolicy"), want, "{image}");
    }
    let p = pod_with(json!({"name": "c", "image": "busybox", "imagePullPolicy": "Never"}));
    assert_eq!(at(&p, "/spec/containers/0/imagePullPolicy"), "Never");
}

#[test]
fn container_level_defaults() {
    let p = pod_with(json!({"name": "c", "image": "i:1",
        "ports": [{"containerPort": 80}],
        "livenessProbe": {"httpGet": {"port": 80}},
        "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "resources": {"limits": {"cpu": "1"}}}));
    let c = at(&p, "/spec/containers/0");
    assert_eq!(c["ports"][0]["protocol"], "TCP");
    assert_eq!(c["livenessProbe"]["timeoutSeconds"], 1);
    assert_eq!(c["livenessProbe"]["periodSeconds"], 10);
    assert_eq!(c["livenessProbe"]["successThreshold"], 1);
    assert_eq!(c["livenessProbe"]["failureThreshold"], 3);
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/");
    assert_eq!(c["livenessProbe"]["httpGet"]["scheme"], "HTTP");
    assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
    assert_eq!(c["resources"]["requests"]["cpu"], "1", "requests default to limits on Pods");
}

#[test]
fn volume_defaults() {
    let mut p = base("Pod");
    set(
        &mut p,
        "/spec/volumes",
        json!([{"name": "a"}, {"name": "b", "secret": {"secretName": "s"}},
        {"name": "c", "configMap": {"name": "m"}}, {"name": "d", "hostPath": {"path": "/x"}}]),
    );
    apply_defaults("Pod", &mut p, &DefaultOptions::default());
    assert_eq!(at(&p, "/spec/volumes/0/emptyDir"), &json!({}));
    assert_eq!(at(&p, "/spec/volumes/1/secret/defaultMode"), 420);
    assert_eq!(at(&p, "/spec/volumes/2/configMap/defaultMode"), 420);
    assert_eq!(at(&p, "/spec/volumes/3/hostPath/type"), "");
}

#[test]
fn default_toleration_seconds() {
    let opts = DefaultOptions { not_ready_toleration_seconds: 60, unreachable_toleration_seconds: 90 };
    let mut p = base("Pod");
    apply_defaults("Pod", &mut p, &opts);
    assert_eq!(at(&p, "/spec/tolerations/0/tolerationSeconds"), 60);
    assert_eq!(at(&p, "/spec/tolerations/1/tolerationSeconds"), 90);
    // Already tolerated (by key, or by a wildcard toleration): nothing added.
    let mut p = base("Pod");
    set(
        &mut p,
        "/spec/tolerations",
        json!([{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}]),
    );
    apply_defaults("Pod", &mut p, &opts);
    assert_eq!(at(&p, "/spec/tolerations").as_array().map(Vec::len), Some(2));
    assert_eq!(at(&p, "/spec/tolerations/1/key"), "node.kubernetes.io/unreachable");
    let mut p = base("Pod");
    set(&mut p, "/spec/tolerations", json!([{"operator": "Exists"}]));
    apply_defaults("Pod", &mut p, &opts);
    assert_eq!(at(&p, "/spec/tolerations").as_array().map(Vec::len), Some(1));
}

#[test]
fn secret_string_data_is_folded() {
    let mut s = json!({"metadata": {"name": "s"}, "data": {"a": "eA==", "b": "eQ=="}, "stringData": {"b": "hello"}});
    apply_defaults("Secret", &mut s, &DefaultOptions::default());
    assert_eq!(s["data"]["a"], "eA==");
    assert_eq!(s["data"]["b"], "aGVsbG8=");
    assert!(s.get("stringData").is_none());
    assert_eq!(s["type"], "Opaque");
}

#[test]
fn service_specifics() {
    let mut s = base("Service");
    set(&mut s, "/spec/type", json!("NodePort"));
    set(&mut s, "/spec/sessionAffinity", json!("ClientIP"));
    set(&mut s, "/spec/clusterIP", json!("fd00::10"));
    apply_defaults("Service", &mut s, &DefaultOptions::default());
    assert_eq!(at(&s, "/spec/externalTrafficPolicy"), "Cluster");
    assert_eq!(at(&s, "/spec/sessionAffinityConfig/clientIP/timeoutSeconds"), 10800);
    // IPv6 is not served here: no family is inferred from the address (validation rejects it).
    assert_eq!(at(&s, "/spec/ipFamilies"), &Value::Null);
    assert_eq!(at(&s, "/spec/ipFamilyPolicy"), "SingleStack");
    let mut s = base("Service");
    set(&mut s, "/spec/clusterIP", json!("10.96.0.20"));
    set(&mut s, "/spec/sessionAffinityConfig", json!({"clientIP": {"timeoutSeconds": 5}}));
    apply_defaults("Service", &mut s, &DefaultOptions::default());
    assert_eq!(at(&s, "/spec/ipFamilies"), &json!(["IPv4"]));
    assert_eq!(at(&s, "/spec/sessionAffinityConfig"), &Value::Null, "dropped when affinity is None");
    let mut s = base("Service");
    set(&mut s, "/spec/type", json!("ExternalName"));
    apply_defaults("Service", &mut s, &DefaultOptions::default());
    assert_eq!(at(&s, "/spec/ipFamilies"), &Value::Null);
    assert_eq!(at(&s, "/spec/internalTrafficPolicy"), &Value::Null);
}

#[test]
fn job_specifics() {
    // Parallelism set alone leaves completions unset; manual selectors are left alone.
    let mut j = base("Job");
    set(&mut j, "/spec/parallelism", json!(3));
    set(&mut j, "/spec/manualSelector", json!(true));
    set(&mut j, "/spec/selector", json!({"matchLabels": {"app": "web"}}));
    apply_defaults("Job", &mut j, &DefaultOptions::default());
    assert_eq!(at(&j, "/spec/completions"), &Value::Null);
    assert_eq!(at(&j, "/spec/selector"), &json!({"matchLabels": {"app": "web"}}));
    assert_eq!(at(&j, "/spec/template/metadata/labels/controller-uid"), &Value::Null);
    // Without a uid no selector is generated.
    let mut j = base("Job");
    set(&mut j, "/metadata/uid", Value::Null);
    apply_defaults("Job", &mut j, &DefaultOptions::default());
    assert_eq!(at(&j, "/spec/selector"), &Value::Null);
}

#[test]
fn defaulting_garbage_does_not_panic() {
    for r in api::RESOURCES {
        for junk in [
            json!(null),
            json!([]),
            json!("x"),
            json!({"spec": 5}),
            json!({"spec": {"template": []}}),
            json!({"spec": {"containers": [5, null]}, "metadata": 3}),
            json!({"spec": {"jobTemplate": {"spec": 1}}}),
        ] {
            let mut v = junk.clone();
            apply_defaults(r.kind, &mut v, &DefaultOptions::default());
            let _ = validate(r.kind, &v, Some(&junk));
            let _ = normalize(r.kind, junk);
        }
    }
}

#[test]
fn service_ip_family_defaults_on_a_single_stack_cluster() {
    let defaulted_with = |spec: Value| {
        let mut s = base("Service");
        if let (Some(dst), Some(src)) = (s["spec"].as_object_mut(), spec.as_object()) {
            for (k, v) in src {
                dst.insert(k.clone(), v.clone());
            }
        }
        apply_defaults("Service", &mut s, &DefaultOptions::default());
        s
    };
    let s = defaulted_with(json!({}));
    assert_eq!((at(&s, "/spec/ipFamilyPolicy"), at(&s, "/spec/ipFamilies")), (&json!("SingleStack"), &json!(["IPv4"])));
    let s = defaulted_with(json!({"ipFamilyPolicy": "PreferDualStack"}));
    assert_eq!(at(&s, "/spec/ipFamilies"), &json!(["IPv4"]), "PreferDualStack keeps one family here");
    let s = defaulted_with(json!({"clusterIP": "None"}));
    assert_eq!((at(&s, "/spec/ipFamilyPolicy"), at(&s, "/spec/ipFamilies")), (&json!("SingleStack"), &json!(["IPv4"])));
    // Headless without selector: upstream defaults to both families, even on a single-stack cluster.
    let s = defaulted_with(json!({"clusterIP": "None", "selector": null}));
    assert_eq!(at(&s, "/spec/ipFamilyPolicy"), "RequireDualStack");
    assert_eq!(at(&s, "/spec/ipFamilies"), &json!(["IPv4", "IPv6"]));
    let mut again = s.clone();
    apply_defaults("Service", &mut again, &DefaultOptions::default());
    assert_eq!(again, s, "idempotent");
}

#[test]
fn remaining_volume_and_probe_defaults() {
    let mut p = base("Pod");
    set(
        &mut p,
        "/spec/volumes",
        json!([
            {"name": "a", "iscsi": {"targetPortal": "1.2.3.4:3260", "iqn": "iqn.2001-04.com.example:s", "lun": 0}},
            {"name": "b", "rbd": {"monitors": ["1.2.3.4"], "image": "i"}},
            {"name": "c", "azureDisk": {"diskName": "d", "diskURI": "u"}},
            {"name": "d", "scaleIO": {"gateway": "g", "system": "s", "secretRef": {"name": "x"}}},
            {"name": "e", "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"]}}}},
            {"name": "f", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}},
                {"downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}},
        ]),
    );
    set(&mut p, "/spec/containers/0/livenessProbe", json!({"grpc": {"port": 9000}}));
    apply_defaults("Pod", &mut p, &DefaultOptions::default());
    let v = "/spec/volumes";
    assert_eq!(at(&p, &format!("{v}/0/iscsi/iscsiInterface")), "default");
    assert_eq!(at(&p, &format!("{v}/1/rbd/pool")), "rbd");
    assert_eq!(at(&p, &format!("{v}/1/rbd/user")), "admin");
    assert_eq!(at(&p, &format!("{v}/1/rbd/keyring")), "/etc/ceph/keyring");
    assert_eq!(at(&p, &format!("{v}/2/azureDisk/cachingMode")), "ReadWrite");
    assert_eq!(at(&p, &format!("{v}/2/azureDisk/kind")), "Shared");
    assert_eq!(at(&p, &format!("{v}/2/azureDisk/fsType")), "ext4");
    assert_eq!(at(&p, &format!("{v}/2/azureDisk/readOnly")), false);
    assert_eq!(at(&p, &format!("{v}/3/scaleIO/storageMode")), "ThinProvisioned");
    assert_eq!(at(&p, &format!("{v}/3/scaleIO/fsType")), "xfs");
    assert_eq!(at(&p, &format!("{v}/4/ephemeral/volumeClaimTemplate/spec/volumeMode")), "Filesystem");
    assert_eq!(at(&p, &format!("{v}/5/projected/sources/0/serviceAccountToken/expirationSeconds")), 3600);
    assert_eq!(at(&p, &format!("{v}/5/projected/sources/1/downwardAPI/items/0/fieldRef/apiVersion")), "v1");
    assert_eq!(at(&p, "/spec/containers/0/livenessProbe/grpc/service"), "");
    let mut again = p.clone();
    apply_defaults("Pod", &mut again, &DefaultOptions::default());
    assert_eq!(again, p, "idempotent");
}
