//! Object lifecycle: generateName, system metadata, generation, status and scale subresources,
//! finalizers and deletion propagation, graceful pod deletion, dryRun, paging, field selectors,
//! deletecollection, and a clean restart.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{configmap, deployment, namespace, pod, rv_of, Server};
use serde_json::{json, Value};
use testkit::{eventually_blocking, read_kubeconfig};

const CMS: &str = "/api/v1/namespaces/default/configmaps";
const DEPS: &str = "/apis/apps/v1/namespaces/default/deployments";
const MERGE: &str = "application/merge-patch+json";

fn replicaset(name: &str, replicas: i64) -> Value {
    let mut d = deployment(name, replicas);
    d["kind"] = json!("ReplicaSet");
    d
}

#[test]
fn generate_name_gives_prefix_and_five_random_chars() {
    let server = Server::start();
    let api = server.api();
    let mut names = HashSet::new();
    for _ in 0..10 {
        let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}});
        let c = api.create(CMS, &body);
        let name = c["metadata"]["name"].as_str().unwrap().to_string();
        assert!(name.starts_with("gen-") && name.len() == 9, "generated name {name:?}");
        assert!(name[4..].chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit()), "{name:?}");
        assert_eq!(c["metadata"]["generateName"], "gen-", "{c}");
        api.get(&format!("{CMS}/{name}")).expect(200);
        assert!(names.insert(name.clone()), "{name} generated twice");
    }
}

#[test]
fn system_metadata_uid_timestamp_and_increasing_resource_version() {
    let server = Server::start();
    let api = server.api();
    let a = api.create(CMS, &configmap("a", json!({}), json!({"k": "1"})));
    let uid = a["metadata"]["uid"].as_str().expect("uid").to_string();
    assert_eq!(uid.len(), 36, "uid is a UUID: {uid}");
    assert_eq!(uid.matches('-').count(), 4, "uid is a UUID: {uid}");
    let ts = a["metadata"]["creationTimestamp"].as_str().expect("creationTimestamp").to_string();
    assert!(ts.len() == 20 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "RFC 3339 seconds, UTC: {ts}");
    let rv1 = rv_of(&a);

    let b = api.create(CMS, &configmap("b", json!({}), json!({})));
    let rv2 = rv_of(&b);
    assert!(rv2 > rv1, "resourceVersion is cluster-wide and increasing: {rv1} then {rv2}");
    assert_ne!(b["metadata"]["uid"], a["metadata"]["uid"]);

    // An update bumps the RV; uid and creationTimestamp are system fields the body cannot change.
    let mut upd = a.clone();
    upd["data"]["k"] = json!("2");
    upd["metadata"]["creationTimestamp"] = json!("2001-01-01T00:00:00Z");
    let u = api.put_json(&format!("{CMS}/a"), &upd).expect(200).json();
    let rv3 = rv_of(&u);
    assert!(rv3 > rv2, "update RV {rv3} after {rv2}");
    assert_eq!(u["metadata"]["uid"], uid.as_str());
    assert_eq!(u["metadata"]["creationTimestamp"], ts.as_str(), "creationTimestamp is kept: {u}");

    // A stale update is a conflict.
    let mut stale = a.clone();
    stale["data"]["k"] = json!("3");
    api.put_json(&format!("{CMS}/a"), &stale).expect_status(409, "Conflict");

    let p = api.patch(&format!("{CMS}/a"), MERGE, &json!({"data": {"k": "4"}})).expect(200).json();
    assert!(rv_of(&p) > rv3);
    // (A ConfigMap DELETE answers with a Status, as upstream.)
    api.delete(&format!("{CMS}/b")).expect(200);
    let list = api.get_json(CMS);
    assert!(rv_of(&list) > rv_of(&p), "a delete gets its own RV: {list}");
}

