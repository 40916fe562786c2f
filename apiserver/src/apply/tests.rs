//! Scenario tests for server-side apply and managedFields bookkeeping.

use super::fieldset::{path_string, FieldSet, PathElement};
use super::*;
use serde_json::json;

const T1: &str = "2025-01-01T00:00:01Z";
const T2: &str = "2025-01-01T00:00:02Z";
const T3: &str = "2025-01-01T00:00:03Z";

fn deployment(replicas: Option<i64>, image: &str) -> Value {
    let mut d = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx", "labels": {"app": "nginx"}},
        "spec": {
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}]}
            }
        }
    });
    if let (Some(r), Some(spec)) = (replicas, d.get_mut("spec").and_then(Value::as_object_mut)) {
        spec.insert("replicas".into(), json!(r));
    }
    d
}

fn apply(live: Option<&Value>, config: &Value, manager: &str, force: bool, now: &str) -> Result<Value, ApplyError> {
    server_side_apply("Deployment", "apps/v1", live, config, manager, force, now)
}

fn ok(result: Result<Value, ApplyError>) -> Value {
    match result {
        Ok(v) => v,
        Err(e) => panic!("apply failed: {e}"),
    }
}

fn entries(object: &Value) -> Vec<Value> {
    object["metadata"]["managedFields"].as_array().cloned().unwrap_or_default()
}

