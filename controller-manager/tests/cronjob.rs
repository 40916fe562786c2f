//! The CronJob controller against a real API server. One test waits for a real minute
//! boundary; the others start from a status whose last schedule lies minutes in the past, so a
//! start time is already due.

mod support;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Event;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use support::{obj, secs, start};
use testkit::eventually;

fn cronjob(name: &str, extra: serde_json::Value) -> CronJob {
    let mut spec = json!({
        "schedule": "*/1 * * * *",
        "jobTemplate": {"metadata": {"labels": {"from": name}}, "spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox:1.36"}]}}}},
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    obj(json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name}, "spec": spec}))
}

/// A Job owned by `cj`, as if the controller had started it earlier.
fn child(cj: &CronJob, name: &str) -> Job {
    obj(json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "labels": {"from": cj.name_any()}, "ownerReferences": [{
            "apiVersion": "batch/v1", "kind": "CronJob", "name": cj.name_any(), "uid": cj.uid(), "controller": true}]},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox:1.36"}]}}}}))
}

fn minutes_ago(n: i64) -> String {
    let now = jiff::Timestamp::now().as_second();
    let t = jiff::Timestamp::from_second((now / 60 - n) * 60).expect("time");
    t.to_string()
}

async fn events(client: &kube::Client, name: &str) -> Vec<String> {
    let api: Api<Event> = Api::namespaced(client.clone(), "default");
    let list = api.list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default();
    list.into_iter().filter(|e| e.involved_object.name.as_deref() == Some(name)).filter_map(|e| e.reason).collect()
}

