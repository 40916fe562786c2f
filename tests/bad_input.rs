//! Bad input: every request gets the HTTP code kube-apiserver would give, a `Status` body with
//! the matching reason, and changes nothing.
//!
//! Upstream references (kubernetes/kubernetes, staging/src/k8s.io/apiserver/pkg/endpoints/
//! handlers): undecodable bodies of any supported type, protobuf included, go through
//! `transformDecodeError` → 400 BadRequest (the protobuf serializer fails on a missing `k8s\0`
//! prefix or a bad `runtime.Unknown`); an unsupported Content-Type fails negotiation → 415;
//! bodies over 3 MiB (3145728 bytes) → 413 RequestEntityTooLarge; validation → 422 Invalid
//! with `details.causes`.

mod common;

use common::{configmap, deployment, pod, Api, Server};
use serde_json::{json, Value};

const PODS: &str = "/api/v1/namespaces/default/pods";
const CMS: &str = "/api/v1/namespaces/default/configmaps";
const SECRETS: &str = "/api/v1/namespaces/default/secrets";
const DEPLOYS: &str = "/apis/apps/v1/namespaces/default/deployments";
const SERVICES: &str = "/api/v1/namespaces/default/services";

/// Every object the tests create carries this label, so the "nothing changed" snapshot can
/// ignore objects that controllers create on their own.
const SEL: &str = "?labelSelector=fixture%3Dbad";

fn lbl() -> Value {
    json!({"fixture": "bad"})
}

/// A server with one pre-existing labelled object of each kind the tests aim at.
fn setup() -> (Server, Api, Snapshot) {
    let server = Server::start();
    let api = server.api();
    api.create(PODS, &pod("victim", lbl()));
    api.create(CMS, &configmap("victim", lbl(), json!({"k": "v"})));
    let mut d = deployment("victim", 1);
    d["metadata"]["labels"] = lbl();
    api.create(DEPLOYS, &d);
    let snap = Snapshot::take(&api);
    (server, api, snap)
}

#[derive(Debug, PartialEq)]
struct Snapshot(Vec<Vec<(String, String)>>);

impl Snapshot {
    fn take(api: &Api) -> Snapshot {
        Snapshot([PODS, CMS, SECRETS, DEPLOYS, SERVICES].iter().map(|c| api.snapshot(&format!("{c}{SEL}"))).collect())
    }

    #[track_caller]
    fn assert_unchanged(&self, api: &Api, what: &str) {
        let now = Snapshot::take(api);
        assert_eq!(&now, self, "{what} changed stored objects");
    }
}

fn body(v: &Value) -> Option<Vec<u8>> {
    Some(serde_json::to_vec(v).unwrap())
}