#[test]
fn deployment_generation_bumps_on_spec_change_only() {
    let server = Server::start();
    let api = server.api();
    let d = api.create(DEPS, &deployment("web", 1));
    assert_eq!(d["metadata"]["generation"], 1, "{d}");
    let path = format!("{DEPS}/web");

    let l = api.patch(&path, MERGE, &json!({"metadata": {"labels": {"extra": "x"}}})).expect(200).json();
    assert_eq!(l["metadata"]["generation"], 1, "a label change does not bump generation: {l}");

    let s = api.patch(&path, MERGE, &json!({"spec": {"replicas": 3}})).expect(200).json();
    assert_eq!(s["metadata"]["generation"], 2, "a spec change bumps generation: {s}");

    let t = api
        .patch(
            &path,
            MERGE,
            &json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "busybox:1.37"}]}}}}),
        )
        .expect(200)
        .json();
    assert_eq!(t["metadata"]["generation"], 3, "{t}");

    // A PUT that changes nothing in the spec keeps it.
    let same = api.put_json(&path, &t).expect(200).json();
    assert_eq!(same["metadata"]["generation"], 3, "{same}");
}

#[test]
fn status_is_ignored_on_main_resource_and_only_status_changes_on_subresource() {
    let server = Server::start();
    let api = server.api();
    let d = api.create(DEPS, &deployment("web", 2));
    let path = format!("{DEPS}/web");

    // Main resource: status in the body is ignored (the spec change goes through).
    let mut body = d.clone();
    body["spec"]["replicas"] = json!(3);
    body["status"] = json!({"replicas": 7, "readyReplicas": 7, "observedGeneration": 9});
    let u = api.put_json(&path, &body).expect(200).json();
    assert_eq!(u["spec"]["replicas"], 3);
    assert!(u["status"]["replicas"].is_null() && u["status"]["readyReplicas"].is_null(), "status ignored: {u}");
    assert_eq!(api.get_json(&path)["status"]["readyReplicas"], Value::Null);

    // Status subresource: only status changes (spec and labels are reset to the stored ones).
    let mut body = u.clone();
    body["spec"]["replicas"] = json!(10);
    body["metadata"]["labels"]["sneaky"] = json!("yes");
    body["status"] = json!({"replicas": 3, "readyReplicas": 2, "observedGeneration": 2});
    let s = api.put_json(&format!("{path}/status"), &body).expect(200).json();
    assert_eq!(s["status"]["readyReplicas"], 2, "{s}");
    assert_eq!(s["status"]["observedGeneration"], 2, "{s}");
    assert_eq!(s["spec"]["replicas"], 3, "spec ignored on /status: {s}");
    assert!(s["metadata"]["labels"]["sneaky"].is_null(), "labels ignored on /status: {s}");
    assert_eq!(s["metadata"]["generation"], u["metadata"]["generation"], "a status write does not bump generation");
    let g = api.get_json(&path);
    assert_eq!(g["status"]["readyReplicas"], 2);
    assert_eq!(g["spec"]["replicas"], 3);

    // GET and PATCH on /status.
    assert_eq!(api.get_json(&format!("{path}/status"))["status"]["replicas"], 3);
    let p = api
        .patch(&format!("{path}/status"), MERGE, &json!({"spec": {"replicas": 9}, "status": {"availableReplicas": 1}}))
        .expect(200)
        .json();
    assert_eq!(p["status"]["availableReplicas"], 1, "{p}");
    assert_eq!(p["spec"]["replicas"], 3, "{p}");
}