/// `(manager, operation)` of every managedFields entry, in order.
fn managers(object: &Value) -> Vec<(String, String)> {
    entries(object)
        .iter()
        .map(|e| {
            (
                e["manager"].as_str().unwrap_or_default().to_string(),
                e["operation"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn fields_of(object: &Value, manager: &str, operation: &str) -> Value {
    entries(object)
        .into_iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
        .map(|e| e["fieldsV1"].clone())
        .unwrap_or(Value::Null)
}

fn without_managed_fields(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(meta) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    copy
}

fn kubectl_scale(live: &Value, replicas: i64, now: &str) -> Value {
    let mut new = live.clone();
    new["spec"]["replicas"] = json!(replicas);
    record_update("Deployment", "apps/v1", Some(live), &mut new, "kubectl", now);
    new
}

#[test]
fn create_via_apply_records_the_configuration() {
    let config = deployment(Some(2), "nginx:1.27");
    let object = ok(apply(None, &config, "kubectl", false, T1));
    assert_eq!(without_managed_fields(&object), config);
    let entry = &entries(&object)[0];
    assert_eq!(entry["manager"], "kubectl");
    assert_eq!(entry["operation"], "Apply");
    assert_eq!(entry["apiVersion"], "apps/v1");
    assert_eq!(entry["time"], T1);
    assert_eq!(entry["fieldsType"], "FieldsV1");
    let expected = json!({
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:spec": {
            "f:replicas": {},
            "f:selector": {},
            "f:template": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                    ".": {}, "f:image": {}, "f:name": {},
                    "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}
                }}}
            }
        }
    });
    assert_eq!(entry["fieldsV1"], expected);
    // Key order on the wire: "." first, then fields in name order.
    let wire = entry["fieldsV1"].to_string();
    assert!(wire.contains(r#"{".":{},"f:image":{},"f:name":{},"f:ports""#), "{wire}");
}

#[test]
fn reapplying_the_same_configuration_changes_nothing() {
    let config = deployment(Some(2), "nginx:1.27");
    let first = ok(apply(None, &config, "kubectl", false, T1));
    let second = ok(apply(Some(&first), &config, "kubectl", false, T2));
    assert_eq!(first, second);
}

#[test]
fn apply_without_a_field_removes_it() {
    let first = ok(apply(None, &deployment(Some(2), "nginx:1.27"), "kubectl", false, T1));
    let mut config = deployment(None, "nginx:1.28");
    config["metadata"]["labels"] = json!({"tier": "web"});
    config["spec"]["template"]["spec"]["containers"][0].as_object_mut().map(|c| c.remove("ports"));
    let second = ok(apply(Some(&first), &config, "kubectl", false, T2));
    assert_eq!(second["spec"].get("replicas"), None);
    assert_eq!(second["metadata"]["labels"], json!({"tier": "web"}));
    let container = &second["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container, &json!({"name": "nginx", "image": "nginx:1.28"}));
    assert_eq!(entries(&second)[0]["time"], T2);
}

#[test]
fn scale_then_apply_conflicts_and_force_takes_ownership() {
    let created = ok(apply(None, &deployment(Some(2), "nginx:1.27"), "kubectl", false, T1));
    let scaled = kubectl_scale(&created, 5, T2);
    assert_eq!(managers(&scaled), vec![("kubectl".into(), "Apply".into()), ("kubectl".into(), "Update".into())]);
    assert_eq!(fields_of(&scaled, "kubectl", "Update"), json!({"f:spec": {"f:replicas": {}}}));
    assert!(fields_of(&scaled, "kubectl", "Apply")["f:spec"].get("f:replicas").is_none());

    let err = apply(Some(&scaled), &deployment(Some(3), "nginx:1.27"), "kubectl", false, T3);
    let Err(ApplyError::Conflicts(conflicts)) = err else {
        panic!("expected a conflict, got {err:?}");
    };
    assert_eq!(
        ApplyError::Conflicts(conflicts.clone()).to_string(),
        r#"Apply failed with 1 conflict: conflict with "kubectl" using apps/v1: .spec.replicas"#
    );
    assert_eq!(conflicts[0].field, ".spec.replicas");
    assert_eq!(conflicts[0].cause_message(), r#"conflict with "kubectl" using apps/v1"#);

    // Applying the value live already has shares ownership instead.
    let shared = ok(apply(Some(&scaled), &deployment(Some(5), "nginx:1.27"), "kubectl", false, T3));
    assert_eq!(managers(&shared).len(), 2);

    let forced = ok(apply(Some(&scaled), &deployment(Some(3), "nginx:1.27"), "kubectl", true, T3));
    assert_eq!(forced["spec"]["replicas"], 3);
    assert_eq!(managers(&forced), vec![("kubectl".into(), "Apply".into())]);
    assert_eq!(fields_of(&forced, "kubectl", "Apply")["f:spec"]["f:replicas"], json!({}));
}

#[test]
fn dropping_a_field_another_manager_owns_keeps_it() {
    let created = ok(apply(None, &deployment(Some(2), "nginx:1.27"), "kubectl", false, T1));
    let scaled = kubectl_scale(&created, 5, T2);
    let applied = ok(apply(Some(&scaled), &deployment(None, "nginx:1.27"), "kubectl", false, T3));
    assert_eq!(applied["spec"]["replicas"], 5);
}

#[test]
fn several_conflicts_are_listed_per_manager() {
    let mut created = deployment(Some(1), "nginx:1.27");
    record_update("Deployment", "apps/v1", None, &mut created, "kubectl-client-side-apply", T1);
    let err = apply(Some(&created), &deployment(Some(2), "nginx:1.28"), "kubectl", false, T2);
    let Err(e @ ApplyError::Conflicts(_)) = err else {
        panic!("expected conflicts, got {err:?}");
    };
    assert_eq!(
        e.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using apps/v1:\n\
         - .spec.replicas\n- .spec.template.spec.containers[name=\"nginx\"].image"
    );
}

#[test]
fn two_appliers_own_different_containers() {
    let pod = |containers: Value| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": containers}});
    let apply_pod = |live: Option<&Value>, config: &Value, manager: &str| {
        server_side_apply("Pod", "v1", live, config, manager, false, T1)
    };
    let a = ok(apply_pod(None, &pod(json!([{"name": "a", "image": "a:1"}])), "alice"));
    let ab = ok(apply_pod(Some(&a), &pod(json!([{"name": "b", "image": "b:1"}])), "bob"));
    let names: Vec<&Value> = ab["spec"]["containers"].as_array().into_iter().flatten().map(|c| &c["name"]).collect();
    assert_eq!(names, vec!["a", "b"]);
    assert!(fields_of(&ab, "alice", "Apply")["f:spec"]["f:containers"].get("k:{\"name\":\"a\"}").is_some());
    assert!(fields_of(&ab, "bob", "Apply")["f:spec"]["f:containers"].get("k:{\"name\":\"b\"}").is_some());

    // Bob changing Alice's image conflicts with the applier, printed without "using".
    let err = apply_pod(Some(&ab), &pod(json!([{"name": "a", "image": "a:2"}, {"name": "b", "image": "b:1"}])), "bob");
    assert_eq!(
        err.map_err(|e| e.to_string()).err().as_deref(),
        Some(r#"Apply failed with 1 conflict: conflict with "alice": .spec.containers[name="a"].image"#)
    );

    // Alice stops applying her container: it goes, Bob's stays.
    let b = ok(apply_pod(Some(&ab), &pod(json!([])), "alice"));
    assert_eq!(b["spec"]["containers"], json!([{"name": "b", "image": "b:1"}]));
}

#[test]
fn record_update_tracks_creates_and_changes() {
    let mut created = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "default", "uid": "u", "resourceVersion": "1",
                     "creationTimestamp": T1, "labels": {"app": "x"}},
        "data": {"a": "1", "b": "2"}
    });
    record_update("ConfigMap", "v1", None, &mut created, "kubectl-create", T1);
    assert_eq!(
        fields_of(&created, "kubectl-create", "Update"),
        json!({"f:data": {".": {}, "f:a": {}, "f:b": {}}, "f:metadata": {"f:labels": {".": {}, "f:app": {}}}})
    );

    // A label patch by another manager: it owns just that label.
    let mut labeled = created.clone();
    labeled["metadata"]["labels"]["tier"] = json!("web");
    record_update("ConfigMap", "v1", Some(&created), &mut labeled, "kubectl-label", T2);
    assert_eq!(fields_of(&labeled, "kubectl-label", "Update"), json!({"f:metadata": {"f:labels": {"f:tier": {}}}}));

    // Changing `a` moves it to the editor; removing `b` drops it from its owner.
    let mut edited = labeled.clone();
    edited["data"] = json!({"a": "changed"});
    record_update("ConfigMap", "v1", Some(&labeled), &mut edited, "kubectl-edit", T3);
    assert_eq!(fields_of(&edited, "kubectl-edit", "Update"), json!({"f:data": {"f:a": {}}}));
    assert_eq!(
        fields_of(&edited, "kubectl-create", "Update"),
        json!({"f:data": {}, "f:metadata": {"f:labels": {".": {}, "f:app": {}}}})
    );

    // The label manager loses its only field and disappears.
    let mut unlabeled = edited.clone();
    unlabeled["metadata"]["labels"] = json!({"app": "x"});
    record_update("ConfigMap", "v1", Some(&edited), &mut unlabeled, "kubectl-edit", T3);
    let names: Vec<String> = managers(&unlabeled).into_iter().map(|(m, _)| m).collect();
    assert_eq!(names, vec!["kubectl-create", "kubectl-edit"]);

    // A no-op write changes nothing and adds no manager.
    let mut same = unlabeled.clone();
    record_update("ConfigMap", "v1", Some(&unlabeled), &mut same, "someone", T3);
    assert_eq!(same, unlabeled);

    // A request clearing managedFields resets them.
    let mut reset = unlabeled.clone();
    reset["metadata"]["managedFields"] = json!([]);
    record_update("ConfigMap", "v1", Some(&unlabeled), &mut reset, "someone", T3);
    assert_eq!(reset["metadata"].get("managedFields"), None);
}

#[test]
fn status_and_server_metadata_are_not_tracked() {
    let mut config = deployment(Some(1), "nginx:1.27");
    config["status"] = json!({"replicas": 7});
    config["metadata"]["uid"] = json!("from-client");
    let created = ok(apply(None, &config, "kubectl", false, T1));
    assert_eq!(created.get("status"), None);
    assert_eq!(created["metadata"].get("uid"), None);

    let mut live = created.clone();
    live["status"] = json!({"replicas": 1});
    live["metadata"]["uid"] = json!("server-uid");
    let mut updated = live.clone();
    updated["status"]["replicas"] = json!(2);
    record_update("Deployment", "apps/v1", Some(&live), &mut updated, "controller", T2);
    assert_eq!(managers(&updated), vec![("kubectl".into(), "Apply".into())]);

    let mut via_status = live.clone();
    via_status["status"]["replicas"] = json!(3);
    record_update_subresource("Deployment", "apps/v1", Some(&live), &mut via_status, "controller", Some("status"), T2);
    let entry = entries(&via_status).into_iter().find(|e| e["manager"] == "controller");
    assert_eq!(entry.as_ref().map(|e| e["subresource"].clone()), Some(json!("status")));
    assert_eq!(entry.map(|e| e["fieldsV1"].clone()), Some(json!({"f:status": {"f:replicas": {}}})));

    let reapplied = ok(apply(Some(&via_status), &config, "kubectl", false, T3));
    assert_eq!(reapplied["status"]["replicas"], 3);
    assert_eq!(reapplied["metadata"]["uid"], "server-uid");
}

#[test]
fn first_apply_to_an_untracked_object_conflicts_with_before_first_apply() {
    let live = deployment(Some(1), "nginx:1.27");
    let err = apply(Some(&live), &deployment(Some(2), "nginx:1.27"), "helm", false, T1);
    assert_eq!(
        err.map_err(|e| e.to_string()).err().as_deref(),
        Some(r#"Apply failed with 1 conflict: conflict with "before-first-apply" using apps/v1: .spec.replicas"#)
    );
    let same = ok(apply(Some(&live), &deployment(Some(1), "nginx:1.27"), "helm", false, T1));
    assert_eq!(managers(&same), vec![("helm".into(), "Apply".into()), ("before-first-apply".into(), "Update".into())]);
}

#[test]
fn malformed_configurations_are_invalid() {
    let cases = [
        (
            json!({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}}}),
            ".spec.template.spec.containers: duplicate entries for key [name=\"a\"]",
        ),
        (
            json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
            ".spec.template.spec.containers[0]: associative list with keys has an element that omits key field \"name\"",
        ),
        (json!({"kind": "Pod"}), "invalid object type: apps/v1, Kind=Pod"),
        (json!([1]), "must be an object"),
        (json!({"metadata": {"managedFields": [{}]}}), "metadata.managedFields must be nil"),
    ];
    for (config, message) in cases {
        match apply(None, &config, "m", false, T1) {
            Err(ApplyError::Invalid(text)) => assert!(text.contains(message), "{text}"),
            other => panic!("expected Invalid for {config}, got {other:?}"),
        }
    }
}

#[test]
fn set_lists_union_and_keyed_ports_default_their_protocol() {
    let mut live = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "finalizers": ["a"]},
        "spec": {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}]}});
    record_update("Service", "v1", None, &mut live, "creator", T1);
    let config = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "finalizers": ["b"]},
        "spec": {"ports": [{"port": 80, "targetPort": 8080}]}});
    let merged = match server_side_apply("Service", "v1", Some(&live), &config, "kubectl", false, T2) {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(merged["metadata"]["finalizers"], json!(["a", "b"]));
    assert_eq!(merged["spec"]["ports"], json!([{"port": 80, "protocol": "TCP", "targetPort": 8080}]));
    let fields = fields_of(&merged, "kubectl", "Apply");
    assert_eq!(fields["f:metadata"]["f:finalizers"], json!({"v:\"b\"": {}}));
    assert!(fields["f:spec"]["f:ports"].get("k:{\"port\":80,\"protocol\":\"TCP\"}").is_some());
}