/// `details.causes[*].field` of a 422.
fn cause_fields(status: &Value) -> Vec<String> {
    status["details"]["causes"]
        .as_array()
        .unwrap_or_else(|| panic!("422 without details.causes: {status}"))
        .iter()
        .map(|c| c["field"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[track_caller]
fn assert_invalid(api: &Api, path: &str, obj: &Value, field: &str) {
    let s = api.post_json(path, obj).expect_status(422, "Invalid");
    let fields = cause_fields(&s);
    assert!(
        fields.iter().any(|f| f == field || f.starts_with(&format!("{field}["))),
        "expected a cause for field {field:?}, got {fields:?}: {s}"
    );
    for c in s["details"]["causes"].as_array().unwrap() {
        assert!(c["message"].as_str().is_some_and(|m| !m.is_empty()), "cause without message: {c}");
        assert!(c["reason"].as_str().is_some_and(|m| !m.is_empty()), "cause without reason: {c}");
    }
    assert_eq!(s["details"]["name"], obj["metadata"]["name"], "details.name names the object: {s}");
}

// --- protobuf encoding, just enough for runtime.Unknown{Secret} -------------------------------

fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn field_bytes(num: u64, data: &[u8], out: &mut Vec<u8>) {
    varint((num << 3) | 2, out);
    varint(data.len() as u64, out);
    out.extend_from_slice(data);
}

/// `k8s\0` + runtime.Unknown{typeMeta{apiVersion, kind}, raw}.
fn pb_unknown(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut tm = Vec::new();
    field_bytes(1, api_version.as_bytes(), &mut tm);
    field_bytes(2, kind.as_bytes(), &mut tm);
    let mut unk = Vec::new();
    field_bytes(1, &tm, &mut unk);
    field_bytes(2, raw, &mut unk);
    field_bytes(3, b"", &mut unk);
    field_bytes(4, b"", &mut unk);
    let mut out = b"k8s\x00".to_vec();
    out.extend(unk);
    out
}

/// A v1.Secret message: ObjectMeta{name, labels}, data, type.
fn pb_secret(name: &str, data: &[(&str, &[u8])]) -> Vec<u8> {
    let mut meta = Vec::new();
    field_bytes(1, name.as_bytes(), &mut meta);
    let mut label = Vec::new();
    field_bytes(1, b"fixture", &mut label);
    field_bytes(2, b"bad", &mut label);
    field_bytes(11, &label, &mut meta);
    let mut s = Vec::new();
    field_bytes(1, &meta, &mut s);
    for (k, v) in data {
        let mut entry = Vec::new();
        field_bytes(1, k.as_bytes(), &mut entry);
        field_bytes(2, v, &mut entry);
        field_bytes(2, &entry, &mut s);
    }
    field_bytes(3, b"Opaque", &mut s);
    s
}

const PB: &str = "application/vnd.kubernetes.protobuf";

// --- tests --------------------------------------------------------------------------------------

#[test]
fn malformed_json_is_400() {
    let (_server, api, snap) = setup();
    let truncated = br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x","labels":{"fixture":"bad"}"#;
    for (what, bytes) in [
        ("truncated JSON", truncated.to_vec()),
        ("trailing garbage", br#"{"apiVersion":"v1","kind":"Pod"}}}"#.to_vec()),
        ("not an object", b"[1,2,3]".to_vec()),
        ("empty body", Vec::new()),
    ] {
        let r = api.send("POST", PODS, Some("application/json"), Some(bytes));
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        r.expect_status(400, "BadRequest");
    }
    // A malformed update of an existing object.
    let r = api.send("PUT", &format!("{PODS}/victim"), Some("application/json"), Some(truncated.to_vec()));
    r.expect_status(400, "BadRequest");
    api.get(&format!("{PODS}/x")).expect_status(404, "NotFound");
    snap.assert_unchanged(&api, "malformed JSON");
}

#[test]
fn malformed_yaml_is_400() {
    let (_server, api, _) = setup();
    // Control: a well-formed YAML body is accepted, so the 400 below is about the YAML.
    let good = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  k: v\n";
    let created = api.send("POST", CMS, Some("application/yaml"), Some(good.as_bytes().to_vec())).expect(201).json();
    assert_eq!(created["data"]["k"], "v", "{created}");
    let snap = Snapshot::take(&api);

    for bad in [
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad-yaml\n  labels: {fixture: bad\ndata: [unclosed\n",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n\tname: tabs-are-not-indentation\n",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [a, b\n",
        "- just\n- a\n- list\n",
    ] {
        let r = api.send("POST", CMS, Some("application/yaml"), Some(bad.as_bytes().to_vec()));
        assert_eq!(r.status, 400, "YAML {bad:?}: {}", r.text());
        r.expect_status(400, "BadRequest");
    }
    api.get(&format!("{CMS}/bad-yaml")).expect_status(404, "NotFound");
    snap.assert_unchanged(&api, "malformed YAML");
}

#[test]
fn malformed_protobuf_is_400() {
    let (_server, api, _) = setup();
    // Control: a well-formed protobuf Secret is accepted (kubectl create sends exactly this).
    let good = pb_unknown("v1", "Secret", &pb_secret("pb-ok", &[("k", b"\x00\x01binary")]));
    let created = api.send("POST", SECRETS, Some(PB), Some(good)).expect(201).json();
    assert_eq!(created["metadata"]["name"], "pb-ok", "{created}");
    assert_eq!(created["data"]["k"], "AAFiaW5hcnk=", "{created}");
    let snap = Snapshot::take(&api);

    let valid_secret = pb_secret("pb-bad", &[("k", b"v")]);
    let mut truncated = pb_unknown("v1", "Secret", &valid_secret);
    truncated.truncate(truncated.len() - 5);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("no k8s\\0 prefix", valid_secret.clone()),
        ("prefix only", b"k8s\x00".to_vec()),
        ("truncated message", truncated),
        ("bad length varint", b"k8s\x00\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01".to_vec()),
        ("garbage raw object", pb_unknown("v1", "Secret", b"\xff\xff\xff\xff\x0f\x12")),
        ("random bytes", b"\x8a\x9f\x00\x13garbage\xde\xad\xbe\xef".to_vec()),
    ];
    for (what, bytes) in cases {
        let r = api.send("POST", SECRETS, Some(PB), Some(bytes));
        assert_eq!(r.status, 400, "protobuf with {what}: {}", r.text());
        r.expect_status(400, "BadRequest");
    }
    api.get(&format!("{SECRETS}/pb-bad")).expect_status(404, "NotFound");
    snap.assert_unchanged(&api, "malformed protobuf");
}

#[test]
fn unknown_kind_or_version_in_url_is_404() {
    let (_server, api, snap) = setup();
    for path in [
        "/api/v1/namespaces/default/widgets",
        "/api/v1/namespaces/default/widgets/w",
        "/api/v2/namespaces/default/pods",
        "/apis/apps/v9/namespaces/default/deployments",
        "/apis/apps/v1beta2/namespaces/default/deployments",
        "/apis/nosuch.example.com/v1/namespaces/default/things",
        "/apis/batch/v1/namespaces/default/deployments",
    ] {
        let r = api.get(path);
        assert_eq!(r.status, 404, "GET {path}: {}", r.text());
        r.expect_status(404, "NotFound");
        let r = api.post_json(path, &pod("via-unknown", lbl()));
        assert_eq!(r.status, 404, "POST {path}: {}", r.text());
    }
    api.get(&format!("{PODS}/via-unknown")).expect_status(404, "NotFound");
    snap.assert_unchanged(&api, "requests to unknown resources");
}

#[test]
fn kind_or_namespace_mismatch_is_400() {
    let (_server, api, snap) = setup();
    let svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "mismatch", "labels": lbl()},
        "spec": {"ports": [{"port": 80}]}
    });
    api.post_json(PODS, &svc).expect_status(400, "BadRequest");

    // A Deployment body sent to the core group's pods.
    let mut d = deployment("mismatch", 1);
    d["metadata"]["labels"] = lbl();
    api.post_json(PODS, &d).expect_status(400, "BadRequest");

    // A Pod whose metadata.namespace differs from the URL's.
    let mut p = pod("mismatch", lbl());
    p["metadata"]["namespace"] = json!("kube-system");
    api.post_json(PODS, &p).expect_status(400, "BadRequest");

    // PUT whose body names another object than the URL.
    let mut victim = api.get_json(&format!("{PODS}/victim"));
    victim["metadata"]["name"] = json!("someone-else");
    api.put_json(&format!("{PODS}/victim"), &victim).expect_status(400, "BadRequest");

    for p in [
        format!("{PODS}/mismatch"),
        format!("{SERVICES}/mismatch"),
        format!("{DEPLOYS}/mismatch"),
        "/api/v1/namespaces/kube-system/pods/mismatch".to_string(),
        format!("{PODS}/someone-else"),
    ] {
        api.get(&p).expect_status(404, "NotFound");
    }
    snap.assert_unchanged(&api, "mismatched kind/namespace/name");
}

#[test]
fn invalid_name_is_422() {
    let (_server, api, snap) = setup();
    for name in ["Bad_Name", "UPPER", "-leading-dash", "has space", "dot.", &"a".repeat(254)] {
        let obj = configmap(name, lbl(), json!({}));
        assert_invalid(&api, CMS, &obj, "metadata.name");
    }
    // Pod names are DNS subdomains too.
    assert_invalid(&api, PODS, &pod("Bad_Name", lbl()), "metadata.name");
    // Neither a name nor a generateName.
    let mut unnamed = configmap("x", lbl(), json!({}));
    unnamed["metadata"].as_object_mut().unwrap().remove("name");
    let s = api.post_json(CMS, &unnamed).expect_status(422, "Invalid");
    assert!(cause_fields(&s).iter().any(|f| f == "metadata.name"), "{s}");
    snap.assert_unchanged(&api, "invalid names");
}

#[test]
fn invalid_labels_are_422() {
    let (_server, api, snap) = setup();
    for labels in [
        json!({"fixture": "bad", "bad key": "v"}),
        json!({"fixture": "bad", "a/b/c": "v"}),
        json!({"fixture": "bad", "ok": "-starts-with-dash"}),
        json!({"fixture": "bad", "ok": "x".repeat(64)}),
        json!({"fixture": "bad", "UPPER.example.com/x": "v"}),
    ] {
        let obj = configmap("labelled", labels.clone(), json!({}));
        let s = api.post_json(CMS, &obj).expect_status(422, "Invalid");
        assert!(cause_fields(&s).iter().any(|f| f.starts_with("metadata.labels")), "labels {labels}: {s}");
    }
    // Updating an existing object to invalid labels fails too and keeps it as it was.
    let mut victim = api.get_json(&format!("{CMS}/victim"));
    victim["metadata"]["labels"]["bad key"] = json!("v");
    api.put_json(&format!("{CMS}/victim"), &victim).expect_status(422, "Invalid");
    api.patch(
        &format!("{CMS}/victim"),
        "application/merge-patch+json",
        &json!({"metadata": {"labels": {"ok": "-bad-"}}}),
    )
    .expect_status(422, "Invalid");
    snap.assert_unchanged(&api, "invalid labels");
}

#[test]
fn missing_required_fields_are_422_with_causes() {
    let (_server, api, snap) = setup();

    let mut no_selector = deployment("no-selector", 1);
    no_selector["metadata"]["labels"] = lbl();
    no_selector["spec"].as_object_mut().unwrap().remove("selector");
    assert_invalid(&api, DEPLOYS, &no_selector, "spec.selector");

    let mut mismatched = deployment("mismatched-selector", 1);
    mismatched["metadata"]["labels"] = lbl();
    mismatched["spec"]["selector"]["matchLabels"] = json!({"app": "other"});
    assert_invalid(&api, DEPLOYS, &mismatched, "spec.template.metadata.labels");

    let mut no_containers = pod("no-containers", lbl());
    no_containers["spec"]["containers"] = json!([]);
    assert_invalid(&api, PODS, &no_containers, "spec.containers");

    let mut no_image = pod("no-image", lbl());
    no_image["spec"]["containers"][0].as_object_mut().unwrap().remove("image");
    assert_invalid(&api, PODS, &no_image, "spec.containers[0].image");

    let no_ports = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "no-ports", "labels": lbl()},
        "spec": {"selector": {"app": "x"}}
    });
    assert_invalid(&api, SERVICES, &no_ports, "spec.ports");

    let bad_port = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "bad-port", "labels": lbl()},
        "spec": {"ports": [{"port": 70000}]}
    });
    assert_invalid(&api, SERVICES, &bad_port, "spec.ports[0].port");

    snap.assert_unchanged(&api, "objects missing required fields");
}