fn check_scale(api: &common::Api, collection: &str, name: &str) {
    let path = format!("{collection}/{name}");
    let scale_path = format!("{path}/scale");
    let obj = api.get_json(&path);
    let sc = api.get_json(&scale_path);
    assert_eq!(sc["kind"], "Scale", "{sc}");
    assert_eq!(sc["apiVersion"], "autoscaling/v1", "{sc}");
    assert_eq!(sc["metadata"]["name"], name, "{sc}");
    assert_eq!(sc["metadata"]["namespace"], "default", "{sc}");
    assert_eq!(sc["metadata"]["uid"], obj["metadata"]["uid"], "{sc}");
    assert_eq!(sc["metadata"]["resourceVersion"], obj["metadata"]["resourceVersion"], "{sc}");
    assert_eq!(sc["spec"]["replicas"], 2, "{sc}");
    assert_eq!(sc["status"]["selector"], format!("app={name}"), "status.selector is the label selector string: {sc}");

    // PUT with the current RV.
    let mut put = sc.clone();
    put["spec"]["replicas"] = json!(4);
    let r = api.put_json(&scale_path, &put).expect(200).json();
    assert_eq!(r["kind"], "Scale");
    assert_eq!(r["spec"]["replicas"], 4, "{r}");
    assert_eq!(api.get_json(&path)["spec"]["replicas"], 4);

    // PUT with the now stale RV: conflict, nothing changes.
    let mut stale = sc.clone();
    stale["spec"]["replicas"] = json!(6);
    api.put_json(&scale_path, &stale).expect_status(409, "Conflict");
    assert_eq!(api.get_json(&path)["spec"]["replicas"], 4);

    // merge PATCH.
    let p = api.patch(&scale_path, MERGE, &json!({"spec": {"replicas": 1}})).expect(200).json();
    assert_eq!(p["spec"]["replicas"], 1, "{p}");
    let after = api.get_json(&path);
    assert_eq!(after["spec"]["replicas"], 1);
    assert_eq!(api.get_json(&scale_path)["metadata"]["resourceVersion"], after["metadata"]["resourceVersion"]);
}

#[test]
fn scale_subresource_on_deployments_and_replicasets() {
    let server = Server::start();
    let api = server.api();
    api.create(DEPS, &deployment("web", 2));
    check_scale(&api, DEPS, "web");
    let rss = "/apis/apps/v1/namespaces/default/replicasets";
    api.create(rss, &replicaset("rs", 2));
    check_scale(&api, rss, "rs");
    api.get("/apis/apps/v1/namespaces/default/deployments/missing/scale").expect_status(404, "NotFound");
}

#[test]
fn finalizer_holds_deletion_until_removed() {
    let server = Server::start();
    let api = server.api();
    let mut c = configmap("held", json!({}), json!({"k": "v"}));
    c["metadata"]["finalizers"] = json!(["example.com/hold"]);
    api.create(CMS, &c);
    let path = format!("{CMS}/held");

    let d = api.delete(&path).expect(200).json();
    assert_eq!(d["metadata"]["name"], "held", "DELETE of a held object returns the object: {d}");
    assert!(d["metadata"]["deletionTimestamp"].is_string(), "{d}");
    let g = api.get_json(&path);
    assert!(g["metadata"]["deletionTimestamp"].is_string(), "still present, being deleted: {g}");
    assert_eq!(g["metadata"]["deletionGracePeriodSeconds"], 0, "{g}");
    assert_eq!(g["metadata"]["finalizers"], json!(["example.com/hold"]));
    // A second DELETE changes nothing.
    api.delete(&path).expect(200);
    assert_eq!(api.get_json(&path)["metadata"]["deletionTimestamp"], g["metadata"]["deletionTimestamp"]);

    api.patch(&path, MERGE, &json!({"metadata": {"finalizers": null}})).expect(200);
    eventually_blocking("the object to disappear", Duration::from_secs(10), || {
        (api.get(&path).status == 404).then_some(())
    });
}

#[test]
fn propagation_policy_sets_deletion_finalizers_and_owner_refs_are_stored() {
    let server = Server::start();
    let api = server.api();
    let owner = api.create(DEPS, &deployment("owner", 1));
    let refs = json!([{
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
        "controller": true,
        "blockOwnerDeletion": true
    }]);
    let mut dep = configmap("dependent", json!({}), json!({}));
    dep["metadata"]["ownerReferences"] = refs.clone();
    let c = api.create(CMS, &dep);
    assert_eq!(c["metadata"]["ownerReferences"], refs, "ownerReferences stored as sent");
    assert_eq!(api.get_json(&format!("{CMS}/dependent"))["metadata"]["ownerReferences"], refs);

    // Foreground, in a DeleteOptions body.
    let opts = json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"});
    let r = api.send("DELETE", &format!("{DEPS}/owner"), Some("application/json"), Some(opts.to_string().into_bytes()));
    assert!(r.status == 200 || r.status == 202, "{} {}", r.status, r.text());
    let d = r.json();
    assert!(d["metadata"]["deletionTimestamp"].is_string(), "{d}");
    let fins = d["metadata"]["finalizers"].as_array().cloned().unwrap_or_default();
    assert!(fins.contains(&json!("foregroundDeletion")), "Foreground adds foregroundDeletion: {d}");

    // Orphan, as a query parameter.
    api.create(DEPS, &deployment("orphaner", 1));
    let r = api.delete(&format!("{DEPS}/orphaner?propagationPolicy=Orphan"));
    assert!(r.status == 200 || r.status == 202, "{} {}", r.status, r.text());
    let d = r.json();
    assert!(d["metadata"]["deletionTimestamp"].is_string(), "{d}");
    let fins = d["metadata"]["finalizers"].as_array().cloned().unwrap_or_default();
    assert!(fins.contains(&json!("orphan")), "Orphan adds orphan: {d}");

    // Background (the default for apps/v1) deletes at once.
    api.create(DEPS, &deployment("bg", 1));
    api.delete(&format!("{DEPS}/bg?propagationPolicy=Background")).expect(200);
    api.get(&format!("{DEPS}/bg")).expect_status(404, "NotFound");

    // An unknown policy is rejected.
    api.create(DEPS, &deployment("odd", 1));
    api.delete(&format!("{DEPS}/odd?propagationPolicy=Sideways")).expect_status(422, "Invalid");
    api.get(&format!("{DEPS}/odd")).expect(200);
}