#[test]
fn keyed_lists_keep_live_only_items_in_place() {
    let pod = |names: &[&str]| {
        let containers: Vec<Value> = names.iter().map(|n| json!({"name": n, "image": n})).collect();
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": containers}})
    };
    let mut live = pod(&["a", "b", "c"]);
    record_update("Pod", "v1", None, &mut live, "creator", T1);
    let merged = ok(server_side_apply("Pod", "v1", Some(&live), &pod(&["c", "a", "d"]), "m", false, T2));
    let order: Vec<&str> =
        merged["spec"]["containers"].as_array().into_iter().flatten().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(order, vec!["c", "a", "b", "d"]);
}

#[test]
fn managed_fields_sort_apply_first_then_by_time() {
    let created = ok(apply(None, &deployment(Some(2), "nginx:1.27"), "z-applier", false, T3));
    let scaled = kubectl_scale(&created, 4, T1);
    let mut relabeled = scaled.clone();
    relabeled["metadata"]["labels"]["x"] = json!("y");
    record_update("Deployment", "apps/v1", Some(&scaled), &mut relabeled, "a-labeler", T2);
    assert_eq!(
        managers(&relabeled),
        vec![
            ("z-applier".into(), "Apply".into()),
            ("kubectl".into(), "Update".into()),
            ("a-labeler".into(), "Update".into()),
        ]
    );
}