/// Creates `cj` suspended with one running child listed as active and a last schedule three
/// minutes ago, then resumes it.
async fn with_running_child(client: &kube::Client, cj: CronJob) -> (CronJob, Job) {
    let cjs: Api<CronJob> = Api::namespaced(client.clone(), "default");
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let cj = cjs.create(&PostParams::default(), &cj).await.expect("create cronjob");
    let old = jobs.create(&PostParams::default(), &child(&cj, &format!("{}-old", cj.name_any()))).await.expect("job");
    let status = json!({"status": {"lastScheduleTime": minutes_ago(3), "active": [{
        "apiVersion": "batch/v1", "kind": "Job", "namespace": "default", "name": old.name_any(), "uid": old.uid()}]}});
    cjs.patch_status(&cj.name_any(), &PatchParams::default(), &Patch::Merge(&status)).await.expect("status");
    let cj = cjs
        .patch(&cj.name_any(), &PatchParams::default(), &Patch::Merge(json!({"spec": {"suspend": false}})))
        .await
        .expect("resume");
    (cj, old)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_minute_creates_a_job() {
    let s = start(&[controller_manager::cronjob::controller]).await;
    let cjs: Api<CronJob> = Api::namespaced(s.client.clone(), "default");
    let jobs: Api<Job> = Api::namespaced(s.client.clone(), "default");
    let cj = cjs.create(&PostParams::default(), &cronjob("tick", json!({}))).await.expect("create");
    let job = eventually("a job from */1 * * * *", secs(70), || async {
        jobs.list(&ListParams::default().labels("from=tick")).await.ok()?.items.into_iter().next()
    })
    .await;
    let ann = job.annotations().get("batch.kubernetes.io/cronjob-scheduled-timestamp").cloned().expect("annotation");
    let scheduled: jiff::Timestamp = ann.parse().expect("RFC 3339");
    assert_eq!(scheduled.as_second() % 60, 0, "on a minute boundary");
    assert_eq!(job.name_any(), format!("tick-{}", scheduled.as_second() / 60));
    let owner = &job.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("CronJob", cj.uid().as_deref().unwrap_or(""), Some(true))
    );
    let st = eventually("status lists the job", secs(10), || async {
        let st = cjs.get("tick").await.ok()?.status?;
        (st.active.as_ref()?.len() == 1).then_some(st)
    })
    .await;
    assert_eq!(st.last_schedule_time.map(|t| t.0), Some(scheduled));
    assert!(events(&s.client, "tick").await.iter().any(|r| r == "SuccessfulCreate"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbid_skips_while_a_job_runs() {
    let s = start(&[controller_manager::cronjob::controller]).await;
    let jobs: Api<Job> = Api::namespaced(s.client.clone(), "default");
    let cj = cronjob("lonely", json!({"concurrencyPolicy": "Forbid", "suspend": true}));
    with_running_child(&s.client, cj).await;
    eventually("JobAlreadyActive event", secs(20), || async {
        events(&s.client, "lonely").await.iter().any(|r| r == "JobAlreadyActive").then_some(())
    })
    .await;
    let all = jobs.list(&ListParams::default().labels("from=lonely")).await.expect("list").items;
    assert_eq!(all.iter().map(|j| j.name_any()).collect::<Vec<_>>(), vec!["lonely-old".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_deletes_the_running_job() {
    let s = start(&[controller_manager::cronjob::controller]).await;
    let cjs: Api<CronJob> = Api::namespaced(s.client.clone(), "default");
    let jobs: Api<Job> = Api::namespaced(s.client.clone(), "default");
    let cj = cronjob("swap", json!({"concurrencyPolicy": "Replace", "suspend": true}));
    let (_, old) = with_running_child(&s.client, cj).await;
    let fresh = eventually("a new job", secs(20), || async {
        let all = jobs.list(&ListParams::default().labels("from=swap")).await.ok()?.items;
        all.into_iter().find(|j| j.name_any() != "swap-old")
    })
    .await;
    eventually("the old job deleted", secs(10), || async {
        match jobs.get_opt(&old.name_any()).await {
            Ok(None) => Some(()),
            Ok(Some(j)) => j.metadata.deletion_timestamp.map(|_| ()),
            Err(_) => None,
        }
    })
    .await;
    eventually("only the new job active", secs(10), || async {
        let active = cjs.get("swap").await.ok()?.status?.active?;
        (active.len() == 1 && active[0].uid == fresh.uid()).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_limits_delete_the_oldest() {
    let s = start(&[controller_manager::cronjob::controller]).await;
    let cjs: Api<CronJob> = Api::namespaced(s.client.clone(), "default");
    let jobs: Api<Job> = Api::namespaced(s.client.clone(), "default");
    let cj = cronjob("hist", json!({"suspend": true, "successfulJobsHistoryLimit": 1, "failedJobsHistoryLimit": 1}));
    let cj = cjs.create(&PostParams::default(), &cj).await.expect("create");
    // (name, minutes ago started, outcome)
    let mut completed_c = String::new();
    let finished = [
        ("hist-a", 50, "Complete"),
        ("hist-b", 40, "Complete"),
        ("hist-c", 30, "Complete"),
        ("hist-d", 20, "Failed"),
        ("hist-e", 10, "Failed"),
    ];
    for (name, ago, outcome) in finished {
        jobs.create(&PostParams::default(), &child(&cj, name)).await.expect("job");
        let (interim, reason) = if outcome == "Complete" {
            ("SuccessCriteriaMet", "CompletionsReached")
        } else {
            ("FailureTarget", "BackoffLimitExceeded")
        };
        let now = minutes_ago(ago - 1);
        let mut status = json!({"startTime": minutes_ago(ago), "conditions": [
            {"type": interim, "status": "True", "reason": reason, "lastTransitionTime": now},
            {"type": outcome, "status": "True", "reason": reason, "lastTransitionTime": now}]});
        if name == "hist-c" {
            completed_c = now.clone();
        }
        if outcome == "Complete" {
            status["completionTime"] = json!(now);
            status["succeeded"] = json!(1);
        } else {
            status["failed"] = json!(1);
        }
        jobs.patch_status(name, &PatchParams::default(), &Patch::Merge(json!({"status": status})))
            .await
            .expect("job status");
    }
    // A change to the CronJob makes it look again once all five are in its cache.
    cjs.patch("hist", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"poke": "1"}}})))
        .await
        .expect("poke");
    eventually("only the newest of each kind left", secs(20), || async {
        let mut left: Vec<String> = jobs
            .list(&ListParams::default().labels("from=hist"))
            .await
            .ok()?
            .items
            .iter()
            .filter(|j| j.metadata.deletion_timestamp.is_none())
            .map(|j| j.name_any())
            .collect();
        left.sort();
        (left == ["hist-c", "hist-e"]).then_some(())
    })
    .await;
    let st = cjs.get("hist").await.expect("cronjob").status.expect("status");
    assert_eq!(st.last_successful_time.map(|t| t.0.to_string()), Some(completed_c));
}
