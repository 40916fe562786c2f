use super::*;
use serde_json::json;

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + s).expect("time")
}

fn rt_container(state: rt::ContainerState, code: Option<i32>, restarts: u32) -> rt::ContainerStatus {
    rt::ContainerStatus {
        id: format!("id{restarts}"),
        sandbox_id: "sb".into(),
        name: "c".into(),
        restart_count: restarts,
        state,
        created_at: t(0),
        started_at: Some(t(1)),
        finished_at: code.map(|_| t(5)),
        exit_code: code,
        reason: None,
        message: None,
        image: "busybox:1.36".into(),
        image_ref: "docker.io/library/busybox@sha256:abc".into(),
        labels: Default::default(),
    }
}

fn v1(value: serde_json::Value) -> ContainerStatus {
    serde_json::from_value(value).expect("container status")
}

fn running(name: &str) -> ContainerStatus {
    v1(json!({"name": name, "image": "i", "imageID": "", "restartCount": 0, "ready": true,
        "state": {"running": {}}}))
}
fn exited(name: &str, code: i32) -> ContainerStatus {
    v1(json!({"name": name, "image": "i", "imageID": "", "restartCount": 0, "ready": false,
        "state": {"terminated": {"exitCode": code}}}))
}
fn creating(name: &str) -> ContainerStatus {
    v1(json!({"name": name, "image": "i", "imageID": "", "restartCount": 0, "ready": false,
        "state": {"waiting": {"reason": "ContainerCreating"}}}))
}
fn crashloop(name: &str, code: i32) -> ContainerStatus {
    v1(json!({"name": name, "image": "i", "imageID": "", "restartCount": 1, "ready": false,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}}, "lastState": {"terminated": {"exitCode": code}}}))
}

#[test]
fn phase_table() {
    let cases: Vec<(&str, Vec<ContainerStatus>, Vec<ContainerStatus>, &str)> = vec![
        ("Always", vec![], vec![creating("a")], "Pending"),
        ("Always", vec![], vec![running("a"), creating("b")], "Pending"),
        ("Always", vec![], vec![running("a"), running("b")], "Running"),
        ("Always", vec![], vec![running("a"), exited("b", 0)], "Running"),
        ("Always", vec![], vec![exited("a", 0)], "Running"),
        ("Always", vec![], vec![crashloop("a", 1)], "Running"),
        ("Never", vec![], vec![exited("a", 0), exited("b", 0)], "Succeeded"),
        ("Never", vec![], vec![exited("a", 0), exited("b", 2)], "Failed"),
        ("Never", vec![], vec![running("a"), exited("b", 2)], "Running"),
        ("OnFailure", vec![], vec![exited("a", 0)], "Succeeded"),
        ("OnFailure", vec![], vec![crashloop("a", 1)], "Running"),
        ("OnFailure", vec![], vec![exited("a", 1)], "Running"),
        ("Always", vec![running("i")], vec![creating("a")], "Pending"),
        ("Always", vec![exited("i", 0)], vec![running("a")], "Running"),
        ("Never", vec![exited("i", 1)], vec![creating("a")], "Failed"),
        ("OnFailure", vec![crashloop("i", 1)], vec![creating("a")], "Pending"),
    ];
    for (policy, init, app, want) in cases {
        let names: Vec<_> = app.iter().map(|c| (c.name.clone(), c.state.clone())).collect();
        assert_eq!(phase(policy, &init, &app), want, "{policy} init={} app={names:?}", init.len());
    }
}