#[test]
fn body_over_3_mib_is_413() {
    let (_server, api, snap) = setup();
    let big = "x".repeat(3 * 1024 * 1024 + 1024);
    let obj = configmap("too-big", lbl(), json!({"k": big}));
    let r = api
        .try_send("POST", CMS, Some("application/json"), body(&obj))
        .unwrap_or_else(|e| panic!("the server must answer 413, not drop the connection: {e}"));
    assert_eq!(r.status, 413, "{}", &r.text()[..r.text().len().min(500)]);
    r.expect_status(413, "RequestEntityTooLarge");

    // Also for an update of an existing object.
    let mut victim = api.get_json(&format!("{CMS}/victim"));
    victim["data"]["k"] = json!(big);
    let r = api
        .try_send("PUT", &format!("{CMS}/victim"), Some("application/json"), body(&victim))
        .unwrap_or_else(|e| panic!("the server must answer 413, not drop the connection: {e}"));
    assert_eq!(r.status, 413);

    api.get(&format!("{CMS}/too-big")).expect_status(404, "NotFound");
    snap.assert_unchanged(&api, "oversized bodies");
    // The server is still healthy afterwards.
    api.get("/readyz").expect(200);
}

#[test]
fn stale_resource_version_is_409_conflict() {
    let (_server, api, _) = setup();
    let path = format!("{CMS}/victim");
    let v1 = api.get_json(&path);
    let mut v2 = v1.clone();
    v2["data"]["k"] = json!("second");
    let stored2 = api.put_json(&path, &v2).expect(200).json();
    assert_ne!(
        stored2["metadata"]["resourceVersion"], v1["metadata"]["resourceVersion"],
        "an update must change resourceVersion"
    );

    // PUT based on the first version.
    let mut stale = v1.clone();
    stale["data"]["k"] = json!("stale");
    let s = api.put_json(&path, &stale).expect_status(409, "Conflict");
    assert!(s["message"].as_str().unwrap_or_default().contains("the object has been modified"), "{s}");
    // PATCH that carries a stale resourceVersion is a conflict too.
    api.patch(
        &path,
        "application/merge-patch+json",
        &json!({"metadata": {"resourceVersion": v1["metadata"]["resourceVersion"]}, "data": {"k": "stale"}}),
    )
    .expect_status(409, "Conflict");

    let now = api.get_json(&path);
    assert_eq!(now["data"]["k"], "second", "{now}");
    assert_eq!(now["metadata"]["resourceVersion"], stored2["metadata"]["resourceVersion"]);
}

