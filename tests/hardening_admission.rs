//! Admission hardening regressions:
//!
//! A. Writes that only drop fields the server defaults are no-ops, as upstream (which defaults
//!    before comparing): 200 with the stored object, the same resourceVersion and generation, for
//!    PUT, JSON merge patch, JSON patch, strategic merge patch and kubectl (`patched (no change)`,
//!    `unchanged`).
//! B. This cluster is single-stack IPv4: Services asking for IPv6 or RequireDualStack are rejected
//!    with upstream's causes (422 Invalid, nothing stored or changed); PreferDualStack keeps one
//!    family; absent fields default to SingleStack / [IPv4].

mod common;

use common::{rv_of, service, Api, Server};
use serde_json::{json, Value};

const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";
const REPLICASETS: &str = "/apis/apps/v1/namespaces/default/replicasets";
const DAEMONSETS: &str = "/apis/apps/v1/namespaces/default/daemonsets";
const JOBS: &str = "/apis/batch/v1/namespaces/default/jobs";
const PODS: &str = "/api/v1/namespaces/default/pods";
const SERVICES: &str = "/api/v1/namespaces/default/services";

const MERGE: &str = "application/merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";
const STRATEGIC: &str = "application/strategic-merge-patch+json";

/// A pod spec using every defaulted field of the bug report: a projected service account token
/// without `expirationSeconds`, downward-API `fieldRef`s (env, downwardAPI volume, projected
/// downwardAPI) without `apiVersion`.
fn pod_spec(name: &str) -> Value {
    json!({
        "containers": [{
            "name": name,
            "image": "busybox:1.36",
            "command": ["sleep", "3600"],
            "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "ports": [{"containerPort": 8080}],
            "readinessProbe": {"httpGet": {"port": 8080}},
            "volumeMounts": [
                {"name": "token", "mountPath": "/var/run/token"},
                {"name": "info", "mountPath": "/etc/info"}
            ]
        }],
        "volumes": [
            {"name": "token", "projected": {"sources": [
                {"serviceAccountToken": {"path": "token", "audience": "api"}},
                {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}
            ]}},
            {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}
        ]
    })
}

fn template(name: &str) -> Value {
    json!({"metadata": {"labels": {"app": name}}, "spec": pod_spec(name)})
}

fn deployment(name: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            // `rollingUpdate` without `type`.
            "strategy": {"rollingUpdate": {"maxSurge": 1}},
            "template": template(name)
        }
    })
}

/// The stored object after a write that must have changed nothing.
#[track_caller]
fn assert_unchanged(api: &Api, path: &str, before: &Value, returned: &Value, what: &str) {
    let after = api.get_json(path);
    assert_eq!(rv_of(&after), rv_of(before), "{what}: resourceVersion changed\nbefore {before}\nafter {after}");
    assert_eq!(
        after["metadata"]["generation"], before["metadata"]["generation"],
        "{what}: generation changed\nbefore {before}\nafter {after}"
    );
    assert_eq!(&after, before, "{what}: the stored object changed");
    assert_eq!(returned, before, "{what}: the response must be the unchanged object");
}

/// Removes the JSON pointer `ptr` from `v`.
fn remove(v: &mut Value, ptr: &str) {
    let (parent, key) = ptr.rsplit_once('/').expect("pointer");
    let p = v.pointer_mut(parent).unwrap_or_else(|| panic!("no {parent}"));
    match p {
        Value::Object(m) => {
            m.shift_remove(key).unwrap_or_else(|| panic!("no {ptr}"));
        }
        other => panic!("{parent} is not an object: {other}"),
    }
}