#[test]
fn bound_pod_is_deleted_gracefully_unbound_at_once() {
    let server = Server::start();
    let api = server.api();
    let pods = "/api/v1/namespaces/default/pods";

    let mut bound = pod("bound", json!({"app": "x"}));
    bound["spec"]["nodeName"] = json!("node-a");
    api.create(pods, &bound);
    let d = api.delete(&format!("{pods}/bound")).expect(200).json();
    assert!(d["metadata"]["deletionTimestamp"].is_string(), "{d}");
    assert_eq!(d["metadata"]["deletionGracePeriodSeconds"], 30, "grace = terminationGracePeriodSeconds: {d}");
    let g = api.get_json(&format!("{pods}/bound"));
    assert!(g["metadata"]["deletionTimestamp"].is_string(), "a bound pod stays until its kubelet confirms: {g}");
    assert_eq!(g["metadata"]["deletionGracePeriodSeconds"], 30);

    // A shorter grace period may replace a longer one; gracePeriodSeconds=0 deletes at once.
    let d = api.delete(&format!("{pods}/bound?gracePeriodSeconds=5")).expect(200).json();
    assert_eq!(d["metadata"]["deletionGracePeriodSeconds"], 5, "{d}");
    api.delete(&format!("{pods}/bound?gracePeriodSeconds=0")).expect(200);
    api.get(&format!("{pods}/bound")).expect_status(404, "NotFound");

    api.create(pods, &pod("unbound", json!({})));
    api.delete(&format!("{pods}/unbound")).expect(200);
    api.get(&format!("{pods}/unbound")).expect_status(404, "NotFound");
}

#[test]
fn dry_run_changes_nothing() {
    let server = Server::start();
    let api = server.api();
    api.create(CMS, &configmap("keep", json!({"a": "b"}), json!({"k": "v"})));
    let before = api.snapshot(CMS);
    let list_rv = rv_of(&api.get_json(CMS));

    let c = api.post_json(&format!("{CMS}?dryRun=All"), &configmap("ghost", json!({}), json!({}))).expect(201).json();
    assert_eq!(c["metadata"]["name"], "ghost", "{c}");
    api.get(&format!("{CMS}/ghost")).expect_status(404, "NotFound");

    let mut cur = api.get_json(&format!("{CMS}/keep"));
    cur["data"]["k"] = json!("changed");
    let u = api.put_json(&format!("{CMS}/keep?dryRun=All"), &cur).expect(200).json();
    assert_eq!(u["data"]["k"], "changed", "the answer shows the would-be result: {u}");

    let p = api.patch(&format!("{CMS}/keep?dryRun=All"), MERGE, &json!({"data": {"k": "patched"}})).expect(200).json();
    assert_eq!(p["data"]["k"], "patched", "{p}");

    api.delete(&format!("{CMS}/keep?dryRun=All")).expect(200);
    // Validation still runs under dryRun.
    api.post_json(&format!("{CMS}?dryRun=All"), &configmap("Bad_Name", json!({}), json!({})))
        .expect_status(422, "Invalid");
    // An unknown dryRun value is rejected.
    api.post_json(&format!("{CMS}?dryRun=Some"), &configmap("x", json!({}), json!({}))).expect(400);

    assert_eq!(api.snapshot(CMS), before, "dryRun wrote nothing");
    let g = api.get_json(&format!("{CMS}/keep"));
    assert_eq!(g["data"]["k"], "v");
    assert_eq!(rv_of(&api.get_json(CMS)), list_rv, "no resourceVersion was consumed");
}

