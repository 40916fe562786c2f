use super::super::*;
use serde_json::json;

#[test]
fn drops_unknown_fields_and_reports_paths() {
    let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "bogus": 1},
        "spec": {"replicass": 3, "selector": {"matchLabels": {"a": "b"}},
            "template": {"spec": {"containers": [{"name": "c", "image": "i", "imagePolicy": "x"}]}}}});
    let n = normalize("Deployment", obj).expect("decodes");
    assert_eq!(
        n.unknown_fields,
        vec!["metadata.bogus", "spec.replicass", "spec.template.spec.containers[0].imagePolicy"]
    );
    assert!(n.object["spec"].get("replicass").is_none());
    assert!(n.object["metadata"].get("bogus").is_none());
    assert_eq!(n.object["spec"]["selector"]["matchLabels"]["a"], "b");
}

#[test]
fn numeric_quantities_are_accepted() {
    let obj = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"overhead": {"cpu": 0.25}, "containers": [{"name": "c", "image": "i",
            "resources": {"requests": {"cpu": 1, "memory": 128974848}, "limits": {"cpu": 1.5}}}],
            "volumes": [{"name": "v", "emptyDir": {"sizeLimit": 1000000}}]}});
    let n = normalize("Pod", obj).expect("decodes");
    let c = &n.object["spec"]["containers"][0]["resources"];
    assert_eq!(c["requests"]["cpu"], "1");
    assert_eq!(c["requests"]["memory"], "128974848");
    assert_eq!(c["limits"]["cpu"], "1.5");
    assert_eq!(n.object["spec"]["overhead"]["cpu"], "0.25");
    assert_eq!(n.object["spec"]["volumes"][0]["emptyDir"]["sizeLimit"], "1000000");
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
        "status": {"capacity": {"cpu": 4, "pods": 110}, "allocatable": {"memory": 1024}}});
    let n = normalize("Node", node).expect("decodes");
    assert_eq!(n.object["status"]["capacity"]["pods"], "110");
    assert_eq!(n.object["status"]["allocatable"]["memory"], "1024");
}

#[test]
fn int_or_string_ports_and_string_data() {
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80, "targetPort": "http"}, {"name": "b", "port": 81, "targetPort": 8081}]}});
    let n = normalize("Service", svc).expect("decodes");
    assert_eq!(n.object["spec"]["ports"][0]["targetPort"], "http");
    assert_eq!(n.object["spec"]["ports"][1]["targetPort"], 8081);
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"a": "b"}});
    let n = normalize("Secret", secret).expect("decodes");
    assert_eq!(n.object["stringData"]["a"], "b");
}

#[test]
fn timestamps_are_normalized() {
    let obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "creationTimestamp": "2024-01-01T10:00:00.123+02:00"}});
    let n = normalize("ConfigMap", obj).expect("decodes");
    assert_eq!(n.object["metadata"]["creationTimestamp"], "2024-01-01T08:00:00Z");
}

#[test]
fn type_errors_name_the_field() {
    let cases = [
        ("Deployment", json!({"spec": {"replicas": "three"}}), "spec.replicas"),
        (
            "Pod",
            json!({"spec": {"containers": [{"name": "a"}, {"name": "b", "ports": [{"containerPort": "80"}]}]}}),
            "spec.containers[1].ports[0].containerPort",
        ),
        ("Secret", json!({"data": {"ok": "dg==", "bad": "!!!"}}), "data.bad"),
        ("ConfigMap", json!({"metadata": {"labels": {"a": 1}}}), "metadata.labels.a"),
        ("Pod", json!({"apiVersion": "v2"}), "apiVersion"),
        ("Service", json!({"spec": []}), "spec"),
        ("Pod", json!([]), ""),
    ];
    for (kind, obj, field) in cases {
        let errs = normalize(kind, obj.clone()).expect_err(&format!("{kind} {obj} must fail"));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, field, "{kind} {obj}: {:?}", errs[0]);
        assert_eq!(errs[0].reason, "FieldValueTypeInvalid");
    }
}

#[test]
fn unknown_kinds_pass_through() {
    let obj = json!({"anything": 1});
    let n = normalize("Widget", obj.clone()).expect("passes");
    assert_eq!(n.object, obj);
}

#[test]
fn every_kind_round_trips_its_base_object() {
    for r in api::RESOURCES {
        let b = super::base(r.kind);
        let n = normalize(r.kind, b).unwrap_or_else(|e| panic!("{}: {e:?}", r.kind));
        assert!(n.unknown_fields.is_empty(), "{}: {:?}", r.kind, n.unknown_fields);
    }
}
