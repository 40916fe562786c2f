//! The kubelet's errors.

use crate::pods::config::ConfigError;
use crate::runtime::factory::FactoryError;
use crate::runtime::RuntimeError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("--{flag}: {message}")]
    InvalidFlag { flag: &'static str, message: String },
    /// A fact about the host a real node reports (its capacity) could not be read.
    #[error("host: {0}")]
    Host(#[from] crate::node::host::HostError),
    #[error(transparent)]
    Client(#[from] api::client::ClientError),
    #[error("{action} {object}: {source}")]
    Api {
        action: &'static str,
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("{action} {object}: timed out")]
    Timeout { action: &'static str, object: String },
    #[error("runtime: {0}")]
    Runtime(#[from] RuntimeError),
    #[error("runtime: {0}")]
    RuntimeFactory(#[from] FactoryError),
    /// The sandbox's config could not be made from the pod.
    #[error("sandbox: {0}")]
    SandboxConfig(#[source] ConfigError),
    /// The container's config could not be made from the pod (`CreateContainerConfigError`).
    #[error("container {container}: {source}")]
    ContainerConfig {
        container: String,
        #[source]
        source: ConfigError,
    },
    #[error("pod IP: {0}")]
    PodIp(#[from] crate::pods::ip_pool::PoolError),
}

impl Error {
    pub(crate) fn api(action: &'static str, object: impl Into<String>, source: kube::Error) -> Self {
        Error::Api { action, object: object.into(), source }
    }

    /// The HTTP status code of a failed API call, if that is what this is.
    pub fn api_code(&self) -> Option<u16> {
        match self {
            Error::Api { source: kube::Error::Api(s), .. } => Some(s.code),
            _ => None,
        }
    }
}

/// The HTTP status code of a kube error, if the server answered.
pub(crate) fn code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}