#[test]
fn limit_and_continue_page_through_every_object_once() {
    let server = Server::start();
    let api = server.api();
    api.create("/api/v1/namespaces", &namespace("paging"));
    let coll = "/api/v1/namespaces/paging/configmaps";
    for i in 0..25 {
        api.create(coll, &configmap(&format!("cm-{i:02}"), json!({"i": i.to_string()}), json!({})));
    }
    let total = api.get_json(coll)["items"].as_array().unwrap().len();
    assert!(total >= 25);

    let mut names = Vec::new();
    let mut token = String::new();
    let mut page_rvs = Vec::new();
    let mut remaining = Vec::new();
    loop {
        let path =
            if token.is_empty() { format!("{coll}?limit=10") } else { format!("{coll}?limit=10&continue={token}") };
        let page = api.get_json(&path);
        let items = page["items"].as_array().unwrap();
        names.extend(items.iter().map(|i| i["metadata"]["name"].as_str().unwrap().to_string()));
        page_rvs.push(page["metadata"]["resourceVersion"].clone());
        if page_rvs.len() == 1 {
            assert_eq!(
                page["metadata"]["remainingItemCount"].as_u64(),
                Some((total - 10) as u64),
                "first page: {}",
                page["metadata"]
            );
            // Created after the first page: not part of the list's consistent snapshot.
            api.create(coll, &configmap("zz-late", json!({}), json!({})));
        }
        let next = page["metadata"]["continue"].as_str().unwrap_or_default().to_string();
        if next.is_empty() {
            assert!(items.len() <= 10);
            assert!(page["metadata"]["remainingItemCount"].is_null(), "last page: {}", page["metadata"]);
            break;
        }
        assert_eq!(items.len(), 10, "a full page before the end");
        remaining.push(page["metadata"]["remainingItemCount"].as_u64());
        token = next;
        assert!(page_rvs.len() < 10, "paging does not end");
    }
    let unique: HashSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "an object was returned twice: {names:?}");
    let original: Vec<&String> = names.iter().filter(|n| *n != "zz-late").collect();
    assert_eq!(original.len(), total, "every object exactly once: {names:?}");

    let st = api.get(&format!("{coll}?limit=10&continue=not-a-token")).expect_status(400, "BadRequest");
    assert!(st["message"].as_str().unwrap().to_lowercase().contains("continue"), "{st}");

    // Upstream serves continued pages from the first page's snapshot (the RV in the token):
    // the same list resourceVersion, and nothing created in between.
    assert!(page_rvs.iter().all(|rv| *rv == page_rvs[0]), "page resourceVersions differ: {page_rvs:?}");
    assert!(!names.contains(&"zz-late".to_string()), "an object created mid-paging leaked into the list: {names:?}");
    let expect: Vec<Option<u64>> = (1..=remaining.len()).map(|p| Some((total - 10 * p) as u64)).collect();
    assert_eq!(remaining, expect, "remainingItemCount per page");
    assert_eq!(page_rvs.len(), total.div_ceil(10));
}

