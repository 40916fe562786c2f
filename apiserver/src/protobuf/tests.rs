//! Tests of the protobuf decoder: real kubectl bodies against Go's own JSON of the same objects,
//! hand-encoded bodies for the special types and for hostile input.

use serde_json::{json, Value};

use super::desc::{opt, Card, Message, Ty};
use super::{decode, ProtobufError};

/// Real bodies captured from kubectl 1.33.1 and the `--dry-run=client -o json` output of the same command.
const FIXTURES: &[(&str, &[u8], &str)] = &[
    ("secret", include_bytes!("testdata/secret.pb"), include_str!("testdata/secret.json")),
    ("secret_docker", include_bytes!("testdata/secret_docker.pb"), include_str!("testdata/secret_docker.json")),
    ("configmap", include_bytes!("testdata/configmap.pb"), include_str!("testdata/configmap.json")),
    ("namespace", include_bytes!("testdata/namespace.pb"), include_str!("testdata/namespace.json")),
    ("deployment", include_bytes!("testdata/deployment.pb"), include_str!("testdata/deployment.json")),
    (
        "deployment_multi",
        include_bytes!("testdata/deployment_multi.pb"),
        include_str!("testdata/deployment_multi.json"),
    ),
    ("job", include_bytes!("testdata/job.pb"), include_str!("testdata/job.json")),
    ("cronjob", include_bytes!("testdata/cronjob.pb"), include_str!("testdata/cronjob.json")),
    ("service", include_bytes!("testdata/service.pb"), include_str!("testdata/service.json")),
    ("serviceaccount", include_bytes!("testdata/serviceaccount.pb"), include_str!("testdata/serviceaccount.json")),
];

fn fixture(name: &str) -> Value {
    let (_, pb, _) = FIXTURES.iter().find(|(n, _, _)| *n == name).unwrap();
    decode(pb).unwrap()
}

/// Removes `"creationTimestamp": null` (Go's JSON of a zero Time), which the decoder omits.
fn strip_null_timestamps(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if m.get("creationTimestamp") == Some(&Value::Null) {
                m.shift_remove("creationTimestamp");
            }
            m.values_mut().for_each(strip_null_timestamps);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_null_timestamps),
        _ => {}
    }
}