#[test]
fn duplicate_create_is_409_already_exists() {
    let (_server, api, snap) = setup();
    let before = api.get_json(&format!("{PODS}/victim"));
    let mut again = pod("victim", lbl());
    again["spec"]["containers"][0]["image"] = json!("busybox:1.37");
    let s = api.post_json(PODS, &again).expect_status(409, "AlreadyExists");
    assert_eq!(s["details"]["name"], "victim", "{s}");
    assert_eq!(s["details"]["kind"], "pods", "{s}");
    let after = api.get_json(&format!("{PODS}/victim"));
    assert_eq!(after, before, "the existing object must be untouched");
    snap.assert_unchanged(&api, "a duplicate create");
}

#[test]
fn unknown_content_type_is_415() {
    let (_server, api, snap) = setup();
    let obj = body(&configmap("ctype", lbl(), json!({})));
    for ct in ["text/csv", "application/x-www-form-urlencoded", "image/png"] {
        let r = api.send("POST", CMS, Some(ct), obj.clone());
        assert_eq!(r.status, 415, "Content-Type {ct}: {}", r.text());
        r.expect_status(415, "UnsupportedMediaType");
    }
    // PATCH needs one of the patch types; plain JSON is not one.
    let r =
        api.send("PATCH", &format!("{CMS}/victim"), Some("application/json"), body(&json!({"data": {"k": "patched"}})));
    assert_eq!(r.status, 415, "PATCH with application/json: {}", r.text());
    api.get(&format!("{CMS}/ctype")).expect_status(404, "NotFound");
    snap.assert_unchanged(&api, "unsupported Content-Types");
}