#[test]
fn dropping_defaulted_fields_of_a_deployment_changes_nothing() {
    let server = Server::start();
    let api = server.api();
    let created = api.create(DEPLOYMENTS, &deployment("web"));
    let path = format!("{DEPLOYMENTS}/web");
    let t = "/spec/template/spec";
    // Every default of the report exists.
    for (ptr, want) in [
        ("/spec/progressDeadlineSeconds".to_string(), json!(600)),
        ("/spec/revisionHistoryLimit".to_string(), json!(10)),
        ("/spec/strategy/type".to_string(), json!("RollingUpdate")),
        ("/spec/strategy/rollingUpdate/maxUnavailable".to_string(), json!("25%")),
        ("/spec/strategy/rollingUpdate/maxSurge".to_string(), json!(1)),
        (format!("{t}/volumes/0/projected/sources/0/serviceAccountToken/expirationSeconds"), json!(3600)),
        (format!("{t}/volumes/0/projected/sources/1/downwardAPI/items/0/fieldRef/apiVersion"), json!("v1")),
        (format!("{t}/volumes/1/downwardAPI/items/0/fieldRef/apiVersion"), json!("v1")),
        (format!("{t}/containers/0/env/0/valueFrom/fieldRef/apiVersion"), json!("v1")),
    ] {
        assert_eq!(created.pointer(&ptr), Some(&want), "{ptr}: {created}");
    }
    assert_eq!(created["metadata"]["generation"], 1);
    let before = api.get_json(&path);

    // PUT of the stored object without every defaulted field.
    let mut stripped = before.clone();
    for ptr in [
        "/spec/progressDeadlineSeconds".to_string(),
        "/spec/revisionHistoryLimit".to_string(),
        "/spec/strategy/type".to_string(),
        "/spec/strategy/rollingUpdate/maxUnavailable".to_string(),
        format!("{t}/volumes/0/projected/sources/0/serviceAccountToken/expirationSeconds"),
        format!("{t}/volumes/0/projected/sources/1/downwardAPI/items/0/fieldRef/apiVersion"),
        format!("{t}/volumes/1/downwardAPI/items/0/fieldRef/apiVersion"),
        format!("{t}/containers/0/env/0/valueFrom/fieldRef/apiVersion"),
        format!("{t}/containers/0/terminationMessagePath"),
        format!("{t}/containers/0/ports/0/protocol"),
        format!("{t}/containers/0/readinessProbe/periodSeconds"),
        format!("{t}/dnsPolicy"),
    ] {
        remove(&mut stripped, &ptr);
    }
    let r = api.put_json(&path, &stripped).expect(200).json();
    assert_unchanged(&api, &path, &before, &r, "PUT without defaulted fields");
    // Without resourceVersion (unconditional update) too.
    remove(&mut stripped, "/metadata/resourceVersion");
    let r = api.put_json(&path, &stripped).expect(200).json();
    assert_unchanged(&api, &path, &before, &r, "unconditional PUT without defaulted fields");

    // JSON merge patch: `null` removes.
    for p in [
        json!({"spec": {"progressDeadlineSeconds": null}}),
        json!({"spec": {"revisionHistoryLimit": null, "strategy": {"type": null}}}),
        json!({"spec": {"strategy": {"type": null, "rollingUpdate": {"maxUnavailable": null}}}}),
    ] {
        let r = api.patch(&path, MERGE, &p).expect(200).json();
        assert_unchanged(&api, &path, &before, &r, &format!("merge patch {p}"));
    }

    // JSON patch.
    for p in [
        json!([{"op": "remove", "path": "/spec/progressDeadlineSeconds"}]),
        json!([{"op": "remove", "path": "/spec/strategy/type"}]),
        json!([{"op": "remove", "path": format!("{t}/volumes/0/projected/sources/0/serviceAccountToken/expirationSeconds")}]),
        json!([{"op": "remove", "path": format!("{t}/containers/0/env/0/valueFrom/fieldRef/apiVersion")}]),
        json!([{"op": "remove", "path": format!("{t}/volumes/1/downwardAPI/items/0/fieldRef/apiVersion")}]),
    ] {
        let r = api.patch(&path, JSON_PATCH, &p).expect(200).json();
        assert_unchanged(&api, &path, &before, &r, &format!("JSON patch {p}"));
    }

    // Strategic merge patch (env merged by name).
    for p in [
        json!({"spec": {"progressDeadlineSeconds": null, "strategy": {"type": null}}}),
        json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": null, "fieldPath": "metadata.name"}}}
        ]}]}}}}),
    ] {
        let r = api.patch(&path, STRATEGIC, &p).expect(200).json();
        assert_unchanged(&api, &path, &before, &r, &format!("strategic merge patch {p}"));
    }

    // A real spec change still bumps generation once.
    let r = api.patch(&path, MERGE, &json!({"spec": {"progressDeadlineSeconds": 300}})).expect(200).json();
    assert_eq!(r["metadata"]["generation"], 2, "{r}");
    assert!(rv_of(&r) > rv_of(&before));
    // A metadata-only change does not.
    let r = api.patch(&path, MERGE, &json!({"metadata": {"labels": {"x": "y"}}})).expect(200).json();
    assert_eq!(r["metadata"]["generation"], 2, "{r}");
}

