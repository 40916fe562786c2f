//! The Deployment and ReplicaSet controllers against a real `skiff server`, with the test acting
//! as the kubelet.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use support::deploy::*;
use support::*;
use testkit::eventually;

const LIMIT: Duration = Duration::from_secs(60);

fn rs_of<'a>(rss: &'a [ReplicaSet], image: &str) -> Option<&'a ReplicaSet> {
    rss.iter().find(|rs| {
        rs.spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .and_then(|t| t.spec.as_ref())
            .map(|s| s.containers[0].image.as_deref())
            == Some(Some(image))
    })
}

fn revision(rs: &ReplicaSet) -> Option<&str> {
    rs.annotations().get("deployment.kubernetes.io/revision").map(String::as_str)
}

fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

async fn set_image(api: &Api<Deployment>, name: &str, image: &str) {
    let patch = serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}});
    api.patch(name, &PatchParams::default(), &Patch::Strategic(&patch)).await.expect("set image");
}

async fn scale(api: &Api<Deployment>, name: &str, replicas: i32) {
    let patch = serde_json::json!({"spec": {"replicas": replicas}});
    api.patch_scale(name, &PatchParams::default(), &Patch::Merge(&patch)).await.expect("scale");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_replicas_become_available() {
    let server = start_deploy().await;
    let client = server.client.clone();
    create_namespace(&client, "t").await;
    let _kubelet = kubelet(&client, "t");
    let api: Api<Deployment> = Api::namespaced(client.clone(), "t");
    api.create(&PostParams::default(), &deployment("web", 6, "nginx:1.25", serde_json::json!({}))).await.unwrap();

    let d = rollout_complete(&client, "t", "web", LIMIT).await;
    let s = d.status.as_ref().unwrap();
    assert_eq!((s.ready_replicas, s.unavailable_replicas.unwrap_or(0)), (Some(6), 0));
    assert_eq!(condition(&d, "Available"), Some(("True", "MinimumReplicasAvailable")));
    let d = eventually("Progressing NewReplicaSetAvailable", LIMIT, || async {
        let d = api.get("web").await.ok()?;
        (condition(&d, "Progressing") == Some(("True", "NewReplicaSetAvailable"))).then_some(d)
    })
    .await;
    assert_eq!(d.annotations().get("deployment.kubernetes.io/revision").map(String::as_str), Some("1"));

    let rss = replicasets(&client, "t").await;
    assert_eq!(rss.len(), 1);
    let rs = &rss[0];
    let hash = rs.labels().get("pod-template-hash").cloned().expect("hash label on the replicaset");
    assert_eq!(rs.name_any(), format!("web-{hash}"));
    assert!(hash.bytes().all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b)), "{hash}");
    let spec = rs.spec.as_ref().unwrap();
    assert_eq!(spec.selector.match_labels.as_ref().unwrap().get("pod-template-hash"), Some(&hash));
    let owner = &rs.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str(), owner.controller), ("Deployment", "web", Some(true)));
    assert_eq!(revision(rs), Some("1"));
    assert_eq!(rs.annotations().get("deployment.kubernetes.io/desired-replicas").map(String::as_str), Some("6"));
    assert_eq!(rs.annotations().get("deployment.kubernetes.io/max-replicas").map(String::as_str), Some("8"));

    let pods = pods(&client, "t", "app=web").await;
    assert_eq!(pods.len(), 6);
    for p in &pods {
        assert!(
            p.name_any().starts_with(&format!("web-{hash}-")) && p.name_any().len() == "web-".len() + hash.len() + 6
        );
        assert_eq!(p.labels().get("pod-template-hash"), Some(&hash));
        let r = &p.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((r.kind.as_str(), r.controller, r.block_owner_deletion), ("ReplicaSet", Some(true), Some(true)));
    }

    let events: Api<Event> = Api::namespaced(client.clone(), "t");
    let msgs = eventually("events", LIMIT, || async {
        let evs = events.list(&ListParams::default()).await.ok()?.items;
        let msgs: Vec<String> = evs
            .iter()
            .map(|e| format!("{} {}", e.reason.clone().unwrap_or_default(), e.message.clone().unwrap_or_default()))
            .collect();
        (msgs.iter().filter(|m| m.starts_with("SuccessfulCreate Created pod: web-")).count() == 6).then_some(msgs)
    })
    .await;
    assert!(msgs.contains(&format!("ScalingReplicaSet Scaled up replica set web-{hash} from 0 to 6")), "{msgs:?}");
}