#[test]
fn field_selectors_and_deletecollection() {
    let server = Server::start();
    let api = server.api();
    api.create("/api/v1/namespaces", &namespace("other"));
    for n in ["x", "y", "z"] {
        api.create(CMS, &configmap(n, json!({"del": if n == "z" { "no" } else { "yes" }}), json!({})));
    }
    api.create("/api/v1/namespaces/other/configmaps", &configmap("x", json!({}), json!({})));

    let names = |path: &str| -> Vec<String> {
        let mut v: Vec<String> = api.get_json(path)["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                format!(
                    "{}/{}",
                    i["metadata"]["namespace"].as_str().unwrap_or_default(),
                    i["metadata"]["name"].as_str().unwrap_or_default()
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&format!("{CMS}?fieldSelector=metadata.name%3Dx")), ["default/x"]);
    assert_eq!(names("/api/v1/configmaps?fieldSelector=metadata.name%3Dx"), ["default/x", "other/x"]);
    assert_eq!(names("/api/v1/configmaps?fieldSelector=metadata.namespace%3Dother"), ["other/x"]);
    assert_eq!(
        names("/api/v1/configmaps?fieldSelector=metadata.namespace%3Dother,metadata.name%3Dy"),
        Vec::<String>::new()
    );
    let not_x = names(&format!("{CMS}?fieldSelector=metadata.name!%3Dx&labelSelector=del"));
    assert_eq!(not_x, ["default/y", "default/z"]);

    let st = api.get(&format!("{CMS}?fieldSelector=data.k%3Dv")).expect_status(400, "BadRequest");
    assert!(st["message"].as_str().unwrap().contains("data.k"), "names the unsupported field: {st}");
    api.get(&format!("{CMS}?fieldSelector=spec.nodeName%3Da")).expect_status(400, "BadRequest");

    // deletecollection with a label selector removes exactly the matching objects.
    let r = api.delete(&format!("{CMS}?labelSelector=del%3Dyes")).expect(200).json();
    assert!(r["kind"].as_str().is_some_and(|k| k == "ConfigMapList" || k == "Status"), "{r}");
    assert_eq!(names(&format!("{CMS}?labelSelector=del")), ["default/z"]);
    assert_eq!(names("/api/v1/namespaces/other/configmaps?fieldSelector=metadata.name%3Dx"), ["other/x"]);
}

#[test]
fn objects_and_token_survive_a_clean_restart() {
    let mut server = Server::start();
    let api = server.api();
    let token = server.creds().token.clone();
    api.create("/api/v1/namespaces", &namespace("keep"));
    let c = api.create("/api/v1/namespaces/keep/configmaps", &configmap("c", json!({"l": "v"}), json!({"k": "v"})));
    let d = api.create(DEPS, &deployment("web", 3));
    let last_rv = rv_of(&d);
    let kc_before = std::fs::metadata(server.kubeconfig()).unwrap().modified().unwrap();

    let status = server.terminate(Duration::from_secs(20));
    assert!(status.success(), "SIGTERM is a clean shutdown, exit status {status}");
    // Make the rewrite observable.
    std::fs::remove_file(server.kubeconfig()).unwrap();
    server.restart();

    let creds = read_kubeconfig(server.kubeconfig()).expect("kubeconfig rewritten at start");
    assert_eq!(creds.token, token, "the admin token is the same across restarts");
    assert!(std::fs::metadata(server.kubeconfig()).unwrap().modified().unwrap() >= kc_before);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(server.kubeconfig()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "kubeconfig mode");

    let api = server.api();
    assert_eq!(api.get("/readyz").expect(200).status, 200);
    let c2 = api.get_json("/api/v1/namespaces/keep/configmaps/c");
    assert_eq!(c2["data"], c["data"]);
    assert_eq!(c2["metadata"]["uid"], c["metadata"]["uid"]);
    assert_eq!(c2["metadata"]["resourceVersion"], c["metadata"]["resourceVersion"]);
    let d2 = api.get_json(&format!("{DEPS}/web"));
    assert_eq!(d2["spec"]["replicas"], 3);
    assert_eq!(d2["metadata"]["uid"], d["metadata"]["uid"]);
    assert_eq!(api.get_json("/api/v1/namespaces/keep")["status"]["phase"], "Active");
    // New writes continue the resourceVersion sequence.
    let n = api.create(CMS, &configmap("after", json!({}), json!({})));
    assert!(rv_of(&n) > last_rv, "RV after restart {} must exceed {last_rv}", rv_of(&n));
    // The kubernetes Service kept its address and was not duplicated.
    let svcs = api.get_json("/api/v1/namespaces/default/services");
    assert_eq!(svcs["items"].as_array().unwrap().len(), 1, "{svcs}");
}