#[test]
fn dropping_defaulted_fields_of_other_kinds_changes_nothing() {
    let server = Server::start();
    let api = server.api();
    let rs = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs"},
        "spec": {"selector": {"matchLabels": {"app": "rs"}}, "template": template("rs")}
    });
    let ds = json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "ds"},
        "spec": {"selector": {"matchLabels": {"app": "ds"}}, "template": template("ds")}
    });
    let mut job_template = template("job");
    job_template["spec"]["restartPolicy"] = json!("Never");
    let job = json!({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "job"},
        "spec": {"template": job_template}
    });
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pod"}, "spec": pod_spec("pod")});
    let svc = service("svc", json!({"sessionAffinity": "ClientIP"}));
    let t = "/spec/template/spec";
    let cases: Vec<(&str, &str, Value, Vec<Value>)> = vec![
        (
            REPLICASETS,
            "rs",
            rs,
            vec![
                json!({"spec": {"replicas": null}}),
                json!([{"op": "remove", "path": format!("{t}/volumes/0/projected/sources/0/serviceAccountToken/expirationSeconds")}]),
            ],
        ),
        (
            DAEMONSETS,
            "ds",
            ds,
            vec![
                json!({"spec": {"updateStrategy": null, "revisionHistoryLimit": null}}),
                json!({"spec": {"updateStrategy": {"rollingUpdate": {"maxSurge": null}}}}),
                json!([{"op": "remove", "path": format!("{t}/containers/0/env/0/valueFrom/fieldRef/apiVersion")}]),
            ],
        ),
        (
            JOBS,
            "job",
            job,
            vec![
                json!({"spec": {"backoffLimit": null, "completionMode": null, "suspend": null,
                    "podReplacementPolicy": null, "completions": null, "parallelism": null}}),
                json!([{"op": "remove", "path": format!("{t}/volumes/1/downwardAPI/items/0/fieldRef/apiVersion")}]),
            ],
        ),
        (
            PODS,
            "pod",
            pod,
            vec![
                json!({"spec": {"enableServiceLinks": null, "schedulerName": null, "terminationGracePeriodSeconds": null}}),
                json!([{"op": "remove", "path": "/spec/volumes/0/projected/sources/0/serviceAccountToken/expirationSeconds"}]),
                json!([{"op": "remove", "path": "/spec/containers/0/env/0/valueFrom/fieldRef/apiVersion"}]),
                json!([{"op": "remove", "path": "/spec/volumes/0/projected/defaultMode"}]),
            ],
        ),
        (
            SERVICES,
            "svc",
            svc,
            vec![
                json!({"spec": {"ipFamilyPolicy": null, "ipFamilies": null, "internalTrafficPolicy": null,
                    "sessionAffinityConfig": null, "type": null}}),
                json!({"spec": {"clusterIP": null, "clusterIPs": null}}),
                json!([{"op": "remove", "path": "/spec/ports/0/targetPort"}, {"op": "remove", "path": "/spec/ports/0/protocol"}]),
            ],
        ),
    ];
    for (collection, name, obj, patches) in cases {
        api.create(collection, &obj);
        let path = format!("{collection}/{name}");
        let before = api.get_json(&path);
        for p in patches {
            let ty = if p.is_array() { JSON_PATCH } else { MERGE };
            let r = api.patch(&path, ty, &p).expect(200).json();
            assert_unchanged(&api, &path, &before, &r, &format!("{name}: {ty} {p}"));
            if ty == MERGE {
                let r = api.patch(&path, STRATEGIC, &p).expect(200).json();
                assert_unchanged(&api, &path, &before, &r, &format!("{name}: {STRATEGIC} {p}"));
            }
        }
    }
}

