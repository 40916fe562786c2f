//! The Job and TTL-after-finished controllers against a real API server; the test plays the
//! kubelet by patching pods/status.

mod support;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::json;
use support::{obj, pods_with, secs, set_phase, start};
use testkit::eventually;

fn job(name: &str, spec: serde_json::Value) -> Job {
    let mut spec = spec;
    spec["template"] =
        json!({"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox:1.36"}]}});
    obj(json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": spec}))
}

fn is_active(p: &Pod) -> bool {
    let phase = p.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
    p.metadata.deletion_timestamp.is_none() && phase != "Succeeded" && phase != "Failed"
}

fn condition(j: &Job, type_: &str) -> Option<String> {
    j.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == type_ && c.status == "True")?.reason.clone()
}

async fn reasons(client: &kube::Client, name: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let list = events.list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default();
    list.into_iter().filter(|e| e.involved_object.name.as_deref() == Some(name)).filter_map(|e| e.reason).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_with_bounded_parallelism() {
    let s = start(&[controller_manager::job::controller]).await;
    let jobs: Api<Job> = Api::namespaced(s.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    jobs.create(&PostParams::default(), &job("three", json!({"completions": 3, "parallelism": 2})))
        .await
        .expect("create job");

    let max_active = std::cell::Cell::new(0);
    let finished = std::cell::RefCell::new(std::collections::HashSet::new());
    eventually("job three to complete", secs(60), || async {
        let all = pods_with(&pods, "batch.kubernetes.io/job-name=three").await;
        let active: Vec<&Pod> = all.iter().filter(|p| is_active(p)).collect();
        max_active.set(max_active.get().max(active.len()));
        // Finish one pod per round, as a kubelet would.
        let next =
            active.iter().map(|p| p.metadata.name.clone().unwrap_or_default()).find(|n| !finished.borrow().contains(n));
        if let Some(name) = next {
            set_phase(&pods, &name, "Succeeded").await.expect("pod status");
            finished.borrow_mut().insert(name);
        }
        jobs.get("three").await.ok().and_then(|j| condition(&j, "Complete")).map(|_| ())
    })
    .await;
    let (max_active, finished) = (max_active.get(), finished.into_inner());
    assert!(max_active <= 2, "at most parallelism pods active, saw {max_active}");
    let j = jobs.get("three").await.expect("job");
    let st = j.status.clone().expect("status");
    assert_eq!(st.succeeded, Some(3));
    assert_eq!(st.failed.unwrap_or(0), 0);
    assert_eq!(st.active, Some(0));
    assert!(st.completion_time.is_some() && st.start_time.is_some());
    assert_eq!(condition(&j, "SuccessCriteriaMet").as_deref(), Some("CompletionsReached"));
    assert_eq!(finished.len(), 3, "exactly three pods ran");
    // Pods carry the job labels and owner, and are freed of the tracking finalizer once counted.
    let all = pods_with(&pods, "batch.kubernetes.io/job-name=three").await;
    assert_eq!(all.len(), 3);
    for p in &all {
        let labels = p.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.get("job-name").map(String::as_str), Some("three"));
        assert!(labels.contains_key("batch.kubernetes.io/controller-uid"));
        let owner = &p.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!((owner.kind.as_str(), owner.controller), ("Job", Some(true)));
        assert!(!p
            .metadata
            .finalizers
            .clone()
            .unwrap_or_default()
            .iter()
            .any(|f| f == "batch.kubernetes.io/job-tracking"));
    }
    let r = reasons(&s.client, "three").await;
    assert!(r.iter().any(|r| r == "SuccessfulCreate") && r.iter().any(|r| r == "Completed"), "events: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_pods_stop_at_backoff_limit() {
    let s = start(&[controller_manager::job::controller]).await;
    let jobs: Api<Job> = Api::namespaced(s.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    jobs.create(&PostParams::default(), &job("flaky", json!({"backoffLimit": 1}))).await.expect("create job");
    // Every pod fails; the second failure exceeds backoffLimit 1 (after a 10 s pod backoff).
    let j = eventually("job flaky fails", secs(60), || async {
        for p in pods_with(&pods, "job-name=flaky").await.iter().filter(|p| is_active(p)) {
            set_phase(&pods, p.metadata.name.as_deref().unwrap_or_default(), "Failed").await.expect("pod status");
        }
        let j = jobs.get("flaky").await.ok()?;
        condition(&j, "Failed").map(|_| j)
    })
    .await;
    assert_eq!(condition(&j, "Failed").as_deref(), Some("BackoffLimitExceeded"));
    assert_eq!(condition(&j, "FailureTarget").as_deref(), Some("BackoffLimitExceeded"));
    let st = j.status.expect("status");
    assert_eq!(st.failed, Some(2));
    assert_eq!(st.active, Some(0));
    assert_eq!(pods_with(&pods, "job-name=flaky").await.len(), 2, "no pod after the limit");
    let r = reasons(&s.client, "flaky").await;
    assert!(r.iter().any(|r| r == "BackoffLimitExceeded"), "events: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_deadline_kills_running_pods() {
    let s = start(&[controller_manager::job::controller]).await;
    let jobs: Api<Job> = Api::namespaced(s.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    jobs.create(
        &PostParams::default(),
        &job("slow", json!({"parallelism": 2, "completions": 4, "activeDeadlineSeconds": 3})),
    )
    .await
    .expect("create job");
    let running = eventually("two pods", secs(20), || async {
        let all = pods_with(&pods, "job-name=slow").await;
        (all.len() == 2).then_some(all)
    })
    .await;
    for p in &running {
        set_phase(&pods, p.metadata.name.as_deref().unwrap_or_default(), "Running").await.expect("pod status");
    }
    let started = std::time::Instant::now();
    let j = eventually("job slow fails", secs(30), || async {
        let j = jobs.get("slow").await.ok()?;
        condition(&j, "Failed").map(|_| j)
    })
    .await;
    assert!(started.elapsed() >= std::time::Duration::from_secs(1), "not before the deadline");
    assert_eq!(condition(&j, "Failed").as_deref(), Some("DeadlineExceeded"));
    let st = j.status.expect("status");
    assert_eq!((st.active, st.failed), (Some(0), Some(2)));
    eventually("active pods deleted", secs(20), || async {
        pods_with(&pods, "job-name=slow").await.is_empty().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspended_job_runs_when_resumed() {
    let s = start(&[controller_manager::job::controller]).await;
    let jobs: Api<Job> = Api::namespaced(s.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    jobs.create(&PostParams::default(), &job("later", json!({"suspend": true}))).await.expect("create job");
    eventually("Suspended condition", secs(20), || async { condition(&jobs.get("later").await.ok()?, "Suspended") })
        .await;
    assert!(pods_with(&pods, "job-name=later").await.is_empty());
    jobs.patch("later", &PatchParams::default(), &Patch::Merge(json!({"spec": {"suspend": false}})))
        .await
        .expect("resume");
    eventually("a pod after resuming", secs(20), || async {
        (pods_with(&pods, "job-name=later").await.len() == 1).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_after_finished_deletes_the_job() {
    let s = start(&[controller_manager::job::controller, controller_manager::job::ttl::controller]).await;
    let jobs: Api<Job> = Api::namespaced(s.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    jobs.create(&PostParams::default(), &job("brief", json!({"ttlSecondsAfterFinished": 2})))
        .await
        .expect("create job");
    let p =
        eventually("a pod", secs(20), || async { pods_with(&pods, "job-name=brief").await.into_iter().next() }).await;
    set_phase(&pods, p.metadata.name.as_deref().unwrap_or_default(), "Succeeded").await.expect("pod status");
    eventually("job completes", secs(20), || async { condition(&jobs.get("brief").await.ok()?, "Complete") }).await;
    let finished = std::time::Instant::now();
    // Foreground deletion (as upstream): without a garbage collector running here the Job stays
    // with a deletionTimestamp; that it was deleted is what this controller owns.
    eventually("job deleted", secs(20), || async {
        match jobs.get_opt("brief").await {
            Ok(None) => Some(()),
            Ok(Some(j)) => j.metadata.deletion_timestamp.map(|_| ()),
            Err(_) => None,
        }
    })
    .await;
    assert!(finished.elapsed() >= std::time::Duration::from_secs(1), "not before the TTL");
}