#[test]
fn wrong_field_types_are_400() {
    let (_server, api, snap) = setup();
    let mut base = deployment("typed", 1);
    base["metadata"]["labels"] = lbl();
    let cases: Vec<(&str, Value)> = vec![
        ("replicas as a string", json!({"spec": {"replicas": "three"}})),
        ("containers as a number", json!({"spec": {"template": {"spec": {"containers": 5}}}})),
        ("metadata as a list", json!({"metadata": ["typed"]})),
        ("labels as a string", json!({"metadata": {"labels": "fixture=bad"}})),
    ];
    for (what, overlay) in cases {
        let mut d = base.clone();
        merge(&mut d, &overlay);
        let r = api.post_json(DEPLOYS, &d);
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        r.expect_status(400, "BadRequest");
    }
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "typed", "labels": lbl()},
        "data": {"k": 1}
    });
    api.post_json(CMS, &cm).expect_status(400, "BadRequest");
    api.get(&format!("{DEPLOYS}/typed")).expect_status(404, "NotFound");
    api.get(&format!("{CMS}/typed")).expect_status(404, "NotFound");
    snap.assert_unchanged(&api, "bodies with wrong field types");
}

/// Recursive JSON merge (objects merge, everything else replaces).
fn merge(into: &mut Value, overlay: &Value) {
    match (into, overlay) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

#[test]
fn unknown_fields_strict_is_400_default_warns_and_drops() {
    let (_server, api, snap) = setup();
    let mut d = deployment("unknown-field", 1);
    d["metadata"]["labels"] = lbl();
    d["spec"]["replica"] = json!(3);
    d["spec"]["template"]["spec"]["containers"][0]["imagee"] = json!("typo");

    // kubectl sends fieldValidation=Strict: unknown fields are an error.
    let s = api.post_json(&format!("{DEPLOYS}?fieldValidation=Strict"), &d).expect_status(400, "BadRequest");
    let msg = s["message"].as_str().unwrap_or_default();
    assert!(msg.contains("unknown field \"spec.replica\""), "{s}");
    assert!(msg.contains("spec.template.spec.containers[0].imagee"), "{s}");
    snap.assert_unchanged(&api, "a Strict create with unknown fields");

    // The default (Warn): created, the fields dropped, a Warning header per field.
    let r = api.post_json(DEPLOYS, &d).expect(201);
    assert!(
        r.warnings.iter().any(|w| w.contains("unknown field") && w.contains("spec.replica")),
        "expected a Warning header naming spec.replica, got {:?}",
        r.warnings
    );
    let stored = api.get_json(&format!("{DEPLOYS}/unknown-field"));
    assert!(stored["spec"].get("replica").is_none(), "unknown field stored: {stored}");
    assert!(stored["spec"]["template"]["spec"]["containers"][0].get("imagee").is_none(), "{stored}");
    assert_eq!(stored["spec"]["replicas"], 1);

    // Ignore: created, no warnings.
    d["metadata"]["name"] = json!("unknown-field-2");
    let r = api.post_json(&format!("{DEPLOYS}?fieldValidation=Ignore"), &d).expect(201);
    assert!(r.warnings.is_empty(), "fieldValidation=Ignore must not warn: {:?}", r.warnings);
}

#[test]
fn duplicate_fields_strict_is_400() {
    let (_server, api, snap) = setup();
    let dup = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup","labels":{"fixture":"bad"}},"data":{"k":"1"},"data":{"k":"2"}}"#;
    let r = api.send("POST", &format!("{CMS}?fieldValidation=Strict"), Some("application/json"), Some(dup.to_vec()));
    let s = r.expect_status(400, "BadRequest");
    assert!(s["message"].as_str().unwrap_or_default().contains("duplicate field"), "{s}");
    api.get(&format!("{CMS}/dup")).expect_status(404, "NotFound");
    snap.assert_unchanged(&api, "a Strict create with duplicate fields");
}

#[test]
fn random_bodies_never_crash_the_server() {
    use rand::{Rng, SeedableRng};
    let (mut server, api, _) = setup();
    let seed: u64 = std::env::var("SKIFF_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let valid: Vec<Vec<u8>> = [pod("fz", lbl()), configmap("fz", lbl(), json!({"k": "v"})), deployment("fz", 2)]
        .iter()
        .map(|v| serde_json::to_vec(v).unwrap())
        .collect();
    let targets: &[(&str, String)] = &[
        ("POST", PODS.to_string()),
        ("POST", CMS.to_string()),
        ("POST", SECRETS.to_string()),
        ("POST", DEPLOYS.to_string()),
        ("PUT", format!("{CMS}/victim")),
        ("PATCH", format!("{CMS}/victim")),
        ("PATCH", format!("{DEPLOYS}/victim")),
        ("PATCH", format!("{DEPLOYS}/victim?fieldManager=fuzz")),
        // Subresources go through the same pipeline and must hold up just as well.
        ("POST", format!("{PODS}/victim/binding")),
        ("POST", format!("{PODS}/victim/eviction")),
        ("PUT", format!("{DEPLOYS}/victim/scale")),
        ("PATCH", format!("{DEPLOYS}/victim/scale")),
        ("PUT", format!("{DEPLOYS}/victim/status")),
        ("PATCH", format!("{PODS}/victim/status")),
        ("DELETE", format!("{CMS}/victim")),
        ("DELETE", SECRETS.to_string()),
        ("GET", PODS.to_string()),
        ("GET", format!("{DEPLOYS}/victim")),
        ("GET", format!("{CMS}?watch=true&timeoutSeconds=1")),
    ];
    // Query parameters with hostile values, added to every request at random.
    let params: &[(&str, &[&str])] = &[
        ("timeoutSeconds", &["18446744073709551615", "9223372036854775807", "-1", "abc", "0", "1e9"]),
        ("limit", &["-5", "0", "18446744073709551616", "x", "1"]),
        ("continue", &["eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6OTk5OTk5OTk5OSwic3RhcnQiOiJ4In0", "%%%", "bm90LWpzb24"]),
        ("resourceVersion", &["abc", "-1", "99999999999999999999", "0", "1"]),
        ("resourceVersionMatch", &["Garbage", "Exact", "NotOlderThan", ""]),
        ("labelSelector", &["a in (", "!!", "a=b,c notin (d)", "%00"]),
        ("fieldSelector", &["metadata.name==", "spec.nodeName=x", "bogus=1"]),
        ("dryRun", &["All", "Nope", ""]),
        ("fieldManager", &["", "x", "\u{1}"]),
        ("propagationPolicy", &["Foreground", "Sideways", ""]),
        ("force", &["true", "false", "maybe"]),
        ("gracePeriodSeconds", &["-9223372036854775808", "9223372036854775807", "x"]),
    ];
    let types = [
        "application/json",
        "application/yaml",
        PB,
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/json-patch+json",
        "application/apply-patch+yaml",
    ];
    // Hand-picked nasty inputs first, then random mutations.
    let mut bodies: Vec<Vec<u8>> = vec![
        "[".repeat(100_000).into_bytes(),
        "{\"a\":".repeat(50_000).into_bytes(),
        "- ".repeat(50_000).into_bytes(),
        b"&a [*a]".to_vec(),
        b"a: &a [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n".to_vec(),
        b"k8s\x00".iter().chain([0x0au8, 0x80, 0x80, 0x80, 0x80, 0x10].iter()).copied().collect(),
        b"\x00\x00\x00\x00".to_vec(),
        b"null".to_vec(),
        b"\"string\"".to_vec(),
        br#"[{"op":"move","from":"/metadata","path":"/metadata/name"}]"#.to_vec(),
        br#"[{"op":"copy","from":"/spec","path":"/spec/template/spec/x"}]"#.to_vec(),
        br#"[{"op":"remove","path":"/metadata"}]"#.to_vec(),
        br#"[{"op":"replace","path":"/metadata/name","value":"renamed"}]"#.to_vec(),
        br#"{"metadata":{"$patch":"delete"}}"#.to_vec(),
        br#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"nope"}],"containers":[{"$patch":"delete","name":"x"}]}}}}"#.to_vec(),
        br#"{"spec":{"template":{"spec":{"containers":[{"name":null}]}}}}"#.to_vec(),
        br#"{"metadata":{"resourceVersion":"-1"}}"#.to_vec(),
        br#"{"metadata":{"resourceVersion":"99999999999999999999999"}}"#.to_vec(),
    ];
    for _ in 0..300 {
        let mut b = valid[rng.random_range(0..valid.len())].clone();
        match rng.random_range(0..4) {
            0 => {
                for _ in 0..rng.random_range(1..8) {
                    let i = rng.random_range(0..b.len());
                    b[i] = rng.random();
                }
            }
            1 => {
                let n = rng.random_range(0..b.len());
                b.truncate(n);
            }
            2 => {
                let i = rng.random_range(0..b.len());
                let junk: Vec<u8> = (0..rng.random_range(1..20)).map(|_| rng.random()).collect();
                b.splice(i..i, junk);
            }
            _ => {
                b = (0..rng.random_range(0..300)).map(|_| rng.random()).collect();
            }
        }
        bodies.push(b);
    }

    let mut failures = Vec::new();
    for (n, body) in bodies.into_iter().enumerate() {
        let (method, path) = &targets[rng.random_range(0..targets.len())];
        let mut path = path.clone();
        for _ in 0..rng.random_range(0..3) {
            let (k, vs) = params[rng.random_range(0..params.len())];
            let v = vs[rng.random_range(0..vs.len())];
            let enc: String = v
                .bytes()
                .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
                .collect();
            path.push(if path.contains('?') { '&' } else { '?' });
            path.push_str(&format!("{k}={enc}"));
        }
        let ct = types[rng.random_range(0..types.len())];
        match api.try_send(method, &path, Some(ct), Some(body.clone())) {
            Ok(r) if r.status < 500 => {}
            Ok(r) => failures.push(format!(
                "#{n} {method} {path} ({ct}) -> {}: {} | body prefix {:?}",
                r.status,
                r.text(),
                String::from_utf8_lossy(&body[..body.len().min(80)])
            )),
            Err(e) => failures.push(format!("#{n} {method} {path} ({ct}) -> transport error {e}")),
        }
        if !server.is_running() {
            failures.push(format!("the server died after request #{n} ({method} {path}, {ct})"));
            break;
        }
    }
    assert!(failures.is_empty(), "seed {seed} (SKIFF_FUZZ_SEED):\n{}", failures.join("\n"));
    api.get("/readyz").expect(200);
    // Still a working server: a normal write and read.
    api.create(CMS, &configmap("after-fuzz", lbl(), json!({"k": "v"})));
    api.get_json(&format!("{CMS}/after-fuzz"));
    let log = server.log_tail(10_000);
    assert!(!log.contains("panicked"), "seed {seed}: the server log shows a panic:\n{log}");
}