#[test]
fn kubectl_bodies_decode_to_go_json() {
    for (name, pb, json) in FIXTURES {
        let mut want: Value = serde_json::from_str(json).unwrap();
        strip_null_timestamps(&mut want);
        let got = decode(pb).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn secret_fields() {
    let s = fixture("secret");
    assert_eq!(s["apiVersion"], "v1");
    assert_eq!(s["kind"], "Secret");
    assert_eq!(s["metadata"], json!({"name": "s1"}));
    assert_eq!(s["data"]["a"], "Yg==");
    assert_eq!(s["data"]["password"], "cEBzcyB3MHJk"); // "p@ss w0rd"
    assert!(s.get("type").is_none() && s.get("stringData").is_none() && s.get("immutable").is_none());
    assert_eq!(fixture("secret_docker")["type"], "kubernetes.io/dockerconfigjson");
}

#[test]
fn configmap_and_namespace_fields() {
    let cm = fixture("configmap");
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["metadata"]["name"], "cm1");
    assert_eq!(cm["data"], json!({"k1": "v1", "k2": ""}));
    let ns = fixture("namespace");
    assert_eq!(
        ns,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns1"}, "spec": {}, "status": {}})
    );
}

#[test]
fn deployment_fields() {
    let d = fixture("deployment");
    assert_eq!(d["apiVersion"], "apps/v1");
    assert_eq!(d["kind"], "Deployment");
    assert_eq!(d["metadata"], json!({"name": "web", "labels": {"app": "web"}}));
    let spec = &d["spec"];
    assert_eq!(spec["replicas"], 2);
    assert_eq!(spec["selector"], json!({"matchLabels": {"app": "web"}}));
    assert_eq!(spec["strategy"], json!({}));
    assert_eq!(spec["template"]["metadata"], json!({"labels": {"app": "web"}}));
    let c = &spec["template"]["spec"]["containers"][0];
    assert_eq!(c["name"], "nginx");
    assert_eq!(c["image"], "nginx:1.27");
    assert_eq!(c["ports"], json!([{"containerPort": 80}]));
    assert_eq!(c["resources"], json!({}));
    assert!(c.get("imagePullPolicy").is_none() && c.get("stdin").is_none());
    let multi = fixture("deployment_multi");
    assert_eq!(multi["spec"]["template"]["spec"]["containers"][1]["image"], "busybox:1.36");
}

#[test]
fn job_fields() {
    let j = fixture("job");
    assert_eq!(j["apiVersion"], "batch/v1");
    assert_eq!(j["kind"], "Job");
    assert_eq!(j["metadata"]["name"], "j");
    let pod = &j["spec"]["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(pod["containers"][0]["command"], json!(["echo", "hi"]));
    assert!(j["spec"].get("backoffLimit").is_none());
    let cj = fixture("cronjob");
    assert_eq!(cj["spec"]["schedule"], "*/5 * * * *");
    assert_eq!(cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"], "OnFailure");
}

#[test]
fn service_int_or_string() {
    let s = fixture("service");
    assert_eq!(
        s["spec"]["ports"][0],
        json!({"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 30080})
    );
}

// ---- a tiny encoder for hand-made bodies ----

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn vi(num: u32, v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    varint(u64::from(num) << 3, &mut out);
    varint(v, &mut out);
    out
}

fn ld(num: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint((u64::from(num) << 3) | 2, &mut out);
    varint(payload.len() as u64, &mut out);
    out.extend_from_slice(payload);
    out
}

fn s(num: u32, v: &str) -> Vec<u8> {
    ld(num, v.as_bytes())
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

fn entry(num: u32, k: &str, v: &[u8]) -> Vec<u8> {
    ld(num, &cat(&[s(1, k), ld(2, v)]))
}

fn body(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut out = b"k8s\0".to_vec();
    out.extend(ld(1, &cat(&[s(1, api_version), s(2, kind)])));
    out.extend(ld(2, raw));
    out.extend(s(3, ""));
    out.extend(s(4, ""));
    out
}

fn time(seconds: i64, nanos: i32) -> Vec<u8> {
    cat(&[vi(1, seconds as u64), vi(2, nanos as i64 as u64)])
}

#[test]
fn pod_special_types_and_pointers() {
    let container = cat(&[
        s(1, "app"),
        s(2, "busybox"),
        // resources{limits: {cpu: 500m, memory: 64Mi}, requests: {cpu: ""}}
        ld(8, &cat(&[entry(1, "cpu", &s(1, "500m")), entry(1, "memory", &s(1, "64Mi")), entry(2, "cpu", &[])])),
        // livenessProbe{handler{httpGet{path, port: "http"}}, periodSeconds 0 (omitted)}
        ld(10, &cat(&[ld(1, &ld(2, &cat(&[s(1, "/healthz"), ld(2, &cat(&[vi(1, 1), s(3, "http")]))]))), vi(5, 0)])),
        // securityContext{runAsUser: 0 (pointer, kept), privileged: false (pointer, kept)}
        ld(15, &cat(&[vi(4, 0), vi(2, 0)])),
        vi(16, 0), // stdin: false, omitempty
    ]);
    let pod_spec = cat(&[
        // volumes[{name: v, secret{secretName: s, defaultMode: 0o400}}] (VolumeSource is inlined)
        ld(1, &cat(&[s(1, "v"), ld(2, &ld(6, &cat(&[s(1, "s"), vi(3, 0o400)])))])),
        ld(2, &container),
        vi(4, 0),                    // terminationGracePeriodSeconds: 0 (pointer)
        vi(21, 0),                   // automountServiceAccountToken: false (pointer)
        vi(5, u64::MAX - 1),         // activeDeadlineSeconds: -2 (sign-extended int64)
        s(8, ""),                    // serviceAccountName "" (omitempty)
        ld(18, &ld(1, &ld(1, &[]))), // affinity.nodeAffinity.required{}
        ld(22, &cat(&[s(1, "k"), s(2, "Exists"), s(4, "NoExecute"), vi(5, 0)])), // tolerations
    ]);
    let meta = cat(&[
        s(1, "p"),
        s(3, ""),
        ld(8, &time(1_732_000_000, 0)),
        ld(9, &[]), // zero deletionTimestamp: omitted
        vi(10, 0),  // deletionGracePeriodSeconds 0 (pointer)
        ld(17, &cat(&[s(1, "kubectl"), ld(4, &time(0, 0)), ld(7, &ld(1, br#"{"f:metadata":{}}"#))])),
    ]);
    let status = cat(&[s(1, "Running"), ld(7, &time(1_732_000_001, 999)), s(6, "10.0.0.5")]);
    let pod = decode(&body("v1", "Pod", &cat(&[ld(1, &meta), ld(2, &pod_spec), ld(3, &status)]))).unwrap();

    assert_eq!(
        pod["metadata"],
        json!({
            "name": "p",
            "creationTimestamp": "2024-11-19T07:06:40Z",
            "deletionGracePeriodSeconds": 0,
            "managedFields": [{"manager": "kubectl", "time": "1970-01-01T00:00:00Z", "fieldsV1": {"f:metadata": {}}}],
        })
    );
    let spec = &pod["spec"];
    assert_eq!(spec["volumes"], json!([{"name": "v", "secret": {"secretName": "s", "defaultMode": 256}}]));
    assert_eq!(spec["terminationGracePeriodSeconds"], 0);
    assert_eq!(spec["automountServiceAccountToken"], false);
    assert_eq!(spec["activeDeadlineSeconds"], -2);
    assert!(spec.get("serviceAccountName").is_none());
    assert_eq!(spec["affinity"], json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}}));
    assert_eq!(
        spec["tolerations"],
        json!([{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 0}])
    );
    let c = &spec["containers"][0];
    assert_eq!(c["resources"], json!({"limits": {"cpu": "500m", "memory": "64Mi"}, "requests": {"cpu": "0"}}));
    assert_eq!(c["livenessProbe"], json!({"httpGet": {"path": "/healthz", "port": "http"}}));
    assert_eq!(c["securityContext"], json!({"runAsUser": 0, "privileged": false}));
    assert!(c.get("stdin").is_none());
    assert_eq!(pod["status"], json!({"phase": "Running", "startTime": "2024-11-19T07:06:41Z", "podIP": "10.0.0.5"}));
}

#[test]
fn deployment_pointers_and_int_or_string() {
    let strategy =
        ld(4, &cat(&[s(1, "RollingUpdate"), ld(2, &cat(&[ld(1, &vi(2, 0)), ld(2, &cat(&[vi(1, 1), s(3, "25%")]))]))]));
    let spec = cat(&[vi(1, 0), strategy, vi(6, 0), vi(5, 0), vi(7, 0)]);
    let d = decode(&body("apps/v1", "Deployment", &ld(2, &spec))).unwrap();
    assert_eq!(
        d["spec"],
        json!({
            "replicas": 0,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
            "revisionHistoryLimit": 0,
        })
    );
}

#[test]
fn lease_micro_time_and_event() {
    let spec = cat(&[s(1, "node-1"), vi(2, 40), ld(3, &time(1_732_000_000, 123_456_789)), vi(5, 0)]);
    let l = decode(&body("coordination.k8s.io/v1", "Lease", &ld(2, &spec))).unwrap();
    assert_eq!(
        l["spec"],
        json!({"holderIdentity": "node-1", "leaseDurationSeconds": 40, "acquireTime": "2024-11-19T07:06:40.123456Z", "leaseTransitions": 0})
    );
    let ev = decode(&body("v1", "Event", &cat(&[ld(2, &cat(&[s(1, "Pod"), s(3, "p")])), s(3, "Started"), vi(8, 3)])))
        .unwrap();
    assert_eq!(ev["involvedObject"], json!({"kind": "Pod", "name": "p"}));
    assert_eq!(ev["reason"], "Started");
    assert_eq!(ev["count"], 3);
}

#[test]
fn endpoint_slice_and_other_kinds() {
    let ep = cat(&[ld(1, b"10.0.0.1"), ld(2, &vi(1, 0))]);
    let port = cat(&[s(1, "http"), s(2, "TCP"), vi(3, 8080)]);
    let es =
        decode(&body("discovery.k8s.io/v1", "EndpointSlice", &cat(&[s(4, "IPv4"), ld(2, &ep), ld(3, &port)]))).unwrap();
    assert_eq!(es["addressType"], "IPv4");
    assert_eq!(es["endpoints"], json!([{"addresses": ["10.0.0.1"], "conditions": {"ready": false}}]));
    assert_eq!(es["ports"], json!([{"name": "http", "protocol": "TCP", "port": 8080}]));
    for (v, k) in [
        ("v1", "Endpoints"),
        ("v1", "Node"),
        ("v1", "ServiceAccount"),
        ("v1", "Binding"),
        ("apps/v1", "ReplicaSet"),
        ("apps/v1", "DaemonSet"),
        ("policy/v1", "Eviction"),
        ("autoscaling/v1", "Scale"),
        ("apps/v1", "DeleteOptions"),
    ] {
        let got = decode(&body(v, k, &vi(100, 1))).unwrap();
        assert_eq!(got["kind"], k);
    }
    let scale = decode(&body("autoscaling/v1", "Scale", &ld(2, &vi(1, 0)))).unwrap();
    assert_eq!(scale["spec"], json!({"replicas": 0}));
}

#[test]
fn proto_semantics() {
    // Unknown fields of every wire type are skipped; packed and unpacked repeated int32 both work;
    // a repeated singular message merges; a repeated scalar overwrites.
    let unknown =
        cat(&[vi(99, 7), ld(98, b"junk"), vec![0xc9, 0x06, 1, 2, 3, 4, 5, 6, 7, 8], vec![0xd5, 0x06, 1, 2, 3, 4]]);
    let req = cat(&[s(1, "c"), s(2, "In"), ld(3, &cat(&[vec![1], vec![0xff; 9], vec![0x01]])), vi(3, 5)]);
    let rule = cat(&[s(1, "FailJob"), ld(2, &req), unknown.clone()]);
    let spec = cat(&[ld(11, &ld(1, &rule)), vi(1, 1), vi(1, 3), unknown.clone()]);
    let meta1 = cat(&[s(1, "first"), s(3, "ns")]);
    let meta2 = cat(&[s(1, "second"), entry(11, "a", b"b")]);
    let j = decode(&body("batch/v1", "Job", &cat(&[ld(1, &meta1), ld(2, &spec), ld(1, &meta2), unknown]))).unwrap();
    assert_eq!(j["metadata"], json!({"name": "second", "namespace": "ns", "labels": {"a": "b"}}));
    assert_eq!(j["spec"]["parallelism"], 3);
    assert_eq!(
        j["spec"]["podFailurePolicy"]["rules"][0],
        json!({"action": "FailJob", "onExitCodes": {"containerName": "c", "operator": "In", "values": [1, -1, 5]}})
    );
}

#[test]
fn errors_are_clear() {
    let err = |b: &[u8]| decode(b).unwrap_err().to_string();
    assert_eq!(err(b"{\"kind\":\"Secret\"}"), "protobuf body is missing the k8s magic prefix");
    assert_eq!(err(&body("apps/v1", "Foo", &[])), "kind apps/v1 Foo has no protobuf decoder");
    assert_eq!(err(b"k8s\0"), "protobuf envelope has no apiVersion/kind");
    let mut truncated = body("v1", "Secret", &s(3, "Opaque"));
    truncated.push(0x80);
    assert_eq!(err(&truncated), format!("truncated varint at byte {}", truncated.len() - 1));
    assert!(err(&body("v1", "Secret", &vi(1, 5))).starts_with("field Secret.metadata has wire type 0, expected 2"));
    assert!(err(&body("v1", "Secret", &ld(3, &[0xff, 0xfe]))).starts_with("field Secret.type is not valid UTF-8"));
    assert!(err(&body("v1", "Pod", &ld(1, &ld(8, &time(i64::MAX, 0))))).contains("outside years 0000-9999"));
    let mut gz = b"k8s\0".to_vec();
    gz.extend(cat(&[ld(1, &cat(&[s(1, "v1"), s(2, "Secret")])), s(3, "gzip")]));
    assert_eq!(err(&gz), "unsupported protobuf content encoding \"gzip\"");
    assert!(matches!(decode(&body("v1", "Secret", &[0x7b])), Err(ProtobufError::BadWireType { wire_type: 3, .. })));
}

static RECURSIVE: Message = Message { name: "Recursive", fields: &[opt(1, "next", Ty::Message(&RECURSIVE))] };

#[test]
fn nesting_is_bounded() {
    let mut b = Vec::new();
    for _ in 0..200 {
        b = ld(1, &b);
    }
    let e = super::decode::message(&b, 0, &RECURSIVE, 0).unwrap_err();
    assert!(matches!(e, ProtobufError::TooDeep { .. }), "{e}");
    let mut ok = Vec::new();
    for _ in 0..10 {
        ok = ld(1, &ok);
    }
    assert!(super::decode::message(&ok, 0, &RECURSIVE, 0).is_ok());
}

#[test]
fn hostile_bytes_never_panic() {
    for (_, pb, _) in FIXTURES {
        for len in 0..pb.len() {
            let _ = decode(&pb[..len]);
        }
        // Deterministic mutation fuzzing: flip, insert and drop bytes.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..3000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut m = pb.to_vec();
            let at = 4 + (seed as usize) % (m.len() - 4);
            match (seed >> 32) % 3 {
                0 => m[at] = (seed >> 40) as u8,
                1 => m.insert(at, (seed >> 40) as u8),
                _ => drop(m.remove(at)),
            }
            let _ = decode(&m);
        }
    }
}

/// Every table: fields strictly sorted by number (binary search), `Inline` only with messages,
/// `Map` exactly with map types; reached through every registered kind.
#[test]
fn descriptor_tables_are_consistent() {
    fn check(m: &'static Message, seen: &mut Vec<&'static str>) {
        if seen.contains(&m.name) {
            return;
        }
        seen.push(m.name);
        assert!(m.fields.windows(2).all(|w| w[0].num < w[1].num), "{} not sorted", m.name);
        for f in m.fields {
            assert_eq!(f.card == Card::Map, matches!(f.ty, Ty::Map(_)), "{}.{}", m.name, f.name);
            assert_eq!(f.card == Card::Inline, f.name.is_empty(), "{}.{}", m.name, f.name);
            let mut ty = f.ty;
            if let Ty::Map(v) = ty {
                ty = *v;
            }
            match ty {
                Ty::Message(inner) => check(inner, seen),
                _ => assert!(f.card != Card::Inline, "{}.{}", m.name, f.name),
            }
        }
    }
    let mut seen = Vec::new();
    for (v, k) in [
        ("v1", "Pod"),
        ("v1", "Service"),
        ("v1", "Endpoints"),
        ("v1", "Secret"),
        ("v1", "ConfigMap"),
        ("v1", "Namespace"),
        ("v1", "Node"),
        ("v1", "Event"),
        ("v1", "ServiceAccount"),
        ("v1", "Binding"),
        ("apps/v1", "Deployment"),
        ("apps/v1", "ReplicaSet"),
        ("apps/v1", "DaemonSet"),
        ("batch/v1", "Job"),
        ("batch/v1", "CronJob"),
        ("discovery.k8s.io/v1", "EndpointSlice"),
        ("coordination.k8s.io/v1", "Lease"),
        ("policy/v1", "Eviction"),
        ("autoscaling/v1", "Scale"),
        ("v1", "DeleteOptions"),
    ] {
        check(super::kinds::lookup(v, k).unwrap(), &mut seen);
    }
    assert!(seen.len() > 150, "{} messages", seen.len());
}