#[test]
fn kubectl_reports_no_change_for_dropped_defaults() {
    let server = Server::start();
    let api = server.api();
    let k = server.kubectl();
    let path = format!("{DEPLOYMENTS}/web");

    // Client-side apply of a manifest without the defaulted fields, twice. kubectl's three-way
    // patch for it is not empty (the projected `sources` and downward-API `items` lists are
    // atomic, `strategy` and volumes carry `$retainKeys`), so kubectl sends it and prints
    // "configured", as against upstream; the server, comparing after defaulting, writes nothing.
    let manifest = server.dir().join("web.json");
    std::fs::write(&manifest, serde_json::to_vec_pretty(&deployment("web")).unwrap()).unwrap();
    let file = manifest.to_str().unwrap();
    let out = k.ok(&["apply", "-f", file]);
    assert!(out.contains("deployment.apps/web created"), "{out}");
    let before = api.get_json(&path);
    for _ in 0..2 {
        let out = k.ok(&["apply", "-f", file]);
        assert!(out.contains("deployment.apps/web configured"), "{out}");
        let after = api.get_json(&path);
        assert_unchanged(&api, &path, &before, &after, "kubectl apply of the same manifest");
    }
    // A manifest whose defaulted fields kubectl's patch leaves alone: "unchanged".
    let mut simple = common::deployment("simple", 1);
    simple["spec"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]);
    let simple_file = server.dir().join("simple.json");
    std::fs::write(&simple_file, serde_json::to_vec_pretty(&simple).unwrap()).unwrap();
    let out = k.ok(&["apply", "-f", simple_file.to_str().unwrap()]);
    assert!(out.contains("deployment.apps/simple created"), "{out}");
    let simple_path = format!("{DEPLOYMENTS}/simple");
    let simple_before = api.get_json(&simple_path);
    let out = k.ok(&["apply", "-f", simple_file.to_str().unwrap()]);
    assert!(out.contains("deployment.apps/simple unchanged"), "{out}");
    assert_unchanged(&api, &simple_path, &simple_before, &api.get_json(&simple_path), "kubectl apply (unchanged)");

    for (ty, p) in [
        ("merge", r#"{"spec":{"progressDeadlineSeconds":null,"revisionHistoryLimit":null}}"#),
        ("json", r#"[{"op":"remove","path":"/spec/strategy/type"}]"#),
        (
            "json",
            r#"[{"op":"remove","path":"/spec/template/spec/volumes/0/projected/sources/0/serviceAccountToken/expirationSeconds"}]"#,
        ),
        ("strategic", r#"{"spec":{"strategy":{"type":null}}}"#),
    ] {
        let out = k.ok(&["patch", "deployment", "web", "--type", ty, "-p", p]);
        assert!(out.contains("deployment.apps/web patched (no change)"), "kubectl patch --type {ty} {p}: {out}");
        let after = api.get_json(&path);
        assert_unchanged(&api, &path, &before, &after, &format!("kubectl patch --type {ty} {p}"));
    }

    // A manifest that used to spell the defaults out, applied without them: kubectl writes the new
    // last-applied annotation (configured), but the spec, and so generation, stays the same.
    let mut explicit = deployment("explicit");
    explicit["spec"]["progressDeadlineSeconds"] = json!(600);
    explicit["spec"]["strategy"]["type"] = json!("RollingUpdate");
    explicit["spec"]["template"]["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]
        ["expirationSeconds"] = json!(3600);
    let m = server.dir().join("explicit.json");
    std::fs::write(&m, serde_json::to_vec_pretty(&explicit).unwrap()).unwrap();
    k.ok(&["apply", "-f", m.to_str().unwrap()]);
    let path = format!("{DEPLOYMENTS}/explicit");
    let before = api.get_json(&path);
    std::fs::write(&m, serde_json::to_vec_pretty(&deployment("explicit")).unwrap()).unwrap();
    let out = k.ok(&["apply", "-f", m.to_str().unwrap()]);
    assert!(out.contains("deployment.apps/explicit configured"), "{out}");
    let after = api.get_json(&path);
    assert_eq!(after["spec"], before["spec"], "the defaulted spec is the same");
    assert_eq!(after["metadata"]["generation"], before["metadata"]["generation"], "{after}");
    // Now the annotation matches: applying again changes nothing.
    k.ok(&["apply", "-f", m.to_str().unwrap()]);
    assert_unchanged(&api, &path, &after, &api.get_json(&path), "second apply");

    // Server-side apply without the defaulted fields keeps generation.
    let ssa = server.dir().join("ssa.json");
    std::fs::write(&ssa, serde_json::to_vec_pretty(&explicit).unwrap()).unwrap();
    k.ok(&["apply", "--server-side", "--force-conflicts", "-f", ssa.to_str().unwrap()]);
    let before = api.get_json(&path);
    std::fs::write(&ssa, serde_json::to_vec_pretty(&deployment("explicit")).unwrap()).unwrap();
    k.ok(&["apply", "--server-side", "--force-conflicts", "-f", ssa.to_str().unwrap()]);
    let after = api.get_json(&path);
    assert_eq!(after["spec"], before["spec"], "server-side apply: the defaulted spec is the same");
    assert_eq!(after["metadata"]["generation"], before["metadata"]["generation"], "{after}");
}

/// The causes of an Invalid Status as `field: message`.
fn causes(status: &Value) -> Vec<String> {
    status["details"]["causes"]
        .as_array()
        .unwrap_or_else(|| panic!("no causes: {status}"))
        .iter()
        .map(|c| format!("{}: {}", c["field"].as_str().unwrap_or(""), c["message"].as_str().unwrap_or("")))
        .collect()
}

const IPV6_FAMILY: &str = r#"spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster"#;
const REQUIRE_DUAL: &str =
    r#"spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services"#;

#[test]
fn single_stack_cluster_rejects_dual_stack_service_creates() {
    let server = Server::start();
    let api = server.api();
    let before = api.snapshot(SERVICES);
    let ipv6_second = r#"spec.ipFamilies[1]: Invalid value: "IPv6": not configured on this cluster"#;
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        ("v6", json!({"ipFamilies": ["IPv6"]}), vec![IPV6_FAMILY]),
        ("v6v4", json!({"ipFamilyPolicy": "PreferDualStack", "ipFamilies": ["IPv6", "IPv4"]}), vec![IPV6_FAMILY]),
        (
            "v6-require",
            json!({"ipFamilyPolicy": "RequireDualStack", "ipFamilies": ["IPv6", "IPv4"]}),
            vec![REQUIRE_DUAL, IPV6_FAMILY],
        ),
        ("require", json!({"ipFamilyPolicy": "RequireDualStack"}), vec![REQUIRE_DUAL]),
        (
            "require-v4v6",
            json!({"ipFamilyPolicy": "RequireDualStack", "ipFamilies": ["IPv4", "IPv6"]}),
            vec![REQUIRE_DUAL, ipv6_second],
        ),
        (
            "prefer-v4v6",
            json!({"ipFamilyPolicy": "PreferDualStack", "ipFamilies": ["IPv4", "IPv6"]}),
            vec![ipv6_second],
        ),
        ("nodeport-v6", json!({"type": "NodePort", "ipFamilies": ["IPv6"]}), vec![IPV6_FAMILY]),
        (
            "explicit-v6-ip",
            json!({"clusterIP": "fd00::10"}),
            vec![r#"spec.clusterIPs[0]: Invalid value: []string{"fd00::10"}: IPv6 is not configured on this cluster"#],
        ),
        // Headless with a selector: the usual rules.
        ("headless-v6", json!({"clusterIP": "None", "ipFamilies": ["IPv6"]}), vec![IPV6_FAMILY]),
        ("headless-require", json!({"clusterIP": "None", "ipFamilyPolicy": "RequireDualStack"}), vec![REQUIRE_DUAL]),
    ];
    for (name, spec, want) in cases {
        let st = api.post_json(SERVICES, &service(name, spec.clone())).expect_status(422, "Invalid");
        assert_eq!(causes(&st), want, "{name} {spec}: {st}");
        let message = st["message"].as_str().unwrap_or("");
        let body = if want.len() == 1 { want[0].to_string() } else { format!("[{}]", want.join(", ")) };
        assert_eq!(message, format!("Service \"{name}\" is invalid: {body}"), "{name}");
        assert_eq!(st["details"]["name"], name);
        assert_eq!(st["details"]["kind"], "Service");
        api.get(&format!("{SERVICES}/{name}")).expect(404);
        // Dry run answers the same.
        let st = api
            .post_json(&format!("{SERVICES}?dryRun=All"), &service(name, spec.clone()))
            .expect_status(422, "Invalid");
        assert_eq!(causes(&st), want, "dry run {name}");
    }
    assert_eq!(api.snapshot(SERVICES), before, "nothing was stored");

    // kubectl shows upstream's message.
    let manifest = server.dir().join("v6.json");
    std::fs::write(&manifest, serde_json::to_vec(&service("kv6", json!({"ipFamilies": ["IPv6"]}))).unwrap()).unwrap();
    let out = server.kubectl().fails(&["create", "-f", manifest.to_str().unwrap()]);
    assert!(out.stderr.contains(&format!("The Service \"kv6\" is invalid: {IPV6_FAMILY}")), "{}", out.stderr);
    assert_eq!(api.snapshot(SERVICES), before, "nothing was stored");
}

#[test]
fn single_stack_service_defaults_and_allowed_policies() {
    let server = Server::start();
    let api = server.api();
    let plain = api.create(SERVICES, &service("plain", json!({})));
    assert_eq!(plain["spec"]["ipFamilyPolicy"], "SingleStack", "{plain}");
    assert_eq!(plain["spec"]["ipFamilies"], json!(["IPv4"]), "{plain}");
    let ip = plain["spec"]["clusterIP"].as_str().unwrap_or_default().to_string();
    assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "{plain}");
    assert_eq!(plain["spec"]["clusterIPs"], json!([ip]));

    // PreferDualStack is allowed and keeps the one family this cluster has.
    let prefer = api.create(SERVICES, &service("prefer", json!({"ipFamilyPolicy": "PreferDualStack"})));
    assert_eq!(prefer["spec"]["ipFamilyPolicy"], "PreferDualStack", "{prefer}");
    assert_eq!(prefer["spec"]["ipFamilies"], json!(["IPv4"]), "{prefer}");
    assert_eq!(prefer["spec"]["clusterIPs"].as_array().map(Vec::len), Some(1), "{prefer}");
    let explicit =
        api.create(SERVICES, &service("v4", json!({"ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"})));
    assert_eq!(explicit["spec"]["ipFamilies"], json!(["IPv4"]));

    // Headless with a selector: SingleStack, IPv4.
    let headless = api.create(SERVICES, &service("headless", json!({"clusterIP": "None"})));
    assert_eq!(headless["spec"]["ipFamilyPolicy"], "SingleStack", "{headless}");
    assert_eq!(headless["spec"]["ipFamilies"], json!(["IPv4"]), "{headless}");
    assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]), "{headless}");
    // Headless without a selector: upstream's one exception, both families even here.
    let mut bare = service("bare", json!({"clusterIP": "None"}));
    bare["spec"].as_object_mut().unwrap().remove("selector");
    let bare = api.create(SERVICES, &bare);
    assert_eq!(bare["spec"]["ipFamilyPolicy"], "RequireDualStack", "{bare}");
    assert_eq!(bare["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]), "{bare}");

    // Re-sending any of them (GET, PUT back) changes nothing.
    for name in ["plain", "prefer", "headless", "bare"] {
        let path = format!("{SERVICES}/{name}");
        let before = api.get_json(&path);
        let r = api.put_json(&path, &before).expect(200).json();
        assert_unchanged(&api, &path, &before, &r, &format!("PUT back {name}"));
    }
}

#[test]
fn single_stack_cluster_rejects_dual_stack_service_updates() {
    let server = Server::start();
    let api = server.api();
    api.create(SERVICES, &service("web", json!({})));
    api.create(SERVICES, &service("headless", json!({"clusterIP": "None"})));
    for name in ["web", "headless"] {
        let path = format!("{SERVICES}/{name}");
        let before = api.get_json(&path);
        // With an IPv4 cluster IP kept from the stored object, upstream's first complaint about an
        // IPv6 primary family is the mismatch; a headless Service has no address to mismatch.
        let ip = before["spec"]["clusterIP"].as_str().unwrap_or_default().to_string();
        let mismatch = format!(
            "spec.clusterIPs[0]: Invalid value: \"{ip}\": expected an IPv6 value as indicated by `ipFamilies[0]`"
        );
        let v6_primary = if name == "headless" { IPV6_FAMILY } else { mismatch.as_str() };
        let rejected: Vec<(&str, Value, Vec<&str>)> = vec![
            (MERGE, json!({"spec": {"ipFamilies": ["IPv6"]}}), vec![v6_primary]),
            (MERGE, json!({"spec": {"ipFamilyPolicy": "RequireDualStack"}}), vec![REQUIRE_DUAL]),
            (
                MERGE,
                json!({"spec": {"ipFamilyPolicy": "PreferDualStack", "ipFamilies": ["IPv6", "IPv4"]}}),
                vec![v6_primary],
            ),
            (
                JSON_PATCH,
                json!([
                    {"op": "replace", "path": "/spec/ipFamilyPolicy", "value": "PreferDualStack"},
                    {"op": "add", "path": "/spec/ipFamilies/-", "value": "IPv6"}
                ]),
                vec![r#"spec.ipFamilies[1]: Invalid value: "IPv6": not configured on this cluster"#],
            ),
            (STRATEGIC, json!({"spec": {"ipFamilyPolicy": "RequireDualStack"}}), vec![REQUIRE_DUAL]),
        ];
        for (ty, p, want) in rejected {
            let st = api.patch(&path, ty, &p).expect_status(422, "Invalid");
            assert_eq!(causes(&st), want, "{name}: {ty} {p}: {st}");
            assert!(st["message"].as_str().unwrap_or("").starts_with(&format!("Service \"{name}\" is invalid: ")));
            let after = api.get_json(&path);
            assert_eq!(after, before, "{name}: {ty} {p} changed the Service");
        }
        // PUT.
        let mut put = before.clone();
        put["spec"]["ipFamilies"] = json!(["IPv6"]);
        let st = api.put_json(&path, &put).expect_status(422, "Invalid");
        assert_eq!(causes(&st), vec![v6_primary], "{name}: PUT {st}");
        let mut put = before.clone();
        put["spec"]["ipFamilyPolicy"] = json!("RequireDualStack");
        let st = api.put_json(&path, &put).expect_status(422, "Invalid");
        assert_eq!(causes(&st), vec![REQUIRE_DUAL], "{name}: PUT {st}");
        assert_eq!(api.get_json(&path), before, "{name}: rejected PUTs changed the Service");

        // PreferDualStack is an allowed change that keeps one family.
        let r = api.patch(&path, MERGE, &json!({"spec": {"ipFamilyPolicy": "PreferDualStack"}})).expect(200).json();
        assert_eq!(r["spec"]["ipFamilyPolicy"], "PreferDualStack", "{r}");
        assert_eq!(r["spec"]["ipFamilies"], json!(["IPv4"]), "{r}");
        assert_eq!(r["spec"]["clusterIP"], before["spec"]["clusterIP"], "{r}");
    }
}
