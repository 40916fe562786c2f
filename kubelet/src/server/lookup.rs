//! Which runtime container a request for `{namespace}/{pod}/{container}` means, found through
//! the runtime's labels (CRI's `io.kubernetes.*`), with upstream's answers when there is none.
//!
//! The instances of a container are ordered as the pod worker orders them (newest attempt
//! first): the current one is the newest, `previous` is the one before it (upstream's
//! `lastState.terminated`). Only the sandboxes of the pod's newest uid count, so a pod deleted
//! and created again under the same name shows the new one's containers.

use crate::runtime::{ContainerFilter, ContainerState, ContainerStatus, Runtime, RuntimeError, LABEL_CONTAINER_NAME};

/// Why a request names no container, with the HTTP code and text upstream's kubelet answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// 400: the container has not started yet (no sandbox or no instance).
    #[error("container {container:?} in pod {pod:?} is waiting to start: ContainerCreating")]
    Waiting { pod: String, container: String },
    /// 400: `previous` without an earlier instance.
    #[error("previous terminated container {container:?} in pod {pod:?} not found")]
    NoPrevious { pod: String, container: String },
    /// 404 (exec and attach): no sandbox of the pod.
    #[error("pod does not exist")]
    NoPod,
    /// 500 (exec and attach): no instance of the container (the runtime's streaming server).
    #[error("container not found ({container:?})")]
    NoContainer { container: String },
    /// 500 (exec and attach): the container is not running (containerd's CRI message).
    #[error("container is in {state} state")]
    NotRunning { state: &'static str },
    #[error("{0}")]
    Runtime(String),
}

impl LookupError {
    /// The HTTP status code upstream answers with.
    pub fn code(&self) -> u16 {
        match self {
            LookupError::Waiting { .. } | LookupError::NoPrevious { .. } => 400,
            LookupError::NoPod => 404,
            LookupError::NoContainer { .. } | LookupError::NotRunning { .. } | LookupError::Runtime(_) => 500,
        }
    }
}

impl From<RuntimeError> for LookupError {
    fn from(e: RuntimeError) -> Self {
        LookupError::Runtime(e.to_string())
    }
}

/// The CRI name of a container state.
pub fn cri_state(state: ContainerState) -> &'static str {
    match state {
        ContainerState::Created => "CONTAINER_CREATED",
        ContainerState::Running => "CONTAINER_RUNNING",
        ContainerState::Exited => "CONTAINER_EXITED",
        ContainerState::Unknown => "CONTAINER_UNKNOWN",
    }
}

/// Every instance of the container, newest attempt first; None when the pod has no sandbox.
pub async fn instances(
    rt: &dyn Runtime,
    namespace: &str,
    pod: &str,
    container: &str,
) -> Result<Option<Vec<ContainerStatus>>, LookupError> {
    let mut sandboxes: Vec<_> = rt
        .list_pod_sandboxes()
        .await?
        .into_iter()
        .filter(|s| s.metadata.namespace == namespace && s.metadata.name == pod)
        .collect();
    sandboxes.sort_by_key(|s| s.created_at);
    let Some(newest) = sandboxes.last() else { return Ok(None) };
    let uid = newest.metadata.uid.clone();
    let mut out = Vec::new();
    for sb in sandboxes.iter().filter(|s| s.metadata.uid == uid) {
        let filter = ContainerFilter { sandbox_id: Some(sb.id.clone()), state: None };
        out.extend(rt.list_containers(&filter).await?.into_iter().filter(|c| {
            c.labels.get(LABEL_CONTAINER_NAME).map(String::as_str).unwrap_or(c.name.as_str()) == container
        }));
    }
    out.sort_by_key(|c| std::cmp::Reverse((c.restart_count, c.created_at)));
    Ok(Some(out))
}

/// The container whose log a request reads: the current instance, or the one before it.
pub async fn for_logs(
    rt: &dyn Runtime,
    namespace: &str,
    pod: &str,
    container: &str,
    previous: bool,
) -> Result<ContainerStatus, LookupError> {
    let all = instances(rt, namespace, pod, container).await?.unwrap_or_default();
    let pick = if previous { all.get(1) } else { all.first() };
    match pick {
        Some(c) => Ok(c.clone()),
        None if previous && !all.is_empty() => {
            Err(LookupError::NoPrevious { pod: pod.to_string(), container: container.to_string() })
        }
        None => Err(LookupError::Waiting { pod: pod.to_string(), container: container.to_string() }),
    }
}

/// The running container an exec or attach goes into.
pub async fn for_exec(
    rt: &dyn Runtime,
    namespace: &str,
    pod: &str,
    container: &str,
) -> Result<ContainerStatus, LookupError> {
    let Some(all) = instances(rt, namespace, pod, container).await? else { return Err(LookupError::NoPod) };
    let c = all.into_iter().next().ok_or_else(|| LookupError::NoContainer { container: container.to_string() })?;
    if c.state != ContainerState::Running {
        return Err(LookupError::NotRunning { state: cri_state(c.state) });
    }
    Ok(c)
}