/// What [`watch_bounds`] saw.
struct Bounds {
    violations: Arc<Mutex<Vec<String>>>,
    /// Steps checked, counted once the watch has listed.
    checked: Arc<Mutex<usize>>,
    listed: Arc<AtomicBool>,
}

/// Tracks the pods of a namespace from a watch and checks the rollout bounds at every step.
fn watch_bounds(client: &kube::Client, ns: &str, max_total: usize, min_ready: usize) -> Bounds {
    let violations = Arc::new(Mutex::new(Vec::new()));
    let checked = Arc::new(Mutex::new(0));
    let listed = Arc::new(AtomicBool::new(false));
    let (v, c, l) = (violations.clone(), checked.clone(), listed.clone());
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    tokio::spawn(async move {
        let mut state: HashMap<String, Pod> = HashMap::new();
        let mut stream = watcher(api, watcher::Config::default()).boxed();
        let (mut steps, mut listed) = (0, false);
        while let Some(Ok(ev)) = stream.next().await {
            match ev {
                watcher::Event::Init => {
                    state.clear();
                    listed = false;
                    continue;
                }
                watcher::Event::InitApply(p) => {
                    state.insert(p.name_any(), p);
                    continue;
                }
                watcher::Event::InitDone => {
                    listed = true;
                    l.store(true, Ordering::SeqCst);
                }
                watcher::Event::Apply(p) => {
                    state.insert(p.name_any(), p);
                }
                watcher::Event::Delete(p) => {
                    state.remove(&p.name_any());
                }
            }
            if !listed {
                continue;
            }
            steps += 1;
            *c.lock().unwrap() = steps;
            let active: Vec<&Pod> = state.values().filter(|p| is_active(p)).collect();
            let ready = active.iter().filter(|p| is_ready(p)).count();
            if active.len() > max_total || ready < min_ready {
                v.lock().unwrap().push(format!("step {steps}: {} active, {ready} ready", active.len()));
            }
        }
    });
    Bounds { violations, checked, listed }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_stays_within_surge_and_availability() {
    let server = start_deploy().await;
    let client = server.client.clone();
    create_namespace(&client, "t").await;
    let _kubelet = kubelet(&client, "t");
    let api: Api<Deployment> = Api::namespaced(client.clone(), "t");
    api.create(&PostParams::default(), &deployment("web", 6, "nginx:1.25", serde_json::json!({}))).await.unwrap();
    rollout_complete(&client, "t", "web", LIMIT).await;

    // 25% of 6: surge rounds up to 2, unavailable rounds down to 1.
    let Bounds { violations, checked, listed } = watch_bounds(&client, "t", 8, 5);
    eventually("the pod watch to list", LIMIT, || async { listed.load(Ordering::SeqCst).then_some(()) }).await;
    set_image(&api, "web", "nginx:1.26").await;
    rollout_complete(&client, "t", "web", LIMIT).await;
    let pods = pods(&client, "t", "app=web").await;
    let active: Vec<&Pod> = pods.iter().filter(|p| is_active(p)).collect();
    assert_eq!(active.len(), 6);
    assert!(active.iter().all(|p| p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("nginx:1.26")));
    assert!(violations.lock().unwrap().is_empty(), "bounds broken: {:?}", violations.lock().unwrap());
    // 6 creations, 6 readiness updates and 6 deletions at least.
    let steps = *checked.lock().unwrap();
    assert!(steps >= 18, "only {steps} pod changes observed");

    let rss = replicasets(&client, "t").await;
    let (old, new) = (rs_of(&rss, "nginx:1.25").unwrap(), rs_of(&rss, "nginx:1.26").unwrap());
    assert_eq!((spec_replicas(old), spec_replicas(new)), (0, 6));
    assert_eq!((revision(old), revision(new)), (Some("1"), Some("2")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_up_down_and_pause() {
    let server = start_deploy().await;
    let client = server.client.clone();
    create_namespace(&client, "t").await;
    let _kubelet = kubelet(&client, "t");
    let api: Api<Deployment> = Api::namespaced(client.clone(), "t");
    api.create(&PostParams::default(), &deployment("web", 3, "nginx:1.25", serde_json::json!({}))).await.unwrap();
    rollout_complete(&client, "t", "web", LIMIT).await;

    scale(&api, "web", 10).await;
    rollout_complete(&client, "t", "web", LIMIT).await;
    assert_eq!(pods(&client, "t", "app=web").await.iter().filter(|p| is_active(p)).count(), 10);
    scale(&api, "web", 2).await;
    rollout_complete(&client, "t", "web", LIMIT).await;
    eventually("2 pods", LIMIT, || async {
        (pods(&client, "t", "app=web").await.iter().filter(|p| is_active(p)).count() == 2).then_some(())
    })
    .await;

    // Paused: a template change does not roll out, a resize still applies.
    api.patch("web", &PatchParams::default(), &Patch::Merge(&serde_json::json!({"spec": {"paused": true}})))
        .await
        .unwrap();
    set_image(&api, "web", "nginx:1.26").await;
    scale(&api, "web", 4).await;
    rollout_complete_old_template(&client, &api, 4).await;
    assert_eq!(replicasets(&client, "t").await.len(), 1, "no new replicaset while paused");
    let d = api.get("web").await.unwrap();
    assert_eq!(condition(&d, "Progressing"), Some(("Unknown", "DeploymentPaused")));

    api.patch("web", &PatchParams::default(), &Patch::Merge(&serde_json::json!({"spec": {"paused": false}})))
        .await
        .unwrap();
    rollout_complete(&client, "t", "web", LIMIT).await;
    let rss = replicasets(&client, "t").await;
    assert_eq!(spec_replicas(rs_of(&rss, "nginx:1.26").unwrap()), 4);
}

async fn rollout_complete_old_template(client: &kube::Client, api: &Api<Deployment>, n: usize) {
    eventually("paused deployment resized", LIMIT, || async {
        let d = api.get("web").await.ok()?;
        let s = d.status.as_ref()?;
        let active = pods(client, "t", "app=web").await.into_iter().filter(is_active).count();
        (s.observed_generation >= d.metadata.generation && s.available_replicas == Some(n as i32) && active == n)
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicaset_replaces_adopts_and_releases_pods() {
    let server = start_deploy().await;
    let client = server.client.clone();
    create_namespace(&client, "t").await;
    let _kubelet = kubelet(&client, "t");
    let rs: ReplicaSet = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "front"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "front"}},
                 "template": {"metadata": {"labels": {"app": "front"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}},
    }))
    .unwrap();
    let rs_api: Api<ReplicaSet> = Api::namespaced(client.clone(), "t");
    rs_api.create(&PostParams::default(), &rs).await.unwrap();
    let ready = |n: i32| {
        let rs_api = rs_api.clone();
        async move {
            eventually(&format!("{n} ready"), LIMIT, || async {
                let rs = rs_api.get("front").await.ok()?;
                let s = rs.status?;
                (s.replicas == n
                    && s.ready_replicas == Some(n)
                    && s.available_replicas == Some(n)
                    && s.fully_labeled_replicas == Some(n))
                .then_some(())
            })
            .await
        }
    };
    ready(3).await;

    // A deleted pod is replaced.
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), "t");
    let before = pods(&client, "t", "app=front").await;
    let victim = before[0].name_any();
    pod_api.delete(&victim, &DeleteParams::default()).await.unwrap();
    eventually("replacement", LIMIT, || async {
        let now = pods(&client, "t", "app=front").await;
        let active: Vec<_> = now.iter().filter(|p| is_active(p)).collect();
        (active.len() == 3 && active.iter().all(|p| p.name_any() != victim)).then_some(())
    })
    .await;
    ready(3).await;

    // An orphan that matches is adopted, and the surplus pod deleted (the unready one goes first).
    let orphan: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "orphan", "labels": {"app": "front"}},
        "spec": {"containers": [{"name": "c", "image": "nginx:1"}]},
    }))
    .unwrap();
    pod_api.create(&PostParams::default(), &orphan).await.unwrap();
    eventually("3 pods after adoption", LIMIT, || async {
        let active: Vec<Pod> = pods(&client, "t", "app=front").await.into_iter().filter(is_active).collect();
        let owners_ok =
            active.iter().all(|p| p.metadata.owner_references.as_ref().is_some_and(|r| r[0].name == "front"));
        (active.len() == 3 && owners_ok).then_some(())
    })
    .await;

    // A pod relabelled out of the selector is released and replaced.
    let one = pods(&client, "t", "app=front").await.into_iter().find(is_active).unwrap().name_any();
    pod_api
        .patch(
            &one,
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({"metadata": {"labels": {"app": "other"}}})),
        )
        .await
        .unwrap();
    eventually("released", LIMIT, || async {
        let p = pod_api.get(&one).await.ok()?;
        p.metadata.owner_references.as_ref().is_none_or(|r| r.is_empty()).then_some(())
    })
    .await;
    ready(3).await;

    // Scale down to one.
    rs_api
        .patch("front", &PatchParams::default(), &Patch::Merge(&serde_json::json!({"spec": {"replicas": 1}})))
        .await
        .unwrap();
    ready(1).await;
    assert_eq!(pods(&client, "t", "app=front").await.into_iter().filter(is_active).count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_limit_rollback_and_restart() {
    let server = start_deploy().await;
    let client = server.client.clone();
    create_namespace(&client, "t").await;
    let _kubelet = kubelet(&client, "t");
    let api: Api<Deployment> = Api::namespaced(client.clone(), "t");
    let d = deployment("web", 2, "img:1", serde_json::json!({"revisionHistoryLimit": 1}));
    api.create(&PostParams::default(), &d).await.unwrap();
    rollout_complete(&client, "t", "web", LIMIT).await;
    for image in ["img:2", "img:3"] {
        set_image(&api, "web", image).await;
        rollout_complete(&client, "t", "web", LIMIT).await;
    }
    let rss = eventually("history pruned to one old replicaset", LIMIT, || async {
        let rss = replicasets(&client, "t").await;
        (rss.len() == 2).then_some(rss)
    })
    .await;
    assert!(rs_of(&rss, "img:1").is_none(), "the oldest revision went");
    assert_eq!(revision(rs_of(&rss, "img:2").unwrap()), Some("2"));

    // What `kubectl rollout undo` does: put the old ReplicaSet's template back.
    let old_template = rs_of(&rss, "img:2").unwrap().spec.as_ref().unwrap().template.clone().unwrap();
    let mut template = serde_json::to_value(&old_template).unwrap();
    template["metadata"]["labels"].as_object_mut().unwrap().remove("pod-template-hash");
    let patch = serde_json::json!([{"op": "replace", "path": "/spec/template", "value": template}]);
    api.patch("web", &PatchParams::default(), &Patch::Json::<()>(serde_json::from_value(patch).unwrap()))
        .await
        .unwrap();
    rollout_complete(&client, "t", "web", LIMIT).await;
    let rss = replicasets(&client, "t").await;
    assert_eq!(rss.len(), 2, "the old replicaset is reused, not copied");
    let back = rs_of(&rss, "img:2").unwrap();
    assert_eq!(spec_replicas(back), 2);
    assert_eq!(revision(back), Some("4"));
    assert_eq!(back.annotations().get("deployment.kubernetes.io/revision-history").map(String::as_str), Some("2"));
    let d = api.get("web").await.unwrap();
    assert_eq!(d.annotations().get("deployment.kubernetes.io/revision").map(String::as_str), Some("4"));

    // What `kubectl rollout restart` does: a template annotation → a new ReplicaSet.
    let patch = serde_json::json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"}}}}});
    api.patch("web", &PatchParams::default(), &Patch::Strategic(&patch)).await.unwrap();
    rollout_complete(&client, "t", "web", LIMIT).await;
    eventually("restart replicaset", LIMIT, || async {
        let rss = replicasets(&client, "t").await;
        rss.iter().any(|rs| revision(rs) == Some("5") && spec_replicas(rs) == 2).then_some(())
    })
    .await;
    // The history limit still holds. As upstream, the cleanup runs in the sync after the one that
    // reports the rollout complete, so the status can say complete a moment before it.
    eventually("history limit still holds after the restart", LIMIT, || async {
        (replicasets(&client, "t").await.len() <= 2).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_never_overlaps() {
    let server = start_deploy().await;
    let client = server.client.clone();
    create_namespace(&client, "t").await;
    let _kubelet = kubelet(&client, "t");
    let api: Api<Deployment> = Api::namespaced(client.clone(), "t");
    let d = deployment("web", 3, "img:1", serde_json::json!({"strategy": {"type": "Recreate"}}));
    api.create(&PostParams::default(), &d).await.unwrap();
    rollout_complete(&client, "t", "web", LIMIT).await;

    let overlaps = Arc::new(Mutex::new(Vec::new()));
    let listed = Arc::new(AtomicBool::new(false));
    let (o, l) = (overlaps.clone(), listed.clone());
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), "t");
    tokio::spawn(async move {
        let mut state: HashMap<String, Pod> = HashMap::new();
        let mut stream = watcher(pod_api, watcher::Config::default()).boxed();
        while let Some(Ok(ev)) = stream.next().await {
            match ev {
                watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                    state.insert(p.name_any(), p);
                }
                watcher::Event::Delete(p) => {
                    state.remove(&p.name_any());
                }
                watcher::Event::InitDone => {
                    l.store(true, Ordering::SeqCst);
                    continue;
                }
                watcher::Event::Init => continue,
            }
            let images: std::collections::HashSet<String> =
                state.values().filter_map(|p| p.spec.as_ref()?.containers[0].image.clone()).collect();
            if images.len() > 1 {
                o.lock().unwrap().push(format!("{images:?}"));
            }
        }
    });
    eventually("the pod watch to list", LIMIT, || async { listed.load(Ordering::SeqCst).then_some(()) }).await;
    set_image(&api, "web", "img:2").await;
    rollout_complete(&client, "t", "web", LIMIT).await;
    assert!(overlaps.lock().unwrap().is_empty(), "old and new pods existed together: {:?}", overlaps.lock().unwrap());
    let rss = replicasets(&client, "t").await;
    assert_eq!((spec_replicas(rs_of(&rss, "img:1").unwrap()), spec_replicas(rs_of(&rss, "img:2").unwrap())), (0, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_rollout_times_out_and_scales_proportionally() {
    let server = start_deploy().await;
    let client = server.client.clone();
    create_namespace(&client, "t").await;
    let kubelet = kubelet(&client, "t");
    let api: Api<Deployment> = Api::namespaced(client.clone(), "t");
    let d = deployment("web", 6, "img:1", serde_json::json!({"progressDeadlineSeconds": 3}));
    api.create(&PostParams::default(), &d).await.unwrap();
    rollout_complete(&client, "t", "web", LIMIT).await;

    // New pods never become ready: the rollout stalls at old 5 + new 3 (surge 2, unavailable 1).
    kubelet.ready.store(false, Ordering::SeqCst);
    set_image(&api, "web", "img:2").await;
    let d = eventually("ProgressDeadlineExceeded", LIMIT, || async {
        let d = api.get("web").await.ok()?;
        (condition(&d, "Progressing") == Some(("False", "ProgressDeadlineExceeded"))).then_some(d)
    })
    .await;
    assert_eq!(condition(&d, "Available"), Some(("True", "MinimumReplicasAvailable")));
    let rss = replicasets(&client, "t").await;
    assert_eq!((spec_replicas(rs_of(&rss, "img:1").unwrap()), spec_replicas(rs_of(&rss, "img:2").unwrap())), (5, 3));

    // 6 → 12 mid-rollout: 15 allowed (surge 3); +7 spread 5:3 of the old maximum 8.
    scale(&api, "web", 12).await;
    eventually("proportional scale", LIMIT, || async {
        let rss = replicasets(&client, "t").await;
        let sizes = (spec_replicas(rs_of(&rss, "img:1")?), spec_replicas(rs_of(&rss, "img:2")?));
        (sizes == (9, 6)).then_some(())
    })
    .await;

    kubelet.ready.store(true, Ordering::SeqCst);
    let d = rollout_complete(&client, "t", "web", LIMIT).await;
    assert_eq!(d.spec.unwrap().replicas, Some(12));
}