#[test]
fn path_elements_serialize_parse_and_print() {
    let cases = [
        (PathElement::Field("spec".into()), "f:spec", ".spec"),
        (
            PathElement::Key(vec![("containerPort".into(), json!(80)), ("protocol".into(), json!("TCP"))]),
            r#"k:{"containerPort":80,"protocol":"TCP"}"#,
            r#"[containerPort=80,protocol="TCP"]"#,
        ),
        (PathElement::Value(json!("foo")), r#"v:"foo""#, r#"[="foo"]"#),
        (PathElement::Index(3), "i:3", "[3]"),
    ];
    for (pe, wire, human) in cases {
        assert_eq!(pe.serialize(), wire);
        assert_eq!(PathElement::parse(wire).as_ref(), Some(&pe));
        assert_eq!(pe.to_string(), human);
    }
    assert_eq!(PathElement::parse("x:unknown"), None);
    assert_eq!(PathElement::parse("k:not-json"), None);
}

#[test]
fn field_sets_round_trip_through_fields_v1() {
    let wire = json!({
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}}}, "f:replicas": {}}
    });
    let set = FieldSet::from_fields_v1(&wire);
    assert_eq!(set.to_fields_v1(), wire);
    let labels = [PathElement::Field("metadata".into()), PathElement::Field("labels".into())];
    assert!(set.has(&labels));
    let paths: Vec<String> = set.paths().iter().map(|p| path_string(p)).collect();
    assert_eq!(
        paths,
        vec![
            ".metadata.labels",
            ".metadata.labels.app",
            ".spec.replicas",
            ".spec.containers[name=\"nginx\"]",
            ".spec.containers[name=\"nginx\"].image"
        ]
    );
    let replicas = FieldSet::from_fields_v1(&json!({"f:spec": {"f:replicas": {}}}));
    assert_eq!(set.intersection(&replicas), replicas);
    assert!(set.difference(&set).is_empty());
    assert_eq!(set.difference(&replicas).union(&replicas), set);
    // Garbage is tolerated.
    assert!(FieldSet::from_fields_v1(&json!("nope")).is_empty());
    assert!(FieldSet::from_fields_v1(&json!({"zz": {}, "f:a": 3})).has(&[PathElement::Field("a".into())]));
}

