//! Pod status from what the runtime reports, as the kubelet computes it: container statuses,
//! the phase (upstream `getPhase`) and the conditions the kubelet owns. Pure functions; the
//! worker feeds them and writes the result.

use std::net::IpAddr;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, HostIP,
    Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::pods::config::CONFIG_ERROR_REASON;
use crate::runtime as rt;

/// Condition types this kubelet writes; others on the pod (PodScheduled, DisruptionTarget,
/// readiness gates) are kept as they are.
pub const OWNED_CONDITIONS: [&str; 4] = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady"];

/// A timestamp as the API stores it: whole seconds.
pub fn api_time(ts: Timestamp) -> Time {
    Time(Timestamp::from_second(ts.as_second()).unwrap_or(ts))
}

/// What the worker knows about one spec container.
#[derive(Debug, Clone, Default)]
pub struct ContainerView<'a> {
    pub name: &'a str,
    pub image: &'a str,
    /// The newest instance in the runtime.
    pub latest: Option<&'a rt::ContainerStatus>,
    /// The instance before it (for `lastState`).
    pub previous: Option<&'a rt::ContainerStatus>,
    /// Set while an exited container waits to be restarted: the CrashLoopBackOff message.
    pub backoff: Option<String>,
    /// Set when the container's config could not be made: the CreateContainerConfigError message.
    pub config_error: Option<String>,
    /// Set when the container's image is not there: (reason, message), e.g. `ErrImageNeverPull`.
    pub image_error: Option<(String, String)>,
    /// An app container that waits for init containers.
    pub init_pending: bool,
    /// What the readiness probe says of the running instance (None: no probe, ready).
    pub ready: Option<bool>,
    /// What the startup probe says of the running instance (None: no probe, started).
    pub started: Option<bool>,
    /// An init container with `restartPolicy: Always`.
    pub sidecar: bool,
}

fn terminated(c: &rt::ContainerStatus, scheme: &str) -> ContainerState {
    let code = c.exit_code.unwrap_or(-1);
    let reason = c.reason.clone().unwrap_or_else(|| if code == 0 { "Completed" } else { "Error" }.to_string());
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: code,
            reason: Some(reason),
            message: c.message.clone(),
            started_at: c.started_at.map(api_time),
            finished_at: c.finished_at.map(api_time),
            container_id: Some(format!("{scheme}://{}", c.id)),
            signal: None,
        }),
        ..Default::default()
    }
}

fn waiting(reason: &str, message: Option<String>) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting { reason: Some(reason.to_string()), message }),
        ..Default::default()
    }
}

/// The API status of one container. `scheme` prefixes container IDs (`skiff-fake://<id>`).
pub fn container_status(v: &ContainerView<'_>, scheme: &str) -> ContainerStatus {
    let mut s = ContainerStatus {
        name: v.name.to_string(),
        image: v.image.to_string(),
        image_id: v.latest.map(|c| c.image_ref.clone()).unwrap_or_default(),
        container_id: v.latest.map(|c| format!("{scheme}://{}", c.id)),
        restart_count: v.latest.map(|c| i32::try_from(c.restart_count).unwrap_or(i32::MAX)).unwrap_or(0),
        ready: false,
        started: Some(false),
        last_state: Some(v.previous.map(|p| terminated(p, scheme)).unwrap_or_default()),
        ..Default::default()
    };
    s.state = Some(match v.latest {
        None if v.image_error.is_some() => {
            let (reason, message) = v.image_error.clone().unwrap_or_default();
            waiting(&reason, Some(message))
        }
        None if v.config_error.is_some() => waiting(CONFIG_ERROR_REASON, v.config_error.clone()),
        None if v.init_pending => waiting("PodInitializing", None),
        None => waiting("ContainerCreating", None),
        Some(c) => match c.state {
            rt::ContainerState::Created => waiting("ContainerCreating", None),
            rt::ContainerState::Running => {
                let started = v.started.unwrap_or(true);
                s.started = Some(started);
                s.ready = started && v.ready.unwrap_or(true);
                ContainerState {
                    running: Some(ContainerStateRunning { started_at: c.started_at.map(api_time) }),
                    ..Default::default()
                }
            }
            rt::ContainerState::Exited | rt::ContainerState::Unknown => match (&v.backoff, &v.config_error) {
                (Some(msg), _) => {
                    s.last_state = Some(terminated(c, scheme));
                    waiting("CrashLoopBackOff", Some(msg.clone()))
                }
                (None, Some(msg)) => {
                    s.last_state = Some(terminated(c, scheme));
                    waiting(CONFIG_ERROR_REASON, Some(msg.clone()))
                }
                (None, None) => terminated(c, scheme),
            },
        },
    });
    s
}