#[test]
fn container_status_shapes() {
    let run = rt_container(rt::ContainerState::Running, None, 0);
    let done = rt_container(rt::ContainerState::Exited, Some(0), 1);
    let failed = rt_container(rt::ContainerState::Exited, Some(2), 2);
    let view = |latest, previous, backoff: Option<&str>, init_pending| ContainerView {
        name: "c",
        image: "busybox:1.36",
        latest,
        previous,
        backoff: backoff.map(str::to_string),
        config_error: None,
        image_error: None,
        init_pending,
        ..Default::default()
    };

    let s = serde_json::to_value(container_status(&view(Some(&run), None, None, false), "skiff-fake")).expect("json");
    assert_eq!(
        s,
        json!({"name": "c", "image": "busybox:1.36", "imageID": "docker.io/library/busybox@sha256:abc",
            "containerID": "skiff-fake://id0", "restartCount": 0, "ready": true, "started": true,
            "lastState": {}, "state": {"running": {"startedAt": "2023-11-14T22:13:21Z"}}})
    );

    let s = container_status(&view(Some(&failed), Some(&done), Some("back-off 20s"), false), "skiff-fake");
    assert_eq!(s.restart_count, 2);
    assert!(!s.ready);
    let waiting = s.state.and_then(|st| st.waiting).expect("waiting");
    assert_eq!(waiting.reason.as_deref(), Some("CrashLoopBackOff"));
    let last = s.last_state.and_then(|st| st.terminated).expect("last state");
    assert_eq!((last.exit_code, last.reason.as_deref()), (2, Some("Error")));

    let s = container_status(&view(Some(&done), None, None, false), "skiff-fake");
    let term = s.state.and_then(|st| st.terminated).expect("terminated");
    assert_eq!((term.exit_code, term.reason.as_deref()), (0, Some("Completed")));
    assert_eq!(s.started, Some(false));

    for (pending, reason) in [(true, "PodInitializing"), (false, "ContainerCreating")] {
        let s = container_status(&view(None, None, None, pending), "skiff-fake");
        assert_eq!(s.state.and_then(|st| st.waiting).and_then(|w| w.reason).as_deref(), Some(reason));
        assert_eq!(s.image_id, "");
    }

    // A config that cannot be made: waiting with the error, before the first start and after an exit.
    let msg = "configmap \"cfg\" not found";
    for (latest, last) in [(None, None), (Some(&done), Some(0))] {
        let v = ContainerView { config_error: Some(msg.to_string()), ..view(latest, None, None, false) };
        let s = container_status(&v, "skiff-fake");
        let w = s.state.and_then(|st| st.waiting).expect("waiting");
        assert_eq!((w.reason.as_deref(), w.message.as_deref()), (Some("CreateContainerConfigError"), Some(msg)));
        assert_eq!(s.last_state.and_then(|l| l.terminated).map(|t| t.exit_code), last);
        assert!(!s.ready);
    }
    let app = [container_status(
        &ContainerView { config_error: Some(msg.to_string()), ..view(None, None, None, false) },
        "skiff-fake",
    )];
    assert_eq!(phase("Always", &[], &app), "Pending");
}

fn pod(value: serde_json::Value) -> Pod {
    serde_json::from_value(value).expect("pod")
}

fn cond<'a>(cs: &'a [PodCondition], ty: &str) -> &'a PodCondition {
    cs.iter().find(|c| c.type_ == ty).expect(ty)
}

#[test]
fn conditions_follow_readiness_and_keep_transition_times() {
    let now = api_time(t(100));
    let p = pod(json!({"metadata": {"name": "p"}, "spec": {"containers": []}, "status": {"conditions": [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2023-11-14T22:13:20Z"},
        {"type": "Ready", "status": "True", "lastTransitionTime": "2023-11-14T22:13:20Z"},
        {"type": "DisruptionTarget", "status": "True"}]}}));
    let cs = conditions(&p, "Running", true, &[], &[running("a"), running("b")], &now);
    let types: Vec<_> = cs.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(
        types,
        ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled", "DisruptionTarget"]
    );
    assert!(cs.iter().take(4).all(|c| c.status == "True"));
    // Ready was already True: its transition time stays; ContainersReady is new: now.
    assert_eq!(cond(&cs, "Ready").last_transition_time, Some(api_time(t(0))));
    assert_eq!(cond(&cs, "ContainersReady").last_transition_time, Some(now.clone()));

    let cs = conditions(&p, "Pending", false, &[running("i")], &[creating("a"), running("b")], &now);
    let ready = cond(&cs, "Ready");
    assert_eq!((ready.status.as_str(), ready.reason.as_deref()), ("False", Some("ContainersNotReady")));
    assert_eq!(ready.message.as_deref(), Some("containers with unready status: [a]"));
    assert_eq!(ready.last_transition_time, Some(now.clone()));
    let init = cond(&cs, "Initialized");
    assert_eq!(init.message.as_deref(), Some("containers with incomplete status: [i]"));
    assert_eq!(cond(&cs, "PodReadyToStartContainers").status, "False");

    let cs = conditions(&p, "Succeeded", false, &[], &[exited("a", 0)], &now);
    assert_eq!(cond(&cs, "Ready").reason.as_deref(), Some("PodCompleted"));
    assert_eq!(cond(&cs, "ContainersReady").reason.as_deref(), Some("PodCompleted"));
}

#[test]
fn readiness_gates_hold_ready_back() {
    let now = api_time(t(100));
    let gated = |status: Option<&str>| {
        let mut conds = vec![];
        if let Some(s) = status {
            conds.push(json!({"type": "example.com/lb", "status": s}));
        }
        pod(json!({"metadata": {"name": "p"}, "spec": {"containers": [],
            "readinessGates": [{"conditionType": "example.com/lb"}]}, "status": {"conditions": conds}}))
    };
    for (gate, want_ready, want_reason) in [
        (None, "False", Some("ReadinessGatesNotReady")),
        (Some("False"), "False", Some("ReadinessGatesNotReady")),
        (Some("True"), "True", None),
    ] {
        let cs = conditions(&gated(gate), "Running", true, &[], &[running("a")], &now);
        let ready = cond(&cs, "Ready");
        assert_eq!((ready.status.as_str(), ready.reason.as_deref()), (want_ready, want_reason), "{gate:?}");
        assert_eq!(cond(&cs, "ContainersReady").status, "True");
    }
}