#[test]
fn update_marks_added_objects_and_lists_like_upstream() {
    let mut created = deployment(Some(1), "nginx:1.27");
    created["spec"]["strategy"] = json!({"rollingUpdate": {"maxSurge": 1}});
    record_update("Deployment", "apps/v1", None, &mut created, "kubectl-create", T1);
    let fields = fields_of(&created, "kubectl-create", "Update");
    let spec = &fields["f:spec"];
    // Objects a typed upstream object always has carry no "."; others added do.
    assert_eq!(spec.get("."), None);
    assert_eq!(spec["f:strategy"].get("."), None);
    assert_eq!(spec["f:strategy"]["f:rollingUpdate"]["."], json!({}));
    assert_eq!(fields["f:metadata"]["f:labels"]["."], json!({}));
    let containers = &spec["f:template"]["f:spec"]["f:containers"];
    assert_eq!(containers.get("."), None);
    assert_eq!(containers["k:{\"name\":\"nginx\"}"]["f:ports"]["."], json!({}));
    assert_eq!(spec["f:selector"], json!({}));
}

#[test]
fn atomic_selectors_are_replaced_whole() {
    let mut first = deployment(Some(1), "nginx:1.27");
    first["spec"]["selector"] = json!({"matchLabels": {"app": "nginx", "extra": "x"}});
    let created = ok(apply(None, &first, "kubectl", false, T1));
    let second = ok(apply(Some(&created), &deployment(Some(1), "nginx:1.27"), "kubectl", false, T2));
    assert_eq!(second["spec"]["selector"], json!({"matchLabels": {"app": "nginx"}}));
}

#[test]
fn odd_shapes_do_not_panic() {
    let shapes = [
        json!({}),
        json!({"metadata": "x", "spec": 3}),
        json!({"metadata": {"labels": [1, 2], "finalizers": {"a": 1}}, "spec": {"template": {"spec": {"containers": {"a": 1}}}}}),
        json!({"spec": {"template": {"spec": {"containers": [1, "x", null, {"name": 3}, {"name": 3}]}}}}),
        json!({"spec": {"ports": [{"port": 1}, {"port": 1, "protocol": "UDP"}], "selector": "s"}}),
        json!({"metadata": {"managedFields": [{"manager": 1}, {"operation": "Apply", "fieldsType": "FieldsV1", "apiVersion": "v", "fieldsV1": {"f:spec": 7, "k:{": {}}}]}}),
    ];
    for kind in ["Deployment", "Service", "Pod"] {
        for live in &shapes {
            for config in &shapes {
                let _ = server_side_apply(kind, "v1", Some(live), config, "m", false, T1);
                let _ = server_side_apply(kind, "v1", Some(live), config, "m", true, T1);
                let mut new = config.clone();
                record_update(kind, "v1", Some(live), &mut new, "u", T1);
                let mut again = live.clone();
                record_update(kind, "v1", Some(&new), &mut again, "u", T2);
            }
        }
    }
}