fn exit_code(s: &ContainerState) -> Option<i32> {
    s.terminated.as_ref().map(|t| t.exit_code)
}

/// The pod phase from its container statuses (upstream `getPhase`, without sidecars).
pub fn phase(restart_policy: &str, init: &[ContainerStatus], app: &[ContainerStatus]) -> &'static str {
    let (mut pending_init, mut failed_init) = (0, 0);
    for c in init {
        let state = c.state.clone().unwrap_or_default();
        let last = c.last_state.clone().unwrap_or_default();
        match (exit_code(&state), state.waiting.is_some(), exit_code(&last)) {
            (Some(0), _, _) => {}
            (Some(_), _, _) => failed_init += 1,
            (None, true, Some(0)) => {}
            (None, true, Some(_)) => failed_init += 1,
            _ => pending_init += 1,
        }
    }
    if failed_init > 0 && restart_policy == "Never" {
        return "Failed";
    }
    let (mut running, mut waiting, mut stopped, mut succeeded, mut unknown) = (0, 0, 0, 0, 0);
    for c in app {
        let state = c.state.clone().unwrap_or_default();
        let restarting = c.last_state.as_ref().is_some_and(|l| l.terminated.is_some());
        if state.running.is_some() {
            running += 1;
        } else if let Some(code) = exit_code(&state) {
            stopped += 1;
            if code == 0 {
                succeeded += 1;
            }
        } else if state.waiting.is_some() {
            if restarting {
                stopped += 1;
            } else {
                waiting += 1;
            }
        } else {
            unknown += 1;
        }
    }
    if pending_init > 0 || failed_init > 0 || waiting > 0 {
        return "Pending";
    }
    if running > 0 && unknown == 0 {
        return "Running";
    }
    if running == 0 && stopped > 0 && unknown == 0 {
        if restart_policy == "Always" || restart_policy.is_empty() {
            return "Running";
        }
        if stopped == succeeded {
            return "Succeeded";
        }
        if restart_policy == "Never" {
            return "Failed";
        }
        return "Running";
    }
    "Pending"
}

fn condition(ty: &str, ok: bool, reason: Option<&str>, message: Option<String>) -> PodCondition {
    PodCondition {
        type_: ty.to_string(),
        status: if ok { "True" } else { "False" }.to_string(),
        reason: if ok { None } else { reason.map(str::to_string) },
        message: if ok { None } else { message },
        ..Default::default()
    }
}

fn names(statuses: &[ContainerStatus], pred: impl Fn(&ContainerStatus) -> bool) -> Vec<&str> {
    statuses.iter().filter(|c| pred(c)).map(|c| c.name.as_str()).collect()
}

/// The pod's conditions: the kubelet's own recomputed, the rest kept; `lastTransitionTime`
/// moves only when a condition's status changes.
pub fn conditions(
    pod: &Pod,
    phase: &str,
    sandbox_ready: bool,
    init: &[ContainerStatus],
    app: &[ContainerStatus],
    now: &Time,
) -> Vec<PodCondition> {
    let existing: &[PodCondition] = pod.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or(&[]);
    let terminal = matches!(phase, "Succeeded" | "Failed");
    let sidecars = sidecar_names(pod);
    let was_initialized = existing.iter().any(|c| c.type_ == "Initialized" && c.status == "True");
    let uninitialized = names(init, |c| {
        if sidecars.contains(&c.name.as_str()) {
            !(was_initialized || sidecar_started(c))
        } else {
            c.state.as_ref().and_then(exit_code) != Some(0)
        }
    });
    let mut unready = names(init, |c| sidecars.contains(&c.name.as_str()) && !c.ready);
    unready.extend(names(app, |c| !c.ready));
    let list = |v: &[&str]| format!("[{}]", v.join(" "));

    let initialized = condition(
        "Initialized",
        uninitialized.is_empty(),
        Some("ContainersNotInitialized"),
        Some(format!("containers with incomplete status: {}", list(&uninitialized))),
    );
    let containers_ready = if terminal {
        condition("ContainersReady", false, Some("PodCompleted"), None)
    } else {
        condition(
            "ContainersReady",
            unready.is_empty(),
            Some("ContainersNotReady"),
            Some(format!("containers with unready status: {}", list(&unready))),
        )
    };
    let gates = pod.spec.as_ref().and_then(|s| s.readiness_gates.as_deref()).unwrap_or(&[]);
    let gate_problem = gates.iter().find_map(|g| {
        let ty = &g.condition_type;
        match existing.iter().find(|c| &c.type_ == ty) {
            None => Some(format!("corresponding condition of pod readiness gate \"{ty}\" does not exist.")),
            Some(c) if c.status != "True" => {
                Some(format!("the status of pod readiness gate \"{ty}\" is not \"True\", but {}", c.status))
            }
            Some(_) => None,
        }
    });
    let ready = match (&containers_ready.status[..], gate_problem) {
        ("True", Some(msg)) => condition("Ready", false, Some("ReadinessGatesNotReady"), Some(msg)),
        _ => PodCondition { type_: "Ready".into(), ..containers_ready.clone() },
    };
    let owned =
        [condition("PodReadyToStartContainers", sandbox_ready, None, None), initialized, ready, containers_ready];

    let mut out = Vec::with_capacity(owned.len() + existing.len());
    for mut c in owned {
        let old = existing.iter().find(|e| e.type_ == c.type_);
        c.last_transition_time = match old {
            Some(o) if o.status == c.status && o.last_transition_time.is_some() => o.last_transition_time.clone(),
            _ => Some(now.clone()),
        };
        out.push(c);
    }
    out.extend(existing.iter().filter(|e| !OWNED_CONDITIONS.contains(&e.type_.as_str())).cloned());
    if !out.iter().any(|c| c.type_ == "PodScheduled") {
        out.push(PodCondition {
            type_: "PodScheduled".into(),
            status: "True".into(),
            last_transition_time: Some(now.clone()),
            ..Default::default()
        });
    }
    out
}