#[test]
fn pod_status_fills_ips_and_never_leaves_a_terminal_phase() {
    let p = pod(json!({"metadata": {"name": "p"}, "spec": {"restartPolicy": "Never", "containers": [
        {"name": "c", "image": "busybox:1.36"}]}, "status": {"phase": "Pending", "qosClass": "BestEffort"}}));
    let run = rt_container(rt::ContainerState::Running, None, 0);
    let observed = |pod, latest| Observed {
        pod,
        sandbox_ready: true,
        pod_ip: Some("10.244.1.2".parse().expect("ip")),
        host_ip: "10.0.0.1".parse().expect("ip"),
        init: vec![],
        app: vec![ContainerView { name: "c", image: "busybox:1.36", latest, ..Default::default() }],
        scheme: "skiff-fake",
        now: t(9),
    };
    let s = pod_status(&observed(&p, Some(&run)));
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert_eq!(s.pod_ip.as_deref(), Some("10.244.1.2"));
    assert_eq!(s.pod_ips.as_ref().map(|v| v[0].ip.as_str()), Some("10.244.1.2"));
    assert_eq!(s.host_ip.as_deref(), Some("10.0.0.1"));
    assert_eq!(s.qos_class.as_deref(), Some("BestEffort"));
    assert_eq!(s.start_time, Some(api_time(t(9))));
    assert_eq!(s.init_container_statuses, None);

    let mut finished = p.clone();
    finished.status = Some(PodStatus { phase: Some("Succeeded".into()), ..Default::default() });
    assert_eq!(pod_status(&observed(&finished, Some(&run))).phase.as_deref(), Some("Succeeded"));
}

#[test]
fn probes_decide_started_and_ready() {
    let run = rt_container(rt::ContainerState::Running, None, 0);
    let base = ContainerView { name: "c", image: "busybox:1.36", latest: Some(&run), ..Default::default() };
    let s = container_status(&base, "skiff-fake");
    assert_eq!((s.started, s.ready), (Some(true), true), "no probes: running is started and ready");
    let unready = ContainerView { ready: Some(false), started: Some(true), ..base.clone() };
    let s = container_status(&unready, "skiff-fake");
    assert_eq!((s.started, s.ready), (Some(true), false));
    // Not started yet: not ready either, whatever readiness says.
    let starting = ContainerView { ready: Some(true), started: Some(false), ..base };
    let s = container_status(&starting, "skiff-fake");
    assert_eq!((s.started, s.ready), (Some(false), false));
}

#[test]
fn a_started_sidecar_initializes_the_pod_and_never_completes_it() {
    let p = pod(json!({"metadata": {"name": "p"}, "spec": {"restartPolicy": "Never",
        "initContainers": [{"name": "side", "image": "busybox:1.36", "restartPolicy": "Always"}],
        "containers": [{"name": "c", "image": "busybox:1.36"}]}, "status": {"phase": "Pending"}}));
    let run = rt_container(rt::ContainerState::Running, None, 0);
    let done = rt_container(rt::ContainerState::Exited, Some(0), 0);
    let crashed = rt_container(rt::ContainerState::Exited, Some(1), 0);
    let observed = |pod, side: Option<&'static rt::ContainerStatus>, side_started: bool, app| Observed {
        pod,
        sandbox_ready: true,
        pod_ip: None,
        host_ip: "10.0.0.1".parse().expect("ip"),
        init: vec![ContainerView {
            name: "side",
            image: "busybox:1.36",
            latest: side,
            sidecar: true,
            started: Some(side_started),
            ..Default::default()
        }],
        app,
        scheme: "skiff-fake",
        now: t(9),
    };
    let leak = |c: rt::ContainerStatus| -> &'static rt::ContainerStatus { Box::leak(Box::new(c)) };
    let side_run = leak(run.clone());
    let waiting_app =
        || vec![ContainerView { name: "c", image: "busybox:1.36", init_pending: true, ..Default::default() }];
    // Running but not started (startup probe pending): the pod is still initializing.
    let s = pod_status(&observed(&p, Some(side_run), false, waiting_app()));
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    assert_eq!(cond(s.conditions.as_deref().unwrap_or(&[]), "Initialized").status, "False");
    // A crashed sidecar before initialization does not fail a Never pod: it is restarted.
    let s = pod_status(&observed(&p, Some(leak(crashed)), false, waiting_app()));
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    // Started: initialized; the app container runs; the pod completes with the app container
    // although the sidecar still runs.
    let app = vec![ContainerView { name: "c", image: "busybox:1.36", latest: Some(&run), ..Default::default() }];
    let s = pod_status(&observed(&p, Some(side_run), true, app));
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert_eq!(cond(s.conditions.as_deref().unwrap_or(&[]), "Initialized").status, "True");
    let app = vec![ContainerView { name: "c", image: "busybox:1.36", latest: Some(&done), ..Default::default() }];
    let s = pod_status(&observed(&p, Some(side_run), true, app));
    assert_eq!(s.phase.as_deref(), Some("Succeeded"));
}