/// The init containers of `pod` with `restartPolicy: Always`.
fn sidecar_names(pod: &Pod) -> Vec<&str> {
    let init = pod.spec.as_ref().and_then(|s| s.init_containers.as_deref()).unwrap_or(&[]);
    init.iter().filter(|c| c.restart_policy.as_deref() == Some("Always")).map(|c| c.name.as_str()).collect()
}

fn sidecar_started(c: &ContainerStatus) -> bool {
    c.state.as_ref().is_some_and(|s| s.running.is_some()) && c.started == Some(true)
}

/// Everything [`pod_status`] needs.
#[derive(Debug)]
pub struct Observed<'a> {
    pub pod: &'a Pod,
    pub sandbox_ready: bool,
    pub pod_ip: Option<IpAddr>,
    pub host_ip: IpAddr,
    pub init: Vec<ContainerView<'a>>,
    pub app: Vec<ContainerView<'a>>,
    /// Container ID scheme (`skiff-fake`).
    pub scheme: &'a str,
    pub now: Timestamp,
}

/// The full status to write: the existing one with every kubelet-owned field recomputed. A
/// terminal phase never changes back.
pub fn pod_status(o: &Observed<'_>) -> PodStatus {
    let now = api_time(o.now);
    let mut s = o.pod.status.clone().unwrap_or_default();
    let init: Vec<ContainerStatus> = o.init.iter().map(|v| container_status(v, o.scheme)).collect();
    let app: Vec<ContainerStatus> = o.app.iter().map(|v| container_status(v, o.scheme)).collect();
    let policy = o.pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()).unwrap_or("Always");
    // For the phase a sidecar is initialized once started (or once the pod was); one that is not
    // yet counts as pending whatever its state (it restarts, it never fails the pod).
    let was_initialized = s.conditions.iter().flatten().any(|c| c.type_ == "Initialized" && c.status == "True");
    let phase_init: Vec<ContainerStatus> = init
        .iter()
        .zip(&o.init)
        .filter_map(|(c, v)| match v.sidecar {
            false => Some(c.clone()),
            true if was_initialized || sidecar_started(c) => None,
            true => Some(ContainerStatus { name: c.name.clone(), ..Default::default() }),
        })
        .collect();
    let phase = match s.phase.as_deref() {
        Some(p @ ("Succeeded" | "Failed")) => p,
        _ => phase(policy, &phase_init, &app),
    };
    s.conditions = Some(conditions(o.pod, phase, o.sandbox_ready, &init, &app, &now));
    s.phase = Some(phase.to_string());
    s.host_ip = Some(o.host_ip.to_string());
    s.host_ips = Some(vec![HostIP { ip: o.host_ip.to_string() }]);
    if let Some(ip) = o.pod_ip {
        s.pod_ip = Some(ip.to_string());
        s.pod_ips = Some(vec![PodIP { ip: ip.to_string() }]);
    }
    if s.start_time.is_none() {
        s.start_time = Some(now);
    }
    s.init_container_statuses = (!init.is_empty()).then_some(init);
    s.container_statuses = Some(app);
    s
}

#[cfg(test)]
mod tests;
